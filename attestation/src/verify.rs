//! The whole check of one key attestation, in the order that gives each
//! bad input its own error: the structures parse; the AK is a restricted,
//! non-exportable signing key; its signature covers the `TPMS_ATTEST`; the
//! qualifying data is the server's challenge; the certified name is the
//! name of the key's public area; that key is the key of the certificate
//! request; and its attributes show a TPM-generated key that cannot leave
//! the TPM.

use crate::AttestationError;
use crate::attest::{Attested, TpmAttest};
use crate::public::{TpmPublic, attr};
use crate::signature::TpmSignature;

/// What a device sends about its new key.
#[derive(Debug, Clone, Copy)]
pub struct KeyAttestation<'a> {
    /// The new key's `TPM2B_PUBLIC`.
    pub key_public: &'a [u8],
    /// The `TPMS_ATTEST` the AK signed.
    pub attest: &'a [u8],
    /// The AK's `TPMT_SIGNATURE` over it.
    pub signature: &'a [u8],
}

/// A verified key attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    /// The key's TPM name.
    pub key_name: Vec<u8>,
    /// `tpm2-certify` or `tpm2-certify-creation`.
    pub format: &'static str,
}

/// The AK attributes required: it signs only what the TPM generates
/// (restricted), and it was made in and cannot leave the TPM.
pub const AK_ATTRIBUTES: u32 = attr::RESTRICTED
    | attr::SIGN
    | attr::FIXED_TPM
    | attr::FIXED_PARENT
    | attr::SENSITIVE_DATA_ORIGIN;

/// The attested key's attributes required: generated inside the TPM, and
/// neither it nor its parent chain can be duplicated out of it.
pub const KEY_ATTRIBUTES: u32 =
    attr::SIGN | attr::FIXED_TPM | attr::FIXED_PARENT | attr::SENSITIVE_DATA_ORIGIN;

/// Names the missing bits of `required` in `attributes`.
fn missing(attributes: u32, required: u32) -> Vec<&'static str> {
    [
        (attr::FIXED_TPM, "fixedTPM"),
        (attr::FIXED_PARENT, "fixedParent"),
        (attr::SENSITIVE_DATA_ORIGIN, "sensitiveDataOrigin"),
        (attr::RESTRICTED, "restricted"),
        (attr::SIGN, "sign"),
    ]
    .into_iter()
    .filter(|(bit, _)| required & bit != 0 && attributes & bit == 0)
    .map(|(_, name)| name)
    .collect()
}

/// Checks that `ak` is usable as an attestation key.
pub fn check_ak(ak: &TpmPublic) -> Result<(), AttestationError> {
    let absent = missing(ak.attributes, AK_ATTRIBUTES);
    if !absent.is_empty() {
        return Err(AttestationError::Attributes(format!(
            "the attestation key lacks {}: it must be a restricted signing key that never leaves the TPM",
            absent.join(", ")
        )));
    }
    Ok(())
}

/// Verifies `att` under the AK `ak`, for `nonce` and the request's key
/// (`csr_point`: the uncompressed EC point of its SubjectPublicKeyInfo).
pub fn verify_key_attestation(
    ak: &TpmPublic,
    att: KeyAttestation<'_>,
    nonce: &[u8],
    csr_point: &[u8],
) -> Result<VerifiedKey, AttestationError> {
    let key = TpmPublic::from_tpm2b(att.key_public)?;
    let attest = TpmAttest::decode(att.attest)?;
    let signature = TpmSignature::decode(att.signature)?;
    check_ak(ak)?;
    signature.verify(ak, &attest.raw)?;
    if attest.extra_data != nonce {
        return Err(AttestationError::WrongNonce);
    }
    let name = key.name();
    if attest.certified_name() != name.as_slice() {
        return Err(AttestationError::WrongKey(
            "the certified name is not the name of the public area sent".into(),
        ));
    }
    if key.ec_point().as_deref() != Some(csr_point) {
        return Err(AttestationError::WrongKey(
            "the attested key is not the key of the certificate request".into(),
        ));
    }
    let absent = missing(key.attributes, KEY_ATTRIBUTES);
    if !absent.is_empty() {
        return Err(AttestationError::Attributes(format!(
            "the key lacks {}: it could have been made or kept outside the TPM",
            absent.join(", ")
        )));
    }
    Ok(VerifiedKey {
        key_name: name,
        format: match attest.attested {
            Attested::Certify { .. } => "tpm2-certify",
            Attested::Creation { .. } => "tpm2-certify-creation",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK: &[u8] = include_bytes!("../testdata/swtpm/ak.pub");
    const KEY: &[u8] = include_bytes!("../testdata/swtpm/key.pub");
    const XKEY: &[u8] = include_bytes!("../testdata/swtpm/xkey.pub");
    const ATTEST: &[u8] = include_bytes!("../testdata/swtpm/attest.bin");
    const SIG: &[u8] = include_bytes!("../testdata/swtpm/sig.bin");
    const NONCE: &[u8] = include_bytes!("../testdata/swtpm/nonce.bin");

    fn point(p: &[u8]) -> Vec<u8> {
        TpmPublic::from_tpm2b(p).unwrap().ec_point().unwrap()
    }

    fn att<'a>(key: &'a [u8]) -> KeyAttestation<'a> {
        KeyAttestation {
            key_public: key,
            attest: ATTEST,
            signature: SIG,
        }
    }

    #[test]
    fn swtpm_certify_creation_verifies() {
        let ak = TpmPublic::from_tpm2b(AK).unwrap();
        let v = verify_key_attestation(&ak, att(KEY), NONCE, &point(KEY)).unwrap();
        assert_eq!(v.format, "tpm2-certify-creation");
        assert_eq!(v.key_name, TpmPublic::from_tpm2b(KEY).unwrap().name());
    }

    #[test]
    fn each_bad_input_has_its_error() {
        let ak = TpmPublic::from_tpm2b(AK).unwrap();
        // Another nonce.
        assert_eq!(
            verify_key_attestation(&ak, att(KEY), b"another", &point(KEY)),
            Err(AttestationError::WrongNonce)
        );
        // The CSR has another key.
        assert!(matches!(
            verify_key_attestation(&ak, att(KEY), NONCE, &point(XKEY)),
            Err(AttestationError::WrongKey(_))
        ));
        // The public area of another key than the one certified.
        assert!(matches!(
            verify_key_attestation(&ak, att(XKEY), NONCE, &point(XKEY)),
            Err(AttestationError::WrongKey(_))
        ));
        // The device key as AK: not restricted.
        let key = TpmPublic::from_tpm2b(KEY).unwrap();
        assert!(matches!(
            verify_key_attestation(&key, att(KEY), NONCE, &point(KEY)),
            Err(AttestationError::Attributes(_))
        ));
        // A tampered attestation.
        let mut bad = ATTEST.to_vec();
        bad[20] ^= 1;
        let a = KeyAttestation {
            key_public: KEY,
            attest: &bad,
            signature: SIG,
        };
        assert_eq!(
            verify_key_attestation(&ak, a, NONCE, &point(KEY)),
            Err(AttestationError::BadSignature)
        );
        // Malformed structures.
        let a = KeyAttestation {
            key_public: KEY,
            attest: &ATTEST[..40],
            signature: SIG,
        };
        assert!(matches!(
            verify_key_attestation(&ak, a, NONCE, &point(KEY)),
            Err(AttestationError::Malformed { .. })
        ));
    }

    #[test]
    fn exportable_key_attributes_are_named() {
        let x = TpmPublic::from_tpm2b(XKEY).unwrap();
        let absent = missing(x.attributes, KEY_ATTRIBUTES);
        assert_eq!(absent, vec!["fixedTPM", "fixedParent"]);
    }
}
