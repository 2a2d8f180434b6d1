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
    LevelDecision, ModelStatus, PolicySet, SectorName, SectorPolicy, TrustLevel,
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
    policies: Arc<PolicySet>,
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
    match storage.blocked_key(&trustca_model::key_fingerprint(spki_der))? {
        Some(block) => Err(StoreError::KeyCompromised { on: block.date() }.into()),
        None => Ok(()),
    }
}

/// `kind:name` of a caller, as recorded in history and audit entries.
pub fn actor(caller: &Credential) -> String {
    format!("{}:{}", caller.kind.as_str(), caller.name)
}

impl EnrollmentEngine {
    /// Builds an engine over a loaded hierarchy and a store.
    pub fn new(
        policies: Arc<PolicySet>,
        hierarchy: Arc<CaHierarchy>,
        storage: Arc<dyn Storage>,
        committer: GroupCommitter,
    ) -> Self {
        Self {
            policies,
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

    /// The trust-level extension's OID (`pki.toml`).
    fn oid(&self) -> &trustca_model::extension::ExtensionOid {
        &self.policies.pki.extensions.trust_level_oid
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

    /// The level a device earns: from the model registry when its model
    /// and firmware are registered (per-device evidence may then only
    /// declare a weaker hardware root of trust, which can lower the level,
    /// never raise it), else from the per-device evidence, unless the
    /// sector or the request requires a registered model.
    fn level_decision(
        &self,
        policy: &SectorPolicy,
        identity: &DeviceIdentity,
        req: &EnrollmentRequest,
        now: OffsetDateTime,
        attested: Option<&VerifiedAttestation>,
    ) -> Result<LevelDecision, CaError> {
        let firmware = &req.device.firmware_version;
        let registered = trustca_store::registry::model_for_firmware(
            self.storage.as_ref(),
            identity.sector.as_str(),
            &identity.manufacturer,
            &identity.model,
            firmware,
        )?;
        let Some(model) = registered else {
            if policy.registry.require_registered_model || req.require_registered_model {
                return Err(CaError::ModelNotRegistered(format!(
                    "{}/{}/{} firmware {firmware} is not in the model registry; the manufacturer registers it with `trustca model register`",
                    identity.sector, identity.manufacturer, identity.model
                )));
            }
            let mut evidence = Evidence::parse(&req.evidence)?;
            evidence.attestation = attested.cloned();
            return Ok(policy.evaluate(&evidence, now)?);
        };
        if model.status == ModelStatus::Suspended {
            return Err(CaError::ModelSuspended(format!(
                "{} is suspended ({}); no certificates are issued for it",
                model.key,
                model.suspended.as_ref().map(|s| s.1.as_str()).unwrap_or("")
            )));
        }
        let per_device = Evidence::parse(&req.evidence)?;
        if !per_device.evaluations.is_empty()
            || per_device.secure_update.is_some()
            || per_device.supported_until.is_some()
        {
            return Err(CaError::InvalidRequest(format!(
                "{} is registered: its evaluations, secure update and support period come from the model registry; per device only hardware-root-of-trust may be declared",
                model.key
            )));
        }
        let mut assessed = model.clone();
        if let Some(hrot) = per_device.hardware_root_of_trust {
            assessed.hardware_root_of_trust = Some(match model.hardware_root_of_trust {
                Some(declared) => declared.min(hrot),
                None => hrot,
            });
        }
        let level = assessed
            .assess(policy, now)?
            .level
            .min(TrustLevel::new(model.level as i64)?);
        let t = now.unix_timestamp();
        let basis = std::iter::once(EvaluationBasis {
            evidence: "registered-model".to_owned(),
            scheme: model.status.as_str().to_owned(),
            result: format!("{} v{}", model.key.firmware, model.version),
            evaluated_at: None,
            attestation: None,
        })
        .chain(
            model
                .evaluations
                .iter()
                .filter(|e| e.is_live(t))
                .take(8)
                .map(|e| EvaluationBasis {
                    evidence: if e.self_assessed {
                        "self-assessment".to_owned()
                    } else {
                        "evaluation".to_owned()
                    },
                    scheme: e.scheme.clone(),
                    result: e.result.clone(),
                    evaluated_at: OffsetDateTime::from_unix_timestamp(e.evaluated_at).ok(),
                    attestation: None,
                }),
        )
        // A registered model's level comes from the registry; a verified
        // attestation of this device's key is recorded beside it.
        .chain(attested.map(VerifiedAttestation::basis))
        .collect();
        Ok(LevelDecision {
            level,
            basis,
            policy_version: policy.version.clone(),
            capped: None,
        })
    }

    fn prepare(
        &self,
        caller: &Credential,
        req: &EnrollmentRequest,
        now: OffsetDateTime,
    ) -> Result<Prepared, CaError> {
        // A manufacturer enrolls and renews its devices; a device renews
        // only itself, with its current certificate (EST simplereenroll).
        let device_renewal = match caller.kind {
            CertificateKind::Manufacturer => false,
            CertificateKind::LongTerm if req.renewal => true,
            _ => {
                return Err(CaError::PermissionDenied(format!(
                    "only manufacturer credentials may enroll devices; the caller holds {} certificate",
                    caller.kind.with_article()
                )));
            }
        };
        let d = &req.device;
        if d.sector.is_empty() {
            return Err(CaError::InvalidRequest("device.sector is required".into()));
        }
        let policy = self.policies.sector(&d.sector)?;
        let sector: SectorName = policy.sector.clone();
        if !self.authoritative.is_empty() && !self.authoritative.contains(&sector) {
            return Err(CaError::NotAuthoritative {
                sector: sector.to_string(),
                served: self
                    .authoritative
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if !caller.may_act_for(&sector) {
            return Err(CaError::PermissionDenied(format!(
                "manufacturer {} is not authorized for sector {} (authorized: {})",
                caller.name,
                sector,
                caller
                    .sectors
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let identity = DeviceIdentity::new(sector.clone(), &d.manufacturer, &d.model, &d.serial)?;
        if device_renewal {
            self.check_device_renews_itself(caller, &identity)?;
        } else if identity.manufacturer != caller.name {
            // Exact: the name enrolled is the one the device's certificate
            // and URN carry, so `acme` must not pass for `Acme`.
            return Err(CaError::PermissionDenied(format!(
                "manufacturer {} may only enroll its own devices, not devices of {} (names are case-sensitive)",
                caller.name, identity.manufacturer
            )));
        }
        validate_firmware_version(&d.firmware_version)?;
        // An attestation is checked (and its challenge consumed) before
        // the level, which it can raise.
        let attested = match &req.tpm_attestation {
            Some(att) => Some(self.attestation.verify(
                att,
                &sector,
                &verify_csr(&req.csr_der)?.spki_der,
            )?),
            None => None,
        };
        let decision = self.level_decision(policy, &identity, req, now, attested.as_ref())?;
        let csr = verify_csr(&req.csr_der)?;
        // Before signing anything; the commit checks again atomically.
        self.refuse_blocked_key(&csr.spki_der)?;
        if !policy
            .certificate
            .device_key_algorithms
            .contains(&csr.algorithm)
        {
            return Err(CaError::KeyAlgorithmNotAllowed {
                algorithm: csr.algorithm.as_str().into(),
                sector: sector.to_string(),
                allowed: policy
                    .certificate
                    .device_key_algorithms
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let key = identity.key();
        if !req.renewal && self.storage.device(&key)?.is_some() {
            return Err(StoreError::AlreadyEnrolled(identity.urn()).into());
        }
        let ext = TrustLevelExtension {
            kind: CertificateKind::LongTerm,
            sector: sector.clone(),
            level: Some(decision.level),
            policy_version: decision.policy_version.clone(),
            basis: decision.basis.clone(),
            authorized_sectors: vec![],
            permitted_schemes: vec![],
        };
        let ca = self.hierarchy.issuing_sector(&sector)?;
        let serial = issuer::random_serial()?;
        let params = issuer::device_params(
            &identity,
            &ext,
            &self.policies.pki,
            &serial,
            policy.certificate.validity_days,
            now,
            ca.not_after,
        )?;
        let mut params = params;
        if let Some(base) = &self.policies.pki.crl_base_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![format!(
                    "{base}{}.crl",
                    crate::rollover::ca_name(&sector, ca.generation)
                )],
            }];
        }
        let spki = CaHierarchy::spki_of(&csr.spki_der)?;
        let der = ca.sign(&params, &spki)?;
        let not_after = params.not_after;
        let serial_hex = trustca_model::hexfmt::encode(&serial);
        let detail = format!(
            "{{\"identity\":\"{}\",\"level\":{},\"policy\":\"{}\",\"firmware\":\"{}\",\"renewal\":{}{}}}",
            identity.urn(),
            decision.level.get(),
            decision.policy_version,
            d.firmware_version,
            req.renewal,
            attested
                .map(|a| format!(",\"attestation\":\"{}\"", a.format.as_str()))
                .unwrap_or_default()
                + &capped_detail(decision.capped.as_deref())
        );
        let issuance = Issuance {
            certificate: CertificateRecord {
                serial: serial.to_vec(),
                der: der.clone(),
                sector: sector.to_string(),
                kind: CertificateKind::LongTerm.as_str().into(),
                identity_key: Some(key.clone()),
                issued_at: now.unix_timestamp(),
                not_after: not_after.unix_timestamp(),
                status: CertificateStatus::Active,
            },
            device: Some(DeviceRecord {
                identity_key: key,
                urn: identity.urn(),
                sector: sector.to_string(),
                manufacturer: identity.manufacturer.clone(),
                model: identity.model.clone(),
                serial: identity.serial.clone(),
                firmware_version: d.firmware_version.clone(),
                certificate_level: decision.level.get(),
                policy_version: decision.policy_version.clone(),
                enrolled_at: now.unix_timestamp(),
                certificates: vec![],
            }),
            renewal: req.renewal,
            // A device renewing itself is named by its identity (its
            // certificate's O is its manufacturer's name).
            actor: if device_renewal {
                format!("{}:{}", caller.kind.as_str(), identity.urn())
            } else {
                actor(caller)
            },
            audit_kind: if req.renewal {
                "certificate.renewed".into()
            } else {
                "certificate.issued".into()
            },
            audit_detail: detail,
        };
        Ok(Prepared {
            issuance,
            outcome: EnrollmentOutcome {
                chain_der: vec![der, ca.cert_der.clone()],
                serial: serial_hex,
                level: decision.level.get(),
                identity: identity.urn(),
                not_after,
                policy_version: decision.policy_version,
            },
        })
    }

    /// A device certificate may renew only its own identity, and only while
    /// it is the device's current certificate: an older one, replaced by a
    /// renewal, cannot mint new certificates (the commit then checks that
    /// the device is still enrolled and active).
    fn check_device_renews_itself(
        &self,
        caller: &Credential,
        identity: &DeviceIdentity,
    ) -> Result<(), CaError> {
        let own = caller
            .identity
            .as_ref()
            .is_some_and(|own| own.key() == identity.key());
        if !own {
            return Err(CaError::PermissionDenied(format!(
                "a device certificate renews only its own identity, not {}",
                identity.urn()
            )));
        }
        let device = self
            .storage
            .device(&identity.key())?
            .ok_or_else(|| StoreError::NotEnrolled(identity.urn()))?;
        if device.certificates.last() != Some(&caller.serial) {
            return Err(CaError::PermissionDenied(
                "the client certificate is not the device's current certificate; renew with the newest one"
                    .into(),
            ));
        }
        Ok(())
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
                requests[start..end]
                    .iter()
                    .map(|r| engine.prepare(&caller, r, now))
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
        let p = self.prepare(caller, request, now)?;
        let mut r = self.commit(vec![p.issuance]).await?;
        match r.pop() {
            Some(Ok(())) => Ok(p.outcome),
            Some(Err(e)) => Err(e.into()),
            None => Err(CaError::Signing("no result".into())),
        }
    }

    /// Partial revocation: issues a narrower certificate for the same key
    /// and identity without the `withdraw`n capabilities, committed like a
    /// renewal. Returns it and the serial it replaces (to be revoked).
    pub async fn reissue_narrower(
        &self,
        caller: &Credential,
        identity: &DeviceIdentity,
        withdraw: &[String],
    ) -> Result<(EnrollmentOutcome, Vec<u8>), CaError> {
        use rcgen::ExtendedKeyUsagePurpose as Eku;
        let mut drop_server = false;
        let mut drop_client = false;
        for w in withdraw {
            match w.as_str() {
                "server-auth" => drop_server = true,
                "client-auth" => drop_client = true,
                other => {
                    return Err(CaError::InvalidRequest(format!(
                        "unknown capability {other:?}: use server-auth or client-auth"
                    )));
                }
            }
        }
        if withdraw.is_empty() || (drop_server && drop_client) {
            return Err(CaError::InvalidRequest(
                "withdraw one capability (server-auth or client-auth); to withdraw all, revoke"
                    .into(),
            ));
        }
        let key = identity.key();
        let device = self
            .storage
            .device(&key)?
            .ok_or_else(|| CaError::Store(StoreError::NotEnrolled(identity.urn())))?;
        let old_serial = device
            .certificates
            .last()
            .and_then(|h| trustca_model::hexfmt::decode(h))
            .ok_or_else(|| CaError::InvalidRequest("device has no certificate".into()))?;
        let old = self
            .storage
            .certificate(&old_serial)?
            .ok_or_else(|| CaError::InvalidRequest("certificate record missing".into()))?;
        let (_, cert) = x509_parser::parse_x509_certificate(&old.der)
            .map_err(|_| CaError::Signing("stored certificate does not parse".into()))?;
        let ext = trustca_model::trust_extension(&cert, self.oid())?.ok_or_else(|| {
            CaError::Signing("stored certificate has no trust-level extension".into())
        })?;
        // A revoked certificate is not narrowed back to life.
        if matches!(old.status, CertificateStatus::Revoked { .. }) {
            return Err(StoreError::NotActive {
                identity: identity.urn(),
                status: "revoked".into(),
            }
            .into());
        }
        self.refuse_blocked_key(cert.public_key().raw)?;
        let spki = CaHierarchy::spki_of(cert.public_key().raw)?;
        let had_server = cert
            .extended_key_usage()
            .ok()
            .flatten()
            .is_some_and(|e| e.value.server_auth);
        let had_client = cert
            .extended_key_usage()
            .ok()
            .flatten()
            .is_some_and(|e| e.value.client_auth);
        if (drop_server && !had_server) || (drop_client && !had_client) {
            return Err(CaError::InvalidRequest(
                "the current certificate does not have that capability".into(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let policy = self.policies.sector(identity.sector.as_str())?;
        let ca = self.hierarchy.issuing_sector(&identity.sector)?;
        let serial = issuer::random_serial()?;
        let mut params = issuer::device_params(
            identity,
            &ext,
            &self.policies.pki,
            &serial,
            policy.certificate.validity_days,
            now,
            ca.not_after,
        )?;
        params.not_after = params
            .not_after
            .min(cert.validity().not_after.to_datetime());
        let withdrawn = |e: &Eku| {
            (drop_server && *e == Eku::ServerAuth) || (drop_client && *e == Eku::ClientAuth)
        };
        let absent = |e: &Eku| {
            (!had_server && *e == Eku::ServerAuth) || (!had_client && *e == Eku::ClientAuth)
        };
        params
            .extended_key_usages
            .retain(|e| !withdrawn(e) && !absent(e));
        if let Some(base) = &self.policies.pki.crl_base_url {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![format!(
                    "{base}{}.crl",
                    crate::rollover::ca_name(&identity.sector, ca.generation)
                )],
            }];
        }
        let der = ca.sign(&params, &spki)?;
        let withdrawn = withdraw.join(",");
        let issuance = Issuance {
            certificate: CertificateRecord {
                serial: serial.to_vec(),
                der: der.clone(),
                sector: identity.sector.to_string(),
                kind: CertificateKind::LongTerm.as_str().into(),
                identity_key: Some(key.clone()),
                issued_at: now.unix_timestamp(),
                not_after: params.not_after.unix_timestamp(),
                status: CertificateStatus::Active,
            },
            device: Some(DeviceRecord {
                certificates: vec![],
                ..device.clone()
            }),
            renewal: true,
            actor: actor(caller),
            audit_kind: "certificate.restricted".into(),
            audit_detail: format!(
                "{{\"identity\":\"{}\",\"withdrawn\":\"{withdrawn}\",\"replaces\":\"{}\",\"level\":{}}}",
                identity.urn(),
                trustca_model::hexfmt::encode(&old_serial),
                device.certificate_level
            ),
        };
        let mut r = self.commit(vec![issuance]).await?;
        match r.pop() {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err(CaError::Signing("no result".into())),
        }
        Ok((
            EnrollmentOutcome {
                chain_der: vec![der, ca.cert_der.clone()],
                serial: trustca_model::hexfmt::encode(&serial),
                level: device.certificate_level,
                identity: identity.urn(),
                not_after: params.not_after,
                policy_version: ext.policy_version,
            },
            old_serial,
        ))
    }

    /// Refuses a public key (SubjectPublicKeyInfo DER) that was revoked for
    /// compromise, under whatever identity it comes back.
    pub fn refuse_blocked_key(&self, spki_der: &[u8]) -> Result<(), CaError> {
        refuse_blocked_key(self.storage.as_ref(), spki_der)
    }

    /// The policies in force.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
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
