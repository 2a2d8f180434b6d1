//! Preparing one issuance before any signing: the level the device earns
//! (registry or evidence, under the sector's caps), the request's checks
//! and the certificate parameters, and the rule that a device renews only
//! itself.

use super::group_reads::GroupReads;
use super::*;

impl EnrollmentEngine {
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
        reads: &GroupReads<'_>,
    ) -> Result<LevelDecision, CaError> {
        let firmware = &req.device.firmware_version;
        let registered = reads.model_for_firmware(identity, firmware)?;
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

    pub(super) fn prepare(
        &self,
        caller: &Credential,
        req: &EnrollmentRequest,
        now: OffsetDateTime,
        reads: &GroupReads<'_>,
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
        // One version for the whole request, however a reload interleaves.
        let policies = self.policies();
        let policy = policies.sector(&d.sector)?;
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
        let decision =
            self.level_decision(policy, &identity, req, now, attested.as_ref(), reads)?;
        let csr = verify_csr(&req.csr_der)?;
        // Before signing anything; the commit checks again atomically.
        key_refusal(reads.blocked_key(&trustca_model::key_fingerprint(&csr.spki_der))?)?;
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
        if !req.renewal && reads.enrolled(&key)? {
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
            &policies.pki,
            &serial,
            policy.certificate.validity_days,
            now,
            ca.not_after,
        )?;
        let mut params = params;
        if let Some(base) = &policies.pki.crl_base_url {
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
}
