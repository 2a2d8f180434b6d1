//! The CA hierarchy on disk: one root and one sub-CA per sector, under
//! `DIR/ca/`. `init` creates what is missing and never replaces anything,
//! running the key ceremony's steps (`ceremony.rs`) in one directory;
//! `open` loads every sector's certificate and the sector CAs whose keys
//! the directory holds (one sector's own directory holds only its own),
//! and not the root key, which only `init` and, in `init`'s directory,
//! service-certificate renewal need (`service_certs.rs`).
//!
//! Layout: `ca/root.pem`, `ca/<sector>.pem`, `ca/server.pem` (leaf, issuer[, root]),
//! `ca/*.key` (encrypted), `ca/keystore.toml`, `ca/credentials/<serial>.pem`,
//! `ca/audit-signers/<sha256>.pem` (audit signers replaced by renewal).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use trustca_datadir::{CaFiles, DataDir};

use time::OffsetDateTime;
use trustca_model::{CertificateKind, PolicySet, SectorName, TrustLevelExtension};

use crate::CaError;
use crate::ca_keys::{CaKey, CaKeys};
use crate::issuer::{self, SigningCa};
use crate::keystore::{Keystore, Passphrase, write_new};
use crate::pkcs11::Pkcs11Token;

mod credentials;

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
    /// Files of the V2X (IEEE 1609.2) hierarchy created now
    /// (`v2x-root.oer`, `v2x-root.pem`, `v2x-ea.oer`, `v2x-aa.oer`).
    pub created_v2x: Vec<String>,
}

/// The loaded hierarchy of a data directory.
pub struct CaHierarchy {
    dir: PathBuf,
    keys: CaKeys,
    /// The root certificate, DER.
    pub root_der: Vec<u8>,
    /// The sector sub-CAs whose keys this directory holds, by sector.
    pub sectors: BTreeMap<SectorName, SigningCa>,
    /// Every sector's CA certificate (DER), whether or not its key is here:
    /// the newest generation's (`rollover.rs`).
    pub sector_certs: BTreeMap<SectorName, Vec<u8>>,
    /// Every generation of every sector's CA still valid, oldest first per
    /// sector (one per sector until a rollover).
    pub ca_generations: Vec<CaGeneration>,
    /// The older generations whose keys are here: they issue nothing more,
    /// and sign their CRLs until they expire. By CA name (`automotive`).
    older_signers: BTreeMap<String, SigningCa>,
    own_sector: Option<SectorName>,
    holds_root: bool,
    /// The TLS server chain (leaf, root), DER.
    pub server_chain: Vec<Vec<u8>>,
    server_key: Arc<CaKey>,
    /// The trust responder chain (leaf, root), DER.
    pub responder_chain: Vec<Vec<u8>>,
    responder_key: Arc<CaKey>,
    /// The audit log signer's chain (leaf, root), DER.
    pub audit_chain: Vec<Vec<u8>>,
    audit_key: Arc<CaKey>,
    revoked_cas: Arc<crate::root_crl::RevokedCas>,
}

impl std::fmt::Debug for CaHierarchy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaHierarchy")
            .field("dir", &self.dir)
            .field("sectors", &self.sectors.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// One generation of a sector's CA (`rollover.rs`).
#[derive(Debug, Clone)]
pub struct CaGeneration {
    /// Its name: `automotive`, `automotive.2`, ...
    pub name: String,
    /// Its sector.
    pub sector: SectorName,
    /// 1, 2, ...
    pub generation: u32,
    /// Its certificate, DER.
    pub der: Vec<u8>,
}

/// Earlier audit signer certificates, under `ca/`.
pub const AUDIT_SIGNERS_DIR: &str = "audit-signers";

fn ca_dir(data: &Path) -> PathBuf {
    DataDir::new(data).ca()
}

pub(crate) fn read_pem_der(path: &Path) -> Result<Vec<Vec<u8>>, CaError> {
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

pub(crate) fn sector_ext(
    sector: &SectorName,
    kind: CertificateKind,
    version: &str,
    authorized: Vec<SectorName>,
    permitted_schemes: Vec<String>,
) -> TrustLevelExtension {
    TrustLevelExtension {
        kind,
        sector: sector.clone(),
        level: None,
        policy_version: version.to_owned(),
        basis: vec![],
        authorized_sectors: authorized,
        permitted_schemes,
    }
}

fn not_after(der: &[u8]) -> Result<OffsetDateTime, CaError> {
    let (_, c) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| CaError::Signing("certificate does not parse".into()))?;
    Ok(c.validity().not_after.to_datetime())
}

/// Validates a credential holder's name like a device attribute.
pub(crate) fn validate_name(name: &str) -> Result<(), CaError> {
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
    /// server certificate, with file keys. Never overwrites an existing file.
    pub fn init(
        data: &Path,
        policies: &PolicySet,
        passphrase: &Passphrase,
        server_names: &[String],
    ) -> Result<InitReport, CaError> {
        Self::init_with_token(data, policies, passphrase, server_names, None)
    }

    /// Like [`CaHierarchy::init`], creating keys in `token` (an open token
    /// and the module path it came from) wherever `pki.toml` does not say
    /// `backend = "file"`. The module and token are recorded in
    /// `ca/pkcs11.toml` for `serve`.
    pub fn init_with_token(
        data: &Path,
        policies: &PolicySet,
        passphrase: &Passphrase,
        server_names: &[String],
        token: Option<(&Arc<Pkcs11Token>, &Path)>,
    ) -> Result<InitReport, CaError> {
        let token_arc = token.map(|(t, _)| Arc::clone(t));
        let dir = ca_dir(data);
        let mut report = InitReport::default();
        let now = OffsetDateTime::now_utc();
        // The key ceremony's steps, all in this one directory: the root,
        // then per sector a key and request, the root's signature, and the
        // install check; then the directory's service certificates.
        crate::ceremony::refuse_offline_root(
            data,
            "sign sector requests there with `trustca root sign-sector`",
        )?;
        if let Some(sector) = crate::ceremony::sector_of_directory(data)? {
            return Err(CaError::InvalidRequest(format!(
                "{} is the {sector} sector's directory (made by `trustca sector init`), not one for every sector; {}",
                data.display(),
                if dir.root_cert().exists() {
                    "`init` does not apply to it"
                } else {
                    "install the root's answer first (`trustca sector install`)"
                }
            )));
        }
        if !dir.root_cert().exists() {
            crate::ceremony::create_root(
                data,
                policies,
                passphrase,
                token_arc.clone(),
                now,
                &policies.pki.root.common_name,
            )?;
            report.created_root = true;
        }
        let keystore = crate::ceremony::keys_recording_token(
            Keystore::open(&dir, passphrase)?,
            token,
            policies,
        )?;
        let root = Self::root_signer(&dir, &keystore)?;
        let oid = &policies.pki.extensions.trust_level_oid;
        for sector in policies.sectors.keys() {
            let pem_path = dir.cert(sector);
            if pem_path.exists() {
                report.existing_sectors.push(sector.to_string());
                continue;
            }
            let (key, csr) = crate::ceremony::new_sector_key(&keystore, policies, sector)?;
            let context = crate::ceremony::SigningContext {
                issued: &|_| Vec::new(),
                rollover: false,
            };
            let (_, _, der) =
                crate::ceremony::sign_sector_csr(&root, policies, &csr, now, &context)?;
            crate::ceremony::check_own_certificate(&der, &root.cert_der, &key, sector, oid, now)?;
            write_new(&pem_path, certs_to_pem(&[&der]).as_bytes())?;
            report.created_sectors.push(sector.to_string());
        }
        Self::complete_directory(&dir, &keystore, &root, None, policies, server_names, now)?;
        // The V2X (IEEE 1609.2) root, EA and AA, and the X.509 root's
        // certificate for the V2X root key; re-running init on a data
        // directory made before them adds them.
        report.created_v2x = crate::v2x_ca::init_v2x(&dir, &keystore, &root, policies, now)?;
        // Relying parties need the root's CRL from the start for
        // `openssl verify -crl_check_all`, even while it lists nothing.
        crate::root_crl::publish_root_crl_if_due(data, &root)?;
        Ok(report)
    }

    /// Revokes the root-issued CA `name` (offline: needs the root key, from
    /// the keystore or `token`) and publishes the root CRL. See
    /// [`crate::root_crl::revoke_ca`].
    pub fn revoke_ca(
        data: &Path,
        policies: &PolicySet,
        passphrase: &Passphrase,
        token: Option<Arc<Pkcs11Token>>,
        name: &str,
        reason: u8,
        note: &str,
    ) -> Result<(crate::root_crl::RevokedCa, u64), CaError> {
        let dir = ca_dir(data);
        if !dir.root_cert().exists() {
            return Err(CaError::NotInitialized(data.to_path_buf()));
        }
        let keys = CaKeys::new(Keystore::open(&dir, passphrase)?, token, &policies.pki);
        let root = Self::root_signer(&dir, &keys)?;
        crate::root_crl::revoke_ca(data, &root, name, reason, note)
    }

    pub(crate) fn root_signer(dir: &Path, keystore: &CaKeys) -> Result<SigningCa, CaError> {
        let der = read_pem_der(&dir.root_cert())?
            .into_iter()
            .next()
            .ok_or_else(|| CaError::NotInitialized(dir.to_path_buf()))?;
        if !keystore.has("root") {
            // A sector's directory: the root signs only on its own machine.
            return Err(CaError::InvalidRequest(format!(
                "{} holds no root key (the root is offline); do this with `trustca root ...` on the root's directory",
                dir.display()
            )));
        }
        SigningCa::new(der, keystore.load("root")?)
    }

    /// Loads the hierarchy for serving, with file keys only. Renews the TLS
    /// server, trust responder and audit signer certificates (with the root
    /// key) when they are within 30 days of expiry.
    pub fn open(
        data: &Path,
        policies: &PolicySet,
        passphrase: &Passphrase,
    ) -> Result<Self, CaError> {
        Self::open_at(data, policies, passphrase, OffsetDateTime::now_utc(), None)
    }

    /// Like [`CaHierarchy::open`], for a data directory whose keys are (in
    /// part) in `token`.
    pub fn open_with_token(
        data: &Path,
        policies: &PolicySet,
        passphrase: &Passphrase,
        token: Option<Arc<Pkcs11Token>>,
    ) -> Result<Self, CaError> {
        Self::open_at(data, policies, passphrase, OffsetDateTime::now_utc(), token)
    }

    /// [`CaHierarchy::open_with_token`] with the clock set to `now`:
    /// renewals are decided and issued as of `now` (tests use it to force a
    /// renewal).
    pub fn open_at(
        data: &Path,
        policies: &PolicySet,
        passphrase: &Passphrase,
        now: OffsetDateTime,
        token: Option<Arc<Pkcs11Token>>,
    ) -> Result<Self, CaError> {
        let dir = ca_dir(data);
        if !dir.root_cert().exists() {
            return Err(CaError::NotInitialized(data.to_path_buf()));
        }
        let keystore = CaKeys::new(Keystore::open(&dir, passphrase)?, token, &policies.pki);
        let root_der = read_pem_der(&dir.root_cert())?
            .into_iter()
            .next()
            .ok_or_else(|| CaError::NotInitialized(data.to_path_buf()))?;
        crate::ceremony::refuse_offline_root(
            data,
            "nothing online needs the root: serve each sector from its own directory",
        )?;
        // A sector's directory holds its own CA key and the other sectors'
        // certificates only; a directory `init` made holds every key.
        let own_sector = crate::ceremony::sector_of_directory(data)?;
        let mut sectors = BTreeMap::new();
        let mut sector_certs = BTreeMap::new();
        let mut generations = Vec::new();
        let mut older_signers = BTreeMap::new();
        for sector in policies.sectors.keys() {
            let installed = crate::rollover::installed(&dir, sector);
            let Some(&(newest, _)) = installed.last() else {
                let path = dir.cert(sector);
                let fix = if own_sector.is_some() {
                    format!(
                        "import the root-issued {sector} CA certificate with `trustca sector import --data {} {sector}.pem`",
                        data.display()
                    )
                } else {
                    format!("run `trustca init --data {}` to create it", data.display())
                };
                return Err(CaError::InvalidRequest(format!(
                    "policy lists sector {sector} but {} is missing; {fix}",
                    path.display(),
                )));
            };
            for (generation, path) in installed {
                let der = read_pem_der(&path)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| CaError::NotInitialized(dir.clone()))?;
                let name = crate::rollover::ca_name(sector, generation);
                if generation < newest && not_after(&der)? < now {
                    // Retired: everything it issued expired with it.
                    tracing::info!(ca = %name, "an older CA generation expired: no longer loaded; archive its key and certificate");
                    continue;
                }
                let signer = keystore
                    .has(&name)
                    .then(|| {
                        keystore
                            .load(&name)
                            .and_then(|k| SigningCa::new(der.clone(), k))
                    })
                    .transpose()?;
                if generation == newest {
                    sector_certs.insert(sector.clone(), der.clone());
                    if let Some(signer) = signer {
                        sectors.insert(sector.clone(), signer);
                    }
                } else if let Some(signer) = signer {
                    older_signers.insert(name.clone(), signer);
                }
                generations.push(CaGeneration {
                    name,
                    sector: sector.clone(),
                    generation,
                    der,
                });
            }
        }
        if let Some(own) = &own_sector
            && !sectors.contains_key(own)
        {
            return Err(CaError::InvalidRequest(format!(
                "{} is the {own} sector's directory but holds no {own} CA key",
                data.display()
            )));
        }
        let holds_root = keystore.has("root");
        // Who renews the service certificates: the root (loaded only when a
        // renewal is due) in a directory of every sector, this sector's CA
        // in a sector's directory, which never needs the root.
        let mut root: Option<SigningCa> = None;
        let mut load = |purpose: issuer::ServicePurpose,
                        stem: &str|
         -> Result<(Vec<Vec<u8>>, Arc<CaKey>), CaError> {
            let path = dir.cert(stem);
            let renew = match read_pem_der(&path) {
                Ok(chain) => chain
                    .first()
                    .map(|d| not_after(d))
                    .transpose()?
                    .is_none_or(|na| na - now < time::Duration::days(30)),
                Err(_) => true,
            };
            if renew {
                let own = own_sector
                    .as_ref()
                    .and_then(|s| sectors.get(s).map(|c| (s, c)));
                if let Some((sector, ca)) = own {
                    Self::issue_service_cert(
                        &dir,
                        &keystore,
                        ca,
                        Some(sector),
                        policies,
                        purpose,
                        &[],
                        now,
                    )?;
                } else {
                    if root.is_none() {
                        root = Some(Self::root_signer(&dir, &keystore)?);
                    }
                    if let Some(root) = &root {
                        Self::issue_service_cert(
                            &dir,
                            &keystore,
                            root,
                            None,
                            policies,
                            purpose,
                            &[],
                            now,
                        )?;
                    }
                }
            }
            Ok((read_pem_der(&path)?, Arc::new(keystore.load(stem)?)))
        };
        let (server_chain, server_key) = load(issuer::ServicePurpose::Tls, "server")?;
        let (responder_chain, responder_key) =
            load(issuer::ServicePurpose::TrustResponder, "responder")?;
        let (audit_chain, audit_key) = load(issuer::ServicePurpose::AuditLog, "audit")?;
        // Only a directory holding the root key re-issues the ARL; the
        // others receive it from the offline root (`trustca sector import`).
        if holds_root && crate::root_crl::root_crl_due(data)? {
            let root = match root {
                Some(r) => r,
                None => Self::root_signer(&dir, &keystore)?,
            };
            crate::root_crl::publish_root_crl_if_due(data, &root)?;
        }
        let revoked_cas = Arc::new(crate::root_crl::RevokedCas::load(data)?);
        revoked_cas.set_generations(
            generations
                .iter()
                .map(|g| (g.sector.clone(), g.name.clone())),
        );
        Ok(Self {
            dir,
            keys: keystore,
            root_der,
            sectors,
            sector_certs,
            ca_generations: generations,
            older_signers,
            own_sector,
            holds_root,
            server_chain,
            server_key,
            responder_chain,
            responder_key,
            audit_chain,
            audit_key,
            revoked_cas,
        })
    }

    /// What the root revoked, as this process knows it.
    pub fn revoked_cas(&self) -> &Arc<crate::root_crl::RevokedCas> {
        &self.revoked_cas
    }

    /// Whether this directory holds the root key (a file or a token
    /// reference). An online directory should not: `serve` says so.
    pub fn holds_root_key(&self) -> bool {
        self.holds_root
    }

    /// The sector this directory belongs to, when `trustca sector init`
    /// made it (`None`: a directory of every sector, made by `init`).
    pub fn own_sector(&self) -> Option<&SectorName> {
        self.own_sector.as_ref()
    }

    /// Reissues the root CRL when it is due (loads the root key only then;
    /// a directory without the root key leaves it to the offline root).
    pub fn refresh_root_crl(&self) -> Result<Option<u64>, CaError> {
        let data = self.data_dir();
        if !self.holds_root || !crate::root_crl::root_crl_due(data)? {
            return Ok(None);
        }
        let root = Self::root_signer(&self.dir, &self.keys)?;
        crate::root_crl::publish_root_crl_if_due(data, &root)
    }

    fn data_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// The sub-CA of `sector` for issuing (its newest generation): refused
    /// once the root revoked it.
    pub fn issuing_sector(&self, sector: &SectorName) -> Result<&SigningCa, CaError> {
        let ca = self.sector(sector)?;
        self.revoked_cas
            .check_issuing(&crate::rollover::ca_name(sector, ca.generation))?;
        Ok(ca)
    }

    /// Every sector CA certificate this instance knows, every generation:
    /// the intermediates chains are verified through.
    pub fn all_sector_cas(&self) -> Vec<Vec<u8>> {
        self.ca_generations.iter().map(|g| g.der.clone()).collect()
    }

    /// The CAs of `sector` whose keys are here, each with its name, oldest
    /// first: each signs the CRL of what it issued.
    pub fn crl_signers(&self, sector: &SectorName) -> Vec<(String, &SigningCa)> {
        let mut out: Vec<(String, &SigningCa)> = self
            .ca_generations
            .iter()
            .filter(|g| &g.sector == sector)
            .filter_map(|g| {
                self.older_signers
                    .get(&g.name)
                    .map(|ca| (g.name.clone(), ca))
            })
            .collect();
        if let Some(ca) = self.sectors.get(sector) {
            out.push((crate::rollover::ca_name(sector, ca.generation), ca));
        }
        out
    }

    /// The audit signer's key (signs tree heads).
    pub fn audit_key(&self) -> Arc<CaKey> {
        Arc::clone(&self.audit_key)
    }

    /// The trust responder key (signs trust assertions).
    pub fn responder_key(&self) -> Arc<CaKey> {
        Arc::clone(&self.responder_key)
    }

    /// The TLS server key.
    pub fn server_key(&self) -> Arc<CaKey> {
        Arc::clone(&self.server_key)
    }

    /// The sub-CA of `sector`.
    pub fn sector(&self, sector: &SectorName) -> Result<&SigningCa, CaError> {
        self.sectors.get(sector).ok_or_else(|| {
            if self.sector_certs.contains_key(sector) {
                // Its certificate is here, its key is with its own operator.
                CaError::NotAuthoritative {
                    sector: sector.to_string(),
                    served: self
                        .sectors
                        .keys()
                        .map(SectorName::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            } else {
                CaError::Model(trustca_model::ModelError::UnknownSector(sector.to_string()))
            }
        })
    }

    /// Whether a key of this name exists, in a file or a token (used by
    /// tests).
    pub fn has_key(&self, name: &str) -> bool {
        self.keys.has(name)
    }

    /// The secret that seals the store's certificate, device and trust records
    /// (`trustca_store::RecordSeal`): 32 random bytes in the encrypted
    /// keystore (`ca/record-seal.key`), so the database never holds it.
    /// Made by `init`; `None` for a directory an older `init` made (run
    /// `init` again to add it).
    pub fn record_seal_key(&self) -> Result<Option<[u8; 32]>, CaError> {
        record_seal_key_of(self.keys.keystore())
    }

    /// The record-seal key of the CA in `data`, unlocked with `passphrase`
    /// and nothing else opened (`trustca store seal` needs no CA key, and
    /// the CA keys may be in a token).
    pub fn read_record_seal_key(
        data: &Path,
        passphrase: &Passphrase,
    ) -> Result<Option<[u8; 32]>, CaError> {
        let dir = ca_dir(data);
        if !dir.root_cert().exists() {
            return Err(CaError::NotInitialized(data.to_path_buf()));
        }
        record_seal_key_of(&Keystore::open(&dir, passphrase)?)
    }

    /// A 32-byte secret of another part of the server kept in the
    /// encrypted keystore as `<name>.key` (e.g. the web front end's label
    /// id key), so it is under the passphrase like the CA keys. Made on
    /// first use, or taken from `import` (a secret that was kept elsewhere
    /// before); an `import` that differs from the stored secret is refused.
    pub fn keystore_secret(
        &self,
        name: &str,
        import: Option<&[u8; 32]>,
    ) -> Result<[u8; 32], CaError> {
        let keystore = self.keys.keystore();
        if keystore.has(name) {
            let stored: [u8; 32] = keystore.load(name)?.try_into().map_err(|_| {
                CaError::Keystore(format!("{name}.key does not hold a 32-byte key"))
            })?;
            if import.is_some_and(|i| *i != stored) {
                return Err(CaError::Keystore(format!(
                    "{name}.key in the keystore and the secret to import differ; keep one of them"
                )));
            }
            return Ok(stored);
        }
        let secret = match import {
            Some(i) => *i,
            None => {
                use ring::rand::SecureRandom;
                let mut key = [0u8; 32];
                ring::rand::SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| CaError::Keystore(format!("no randomness for {name}")))?;
                key
            }
        };
        keystore.store(name, &secret)?;
        Ok(secret)
    }

    /// The CA's keys (for the V2X CA keys, `v2x_ca`).
    pub(crate) fn keys(&self) -> &CaKeys {
        &self.keys
    }

    /// The CA's directory (`DATA/ca`).
    pub(crate) fn ca_dir(&self) -> &Path {
        &self.dir
    }

    /// The subject public key info of `der`, for rcgen.
    pub(crate) fn spki_of(spki_der: &[u8]) -> Result<rcgen::SubjectPublicKeyInfo, CaError> {
        rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| CaError::InvalidCsr(format!("public key not usable: {e}")))
    }
}

/// The keystore entry of the record seal ([`CaHierarchy::record_seal_key`]).
const RECORD_SEAL: &str = "record-seal";

/// The record seal's key in `keystore`, if it has one.
fn record_seal_key_of(keystore: &Keystore) -> Result<Option<[u8; 32]>, CaError> {
    if !keystore.has(RECORD_SEAL) {
        return Ok(None);
    }
    let bytes = keystore.load(RECORD_SEAL)?;
    bytes
        .try_into()
        .map(Some)
        .map_err(|_| CaError::Keystore(format!("{RECORD_SEAL}.key does not hold a 32-byte key")))
}

/// Makes the record seal's key unless the keystore has one.
pub(crate) fn create_record_seal_key(keystore: &Keystore) -> Result<(), CaError> {
    use ring::rand::SecureRandom;
    if keystore.has(RECORD_SEAL) {
        return Ok(());
    }
    let mut key = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| CaError::Keystore("no randomness for the record seal".into()))?;
    keystore.store(RECORD_SEAL, &key)
}
