//! IEEE 1609.2 explicit certificates: the types, their strict COER codec,
//! signing and signature verification, in one of two profiles
//! ([`CertProfile`]): the ETSI TS 103 097 `EtsiTs103097Certificate`
//! profile (the default of [`Certificate::from_coer`],
//! [`Certificate::issue`] and [`Certificate::sign_root`]) or plain
//! IEEE 1609.2 as the US SCMS uses it (`linkageData` ids, any `cracaId`;
//! the `*_in` variants).
//!
//! The supported subset (everything else is rejected with
//! [`V2xError::Unsupported`] or, in the ETSI profile, [`V2xError::Profile`]):
//!
//! * `CertificateBase` with version 3, type `explicit`, signature present.
//! * issuer `sha256AndDigest` (HashedId8) or `self` (`sha256`).
//! * `toBeSigned.id`: `name` (Hostname) or `none`; `linkageData` only in
//!   the [`CertProfile::Ieee1609Dot2`] profile (the ETSI profile forbids
//!   it); `binaryId` likewise only in the IEEE 1609.2 profile.
//! * `cracaId` `000000`H (ETSI) or any value (IEEE 1609.2), any
//!   `crlSeries`, any `Duration` unit.
//! * `region` absent; no `ToBeSignedCertificate` extensions.
//! * `assuranceLevel`, `appPermissions` (ssp `opaque` or `bitmapSsp`),
//!   `certIssuePermissions` (`all` or `explicit` with ssp ranges `opaque`,
//!   `all` or `bitmapSspRange`), all optional; one of the two permission
//!   fields must be present.
//! * `certRequestPermissions` (what an enrolment certificate may request,
//!   IEEE 1609.2.1) only in the [`CertProfile::Ieee1609Dot2`] profile;
//!   `canRequestRollover` never.
//! * `eeType` follows IEEE 1609.2-2022 (`DEFAULT {app}`, omitted when
//!   {app}); the 2016 encoding with {app} written out is also read, and
//!   kept as received ([`Certificate::legacy_ee_type_encoding`]).
//! * [`Certificate::issue`] and its variants clamp the new certificate's
//!   validity to the issuer's ([`ValidityPeriod::clamp_to`]).
//! * `encryptionKey`: `aes128Ccm` with an `eciesNistP256` compressed point.
//! * `verifyKeyIndicator`: `verificationKey` `ecdsaNistP256` as a
//!   `compressed-y-0`/`compressed-y-1` point.
//! * signature `ecdsaNistP256Signature`; `rSig` is written `x-only` and read
//!   as `x-only`, `compressed-y-0` or `compressed-y-1` (only x is used).

use std::ops::Range;

use ring::signature::{ECDSA_P256_SHA256_FIXED, EcdsaKeyPair, UnparsedPublicKey};

use crate::V2xError;
use crate::coer::{Reader, Writer};
use crate::keys::{PublicKeyP256, V2xSigner, hashed_id8, sha256, signing_message};
use crate::validity::ValidityPeriod;

mod codec;
mod issue;
mod tbs;

use codec::{EeTypeRule, decode_signature, decode_tbs, encode_certificate, encode_tbs};
pub(crate) use codec::{
    decode_compressed_point, decode_id, decode_psid_ssp, decode_validity, encode_app_permissions,
    encode_id, encode_point, encode_validity,
};

/// Largest certificate encoding accepted by the decoder.
pub const MAX_CERTIFICATE_LEN: usize = 8192;

/// IEEE 1609.2 `IssuerIdentifier` within the ETSI profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssuerIdentifier {
    /// `self` with hash algorithm `sha256`: a self-signed (root)
    /// certificate.
    SelfSigned,
    /// `sha256AndDigest`: the HashedId8 of the issuing certificate.
    Sha256AndDigest([u8; 8]),
}

/// Which certificate profile the encoder and decoder enforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertProfile {
    /// ETSI TS 103 097 `EtsiTs103097Certificate`: id `name` or `none` only,
    /// `cracaId` `000000`H. What [`Certificate::from_coer`],
    /// [`Certificate::issue`] and [`Certificate::sign_root`] use.
    EtsiTs103097,
    /// IEEE 1609.2 as used by the US SCMS: `linkageData` ids allowed,
    /// `cracaId` any value. Everything else is as in the ETSI profile (the
    /// same supported subset).
    Ieee1609Dot2,
}

impl CertProfile {
    /// The error for a construct this profile does not allow: a
    /// [`V2xError::Profile`] in the ETSI profile (it forbids it), a
    /// [`V2xError::Unsupported`] otherwise (valid IEEE 1609.2 that this
    /// crate does not implement).
    fn reject(self, what: &'static str) -> V2xError {
        match self {
            CertProfile::EtsiTs103097 => V2xError::Profile(what),
            CertProfile::Ieee1609Dot2 => V2xError::Unsupported(what),
        }
    }
}

/// IEEE 1609.2 `GroupLinkageValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupLinkageValue {
    /// `jValue`, `OCTET STRING (SIZE(4))`.
    pub j_value: [u8; 4],
    /// `value`, `OCTET STRING (SIZE(9))`.
    pub value: [u8; 9],
}

/// IEEE 1609.2 `LinkageData`: the id of an SCMS pseudonym certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkageData {
    /// `iCert` (`IValue`, Uint16): the time period index `i`.
    pub i_cert: u16,
    /// `linkage-value` (`LinkageValue`, 9 octets).
    pub linkage_value: [u8; 9],
    /// `group-linkage-value`, optional.
    pub group_linkage_value: Option<GroupLinkageValue>,
}

/// IEEE 1609.2 `CertificateId` (the subset this crate supports).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CertificateId {
    /// `name`: a Hostname of at most 255 characters (CA certificates).
    Name(String),
    /// `none` (authorization tickets and enrolment credentials).
    None,
    /// `linkageData` (SCMS pseudonym certificates). Only in the
    /// [`CertProfile::Ieee1609Dot2`] profile; the ETSI profile forbids it.
    LinkageData(LinkageData),
    /// `binaryId`: opaque octets (as OpenSCMS names its CA certificates).
    /// Only in the [`CertProfile::Ieee1609Dot2`] profile.
    BinaryId(Vec<u8>),
}

/// IEEE 1609.2 `SubjectAssurance`: one octet, the assurance level in the
/// high three bits (7..5), reserved bits 4..2 (zero), the confidence in bits
/// 1..0.
///
/// trustca maps its trust levels 1..=5 to assurance levels 1..=5, i.e.
/// octet `level << 5`: Lv.1 = `20`H, Lv.2 = `40`H, Lv.3 = `60`H,
/// Lv.4 = `80`H, Lv.5 = `A0`H. Assurance levels 0, 6 and 7 have no trustca
/// trust level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubjectAssurance(pub u8);

impl SubjectAssurance {
    /// The octet for trustca trust level `level` (1..=5), confidence 0.
    pub fn from_trust_level(level: u8) -> Result<Self, V2xError> {
        if (1..=5).contains(&level) {
            Ok(Self(level << 5))
        } else {
            Err(V2xError::OutOfRange("trust level must be 1..=5"))
        }
    }

    /// The assurance level (bits 7..5).
    pub fn assurance_level(self) -> u8 {
        self.0 >> 5
    }

    /// The confidence (bits 1..0).
    pub fn confidence(self) -> u8 {
        self.0 & 0x03
    }

    /// The trustca trust level (1..=5) this octet encodes, if any.
    pub fn trust_level(self) -> Option<u8> {
        let l = self.assurance_level();
        (1..=5).contains(&l).then_some(l)
    }
}

/// IEEE 1609.2 `ServiceSpecificPermissions`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ssp {
    /// `opaque`: any octets.
    Opaque(Vec<u8>),
    /// `bitmapSsp` (extension alternative): 0..=31 octets.
    Bitmap(Vec<u8>),
}

/// IEEE 1609.2 `PsidSsp`: an application permission.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PsidSsp {
    /// The PSID / ITS-AID (for example 36 for CAM, 37 for DENM).
    pub psid: u64,
    /// Optional service specific permissions.
    pub ssp: Option<Ssp>,
}

/// IEEE 1609.2 `SspRange`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SspRange {
    /// `opaque`: a list of permitted opaque SSPs.
    Opaque(Vec<Vec<u8>>),
    /// `all`: any SSP.
    All,
    /// `bitmapSspRange` (extension alternative): value and mask, 1..=32
    /// octets each.
    Bitmap {
        /// `sspValue`.
        value: Vec<u8>,
        /// `sspBitmask`.
        mask: Vec<u8>,
    },
}

/// IEEE 1609.2 `PsidSspRange`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PsidSspRange {
    /// The PSID / ITS-AID.
    pub psid: u64,
    /// Optional SSP range (absent: no SSP may be issued).
    pub ssp_range: Option<SspRange>,
}

/// IEEE 1609.2 `SubjectPermissions`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectPermissions {
    /// `explicit`: the listed PSIDs and SSP ranges.
    Explicit(Vec<PsidSspRange>),
    /// `all`: every PSID.
    All,
}

/// IEEE 1609.2 `PsidGroupPermissions`: what a CA may issue.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PsidGroupPermissions {
    /// `subjectPermissions`.
    pub subject_permissions: SubjectPermissions,
    /// `minChainLength` (DEFAULT 1; not encoded when 1).
    pub min_chain_length: i64,
    /// `chainLengthRange` (DEFAULT 0; not encoded when 0).
    pub chain_length_range: i64,
    /// `eeType` bits: `80`H app, `40`H enrol. DEFAULT {app} (`80`H) as in
    /// IEEE 1609.2-2022, not encoded when `80`H; never `00`H (the type is
    /// `ALL EXCEPT {}`).
    pub ee_type: u8,
}

impl PsidGroupPermissions {
    /// `eeType` bit `app`.
    pub const EE_APP: u8 = 0x80;
    /// `eeType` bit `enrol`.
    pub const EE_ENROL: u8 = 0x40;

    /// Permission to issue certificates for every PSID to end entities of
    /// type `ee_type` through chains of `min_chain_length` more CAs
    /// (1: end-entity certificates directly).
    pub fn all(min_chain_length: i64, ee_type: u8) -> Self {
        Self {
            subject_permissions: SubjectPermissions::All,
            min_chain_length,
            chain_length_range: 0,
            ee_type,
        }
    }
}

/// IEEE 1609.2 `ToBeSignedCertificate` (the supported subset).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToBeSigned {
    /// `id`.
    pub id: CertificateId,
    /// `cracaId`; the ETSI profile requires `000000`H, IEEE 1609.2 allows
    /// any value (the HashedId3 of the CRACA certificate).
    pub craca_id: [u8; 3],
    /// `crlSeries`.
    pub crl_series: u16,
    /// `validityPeriod`.
    pub validity: ValidityPeriod,
    /// `assuranceLevel`.
    pub assurance_level: Option<SubjectAssurance>,
    /// `appPermissions`.
    pub app_permissions: Option<Vec<PsidSsp>>,
    /// `certIssuePermissions`.
    pub cert_issue_permissions: Option<Vec<PsidGroupPermissions>>,
    /// `certRequestPermissions`: what the holder may request in its
    /// certificate requests (IEEE 1609.2.1 enrolment certificates). Only
    /// in the [`CertProfile::Ieee1609Dot2`] profile.
    pub cert_request_permissions: Option<Vec<PsidGroupPermissions>>,
    /// `encryptionKey` (ECIES P-256, symmetric algorithm `aes128Ccm`).
    pub encryption_key: Option<PublicKeyP256>,
    /// `verifyKeyIndicator.verificationKey.ecdsaNistP256`.
    pub verification_key: PublicKeyP256,
}

/// The `rSig` form of an ECDSA signature as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RSigForm {
    /// `x-only` (what this crate writes).
    XOnly,
    /// `compressed-y-0`.
    CompressedY0,
    /// `compressed-y-1`.
    CompressedY1,
}

/// IEEE 1609.2 `EcdsaP256Signature` (`ecdsaNistP256Signature`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EcdsaP256Signature {
    /// How `rSig` was encoded.
    pub r_form: RSigForm,
    /// The x coordinate carried in `rSig` (the ECDSA `r`).
    pub r: [u8; 32],
    /// `sSig`.
    pub s: [u8; 32],
}

/// An explicit IEEE 1609.2 certificate in the supported subset, with its
/// COER encoding. Those from [`Certificate::from_coer`],
/// [`Certificate::sign_root`] and [`Certificate::issue`] satisfy the
/// ETSI TS 103 097 `EtsiTs103097Certificate` profile; those from
/// [`Certificate::from_coer_in`] and [`Certificate::issue_in`] the profile
/// asked for ([`Certificate::conforms_to`] tells).
///
/// The encoding kept is the one received (or produced), and signatures are
/// verified over it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Certificate {
    issuer: IssuerIdentifier,
    tbs: ToBeSigned,
    signature: EcdsaP256Signature,
    encoded: Vec<u8>,
    tbs_range: Range<usize>,
    ee_type_rule: EeTypeRule,
}

impl Certificate {
    /// Decodes a certificate from its COER encoding, strictly: canonical
    /// encodings only, no trailing bytes, at most [`MAX_CERTIFICATE_LEN`]
    /// octets, within the subset and profile described in the module
    /// documentation, in the ETSI TS 103 097 profile.
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        Self::from_coer_in(CertProfile::EtsiTs103097, bytes)
    }

    /// Like [`Certificate::from_coer`] in the given profile. With
    /// [`CertProfile::Ieee1609Dot2`] it also accepts id `linkageData` and
    /// any `cracaId`; constructs that only the ETSI profile forbids are
    /// then reported as [`V2xError::Unsupported`] instead of
    /// [`V2xError::Profile`] when this crate does not implement them.
    pub fn from_coer_in(profile: CertProfile, bytes: &[u8]) -> Result<Self, V2xError> {
        if bytes.len() > MAX_CERTIFICATE_LEN {
            return Err(V2xError::Limit("certificate longer than 8192 octets"));
        }
        let (cert, used) = Self::decode_prefix(profile, bytes)?;
        if used != bytes.len() {
            return Err(V2xError::TrailingBytes(bytes.len() - used));
        }
        Ok(cert)
    }

    /// Decodes the certificate at the start of `bytes` (inside a larger
    /// structure such as a signed CRL) and returns how many octets it took.
    pub(crate) fn decode_prefix(
        profile: CertProfile,
        bytes: &[u8],
    ) -> Result<(Self, usize), V2xError> {
        let bytes = &bytes[..bytes.len().min(MAX_CERTIFICATE_LEN)];
        let mut r = Reader::new(bytes);
        let pre = r.preamble(1)?;
        if pre & 0x80 == 0 {
            // Implicit certificates carry no signature: name what they are.
            if bytes.get(2) == Some(&1) {
                return Err(V2xError::Unsupported("implicit certificates"));
            }
            return Err(V2xError::Profile("explicit certificate without signature"));
        }
        let at = r.pos();
        if r.u8()? != 3 {
            return Err(V2xError::Invalid {
                offset: at,
                what: "certificate version is not 3",
            });
        }
        match r.enumerated()? {
            0 => {}
            1 => return Err(profile.reject("implicit certificate")),
            _ => return Err(V2xError::Unsupported("unknown CertificateType")),
        }
        let issuer = match r.tag()? {
            0 => IssuerIdentifier::Sha256AndDigest(r.array()?),
            1 => match r.enumerated()? {
                0 => IssuerIdentifier::SelfSigned,
                _ => {
                    return Err(V2xError::Unsupported(
                        "self-signed with a hash other than SHA-256",
                    ));
                }
            },
            _ => {
                return Err(V2xError::Unsupported(
                    "issuer other than sha256AndDigest or self",
                ));
            }
        };
        let tbs_start = r.pos();
        let (tbs, ee_type_rule) = decode_tbs(&mut r, profile)?;
        let tbs_range = tbs_start..r.pos();
        let signature = decode_signature(&mut r)?;
        let used = r.pos();
        let bytes = &bytes[..used];
        // Belt and braces: the only encoding of what was decoded (under the
        // eeType rule it follows) must be the input itself.
        tbs.validate_in(profile)?;
        let mut tbs_bytes = Writer::new();
        encode_tbs(&mut tbs_bytes, &tbs, ee_type_rule);
        let mut w = Writer::new();
        encode_certificate(&mut w, issuer, &tbs_bytes.buf, &signature);
        if w.buf != bytes {
            return Err(V2xError::NonCanonical {
                offset: 0,
                what: "re-encoding differs from the input",
            });
        }
        let cert = Self {
            issuer,
            tbs,
            signature,
            encoded: bytes.to_vec(),
            tbs_range,
            ee_type_rule,
        };
        Ok((cert, used))
    }

    /// The COER encoding (as received or produced).
    pub fn to_coer(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// The COER encoding, borrowed.
    pub fn as_coer(&self) -> &[u8] {
        &self.encoded
    }

    /// The COER encoding of `toBeSigned`, as received.
    pub fn tbs_coer(&self) -> &[u8] {
        &self.encoded[self.tbs_range.clone()]
    }

    /// The `issuer` field.
    pub fn issuer(&self) -> IssuerIdentifier {
        self.issuer
    }

    /// The `toBeSigned` field.
    pub fn tbs(&self) -> &ToBeSigned {
        &self.tbs
    }

    /// The `signature` field.
    pub fn signature(&self) -> &EcdsaP256Signature {
        &self.signature
    }

    /// Whether this certificate satisfies `profile`. Every certificate
    /// satisfies [`CertProfile::Ieee1609Dot2`]; one decoded or issued in
    /// that profile satisfies [`CertProfile::EtsiTs103097`] unless its id
    /// is `linkageData` or its `cracaId` is not zero.
    pub fn conforms_to(&self, profile: CertProfile) -> bool {
        self.tbs.validate_in(profile).is_ok()
    }

    /// Whether this certificate writes `eeType` {app} explicitly, as the
    /// IEEE 1609.2-2016 module (DEFAULT `00`H) requires and 1609.2-2022
    /// (DEFAULT {app}) forbids. Such a certificate was issued by an older
    /// trustca; it verifies over the bytes received, but a stack that
    /// re-encodes it to the 2022 module gets other bytes, so its signature
    /// and HashedId8 break there: re-issue it.
    pub fn legacy_ee_type_encoding(&self) -> bool {
        self.ee_type_rule == EeTypeRule::Legacy2016
    }

    /// This certificate's HashedId3 (last 3 octets of SHA-256 over its COER
    /// encoding): what `cracaId` holds to name a CRACA certificate.
    pub fn hashed_id3(&self) -> [u8; 3] {
        let h = sha256(&self.encoded);
        [h[29], h[30], h[31]]
    }

    /// This certificate's HashedId8 (last 8 octets of SHA-256 over its COER
    /// encoding).
    pub fn hashed_id8(&self) -> [u8; 8] {
        hashed_id8(&self.encoded)
    }

    /// Verifies this certificate's signature as IEEE 1609.2 clause 5.3.1
    /// specifies: with `None`, as a self-signed certificate (issuer `self`,
    /// own key, empty signer input); with `Some(issuer)`, the issuer field
    /// must be the issuer's HashedId8 and the signature must verify under
    /// the issuer's key with the issuer's COER encoding as signer input.
    /// Only the signature and the issuer link are checked, not validity
    /// periods or permissions.
    pub fn verify_signed_by(&self, issuer: Option<&Certificate>) -> Result<(), V2xError> {
        let (key, signer): (&PublicKeyP256, &[u8]) = match (issuer, self.issuer) {
            (None, IssuerIdentifier::SelfSigned) => (&self.tbs.verification_key, b""),
            (None, IssuerIdentifier::Sha256AndDigest(_)) => {
                return Err(V2xError::IssuerMismatch("certificate is not self-signed"));
            }
            (Some(_), IssuerIdentifier::SelfSigned) => {
                return Err(V2xError::IssuerMismatch("certificate is self-signed"));
            }
            (Some(i), IssuerIdentifier::Sha256AndDigest(d)) => {
                if i.hashed_id8() != d {
                    return Err(V2xError::IssuerMismatch(
                        "issuer HashedId8 does not match the given issuer",
                    ));
                }
                (&i.tbs.verification_key, i.as_coer())
            }
        };
        let msg = signing_message(self.tbs_coer(), signer);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&self.signature.r);
        sig[32..].copy_from_slice(&self.signature.s);
        let pk = key.uncompressed()?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &pk)
            .verify(&msg, &sig)
            .map_err(|_| V2xError::BadSignature)
    }
}

/// Decodes an `EcdsaP256Signature` `Signature` at the reader (for signed
/// structures other than certificates, such as CRLs).
pub(crate) fn decode_signature_at(r: &mut Reader<'_>) -> Result<EcdsaP256Signature, V2xError> {
    decode_signature(r)
}

/// Encodes a `ToBeSignedCertificate` on its own (inside IEEE 1609.2.1
/// certificate requests).
pub(crate) fn encode_tbs_at(w: &mut Writer, tbs: &ToBeSigned) {
    encode_tbs(w, tbs, EeTypeRule::Ieee2022);
}

/// Decodes a `ToBeSignedCertificate` on its own, in the IEEE 1609.2
/// profile (inside IEEE 1609.2.1 certificate requests), and checks that it
/// is the canonical encoding under the `eeType` DEFAULT its encoding
/// follows (a 2016-module client writes {app} explicitly). Returns the
/// octets it took, which re-encodings of the enclosing message reuse.
pub(crate) fn decode_tbs_at<'a>(r: &mut Reader<'a>) -> Result<(ToBeSigned, &'a [u8]), V2xError> {
    let start = r.pos();
    let (tbs, rule) = decode_tbs(r, CertProfile::Ieee1609Dot2)?;
    let raw = r.consumed_since(start);
    let mut w = Writer::new();
    encode_tbs(&mut w, &tbs, rule);
    if w.buf != raw {
        return Err(V2xError::NonCanonical {
            offset: start,
            what: "re-encoding of tbsCert differs from the input",
        });
    }
    Ok((tbs, raw))
}

/// Most certificates in a [`certificates_from_coer`] sequence.
pub const MAX_CERTIFICATE_SEQUENCE: usize = 64;

/// The COER `SequenceOfCertificate` of `certs` (certificate chains, the
/// IEEE 1609.2.1 certificate download).
pub fn certificates_to_coer(certs: &[Certificate]) -> Vec<u8> {
    let mut w = Writer::new();
    w.quantity(certs.len());
    for c in certs {
        w.fixed(c.as_coer());
    }
    w.buf
}

/// Decodes a COER `SequenceOfCertificate` (at most
/// [`MAX_CERTIFICATE_SEQUENCE`] certificates, IEEE 1609.2 profile), strictly.
pub fn certificates_from_coer(bytes: &[u8]) -> Result<Vec<Certificate>, V2xError> {
    let mut r = Reader::new(bytes);
    let n = r.quantity()?;
    if n > MAX_CERTIFICATE_SEQUENCE {
        return Err(V2xError::Limit("more than 64 certificates in a sequence"));
    }
    let mut certs = Vec::with_capacity(n);
    for _ in 0..n {
        let (cert, used) =
            Certificate::decode_prefix(CertProfile::Ieee1609Dot2, &bytes[r.pos()..])?;
        r.take(used)?;
        certs.push(cert);
    }
    if r.remaining() != 0 {
        return Err(V2xError::TrailingBytes(r.remaining()));
    }
    Ok(certs)
}
