//! P-256 key types shared by butterfly key expansion and escrow, and their
//! conversion to the byte formats ring and rcgen consume.
//!
//! * [`P256PublicKey`]: a validated curve point (never the point at
//!   infinity); encodes as a 65-byte uncompressed SEC1 point
//!   (`04 || X || Y`) or as a 91-byte DER `SubjectPublicKeyInfo`
//!   (`id-ecPublicKey`, `prime256v1`).
//! * [`P256PrivateKey`]: a non-zero scalar below the group order `n` together
//!   with its public key; encodes as a raw 32-byte big-endian scalar or as a
//!   138-byte PKCS#8 v1 document (RFC 5208 / RFC 5915 `ECPrivateKey` with the
//!   public key embedded and the curve given in the PKCS#8 algorithm
//!   identifier), the layout `ring::signature::EcdsaKeyPair::from_pkcs8`
//!   with `ECDSA_P256_SHA256_ASN1_SIGNING` and `rcgen::KeyPair` accept.
//!
//! The DER documents have a fixed layout for P-256, so they are written from
//! constant templates rather than with a general DER encoder; decoding
//! accepts exactly that layout and nothing else.

use std::fmt;
use std::sync::OnceLock;

use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::elliptic_curve::subtle::{ConditionallySelectable, ConstantTimeEq};
use p256::elliptic_curve::{Field, PrimeField};
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar, U256};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{PseudonymError, Result};

/// Length of an uncompressed SEC1 P-256 point: `04 || X(32) || Y(32)`.
pub const SEC1_UNCOMPRESSED_LEN: usize = 65;
/// Length of a raw P-256 private scalar, big-endian.
pub const SCALAR_LEN: usize = 32;

/// `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (0 unused) ...`
/// followed by the 65-byte point: the 91-byte DER SubjectPublicKeyInfo.
const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, // SEQUENCE, 89 bytes
    0x30, 0x13, // SEQUENCE AlgorithmIdentifier, 19 bytes
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, // OID 1.2.840.10045.2.1 id-ecPublicKey
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01,
    0x07, // OID 1.2.840.10045.3.1.7 prime256v1
    0x03, 0x42, 0x00, // BIT STRING, 66 bytes, 0 unused bits
];

/// PKCS#8 v1 `PrivateKeyInfo` up to (and including) the header of the
/// private-key OCTET STRING inside the RFC 5915 `ECPrivateKey`.
pub(crate) const PKCS8_PREFIX: [u8; 36] = [
    0x30, 0x81, 0x87, // SEQUENCE PrivateKeyInfo, 135 bytes
    0x02, 0x01, 0x00, // INTEGER version 0 (v1)
    0x30, 0x13, // SEQUENCE AlgorithmIdentifier, 19 bytes
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // OID id-ecPublicKey
    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, // OID prime256v1
    0x04, 0x6d, // OCTET STRING privateKey, 109 bytes
    0x30, 0x6b, // SEQUENCE ECPrivateKey, 107 bytes
    0x02, 0x01, 0x01, // INTEGER version 1
    0x04, 0x20, // OCTET STRING privateKey, 32 bytes
];

/// Between the scalar and the public point: `[1] { BIT STRING (0 unused) }`.
pub(crate) const PKCS8_MIDDLE: [u8; 5] = [
    0xa1, 0x44, // [1] publicKey, 68 bytes
    0x03, 0x42, 0x00, // BIT STRING, 66 bytes, 0 unused bits
];

/// Total length of the PKCS#8 document this module writes.
pub const PKCS8_LEN: usize =
    PKCS8_PREFIX.len() + SCALAR_LEN + PKCS8_MIDDLE.len() + SEC1_UNCOMPRESSED_LEN;
/// Total length of the SubjectPublicKeyInfo this module writes.
pub const SPKI_LEN: usize = SPKI_PREFIX.len() + SEC1_UNCOMPRESSED_LEN;

/// Fills an array from ring's system random number generator.
pub(crate) fn random_array<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| PseudonymError::Random)?;
    Ok(out)
}

/// Reduces a 512-bit big-endian integer modulo the group order `n`.
///
/// `x = hi * 2^256 + lo`, so `x mod n = (hi mod n) * (2^256 mod n) + (lo mod n)`.
/// Each 256-bit half is below `2n`, so p256's single-subtraction `reduce` is
/// exact for it. The bias of the result is below `2^-256`: no rejection
/// sampling is needed.
pub(crate) fn scalar_from_wide(bytes: &[u8; 64]) -> Scalar {
    let mut hi_bytes = [0u8; 32];
    let mut lo_bytes = [0u8; 32];
    hi_bytes.copy_from_slice(&bytes[..32]);
    lo_bytes.copy_from_slice(&bytes[32..]);
    let hi = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(hi_bytes));
    let lo = <Scalar as Reduce<U256>>::reduce_bytes(&FieldBytes::from(lo_bytes));
    hi_bytes.zeroize();
    lo_bytes.zeroize();
    // 2^256 mod n = ((2^256 - 1) mod n) + 1.
    let two_256 = <Scalar as Reduce<U256>>::reduce(U256::MAX) + Scalar::ONE;
    hi * two_256 + lo
}

/// `s·G` from a table of `j·16^i·G` (64 rows of 16 affine points, built
/// once, about 72 KiB): 64 constant-time lookups and complete mixed
/// additions instead of p256 0.13's generic 256-doubling ladder, which has
/// no precomputed base-point table. Every row is scanned in full for each
/// nibble, so the memory access pattern does not depend on `s`.
pub(crate) fn mul_generator(s: &Scalar) -> ProjectivePoint {
    static TABLE: OnceLock<Vec<[AffinePoint; 16]>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut rows = Vec::with_capacity(64);
        let mut base = ProjectivePoint::GENERATOR;
        for _ in 0..64 {
            let mut row = [AffinePoint::IDENTITY; 16];
            let mut acc = ProjectivePoint::IDENTITY;
            for entry in row.iter_mut().skip(1) {
                acc += base;
                *entry = acc.to_affine();
            }
            rows.push(row);
            // 16·base = 15·base + base.
            base = acc + base;
        }
        rows
    });
    let mut bytes = s.to_repr();
    let mut acc = ProjectivePoint::IDENTITY;
    for (i, row) in table.iter().enumerate() {
        // Nibble i from the least significant end of the big-endian bytes.
        let byte = bytes[31 - i / 2];
        let nibble = if i % 2 == 0 { byte & 0x0f } else { byte >> 4 };
        let mut point = AffinePoint::IDENTITY;
        for (j, entry) in row.iter().enumerate() {
            point.conditional_assign(entry, (j as u8).ct_eq(&nibble));
        }
        acc += &point;
    }
    bytes.zeroize();
    acc
}

/// A uniformly random non-zero scalar (64 random bytes, wide-reduced).
pub(crate) fn random_nonzero_scalar(what: &'static str) -> Result<Scalar> {
    let wide = Zeroizing::new(random_array::<64>()?);
    let s = scalar_from_wide(&wide);
    if bool::from(s.is_zero()) {
        // Probability 2^-256; refuse rather than loop.
        return Err(PseudonymError::DegenerateKey { what });
    }
    Ok(s)
}

/// Parses a canonical big-endian scalar: below `n` and non-zero.
pub(crate) fn scalar_from_bytes(bytes: &[u8; SCALAR_LEN], what: &'static str) -> Result<Scalar> {
    let s: Option<Scalar> = Scalar::from_repr(FieldBytes::from(*bytes)).into();
    match s {
        Some(s) if !bool::from(s.is_zero()) => Ok(s),
        _ => Err(PseudonymError::InvalidScalar { what }),
    }
}

/// The big-endian bytes of a scalar.
pub(crate) fn scalar_to_bytes(s: &Scalar) -> Zeroizing<[u8; SCALAR_LEN]> {
    let mut out = Zeroizing::new([0u8; SCALAR_LEN]);
    let mut repr = s.to_repr();
    out.copy_from_slice(&repr);
    repr.zeroize();
    out
}

/// Lowercase hex, for Debug output of public values.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// A P-256 public key: a point on the curve other than the point at infinity.
///
/// Public data: `Debug` shows the uncompressed SEC1 encoding in hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct P256PublicKey(p256::PublicKey);

impl P256PublicKey {
    /// Parses a 65-byte uncompressed SEC1 point (`04 || X || Y`), checking
    /// that it is on the curve. Compressed points and the point at infinity
    /// are rejected so every key has exactly one encoding.
    pub fn from_sec1_uncompressed(bytes: &[u8]) -> Result<Self> {
        Self::parse(bytes, "P-256 public key")
    }

    pub(crate) fn parse(bytes: &[u8], what: &'static str) -> Result<Self> {
        if bytes.len() != SEC1_UNCOMPRESSED_LEN || bytes[0] != 0x04 {
            return Err(PseudonymError::InvalidPublicKey { what });
        }
        p256::PublicKey::from_sec1_bytes(bytes)
            .map(Self)
            .map_err(|_| PseudonymError::InvalidPublicKey { what })
    }

    /// Parses a DER SubjectPublicKeyInfo in exactly the 91-byte layout that
    /// [`P256PublicKey::to_spki_der`] writes.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        if der.len() != SPKI_LEN || der[..SPKI_PREFIX.len()] != SPKI_PREFIX {
            return Err(PseudonymError::InvalidPublicKey {
                what: "SubjectPublicKeyInfo",
            });
        }
        Self::parse(&der[SPKI_PREFIX.len()..], "SubjectPublicKeyInfo")
    }

    /// The 65-byte uncompressed SEC1 encoding `04 || X || Y`, as taken by
    /// `ring::signature::UnparsedPublicKey` with `ECDSA_P256_SHA256_ASN1`
    /// and by `ring::agreement::UnparsedPublicKey` with `ECDH_P256`.
    pub fn to_sec1_uncompressed(&self) -> [u8; SEC1_UNCOMPRESSED_LEN] {
        let point = self.0.as_affine().to_encoded_point(false);
        let mut out = [0u8; SEC1_UNCOMPRESSED_LEN];
        // An uncompressed encoding of a non-identity point is always 65 bytes.
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// The 91-byte DER SubjectPublicKeyInfo (`id-ecPublicKey`, `prime256v1`,
    /// uncompressed point), e.g. for `rcgen::SubjectPublicKeyInfo::from_der`.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SPKI_LEN);
        out.extend_from_slice(&SPKI_PREFIX);
        out.extend_from_slice(&self.to_sec1_uncompressed());
        out
    }

    /// Wraps a computed point, refusing the point at infinity.
    pub(crate) fn from_point(point: ProjectivePoint, what: &'static str) -> Result<Self> {
        if bool::from(point.is_identity()) {
            return Err(PseudonymError::DegenerateKey { what });
        }
        p256::PublicKey::from_affine(point.to_affine())
            .map(Self)
            .map_err(|_| PseudonymError::DegenerateKey { what })
    }

    pub(crate) fn to_projective(self) -> ProjectivePoint {
        self.0.to_projective()
    }
}

impl std::hash::Hash for P256PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.to_sec1_uncompressed().hash(state);
    }
}

impl fmt::Debug for P256PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("P256PublicKey")
            .field(&to_hex(&self.to_sec1_uncompressed()))
            .finish()
    }
}

/// A P-256 private key: a non-zero scalar below `n`, with its public key.
///
/// The scalar is wiped on drop and never shown by `Debug` (which prints
/// only the public key).
#[derive(Clone)]
pub struct P256PrivateKey {
    d: Scalar,
    public: P256PublicKey,
}

impl P256PrivateKey {
    /// A fresh random key from the system random number generator.
    pub fn generate() -> Result<Self> {
        Self::from_scalar(
            random_nonzero_scalar("generated private key")?,
            "generated private key",
        )
    }

    /// Loads a raw 32-byte big-endian scalar (must be non-zero and below `n`).
    pub fn from_bytes(bytes: &[u8; SCALAR_LEN]) -> Result<Self> {
        let d = scalar_from_bytes(bytes, "P-256 private key")?;
        Self::from_scalar(d, "P-256 private key")
    }

    pub(crate) fn from_scalar(d: Scalar, what: &'static str) -> Result<Self> {
        if bool::from(d.is_zero()) {
            return Err(PseudonymError::DegenerateKey { what });
        }
        let public = P256PublicKey::from_point(mul_generator(&d), what)?;
        Ok(Self { d, public })
    }

    /// The raw 32-byte big-endian scalar (secret; wiped when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        scalar_to_bytes(&self.d)
    }

    /// The public key `d·G`.
    pub fn public_key(&self) -> P256PublicKey {
        self.public
    }

    /// A 138-byte PKCS#8 v1 document with the public key embedded, as
    /// `ring::signature::EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, ..)`
    /// and `rcgen::KeyPair::try_from(..)` require (secret; wiped when dropped).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(PKCS8_LEN));
        out.extend_from_slice(&PKCS8_PREFIX);
        out.extend_from_slice(self.to_bytes().as_ref());
        out.extend_from_slice(&PKCS8_MIDDLE);
        out.extend_from_slice(&self.public.to_sec1_uncompressed());
        out
    }

    /// Parses a PKCS#8 document in exactly the layout
    /// [`P256PrivateKey::to_pkcs8_der`] (and ring's `generate_pkcs8`) writes,
    /// checking that the embedded public key belongs to the scalar.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        if der.len() != PKCS8_LEN {
            return Err(PseudonymError::InvalidPkcs8 {
                reason: "wrong length for a P-256 PKCS#8 v1 document with public key",
            });
        }
        let (prefix, rest) = der.split_at(PKCS8_PREFIX.len());
        let (scalar, rest) = rest.split_at(SCALAR_LEN);
        let (middle, point) = rest.split_at(PKCS8_MIDDLE.len());
        if prefix != PKCS8_PREFIX || middle != PKCS8_MIDDLE {
            return Err(PseudonymError::InvalidPkcs8 {
                reason: "not the P-256 ecPublicKey PKCS#8 v1 layout",
            });
        }
        let mut raw = Zeroizing::new([0u8; SCALAR_LEN]);
        raw.copy_from_slice(scalar);
        let key = Self::from_bytes(&raw)?;
        let embedded = P256PublicKey::parse(point, "PKCS#8 embedded public key")?;
        if embedded != key.public {
            return Err(PseudonymError::InvalidPkcs8 {
                reason: "embedded public key does not match the private key",
            });
        }
        Ok(key)
    }

    pub(crate) fn scalar(&self) -> &Scalar {
        &self.d
    }

    /// Static ECDH: the x-coordinate of `d·Q` (SEC 1 §3.3.1). Two parties
    /// with long-term keys derive the same secret without sending one, as a
    /// linkage authority and a pseudonym CA do for their transport key.
    pub fn shared_secret(&self, peer: &P256PublicKey) -> Result<Zeroizing<[u8; SCALAR_LEN]>> {
        let shared = peer.to_projective() * self.d;
        if bool::from(shared.is_identity()) {
            return Err(PseudonymError::DegenerateKey {
                what: "ECDH shared point",
            });
        }
        let encoded = shared.to_affine().to_encoded_point(false);
        let mut x = Zeroizing::new([0u8; SCALAR_LEN]);
        x.copy_from_slice(&encoded.as_bytes()[1..1 + SCALAR_LEN]);
        Ok(x)
    }
}

impl Drop for P256PrivateKey {
    fn drop(&mut self) {
        self.d.zeroize();
    }
}

impl fmt::Debug for P256PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P256PrivateKey")
            .field("d", &"<redacted>")
            .field("public", &self.public)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
        UnparsedPublicKey,
    };

    #[test]
    fn pkcs8_template_matches_ring_generated_documents() {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let der = doc.as_ref();
        assert_eq!(der.len(), PKCS8_LEN);
        assert_eq!(&der[..PKCS8_PREFIX.len()], &PKCS8_PREFIX);
        let key = P256PrivateKey::from_pkcs8_der(der).unwrap();
        let ring_key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der, &rng).unwrap();
        assert_eq!(
            ring_key.public_key().as_ref(),
            &key.public_key().to_sec1_uncompressed()
        );
        assert_eq!(key.to_pkcs8_der().as_slice(), der);
    }

    #[test]
    fn generated_key_signs_in_ring() {
        let rng = SystemRandom::new();
        let key = P256PrivateKey::generate().unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            key.to_pkcs8_der().as_ref(),
            &rng,
        )
        .unwrap();
        let sig = pair.sign(&rng, b"hello").unwrap();
        UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_ASN1,
            key.public_key().to_sec1_uncompressed(),
        )
        .verify(b"hello", sig.as_ref())
        .unwrap();
    }

    #[test]
    fn spki_round_trip_and_rejections() {
        let key = P256PrivateKey::generate().unwrap().public_key();
        let der = key.to_spki_der();
        assert_eq!(der.len(), SPKI_LEN);
        assert_eq!(P256PublicKey::from_spki_der(&der).unwrap(), key);
        let mut bad = der.clone();
        bad[5] ^= 1;
        assert!(P256PublicKey::from_spki_der(&bad).is_err());
        assert!(P256PublicKey::from_spki_der(&der[..90]).is_err());
        let mut off_curve = key.to_sec1_uncompressed();
        off_curve[64] ^= 1;
        assert!(P256PublicKey::from_sec1_uncompressed(&off_curve).is_err());
        assert!(P256PublicKey::from_sec1_uncompressed(&[0u8; 65]).is_err());
        assert!(P256PublicKey::from_sec1_uncompressed(&[0u8]).is_err());
    }

    #[test]
    fn pkcs8_rejects_mismatched_public_key() {
        let a = P256PrivateKey::generate().unwrap();
        let b = P256PrivateKey::generate().unwrap();
        let mut der = a.to_pkcs8_der().to_vec();
        let off = PKCS8_LEN - SEC1_UNCOMPRESSED_LEN;
        der[off..].copy_from_slice(&b.public_key().to_sec1_uncompressed());
        assert!(matches!(
            P256PrivateKey::from_pkcs8_der(&der),
            Err(PseudonymError::InvalidPkcs8 { .. })
        ));
    }

    #[test]
    fn scalar_parsing_rejects_zero_and_order() {
        assert!(scalar_from_bytes(&[0u8; 32], "t").is_err());
        // n itself.
        let n = [
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2,
            0xfc, 0x63, 0x25, 0x51,
        ];
        assert!(scalar_from_bytes(&n, "t").is_err());
        let mut n_minus_1 = n;
        n_minus_1[31] -= 1;
        assert!(scalar_from_bytes(&n_minus_1, "t").is_ok());
    }

    #[test]
    fn wide_reduction_small_values() {
        let mut wide = [0u8; 64];
        wide[63] = 7;
        assert_eq!(scalar_from_wide(&wide), Scalar::from(7u64));
        // 2^256 -> 2^256 mod n, and (2^256)*(n) style check: hi=1, lo=0.
        let mut one_hi = [0u8; 64];
        one_hi[31] = 1;
        let two_256 = scalar_from_wide(&one_hi);
        // 2^256 = 2^128 * 2^128.
        let two_128 = Scalar::from(u128::MAX) + Scalar::ONE;
        assert_eq!(two_256, two_128 * two_128);
    }

    #[test]
    fn table_multiplication_matches_the_generic_ladder() {
        let mut n_minus_1 = [
            0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2,
            0xfc, 0x63, 0x25, 0x51,
        ];
        n_minus_1[31] -= 1;
        let mut scalars = vec![
            Scalar::ZERO,
            Scalar::ONE,
            Scalar::from(15u64),
            Scalar::from(16u64),
            Scalar::from(u64::MAX),
            scalar_from_bytes(&n_minus_1, "t").unwrap(),
        ];
        for _ in 0..200 {
            scalars.push(random_nonzero_scalar("t").unwrap());
        }
        for s in scalars {
            assert_eq!(
                mul_generator(&s).to_affine(),
                (ProjectivePoint::GENERATOR * s).to_affine()
            );
        }
    }

    #[test]
    fn debug_redacts_private_scalar() {
        let key = P256PrivateKey::generate().unwrap();
        let dbg = format!("{key:?}");
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains(&to_hex(key.to_bytes().as_ref())));
    }
}
