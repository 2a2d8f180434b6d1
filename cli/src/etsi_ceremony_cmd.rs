//! `trustca etsi root|ea|aa|dc|install`: the ETSI key ceremony
//! (`docs/v2x-etsi.md`, "Separated authorities"). The root is made and
//! used offline; each EA and AA makes its keys in its own directory and
//! hands the root a request; the root's certificates and signed lists are
//! installed where they are used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use trustca_server::etsi::ceremony::{self, EtsiRole, Install, SignedList};

use crate::cli::{PassphraseArgs, print_json};

/// Days a signed CTL or CRL is valid unless `--days` says otherwise.
const DEFAULT_LIST_DAYS: u32 = 7;

/// `trustca etsi root ...`: the offline root CA.
#[derive(Debug, Subcommand)]
pub enum RootAction {
    /// Make the ETSI root in a new directory DIR: its P-256 key (encrypted
    /// under the passphrase) and its self-signed TS 103 097 certificate
    /// DIR/root.oer, which may sign CTLs and CRLs. Keep DIR offline.
    Init {
        #[command(flatten)]
        at: DirArgs,
        /// The certificate's id name.
        #[arg(long, default_value = "trustca-etsi-root")]
        name: String,
    },
    /// Certify an EA's or AA's request.toml: writes its certificate to
    /// --out (install it with `trustca etsi install --cert`). An AA may
    /// issue tickets for the PSIDs of the ETSI ticket profile.
    Sign {
        #[command(flatten)]
        at: DirArgs,
        /// The authority's request.toml.
        #[arg(long)]
        request: PathBuf,
        /// Where to write the certificate (COER).
        #[arg(long)]
        out: PathBuf,
        /// Policy directory with v2x-tickets-etsi.toml (else DIR/policies,
        /// else the shipped profile).
        #[arg(long)]
        policies: Option<PathBuf>,
    },
    /// Sign the CTL: every certified EA and AA not revoked, with their
    /// access points. Re-sign and install it before its nextUpdate.
    SignCtl {
        #[command(flatten)]
        at: DirArgs,
        /// Where to write the CTL.
        #[arg(long)]
        out: PathBuf,
        /// The distribution centre's base URL (http://HOST[:PORT]), listed
        /// in the CTL.
        #[arg(long)]
        dc_url: Option<String>,
        /// Days until nextUpdate.
        #[arg(long, default_value_t = DEFAULT_LIST_DAYS, value_parser = clap::value_parser!(u32).range(1..=90))]
        days: u32,
    },
    /// Sign the CRL of every revoked EA and AA. Re-sign and install it
    /// before its nextUpdate.
    SignCrl {
        #[command(flatten)]
        at: DirArgs,
        /// Where to write the CRL.
        #[arg(long)]
        out: PathBuf,
        /// Days until nextUpdate.
        #[arg(long, default_value_t = DEFAULT_LIST_DAYS, value_parser = clap::value_parser!(u32).range(1..=90))]
        days: u32,
    },
    /// Revoke a certified EA or AA by name: the next CRL lists it and the
    /// next CTL leaves it out (sign and install both).
    Revoke {
        #[command(flatten)]
        at: DirArgs,
        /// The authority's name (as certified).
        #[arg(long)]
        name: String,
    },
}

/// `trustca etsi ea|aa ...`.
#[derive(Debug, Subcommand)]
pub enum AuthorityAction {
    /// Make the authority in a new directory DIR: its signing key and
    /// encryption key (encrypted under the passphrase) and DIR/request.toml
    /// for the root. Compare the printed fingerprint with the root's copy.
    Init {
        #[command(flatten)]
        at: DirArgs,
        /// The certificate's id name (unique under the root).
        #[arg(long)]
        name: String,
        /// The public base URL stations and AAs reach it at
        /// (http://HOST[:PORT]); the CTL lists it.
        #[arg(long)]
        url: String,
    },
}

/// `trustca etsi dc ...`.
#[derive(Debug, Subcommand)]
pub enum DcAction {
    /// Make a distribution centre's directory (it holds no key): install
    /// the root certificate and the lists into it.
    Init {
        /// The new directory.
        #[arg(long)]
        dir: PathBuf,
        /// Its name.
        #[arg(long, default_value = "trustca-etsi-dc")]
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The directory, passphrase and output format of a ceremony step.
#[derive(Debug, Args)]
pub struct DirArgs {
    /// The authority's directory.
    #[arg(long)]
    dir: PathBuf,
    #[command(flatten)]
    pass: PassphraseArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl DirArgs {
    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The passphrase of the directory's keystore.
    pub(crate) fn passphrase(&self) -> Result<trustca_ca::Passphrase> {
        self.pass.load()
    }

    /// Whether to print JSON.
    pub(crate) fn json(&self) -> bool {
        self.json
    }
}

/// `trustca etsi install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The EA's, AA's or distribution centre's directory.
    #[arg(long)]
    dir: PathBuf,
    /// The root certificate (root.oer of the root's directory); later
    /// installs must bring the same root or none.
    #[arg(long)]
    root: Option<PathBuf>,
    /// The EA's or AA's own certificate from `trustca etsi root sign`.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// A CTL from `trustca etsi root sign-ctl` (AA, distribution centre).
    #[arg(long)]
    ctl: Option<PathBuf>,
    /// A CRL from `trustca etsi root sign-crl` (EA, AA, distribution
    /// centre).
    #[arg(long)]
    crl: Option<PathBuf>,
    /// A trust list manager's certificate (tlm.oer), with the first
    /// --ectl (distribution centre).
    #[arg(long)]
    tlm: Option<PathBuf>,
    /// A trust list manager's ECTL from `trustca etsi tlm sign-ectl`
    /// (distribution centre; checked against --tlm or the one installed).
    #[arg(long)]
    ectl: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `trustca etsi root ...`.
pub fn run_root(action: RootAction) -> Result<ExitCode> {
    match action {
        RootAction::Init { at, name } => {
            let root = ceremony::root_init(&at.dir, &name, &at.pass.load()?, now())?;
            let id = hex::encode(root.hashed_id8());
            let file = at.dir.join(ceremony::ROOT_FILE);
            if at.json {
                print_json(&json!({"root": file, "hashed_id8": id}));
            } else {
                println!("made the ETSI root {name} ({id}) in {}", at.dir.display());
                println!("  certificate {} (install it with --root)", file.display());
                println!("  keep this directory offline");
            }
        }
        RootAction::Sign {
            at,
            request,
            out,
            policies,
        } => {
            let tickets =
                trustca_server::etsi::deploy::ticket_profile(policies.as_deref(), &at.dir)?;
            let cert =
                ceremony::root_sign(&at.dir, &at.pass.load()?, &read(&request)?, &tickets, now())?;
            write(&out, cert.as_coer())?;
            let id = hex::encode(cert.hashed_id8());
            if at.json {
                print_json(&json!({"certificate": out, "hashed_id8": id}));
            } else {
                println!("certified {id}: {}", out.display());
            }
        }
        RootAction::SignCtl {
            at,
            out,
            dc_url,
            days,
        } => {
            let pass = at.pass.load()?;
            let list = ceremony::root_sign_ctl(
                &at.dir,
                &pass,
                dc_url.as_deref(),
                i64::from(days) * 86_400,
                now(),
            )?;
            report_list("CTL", &list, &out, at.json)?;
        }
        RootAction::SignCrl { at, out, days } => {
            let pass = at.pass.load()?;
            let list = ceremony::root_sign_crl(&at.dir, &pass, i64::from(days) * 86_400, now())?;
            report_list("CRL", &list, &out, at.json)?;
        }
        RootAction::Revoke { at, name } => {
            let id = hex::encode(ceremony::root_revoke(&at.dir, &name)?);
            if at.json {
                print_json(&json!({"revoked": name, "hashed_id8": id}));
            } else {
                println!("revoked {name} ({id}): sign and install a new CRL and CTL");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report_list(kind: &str, list: &SignedList, out: &Path, json: bool) -> Result<()> {
    write(out, &list.bytes)?;
    let next = time::OffsetDateTime::from_unix_timestamp(list.next_update)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| list.next_update.to_string());
    if json {
        print_json(&json!({"list": kind, "file": out, "next_update": next, "names": list.names}));
    } else {
        println!(
            "signed the {kind} ({} {}) to {}; nextUpdate {next}",
            list.names.len(),
            if kind == "CTL" { "listed" } else { "revoked" },
            out.display()
        );
    }
    Ok(())
}

/// Runs `trustca etsi ea|aa ...`.
pub fn run_authority(role: EtsiRole, action: AuthorityAction) -> Result<ExitCode> {
    let AuthorityAction::Init { at, name, url } = action;
    let (request, fingerprint) =
        ceremony::authority_init(&at.dir, role, &name, &url, &at.pass.load()?)?;
    if at.json {
        print_json(&json!({"request": request, "sha256": fingerprint}));
    } else {
        println!(
            "made the {} {name} in {}: its keys never leave it",
            role.as_str().to_uppercase(),
            at.dir.display()
        );
        println!("  request {} (sha256 {fingerprint})", request.display());
        println!(
            "  next: trustca etsi root sign --request ... at the root, then trustca etsi install"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `trustca etsi dc ...`.
pub fn run_dc(action: DcAction) -> Result<ExitCode> {
    let DcAction::Init { dir, name, json } = action;
    ceremony::dc_init(&dir, &name)?;
    if json {
        print_json(&json!({"dir": dir}));
    } else {
        println!("made the distribution centre {name} in {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `trustca etsi install`.
pub fn run_install(a: InstallArgs) -> Result<ExitCode> {
    let load = |p: &Option<PathBuf>| p.as_deref().map(read).transpose();
    let (root, cert, ctl, crl) = (load(&a.root)?, load(&a.cert)?, load(&a.ctl)?, load(&a.crl)?);
    let (tlm, ectl) = (load(&a.tlm)?, load(&a.ectl)?);
    let files = Install {
        root: root.as_deref(),
        certificate: cert.as_deref(),
        ctl: ctl.as_deref(),
        crl: crl.as_deref(),
    };
    let root_side = files.root.is_some()
        || files.certificate.is_some()
        || files.ctl.is_some()
        || files.crl.is_some();
    if !root_side && ectl.is_none() {
        if tlm.is_some() {
            anyhow::bail!("--tlm goes with --ectl");
        }
        anyhow::bail!("nothing to install: give --root, --cert, --ctl, --crl or --ectl");
    }
    let mut done = if root_side {
        ceremony::install(&a.dir, &files)?
    } else {
        Vec::new()
    };
    if let Some(ectl) = &ectl {
        trustca_server::etsi::tlm::install_ectl(&a.dir, tlm.as_deref(), ectl)?;
        done.extend([
            trustca_server::etsi::tlm::TLM_FILE,
            trustca_server::etsi::tlm::ECTL_FILE,
        ]);
    }
    if a.json {
        print_json(&json!({"dir": a.dir, "installed": done}));
    } else {
        println!("installed {} in {}", done.join(", "), a.dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
