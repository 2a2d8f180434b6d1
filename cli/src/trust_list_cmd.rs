//! `trustca root trust-list issue` and `trustca sector import --trust-list`:
//! the root operator's signed list of foreign roots (another industry's or
//! another country's PKI) and the foreign sectors each may vouch for.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use trustca_ca::trust_list::{self, ForeignRoot, TrustListReport};

use crate::ceremony_cmd::StepArgs;
use crate::cli::print_json;

/// `trustca root trust-list ...` (offline, with the root key).
#[derive(Debug, Subcommand)]
pub enum TrustListAction {
    /// Sign a new trust list: the foreign roots given with --add, each with
    /// the foreign sectors (--sector, one per --add, comma-separated) it may
    /// vouch for; the sectors must be declared `foreign` in DIR's
    /// recognition.toml. Numbered one above the last list issued, kept in
    /// DIR/ca/trust-list.der; give --out to every sector operator
    /// (`trustca sector import --trust-list`). Re-issue before nextUpdate.
    Issue(Box<TrustListIssueArgs>),
}

/// `trustca root trust-list issue`.
#[derive(Debug, Args)]
pub struct TrustListIssueArgs {
    /// A foreign root (or CA) certificate, PEM or DER; repeat for more.
    #[arg(long = "add", required = true)]
    pub add: Vec<PathBuf>,
    /// The foreign sector(s) the matching --add may vouch for,
    /// comma-separated; one --sector per --add, in the same order.
    #[arg(long = "sector", required = true)]
    pub sector: Vec<String>,
    /// When the list lapses: RFC 3339 (2027-01-31T00:00:00Z) or a number
    /// of days from now (30d).
    #[arg(long = "next-update", default_value = "30d")]
    pub next_update: String,
    /// Where to write the list (PEM).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub step: StepArgs,
}

fn next_update(text: &str) -> Result<OffsetDateTime> {
    if let Some(days) = text.strip_suffix('d') {
        let days: i64 = days
            .parse()
            .with_context(|| format!("--next-update {text:?}: not a number of days"))?;
        return Ok(OffsetDateTime::now_utc() + time::Duration::days(days));
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .with_context(|| format!("--next-update {text:?}: give RFC 3339 or a number of days (30d)"))
}

fn describe(r: &TrustListReport, json: bool, verb: &str) {
    let next = crate::show::rfc3339(r.next_update);
    if json {
        let roots: Vec<_> = r
            .roots
            .iter()
            .map(|e| {
                json!({
                    "subject": e.subject,
                    "sha256": e.sha256,
                    "sectors": e.sectors.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        print_json(&json!({
            "sequence": r.sequence,
            "next_update": next,
            "roots": roots,
            "path": r.path,
        }));
        return;
    }
    println!("{verb} trust list #{} (nextUpdate {next})", r.sequence);
    for e in &r.roots {
        let sectors: Vec<&str> = e.sectors.iter().map(|s| s.as_str()).collect();
        println!(
            "  {}  {}  sectors {}",
            e.sha256,
            e.subject,
            sectors.join(",")
        );
    }
}

/// Runs `trustca root trust-list ...`.
pub fn run(action: TrustListAction) -> Result<ExitCode> {
    match action {
        TrustListAction::Issue(a) => issue(*a),
    }
}

fn issue(a: TrustListIssueArgs) -> Result<ExitCode> {
    if a.add.len() != a.sector.len() {
        bail!(
            "give one --sector per --add ({} --add, {} --sector)",
            a.add.len(),
            a.sector.len()
        );
    }
    let next = next_update(&a.next_update)?;
    let roots = a
        .add
        .iter()
        .zip(&a.sector)
        .map(|(path, sectors)| {
            Ok(ForeignRoot {
                name: path.display().to_string(),
                certificate: std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
                sectors: sectors
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let passphrase = a.step.pass.load()?;
    let (set, token) = crate::ceremony_cmd::prepare(&a.step.data, &a.step.pkcs11)?;
    let r = trust_list::issue(&a.step.data, &set, &passphrase, token, &roots, next)?;
    std::fs::write(&a.out, &r.pem).with_context(|| format!("cannot write {}", a.out.display()))?;
    describe(&r, a.step.json, "issued");
    if !a.step.json {
        println!(
            "written to {}; give it to every sector operator",
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `trustca sector import --trust-list FILE`.
pub fn import(data: &Path, set: &trustca_model::PolicySet, file: &Path, json: bool) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let r = trust_list::import(data, set, &bytes)?;
    describe(&r, json, "imported");
    Ok(())
}
