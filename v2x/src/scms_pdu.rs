//! IEEE 1609.2.1 `ScmsPdu` messages between a vehicle (end entity, EE),
//! the enrolment CA (ECA), the registration authority (RA) and the
//! pseudonym CA (ACA), with a strict COER codec: what trustca sends and
//! accepts of `ee-ra.asn`, `eca-ee.asn` and `aca-ee.asn` (IEEE
//! 1609.2.1-2020, `shared/spec/v2x-asn1/ieee1609dot2dot1/`).
//!
//! ```text
//! ScmsPdu ::= SEQUENCE { version Uint8 (2), content CHOICE {
//!   aca-ee [0], aca-la, aca-ma, aca-ra, cert, eca-ee [5], ee-ma, ee-ra [7], ... } }
//! EeRaInterfacePdu: eeRaCertRequest [0], raEeCertAck [1], raEeCertInfo,
//!   eeRaDownloadRequest [3], eeRaSuccessorEnrollmentCertRequest, ...
//! EcaEeInterfacePdu: eeEcaCertRequest [0], ecaEeCertResponse [1], ...
//! AcaEeInterfacePdu: acaEeCertResponse [0], ...
//! ```
//!
//! The decoder is strict: every message is re-encoded and must equal its
//! input, so there is exactly one encoding of what was accepted. Extension
//! additions (the `...` of each SEQUENCE) are refused: none is defined in
//! the 2020 modules.

use crate::V2xError;
use crate::cert::{CertProfile, Certificate, ToBeSigned, decode_tbs_at, encode_tbs_at};
use crate::coer::{Reader, Writer};
use crate::keys::PublicKeyP256;
use crate::validity::Time32;

/// `SecurityMgmtPsid`: the PSID of SCMS management messages.
pub const SECURITY_MGMT_PSID: u64 = 35;
/// `ScmsPdu.version`.
const SCMS_PDU_VERSION: u8 = 2;
/// `version` of the 1609.2.1 messages that carry one.
const MESSAGE_VERSION: u8 = 2;
/// Longest `EeRaDownloadRequest.filename`.
pub const MAX_FILENAME_LEN: usize = 255;
/// Most certificates in an `ecaCertChain`.
const MAX_CHAIN: usize = 8;

/// The COER `ScmsSsp` of an ECA (`eca`, `EcaSsp { version 2 }`).
pub const ECA_SSP: [u8; 3] = [0x84, 0x00, 0x02];
/// The COER `ScmsSsp` of an ACA (`aca`, `AcaSsp { version 2 }`).
pub const ACA_SSP: [u8; 3] = [0x85, 0x00, 0x02];
/// The COER `ScmsSsp` of an RA (`ra`, `RaSsp { version 2 }`).
pub const RA_SSP: [u8; 3] = [0x8b, 0x00, 0x02];

/// `CertificateType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateType {
    /// `explicit`: the only type trustca issues.
    Explicit,
    /// `implicit`: decoded, refused by the authorities.
    Implicit,
}

/// How the response to an authorization-certificate request is keyed
/// (`AdditionalParams`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdditionalParams {
    /// `unified`: butterfly keys with one caterpillar key for signing and
    /// encryption, and the `aes128` expansion key.
    Unified([u8; 16]),
    /// `compactUnified` with its `aes128` expansion key.
    CompactUnified([u8; 16]),
    /// `original`: separate signing and encryption caterpillars.
    Original {
        /// `signingExpansion`.
        signing_expansion: [u8; 16],
        /// `encryptionKey` (the encryption caterpillar).
        encryption_key: PublicKeyP256,
        /// `encryptionExpansion`.
        encryption_expansion: [u8; 16],
    },
    /// `encryptionKey`: no butterfly keys; one response encryption key.
    EncryptionKey(PublicKeyP256),
}

/// `EeRaCertRequest`: the vehicle asks the RA for authorization tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EeRaCertRequest {
    /// `generationTime`.
    pub generation_time: Time32,
    /// `type`.
    pub cert_type: CertificateType,
    /// `tbsCert`: the requested span, permissions and caterpillar key.
    pub tbs_cert: ToBeSigned,
    /// `additionalParams`.
    pub additional_params: Option<AdditionalParams>,
}

/// `RaEeCertAck`: the RA's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaEeCertAck {
    /// `generationTime`.
    pub generation_time: Time32,
    /// `requestHash`: HashedId8 of the request SPDU as received.
    pub request_hash: [u8; 8],
    /// `firstI`: the i-value of the first batch.
    pub first_i: Option<u16>,
    /// `nextDlTime`: when to download.
    pub next_dl_time: Time32,
}

/// `EeRaDownloadRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EeRaDownloadRequest {
    /// `generationTime`.
    pub generation_time: Time32,
    /// `filename`, `<requestHash hex>_<i hex>.zip`.
    pub filename: String,
}

/// `EeEcaCertRequest`: the vehicle asks for an enrolment certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EeEcaCertRequest {
    /// `generationTime`.
    pub generation_time: Time32,
    /// `type`.
    pub cert_type: CertificateType,
    /// `tbsCert`: the new key and the requested permissions.
    pub tbs_cert: ToBeSigned,
    /// `canonicalId`.
    pub canonical_id: Option<String>,
}

/// `EcaEeCertResponse`: the enrolment certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcaEeCertResponse {
    /// `requestHash`: HashedId8 of the request SPDU as received.
    pub request_hash: [u8; 8],
    /// `ecaCertChain`: the ECA, then up to the root.
    pub eca_cert_chain: Vec<Certificate>,
    /// `certificate`: the enrolment certificate.
    pub certificate: Certificate,
    /// `privateKeyInfo` (implicit certificates only).
    pub private_key_info: Option<[u8; 32]>,
}

/// `AcaEeCertResponse`: one authorization ticket for the vehicle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcaEeCertResponse {
    /// `generationTime`.
    pub generation_time: Time32,
    /// `certificate`: the ticket.
    pub certificate: Certificate,
    /// `privateKeyInfo`: the ACA's contribution `c` to the private key.
    pub private_key_info: Option<[u8; 32]>,
}

/// The `ScmsPdu`s trustca sends and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum ScmsPdu {
    /// `ee-ra` `eeRaCertRequest`.
    EeRaCertRequest(EeRaCertRequest),
    /// `ee-ra` `raEeCertAck`.
    RaEeCertAck(RaEeCertAck),
    /// `ee-ra` `eeRaDownloadRequest`.
    EeRaDownloadRequest(EeRaDownloadRequest),
    /// `eca-ee` `eeEcaCertRequest`.
    EeEcaCertRequest(EeEcaCertRequest),
    /// `eca-ee` `ecaEeCertResponse`.
    EcaEeCertResponse(EcaEeCertResponse),
    /// `aca-ee` `acaEeCertResponse`.
    AcaEeCertResponse(AcaEeCertResponse),
}

const ACA_EE: u8 = 0;
const ECA_EE: u8 = 5;
const EE_RA: u8 = 7;

impl ScmsPdu {
    /// The COER encoding.
    pub fn to_coer(&self) -> Vec<u8> {
        self.encode(None)
    }

    /// The encoding, with `tbs_raw` (the octets a request's `tbsCert` was
    /// received as) in place of encoding `tbsCert` anew.
    fn encode(&self, tbs_raw: Option<&[u8]>) -> Vec<u8> {
        let tbs_at = |w: &mut Writer, tbs: &ToBeSigned| match tbs_raw {
            Some(raw) => w.fixed(raw),
            None => encode_tbs_at(w, tbs),
        };
        let mut w = Writer::new();
        w.u8(SCMS_PDU_VERSION);
        match self {
            ScmsPdu::EeRaCertRequest(m) => {
                w.tag(EE_RA);
                w.tag(0);
                encode_ee_ra_cert_request(&mut w, m, tbs_at);
            }
            ScmsPdu::RaEeCertAck(m) => {
                w.tag(EE_RA);
                w.tag(1);
                w.u8(if m.first_i.is_some() { 0x40 } else { 0 });
                w.u8(MESSAGE_VERSION);
                w.u32(m.generation_time.0);
                w.fixed(&m.request_hash);
                if let Some(i) = m.first_i {
                    w.u16(i);
                }
                w.u32(m.next_dl_time.0);
            }
            ScmsPdu::EeRaDownloadRequest(m) => {
                w.tag(EE_RA);
                w.tag(3);
                w.u8(0);
                w.u32(m.generation_time.0);
                w.octets(m.filename.as_bytes());
            }
            ScmsPdu::EeEcaCertRequest(m) => {
                w.tag(ECA_EE);
                w.tag(0);
                w.u8(if m.canonical_id.is_some() { 0x40 } else { 0 });
                w.u8(MESSAGE_VERSION);
                w.u32(m.generation_time.0);
                encode_cert_type(&mut w, m.cert_type);
                tbs_at(&mut w, &m.tbs_cert);
                if let Some(id) = &m.canonical_id {
                    w.octets(id.as_bytes());
                }
            }
            ScmsPdu::EcaEeCertResponse(m) => {
                w.tag(ECA_EE);
                w.tag(1);
                w.u8(if m.private_key_info.is_some() {
                    0x40
                } else {
                    0
                });
                w.u8(MESSAGE_VERSION);
                w.fixed(&m.request_hash);
                w.quantity(m.eca_cert_chain.len());
                for c in &m.eca_cert_chain {
                    w.fixed(c.as_coer());
                }
                w.fixed(m.certificate.as_coer());
                if let Some(k) = &m.private_key_info {
                    w.fixed(k); // OCTET STRING (SIZE (32)): no length
                }
            }
            ScmsPdu::AcaEeCertResponse(m) => {
                w.tag(ACA_EE);
                w.tag(0);
                w.u8(if m.private_key_info.is_some() {
                    0x40
                } else {
                    0
                });
                w.u8(MESSAGE_VERSION);
                w.u32(m.generation_time.0);
                w.fixed(m.certificate.as_coer());
                if let Some(k) = &m.private_key_info {
                    w.fixed(k); // OCTET STRING (SIZE (32)): no length
                }
            }
        }
        w.buf
    }

    /// Decodes exactly one `ScmsPdu` (no trailing octets).
    pub fn from_coer(bytes: &[u8]) -> Result<Self, V2xError> {
        let (pdu, used) = Self::decode_prefix(bytes)?;
        if used != bytes.len() {
            return Err(V2xError::TrailingBytes(bytes.len() - used));
        }
        Ok(pdu)
    }

    /// Decodes the `ScmsPdu` at the start of `bytes` (a `tbsRequest` is
    /// not length-prefixed) and returns how many octets it took. The
    /// decoded message must re-encode to exactly those octets.
    pub fn decode_prefix(bytes: &[u8]) -> Result<(Self, usize), V2xError> {
        let bytes = &bytes[..bytes.len().min(crate::spdu::MAX_SPDU_LEN)];
        let mut r = Reader::new(bytes);
        if r.u8()? != SCMS_PDU_VERSION {
            return Err(invalid(0, "ScmsPdu version is not 2"));
        }
        let mut tbs_raw: Option<&[u8]> = None;
        let pdu = match (r.tag()?, r.tag()?) {
            (EE_RA, 0) => {
                let (m, raw) = decode_ee_ra_cert_request(&mut r)?;
                tbs_raw = Some(raw);
                ScmsPdu::EeRaCertRequest(m)
            }
            (EE_RA, 1) => {
                let pre = extensible(&mut r, 2)?;
                version(&mut r)?;
                let generation_time = Time32(r.u32()?);
                let request_hash = r.array()?;
                let first_i = if pre & 0x40 != 0 {
                    Some(r.u16()?)
                } else {
                    None
                };
                ScmsPdu::RaEeCertAck(RaEeCertAck {
                    generation_time,
                    request_hash,
                    first_i,
                    next_dl_time: Time32(r.u32()?),
                })
            }
            (EE_RA, 3) => {
                extensible(&mut r, 1)?;
                let generation_time = Time32(r.u32()?);
                let at = r.pos();
                let raw = r.octets()?;
                if raw.len() > MAX_FILENAME_LEN {
                    return Err(invalid(at, "filename longer than 255 octets"));
                }
                let filename = std::str::from_utf8(raw)
                    .map_err(|_| invalid(at, "filename is not UTF-8"))?
                    .to_owned();
                ScmsPdu::EeRaDownloadRequest(EeRaDownloadRequest {
                    generation_time,
                    filename,
                })
            }
            (ECA_EE, 0) => {
                let pre = extensible(&mut r, 2)?;
                version(&mut r)?;
                let generation_time = Time32(r.u32()?);
                let cert_type = decode_cert_type(&mut r)?;
                let (tbs_cert, raw) = decode_tbs_at(&mut r)?;
                tbs_raw = Some(raw);
                let canonical_id = if pre & 0x40 != 0 {
                    let at = r.pos();
                    let raw = r.octets()?;
                    if !raw.is_ascii() {
                        return Err(invalid(at, "canonicalId is not IA5String"));
                    }
                    Some(String::from_utf8_lossy(raw).into_owned())
                } else {
                    None
                };
                ScmsPdu::EeEcaCertRequest(EeEcaCertRequest {
                    generation_time,
                    cert_type,
                    tbs_cert,
                    canonical_id,
                })
            }
            (ECA_EE, 1) => {
                let pre = extensible(&mut r, 2)?;
                version(&mut r)?;
                let request_hash = r.array()?;
                let at = r.pos();
                let n = r.quantity()?;
                if n > MAX_CHAIN {
                    return Err(invalid(at, "ecaCertChain longer than 8"));
                }
                let mut eca_cert_chain = Vec::with_capacity(n);
                for _ in 0..n {
                    eca_cert_chain.push(certificate(&mut r, bytes)?);
                }
                let certificate = certificate(&mut r, bytes)?;
                ScmsPdu::EcaEeCertResponse(EcaEeCertResponse {
                    request_hash,
                    eca_cert_chain,
                    certificate,
                    private_key_info: private_key_info(&mut r, pre)?,
                })
            }
            (ACA_EE, 0) => {
                let pre = extensible(&mut r, 2)?;
                version(&mut r)?;
                let generation_time = Time32(r.u32()?);
                let certificate = certificate(&mut r, bytes)?;
                ScmsPdu::AcaEeCertResponse(AcaEeCertResponse {
                    generation_time,
                    certificate,
                    private_key_info: private_key_info(&mut r, pre)?,
                })
            }
            _ => {
                return Err(V2xError::Unsupported(
                    "ScmsPdu other than the EE-RA, EE-ECA and ACA-EE messages",
                ));
            }
        };
        let used = r.pos();
        if pdu.encode(tbs_raw) != bytes[..used] {
            return Err(V2xError::NonCanonical {
                offset: 0,
                what: "re-encoding of the ScmsPdu differs from the input",
            });
        }
        Ok((pdu, used))
    }
}

fn invalid(offset: usize, what: &'static str) -> V2xError {
    V2xError::Invalid { offset, what }
}

/// The preamble of an extensible SEQUENCE with `bits` bits (extension bit
/// first); extension additions are refused.
fn extensible(r: &mut Reader<'_>, bits: u32) -> Result<u8, V2xError> {
    let pre = r.preamble(bits)?;
    if pre & 0x80 != 0 {
        return Err(V2xError::Unsupported(
            "extension additions in an SCMS message",
        ));
    }
    Ok(pre)
}

fn version(r: &mut Reader<'_>) -> Result<(), V2xError> {
    let at = r.pos();
    if r.u8()? != MESSAGE_VERSION {
        return Err(invalid(at, "message version is not 2"));
    }
    Ok(())
}

fn certificate(r: &mut Reader<'_>, bytes: &[u8]) -> Result<Certificate, V2xError> {
    let (cert, used) = Certificate::decode_prefix(CertProfile::Ieee1609Dot2, &bytes[r.pos()..])?;
    r.take(used)?;
    Ok(cert)
}

fn private_key_info(r: &mut Reader<'_>, pre: u8) -> Result<Option<[u8; 32]>, V2xError> {
    if pre & 0x40 == 0 {
        return Ok(None);
    }
    r.array().map(Some)
}

fn encode_cert_type(w: &mut Writer, t: CertificateType) {
    w.u8(match t {
        CertificateType::Explicit => 0,
        CertificateType::Implicit => 1,
    });
}

fn decode_cert_type(r: &mut Reader<'_>) -> Result<CertificateType, V2xError> {
    match r.enumerated()? {
        0 => Ok(CertificateType::Explicit),
        1 => Ok(CertificateType::Implicit),
        _ => Err(V2xError::Unsupported("CertificateType extension")),
    }
}

fn encode_ee_ra_cert_request(
    w: &mut Writer,
    m: &EeRaCertRequest,
    tbs_at: impl Fn(&mut Writer, &ToBeSigned),
) {
    w.u8(if m.additional_params.is_some() {
        0x40
    } else {
        0
    });
    w.u8(MESSAGE_VERSION);
    w.u32(m.generation_time.0);
    encode_cert_type(w, m.cert_type);
    tbs_at(w, &m.tbs_cert);
    match &m.additional_params {
        None => {}
        Some(AdditionalParams::Original {
            signing_expansion,
            encryption_key,
            encryption_expansion,
        }) => {
            w.tag(0);
            expansion(w, signing_expansion);
            encryption_key_at(w, encryption_key);
            expansion(w, encryption_expansion);
        }
        Some(AdditionalParams::Unified(k)) => {
            w.tag(1);
            expansion(w, k);
        }
        Some(AdditionalParams::CompactUnified(k)) => {
            w.tag(2);
            expansion(w, k);
        }
        Some(AdditionalParams::EncryptionKey(k)) => {
            w.tag(3);
            encryption_key_at(w, k);
        }
    }
}

fn expansion(w: &mut Writer, k: &[u8; 16]) {
    w.tag(0); // aes128
    w.fixed(k);
}

/// `PublicEncryptionKey { aes128Ccm, eciesNistP256 compressed }`.
fn encryption_key_at(w: &mut Writer, k: &PublicKeyP256) {
    w.u8(0);
    w.tag(0);
    let c = k.compressed();
    w.tag(c[0]);
    w.fixed(&c[1..]);
}

fn decode_expansion(r: &mut Reader<'_>) -> Result<[u8; 16], V2xError> {
    match r.tag()? {
        0 => r.array(),
        _ => Err(V2xError::Unsupported(
            "ButterflyExpansion other than aes128",
        )),
    }
}

fn decode_encryption_key(r: &mut Reader<'_>) -> Result<PublicKeyP256, V2xError> {
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
    let at = r.pos();
    let odd = match r.tag()? {
        2 => false,
        3 => true,
        _ => return Err(invalid(at, "encryption key is not a compressed point")),
    };
    let x: [u8; 32] = r.array()?;
    PublicKeyP256::from_x(&x, odd)
}

fn decode_ee_ra_cert_request<'a>(
    r: &mut Reader<'a>,
) -> Result<(EeRaCertRequest, &'a [u8]), V2xError> {
    let pre = extensible(r, 2)?;
    version(r)?;
    let generation_time = Time32(r.u32()?);
    let cert_type = decode_cert_type(r)?;
    let (tbs_cert, tbs_raw) = decode_tbs_at(r)?;
    let additional_params = if pre & 0x40 != 0 {
        Some(match r.tag()? {
            0 => AdditionalParams::Original {
                signing_expansion: decode_expansion(r)?,
                encryption_key: decode_encryption_key(r)?,
                encryption_expansion: decode_expansion(r)?,
            },
            1 => AdditionalParams::Unified(decode_expansion(r)?),
            2 => AdditionalParams::CompactUnified(decode_expansion(r)?),
            3 => AdditionalParams::EncryptionKey(decode_encryption_key(r)?),
            _ => return Err(V2xError::Unsupported("AdditionalParams extension")),
        })
    } else {
        None
    };
    Ok((
        EeRaCertRequest {
            generation_time,
            cert_type,
            tbs_cert,
            additional_params,
        },
        tbs_raw,
    ))
}
