//! The `trustca` command line: argument definitions and what each command
//! does. Human-readable output by default, `--json` for scripts; errors are
//! one line and a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use trustca_ca::{CaHierarchy, Passphrase};
use trustca_model::extension::ExtensionOid;
use trustca_model::{CertificateKind, EvidenceItem, SectorName};

use crate::certinfo;
use crate::client::{ClientCredentials, connect};
use crate::pkcs11::Pkcs11Args;
use crate::policies;
use trustca_server::StoreConfig;

/// trustca — cross-industry device trust: sector CAs under one root,
/// trust levels in device certificates, enrollment over mutual-TLS gRPC.
#[derive(Debug, Parser)]
#[command(
    name = "trustca",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Rarely needed: --extension-oid OID ($TRUSTCA_EXTENSION_OID) reads certificates whose \
trust-level extension uses another OID (pki.toml [extensions] trust_level_oid) in commands \
without a data directory. Environment variables for every flag are in each command's --help."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TRUSTCA_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// The trust-level extension's OID, for commands that read certificates
    /// without a data directory (inspect, verify, verify-answer). Default: `[extensions] trust_level_oid` of the data
    /// directory's pki.toml where there is one, else the built-in default.
    #[arg(
        long,
        global = true,
        hide = true,
        env = "TRUSTCA_EXTENSION_OID",
        value_name = "OID"
    )]
    pub extension_oid: Option<ExtensionOid>,
    #[command(subcommand)]
    pub command: Command,
}

/// Where every command that works on a CA's data directory looks when
/// neither `--data` nor `$TRUSTCA_DATA` is given. The key ceremony's
/// `root` and `sector` commands have no default: they work on directories
/// of different operators, often on different machines.
pub const DEFAULT_DATA_DIR: &str = "trustca-data";

/// `--extension-oid` of this invocation, once set by [`run`].
static EXTENSION_OID_FLAG: std::sync::OnceLock<Option<ExtensionOid>> = std::sync::OnceLock::new();

/// The trust-level extension OID this invocation reads certificates with:
/// `--extension-oid` (or `$TRUSTCA_EXTENSION_OID`), else the default.
pub fn extension_oid() -> ExtensionOid {
    EXTENSION_OID_FLAG
        .get()
        .cloned()
        .flatten()
        .unwrap_or_default()
}

/// For commands on a data directory: `--extension-oid` if given, else the
/// OID in that directory's `policies/pki.toml`, else the default.
pub fn extension_oid_for(data: &Path) -> Result<ExtensionOid> {
    if let Some(Some(oid)) = EXTENSION_OID_FLAG.get() {
        return Ok(oid.clone());
    }
    let (_, set) = policies::resolve(None, Some(data))?;
    Ok(set.pki.extensions.trust_level_oid)
}

/// Log output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event.
    Json,
}

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// File holding the CA key passphrase (else $TRUSTCA_PASSPHRASE).
    #[arg(long, env = "TRUSTCA_PASSPHRASE_FILE")]
    passphrase_file: Option<PathBuf>,
}

impl PassphraseArgs {
    pub(crate) fn load(&self) -> Result<Passphrase> {
        let bytes = if let Some(f) = &self.passphrase_file {
            std::fs::read(f)
                .with_context(|| format!("cannot read passphrase file {}", f.display()))?
        } else if let Ok(p) = std::env::var("TRUSTCA_PASSPHRASE") {
            p.into_bytes()
        } else {
            bail!(
                "no passphrase: set TRUSTCA_PASSPHRASE or pass --passphrase-file (CA keys are never stored unencrypted)"
            );
        };
        let passphrase = Passphrase::new(bytes)?;
        Ok(match test_only_kdf_iterations()? {
            Some(iterations) => passphrase.with_test_only_kdf_iterations(iterations),
            None => passphrase,
        })
    }
}

/// The test kit's cheaper keystore KDF for the keystores this process
/// creates (`TRUSTCA_TEST_ONLY_KDF_ITERATIONS`): the end-to-end tests run
/// the key ceremony through this binary dozens of times, and at the
/// product's 600,000 PBKDF2 rounds per keystore opening that was most of
/// their CPU time. Unset, as operators leave it, keystores get the strong
/// setting; set, every creation says so in the log.
fn test_only_kdf_iterations() -> Result<Option<std::num::NonZeroU32>> {
    let Ok(text) = std::env::var("TRUSTCA_TEST_ONLY_KDF_ITERATIONS") else {
        return Ok(None);
    };
    let iterations: std::num::NonZeroU32 = text.parse().with_context(|| {
        format!("TRUSTCA_TEST_ONLY_KDF_ITERATIONS={text}: not a positive count")
    })?;
    tracing::warn!(
        iterations,
        "keystores created by this process use a test-only PBKDF2 cost (TRUSTCA_TEST_ONLY_KDF_ITERATIONS): never for real keys"
    );
    Ok(Some(iterations))
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Server address, e.g. https://127.0.0.1:7443.
    #[arg(long, env = "TRUSTCA_SERVER")]
    pub server: String,
    /// Your credential certificate chain (PEM, leaf first).
    #[arg(long, env = "TRUSTCA_IDENTITY")]
    pub identity: PathBuf,
    /// Your credential's private key (PEM).
    #[arg(long, env = "TRUSTCA_KEY")]
    pub key: PathBuf,
    /// The trustca root certificate (PEM).
    #[arg(long, env = "TRUSTCA_CA")]
    pub ca: PathBuf,
}

impl ClientArgs {
    /// Opens a mutual-TLS channel with these credentials.
    pub async fn channel(&self) -> Result<tonic::transport::Channel> {
        let creds = ClientCredentials::load(&self.identity, &self.key, &self.ca)?;
        Ok(connect(&self.server, &creds).await?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the root CA and one sub-CA per sector policy (never
    /// overwrites); with --role, one separated V2X authority's own
    /// directory instead (its keys made here, under its own passphrase).
    Init {
        /// Data directory.
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Make the directory of one separated V2X authority on its own
        /// machine: registration, pseudonym-ca, linkage-1 or linkage-2. It
        /// writes DATA/request.toml for `trustca v2x certify` at the CA.
        #[arg(long)]
        role: Option<String>,
        /// With --role: the authority's name (a DNS label, e.g. pca-1).
        #[arg(long, requires = "role")]
        name: Option<String>,
        /// Policy directory (default: the built-in policies).
        #[arg(long)]
        policies: Option<PathBuf>,
        /// Extra DNS names or IPs for the TLS server certificate.
        #[arg(long = "server-name")]
        server_names: Vec<String>,
        #[command(flatten)]
        pass: PassphraseArgs,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run every service (enrollment, health, reflection) on one mutual-TLS port.
    Serve(Box<crate::serve_cmd::ServeArgs>),
    /// Ask the trust database whether to cooperate with a peer device (exit 0 allowed, 3 denied).
    Query(Box<crate::trust_cmd::QueryArgs>),
    /// The model registry: register models and firmware releases
    /// (manufacturer), evaluate and withdraw (certification body), suspend
    /// (operator), show and list (anyone authenticated).
    Model {
        #[command(subcommand)]
        action: crate::model_cmd::ModelAction,
    },
    /// TPM manufacturer roots per sector for attested enrollment
    /// (docs/attestation.md): add and remove (operator), list (operator,
    /// auditor).
    AttestationRoot {
        #[command(subcommand)]
        action: crate::attestation_cmd::AttestationRootAction,
    },
    /// Systems of linked devices: register (operator), link and unlink
    /// (operator, or a device taking part), show and evaluate each member's
    /// effective level and the combined level (members, operators,
    /// auditors).
    System {
        #[command(subcommand)]
        action: crate::system_cmd::SystemAction,
    },
    /// The separated V2X authorities: certify, import and export when
    /// setting them up (each on its own machine); revoke a vehicle's
    /// authorization tickets from a period on, or resolve a ticket to its
    /// vehicle with all four authorities (operator).
    V2x {
        #[command(subcommand)]
        action: crate::v2x_cmd::V2xAction,
    },
    /// Signed trust snapshots for offline decisions: fetch, verify, decide.
    Snapshot {
        #[command(subcommand)]
        action: crate::snapshot_cmd::SnapshotAction,
    },
    /// Operator changes to live trust, and record history.
    Trust {
        #[command(subcommand)]
        action: crate::trust_cmd::TrustAction,
    },
    /// Report an anomaly about a device (gateway / SOC credential).
    Anomaly(Box<crate::trust_cmd::AnomalyArgs>),
    /// Revoke a certificate, or every certificate of a device (operator).
    Revoke(Box<crate::trust_cmd::RevokeArgs>),
    /// Partial revocation: withdraw a capability (reissue narrower, revoke the old).
    Restrict(Box<crate::trust_cmd::RestrictArgs>),
    /// Fetch the current CRL of a sector, or the root's (`--sector root`), DER.
    Crl(Box<crate::trust_cmd::CrlArgs>),
    /// The offline root of the key ceremony (see `trustca sector`).
    Root {
        #[command(subcommand)]
        action: crate::ceremony_cmd::RootAction,
    },
    /// A sector operator's CA: key and request, install, imports.
    Sector {
        #[command(subcommand)]
        action: crate::ceremony_cmd::SectorAction,
    },
    /// Root operations on the data directory (offline, with the passphrase).
    Ca {
        #[command(subcommand)]
        action: crate::ca_cmd::CaAction,
    },
    /// V2X pseudonyms (IEEE 1609.2 authorization tickets): the vehicle's
    /// pool, the linkage CRL and checks against it.
    Pseudonym {
        #[command(subcommand)]
        action: crate::pseudonym_cmd::PseudonymAction,
    },
    /// The web front end: a one-time console login link, a device's label.
    Web {
        #[command(subcommand)]
        action: crate::web_cmd::WebAction,
    },
    /// Auditor tools on a data directory (or a copy): verify, prove, list, report.
    Audit {
        #[command(subcommand)]
        action: crate::audit_cmd::AuditAction,
    },
    /// EU C-ITS (ETSI TS 102 941): the key ceremony (root, EA, AA, DC) and a station's canonical key.
    Etsi {
        #[command(subcommand)]
        action: crate::etsi_cmd::EtsiAction,
    },
    /// Move a deployment between stores (sled to PostgreSQL) and inspect one.
    Store {
        #[command(subcommand)]
        action: crate::store_cmd::StoreAction,
    },
    /// Verify a saved signed trust answer offline (exit 0 valid, 1 otherwise).
    VerifyAnswer {
        /// Answer file written by `trustca query --save-answer`.
        file: PathBuf,
        /// The trustca root certificate.
        #[arg(long)]
        root: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manufacturer credentials.
    Manufacturer {
        #[command(subcommand)]
        action: CredentialAction,
    },
    /// Operator credentials (change trust, revoke).
    Operator {
        #[command(subcommand)]
        action: CredentialAction,
    },
    /// Auditor credentials (read-only).
    Auditor {
        #[command(subcommand)]
        action: CredentialAction,
    },
    /// Gateway / SOC credentials (report anomalies).
    Gateway {
        #[command(subcommand)]
        action: CredentialAction,
    },
    /// Certification-body credentials (register and withdraw model
    /// evaluations under the schemes named with --scheme).
    CertificationBody {
        #[command(subcommand)]
        action: CredentialAction,
    },
    /// Enroll one device: send its CSR and attributes, receive its certificate chain.
    Enroll(Box<crate::enroll_cmd::EnrollArgs>),
    /// Show a certificate's fields and its decoded trust-level extension.
    Inspect {
        /// Certificate file (PEM or DER X.509, the first certificate is
        /// shown; or an IEEE 1609.2 certificate in COER, e.g. ca/v2x-root.oer).
        cert: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a certificate up to the root (exit 0 valid, 1 with the reason otherwise).
    Verify {
        /// Certificate (PEM; may hold the chain, leaf first).
        cert: PathBuf,
        /// The trustca root certificate.
        #[arg(long)]
        root: PathBuf,
        /// Extra intermediate certificates (PEM).
        #[arg(long)]
        chain: Option<PathBuf>,
        /// Check revocation against these CRL files (DER or PEM; repeatable:
        /// the sector CRL, and `root.crl` to check the sector CA too).
        #[arg(long = "crl", conflicts_with = "server")]
        crls: Vec<PathBuf>,
        /// Check revocation with CRLs fetched from this server's public
        /// GetCrl (no client credential needed).
        #[arg(long)]
        server: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate policy files (exit non-zero with file, line and reason).
    Policy {
        #[command(subcommand)]
        action: PolicyAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Check a policy directory (pki.toml and sectors/*.toml).
    Check {
        /// Directory to check.
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialAction {
    /// Issue a credential: writes OUT/cert.pem (leaf then sub-CA) and OUT/key.pem.
    Add {
        /// Data directory of the CA.
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Holder's name (for manufacturers: the name devices are enrolled under).
        #[arg(long)]
        name: String,
        /// Sectors the holder may act for, comma-separated (default for
        /// operators, auditors and gateways: every sector).
        #[arg(long, value_delimiter = ',')]
        sector: Vec<String>,
        /// Certification bodies only (required for them): the evaluation
        /// schemes the body may register, comma-separated; each must be a
        /// scheme of a listed sector (e.g. iso-sae-21434).
        #[arg(long, value_delimiter = ',')]
        scheme: Vec<String>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        pass: PassphraseArgs,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `--store`: a postgres:// URL, fjall:DIR or a sled directory.
pub fn parse_store(s: &str) -> Result<StoreConfig, String> {
    s.parse()
        .map_err(|e: trustca_server::ServerError| e.to_string())
}

/// Prints pretty JSON on stdout.
pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    let _ = EXTENSION_OID_FLAG.set(cli.extension_oid.clone());
    match cli.command {
        Command::Init {
            data,
            role: Some(role),
            name,
            policies,
            server_names,
            pass,
            json,
            ..
        } => crate::v2x_role_cmd::init(crate::v2x_role_cmd::RoleInitArgs {
            data,
            role,
            name,
            policies,
            server_names,
            passphrase: pass.load()?,
            json,
        }),
        Command::Init {
            data,
            role: None,
            policies,
            server_names,
            pass,
            pkcs11,
            json,
            ..
        } => crate::ceremony_cmd::init(
            data,
            policies.as_deref(),
            &server_names,
            &pass,
            &pkcs11,
            json,
        ),
        Command::Serve(args) => crate::serve_cmd::run(*args).await,
        Command::Manufacturer { action } => credential(CertificateKind::Manufacturer, action),
        Command::Operator { action } => credential(CertificateKind::Operator, action),
        Command::Auditor { action } => credential(CertificateKind::Auditor, action),
        Command::Gateway { action } => credential(CertificateKind::Gateway, action),
        Command::CertificationBody { action } => {
            credential(CertificateKind::CertificationBody, action)
        }
        Command::Enroll(args) => crate::enroll_cmd::run(*args).await,
        Command::Query(args) => crate::trust_cmd::query(*args).await,
        Command::Audit { action } => crate::audit_cmd::run(action),
        Command::Web { action } => crate::web_cmd::run(action).await,
        Command::Store { action } => crate::store_cmd::run(action),
        Command::Etsi { action } => crate::etsi_cmd::run(action).await,
        Command::Pseudonym { action } => crate::pseudonym_cmd::run(action).await,
        Command::Revoke(args) => crate::trust_cmd::revoke(*args).await,
        Command::Restrict(args) => crate::trust_cmd::restrict(*args).await,
        Command::Anomaly(args) => crate::trust_cmd::anomaly(*args).await,
        Command::Crl(args) => crate::trust_cmd::crl(*args).await,
        Command::Ca { action } => crate::ca_cmd::run(action),
        Command::Root { action } => crate::ceremony_cmd::run_root(action),
        Command::Sector { action } => crate::ceremony_cmd::run_sector(action),
        Command::Trust { action } => crate::trust_cmd::trust(action).await,
        Command::Model { action } => crate::model_cmd::model(action).await,
        Command::AttestationRoot { action } => crate::attestation_cmd::run(action).await,
        Command::System { action } => crate::system_cmd::system(action).await,
        Command::Snapshot { action } => crate::snapshot_cmd::snapshot(action).await,
        Command::V2x { action } => crate::v2x_cmd::run(action).await,
        Command::VerifyAnswer { file, root, json } => {
            crate::trust_cmd::verify_answer(&file, &root, json)
        }
        Command::Inspect { cert, json } => {
            if let Some(v) = crate::v2x_inspect::try_inspect(&cert)? {
                if json {
                    print_json(&v);
                } else {
                    print!("{}", crate::v2x_inspect::inspect_text(&v));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let certs = certinfo::read_certs(&cert)?;
            let v = certinfo::inspect(&certs[0]).with_context(|| cert.display().to_string())?;
            if json {
                print_json(&v);
            } else {
                print!("{}", certinfo::inspect_text(&v));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            cert,
            root,
            chain,
            crls,
            server,
            json,
        } => {
            crate::verify_cmd::run(crate::verify_cmd::VerifyRequest {
                cert,
                root,
                chain,
                crls,
                server,
                json,
            })
            .await
        }
        Command::Policy {
            action: PolicyAction::Check { dir },
        } => {
            let files = policies::read_dir(&dir)?;
            let set = policies::parse(&files, &format!("{}/", dir.display()))?;
            println!(
                "OK: {} sector(s): {}",
                set.sectors.len(),
                set.sectors
                    .values()
                    .map(|s| format!("{} ({})", s.sector, s.version))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn credential(kind: CertificateKind, action: CredentialAction) -> Result<ExitCode> {
    let CredentialAction::Add {
        data,
        name,
        sector,
        scheme,
        out,
        pass,
        pkcs11,
        json,
    } = action;
    let passphrase = pass.load()?;
    let (_, set) = policies::resolve(None, Some(&data))?;
    let sectors: Vec<SectorName> = if sector.is_empty() {
        if kind == CertificateKind::Manufacturer {
            bail!("--sector is required for manufacturers (the sectors it may enroll devices for)");
        }
        if kind == CertificateKind::CertificationBody {
            bail!(
                "--sector is required for certification bodies (the sectors whose models it evaluates)"
            );
        }
        set.sectors.keys().cloned().collect()
    } else {
        sector
            .iter()
            .map(|s| set.sector(s.trim()).map(|p| p.sector.clone()))
            .collect::<Result<_, _>>()?
    };
    let token = trustca_server::open_token(&data, &set.pki, &pkcs11.options())?;
    let hierarchy = CaHierarchy::open_with_token(&data, &set, &passphrase, token.map(|t| t.token))?;
    if out.join("cert.pem").exists() || out.join("key.pem").exists() {
        bail!(
            "{} already holds a credential; refusing to overwrite it",
            out.display()
        );
    }
    let issued = hierarchy.issue_credential(&set, kind, &name, &sectors, &scheme)?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(out.join("cert.pem"), &issued.chain_pem).context("cannot write cert.pem")?;
    write_private(&out.join("key.pem"), issued.key_pem.as_bytes())?;
    if json {
        print_json(&json!({
            "kind": kind.as_str(),
            "name": name,
            "sectors": sectors.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "serial": issued.serial,
            "cert": out.join("cert.pem"),
            "key": out.join("key.pem"),
        }));
    } else {
        println!(
            "issued {} credential for {name} (sectors: {}), serial {}",
            kind.as_str(),
            sectors
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            issued.serial
        );
        println!("  {}", out.join("cert.pem").display());
        println!(
            "  {}  (private key: keep it safe)",
            out.join("key.pem").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a private key readable by the owner only, never replacing a file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {} (exists?)", path.display()))?;
    // On disk before anything depends on it (enroll sends the CSR next).
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Reads an evidence file: TOML `[[evidence]]` tables or JSON (a list, or
/// an object with an `evidence` list).
pub fn read_evidence(path: &Path) -> Result<Vec<EvidenceItem>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        evidence: Vec<EvidenceItem>,
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "json") {
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: invalid JSON", path.display()))?;
        let list = if v.is_array() {
            v
        } else {
            v.get("evidence")
                .cloned()
                .unwrap_or(serde_json::Value::Null)
        };
        serde_json::from_value(list)
            .with_context(|| format!("{}: expected a list of evidence items", path.display()))
    } else {
        let f: File = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))?;
        Ok(f.evidence)
    }
}

/// Generates a device key and a CSR for it (the CSR carries nothing the CA
/// uses but the key and its proof of possession).
pub fn generate_key_and_csr(algorithm: &str, common_name: &str) -> Result<(String, Vec<u8>)> {
    let alg = match algorithm {
        "ecdsa-p384" => &rcgen::PKCS_ECDSA_P384_SHA384,
        "ed25519" => &rcgen::PKCS_ED25519,
        _ => &rcgen::PKCS_ECDSA_P256_SHA256,
    };
    let key = rcgen::KeyPair::generate_for(alg)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.der().to_vec()))
}
