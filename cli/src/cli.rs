//! The `trustca` command line: argument definitions and what each command
//! does. Human-readable output by default, `--json` for scripts; errors are
//! one line and a non-zero exit.

use std::net::SocketAddr;
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
use trustca_server::{self as server, ServeOptions, StoreConfig};

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

/// How many connections `serve` holds and how long idle ones live.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Connections held at once (TLS handshakes included). When full, the
    /// longest-idle connection is closed to admit a new one. Default: what
    /// the descriptor limit allows (the soft limit is raised at start), at
    /// most 10,000.
    #[arg(long, env = "TRUSTCA_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,
    /// Seconds a connection may stay without a request in flight before it
    /// is closed (clients reconnect transparently).
    #[arg(long, env = "TRUSTCA_IDLE_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    idle_timeout: u64,
    /// Seconds allowed between the TLS handshake and the first request.
    #[arg(long, env = "TRUSTCA_FIRST_REQUEST_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    first_request_timeout: u64,
}

impl ConnectionArgs {
    fn limits(&self) -> trustca_server::ConnectionLimits {
        trustca_server::ConnectionLimits {
            max_connections: self
                .max_connections
                .map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout),
            first_request_timeout: std::time::Duration::from_secs(self.first_request_timeout),
            ..trustca_server::ConnectionLimits::default()
        }
    }
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
        Ok(Passphrase::new(bytes)?)
    }
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
        connect(&self.server, &creds).await
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
    Serve {
        /// Data directory (initialised automatically when it holds no CA).
        #[arg(
            long,
            env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR,
            help_heading = "Data directory and store"
        )]
        data: PathBuf,
        /// The store: a postgres:// URL or a sled directory (default: DATA/db).
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store, help_heading = "Data directory and store")]
        store: Option<StoreConfig>,
        /// Address to listen on.
        #[arg(
            long,
            env = "TRUSTCA_LISTEN",
            default_value = "127.0.0.1:7443",
            help_heading = "Listeners"
        )]
        listen: SocketAddr,
        /// Also serve EST (RFC 7030) over HTTPS on this address, with the
        /// same TLS identity: https://ADDR/.well-known/est/<sector>/... (off unless given).
        #[arg(long, env = "TRUSTCA_EST_LISTEN", help_heading = "Listeners")]
        est_listen: Option<SocketAddr>,
        /// Also serve the web front end over HTTPS on this address: public
        /// label pages with QR codes and the operator console (off unless
        /// given; docs/web.md).
        #[arg(long, env = "TRUSTCA_WEB_LISTEN")]
        web_listen: Option<SocketAddr>,
        /// Also serve the EU C-ITS authorities (ETSI TS 102 941 EA, AA and
        /// CTL/CRL distribution centre) over plain HTTP on this address:
        /// http://ADDR/etsi/... (off unless given; keys made in DATA/etsi at first start).
        #[arg(long, env = "TRUSTCA_ETSI_LISTEN", help_heading = "Listeners")]
        etsi_listen: Option<SocketAddr>,
        /// Policy directory overriding the data directory's copy.
        #[arg(long, help_heading = "Data directory and store")]
        policies: Option<PathBuf>,
        /// Extra DNS names or IPs for the TLS server certificate (on first start).
        #[arg(long = "server-name", help_heading = "Data directory and store")]
        server_names: Vec<String>,
        /// Sectors this instance answers for and enrolls devices of (default: every sector whose CA key DATA holds).
        #[arg(
            long,
            value_delimiter = ',',
            env = "TRUSTCA_AUTHORITATIVE",
            help_heading = "Sectors and federation"
        )]
        authoritative: Vec<String>,
        /// Trust database of another sector, as SECTOR=https://HOST:PORT (repeatable).
        #[arg(long = "peer", value_parser = parse_peer, help_heading = "Sectors and federation")]
        peers: Vec<(String, String)>,
        /// POST anomaly notifications to this http:// URL (they are always
        /// appended to DATA/notifications.jsonl).
        #[arg(long, env = "TRUSTCA_NOTIFY_WEBHOOK", help_heading = "Operation")]
        notify_webhook: Option<String>,
        /// Serve Prometheus metrics over plain HTTP at http://ADDR/metrics
        /// (e.g. 127.0.0.1:9464; off unless given).
        #[arg(long, env = "TRUSTCA_METRICS", help_heading = "Listeners")]
        metrics: Option<SocketAddr>,
        /// Seconds in-flight calls may run after SIGTERM before every
        /// connection is closed (then a last audit tree head is signed).
        #[arg(long, env = "TRUSTCA_SHUTDOWN_GRACE", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600), help_heading = "Operation")]
        shutdown_grace: u64,
        #[command(flatten, next_help_heading = "Connections")]
        connections: ConnectionArgs,
        /// Start even if the store's audit log does not verify, serving
        /// reads only (every write is refused) so that records can be
        /// read out and checked; see `trustca store check`.
        #[arg(long, env = "TRUSTCA_ALLOW_DAMAGED_STORE", help_heading = "Operation")]
        allow_damaged_store: bool,
        #[command(flatten, next_help_heading = "V2X authorities")]
        v2x: Box<V2xServeArgs>,
        #[command(flatten, next_help_heading = "CA keys")]
        pass: PassphraseArgs,
        #[command(flatten, next_help_heading = "CA keys")]
        pkcs11: Pkcs11Args,
    },
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
    /// EU C-ITS (ETSI TS 102 941) tools: register a station's canonical key.
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

/// `--store`: a postgres:// URL or a sled directory.
pub fn parse_store(s: &str) -> Result<StoreConfig, String> {
    s.parse()
        .map_err(|e: trustca_server::ServerError| e.to_string())
}

fn parse_peer(s: &str) -> Result<(String, String), String> {
    let (sector, url) = s
        .split_once('=')
        .ok_or("expected SECTOR=https://HOST:PORT")?;
    if sector.is_empty() || !url.starts_with("https://") {
        return Err("expected SECTOR=https://HOST:PORT".into());
    }
    Ok((sector.to_owned(), url.to_owned()))
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
        Command::Serve {
            data,
            store,
            listen,
            est_listen,
            web_listen,
            etsi_listen,
            policies,
            server_names,
            authoritative,
            peers,
            notify_webhook,
            metrics,
            shutdown_grace,
            connections,
            allow_damaged_store,
            v2x,
            pass,
            pkcs11,
        } => {
            let passphrase = pass.load()?;
            let (role, v2x_remote, v2x_batch, v2x_in_process, crl_refresh) = (*v2x).resolve()?;
            let fresh = !data.join("ca").join("root.pem").exists();
            let shown = data.clone();
            let running = server::start(ServeOptions {
                data,
                store,
                listen,
                est_listen,
                web_listen,
                etsi_listen,
                policies,
                passphrase,
                server_names,
                authoritative,
                peers,
                notify_webhook,
                pkcs11: pkcs11.options(),
                metrics,
                shutdown_grace: std::time::Duration::from_secs(shutdown_grace),
                connections: connections.limits(),
                allow_damaged_store,
                seal_records: true,
                role,
                v2x_remote,
                v2x_batch,
                v2x_in_process,
                crl_refresh,
            })
            .await?;
            println!("listening on {}", running.addr);
            // More lines only after the address line, which scripts read
            // first; a reader that stopped reading must not stop the server.
            {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                if let Some(m) = running.metrics_addr {
                    let _ = writeln!(out, "metrics on http://{m}/metrics");
                }
                if let Some(e) = running.est_addr {
                    let _ = writeln!(out, "EST on https://{e}/.well-known/est/");
                }
                if let Some(w) = running.web_addr {
                    let _ = writeln!(out, "web on https://{w}/");
                }
                if fresh {
                    let _ = out.write_all(first_steps(&shown, running.addr).as_bytes());
                }
                let _ = out.flush();
            }
            let addr = running.addr;
            // On SIGTERM / Ctrl-C: stop accepting, finish in-flight calls,
            // sign a last audit tree head, close the store.
            running
                .run_until(async {
                    shutdown_signal().await;
                    tracing::info!(%addr, "shutting down");
                })
                .await?;
            Ok(ExitCode::SUCCESS)
        }
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
        Command::Etsi { action } => crate::etsi_cmd::run(action),
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

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
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

/// What `serve` prints after it made a new CA: where things are and the
/// next commands to paste (in another shell, with the same passphrase).
fn first_steps(data: &Path, addr: SocketAddr) -> String {
    let d = data.display();
    let t = runnable_name();
    let server = match addr.ip() {
        ip if ip.is_unspecified() => format!("https://127.0.0.1:{}", addr.port()),
        _ => format!("https://{addr}"),
    };
    format!(
        "\
initialised a new CA in {d}
  root certificate      {d}/ca/root.pem   (clients trust it: --ca)
  CA and service keys   {d}/ca/*.key, encrypted under your passphrase
  policies              {d}/policies/
  store                 {d}/db/
next steps, in another shell with the same TRUSTCA_PASSPHRASE:
  {t} manufacturer add --data {d} --name Acme --sector automotive,hems --out ./acme
  {t} operator add --data {d} --name ops --out ./ops
  {t} enroll --server {server} --identity ./acme/cert.pem --key ./acme/key.pem \\
      --ca {d}/ca/root.pem --sector automotive --manufacturer Acme --model EV-200 \\
      --serial SN0001 --firmware 1.0.0 --evidence evidence.toml \\
      --generate-key device.key --out device.pem
  (evidence.toml and the rest of the walkthrough: README.md, Quick start)
"
    )
}

/// How to run this very binary from the current directory: `trustca` when
/// that name on `PATH` is this executable, else its path (e.g.
/// `target/release/trustca` after `cargo build --release`), so the printed
/// commands work when pasted.
fn runnable_name() -> String {
    let Ok(exe) = std::env::current_exe().and_then(|p| p.canonicalize()) else {
        return "trustca".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .filter_map(|dir| dir.join("trustca").canonicalize().ok())
            .next()
            .is_some_and(|found| found == exe)
    });
    if on_path {
        return "trustca".into();
    }
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| exe.strip_prefix(cwd).ok().map(Path::to_path_buf));
    match relative {
        Some(r) => r.display().to_string(),
        None => exe.display().to_string(),
    }
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

/// `serve` options of the separated V2X authorities (issue 8).
#[derive(Debug, clap::Args)]
pub struct V2xServeArgs {
    /// Run one separated V2X authority (registration, pseudonym-ca,
    /// linkage-1 or linkage-2) from its own directory, made by `init
    /// --role` and holding only its own keys. Without it, `serve` runs
    /// everything, the four authorities in-process: separate stores, but
    /// their keys under one directory and passphrase (no separation).
    #[arg(long, env = "TRUSTCA_ROLE")]
    role: Option<String>,
    /// With --role registration: the pseudonym CA's URL (https://HOST:PORT).
    #[arg(long = "pseudonym-ca", env = "TRUSTCA_PSEUDONYM_CA")]
    pseudonym_ca: Option<String>,
    /// With --role registration: linkage authority 1's URL.
    #[arg(long = "linkage-1", env = "TRUSTCA_LINKAGE_1")]
    linkage_1: Option<String>,
    /// With --role registration: linkage authority 2's URL.
    #[arg(long = "linkage-2", env = "TRUSTCA_LINKAGE_2")]
    linkage_2: Option<String>,
    /// The registration authority sends a batch to the pseudonym CA once
    /// requests of this many vehicles wait (they are shuffled together)...
    #[arg(long = "v2x-min-vehicles", env = "TRUSTCA_V2X_MIN_VEHICLES", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    min_vehicles: u64,
    /// ... or once the oldest request waited this many seconds (fewer
    /// vehicles then share the batch: less cover, less delay).
    #[arg(long = "v2x-max-wait", env = "TRUSTCA_V2X_MAX_WAIT", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    max_wait: u64,
    /// Do not run the V2X authorities in this CA process (they run as
    /// `serve --role` processes elsewhere).
    #[arg(long = "no-v2x", env = "TRUSTCA_NO_V2X")]
    no_v2x: bool,
    /// With --role: seconds between re-reads of DATA/crl/*.crl, whose
    /// revoked callers the role refuses (keep the CA's CRLs synced there).
    #[arg(long = "crl-refresh", env = "TRUSTCA_CRL_REFRESH", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    crl_refresh: u64,
}

type V2xSettings = (
    Option<server::v2x::V2xRole>,
    Option<server::v2x::RemoteAuthorities>,
    trustca_scms::BatchPolicy,
    bool,
    std::time::Duration,
);

impl V2xServeArgs {
    fn resolve(self) -> Result<V2xSettings> {
        let role = self
            .role
            .as_deref()
            .map(server::v2x::V2xRole::parse)
            .transpose()?;
        let batch = trustca_scms::BatchPolicy {
            min_vehicles: self.min_vehicles as usize,
            max_wait_secs: self.max_wait as i64,
            ..trustca_scms::BatchPolicy::default()
        };
        let remote = match role {
            Some(server::v2x::V2xRole::Registration) => {
                let need = |v: Option<String>, flag: &str| {
                    v.ok_or_else(|| anyhow::anyhow!("--role registration needs {flag}"))
                };
                Some(server::v2x::RemoteAuthorities {
                    pseudonym_ca: need(self.pseudonym_ca, "--pseudonym-ca URL")?,
                    linkage: [
                        need(self.linkage_1, "--linkage-1 URL")?,
                        need(self.linkage_2, "--linkage-2 URL")?,
                    ],
                })
            }
            _ => {
                if self.pseudonym_ca.is_some()
                    || self.linkage_1.is_some()
                    || self.linkage_2.is_some()
                {
                    bail!(
                        "--pseudonym-ca, --linkage-1 and --linkage-2 are for --role registration"
                    );
                }
                None
            }
        };
        Ok((
            role,
            remote,
            batch,
            !self.no_v2x,
            std::time::Duration::from_secs(self.crl_refresh),
        ))
    }
}
