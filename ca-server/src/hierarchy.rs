//! The CA hierarchy on disk: one root and one sub-CA per sector, under
//! `DIR/ca/`. `init` creates what is missing and never replaces anything;
//! `open` loads the sector CAs (and not the root key, which only `init`,
//! credential issuance and service-certificate renewal need).
//!
//! Layout: `ca/root.pem`, `ca/<sector>.pem`, `ca/server.pem` (leaf, root),
//! `ca/*.key` (encrypted), `ca/keystore.toml`, `ca/credentials/<serial>.pem`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use trustca_model::{CertificateKind, PolicySet, SectorName, TrustLevelExtension};

use crate::CaError;
use crate::issuer::{self, SigningCa};
use crate::keystore::{Keystore, Passphrase, write_new};

/// A credential (role certificate) just issued.
#[derive(Debug)]
pub struct IssuedCredential {
    /// Leaf then issuing sub-CA, PEM.
    pub chain_pem: String,
    /// The holder's private key, PKCS#8 PEM (handed to the holder only).
    pub key_pem: String,
    /// Serial, hex.
    pub serial: String,
}

/// What `init` did.
#[derive(Debug, Default)]
pub struct InitReport {
    /// Whether the root was created (false: it existed).
    pub created_root: bool,
    /// Sector CAs created now.
    pub created_sectors: Vec<String>,
    /// Sector CAs that already existed.
    pub existing_sectors: Vec<String>,
}

/// The loaded hierarchy of a data directory.
pub struct CaHierarchy {
    dir: PathBuf,
    keystore: Keystore,
    /// The root certificate, DER.
    pub root_der: Vec<u8>,
    /// Sector sub-CAs by sector.
    pub sectors: BTreeMap<SectorName, SigningCa>,
    /// The TLS server chain (leaf, root), DER.
    pub server_chain: Vec<Vec<u8>>,
    server_key: Vec<u8>,
    /// The trust responder chain (leaf, root), DER.
    pub responder_chain: Vec<Vec<u8>>,
    responder_key: Vec<u8>,
    /// The audit log signer's chain (leaf, root), DER.
    pub audit_chain: Vec<Vec<u8>>,
    audit_key: Vec<u8>,
}

impl std::fmt::Debug for CaHierarchy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaHierarchy")
            .field("dir", &self.dir)
            .field("sectors", &self.sectors.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn ca_dir(data: &Path) -> PathBuf {
    data.join("ca")
}

fn read_pem_der(path: &Path) -> Result<Vec<Vec<u8>>, CaError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))?;
    let items = pem::parse_many(&text)
        .map_err(|_| CaError::Keystore(format!("{} is not PEM", path.display())))?;
    Ok(items
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect())
}

/// PEM of one or more DER certificates.
pub fn certs_to_pem(ders: &[&[u8]]) -> String {
    ders.iter()
        .map(|d| pem::encode(&pem::Pem::new("CERTIFICATE", d.to_vec())))
        .collect()
}

fn sector_ext(
    sector: &SectorName,
    kind: CertificateKind,
    version: &str,
    authorized: Vec<SectorName>,
) -> TrustLevelExtension {
    TrustLevelExtension {
        kind,
        sector: sector.clone(),
        level: None,
        policy_version: version.to_owned(),
        basis: vec![],
        authorized_sectors: authorized,
    }
}

fn not_after(der: &[u8]) -> Result<OffsetDateTime, CaError> {
    let (_, c) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| CaError::Signing("certificate does not parse".into()))?;
    Ok(c.validity().not_after.to_datetime())
}

/// Validates a credential holder's name like a device attribute.
fn validate_name(name: &str) -> Result<(), CaError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(CaError::InvalidRequest(format!(
            "name {name:?}: use 1-63 characters of A-Z, a-z, 0-9 and '-' (not at either end)"
        )))
    }
}

impl CaHierarchy {
    /// Creates the root (if absent), every missing sector CA and the TLS
    /// server certificate. Never overwrites an existing file.
    pub fn init(
        data: &Path,
        policies: &PolicySet,
        passphrase: &Passphrase,
        server_names: &[String],
    ) -> Result<InitReport, CaError> {
        let dir = ca_dir(data);
        let mut report = InitReport::default();
        let now = OffsetDateTime::now_utc();
        if !dir.join("root.pem").exists() {
            if dir.exists()
                && std::fs::read_dir(&dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false)
            {
                return Err(CaError::AlreadyInitialized(dir));
            }
            // Build in a scratch directory and rename, so a crash never
            // leaves a half-made root behind.
            std::fs::create_dir_all(data).map_err(|e| CaError::io(data, e))?;
            let scratch = data.join(format!(".ca-init-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&scratch);
            std::fs::create_dir_all(&scratch).map_err(|e| CaError::io(&scratch, e))?;
            let ks = Keystore::create(&scratch, passphrase)?;
            let pki = &policies.pki;
            let key = issuer::generate_key(pki.root.key_algorithm)?;
            let params = issuer::root_params(
                &pki.root.common_name,
                &pki.root.organization,
                pki.root.validity_days,
                now,
            )?;
            let root = params.self_signed(&key)?;
            ks.store("root", &key.serialize_der())?;
            write_new(&scratch.join("root.pem"), root.pem().as_bytes())?;
            if dir.exists() {
                std::fs::remove_dir(&dir).map_err(|e| CaError::io(&dir, e))?;
            }
            std::fs::rename(&scratch, &dir).map_err(|e| CaError::io(&dir, e))?;
            report.created_root = true;
        }
        let keystore = Keystore::open(&dir, passphrase)?;
        let root = Self::root_signer(&dir, &keystore)?;
        let organization = &policies.pki.root.organization;
        for (sector, policy) in &policies.sectors {
            let pem_path = dir.join(format!("{sector}.pem"));
            if pem_path.exists() {
                report.existing_sectors.push(sector.to_string());
                continue;
            }
            let key = issuer::generate_key(policy.certificate.ca_key_algorithm)?;
            let ext = sector_ext(sector, CertificateKind::SectorCa, &policy.version, vec![]);
            let params = issuer::sector_ca_params(
                organization,
                &ext,
                &policies.pki,
                policies.pki.sector_ca.validity_days,
                now,
                root.not_after,
            )?;
            let der = root.sign(&params, &key)?;
            keystore.store(sector.as_str(), &key.serialize_der())?;
            write_new(&pem_path, certs_to_pem(&[&der]).as_bytes())?;
            report.created_sectors.push(sector.to_string());
        }
        std::fs::create_dir_all(dir.join("credentials")).map_err(|e| CaError::io(&dir, e))?;
        if !dir.join("server.pem").exists() {
            Self::issue_service_cert(
                &dir,
                &keystore,
                &root,
                policies,
                issuer::ServicePurpose::Tls,
                server_names,
                now,
            )?;
        }
        if !dir.join("audit.pem").exists() {
            Self::issue_service_cert(
                &dir,
                &keystore,
                &root,
                policies,
                issuer::ServicePurpose::AuditLog,
                &[],
                now,
            )?;
        }
        if !dir.join("responder.pem").exists() {
            Self::issue_service_cert(
                &dir,
                &keystore,
                &root,
                policies,
                issuer::ServicePurpose::TrustResponder,
                &[],
                now,
            )?;
        }
        Ok(report)
    }

    fn root_signer(dir: &Path, keystore: &Keystore) -> Result<SigningCa, CaError> {
        let der = read_pem_der(&dir.join("root.pem"))?
            .into_iter()
            .next()
            .ok_or_else(|| CaError::NotInitialized(dir.to_path_buf()))?;
        SigningCa::new(der, &keystore.load("root")?)
    }

    fn issue_service_cert(
        dir: &Path,
        keystore: &Keystore,
        root: &SigningCa,
        policies: &PolicySet,
        purpose: issuer::ServicePurpose,
        server_names: &[String],
        now: OffsetDateTime,
    ) -> Result<(), CaError> {
        let (stem, common_name) = match purpose {
            issuer::ServicePurpose::Tls => ("server", "trustca service"),
            issuer::ServicePurpose::TrustResponder => ("responder", "trustca trust responder"),
            issuer::ServicePurpose::AuditLog => ("audit", "trustca audit log"),
        };
        let mut dns = vec!["localhost".to_owned()];
        let mut ips: Vec<IpAddr> =
            vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
        for n in server_names {
            match n.parse::<IpAddr>() {
                Ok(ip) if !ips.contains(&ip) => ips.push(ip),
                Ok(_) => {}
                Err(_) if !dns.contains(n) => dns.push(n.clone()),
                Err(_) => {}
            }
        }
        let trustca = SectorName::new("trustca")?;
        let version = policies
            .sectors
            .values()
            .next()
            .map(|p| p.version.clone())
            .unwrap_or_else(|| "1".into());
        let ext = sector_ext(&trustca, CertificateKind::Service, &version, vec![]);
        let key = issuer::generate_key(trustca_model::KeyAlgorithm::EcdsaP256)?;
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
            root.not_after,
        )?;
        let der = root.sign(&params, &key)?;
        // A crash between these steps leaves no server.pem, and the next
        // start issues a fresh pair; the CA keys are never touched.
        let _ = std::fs::remove_file(dir.join(format!("{stem}.pem")));
        let _ = std::fs::remove_file(dir.join(format!("{stem}.key")));
        keystore.store(stem, &key.serialize_der())?;
        write_new(
            &dir.join(format!("{stem}.pem")),
            certs_to_pem(&[&der, &root.cert_der]).as_bytes(),
        )?;
        Ok(())
    }

    /// Loads the hierarchy for serving. Renews the TLS server certificate
    /// (with the root key) when it is within 30 days of expiry.
    pub fn open(
        data: &Path,
        policies: &PolicySet,
        passphrase: &Passphrase,
    ) -> Result<Self, CaError> {
        let dir = ca_dir(data);
        if !dir.join("root.pem").exists() {
            return Err(CaError::NotInitialized(data.to_path_buf()));
        }
        let keystore = Keystore::open(&dir, passphrase)?;
        let root_der = read_pem_der(&dir.join("root.pem"))?
            .into_iter()
            .next()
            .ok_or_else(|| CaError::NotInitialized(data.to_path_buf()))?;
        let mut sectors = BTreeMap::new();
        for sector in policies.sectors.keys() {
            let path = dir.join(format!("{sector}.pem"));
            if !path.exists() {
                return Err(CaError::InvalidRequest(format!(
                    "policy lists sector {sector} but {} is missing; run `trustca init --data {}` to create it",
                    path.display(),
                    data.display()
                )));
            }
            let der = read_pem_der(&path)?
                .into_iter()
                .next()
                .ok_or_else(|| CaError::NotInitialized(dir.clone()))?;
            sectors.insert(
                sector.clone(),
                SigningCa::new(der, &keystore.load(sector.as_str())?)?,
            );
        }
        let now = OffsetDateTime::now_utc();
        let mut root: Option<SigningCa> = None;
        let mut load = |purpose: issuer::ServicePurpose,
                        stem: &str|
         -> Result<(Vec<Vec<u8>>, Vec<u8>), CaError> {
            let path = dir.join(format!("{stem}.pem"));
            let renew = match read_pem_der(&path) {
                Ok(chain) => chain
                    .first()
                    .map(|d| not_after(d))
                    .transpose()?
                    .is_none_or(|na| na - now < time::Duration::days(30)),
                Err(_) => true,
            };
            if renew {
                if root.is_none() {
                    root = Some(Self::root_signer(&dir, &keystore)?);
                }
                if let Some(root) = &root {
                    Self::issue_service_cert(&dir, &keystore, root, policies, purpose, &[], now)?;
                }
            }
            Ok((read_pem_der(&path)?, keystore.load(stem)?))
        };
        let (server_chain, server_key) = load(issuer::ServicePurpose::Tls, "server")?;
        let (responder_chain, responder_key) =
            load(issuer::ServicePurpose::TrustResponder, "responder")?;
        let (audit_chain, audit_key) = load(issuer::ServicePurpose::AuditLog, "audit")?;
        Ok(Self {
            dir,
            keystore,
            root_der,
            sectors,
            server_chain,
            server_key,
            responder_chain,
            responder_key,
            audit_chain,
            audit_key,
        })
    }

    /// The audit signer's key, PKCS#8 DER. Never log it.
    pub fn audit_key_pkcs8(&self) -> &[u8] {
        &self.audit_key
    }

    /// The trust responder key, PKCS#8 DER. Never log it.
    pub fn responder_key_pkcs8(&self) -> &[u8] {
        &self.responder_key
    }

    /// The TLS server key, PKCS#8 DER. Handle with care; never log it.
    pub fn server_key_pkcs8(&self) -> &[u8] {
        &self.server_key
    }

    /// The sub-CA of `sector`.
    pub fn sector(&self, sector: &SectorName) -> Result<&SigningCa, CaError> {
        self.sectors.get(sector).ok_or_else(|| {
            CaError::Model(trustca_model::ModelError::UnknownSector(sector.to_string()))
        })
    }

    /// Issues a role credential (manufacturer, operator, auditor, gateway)
    /// from the sub-CA of the first listed sector, stating every listed
    /// sector as authorized. The certificate is also written to
    /// `ca/credentials/<serial>.pem`, from where the server records it.
    pub fn issue_credential(
        &self,
        policies: &PolicySet,
        kind: CertificateKind,
        name: &str,
        sectors: &[SectorName],
    ) -> Result<IssuedCredential, CaError> {
        validate_name(name)?;
        if kind.is_device() || matches!(kind, CertificateKind::SectorCa | CertificateKind::Service)
        {
            return Err(CaError::InvalidRequest(format!(
                "{} is not a role credential",
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
        let ca = self.sector(first)?;
        let version = &policies.sector(first.as_str())?.version;
        let ext = sector_ext(first, kind, version, unique);
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
            &self
                .dir
                .join("credentials")
                .join(format!("{serial_hex}.pem")),
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

    /// Whether the keystore holds a key of this name (used by tests).
    pub fn has_key(&self, name: &str) -> bool {
        self.keystore.has(name)
    }

    /// The opened keystore (for the pseudonym CAs' keys and state secret).
    pub(crate) fn keystore(&self) -> &Keystore {
        &self.keystore
    }

    /// The subject public key info of `der`, for rcgen.
    pub(crate) fn spki_of(spki_der: &[u8]) -> Result<rcgen::SubjectPublicKeyInfo, CaError> {
        rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| CaError::InvalidCsr(format!("public key not usable: {e}")))
    }
}
