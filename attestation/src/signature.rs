//! `TPMT_SIGNATURE` (TPM 2.0 Part 2, 11.3.4) for ECDSA and RSASSA, a strict
//! decoder and encoder, and verification of a signature over a
//! `TPMS_ATTEST` under an AK's public area (ring).

use ring::signature::{self as sig, UnparsedPublicKey};

use crate::AttestationError;
use crate::public::{CURVE_P256, CURVE_P384, PublicKey, TpmPublic};
use crate::wire::{HashAlg, Reader, put_tpm2b, put_u16};

const ALG_RSASSA: u16 = 0x0014;
const ALG_ECDSA: u16 = 0x0018;

/// A decoded `TPMT_SIGNATURE`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TpmSignature {
    /// ECDSA: the hash and the two integers, big-endian.
    Ecdsa {
        /// The digest's algorithm id.
        hash: u16,
        /// r.
        r: Vec<u8>,
        /// s.
        s: Vec<u8>,
    },
    /// RSASSA-PKCS1-v1_5.
    RsaSsa {
        /// The digest's algorithm id.
        hash: u16,
        /// The signature.
        signature: Vec<u8>,
    },
}

impl TpmSignature {
    /// Decodes a `TPMT_SIGNATURE` (as `tpm2_certify -s` writes it by
    /// default), refusing other schemes and trailing bytes.
    pub fn decode(input: &[u8]) -> Result<Self, AttestationError> {
        let mut r = Reader::new(input, "TPMT_SIGNATURE");
        let alg = r.u16("sigAlg")?;
        let out = match alg {
            ALG_ECDSA => Self::Ecdsa {
                hash: r.u16("hash")?,
                r: r.tpm2b("signatureR", 66)?.to_vec(),
                s: r.tpm2b("signatureS", 66)?.to_vec(),
            },
            ALG_RSASSA => Self::RsaSsa {
                hash: r.u16("hash")?,
                signature: r.tpm2b("sig", 512)?.to_vec(),
            },
            other => {
                return Err(AttestationError::Unsupported(format!(
                    "signature algorithm 0x{other:04x} (ECDSA and RSASSA are supported)"
                )));
            }
        };
        r.finish()?;
        Ok(out)
    }

    /// Encodes the signature (round-trips with [`TpmSignature::decode`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Ecdsa { hash, r, s } => {
                put_u16(&mut out, ALG_ECDSA);
                put_u16(&mut out, *hash);
                put_tpm2b(&mut out, r);
                put_tpm2b(&mut out, s);
            }
            Self::RsaSsa { hash, signature } => {
                put_u16(&mut out, ALG_RSASSA);
                put_u16(&mut out, *hash);
                put_tpm2b(&mut out, signature);
            }
        }
        out
    }

    /// Verifies this signature over `message` under `key` (an AK's public
    /// area). The curve fixes the hash: P-256 with SHA-256, P-384 with
    /// SHA-384, as ring offers them.
    pub fn verify(&self, key: &TpmPublic, message: &[u8]) -> Result<(), AttestationError> {
        match (self, &key.key) {
            (Self::Ecdsa { hash, r, s }, PublicKey::Ecc { curve, .. }) => {
                let (alg, size, want): (&'static sig::EcdsaVerificationAlgorithm, usize, HashAlg) =
                    match *curve {
                        CURVE_P256 => (&sig::ECDSA_P256_SHA256_FIXED, 32, HashAlg::Sha256),
                        CURVE_P384 => (&sig::ECDSA_P384_SHA384_FIXED, 48, HashAlg::Sha384),
                        other => {
                            return Err(AttestationError::Unsupported(format!(
                                "AK curve 0x{other:04x}"
                            )));
                        }
                    };
                if *hash != want.id() {
                    return Err(AttestationError::Unsupported(format!(
                        "ECDSA hash 0x{hash:04x} with this curve"
                    )));
                }
                let point = key
                    .ec_point()
                    .ok_or_else(|| AttestationError::Unsupported("AK point".into()))?;
                let mut fixed = Vec::with_capacity(2 * size);
                for part in [r, s] {
                    let part = strip_zeros(part);
                    if part.len() > size {
                        return Err(AttestationError::BadSignature);
                    }
                    fixed.resize(fixed.len() + size - part.len(), 0);
                    fixed.extend_from_slice(part);
                }
                UnparsedPublicKey::new(alg, point)
                    .verify(message, &fixed)
                    .map_err(|_| AttestationError::BadSignature)
            }
            (
                Self::RsaSsa { hash, signature },
                PublicKey::Rsa {
                    exponent, modulus, ..
                },
            ) => {
                let params: &'static sig::RsaParameters = match HashAlg::from_id(*hash) {
                    Some(HashAlg::Sha256) => &sig::RSA_PKCS1_2048_8192_SHA256,
                    Some(HashAlg::Sha384) => &sig::RSA_PKCS1_2048_8192_SHA384,
                    None => {
                        return Err(AttestationError::Unsupported(format!(
                            "RSASSA hash 0x{hash:04x}"
                        )));
                    }
                };
                let e = if *exponent == 0 { 65537 } else { *exponent };
                sig::RsaPublicKeyComponents {
                    n: modulus.as_slice(),
                    e: &e.to_be_bytes()[..],
                }
                .verify(params, message, signature)
                .map_err(|_| AttestationError::BadSignature)
            }
            _ => Err(AttestationError::BadSignature),
        }
    }
}

fn strip_zeros(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SIG: &[u8] = include_bytes!("../testdata/swtpm/sig.bin");
    const CSIG: &[u8] = include_bytes!("../testdata/swtpm/csig.bin");
    const ATTEST: &[u8] = include_bytes!("../testdata/swtpm/attest.bin");
    const CATTEST: &[u8] = include_bytes!("../testdata/swtpm/cattest.bin");
    const AK: &[u8] = include_bytes!("../testdata/swtpm/ak.pub");
    const KEY: &[u8] = include_bytes!("../testdata/swtpm/key.pub");

    #[test]
    fn swtpm_signatures_verify_under_the_ak_only() {
        let ak = TpmPublic::from_tpm2b(AK).unwrap();
        let key = TpmPublic::from_tpm2b(KEY).unwrap();
        for (s, m) in [(SIG, ATTEST), (CSIG, CATTEST)] {
            let sig = TpmSignature::decode(s).unwrap();
            assert_eq!(sig.encode(), s);
            sig.verify(&ak, m).unwrap();
            // Another key, or one changed byte of the message: refused.
            assert_eq!(sig.verify(&key, m), Err(AttestationError::BadSignature));
            let mut changed = m.to_vec();
            changed[10] ^= 1;
            assert_eq!(
                sig.verify(&ak, &changed),
                Err(AttestationError::BadSignature)
            );
        }
        // The signature of one attestation does not cover the other.
        let sig = TpmSignature::decode(SIG).unwrap();
        assert!(sig.verify(&ak, CATTEST).is_err());
    }

    #[test]
    fn refuses_malformed() {
        for n in 0..SIG.len() {
            assert!(TpmSignature::decode(&SIG[..n]).is_err());
        }
        let mut t = SIG.to_vec();
        t.push(1);
        assert!(TpmSignature::decode(&t).is_err());
        let mut hmac = SIG.to_vec();
        hmac[0..2].copy_from_slice(&[0, 5]);
        assert!(matches!(
            TpmSignature::decode(&hmac),
            Err(AttestationError::Unsupported(_))
        ));
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            if let Ok(s) = TpmSignature::decode(&bytes) {
                prop_assert_eq!(s.encode(), bytes);
            }
        }
    }
}
