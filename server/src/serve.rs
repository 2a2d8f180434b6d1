//! `trustca serve`: one process hosting every service on one mutual-TLS
//! port over one durable store. This is where the server is put together:
//! options, store, CA, trust database, the V2X authorities, transport and
//! authentication, and the schedules (CRLs, audit tree heads under their
//! leases, SIGHUP policy reload, the watch for CA revocations made
//! offline).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use trustca_api::{AnomalyService, EnrollmentService, RevocationService, TrustService};
use trustca_ca::{CaHierarchy, CrlPublisher, EnrollmentEngine, InitReport, Passphrase};
use trustca_db::{Notifier, TrustEngine, TrustEngineConfig};
use trustca_model::{PolicySet, StatementSigner};
use trustca_proto::v1::anomalies_server::AnomaliesServer;
use trustca_proto::v1::enrollment_server::EnrollmentServer;
use trustca_proto::v1::revocation_server::RevocationServer;
use trustca_proto::v1::trust_database_server::TrustDatabaseServer;
use trustca_store::{GroupCommitter, Storage};

use crate::auth::AuthLayer;
use crate::connections::ConnectionLimits;
use crate::error::{Result, ServerError, io};
use crate::instance;
use crate::lease::{self, Lease};
use crate::metrics::Metrics;
use crate::pkcs11::{Pkcs11Options, open_token};
use crate::policies;
use crate::store::StoreConfig;
use trustca_model::observe::Observer;

use crate::role_start::*;
pub(crate) use crate::schedules::on_hangup;
use crate::schedules::*;
use crate::startup::*;
pub use crate::tree_heads::{TREE_HEAD_INTERVAL, TreeHeadSigner};

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
            allow_damaged_store: false,
            seal_records: true,
            role: None,
            v2x_remote: None,
            v2x_batch: trustca_scms::BatchPolicy::default(),
            v2x_in_process: true,
            crl_refresh: Duration::from_secs(60),
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
    /// Cancelled at shutdown: the EST, web and ETSI listeners stop
    /// accepting and their connections finish their requests (until `closing`).
    pub(crate) est_stop: tokio_util::sync::CancellationToken,
    /// Cancelled at shutdown: background work that reads the whole store
    /// (snapshot builds) stops between pages, so the store closes at once.
    pub(crate) background: tokio_util::sync::CancellationToken,
    /// The metrics registry (also kept when no endpoint serves it).
    pub metrics: Arc<Metrics>,
    pub(crate) shutdown: Option<oneshot::Sender<()>>,
    pub(crate) handle: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    pub(crate) store_closed: Option<trustca_store::CloseWaiter>,
    pub(crate) heads: Option<TreeHeadSigner>,
    /// Cancelled when the grace period after a shutdown is over: every
    /// connection's I/O then fails.
    pub(crate) closing: tokio_util::sync::CancellationToken,
    pub(crate) grace: Duration,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight calls, and waits (up to 3 s) until
    /// the store is closed and unlocked, so the data directory can be
    /// reopened at once.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.est_stop.cancel();
        self.background.cancel();
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
            data.join(crate::v2x::V2X_DIR)
                .join(role)
                .join("keys")
                .display()
        );
    }
    Ok(report)
}

/// Starts the server; returns once it is listening.
pub async fn start(opts: ServeOptions) -> Result<RunningServer> {
    // Bind before anything changes state: a port already taken must leave
    // the data directory, the store, the CRLs and the audit log untouched.
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| bind_error(opts.listen, &e))?;
    let metrics_listener = match opts.metrics {
        Some(addr) => Some(crate::metrics::bind(addr).await?),
        None => None,
    };
    let est_listener = match opts.est_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(addr, &e))?,
        ),
        None => None,
    };
    let web_listener = match opts.web_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(addr, &e))?,
        ),
        None => None,
    };
    let etsi_listener = match opts.etsi_listen {
        Some(_)
            if opts.role.is_none() && opts.etsi_dir.is_none() && !opts.etsi_demo_root_online =>
        {
            return Err(crate::etsi::deploy::root_online_refused());
        }
        Some(addr) if opts.role.is_none() => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| bind_error(addr, &e))?,
        ),
        Some(_) => {
            return Err(ServerError::Config(
                "--etsi-listen runs with the CA, not with a --role process".into(),
            ));
        }
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let observer: Arc<dyn Observer> = metrics.clone();
    if let Some(role) = opts.role {
        if opts.web_listen.is_some() {
            return Err(ServerError::Config(
                "--web-listen is served by the CA's process, not by a separated V2X authority (--role)".into(),
            ));
        }
        return start_role(
            opts,
            role,
            listener,
            metrics_listener,
            est_listener,
            metrics,
        )
        .await;
    }
    if !opts.data.join("ca").join("root.pem").exists() {
        let report = init_with(
            &opts.data,
            opts.policies.as_deref(),
            &opts.passphrase,
            &opts.server_names,
            &opts.pkcs11,
        )?;
        tracing::info!(data = %opts.data.display(), sectors = ?report.created_sectors, "initialised a new CA");
    }
    let (_, policy_set) = policies::resolve(opts.policies.as_deref(), Some(&opts.data))?;
    let policy_set = Arc::new(policy_set);
    let token = open_token(&opts.data, &policy_set.pki, &opts.pkcs11)?;
    let hierarchy = Arc::new(CaHierarchy::open_with_token(
        &opts.data,
        &policy_set,
        &opts.passphrase,
        token.map(|t| t.token),
    )?);
    instance::warn_if_root_key_online(&hierarchy, &opts.data);
    instance::warn_if_arl_stale(&hierarchy, &opts.data);
    crate::etsi::deploy::warn_if_root_key_online(&opts.data);
    // Refused before the store is opened: a wrong --authoritative changes nothing.
    let authoritative = instance::authoritative_sectors(&opts, &policy_set, &hierarchy)?;
    let store = StoreConfig::or_data_dir(opts.store.as_ref(), &opts.data);
    let (guarded, store_closed) = store.open_guarded()?;
    let read_only = startup_check(&guarded, &store, opts.allow_damaged_store)?;
    // Every read of a record from before seals is refused; say once, in
    // words, what to run rather than answer each request with DATA_LOSS.
    if trustca_store::legacy_records_present(guarded.as_ref())? {
        return Err(ServerError::StoreConfig(format!(
            "the store {} holds records written by a trustca from before record seals; stop every server of this store and run `trustca store seal --data {} --store {}` once (it needs the CA passphrase), then start again",
            store.describe(),
            opts.data.display(),
            store.describe()
        )));
    }
    if opts.seal_records {
        seal_records(guarded.as_ref(), &hierarchy, read_only)?;
    }
    let storage: Arc<dyn Storage> = guarded;
    let store_closed = Some(store_closed);
    metrics.watch_store(&storage);
    let replica = lease::replica_id();
    let crl_lease = Lease::take(
        storage.as_ref(),
        lease::CRL,
        &replica,
        lease::LEASE_TTL,
        &observer,
    );
    crl_lease.spawn_renewal(&storage);
    let heads_lease = Lease::take(
        storage.as_ref(),
        lease::TREE_HEADS,
        &replica,
        lease::LEASE_TTL,
        &observer,
    );
    heads_lease.spawn_renewal(&storage);
    let committer = {
        // The committer reports each group (size, transaction and flush
        // time); the registry is held weakly so the thread does not keep it.
        let m = Arc::downgrade(&metrics);
        GroupCommitter::start_observed(
            Arc::clone(&storage),
            Arc::new(move |stats| {
                if let Some(m) = m.upgrade() {
                    m.commit_group(&stats);
                }
            }),
        )?
    };
    let engine = Arc::new(
        EnrollmentEngine::new(
            Arc::clone(&policy_set),
            Arc::clone(&hierarchy),
            Arc::clone(&storage),
            committer,
        )
        .with_authoritative(authoritative)
        .with_observer(Arc::clone(&observer)),
    );
    let recorded = unless_read_only(
        read_only,
        "recording credentials issued offline",
        engine.record_offline_credentials().await,
    )?
    .unwrap_or(0);
    let trust = Arc::new(trust_engine(
        &opts,
        &hierarchy,
        &policy_set,
        Arc::clone(&storage),
    )?);
    let crls = Arc::new(
        CrlPublisher::new(
            Arc::clone(&hierarchy),
            Arc::clone(&policy_set),
            Arc::clone(&storage),
            opts.data.join("crl"),
        )
        .with_observer(Arc::clone(&observer)),
    );
    // Every replica publishes once at start (its own CRL files must exist);
    // the scheduled reissue is the lease holder's.
    // CA revocations first: the CRLs published next then list the
    // certificates they revoke.
    unless_read_only(
        read_only,
        "recording CA revocations",
        crate::ca_revocation::record_ca_revocations(
            storage.as_ref(),
            &hierarchy.revoked_cas().all(),
        ),
    )?;
    unless_read_only(read_only, "publishing the CRLs", crls.publish_all())?;
    spawn_crl_schedule(&crls, &crl_lease);
    crate::ca_revocation::spawn_watch(&hierarchy, &storage, &crls);
    crate::trust_list_watch::install(&opts.data, &trust);
    let revoked_cas = Arc::clone(hierarchy.revoked_cas());
    trust.set_issuer_check(Box::new(move |sector| {
        revoked_cas.revoked(sector.as_str()).map(|r| {
            format!(
                "its sector CA ({}) was revoked by the root on {} ({})",
                r.name,
                r.date(),
                trustca_model::revocation::reason_name(r.reason)
            )
        })
    }));
    let weak_crls = Arc::downgrade(&crls);
    trust.set_revocation_hook(Box::new(move |sector| {
        if let Some(crls) = weak_crls.upgrade()
            && let Err(e) = crls.publish(sector)
        {
            tracing::error!(%sector, error = %e, "CRL reissue after revocation failed");
        }
    }));
    let anomalies = AnomaliesServer::new(AnomalyService::new(
        Arc::clone(&trust),
        Notifier {
            sink: Some(opts.data.join("notifications.jsonl")),
            webhook: opts.notify_webhook.clone(),
        },
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let heads = TreeHeadSigner::new(&storage, hierarchy.audit_key(), heads_lease)?;
    unless_read_only(read_only, "signing a tree head", heads.sign_now())?;
    heads.spawn();
    if recorded > 0 {
        tracing::info!(count = recorded, "recorded credentials issued offline");
    }

    let identity = instance::transport_identity(&hierarchy, &policy_set);
    let Accepting {
        addr,
        closing,
        table,
        incoming,
        max_connections,
        descriptors,
    } = accept_on(listener, &identity, opts.connections)?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<EnrollmentServer<EnrollmentService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(trustca_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Config(format!("reflection service: {e}")))?;
    let enrollment = EnrollmentServer::new(EnrollmentService::new(Arc::clone(&engine)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(4 * MAX_MESSAGE_BYTES);

    let trust_service = TrustDatabaseServer::new(
        TrustService::new(Arc::clone(&trust)).with_observer(Arc::clone(&observer)),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(4 * MAX_MESSAGE_BYTES);
    spawn_reload_on_hangup(&trust);
    let model_registry = Arc::new(trustca_db::ModelRegistry::new(
        Arc::clone(&storage),
        Arc::clone(&policy_set),
    ));
    spawn_registry_sweep(&model_registry, &crl_lease);
    let registry = trustca_proto::v1::model_registry_server::ModelRegistryServer::new(
        trustca_api::ModelRegistryService::new(model_registry),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(64 * MAX_MESSAGE_BYTES);
    // Cancelled first at shutdown: background work over the whole store
    // (snapshot builds) stops at its next page instead of holding it open.
    let background = tokio_util::sync::CancellationToken::new();
    let publisher = Arc::new(
        trustca_db::SnapshotPublisher::new(Arc::clone(&trust)).stopped_by(background.clone()),
    );
    spawn_snapshot_files(&publisher, opts.data.join("snapshots"), background.clone());
    let snapshots = trustca_proto::v1::trust_snapshots_server::TrustSnapshotsServer::new(
        trustca_api::SnapshotService::new(publisher),
    )
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(usize::MAX);
    let revocation = RevocationServer::new(RevocationService::new(
        Arc::clone(&crls),
        Arc::clone(&storage),
        Arc::clone(&engine),
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(256 * 1024 * 1024);

    crate::legacy::warn_x509_pseudonym_material(&opts.data);
    spawn_store_health(&storage, health.clone());
    let v2x_here = instance::hosts_v2x(&hierarchy);
    let v2x = if opts.v2x_in_process && v2x_here {
        let (v2x_files, _) = policies::resolve(opts.policies.as_deref(), Some(&opts.data))?;
        tracing::warn!(
            "the four V2X authorities run in this process with their keys under one data directory and passphrase: \
             no separation against whoever holds them (see `trustca init --role` for separated authorities)"
        );
        Some(crate::v2x::in_process_services(
            &opts.data,
            &v2x_files,
            &hierarchy,
            &opts.passphrase,
            opts.v2x_batch,
            Arc::clone(&storage),
            &policy_set.pki,
        )?)
    } else {
        None
    };
    let (v2x_ra, v2x_pca, v2x_la, v2x_ea, v2x_http) = match v2x {
        Some(v) => (
            v.registration,
            v.pseudonym_ca,
            v.linkage,
            v.enrollment,
            v.http,
        ),
        // Separated authorities: this process is still the enrolment CA
        // and the CRL generator of the hash CRLs (not in a sector's own
        // directory, which holds no V2X CA).
        None if opts.est_listen.is_some() && v2x_here => {
            let (v2x_files, _) = policies::resolve(opts.policies.as_deref(), Some(&opts.data))?;
            let sector = crate::v2x::ticket_profile(&v2x_files)?.sector;
            let hash_crls = crate::v2x::hash_crls::HashCrlPublisher::open(
                &opts.data,
                &hierarchy,
                Arc::clone(&storage),
            )?;
            let eca = crate::v2x::ee_http::eca_route(
                &opts.data,
                &hierarchy,
                sector.clone(),
                Arc::clone(&storage),
                Arc::clone(&hash_crls),
            )?;
            let enrollment = crate::v2x::enrollment_service(
                &opts.data,
                &hierarchy,
                &sector,
                Arc::clone(&hash_crls),
            )?;
            let http = crate::v2x_http::V2xHttp {
                eca: Some(eca),
                hash_crls: Some(hash_crls),
                ..Default::default()
            };
            (None, None, None, Some(enrollment), Some(Arc::new(http)))
        }
        None => (None, None, None, None, None),
    };

    let (tx, rx) = oneshot::channel::<()>();
    let router = tonic::transport::Server::builder()
        .layer(crate::message_limit::OversizeLayer(MAX_MESSAGE_BYTES))
        .layer(crate::connections::ActivityLayer)
        .layer(
            AuthLayer::new(Arc::clone(&storage), Arc::clone(&observer))
                .with_revoked_cas(Arc::clone(hierarchy.revoked_cas())),
        )
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(256))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(enrollment)
        .add_service(
            trustca_proto::v1::attestation_server::AttestationServer::new(
                trustca_api::AttestationService::new(Arc::clone(&engine)),
            )
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(trust_service)
        .add_service(revocation)
        .add_service(registry)
        .add_service(snapshots)
        .add_service(anomalies)
        .add_service(crate::systems::service(crate::systems::SystemsParts {
            explicit_policies: opts.policies.as_deref(),
            data: &opts.data,
            trust: &trust,
            storage: &storage,
            notifier: Notifier {
                sink: Some(opts.data.join("notifications.jsonl")),
                webhook: opts.notify_webhook.clone(),
            },
            lease: &crl_lease,
        })?)
        .add_optional_service(v2x_ra)
        .add_optional_service(v2x_pca)
        .add_optional_service(v2x_la)
        .add_optional_service(v2x_ea);
    let handle = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async {
                let _ = rx.await;
            })
            .await
    });
    let est_stop = tokio_util::sync::CancellationToken::new();
    let est_addr = match est_listener {
        Some(listener) => {
            let bound = listener
                .local_addr()
                .map_err(|e| ServerError::Listen(format!("cannot read the EST address: {e}")))?;
            let est = crate::est::Est::new(
                Arc::clone(&engine),
                Arc::clone(&storage),
                Arc::clone(&metrics),
            )?;
            let est = Arc::new(match v2x_http {
                Some(http) => {
                    let _ = http.metrics.set(Arc::clone(&metrics));
                    est.with_v2x(http)
                }
                None => est,
            });
            crate::est::spawn(
                listener,
                &identity,
                Arc::clone(&table),
                est,
                est_stop.clone(),
            )?;
            tracing::info!(addr = %bound, "EST (RFC 7030) on https://{bound}/.well-known/est/");
            Some(bound)
        }
        None => None,
    };
    let web_addr = match web_listener {
        Some(listener) => Some(crate::web::spawn(
            listener,
            crate::web::WebParts {
                explicit_policies: opts.policies.as_deref(),
                data: &opts.data,
                policy_set: &policy_set,
                storage: &storage,
                revoked_cas: hierarchy.revoked_cas(),
                audit_key: hierarchy.audit_key().public_key(),
                identity: &identity,
                table: &table,
                hierarchy: &hierarchy,
                trust: &trust,
            },
            est_stop.clone(),
        )?),
        None => None,
    };
    let etsi_addr = match etsi_listener {
        Some(listener) => Some(serve_etsi(listener, &opts, &storage, &est_stop)?),
        None => None,
    };
    let metrics_addr = serve_metrics(metrics_listener, &metrics)?;
    tracing::info!(%addr, data = %opts.data.display(), store = %store.describe(), replica = %replica, max_connections, descriptors = descriptors.unwrap_or_default(), "trustca listening (mutual TLS)");
    Ok(RunningServer {
        addr,
        metrics_addr,
        est_addr,
        web_addr,
        etsi_addr,
        est_stop,
        background,
        metrics,
        shutdown: Some(tx),
        handle,
        closing,
        grace: opts.shutdown_grace,
        store_closed,
        heads: Some(heads),
    })
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

pub(crate) fn trust_engine(
    opts: &ServeOptions,
    hierarchy: &CaHierarchy,
    policy_set: &PolicySet,
    storage: Arc<dyn Storage>,
) -> Result<TrustEngine> {
    let authoritative = instance::authoritative_sectors(opts, policy_set, hierarchy)?;
    let federation = instance::federation(opts, policy_set, hierarchy)?;
    let data = opts.data.clone();
    let explicit = opts.policies.clone();
    let loader: trustca_db::PolicyLoader = Box::new(move || {
        policies::resolve(explicit.as_deref(), Some(&data))
            .map(|(_, set)| (set.trust, set.detection))
            .map_err(|e| e.to_string())
    });
    let cfg = TrustEngineConfig {
        root_der: hierarchy.root_der.clone(),
        sector_cas: hierarchy.all_sector_cas(),
        responder_chain: hierarchy.responder_chain.clone(),
        responder_key: hierarchy.responder_key(),
        authoritative,
        assertion_ttl: Duration::from_secs(3600),
        decision_ttl: Duration::from_secs(300),
        extension_oid: policy_set.pki.extensions.trust_level_oid.clone(),
    };
    Ok(TrustEngine::new(
        cfg,
        storage,
        policy_set.trust.clone(),
        policy_set.detection.clone(),
        Some(loader),
        federation.map(|f| Box::new(f) as Box<dyn trustca_db::PeerDatabases>),
    )?)
}
