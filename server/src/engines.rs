//! The engines of `trustca serve`, built once: the CA hierarchy, the store
//! (checked and sealed), the leases, the enrollment engine, the trust
//! database, CRL publication, the audit tree heads, the model registry,
//! the snapshot publisher and the systems registry. Every one of them is
//! built from the one [`Policies`] value; none knows a transport. The roles
//! (`crate::ca_role`) serve them and `crate::background` runs their
//! schedules.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use trustca_ca::{CaHierarchy, CrlPublisher, EnrollmentEngine};
use trustca_datadir::DataDir;
use trustca_db::{
    ModelRegistry, SnapshotPublisher, SystemRegistry, TrustEngine, TrustEngineConfig,
};
use trustca_model::PolicySet;
use trustca_model::observe::Observer;
use trustca_store::{CloseWaiter, GroupCommitter, Storage};

use crate::error::{Result, ServerError};
use crate::instance;
use crate::lease::{self, Lease};
use crate::loaded_policies::Policies;
use crate::metrics::Metrics;
use crate::pkcs11::open_token;
use crate::serve::ServeOptions;
use crate::startup::{seal_records, startup_check, unless_read_only};
use crate::store::StoreConfig;
use crate::transport::TransportIdentity;
use crate::tree_heads::TreeHeadSigner;

/// The store as the server opened it.
pub(crate) struct OpenedStore {
    pub(crate) config: StoreConfig,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) closed: CloseWaiter,
    /// Served read-only (`--allow-damaged-store` on a damaged store).
    pub(crate) read_only: bool,
}

/// Everything the CA's process serves, built once.
pub(crate) struct Engines {
    pub(crate) policies: Policies,
    pub(crate) hierarchy: Arc<CaHierarchy>,
    pub(crate) store: OpenedStore,
    pub(crate) replica: String,
    /// Once-per-deployment work (CRL reissue, registry sweep, systems
    /// notifications) runs on the replica holding it.
    pub(crate) crl_lease: Arc<Lease>,
    pub(crate) heads_lease: Arc<Lease>,
    pub(crate) enrollment: Arc<EnrollmentEngine>,
    pub(crate) trust: Arc<TrustEngine>,
    pub(crate) crls: Arc<CrlPublisher>,
    pub(crate) heads: TreeHeadSigner,
    pub(crate) registry: Arc<ModelRegistry>,
    pub(crate) snapshots: Arc<SnapshotPublisher>,
    pub(crate) systems: Arc<SystemRegistry>,
    /// This instance's TLS identity (gRPC, EST, web).
    pub(crate) identity: TransportIdentity,
}

impl Engines {
    /// Builds the engines over `opts.data` with `policies`. `stop` ends
    /// the snapshot publisher's whole-store reads at shutdown.
    pub(crate) async fn build(
        opts: &ServeOptions,
        policies: Policies,
        metrics: &Arc<Metrics>,
        stop: &CancellationToken,
    ) -> Result<Self> {
        let observer: Arc<dyn Observer> = metrics.clone();
        let set = policies.set();
        let hierarchy = open_ca(opts, &set)?;
        // Refused before the store is opened: a wrong --authoritative changes nothing.
        let authoritative = instance::authoritative_sectors(opts, &set, &hierarchy)?;
        let store = open_store(opts, &hierarchy)?;
        metrics.watch_store(&store.storage);
        let (storage, read_only) = (Arc::clone(&store.storage), store.read_only);
        let replica = lease::replica_id();
        let take = |name| {
            Lease::take(
                storage.as_ref(),
                name,
                &replica,
                lease::LEASE_TTL,
                &observer,
            )
        };
        let (crl_lease, heads_lease) = (take(lease::CRL), take(lease::TREE_HEADS));
        let enrollment = enrollment_engine(
            &policies,
            &set,
            &hierarchy,
            &storage,
            metrics,
            authoritative,
        )?;
        let recorded = unless_read_only(
            read_only,
            "recording credentials issued offline",
            enrollment.record_offline_credentials().await,
        )?
        .unwrap_or(0);
        let trust = Arc::new(trust_engine(
            opts,
            &hierarchy,
            &policies,
            Arc::clone(&storage),
        )?);
        let crls = crl_publisher(opts, &policies, &set, &hierarchy, &storage, &observer);
        publish_at_start(&hierarchy, &store, &crls)?;
        // The recognised foreign roots, before the first request (and
        // followed while it runs).
        crate::trust_list_watch::install(&opts.data, &trust, opts.trust_list_refresh);
        hook_trust_to_ca(&trust, &hierarchy, &crls);
        let heads = TreeHeadSigner::new(&storage, hierarchy.audit_key(), Arc::clone(&heads_lease))?;
        unless_read_only(read_only, "signing a tree head", heads.sign_now())?;
        if recorded > 0 {
            tracing::info!(count = recorded, "recorded credentials issued offline");
        }
        Ok(Self {
            registry: Arc::new(
                ModelRegistry::new(Arc::clone(&storage), Arc::clone(&set))
                    .with_policy_source(Arc::new(policies.clone())),
            ),
            snapshots: Arc::new(
                SnapshotPublisher::new(Arc::clone(&trust)).stopped_by(stop.clone()),
            ),
            systems: crate::systems::open(&policies, &trust, &storage)?,
            identity: instance::transport_identity(&hierarchy, &set, trust.trust_list_in_force()),
            policies,
            hierarchy,
            store,
            replica,
            crl_lease,
            heads_lease,
            enrollment,
            trust,
            crls,
            heads,
        })
    }
}

/// The enrollment engine over the store, committing through one group
/// committer and reading the policies in force on every request.
fn enrollment_engine(
    policies: &Policies,
    set: &Arc<PolicySet>,
    hierarchy: &Arc<CaHierarchy>,
    storage: &Arc<dyn Storage>,
    metrics: &Arc<Metrics>,
    authoritative: Vec<trustca_model::SectorName>,
) -> Result<Arc<EnrollmentEngine>> {
    let observer: Arc<dyn Observer> = metrics.clone();
    Ok(Arc::new(
        EnrollmentEngine::new(
            Arc::clone(set),
            Arc::clone(hierarchy),
            Arc::clone(storage),
            committer(storage, metrics)?,
        )
        .with_authoritative(authoritative)
        .with_observer(observer)
        .with_policy_source(Arc::new(policies.clone())),
    ))
}

/// The CRL publisher writing under `DATA/crl/`.
fn crl_publisher(
    opts: &ServeOptions,
    policies: &Policies,
    set: &Arc<PolicySet>,
    hierarchy: &Arc<CaHierarchy>,
    storage: &Arc<dyn Storage>,
    observer: &Arc<dyn Observer>,
) -> Arc<CrlPublisher> {
    Arc::new(
        CrlPublisher::new(
            Arc::clone(hierarchy),
            Arc::clone(set),
            Arc::clone(storage),
            DataDir::new(&opts.data).crl_dir(),
        )
        .with_policy_source(Arc::new(policies.clone()))
        .with_observer(Arc::clone(observer)),
    )
}

/// The CA hierarchy of `opts.data` (keys in the keystore or the PKCS#11
/// token), with the warnings about what it holds.
fn open_ca(opts: &ServeOptions, set: &PolicySet) -> Result<Arc<CaHierarchy>> {
    let token = open_token(&opts.data, &set.pki, &opts.pkcs11)?;
    let hierarchy = Arc::new(CaHierarchy::open_with_token(
        &opts.data,
        set,
        &opts.passphrase,
        token.map(|t| t.token),
    )?);
    instance::warn_if_root_key_online(&hierarchy, &opts.data);
    instance::warn_if_arl_stale(&hierarchy, &opts.data);
    crate::etsi::deploy::warn_if_root_key_online(&opts.data);
    Ok(hierarchy)
}

/// Opens the store (`--store` or `DATA/db`), runs the start-up check and
/// seals older records.
fn open_store(opts: &ServeOptions, hierarchy: &CaHierarchy) -> Result<OpenedStore> {
    let config = StoreConfig::or_data_dir(opts.store.as_ref(), &opts.data);
    let (guarded, closed) = config.open_guarded()?;
    let read_only = startup_check(&guarded, &config, opts.allow_damaged_store)?;
    // Every read of a record from before seals is refused; say once, in
    // words, what to run rather than answer each request with DATA_LOSS.
    if trustca_store::legacy_records_present(guarded.as_ref())? {
        return Err(ServerError::StoreConfig(format!(
            "the store {} holds records written by a trustca from before record seals; stop every server of this store and run `trustca store seal --data {} --store {}` once (it needs the CA passphrase), then start again",
            config.describe(),
            opts.data.display(),
            config.describe()
        )));
    }
    if opts.seal_records {
        seal_records(guarded.as_ref(), hierarchy, read_only)?;
    }
    Ok(OpenedStore {
        config,
        storage: guarded,
        closed,
        read_only,
    })
}

/// The group committer, reporting each group (size, transaction and flush
/// time); the registry is held weakly so the thread does not keep it.
fn committer(storage: &Arc<dyn Storage>, metrics: &Arc<Metrics>) -> Result<GroupCommitter> {
    let m = Arc::downgrade(metrics);
    Ok(GroupCommitter::start_observed(
        Arc::clone(storage),
        Arc::new(move |stats| {
            if let Some(m) = m.upgrade() {
                m.commit_group(&stats);
            }
        }),
    )?)
}

/// Every replica publishes once at start (its own CRL files must exist);
/// the scheduled reissue is the lease holder's. CA revocations first: the
/// CRLs published next then list the certificates they revoke.
fn publish_at_start(
    hierarchy: &CaHierarchy,
    store: &OpenedStore,
    crls: &CrlPublisher,
) -> Result<()> {
    unless_read_only(
        store.read_only,
        "recording CA revocations",
        crate::ca_revocation::record_ca_revocations(
            store.storage.as_ref(),
            &hierarchy.revoked_cas().all(),
        ),
    )?;
    unless_read_only(store.read_only, "publishing the CRLs", crls.publish_all())?;
    Ok(())
}

/// What the trust database asks the CA: whether a sector CA was revoked by
/// the root, and a CRL reissue after a revocation (held weakly).
fn hook_trust_to_ca(trust: &TrustEngine, hierarchy: &CaHierarchy, crls: &Arc<CrlPublisher>) {
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
    let weak_crls = Arc::downgrade(crls);
    trust.set_revocation_hook(Box::new(move |sector| {
        if let Some(crls) = weak_crls.upgrade()
            && let Err(e) = crls.publish(sector)
        {
            tracing::error!(%sector, error = %e, "CRL reissue after revocation failed");
        }
    }));
}

/// The trust database over `storage`. Its policy reload (SIGHUP,
/// `ReloadPolicy`) reloads the shared [`Policies`], so every component
/// follows the same version.
pub(crate) fn trust_engine(
    opts: &ServeOptions,
    hierarchy: &CaHierarchy,
    policies: &Policies,
    storage: Arc<dyn Storage>,
) -> Result<TrustEngine> {
    let policy_set: Arc<PolicySet> = policies.set();
    let authoritative = instance::authoritative_sectors(opts, &policy_set, hierarchy)?;
    let federation = instance::federation(opts, &policy_set, hierarchy)?;
    let shared = policies.clone();
    let loader: trustca_db::PolicyLoader = Box::new(move || {
        shared
            .reload()
            .map(|v| (v.set.trust.clone(), v.set.detection.clone()))
            .map_err(|e| e.to_string())
    });
    let cfg = TrustEngineConfig {
        root_der: hierarchy.root_der.clone(),
        sector_cas: hierarchy.all_sector_cas(),
        responder_chain: hierarchy.responder_chain.clone().into(),
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
