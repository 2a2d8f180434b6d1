//! The trust engine: live trust of devices, cooperation decisions, signed
//! assertions and operator changes.
//!
//! Hot path (`decide`): a peer chain is verified once and remembered by its
//! fingerprint (the live record is still read on every query, so
//! revocations and downgrades take effect at once); the policy is parsed
//! once per load and shared as an `Arc`; an assertion is signed once per
//! record version and reused until it nears expiry. No signature and no
//! parsing per query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use trustca_model::{
    CertificateKind, Credential, DetectionPolicy, DeviceIdentity, SectorName, SignedTrustAssertion,
    Standing, StatementAlgorithm, StatementSigner, TrustAssertion, TrustLevel, TrustPolicy,
    TrustStatus, VerifiedChain,
};
use trustca_proto::v1 as pb;
use trustca_store::{CertificateStatus, Storage, TrustChange, TrustRecord};

use crate::TrustDbError;
use crate::federation::Federation;
use trustca_model::firmware;
use trustca_model::trust_list::CheckedTrustList;

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
    /// The responder's chain (leaf, root), DER.
    pub responder_chain: Vec<Vec<u8>>,
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
    /// Signed assertion of this state.
    pub assertion: Arc<pb::SignedAssertion>,
    /// Until when it holds.
    pub next_update: OffsetDateTime,
    /// Why the status is what it is beyond the record (e.g. revoked certificate).
    pub notes: Vec<String>,
}

struct CachedAssertion {
    version: u64,
    status: TrustStatus,
    signed: Arc<pb::SignedAssertion>,
    next_update: OffsetDateTime,
}

const MAX_CACHE: usize = 200_000;
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
    chains: Mutex<HashMap<[u8; 32], Arc<VerifiedChain>>>,
    assertions: Mutex<HashMap<String, CachedAssertion>>,
    federation: Option<Federation>,
    systems: std::sync::OnceLock<Arc<crate::SystemRegistry>>,
    /// The trust list in force: foreign roots and the sectors each may
    /// vouch for ([`TrustEngine::set_trust_list`]).
    trust_list: RwLock<Option<Arc<CheckedTrustList>>>,
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

fn view(urn: &str, r: &TrustRecord) -> pb::TrustRecordView {
    pb::TrustRecordView {
        identity: urn.to_owned(),
        sector: r.sector.clone(),
        level: r.level as u32,
        status: r.status.as_str().to_owned(),
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
        federation: Option<Federation>,
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
            trust_list: RwLock::new(None),
            foreign_crls: RwLock::new(Arc::new(Vec::new())),
            foreign_crls_generation: std::sync::atomic::AtomicU64::new(0),
            chains: Mutex::new(HashMap::new()),
            assertions: Mutex::new(HashMap::new()),
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
    pub(crate) fn responder(&self) -> (&dyn StatementSigner, &[Vec<u8>]) {
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
    pub(crate) fn systems(&self) -> Option<&Arc<crate::SystemRegistry>> {
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
        let list = list.map(Arc::new);
        match self.trust_list.write() {
            Ok(mut l) => *l = list,
            Err(poisoned) => *poisoned.into_inner() = list,
        }
    }

    pub(crate) fn trust_list(&self) -> Option<Arc<CheckedTrustList>> {
        match self.trust_list.read() {
            Ok(l) => l.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
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
            if cache.len() >= MAX_CACHE {
                cache.clear();
            }
            cache.insert(fp, Arc::clone(&v));
        }
        Ok(v)
    }

    fn signed_assertion(
        &self,
        urn: &str,
        record: &TrustRecord,
        status: TrustStatus,
        now: OffsetDateTime,
    ) -> Result<(Arc<pb::SignedAssertion>, OffsetDateTime), TrustDbError> {
        let ttl = time::Duration::try_from(self.cfg.assertion_ttl).unwrap_or(time::Duration::HOUR);
        let refresh = ttl / 4;
        if let Ok(cache) = self.assertions.lock()
            && let Some(c) = cache.get(&record.identity_key)
            && c.version == record.version
            && c.status == status
            && now + refresh < c.next_update
        {
            return Ok((Arc::clone(&c.signed), c.next_update));
        }
        let next_update = now + ttl;
        let assertion = TrustAssertion {
            identity: urn.to_owned(),
            sector: SectorName::new(&record.sector)?,
            level: TrustLevel::new(record.level as i64)?,
            status,
            record_version: record.version,
            produced_at: now,
            next_update,
            system_cap: None,
        };
        let signed = SignedTrustAssertion::sign(
            &assertion,
            self.cfg.responder_key.as_ref(),
            self.cfg.responder_chain.clone(),
        )?;
        let signed = Arc::new(pb::SignedAssertion {
            body: signed.body,
            signature: signed.signature,
            responder_chain: signed.responder_chain,
        });
        if let Ok(mut cache) = self.assertions.lock() {
            if cache.len() >= MAX_CACHE {
                cache.clear();
            }
            cache.insert(
                record.identity_key.clone(),
                CachedAssertion {
                    version: record.version,
                    status,
                    signed: Arc::clone(&signed),
                    next_update,
                },
            );
        }
        Ok((signed, next_update))
    }

    /// The live state of a locally held device; `serial` is the certificate
    /// presented, whose own revocation also counts.
    fn local_state(
        &self,
        identity: &DeviceIdentity,
        serial: Option<&[u8]>,
        key_fp: Option<&[u8; 32]>,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        let key = identity.key();
        let record = self.storage.trust_record(&key)?.ok_or_else(|| {
            TrustDbError::NotFound(format!(
                "{} is not enrolled in the {} database",
                identity.urn(),
                identity.sector
            ))
        })?;
        let mut status = record.status;
        let mut notes = Vec::new();
        if let Some(serial) = serial
            && let Some(cert) = self.storage.certificate(serial)?
            && let CertificateStatus::Revoked { reason, .. } = cert.status
        {
            status = TrustStatus::Revoked;
            notes.push(format!(
                "certificate revoked ({}, reason code {reason})",
                trustca_model::revocation::reason_name(reason)
            ));
        }
        // A key revoked for compromise counts in every certificate that
        // carries it, including ones issued before the compromise was known.
        if let Some(key_fp) = key_fp
            && let Some(block) = self.storage.blocked_key(key_fp)?
        {
            status = TrustStatus::Revoked;
            notes.push(format!(
                "key was revoked for compromise on {}",
                block.date()
            ));
        }
        if let Some(why) = self.issuer_check.get().and_then(|c| c(&identity.sector)) {
            status = TrustStatus::Revoked;
            notes.push(why);
        }
        if record.status == TrustStatus::Revoked {
            notes.push(self.revocation_note(&key)?);
        }
        let urn = self
            .storage
            .device(&key)?
            .map(|d| d.urn)
            .unwrap_or_else(|| identity.urn());
        let (assertion, next_update) = self.signed_assertion(&urn, &record, status, now)?;
        Ok(LiveState {
            identity: urn,
            sector: identity.sector.clone(),
            level: TrustLevel::new(record.level as i64)?,
            status,
            version: record.version,
            assertion,
            next_update,
            notes,
        })
    }

    /// Why a device's record is `revoked`: its last certificate's reason.
    fn revocation_note(&self, identity_key: &str) -> Result<String, TrustDbError> {
        let last = self
            .storage
            .device(identity_key)?
            .and_then(|d| d.certificates.last().cloned())
            .and_then(|h| trustca_model::hexfmt::decode(&h));
        let status = match last {
            Some(serial) => self.storage.certificate(&serial)?.map(|c| c.status),
            None => None,
        };
        Ok(match status {
            Some(CertificateStatus::Revoked { reason, at }) => format!(
                "device revoked: every certificate is revoked (last for {} on {})",
                trustca_model::revocation::reason_name(reason),
                OffsetDateTime::from_unix_timestamp(at)
                    .ok()
                    .and_then(|t| t
                        .format(&time::format_description::well_known::Rfc3339)
                        .ok())
                    .unwrap_or_default()
            ),
            _ => "device revoked".to_owned(),
        })
    }

    async fn remote_state(
        &self,
        asked: &DeviceIdentity,
        cache_key: Vec<u8>,
        request: pb::GetTrustRequest,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        let sector = &asked.sector;
        // The root's revocation of the sector's CA is known here from the
        // ARL; the revoked sector's own database is not asked (and its
        // cached answers are not used).
        if let Some(why) = self.issuer_check.get().and_then(|c| c(sector)) {
            return Err(TrustDbError::IssuerRevoked(why));
        }
        let federation = self
            .federation
            .as_ref()
            .filter(|f| f.serves(sector))
            .ok_or_else(|| TrustDbError::Unreachable {
                sector: sector.to_string(),
                reason:
                    "this instance is not authoritative for it and no peer database is configured"
                        .into(),
            })?;
        let answer = federation.get_trust(sector, cache_key, request).await?;
        let signed = answer.assertion.ok_or_else(|| TrustDbError::Unreachable {
            sector: sector.to_string(),
            reason: "peer database answered without a signed assertion".into(),
        })?;
        let checked = SignedTrustAssertion {
            body: signed.body.clone(),
            signature: signed.signature.clone(),
            responder_chain: signed.responder_chain.clone(),
        }
        .verify_from_sector(&self.cfg.root_der, now, &self.cfg.extension_oid, sector)
        .map_err(|e| TrustDbError::Unreachable {
            sector: sector.to_string(),
            reason: format!("bad answer: {e}"),
        })?;
        // A validly signed answer about another device (a confused or
        // malicious peer, or a replayed answer) must not stand in for the
        // device asked about. Identities compare case-insensitively.
        let about = DeviceIdentity::from_urn(&checked.identity).map(|i| i.key());
        if about.as_ref().ok() != Some(&asked.key()) {
            return Err(TrustDbError::Unreachable {
                sector: sector.to_string(),
                reason: format!(
                    "the answer is about {}, not {}",
                    checked.identity,
                    asked.urn()
                ),
            });
        }
        Ok(LiveState {
            identity: checked.identity,
            sector: checked.sector,
            level: checked.level,
            status: checked.status,
            version: checked.record_version,
            assertion: Arc::new(signed),
            next_update: checked.next_update,
            notes: answer.reasons,
        })
    }

    /// The live state of the device a verified chain names.
    async fn state_for_chain(
        &self,
        chain: &[Vec<u8>],
        verified: &VerifiedChain,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        let identity = verified.identity.as_ref().ok_or_else(|| {
            TrustDbError::InvalidRequest(
                "certificate names no device (not a long-term device certificate)".into(),
            )
        })?;
        if let Some(list) = self.trust_list()
            && list.list.lists_sector(&identity.sector)
        {
            let crls = self.foreign_crls();
            let issuer = chain.get(1).map(Vec::as_slice);
            return crate::foreign::state(&list.list, identity, verified, issuer, &crls, now);
        }
        if self.is_local(&identity.sector) {
            self.local_state(
                identity,
                Some(&verified.serial),
                Some(&verified.key_fingerprint),
                now,
            )
        } else {
            let req = pb::GetTrustRequest {
                subject: Some(pb::get_trust_request::Subject::Chain(
                    pb::CertificateChain {
                        certificates: chain.to_vec(),
                    },
                )),
            };
            self.remote_state(identity, verified.fingerprint.to_vec(), req, now)
                .await
        }
    }

    /// `GetTrust`: by chain, fingerprint or identity.
    pub async fn get_trust(
        &self,
        subject: Option<pb::get_trust_request::Subject>,
    ) -> Result<pb::TrustAnswer, TrustDbError> {
        use pb::get_trust_request::Subject;
        let now = OffsetDateTime::now_utc();
        let (state, certificate_level) = match subject {
            None => {
                return Err(TrustDbError::InvalidRequest(
                    "give a certificate chain, a fingerprint or an identity".into(),
                ));
            }
            Some(Subject::Chain(c)) => {
                let verified = self
                    .verify_peer(&c.certificates, now)
                    .map_err(TrustDbError::InvalidRequest)?;
                let level = verified
                    .extension
                    .as_ref()
                    .and_then(|e| e.level)
                    .map(|l| l.get() as u32)
                    .unwrap_or(0);
                (
                    self.state_for_chain(&c.certificates, &verified, now)
                        .await?,
                    level,
                )
            }
            Some(Subject::Fingerprint(fp)) => {
                let fp: [u8; 32] = fp.as_slice().try_into().map_err(|_| {
                    TrustDbError::InvalidRequest("fingerprint must be 32 bytes (SHA-256)".into())
                })?;
                let serial = self.storage.serial_by_fingerprint(&fp)?.ok_or_else(|| {
                    TrustDbError::NotFound("no certificate with this fingerprint here".into())
                })?;
                let cert = self
                    .storage
                    .certificate(&serial)?
                    .ok_or_else(|| TrustDbError::NotFound("certificate record missing".into()))?;
                let key = cert.identity_key.clone().ok_or_else(|| {
                    TrustDbError::InvalidRequest("certificate is not a device certificate".into())
                })?;
                let device = self
                    .storage
                    .device(&key)?
                    .ok_or_else(|| TrustDbError::NotFound(key.clone()))?;
                let identity = DeviceIdentity::from_urn(&device.urn)?;
                let key = trustca_model::certificate_key_fingerprint(&cert.der).ok();
                (
                    self.local_state(&identity, Some(&serial), key.as_ref(), now)?,
                    device.certificate_level as u32,
                )
            }
            Some(Subject::Identity(urn)) => {
                let identity = DeviceIdentity::from_urn(&urn)?;
                if self.is_local(&identity.sector) {
                    (self.local_state(&identity, None, None, now)?, 0)
                } else {
                    let req = pb::GetTrustRequest {
                        subject: Some(Subject::Identity(urn.clone())),
                    };
                    (
                        self.remote_state(&identity, urn.into_bytes(), req, now)
                            .await?,
                        0,
                    )
                }
            }
        };
        Ok(pb::TrustAnswer {
            identity: state.identity.clone(),
            sector: state.sector.to_string(),
            certificate_level,
            live_level: state.level.get() as u32,
            status: state.status.as_str().to_owned(),
            record_version: state.version,
            reasons: state.notes.clone(),
            assertion: Some((*state.assertion).clone()),
        })
    }

    /// `Decide`: may `caller` cooperate with the peer of `peer_chain` for
    /// `operation`, and how deeply? Problems with the peer are answered as
    /// a deny with reasons; problems with the request are errors.
    pub async fn decide(
        &self,
        caller: &Credential,
        peer_chain: &[Vec<u8>],
        operation: &str,
    ) -> Result<pb::Decision, TrustDbError> {
        let now = OffsetDateTime::now_utc();
        let policy = self.policy();
        if !policy.knows_operation(operation) {
            return Err(trustca_model::ModelError::UnknownOperation(
                operation.chars().take(80).collect(),
            )
            .into());
        }
        let caller_identity = match (&caller.kind, &caller.identity) {
            (CertificateKind::LongTerm, Some(id)) => id.clone(),
            _ => {
                return Err(TrustDbError::PermissionDenied(format!(
                    "Decide is asked by devices with their own certificate; the caller holds {} certificate (use GetTrust)",
                    caller.kind.with_article()
                )));
            }
        };
        let deny =
            |reasons: Vec<String>, peer_sector: String, peer_identity: String| pb::Decision {
                allow: false,
                depth: "none".into(),
                required_depth: String::new(),
                caller_level: 0,
                peer_level: 0,
                peer_sector,
                peer_identity,
                rule: String::new(),
                reasons,
                valid_from: now.unix_timestamp(),
                valid_until: now.unix_timestamp(),
                peer_assertion: None,
                policy_version: policy.version(),
                peer_own_level: 0,
                peer_system_cap: None,
                peer_system_assertion: None,
            };
        // The caller's own standing, from its own sector's database.
        let caller_state = if self.is_local(&caller_identity.sector) {
            let serial = trustca_model::hexfmt::decode(&caller.serial);
            self.local_state(
                &caller_identity,
                serial.as_deref(),
                Some(&caller.key_fingerprint),
                now,
            )
        } else {
            let req = pb::GetTrustRequest {
                subject: Some(pb::get_trust_request::Subject::Identity(
                    caller_identity.urn(),
                )),
            };
            self.remote_state(
                &caller_identity,
                caller_identity.urn().into_bytes(),
                req,
                now,
            )
            .await
        };
        // A damaged or tampered record is the store's failure, not the
        // device's standing: DATA_LOSS, never a decision.
        let caller_state = match caller_state {
            Ok(s) => s,
            Err(e) if e.is_data_loss() => return Err(e),
            Err(e) => {
                return Ok(deny(
                    vec![format!("caller: {e}")],
                    String::new(),
                    String::new(),
                ));
            }
        };
        let verified = match self.verify_peer(peer_chain, now) {
            Ok(v) => v,
            Err(reason) => {
                return Ok(deny(
                    vec![format!("peer certificate rejected: {reason}")],
                    String::new(),
                    String::new(),
                ));
            }
        };
        let peer_sector = verified
            .extension
            .as_ref()
            .map(|e| e.sector.to_string())
            .unwrap_or_default();
        let mut peer_state = match self.state_for_chain(peer_chain, &verified, now).await {
            Ok(s) => s,
            Err(e) if e.is_data_loss() => return Err(e),
            Err(e) => return Ok(deny(vec![format!("peer: {e}")], peer_sector, String::new())),
        };
        // A member of a system of linked devices is judged at its
        // effective level there, from the live records (crate::systems).
        let peer_own_level = peer_state.level.get() as u32;
        let peer_system = self.apply_system_cap(&mut peer_state, verified.identity.as_ref())?;
        fn side(s: &LiveState) -> Standing<'_> {
            Standing {
                sector: &s.sector,
                level: s.level,
                status: s.status,
                notes: &s.notes,
            }
        }
        let outcome = policy.decide_standing(side(&caller_state), side(&peer_state), operation)?;
        let ttl =
            time::Duration::try_from(self.cfg.decision_ttl).unwrap_or(time::Duration::MINUTE * 5);
        let valid_until = (now + ttl)
            .min(peer_state.next_update)
            .min(caller_state.next_update);
        Ok(pb::Decision {
            allow: outcome.allow,
            depth: outcome.depth,
            required_depth: outcome.required_depth,
            caller_level: outcome.caller_level.map(|l| l.get() as u32).unwrap_or(0),
            peer_level: outcome.peer_level.map(|l| l.get() as u32).unwrap_or(0),
            peer_sector,
            peer_identity: peer_state.identity.clone(),
            rule: outcome.rule.unwrap_or_default(),
            reasons: outcome.reasons,
            valid_from: now.unix_timestamp(),
            valid_until: valid_until.unix_timestamp(),
            peer_assertion: Some((*peer_state.assertion).clone()),
            policy_version: policy.version(),
            peer_own_level,
            peer_system_cap: peer_system.as_ref().map(|s| s.cap.clone()),
            peer_system_assertion: peer_system.map(|s| s.assertion),
        })
    }

    fn operator_for(&self, caller: &Credential, sector: &SectorName) -> Result<(), TrustDbError> {
        if caller.kind != CertificateKind::Operator {
            return Err(TrustDbError::PermissionDenied(format!(
                "trust changes need an operator credential; the caller holds {} certificate",
                caller.kind.with_article()
            )));
        }
        if !caller.may_act_for(sector) {
            return Err(TrustDbError::PermissionDenied(format!(
                "operator {} is not authorized for sector {sector}",
                caller.name
            )));
        }
        Ok(())
    }

    fn local_identity(&self, urn: &str) -> Result<DeviceIdentity, TrustDbError> {
        let identity = DeviceIdentity::from_urn(urn)?;
        if !self.is_local(&identity.sector) {
            return Err(TrustDbError::FailedPrecondition(format!(
                "this database is not authoritative for sector {}; ask its own database",
                identity.sector
            )));
        }
        Ok(identity)
    }

    fn record(&self, identity: &DeviceIdentity) -> Result<TrustRecord, TrustDbError> {
        self.storage
            .trust_record(&identity.key())?
            .ok_or_else(|| TrustDbError::NotFound(format!("{} is not enrolled", identity.urn())))
    }

    /// Operator change of one device (set level, suspend, restore, retire,
    /// transfer). Durable and audited on return.
    pub fn change_trust(
        &self,
        caller: &Credential,
        req: pb::ChangeTrustRequest,
    ) -> Result<pb::TrustRecordView, TrustDbError> {
        use pb::change_trust_request::Change;
        let identity = self.local_identity(&req.identity)?;
        self.operator_for(caller, &identity.sector)?;
        check_reason(&req.reason)?;
        let record = self.record(&identity)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let who = actor(caller);
        let change = |level: Option<u8>, status: Option<TrustStatus>, text: String, kind: &str| {
            TrustChange {
                identity_key: identity.key(),
                level,
                status,
                actor: who.clone(),
                change: text,
                reason: req.reason.clone(),
                audit_kind: kind.to_owned(),
            }
        };
        let c = match req.change {
            None => return Err(TrustDbError::InvalidRequest("no change given".into())),
            Some(Change::SetLevel(level)) => {
                let level = TrustLevel::new(level as i64)?;
                let device = self
                    .storage
                    .device(&identity.key())?
                    .ok_or_else(|| TrustDbError::NotFound(identity.urn()))?;
                if level.get() > device.certificate_level {
                    return Err(TrustDbError::FailedPrecondition(format!(
                        "Lv.{} is above the Lv.{} its evidence earned; raise it by re-enrolling with new evidence",
                        level.get(),
                        device.certificate_level
                    )));
                }
                if record.status == TrustStatus::Retired || record.status == TrustStatus::Revoked {
                    return Err(TrustDbError::FailedPrecondition(format!(
                        "device is {}",
                        record.status.as_str()
                    )));
                }
                change(
                    Some(level.get()),
                    None,
                    format!("level {} -> {}", record.level, level.get()),
                    "trust.level-changed",
                )
            }
            Some(Change::Suspend(_)) => {
                if record.status != TrustStatus::Active {
                    return Err(TrustDbError::FailedPrecondition(format!(
                        "only active devices are suspended; this one is {}",
                        record.status.as_str()
                    )));
                }
                change(
                    None,
                    Some(TrustStatus::Suspended),
                    "suspended".into(),
                    "trust.suspended",
                )
            }
            Some(Change::Restore(_)) => {
                if record.status != TrustStatus::Suspended {
                    return Err(TrustDbError::FailedPrecondition(format!(
                        "only suspended devices are restored; this one is {}",
                        record.status.as_str()
                    )));
                }
                change(
                    None,
                    Some(TrustStatus::Active),
                    "restored".into(),
                    "trust.restored",
                )
            }
            Some(Change::Retire(_)) => {
                if record.status == TrustStatus::Retired {
                    return Err(TrustDbError::FailedPrecondition("already retired".into()));
                }
                // Disposal: every certificate is revoked (cessation of
                // operation); the record is kept.
                let serials: Vec<Vec<u8>> = self
                    .storage
                    .device(&identity.key())?
                    .map(|d| {
                        d.certificates
                            .iter()
                            .filter_map(|h| trustca_model::hexfmt::decode(h))
                            .collect()
                    })
                    .unwrap_or_default();
                self.storage.revoke(&serials, 5, &who, &req.reason, now)?;
                self.after_revocation(&identity.sector);
                change(
                    None,
                    Some(TrustStatus::Retired),
                    "retired (disposal): every certificate revoked".into(),
                    "trust.retired",
                )
            }
            Some(Change::TransferTo(successor)) => {
                let to = self.local_identity(&successor)?;
                if to.sector != identity.sector {
                    return Err(TrustDbError::InvalidRequest(
                        "a successor must be of the same sector".into(),
                    ));
                }
                if to.key() == identity.key() {
                    return Err(TrustDbError::InvalidRequest(
                        "a device cannot succeed itself".into(),
                    ));
                }
                let r = self.storage.transfer_trust(
                    &identity.key(),
                    &to.key(),
                    &who,
                    &req.reason,
                    now,
                )?;
                tracing::info!(rpc = "ChangeTrust", operator = %caller.name, device = %identity, successor = %to, outcome = "transferred");
                return Ok(view(&to.urn(), &r));
            }
        };
        let mut out = self.storage.apply_trust_changes(&[c], now)?;
        let r = out
            .pop()
            .ok_or_else(|| TrustDbError::NotFound(identity.urn()))?;
        tracing::info!(rpc = "ChangeTrust", operator = %caller.name, device = %identity, level = r.level, status = r.status.as_str(), outcome = "changed");
        Ok(view(&identity.urn(), &r))
    }

    /// Lowers every matching device to at most `max_level`, atomically.
    pub fn bulk_downgrade(
        &self,
        caller: &Credential,
        req: &pb::BulkDowngradeRequest,
    ) -> Result<pb::BulkDowngradeResponse, TrustDbError> {
        let sector = SectorName::new(&req.sector)?;
        if !self.is_local(&sector) {
            return Err(TrustDbError::FailedPrecondition(format!(
                "not authoritative for sector {sector}"
            )));
        }
        self.operator_for(caller, &sector)?;
        check_reason(&req.reason)?;
        let max = TrustLevel::new(req.max_level as i64)?;
        if req.manufacturer.is_empty() || req.model.is_empty() {
            return Err(TrustDbError::InvalidRequest(
                "manufacturer and model are required".into(),
            ));
        }
        firmware::check_range(&req.firmware_min, &req.firmware_max)
            .map_err(TrustDbError::InvalidRequest)?;
        let prefix = format!("{}/{}/{}/", sector, req.manufacturer, req.model).to_ascii_lowercase();
        let devices = self.storage.devices_with_prefix(&prefix)?;
        let who = actor(caller);
        let mut matched = 0u64;
        let mut changes = Vec::new();
        for d in devices {
            if !firmware::in_range(&d.firmware_version, &req.firmware_min, &req.firmware_max) {
                continue;
            }
            matched += 1;
            let Some(record) = self.storage.trust_record(&d.identity_key)? else {
                continue;
            };
            if record.level > max.get()
                && matches!(record.status, TrustStatus::Active | TrustStatus::Suspended)
            {
                changes.push(TrustChange {
                    identity_key: d.identity_key.clone(),
                    level: Some(max.get()),
                    status: None,
                    actor: who.clone(),
                    change: format!(
                        "bulk downgrade level {} -> {} (firmware {})",
                        record.level,
                        max.get(),
                        d.firmware_version
                    ),
                    reason: req.reason.clone(),
                    audit_kind: "trust.bulk-downgraded".into(),
                });
            }
        }
        let changed = changes.len() as u64;
        if !changes.is_empty() {
            self.storage
                .apply_trust_changes(&changes, OffsetDateTime::now_utc().unix_timestamp())?;
        }
        tracing::info!(rpc = "BulkDowngrade", operator = %caller.name, %sector, matched, changed, outcome = "applied");
        Ok(pb::BulkDowngradeResponse { matched, changed })
    }

    /// A device's record and history (operators and auditors of its sector).
    pub fn history(
        &self,
        caller: &Credential,
        urn: &str,
    ) -> Result<pb::GetHistoryResponse, TrustDbError> {
        let identity = self.local_identity(urn)?;
        if !matches!(
            caller.kind,
            CertificateKind::Operator | CertificateKind::Auditor
        ) || !caller.may_act_for(&identity.sector)
        {
            return Err(TrustDbError::PermissionDenied(format!(
                "history is for operators and auditors of sector {}",
                identity.sector
            )));
        }
        let record = self.record(&identity)?;
        let entries = self
            .storage
            .history(&identity.key())?
            .into_iter()
            .map(|h| pb::HistoryEntryView {
                version: h.version,
                at: h.at,
                actor: h.actor,
                change: h.change,
                reason: h.reason,
            })
            .collect();
        Ok(pb::GetHistoryResponse {
            record: Some(view(&identity.urn(), &record)),
            entries,
        })
    }

    /// Operator-triggered policy reload.
    pub fn reload_by(&self, caller: &Credential) -> Result<pb::ReloadPolicyResponse, TrustDbError> {
        if caller.kind != CertificateKind::Operator {
            return Err(TrustDbError::PermissionDenied(
                "policy reload needs an operator credential".into(),
            ));
        }
        let p = self.reload()?;
        Ok(pb::ReloadPolicyResponse {
            cooperation_version: p.cooperation_version.clone(),
            recognition_version: p.recognition_version.clone(),
        })
    }
}
