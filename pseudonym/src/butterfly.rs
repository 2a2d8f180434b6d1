//! Butterfly key expansion on P-256 (IEEE 1609.2.1 9.3, the unified
//! variant; checked against the CAMP SCMS test vectors): the
//! vehicle sends one caterpillar public key and an expansion key, the CA
//! derives any number of unlinkable certificate public keys from them, and
//! only the vehicle can compute the matching private keys.
//!
//! # Construction
//!
//! `G` is the P-256 base point, `n` its order; `BE64`/`BE32` are big-endian
//! integers; `OS2IP` reads bytes as a big-endian integer.
//!
//! ```text
//! vehicle:  a  <- random scalar in [1, n)        (caterpillar private key)
//!           A  =  a·G                            (caterpillar public key)
//!           k  <- 16 random bytes                (expansion key)
//!           sends (A, k) to the CA               (ButterflyRequest, 81 bytes: A(65) || k(16))
//!
//! both:     x = 0^32 || BE32(i) || BE32(j) || 0^32     (a 128-bit integer)
//!           f(k, i, j) = OS2IP((AES_k(x+1) XOR (x+1)) || (AES_k(x+2) XOR (x+2))
//!                              || (AES_k(x+3) XOR (x+3))) mod n   (384-bit reduction)
//!
//! CA:       B_ij = A + f(k, i, j)·G              (cocoon public key)
//!           c_ij <- random scalar in [1, n)      (CA contribution)
//!           P_ij = B_ij + c_ij·G                 (certified public key)
//!           returns (certificate over P_ij, c_ij)
//!
//! vehicle:  p_ij = a + f(k, i, j) + c_ij mod n   (and checks p_ij·G == P_ij)
//! ```
//!
//! `i` is the absolute period index and `j` the certificate index within the
//! period, the same pair that selects the linkage value.
//!
//! # Why `c_ij` is added, and what encrypting it would add
//!
//! Without `c_ij`, anyone who knows `(A, k)` could compute every `P_ij` and
//! link all of the vehicle's certificates. With it, linking `P_ij` to the
//! vehicle needs `c_ij` too. The private key needs `a`, which never leaves
//! the vehicle, so handing `c_ij` out in the clear cannot let anyone else sign.
//!
//! In the SCMS the registration authority (which knows `(A, k)` and the
//! vehicle's identity) forwards cocoon keys to the pseudonym CA, and the PCA
//! encrypts `(certificate, c_ij)` to a second butterfly-expanded encryption
//! key, so that the RA, relaying the response, never sees `P_ij` or `c_ij` and
//! cannot link certificates to the vehicle. Here one CA does both jobs and
//! the response travels inside the vehicle's mutually authenticated TLS
//! session, so encryption would protect nothing from the only party in the
//! middle (the CA itself); it would matter once expansion and issuance are
//! split between operators, or responses are stored or relayed. What keeps
//! the CA operator from linking later is that `(A, k)` and `c_ij` are not
//! stored after issuance (see docs/pseudonyms.md).

use std::fmt;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use p256::Scalar;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{PseudonymError, Result};
use crate::keys::{
    P256PrivateKey, P256PublicKey, SCALAR_LEN, SEC1_UNCOMPRESSED_LEN, mul_generator, random_array,
    random_nonzero_scalar, scalar_from_bytes, scalar_from_wide, scalar_to_bytes,
};

/// Length of the expansion key `k`.
pub const EXPANSION_KEY_LEN: usize = 16;
/// Length of [`Caterpillar::to_bytes`]: `a(32) || k(16)`.
pub const CATERPILLAR_LEN: usize = SCALAR_LEN + EXPANSION_KEY_LEN;
/// Length of [`ButterflyRequest::to_bytes`]: `A(65, uncompressed SEC1) || k(16)`.
pub const BUTTERFLY_REQUEST_LEN: usize = SEC1_UNCOMPRESSED_LEN + EXPANSION_KEY_LEN;

/// The 16-byte butterfly expansion key `k`. Secret: knowing it together with
/// the caterpillar public key allows computing every cocoon key. Wiped on
/// drop; `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct ExpansionKey([u8; EXPANSION_KEY_LEN]);

impl ExpansionKey {
    /// A fresh random expansion key.
    pub fn generate() -> Result<Self> {
        Ok(Self(random_array()?))
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; EXPANSION_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; EXPANSION_KEY_LEN] {
        &self.0
    }
}

impl Drop for ExpansionKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ExpansionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExpansionKey(<redacted>)")
    }
}

/// `f(k, i, j)`: see the module documentation. `i` must fit the 32 bits
/// the standard's input block gives it.
pub(crate) fn expansion_value(k: &ExpansionKey, period: u64, j: u32) -> Result<Scalar> {
    let i = u32::try_from(period).map_err(|_| PseudonymError::PeriodOutOfRange(period))?;
    let cipher = Aes128::new(&k.0.into());
    let x = (u128::from(i) << 64) | (u128::from(j) << 32);
    // 48 bytes right-aligned in the 64 the wide reduction takes.
    let mut wide = Zeroizing::new([0u8; 64]);
    for (t, out) in (1u128..=3).zip(wide[16..].chunks_exact_mut(16)) {
        let input = (x + t).to_be_bytes();
        let mut block = aes::Block::from(input);
        cipher.encrypt_block(&mut block);
        for ((o, e), x) in out.iter_mut().zip(block.iter()).zip(input.iter()) {
            *o = e ^ x;
        }
    }
    Ok(scalar_from_wide(&wide))
}

/// The CA's random contribution `c_ij` for one certificate, returned to the
/// vehicle with the certificate. Wiped on drop; `Debug` prints `<redacted>`
/// (it links the cocoon key to the certified key).
#[derive(Clone)]
pub struct CaContribution(Scalar);

impl CaContribution {
    /// A fresh random non-zero scalar.
    pub fn generate() -> Result<Self> {
        Ok(Self(random_nonzero_scalar("CA contribution")?))
    }

    /// Parses 32 big-endian bytes; must be non-zero and below `n`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: &[u8; SCALAR_LEN] =
            bytes
                .try_into()
                .map_err(|_| PseudonymError::InvalidLength {
                    what: "CA contribution",
                    expected: SCALAR_LEN,
                    actual: bytes.len(),
                })?;
        Ok(Self(scalar_from_bytes(arr, "CA contribution")?))
    }

    /// The 32 big-endian bytes (to put in the issuance response).
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        scalar_to_bytes(&self.0)
    }

    /// A fresh contribution and the certified key `P = B + c·G` for the
    /// cocoon key `B`, with `c·G` from ring's base-point multiplication
    /// (about four times faster than [`CaContribution::certify`]'s): ring
    /// makes the key pair, whose PKCS#8 document carries `c` and `c·G`.
    pub fn generate_certified(cocoon: &P256PublicKey) -> Result<(Self, P256PublicKey)> {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| PseudonymError::Random)?;
        let der = pkcs8.as_ref();
        let scalar_at = crate::keys::PKCS8_PREFIX.len();
        let point_at = scalar_at + SCALAR_LEN + crate::keys::PKCS8_MIDDLE.len();
        if der.len() != point_at + SEC1_UNCOMPRESSED_LEN
            || der[..scalar_at] != crate::keys::PKCS8_PREFIX
        {
            return Err(PseudonymError::InvalidPkcs8 {
                reason: "ring's PKCS#8 layout changed",
            });
        }
        let mut scalar = Zeroizing::new([0u8; SCALAR_LEN]);
        scalar.copy_from_slice(&der[scalar_at..scalar_at + SCALAR_LEN]);
        let c = scalar_from_bytes(&scalar, "CA contribution")?;
        let c_g = P256PublicKey::parse(&der[point_at..], "CA contribution point")?;
        let p = cocoon.to_projective() + c_g.to_projective();
        Ok((
            Self(c),
            P256PublicKey::from_point(p, "butterfly public key")?,
        ))
    }

    /// The certified key `P = B + c·G` from a cocoon key `B` alone: what a
    /// pseudonym CA computes when a registration authority did the
    /// expansion and forwards only `B`, so the CA never sees `(A, k)`.
    pub fn certify(&self, cocoon: &P256PublicKey) -> Result<P256PublicKey> {
        let p = cocoon.to_projective() + mul_generator(&self.0);
        P256PublicKey::from_point(p, "butterfly public key")
    }
}

impl Drop for CaContribution {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for CaContribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaContribution(<redacted>)")
    }
}

/// The vehicle's butterfly secret: caterpillar private key `a` and expansion
/// key `k`. Kept by the vehicle only. `Debug` shows only the caterpillar
/// public key.
#[derive(Clone)]
pub struct Caterpillar {
    key: P256PrivateKey,
    expansion_key: ExpansionKey,
}

impl Caterpillar {
    /// A fresh caterpillar key pair and expansion key.
    pub fn generate() -> Result<Self> {
        Ok(Self {
            key: P256PrivateKey::generate()?,
            expansion_key: ExpansionKey::generate()?,
        })
    }

    /// Assembles a caterpillar from its parts.
    pub fn from_parts(key: P256PrivateKey, expansion_key: ExpansionKey) -> Self {
        Self { key, expansion_key }
    }

    /// `a(32, big-endian) || k(16)`, for the vehicle's secure storage
    /// (secret; wiped when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; CATERPILLAR_LEN]> {
        let mut out = Zeroizing::new([0u8; CATERPILLAR_LEN]);
        out[..SCALAR_LEN].copy_from_slice(self.key.to_bytes().as_ref());
        out[SCALAR_LEN..].copy_from_slice(self.expansion_key.as_bytes());
        out
    }

    /// Parses [`Caterpillar::to_bytes`] (exactly 48 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != CATERPILLAR_LEN {
            return Err(PseudonymError::InvalidLength {
                what: "caterpillar",
                expected: CATERPILLAR_LEN,
                actual: bytes.len(),
            });
        }
        let mut a = Zeroizing::new([0u8; SCALAR_LEN]);
        a.copy_from_slice(&bytes[..SCALAR_LEN]);
        let mut k = [0u8; EXPANSION_KEY_LEN];
        k.copy_from_slice(&bytes[SCALAR_LEN..]);
        let key = P256PrivateKey::from_bytes(&a).map_err(|_| PseudonymError::InvalidScalar {
            what: "caterpillar private key",
        })?;
        Ok(Self::from_parts(key, ExpansionKey::from_bytes(k)))
    }

    /// The caterpillar public key `A`.
    pub fn public_key(&self) -> P256PublicKey {
        self.key.public_key()
    }

    /// The expansion key `k`.
    pub fn expansion_key(&self) -> &ExpansionKey {
        &self.expansion_key
    }

    /// What the vehicle sends to the CA: `(A, k)`.
    pub fn request(&self) -> ButterflyRequest {
        ButterflyRequest::new(self.public_key(), self.expansion_key.clone())
    }

    /// The cocoon private key `b = a + f(k, period, j) mod n`, whose public
    /// key is [`ButterflyRequest::cocoon_public_key`]: a pseudonym CA
    /// encrypts its response to `B`, so only the vehicle can read it (the
    /// "unified" butterfly construction, one key for signing and
    /// encryption).
    pub fn cocoon_private_key(&self, period: u64, j: u32) -> Result<P256PrivateKey> {
        let mut f = expansion_value(&self.expansion_key, period, j)?;
        let b = *self.key.scalar() + f;
        f.zeroize();
        P256PrivateKey::from_scalar(b, "cocoon private key")
    }

    /// [`Caterpillar::cocoon_private_key`] as 32 big-endian bytes, without
    /// computing its public key (the vehicle only decrypts with it; this
    /// saves a scalar multiplication per ticket). Zero is refused.
    pub fn cocoon_secret(&self, period: u64, j: u32) -> Result<Zeroizing<[u8; SCALAR_LEN]>> {
        let mut f = expansion_value(&self.expansion_key, period, j)?;
        let mut b = *self.key.scalar() + f;
        f.zeroize();
        if bool::from(p256::elliptic_curve::Field::is_zero(&b)) {
            return Err(PseudonymError::DegenerateKey {
                what: "cocoon private key",
            });
        }
        let bytes = scalar_to_bytes(&b);
        b.zeroize();
        Ok(bytes)
    }

    /// The private key of certificate `(period, j)`:
    /// `p = a + f(k, period, j) + c mod n`.
    pub fn derive_private_key(
        &self,
        period: u64,
        j: u32,
        contribution: &CaContribution,
    ) -> Result<P256PrivateKey> {
        let mut f = expansion_value(&self.expansion_key, period, j)?;
        let p = *self.key.scalar() + f + contribution.0;
        f.zeroize();
        P256PrivateKey::from_scalar(p, "butterfly private key")
    }

    /// [`Caterpillar::derive_private_key`], then checks that the result
    /// belongs to `issued` (the public key in the certificate the CA
    /// returned). Vehicles should use this before adding a certificate to
    /// their pool.
    pub fn derive_and_check(
        &self,
        period: u64,
        j: u32,
        contribution: &CaContribution,
        issued: &P256PublicKey,
    ) -> Result<P256PrivateKey> {
        let key = self.derive_private_key(period, j, contribution)?;
        if key.public_key() != *issued {
            return Err(PseudonymError::KeyMismatch { period, j });
        }
        Ok(key)
    }
}

impl fmt::Debug for Caterpillar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caterpillar")
            .field("a", &"<redacted>")
            .field("public", &self.public_key())
            .field("expansion_key", &self.expansion_key)
            .finish()
    }
}

/// The vehicle's butterfly request to the CA: caterpillar public key `A` and
/// expansion key `k`. The CA should use it for one issuance and then drop it:
/// whoever keeps it can recompute every cocoon key. `Debug` redacts `k`.
#[derive(Clone)]
pub struct ButterflyRequest {
    caterpillar: P256PublicKey,
    expansion_key: ExpansionKey,
}

impl ButterflyRequest {
    /// A request from its parts.
    pub fn new(caterpillar: P256PublicKey, expansion_key: ExpansionKey) -> Self {
        Self {
            caterpillar,
            expansion_key,
        }
    }

    /// The caterpillar public key `A`.
    pub fn caterpillar_public_key(&self) -> &P256PublicKey {
        &self.caterpillar
    }

    /// The expansion key `k`.
    pub fn expansion_key(&self) -> &ExpansionKey {
        &self.expansion_key
    }

    /// `A(65, uncompressed SEC1) || k(16)` (secret because of `k`).
    pub fn to_bytes(&self) -> Zeroizing<[u8; BUTTERFLY_REQUEST_LEN]> {
        let mut out = Zeroizing::new([0u8; BUTTERFLY_REQUEST_LEN]);
        out[..SEC1_UNCOMPRESSED_LEN].copy_from_slice(&self.caterpillar.to_sec1_uncompressed());
        out[SEC1_UNCOMPRESSED_LEN..].copy_from_slice(self.expansion_key.as_bytes());
        out
    }

    /// Parses [`ButterflyRequest::to_bytes`] (exactly 81 bytes, valid point).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != BUTTERFLY_REQUEST_LEN {
            return Err(PseudonymError::InvalidLength {
                what: "butterfly request",
                expected: BUTTERFLY_REQUEST_LEN,
                actual: bytes.len(),
            });
        }
        let caterpillar =
            P256PublicKey::parse(&bytes[..SEC1_UNCOMPRESSED_LEN], "caterpillar public key")?;
        let mut k = [0u8; EXPANSION_KEY_LEN];
        k.copy_from_slice(&bytes[SEC1_UNCOMPRESSED_LEN..]);
        Ok(Self::new(caterpillar, ExpansionKey::from_bytes(k)))
    }

    /// The cocoon public key `B = A + f(k, period, j)·G`.
    pub fn cocoon_public_key(&self, period: u64, j: u32) -> Result<P256PublicKey> {
        let f = expansion_value(&self.expansion_key, period, j)?;
        let b = self.caterpillar.to_projective() + mul_generator(&f);
        P256PublicKey::from_point(b, "cocoon public key")
    }

    /// The certified public key for a given contribution:
    /// `P = A + (f(k, period, j) + c)·G`.
    pub fn expand_public_key(
        &self,
        period: u64,
        j: u32,
        contribution: &CaContribution,
    ) -> Result<P256PublicKey> {
        let f = expansion_value(&self.expansion_key, period, j)?;
        let p = self.caterpillar.to_projective() + mul_generator(&(f + contribution.0));
        P256PublicKey::from_point(p, "butterfly public key")
    }

    /// CA side for one certificate: draws a fresh `c` and returns
    /// `P = B + c·G` with `c`.
    pub fn issue(&self, period: u64, j: u32) -> Result<IssuedKey> {
        let contribution = CaContribution::generate()?;
        let public_key = self.expand_public_key(period, j, &contribution)?;
        Ok(IssuedKey {
            public_key,
            ca_contribution: contribution,
        })
    }

    /// [`ButterflyRequest::issue`] for `j = 0..count` of `period`.
    pub fn issue_batch(&self, period: u64, count: u32) -> Result<Vec<IssuedKey>> {
        (0..count).map(|j| self.issue(period, j)).collect()
    }
}

impl fmt::Debug for ButterflyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ButterflyRequest")
            .field("caterpillar", &self.caterpillar)
            .field("expansion_key", &self.expansion_key)
            .finish()
    }
}

/// One CA-expanded key: the public key to certify and the contribution to
/// return to the vehicle.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    /// `P_ij`, the key to put in the certificate.
    pub public_key: P256PublicKey,
    /// `c_ij`, to send back to the vehicle with the certificate.
    pub ca_contribution: CaContribution,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::to_hex;

    #[test]
    fn degenerate_private_key_is_refused() {
        let cat = Caterpillar::generate().unwrap();
        let f = expansion_value(cat.expansion_key(), 5, 1).unwrap();
        // c = -(a + f) makes p zero.
        let c = CaContribution(-(*cat.key.scalar() + f));
        assert!(matches!(
            cat.derive_private_key(5, 1, &c),
            Err(PseudonymError::DegenerateKey { .. })
        ));
        assert!(matches!(
            cat.request().expand_public_key(5, 1, &c),
            Err(PseudonymError::DegenerateKey { .. })
        ));
        assert!(CaContribution::from_bytes(&[0u8; 32]).is_err());
    }

    /// The split (unified butterfly) path: the RA expands `B`, the CA adds
    /// `c` to `B` only, the vehicle's `b + c` matches, and `b` is the
    /// private key of `B` (so responses encrypted to `B` are for it alone).
    /// The ring-made contribution certifies the same key the generic
    /// arithmetic computes, and the vehicle derives its private key.
    #[test]
    fn ring_made_contributions_certify_like_the_generic_path() {
        let cat = Caterpillar::generate().unwrap();
        let cocoon = cat.request().cocoon_public_key(7, 3).unwrap();
        for _ in 0..8 {
            let (c, p) = CaContribution::generate_certified(&cocoon).unwrap();
            assert_eq!(c.certify(&cocoon).unwrap(), p);
            cat.derive_and_check(7, 3, &c, &p).unwrap();
        }
    }

    #[test]
    fn cocoon_path_matches_direct_expansion() {
        let cat = Caterpillar::generate().unwrap();
        let request = cat.request();
        let cocoon = request.cocoon_public_key(9, 4).unwrap();
        assert_eq!(cat.cocoon_private_key(9, 4).unwrap().public_key(), cocoon);
        assert_eq!(
            *cat.cocoon_secret(9, 4).unwrap(),
            *cat.cocoon_private_key(9, 4).unwrap().to_bytes()
        );
        assert_ne!(cat.cocoon_private_key(9, 5).unwrap().public_key(), cocoon);
        let c = CaContribution::generate().unwrap();
        let certified = c.certify(&cocoon).unwrap();
        assert_eq!(certified, request.expand_public_key(9, 4, &c).unwrap());
        cat.derive_and_check(9, 4, &c, &certified).unwrap();
        assert!(cat.derive_and_check(9, 3, &c, &certified).is_err());
    }

    #[test]
    fn expansion_value_depends_on_every_input() {
        let k = ExpansionKey::from_bytes([7; 16]);
        let k2 = ExpansionKey::from_bytes([8; 16]);
        let f = |k: &ExpansionKey, i, j| expansion_value(k, i, j).unwrap();
        let base = f(&k, 10, 3);
        assert_ne!(base, f(&k, 11, 3));
        assert_ne!(base, f(&k, 10, 4));
        assert_ne!(base, f(&k2, 10, 3));
        assert_eq!(base, f(&k, 10, 3));
        assert_eq!(
            expansion_value(&k, 1 << 32, 0),
            Err(PseudonymError::PeriodOutOfRange(1 << 32))
        );
    }

    /// The vectors in testdata/butterfly_vectors.txt, computed by
    /// testdata/gen_vectors.py with Python integers and affine point
    /// arithmetic.
    #[test]
    fn published_butterfly_vectors() {
        let text = include_str!("../testdata/butterfly_vectors.txt");
        let mut checked = 0;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 10, "{line}");
            assert_eq!(f[0], "butterfly");
            let a = hex::decode(f[1]).unwrap();
            let k: [u8; 16] = hex::decode(f[2]).unwrap().try_into().unwrap();
            let period: u64 = f[3].parse().unwrap();
            let j: u32 = f[4].parse().unwrap();
            let c = CaContribution::from_bytes(&hex::decode(f[5]).unwrap()).unwrap();
            let cat = Caterpillar::from_bytes(&[a.as_slice(), &k].concat()).unwrap();
            let f_ij = expansion_value(cat.expansion_key(), period, j).unwrap();
            assert_eq!(to_hex(scalar_to_bytes(&f_ij).as_ref()), f[6], "f {line}");
            let cocoon = cat.request().cocoon_public_key(period, j).unwrap();
            assert_eq!(to_hex(&cocoon.to_sec1_uncompressed()), f[7], "B {line}");
            let public = cat.request().expand_public_key(period, j, &c).unwrap();
            assert_eq!(to_hex(&public.to_sec1_uncompressed()), f[8], "P {line}");
            let private = cat.derive_and_check(period, j, &c, &public).unwrap();
            assert_eq!(to_hex(private.to_bytes().as_ref()), f[9], "p {line}");
            checked += 1;
        }
        assert!(checked >= 4, "only {checked} vectors");
    }

    /// The CAMP SCMS crypto test vectors (github.com/conz27/crypto-test-vectors,
    /// `bfkeyexp.txt`): certificate-key expansion of `a` with `ck` for
    /// i = 0x217D79E1, j = 0x11.
    #[test]
    fn camp_butterfly_expansion_vector() {
        let hex32 = |s: &str| -> [u8; 32] { hex::decode(s).unwrap().try_into().unwrap() };
        let ck: [u8; 16] = hex::decode("121D14216715E11D2D3787434A673B1B")
            .unwrap()
            .try_into()
            .unwrap();
        let a = hex32("D418760F0CB2DCB856BC3C7217AD3AA36DB6742AE1DB655A3D28DF88CBBF84E1");
        let f = expansion_value(&ExpansionKey::from_bytes(ck), 0x217D79E1, 0x11).unwrap();
        assert_eq!(
            to_hex(scalar_to_bytes(&f).as_ref()),
            "79081ddd31ef9e5ea601250e584cd90fba13ee7b518e72a2db3aaaa158e12d5e"
        );
        let cat = Caterpillar::from_bytes(&[a.as_slice(), &ck].concat()).unwrap();
        let secret = cat.cocoon_secret(0x217D79E1, 0x11).unwrap();
        assert_eq!(
            to_hex(secret.as_ref()),
            "4d2093ed3ea27b15fcbd61806ffa13b36ae367f88c52397824a9bf67283d8cee"
        );
        let cocoon = cat.request().cocoon_public_key(0x217D79E1, 0x11).unwrap();
        assert_eq!(
            to_hex(&cocoon.to_sec1_uncompressed()[1..33]),
            "2b18f3d93c4df3d9d1490e3a9ba5a0de9cfa73eddb95408bc1f2bf60cb3cf313"
        );
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let cat = Caterpillar::generate().unwrap();
        let k_hex = to_hex(cat.expansion_key().as_bytes());
        let a_hex = to_hex(&cat.to_bytes()[..32]);
        for dbg in [format!("{cat:?}"), format!("{:?}", cat.request())] {
            assert!(!dbg.contains(&k_hex), "{dbg}");
            assert!(!dbg.contains(&a_hex), "{dbg}");
            assert!(dbg.contains("redacted"));
        }
        let issued = cat.request().issue(1, 0).unwrap();
        let c_hex = to_hex(issued.ca_contribution.to_bytes().as_ref());
        assert!(!format!("{issued:?}").contains(&c_hex));
    }
}
