//! A CA directory's service certificates: the TLS server, the trust
//! responder and the audit signer, and the record-seal key. Issued by the
//! root in a directory `init` made (kind `service`, sector `trustca`), by
//! the sector CA in one sector's directory (kind `service`, that sector),
//! so that renewing them never needs the offline root there.

use std::net::IpAddr;
use std::path::Path;
use trustca_datadir::CaFiles;

use time::OffsetDateTime;
use trustca_model::policy::KeyRole;
use trustca_model::{CertificateKind, PolicySet, SectorName};

use crate::CaError;
use crate::ca_keys::CaKeys;
use crate::hierarchy::{
    AUDIT_SIGNERS_DIR, CaHierarchy, certs_to_pem, create_record_seal_key, read_pem_der, sector_ext,
};
use crate::issuer::{self, SigningCa};
use crate::keystore::write_new;

impl CaHierarchy {
    /// Completes a CA directory with what its instance signs with online:
    /// the TLS server (`server_names` added), trust responder and audit
    /// signer certificates, issued by `ca` (the root for a directory of
    /// every sector, the sector CA for one sector's directory: `sector`),
    /// and the store's record-seal key. Makes only what is missing.
    pub(crate) fn complete_directory(
        dir: &Path,
        keystore: &CaKeys,
        ca: &SigningCa,
        sector: Option<&SectorName>,
        policies: &PolicySet,
        server_names: &[String],
        now: OffsetDateTime,
    ) -> Result<(), CaError> {
        std::fs::create_dir_all(dir.join("credentials")).map_err(|e| CaError::io(dir, e))?;
        for (stem, purpose) in [
            ("server", issuer::ServicePurpose::Tls),
            ("audit", issuer::ServicePurpose::AuditLog),
            ("responder", issuer::ServicePurpose::TrustResponder),
        ] {
            if !dir.cert(stem).exists() {
                Self::issue_service_cert(
                    dir,
                    keystore,
                    ca,
                    sector,
                    policies,
                    purpose,
                    server_names,
                    now,
                )?;
            }
        }
        // The store's record seal; re-running init on an older directory
        // adds it (copy `ca/` to every replica afterwards).
        create_record_seal_key(keystore.keystore())
    }

    /// The DNS names and IP addresses of a TLS server certificate:
    /// loopback and `server_names`. A sector CA may only issue names under
    /// `<sector>.<trust_domain>` (its name constraint), so for a sector's
    /// directory (`sector`) `localhost` is replaced by that name and any
    /// other DNS name outside it is refused.
    pub(crate) fn service_host_names(
        policies: &PolicySet,
        sector: Option<&SectorName>,
        server_names: &[String],
    ) -> Result<(Vec<String>, Vec<IpAddr>), CaError> {
        let zone = sector.map(|s| format!("{s}.{}", policies.pki.trust_domain));
        let mut dns = vec![zone.clone().unwrap_or_else(|| "localhost".to_owned())];
        let mut ips: Vec<IpAddr> =
            vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
        for n in server_names {
            match n.parse::<IpAddr>() {
                Ok(ip) if !ips.contains(&ip) => ips.push(ip),
                Ok(_) => {}
                Err(_) if dns.contains(n) => {}
                Err(_) => {
                    if let Some(zone) = &zone {
                        let lower = n.to_ascii_lowercase();
                        if lower != *zone && !lower.ends_with(&format!(".{zone}")) {
                            return Err(CaError::InvalidRequest(format!(
                                "server name {n:?} is outside {zone}, the only names the sector CA may issue (its name constraint); use a name under it or an IP address"
                            )));
                        }
                    }
                    dns.push(n.clone());
                }
            }
        }
        Ok((dns, ips))
    }

    // Each argument is one fact of the certificate; see complete_directory.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn issue_service_cert(
        dir: &Path,
        keystore: &CaKeys,
        ca: &SigningCa,
        sector: Option<&SectorName>,
        policies: &PolicySet,
        purpose: issuer::ServicePurpose,
        server_names: &[String],
        now: OffsetDateTime,
    ) -> Result<(), CaError> {
        let (stem, common_name, role) = match purpose {
            issuer::ServicePurpose::Tls => ("server", "trustca service", KeyRole::Server),
            issuer::ServicePurpose::TrustResponder => {
                ("responder", "trustca trust responder", KeyRole::Responder)
            }
            issuer::ServicePurpose::AuditLog => ("audit", "trustca audit log", KeyRole::Audit),
        };
        let (mut dns, mut ips) = Self::service_host_names(policies, sector, server_names)?;
        // A service certificate names the sector of the CA that issued it
        // (chain checks hold every certificate to its issuer's sector); the
        // root's own are `trustca`.
        let owner = match sector {
            Some(s) => s.clone(),
            None => SectorName::new("trustca")?,
        };
        let version = sector
            .and_then(|s| policies.sectors.get(s))
            .or_else(|| policies.sectors.values().next())
            .map(|p| p.version.clone())
            .unwrap_or_else(|| "1".into());
        let ext = sector_ext(&owner, CertificateKind::Service, &version, vec![], vec![]);
        if purpose == issuer::ServicePurpose::AuditLog {
            Self::archive_audit_signer(dir)?;
        }
        // A crash between these steps leaves no server.pem, and the next
        // start issues a fresh pair; the CA keys are never touched.
        let _ = std::fs::remove_file(dir.cert(stem));
        keystore.forget(stem);
        let key = keystore.generate(stem, role, trustca_model::KeyAlgorithm::EcdsaP256)?;
        if purpose != issuer::ServicePurpose::Tls {
            dns.clear();
            ips.clear();
        }
        let params = issuer::service_params(
            common_name,
            purpose,
            &ext,
            &policies.pki.extensions.trust_level_oid,
            &dns,
            &ips,
            policies.pki.service.validity_days,
            now,
            ca.not_after,
        )?;
        let der = ca.sign(&params, &key)?;
        // Leaf, then its issuer, then (for a sector CA) the root: what TLS
        // peers and assertion verifiers need to build the path.
        let mut chain: Vec<&[u8]> = vec![&der, &ca.cert_der];
        let root_der;
        if sector.is_some() {
            root_der = read_pem_der(&dir.root_cert())?;
            chain.extend(root_der.iter().map(Vec::as_slice));
        }
        write_new(&dir.cert(stem), certs_to_pem(&chain).as_bytes())?;
        Ok(())
    }

    /// Keeps the current audit signer certificate in
    /// `ca/audit-signers/<SHA-256 of the certificate>.pem` before a renewal
    /// replaces it: tree heads signed with its key must stay verifiable
    /// after the key is gone.
    fn archive_audit_signer(dir: &Path) -> Result<(), CaError> {
        let current = dir.join("audit.pem");
        let Ok(chain) = read_pem_der(&current) else {
            return Ok(());
        };
        let Some(leaf) = chain.first() else {
            return Ok(());
        };
        let archive = dir.join(AUDIT_SIGNERS_DIR);
        std::fs::create_dir_all(&archive).map_err(|e| CaError::io(&archive, e))?;
        let name = trustca_model::hexfmt::encode(&trustca_model::fingerprint(leaf));
        let target = archive.cert(&name);
        if !target.exists() {
            write_new(&target, certs_to_pem(&[leaf]).as_bytes())?;
        }
        Ok(())
    }
}
