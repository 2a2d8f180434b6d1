//! Independent check (a) of issue 18: every IEEE 1609.2 artefact trustca
//! makes is read by `rasn-its`, the V2X codec of the rasn project (IEEE
//! 1609.2-2022 module `ieee1609dot2`), which we did not write:
//!
//! - the V2X root, EA, AA and CRL signer certificates that `init` writes
//!   (`DATA/ca/v2x-*.oer`), an enrolment credential
//!   (`v2x_ca::issue_enrolment_credential`), authorization tickets from the
//!   four SCMS authorities (`LocalDeployment` with the AA and CRL signer of
//!   `init`), and signed linkage CRLs (`SecuredCrl`, empty and with an
//!   entry) decode with rasn-its as `Certificate` / `SecuredCrl` (with the
//!   `CrlContents` inside and the CRL signer's `CrlSsp`), leaving no bytes;
//! - rasn-its re-encodes each to exactly the bytes trustca produced
//!   (canonical OER: a stack that re-encodes gets the same hashes);
//! - every signature verifies by the IEEE 1609.2 rule, computed here with
//!   `ring` (and `p256` only to decompress public keys): ECDSA P-256 over
//!   `SHA-256(tbs COER) ‖ SHA-256(signer certificate COER)` (the empty
//!   string for a self-signed certificate), over the rasn-its re-encoding of
//!   `toBeSigned`/`tbsData` and over the same span of the bytes received;
//! - the chain holds by rasn-its's values: each certificate's validity lies
//!   within its issuer's, its `appPermissions` PSIDs (and an enrolment
//!   credential's `certRequestPermissions`, and a CA's
//!   `certIssuePermissions`) are covered by the issuer's
//!   `certIssuePermissions` for that end-entity type, its issuer HashedId8
//!   is the low 8 octets of SHA-256 of the issuer's COER, `cracaId` and
//!   `crlSeries` name the CRL signer's CRACA and a series it may sign.
//!
//! No trustca decoder, encoder or verifier is used for the checks: trustca
//! code only makes the artefacts, and every value checked is read from
//! rasn-its's decoding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::{PASSPHRASE, TestCa};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use rasn::types::InnerSubtypeConstraint;
use rasn_its::ieee1609dot2::base_types::{
    Duration, EccP256CurvePoint, PublicVerificationKey, ServiceSpecificPermissions, Signature,
};
use rasn_its::ieee1609dot2::crl::{CracaType, CrlSsp, SecuredCrl};
use rasn_its::ieee1609dot2::crl_base_types::{
    CrlContents, ToBeSignedLinkageValueCrl, TypeSpecificCrlContents,
};
use rasn_its::ieee1609dot2::{
    Certificate, CertificateType, EndEntityType, ExplicitCertificate, Ieee1609Dot2Content,
    Ieee1609Dot2Data, IssuerIdentifier, SignerIdentifier, SubjectPermissions,
    ToBeSignedCertificate, VerificationKeyIndicator,
};
use ring::digest::{SHA256, digest};
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use trustca_ca::{CaHierarchy, Passphrase};
use trustca_scms::{BatchPolicy, LocalDeployment, TicketOpener, TicketProfile, VehicleCredential};

/// The CRL service's PSID (IEEE 1609.2 `CrlPsid`).
const CRL_PSID: u64 = 256;
/// IEEE 1609.2 6.4.14: a `years` Duration is 31 556 952 s.
const YEAR_SECONDS: u64 = 31_556_952;

fn sha256(bytes: &[u8]) -> Vec<u8> {
    digest(&SHA256, bytes).as_ref().to_vec()
}

/// Decodes `bytes` as `T` with rasn-its (COER), requires that nothing is
/// left over, and that rasn-its re-encodes exactly `bytes`.
fn decode_exact<T: rasn::Decode + rasn::Encode>(name: &str, bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = rasn::coer::decode_with_remainder::<T>(bytes)
        .map_err(|e| format!("{name}: rasn-its cannot decode it: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{name}: {} bytes after the value", rest.len()));
    }
    let again =
        rasn::coer::encode(&value).map_err(|e| format!("{name}: rasn-its cannot encode: {e}"))?;
    if again != bytes {
        let at = again
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or(again.len().min(bytes.len()));
        return Err(format!(
            "{name}: rasn-its re-encodes differently from octet {at}:\n  trustca  {}\n  rasn-its {}",
            hex::encode(bytes),
            hex::encode(&again)
        ));
    }
    Ok(value)
}

fn encode<T: rasn::Encode>(value: &T) -> Vec<u8> {
    rasn::coer::encode(value).unwrap()
}

/// The uncompressed SEC1 form of a P-256 verification key.
fn p256_key(key: &PublicVerificationKey) -> Result<Vec<u8>, String> {
    let PublicVerificationKey::EcdsaNistP256(point) = key else {
        return Err(format!("verification key is not NIST P-256: {key:?}"));
    };
    let sec1 = match point {
        EccP256CurvePoint::CompressedY0(x) => [&[2u8][..], &x[..]].concat(),
        EccP256CurvePoint::CompressedY1(x) => [&[3u8][..], &x[..]].concat(),
        EccP256CurvePoint::Uncompressed(p) => [&[4u8][..], &p.x[..], &p.y[..]].concat(),
        other => return Err(format!("verification key point {other:?}")),
    };
    let encoded = p256::EncodedPoint::from_bytes(&sec1).map_err(|e| e.to_string())?;
    let affine = Option::<p256::AffinePoint>::from(p256::AffinePoint::from_encoded_point(&encoded))
        .ok_or("verification key is not on P-256")?;
    Ok(affine.to_encoded_point(false).as_bytes().to_vec())
}

/// IEEE 1609.2 5.3.1 with SHA-256: ECDSA over
/// `SHA-256(tbs) ‖ SHA-256(signer)` (`signer` empty when self-signed). The
/// ECDSA `r` is the x coordinate of `rSig` whatever its form.
fn verify_1609(
    tbs: &[u8],
    signer: &[u8],
    key: &PublicVerificationKey,
    signature: &Signature,
) -> Result<(), String> {
    let Signature::EcdsaNistP256(sig) = signature else {
        return Err(format!("signature is not ECDSA NIST P-256: {signature:?}"));
    };
    let r: &[u8] = match &sig.r_sig {
        EccP256CurvePoint::XOnly(x)
        | EccP256CurvePoint::CompressedY0(x)
        | EccP256CurvePoint::CompressedY1(x) => &x[..],
        EccP256CurvePoint::Uncompressed(p) => &p.x[..],
        EccP256CurvePoint::Fill(()) => return Err("rSig is fill".into()),
    };
    let mut msg = sha256(tbs);
    msg.extend_from_slice(&sha256(signer));
    let raw = [r, &sig.s_sig[..]].concat();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, p256_key(key)?)
        .verify(&msg, &raw)
        .map_err(|_| "ECDSA P-256 signature does not verify".to_string())
}

/// One certificate as rasn-its read it, with trustca's bytes.
struct Cert {
    name: String,
    bytes: Vec<u8>,
    cert: Certificate,
}

impl Cert {
    fn tbs(&self) -> &ToBeSignedCertificate {
        &self.cert.to_be_signed
    }

    fn hashed_id8(&self) -> Vec<u8> {
        sha256(&self.bytes)[24..].to_vec()
    }

    fn key(&self) -> &PublicVerificationKey {
        match &self.tbs().verify_key_indicator {
            VerificationKeyIndicator::VerificationKey(k) => k,
            other => panic!("{}: not explicit: {other:?}", self.name),
        }
    }

    /// (start, end) in seconds since the 1609.2 epoch.
    fn validity(&self) -> (u64, u64) {
        let v = &self.tbs().validity_period;
        let start = u64::from(v.start.0);
        (start, start + duration_seconds(&v.duration))
    }
}

/// A 1609.2 `Duration` in whole seconds (sub-second units rounded down).
fn duration_seconds(d: &Duration) -> u64 {
    match d {
        Duration::Microseconds(n) => u64::from(*n) / 1_000_000,
        Duration::Milliseconds(n) => u64::from(*n) / 1_000,
        Duration::Seconds(n) => u64::from(*n),
        Duration::Minutes(n) => u64::from(*n) * 60,
        Duration::Hours(n) => u64::from(*n) * 3_600,
        Duration::SixtyHours(n) => u64::from(*n) * 216_000,
        Duration::Years(n) => u64::from(*n) * YEAR_SECONDS,
    }
}

/// Decodes and re-encodes a certificate with rasn-its and checks it is an
/// explicit certificate whose signature verifies (self-signed when
/// `issuer` is `None`) over the re-encoded and the received `toBeSigned`.
fn read_cert(name: &str, bytes: &[u8], issuer: Option<&Cert>) -> Result<Cert, String> {
    let cert: Certificate = decode_exact(name, bytes)?;
    ExplicitCertificate::new((*cert).clone())
        .map_err(|e| format!("{name}: not an explicit certificate: {e}"))?;
    if cert.r#type != CertificateType::Explicit {
        return Err(format!("{name}: type {:?}", cert.r#type));
    }
    let c = Cert {
        name: name.to_owned(),
        bytes: bytes.to_vec(),
        cert,
    };
    let signature = c
        .cert
        .signature
        .as_ref()
        .ok_or(format!("{name}: no signature"))?;
    // toBeSigned as rasn-its encodes it, and the same span of the bytes
    // received (it ends where the signature starts).
    let tbs = encode(c.tbs());
    let end = bytes.len() - encode(signature).len();
    let received = bytes
        .get(end.checked_sub(tbs.len()).ok_or("short")?..end)
        .ok_or(format!("{name}: toBeSigned span"))?;
    let (key, signer) = match issuer {
        None => {
            if !matches!(c.cert.issuer, IssuerIdentifier::VSelf(_)) {
                return Err(format!("{name}: issuer {:?}, expected self", c.cert.issuer));
            }
            (c.key(), &[][..])
        }
        Some(i) => {
            match &c.cert.issuer {
                IssuerIdentifier::Sha256AndDigest(d) if d.0[..] == i.hashed_id8()[..] => {}
                other => {
                    return Err(format!(
                        "{name}: issuer {other:?} is not SHA-256 and {}'s HashedId8 {}",
                        i.name,
                        hex::encode(i.hashed_id8())
                    ));
                }
            }
            (i.key(), &i.bytes[..])
        }
    };
    verify_1609(&tbs, signer, key, signature)
        .map_err(|e| format!("{name}: over the rasn-its re-encoding: {e}"))?;
    verify_1609(received, signer, key, signature)
        .map_err(|e| format!("{name}: over the bytes received: {e}"))?;
    // A signature over other bytes must not verify (the check can fail).
    let mut other = tbs.clone();
    *other.last_mut().unwrap() ^= 1;
    if verify_1609(&other, signer, key, signature).is_ok() {
        return Err(format!("{name}: a changed toBeSigned verifies"));
    }
    Ok(c)
}

fn psid(p: &rasn_its::ieee1609dot2::base_types::Psid) -> u64 {
    u64::try_from(&p.0).unwrap()
}

/// The eeType bits (first octet: app 0x80, enrol 0x40) of a group.
fn ee_bits(ee: &EndEntityType) -> u8 {
    ee.0.as_raw_slice()[0]
}

/// Whether `issuer`'s certIssuePermissions cover `psids` for end
/// entities of type `ee` (0x80 app, 0x40 enrol).
fn covered(issuer: &Cert, psids: &[u64], ee: u8) -> Result<(), String> {
    let groups = issuer
        .tbs()
        .cert_issue_permissions
        .as_ref()
        .ok_or(format!("{} has no certIssuePermissions", issuer.name))?;
    for p in psids {
        let ok = groups.0.iter().any(|g| {
            ee_bits(&g.ee_type) & ee != 0
                && match &g.subject_permissions {
                    SubjectPermissions::All(()) => true,
                    SubjectPermissions::Explicit(list) => {
                        list.0.iter().any(|r| psid(&r.psid) == *p)
                    }
                    other => panic!("subjectPermissions {other:?}"),
                }
        });
        if !ok {
            return Err(format!(
                "PSID {p} (eeType {ee:#04x}) is not in {}'s certIssuePermissions",
                issuer.name
            ));
        }
    }
    Ok(())
}

/// The PSIDs a group list names explicitly (`all` adds none).
fn group_psids(groups: &rasn_its::ieee1609dot2::SequenceOfPsidGroupPermissions) -> Vec<u64> {
    groups
        .0
        .iter()
        .filter_map(|g| match &g.subject_permissions {
            SubjectPermissions::Explicit(list) => Some(list.0.iter().map(|r| psid(&r.psid))),
            SubjectPermissions::All(()) => None,
            other => panic!("subjectPermissions {other:?}"),
        })
        .flatten()
        .collect()
}

/// Chain consistency from rasn-its's values: validity within the
/// issuer's, permissions covered by the issuer's certIssuePermissions.
fn chain_consistent(c: &Cert, issuer: &Cert) -> Result<(), String> {
    let (start, end) = c.validity();
    let (i_start, i_end) = issuer.validity();
    if start < i_start || end > i_end {
        return Err(format!(
            "{}: validity {start}..{end} is not within {}'s {i_start}..{i_end} \
             (starts {}s before, ends {}s after)",
            c.name,
            issuer.name,
            i_start.saturating_sub(start),
            end.saturating_sub(i_end)
        ));
    }
    let tbs = c.tbs();
    if let Some(app) = &tbs.app_permissions {
        let psids: Vec<u64> = app.0.iter().map(|p| psid(&p.psid)).collect();
        covered(issuer, &psids, EndEntityType::APP).map_err(|e| format!("{}: {e}", c.name))?;
    }
    if let Some(req) = &tbs.cert_request_permissions {
        // An enrolment credential: its issuer must be allowed to issue
        // enrolment certificates for what it may request.
        covered(issuer, &group_psids(req), EndEntityType::ENROLL)
            .map_err(|e| format!("{}: certRequestPermissions: {e}", c.name))?;
    }
    if let Some(issue) = &tbs.cert_issue_permissions {
        for g in &issue.0 {
            let psids = match &g.subject_permissions {
                SubjectPermissions::Explicit(list) => {
                    list.0.iter().map(|r| psid(&r.psid)).collect()
                }
                SubjectPermissions::All(()) => Vec::new(),
                other => panic!("subjectPermissions {other:?}"),
            };
            // A CA's issue permissions for eeType E need the issuer's
            // issue permissions for E (the chain passes them down).
            for bit in [EndEntityType::APP, EndEntityType::ENROLL] {
                if ee_bits(&g.ee_type) & bit != 0 {
                    covered(issuer, &psids, bit)
                        .map_err(|e| format!("{}: certIssuePermissions: {e}", c.name))?;
                }
            }
        }
    }
    Ok(())
}

/// The CRL signer's `CrlSsp`, decoded and re-encoded by rasn-its.
fn crl_ssp(c: &Cert) -> Result<CrlSsp, String> {
    let app = c
        .tbs()
        .app_permissions
        .as_ref()
        .ok_or(format!("{}: no appPermissions", c.name))?;
    let entry = app
        .0
        .iter()
        .find(|p| psid(&p.psid) == CRL_PSID)
        .ok_or(format!("{}: no PSID 256", c.name))?;
    match &entry.ssp {
        Some(ServiceSpecificPermissions::Opaque(o)) => {
            decode_exact(&format!("{} CrlSsp", c.name), o)
        }
        other => Err(format!("{}: PSID 256 SSP {other:?}", c.name)),
    }
}

/// A signed CRL as rasn-its reads it: `SecuredCrl`, its `CrlContents`
/// and the carried signer; signature checked over `tbsData` re-encoded and
/// received.
fn read_crl(
    name: &str,
    bytes: &[u8],
    root: &Cert,
    crl_signer: &Cert,
) -> Result<CrlContents, String> {
    // rasn-its's `SecuredCrl` checks the CRL SPDU constraints (signedData,
    // unsecuredData payload holding a COER `CrlContents`, no other header
    // fields) but gives no access to its inner `Ieee1609Dot2Data`; the
    // fields are read from the same bytes decoded as that type, of which
    // `SecuredCrl` is a delegate (the same encoding).
    let secured: SecuredCrl = decode_exact(name, bytes)?;
    secured
        .validate_and_decode_containing(Some(rasn::Codec::Coer))
        .map_err(|e| format!("{name}: not a valid SecuredCrl for rasn-its: {e}"))?;
    let data: Ieee1609Dot2Data = decode_exact(name, bytes)?;
    let Ieee1609Dot2Content::SignedData(signed) = &data.content else {
        return Err(format!("{name}: not signedData"));
    };
    let inner = signed
        .tbs_data
        .payload
        .data
        .as_ref()
        .ok_or(format!("{name}: no payload data"))?;
    let Ieee1609Dot2Content::UnsecuredData(opaque) = &inner.content else {
        return Err(format!("{name}: payload is not unsecuredData"));
    };
    let contents: CrlContents = decode_exact(&format!("{name} CrlContents"), &opaque.0)?;
    if psid(&signed.tbs_data.header_info.psid) != CRL_PSID {
        return Err(format!("{name}: header psid is not 256"));
    }
    let SignerIdentifier::Certificate(signers) = &signed.signer else {
        return Err(format!("{name}: signer is not a certificate"));
    };
    let [carried] = &signers.0[..] else {
        return Err(format!("{name}: {} signer certificates", signers.0.len()));
    };
    let carried_bytes = encode(carried);
    if carried_bytes != crl_signer.bytes {
        return Err(format!(
            "{name}: the carried signer is not {}",
            crl_signer.name
        ));
    }
    let signer = read_cert(&format!("{name} signer"), &carried_bytes, Some(root))?;
    let tbs = encode(&signed.tbs_data);
    let tail = encode(&signed.signer).len() + encode(&signed.signature).len();
    let end = bytes.len() - tail;
    let received = &bytes[end - tbs.len()..end];
    verify_1609(&tbs, &signer.bytes, signer.key(), &signed.signature)
        .map_err(|e| format!("{name}: over the rasn-its re-encoding: {e}"))?;
    verify_1609(received, &signer.bytes, signer.key(), &signed.signature)
        .map_err(|e| format!("{name}: over the bytes received: {e}"))?;
    // The signer may sign this series, and crlCraca names the CRACA its
    // SSP says (issuerIsCraca: the root).
    let ssp = crl_ssp(&signer)?;
    if !ssp.crls.0.iter().any(|s| s.0 == contents.crl_series.0) {
        return Err(format!(
            "{name}: series {} not in the signer's CrlSsp",
            contents.crl_series.0
        ));
    }
    let craca = match ssp.associated_craca {
        CracaType::IsCraca => signer.hashed_id8(),
        CracaType::IssuerIsCraca => root.hashed_id8(),
    };
    if contents.crl_craca.0[..] != craca[..] {
        return Err(format!("{name}: crlCraca is not the CRACA"));
    }
    if contents.next_crl.0 <= contents.issue_date.0 {
        return Err(format!("{name}: nextCrl not after issueDate"));
    }
    Ok(contents)
}

/// The jmax values and the number of individual revocations (linkage
/// seed pairs) of a linkage CRL, as rasn-its decoded it.
fn revocations(l: &ToBeSignedLinkageValueCrl) -> (Vec<u8>, usize) {
    let groups = l.individual.as_ref().map(|i| &i.0[..]).unwrap_or(&[]);
    let n = groups
        .iter()
        .flat_map(|j| &j.contents.0)
        .flat_map(|la| &la.contents.0)
        .map(|imax| imax.contents.0.len())
        .sum();
    (groups.iter().map(|j| j.jmax).collect(), n)
}

#[test]
fn rasn_its_decodes_re_encodes_and_verifies_every_v2x_artefact() {
    let ca = TestCa::init();
    let data = ca.data();
    let mut problems: Vec<String> = Vec::new();
    let read = |name: &str| std::fs::read(data.join("ca").join(name)).unwrap();

    // The authorities `init` made.
    let root = read_cert("v2x-root", &read("v2x-root.oer"), None);
    let root = match root {
        Ok(r) => r,
        Err(e) => panic!("the V2X root must decode to check anything else: {e}"),
    };
    let mut authorities = Vec::new();
    for stem in ["v2x-ea", "v2x-aa", "v2x-crl"] {
        match read_cert(stem, &read(&format!("{stem}.oer")), Some(&root)) {
            Ok(c) => authorities.push(c),
            Err(e) => problems.push(e),
        }
    }
    for c in &authorities {
        if let Err(e) = chain_consistent(c, &root) {
            problems.push(e);
        }
        // cracaId: the root (the CRACA of the whole hierarchy).
        if c.tbs().craca_id.0[..] != sha256(&root.bytes)[29..] {
            problems.push(format!("{}: cracaId is not the root's HashedId3", c.name));
        }
    }
    let find = |n: &str| authorities.iter().find(|c| c.name == n);
    let (Some(ea), Some(aa), Some(crl_signer)) = (find("v2x-ea"), find("v2x-aa"), find("v2x-crl"))
    else {
        panic!("an authority did not decode: {problems:#?}");
    };
    match crl_ssp(crl_signer) {
        Ok(ssp) => {
            assert_eq!(ssp.associated_craca, CracaType::IssuerIsCraca);
        }
        Err(e) => problems.push(e),
    }

    // Keys of the CA (as the server loads them).
    let (_, set) = trustca_server::policies::resolve(None, Some(data)).unwrap();
    let pass = Passphrase::new(PASSPHRASE.to_vec()).unwrap();
    let h = CaHierarchy::open(data, &set, &pass).unwrap();
    let now = time::OffsetDateTime::now_utc();

    // An enrolment credential from the EA.
    let ea_keys = trustca_ca::v2x_ca::enrolment_authority(data, &h).unwrap();
    let vehicle_key = {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        trustca_v2x::PublicKeyP256::from_sec1(k.public_key().as_ref()).unwrap()
    };
    let ec =
        trustca_ca::v2x_ca::issue_enrolment_credential(&ea_keys, "vehicle-1", vehicle_key, 4, now)
            .unwrap();
    match read_cert("enrolment credential", ec.as_coer(), Some(ea)) {
        Ok(c) => {
            if let Err(e) = chain_consistent(&c, ea) {
                problems.push(e);
            }
            // IEEE 1609.2.1 enrolment certificate: request permissions only.
            assert!(c.tbs().app_permissions.is_none());
            assert!(c.tbs().cert_request_permissions.is_some());
        }
        Err(e) => problems.push(e),
    }

    // Authorization tickets and linkage CRLs from the four authorities,
    // with the AA and CRL signer of `init`.
    let (aa_key, aa_cert) = trustca_ca::v2x_ca::authorization_authority(data, &h).unwrap();
    let (crl_key, crl_cert) = trustca_ca::v2x_ca::crl_signer(data, &h).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let profile = TicketProfile::default();
    let policy = BatchPolicy {
        min_vehicles: 1,
        max_wait_secs: 0,
        max_requests_per_batch: 10_000,
    };
    let d = LocalDeployment::open_with_crl_signer(
        dir.path(),
        profile.clone(),
        policy,
        Arc::new(aa_key),
        aa_cert.clone(),
        (Arc::new(crl_key), crl_cert),
    )
    .unwrap();
    let t = now.unix_timestamp();
    let current = profile.period_at(t).unwrap();
    let car = VehicleCredential {
        id: "urn:trustca:mobility:acme:car-rasn".into(),
        level: 4,
    };
    let cat = trustca_pseudonym::Caterpillar::generate().unwrap();
    d.ra.submit(&car, &cat.request(), None, 2, t).unwrap();
    d.ra.flush(t, false).unwrap();
    let opener =
        TicketOpener::new(&cat, &aa_cert, current, 2, profile.certificates_per_period).unwrap();
    let tickets: Vec<_> =
        d.ra.download(&car)
            .unwrap()
            .iter()
            .map(|r| opener.open(r).unwrap())
            .collect();
    assert_eq!(tickets.len() as u32, 2 * profile.certificates_per_period);
    let mut series_ok = true;
    for (n, ticket) in tickets.iter().enumerate() {
        let name = format!("ticket {n} (period {}, j {})", ticket.period, ticket.j);
        match read_cert(&name, ticket.certificate.as_coer(), Some(aa)) {
            Ok(c) => {
                if let Err(e) = chain_consistent(&c, aa) {
                    problems.push(e);
                }
                if c.tbs().craca_id.0[..] != sha256(&root.bytes)[29..] {
                    problems.push(format!("{name}: cracaId is not the root's HashedId3"));
                }
                if let Ok(ssp) = crl_ssp(crl_signer) {
                    series_ok &= ssp.crls.0.iter().any(|s| s.0 == c.tbs().crl_series.0);
                }
                assert!(matches!(
                    c.tbs().id,
                    rasn_its::ieee1609dot2::CertificateId::LinkageData(_)
                ));
            }
            Err(e) => problems.push(e),
        }
    }
    if !series_ok {
        problems.push("a ticket's crlSeries is not one the CRL signer may sign".into());
    }

    // The linkage CRL before and after a revocation.
    let empty = d.pca.current_crl(t).unwrap();
    match read_crl("empty linkage CRL", empty.as_bytes(), &root, crl_signer) {
        Ok(c) => match &c.type_specific {
            TypeSpecificCrlContents::FullLinkedCrl(l) => {
                // trustca carries jmax even with no entries (one JMaxGroup
                // with no LAGroup), which the module allows.
                let (jmax, n) = revocations(l);
                if n != 0
                    || jmax
                        .iter()
                        .any(|j| u32::from(*j) != profile.certificates_per_period)
                {
                    problems.push(format!("empty CRL: {n} entries, jmax {jmax:?}"));
                }
            }
            other => problems.push(format!("empty CRL: typeSpecific {other:?}")),
        },
        Err(e) => problems.push(e),
    }
    let entry = d.ra.revoke(&car.id, current, false, "operator", t).unwrap();
    let crl = d.pca.revoke(entry, "operator", t).unwrap();
    match read_crl("linkage CRL", crl.as_bytes(), &root, crl_signer) {
        Ok(c) => match &c.type_specific {
            TypeSpecificCrlContents::FullLinkedCrl(l) => {
                assert_eq!(u64::from(l.i_rev.0), current);
                let (jmax, n) = revocations(l);
                assert_eq!(n, 1, "one revoked vehicle");
                assert_eq!(jmax, [profile.certificates_per_period as u8]);
            }
            other => problems.push(format!("linkage CRL: typeSpecific {other:?}")),
        },
        Err(e) => problems.push(e),
    }
    // A changed CRL does not verify (the CRL check can fail).
    let mut tampered = crl.as_bytes().to_vec();
    let at = tampered.len() - 70;
    tampered[at] ^= 1;
    assert!(read_crl("tampered CRL", &tampered, &root, crl_signer).is_err());

    assert!(
        problems.is_empty(),
        "rasn-its check failed:\n{}",
        problems.join("\n")
    );
}
