//! The V2X hierarchy in IEEE 1609.2 / ETSI TS 103 097 format, created by
//! `init` beside the X.509 hierarchy (`docs/v2x-certificates.md`,
//! "Hierarchy"):
//!
//! * `ca/v2x-root.oer`: the self-signed 1609.2 root (certIssuePermissions
//!   all, chains of exactly two below it).
//! * `ca/v2x-ea.oer`: the enrolment authority, issued by the V2X root.
//! * `ca/v2x-aa.oer`: the authorization authority (pseudonym CA for CAM
//!   and DENM), issued by the V2X root.
//! * `ca/v2x-crl.oer`: the CRL signer (PSID 256 with a `CrlSsp` naming
//!   [`CA_HELD_CRL_SERIES`], `issuerIsCraca`), issued
//!   by the V2X root, which is the CRACA: every certificate below the root
//!   carries the root's HashedId3 as `cracaId`.
//! * `ca/v2x-root.pem`: an X.509 certificate from the X.509 root for the
//!   V2X root's key, so one trust decision (the X.509 root) covers both.
//!
//! Everything below the root is in the IEEE 1609.2 profile (a non-zero
//! `cracaId`, and enrolment credentials with `certRequestPermissions` as
//! IEEE 1609.2.1 profiles them), not the ETSI TS 103 097 one.
//!
//! The keys are ordinary CA keys (`CaKeys`): `v2x-root` is placed like the
//! root key, `v2x-ea` like the sector CA keys and `v2x-aa` like the
//! pseudonym CA keys, always P-256.

use std::path::Path;
use trustca_datadir::{CaFiles, DataDir};

use time::OffsetDateTime;
use trustca_model::policy::{KeyAlgorithm, KeyBackend, KeyRole};
use trustca_model::{
    CertificateKind, PolicySet, SectorName, StatementAlgorithm, StatementSigner,
    TrustLevelExtension,
};
use trustca_v2x::{
    CertProfile, Certificate, CracaType, CrlSsp, Duration, PsidGroupPermissions, PsidSsp,
    PsidSspRange, PublicKeyP256, Ssp, SspRange, SubjectAssurance, SubjectPermissions, Time32,
    ToBeSigned, V2xError, V2xSigner, ValidityPeriod,
};

use crate::CaError;
use crate::ca_keys::{CaKey, CaKeys};
use crate::hierarchy::certs_to_pem;
use crate::issuer::{self, SigningCa};
use crate::keystore::write_new;

/// Key and file stem of the V2X root.
pub const V2X_ROOT: &str = "v2x-root";
/// Key and file stem of the enrolment authority.
pub const V2X_EA: &str = "v2x-ea";
/// Key and file stem of the authorization authority (pseudonym CA).
pub const V2X_AA: &str = "v2x-aa";
/// Key and file stem of the CRL signer.
pub const V2X_CRL: &str = "v2x-crl";
/// `crlSeries` of authorization tickets: the linkage CRL's series (the
/// ticket profile's `crl_series` must be it).
pub const LINKAGE_CRL_SERIES: u16 = 1;
/// `crlSeries` of the CA certificates below the root (EA, AA, RA, CRL
/// signers), revoked by hash on the CA certificate CRL, which every
/// relying party needs.
pub const CA_CRL_SERIES: u16 = 2;
/// `crlSeries` of enrolment credentials, revoked by hash on the enrolment
/// certificate CRL, which only the registration authorities need (a
/// series of its own keeps that list off vehicles). Credentials issued
/// before this series existed name [`CA_CRL_SERIES`] and are listed there.
pub const ENROLMENT_CRL_SERIES: u16 = 3;
/// The series the CA-held CRL signer (`v2x-crl`) may sign.
pub const CA_HELD_CRL_SERIES: [u16; 3] = [LINKAGE_CRL_SERIES, CA_CRL_SERIES, ENROLMENT_CRL_SERIES];
/// ITS-AID of the Cooperative Awareness service (CAM).
pub const PSID_CAM: u64 = 36;
/// ITS-AID of the Decentralized Environmental Notification service (DENM).
pub const PSID_DENM: u64 = 37;
/// ITS-AID of the Collective Perception Message (CPM, ETSI TS 103 324).
pub const PSID_CPM: u64 = 639;
/// ITS-AID of the secured certificate request service (ETSI TS 102 941
/// enrolment and authorization requests).
pub const PSID_CERT_REQUEST: u64 = 623;

/// A CA key (file or PKCS#11) as a 1609.2 signer: ECDSA P-256 / SHA-256,
/// the DER signature converted to `r || s`.
struct CaKeyV2x<'a>(&'a CaKey);

impl V2xSigner for CaKeyV2x<'_> {
    fn public_key_sec1(&self) -> Vec<u8> {
        StatementSigner::public_key(self.0).to_vec()
    }

    fn sign_digest_input(&self, msg: &[u8]) -> Result<[u8; 64], V2xError> {
        if StatementSigner::algorithm(self.0) != StatementAlgorithm::EcdsaP256Sha256 {
            return Err(V2xError::Signing("V2X CA keys must be ECDSA P-256"));
        }
        let der = StatementSigner::sign(self.0, msg)
            .map_err(|_| V2xError::Signing("the CA key did not sign"))?;
        ecdsa_der_to_raw_p256(&der).ok_or(V2xError::Signing("the CA key's signature is not DER"))
    }
}

/// Reads one DER INTEGER (non-negative, at most 32 significant octets) at
/// the start of `b`; returns it left-padded to 32 octets and the rest.
fn der_uint32(b: &[u8]) -> Option<([u8; 32], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&len, b) = b.split_first()?;
    let len = usize::from(len);
    if tag != 0x02 || len == 0 || len > 33 || b.len() < len {
        return None;
    }
    let (v, rest) = b.split_at(len);
    if v[0] & 0x80 != 0 {
        return None;
    }
    let v = if len == 33 {
        if v[0] != 0 {
            return None;
        }
        &v[1..]
    } else {
        v
    };
    let mut out = [0u8; 32];
    out[32 - v.len()..].copy_from_slice(v);
    Some((out, rest))
}

/// DER `ECDSA-Sig-Value` of P-256 to raw `r || s`.
fn ecdsa_der_to_raw_p256(der: &[u8]) -> Option<[u8; 64]> {
    // r and s are at most 33 octets each, so the SEQUENCE is under 128.
    let (&tag, b) = der.split_first()?;
    let (&len, body) = b.split_first()?;
    if tag != 0x30 || usize::from(len) != body.len() {
        return None;
    }
    let (r, rest) = der_uint32(body)?;
    let (s, rest) = der_uint32(rest)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(&r);
    out[32..].copy_from_slice(&s);
    Some(out)
}

/// The largest 1609.2 duration not longer than `seconds`: whole hours
/// when they fit a Uint16 (about 7.5 years), else units of sixty hours.
fn duration_within(seconds: i64) -> Result<Duration, CaError> {
    let hours = seconds.max(0) / 3600;
    let d = if hours <= i64::from(u16::MAX) {
        Duration::Hours(hours as u16)
    } else {
        Duration::SixtyHours(u16::try_from(hours / 60).unwrap_or(u16::MAX))
    };
    if d.as_seconds() == 0 {
        return Err(CaError::Signing(
            "V2X validity would be shorter than an hour".into(),
        ));
    }
    Ok(d)
}

fn v2x_err(e: V2xError) -> CaError {
    CaError::Signing(format!("V2X certificate: {e}"))
}

/// The assurance level a V2X CA certificate states: trust level 5 for a
/// key in a PKCS#11 token, 4 for a key in the encrypted file keystore.
fn assurance_for(key: &CaKey) -> Result<SubjectAssurance, CaError> {
    let level = match key.backend() {
        KeyBackend::Pkcs11 => 5,
        KeyBackend::File => 4,
    };
    SubjectAssurance::from_trust_level(level).map_err(v2x_err)
}

/// The key `name`: loaded when it exists (a crash after key generation
/// and before the certificate was written), else generated as P-256 where
/// `pki.toml` places `role`.
fn load_or_generate(keys: &CaKeys, name: &str, role: KeyRole) -> Result<CaKey, CaError> {
    if keys.has(name) {
        keys.load(name)
    } else {
        keys.generate(name, role, KeyAlgorithm::EcdsaP256)
    }
}

/// [`load_or_generate`] and the key's public half as a 1609.2 key.
fn ca_key(keys: &CaKeys, name: &str, role: KeyRole) -> Result<(CaKey, PublicKeyP256), CaError> {
    let key = load_or_generate(keys, name, role)?;
    let public = PublicKeyP256::from_sec1(StatementSigner::public_key(&key)).map_err(v2x_err)?;
    Ok((key, public))
}

fn read_oer(path: &Path) -> Result<Certificate, CaError> {
    let bytes = std::fs::read(path).map_err(|e| CaError::io(path, e))?;
    Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &bytes)
        .map_err(|e| CaError::Signing(format!("{}: {e}", path.display())))
}

/// The PSIDs and SSP ranges of authorization tickets: what the AA may
/// issue, what the EA lets enrolment credentials request, and what those
/// request (one list, so the three always agree).
pub fn ticket_permissions() -> Vec<PsidSspRange> {
    vec![
        PsidSspRange {
            psid: PSID_CAM,
            ssp_range: Some(SspRange::All),
        },
        PsidSspRange {
            psid: PSID_DENM,
            ssp_range: Some(SspRange::All),
        },
        PsidSspRange {
            psid: PSID_CPM,
            ssp_range: None,
        },
    ]
}

/// Issues a CA certificate below the V2X root in the IEEE 1609.2 profile,
/// with the root as CRACA (`cracaId` its HashedId3) and `crlSeries`
/// [`CA_CRL_SERIES`] unless the caller set one.
fn issue_below_root(
    mut tbs: ToBeSigned,
    root: &Certificate,
    root_signer: &dyn V2xSigner,
) -> Result<Certificate, CaError> {
    tbs.craca_id = root.hashed_id3();
    if tbs.crl_series == 0 {
        tbs.crl_series = CA_CRL_SERIES;
    }
    Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs, root, root_signer).map_err(v2x_err)
}

/// Certifies a CRL signer's public key (made here or on another machine)
/// with the V2X root: id `name`, PSID 256 with a `CrlSsp` (version 1,
/// `issuerIsCraca`: the root is the CRACA) permitting `crl_series`, the
/// given validity (clamped to the root's) and assurance.
pub fn crl_signer_certificate(
    root_signer: &dyn V2xSigner,
    root: &Certificate,
    public_key: PublicKeyP256,
    name: &str,
    crl_series: &[u16],
    validity: ValidityPeriod,
    assurance: SubjectAssurance,
) -> Result<Certificate, CaError> {
    if crl_series.is_empty() {
        return Err(CaError::Signing(
            "a CRL signer must be permitted at least one CRL series".into(),
        ));
    }
    let ssp = CrlSsp {
        associated_craca: CracaType::IssuerIsCraca,
        crls: crl_series.to_vec(),
    };
    let mut tbs = ToBeSigned::new(
        trustca_v2x::CertificateId::Name(name.to_owned()),
        validity,
        public_key,
    );
    tbs.app_permissions = Some(vec![PsidSsp {
        psid: trustca_v2x::CRL_PSID,
        ssp: Some(Ssp::Opaque(ssp.to_coer())),
    }]);
    tbs.assurance_level = Some(assurance);
    issue_below_root(tbs, root, root_signer)
}

/// The `id` name of a V2X CA certificate: `<role>.v2x.<trust_domain>`.
pub fn v2x_name(role: &str, trust_domain: &str) -> String {
    format!("{role}.v2x.{trust_domain}")
}

/// Creates what is missing of the V2X hierarchy in `dir` (`DATA/ca`):
/// the three CA keys and `.oer` certificates and `v2x-root.pem`. Never
/// replaces a file. Returns the names of the files written.
pub(crate) fn init_v2x(
    dir: &Path,
    keys: &CaKeys,
    root: &SigningCa,
    policies: &PolicySet,
    now: OffsetDateTime,
) -> Result<Vec<String>, CaError> {
    let pki = &policies.pki;
    let mut created = Vec::new();
    let root_path = dir.oer(V2X_ROOT);
    let start = Time32::from_datetime(now).map_err(v2x_err)?;
    let mut root_key: Option<CaKey> = None;
    let v2x_root = if root_path.exists() {
        read_oer(&root_path)?
    } else {
        let key = load_or_generate(keys, V2X_ROOT, KeyRole::Root)?;
        let signer = CaKeyV2x(&key);
        let public = PublicKeyP256::from_sec1(&signer.public_key_sec1()).map_err(v2x_err)?;
        // Like the X.509 root: from now until its notAfter (never past it).
        let validity = ValidityPeriod {
            start,
            duration: duration_within((root.not_after - now).whole_seconds())?,
        };
        let mut tbs = ToBeSigned::ca(
            &v2x_name("root", &pki.trust_domain),
            public,
            validity,
            vec![
                // The CRL signer, directly below the root (chain of one).
                PsidGroupPermissions {
                    subject_permissions: SubjectPermissions::Explicit(vec![PsidSspRange {
                        psid: trustca_v2x::CRL_PSID,
                        ssp_range: Some(SspRange::All),
                    }]),
                    min_chain_length: 1,
                    chain_length_range: 0,
                    ee_type: PsidGroupPermissions::EE_APP,
                },
                // Every other PSID: root -> EA/AA -> end entity, chains of
                // exactly two below.
                PsidGroupPermissions::all(
                    2,
                    PsidGroupPermissions::EE_APP | PsidGroupPermissions::EE_ENROL,
                ),
            ],
        );
        tbs.assurance_level = Some(assurance_for(&key)?);
        let cert = Certificate::sign_root_with(tbs, &signer).map_err(v2x_err)?;
        write_new(&root_path, cert.as_coer())?;
        created.push(format!("{V2X_ROOT}.oer"));
        root_key = Some(key);
        cert
    };
    let mut take_root_key = |keys: &CaKeys| -> Result<CaKey, CaError> {
        match root_key.take() {
            Some(k) => Ok(k),
            None => keys.load(V2X_ROOT),
        }
    };
    let pem_path = dir.cert(V2X_ROOT);
    let mut loaded_root: Option<CaKey> = None;
    if !pem_path.exists() {
        let key = take_root_key(keys)?;
        if PublicKeyP256::from_sec1(StatementSigner::public_key(&key)).map_err(v2x_err)?
            != v2x_root.tbs().verification_key
        {
            return Err(CaError::Signing(format!(
                "key {V2X_ROOT} does not match {}",
                root_path.display()
            )));
        }
        let version = policies
            .sectors
            .values()
            .next()
            .map(|p| p.version.clone())
            .unwrap_or_else(|| "1".into());
        let ext = TrustLevelExtension {
            kind: CertificateKind::Service,
            sector: SectorName::new("trustca")?,
            level: None,
            policy_version: version,
            basis: vec![],
            authorized_sectors: vec![],
            permitted_schemes: vec![],
        };
        let params = issuer::v2x_root_params(
            &pki.root.organization,
            &v2x_name("root", &pki.trust_domain),
            &ext,
            &pki.extensions.trust_level_oid,
            pki.root.validity_days,
            now,
            root.not_after,
        )?;
        let der = root.sign(&params, &key)?;
        write_new(&pem_path, certs_to_pem(&[&der]).as_bytes())?;
        created.push(format!("{V2X_ROOT}.pem"));
        loaded_root = Some(key);
    }
    let root_end = v2x_root.tbs().validity.start.to_unix()
        + v2x_root.tbs().validity.duration.as_seconds() as i64;
    // EA, AA and CRL signer: like a sector CA, never past the root.
    let ca_validity = authority_validity(pki, start, root_end)?;
    for (stem, role, what) in [
        (V2X_EA, KeyRole::Sector, "ea"),
        (V2X_AA, KeyRole::Pseudonym, "aa"),
    ] {
        let path = dir.oer(stem);
        if path.exists() {
            continue;
        }
        let issuer_key = match loaded_root.take() {
            Some(k) => k,
            None => take_root_key(keys)?,
        };
        let (key, public) = ca_key(keys, stem, role)?;
        let tbs = authority_tbs(role, what, public, ca_validity, pki, assurance_for(&key)?);
        let cert = issue_below_root(tbs, &v2x_root, &CaKeyV2x(&issuer_key))?;
        write_new(&path, cert.as_coer())?;
        created.push(format!("{stem}.oer"));
        loaded_root = Some(issuer_key);
    }
    let crl_path = dir.oer(V2X_CRL);
    if !crl_path.exists() {
        let issuer_key = match loaded_root.take() {
            Some(k) => k,
            None => take_root_key(keys)?,
        };
        // In the single-process deployment the key lives in the CA
        // keystore like the AA's; a separated CRL signer makes its own and
        // has it certified with `crl_signer_certificate`.
        let (key, public) = ca_key(keys, V2X_CRL, KeyRole::Pseudonym)?;
        let validity = ca_validity;
        let cert = crl_signer_certificate(
            &CaKeyV2x(&issuer_key),
            &v2x_root,
            public,
            &v2x_name("crl", &pki.trust_domain),
            &CA_HELD_CRL_SERIES,
            validity,
            assurance_for(&key)?,
        )?;
        write_new(&crl_path, cert.as_coer())?;
        created.push(format!("{V2X_CRL}.oer"));
    }
    Ok(created)
}

/// An EA's, AA's or CRL signer's validity: from `start` for the sector
/// CAs' lifetime, never past the V2X root's end.
fn authority_validity(
    pki: &trustca_model::policy::PkiPolicy,
    start: Time32,
    root_end: i64,
) -> Result<ValidityPeriod, CaError> {
    let wanted = i64::from(pki.sector_ca.validity_days) * 86_400;
    Ok(ValidityPeriod {
        start,
        duration: duration_within(wanted.min(root_end - start.to_unix()))?,
    })
}

/// The to-be-signed of the enrolment authority (`role` `Sector`) or the
/// authorization authority (`Pseudonym`): one profile for the EA/AA made
/// by `init` and for an AA whose key was made on its own machine. The EA
/// signs enrolment responses and issues enrolment credentials (eeType
/// enrol) that may request authorization tickets; the AA signs
/// authorization responses and issues the tickets (eeType app). Both for
/// the ticket PSIDs.
fn authority_tbs(
    role: KeyRole,
    what: &str,
    public: PublicKeyP256,
    validity: ValidityPeriod,
    pki: &trustca_model::policy::PkiPolicy,
    assurance: SubjectAssurance,
) -> ToBeSigned {
    let issue = PsidGroupPermissions {
        subject_permissions: SubjectPermissions::Explicit(ticket_permissions()),
        min_chain_length: 1,
        chain_length_range: 0,
        ee_type: if role == KeyRole::Sector {
            PsidGroupPermissions::EE_ENROL
        } else {
            PsidGroupPermissions::EE_APP
        },
    };
    let mut tbs = ToBeSigned::ca(
        &v2x_name(what, &pki.trust_domain),
        public,
        validity,
        vec![issue],
    );
    // IEEE 1609.2.1: responses are signed under PSID 35 with the ScmsSsp
    // of the signer's role (ECA for enrolment, ACA for tickets).
    let role_ssp = if role == KeyRole::Sector {
        trustca_v2x::ECA_SSP
    } else {
        trustca_v2x::ACA_SSP
    };
    tbs.app_permissions = Some(vec![
        PsidSsp {
            psid: trustca_v2x::SECURITY_MGMT_PSID,
            ssp: Some(Ssp::Opaque(role_ssp.to_vec())),
        },
        PsidSsp {
            psid: PSID_CERT_REQUEST,
            ssp: None,
        },
    ]);
    tbs.assurance_level = Some(assurance);
    tbs
}

/// The V2X root of `data` with its key, checked to belong together, and
/// the root's end (Unix seconds).
fn loaded_v2x_root(
    data: &Path,
    hierarchy: &crate::CaHierarchy,
) -> Result<(Certificate, CaKey, i64), CaError> {
    let root_path = DataDir::new(data).ca().oer(V2X_ROOT);
    let v2x_root = read_oer(&root_path)?;
    let root_key = hierarchy.keys().load(V2X_ROOT)?;
    if PublicKeyP256::from_sec1(StatementSigner::public_key(&root_key)).map_err(v2x_err)?
        != v2x_root.tbs().verification_key
    {
        return Err(CaError::Signing(format!(
            "key {V2X_ROOT} does not match {}",
            root_path.display()
        )));
    }
    let root_end = v2x_root.tbs().validity.start.to_unix()
        + v2x_root.tbs().validity.duration.as_seconds() as i64;
    Ok((v2x_root, root_key, root_end))
}

/// The certificates of a pseudonym CA made on its own machine (`trustca
/// init --role pseudonym-ca`), certified with the V2X root held in
/// `data`: its AA certificate (the AA profile `init` uses) and its CRL
/// signer certificate (the linkage CRL series), both assurance level 4
/// (file keystores). The PCA proved possession of both keys in its request.
pub fn certify_pseudonym_ca(
    data: &Path,
    hierarchy: &crate::CaHierarchy,
    pki: &trustca_model::policy::PkiPolicy,
    aa_key: PublicKeyP256,
    crl_key: PublicKeyP256,
    now: OffsetDateTime,
) -> Result<(Certificate, Certificate), CaError> {
    let (v2x_root, root_key, root_end) = loaded_v2x_root(data, hierarchy)?;
    let start = Time32::from_datetime(now).map_err(v2x_err)?;
    let validity = authority_validity(pki, start, root_end)?;
    let assurance = SubjectAssurance::from_trust_level(4).map_err(v2x_err)?;
    let tbs = authority_tbs(KeyRole::Pseudonym, "aa", aa_key, validity, pki, assurance);
    let aa = issue_below_root(tbs, &v2x_root, &CaKeyV2x(&root_key))?;
    let crl = crl_signer_certificate(
        &CaKeyV2x(&root_key),
        &v2x_root,
        crl_key,
        &v2x_name("crl", &pki.trust_domain),
        &[LINKAGE_CRL_SERIES],
        validity,
        assurance,
    )?;
    Ok((aa, crl))
}

/// The IEEE 1609.2 certificate of a registration authority whose keys
/// were made where it runs: `id` `ra.v2x.<trust_domain>`, PSID 35 with
/// `RaSsp`, `encryptionKey` (vehicles encrypt their requests to it),
/// issued by the V2X root held in `data`. The RA proved possession of
/// both keys in its request.
pub fn certify_registration_authority(
    data: &Path,
    hierarchy: &crate::CaHierarchy,
    pki: &trustca_model::policy::PkiPolicy,
    signing_key: PublicKeyP256,
    encryption_key: PublicKeyP256,
    now: OffsetDateTime,
) -> Result<Certificate, CaError> {
    let (v2x_root, root_key, root_end) = loaded_v2x_root(data, hierarchy)?;
    let start = Time32::from_datetime(now).map_err(v2x_err)?;
    let validity = authority_validity(pki, start, root_end)?;
    let mut tbs = ToBeSigned::new(
        trustca_v2x::CertificateId::Name(v2x_name("ra", &pki.trust_domain)),
        validity,
        signing_key,
    );
    tbs.app_permissions = Some(vec![PsidSsp {
        psid: trustca_v2x::SECURITY_MGMT_PSID,
        ssp: Some(Ssp::Opaque(trustca_v2x::RA_SSP.to_vec())),
    }]);
    tbs.encryption_key = Some(encryption_key);
    tbs.assurance_level = Some(SubjectAssurance::from_trust_level(4).map_err(v2x_err)?);
    issue_below_root(tbs, &v2x_root, &CaKeyV2x(&root_key))
}

/// A V2X CA key owned by its holder (the pseudonym CA in `trustca serve`
/// signs tickets with `v2x-aa` from threads of its own).
pub struct OwnedV2xSigner(CaKey);

impl std::fmt::Debug for OwnedV2xSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnedV2xSigner(<key>)")
    }
}

impl V2xSigner for OwnedV2xSigner {
    fn public_key_sec1(&self) -> Vec<u8> {
        CaKeyV2x(&self.0).public_key_sec1()
    }

    fn sign_digest_input(&self, msg: &[u8]) -> Result<[u8; 64], V2xError> {
        CaKeyV2x(&self.0).sign_digest_input(msg)
    }
}

/// The authorization authority (pseudonym CA) of the V2X hierarchy: its
/// signing key (`v2x-aa`, file or PKCS#11) and its certificate
/// (`DATA/ca/v2x-aa.oer`), checked to belong together.
pub fn authorization_authority(
    data: &Path,
    hierarchy: &crate::CaHierarchy,
) -> Result<(OwnedV2xSigner, Certificate), CaError> {
    v2x_authority(data, hierarchy, V2X_AA)
}

/// The CRL signer of the V2X hierarchy (`v2x-crl`, `DATA/ca/v2x-crl.oer`):
/// signs the linkage and hash CRLs.
pub fn crl_signer(
    data: &Path,
    hierarchy: &crate::CaHierarchy,
) -> Result<(OwnedV2xSigner, Certificate), CaError> {
    v2x_authority(data, hierarchy, V2X_CRL)
}

/// The CA-held CRL signer, re-certified by the V2X root (same key, name,
/// validity and assurance) when its `CrlSsp` lacks one of
/// [`CA_HELD_CRL_SERIES`]: a hierarchy made before the enrolment
/// certificate series existed. The new certificate replaces
/// `DATA/ca/v2x-crl.oer` (written beside it, then renamed).
pub fn crl_signer_for_hash_crls(
    data: &Path,
    hierarchy: &crate::CaHierarchy,
) -> Result<(OwnedV2xSigner, Certificate), CaError> {
    let (signer, cert) = crl_signer(data, hierarchy)?;
    let ssp = CrlSsp::of(&cert).map_err(v2x_err)?;
    if ssp.is_some_and(|s| CA_HELD_CRL_SERIES.iter().all(|n| s.crls.contains(n))) {
        return Ok((signer, cert));
    }
    let (v2x_root, root_key, _) = loaded_v2x_root(data, hierarchy)?;
    let tbs = cert.tbs();
    let name = match &tbs.id {
        trustca_v2x::CertificateId::Name(n) => n.clone(),
        _ => {
            return Err(CaError::Signing(
                "the CRL signer certificate has no name".into(),
            ));
        }
    };
    let assurance = tbs
        .assurance_level
        .ok_or_else(|| CaError::Signing("the CRL signer certificate has no assurance".into()))?;
    let renewed = crl_signer_certificate(
        &CaKeyV2x(&root_key),
        &v2x_root,
        tbs.verification_key,
        &name,
        &CA_HELD_CRL_SERIES,
        tbs.validity,
        assurance,
    )?;
    let path = DataDir::new(data).ca().oer(V2X_CRL);
    let tmp = path.with_extension("oer.new");
    std::fs::write(&tmp, renewed.as_coer()).map_err(|e| CaError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| CaError::io(&path, e))?;
    tracing::warn!(
        "the V2X CRL signer certificate was re-issued to also sign the enrolment certificate CRL (crlSeries {ENROLMENT_CRL_SERIES})"
    );
    Ok((signer, renewed))
}

/// The enrolment authority of the V2X hierarchy (`v2x-ea`,
/// `DATA/ca/v2x-ea.oer`).
pub fn enrolment_authority(
    data: &Path,
    hierarchy: &crate::CaHierarchy,
) -> Result<(OwnedV2xSigner, Certificate), CaError> {
    v2x_authority(data, hierarchy, V2X_EA)
}

fn v2x_authority(
    data: &Path,
    hierarchy: &crate::CaHierarchy,
    stem: &str,
) -> Result<(OwnedV2xSigner, Certificate), CaError> {
    let path = DataDir::new(data).ca().oer(stem);
    let cert = read_oer(&path)?;
    let key = hierarchy.keys().load(stem)?;
    let public = PublicKeyP256::from_sec1(StatementSigner::public_key(&key)).map_err(v2x_err)?;
    if public != cert.tbs().verification_key {
        return Err(CaError::Signing(format!(
            "key {stem} does not match {}",
            path.display()
        )));
    }
    Ok((OwnedV2xSigner(key), cert))
}

/// How long an enrolment credential is valid (never past its EA).
pub const ENROLMENT_CREDENTIAL_SECONDS: i64 = 3 * 365 * 86_400;

/// Issues a vehicle's V2X enrolment credential as IEEE 1609.2.1 profiles
/// an enrolment certificate (`EeEcaCertRequest`: `appPermissions` and
/// `certIssuePermissions` absent, `certRequestPermissions` present): id
/// `none` (the credential names no one on the air), `certRequestPermissions`
/// the ticket PSIDs ([`ticket_permissions`], eeType app), which the EA's
/// `certIssuePermissions` (eeType enrol) cover; `assuranceLevel` the
/// vehicle's trust level; `cracaId` the root's (the EA's), `crlSeries`
/// [`ENROLMENT_CRL_SERIES`] (revoked by hash); valid from `now` for three years,
/// clamped to the EA's validity. The key is the vehicle's own; the caller
/// checked that the vehicle holds it.
pub fn issue_enrolment_credential(
    ea: &(OwnedV2xSigner, Certificate),
    vehicle: &str,
    verification_key: PublicKeyP256,
    level: u8,
    now: OffsetDateTime,
) -> Result<Certificate, CaError> {
    let (signer, ea_cert) = ea;
    let start = Time32::from_datetime(now).map_err(v2x_err)?;
    let validity = ValidityPeriod {
        start,
        duration: duration_within(ENROLMENT_CREDENTIAL_SECONDS)?,
    };
    // Named: the registration authority knows vehicles by this name (the
    // same identity the gRPC interface takes from the device credential).
    // It travels only encrypted to the RA; tickets carry no name.
    let mut tbs = ToBeSigned::new(
        trustca_v2x::CertificateId::Name(vehicle.to_owned()),
        validity,
        verification_key,
    );
    tbs.cert_request_permissions = Some(vec![PsidGroupPermissions {
        subject_permissions: SubjectPermissions::Explicit(ticket_permissions()),
        min_chain_length: 1,
        chain_length_range: 0,
        ee_type: PsidGroupPermissions::EE_APP,
    }]);
    tbs.craca_id = ea_cert.tbs().craca_id;
    tbs.crl_series = ENROLMENT_CRL_SERIES;
    tbs.assurance_level = Some(SubjectAssurance::from_trust_level(level).map_err(v2x_err)?);
    Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs, ea_cert, signer).map_err(v2x_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_signatures_convert_to_raw() {
        let mut raw = [0u8; 64];
        raw[0] = 0x80; // r needs a leading zero in DER
        raw[31] = 1;
        raw[63] = 7; // s is short
        let der = trustca_model::ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(ecdsa_der_to_raw_p256(&der), Some(raw));
        assert_eq!(ecdsa_der_to_raw_p256(&der[..der.len() - 1]), None);
        let mut extra = der.clone();
        extra.push(0);
        assert_eq!(ecdsa_der_to_raw_p256(&extra), None);
    }

    #[test]
    fn durations_never_exceed_the_time_given() {
        assert_eq!(duration_within(3 * 3600 + 59).unwrap(), Duration::Hours(3));
        let twenty_years = 7300 * 86_400;
        let d = duration_within(twenty_years).unwrap();
        assert_eq!(d, Duration::SixtyHours(2920));
        assert!(d.as_seconds() as i64 <= twenty_years);
        assert!(duration_within(3599).is_err());
    }
}
