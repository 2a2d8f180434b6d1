//! The key ceremony: an offline root and sector CAs whose keys are made
//! where their operators run them.
//!
//! - `root_init` makes the root key, the self-signed root certificate and
//!   the first ARL (`crl/root.crl`) in a directory of its own, and nothing
//!   else: no sector key, no service key, no store.
//! - `sector_init` makes one sector's CA key in the sector operator's
//!   directory (encrypted at rest like every CA key) and writes a PKCS#10
//!   request (`ca/<sector>.csr`). The directory is marked as that sector's
//!   (`ca/sector.toml`).
//! - `sign_sector` (at the root, offline) issues the sector CA certificate
//!   with the profile `sectors/<sector>.toml` and `pki.toml` give (name
//!   constraints, trust-level extension) and re-issues the ARL.
//! - `sector_install` checks that the certificate is for this directory's
//!   key and sector and chains to the root, then completes the directory:
//!   its own TLS, trust responder and audit signer certificates (issued by
//!   its sector CA, so renewing them never needs the root) and its
//!   record-seal key.
//! - `sector_import` (`sector_import.rs`) adds what the root publishes:
//!   other sectors' CA certificates (public only) and the root's ARL.
//!
//! `init` on one machine runs the same steps in one directory
//! ([`crate::CaHierarchy::init_with_token`]): [`create_root`],
//! [`new_sector_key`], [`sign_sector_csr`], [`check_sector_certificate`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use trustca_datadir::{CaFiles, DataDir};

use rcgen::{CertificateParams, DistinguishedName, DnType, PublicKeyData};
use time::OffsetDateTime;
use trustca_model::extension::ExtensionOid;
use trustca_model::policy::KeyRole;
use trustca_model::{CertificateKind, PolicySet, SectorName};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::CaError;
use crate::ca_keys::{CaKey, CaKeys};
use crate::csr::{SignatureCheck, verify_csr, verify_signed};
use crate::hierarchy::{CaHierarchy, certs_to_pem, sector_ext};
use crate::issuer::{self, SigningCa};
use crate::keystore::{Keystore, Passphrase, write_new};
use crate::pkcs11::Pkcs11Token;

pub use crate::sector_import::{ImportReport, sector_import};

/// `ca/sector.toml`: marks a directory made by `sector init` as the
/// directory of one sector's operator. Its service certificates are issued
/// (and renewed) by that sector's CA, never by the root.
pub const SECTOR_MARKER: &str = "sector.toml";

/// `ca/offline-root.toml`: marks the directory `root init` made. It holds
/// the root and what the root signed; `init` does not add sector keys to
/// it and `serve` does not run from it.
pub const ROOT_MARKER: &str = "offline-root.toml";

/// Refuses to serve from, or `init` into, the offline root's directory.
pub(crate) fn refuse_offline_root(data: &Path, doing: &str) -> Result<(), CaError> {
    if DataDir::new(data).ca().join(ROOT_MARKER).exists() {
        return Err(CaError::InvalidRequest(format!(
            "{} is the offline root's directory (made by `trustca root init`); {doing}",
            data.display()
        )));
    }
    Ok(())
}

/// The PEM label of a PKCS#10 request.
const CSR_LABEL: &str = "CERTIFICATE REQUEST";

#[derive(serde::Serialize, serde::Deserialize)]
struct SectorMarker {
    sector: String,
}

/// The sector a directory made by `sector init` belongs to; `None` for a
/// directory made by `init` (every sector) or `root init`.
pub fn sector_of_directory(data: &Path) -> Result<Option<SectorName>, CaError> {
    let path = DataDir::new(data).ca().join(SECTOR_MARKER);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CaError::io(&path, e)),
    };
    let marker: SectorMarker = toml::from_str(&text)
        .map_err(|e| CaError::Keystore(format!("{}: {}", path.display(), e.message())))?;
    Ok(Some(SectorName::new(&marker.sector)?))
}

/// Whether `dir` exists and holds anything.
fn non_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
}

/// Makes the root key and the self-signed root certificate in `data/ca/`.
/// Built in a scratch directory and renamed, so a crash never leaves a
/// half-made root behind. Refuses a `ca/` that holds anything.
pub(crate) fn create_root(
    data: &Path,
    policies: &PolicySet,
    passphrase: &Passphrase,
    token: Option<Arc<Pkcs11Token>>,
    now: OffsetDateTime,
    common_name: &str,
) -> Result<(), CaError> {
    let dir = DataDir::new(data).ca();
    if non_empty(&dir) {
        return Err(CaError::AlreadyInitialized(dir));
    }
    std::fs::create_dir_all(data).map_err(|e| CaError::io(data, e))?;
    let scratch = data.join(format!(".ca-init-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).map_err(|e| CaError::io(&scratch, e))?;
    let ks = CaKeys::new(
        Keystore::create(&scratch, passphrase)?,
        token,
        &policies.pki,
    );
    let pki = &policies.pki;
    let key = ks.generate("root", KeyRole::Root, pki.root.key_algorithm)?;
    let params = issuer::root_params(
        common_name,
        &pki.root.organization,
        pki.root.validity_days,
        now,
    )?;
    let root = params.self_signed(&key)?;
    write_new(&scratch.root_cert(), root.pem().as_bytes())?;
    if dir.exists() {
        std::fs::remove_dir(&dir).map_err(|e| CaError::io(&dir, e))?;
    }
    std::fs::rename(&scratch, &dir).map_err(|e| CaError::io(&dir, e))
}

/// The keys of a directory being made, with `token` (an open token and
/// the module it came from) recorded in `ca/pkcs11.toml` for later steps.
pub(crate) fn keys_recording_token(
    keystore: Keystore,
    token: Option<(&Arc<Pkcs11Token>, &Path)>,
    policies: &PolicySet,
) -> Result<CaKeys, CaError> {
    let keys = CaKeys::new(keystore, token.map(|(t, _)| Arc::clone(t)), &policies.pki);
    if let Some((_, module)) = token {
        keys.record_token(module)?;
    }
    Ok(keys)
}

/// What `root init` made.
#[derive(Debug)]
pub struct RootInitReport {
    /// The root certificate (`ca/root.pem`).
    pub root_pem: PathBuf,
    /// The root's subject, as operators of other roots will see it.
    pub subject: String,
    /// SHA-256 of the root certificate, hex, for operators to compare.
    pub root_sha256: String,
    /// The first ARL (`crl/root.crl`).
    pub arl: PathBuf,
}

/// `trustca root init`: the root and its first ARL, nothing else. `token`
/// is an open PKCS#11 token and the module it came from, where `pki.toml`
/// places the root key there.
pub fn root_init(
    data: &Path,
    policies: &PolicySet,
    passphrase: &Passphrase,
    token: Option<(&Arc<Pkcs11Token>, &Path)>,
    name: &str,
) -> Result<RootInitReport, CaError> {
    check_root_name(name, &policies.pki.root.common_name)?;
    let now = OffsetDateTime::now_utc();
    create_root(
        data,
        policies,
        passphrase,
        token.map(|(t, _)| Arc::clone(t)),
        now,
        name,
    )?;
    let dir = DataDir::new(data).ca();
    let keys = keys_recording_token(Keystore::open(&dir, passphrase)?, token, policies)?;
    write_new(
        &dir.join(ROOT_MARKER),
        b"# made by `trustca root init`: the offline root's directory, never served\n",
    )?;
    let root = CaHierarchy::root_signer(&dir, &keys)?;
    crate::root_crl::publish_root_crl_now(data, &root)?;
    let subject = x509_parser::parse_x509_certificate(&root.cert_der)
        .map(|(_, c)| c.subject().to_string())
        .unwrap_or_default();
    Ok(RootInitReport {
        root_pem: dir.root_cert(),
        subject,
        root_sha256: trustca_model::hexfmt::encode(&trustca_model::fingerprint(&root.cert_der)),
        arl: crate::root_crl::root_crl_path(data),
    })
}

/// Longest root name: X.520 `ub-common-name`.
const MAX_ROOT_NAME: usize = 64;

/// A root made by the ceremony is named by its operator: roots of
/// different operators meet in trust lists, where two roots of one name
/// could not be told apart by anything but their keys. The name of the
/// built-in `pki.toml` (`default_name`) is refused for that reason.
fn check_root_name(name: &str, default_name: &str) -> Result<(), CaError> {
    let refuse = |why: &str| CaError::InvalidRequest(format!("root name {name:?}: {why}"));
    if name.trim().is_empty() || name.trim() != name {
        return Err(refuse("must not be empty or start or end with spaces"));
    }
    if name.chars().count() > MAX_ROOT_NAME {
        return Err(refuse("longer than 64 characters (X.520 common name)"));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("holds a control character"));
    }
    if name.eq_ignore_ascii_case(default_name) {
        return Err(refuse(
            "is the default name of pki.toml; give this root a name that tells it apart              from other operators' roots, e.g. \"Example Energy Root CA 2026\"",
        ));
    }
    Ok(())
}

/// Generates `sector`'s CA key in `keys` and returns it with a PKCS#10
/// request for it: subject O = the root's organisation, OU = the sector,
/// CN = `trustca <sector> Sector CA`. The root reads only the sector from
/// it (OU) and builds everything else from its own profile.
pub(crate) fn new_sector_key(
    keys: &CaKeys,
    policies: &PolicySet,
    sector: &SectorName,
) -> Result<(CaKey, Vec<u8>), CaError> {
    let policy = policies.sector(sector.as_str())?;
    let key = keys.generate(
        sector.as_str(),
        KeyRole::Sector,
        policy.certificate.ca_key_algorithm,
    )?;
    let csr = sector_csr(&key, policies, sector, 1)?;
    Ok((key, csr))
}

/// The request for generation `generation` of `sector`'s CA (the first, or
/// a rollover's: `rollover.rs`), which the subject's CN states.
pub(crate) fn sector_csr(
    key: &CaKey,
    policies: &PolicySet,
    sector: &SectorName,
    generation: u32,
) -> Result<Vec<u8>, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::OrganizationName,
        policies.pki.root.organization.as_str(),
    );
    dn.push(DnType::OrganizationalUnitName, sector.as_str());
    dn.push(
        DnType::CommonName,
        crate::rollover::common_name(sector, generation),
    );
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    Ok(params.serialize_request(key)?.der().to_vec())
}

/// What `sector init` made.
#[derive(Debug)]
pub struct SectorInitReport {
    /// The sector.
    pub sector: SectorName,
    /// The request for the root (`ca/<sector>.csr`).
    pub csr: PathBuf,
    /// SHA-256 of the request's DER, hex, to compare at the root.
    pub csr_sha256: String,
}

/// `trustca sector init`: `sector`'s CA key (encrypted, or in the token)
/// and its request, in a directory holding no CA yet.
pub fn sector_init(
    data: &Path,
    policies: &PolicySet,
    passphrase: &Passphrase,
    sector: &str,
    token: Option<(&Arc<Pkcs11Token>, &Path)>,
) -> Result<SectorInitReport, CaError> {
    let sector = policies.sector(sector)?.sector.clone();
    let dir = DataDir::new(data).ca();
    if dir.join(trustca_datadir::KEYSTORE_META).exists() || dir.root_cert().exists() {
        return Err(CaError::AlreadyInitialized(dir));
    }
    std::fs::create_dir_all(&dir).map_err(|e| CaError::io(&dir, e))?;
    let keys = keys_recording_token(Keystore::create(&dir, passphrase)?, token, policies)?;
    let marker = toml::to_string(&SectorMarker {
        sector: sector.to_string(),
    })
    .map_err(|e| CaError::Keystore(e.to_string()))?;
    write_new(&dir.join(SECTOR_MARKER), marker.as_bytes())?;
    let (_, csr) = new_sector_key(&keys, policies, &sector)?;
    let path = dir.csr(&sector);
    write_new(
        &path,
        pem::encode(&pem::Pem::new(CSR_LABEL, csr.clone())).as_bytes(),
    )?;
    Ok(SectorInitReport {
        sector,
        csr: path,
        csr_sha256: trustca_model::hexfmt::encode(&trustca_model::fingerprint(&csr)),
    })
}

/// DER of a PEM block labelled `label` in `bytes`, or `bytes` themselves
/// when they are not PEM (DER given directly).
pub(crate) fn der_of(bytes: &[u8], label: &str, what: &str) -> Result<Vec<u8>, CaError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    if !text.contains("-----BEGIN") {
        return Err(CaError::InvalidRequest(format!(
            "{what} is neither PEM nor DER"
        )));
    }
    pem::parse_many(text)
        .map_err(|_| CaError::InvalidRequest(format!("{what} is not valid PEM")))?
        .into_iter()
        .find(|p| p.tag() == label)
        .map(pem::Pem::into_contents)
        .ok_or_else(|| CaError::InvalidRequest(format!("{what} holds no {label}")))
}

/// What the root knows of a sector when it signs: the CA certificates it
/// issued for it so far (DER, oldest first), and whether the operator
/// asked for a rollover.
pub(crate) struct SigningContext<'a> {
    pub issued: &'a dyn Fn(&SectorName) -> Vec<Vec<u8>>,
    pub rollover: bool,
}

/// The root's part: checks the request (its signature, the sector it names,
/// the key algorithm the sector's profile asks for, the generation it asks
/// for against what the root issued) and issues the sector CA certificate
/// from the profile. Returns the sector, the generation and the DER.
pub(crate) fn sign_sector_csr(
    root: &SigningCa,
    policies: &PolicySet,
    csr_der: &[u8],
    now: OffsetDateTime,
    context: &SigningContext<'_>,
) -> Result<(SectorName, u32, Vec<u8>), CaError> {
    let verified = verify_csr(csr_der)?;
    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(csr_der)
        .map_err(|_| CaError::InvalidCsr("not a DER PKCS#10 certification request".into()))?;
    let named: Vec<&str> = csr
        .certification_request_info
        .subject
        .iter_organizational_unit()
        .filter_map(|a| a.as_str().ok())
        .collect();
    let [name] = named.as_slice() else {
        return Err(CaError::InvalidCsr(
            "the request must name exactly one sector (its subject's OU); make it with `trustca sector init`".into(),
        ));
    };
    let policy = policies.sector(name).map_err(|_| {
        CaError::InvalidRequest(format!(
            "the root has no profile for sector {:?} (policies/sectors/*.toml); nothing issued",
            name.chars().take(64).collect::<String>()
        ))
    })?;
    if verified.algorithm != policy.certificate.ca_key_algorithm {
        return Err(CaError::KeyAlgorithmNotAllowed {
            algorithm: verified.algorithm.as_str().into(),
            sector: policy.sector.to_string(),
            allowed: policy.certificate.ca_key_algorithm.as_str().into(),
        });
    }
    let generation =
        crate::rollover::generation_of_subject(&csr.certification_request_info.subject);
    crate::rollover::check_rollover_request(
        &policy.sector,
        generation,
        &(context.issued)(&policy.sector),
        &verified.spki_der,
        context.rollover,
    )?;
    let ext = sector_ext(
        &policy.sector,
        CertificateKind::SectorCa,
        &policy.version,
        vec![],
        vec![],
    );
    let params = issuer::sector_ca_params(
        &policies.pki.root.organization,
        &ext,
        &policies.pki,
        policies.pki.sector_ca.validity_days,
        now,
        root.not_after,
        generation,
    )?;
    let spki = CaHierarchy::spki_of(&verified.spki_der)?;
    Ok((
        policy.sector.clone(),
        generation,
        root.sign(&params, &spki)?,
    ))
}

/// What `root sign-sector` issued.
#[derive(Debug)]
pub struct SignedSector {
    /// The sector.
    pub sector: SectorName,
    /// The certificate, PEM (also kept as `ca/<sector>.pem` at the root).
    pub cert_pem: String,
    /// The root's ARL number issued with it.
    pub arl_number: u64,
    /// Its generation (1, or the rollover's: 2, 3, ...).
    pub generation: u32,
}

/// `trustca root sign-sector`: issues the sector CA certificate for the
/// request `csr` (PEM or DER), keeps it in the root's directory (the record
/// `root revoke-sector` works from) and re-issues the ARL. A sector's next
/// CA beside its current one needs `rollover` (`rollover.rs`).
pub fn sign_sector(
    data: &Path,
    policies: &PolicySet,
    passphrase: &Passphrase,
    token: Option<Arc<Pkcs11Token>>,
    csr: &[u8],
    rollover: bool,
) -> Result<SignedSector, CaError> {
    let dir = DataDir::new(data).ca();
    if !dir.root_cert().exists() {
        return Err(CaError::NotInitialized(data.to_path_buf()));
    }
    let csr_der = der_of(csr, CSR_LABEL, "the request")?;
    let keys = CaKeys::new(Keystore::open(&dir, passphrase)?, token, &policies.pki);
    let root = CaHierarchy::root_signer(&dir, &keys)?;
    let issued = |sector: &SectorName| -> Vec<Vec<u8>> {
        crate::rollover::installed(&dir, sector)
            .iter()
            .filter_map(|(_, p)| crate::hierarchy::read_pem_der(p).ok()?.into_iter().next())
            .collect()
    };
    let context = SigningContext {
        issued: &issued,
        rollover,
    };
    let (sector, generation, der) = sign_sector_csr(
        &root,
        policies,
        &csr_der,
        OffsetDateTime::now_utc(),
        &context,
    )?;
    let path = dir.cert(crate::rollover::ca_name(&sector, generation));
    if path.exists() {
        return Err(CaError::InvalidRequest(format!(
            "the root already issued a {sector} CA certificate ({}); nothing issued",
            path.display()
        )));
    }
    let cert_pem = certs_to_pem(&[&der]);
    write_new(&path, cert_pem.as_bytes())?;
    let arl_number = crate::root_crl::publish_root_crl_now(data, &root)?;
    Ok(SignedSector {
        sector,
        cert_pem,
        arl_number,
        generation,
    })
}

/// A sector CA certificate that verified against the root.
#[derive(Debug)]
pub struct CheckedSectorCa {
    /// Its sector.
    pub sector: SectorName,
    /// Its DER.
    pub der: Vec<u8>,
    /// Its SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
}

fn parse_cert<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, CaError> {
    match X509Certificate::from_der(der) {
        Ok(([], c)) => Ok(c),
        _ => Err(CaError::InvalidRequest(format!(
            "{what} is not an X.509 certificate"
        ))),
    }
}

/// Whether `sig` verifies `signed` under `spki`, as a refusal naming `what`.
pub(crate) fn check_signed(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
    sig_oid: &[u8],
    signed: &[u8],
    sig: &x509_parser::asn1_rs::BitString<'_>,
    what: &str,
) -> Result<(), CaError> {
    verify_signed(spki, sig_oid, signed, sig).map_err(|e| {
        CaError::InvalidRequest(match e {
            SignatureCheck::Key(why) | SignatureCheck::Algorithm(why) => format!("{what}: {why}"),
            SignatureCheck::Signature => format!(
                "{what}: its signature does not verify under this root's key (another root of the same name?)"
            ),
        })
    })?;
    Ok(())
}

/// Checks that `der` is a sector CA certificate the root `root_der` signed,
/// valid at `now`, with a trust-level extension (under `oid`) naming its
/// sector.
pub fn check_sector_certificate(
    der: &[u8],
    root_der: &[u8],
    oid: &ExtensionOid,
    now: OffsetDateTime,
) -> Result<CheckedSectorCa, CaError> {
    let cert = parse_cert(der, "the sector certificate")?;
    let root = parse_cert(root_der, "the root certificate")?;
    if cert.issuer().as_raw() != root.subject().as_raw() {
        return Err(CaError::InvalidRequest(format!(
            "the certificate ({}) was not issued by this root ({})",
            cert.subject(),
            root.subject()
        )));
    }
    check_signed(
        root.public_key(),
        cert.signature_algorithm.algorithm.as_bytes(),
        cert.tbs_certificate.as_ref(),
        &cert.signature_value,
        "the sector certificate",
    )?;
    let validity = cert.validity();
    if now < validity.not_before.to_datetime() || now > validity.not_after.to_datetime() {
        return Err(CaError::InvalidRequest(format!(
            "the sector certificate is not valid now (valid {} to {})",
            validity.not_before, validity.not_after
        )));
    }
    let ext = trustca_model::trust_extension(&cert, oid)?
        .filter(|e| e.kind == CertificateKind::SectorCa && cert.is_ca())
        .ok_or_else(|| {
            CaError::InvalidRequest(format!(
                "{} is not a trustca sector CA certificate",
                cert.subject()
            ))
        })?;
    Ok(CheckedSectorCa {
        sector: ext.sector,
        der: der.to_vec(),
        spki: cert.public_key().raw.to_vec(),
    })
}

/// Checks the root certificate an operator brought: self-signed, and its
/// signature verifies under its own key.
fn check_root(root_der: &[u8]) -> Result<(), CaError> {
    let root = parse_cert(root_der, "the root certificate")?;
    if root.subject().as_raw() != root.issuer().as_raw() || !root.is_ca() {
        return Err(CaError::InvalidRequest(
            "the root certificate is not a self-signed CA certificate".into(),
        ));
    }
    check_signed(
        root.public_key(),
        root.signature_algorithm.algorithm.as_bytes(),
        root.tbs_certificate.as_ref(),
        &root.signature_value,
        "the root certificate",
    )
}

/// Refuses `der` unless it is this directory's sector CA certificate for
/// `key`: issued by the root, for `sector`, over `key`'s public key.
pub(crate) fn check_own_certificate(
    der: &[u8],
    root_der: &[u8],
    key: &CaKey,
    sector: &SectorName,
    oid: &ExtensionOid,
    now: OffsetDateTime,
) -> Result<(), CaError> {
    let checked = check_sector_certificate(der, root_der, oid, now)?;
    if &checked.sector != sector {
        return Err(CaError::InvalidRequest(format!(
            "the certificate is for sector {}, but this directory is {sector}'s; nothing installed",
            checked.sector
        )));
    }
    if checked.spki != key.subject_public_key_info() {
        return Err(CaError::InvalidRequest(format!(
            "the certificate is not for this directory's {sector} CA key (another request's answer?); nothing installed"
        )));
    }
    Ok(())
}

/// What `sector install` did.
#[derive(Debug)]
pub struct InstallReport {
    /// The sector.
    pub sector: SectorName,
    /// SHA-256 of the root certificate installed, hex.
    pub root_sha256: String,
    /// The sector CA certificate installed, DER.
    pub ca_der: Vec<u8>,
    /// Its generation: 1, or a rollover's (then only the certificate was
    /// written; the directory and its store exist already).
    pub generation: u32,
}

/// `trustca sector install`: checks `cert` (this directory's sector CA
/// certificate, PEM or DER) against the key made by `sector init` and
/// against `root` (the root certificate), and only then writes them and
/// completes the directory: TLS (with `server_names`), responder and
/// audit certificates issued by the sector CA, and the record-seal key.
pub fn sector_install(
    data: &Path,
    policies: &PolicySet,
    passphrase: &Passphrase,
    token: Option<Arc<Pkcs11Token>>,
    cert: &[u8],
    root: &[u8],
    server_names: &[String],
) -> Result<InstallReport, CaError> {
    let sector = sector_of_directory(data)?.ok_or_else(|| {
        CaError::InvalidRequest(format!(
            "{} was not made by `trustca sector init`",
            data.display()
        ))
    })?;
    let dir = DataDir::new(data).ca();
    let cert_der = der_of(cert, "CERTIFICATE", "the sector certificate")?;
    let root_der = der_of(root, "CERTIFICATE", "the root certificate")?;
    check_root(&root_der)?;
    let keys = CaKeys::new(Keystore::open(&dir, passphrase)?, token, &policies.pki);
    if dir.cert(&sector).exists() {
        // Installed already: this can only be a rollover's answer.
        let generation = crate::rollover::install_generation(
            data, policies, &keys, &sector, &cert_der, &root_der,
        )?;
        return Ok(InstallReport {
            sector,
            root_sha256: trustca_model::hexfmt::encode(&trustca_model::fingerprint(&root_der)),
            ca_der: cert_der,
            generation,
        });
    }
    let key = keys.load(sector.as_str())?;
    let now = OffsetDateTime::now_utc();
    let oid = &policies.pki.extensions.trust_level_oid;
    check_own_certificate(&cert_der, &root_der, &key, &sector, oid, now)?;
    // Validate the host names before writing anything.
    CaHierarchy::service_host_names(policies, Some(&sector), server_names)?;
    write_new(&dir.root_cert(), certs_to_pem(&[&root_der]).as_bytes())?;
    write_new(&dir.cert(&sector), certs_to_pem(&[&cert_der]).as_bytes())?;
    let ca = SigningCa::new(cert_der.clone(), key)?;
    CaHierarchy::complete_directory(&dir, &keys, &ca, Some(&sector), policies, server_names, now)?;
    Ok(InstallReport {
        sector,
        root_sha256: trustca_model::hexfmt::encode(&trustca_model::fingerprint(&root_der)),
        ca_der: cert_der,
        generation: 1,
    })
}

/// `trustca root arl`: re-issues the root's ARL now (before its
/// `nextUpdate`), from the root's record of what it revoked.
pub fn reissue_arl(
    data: &Path,
    policies: &PolicySet,
    passphrase: &Passphrase,
    token: Option<Arc<Pkcs11Token>>,
) -> Result<u64, CaError> {
    let dir = DataDir::new(data).ca();
    if !dir.root_cert().exists() {
        return Err(CaError::NotInitialized(data.to_path_buf()));
    }
    let keys = CaKeys::new(Keystore::open(&dir, passphrase)?, token, &policies.pki);
    let root = CaHierarchy::root_signer(&dir, &keys)?;
    crate::root_crl::publish_root_crl_now(data, &root)
}

#[cfg(test)]
#[path = "ceremony_tests.rs"]
mod tests;
