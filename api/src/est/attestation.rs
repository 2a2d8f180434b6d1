//! TPM key attestation over EST (issue 25): the challenge step and the
//! attestation a `simpleenroll` CSR carries. Both hand over to the engine's
//! [`AttestationBook`](trustca_ca::attestation::AttestationBook), the code
//! gRPC `GetEnrollmentChallenge` and `Enroll` use, so EST and gRPC check an
//! attestation alike and refuse it with the same status.
//!
//! - **Challenge**: `POST /.well-known/est/<label>/attestchallenge`, a
//!   manufacturer credential as TLS client certificate, `application/json`
//!   body `{"ek_certificate_chain": [base64 DER, ...], "ak_public": base64
//!   TPM2B_PUBLIC}`; the answer (`application/json`) holds `challenge_id`,
//!   `credential_blob` (TPM2B_ID_OBJECT), `encrypted_secret`
//!   (TPM2B_ENCRYPTED_SECRET), `credential` (the two in the file layout
//!   `tpm2_activatecredential -i` reads) and `expires_at`. RFC 7030's
//!   `csrattrs` is a GET without a body, and the challenge depends on the
//!   device's EK and AK, so it has its own operation.
//! - **Answer**: the CSR attribute [`TPM_ATTESTATION_OID`] with one value,
//!   `TpmKeyAttestation ::= SEQUENCE { challengeId OCTET STRING (SIZE(16)),
//!   keyPublic OCTET STRING -- TPM2B_PUBLIC, attest OCTET STRING --
//!   TPMS_ATTEST, signature OCTET STRING -- TPMT_SIGNATURE }`. The CSR is
//!   signed by the attested key, so the attestation travels inside what
//!   the key itself signed.

use base64::Engine as _;
use der::Decode;
use der::asn1::OctetString;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use trustca_ca::EnrollmentEngine;
use trustca_ca::attestation::TpmKeyAttestation;
use trustca_model::{Credential, SectorName};

use crate::est::{Answer, EstError};

/// The PKCS#10 attribute carrying a TPM's certification of the CSR's key:
/// trustca's `tpmKeyAttestation`, a UUID OID
/// (`d990ad75-de98-4f51-94c8-e09e7900cc86`) under the arc of
/// [`FIRMWARE_VERSION_OID`](crate::est::FIRMWARE_VERSION_OID).
pub const TPM_ATTESTATION_OID: &str =
    "1.2.840.113556.1.8000.2554.55696.44405.56984.20305.38088.14720633.52358";
/// [`TPM_ATTESTATION_OID`] as arcs (for CSR builders such as rcgen).
pub const TPM_ATTESTATION_ARCS: [u64; 14] = [
    1, 2, 840, 113556, 1, 8000, 2554, 55696, 44405, 56984, 20305, 38088, 14720633, 52358,
];
/// The attribute type, for the CSR reader.
pub(crate) const AT_TPM_ATTESTATION: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap(TPM_ATTESTATION_OID);
/// At most this many certificates in an EK chain (leaf and intermediates).
pub const MAX_EK_CHAIN: usize = 4;

const JSON: &str = "application/json";

/// The challenge request's body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    ek_certificate_chain: Vec<String>,
    ak_public: String,
}

fn base64(field: &str, text: &str) -> Result<Vec<u8>, EstError> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| EstError::BadRequest(format!("{field} is not base64")))
}

/// Decodes the attribute's values: exactly one `TpmKeyAttestation`.
pub(crate) fn decode_attribute(values: &[der::Any]) -> Result<TpmKeyAttestation, EstError> {
    let bad = |m: &str| EstError::BadRequest(format!("invalid CSR: the TPM attestation {m}"));
    let [value] = values else {
        return Err(bad("attribute must hold one value"));
    };
    let der = der::Encode::to_der(value).map_err(|_| bad("does not encode"))?;
    // A SEQUENCE of four OCTET STRINGs encodes as a SEQUENCE OF OCTET STRING.
    let fields = Vec::<OctetString>::from_der(&der).map_err(|_| {
        bad("must be SEQUENCE { challengeId, keyPublic, attest, signature } of OCTET STRINGs")
    })?;
    let [challenge_id, key_public, attest, signature] = fields.as_slice() else {
        return Err(bad(
            "must hold four OCTET STRINGs: challengeId, keyPublic, attest, signature",
        ));
    };
    Ok(TpmKeyAttestation {
        challenge_id: challenge_id.as_bytes().to_vec(),
        key_public: key_public.as_bytes().to_vec(),
        attest: attest.as_bytes().to_vec(),
        signature: signature.as_bytes().to_vec(),
    })
}

/// Encodes `att` as the attribute's value (DER), for devices and tests.
pub fn encode_attribute(att: &TpmKeyAttestation) -> Result<Vec<u8>, der::Error> {
    let fields = [
        &att.challenge_id,
        &att.key_public,
        &att.attest,
        &att.signature,
    ]
    .into_iter()
    .map(|f| OctetString::new(f.clone()))
    .collect::<Result<Vec<_>, _>>()?;
    der::Encode::to_der(&fields)
}

/// `attestchallenge`: checks the EK chain and the AK through the engine
/// and answers the credential.
pub(crate) async fn challenge(
    engine: &Arc<EnrollmentEngine>,
    caller: Arc<Credential>,
    sector: SectorName,
    request: &Parts,
    body: Result<Bytes, EstError>,
) -> Result<Answer, EstError> {
    if !crate::est::media_type(request).eq_ignore_ascii_case(JSON) {
        return Err(EstError::BadRequest(
            "the content type must be application/json".into(),
        ));
    }
    let msg: ChallengeRequest = serde_json::from_slice(&body?).map_err(|e| {
        EstError::BadRequest(format!(
            "the body must be {{\"ek_certificate_chain\": [base64 DER, ...], \"ak_public\": base64}}: {e}"
        ))
    })?;
    if msg.ek_certificate_chain.is_empty() || msg.ek_certificate_chain.len() > MAX_EK_CHAIN {
        return Err(EstError::BadRequest(format!(
            "ek_certificate_chain must hold 1-{MAX_EK_CHAIN} certificates, the EK's first"
        )));
    }
    let chain = msg
        .ek_certificate_chain
        .iter()
        .map(|c| base64("ek_certificate_chain", c))
        .collect::<Result<Vec<_>, _>>()?;
    let ak = base64("ak_public", &msg.ak_public)?;
    let engine = Arc::clone(engine);
    let issued = tokio::task::spawn_blocking(move || {
        engine
            .attestation()
            .challenge(&caller, &sector, &chain, &ak)
    })
    .await
    .map_err(|e| EstError::Encoding(format!("worker failed: {e}")))??;
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let made = trustca_attestation::credential::MadeCredential {
        id_object: issued.credential_blob.clone(),
        encrypted_secret: issued.encrypted_secret.clone(),
    };
    let answer = serde_json::json!({
        "challenge_id": b64(&issued.id),
        "credential_blob": b64(&issued.credential_blob),
        "encrypted_secret": b64(&issued.encrypted_secret),
        "credential": b64(&trustca_attestation::credential::tpm2_tools_blob(&made)),
        "expires_at": issued.expires_at.format(&Rfc3339).unwrap_or_default(),
    });
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_attribute_round_trips_and_refuses_other_shapes() {
        let att = TpmKeyAttestation {
            challenge_id: vec![1; 16],
            key_public: vec![2; 90],
            attest: vec![3; 120],
            signature: vec![4; 72],
        };
        let der = encode_attribute(&att).unwrap();
        let value = der::Any::from_der(&der).unwrap();
        let back = decode_attribute(std::slice::from_ref(&value)).unwrap();
        assert_eq!(back.challenge_id, att.challenge_id);
        assert_eq!(back.key_public, att.key_public);
        assert_eq!(back.attest, att.attest);
        assert_eq!(back.signature, att.signature);
        // Two values, three fields, or not a SEQUENCE: refused.
        assert!(decode_attribute(&[value.clone(), value]).is_err());
        let three = der::Encode::to_der(&vec![OctetString::new(vec![1]).unwrap(); 3]).unwrap();
        let e = decode_attribute(&[der::Any::from_der(&three).unwrap()]).unwrap_err();
        assert!(e.to_string().contains("four OCTET STRINGs"), "{e}");
        let int = der::Any::from_der(&[2, 1, 5]).unwrap();
        assert!(matches!(
            decode_attribute(&[int]),
            Err(EstError::BadRequest(_))
        ));
        // The arcs and the dotted form name the same OID.
        let dotted: Vec<String> = TPM_ATTESTATION_ARCS.iter().map(u64::to_string).collect();
        assert_eq!(dotted.join("."), TPM_ATTESTATION_OID);
    }
}
