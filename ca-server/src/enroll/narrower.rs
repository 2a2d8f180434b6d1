//! Partial revocation's issuing half: a narrower certificate for the same
//! key and identity, committed like a renewal.

use super::*;

impl EnrollmentEngine {
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
        let policies = self.policies();
        let policy = policies.sector(identity.sector.as_str())?;
        let ca = self.hierarchy.issuing_sector(&identity.sector)?;
        let serial = issuer::random_serial()?;
        let mut params = issuer::device_params(
            identity,
            &ext,
            &policies.pki,
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
        if let Some(base) = &policies.pki.crl_base_url {
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
}
