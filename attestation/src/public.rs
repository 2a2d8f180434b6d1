//! `TPMT_PUBLIC` (TPM 2.0 Part 2, 12.2.4) for RSA and ECC keys: a strict
//! decoder, the encoder it round-trips with, the object's name
//! (`nameAlg ‖ H(TPMT_PUBLIC)`) and its attributes.
//!
//! Devices send the `TPM2B_PUBLIC` that `tpm2_readpublic -o` writes; the
//! name is computed over the exact bytes received, never re-encoded ones.

use crate::AttestationError;
use crate::wire::{ALG_NULL, HashAlg, MAX_DIGEST, Reader, put_tpm2b, put_u16, put_u32};

const STRUCTURE: &str = "TPMT_PUBLIC";
const ALG_RSA: u16 = 0x0001;
const ALG_ECC: u16 = 0x0023;
/// The largest RSA modulus accepted (4096 bits).
const MAX_RSA: usize = 512;
/// The largest ECC coordinate accepted (P-521).
const MAX_ECC: usize = 66;

/// `TPMA_OBJECT` bits this verifier reads (Part 2, 8.3).
pub mod attr {
    /// The object cannot be duplicated (its private part never leaves this TPM).
    pub const FIXED_TPM: u32 = 1 << 1;
    /// The object's parent cannot change (it cannot be duplicated alone).
    pub const FIXED_PARENT: u32 = 1 << 4;
    /// The TPM generated the private part itself.
    pub const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;
    /// Duplication requires an encrypted outer wrapper.
    pub const ENCRYPTED_DUPLICATION: u32 = 1 << 11;
    /// The key signs only TPM-generated structures (or tickets).
    pub const RESTRICTED: u32 = 1 << 16;
    /// The key decrypts.
    pub const DECRYPT: u32 = 1 << 17;
    /// The key signs.
    pub const SIGN: u32 = 1 << 18;
}

/// A symmetric definition (`TPMT_SYM_DEF_OBJECT`): algorithm, key bits and
/// mode, or `TPM_ALG_NULL` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymDef {
    /// Algorithm id (`TPM_ALG_NULL` = 0x0010 for none).
    pub algorithm: u16,
    /// Key size and mode when the algorithm is not NULL.
    pub details: Option<(u16, u16)>,
}

/// A scheme with an optional hash (`TPMT_*_SCHEME`, `TPMT_KDF_SCHEME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    /// Scheme id (`TPM_ALG_NULL` for none).
    pub scheme: u16,
    /// Its hash, when the scheme is not NULL.
    pub hash: Option<u16>,
}

/// The algorithm-specific part of a public area.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// An RSA key.
    Rsa {
        /// Symmetric definition (for storage keys).
        symmetric: SymDef,
        /// Signing or encryption scheme.
        scheme: Scheme,
        /// Modulus size in bits.
        key_bits: u16,
        /// Public exponent; 0 means 65537.
        exponent: u32,
        /// Modulus, big-endian.
        modulus: Vec<u8>,
    },
    /// An ECC key.
    Ecc {
        /// Symmetric definition (for storage keys).
        symmetric: SymDef,
        /// Signing scheme.
        scheme: Scheme,
        /// `TPM_ECC_CURVE`: 0x0003 P-256, 0x0004 P-384.
        curve: u16,
        /// Key derivation scheme.
        kdf: Scheme,
        /// X coordinate, big-endian.
        x: Vec<u8>,
        /// Y coordinate, big-endian.
        y: Vec<u8>,
    },
}

/// A decoded `TPMT_PUBLIC`, with the bytes it was decoded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmPublic {
    /// `nameAlg`: the hash of the object's name.
    pub name_alg: HashAlg,
    /// `TPMA_OBJECT` bits.
    pub attributes: u32,
    /// The authorization policy digest (may be empty).
    pub auth_policy: Vec<u8>,
    /// Parameters and unique field.
    pub key: PublicKey,
    /// The exact `TPMT_PUBLIC` bytes (the name is computed over them).
    pub raw: Vec<u8>,
}

/// ECC curves (`TPM_ECC_CURVE`) this crate compares with X.509 keys.
pub const CURVE_P256: u16 = 0x0003;
/// NIST P-384.
pub const CURVE_P384: u16 = 0x0004;

fn read_sym(r: &mut Reader<'_>) -> Result<SymDef, AttestationError> {
    let algorithm = r.u16("symmetric.algorithm")?;
    let details = if algorithm == ALG_NULL {
        None
    } else {
        Some((r.u16("symmetric.keyBits")?, r.u16("symmetric.mode")?))
    };
    Ok(SymDef { algorithm, details })
}

fn read_scheme(r: &mut Reader<'_>, what: &str) -> Result<Scheme, AttestationError> {
    let scheme = r.u16(what)?;
    // ECDAA (0x001A) carries a count as well; no AK or device key here uses it.
    if scheme == 0x001A {
        return Err(AttestationError::Unsupported("the ECDAA scheme".into()));
    }
    let hash = if scheme == ALG_NULL {
        None
    } else {
        Some(r.u16(what)?)
    };
    Ok(Scheme { scheme, hash })
}

fn write_sym(out: &mut Vec<u8>, s: &SymDef) {
    put_u16(out, s.algorithm);
    if let Some((bits, mode)) = s.details {
        put_u16(out, bits);
        put_u16(out, mode);
    }
}

fn write_scheme(out: &mut Vec<u8>, s: &Scheme) {
    put_u16(out, s.scheme);
    if let Some(h) = s.hash {
        put_u16(out, h);
    }
}

impl TpmPublic {
    /// Decodes a `TPM2B_PUBLIC` (a 16-bit size, then a `TPMT_PUBLIC` of
    /// exactly that size).
    pub fn from_tpm2b(input: &[u8]) -> Result<Self, AttestationError> {
        let mut r = Reader::new(input, "TPM2B_PUBLIC");
        let inner = r.tpm2b("publicArea", 2048)?;
        r.finish()?;
        Self::from_tpmt(inner)
    }

    /// Decodes a `TPMT_PUBLIC`, refusing trailing bytes.
    pub fn from_tpmt(input: &[u8]) -> Result<Self, AttestationError> {
        let mut r = Reader::new(input, STRUCTURE);
        let kind = r.u16("type")?;
        let name_alg_id = r.u16("nameAlg")?;
        let name_alg = HashAlg::from_id(name_alg_id)
            .ok_or_else(|| AttestationError::Unsupported(format!("nameAlg 0x{name_alg_id:04x}")))?;
        let attributes = r.u32("objectAttributes")?;
        let auth_policy = r.tpm2b("authPolicy", MAX_DIGEST)?.to_vec();
        let key = match kind {
            ALG_RSA => {
                let symmetric = read_sym(&mut r)?;
                let scheme = read_scheme(&mut r, "scheme")?;
                let key_bits = r.u16("keyBits")?;
                let exponent = r.u32("exponent")?;
                let modulus = r.tpm2b("unique.rsa", MAX_RSA)?.to_vec();
                if modulus.len() * 8 != usize::from(key_bits) {
                    return Err(r.err(format!(
                        "modulus is {} bits, keyBits says {key_bits}",
                        modulus.len() * 8
                    )));
                }
                PublicKey::Rsa {
                    symmetric,
                    scheme,
                    key_bits,
                    exponent,
                    modulus,
                }
            }
            ALG_ECC => {
                let symmetric = read_sym(&mut r)?;
                let scheme = read_scheme(&mut r, "scheme")?;
                let curve = r.u16("curveID")?;
                let kdf = read_scheme(&mut r, "kdf")?;
                let x = r.tpm2b("unique.ecc.x", MAX_ECC)?.to_vec();
                let y = r.tpm2b("unique.ecc.y", MAX_ECC)?.to_vec();
                PublicKey::Ecc {
                    symmetric,
                    scheme,
                    curve,
                    kdf,
                    x,
                    y,
                }
            }
            other => {
                return Err(AttestationError::Unsupported(format!(
                    "public area type 0x{other:04x} (RSA and ECC keys are supported)"
                )));
            }
        };
        r.finish()?;
        Ok(Self {
            name_alg,
            attributes,
            auth_policy,
            key,
            raw: input.to_vec(),
        })
    }

    /// Encodes the `TPMT_PUBLIC` from the fields (equal to `raw` for a
    /// decoded value: the codec round-trips).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len().max(64));
        let kind = match self.key {
            PublicKey::Rsa { .. } => ALG_RSA,
            PublicKey::Ecc { .. } => ALG_ECC,
        };
        put_u16(&mut out, kind);
        put_u16(&mut out, self.name_alg.id());
        put_u32(&mut out, self.attributes);
        put_tpm2b(&mut out, &self.auth_policy);
        match &self.key {
            PublicKey::Rsa {
                symmetric,
                scheme,
                key_bits,
                exponent,
                modulus,
            } => {
                write_sym(&mut out, symmetric);
                write_scheme(&mut out, scheme);
                put_u16(&mut out, *key_bits);
                put_u32(&mut out, *exponent);
                put_tpm2b(&mut out, modulus);
            }
            PublicKey::Ecc {
                symmetric,
                scheme,
                curve,
                kdf,
                x,
                y,
            } => {
                write_sym(&mut out, symmetric);
                write_scheme(&mut out, scheme);
                put_u16(&mut out, *curve);
                write_scheme(&mut out, kdf);
                put_tpm2b(&mut out, x);
                put_tpm2b(&mut out, y);
            }
        }
        out
    }

    /// The object's name: `nameAlg` (2 bytes) ‖ H_nameAlg(`TPMT_PUBLIC`).
    pub fn name(&self) -> Vec<u8> {
        let mut name = self.name_alg.id().to_be_bytes().to_vec();
        name.extend_from_slice(ring::digest::digest(self.name_alg.digest(), &self.raw).as_ref());
        name
    }

    /// Whether every bit of `bits` is set.
    pub fn has(&self, bits: u32) -> bool {
        self.attributes & bits == bits
    }

    /// The key as the SubjectPublicKeyInfo of an X.509 key would carry it:
    /// an uncompressed SEC1 point for ECC (coordinates padded to the
    /// curve's size), `None` for RSA and unknown curves.
    pub fn ec_point(&self) -> Option<Vec<u8>> {
        let PublicKey::Ecc { curve, x, y, .. } = &self.key else {
            return None;
        };
        let size = match *curve {
            CURVE_P256 => 32,
            CURVE_P384 => 48,
            _ => return None,
        };
        if x.len() > size || y.len() > size {
            return None;
        }
        let mut point = Vec::with_capacity(1 + 2 * size);
        point.push(0x04);
        for c in [x, y] {
            point.resize(point.len() + size - c.len(), 0);
            point.extend_from_slice(c);
        }
        Some(point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &[u8] = include_bytes!("../testdata/swtpm/key.pub");
    const AK: &[u8] = include_bytes!("../testdata/swtpm/ak.pub");
    const AK_NAME: &[u8] = include_bytes!("../testdata/swtpm/ak.name");
    const EK: &[u8] = include_bytes!("../testdata/swtpm/ek.pub");
    const XKEY: &[u8] = include_bytes!("../testdata/swtpm/xkey.pub");

    #[test]
    fn swtpm_public_areas_round_trip_and_name_matches_the_tpm() {
        for input in [KEY, AK, EK, XKEY] {
            let p = TpmPublic::from_tpm2b(input).unwrap();
            assert_eq!(p.encode(), p.raw);
            assert_eq!(&input[2..], &p.raw[..]);
        }
        // The name the TPM itself reported (tpm2_createak -n).
        assert_eq!(TpmPublic::from_tpm2b(AK).unwrap().name(), AK_NAME);
    }

    #[test]
    fn reads_attributes_and_point() {
        let key = TpmPublic::from_tpm2b(KEY).unwrap();
        assert!(key.has(attr::FIXED_TPM | attr::FIXED_PARENT | attr::SENSITIVE_DATA_ORIGIN));
        assert_eq!(key.ec_point().unwrap().len(), 65);
        let ak = TpmPublic::from_tpm2b(AK).unwrap();
        assert!(ak.has(attr::RESTRICTED | attr::SIGN | attr::FIXED_TPM));
        let x = TpmPublic::from_tpm2b(XKEY).unwrap();
        assert!(!x.has(attr::FIXED_TPM) && !x.has(attr::FIXED_PARENT));
        let ek = TpmPublic::from_tpm2b(EK).unwrap();
        assert!(matches!(ek.key, PublicKey::Rsa { key_bits: 2048, .. }));
        assert!(ek.ec_point().is_none());
    }

    #[test]
    fn refuses_malformed() {
        // Truncated at every length.
        for n in 0..KEY.len() {
            assert!(TpmPublic::from_tpm2b(&KEY[..n]).is_err(), "prefix {n}");
        }
        let mut trailing = KEY.to_vec();
        trailing.push(0);
        assert!(TpmPublic::from_tpm2b(&trailing).is_err());
        // Size field larger than the content.
        let mut long = KEY.to_vec();
        long[1] = long[1].wrapping_add(1);
        assert!(TpmPublic::from_tpm2b(&long).is_err());
        // Unknown type (KEYEDHASH 0x0008), unknown nameAlg (SHA-1).
        let mut kind = KEY.to_vec();
        kind[2..4].copy_from_slice(&[0, 8]);
        assert!(matches!(
            TpmPublic::from_tpm2b(&kind),
            Err(AttestationError::Unsupported(_))
        ));
        let mut alg = KEY.to_vec();
        alg[4..6].copy_from_slice(&[0, 4]);
        assert!(TpmPublic::from_tpm2b(&alg).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = TpmPublic::from_tpm2b(&bytes);
            if let Ok(p) = TpmPublic::from_tpmt(&bytes) {
                prop_assert_eq!(p.encode(), bytes);
            }
        }

        #[test]
        fn any_flipped_byte_is_refused_or_reencodes(i in 0usize..0x58, v in any::<u8>()) {
            let mut b = KEY.to_vec();
            let i = i % b.len();
            b[i] = v;
            if let Ok(p) = TpmPublic::from_tpm2b(&b) {
                prop_assert_eq!(p.encode(), b[2..].to_vec());
            }
        }
    }
}
