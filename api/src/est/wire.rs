//! EST on the wire: reading bounded request bodies, the PKCS#10 CSR in
//! base64 and its subject, the certs-only CMS and CsrAttrs answers in DER,
//! and the plain-text refusals.

use super::*;

/// A request body, at most [`MAX_BODY_BYTES`], within [`REQUEST_READ_TIMEOUT`].
pub async fn read_body(headers: &hyper::HeaderMap, body: Incoming) -> Result<Bytes, EstError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Too large to be worth reading to its end: answer at once.
    if declared.is_some_and(|n| n > (MAX_BODY_BYTES + DRAIN_BYTES) as u64) {
        return Err(EstError::TooLarge);
    }
    tokio::time::timeout(REQUEST_READ_TIMEOUT, read_limited(body))
        .await
        .map_err(|_| EstError::Timeout)?
}

/// Bytes past [`MAX_BODY_BYTES`] that are still read (and dropped) before
/// answering 413. Over HTTP/2, answering while the client still sends
/// makes the server reset the stream, and some clients then report a
/// stream error instead of the 413; a body this small is read to its end.
pub(super) const DRAIN_BYTES: usize = 1024 * 1024;

pub(super) async fn read_limited(mut body: Incoming) -> Result<Bytes, EstError> {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| EstError::BadRequest("the request body could not be read".into()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > MAX_BODY_BYTES + DRAIN_BYTES {
            break;
        }
        if seen <= MAX_BODY_BYTES {
            kept.extend_from_slice(&data);
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(EstError::TooLarge);
    }
    Ok(Bytes::from(kept))
}

/// The request's media type, without parameters (empty when absent).
pub fn media_type(request: &Parts) -> &str {
    request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .unwrap_or_default()
}

/// The DER PKCS#10 of an enrollment request: `application/pkcs10`, base64.
pub(super) fn pkcs10(request: &Parts, body: Result<Bytes, EstError>) -> Result<Vec<u8>, EstError> {
    let media_type = media_type(request);
    if !media_type.eq_ignore_ascii_case("application/pkcs10") {
        return Err(EstError::BadRequest(format!(
            "the content type must be application/pkcs10, not {}",
            if media_type.is_empty() {
                "missing".to_owned()
            } else {
                printable(media_type)
            }
        )));
    }
    decode_base64(&body?)
}

/// Base64 (RFC 4648 alphabet, padding optional), ignoring whitespace and
/// line breaks as RFC 7030 clients send them.
pub(super) fn decode_base64(body: &[u8]) -> Result<Vec<u8>, EstError> {
    const TOLERANT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(EstError::BadRequest(
            "the request body is empty: send a base64 DER PKCS#10".into(),
        ));
    }
    TOLERANT.decode(&compact).map_err(|_| {
        EstError::BadRequest("the request body is not base64 (send a base64 DER PKCS#10)".into())
    })
}

/// What the CSR subject and attributes say about the device. The engine
/// verifies the CSR's signature; nothing here is copied into certificates
/// except through the validated device attributes.
#[derive(Debug, Default)]
pub(super) struct CsrSubject {
    pub(super) organization: Option<String>,
    pub(super) common_name: Option<String>,
    pub(super) serial_number: Option<String>,
    pub(super) firmware_version: Option<String>,
    pub(super) tpm_attestation: Option<TpmKeyAttestation>,
}

impl CsrSubject {
    pub(super) fn read(der: &[u8]) -> Result<Self, EstError> {
        let bad = |m: &str| EstError::BadRequest(format!("invalid CSR: {m}"));
        let (rest, csr) = X509CertificationRequest::from_der(der)
            .map_err(|_| bad("not a DER PKCS#10 certification request"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the request"));
        }
        let info = &csr.certification_request_info;
        let one = |values: Vec<&x509_parser::x509::AttributeTypeAndValue<'_>>,
                   name: &str|
         -> Result<Option<String>, EstError> {
            match values.as_slice() {
                [] => Ok(None),
                [v] => v
                    .as_str()
                    .map(|s| Some(s.to_owned()))
                    .map_err(|_| bad(&format!("the subject's {name} is not a string"))),
                _ => Err(bad(&format!("the subject names {name} more than once"))),
            }
        };
        let subject = &info.subject;
        // x509-parser keeps only the header of attributes it does not know;
        // the attributes are read with x509-cert's decoder instead.
        let request = x509_cert::request::CertReq::from_der(der)
            .map_err(|_| bad("not a DER PKCS#10 certification request"))?;
        let mut firmware_version = None;
        let mut tpm_attestation = None;
        for attribute in request.info.attributes.iter() {
            if attribute.oid == attestation::AT_TPM_ATTESTATION {
                if tpm_attestation.is_some() {
                    return Err(bad("the TPM attestation attribute appears twice"));
                }
                tpm_attestation = Some(attestation::decode_attribute(attribute.values.as_slice())?);
                continue;
            }
            if attribute.oid != AT_FIRMWARE_VERSION {
                continue;
            }
            if firmware_version.is_some() {
                return Err(bad("the firmware version attribute appears twice"));
            }
            firmware_version =
                Some(firmware_value(attribute.values.as_slice()).ok_or_else(|| {
                    bad("the firmware version attribute must hold one UTF8String")
                })?);
        }
        Ok(Self {
            organization: one(subject.iter_organization().collect(), "O")?,
            common_name: one(subject.iter_common_name().collect(), "CN")?,
            serial_number: one(
                subject
                    .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
                    .collect(),
                "serialNumber",
            )?,
            firmware_version,
            tpm_attestation,
        })
    }
}

/// The one string value of an attribute.
pub(super) fn firmware_value(values: &[Any]) -> Option<String> {
    let [value] = values else {
        return None;
    };
    let text = match value.tag() {
        der::Tag::Utf8String | der::Tag::PrintableString | der::Tag::Ia5String => {
            std::str::from_utf8(value.value()).ok()?
        }
        _ => return None,
    };
    Some(text.to_owned())
}

/// The evidence a certificate's trust-level extension records, as request
/// items (a renewal evaluates it again under the current policy); a
/// recorded type outside the vocabulary names itself.
pub(super) fn evidence_of(basis: &[EvaluationBasis]) -> Result<Vec<EvidenceItem>, ModelError> {
    basis
        .iter()
        .map(|b| {
            Ok(EvidenceItem {
                kind: b.evidence.parse()?,
                scheme: b.scheme.clone(),
                value: b.result.clone(),
                evaluated_at: b
                    .evaluated_at
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A certs-only CMS SignedData (RFC 5652 / RFC 7030 4.1.3: no signers, no
/// content) holding `certs` (DER), itself DER.
pub fn certs_only(certs: &[Vec<u8>]) -> Result<Vec<u8>, der::Error> {
    let path = certs
        .iter()
        .map(|d| x509_cert::Certificate::from_der(d))
        .collect::<Result<Vec<_>, _>>()?;
    let mut der = cms::content_info::ContentInfo::try_from(path)?.to_der()?;
    // DER orders a SET OF by its elements' encodings (X.690 11.6); the
    // CMS builder orders the certificates by their decoded fields instead.
    // They lie back to back in the encoding: put them in DER order there.
    let total: usize = certs.iter().map(Vec::len).sum();
    let start = certs
        .iter()
        .filter_map(|c| der.windows(c.len()).position(|w| w == c.as_slice()))
        .min();
    if let Some(start) = start.filter(|s| s + total <= der.len()) {
        let mut sorted: Vec<&Vec<u8>> = certs.iter().collect();
        sorted.sort_by(|a, b| der_set_order(a, b));
        let block = &mut der[start..start + total];
        let mut at = 0;
        let holds_all = certs
            .iter()
            .all(|c| block.windows(c.len()).any(|w| w == c.as_slice()));
        if holds_all {
            for c in sorted {
                block[at..at + c.len()].copy_from_slice(c);
                at += c.len();
            }
        }
    }
    Ok(der)
}

/// X.690 11.6: encodings compared as octet strings, the shorter padded
/// at its end with zero octets.
pub(super) fn der_set_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let byte = |v: &[u8], i: usize| v.get(i).copied().unwrap_or(0);
    (0..n)
        .map(|i| byte(a, i).cmp(&byte(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// CsrAttrs (RFC 7030 4.5.2) for a profile accepting `algorithms`: the key
/// type (ecPublicKey with its curve, or Ed25519), the signature algorithm,
/// and the subject attributes and firmware attribute trustca reads.
pub fn csr_attrs(algorithms: &[KeyAlgorithm]) -> Result<Vec<u8>, der::Error> {
    let mut items: Vec<Any> = Vec::new();
    let push_oid = |items: &mut Vec<Any>, oid: ObjectIdentifier| -> der::Result<()> {
        let any = Any::encode_from(&oid)?;
        if !items.contains(&any) {
            items.push(any);
        }
        Ok(())
    };
    for algorithm in algorithms {
        let (curve, signature) = match algorithm {
            KeyAlgorithm::EcdsaP256 => (Some(PRIME256V1), ECDSA_WITH_SHA256),
            KeyAlgorithm::EcdsaP384 => (Some(SECP384R1), ECDSA_WITH_SHA384),
            KeyAlgorithm::Ed25519 => (None, ID_ED25519),
            // An algorithm this table does not know yet is not advertised.
            _ => continue,
        };
        if let Some(curve) = curve {
            let attribute = x509_cert::attr::Attribute {
                oid: ID_EC_PUBLIC_KEY,
                values: SetOfVec::try_from(vec![Any::encode_from(&curve)?])?,
            };
            items.push(Any::encode_from(&attribute)?);
        }
        push_oid(&mut items, signature)?;
    }
    for oid in [
        AT_ORGANIZATION,
        AT_COMMON_NAME,
        AT_SERIAL_NUMBER,
        AT_FIRMWARE_VERSION,
        attestation::AT_TPM_ATTESTATION,
    ] {
        push_oid(&mut items, oid)?;
    }
    items.to_der()
}

/// Base64 in lines of 64 characters, as MIME bodies are written.
pub(super) fn base64_lines(der: &[u8]) -> Vec<u8> {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = Vec::with_capacity(text.len() + text.len() / 64 + 1);
    for line in text.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

pub(super) fn base64_answer(content_type: &'static str, body: Bytes) -> Answer {
    let mut response = Response::new(Full::new(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "content-transfer-encoding",
        HeaderValue::from_static("base64"),
    );
    response
}

pub(super) fn empty(status: StatusCode) -> Answer {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// A refusal: its status and its sentence as a plain-text body.
pub fn refusal(e: EstError) -> Answer {
    let status = e.status();
    let mut response = Response::new(Full::new(Bytes::from(format!("{e}\n"))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    if let EstError::MethodNotAllowed { allowed, .. } = &e {
        headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
    }
    response
}
