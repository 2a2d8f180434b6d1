//! Enrollment: from a manufacturer's request to a durable, signed long-term
//! device certificate.
//!
//! The order of checks gives each bad input its precise error before any
//! expensive work: caller role and sector rights, attributes, evidence and
//! level, then the CSR's proof of possession, then signing, then one atomic
//! commit of everything the issuance changes, made durable before the
//! certificate is returned.

use std::sync::Arc;

use time::OffsetDateTime;
use trustca_model::{
    CertificateKind, Credential, DeviceIdentity, EvaluationBasis, Evidence, EvidenceItem,
    LevelDecision, ModelStatus, PolicySet, PolicySource, SectorName, SectorPolicy, TrustLevel,
    TrustLevelExtension, VerifiedAttestation, validate_firmware_version,
};
use trustca_store::{
    CertificateRecord, CertificateStatus, DeviceRecord, GroupCommitter, Issuance, Storage,
    StoreError,
};

use trustca_model::observe::{NoObserver, Observer};

use crate::CaError;
use crate::attestation::{AttestationBook, TpmKeyAttestation};
use crate::csr::verify_csr;
use crate::hierarchy::CaHierarchy;
use crate::issuer::{self};

mod group_reads;
mod narrower;
mod prepare;

/// The device attributes of a request.
#[derive(Debug, Clone, Default)]
pub struct DeviceAttributes {
    /// Sector name.
    pub sector: String,
    /// Manufacturer (must be the caller's own name).
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial.
    pub serial: String,
    /// Firmware version.
    pub firmware_version: String,
}

/// One enrollment request.
#[derive(Debug, Clone, Default)]
pub struct EnrollmentRequest {
    /// PKCS#10, DER.
    pub csr_der: Vec<u8>,
    /// Device attributes.
    pub device: DeviceAttributes,
    /// Declared evidence.
    pub evidence: Vec<EvidenceItem>,
    /// Renew an enrolled identity instead of enrolling a new one.
    pub renewal: bool,
    /// Refuse a model that is not in the registry even where the sector
    /// allows per-device evidence (EST: it has no evidence channel).
    pub require_registered_model: bool,
    /// A TPM's certification of the CSR's key (`attestation.rs`).
    pub tpm_attestation: Option<TpmKeyAttestation>,
}

/// A certificate issued and durable.
#[derive(Debug, Clone)]
pub struct EnrollmentOutcome {
    /// Leaf, then sector sub-CA, DER.
    pub chain_der: Vec<Vec<u8>>,
    /// Serial, hex.
    pub serial: String,
    /// Level granted.
    pub level: u8,
    /// Identity URN.
    pub identity: String,
    /// Expiry.
    pub not_after: OffsetDateTime,
    /// Policy version applied.
    pub policy_version: String,
}

struct Prepared {
    issuance: Issuance,
    outcome: EnrollmentOutcome,
}

/// Issues long-term device certificates.
pub struct EnrollmentEngine {
    /// The policies in force, read per request (a reload applies to the
    /// next request, `with_policy_source`).
    policies: Arc<dyn PolicySource>,
    /// The trust-level extension's OID, fixed at start like the
    /// certificates already issued under it (a reload does not move it).
    oid: trustca_model::extension::ExtensionOid,
    hierarchy: Arc<CaHierarchy>,
    storage: Arc<dyn Storage>,
    committer: GroupCommitter,
    /// Sectors this instance enrolls for (empty: every sector).
    authoritative: Vec<SectorName>,
    /// Where commit sizes and timings go.
    observer: Arc<dyn Observer>,
    /// Attestation roots and challenges.
    attestation: AttestationBook,
    /// Unary calls waiting to be issued together (`unary.rs`), once one came.
    unary: std::sync::OnceLock<crate::unary::Queue>,
}

impl std::fmt::Debug for EnrollmentEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentEngine").finish_non_exhaustive()
    }
}

/// Refuses a public key (SubjectPublicKeyInfo DER) that was revoked for
/// compromise: PermissionDenied, "key was revoked for compromise on ...".
pub fn refuse_blocked_key(storage: &dyn Storage, spki_der: &[u8]) -> Result<(), CaError> {
    key_refusal(storage.blocked_key(&trustca_model::key_fingerprint(spki_der))?)
}

/// The refusal of a key the store holds `block` on, if any.
fn key_refusal(block: Option<trustca_store::BlockedKey>) -> Result<(), CaError> {
    match block {
        Some(block) => Err(StoreError::KeyCompromised { on: block.date() }.into()),
        None => Ok(()),
    }
}

/// `kind:name` of a caller, as recorded in history and audit entries.
pub fn actor(caller: &Credential) -> String {
    format!("{}:{}", caller.kind.as_str(), caller.name)
}

impl EnrollmentEngine {
    /// The store the engine issues into (for sibling engine modules).
    pub(crate) fn store(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// Builds an engine over a loaded hierarchy and a store.
    pub fn new(
        policies: Arc<PolicySet>,
        hierarchy: Arc<CaHierarchy>,
        storage: Arc<dyn Storage>,
        committer: GroupCommitter,
    ) -> Self {
        Self {
            oid: policies.pki.extensions.trust_level_oid.clone(),
            policies: Arc::new(policies),
            hierarchy,
            attestation: AttestationBook::new(Arc::clone(&storage)),
            storage,
            committer,
            authoritative: Vec::new(),
            observer: Arc::new(NoObserver),
            unary: std::sync::OnceLock::new(),
        }
    }

    /// Confines enrollment to `sectors` (`serve --authoritative`): a device
    /// of another sector belongs in that sector's own instance, whose trust
    /// database holds its record; enrolling it here would create a second,
    /// divergent record. Empty means every sector.
    #[must_use]
    pub fn with_authoritative(mut self, sectors: Vec<SectorName>) -> Self {
        self.authoritative = sectors;
        self
    }

    /// Reports every request group's size and commit time to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Hands a request group to the group committer and reports its size,
    /// how long it took to become durable, and backend failures.
    async fn commit(
        &self,
        batch: Vec<Issuance>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let items = batch.len();
        let started = std::time::Instant::now();
        let result = self.committer.commit(batch).await;
        self.observer.commit(items, started.elapsed());
        let failed = match &result {
            Err(e) => e.is_backend(),
            Ok(items) => items
                .iter()
                .any(|r| r.as_ref().is_err_and(StoreError::is_backend)),
        };
        if failed {
            self.observer.store_error("commit");
        }
        result
    }

    /// The trust-level extension's OID (`pki.toml` at start).
    fn oid(&self) -> &trustca_model::extension::ExtensionOid {
        &self.oid
    }

    /// Records role credentials issued offline (`ca/credentials/`) that the
    /// store does not hold yet, with an audit entry each.
    pub async fn record_offline_credentials(&self) -> Result<usize, CaError> {
        let mut batch = Vec::new();
        for der in self.hierarchy.issued_credentials()? {
            let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
                continue;
            };
            let serial = cert.raw_serial().to_vec();
            if self.storage.certificate(&serial)?.is_some() {
                continue;
            }
            let Ok(Some(ext)) = trustca_model::trust_extension(&cert, self.oid()) else {
                continue;
            };
            let name = cert
                .subject()
                .iter_organization()
                .next()
                .and_then(|o| o.as_str().ok())
                .unwrap_or_default()
                .to_owned();
            let detail = format!(
                "{{\"kind\":\"{}\",\"name\":\"{}\",\"sectors\":[{}]}}",
                ext.kind.as_str(),
                name,
                ext.authorized_sectors
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            batch.push(Issuance {
                certificate: CertificateRecord {
                    serial,
                    der: der.clone(),
                    sector: ext.sector.to_string(),
                    kind: ext.kind.as_str().to_owned(),
                    identity_key: None,
                    issued_at: cert.validity().not_before.timestamp(),
                    not_after: cert.validity().not_after.timestamp(),
                    status: CertificateStatus::Active,
                },
                device: None,
                renewal: false,
                actor: "ca:offline".into(),
                audit_kind: "credential.issued".into(),
                audit_detail: detail,
            });
        }
        let ders: Vec<(Vec<u8>, Vec<u8>)> = batch
            .iter()
            .map(|i| (i.certificate.serial.clone(), i.certificate.der.clone()))
            .collect();
        let mut recorded = 0;
        if !batch.is_empty() {
            for (r, (serial, der)) in self.commit(batch).await?.into_iter().zip(ders) {
                match r {
                    Ok(()) => recorded += 1,
                    // Another replica starting at the same moment recorded
                    // this very certificate first: nothing left to do.
                    Err(StoreError::SerialReused(_))
                        if self
                            .storage
                            .certificate(&serial)?
                            .is_some_and(|c| c.der == der) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(recorded)
    }

    /// Enrolls one request (unary `Enroll`): calls that arrive together
    /// are validated, signed and committed together (`unary.rs`), each
    /// answered once its group is durable.
    pub async fn enroll_one(
        self: &Arc<Self>,
        caller: Arc<Credential>,
        request: EnrollmentRequest,
    ) -> Result<EnrollmentOutcome, CaError> {
        let queue = self
            .unary
            .get_or_init(|| crate::unary::start(Arc::downgrade(self)));
        crate::unary::enroll(self, queue, caller, request).await
    }

    /// Enrolls a group of requests: validation and signing are spread over
    /// blocking threads, then all successes are committed in one durable
    /// group. Results are in request order.
    pub async fn enroll_many(
        self: &Arc<Self>,
        caller: &Credential,
        requests: Vec<EnrollmentRequest>,
    ) -> Vec<Result<EnrollmentOutcome, CaError>> {
        let now = OffsetDateTime::now_utc();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8);
        let n = requests.len();
        let requests = Arc::new(requests);
        let per = n.div_ceil(workers).max(1);
        let mut handles = Vec::new();
        for start in (0..n).step_by(per) {
            let engine = Arc::clone(self);
            let caller = caller.clone();
            let requests = Arc::clone(&requests);
            let end = (start + per).min(n);
            handles.push(tokio::task::spawn_blocking(move || {
                let slice = &requests[start..end];
                let reads = group_reads::GroupReads::new(engine.storage.as_ref(), slice);
                slice
                    .iter()
                    .map(|r| engine.prepare(&caller, r, now, &reads))
                    .collect::<Vec<_>>()
            }));
        }
        let mut prepared: Vec<Result<Prepared, CaError>> = Vec::with_capacity(n);
        let mut failed = None;
        for h in handles {
            match h.await {
                Ok(v) => prepared.extend(v),
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        let results = match failed {
            Some(e) => (0..n)
                .map(|_| Err(CaError::Signing(format!("worker failed: {e}"))))
                .collect(),
            None => self.commit_prepared(prepared, caller, &requests, now).await,
        };
        for (request, result) in requests.iter().zip(&results) {
            self.observe(&request.device.sector, result);
        }
        results
    }

    /// Counts one enrollment item by sector and outcome (`issued`, or the
    /// refusal's gRPC code), and a failing store.
    fn observe(&self, sector: &str, result: &Result<EnrollmentOutcome, CaError>) {
        let outcome = match result {
            Ok(_) => "issued",
            Err(e) => e.class().label(),
        };
        self.observer.enrollment(sector, outcome);
        if let Err(CaError::Store(e)) = result
            && e.is_backend()
        {
            self.observer.store_error("enroll");
        }
    }

    async fn commit_prepared(
        self: &Arc<Self>,
        prepared: Vec<Result<Prepared, CaError>>,
        caller: &Credential,
        requests: &[EnrollmentRequest],
        now: OffsetDateTime,
    ) -> Vec<Result<EnrollmentOutcome, CaError>> {
        let mut results: Vec<Option<Result<EnrollmentOutcome, CaError>>> =
            Vec::with_capacity(prepared.len());
        let mut batch = Vec::new();
        let mut slots = Vec::new();
        let mut outcomes = Vec::new();
        for (i, p) in prepared.into_iter().enumerate() {
            match p {
                Ok(p) => {
                    slots.push(i);
                    batch.push(p.issuance);
                    outcomes.push(p.outcome);
                    results.push(None);
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        if !batch.is_empty() {
            match self.commit(batch).await {
                Ok(committed) => {
                    for ((slot, outcome), r) in slots.into_iter().zip(outcomes).zip(committed) {
                        results[slot] = Some(match r {
                            Ok(()) => Ok(outcome),
                            // A 126-bit serial collision: sign afresh once.
                            Err(StoreError::SerialReused(_)) => {
                                Box::pin(self.retry_one(caller, &requests[slot], now)).await
                            }
                            Err(e) => Err(e.into()),
                        });
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for slot in slots {
                        results[slot] = Some(Err(CaError::Store(StoreError::Backend(msg.clone()))));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(CaError::Signing("no result".into()))))
            .collect()
    }

    async fn retry_one(
        self: &Arc<Self>,
        caller: &Credential,
        request: &EnrollmentRequest,
        now: OffsetDateTime,
    ) -> Result<EnrollmentOutcome, CaError> {
        let reads =
            group_reads::GroupReads::new(self.storage.as_ref(), std::slice::from_ref(request));
        let p = self.prepare(caller, request, now, &reads)?;
        let mut r = self.commit(vec![p.issuance]).await?;
        match r.pop() {
            Some(Ok(())) => Ok(p.outcome),
            Some(Err(e)) => Err(e.into()),
            None => Err(CaError::Signing("no result".into())),
        }
    }

    /// Refuses a public key (SubjectPublicKeyInfo DER) that was revoked for
    /// compromise, under whatever identity it comes back.
    pub fn refuse_blocked_key(&self, spki_der: &[u8]) -> Result<(), CaError> {
        refuse_blocked_key(self.storage.as_ref(), spki_der)
    }

    /// The policies in force now (read once per request, so a request
    /// sees one version).
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.current()
    }

    /// Reads the policies from `source` on every request instead of the
    /// set given to [`EnrollmentEngine::new`]: a server passes its loaded
    /// policies, so a reload reaches enrollment without a restart.
    pub fn with_policy_source(mut self, source: Arc<dyn PolicySource>) -> Self {
        self.policies = source;
        self
    }

    /// The hierarchy.
    pub fn hierarchy(&self) -> &CaHierarchy {
        &self.hierarchy
    }

    /// TPM manufacturer roots and enrollment challenges.
    pub fn attestation(&self) -> &AttestationBook {
        &self.attestation
    }
}

/// The audit detail's `"capped"` member: why the level is below what the
/// evidence would earn without the sector's cap on declared hardware.
fn capped_detail(reason: Option<&str>) -> String {
    reason
        .map(|r| format!(",\"capped\":{}", serde_json::Value::String(r.to_owned())))
        .unwrap_or_default()
}
