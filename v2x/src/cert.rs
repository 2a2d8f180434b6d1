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
//!   it); `binaryId` never.
//! * `cracaId` `000000`H (ETSI) or any value (IEEE 1609.2), any
//!   `crlSeries`, any `Duration` unit.
//! * `region` absent; no `ToBeSignedCertificate` extensions.
//! * `assuranceLevel`, `appPermissions` (ssp `opaque` or `bitmapSsp`),
//!   `certIssuePermissions` (`all` or `explicit` with ssp ranges `opaque`,
//!   `all` or `bitmapSspRange`), all optional; one of the two permission
//!   fields must be present.
//! * `certRequestPermissions` and `canRequestRollover` absent (ETSI).
//! * `encryptionKey`: `aes128Ccm` with an `eciesNistP256` compressed point.
//! * `verifyKeyIndicator`: `verificationKey` `ecdsaNistP256` as a
//!   `compressed-y-0`/`compressed-y-1` point.
//! * signature `ecdsaNistP256Signature`; `rSig` is written `x-only` and read
//!   as `x-only`, `compressed-y-0` or `compressed-y-1` (only x is used).

use std::ops::Range;

use ring::signature::{ECDSA_P256_SHA256_FIXED, EcdsaKeyPair, UnparsedPublicKey};

use crate::V2xError;
use crate::coer::{Reader, Writer};
use crate::keys::{PublicKeyP256, V2xSigner, hashed_id8, signing_message};
use crate::validity::{Duration, Time32, ValidityPeriod};

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
    /// `eeType` bits: `80`H app, `40`H enrol (DEFAULT `00`H in the module
    /// as printed in TS 103 097 v1.3.1; not encoded when `00`H).
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
    /// `encryptionKey` (ECIES P-256, symmetric algorithm `aes128Ccm`).
    pub encryption_key: Option<PublicKeyP256>,
    /// `verifyKeyIndicator.verificationKey.ecdsaNistP256`.
    pub verification_key: PublicKeyP256,
}

impl ToBeSigned {
    /// A to-be-signed certificate with `cracaId` zero, `crlSeries` 0 and
    /// every optional field absent (add permissions before signing).
    pub fn new(
        id: CertificateId,
        validity: ValidityPeriod,
        verification_key: PublicKeyP256,
    ) -> Self {
        Self {
            id,
            craca_id: [0; 3],
            crl_series: 0,
            validity,
            assurance_level: None,
            app_permissions: None,
            cert_issue_permissions: None,
            encryption_key: None,
            verification_key,
        }
    }

    /// An authorization ticket (pseudonym certificate): id `none`, the
    /// given application permissions.
    pub fn authorization_ticket(
        verification_key: PublicKeyP256,
        validity: ValidityPeriod,
        app_permissions: Vec<PsidSsp>,
    ) -> Self {
        let mut t = Self::new(CertificateId::None, validity, verification_key);
        t.app_permissions = Some(app_permissions);
        t
    }

    /// An SCMS-style authorization ticket (pseudonym certificate): id
    /// `linkageData`, `cracaId` zero, the given `crlSeries`, assurance
    /// level and application permissions. Valid in the
    /// [`CertProfile::Ieee1609Dot2`] profile only: issue it with
    /// [`Certificate::issue_in`].
    pub fn linked_authorization_ticket(
        verification_key: PublicKeyP256,
        validity: ValidityPeriod,
        app_permissions: Vec<PsidSsp>,
        assurance: SubjectAssurance,
        linkage: LinkageData,
        crl_series: u16,
    ) -> Self {
        let mut t = Self::new(
            CertificateId::LinkageData(linkage),
            validity,
            verification_key,
        );
        t.app_permissions = Some(app_permissions);
        t.assurance_level = Some(assurance);
        t.crl_series = crl_series;
        t
    }

    /// A CA certificate named `name` with the given issue permissions.
    pub fn ca(
        name: &str,
        verification_key: PublicKeyP256,
        validity: ValidityPeriod,
        cert_issue_permissions: Vec<PsidGroupPermissions>,
    ) -> Self {
        let mut t = Self::new(
            CertificateId::Name(name.to_owned()),
            validity,
            verification_key,
        );
        t.cert_issue_permissions = Some(cert_issue_permissions);
        t
    }

    /// Checks the IEEE 1609.2 and ETSI TS 103 097 constraints that the
    /// types do not enforce by themselves (the ETSI profile; see
    /// [`ToBeSigned::validate_in`]).
    pub fn validate(&self) -> Result<(), V2xError> {
        self.validate_in(CertProfile::EtsiTs103097)
    }

    /// Checks the IEEE 1609.2 constraints that the types do not enforce by
    /// themselves, and those of `profile`: the ETSI profile rejects id
    /// `linkageData` and a non-zero `cracaId` with [`V2xError::Profile`].
    pub fn validate_in(&self, profile: CertProfile) -> Result<(), V2xError> {
        if let CertificateId::Name(n) = &self.id
            && n.chars().count() > 255
        {
            return Err(V2xError::OutOfRange("Hostname longer than 255 characters"));
        }
        if profile == CertProfile::EtsiTs103097 {
            if matches!(self.id, CertificateId::LinkageData(_)) {
                return Err(V2xError::Profile("id linkageData is forbidden"));
            }
            if self.craca_id != [0; 3] {
                return Err(V2xError::Profile("cracaId must be 000000H"));
            }
        }
        if self.app_permissions.is_none() && self.cert_issue_permissions.is_none() {
            return Err(V2xError::Profile(
                "appPermissions or certIssuePermissions must be present",
            ));
        }
        for p in self.app_permissions.iter().flatten() {
            if let Some(Ssp::Bitmap(b)) = &p.ssp
                && b.len() > 31
            {
                return Err(V2xError::OutOfRange("BitmapSsp longer than 31 octets"));
            }
        }
        for g in self.cert_issue_permissions.iter().flatten() {
            if let SubjectPermissions::Explicit(ranges) = &g.subject_permissions {
                for r in ranges {
                    if let Some(SspRange::Bitmap { value, mask }) = &r.ssp_range
                        && !((1..=32).contains(&value.len()) && (1..=32).contains(&mask.len()))
                    {
                        return Err(V2xError::OutOfRange(
                            "bitmapSspRange value and mask must be 1..=32 octets",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The COER encoding of this `ToBeSignedCertificate` (ETSI profile).
    pub fn to_coer(&self) -> Result<Vec<u8>, V2xError> {
        self.to_coer_in(CertProfile::EtsiTs103097)
    }

    /// The COER encoding of this `ToBeSignedCertificate`, after checking
    /// it against `profile`.
    pub fn to_coer_in(&self, profile: CertProfile) -> Result<Vec<u8>, V2xError> {
        self.validate_in(profile)?;
        let mut w = Writer::new();
        encode_tbs(&mut w, self);
        Ok(w.buf)
    }
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
}

impl Certificate {
    /// Signs `tbs` as a self-signed root certificate with `key`, which must
    /// be the P-256 key (ring `ECDSA_P256_SHA256_FIXED_SIGNING`) whose public
    /// key is `tbs.verification_key`.
    pub fn sign_root(tbs: ToBeSigned, key: &EcdsaKeyPair) -> Result<Self, V2xError> {
        Self::sign_root_with(tbs, key)
    }

    /// Like [`Certificate::sign_root`] with any [`V2xSigner`] (a key in a
    /// keystore or a PKCS#11 token). The signer's public key must be
    /// `tbs.verification_key`; the new certificate is verified before it
    /// is returned.
    pub fn sign_root_with(tbs: ToBeSigned, signer: &dyn V2xSigner) -> Result<Self, V2xError> {
        if PublicKeyP256::from_sec1(&signer.public_key_sec1())? != tbs.verification_key {
            return Err(V2xError::Signing(
                "root key does not match the certificate's verification key",
            ));
        }
        let cert = Self::sign(
            CertProfile::EtsiTs103097,
            IssuerIdentifier::SelfSigned,
            &tbs,
            signer,
            b"",
        )?;
        cert.verify_signed_by(None).map_err(|_| {
            V2xError::Signing("the signer produced a signature that does not verify")
        })?;
        Ok(cert)
    }

    /// Signs `tbs` with the CA certificate `issuer` and its key `issuer_key`
    /// (ring `ECDSA_P256_SHA256_FIXED_SIGNING`). The issuer must have
    /// `certIssuePermissions` and its verification key must match
    /// `issuer_key`. Permission and validity-period consistency along the
    /// chain are not checked here.
    pub fn issue(
        tbs: ToBeSigned,
        issuer: &Certificate,
        issuer_key: &EcdsaKeyPair,
    ) -> Result<Self, V2xError> {
        Self::issue_with(tbs, issuer, issuer_key)
    }

    /// Like [`Certificate::issue`] with any [`V2xSigner`] holding the
    /// issuer's key. The new certificate is verified against `issuer`
    /// before it is returned.
    pub fn issue_with(
        tbs: ToBeSigned,
        issuer: &Certificate,
        signer: &dyn V2xSigner,
    ) -> Result<Self, V2xError> {
        Self::issue_in(CertProfile::EtsiTs103097, tbs, issuer, signer)
    }

    /// Like [`Certificate::issue_with`], checking `tbs` against `profile`
    /// instead of the ETSI profile: with [`CertProfile::Ieee1609Dot2`] it
    /// issues SCMS-style tickets with id `linkageData`
    /// ([`ToBeSigned::linked_authorization_ticket`]). The issuer may be a
    /// certificate of either profile.
    pub fn issue_in(
        profile: CertProfile,
        tbs: ToBeSigned,
        issuer: &Certificate,
        signer: &dyn V2xSigner,
    ) -> Result<Self, V2xError> {
        if issuer.tbs.cert_issue_permissions.is_none() {
            return Err(V2xError::IssuerMismatch(
                "issuer has no certIssuePermissions",
            ));
        }
        if PublicKeyP256::from_sec1(&signer.public_key_sec1())? != issuer.tbs.verification_key {
            return Err(V2xError::Signing(
                "issuer key does not match the issuer certificate",
            ));
        }
        let cert = Self::sign(
            profile,
            IssuerIdentifier::Sha256AndDigest(issuer.hashed_id8()),
            &tbs,
            signer,
            issuer.as_coer(),
        )?;
        cert.verify_signed_by(Some(issuer)).map_err(|_| {
            V2xError::Signing("the signer produced a signature that does not verify")
        })?;
        Ok(cert)
    }

    fn sign(
        profile: CertProfile,
        issuer: IssuerIdentifier,
        tbs: &ToBeSigned,
        key: &dyn V2xSigner,
        signer: &[u8],
    ) -> Result<Self, V2xError> {
        let tbs_bytes = tbs.to_coer_in(profile)?;
        let msg = signing_message(&tbs_bytes, signer);
        let sig = key.sign_digest_input(&msg)?;
        let mut signature = EcdsaP256Signature {
            r_form: RSigForm::XOnly,
            r: [0; 32],
            s: [0; 32],
        };
        signature.r.copy_from_slice(&sig[..32]);
        signature.s.copy_from_slice(&sig[32..]);
        let mut w = Writer::new();
        encode_certificate(&mut w, issuer, &tbs_bytes, &signature);
        Self::from_coer_in(profile, &w.buf)
    }

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
        let mut r = Reader::new(bytes);
        let pre = r.preamble(1)?;
        if pre & 0x80 == 0 {
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
        let tbs = decode_tbs(&mut r, profile)?;
        let tbs_range = tbs_start..r.pos();
        let signature = decode_signature(&mut r)?;
        if r.remaining() != 0 {
            return Err(V2xError::TrailingBytes(r.remaining()));
        }
        // Belt and braces: the only encoding of what was decoded must be the
        // input itself.
        let mut w = Writer::new();
        encode_certificate(&mut w, issuer, &tbs.to_coer_in(profile)?, &signature);
        if w.buf != bytes {
            return Err(V2xError::NonCanonical {
                offset: 0,
                what: "re-encoding differs from the input",
            });
        }
        Ok(Self {
            issuer,
            tbs,
            signature,
            encoded: bytes.to_vec(),
            tbs_range,
        })
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

// ---------------------------------------------------------------- encoding

fn encode_certificate(
    w: &mut Writer,
    issuer: IssuerIdentifier,
    tbs: &[u8],
    sig: &EcdsaP256Signature,
) {
    w.u8(0x80); // preamble: signature present
    w.u8(3); // version
    w.u8(0); // type explicit
    match issuer {
        IssuerIdentifier::Sha256AndDigest(d) => {
            w.tag(0);
            w.fixed(&d);
        }
        IssuerIdentifier::SelfSigned => {
            w.tag(1);
            w.u8(0); // sha256
        }
    }
    w.fixed(tbs);
    w.tag(0); // ecdsaNistP256Signature
    w.tag(match sig.r_form {
        RSigForm::XOnly => 0,
        RSigForm::CompressedY0 => 2,
        RSigForm::CompressedY1 => 3,
    });
    w.fixed(&sig.r);
    w.fixed(&sig.s);
}

fn encode_point(w: &mut Writer, k: &PublicKeyP256) {
    w.tag(if k.y_is_odd() { 3 } else { 2 });
    w.fixed(&k.x());
}

fn encode_tbs(w: &mut Writer, t: &ToBeSigned) {
    let mut pre = 0u8; // bit 7: extensions (none); bit 6: region (absent)
    if t.assurance_level.is_some() {
        pre |= 0x20;
    }
    if t.app_permissions.is_some() {
        pre |= 0x10;
    }
    if t.cert_issue_permissions.is_some() {
        pre |= 0x08;
    }
    // bit 2 certRequestPermissions, bit 1 canRequestRollover: absent (ETSI)
    if t.encryption_key.is_some() {
        pre |= 0x01;
    }
    w.u8(pre);
    match &t.id {
        CertificateId::Name(n) => {
            w.tag(1);
            w.octets(n.as_bytes());
        }
        CertificateId::None => w.tag(3),
        CertificateId::LinkageData(l) => {
            w.tag(0);
            w.u8(if l.group_linkage_value.is_some() {
                0x80
            } else {
                0
            });
            w.u16(l.i_cert);
            w.fixed(&l.linkage_value);
            if let Some(g) = &l.group_linkage_value {
                w.fixed(&g.j_value);
                w.fixed(&g.value);
            }
        }
    }
    w.fixed(&t.craca_id);
    w.u16(t.crl_series);
    w.u32(t.validity.start.0);
    w.tag(t.validity.duration.tag());
    w.u16(t.validity.duration.value());
    if let Some(a) = t.assurance_level {
        w.u8(a.0);
    }
    if let Some(perms) = &t.app_permissions {
        w.quantity(perms.len());
        for p in perms {
            w.u8(if p.ssp.is_some() { 0x80 } else { 0 });
            w.uint(p.psid);
            match &p.ssp {
                None => {}
                Some(Ssp::Opaque(o)) => {
                    w.tag(0);
                    w.octets(o);
                }
                Some(Ssp::Bitmap(b)) => {
                    w.tag(1);
                    w.open(|w| w.octets(b));
                }
            }
        }
    }
    if let Some(groups) = &t.cert_issue_permissions {
        w.quantity(groups.len());
        for g in groups {
            let mut pre = 0u8;
            if g.min_chain_length != 1 {
                pre |= 0x80;
            }
            if g.chain_length_range != 0 {
                pre |= 0x40;
            }
            if g.ee_type != 0 {
                pre |= 0x20;
            }
            w.u8(pre);
            match &g.subject_permissions {
                SubjectPermissions::Explicit(ranges) => {
                    w.tag(0);
                    w.quantity(ranges.len());
                    for r in ranges {
                        w.u8(if r.ssp_range.is_some() { 0x80 } else { 0 });
                        w.uint(r.psid);
                        match &r.ssp_range {
                            None => {}
                            Some(SspRange::Opaque(list)) => {
                                w.tag(0);
                                w.quantity(list.len());
                                for o in list {
                                    w.octets(o);
                                }
                            }
                            Some(SspRange::All) => w.tag(1),
                            Some(SspRange::Bitmap { value, mask }) => {
                                w.tag(2);
                                w.open(|w| {
                                    w.octets(value);
                                    w.octets(mask);
                                });
                            }
                        }
                    }
                }
                SubjectPermissions::All => w.tag(1),
            }
            if g.min_chain_length != 1 {
                w.int(g.min_chain_length);
            }
            if g.chain_length_range != 0 {
                w.int(g.chain_length_range);
            }
            if g.ee_type != 0 {
                w.u8(g.ee_type);
            }
        }
    }
    if let Some(k) = &t.encryption_key {
        w.u8(0); // supportedSymmAlg aes128Ccm
        w.tag(0); // eciesNistP256
        encode_point(w, k);
    }
    w.tag(0); // verificationKey
    w.tag(0); // ecdsaNistP256
    encode_point(w, &t.verification_key);
}

// ---------------------------------------------------------------- decoding

fn decode_compressed_point(r: &mut Reader<'_>) -> Result<PublicKeyP256, V2xError> {
    let at = r.pos();
    let odd = match r.tag()? {
        2 => false,
        3 => true,
        0 | 1 => {
            return Err(V2xError::Invalid {
                offset: at,
                what: "public key as x-only or fill",
            });
        }
        4 => return Err(V2xError::Unsupported("uncompressed public keys")),
        _ => {
            return Err(V2xError::Invalid {
                offset: at,
                what: "unknown EccP256CurvePoint alternative",
            });
        }
    };
    let x: [u8; 32] = r.array()?;
    PublicKeyP256::from_x(&x, odd)
}

fn decode_tbs(r: &mut Reader<'_>, profile: CertProfile) -> Result<ToBeSigned, V2xError> {
    let pre = r.preamble(8)?;
    if pre & 0x80 != 0 {
        return Err(V2xError::Unsupported("ToBeSignedCertificate extensions"));
    }
    if pre & 0x40 != 0 {
        return Err(V2xError::Unsupported("region"));
    }
    if pre & 0x04 != 0 {
        return Err(profile.reject("certRequestPermissions must be absent"));
    }
    if pre & 0x02 != 0 {
        return Err(profile.reject("canRequestRollover must be absent"));
    }
    let id = match r.tag()? {
        0 if profile == CertProfile::EtsiTs103097 => {
            return Err(V2xError::Profile("id linkageData is forbidden"));
        }
        0 => {
            let pre = r.preamble(1)?;
            let i_cert = r.u16()?;
            let linkage_value = r.array()?;
            let group_linkage_value = if pre & 0x80 != 0 {
                Some(GroupLinkageValue {
                    j_value: r.array()?,
                    value: r.array()?,
                })
            } else {
                None
            };
            CertificateId::LinkageData(LinkageData {
                i_cert,
                linkage_value,
                group_linkage_value,
            })
        }
        1 => {
            let at = r.pos();
            let raw = r.octets()?;
            let name = std::str::from_utf8(raw).map_err(|_| V2xError::Invalid {
                offset: at,
                what: "Hostname is not UTF-8",
            })?;
            CertificateId::Name(name.to_owned())
        }
        2 => return Err(profile.reject("id binaryId is forbidden")),
        3 => CertificateId::None,
        _ => return Err(V2xError::Unsupported("CertificateId extension")),
    };
    let craca_id = r.array()?;
    let crl_series = r.u16()?;
    let start = Time32(r.u32()?);
    let at = r.pos();
    let tag = r.tag()?;
    let duration = Duration::from_tag(tag, r.u16()?).ok_or(V2xError::Invalid {
        offset: at,
        what: "unknown Duration alternative",
    })?;
    let assurance_level = if pre & 0x20 != 0 {
        Some(SubjectAssurance(r.u8()?))
    } else {
        None
    };
    let app_permissions = if pre & 0x10 != 0 {
        let n = r.quantity()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(decode_psid_ssp(r)?);
        }
        Some(v)
    } else {
        None
    };
    let cert_issue_permissions = if pre & 0x08 != 0 {
        let n = r.quantity()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(decode_group(r)?);
        }
        Some(v)
    } else {
        None
    };
    let encryption_key = if pre & 0x01 != 0 {
        if r.enumerated()? != 0 {
            return Err(V2xError::Unsupported(
                "symmetric algorithm other than aes128Ccm",
            ));
        }
        match r.tag()? {
            0 => Some(decode_compressed_point(r)?),
            _ => {
                return Err(V2xError::Unsupported(
                    "encryption key other than eciesNistP256",
                ));
            }
        }
    } else {
        None
    };
    match r.tag()? {
        0 => {}
        1 => {
            return Err(profile.reject("reconstructionValue in an explicit certificate"));
        }
        _ => return Err(V2xError::Unsupported("VerificationKeyIndicator extension")),
    }
    match r.tag()? {
        0 => {}
        _ => {
            return Err(V2xError::Unsupported(
                "verification key other than ecdsaNistP256",
            ));
        }
    }
    let verification_key = decode_compressed_point(r)?;
    let tbs = ToBeSigned {
        id,
        craca_id,
        crl_series,
        validity: ValidityPeriod { start, duration },
        assurance_level,
        app_permissions,
        cert_issue_permissions,
        encryption_key,
        verification_key,
    };
    tbs.validate_in(profile)?;
    Ok(tbs)
}

fn decode_psid_ssp(r: &mut Reader<'_>) -> Result<PsidSsp, V2xError> {
    let pre = r.preamble(1)?;
    let psid = r.uint()?;
    let ssp = if pre & 0x80 != 0 {
        Some(match r.tag()? {
            0 => Ssp::Opaque(r.octets()?.to_vec()),
            1 => Ssp::Bitmap(r.open(|r| Ok(r.octets()?.to_vec()))?),
            _ => {
                return Err(V2xError::Unsupported(
                    "ServiceSpecificPermissions extension",
                ));
            }
        })
    } else {
        None
    };
    Ok(PsidSsp { psid, ssp })
}

fn decode_group(r: &mut Reader<'_>) -> Result<PsidGroupPermissions, V2xError> {
    let pre = r.preamble(3)?;
    let subject_permissions = match r.tag()? {
        0 => {
            let n = r.quantity()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                v.push(decode_psid_ssp_range(r)?);
            }
            SubjectPermissions::Explicit(v)
        }
        1 => SubjectPermissions::All,
        _ => return Err(V2xError::Unsupported("SubjectPermissions extension")),
    };
    let at = r.pos();
    let min_chain_length = if pre & 0x80 != 0 {
        let v = r.int()?;
        if v == 1 {
            return Err(V2xError::NonCanonical {
                offset: at,
                what: "minChainLength DEFAULT value encoded",
            });
        }
        v
    } else {
        1
    };
    let at = r.pos();
    let chain_length_range = if pre & 0x40 != 0 {
        let v = r.int()?;
        if v == 0 {
            return Err(V2xError::NonCanonical {
                offset: at,
                what: "chainLengthRange DEFAULT value encoded",
            });
        }
        v
    } else {
        0
    };
    let at = r.pos();
    let ee_type = if pre & 0x20 != 0 {
        let v = r.u8()?;
        if v == 0 {
            return Err(V2xError::NonCanonical {
                offset: at,
                what: "eeType DEFAULT value encoded",
            });
        }
        v
    } else {
        0
    };
    Ok(PsidGroupPermissions {
        subject_permissions,
        min_chain_length,
        chain_length_range,
        ee_type,
    })
}

fn decode_psid_ssp_range(r: &mut Reader<'_>) -> Result<PsidSspRange, V2xError> {
    let pre = r.preamble(1)?;
    let psid = r.uint()?;
    let ssp_range = if pre & 0x80 != 0 {
        Some(match r.tag()? {
            0 => {
                let n = r.quantity()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(r.octets()?.to_vec());
                }
                SspRange::Opaque(v)
            }
            1 => SspRange::All,
            2 => r.open(|r| {
                let value = r.octets()?.to_vec();
                let mask = r.octets()?.to_vec();
                Ok(SspRange::Bitmap { value, mask })
            })?,
            _ => return Err(V2xError::Unsupported("SspRange extension")),
        })
    } else {
        None
    };
    Ok(PsidSspRange { psid, ssp_range })
}

fn decode_signature(r: &mut Reader<'_>) -> Result<EcdsaP256Signature, V2xError> {
    match r.tag()? {
        0 => {}
        _ => {
            return Err(V2xError::Unsupported(
                "signature other than ecdsaNistP256Signature",
            ));
        }
    }
    let at = r.pos();
    let r_form = match r.tag()? {
        0 => RSigForm::XOnly,
        2 => RSigForm::CompressedY0,
        3 => RSigForm::CompressedY1,
        _ => {
            return Err(V2xError::Invalid {
                offset: at,
                what: "rSig must be x-only or compressed",
            });
        }
    };
    let r_x = r.array()?;
    let s = r.array()?;
    Ok(EcdsaP256Signature { r_form, r: r_x, s })
}
