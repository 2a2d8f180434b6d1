//! Role credentials (manufacturer, operator, auditor, gateway,
//! certification body) issued from a sector CA and kept in
//! `ca/credentials/` until the server records them.

use super::*;
use trustca_datadir::CaFiles;

impl CaHierarchy {
    /// Issues a role credential (manufacturer, operator, auditor, gateway,
    /// certification body) from the sub-CA of the first listed sector,
    /// stating every listed sector as authorized and, for a certification
    /// body, the evaluation schemes it may register (each must be a scheme
    /// of a listed sector). The certificate is also written to
    /// `ca/credentials/<serial>.pem`, from where the server records it.
    pub fn issue_credential(
        &self,
        policies: &PolicySet,
        kind: CertificateKind,
        name: &str,
        sectors: &[SectorName],
        schemes: &[String],
    ) -> Result<IssuedCredential, CaError> {
        validate_name(name)?;
        if kind.is_device() || matches!(kind, CertificateKind::SectorCa | CertificateKind::Service)
        {
            return Err(CaError::InvalidRequest(format!(
                "{} is not a role credential",
                kind.as_str()
            )));
        }
        if matches!(
            kind,
            CertificateKind::RegistrationAuthority | CertificateKind::V2xAuthority
        ) {
            // Their keys are made on their own machines; the CA certifies
            // their CSR (`trustca v2x certify`) and never holds the key.
            return Err(CaError::InvalidRequest(format!(
                "{} certificates are issued from the authority's own request (`trustca v2x certify`)",
                kind.as_str()
            )));
        }
        let first = sectors
            .first()
            .ok_or_else(|| CaError::InvalidRequest("at least one sector is required".into()))?;
        let mut unique = Vec::new();
        for s in sectors {
            policies.sector(s.as_str())?;
            if !unique.contains(s) {
                unique.push(s.clone());
            }
        }
        let mut permitted = Vec::new();
        if kind == CertificateKind::CertificationBody {
            if schemes.is_empty() {
                return Err(CaError::InvalidRequest(
                    "a certification body needs at least one evaluation scheme (--scheme)".into(),
                ));
            }
            for scheme in schemes {
                let known = unique.iter().any(|s| {
                    policies
                        .sector(s.as_str())
                        .is_ok_and(|p| p.evidence.schemes.contains(scheme))
                });
                if !known {
                    return Err(CaError::InvalidRequest(format!(
                        "scheme {scheme:?} is not an evaluation scheme of any listed sector"
                    )));
                }
                if !permitted.contains(scheme) {
                    permitted.push(scheme.clone());
                }
            }
        } else if !schemes.is_empty() {
            return Err(CaError::InvalidRequest(
                "evaluation schemes are only for certification-body credentials".into(),
            ));
        }
        let ca = self.issuing_sector(first)?;
        let version = &policies.sector(first.as_str())?.version;
        let ext = sector_ext(first, kind, version, unique, permitted);
        let key = issuer::generate_key(trustca_model::KeyAlgorithm::EcdsaP256)?;
        let serial = issuer::random_serial()?;
        let params = issuer::credential_params(
            name,
            &ext,
            &policies.pki,
            &serial,
            policies.pki.credentials.validity_days,
            OffsetDateTime::now_utc(),
            ca.not_after,
        )?;
        let der = ca.sign(&params, &key)?;
        let serial_hex: String = serial.iter().map(|b| format!("{b:02x}")).collect();
        let chain_pem = certs_to_pem(&[&der, &ca.cert_der]);
        write_new(
            &self.dir.join("credentials").cert(&serial_hex),
            certs_to_pem(&[&der]).as_bytes(),
        )?;
        Ok(IssuedCredential {
            chain_pem,
            key_pem: key.serialize_pem(),
            serial: serial_hex,
        })
    }

    /// Certificates in `ca/credentials/`, DER, for recording in the store.
    pub fn issued_credentials(&self) -> Result<Vec<Vec<u8>>, CaError> {
        let dir = self.dir.join("credentials");
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(out);
        };
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "pem") {
                out.extend(read_pem_der(&e.path())?);
            }
        }
        Ok(out)
    }
}
