//! `trustca root ...` and `trustca sector ...`: the key ceremony between an
//! offline root and the operators of the sector CAs. The root's directory
//! holds the root key and nothing online; each sector's directory holds
//! that sector's keys only. What travels between them is public: the
//! sector's request, its certificate, the root certificate, the ARL and
//! the other sectors' CA certificates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use trustca_datadir::{CaFiles, DataDir};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use trustca_ca::ceremony;

use crate::cli::{PassphraseArgs, print_json};
use crate::pkcs11::Pkcs11Args;

/// `trustca root ...` (offline, on the root's own machine or token).
#[derive(Debug, Subcommand)]
pub enum RootAction {
    /// Make the root: its key (encrypted under the passphrase, or in a
    /// PKCS#11 token), the self-signed root certificate (DIR/ca/root.pem)
    /// and the first ARL (DIR/crl/root.crl). Nothing else: no sector keys,
    /// no service keys, no store. Keep DIR offline.
    Init(Box<RootInitArgs>),
    /// Issue a sector CA certificate for the request a sector operator made
    /// with `trustca sector init` (name constraints and trust-level
    /// extension from the sector's profile in DIR/policies/sectors/), keep
    /// it in DIR/ca/<sector>.pem and re-issue the ARL.
    SignSector(Box<SignSectorArgs>),
    /// Revoke a sector CA (offline) and re-issue the ARL; give the new
    /// DIR/crl/root.crl to every instance (`trustca sector import`).
    RevokeSector(Box<crate::ca_cmd::RevokeCaArgs>),
    /// Re-issue the ARL now (before its nextUpdate, 30 days after issue),
    /// from the root's record of what it revoked.
    Arl(Box<StepArgs>),
    /// The signed list of foreign roots this root recognises (offline).
    TrustList {
        #[command(subcommand)]
        action: crate::trust_list_cmd::TrustListAction,
    },
}

/// `trustca sector ...` (on the sector operator's machine).
#[derive(Debug, Subcommand)]
pub enum SectorAction {
    /// Make this sector's CA key in DIR (encrypted under the passphrase, or
    /// in a PKCS#11 token) and the request for the root, DIR/ca/<sector>.csr.
    /// Prints the request's SHA-256 to compare at the root.
    Init(Box<SectorInitArgs>),
    /// Install the sector CA certificate the root issued: it must be for
    /// DIR's key and sector and chain to the root certificate given (its
    /// SHA-256 is printed: compare it with the root operator's). Then makes
    /// DIR's own TLS, trust responder and audit signer keys and
    /// certificates (issued by the sector CA) and its record-seal key.
    Install(Box<SectorInstallArgs>),
    /// Import what the root publishes: other sectors' CA certificates
    /// (public; each must chain to DIR's root) and the root's ARL (signed by
    /// the root, newer than the one held). A running server picks up a
    /// sector CA's revocation within seconds.
    Import(Box<SectorImportArgs>),
    /// Make this sector's next CA key (a rollover, before the current CA
    /// expires) and its request, DIR/ca/<sector>.<n>.csr, for `trustca root
    /// sign-sector --rollover`; install the answer with `sector install`.
    /// The new CA issues from then on; the old one keeps publishing its CRL
    /// until its certificate expires.
    Rollover(Box<StepArgs>),
}

/// What every key-ceremony step but `sector import` takes.
#[derive(Debug, Args)]
pub struct StepArgs {
    /// The directory: the root's for `root ...`, this sector's for `sector ...`.
    #[arg(long, env = "TRUSTCA_DATA")]
    pub data: PathBuf,
    #[command(flatten)]
    pub pass: PassphraseArgs,
    #[command(flatten)]
    pub pkcs11: Pkcs11Args,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca root init`.
#[derive(Debug, Args)]
pub struct RootInitArgs {
    /// The root's name, its subject's common name (e.g. "Example Energy
    /// Root CA 2026"). Required: roots of different operators meet in trust
    /// lists and must be told apart by name; pki.toml's default is refused.
    #[arg(long)]
    pub name: String,
    /// Policy directory (default: the built-in policies); copied into
    /// DIR/policies/, whose sectors/*.toml are the profiles the root signs.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    #[command(flatten)]
    pub step: StepArgs,
}

/// `trustca root sign-sector`.
#[derive(Debug, Args)]
pub struct SignSectorArgs {
    /// The sector's request (PEM or DER), from `trustca sector init`.
    pub csr: PathBuf,
    /// Where to write the sector CA certificate (PEM; never overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// The request is a sector's next CA, to run beside its current one
    /// (from `trustca sector rollover`): issued as the next generation
    /// (DIR/ca/<sector>.<n>.pem), with a new key.
    #[arg(long)]
    pub rollover: bool,
    #[command(flatten)]
    pub step: StepArgs,
}

/// `trustca sector init`.
#[derive(Debug, Args)]
pub struct SectorInitArgs {
    /// The sector (a file in the policies' sectors/, e.g. automotive).
    #[arg(long)]
    pub sector: String,
    /// Policy directory (default: the built-in policies); copied into
    /// DIR/policies/. Use the same set as the root.
    #[arg(long)]
    pub policies: Option<PathBuf>,
    #[command(flatten)]
    pub step: StepArgs,
}

/// `trustca sector install`.
#[derive(Debug, Args)]
pub struct SectorInstallArgs {
    /// The sector CA certificate the root issued (PEM or DER).
    pub cert: PathBuf,
    /// The root certificate (PEM or DER), from the root operator.
    #[arg(long)]
    pub root: PathBuf,
    /// Extra names for this instance's TLS certificate: IP addresses, or
    /// DNS names under <sector>.<trust_domain> (the sector CA's name
    /// constraint); loopback and <sector>.<trust_domain> are always in it.
    #[arg(long = "server-name")]
    pub server_names: Vec<String>,
    /// The store to make for this instance: DIR/db (the default) or a
    /// postgres:// URL (`serve` must then be given the same --store). It is
    /// made, sealed and checked here, so DIR is complete before it serves.
    #[arg(long, env = "TRUSTCA_STORE")]
    pub store: Option<trustca_server::StoreConfig>,
    #[command(flatten)]
    pub step: StepArgs,
}

/// `trustca sector import`.
#[derive(Debug, Args)]
pub struct SectorImportArgs {
    /// Sector CA certificates (PEM or DER) and the root's ARL (root.crl).
    #[arg(required_unless_present = "trust_list")]
    pub files: Vec<PathBuf>,
    /// A trust list from `trustca root trust-list issue`: signed by DIR's
    /// root, not past its nextUpdate, newer than the one held. Checked and
    /// imported before the files.
    #[arg(long = "trust-list")]
    pub trust_list: Option<PathBuf>,
    /// This sector's directory.
    #[arg(long, env = "TRUSTCA_DATA")]
    pub data: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca init` (without --role): the key ceremony's steps for every
/// sector in one directory ([`trustca_ca::CaHierarchy::init_with_token`]),
/// for trying trustca on one machine or for a deployment whose operators
/// share one CA.
pub fn init(
    data: PathBuf,
    policies: Option<&Path>,
    server_names: &[String],
    pass: &PassphraseArgs,
    pkcs11: &Pkcs11Args,
    json: bool,
) -> Result<ExitCode> {
    let passphrase = pass.load()?;
    let report = trustca_server::init_with(
        &data,
        policies,
        &passphrase,
        server_names,
        &pkcs11.options(),
    )?;
    if json {
        print_json(&json!({
            "data": data,
            "created_root": report.created_root,
            "created_sectors": report.created_sectors,
            "existing_sectors": report.existing_sectors,
            "created_v2x": report.created_v2x,
            "root": DataDir::new(&data).root_cert(),
        }));
    } else {
        if report.created_root {
            println!(
                "created root CA        {}",
                DataDir::new(&data).root_cert().display()
            );
        } else {
            println!(
                "root CA exists         {} (left unchanged)",
                DataDir::new(&data).root_cert().display()
            );
        }
        for s in &report.created_sectors {
            println!(
                "created sector CA      {}",
                DataDir::new(&data).ca().cert(s).display()
            );
        }
        for s in &report.existing_sectors {
            println!(
                "sector CA exists       {} (left unchanged)",
                DataDir::new(&data).ca().cert(s).display()
            );
        }
        for f in &report.created_v2x {
            println!(
                "created V2X (1609.2)   {}",
                DataDir::new(&data).ca().join(f).display()
            );
        }
        eprintln!("{}", crate::v2x_role_cmd::SINGLE_PROCESS_WARNING);
        match trustca_ca::TokenRecord::read(&data)? {
            Some(t) => println!(
                "CA keys are in PKCS#11 token {:?} (module {}) unless pki.toml says otherwise; other keys are encrypted under your passphrase in {}",
                t.token,
                t.module.display(),
                DataDir::new(&data).ca().display()
            ),
            None => println!(
                "keys are encrypted under your passphrase in {}",
                DataDir::new(&data).ca().display()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `trustca root ...`.
pub fn run_root(action: RootAction) -> Result<ExitCode> {
    match action {
        RootAction::Init(a) => root_init(*a),
        RootAction::SignSector(a) => sign_sector(*a),
        RootAction::RevokeSector(a) => crate::ca_cmd::revoke(*a),
        RootAction::Arl(a) => arl(*a),
        RootAction::TrustList { action } => crate::trust_list_cmd::run(action),
    }
}

/// Runs `trustca sector ...`.
pub fn run_sector(action: SectorAction) -> Result<ExitCode> {
    match action {
        SectorAction::Init(a) => sector_init(*a),
        SectorAction::Install(a) => install(*a),
        SectorAction::Import(a) => import(*a),
        SectorAction::Rollover(a) => rollover(*a),
    }
}

/// Resolves the policies and opens the token (as `init` does: the token
/// first, so a wrong PIN stops before anything is written), then copies
/// the policies into a new directory.
fn prepare_new(
    data: &Path,
    policies: Option<&Path>,
    pkcs11: &Pkcs11Args,
) -> Result<(trustca_model::PolicySet, Option<crate::pkcs11::OpenToken>)> {
    let (files, set) = crate::policies::resolve(policies, Some(data))?;
    let token = trustca_server::open_token(data, &set.pki, &pkcs11.options())?;
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    crate::policies::install(data, &files)?;
    Ok((set, token))
}

/// The policies and token of an existing directory.
pub(crate) fn prepare(
    data: &Path,
    pkcs11: &Pkcs11Args,
) -> Result<(
    trustca_model::PolicySet,
    Option<std::sync::Arc<trustca_ca::Pkcs11Token>>,
)> {
    let (_, set) = crate::policies::resolve(None, Some(data))?;
    let token = trustca_server::open_token(data, &set.pki, &pkcs11.options())?;
    Ok((set, token.map(|t| t.token)))
}

fn root_init(a: RootInitArgs) -> Result<ExitCode> {
    let passphrase = a.step.pass.load()?;
    let (set, token) = prepare_new(&a.step.data, a.policies.as_deref(), &a.step.pkcs11)?;
    let r = ceremony::root_init(
        &a.step.data,
        &set,
        &passphrase,
        token.as_ref().map(|t| (&t.token, t.module.as_path())),
        &a.name,
    )?;
    if a.step.json {
        print_json(&json!({
            "root": r.root_pem,
            "subject": r.subject,
            "root_sha256": r.root_sha256,
            "arl": r.arl,
        }));
    } else {
        println!("created root CA        {}", r.root_pem.display());
        println!("root subject           {}", r.subject);
        println!("root SHA-256           {}", r.root_sha256);
        println!("ARL                    {}", r.arl.display());
        println!(
            "keep {} offline; sign sector requests with `trustca root sign-sector`",
            a.step.data.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn sign_sector(a: SignSectorArgs) -> Result<ExitCode> {
    let passphrase = a.step.pass.load()?;
    let csr = std::fs::read(&a.csr).with_context(|| format!("cannot read {}", a.csr.display()))?;
    if a.out.exists() {
        anyhow::bail!("{} exists; refusing to overwrite it", a.out.display());
    }
    let (set, token) = prepare(&a.step.data, &a.step.pkcs11)?;
    let signed = ceremony::sign_sector(&a.step.data, &set, &passphrase, token, &csr, a.rollover)?;
    std::fs::write(&a.out, &signed.cert_pem)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    let arl = trustca_ca::root_crl::root_crl_path(&a.step.data);
    if a.step.json {
        print_json(&json!({
            "sector": signed.sector.as_str(),
            "generation": signed.generation,
            "ca": trustca_ca::rollover::ca_name(&signed.sector, signed.generation),
            "certificate": a.out,
            "arl": arl,
            "arl_number": signed.arl_number,
        }));
    } else {
        println!(
            "issued the {} CA certificate  {}",
            trustca_ca::rollover::ca_name(&signed.sector, signed.generation),
            a.out.display()
        );
        println!(
            "ARL #{} written to {}; give both, and {}, to the {} operator",
            signed.arl_number,
            arl.display(),
            DataDir::new(&a.step.data).root_cert().display(),
            signed.sector
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn arl(a: StepArgs) -> Result<ExitCode> {
    let passphrase = a.pass.load()?;
    let (set, token) = prepare(&a.data, &a.pkcs11)?;
    let number = ceremony::reissue_arl(&a.data, &set, &passphrase, token)?;
    let path = trustca_ca::root_crl::root_crl_path(&a.data);
    if a.json {
        print_json(&json!({ "arl": path, "arl_number": number }));
    } else {
        println!(
            "ARL #{number} written to {} (valid {} days); give it to every instance",
            path.display(),
            trustca_ca::root_crl::ROOT_CRL_VALIDITY_DAYS
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn sector_init(a: SectorInitArgs) -> Result<ExitCode> {
    let passphrase = a.step.pass.load()?;
    let (set, token) = prepare_new(&a.step.data, a.policies.as_deref(), &a.step.pkcs11)?;
    let r = ceremony::sector_init(
        &a.step.data,
        &set,
        &passphrase,
        &a.sector,
        token.as_ref().map(|t| (&t.token, t.module.as_path())),
    )?;
    if a.step.json {
        print_json(&json!({
            "sector": r.sector.as_str(),
            "csr": r.csr,
            "csr_sha256": r.csr_sha256,
        }));
    } else {
        println!(
            "created the {} CA key in {}",
            r.sector,
            DataDir::new(&a.step.data).ca().display()
        );
        println!("request for the root   {}", r.csr.display());
        println!("request SHA-256        {}", r.csr_sha256);
    }
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn install(a: SectorInstallArgs) -> Result<ExitCode> {
    let passphrase = a.step.pass.load()?;
    let (set, token) = prepare(&a.step.data, &a.step.pkcs11)?;
    // Refused before anything is written: a store already in place (unless
    // this is a rollover's certificate, for a directory installed before).
    let first = !DataDir::new(&a.step.data).root_cert().exists();
    if first {
        trustca_server::instance_store::check_new_store(&a.step.data, a.store.as_ref())?;
    }
    let r = ceremony::sector_install(
        &a.step.data,
        &set,
        &passphrase,
        token,
        &read(&a.cert)?,
        &read(&a.root)?,
        &a.server_names,
    )?;
    if r.generation > 1 {
        return installed_rollover(&a, &r);
    }
    let store = trustca_server::instance_store::create_instance_store(
        &a.step.data,
        a.store.as_ref(),
        &passphrase,
        &r.sector,
        &r.ca_der,
    )?;
    if a.step.json {
        print_json(&json!({
            "sector": r.sector.as_str(),
            "root_sha256": r.root_sha256,
            "data": a.step.data,
            "store": store.store,
            "audit_entries": store.entries,
        }));
    } else {
        println!(
            "installed the {} CA in {}",
            r.sector,
            DataDir::new(&a.step.data).ca().display()
        );
        println!(
            "root SHA-256           {} (compare it with the root operator's)",
            r.root_sha256
        );
        println!(
            "made the store         {} (sealed and checked; {} audit entry)",
            store.store, store.entries
        );
        println!(
            "next: `trustca sector import --data {} OTHER-SECTOR.pem ... root.crl`, then `trustca serve --data {}`",
            a.step.data.display(),
            a.step.data.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What `sector install` says about a rollover's certificate.
fn installed_rollover(a: &SectorInstallArgs, r: &ceremony::InstallReport) -> Result<ExitCode> {
    let name = trustca_ca::rollover::ca_name(&r.sector, r.generation);
    let path = DataDir::new(&a.step.data).ca().cert(&name);
    if a.step.json {
        print_json(&json!({
            "sector": r.sector.as_str(),
            "generation": r.generation,
            "ca": name,
            "certificate": path,
            "root_sha256": r.root_sha256,
        }));
    } else {
        println!("installed the {name} CA  {}", path.display());
        println!(
            "restart serve: it issues from {name} and keeps the older CA's CRL until that CA expires; give {name}.pem to every other instance (`trustca sector import`)"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn rollover(a: StepArgs) -> Result<ExitCode> {
    let passphrase = a.pass.load()?;
    let (set, token) = prepare(&a.data, &a.pkcs11)?;
    let r = trustca_ca::rollover::sector_rollover(&a.data, &set, &passphrase, token)?;
    if a.json {
        print_json(&json!({
            "sector": r.sector.as_str(),
            "generation": r.generation,
            "ca": r.name,
            "csr": r.csr,
            "csr_sha256": r.csr_sha256,
        }));
    } else {
        println!(
            "created the {} CA key (generation {}) in {}",
            r.name,
            r.generation,
            DataDir::new(&a.data).ca().display()
        );
        println!("request for the root   {}", r.csr.display());
        println!("request SHA-256        {}", r.csr_sha256);
        println!(
            "at the root: `trustca root sign-sector --rollover {}.csr ...`",
            r.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn import(a: SectorImportArgs) -> Result<ExitCode> {
    let (_, set) = crate::policies::resolve(None, Some(&a.data))?;
    if let Some(list) = &a.trust_list {
        crate::trust_list_cmd::import(&a.data, &set, list, a.json)?;
        if a.files.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let files = a
        .files
        .iter()
        .map(|p| Ok((p.display().to_string(), read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let r = ceremony::sector_import(&a.data, &set, &files)?;
    let sectors: Vec<&str> = r.sectors.iter().map(|s| s.as_str()).collect();
    if a.json {
        print_json(&json!({
            "sectors": sectors,
            "arl_number": r.arl_number,
            "revoked": r.revoked,
        }));
    } else {
        for s in &sectors {
            println!("imported the {s} CA certificate");
        }
        if let Some(n) = r.arl_number {
            println!("imported ARL #{n}");
        }
        for name in &r.revoked {
            println!("revoked by the root    {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
