//! One signing abstraction for the statements trustca signs outside X.509:
//! trust assertions and audit tree heads (and pseudonym revocation lists).
//!
//! A key may be a file key held by ring or a key inside a PKCS#11 token; the
//! callers only need "sign these bytes with ECDSA and give me the DER
//! signature" and the public key to check it. PKCS#11 `CKM_ECDSA` returns
//! the raw `r ‖ s` concatenation, while every verifier of ours (and X.509,
//! TLS) expects the DER `ECDSA-Sig-Value`, so [`ecdsa_raw_to_der`] converts.

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair};

/// The ECDSA variants trustca signs statements with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementAlgorithm {
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384Sha384,
}

impl StatementAlgorithm {
    /// The length of one coordinate (and of `r`, `s`) in bytes.
    pub fn field_len(self) -> usize {
        match self {
            StatementAlgorithm::EcdsaP256Sha256 => 32,
            StatementAlgorithm::EcdsaP384Sha384 => 48,
        }
    }

    /// ring's verification algorithm for DER signatures of this variant.
    pub fn ring_verification(self) -> &'static ring::signature::EcdsaVerificationAlgorithm {
        match self {
            StatementAlgorithm::EcdsaP256Sha256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
            StatementAlgorithm::EcdsaP384Sha384 => &ring::signature::ECDSA_P384_SHA384_ASN1,
        }
    }
}

/// Why a statement could not be signed. The message never contains key
/// material or a PIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signing failed: {0}")]
pub struct SignError(pub String);

/// A private key that signs statements with ECDSA and returns DER
/// `ECDSA-Sig-Value` signatures.
pub trait StatementSigner: Send + Sync + std::fmt::Debug {
    /// The signature algorithm.
    fn algorithm(&self) -> StatementAlgorithm;
    /// The public key: an uncompressed SEC1 point (`0x04 ‖ X ‖ Y`).
    fn public_key(&self) -> &[u8];
    /// Signs `message` (hashing it as the algorithm says).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}

impl StatementSigner for EcdsaKeyPair {
    fn algorithm(&self) -> StatementAlgorithm {
        // ring does not expose the curve of a loaded key; its public point
        // length tells them apart (65 bytes P-256, 97 bytes P-384).
        if KeyPair::public_key(self).as_ref().len() == 97 {
            StatementAlgorithm::EcdsaP384Sha384
        } else {
            StatementAlgorithm::EcdsaP256Sha256
        }
    }
    fn public_key(&self) -> &[u8] {
        KeyPair::public_key(self).as_ref()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        EcdsaKeyPair::sign(self, &SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SignError("ECDSA signing failed".into()))
    }
}

/// Appends a DER INTEGER holding the unsigned big-endian `magnitude`:
/// leading zero bytes are dropped (DER wants the minimal encoding) and a
/// zero byte is put back in front when the high bit is set (otherwise the
/// INTEGER would read as negative).
fn push_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let first = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let trimmed = &magnitude[first..];
    let pad = trimmed.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    push_length(out, trimmed.len() + usize::from(pad));
    if pad {
        out.push(0);
    }
    out.extend_from_slice(trimmed);
}

fn push_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        // r and s are at most 66 bytes (P-521), so the SEQUENCE stays
        // below 256 bytes: one length byte after 0x81 is enough.
        out.push(0x81);
        out.push(len as u8);
    }
}

/// Converts a PKCS#11 `CKM_ECDSA` signature (`r ‖ s`, each exactly half of
/// the input, big-endian) into a DER `ECDSA-Sig-Value`
/// (`SEQUENCE { r INTEGER, s INTEGER }`). `None` when the input is empty,
/// of odd length or longer than a P-521 signature.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 2 * 66 {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut body = Vec::with_capacity(raw.len() + 6);
    push_unsigned_integer(&mut body, r);
    push_unsigned_integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    push_length(&mut out, body.len());
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
        ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED_SIGNING, UnparsedPublicKey,
    };

    fn raw(r: &[u8], s: &[u8]) -> Vec<u8> {
        let mut v = r.to_vec();
        v.extend_from_slice(s);
        v
    }

    #[test]
    fn high_bit_gets_a_zero_byte() {
        let r = [0x80u8; 32];
        let s = [0x01u8; 32];
        let der = ecdsa_raw_to_der(&raw(&r, &s)).unwrap();
        // SEQUENCE, len 33+2 + 32+2 = 69
        assert_eq!(&der[..5], &[0x30, 69, 0x02, 33, 0x00]);
        assert_eq!(&der[5..37], &r);
        assert_eq!(&der[37..39], &[0x02, 32]);
        assert_eq!(&der[39..], &s);
    }

    #[test]
    fn leading_zeros_are_dropped() {
        let mut r = [0x11u8; 32];
        r[0] = 0;
        r[1] = 0;
        let mut s = [0u8; 32];
        s[2] = 0x90; // after stripping, the high bit is set: pad again
        s[31] = 7;
        let der = ecdsa_raw_to_der(&raw(&r, &s)).unwrap();
        assert_eq!(&der[..4], &[0x30, 2 + 30 + 2 + 31, 0x02, 30]);
        assert_eq!(&der[4..34], &r[2..]);
        assert_eq!(&der[34..37], &[0x02, 31, 0x00]);
        assert_eq!(&der[37..], &s[2..]);
    }

    #[test]
    fn zero_is_one_zero_byte() {
        let der = ecdsa_raw_to_der(&[0u8; 64]).unwrap();
        assert_eq!(der, [0x30, 6, 0x02, 1, 0, 0x02, 1, 0]);
    }

    #[test]
    fn p384_uses_a_long_form_length_when_needed() {
        let der = ecdsa_raw_to_der(&[0xffu8; 96]).unwrap();
        // 2 * (2 + 49) = 102 < 128: still short form
        assert_eq!(&der[..2], &[0x30, 102]);
        let der = ecdsa_raw_to_der(&[0xffu8; 132]).unwrap();
        // P-521 sized: 2 * (2 + 67) = 138 needs 0x81
        assert_eq!(&der[..3], &[0x30, 0x81, 138]);
    }

    #[test]
    fn bad_lengths_are_refused() {
        assert!(ecdsa_raw_to_der(&[]).is_none());
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_none());
        assert!(ecdsa_raw_to_der(&[1u8; 134]).is_none());
    }

    /// ring's fixed-length signatures are exactly what CKM_ECDSA returns;
    /// converted, ring's ASN.1 verifier (an independent DER parser) must
    /// accept them, for many random signatures (which hit short r/s and
    /// high bits) on both curves.
    #[test]
    fn converted_signatures_verify_with_ring() {
        let rng = SystemRandom::new();
        for (signing, verify, fixed_ok) in [
            (
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &ECDSA_P256_SHA256_ASN1,
                Some(&ECDSA_P256_SHA256_FIXED),
            ),
            (
                &ECDSA_P384_SHA384_FIXED_SIGNING,
                &ECDSA_P384_SHA384_ASN1,
                None,
            ),
        ] {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(signing, &rng).unwrap();
            let key = EcdsaKeyPair::from_pkcs8(signing, pkcs8.as_ref(), &rng).unwrap();
            let public =
                UnparsedPublicKey::new(verify, KeyPair::public_key(&key).as_ref().to_vec());
            for i in 0..300u32 {
                let msg = i.to_be_bytes();
                let fixed = EcdsaKeyPair::sign(&key, &rng, &msg).unwrap();
                if let Some(f) = fixed_ok {
                    UnparsedPublicKey::new(f, KeyPair::public_key(&key).as_ref())
                        .verify(&msg, fixed.as_ref())
                        .unwrap();
                }
                let der = ecdsa_raw_to_der(fixed.as_ref()).unwrap();
                public.verify(&msg, &der).unwrap();
            }
        }
    }

    #[test]
    fn ring_keys_are_statement_signers() {
        let rng = SystemRandom::new();
        let alg = &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let signer: &dyn StatementSigner = &key;
        assert_eq!(signer.algorithm(), StatementAlgorithm::EcdsaP384Sha384);
        let sig = signer.sign(b"head").unwrap();
        UnparsedPublicKey::new(signer.algorithm().ring_verification(), signer.public_key())
            .verify(b"head", &sig)
            .unwrap();
    }
}
