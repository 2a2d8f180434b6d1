//! The trust engine: live trust of devices, cooperation decisions, signed
//! assertions and operator changes.
//!
//! Hot path (`decide`): a peer chain is verified once and remembered by its
//! fingerprint; the live records are read once and remembered until the
//! store's next write (`standing.rs`), so revocations and downgrades take
//! effect at once; the policy is parsed once per load and shared as an
//! `Arc`; an assertion is signed once per record version and reused until
//! it nears expiry. No signature, no parsing and, while nothing is
//! written, no store read per query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::msg;
use time::OffsetDateTime;
use trustca_model::{
    CertificateKind, Credential, DetectionPolicy, DeviceIdentity, ResponderChain, SectorName,
    SignedTrustAssertion, Standing, StatementAlgorithm, StatementSigner, TrustAssertion,
    TrustLevel, TrustPolicy, TrustStatus, VerifiedChain,
};
use trustca_store::{CertificateStatus, DeviceChange, Storage, TrustChange, TrustRecord};

use crate::TrustDbError;
use crate::federation::PeerDatabases;
use trustca_model::firmware;
use trustca_model::trust_list::{CheckedTrustList, ListInForce};

mod answers;
mod bounded;
pub(crate) use answers::entries_within;
mod changes;
mod standing;

/// Loads fresh policies (files re-read and validated) for `reload`.
pub type PolicyLoader =
    Box<dyn Fn() -> Result<(TrustPolicy, DetectionPolicy), String> + Send + Sync>;

/// Called after certificates of a sector were revoked (to reissue its CRL).
pub type RevocationHook = Box<dyn Fn(&SectorName) + Send + Sync>;

/// Why a sector's CA no longer vouches for its devices (the root revoked
/// it), or `None`.
pub type IssuerCheck = Box<dyn Fn(&SectorName) -> Option<String> + Send + Sync>;

/// How the engine is set up.
pub struct TrustEngineConfig {
    /// The root certificate, DER.
    pub root_der: Vec<u8>,
    /// Every sector CA, DER (to build peers' chains when they omit it).
    pub sector_cas: Vec<Vec<u8>>,
    /// The responder's chain (leaf, root), DER: the one value every
    /// assertion it signs shares.
    pub responder_chain: ResponderChain,
    /// The responder's key (a file key or a key in a PKCS#11 token).
    pub responder_key: Arc<dyn StatementSigner>,
    /// Sectors this instance answers for itself (empty: all).
    pub authoritative: Vec<SectorName>,
    /// How long an assertion may be relied on.
    pub assertion_ttl: Duration,
    /// How long a decision may be relied on (capped by the assertions').
    pub decision_ttl: Duration,
    /// The trust-level extension's OID (`pki.toml`).
    pub extension_oid: trustca_model::extension::ExtensionOid,
}

impl std::fmt::Debug for TrustEngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustEngineConfig")
            .field("authoritative", &self.authoritative)
            .finish_non_exhaustive()
    }
}

/// The live state of one device as this engine knows it.
#[derive(Debug, Clone)]
pub struct LiveState {
    /// Identity URN.
    pub identity: String,
    /// Sector.
    pub sector: SectorName,
    /// Live level.
    pub level: TrustLevel,
    /// Live status.
    pub status: TrustStatus,
    /// Record version.
    pub version: u64,
    /// Signed assertion of this state (shared with the assertion cache:
    /// a clone copies no bytes).
    pub assertion: SignedTrustAssertion,
    /// Until when it holds.
    pub next_update: OffsetDateTime,
    /// Why the status is what it is beyond the record (e.g. revoked certificate).
    pub notes: Vec<String>,
}

struct CachedAssertion {
    version: u64,
    status: TrustStatus,
    signed: SignedTrustAssertion,
    next_update: OffsetDateTime,
}

/// Certificates a peer chain in a request may hold.
pub const MAX_CHAIN: usize = 4;

/// Verified peer chains remembered (by leaf fingerprint) before the cache
/// is emptied: each entry is the leaf's subject, extension, identity and
/// two digests, counted as the leaf's length (what it holds is parsed out
/// of the leaf) and its slot, about 1 KB for a device certificate ...
const MAX_CHAINS: usize = 65_536;
/// ... and at most this many bytes of them.
const MAX_CHAIN_BYTES: usize = 64 << 20;
/// Signed assertions remembered at most (one per device) ...
const MAX_CACHE: usize = 200_000;
/// ... and at most this many bytes of them: each holds its body and
/// signature (about 400 bytes) and shares the responder's chain, counted
/// once, so about 100,000 fit.
const MAX_ASSERTION_BYTES: usize = 64 << 20;
const MAX_REASON: usize = 512;

/// The trust database engine.
pub struct TrustEngine {
    cfg: TrustEngineConfig,
    storage: Arc<dyn Storage>,
    policy: RwLock<Arc<TrustPolicy>>,
    detection: RwLock<Arc<DetectionPolicy>>,
    loader: Option<PolicyLoader>,
    revocation_hook: std::sync::OnceLock<RevocationHook>,
    issuer_check: std::sync::OnceLock<IssuerCheck>,
    chains: Mutex<bounded::Bounded<[u8; 32], Arc<VerifiedChain>>>,
    assertions: Mutex<HashMap<String, CachedAssertion>>,
    /// What the store says about local devices, while it is unchanged.
    standings: standing::StandingCache,
    federation: Option<Box<dyn PeerDatabases>>,
    systems: std::sync::OnceLock<Arc<crate::SystemRegistry>>,
    /// The trust list in force: foreign roots and the sectors each may
    /// vouch for ([`TrustEngine::set_trust_list`]).
    trust_list: ListInForce,
    /// CRLs of foreign sector CAs ([`TrustEngine::set_foreign_crls`]).
    foreign_crls: RwLock<Arc<Vec<Vec<u8>>>>,
    /// Grows whenever the foreign CRLs change (snapshots are rebuilt).
    foreign_crls_generation: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TrustEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustEngine")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn sign_err(e: impl std::fmt::Display) -> TrustDbError {
    TrustDbError::Signing(e.to_string())
}

fn view(urn: &str, r: &TrustRecord) -> msg::TrustRecordView {
    msg::TrustRecordView {
        identity: urn.to_owned(),
        sector: r.sector.clone(),
        level: r.level as u32,
        status: r.status,
        version: r.version,
        updated_at: r.updated_at,
    }
}

pub(crate) fn check_reason(reason: &str) -> Result<(), TrustDbError> {
    if reason.trim().is_empty() {
        return Err(TrustDbError::InvalidRequest(
            "a reason is required for every trust change".into(),
        ));
    }
    if reason.len() > MAX_REASON {
        return Err(TrustDbError::InvalidRequest(format!(
            "reason is limited to {MAX_REASON} bytes"
        )));
    }
    Ok(())
}

/// `kind:name` of a caller, for history and audit.
pub(crate) fn actor(c: &Credential) -> String {
    format!("{}:{}", c.kind.as_str(), c.name)
}

impl TrustEngine {
    /// Builds an engine.
    pub fn new(
        cfg: TrustEngineConfig,
        storage: Arc<dyn Storage>,
        policy: TrustPolicy,
        detection: DetectionPolicy,
        loader: Option<PolicyLoader>,
        federation: Option<Box<dyn PeerDatabases>>,
    ) -> Result<Self, TrustDbError> {
        if cfg.responder_key.algorithm() != StatementAlgorithm::EcdsaP256Sha256 {
            return Err(sign_err(
                "the trust responder key must be ECDSA P-256 (verifiers expect it)",
            ));
        }
        Ok(Self {
            cfg,
            storage,
            policy: RwLock::new(Arc::new(policy)),
            detection: RwLock::new(Arc::new(detection)),
            loader,
            revocation_hook: std::sync::OnceLock::new(),
            issuer_check: std::sync::OnceLock::new(),
            trust_list: ListInForce::default(),
            foreign_crls: RwLock::new(Arc::new(Vec::new())),
            foreign_crls_generation: std::sync::atomic::AtomicU64::new(0),
            chains: Mutex::new(bounded::Bounded::new(MAX_CHAINS, MAX_CHAIN_BYTES)),
            assertions: Mutex::new(HashMap::new()),
            standings: standing::StandingCache::default(),
            federation,
            systems: std::sync::OnceLock::new(),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<TrustPolicy> {
        match self.policy.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The detection templates in force.
    pub fn detection(&self) -> Arc<DetectionPolicy> {
        match self.detection.read() {
            Ok(p) => Arc::clone(&p),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The store.
    pub(crate) fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// The responder's key and chain (leaf, root), which also sign
    /// snapshots.
    pub(crate) fn responder(&self) -> (&dyn StatementSigner, &ResponderChain) {
        (self.cfg.responder_key.as_ref(), &self.cfg.responder_chain)
    }

    /// Sectors this instance answers for itself (empty: all).
    pub(crate) fn authoritative(&self) -> &[SectorName] {
        &self.cfg.authoritative
    }

    /// Whether the store holds a caller's certificate as revoked.
    pub fn credential_revoked(&self, c: &Credential) -> Result<bool, TrustDbError> {
        let serial = trustca_model::hexfmt::decode(&c.serial).unwrap_or_default();
        Ok(self
            .storage
            .certificate(&serial)?
            .is_some_and(|r| matches!(r.status, CertificateStatus::Revoked { .. })))
    }

    /// Sets what runs after revocations (CRL reissue); once.
    pub fn set_revocation_hook(&self, hook: RevocationHook) {
        let _ = self.revocation_hook.set(hook);
    }

    /// Sets how to learn that a sector's CA was revoked by the root; once.
    /// Its devices then answer `revoked` from that moment, before the
    /// store has revoked their certificates (within seconds).
    pub fn set_issuer_check(&self, check: IssuerCheck) {
        let _ = self.issuer_check.set(check);
    }

    /// Sets the systems of linked devices `Decide` takes into account; once.
    pub fn set_systems(&self, systems: Arc<crate::SystemRegistry>) {
        let _ = self.systems.set(systems);
    }

    /// The systems of linked devices, if set.
    pub fn systems(&self) -> Option<&Arc<crate::SystemRegistry>> {
        self.systems.get()
    }

    /// Why `sector`'s CA no longer vouches for its devices, if it does not.
    pub(crate) fn sector_ca_revoked(&self, sector: &SectorName) -> Option<String> {
        self.issuer_check.get().and_then(|c| c(sector))
    }

    /// Puts a trust list (checked against this root by the caller) in
    /// force: peers under the roots it lists are then recognised for the
    /// sectors it names, until its `nextUpdate`. `None` recognises none.
    pub fn set_trust_list(&self, list: Option<CheckedTrustList>) {
        self.trust_list.set(list, None, OffsetDateTime::now_utc());
    }

    /// The list in force as a shared handle: the TLS acceptor and the
    /// per-request authentication read the same list the engine does, and
    /// whoever sets it through the handle sets it for all.
    pub fn trust_list_in_force(&self) -> ListInForce {
        self.trust_list.clone()
    }

    pub(crate) fn trust_list(&self) -> Option<Arc<CheckedTrustList>> {
        self.trust_list.get()
    }

    /// Puts the CRLs of foreign sector CAs in force (DER, unchecked: each
    /// is checked against the issuing CA of the peer chain it is used for).
    /// A foreign peer is then refused when its CA's CRL lists it.
    pub fn set_foreign_crls(&self, crls: Vec<Vec<u8>>) {
        let mut held = match self.foreign_crls.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if **held != crls {
            *held = Arc::new(crls);
            self.foreign_crls_generation
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// How often the foreign CRLs changed: a snapshot built before the
    /// last change is stale.
    pub(crate) fn foreign_crls_generation(&self) -> u64 {
        self.foreign_crls_generation
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn foreign_crls(&self) -> Arc<Vec<Vec<u8>>> {
        match self.foreign_crls.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn after_revocation(&self, sector: &SectorName) {
        if let Some(hook) = self.revocation_hook.get() {
            hook(sector);
        }
    }

    /// Re-reads the policy files. A bad file is refused and the running
    /// policy stays.
    pub fn reload(&self) -> Result<Arc<TrustPolicy>, TrustDbError> {
        let loader = self
            .loader
            .as_ref()
            .ok_or_else(|| TrustDbError::PolicyReload("no policy source".into()))?;
        let (trust, detection) = loader().map_err(TrustDbError::PolicyReload)?;
        let fresh = Arc::new(trust);
        match self.policy.write() {
            Ok(mut p) => *p = Arc::clone(&fresh),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&fresh),
        }
        match self.detection.write() {
            Ok(mut p) => *p = Arc::new(detection),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(detection),
        }
        tracing::info!(version = %fresh.version(), "trust policy reloaded");
        Ok(fresh)
    }

    pub(crate) fn is_local(&self, sector: &SectorName) -> bool {
        self.cfg.authoritative.is_empty() || self.cfg.authoritative.contains(sector)
    }

    /// Verifies a peer chain, remembering successes by leaf fingerprint.
    pub fn verify_peer(
        &self,
        chain: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<Arc<VerifiedChain>, String> {
        let leaf = chain.first().ok_or("no certificate given")?;
        let fp = trustca_model::fingerprint(leaf);
        if let Ok(cache) = self.chains.lock()
            && let Some(v) = cache.get(&fp)
        {
            if now > v.not_after {
                return Err(format!("certificate expired on {}", v.not_after));
            }
            return Ok(Arc::clone(v));
        }
        let v = match trustca_model::verify_chain(
            chain,
            &self.cfg.sector_cas,
            &self.cfg.root_der,
            now,
            &self.cfg.extension_oid,
        ) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                // Not cached: the list may lapse or be replaced.
                let Some(list) = self.trust_list() else {
                    return Err(e.to_string());
                };
                return list
                    .list
                    .verify_foreign_chain(chain, now, &self.cfg.extension_oid)
                    .map(Arc::new)
                    .map_err(|why| format!("{e}; {why}"));
            }
        };
        if let Ok(mut cache) = self.chains.lock() {
            cache.insert(fp, Arc::clone(&v), leaf.len());
        }
        Ok(v)
    }
}
