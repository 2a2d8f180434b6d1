//! P-256 public keys as IEEE 1609.2 carries them (compressed points),
//! SHA-256, HashedId8 and the IEEE 1609.2 signing input.

use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use ring::digest;

use crate::V2xError;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// IEEE 1609.2 `HashedId8` of an encoding: the low-order (last) eight
/// octets of its SHA-256 hash. For a certificate, pass its whole COER
/// encoding.
pub fn hashed_id8(encoding: &[u8]) -> [u8; 8] {
    let h = sha256(encoding);
    let mut out = [0u8; 8];
    out.copy_from_slice(&h[24..]);
    out
}

/// The message handed to ring's ECDSA P-256 SHA-256 signer or verifier for
/// IEEE 1609.2 (clause 5.3.1): `SHA-256(tbs) || SHA-256(signer)`, where
/// `signer` is the COER encoding of the issuing certificate, or empty for a
/// self-signed certificate. Ring hashes this message once more, so the
/// ECDSA digest is `e = SHA-256(SHA-256(tbs) || SHA-256(signer))` exactly
/// as IEEE 1609.2 specifies.
pub fn signing_message(tbs: &[u8], signer: &[u8]) -> [u8; 64] {
    let mut m = [0u8; 64];
    m[..32].copy_from_slice(&sha256(tbs));
    m[32..].copy_from_slice(&sha256(signer));
    m
}

/// A P-256 signing key held elsewhere: in memory (ring), in an encrypted
/// keystore or in a PKCS#11 token. This crate only needs the public key
/// and ECDSA P-256 / SHA-256 signatures; it does not care where the key is.
pub trait V2xSigner {
    /// The public key as a SEC 1 point: uncompressed (`04 || x || y`, 65
    /// octets) or compressed (33 octets).
    fn public_key_sec1(&self) -> Vec<u8>;

    /// ECDSA P-256 over SHA-256(`msg`), as raw `r || s` (32 octets each).
    /// The signer hashes `msg` once; for IEEE 1609.2 the caller passes
    /// [`signing_message`], so the signed digest is
    /// `SHA-256(SHA-256(tbs) || SHA-256(signer))`.
    fn sign_digest_input(&self, msg: &[u8]) -> Result<[u8; 64], V2xError>;
}

impl V2xSigner for ring::signature::EcdsaKeyPair {
    fn public_key_sec1(&self) -> Vec<u8> {
        ring::signature::KeyPair::public_key(self).as_ref().to_vec()
    }

    fn sign_digest_input(&self, msg: &[u8]) -> Result<[u8; 64], V2xError> {
        let sig = self
            .sign(&ring::rand::SystemRandom::new(), msg)
            .map_err(|_| V2xError::Signing("ECDSA signing failed"))?;
        <[u8; 64]>::try_from(sig.as_ref())
            .map_err(|_| V2xError::Signing("key is not ECDSA P-256 with fixed-length signatures"))
    }
}

/// A P-256 public key, held as a validated SEC 1 compressed point
/// (`02`/`03` || x), which is how IEEE 1609.2 `compressed-y-0` and
/// `compressed-y-1` carry it, and as the uncompressed point ring's
/// verifier and ECDH take: decompressing costs a square root, so it is
/// done once, when the key is read, not at every signature or ECIES.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKeyP256 {
    compressed: [u8; 33],
    /// The same point, `04 || x || y`.
    uncompressed: [u8; 65],
}

impl std::fmt::Debug for PublicKeyP256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKeyP256")
            .field("compressed", &self.compressed)
            .finish()
    }
}

impl PublicKeyP256 {
    /// From a SEC 1 uncompressed point (`04 || x || y`, as ring's
    /// `KeyPair::public_key` gives) or a compressed one (`02`/`03 || x`);
    /// the point must be on the curve.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, V2xError> {
        if !matches!(bytes.len(), 33 | 65) {
            return Err(V2xError::InvalidKey);
        }
        let ep = p256::EncodedPoint::from_bytes(bytes).map_err(|_| V2xError::InvalidKey)?;
        let point: Option<p256::AffinePoint> = p256::AffinePoint::from_encoded_point(&ep).into();
        let point = point.ok_or(V2xError::InvalidKey)?;
        let mut compressed = [0u8; 33];
        compressed.copy_from_slice(point.to_encoded_point(true).as_bytes());
        let mut uncompressed = [0u8; 65];
        uncompressed.copy_from_slice(point.to_encoded_point(false).as_bytes());
        Ok(Self {
            compressed,
            uncompressed,
        })
    }

    /// From the x coordinate and the parity of y (IEEE 1609.2
    /// `compressed-y-0` is even, `compressed-y-1` odd); validates the point.
    pub fn from_x(x: &[u8; 32], y_odd: bool) -> Result<Self, V2xError> {
        let mut c = [0u8; 33];
        c[0] = if y_odd { 0x03 } else { 0x02 };
        c[1..].copy_from_slice(x);
        Self::from_sec1(&c)
    }

    /// The x coordinate.
    pub fn x(&self) -> [u8; 32] {
        let mut x = [0u8; 32];
        x.copy_from_slice(&self.compressed[1..]);
        x
    }

    /// Whether y is odd (`compressed-y-1`).
    pub fn y_is_odd(&self) -> bool {
        self.compressed[0] == 0x03
    }

    /// The SEC 1 compressed point.
    pub fn compressed(&self) -> [u8; 33] {
        self.compressed
    }

    /// The SEC 1 uncompressed point (`04 || x || y`) for ring's verifier
    /// (never fails: the key was validated when it was read; the `Result`
    /// is kept for callers written when this decompressed).
    pub fn uncompressed(&self) -> Result<[u8; 65], V2xError> {
        Ok(self.uncompressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    #[test]
    fn hashed_id8_known_answer() {
        // SHA-256("abc") = ba7816bf...f20015ad; HashedId8 = last 8 octets.
        assert_eq!(
            hashed_id8(b"abc"),
            [0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad]
        );
        // SHA-256("") = e3b0c442...7852b855.
        assert_eq!(
            hashed_id8(b""),
            [0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55]
        );
    }

    #[test]
    fn compress_decompress_ring_keys() {
        let rng = SystemRandom::new();
        for _ in 0..16 {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("keygen");
            let kp =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .expect("load");
            let pk = kp.public_key().as_ref();
            let k = PublicKeyP256::from_sec1(pk).expect("valid");
            assert_eq!(k.y_is_odd(), pk[64] & 1 == 1);
            assert_eq!(k.x(), pk[1..33]);
            assert_eq!(k.uncompressed().expect("on curve")[..], pk[..]);
            assert_eq!(PublicKeyP256::from_x(&k.x(), k.y_is_odd()), Ok(k));
        }
    }

    #[test]
    fn rejects_points_off_the_curve() {
        // About half of all x values have no point on the curve; among
        // x = 0..32 some must be rejected. x >= p and an all-04 "point"
        // are rejected too.
        let rejected = (0u8..32)
            .filter(|i| {
                let mut x = [0u8; 32];
                x[31] = *i;
                PublicKeyP256::from_x(&x, false).is_err()
            })
            .count();
        assert!(rejected > 0);
        assert!(PublicKeyP256::from_sec1(&[0x04; 65]).is_err());
        assert!(PublicKeyP256::from_x(&[0xff; 32], false).is_err());
    }
}
