//! The trust engine: live trust of devices, cooperation decisions, signed
//! assertions and operator changes.
//!
//! Hot path (`decide`): a peer chain is verified once and remembered by its
//! leaf, with the identity key of its device; the live records are read once and remembered until the
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

/// Verified peer chains remembered (by the tail of the leaf) before the
/// cache is emptied: each entry is the leaf itself, its subject,
/// extension, identity and key and two digests, counted as twice the
/// leaf's length (the leaf, and what is parsed out of it) and its slot,
/// about 1.5 KB for a device certificate ...
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

/// A verified peer chain as the engine remembers it, with what every
/// query about it needs and is made once: the identity key of the device
/// it names.
#[derive(Debug)]
pub(crate) struct KnownPeer {
    /// The leaf, DER: a remembered chain answers only for the same
    /// certificate, byte for byte.
    leaf: Vec<u8>,
    /// What verifying the chain established.
    pub(crate) verified: Arc<VerifiedChain>,
    /// The key of `verified.identity` ([`DeviceIdentity::key`]).
    pub(crate) identity_key: Option<String>,
}

impl KnownPeer {
    fn new(leaf: &[u8], verified: VerifiedChain) -> Self {
        Self {
            leaf: leaf.to_vec(),
            identity_key: verified.identity.as_ref().map(DeviceIdentity::key),
            verified: Arc::new(verified),
        }
    }
}

/// Bytes of a leaf's end the chain cache finds it by.
const LEAF_TAIL: usize = 32;

/// Where the chain cache holds `leaf`: its last bytes, which are its
/// signature's (unique to the certificate; two leaves that share them
/// only take each other's place, as the entry's leaf is compared whole).
/// Taking them costs nothing, where the SHA-256 of the leaf this replaced
/// was a tenth of a `DecideBatch` decision's engine time.
fn leaf_tail(leaf: &[u8]) -> [u8; LEAF_TAIL] {
    let mut tail = [0u8; LEAF_TAIL];
    let from = leaf.len().saturating_sub(LEAF_TAIL);
    let end = leaf.get(from..).unwrap_or_default();
    tail[..end.len()].copy_from_slice(end);
    tail
}

/// The chain `cache` remembers for `leaf` (found at `slot`, its tail):
/// only one verified for the same leaf, byte for byte.
fn remembered<'a>(
    cache: &'a bounded::Bounded<[u8; LEAF_TAIL], Arc<KnownPeer>>,
    slot: [u8; LEAF_TAIL],
    leaf: &[u8],
) -> Option<&'a Arc<KnownPeer>> {
    cache.get(&slot).filter(|known| known.leaf == leaf)
}

/// The trust database engine.
pub struct TrustEngine {
    cfg: TrustEngineConfig,
    storage: Arc<dyn Storage>,
    policy: RwLock<Arc<TrustPolicy>>,
    detection: RwLock<Arc<DetectionPolicy>>,
    loader: Option<PolicyLoader>,
    revocation_hook: std::sync::OnceLock<RevocationHook>,
    issuer_check: std::sync::OnceLock<IssuerCheck>,
    chains: Mutex<bounded::Bounded<[u8; LEAF_TAIL], Arc<KnownPeer>>>,
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
        Ok(self
            .storage
            .certificate(&c.serial_octets)?
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

    /// Verifies a peer chain, remembering successes by their leaf.
    pub fn verify_peer(
        &self,
        chain: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<Arc<VerifiedChain>, String> {
        self.known_peer(chain, now)
            .map(|peer| Arc::clone(&peer.verified))
    }

    /// [`TrustEngine::verify_peer`], with the identity key of the device
    /// the chain names.
    pub(crate) fn known_peer(
        &self,
        chain: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<Arc<KnownPeer>, String> {
        let leaf = chain.first().ok_or("no certificate given")?;
        let slot = leaf_tail(leaf);
        if let Ok(cache) = self.chains.lock()
            && let Some(known) = remembered(&cache, slot, leaf)
        {
            if now > known.verified.not_after {
                return Err(format!(
                    "certificate expired on {}",
                    known.verified.not_after
                ));
            }
            return Ok(Arc::clone(known));
        }
        let known = match trustca_model::verify_chain(
            chain,
            &self.cfg.sector_cas,
            &self.cfg.root_der,
            now,
            &self.cfg.extension_oid,
        ) {
            Ok(v) => Arc::new(KnownPeer::new(leaf, v)),
            Err(e) => {
                // Not cached: the list may lapse or be replaced.
                let Some(list) = self.trust_list() else {
                    return Err(e.to_string());
                };
                return list
                    .list
                    .verify_foreign_chain(chain, now, &self.cfg.extension_oid)
                    .map(|v| Arc::new(KnownPeer::new(leaf, v)))
                    .map_err(|why| format!("{e}; {why}"));
            }
        };
        if let Ok(mut cache) = self.chains.lock() {
            cache.insert(slot, Arc::clone(&known), 2 * leaf.len());
        }
        Ok(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(serial: u8) -> VerifiedChain {
        VerifiedChain {
            subject: format!("CN=device {serial}"),
            extension: None,
            identity: None,
            not_after: OffsetDateTime::UNIX_EPOCH,
            serial: vec![serial],
            fingerprint: [serial; 32],
            key_fingerprint: [serial; 32],
        }
    }

    #[test]
    fn a_leaf_is_found_by_its_tail() {
        let leaf: Vec<u8> = (0..100).collect();
        let tail = leaf_tail(&leaf);
        assert_eq!(tail.as_slice(), &leaf[68..]);
        // A leaf shorter than the tail fills it from the start.
        assert_eq!(&leaf_tail(&[7, 8])[..3], &[7, 8, 0]);
        assert_eq!(leaf_tail(&[]), [0; LEAF_TAIL]);
    }

    #[test]
    fn leaves_sharing_their_tail_never_answer_for_each_other() {
        let mut cache = bounded::Bounded::new(10, usize::MAX);
        let leaf: Vec<u8> = (0..100).collect();
        let mut forged = leaf.clone();
        forged[10] ^= 1;
        let slot = leaf_tail(&leaf);
        assert_eq!(slot, leaf_tail(&forged));
        cache.insert(slot, Arc::new(KnownPeer::new(&leaf, verified(1))), 0);
        let hit = remembered(&cache, slot, &leaf).expect("the same leaf");
        assert_eq!(hit.verified.serial, [1]);
        assert!(remembered(&cache, slot, &forged).is_none());
        assert!(remembered(&cache, slot, &leaf[1..]).is_none());
    }
}
