//! V2X pseudonym certificates: the per-sector pseudonym CAs, the profile in
//! `policies/pseudonym.toml`, issuance with butterfly key expansion and
//! linkage values, escrow of the certificate-to-vehicle link to the offline
//! resolution authority (RA), pseudonym revocation lists (PRLs), and the
//! `trustca.v1.Pseudonyms` gRPC service.
//!
//! What is stored, all in the opaque record space [`SPACE`]:
//!
//! | key | value |
//! |---|---|
//! | `e/` ‖ linkage value (16) | escrow blob, sealed to the RA with AAD = linkage value: `01 ‖ BE64(period) ‖ seed(32) ‖ vehicle URN` |
//! | `v/` ‖ HMAC(index key, identity key) (32) | vehicle record, AES-256-GCM under the CA's wrapping key: chain state, last issued period, revocation |
//! | `l/` ‖ sector | PRL state (issue number and entries, public) |
//!
//! Pseudonym certificates themselves are not stored, and issuance audit
//! entries name neither the vehicle nor any certificate. See
//! `docs/pseudonyms.md` for what an operator can and cannot learn.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, GeneralSubtree, IsCa, KeyUsagePurpose,
    NameConstraints, SerialNumber,
};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use trustca_model::extension::ExtensionOid;
use trustca_model::{
    CertificateKind, Credential, DeviceIdentity, EvaluationBasis, PolicySet, SectorName,
    TrustLevel, TrustLevelExtension, TrustStatus,
};
use trustca_proto::v1 as pb;
use trustca_pseudonym::{
    ButterflyRequest, LINKAGE_CHAIN_LEN, LINKAGE_VALUE_LEN, LinkageChain, LinkageValue,
    MAX_LOOKAHEAD_PERIODS, P256PublicKey, PseudonymRevocationList, ResolutionAuthorityKey,
    ResolutionAuthorityPublicKey, RevocationEntry,
};
use trustca_store::{BlobAudit, Storage, StoreError};
use zeroize::Zeroizing;

use crate::CaError;
use crate::ca_keys::{CaKey, CaKeys};
use crate::hierarchy::CaHierarchy;
use crate::issuer::{self, SigningCa};
use crate::keystore::{Keystore, Passphrase, write_new};
use crate::pkcs11::Pkcs11Token;
use crate::service::caller as authenticated_caller;
use trustca_model::StatementSigner;
use trustca_model::policy::KeyRole;

/// The opaque record space holding every pseudonym record.
pub const SPACE: &str = "pseudonym";
/// Key prefix of escrow blobs (followed by the 16-byte linkage value).
pub const ESCROW_PREFIX: &[u8] = b"e/";
/// Key prefix of vehicle records (followed by a 32-byte keyed hash).
pub const VEHICLE_PREFIX: &[u8] = b"v/";
/// Key prefix of PRL states (followed by the sector name).
pub const PRL_PREFIX: &[u8] = b"l/";
/// Keystore entry of the CA's pseudonym state secret (32 random bytes).
pub const STATE_SECRET_KEY: &str = "pseudonym-state";
/// `DIR/ra/resolution-authority.key`, relative to the data directory.
pub const RA_KEY_FILE: &str = "ra/resolution-authority.key";
/// `DIR/ca/resolution-authority.pub`, relative to the data directory.
pub const RA_PUB_FILE: &str = "ca/resolution-authority.pub";
/// Subject common name of every pseudonym certificate.
pub const PSEUDONYM_COMMON_NAME: &str = "pseudonym";
/// Basis entry (of the trust-level extension) carrying the linkage value.
pub const BASIS_LINKAGE_VALUE: &str = "linkage-value";
/// Basis entry carrying the period number.
pub const BASIS_PERIOD: &str = "period";
/// Basis entry carrying the certificates per period (for PRL matching).
pub const BASIS_CERTS_PER_PERIOD: &str = "certificates-per-period";
/// Basis entry carrying one permission.
pub const BASIS_PERMISSION: &str = "permission";
/// Scheme of linkage values in the basis.
pub const LINKAGE_SCHEME: &str = "trustca-linkage-v1";
/// Scheme of permissions in the basis.
pub const PERMISSION_SCHEME: &str = "v2x";
/// At most this many permissions (the extension's list holds 16 entries).
pub const MAX_PERMISSIONS: usize = 13;
/// Version byte of escrow plaintexts.
const ESCROW_PLAINTEXT_VERSION: u8 = 1;
const VEHICLE_RECORD_VERSION: u8 = 1;
const PRL_STATE_VERSION: u8 = 1;
const VEHICLE_AAD: &[u8] = b"trustca-pseudonym-vehicle-v1";

// ---------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------

/// One sector's pseudonym profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PseudonymProfile {
    /// The sector.
    pub sector: SectorName,
    /// The version of `pseudonym.toml`.
    pub policy_version: String,
    /// Unix time at which period 0 starts.
    pub epoch: i64,
    /// Length of a period in seconds.
    pub period_seconds: u64,
    /// Certificates per vehicle and period.
    pub certificates_per_period: u32,
    /// Validity added before and after each period.
    pub overlap_seconds: u64,
    /// Periods a vehicle may hold ahead, counting the current one.
    pub max_periods_ahead: u32,
    /// Periods per request.
    pub max_periods_per_request: u32,
    /// Minimum live trust level for issuance.
    pub min_level: u8,
    /// Permissions written into each certificate.
    pub permissions: Vec<String>,
    /// Validity of a published PRL.
    pub prl_validity_hours: u32,
}

impl PseudonymProfile {
    /// The period containing unix time `t` (`None` before the epoch).
    pub fn period_at(&self, t: i64) -> Option<u64> {
        if t < self.epoch {
            return None;
        }
        Some((t - self.epoch) as u64 / self.period_seconds)
    }

    /// Unix time at which `period` starts.
    pub fn period_start(&self, period: u64) -> Option<i64> {
        period
            .checked_mul(self.period_seconds)
            .and_then(|x| i64::try_from(x).ok())
            .and_then(|x| self.epoch.checked_add(x))
    }

    /// Validity of the certificates of `period`: `(not_before, not_after)`,
    /// unix seconds, inclusive, with the overlap on both sides.
    pub fn validity(&self, period: u64) -> Option<(i64, i64)> {
        let start = self.period_start(period)?;
        let end = start.checked_add(i64::try_from(self.period_seconds).ok()?)?;
        let overlap = i64::try_from(self.overlap_seconds).ok()?;
        Some((start.checked_sub(overlap)?, end.checked_add(overlap - 1)?))
    }

    fn to_message(&self, now: i64) -> pb::PseudonymProfile {
        pb::PseudonymProfile {
            sector: self.sector.to_string(),
            policy_version: self.policy_version.clone(),
            epoch: self.epoch,
            period_seconds: self.period_seconds,
            certificates_per_period: self.certificates_per_period,
            overlap_seconds: self.overlap_seconds,
            max_periods_ahead: self.max_periods_ahead,
            max_periods_per_request: self.max_periods_per_request,
            min_level: self.min_level as u32,
            permissions: self.permissions.clone(),
            current_period: self.period_at(now).unwrap_or(0),
            server_time: now,
        }
    }
}

/// `policies/pseudonym.toml`: the profiles of the sectors that use pseudonyms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PseudonymPolicy {
    /// Version of the file.
    pub version: String,
    /// Profiles by sector.
    pub sectors: BTreeMap<SectorName, PseudonymProfile>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: String,
    #[serde(default)]
    sectors: BTreeMap<String, ProfileFile>,
}

fn default_epoch() -> String {
    "2024-01-01T00:00:00Z".into()
}
fn default_period() -> u64 {
    7 * 24 * 3600
}
fn default_cpp() -> u32 {
    20
}
fn default_overlap() -> u64 {
    3600
}
fn default_ahead() -> u32 {
    156
}
fn default_per_request() -> u32 {
    12
}
fn default_min_level() -> u8 {
    3
}
fn default_prl_hours() -> u32 {
    24
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default = "default_epoch")]
    epoch: String,
    #[serde(default = "default_period")]
    period_seconds: u64,
    #[serde(default = "default_cpp")]
    certificates_per_period: u32,
    #[serde(default = "default_overlap")]
    overlap_seconds: u64,
    #[serde(default = "default_ahead")]
    max_periods_ahead: u32,
    #[serde(default = "default_per_request")]
    max_periods_per_request: u32,
    #[serde(default = "default_min_level")]
    min_level: u8,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default = "default_prl_hours")]
    prl_validity_hours: u32,
}

fn valid_permission(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 64
        && !p.starts_with('-')
        && !p.ends_with('-')
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl PseudonymPolicy {
    /// Parses `pseudonym.toml`; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, CaError> {
        let bad = |m: String| CaError::InvalidRequest(format!("{file}: {m}"));
        let parsed: PolicyFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        if parsed.version.is_empty() || parsed.version.len() > 64 {
            return Err(bad("version must be 1-64 characters".into()));
        }
        let mut sectors = BTreeMap::new();
        for (name, p) in parsed.sectors {
            let sector =
                SectorName::new(&name).map_err(|e| bad(format!("[sectors.{name}]: {e}")))?;
            let at = |m: &str| bad(format!("[sectors.{name}]: {m}"));
            let epoch =
                OffsetDateTime::parse(&p.epoch, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| at(&format!("epoch {:?}: {e}", p.epoch)))?
                    .unix_timestamp();
            if p.period_seconds == 0 || p.period_seconds > 366 * 24 * 3600 {
                return Err(at("period_seconds must be 1 .. one year"));
            }
            if p.overlap_seconds >= p.period_seconds {
                return Err(at("overlap_seconds must be shorter than a period"));
            }
            if p.certificates_per_period == 0
                || p.certificates_per_period > trustca_pseudonym::MAX_CERTIFICATES_PER_PERIOD
            {
                return Err(at("certificates_per_period must be 1-4096"));
            }
            if p.max_periods_ahead == 0 || p.max_periods_ahead as u64 > MAX_LOOKAHEAD_PERIODS {
                return Err(at(&format!(
                    "max_periods_ahead must be 1-{MAX_LOOKAHEAD_PERIODS} (a revocation entry must cover every certificate already issued)"
                )));
            }
            if p.max_periods_per_request == 0 || p.max_periods_per_request > p.max_periods_ahead {
                return Err(at("max_periods_per_request must be 1 .. max_periods_ahead"));
            }
            if p.max_periods_per_request as u64 * p.certificates_per_period as u64 > 4096 {
                return Err(at(
                    "max_periods_per_request x certificates_per_period must be at most 4096 (response size)",
                ));
            }
            if !(1..=5).contains(&p.min_level) {
                return Err(at("min_level must be 1-5"));
            }
            if p.permissions.len() > MAX_PERMISSIONS {
                return Err(at(&format!("at most {MAX_PERMISSIONS} permissions")));
            }
            if let Some(bad_p) = p.permissions.iter().find(|x| !valid_permission(x)) {
                return Err(at(&format!(
                    "permission {bad_p:?}: use 1-64 characters of a-z, 0-9 and '-'"
                )));
            }
            if p.prl_validity_hours == 0 || p.prl_validity_hours > 24 * 31 {
                return Err(at("prl_validity_hours must be 1-744"));
            }
            sectors.insert(
                sector.clone(),
                PseudonymProfile {
                    sector,
                    policy_version: parsed.version.clone(),
                    epoch,
                    period_seconds: p.period_seconds,
                    certificates_per_period: p.certificates_per_period,
                    overlap_seconds: p.overlap_seconds,
                    max_periods_ahead: p.max_periods_ahead,
                    max_periods_per_request: p.max_periods_per_request,
                    min_level: p.min_level,
                    permissions: p.permissions,
                    prl_validity_hours: p.prl_validity_hours,
                },
            );
        }
        Ok(Self {
            version: parsed.version,
            sectors,
        })
    }

    /// Checks that every sector with a profile has a sector policy.
    pub fn check_against(&self, policies: &PolicySet) -> Result<(), CaError> {
        for sector in self.sectors.keys() {
            if !policies.sectors.contains_key(sector) {
                return Err(CaError::InvalidRequest(format!(
                    "pseudonym.toml has a profile for sector {sector}, which has no sector policy"
                )));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Init: pseudonym CAs, the state secret, the resolution authority key
// ---------------------------------------------------------------------------

/// What [`init_pseudonym_cas`] did.
#[derive(Debug, Default)]
pub struct PseudonymInitReport {
    /// Pseudonym CAs created now (sector names).
    pub created_cas: Vec<String>,
    /// Pseudonym CAs that already existed.
    pub existing_cas: Vec<String>,
    /// The resolution authority's private key, when it was created now. It
    /// must be moved offline.
    pub resolution_authority_key: Option<PathBuf>,
}

fn pseudonym_ca_file(sector: &SectorName) -> String {
    format!("{sector}-pseudonym.pem")
}

fn pseudonym_ca_key_name(sector: &SectorName) -> String {
    format!("{sector}-pseudonym")
}

fn first_cert(path: &Path) -> Result<Vec<u8>, CaError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))?;
    pem::parse_many(&text)
        .map_err(|_| CaError::Keystore(format!("{} is not PEM", path.display())))?
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .ok_or_else(|| CaError::Keystore(format!("{} holds no certificate", path.display())))
}

/// Parameters of a sector's pseudonym CA: the sector CA profile (pathLen 0,
/// trust-level extension of kind SectorCa) with its own name, and a name
/// constraint that lets it certify no DNS name outside a subtree nothing
/// uses (pseudonym certificates carry no names at all).
fn pseudonym_ca_params(
    policies: &PolicySet,
    sector: &SectorName,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let version = &policies.sector(sector.as_str())?.version;
    let ext = TrustLevelExtension {
        kind: CertificateKind::SectorCa,
        sector: sector.clone(),
        level: None,
        policy_version: version.clone(),
        basis: vec![],
        authorized_sectors: vec![],
        permitted_schemes: vec![],
    };
    let organization = &policies.pki.root.organization;
    let mut p = issuer::sector_ca_params(
        organization,
        &ext,
        &policies.pki,
        policies.pki.sector_ca.validity_days,
        now,
        cap,
    )?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization.as_str());
    dn.push(DnType::OrganizationalUnitName, sector.as_str());
    dn.push(DnType::CommonName, format!("trustca {sector} Pseudonym CA"));
    p.distinguished_name = dn;
    p.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName(format!(
            "pseudonym.{}.{}",
            sector, policies.pki.trust_domain
        ))],
        excluded_subtrees: vec![],
    });
    Ok(p)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], CaError> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| CaError::Signing("no randomness".into()))?;
    Ok(b)
}

/// Creates what is missing for pseudonyms in an initialised data directory:
/// for each sector with a profile, `ca/<sector>-pseudonym.pem` (issued by
/// the root) and its key in the keystore; the CA's pseudonym state secret in
/// the keystore; and the resolution authority's key pair, private key in
/// `DIR/ra/resolution-authority.key` (never in the keystore) and public key
/// in `DIR/ca/resolution-authority.pub`. Never overwrites anything.
pub fn init_pseudonym_cas(
    data: &Path,
    policies: &PolicySet,
    pseudonyms: &PseudonymPolicy,
    passphrase: &Passphrase,
    token: Option<Arc<Pkcs11Token>>,
) -> Result<PseudonymInitReport, CaError> {
    let mut report = PseudonymInitReport::default();
    if pseudonyms.sectors.is_empty() {
        return Ok(report);
    }
    pseudonyms.check_against(policies)?;
    let dir = data.join("ca");
    let keystore = CaKeys::new(Keystore::open(&dir, passphrase)?, token, &policies.pki);
    let now = OffsetDateTime::now_utc();
    let mut root: Option<SigningCa> = None;
    for sector in pseudonyms.sectors.keys() {
        let path = dir.join(pseudonym_ca_file(sector));
        if path.exists() {
            report.existing_cas.push(sector.to_string());
            continue;
        }
        if root.is_none() {
            let der = first_cert(&dir.join("root.pem"))?;
            root = Some(SigningCa::new(der, keystore.load("root")?)?);
        }
        let Some(root) = &root else {
            return Err(CaError::NotInitialized(data.to_path_buf()));
        };
        let key_name = pseudonym_ca_key_name(sector);
        if keystore.has(&key_name) {
            return Err(CaError::Keystore(format!(
                "key {key_name} exists without {}; refusing to replace it",
                path.display()
            )));
        }
        // P-256 whatever the sector CA uses: V2X verifiers and the PRL
        // signature expect it.
        let key = keystore.generate(
            &key_name,
            KeyRole::Pseudonym,
            trustca_model::KeyAlgorithm::EcdsaP256,
        )?;
        let params = pseudonym_ca_params(policies, sector, now, root.not_after)?;
        let der = root.sign(&params, &key)?;
        write_new(&path, crate::certs_to_pem(&[&der]).as_bytes())?;
        report.created_cas.push(sector.to_string());
    }
    if !keystore.has(STATE_SECRET_KEY) {
        let secret = Zeroizing::new(random_bytes::<32>()?);
        keystore
            .keystore()
            .store(STATE_SECRET_KEY, secret.as_ref())?;
    }
    let pub_path = data.join(RA_PUB_FILE);
    if !pub_path.exists() {
        let ra = ResolutionAuthorityKey::generate()
            .map_err(|e| CaError::Signing(format!("resolution authority key: {e}")))?;
        let ra_dir = data.join("ra");
        std::fs::create_dir_all(&ra_dir).map_err(|e| CaError::io(&ra_dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&ra_dir, std::fs::Permissions::from_mode(0o700));
        }
        let key_path = data.join(RA_KEY_FILE);
        let pkcs8 = ra.to_pkcs8_der();
        let pem_text = Zeroizing::new(pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.to_vec())));
        write_new(&key_path, pem_text.as_bytes())?;
        let spki = ra.public_key().as_p256().to_spki_der();
        write_new(
            &pub_path,
            pem::encode(&pem::Pem::new("PUBLIC KEY", spki)).as_bytes(),
        )?;
        report.resolution_authority_key = Some(key_path);
    }
    Ok(report)
}

/// Reads a resolution authority private key (PKCS#8 PEM, as `init` writes it).
pub fn read_resolution_authority_key(path: &Path) -> Result<ResolutionAuthorityKey, CaError> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))?);
    let parsed = pem::parse(text.as_bytes())
        .map_err(|_| CaError::Keystore(format!("{} is not PEM", path.display())))?;
    if parsed.tag() != "PRIVATE KEY" {
        return Err(CaError::Keystore(format!(
            "{}: expected a PRIVATE KEY, found {}",
            path.display(),
            parsed.tag()
        )));
    }
    let der = Zeroizing::new(parsed.into_contents());
    ResolutionAuthorityKey::from_pkcs8_der(&der).map_err(|e| {
        CaError::Keystore(format!(
            "{}: not a resolution authority key: {e}",
            path.display()
        ))
    })
}

fn read_resolution_authority_public(path: &Path) -> Result<ResolutionAuthorityPublicKey, CaError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaError::io(path, e))?;
    let parsed = pem::parse(&text)
        .map_err(|_| CaError::Keystore(format!("{} is not PEM", path.display())))?;
    let key = P256PublicKey::from_spki_der(parsed.contents())
        .map_err(|e| CaError::Keystore(format!("{}: {e}", path.display())))?;
    Ok(ResolutionAuthorityPublicKey::new(key))
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// What a pseudonym certificate says, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PseudonymCertificate {
    /// Sector.
    pub sector: SectorName,
    /// Trust level.
    pub level: u8,
    /// Linkage value.
    pub linkage_value: [u8; LINKAGE_VALUE_LEN],
    /// Period.
    pub period: u64,
    /// Certificates per period of the profile it was issued under.
    pub certificates_per_period: u32,
    /// Permissions.
    pub permissions: Vec<String>,
    /// Serial, bytes.
    pub serial: Vec<u8>,
    /// Validity, unix seconds.
    pub not_before: i64,
    /// Validity, unix seconds.
    pub not_after: i64,
    /// SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
}

/// Decodes the pseudonym fields of a certificate (no signature check),
/// reading the trust-level extension under `oid`.
pub fn pseudonym_fields(der: &[u8], oid: &ExtensionOid) -> Result<PseudonymCertificate, CaError> {
    let bad =
        |m: &str| CaError::InvalidRequest(format!("not a trustca pseudonym certificate: {m}"));
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|_| bad("does not parse"))?;
    let ext = trustca_model::trust_extension(&cert, oid)?
        .ok_or_else(|| bad("no trust-level extension"))?;
    if ext.kind != CertificateKind::Pseudonym {
        return Err(bad(&format!("kind is {}", ext.kind.as_str())));
    }
    let find = |name: &str| ext.basis.iter().find(|b| b.evidence == name);
    let lv_hex = find(BASIS_LINKAGE_VALUE).ok_or_else(|| bad("no linkage value"))?;
    let lv_bytes = trustca_model::hexfmt::decode(&lv_hex.result)
        .filter(|b| b.len() == LINKAGE_VALUE_LEN)
        .ok_or_else(|| bad("malformed linkage value"))?;
    let mut linkage_value = [0u8; LINKAGE_VALUE_LEN];
    linkage_value.copy_from_slice(&lv_bytes);
    let period = find(BASIS_PERIOD)
        .and_then(|b| b.result.parse::<u64>().ok())
        .ok_or_else(|| bad("no period"))?;
    let certificates_per_period = find(BASIS_CERTS_PER_PERIOD)
        .and_then(|b| b.result.parse::<u32>().ok())
        .ok_or_else(|| bad("no certificates-per-period"))?;
    let permissions = ext
        .basis
        .iter()
        .filter(|b| b.evidence == BASIS_PERMISSION)
        .map(|b| b.result.clone())
        .collect();
    Ok(PseudonymCertificate {
        sector: ext.sector.clone(),
        level: ext.level.map(|l| l.get()).unwrap_or(0),
        linkage_value,
        period,
        certificates_per_period,
        permissions,
        serial: cert.raw_serial().to_vec(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        spki_der: cert.public_key().raw.to_vec(),
    })
}

fn pseudonym_extension(
    profile: &PseudonymProfile,
    level: TrustLevel,
    period: u64,
    lv: &LinkageValue,
) -> TrustLevelExtension {
    let entry = |evidence: &str, scheme: &str, result: String| EvaluationBasis {
        evidence: evidence.into(),
        scheme: scheme.into(),
        result,
        evaluated_at: None,
    };
    let mut basis = vec![
        entry(
            BASIS_LINKAGE_VALUE,
            LINKAGE_SCHEME,
            trustca_model::hexfmt::encode(lv.as_bytes()),
        ),
        entry(BASIS_PERIOD, "", period.to_string()),
        entry(
            BASIS_CERTS_PER_PERIOD,
            "",
            profile.certificates_per_period.to_string(),
        ),
    ];
    basis.extend(
        profile
            .permissions
            .iter()
            .map(|p| entry(BASIS_PERMISSION, PERMISSION_SCHEME, p.clone())),
    );
    TrustLevelExtension {
        kind: CertificateKind::Pseudonym,
        sector: profile.sector.clone(),
        level: Some(level),
        policy_version: profile.policy_version.clone(),
        basis,
        authorized_sectors: vec![],
        permitted_schemes: vec![],
    }
}

/// Parameters of one pseudonym certificate: constant subject, no SAN, no
/// CRL distribution point, random serial, period-aligned validity. The only
/// per-certificate values are the serial, the key and the linkage value.
fn pseudonym_params(
    ext: &TrustLevelExtension,
    oid: &ExtensionOid,
    serial: &[u8; 16],
    not_before: i64,
    not_after: i64,
) -> Result<CertificateParams, CaError> {
    let time = |t: i64| {
        OffsetDateTime::from_unix_timestamp(t)
            .map_err(|_| CaError::Signing("validity out of range".into()))
    };
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, PSEUDONYM_COMMON_NAME);
    p.distinguished_name = dn;
    p.serial_number = Some(SerialNumber::from_slice(serial));
    p.not_before = time(not_before)?;
    p.not_after = time(not_after)?;
    p.use_authority_key_identifier_extension = true;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.custom_extensions.push(issuer::trust_extension(ext, oid)?);
    Ok(p)
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/// The CA's per-vehicle state, stored encrypted.
struct VehicleState {
    /// The chain, at a period no later than the current one.
    chain: LinkageChain,
    issued_through: Option<u64>,
    revoked_from: Option<u64>,
}

impl VehicleState {
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(2 + LINKAGE_CHAIN_LEN + 16));
        out.push(VEHICLE_RECORD_VERSION);
        out.extend_from_slice(self.chain.to_bytes().as_ref());
        let flags =
            u8::from(self.issued_through.is_some()) | (u8::from(self.revoked_from.is_some()) << 1);
        out.push(flags);
        out.extend_from_slice(&self.issued_through.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.revoked_from.unwrap_or(0).to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != 2 + LINKAGE_CHAIN_LEN + 16 || bytes[0] != VEHICLE_RECORD_VERSION {
            return None;
        }
        let chain = LinkageChain::from_bytes(&bytes[1..1 + LINKAGE_CHAIN_LEN]).ok()?;
        let rest = &bytes[1 + LINKAGE_CHAIN_LEN..];
        let flags = rest[0];
        let u = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_be_bytes(a)
        };
        Some(Self {
            chain,
            issued_through: (flags & 1 != 0).then(|| u(&rest[1..9])),
            revoked_from: (flags & 2 != 0).then(|| u(&rest[9..17])),
        })
    }
}

/// The public state of a sector's PRL.
#[derive(Default)]
struct PrlState {
    issue_number: u64,
    entries: Vec<RevocationEntry>,
}

impl PrlState {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13 + 40 * self.entries.len());
        out.push(PRL_STATE_VERSION);
        out.extend_from_slice(&self.issue_number.to_be_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.period.to_be_bytes());
            out.extend_from_slice(&e.seed);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 13 || bytes[0] != PRL_STATE_VERSION {
            return None;
        }
        let issue_number = u64::from_be_bytes(bytes[1..9].try_into().ok()?);
        let n = u32::from_be_bytes(bytes[9..13].try_into().ok()?) as usize;
        let body = &bytes[13..];
        if body.len() != n.checked_mul(40)? {
            return None;
        }
        let entries = body
            .chunks_exact(40)
            .map(|c| {
                let mut seed = [0u8; 32];
                seed.copy_from_slice(&c[8..]);
                Some(RevocationEntry {
                    period: u64::from_be_bytes(c[..8].try_into().ok()?),
                    seed,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            issue_number,
            entries,
        })
    }
}

fn prefixed(prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(prefix.len() + key.len());
    k.extend_from_slice(prefix);
    k.extend_from_slice(key);
    k
}

/// Escrow plaintext: `01 ‖ chain state at the certificate's period ‖ URN`.
fn escrow_plaintext(chain_at_period: &LinkageChain, urn: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(1 + LINKAGE_CHAIN_LEN + urn.len()));
    out.push(ESCROW_PLAINTEXT_VERSION);
    out.extend_from_slice(chain_at_period.to_bytes().as_ref());
    out.extend_from_slice(urn.as_bytes());
    out
}

/// What the resolution authority learns from one certificate.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The vehicle's identity URN.
    pub identity: String,
    /// The certificate's sector.
    pub sector: String,
    /// The certificate's period.
    pub period: u64,
    /// The certificate's index within its period, if it could be found.
    pub index: Option<u32>,
    /// The revocation entry from the certificate's period on (what a PRL
    /// would publish to revoke the vehicle from there).
    pub revocation_entry: RevocationEntry,
}

/// Resolves a pseudonym certificate to its vehicle with the resolution
/// authority's key, from a store holding the escrow records (the CA's data
/// directory or a copy, opened offline).
pub fn resolve(
    storage: &dyn Storage,
    ra: &ResolutionAuthorityKey,
    cert_der: &[u8],
    oid: &ExtensionOid,
) -> Result<Resolution, CaError> {
    let fields = pseudonym_fields(cert_der, oid)?;
    let blob = storage
        .blob_get(SPACE, &prefixed(ESCROW_PREFIX, &fields.linkage_value))?
        .ok_or_else(|| {
            CaError::InvalidRequest(
                "no escrow record for this certificate's linkage value (not issued from this data directory)"
                    .into(),
            )
        })?;
    let plain = trustca_pseudonym::open(ra, &fields.linkage_value, &blob).map_err(|e| {
        CaError::PermissionDenied(format!(
            "the escrow record does not open with this key ({e}); is it the resolution authority key of this CA?"
        ))
    })?;
    if plain.len() <= 1 + LINKAGE_CHAIN_LEN || plain[0] != ESCROW_PLAINTEXT_VERSION {
        return Err(CaError::InvalidRequest("malformed escrow record".into()));
    }
    let chain = LinkageChain::from_bytes(&plain[1..1 + LINKAGE_CHAIN_LEN])
        .map_err(|e| CaError::InvalidRequest(format!("malformed escrow record: {e}")))?;
    let identity = String::from_utf8(plain[1 + LINKAGE_CHAIN_LEN..].to_vec())
        .map_err(|_| CaError::InvalidRequest("malformed escrow record".into()))?;
    let lv = LinkageValue(fields.linkage_value);
    let index = chain
        .linkage_values(fields.period, fields.certificates_per_period)
        .ok()
        .and_then(|v| v.iter().position(|x| *x == lv))
        .map(|j| j as u32);
    let revocation_entry = chain
        .revocation_entry(fields.period)
        .map_err(|e| CaError::InvalidRequest(format!("escrow chain: {e}")))?;
    Ok(Resolution {
        identity,
        sector: fields.sector.to_string(),
        period: fields.period,
        index,
        revocation_entry,
    })
}

// ---------------------------------------------------------------------------
// The authority
// ---------------------------------------------------------------------------

struct SectorCa {
    profile: PseudonymProfile,
    ca: SigningCa,
    /// The CA's own validity start, unix seconds: no certificate starts
    /// earlier (same for every vehicle, so it links nothing).
    ca_not_before: i64,
    /// The pseudonym CA's key again, for signing revocation lists.
    prl_key: CaKey,
}

/// The running pseudonym CAs of every sector with a profile.
pub struct PseudonymAuthority {
    sectors: BTreeMap<SectorName, SectorCa>,
    /// Sectors with a profile that cannot issue, and why.
    disabled: BTreeMap<SectorName, String>,
    ra: Option<ResolutionAuthorityPublicKey>,
    index_key: Option<hmac::Key>,
    wrap_key: Option<LessSafeKey>,
    storage: Arc<dyn Storage>,
    prl_dir: PathBuf,
    in_flight: Mutex<HashSet<[u8; 32]>>,
    prl_lock: Mutex<()>,
    latest: RwLock<HashMap<SectorName, Arc<pb::SignedPrl>>>,
    revoked_cas: Arc<crate::root_crl::RevokedCas>,
    /// The trust-level extension's OID (`pki.toml`).
    extension_oid: ExtensionOid,
    /// Where PRL publication times and sizes go.
    observer: Arc<dyn trustca_model::observe::Observer>,
}

impl std::fmt::Debug for PseudonymAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PseudonymAuthority")
            .field("sectors", &self.sectors.keys().collect::<Vec<_>>())
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Releases a vehicle claimed by a request when dropped.
struct Claim<'a> {
    set: &'a Mutex<HashSet<[u8; 32]>>,
    key: [u8; 32],
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.key);
    }
}

fn store_status(e: StoreError) -> Status {
    Status::from(CaError::Store(e))
}

fn internal(what: &str, e: impl std::fmt::Display) -> Status {
    Status::internal(format!("{what}: {e}"))
}

/// One issued certificate with its escrow record (key, sealed blob).
type IssuedWithEscrow = (pb::IssuedPseudonym, (Vec<u8>, Vec<u8>));

/// The result of one issuance, for logging and measurement.
#[derive(Debug)]
pub struct IssuanceSummary {
    /// Sector.
    pub sector: String,
    /// Periods issued.
    pub periods: (u64, u64),
    /// Certificates issued.
    pub certificates: usize,
}

impl PseudonymAuthority {
    /// Loads the pseudonym CAs of every sector with a profile. A sector
    /// whose CA is missing (a data directory initialised before pseudonyms
    /// were enabled) is disabled with the reason, not an error: run
    /// `trustca init` to create it.
    pub fn open(
        data: &Path,
        policies: &PolicySet,
        pseudonyms: &PseudonymPolicy,
        hierarchy: &CaHierarchy,
        storage: Arc<dyn Storage>,
    ) -> Result<Self, CaError> {
        pseudonyms.check_against(policies)?;
        let dir = data.join("ca");
        let keys = hierarchy.keys();
        let keystore = keys.keystore();
        let mut sectors = BTreeMap::new();
        let mut disabled = BTreeMap::new();
        let hint = format!("run `trustca init --data {}` to create it", data.display());
        let ra = if pseudonyms.sectors.is_empty() {
            None
        } else {
            match read_resolution_authority_public(&data.join(RA_PUB_FILE)) {
                Ok(k) => Some(k),
                Err(e) => {
                    tracing::warn!(error = %e, "no resolution authority public key; pseudonym issuance disabled");
                    None
                }
            }
        };
        let secret = if keystore.has(STATE_SECRET_KEY) {
            Some(Zeroizing::new(keystore.load(STATE_SECRET_KEY)?))
        } else {
            None
        };
        let (index_key, wrap_key) = match &secret {
            Some(s) => {
                let master = hmac::Key::new(hmac::HMAC_SHA256, s);
                let index = hmac::sign(&master, b"trustca-pseudonym-index-v1");
                let wrap = hmac::sign(&master, b"trustca-pseudonym-wrap-v1");
                let wrap = UnboundKey::new(&AES_256_GCM, wrap.as_ref())
                    .map_err(|_| CaError::Keystore("pseudonym wrapping key".into()))?;
                (
                    Some(hmac::Key::new(hmac::HMAC_SHA256, index.as_ref())),
                    Some(LessSafeKey::new(wrap)),
                )
            }
            None => (None, None),
        };
        for (sector, profile) in &pseudonyms.sectors {
            let path = dir.join(pseudonym_ca_file(sector));
            if ra.is_none() || secret.is_none() {
                disabled.insert(
                    sector.clone(),
                    format!("pseudonyms are not initialised in this data directory; {hint}"),
                );
                continue;
            }
            if !path.exists() {
                tracing::warn!(%sector, "no pseudonym CA; pseudonym issuance disabled for the sector");
                disabled.insert(
                    sector.clone(),
                    format!("{} is missing; {hint}", path.display()),
                );
                continue;
            }
            let der = first_cert(&path)?;
            let key_name = pseudonym_ca_key_name(sector);
            let prl_key = keys.load(&key_name)?;
            let ca_not_before = x509_parser::parse_x509_certificate(&der)
                .map_err(|_| CaError::Signing("pseudonym CA certificate does not parse".into()))?
                .1
                .validity()
                .not_before
                .timestamp();
            let ca = SigningCa::new(der, keys.load(&key_name)?)?;
            sectors.insert(
                sector.clone(),
                SectorCa {
                    profile: profile.clone(),
                    ca,
                    ca_not_before,
                    prl_key,
                },
            );
        }
        Ok(Self {
            sectors,
            disabled,
            ra,
            index_key,
            wrap_key,
            storage,
            prl_dir: data.join("crl"),
            in_flight: Mutex::new(HashSet::new()),
            prl_lock: Mutex::new(()),
            latest: RwLock::new(HashMap::new()),
            revoked_cas: Arc::clone(hierarchy.revoked_cas()),
            extension_oid: policies.pki.extensions.trust_level_oid.clone(),
            observer: Arc::new(trustca_model::observe::NoObserver),
        })
    }

    /// Reports every PRL publication's time and size to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn trustca_model::observe::Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Sectors that issue pseudonyms.
    pub fn sectors(&self) -> Vec<SectorName> {
        self.sectors.keys().cloned().collect()
    }

    /// The pseudonym CA certificate of a sector, DER.
    pub fn ca_der(&self, sector: &SectorName) -> Option<&[u8]> {
        self.sectors.get(sector).map(|s| s.ca.cert_der.as_slice())
    }

    fn sector(&self, sector: &SectorName) -> Result<&SectorCa, Status> {
        if let Some(s) = self.sectors.get(sector) {
            return Ok(s);
        }
        if let Some(reason) = self.disabled.get(sector) {
            return Err(Status::failed_precondition(reason.clone()));
        }
        Err(Status::permission_denied(format!(
            "sector {sector} has no pseudonym profile (policies/pseudonym.toml); its devices get no pseudonym certificates"
        )))
    }

    fn record_key(&self, identity: &DeviceIdentity) -> Result<[u8; 32], Status> {
        let key = self
            .index_key
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("pseudonyms are not initialised"))?;
        let tag = hmac::sign(key, identity.key().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn claim(&self, key: [u8; 32]) -> Result<Claim<'_>, Status> {
        let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if !set.insert(key) {
            return Err(Status::aborted(
                "another pseudonym request or revocation for this vehicle is in progress; retry",
            ));
        }
        Ok(Claim {
            set: &self.in_flight,
            key,
        })
    }

    fn load_vehicle(&self, key: &[u8; 32]) -> Result<Option<VehicleState>, Status> {
        let Some(sealed) = self
            .storage
            .blob_get(SPACE, &prefixed(VEHICLE_PREFIX, key))
            .map_err(store_status)?
        else {
            return Ok(None);
        };
        let wrap = self
            .wrap_key
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("pseudonyms are not initialised"))?;
        let corrupt = || Status::internal("a pseudonym vehicle record does not decrypt");
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VEHICLE_RECORD_VERSION {
            return Err(corrupt());
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| corrupt())?;
        let mut buf = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let aad = [VEHICLE_AAD, key.as_slice()].concat();
        let plain = wrap
            .open_in_place(nonce, Aad::from(aad.as_slice()), &mut buf)
            .map_err(|_| corrupt())?;
        VehicleState::decode(plain).map(Some).ok_or_else(corrupt)
    }

    fn seal_vehicle(
        &self,
        key: &[u8; 32],
        state: &VehicleState,
    ) -> Result<(Vec<u8>, Vec<u8>), Status> {
        let wrap = self
            .wrap_key
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("pseudonyms are not initialised"))?;
        let nonce: [u8; NONCE_LEN] = random_bytes().map_err(Status::from)?;
        let mut buf = state.encode().to_vec();
        let aad = [VEHICLE_AAD, key.as_slice()].concat();
        wrap.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_slice()),
            &mut buf,
        )
        .map_err(|_| Status::internal("sealing a vehicle record failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VEHICLE_RECORD_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok((prefixed(VEHICLE_PREFIX, key), out))
    }

    fn vehicle_of(caller: &Credential) -> Result<DeviceIdentity, Status> {
        if caller.kind != CertificateKind::LongTerm {
            return Err(Status::permission_denied(format!(
                "pseudonym certificates are issued to vehicles authenticated with their long-term certificate; the caller holds {} certificate",
                caller.kind.with_article()
            )));
        }
        caller
            .identity
            .clone()
            .ok_or_else(|| Status::permission_denied("the caller's certificate names no device"))
    }

    /// `GetPseudonymProfile` for the calling vehicle.
    pub fn profile_for(
        &self,
        caller: &Credential,
        now: i64,
    ) -> Result<pb::PseudonymProfileResponse, Status> {
        let identity = Self::vehicle_of(caller)?;
        let sector = self.sector(&identity.sector)?;
        let key = self.record_key(&identity)?;
        let state = self.load_vehicle(&key)?;
        Ok(pb::PseudonymProfileResponse {
            profile: Some(sector.profile.to_message(now)),
            has_issued: state.as_ref().is_some_and(|s| s.issued_through.is_some()),
            issued_through: state.as_ref().and_then(|s| s.issued_through).unwrap_or(0),
            revoked: state.as_ref().is_some_and(|s| s.revoked_from.is_some()),
        })
    }

    /// `RequestPseudonyms`: checks the caller, its live trust and the
    /// request, expands and signs every certificate, escrows each one's
    /// link to the vehicle, and commits the escrow blobs with the updated
    /// vehicle record in one durable write before answering.
    pub fn issue(
        &self,
        caller: &Credential,
        req: &pb::RequestPseudonymsRequest,
        now: i64,
    ) -> Result<(pb::RequestPseudonymsResponse, IssuanceSummary), Status> {
        let identity = Self::vehicle_of(caller)?;
        let sector = self.sector(&identity.sector)?;
        // Neither the pseudonym CA nor the sector CA that vouches for the
        // vehicle may have been revoked by the root.
        self.revoked_cas
            .check_issuing(&pseudonym_ca_key_name(&identity.sector))
            .and_then(|()| self.revoked_cas.check_issuing(identity.sector.as_str()))
            .map_err(Status::from)?;
        let profile = &sector.profile;
        let record = self
            .storage
            .trust_record(&identity.key())
            .map_err(store_status)?
            .ok_or_else(|| Status::permission_denied("the vehicle has no trust record"))?;
        if record.status != TrustStatus::Active {
            return Err(Status::failed_precondition(format!(
                "the vehicle is {}; only active vehicles get pseudonym certificates",
                record.status.as_str()
            )));
        }
        // The vehicle's long-term key, and the caterpillar key it offers,
        // must not be keys revoked for compromise.
        let own_serial = trustca_model::hexfmt::decode(&caller.serial).unwrap_or_default();
        if let Some(own) = self
            .storage
            .certificate(&own_serial)
            .map_err(store_status)?
        {
            let spki = x509_parser::parse_x509_certificate(&own.der)
                .map_err(|_| Status::internal("stored certificate does not parse"))?
                .1
                .public_key()
                .raw
                .to_vec();
            crate::enroll::refuse_blocked_key(self.storage.as_ref(), &spki)
                .map_err(Status::from)?;
        }
        if record.level < profile.min_level {
            return Err(Status::permission_denied(format!(
                "the vehicle's live level {} is below the {} pseudonym minimum {}",
                record.level, profile.sector, profile.min_level
            )));
        }
        let level = TrustLevel::new(record.level as i64)
            .map_err(|e| Status::internal(format!("trust record level: {e}")))?;
        let current = profile.period_at(now).ok_or_else(|| {
            Status::failed_precondition("the clock is before the pseudonym epoch")
        })?;
        let n = req.number_of_periods;
        if n == 0 || n > profile.max_periods_per_request {
            return Err(Status::invalid_argument(format!(
                "number_of_periods must be 1-{} per request",
                profile.max_periods_per_request
            )));
        }
        let first = req.first_period;
        let last = first
            .checked_add(n as u64 - 1)
            .ok_or_else(|| Status::invalid_argument("period out of range"))?;
        if first < current {
            return Err(Status::invalid_argument(format!(
                "period {first} has passed; the current period is {current}"
            )));
        }
        let horizon = current + profile.max_periods_ahead as u64 - 1;
        if last > horizon {
            return Err(Status::invalid_argument(format!(
                "periods up to {horizon} may be requested now (at most {} ahead, counting the current period {current})",
                profile.max_periods_ahead
            )));
        }
        let butterfly = ButterflyRequest::from_bytes(&req.butterfly_request)
            .map_err(|e| Status::invalid_argument(format!("butterfly_request: {e}")))?;
        crate::enroll::refuse_blocked_key(
            self.storage.as_ref(),
            &butterfly.caterpillar_public_key().to_spki_der(),
        )
        .map_err(Status::from)?;
        let ra = self
            .ra
            .as_ref()
            .ok_or_else(|| Status::failed_precondition("no resolution authority key"))?;
        let ca_not_after = sector.ca.not_after.unix_timestamp();
        if profile
            .validity(first)
            .is_none_or(|(nb, _)| nb >= ca_not_after)
        {
            return Err(Status::invalid_argument(
                "the pseudonym CA expires before that period",
            ));
        }

        let key = self.record_key(&identity)?;
        let _claim = self.claim(key)?;
        let mut state = match self.load_vehicle(&key)? {
            Some(s) => s,
            None => VehicleState {
                chain: LinkageChain::generate(current).map_err(|e| internal("linkage chain", e))?,
                issued_through: None,
                revoked_from: None,
            },
        };
        if state.revoked_from.is_some() {
            return Err(Status::permission_denied(
                "the vehicle's pseudonym certificates are revoked",
            ));
        }
        if let Some(through) = state.issued_through
            && first <= through
        {
            return Err(Status::already_exists(format!(
                "periods through {through} were already issued to this vehicle; request from period {}",
                through + 1
            )));
        }
        // Keep only what is still needed: the seed of the current period
        // (revocation covers the current period), never older ones.
        if state.chain.period() < current {
            state
                .chain
                .advance_to(current)
                .map_err(|e| internal("linkage chain", e))?;
        }
        let urn = identity.urn();

        let periods: Vec<u64> = (first..=last).collect();
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(1, 8)
            .min(periods.len());
        let per = periods.len().div_ceil(workers.max(1));
        let results: Vec<Result<Vec<IssuedWithEscrow>, Status>> = std::thread::scope(|scope| {
            let handles: Vec<_> = periods
                .chunks(per.max(1))
                .map(|chunk| {
                    let (state, butterfly, urn) = (&state, &butterfly, urn.as_str());
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        for &period in chunk {
                            out.extend(self.issue_period(
                                sector,
                                level,
                                ra,
                                &state.chain,
                                butterfly,
                                urn,
                                period,
                                ca_not_after,
                            )?);
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Status::internal("issuance worker panicked")))
                })
                .collect()
        });
        let mut certificates =
            Vec::with_capacity(periods.len() * profile.certificates_per_period as usize);
        let mut records = Vec::with_capacity(certificates.capacity() + 1);
        for r in results {
            for (cert, record) in r? {
                certificates.push(cert);
                records.push(record);
            }
        }
        state.issued_through = Some(last);
        records.push(self.seal_vehicle(&key, &state)?);
        let audit = BlobAudit {
            actor: format!("pseudonym-ca:{}", profile.sector),
            kind: "pseudonym.issued".into(),
            subject: profile.sector.to_string(),
            detail: format!(
                "{{\"periods\":[{first},{last}],\"certificates\":{}}}",
                certificates.len()
            ),
            at: now,
        };
        self.storage
            .blob_put(SPACE, &records, false, Some(&audit))
            .map_err(store_status)?;
        let summary = IssuanceSummary {
            sector: profile.sector.to_string(),
            periods: (first, last),
            certificates: certificates.len(),
        };
        Ok((
            pb::RequestPseudonymsResponse {
                certificates,
                pseudonym_ca_der: sector.ca.cert_der.clone(),
                profile: Some(profile.to_message(now)),
            },
            summary,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_period(
        &self,
        sector: &SectorCa,
        level: TrustLevel,
        ra: &ResolutionAuthorityPublicKey,
        chain: &LinkageChain,
        butterfly: &ButterflyRequest,
        urn: &str,
        period: u64,
        ca_not_after: i64,
    ) -> Result<Vec<IssuedWithEscrow>, Status> {
        let profile = &sector.profile;
        let seed = chain
            .seed_for_period(period)
            .map_err(|e| internal("linkage chain", e))?;
        let chain_at = LinkageChain::new(period, seed);
        let (not_before, not_after) = profile
            .validity(period)
            .ok_or_else(|| Status::invalid_argument("period out of range"))?;
        let not_after = not_after.min(ca_not_after);
        let not_before = not_before.max(sector.ca_not_before);
        let escrow = escrow_plaintext(&chain_at, urn);
        let mut out = Vec::with_capacity(profile.certificates_per_period as usize);
        for j in 0..profile.certificates_per_period {
            let lv = chain_at
                .linkage_value(period, j)
                .map_err(|e| internal("linkage value", e))?;
            let issued = butterfly
                .issue(period, j)
                .map_err(|e| internal("butterfly expansion", e))?;
            let ext = pseudonym_extension(profile, level, period, &lv);
            let serial = issuer::random_serial().map_err(Status::from)?;
            let params =
                pseudonym_params(&ext, &self.extension_oid, &serial, not_before, not_after)
                    .map_err(Status::from)?;
            let spki =
                CaHierarchy::spki_of(&issued.public_key.to_spki_der()).map_err(Status::from)?;
            let der = sector.ca.sign(&params, &spki).map_err(Status::from)?;
            let blob = trustca_pseudonym::seal(ra, lv.as_bytes(), &escrow)
                .map_err(|e| internal("escrow", e))?;
            out.push((
                pb::IssuedPseudonym {
                    period,
                    index: j,
                    certificate_der: der,
                    ca_contribution: issued.ca_contribution.to_bytes().to_vec(),
                },
                (prefixed(ESCROW_PREFIX, lv.as_bytes()), blob),
            ));
        }
        Ok(out)
    }

    /// `RevokePseudonyms` (operator): adds the vehicle's chain seed of the
    /// revocation period to its sector's PRL, refuses further issuance to
    /// it, and publishes the list. A vehicle that never had pseudonyms gets
    /// an entry too (for a chain that was never used), so the list does not
    /// tell which revoked vehicles had pseudonyms.
    pub fn revoke(
        &self,
        caller: &Credential,
        req: &pb::RevokePseudonymsRequest,
        now: i64,
    ) -> Result<pb::RevokePseudonymsResponse, Status> {
        if caller.kind != CertificateKind::Operator {
            return Err(Status::permission_denied(format!(
                "revoking pseudonyms needs an operator credential; the caller holds {} certificate",
                caller.kind.with_article()
            )));
        }
        if req.reason.len() > 512 {
            return Err(Status::invalid_argument("reason is limited to 512 bytes"));
        }
        let identity = DeviceIdentity::from_urn(&req.identity)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if !caller.may_act_for(&identity.sector) {
            return Err(Status::permission_denied(format!(
                "operator {} is not authorized for sector {}",
                caller.name, identity.sector
            )));
        }
        let sector = self.sector(&identity.sector)?;
        let profile = &sector.profile;
        if self
            .storage
            .device(&identity.key())
            .map_err(store_status)?
            .is_none()
        {
            return Err(Status::not_found(format!(
                "device {} is not enrolled",
                req.identity
            )));
        }
        let current = profile.period_at(now).ok_or_else(|| {
            Status::failed_precondition("the clock is before the pseudonym epoch")
        })?;
        let from = if req.from_period == 0 {
            current
        } else {
            req.from_period
        };
        if from < current {
            return Err(Status::invalid_argument(format!(
                "revocation cannot start before the current period {current} (it would expose the vehicle's past)"
            )));
        }
        if from > current + profile.max_periods_ahead as u64 {
            return Err(Status::invalid_argument(
                "revocation period is beyond what can have been issued",
            ));
        }
        let key = self.record_key(&identity)?;
        let _claim = self.claim(key)?;
        let mut state = match self.load_vehicle(&key)? {
            Some(s) => s,
            None => VehicleState {
                chain: LinkageChain::generate(current).map_err(|e| internal("linkage chain", e))?,
                issued_through: None,
                revoked_from: None,
            },
        };
        if let Some(already) = state.revoked_from {
            let number = self
                .latest_prl(&identity.sector)
                .ok()
                .and_then(|p| PseudonymRevocationList::from_signed_bytes(&p.prl).ok())
                .map(|l| l.issue_number())
                .unwrap_or(0);
            return Ok(pb::RevokePseudonymsResponse {
                sector: identity.sector.to_string(),
                from_period: already,
                prl_number: number,
                newly_revoked: false,
            });
        }
        if state.chain.period() < current {
            state
                .chain
                .advance_to(current)
                .map_err(|e| internal("linkage chain", e))?;
        }
        let entry = state
            .chain
            .revocation_entry(from)
            .map_err(|e| internal("linkage chain", e))?;
        state.revoked_from = Some(from);
        let vehicle_record = self.seal_vehicle(&key, &state)?;
        let reason: String = req
            .reason
            .chars()
            .filter(|c| !c.is_control())
            .map(|c| if c == '"' || c == '\\' { '\'' } else { c })
            .collect();
        let audit = BlobAudit {
            actor: crate::enroll::actor(caller),
            kind: "pseudonym.revoked".into(),
            subject: identity.urn(),
            detail: format!(
                "{{\"sector\":\"{}\",\"from_period\":{from},\"reason\":\"{reason}\"}}",
                identity.sector
            ),
            at: now,
        };
        let signed = self.publish_with(
            &identity.sector,
            now,
            Some(entry),
            vec![vehicle_record],
            Some(&audit),
        )?;
        let number = PseudonymRevocationList::from_signed_bytes(&signed.prl)
            .map(|l| l.issue_number())
            .unwrap_or(0);
        Ok(pb::RevokePseudonymsResponse {
            sector: identity.sector.to_string(),
            from_period: from,
            prl_number: number,
            newly_revoked: true,
        })
    }

    fn load_prl_state(&self, sector: &SectorName) -> Result<PrlState, Status> {
        match self
            .storage
            .blob_get(SPACE, &prefixed(PRL_PREFIX, sector.as_str().as_bytes()))
            .map_err(store_status)?
        {
            Some(b) => PrlState::decode(&b)
                .ok_or_else(|| Status::internal(format!("the PRL state of {sector} is corrupt"))),
            None => Ok(PrlState::default()),
        }
    }

    /// Reissues the PRL of `sector` (adding `entry`), committing the list
    /// state with `extra` records and `audit` in one durable write, then
    /// writes `DIR/crl/<sector>.prl`.
    fn publish_with(
        &self,
        sector_name: &SectorName,
        now: i64,
        entry: Option<RevocationEntry>,
        extra: Vec<(Vec<u8>, Vec<u8>)>,
        audit: Option<&BlobAudit>,
    ) -> Result<Arc<pb::SignedPrl>, Status> {
        let started = std::time::Instant::now();
        let sector = self.sector(sector_name)?;
        let profile = &sector.profile;
        let _guard = self.prl_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.load_prl_state(sector_name)?;
        if let Some(e) = entry {
            state.entries.push(e);
        }
        state.issue_number += 1;
        let current = profile.period_at(now).unwrap_or(0);
        // Re-base entries older than the previous period (whose
        // certificates may still be valid during the overlap) so every
        // entry stays inside the matching window. A re-based entry matches
        // the same certificates from its new period on, and never earlier.
        let floor = current.saturating_sub(1);
        let entries = state
            .entries
            .iter()
            .map(|e| {
                if e.period < floor {
                    e.advance_to(floor)
                } else {
                    Ok(e.clone())
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| internal("re-basing PRL entries", e))?;
        let next = now + profile.prl_validity_hours as i64 * 3600;
        let list = PseudonymRevocationList::new(
            sector_name.as_str(),
            state.issue_number,
            now.max(0) as u64,
            next.max(1) as u64,
            entries,
        )
        .map_err(|e| internal("building the PRL", e))?;
        let bytes = list.to_signed_bytes();
        let sig = StatementSigner::sign(&sector.prl_key, &bytes)
            .map_err(|e| internal("signing the PRL", e))?;
        let signed = Arc::new(pb::SignedPrl {
            prl: bytes,
            signature: sig,
            pseudonym_ca_der: sector.ca.cert_der.clone(),
        });
        let mut records = extra;
        records.push((
            prefixed(PRL_PREFIX, sector_name.as_str().as_bytes()),
            state.encode(),
        ));
        self.storage
            .blob_put(SPACE, &records, false, audit)
            .map_err(store_status)?;
        self.write_prl_file(sector_name, &signed)
            .map_err(Status::from)?;
        if let Ok(mut latest) = self.latest.write() {
            latest.insert(sector_name.clone(), Arc::clone(&signed));
        }
        tracing::info!(sector = %sector_name, prl_number = state.issue_number, entries = state.entries.len(), "PRL published");
        let size = signed.prl.len() + signed.signature.len() + signed.pseudonym_ca_der.len();
        self.observer
            .published("prl", sector_name.as_str(), started.elapsed(), size);
        Ok(signed)
    }

    fn write_prl_file(&self, sector: &SectorName, signed: &pb::SignedPrl) -> Result<(), CaError> {
        use prost::Message;
        std::fs::create_dir_all(&self.prl_dir).map_err(|e| CaError::io(&self.prl_dir, e))?;
        let path = self.prl_dir.join(format!("{sector}.prl"));
        let tmp = self.prl_dir.join(format!(".{sector}.prl.tmp"));
        std::fs::write(&tmp, signed.encode_to_vec()).map_err(|e| CaError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| CaError::io(&path, e))?;
        Ok(())
    }

    /// Reissues the PRL of `sector`.
    pub fn publish(&self, sector: &SectorName) -> Result<Arc<pb::SignedPrl>, Status> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.publish_with(sector, now, None, vec![], None)
    }

    /// Reissues every sector's PRL.
    pub fn publish_all(&self) -> Result<(), Status> {
        for sector in self.sectors.keys() {
            self.publish(sector)?;
        }
        Ok(())
    }

    /// The latest PRL of `sector`, publishing one if none is held.
    pub fn latest_prl(&self, sector: &SectorName) -> Result<Arc<pb::SignedPrl>, Status> {
        if let Ok(latest) = self.latest.read()
            && let Some(p) = latest.get(sector)
        {
            return Ok(Arc::clone(p));
        }
        if !self.sectors.contains_key(sector) {
            return Err(Status::not_found(format!(
                "sector {sector} publishes no pseudonym revocation list"
            )));
        }
        self.publish(sector)
    }

    /// Reissues every PRL at half the shortest PRL validity. Holds the
    /// authority weakly, so a stopped server is released.
    pub fn spawn_prl_schedule(self: &Arc<Self>) {
        let hours = self
            .sectors
            .values()
            .map(|s| s.profile.prl_validity_hours)
            .min();
        let Some(hours) = hours else { return };
        let period = std::time::Duration::from_secs(hours as u64 * 1800);
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(this) = weak.upgrade() else { return };
                match tokio::task::spawn_blocking(move || this.publish_all()).await {
                    Ok(Err(e)) => tracing::error!(error = %e, "scheduled PRL reissue failed"),
                    Err(e) => tracing::error!(error = %e, "PRL task failed"),
                    Ok(Ok(())) => {}
                }
            }
        });
    }
}

// ---------------------------------------------------------------------------
// gRPC
// ---------------------------------------------------------------------------

/// The `trustca.v1.Pseudonyms` service.
#[derive(Debug, Clone)]
pub struct PseudonymService {
    authority: Arc<PseudonymAuthority>,
}

impl PseudonymService {
    /// Wraps an authority.
    pub fn new(authority: Arc<PseudonymAuthority>) -> Self {
        Self { authority }
    }
}

fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
}

#[tonic::async_trait]
impl pb::pseudonyms_server::Pseudonyms for PseudonymService {
    async fn get_pseudonym_profile(
        &self,
        request: Request<pb::GetPseudonymProfileRequest>,
    ) -> Result<Response<pb::PseudonymProfileResponse>, Status> {
        let caller = authenticated_caller(&request)?;
        let a = Arc::clone(&self.authority);
        blocking(move || a.profile_for(&caller, now_unix()))
            .await
            .map(Response::new)
    }

    async fn request_pseudonyms(
        &self,
        request: Request<pb::RequestPseudonymsRequest>,
    ) -> Result<Response<pb::RequestPseudonymsResponse>, Status> {
        let caller = authenticated_caller(&request)?;
        let req = request.into_inner();
        let a = Arc::clone(&self.authority);
        let started = std::time::Instant::now();
        // The log names neither the vehicle nor any certificate.
        match blocking(move || a.issue(&caller, &req, now_unix())).await {
            Ok((resp, s)) => {
                tracing::info!(
                    rpc = "RequestPseudonyms",
                    sector = %s.sector,
                    first_period = s.periods.0,
                    last_period = s.periods.1,
                    certificates = s.certificates,
                    ms = started.elapsed().as_millis() as u64,
                    outcome = "issued"
                );
                Ok(Response::new(resp))
            }
            Err(status) => {
                tracing::info!(rpc = "RequestPseudonyms", outcome = "refused", code = ?status.code());
                Err(status)
            }
        }
    }

    async fn revoke_pseudonyms(
        &self,
        request: Request<pb::RevokePseudonymsRequest>,
    ) -> Result<Response<pb::RevokePseudonymsResponse>, Status> {
        let caller = authenticated_caller(&request)?;
        let req = request.into_inner();
        let a = Arc::clone(&self.authority);
        let operator = caller.name.clone();
        let r = blocking(move || a.revoke(&caller, &req, now_unix())).await;
        match &r {
            Ok(resp) => {
                tracing::info!(rpc = "RevokePseudonyms", %operator, sector = %resp.sector, from_period = resp.from_period, newly = resp.newly_revoked, outcome = "revoked")
            }
            Err(s) => {
                tracing::info!(rpc = "RevokePseudonyms", %operator, outcome = "refused", code = ?s.code(), reason = %s.message())
            }
        }
        r.map(Response::new)
    }

    async fn get_prl(
        &self,
        request: Request<pb::GetPrlRequest>,
    ) -> Result<Response<pb::SignedPrl>, Status> {
        let sector = SectorName::new(&request.into_inner().sector)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let a = Arc::clone(&self.authority);
        blocking(move || a.latest_prl(&sector))
            .await
            .map(|p| Response::new((*p).clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = include_str!("../../policies/pseudonym.toml");

    #[test]
    fn shipped_policy_parses_with_the_documented_defaults() {
        let p = PseudonymPolicy::parse("pseudonym.toml", POLICY).unwrap();
        let a = &p.sectors[&SectorName::new("automotive").unwrap()];
        assert_eq!(a.period_seconds, 604_800);
        assert_eq!(a.certificates_per_period, 20);
        assert_eq!(a.max_periods_ahead, 156);
        assert_eq!(a.max_periods_per_request, 12);
        assert_eq!(a.overlap_seconds, 3600);
        // 2024-01-01 is a Monday.
        assert_eq!(a.epoch, 1_704_067_200);
        assert_eq!(a.period_at(a.epoch + 604_800 * 3 + 5), Some(3));
        assert_eq!(a.period_at(a.epoch - 1), None);
        let (nb, na) = a.validity(3).unwrap();
        assert_eq!(nb, a.epoch + 604_800 * 3 - 3600);
        assert_eq!(na, a.epoch + 604_800 * 4 + 3599);
    }

    #[test]
    fn bad_profiles_are_refused_with_the_reason() {
        for (text, needle) in [
            (
                "version='1'\n[sectors.automotive]\nmax_periods_ahead=200",
                "max_periods_ahead",
            ),
            (
                "version='1'\n[sectors.automotive]\noverlap_seconds=700000",
                "overlap",
            ),
            (
                "version='1'\n[sectors.automotive]\npermissions=['CAM']",
                "permission",
            ),
            (
                "version='1'\n[sectors.automotive]\nmin_level=0",
                "min_level",
            ),
            (
                "version='1'\n[sectors.automotive]\nbogus=1",
                "unknown field",
            ),
            ("version='1'\n[sectors.Bad_Name]\n", "sectors.Bad_Name"),
        ] {
            let e = PseudonymPolicy::parse("p.toml", text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn vehicle_and_prl_records_round_trip() {
        let s = VehicleState {
            chain: LinkageChain::generate(7).unwrap(),
            issued_through: Some(19),
            revoked_from: None,
        };
        let d = VehicleState::decode(&s.encode()).unwrap();
        assert_eq!(d.chain.to_bytes().as_ref(), s.chain.to_bytes().as_ref());
        assert_eq!((d.issued_through, d.revoked_from), (Some(19), None));
        let p = PrlState {
            issue_number: 3,
            entries: vec![s.chain.revocation_entry(9).unwrap()],
        };
        let q = PrlState::decode(&p.encode()).unwrap();
        assert_eq!(q.issue_number, 3);
        assert_eq!(q.entries, p.entries);
        assert!(PrlState::decode(&p.encode()[..20]).is_none());
    }
}
