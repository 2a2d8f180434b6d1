//! ETSI TS 102 941 (v1.3.1) messages between ITS stations, the enrolment
//! authority and the authorization authority: `EtsiTs102941Data` and what
//! it carries for enrolment, authorization and authorization validation,
//! with a strict COER codec.
//!
//! ```text
//! EtsiTs102941Data ::= SEQUENCE { version Version (v1), content CHOICE {
//!   enrolmentRequest InnerEcRequestSignedForPop, enrolmentResponse InnerEcResponse,
//!   authorizationRequest InnerAtRequest, authorizationResponse InnerAtResponse,
//!   certificateRevocationList, certificateTrustListTlm, certificateTrustListRca,
//!   authorizationValidationRequest, authorizationValidationResponse,
//!   caCertificateRequest, ... } }
//! InnerEcRequest ::= SEQUENCE { itsId OCTET STRING, certificateFormat,
//!   publicKeys PublicKeys, requestedSubjectAttributes, ... }
//! InnerEcResponse / InnerAtResponse ::= SEQUENCE { requestHash OCTET STRING (SIZE(16)),
//!   responseCode, certificate EtsiTs103097Certificate OPTIONAL, ... }
//! InnerAtRequest ::= SEQUENCE { publicKeys, hmacKey OCTET STRING (SIZE(32)),
//!   sharedAtRequest, ecSignature EcSignature, ... }
//! SharedAtRequest ::= SEQUENCE { eaId HashedId8, keyTag OCTET STRING (SIZE(16)),
//!   certificateFormat, requestedSubjectAttributes, ... }
//! AuthorizationValidationRequest ::= SEQUENCE { sharedAtRequest, ecSignature, ... }
//! AuthorizationValidationResponse ::= SEQUENCE { requestHash, responseCode,
//!   confirmedSubjectAttributes OPTIONAL, ... }
//! ```
//!
//! Supported subset: P-256 keys (compressed points), `aes128Ccm` /
//! `eciesNistP256` encryption keys, subject attributes without `region` and
//! `certIssuePermissions` (TS 102 941 forbids the latter in requests), no
//! extensions. The trust lists are in [`crate::trust_lists`]; CA certificate
//! requests are reported as [`V2xError::Unsupported`].

use crate::V2xError;
use crate::cert::{
    CertProfile, Certificate, CertificateId, PsidSsp, SubjectAssurance, decode_compressed_point,
    decode_id, decode_psid_ssp, decode_validity, encode_app_permissions, encode_id, encode_point,
    encode_validity,
};
use crate::coer::{Reader, Writer};
use crate::encrypted::EncryptedData;
use crate::etsi_data::EtsiSignedData;
use crate::keys::PublicKeyP256;
use crate::spdu::{MAX_SPDU_LEN, encrypted_data};
use crate::trust_lists::{CtlFormat, CtlKind, ToBeSignedCrl};
use crate::validity::ValidityPeriod;

/// `CertificateFormat` `ts103097v131`.
pub const CERTIFICATE_FORMAT: u8 = 1;
/// Longest `itsId` accepted (a canonical identifier or a HashedId8).
pub const MAX_ITS_ID_LEN: usize = 255;

/// `PublicKeys`: the key to certify and an optional encryption key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKeys {
    /// `verificationKey` (`ecdsaNistP256`).
    pub verification_key: PublicKeyP256,
    /// `encryptionKey` (`aes128Ccm`, `eciesNistP256`).
    pub encryption_key: Option<PublicKeyP256>,
}

/// `CertificateSubjectAttributes` without `region` and
/// `certIssuePermissions`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectAttributes {
    /// `id`.
    pub id: Option<CertificateId>,
    /// `validityPeriod`.
    pub validity: Option<ValidityPeriod>,
    /// `assuranceLevel`.
    pub assurance_level: Option<SubjectAssurance>,
    /// `appPermissions` (required: the type's constraint wants it or
    /// `certIssuePermissions`, which requests may not carry).
    pub app_permissions: Vec<PsidSsp>,
}

/// `InnerEcRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerEcRequest {
    /// `itsId`: the canonical identifier (initial enrolment) or the
    /// HashedId8 of the current enrolment credential (re-enrolment).
    pub its_id: Vec<u8>,
    /// `certificateFormat` ([`CERTIFICATE_FORMAT`]).
    pub certificate_format: u8,
    /// `publicKeys`.
    pub public_keys: PublicKeys,
    /// `requestedSubjectAttributes`.
    pub requested: SubjectAttributes,
}

macro_rules! response_codes {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $n:expr,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name { $($(#[$vm])* $v = $n,)* }
        impl $name {
            /// The ENUMERATED value.
            pub fn value(self) -> u8 { self as u8 }
            /// The code with ENUMERATED value `n`, if it is a root value.
            pub fn from_value(n: u8) -> Option<Self> {
                match n { $($n => Some(Self::$v),)* _ => None }
            }
        }
    };
}

response_codes! {
    /// `EnrolmentResponseCode`.
    EnrolmentResponseCode {
        /// `ok`.
        Ok = 0,
        /// `cantparse`.
        CantParse = 1,
        /// `badcontenttype`: not encrypted, not signed, not an enrolment request.
        BadContentType = 2,
        /// `imnottherecipient`.
        ImNotTheRecipient = 3,
        /// `unknownencryptionalgorithm`.
        UnknownEncryptionAlgorithm = 4,
        /// `decryptionfailed`.
        DecryptionFailed = 5,
        /// `unknownits`: no station with this itsId.
        UnknownIts = 6,
        /// `invalidsignature`.
        InvalidSignature = 7,
        /// `invalidencryptionkey`.
        InvalidEncryptionKey = 8,
        /// `baditsstatus`: revoked, not yet active.
        BadItsStatus = 9,
        /// `incompleterequest`.
        IncompleteRequest = 10,
        /// `deniedpermissions`.
        DeniedPermissions = 11,
        /// `invalidkeys`.
        InvalidKeys = 12,
        /// `deniedrequest`: any other reason.
        DeniedRequest = 13,
    }
}

response_codes! {
    /// `AuthorizationResponseCode`.
    AuthorizationResponseCode {
        /// `ok`.
        Ok = 0,
        /// `its-aa-cantparse`.
        ItsAaCantParse = 1,
        /// `its-aa-badcontenttype`.
        ItsAaBadContentType = 2,
        /// `its-aa-imnottherecipient`.
        ItsAaImNotTheRecipient = 3,
        /// `its-aa-unknownencryptionalgorithm`.
        ItsAaUnknownEncryptionAlgorithm = 4,
        /// `its-aa-decryptionfailed`.
        ItsAaDecryptionFailed = 5,
        /// `its-aa-keysdontmatch`: the keyTag does not match the keys.
        ItsAaKeysDontMatch = 6,
        /// `its-aa-incompleterequest`.
        ItsAaIncompleteRequest = 7,
        /// `its-aa-invalidencryptionkey`.
        ItsAaInvalidEncryptionKey = 8,
        /// `its-aa-outofsyncrequest`: generationTime too far from the AA's clock.
        ItsAaOutOfSyncRequest = 9,
        /// `its-aa-unknownea`.
        ItsAaUnknownEa = 10,
        /// `its-aa-invalidea`.
        ItsAaInvalidEa = 11,
        /// `its-aa-deniedpermissions`.
        ItsAaDeniedPermissions = 12,
        /// `aa-ea-cantreachea`.
        AaEaCantReachEa = 13,
        /// `ea-aa-cantparse`.
        EaAaCantParse = 14,
        /// `ea-aa-badcontenttype`.
        EaAaBadContentType = 15,
        /// `ea-aa-imnottherecipient`.
        EaAaImNotTheRecipient = 16,
        /// `ea-aa-unknownencryptionalgorithm`.
        EaAaUnknownEncryptionAlgorithm = 17,
        /// `ea-aa-decryptionfailed`.
        EaAaDecryptionFailed = 18,
        /// `invalidaa`.
        InvalidAa = 19,
        /// `invalidaasignature`.
        InvalidAaSignature = 20,
        /// `wrongea`.
        WrongEa = 21,
        /// `unknownits`.
        UnknownIts = 22,
        /// `invalidsignature`.
        InvalidSignature = 23,
        /// `invalidencryptionkey`.
        InvalidEncryptionKey = 24,
        /// `deniedpermissions`.
        DeniedPermissions = 25,
        /// `deniedtoomanycerts`.
        DeniedTooManyCerts = 26,
    }
}

response_codes! {
    /// `AuthorizationValidationResponseCode`.
    ValidationResponseCode {
        /// `ok`.
        Ok = 0,
        /// `cantparse`.
        CantParse = 1,
        /// `badcontenttype`.
        BadContentType = 2,
        /// `imnottherecipient`.
        ImNotTheRecipient = 3,
        /// `unknownencryptionalgorithm`.
        UnknownEncryptionAlgorithm = 4,
        /// `decryptionfailed`.
        DecryptionFailed = 5,
        /// `invalidaa`.
        InvalidAa = 6,
        /// `invalidaasignature`.
        InvalidAaSignature = 7,
        /// `wrongea`.
        WrongEa = 8,
        /// `unknownits`.
        UnknownIts = 9,
        /// `invalidsignature`.
        InvalidSignature = 10,
        /// `invalidencryptionkey`.
        InvalidEncryptionKey = 11,
        /// `deniedpermissions`.
        DeniedPermissions = 12,
        /// `deniedtoomanycerts`.
        DeniedTooManyCerts = 13,
        /// `deniedrequest`.
        DeniedRequest = 14,
    }
}

/// `InnerEcResponse` (`C` [`EnrolmentResponseCode`]) or `InnerAtResponse`
/// (`C` [`AuthorizationResponseCode`]): the certificate is present exactly
/// when the code is `ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerResponse<C> {
    /// `requestHash`: the leftmost 16 octets of SHA-256 over the request
    /// message as received.
    pub request_hash: [u8; 16],
    /// `responseCode`.
    pub response_code: C,
    /// `certificate`.
    pub certificate: Option<Certificate>,
}

/// `SharedAtRequest`: the part of an authorization request the AA passes
/// to the EA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedAtRequest {
    /// `eaId`: HashedId8 of the EA certificate.
    pub ea_id: [u8; 8],
    /// `keyTag`: binds the ticket's keys without revealing them.
    pub key_tag: [u8; 16],
    /// `certificateFormat`.
    pub certificate_format: u8,
    /// `requestedSubjectAttributes`.
    pub requested: SubjectAttributes,
}

/// `EcSignature`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcSignature {
    /// `encryptedEcSignature`: the signature, encrypted to the EA (what
    /// keeps the AA from learning which credential signed).
    Encrypted(EncryptedData),
    /// `ecSignature`: the signature in clear.
    Signed(EtsiSignedData),
}

/// `InnerAtRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerAtRequest {
    /// `publicKeys`: the ticket's keys.
    pub public_keys: PublicKeys,
    /// `hmacKey`: the key of the `keyTag`.
    pub hmac_key: [u8; 32],
    /// `sharedAtRequest`.
    pub shared: SharedAtRequest,
    /// `ecSignature`.
    pub ec_signature: EcSignature,
}

/// `AuthorizationValidationRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationRequest {
    /// `sharedAtRequest`, as the station sent it.
    pub shared: SharedAtRequest,
    /// `ecSignature`, as the station sent it.
    pub ec_signature: EcSignature,
}

/// `AuthorizationValidationResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationResponse {
    /// `requestHash`.
    pub request_hash: [u8; 16],
    /// `responseCode`.
    pub response_code: ValidationResponseCode,
    /// `confirmedSubjectAttributes` (present exactly when `ok`).
    pub confirmed: Option<SubjectAttributes>,
}

/// `EtsiTs102941DataContent` (the supported alternatives).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EtsiTs102941Data {
    /// `enrolmentRequest`: an `InnerEcRequestSignedForPop` (signed `self`
    /// by the new key; its data is an [`InnerEcRequest`]).
    EnrolmentRequest(EtsiSignedData),
    /// `enrolmentResponse`.
    EnrolmentResponse(InnerResponse<EnrolmentResponseCode>),
    /// `authorizationRequest`.
    AuthorizationRequest(InnerAtRequest),
    /// `authorizationResponse`.
    AuthorizationResponse(InnerResponse<AuthorizationResponseCode>),
    /// `authorizationValidationRequest`.
    ValidationRequest(ValidationRequest),
    /// `authorizationValidationResponse`.
    ValidationResponse(ValidationResponse),
    /// `certificateRevocationList`.
    Crl(ToBeSignedCrl),
    /// `certificateTrustListTlm`.
    TlmCtl(CtlFormat),
    /// `certificateTrustListRca`.
    RcaCtl(CtlFormat),
}

// ------------------------------------------------------------ encoding

fn encode_public_keys(w: &mut Writer, k: &PublicKeys) {
    w.u8(if k.encryption_key.is_some() { 0x80 } else { 0 });
    w.tag(0); // ecdsaNistP256
    encode_point(w, &k.verification_key);
    if let Some(e) = &k.encryption_key {
        w.u8(0); // aes128Ccm
        w.tag(0); // eciesNistP256
        encode_point(w, e);
    }
}

/// The COER of `PublicVerificationKey` followed by that of
/// `PublicEncryptionKey` if present: what the `keyTag` HMAC covers.
pub fn key_tag_input(k: &PublicKeys) -> Vec<u8> {
    let mut w = Writer::new();
    encode_public_keys(&mut w, k);
    w.buf[1..].to_vec()
}

fn encode_attributes(w: &mut Writer, a: &SubjectAttributes) {
    let mut pre = 0x04; // appPermissions
    if a.id.is_some() {
        pre |= 0x40;
    }
    if a.validity.is_some() {
        pre |= 0x20;
    }
    if a.assurance_level.is_some() {
        pre |= 0x08;
    }
    w.u8(pre);
    if let Some(id) = &a.id {
        encode_id(w, id);
    }
    if let Some(v) = &a.validity {
        encode_validity(w, v);
    }
    if let Some(l) = a.assurance_level {
        w.u8(l.0);
    }
    encode_app_permissions(w, &a.app_permissions);
}

fn encode_shared(w: &mut Writer, s: &SharedAtRequest) {
    w.u8(0); // no extensions
    w.fixed(&s.ea_id);
    w.fixed(&s.key_tag);
    w.u8(s.certificate_format);
    encode_attributes(w, &s.requested);
}

fn encode_ec_signature(w: &mut Writer, e: &EcSignature) {
    match e {
        EcSignature::Encrypted(d) => {
            w.tag(0);
            w.fixed(&encrypted_data(d));
        }
        EcSignature::Signed(s) => {
            w.tag(1);
            w.fixed(s.as_coer());
        }
    }
}

fn encode_response<C>(w: &mut Writer, r: &InnerResponse<C>, code: u8) {
    w.u8(if r.certificate.is_some() { 0x40 } else { 0 });
    w.fixed(&r.request_hash);
    w.u8(code);
    if let Some(c) = &r.certificate {
        w.fixed(c.as_coer());
    }
}

impl InnerEcRequest {
    /// The COER encoding.
    pub fn to_coer(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(0); // no extensions
        w.octets(&self.its_id);
        w.u8(self.certificate_format);
        encode_public_keys(&mut w, &self.public_keys);
        encode_attributes(&mut w, &self.requested);
        w.buf
    }

    /// Strict COER decoding.
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        let mut r = Reader::new(bytes);
        no_extensions(&mut r, 1)?;
        let its_id = r.octets()?.to_vec();
        if its_id.len() > MAX_ITS_ID_LEN {
            return Err(V2xError::Limit("itsId longer than 255 octets"));
        }
        let certificate_format = r.u8()?;
        let public_keys = decode_public_keys(&mut r)?;
        let requested = decode_attributes(&mut r)?;
        finish(&r)?;
        Ok(Self {
            its_id,
            certificate_format,
            public_keys,
            requested,
        })
    }
}

impl SharedAtRequest {
    /// The COER encoding (what the `ecSignature`'s `extDataHash` hashes).
    pub fn to_coer(&self) -> Vec<u8> {
        let mut w = Writer::new();
        encode_shared(&mut w, self);
        w.buf
    }
}

impl EtsiTs102941Data {
    /// The COER `EtsiTs102941Data` (version 1).
    pub fn to_coer(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(1); // version v1
        match self {
            Self::EnrolmentRequest(s) => {
                w.tag(0);
                w.fixed(s.as_coer());
            }
            Self::EnrolmentResponse(r) => {
                w.tag(1);
                encode_response(&mut w, r, r.response_code.value());
            }
            Self::AuthorizationRequest(a) => {
                w.tag(2);
                w.u8(0);
                encode_public_keys(&mut w, &a.public_keys);
                w.fixed(&a.hmac_key);
                encode_shared(&mut w, &a.shared);
                encode_ec_signature(&mut w, &a.ec_signature);
            }
            Self::AuthorizationResponse(r) => {
                w.tag(3);
                encode_response(&mut w, r, r.response_code.value());
            }
            Self::ValidationRequest(v) => {
                w.tag(7);
                w.u8(0);
                encode_shared(&mut w, &v.shared);
                encode_ec_signature(&mut w, &v.ec_signature);
            }
            Self::Crl(c) => {
                w.tag(4);
                c.encode(&mut w);
            }
            Self::TlmCtl(c) => {
                w.tag(5);
                c.encode(&mut w);
            }
            Self::RcaCtl(c) => {
                w.tag(6);
                c.encode(&mut w);
            }
            Self::ValidationResponse(v) => {
                w.tag(8);
                w.u8(if v.confirmed.is_some() { 0x40 } else { 0 });
                w.fixed(&v.request_hash);
                w.u8(v.response_code.value());
                if let Some(a) = &v.confirmed {
                    encode_attributes(&mut w, a);
                }
            }
        }
        w.buf
    }

    /// Strict COER decoding (at most [`MAX_SPDU_LEN`] octets, no trailing
    /// octets, the re-encoding must be the input).
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        if bytes.len() > MAX_SPDU_LEN {
            return Err(V2xError::Limit("EtsiTs102941Data longer than 64 KiB"));
        }
        let mut r = Reader::new(bytes);
        if r.u8()? != 1 {
            return Err(V2xError::Invalid {
                offset: 0,
                what: "EtsiTs102941Data version is not 1",
            });
        }
        let data = match r.tag()? {
            0 => Self::EnrolmentRequest(EtsiSignedData::from_coer(rest(&mut r)?)?),
            1 => Self::EnrolmentResponse(decode_response(
                &mut r,
                bytes,
                EnrolmentResponseCode::from_value,
                EnrolmentResponseCode::Ok,
            )?),
            2 => {
                no_extensions(&mut r, 1)?;
                let public_keys = decode_public_keys(&mut r)?;
                let hmac_key = r.array()?;
                let shared = decode_shared(&mut r)?;
                let ec_signature = decode_ec_signature(&mut r)?;
                Self::AuthorizationRequest(InnerAtRequest {
                    public_keys,
                    hmac_key,
                    shared,
                    ec_signature,
                })
            }
            3 => Self::AuthorizationResponse(decode_response(
                &mut r,
                bytes,
                AuthorizationResponseCode::from_value,
                AuthorizationResponseCode::Ok,
            )?),
            7 => {
                no_extensions(&mut r, 1)?;
                let shared = decode_shared(&mut r)?;
                let ec_signature = decode_ec_signature(&mut r)?;
                Self::ValidationRequest(ValidationRequest {
                    shared,
                    ec_signature,
                })
            }
            8 => {
                let present = no_extensions(&mut r, 2)? & 0x40 != 0;
                let request_hash = r.array()?;
                let response_code = ValidationResponseCode::from_value(r.enumerated()?).ok_or(
                    V2xError::Unsupported("unknown AuthorizationValidationResponseCode"),
                )?;
                let confirmed = if present {
                    Some(decode_attributes(&mut r)?)
                } else {
                    None
                };
                if (response_code == ValidationResponseCode::Ok) != confirmed.is_some() {
                    return Err(V2xError::Profile(
                        "confirmedSubjectAttributes must be present exactly when ok",
                    ));
                }
                Self::ValidationResponse(ValidationResponse {
                    request_hash,
                    response_code,
                    confirmed,
                })
            }
            4 => Self::Crl(ToBeSignedCrl::decode(&mut r)?),
            5 => Self::TlmCtl(CtlFormat::decode(&mut r, bytes, CtlKind::Tlm)?),
            6 => Self::RcaCtl(CtlFormat::decode(&mut r, bytes, CtlKind::Rca)?),
            9 => {
                return Err(V2xError::Unsupported(
                    "CA certificate requests in EtsiTs102941Data",
                ));
            }
            _ => return Err(V2xError::Unsupported("EtsiTs102941DataContent extension")),
        };
        finish(&r)?;
        if data.to_coer() != bytes {
            return Err(V2xError::NonCanonical {
                offset: 0,
                what: "re-encoding differs from the input",
            });
        }
        Ok(data)
    }
}

// ------------------------------------------------------------ decoding

/// Reads a SEQUENCE preamble of `bits` bits; refuses extensions.
fn no_extensions(r: &mut Reader<'_>, bits: u32) -> Result<u8, V2xError> {
    let pre = r.preamble(bits)?;
    if pre & 0x80 != 0 {
        return Err(V2xError::Unsupported("extensions in a TS 102 941 message"));
    }
    Ok(pre)
}

fn finish(r: &Reader<'_>) -> Result<(), V2xError> {
    match r.remaining() {
        0 => Ok(()),
        n => Err(V2xError::TrailingBytes(n)),
    }
}

fn rest<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], V2xError> {
    r.take(r.remaining())
}

fn decode_public_keys(r: &mut Reader<'_>) -> Result<PublicKeys, V2xError> {
    let pre = r.preamble(1)?;
    if r.tag()? != 0 {
        return Err(V2xError::Unsupported(
            "verification key other than ecdsaNistP256",
        ));
    }
    let verification_key = decode_compressed_point(r)?;
    let encryption_key = if pre & 0x80 != 0 {
        if r.enumerated()? != 0 {
            return Err(V2xError::Unsupported(
                "symmetric algorithm other than aes128Ccm",
            ));
        }
        if r.tag()? != 0 {
            return Err(V2xError::Unsupported(
                "encryption key other than eciesNistP256",
            ));
        }
        Some(decode_compressed_point(r)?)
    } else {
        None
    };
    Ok(PublicKeys {
        verification_key,
        encryption_key,
    })
}

fn decode_attributes(r: &mut Reader<'_>) -> Result<SubjectAttributes, V2xError> {
    let pre = no_extensions(r, 7)?;
    if pre & 0x10 != 0 {
        return Err(V2xError::Unsupported("region in subject attributes"));
    }
    if pre & 0x02 != 0 {
        return Err(V2xError::Profile(
            "certIssuePermissions must be absent in a request",
        ));
    }
    if pre & 0x04 == 0 {
        return Err(V2xError::Profile("appPermissions must be present"));
    }
    let id = if pre & 0x40 != 0 {
        Some(decode_id(r, CertProfile::EtsiTs103097)?)
    } else {
        None
    };
    let validity = if pre & 0x20 != 0 {
        Some(decode_validity(r)?)
    } else {
        None
    };
    let assurance_level = if pre & 0x08 != 0 {
        Some(SubjectAssurance(r.u8()?))
    } else {
        None
    };
    let n = r.quantity()?;
    let mut app_permissions = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        app_permissions.push(decode_psid_ssp(r)?);
    }
    Ok(SubjectAttributes {
        id,
        validity,
        assurance_level,
        app_permissions,
    })
}

fn decode_shared(r: &mut Reader<'_>) -> Result<SharedAtRequest, V2xError> {
    no_extensions(r, 1)?;
    Ok(SharedAtRequest {
        ea_id: r.array()?,
        key_tag: r.array()?,
        certificate_format: r.u8()?,
        requested: decode_attributes(r)?,
    })
}

fn decode_ec_signature(r: &mut Reader<'_>) -> Result<EcSignature, V2xError> {
    match r.tag()? {
        0 => match crate::spdu::decode_data(rest(r)?)? {
            crate::spdu::Ieee1609Dot2Content::Encrypted(d) => Ok(EcSignature::Encrypted(d)),
            _ => Err(V2xError::Profile(
                "encryptedEcSignature is not encryptedData",
            )),
        },
        1 => Ok(EcSignature::Signed(EtsiSignedData::from_coer(rest(r)?)?)),
        _ => Err(V2xError::Invalid {
            offset: r.pos(),
            what: "unknown EcSignature alternative",
        }),
    }
}

/// An `InnerEcResponse` or `InnerAtResponse` whose codes `from_value`
/// reads: the certificate must be present exactly when the code is `ok`.
fn decode_response<C: PartialEq>(
    r: &mut Reader<'_>,
    bytes: &[u8],
    from_value: fn(u8) -> Option<C>,
    ok: C,
) -> Result<InnerResponse<C>, V2xError> {
    let present = no_extensions(r, 2)? & 0x40 != 0;
    let request_hash = r.array()?;
    let response_code =
        from_value(r.enumerated()?).ok_or(V2xError::Unsupported("unknown response code"))?;
    let certificate = if present {
        let (cert, used) =
            Certificate::decode_prefix(CertProfile::EtsiTs103097, &bytes[r.pos()..])?;
        r.take(used)?;
        Some(cert)
    } else {
        None
    };
    if (response_code == ok) != certificate.is_some() {
        return Err(V2xError::Profile(
            "the certificate must be present exactly when the response code is ok",
        ));
    }
    Ok(InnerResponse {
        request_hash,
        response_code,
        certificate,
    })
}
