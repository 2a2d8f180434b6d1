//! IEEE 1609.2 secured data (`Ieee1609Dot2Data`) as IEEE 1609.2.1 frames
//! its messages: unsecured, signed (`SignedData`), encrypted
//! (`EncryptedData`) and the signed certificate request
//! (`SignedCertificateRequest`), with a strict COER codec and the 1609.2
//! signing rule.
//!
//! ```text
//! Ieee1609Dot2Data ::= SEQUENCE { protocolVersion Uint8 (3), content CHOICE {
//!   unsecuredData Opaque, signedData SignedData, encryptedData EncryptedData,
//!   signedCertificateRequest Opaque, ... } }
//! SignedData ::= SEQUENCE { hashId, tbsData ToBeSignedData, signer, signature }
//! ToBeSignedData ::= SEQUENCE { payload SignedDataPayload { data Ieee1609Dot2Data
//!   (unsecuredData) }, headerInfo HeaderInfo { psid, generationTime? } }
//! SignedCertificateRequest ::= SEQUENCE { hashAlgorithmId, tbsRequest ScmsPdu,
//!   signer SignerIdentifier (self | certificate), signature }
//! ```
//!
//! Signatures are ECDSA P-256 over `SHA-256(SHA-256(tbs) ‖ SHA-256(signer))`
//! ([`signing_message`]): `tbs` is the COER of `tbsData` or of
//! `tbsRequest`, as received; `signer` the COER of the signing certificate,
//! or empty for a self-signed request. Only what trustca sends and accepts
//! is supported: SHA-256, a signer that is one explicit certificate (or
//! `self` for requests), an `x-only` `rSig`. `Time64` generation times are
//! TAI microseconds since 2004-01-01.

use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

use crate::V2xError;
use crate::cert::{CertProfile, Certificate, EcdsaP256Signature, RSigForm, decode_signature_at};
use crate::coer::{Reader, Writer};
use crate::encrypted::EncryptedData;
use crate::keys::{PublicKeyP256, V2xSigner, signing_message};

/// Largest secured data accepted by the decoders (a batch download entry
/// or request is a few hundred octets; a CRL is decoded by `crl`).
pub const MAX_SPDU_LEN: usize = 64 * 1024;

/// `Ieee1609Dot2Data.protocolVersion`.
const PROTOCOL_VERSION: u8 = 3;

/// The content of an `Ieee1609Dot2Data`, borrowed from its encoding.
#[derive(Debug)]
pub enum Ieee1609Dot2Content<'a> {
    /// `unsecuredData`: the octets it carries.
    Unsecured(&'a [u8]),
    /// `signedData`: decode the whole encoding with [`SignedSpdu::from_coer`].
    Signed,
    /// `encryptedData`.
    Encrypted(EncryptedData),
    /// `signedCertificateRequest`: the COER `SignedCertificateRequest`
    /// (decode it with `SignedCertificateRequest::from_coer`).
    SignedCertificateRequest(&'a [u8]),
}

/// Decodes the outer `Ieee1609Dot2Data` of `bytes`, strictly (no trailing
/// octets, canonical lengths, at most [`MAX_SPDU_LEN`]).
pub fn decode_data(bytes: &[u8]) -> Result<Ieee1609Dot2Content<'_>, V2xError> {
    let mut r = reader(bytes)?;
    let content = match r.tag()? {
        0 => Ieee1609Dot2Content::Unsecured(r.octets()?),
        1 => return Ok(Ieee1609Dot2Content::Signed),
        2 => {
            let rest = r.take(r.remaining())?;
            return Ok(Ieee1609Dot2Content::Encrypted(EncryptedData::from_coer(
                rest,
            )?));
        }
        3 => Ieee1609Dot2Content::SignedCertificateRequest(r.octets()?),
        _ => {
            return Err(V2xError::Unsupported(
                "Ieee1609Dot2Content other than unsecured, signed, encrypted or a signed certificate request",
            ));
        }
    };
    if r.remaining() != 0 {
        return Err(V2xError::TrailingBytes(r.remaining()));
    }
    Ok(content)
}

/// Reads the `protocolVersion` of an `Ieee1609Dot2Data`.
fn reader(bytes: &[u8]) -> Result<Reader<'_>, V2xError> {
    if bytes.len() > MAX_SPDU_LEN {
        return Err(V2xError::Limit("secured data longer than 64 KiB"));
    }
    let mut r = Reader::new(bytes);
    if r.u8()? != PROTOCOL_VERSION {
        return Err(V2xError::Invalid {
            offset: 0,
            what: "Ieee1609Dot2Data version is not 3",
        });
    }
    Ok(r)
}

/// `Ieee1609Dot2Data` `unsecuredData` holding `inner`.
pub fn unsecured_data(inner: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(PROTOCOL_VERSION);
    w.tag(0);
    w.octets(inner);
    w.buf
}

/// `Ieee1609Dot2Data` `encryptedData`.
pub fn encrypted_data(data: &EncryptedData) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(PROTOCOL_VERSION);
    w.tag(2);
    w.fixed(&data.to_coer());
    w.buf
}

/// `Ieee1609Dot2Data` `signedCertificateRequest` holding the COER of a
/// `SignedCertificateRequest`.
pub fn signed_certificate_request_data(request: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(PROTOCOL_VERSION);
    w.tag(3);
    w.octets(request);
    w.buf
}

/// Who signed: `self` (a request signed by the key it asks to certify) or
/// one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// `self`: only in certificate requests.
    SelfSigned,
    /// `certificate` with exactly one certificate.
    Certificate(Box<Certificate>),
}

impl Signer {
    /// The signer's part of the signing input: the certificate's COER, or
    /// nothing for `self`.
    fn signing_input(&self) -> &[u8] {
        match self {
            Signer::SelfSigned => &[],
            Signer::Certificate(c) => c.as_coer(),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            Signer::Certificate(c) => {
                w.tag(1);
                w.quantity(1);
                w.fixed(c.as_coer());
            }
            Signer::SelfSigned => {
                w.tag(2);
            }
        }
    }

    fn decode(r: &mut Reader<'_>, bytes: &[u8], allow_self: bool) -> Result<Self, V2xError> {
        let at = r.pos();
        match r.tag()? {
            1 => {
                let at = r.pos();
                if r.quantity()? != 1 {
                    return Err(V2xError::Invalid {
                        offset: at,
                        what: "signer must be exactly one certificate",
                    });
                }
                let (cert, used) =
                    Certificate::decode_prefix(CertProfile::Ieee1609Dot2, &bytes[r.pos()..])?;
                r.take(used)?;
                Ok(Signer::Certificate(Box::new(cert)))
            }
            2 if allow_self => Ok(Signer::SelfSigned),
            2 => Err(V2xError::Invalid {
                offset: at,
                what: "signer self outside a certificate request",
            }),
            _ => Err(V2xError::Unsupported("signer other than a certificate")),
        }
    }
}

pub(crate) fn encode_signature(w: &mut Writer, sig: &[u8; 64]) {
    w.tag(0); // ecdsaNistP256Signature
    w.tag(0); // rSig x-only
    w.fixed(sig);
}

pub(crate) fn decode_x_only_signature(r: &mut Reader<'_>) -> Result<EcdsaP256Signature, V2xError> {
    let signature = decode_signature_at(r)?;
    if signature.r_form != RSigForm::XOnly {
        return Err(V2xError::Unsupported("rSig other than x-only"));
    }
    Ok(signature)
}

/// Checks an ECDSA P-256 signature over the 1609.2 signing input.
pub(crate) fn verify_with(
    key: &PublicKeyP256,
    tbs: &[u8],
    signer: &[u8],
    signature: &EcdsaP256Signature,
) -> Result<(), V2xError> {
    let msg = signing_message(tbs, signer);
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&signature.r);
    sig[32..].copy_from_slice(&signature.s);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &key.uncompressed()?)
        .verify(&msg, &sig)
        .map_err(|_| V2xError::BadSignature)
}

/// A signed `Ieee1609Dot2Data` whose payload is `unsecuredData`, signed by
/// one certificate: the IEEE 1609.2.1 `Ieee1609Dot2Data-Signed` SPDUs and
/// the 1609.2 `SecuredCrl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSpdu {
    payload_range: std::ops::Range<usize>,
    psid: u64,
    generation_time: Option<u64>,
    signer: Certificate,
    signature: EcdsaP256Signature,
    encoded: Vec<u8>,
    tbs_range: std::ops::Range<usize>,
}

/// `tbsData` around `payload`.
fn encode_tbs_data(w: &mut Writer, payload: &[u8], psid: u64, generation_time: Option<u64>) {
    w.u8(0x40); // SignedDataPayload: data present, no extDataHash
    w.fixed(&unsecured_data(payload));
    // HeaderInfo: extension bit, then generationTime .. encryptionKey.
    w.u8(if generation_time.is_some() { 0x40 } else { 0 });
    w.uint(psid);
    if let Some(t) = generation_time {
        w.fixed(&t.to_be_bytes());
    }
}

impl SignedSpdu {
    /// Signs `payload` (carried as `unsecuredData`) with header `psid` and
    /// `generation_time` (TAI microseconds since 2004, or none), by
    /// `certificate` and its key. The result is decoded before it is
    /// returned; call [`SignedSpdu::verify`] to check the signature too.
    pub fn sign(
        payload: &[u8],
        psid: u64,
        generation_time: Option<u64>,
        certificate: &Certificate,
        key: &dyn V2xSigner,
    ) -> Result<Self, V2xError> {
        let mut tbs = Writer::new();
        encode_tbs_data(&mut tbs, payload, psid, generation_time);
        let sig = key.sign_digest_input(&signing_message(&tbs.buf, certificate.as_coer()))?;
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        w.tag(1); // signedData
        w.u8(0); // hashId sha256
        w.fixed(&tbs.buf);
        Signer::Certificate(Box::new(certificate.clone())).encode(&mut w);
        encode_signature(&mut w, &sig);
        // Decoded (cheap) but not verified here: a verify costs four
        // signatures' time on every ticket response; callers that want it
        // (the CRL signer) verify.
        Self::from_coer_limited(&w.buf, usize::MAX)
    }

    /// Strict COER decoding; the signature is not checked here (call
    /// [`SignedSpdu::verify`]).
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        Self::from_coer_limited(bytes, MAX_SPDU_LEN)
    }

    /// [`SignedSpdu::from_coer`] with a larger size limit (signed CRLs).
    pub(crate) fn from_coer_limited(bytes: &[u8], limit: usize) -> Result<Self, V2xError> {
        if bytes.len() > limit {
            return Err(V2xError::Limit("signed data longer than its limit"));
        }
        let mut r = Reader::with_limits(bytes, limit, crate::crl::MAX_CRL_ENTRIES);
        if r.u8()? != PROTOCOL_VERSION {
            return Err(V2xError::Invalid {
                offset: 0,
                what: "Ieee1609Dot2Data version is not 3",
            });
        }
        if r.tag()? != 1 {
            return Err(V2xError::Unsupported("secured data that is not signedData"));
        }
        if r.enumerated()? != 0 {
            return Err(V2xError::Unsupported("hash other than SHA-256"));
        }
        let tbs_start = r.pos();
        if r.preamble(3)? != 0x40 {
            return Err(V2xError::Unsupported(
                "SignedDataPayload other than data alone",
            ));
        }
        let at = r.pos();
        if r.u8()? != PROTOCOL_VERSION {
            return Err(V2xError::Invalid {
                offset: at,
                what: "inner Ieee1609Dot2Data version is not 3",
            });
        }
        if r.tag()? != 0 {
            return Err(V2xError::Unsupported("payload that is not unsecuredData"));
        }
        let payload = r.octets()?;
        let payload_end = r.pos();
        let payload_range = payload_end - payload.len()..payload_end;
        let generation_time = match r.preamble(7)? {
            0 => None,
            0x40 => Some(()),
            _ => {
                return Err(V2xError::Profile(
                    "the header carries only psid and generationTime",
                ));
            }
        };
        let psid = r.uint()?;
        let generation_time = match generation_time {
            Some(()) => Some(u64::from_be_bytes(r.array()?)),
            None => None,
        };
        let tbs_range = tbs_start..r.pos();
        let Signer::Certificate(signer) = Signer::decode(&mut r, bytes, false)? else {
            return Err(V2xError::Unsupported("signer other than a certificate"));
        };
        let signature = decode_x_only_signature(&mut r)?;
        if r.remaining() != 0 {
            return Err(V2xError::TrailingBytes(r.remaining()));
        }
        Ok(Self {
            payload_range,
            psid,
            generation_time,
            signer: *signer,
            signature,
            encoded: bytes.to_vec(),
            tbs_range,
        })
    }

    /// Checks the signature with the carried certificate's key (not the
    /// certificate's own chain: the caller decides whom it trusts).
    pub fn verify(&self) -> Result<(), V2xError> {
        verify_with(
            &self.signer.tbs().verification_key,
            &self.encoded[self.tbs_range.clone()],
            self.signer.as_coer(),
            &self.signature,
        )
    }

    /// The octets carried as `unsecuredData`.
    pub fn payload(&self) -> &[u8] {
        &self.encoded[self.payload_range.clone()]
    }

    /// `headerInfo.psid`.
    pub fn psid(&self) -> u64 {
        self.psid
    }

    /// `headerInfo.generationTime` (TAI microseconds since 2004).
    pub fn generation_time(&self) -> Option<u64> {
        self.generation_time
    }

    /// The signing certificate.
    pub fn signer(&self) -> &Certificate {
        &self.signer
    }

    /// The COER encoding.
    pub fn as_coer(&self) -> &[u8] {
        &self.encoded
    }

    /// The COER of `tbsData`, as received.
    pub fn tbs_coer(&self) -> &[u8] {
        &self.encoded[self.tbs_range.clone()]
    }
}

/// IEEE 1609.2.1 `SignedCertificateRequest`: a request (`tbsRequest`, the
/// COER `ScmsPdu`) signed by the key it asks to certify (`self`) or by an
/// enrolment certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCertificateRequest {
    tbs_range: std::ops::Range<usize>,
    signer: Signer,
    signature: EcdsaP256Signature,
    encoded: Vec<u8>,
}

impl SignedCertificateRequest {
    /// Signs `tbs_request` (a COER `ScmsPdu`) by `signer` with `key`; for
    /// [`Signer::SelfSigned`] `key` must be the key being certified.
    pub fn sign(tbs_request: &[u8], signer: Signer, key: &dyn V2xSigner) -> Result<Self, V2xError> {
        let sig = key.sign_digest_input(&signing_message(tbs_request, signer.signing_input()))?;
        let mut w = Writer::new();
        w.u8(0); // hashAlgorithmId sha256
        w.fixed(tbs_request);
        signer.encode(&mut w);
        encode_signature(&mut w, &sig);
        Ok(Self {
            tbs_range: 1..1 + tbs_request.len(),
            signer,
            signature: EcdsaP256Signature {
                r_form: RSigForm::XOnly,
                r: sig[..32].try_into().map_err(|_| V2xError::Signing("r"))?,
                s: sig[32..].try_into().map_err(|_| V2xError::Signing("s"))?,
            },
            encoded: w.buf,
        })
    }

    /// Strict COER decoding. `tbs_len` tells how long the `tbsRequest` at
    /// the start is: the caller decodes the `ScmsPdu` first
    /// (`ScmsPdu::decode_prefix`), since it is not length-prefixed.
    pub fn from_coer(
        bytes: &[u8],
        tbs_len: impl FnOnce(&[u8]) -> Result<usize, V2xError>,
    ) -> Result<Self, V2xError> {
        if bytes.len() > MAX_SPDU_LEN {
            return Err(V2xError::Limit("certificate request longer than 64 KiB"));
        }
        let mut r = Reader::new(bytes);
        if r.enumerated()? != 0 {
            return Err(V2xError::Unsupported("hash other than SHA-256"));
        }
        let used = tbs_len(&bytes[1..])?;
        r.take(used)?;
        let signer = Signer::decode(&mut r, bytes, true)?;
        let signature = decode_x_only_signature(&mut r)?;
        if r.remaining() != 0 {
            return Err(V2xError::TrailingBytes(r.remaining()));
        }
        Ok(Self {
            tbs_range: 1..1 + used,
            signer,
            signature,
            encoded: bytes.to_vec(),
        })
    }

    /// Checks the signature: with the signer certificate's key, or for a
    /// self-signed request with `requested_key` (the key in its `tbsCert`).
    pub fn verify(&self, requested_key: &PublicKeyP256) -> Result<(), V2xError> {
        let key = match &self.signer {
            Signer::SelfSigned => requested_key,
            Signer::Certificate(c) => &c.tbs().verification_key,
        };
        verify_with(
            key,
            self.tbs_request(),
            self.signer.signing_input(),
            &self.signature,
        )
    }

    /// The COER `tbsRequest`.
    pub fn tbs_request(&self) -> &[u8] {
        &self.encoded[self.tbs_range.clone()]
    }

    /// Who signed.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The COER encoding.
    pub fn as_coer(&self) -> &[u8] {
        &self.encoded
    }
}
