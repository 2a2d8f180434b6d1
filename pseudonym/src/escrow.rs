//! Escrow to a resolution authority: ECIES-style hybrid encryption to a
//! long-term P-256 key held offline by the resolution authority (RA), so
//! that pseudonymity-breaking secrets (a vehicle's linkage chain state, the
//! vehicle reference behind a certificate) can sit in the CA's store without
//! the CA operator being able to read them.
//!
//! # Construction
//!
//! ```text
//! sender (seal), RA public key R, caller-chosen associated data aad:
//!   e  <- ephemeral P-256 key (ring::agreement, ECDH_P256);  E = e·G
//!   Z  =  x-coordinate of e·R (32 bytes)
//!   K  =  HKDF-SHA256(salt = E(65) || R(65), ikm = Z, info = "trustca-escrow-v1", L = 32)
//!   N  <- 12 random bytes
//!   sealed = 0x01 || E(65, uncompressed SEC1) || N(12) || AES-256-GCM(K, N, aad, plaintext) || tag(16)
//!
//! RA (open), private scalar d:
//!   Z = x-coordinate of d·E;  recompute K;  AES-256-GCM open with aad
//! ```
//!
//! The sealed form is [`ESCROW_OVERHEAD`] = 94 bytes longer than the
//! plaintext. The salt binds the key to both public keys, so a blob cannot
//! be re-targeted by swapping its ephemeral key. The associated data is not
//! stored in the blob: the caller passes the same bytes to [`seal`] and
//! [`open`], typically the identifier of the record the blob belongs to (a
//! certificate serial or linkage value), so that a blob copied to another
//! record fails to open.
//!
//! The sender uses ring's ephemeral ECDH. ring cannot load a long-term
//! agreement key from bytes, so the RA side computes `d·E` with the `p256`
//! crate's arithmetic; both produce the same x-coordinate, and the tests
//! check that blobs sealed with ring open with p256.

use std::fmt;

use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
use ring::hkdf;
use ring::rand::SystemRandom;
use zeroize::Zeroizing;

use crate::error::{PseudonymError, Result};
use crate::keys::{P256PrivateKey, P256PublicKey, SCALAR_LEN, SEC1_UNCOMPRESSED_LEN, random_array};

/// HKDF `info` for the escrow key.
pub const ESCROW_INFO: &[u8] = b"trustca-escrow-v1";
/// First byte of every sealed blob.
pub const ESCROW_VERSION: u8 = 0x01;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Bytes a sealed blob adds to its plaintext: version, ephemeral key, nonce,
/// tag.
pub const ESCROW_OVERHEAD: usize = 1 + SEC1_UNCOMPRESSED_LEN + NONCE_LEN + TAG_LEN;

/// The resolution authority's public key, to which the CA seals escrow blobs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ResolutionAuthorityPublicKey(P256PublicKey);

impl ResolutionAuthorityPublicKey {
    /// Wraps a P-256 public key.
    pub fn new(key: P256PublicKey) -> Self {
        Self(key)
    }

    /// Parses a 65-byte uncompressed SEC1 point.
    pub fn from_sec1_uncompressed(bytes: &[u8]) -> Result<Self> {
        P256PublicKey::parse(bytes, "resolution authority public key").map(Self)
    }

    /// The 65-byte uncompressed SEC1 point.
    pub fn to_sec1_uncompressed(&self) -> [u8; SEC1_UNCOMPRESSED_LEN] {
        self.0.to_sec1_uncompressed()
    }

    /// The underlying P-256 public key.
    pub fn as_p256(&self) -> &P256PublicKey {
        &self.0
    }
}

impl fmt::Debug for ResolutionAuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ResolutionAuthorityPublicKey")
            .field(&self.0)
            .finish()
    }
}

/// The resolution authority's long-term private key. Store it offline as
/// [`ResolutionAuthorityKey::to_pkcs8_der`] (or the raw scalar from
/// [`ResolutionAuthorityKey::to_bytes`]); `Debug` shows only the public key.
#[derive(Clone)]
pub struct ResolutionAuthorityKey(P256PrivateKey);

impl ResolutionAuthorityKey {
    /// A fresh key from the system random number generator.
    pub fn generate() -> Result<Self> {
        P256PrivateKey::generate().map(Self)
    }

    /// Loads the raw 32-byte big-endian scalar.
    pub fn from_bytes(bytes: &[u8; SCALAR_LEN]) -> Result<Self> {
        P256PrivateKey::from_bytes(bytes).map(Self)
    }

    /// The raw 32-byte big-endian scalar (secret; wiped when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; SCALAR_LEN]> {
        self.0.to_bytes()
    }

    /// The key as a 138-byte P-256 PKCS#8 v1 document (secret).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.0.to_pkcs8_der()
    }

    /// Loads a P-256 PKCS#8 v1 document of the layout ring and this crate
    /// write.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        P256PrivateKey::from_pkcs8_der(der).map(Self)
    }

    /// The public key to configure on the CA.
    pub fn public_key(&self) -> ResolutionAuthorityPublicKey {
        ResolutionAuthorityPublicKey(self.0.public_key())
    }
}

impl fmt::Debug for ResolutionAuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolutionAuthorityKey")
            .field("d", &"<redacted>")
            .field("public", &self.public_key())
            .finish()
    }
}

/// HKDF from the ECDH x-coordinate to an AES-256-GCM key.
fn derive_key(
    shared_x: &[u8],
    ephemeral: &[u8; SEC1_UNCOMPRESSED_LEN],
    recipient: &[u8; SEC1_UNCOMPRESSED_LEN],
) -> Result<LessSafeKey> {
    let mut salt = [0u8; 2 * SEC1_UNCOMPRESSED_LEN];
    salt[..SEC1_UNCOMPRESSED_LEN].copy_from_slice(ephemeral);
    salt[SEC1_UNCOMPRESSED_LEN..].copy_from_slice(recipient);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(shared_x);
    let info = [ESCROW_INFO];
    let okm = prk
        .expand(&info, &AES_256_GCM)
        .map_err(|_| PseudonymError::Crypto {
            what: "HKDF expand",
        })?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// Encrypts `plaintext` to the resolution authority, authenticating `aad`
/// (which is not included in the output). See the module documentation for
/// the layout.
pub fn seal(
    recipient: &ResolutionAuthorityPublicKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let rng = SystemRandom::new();
    let ephemeral =
        EphemeralPrivateKey::generate(&ECDH_P256, &rng).map_err(|_| PseudonymError::Random)?;
    let ephemeral_public = ephemeral
        .compute_public_key()
        .map_err(|_| PseudonymError::Crypto {
            what: "ephemeral public key",
        })?;
    let ephemeral_bytes: [u8; SEC1_UNCOMPRESSED_LEN] = ephemeral_public
        .as_ref()
        .try_into()
        .map_err(|_| PseudonymError::Crypto {
            what: "ephemeral public key length",
        })?;
    let recipient_bytes = recipient.to_sec1_uncompressed();
    let key = agreement::agree_ephemeral(
        ephemeral,
        &UnparsedPublicKey::new(&ECDH_P256, recipient_bytes),
        |shared_x| derive_key(shared_x, &ephemeral_bytes, &recipient_bytes),
    )
    .map_err(|_| PseudonymError::Crypto { what: "ECDH" })??;

    let nonce_bytes: [u8; NONCE_LEN] = random_array()?;
    let mut body = Vec::with_capacity(plaintext.len() + TAG_LEN);
    body.extend_from_slice(plaintext);
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(aad),
        &mut body,
    )
    .map_err(|_| PseudonymError::Crypto {
        what: "AES-256-GCM seal",
    })?;
    let mut out = Vec::with_capacity(ESCROW_OVERHEAD + plaintext.len());
    out.push(ESCROW_VERSION);
    out.extend_from_slice(&ephemeral_bytes);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decrypts a blob made by [`seal`] with the resolution authority's key and
/// the same `aad`. The plaintext is wiped when the returned buffer drops.
pub fn open(key: &ResolutionAuthorityKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < ESCROW_OVERHEAD {
        return Err(PseudonymError::EscrowMalformed {
            reason: "shorter than version, ephemeral key, nonce and tag",
        });
    }
    if sealed[0] != ESCROW_VERSION {
        return Err(PseudonymError::EscrowMalformed {
            reason: "unknown version byte",
        });
    }
    let (ephemeral_bytes, rest) = sealed[1..].split_at(SEC1_UNCOMPRESSED_LEN);
    let (nonce_bytes, ciphertext) = rest.split_at(NONCE_LEN);
    let ephemeral =
        P256PublicKey::parse(ephemeral_bytes, "escrow ephemeral key").map_err(|_| {
            PseudonymError::EscrowMalformed {
                reason: "ephemeral key is not a valid P-256 point",
            }
        })?;
    let shared = ephemeral.to_projective() * *key.0.scalar();
    if bool::from(shared.is_identity()) {
        return Err(PseudonymError::EscrowMalformed {
            reason: "degenerate shared secret",
        });
    }
    let encoded = shared.to_affine().to_encoded_point(false);
    // Uncompressed encoding: 0x04 || X || Y.
    let shared_x = Zeroizing::new(encoded.as_bytes()[1..1 + SCALAR_LEN].to_vec());
    let ephemeral_arr = ephemeral.to_sec1_uncompressed();
    let aead_key = derive_key(
        &shared_x,
        &ephemeral_arr,
        &key.public_key().to_sec1_uncompressed(),
    )?;
    let nonce: [u8; NONCE_LEN] =
        nonce_bytes
            .try_into()
            .map_err(|_| PseudonymError::EscrowMalformed {
                reason: "nonce length",
            })?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let plain_len = aead_key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| PseudonymError::EscrowAuthentication)?
        .len();
    buf.truncate(plain_len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let ra = ResolutionAuthorityKey::generate().unwrap();
        for len in [0usize, 1, 40, 1000] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = seal(&ra.public_key(), b"cert-42", &msg).unwrap();
            assert_eq!(sealed.len(), msg.len() + ESCROW_OVERHEAD);
            assert_eq!(open(&ra, b"cert-42", &sealed).unwrap().as_slice(), msg);
        }
    }

    #[test]
    fn sealing_is_randomised() {
        let ra = ResolutionAuthorityKey::generate().unwrap();
        let a = seal(&ra.public_key(), b"", b"same").unwrap();
        let b = seal(&ra.public_key(), b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn wrong_key_aad_or_tampering_fails() {
        let ra = ResolutionAuthorityKey::generate().unwrap();
        let other = ResolutionAuthorityKey::generate().unwrap();
        let sealed = seal(&ra.public_key(), b"aad", b"secret seed").unwrap();
        assert_eq!(
            open(&other, b"aad", &sealed).unwrap_err(),
            PseudonymError::EscrowAuthentication
        );
        assert_eq!(
            open(&ra, b"aae", &sealed).unwrap_err(),
            PseudonymError::EscrowAuthentication
        );
        for i in [sealed.len() - 1, sealed.len() - 20, 1 + 65 + 3] {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(
                open(&ra, b"aad", &t).unwrap_err(),
                PseudonymError::EscrowAuthentication,
                "byte {i}"
            );
        }
        // A modified ephemeral key is either off the curve or a different
        // point (so a different key).
        let mut t = sealed.clone();
        t[10] ^= 0x01;
        assert!(open(&ra, b"aad", &t).is_err());
        let mut t = sealed.clone();
        t[0] = 2;
        assert!(matches!(
            open(&ra, b"aad", &t),
            Err(PseudonymError::EscrowMalformed { .. })
        ));
        assert!(matches!(
            open(&ra, b"aad", &sealed[..ESCROW_OVERHEAD - 1]),
            Err(PseudonymError::EscrowMalformed { .. })
        ));
    }

    #[test]
    fn stored_key_round_trips() {
        let ra = ResolutionAuthorityKey::generate().unwrap();
        let sealed = seal(&ra.public_key(), b"x", b"y").unwrap();
        let from_pkcs8 = ResolutionAuthorityKey::from_pkcs8_der(&ra.to_pkcs8_der()).unwrap();
        let from_raw = ResolutionAuthorityKey::from_bytes(&ra.to_bytes()).unwrap();
        assert_eq!(open(&from_pkcs8, b"x", &sealed).unwrap().as_slice(), b"y");
        assert_eq!(open(&from_raw, b"x", &sealed).unwrap().as_slice(), b"y");
        let public = ResolutionAuthorityPublicKey::from_sec1_uncompressed(
            &ra.public_key().to_sec1_uncompressed(),
        )
        .unwrap();
        assert_eq!(public, ra.public_key());
        let dbg = format!("{ra:?}");
        assert!(!dbg.contains(&crate::keys::to_hex(ra.to_bytes().as_ref())));
    }
}
