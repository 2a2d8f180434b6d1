//! `trustca serve`: one process hosting every service on one mutual-TLS
//! port over one durable store. This is the composition root: [`start`]
//! binds the sockets (`crate::listeners`), loads the policies once
//! (`crate::loaded_policies`), builds the engines once
//! (`crate::engines`), serves the roles — the CA's gRPC services
//! (`crate::ca_role`), a separated V2X authority (`crate::role_start`),
//! the HTTP front ends (`crate::front_ends`) — and starts the background
//! tasks (`crate::background`), all under one cancellation token, so
//! [`RunningServer::shutdown`] is the one way everything stops.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use trustca_ca::{CaHierarchy, InitReport, Passphrase};
use trustca_datadir::DataDir;
use trustca_model::limits::StreamLimits;

use crate::connections::ConnectionLimits;
use crate::engines::Engines;
use crate::error::{Result, ServerError, io};
use crate::listeners::Listeners;
use crate::loaded_policies::Policies;
use crate::metrics::Metrics;
use crate::pkcs11::{Pkcs11Options, open_token};
use crate::policies;
use crate::role_start::{Accepting, accept_on, start_role};
use crate::store::StoreConfig;

pub use crate::tree_heads::{TREE_HEAD_INTERVAL, TreeHeadSigner};

/// How often the trust list in force and the foreign CRLs are read again,
/// unless `ServeOptions::trust_list_refresh` says otherwise.
pub const TRUST_LIST_REFRESH: Duration = Duration::from_secs(5);

/// How long an answer forwarded from a peer database is reused, unless
/// `ServeOptions::federation_cache_ttl` says otherwise.
pub const FEDERATION_CACHE_TTL: Duration = Duration::from_secs(30);

/// Largest gRPC message accepted (an enrollment request is a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How to run the server.
#[derive(Debug)]
pub struct ServeOptions {
    /// Data directory.
    pub data: PathBuf,
    /// The store; `None` is the data directory's sled store (`DATA/db`).
    pub store: Option<StoreConfig>,
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where to serve EST (RFC 7030) over HTTPS with the same TLS identity;
    /// `None` serves none. Port 0 picks a free port.
    pub est_listen: Option<SocketAddr>,
    /// Where to serve the web front end (public label pages, the console)
    /// over HTTPS with the same TLS identity; `None` serves none.
    pub web_listen: Option<SocketAddr>,
    /// Where to serve the ETSI TS 102 941 EA, AA and distribution centre
    /// over plain HTTP (`crate::etsi::deploy`); `None` serves none.
    pub etsi_listen: Option<SocketAddr>,
    /// With `etsi_listen`: the enrolment authority's own directory
    /// (`trustca etsi ea init`), so that this process runs only the EA
    /// (`serve --etsi-role ea`); `None` runs root, EA, AA and distribution
    /// centre from `DATA/etsi` (one process, root key online).
    pub etsi_dir: Option<PathBuf>,
    /// The base URL the all-in-one CTL gives for the EA and AA
    /// (`http://HOST[:PORT]`); `None` uses the listen address.
    pub etsi_public_url: Option<String>,
    /// Allow the all-in-one ETSI authorities (`etsi_listen` without
    /// `etsi_dir`), whose root key is online: a try-out only.
    pub etsi_demo_root_online: bool,
    /// Policy directory overriding the data directory's copy.
    pub policies: Option<PathBuf>,
    /// Passphrase of the CA keys.
    pub passphrase: Passphrase,
    /// Extra names for the TLS server certificate (used on auto-init).
    pub server_names: Vec<String>,
    /// Sectors this instance's trust database answers for (empty: all).
    pub authoritative: Vec<String>,
    /// Trust databases of other sectors: (sector, https URL).
    pub peers: Vec<(String, String)>,
    /// Webhook (http://...) that receives anomaly notifications.
    pub notify_webhook: Option<String>,
    /// The PKCS#11 token holding CA keys, if any.
    pub pkcs11: Pkcs11Options,
    /// Where to serve Prometheus metrics over plain HTTP (`GET /metrics`);
    /// `None` serves none. Port 0 picks a free port.
    pub metrics: Option<SocketAddr>,
    /// How long in-flight calls may run after a shutdown is asked for,
    /// before every connection is closed.
    pub shutdown_grace: Duration,
    /// Connection count and timeouts.
    pub connections: ConnectionLimits,
    /// How long a streaming call may stay silent or unread
    /// (`EnrollBatch`, `DecideBatch`); production default 30 s each.
    pub streams: StreamLimits,
    /// Serve a store whose audit log does not verify, read-only (for
    /// recovery); without it such a store is refused at start.
    pub allow_damaged_store: bool,
    /// Check certificate, device and trust records against their seals and the audit
    /// log on every read (`trustca_store::RecordSeal`). Always on for
    /// `trustca serve`; the benchmark turns it off to measure its cost.
    pub seal_records: bool,
    /// Run only this separated V2X authority (`--role`); `None` runs
    /// everything, the four V2X authorities in-process with their own
    /// stores.
    pub role: Option<crate::v2x::V2xRole>,
    /// Where the registration authority reaches the others (`--role
    /// registration` only).
    pub v2x_remote: Option<crate::v2x::RemoteAuthorities>,
    /// When the registration authority sends a batch.
    pub v2x_batch: trustca_scms::BatchPolicy,
    /// Run the four V2X authorities in this process (without `role`);
    /// false when they run as separate `--role` processes.
    pub v2x_in_process: bool,
    /// How often a `--role` process re-reads `DATA/crl/*.crl` to refuse
    /// revoked callers.
    pub crl_refresh: Duration,
    /// How often the trust list in force and `DATA/crl/foreign/` are
    /// read again ([`TRUST_LIST_REFRESH`]; tests shorten it rather than
    /// wait).
    pub trust_list_refresh: Duration,
    /// How long an answer forwarded from a peer database is reused
    /// ([`FEDERATION_CACHE_TTL`]; tests shorten it rather than wait).
    pub federation_cache_ttl: Duration,
    /// How often an audit tree head is signed while the log grows
    /// ([`TREE_HEAD_INTERVAL`]; tests shorten it rather than wait).
    pub tree_head_interval: Duration,
}

impl ServeOptions {
    /// Options for one process serving everything on `listen`.
    pub fn new(data: PathBuf, listen: SocketAddr, passphrase: Passphrase) -> Self {
        Self {
            data,
            store: None,
            listen,
            est_listen: None,
            web_listen: None,
            etsi_listen: None,
            etsi_dir: None,
            etsi_public_url: None,
            etsi_demo_root_online: false,
            policies: None,
            passphrase,
            server_names: Vec::new(),
            authoritative: Vec::new(),
            peers: Vec::new(),
            notify_webhook: None,
            pkcs11: Pkcs11Options::default(),
            metrics: None,
            shutdown_grace: Duration::from_secs(10),
            connections: ConnectionLimits::default(),
            streams: StreamLimits::default(),
            allow_damaged_store: false,
            seal_records: true,
            role: None,
            v2x_remote: None,
            v2x_batch: trustca_scms::BatchPolicy::default(),
            v2x_in_process: true,
            crl_refresh: Duration::from_secs(60),
            trust_list_refresh: TRUST_LIST_REFRESH,
            federation_cache_ttl: FEDERATION_CACHE_TTL,
            tree_head_interval: TREE_HEAD_INTERVAL,
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// The bound metrics address, when metrics are served.
    pub metrics_addr: Option<SocketAddr>,
    /// The bound EST address, when EST is served.
    pub est_addr: Option<SocketAddr>,
    /// The bound web front end address, when it is served.
    pub web_addr: Option<SocketAddr>,
    /// The bound ETSI address, when the ETSI authorities are served.
    pub etsi_addr: Option<SocketAddr>,
    /// The one shutdown: cancelled, the gRPC port and the EST, web and
    /// ETSI listeners stop accepting (their connections finish their
    /// requests until `closing`), and every background task stops (a
    /// snapshot build between pages, so the store closes at once).
    pub(crate) stop: CancellationToken,
    /// The metrics registry (also kept when no endpoint serves it).
    pub metrics: Arc<Metrics>,
    pub(crate) handle: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    pub(crate) store_closed: Option<trustca_store::CloseWaiter>,
    pub(crate) heads: Option<TreeHeadSigner>,
    /// Cancelled when the grace period after a shutdown is over: every
    /// connection's I/O then fails.
    pub(crate) closing: CancellationToken,
    pub(crate) grace: Duration,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight calls, and waits (up to 3 s) until
    /// the store is closed and unlocked, so the data directory can be
    /// reopened at once.
    pub async fn shutdown(mut self) -> Result<()> {
        self.stop.cancel();
        let closed = self.store_closed.take();
        let heads = self.heads.take();
        // In-flight calls get the grace period; then every connection is
        // closed, whatever its client does (idle connections and silent
        // streams would otherwise hold the server open).
        let stopped = match tokio::time::timeout(self.grace, &mut self.handle).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!(
                    grace_ms = self.grace.as_millis() as u64,
                    "shutdown grace period over; closing the remaining connections"
                );
                self.closing.cancel();
                (&mut self.handle).await
            }
        };
        stopped_result(stopped)?;
        if let Some(heads) = heads
            && let Err(e) = tokio::task::spawn_blocking(move || heads.sign_now())
                .await
                .map_err(|e| ServerError::Stopped(format!("tree head task failed: {e}")))?
        {
            tracing::error!(error = %e, "final audit tree head not signed");
        }
        if let Some(closed) = closed {
            // Connections whose clients stay open can keep request state (and
            // so the store) alive for a while; the store flushes on every
            // commit, so this wait is a courtesy for callers that reopen the
            // data directory, not a durability step.
            let done = tokio::task::spawn_blocking(move || closed.wait(Duration::from_secs(10)))
                .await
                .unwrap_or(false);
            if !done {
                tracing::warn!(
                    "store still referenced 10 s after shutdown; it closes when the last client disconnects"
                );
            }
        }
        Ok(())
    }

    /// Serves until `signal` fires (then shuts down cleanly: in-flight calls
    /// finish, a last audit tree head is signed, the store closes) or the
    /// server stops by itself.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<()> {
        let stopped = tokio::select! {
            r = &mut self.handle => Some(r),
            _ = signal => None,
        };
        match stopped {
            Some(r) => stopped_result(r),
            None => self.shutdown().await,
        }
    }

    /// Waits until the server stops.
    pub async fn wait(mut self) -> Result<()> {
        self.store_closed = None;
        self.heads = None;
        stopped_result((&mut self.handle).await)
    }
}

/// The server task's end as a sentence.
fn stopped_result(
    r: std::result::Result<
        std::result::Result<(), tonic::transport::Error>,
        tokio::task::JoinError,
    >,
) -> Result<()> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServerError::Stopped(format!(
            "server stopped with an error: {e}"
        ))),
        Err(e) => Err(ServerError::Stopped(format!("server task failed: {e}"))),
    }
}

/// Creates the CA in `data` (what is missing of it) and installs the policy
/// copy the data directory will run with.
pub fn init(
    data: &Path,
    explicit_policies: Option<&Path>,
    passphrase: &Passphrase,
    server_names: &[String],
) -> Result<InitReport> {
    init_with(
        data,
        explicit_policies,
        passphrase,
        server_names,
        &Pkcs11Options::default(),
    )
}

/// Like [`init`], with CA keys generated in the PKCS#11 token that
/// `pkcs11` (or `[pkcs11]` in `pki.toml`) names.
pub fn init_with(
    data: &Path,
    explicit_policies: Option<&Path>,
    passphrase: &Passphrase,
    server_names: &[String],
    pkcs11: &Pkcs11Options,
) -> Result<InitReport> {
    let (files, set) = policies::resolve(explicit_policies, Some(data))?;
    // The token first: a missing module, token or wrong PIN must stop
    // init before anything is written.
    let token = open_token(data, &set.pki, pkcs11)?;
    std::fs::create_dir_all(data)
        .map_err(|e| io(format_args!("cannot create {}", data.display()), e))?;
    policies::install(data, &files)?;
    let report = CaHierarchy::init_with_token(
        data,
        &set,
        passphrase,
        server_names,
        token.as_ref().map(|t| (&t.token, t.module.as_path())),
    )?;
    for role in crate::v2x::init_authorities(data, passphrase)? {
        eprintln!(
            "created V2X {role} key  {}",
            DataDir::new(data).v2x_role_keys(role).display()
        );
    }
    Ok(report)
}

/// Starts the server; returns once it is listening.
pub async fn start(opts: ServeOptions) -> Result<RunningServer> {
    // Bind before anything changes state: a port already taken must leave
    // the data directory, the store, the CRLs and the audit log untouched.
    let listeners = Listeners::bind(&opts).await?;
    let metrics = Arc::new(Metrics::new());
    let stop = CancellationToken::new();
    if let Some(role) = opts.role {
        return start_role(opts, role, listeners, metrics, stop).await;
    }
    if !DataDir::new(&opts.data).is_initialised() {
        let report = init_with(
            &opts.data,
            opts.policies.as_deref(),
            &opts.passphrase,
            &opts.server_names,
            &opts.pkcs11,
        )?;
        tracing::info!(data = %opts.data.display(), sectors = ?report.created_sectors, "initialised a new CA");
    }
    // The engines, once, from policies loaded once.
    let policies = Policies::load(opts.policies.as_deref(), &opts.data)?;
    let engines = Engines::build(&opts, policies, &metrics, &stop).await?;
    // The roles: the CA's gRPC services, then the HTTP front ends.
    let roles = match start_roles(&opts, listeners, &engines, &metrics, &stop).await {
        Ok(roles) => roles,
        Err(e) => return Err(release_after_refusal(&stop, engines, e).await),
    };
    let StartedRoles {
        addr,
        closing,
        max_connections,
        descriptors,
        handle,
        fronts,
    } = roles;
    tracing::info!(%addr, data = %opts.data.display(), store = %engines.store.config.describe(), replica = %engines.replica, max_connections, descriptors = descriptors.unwrap_or_default(), "trustca listening (mutual TLS)");
    Ok(RunningServer {
        addr,
        metrics_addr: fronts.metrics,
        est_addr: fronts.est,
        web_addr: fronts.web,
        etsi_addr: fronts.etsi,
        stop,
        metrics,
        handle,
        closing,
        grace: opts.shutdown_grace,
        store_closed: Some(engines.store.closed),
        heads: Some(engines.heads),
    })
}

/// What [`start_roles`] started.
struct StartedRoles {
    addr: SocketAddr,
    closing: CancellationToken,
    max_connections: usize,
    descriptors: Option<u64>,
    handle: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    fronts: crate::front_ends::FrontEnds,
}

/// The CA's gRPC services and the HTTP front ends over `engines`, then
/// the background tasks, all under `stop`.
async fn start_roles(
    opts: &ServeOptions,
    listeners: Listeners,
    engines: &Engines,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> Result<StartedRoles> {
    let Accepting {
        addr,
        closing,
        table,
        incoming,
        max_connections,
        descriptors,
    } = accept_on(listeners.grpc, &engines.identity, opts.connections)?;
    let observer = Arc::clone(metrics) as Arc<dyn trustca_model::observe::Observer>;
    let ca = crate::ca_role::start(opts, engines, observer, incoming, stop).await?;
    let fronts = crate::front_ends::start(
        opts,
        listeners.fronts,
        engines,
        ca.v2x_http,
        &table,
        metrics,
        stop,
    )?;
    // Then the background tasks, under the same token.
    crate::background::start(opts, engines, ca.health, stop);
    Ok(StartedRoles {
        addr,
        closing,
        max_connections,
        descriptors,
        handle: ca.handle,
        fronts,
    })
}

/// A start refused after the engines were built (a front end's key, a
/// port's TLS): everything started stops and the store is released before
/// the refusal is returned, so the next start on this directory can open it.
async fn release_after_refusal(
    stop: &CancellationToken,
    engines: Engines,
    refusal: ServerError,
) -> ServerError {
    stop.cancel();
    let closed = {
        let engines = engines;
        engines.store.closed
    };
    let _ = tokio::task::spawn_blocking(move || closed.wait(Duration::from_secs(10))).await;
    refusal
}

/// Serves `/metrics` on `listener` when `--metrics` was given; its address.
pub(crate) fn serve_metrics(
    listener: Option<tokio::net::TcpListener>,
    metrics: &Arc<Metrics>,
) -> Result<Option<SocketAddr>> {
    let Some(listener) = listener else {
        return Ok(None);
    };
    let bound = listener
        .local_addr()
        .map_err(|e| ServerError::Listen(format!("cannot read the metrics address: {e}")))?;
    crate::metrics::spawn_endpoint(listener, metrics);
    tracing::info!(addr = %bound, "metrics on http://{bound}/metrics");
    Ok(Some(bound))
}

/// A plain sentence for a failed bind (the I/O error's own text carries
/// an OS error number at best).
pub(crate) fn bind_error(listen: SocketAddr, e: &std::io::Error) -> ServerError {
    ServerError::Listen(match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("cannot listen on {listen}: the port is already in use")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot listen on {listen}: permission denied (ports below 1024 need privileges)"
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            format!("cannot listen on {listen}: no local interface has this address")
        }
        _ => format!("cannot listen on {listen}: {e}"),
    })
}
