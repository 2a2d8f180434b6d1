//! `trustca serve`: its flags (grouped under headings in `serve -h`), the
//! options they make for `trustca_server::start`, what it prints once it
//! listens (the next steps after a new CA), and the shutdown signal.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use trustca_datadir::DataDir;

use anyhow::{Result, bail};
use clap::Args;
use trustca_server::etsi::ceremony::EtsiRole;
use trustca_server::{self as server, ServeOptions, StoreConfig};

use crate::cli::{PassphraseArgs, parse_store};
use crate::pkcs11::Pkcs11Args;

/// `trustca serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (initialised automatically when it holds no CA).
    #[arg(
        long,
        env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR,
        help_heading = "Data directory and store"
    )]
    data: PathBuf,
    /// The store: a postgres:// URL, fjall:DIR (an embedded fjall store) or a sled directory (default: DATA/db).
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
    #[arg(long, env = "TRUSTCA_WEB_LISTEN", help_heading = "Listeners")]
    web_listen: Option<SocketAddr>,
    /// Also serve the EU C-ITS authorities (ETSI TS 102 941 EA, AA and
    /// CTL/CRL distribution centre) over plain HTTP on this address:
    /// http://ADDR/etsi/... (off unless given). With --etsi-role ea
    /// --etsi-dir DIR: the ceremony's EA. Without --etsi-role it needs
    /// --etsi-demo-root-online (one process with the ETSI root key online,
    /// made in DATA/etsi at first start: a try-out).
    #[arg(long, env = "TRUSTCA_ETSI_LISTEN", help_heading = "Listeners")]
    etsi_listen: Option<SocketAddr>,
    #[command(flatten, next_help_heading = "EU C-ITS (ETSI) authorities")]
    etsi: EtsiServeArgs,
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
}

/// Runs `trustca serve` until SIGTERM or Ctrl-C.
pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    let ServeArgs {
        data,
        store,
        listen,
        est_listen,
        web_listen,
        etsi_listen,
        etsi,
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
    } = args;
    let etsi_dir = match etsi.resolve(etsi_listen)? {
        EtsiMode::Alone(role, dir, listen) => {
            return run_etsi_alone(role, &dir, listen, policies.as_deref(), &pass).await;
        }
        EtsiMode::WithCa(dir) => dir,
    };
    let passphrase = pass.load()?;
    let (role, v2x_remote, v2x_batch, v2x_in_process, crl_refresh) = (*v2x).resolve()?;
    let fresh = !DataDir::new(&data).is_initialised();
    let shown = data.clone();
    let running = server::start(ServeOptions {
        data,
        store,
        listen,
        est_listen,
        web_listen,
        etsi_listen,
        etsi_dir,
        etsi_public_url: etsi.etsi_public_url,
        etsi_demo_root_online: etsi.etsi_demo_root_online,
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
        streams: trustca_model::limits::StreamLimits::default(),
        allow_damaged_store,
        seal_records: true,
        role,
        v2x_remote,
        v2x_batch,
        v2x_in_process,
        crl_refresh,
        trust_list_refresh: server::TRUST_LIST_REFRESH,
        federation_cache_ttl: server::FEDERATION_CACHE_TTL,
        tree_head_interval: server::TREE_HEAD_INTERVAL,
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
        if let Some(e) = running.etsi_addr {
            let _ = writeln!(out, "ETSI TS 102 941 on http://{e}/etsi/");
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

/// `serve --etsi-role aa|dc`: the authority alone, until SIGTERM or Ctrl-C.
async fn run_etsi_alone(
    role: EtsiRole,
    dir: &Path,
    listen: SocketAddr,
    policies: Option<&Path>,
    pass: &PassphraseArgs,
) -> Result<ExitCode> {
    // A distribution centre holds no key: it needs no passphrase.
    let passphrase = match role {
        EtsiRole::Dc => None,
        _ => Some(pass.load()?),
    };
    let running =
        server::etsi::roles::start(role, dir, listen, passphrase.as_ref(), policies).await?;
    println!(
        "ETSI TS 102 941 {} on http://{}/etsi/",
        role.as_str().to_uppercase(),
        running.addr
    );
    shutdown_signal().await;
    running.stop();
    Ok(ExitCode::SUCCESS)
}

/// `serve` options of the EU C-ITS authorities (`docs/v2x-etsi.md`).
#[derive(Debug, Clone, clap::Args)]
pub struct EtsiServeArgs {
    /// Run one ETSI authority from its own directory (--etsi-dir, made by
    /// `trustca etsi ea|aa|dc init`), holding only its keys: `ea` beside
    /// the CA (it reads the stations from the CA's store), `aa` or `dc`
    /// alone (no CA). Needs --etsi-listen.
    #[arg(long = "etsi-role", env = "TRUSTCA_ETSI_ROLE")]
    etsi_role: Option<String>,
    /// The authority's directory (with --etsi-role).
    #[arg(long = "etsi-dir", env = "TRUSTCA_ETSI_DIR")]
    etsi_dir: Option<PathBuf>,
    /// Without --etsi-role: the base URL (http://HOST[:PORT]) the CTL gives
    /// for the EA and AA, when stations reach them at another address than
    /// --etsi-listen (NAT, proxy, 0.0.0.0).
    #[arg(long = "etsi-public-url", env = "TRUSTCA_ETSI_PUBLIC_URL")]
    etsi_public_url: Option<String>,
    /// Without --etsi-role: run the ETSI root, EA, AA and distribution
    /// centre in this process, the root key online in DATA/etsi. A
    /// try-out only; a deployment keeps the root offline (trustca etsi root
    /// init, serve --etsi-role ea|aa|dc).
    #[arg(long = "etsi-demo-root-online", env = "TRUSTCA_ETSI_DEMO_ROOT_ONLINE")]
    etsi_demo_root_online: bool,
}

/// What the ETSI flags ask `serve` to run.
enum EtsiMode {
    /// An AA or DC alone: (role, directory, listen address).
    Alone(EtsiRole, PathBuf, SocketAddr),
    /// The CA, with the EA of this directory if given.
    WithCa(Option<PathBuf>),
}

impl EtsiServeArgs {
    fn resolve(&self, listen: Option<SocketAddr>) -> Result<EtsiMode> {
        let Some(role) = self.etsi_role.as_deref() else {
            if self.etsi_dir.is_some() {
                bail!("--etsi-dir goes with --etsi-role ea|aa|dc");
            }
            return Ok(EtsiMode::WithCa(None));
        };
        let role = EtsiRole::parse(role)?;
        if self.etsi_demo_root_online {
            bail!("--etsi-demo-root-online is for the all-in-one ETSI listener, not --etsi-role");
        }
        if self.etsi_public_url.is_some() {
            bail!(
                "--etsi-public-url is for the all-in-one ETSI listener; a separated authority's URL is the one it was certified with (trustca etsi ea|aa init --url)"
            );
        }
        let (Some(dir), Some(listen)) = (self.etsi_dir.clone(), listen) else {
            bail!("--etsi-role needs --etsi-dir DIR and --etsi-listen ADDR");
        };
        match role {
            EtsiRole::Ea => Ok(EtsiMode::WithCa(Some(dir))),
            EtsiRole::Root => {
                bail!("the ETSI root is not served: it stays offline (trustca etsi root ...)")
            }
            _ => Ok(EtsiMode::Alone(role, dir, listen)),
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

fn parse_peer(s: &str) -> Result<(String, String), String> {
    let (sector, url) = s
        .split_once('=')
        .ok_or("expected SECTOR=https://HOST:PORT")?;
    if sector.is_empty() || !url.starts_with("https://") {
        return Err("expected SECTOR=https://HOST:PORT".into());
    }
    Ok((sector.to_owned(), url.to_owned()))
}

type V2xSettings = (
    Option<server::v2x::V2xRole>,
    Option<server::v2x::RemoteAuthorities>,
    trustca_scms::BatchPolicy,
    bool,
    std::time::Duration,
);
