//! PKCS#10 requests: parse, check the proof of possession (the request's
//! signature under its own key) and extract the public key. Nothing else in
//! a CSR is trusted or copied into certificates.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use trustca_model::policy::KeyAlgorithm;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::CaError;

/// The largest CSR accepted, in bytes.
pub const MAX_CSR_BYTES: usize = 8 * 1024;

const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];

/// A CSR whose signature verified.
#[derive(Debug)]
pub struct VerifiedCsr {
    /// The key algorithm of the requested certificate.
    pub algorithm: KeyAlgorithm,
    /// SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
}

/// Parses `der` and verifies its self-signature.
pub fn verify_csr(der: &[u8]) -> Result<VerifiedCsr, CaError> {
    if der.is_empty() {
        return Err(CaError::InvalidCsr("empty".into()));
    }
    if der.len() > MAX_CSR_BYTES {
        return Err(CaError::InvalidCsr(format!(
            "{} bytes, at most {MAX_CSR_BYTES} accepted",
            der.len()
        )));
    }
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|_| CaError::InvalidCsr("not a DER PKCS#10 certification request".into()))?;
    if !rest.is_empty() {
        return Err(CaError::InvalidCsr(
            "trailing bytes after the request".into(),
        ));
    }
    let info = &csr.certification_request_info;
    let spki = &info.subject_pki;
    let algorithm = verify_signed(
        spki,
        csr.signature_algorithm.algorithm.as_bytes(),
        info.raw,
        &csr.signature_value,
    )
    .map_err(|e| match e {
        SignatureCheck::Key(why) | SignatureCheck::Algorithm(why) => CaError::InvalidCsr(why),
        SignatureCheck::Signature => CaError::InvalidCsr(
            "signature does not verify (no proof of possession of the key)".into(),
        ),
    })?;
    Ok(VerifiedCsr {
        algorithm,
        spki_der: spki.raw.to_vec(),
    })
}

/// The SubjectPublicKeyInfo a CSR names, unchecked: for reading ahead
/// what the checks after [`verify_csr`] will ask the store about (never
/// trusted; `None` when the request does not parse).
pub(crate) fn csr_public_key(der: &[u8]) -> Option<Vec<u8>> {
    if der.len() > MAX_CSR_BYTES {
        return None;
    }
    let (_, csr) = X509CertificationRequest::from_der(der).ok()?;
    Some(csr.certification_request_info.subject_pki.raw.to_vec())
}

/// Why [`verify_signed`] refused.
#[derive(Debug)]
pub(crate) enum SignatureCheck {
    /// The key type or curve is not one trustca supports.
    Key(String),
    /// The signature algorithm does not fit the key, or is malformed.
    Algorithm(String),
    /// The signature does not verify under the key.
    Signature,
}

/// Verifies `signature` over `signed` under `spki` with the algorithm
/// `sig_oid` names; returns the key's algorithm. Shared by CSR checks
/// (proof of possession) and the key ceremony (a sector CA certificate
/// signed by the root, the root's ARL).
pub(crate) fn verify_signed(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
    sig_oid: &[u8],
    signed: &[u8],
    signature: &x509_parser::asn1_rs::BitString<'_>,
) -> Result<KeyAlgorithm, SignatureCheck> {
    let key_oid = spki.algorithm.algorithm.as_bytes();
    let algorithm = if key_oid == EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .map(|p| p.as_bytes())
            .unwrap_or_default();
        if curve == P256 {
            KeyAlgorithm::EcdsaP256
        } else if curve == P384 {
            KeyAlgorithm::EcdsaP384
        } else {
            return Err(SignatureCheck::Key(
                "unsupported elliptic curve (P-256 and P-384 are supported)".into(),
            ));
        }
    } else if key_oid == ED25519 {
        KeyAlgorithm::Ed25519
    } else {
        return Err(SignatureCheck::Key(
            "unsupported key type (ECDSA P-256/P-384 and Ed25519 are supported)".into(),
        ));
    };
    let verifier: &'static dyn VerificationAlgorithm = match (algorithm, sig_oid) {
        (KeyAlgorithm::EcdsaP256, o) if o == ECDSA_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
        (KeyAlgorithm::EcdsaP256, o) if o == ECDSA_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
        (KeyAlgorithm::EcdsaP384, o) if o == ECDSA_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        (KeyAlgorithm::EcdsaP384, o) if o == ECDSA_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
        (KeyAlgorithm::Ed25519, o) if o == ED25519 => &signature::ED25519,
        _ => {
            return Err(SignatureCheck::Algorithm(
                "signature algorithm does not match the key type".into(),
            ));
        }
    };
    if signature.unused_bits != 0 {
        return Err(SignatureCheck::Algorithm(
            "malformed signature bit string".into(),
        ));
    }
    UnparsedPublicKey::new(verifier, spki.subject_public_key.data.as_ref())
        .verify(signed, signature.data.as_ref())
        .map_err(|_| SignatureCheck::Signature)?;
    Ok(algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        params.serialize_request(&key).unwrap().der().to_vec()
    }

    #[test]
    fn accepts_supported_algorithms() {
        assert_eq!(
            verify_csr(&csr(&rcgen::PKCS_ECDSA_P256_SHA256))
                .unwrap()
                .algorithm,
            KeyAlgorithm::EcdsaP256
        );
        assert_eq!(
            verify_csr(&csr(&rcgen::PKCS_ECDSA_P384_SHA384))
                .unwrap()
                .algorithm,
            KeyAlgorithm::EcdsaP384
        );
        assert_eq!(
            verify_csr(&csr(&rcgen::PKCS_ED25519)).unwrap().algorithm,
            KeyAlgorithm::Ed25519
        );
    }

    #[test]
    fn rejects_tampered_and_garbage() {
        let mut der = csr(&rcgen::PKCS_ECDSA_P256_SHA256);
        // Flip a byte inside the subject alternative name request (signed data).
        let pos = der.windows(4).position(|w| w == b"evil").unwrap();
        der[pos] ^= 0x20;
        let err = verify_csr(&der).unwrap_err().to_string();
        assert!(err.contains("does not verify"), "{err}");
        assert!(verify_csr(b"not a csr").is_err());
        assert!(verify_csr(&[]).is_err());
        let mut trailing = csr(&rcgen::PKCS_ED25519);
        trailing.push(0);
        assert!(
            verify_csr(&trailing)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        assert!(verify_csr(&vec![0x30; MAX_CSR_BYTES + 1]).is_err());
    }
}
