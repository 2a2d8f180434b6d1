//! Symmetric envelopes between the authorities (AES-256-GCM, random
//! nonce, fixed lengths): the pre-linkage values a linkage authority sends
//! to the pseudonym CA through the registration authority, and the chain-id
//! envelopes a linkage authority seals to itself for resolution.
//!
//! The key between a linkage authority and the pseudonym CA is agreed by
//! static ECDH of their long-term keys ([`LinkKey::agree`]): nothing secret
//! is copied between them, and the registration authority that relays the
//! envelopes holds neither key.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use trustca_pseudonym::{P256PrivateKey, P256PublicKey};

use crate::error::{Result, ScmsError};

const TAG_LEN: usize = 16;
/// Sealed chain id: nonce (12) ‖ chain id (16) ‖ tag (16).
pub const CHAIN_ENVELOPE_LEN: usize = NONCE_LEN + 16 + TAG_LEN;
/// Sealed pre-linkage value: nonce (12) ‖ plv (9) ‖ chain envelope (44) ‖ tag (16).
pub const ENCRYPTED_PLV_LEN: usize = NONCE_LEN + 9 + CHAIN_ENVELOPE_LEN + TAG_LEN;

/// An AES-256-GCM key for envelopes. `Debug` prints nothing secret.
pub struct LinkKey(LessSafeKey);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl LinkKey {
    /// A key from 32 secret bytes (an authority's own storage key).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| ScmsError::Random)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// The transport key between linkage authority `la_public` and pseudonym
    /// CA `pca_public`, computed by either side from its own private key
    /// and the other's public key: HKDF-SHA-256 over the ECDH x-coordinate,
    /// salt `label`, info = LA key ‖ PCA key (uncompressed), so the two
    /// sides derive the same key and each pair gets its own.
    pub fn agree(
        own: &P256PrivateKey,
        peer: &P256PublicKey,
        la_public: &P256PublicKey,
        pca_public: &P256PublicKey,
        label: &[u8],
    ) -> Result<Self> {
        let shared = own.shared_secret(peer)?;
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, label);
        let prk = salt.extract(shared.as_ref());
        let la = la_public.to_sec1_uncompressed();
        let pca = pca_public.to_sec1_uncompressed();
        let info = [la.as_slice(), pca.as_slice()];
        let okm = prk.expand(&info, Len32).map_err(|_| ScmsError::Random)?;
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        okm.fill(bytes.as_mut()).map_err(|_| ScmsError::Random)?;
        Self::from_bytes(&bytes)
    }

    /// nonce ‖ ciphertext ‖ tag, bound to `aad`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| ScmsError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| ScmsError::Random)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens [`LinkKey::seal`]'s output; `what` names it in the error.
    pub(crate) fn open(
        &self,
        aad: &[u8],
        sealed: &[u8],
        what: &'static str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(ScmsError::Envelope { what });
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| ScmsError::Envelope { what })?;
        let mut body = zeroize::Zeroizing::new(body.to_vec());
        let len = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut body)
            .map_err(|_| ScmsError::Envelope { what })?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// 32 random bytes.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| ScmsError::Random)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_agree_and_pairs_differ() {
        let la = P256PrivateKey::generate().unwrap();
        let la2 = P256PrivateKey::generate().unwrap();
        let pca = P256PrivateKey::generate().unwrap();
        let (lap, la2p, pcap) = (la.public_key(), la2.public_key(), pca.public_key());
        let at_la = LinkKey::agree(&la, &pcap, &lap, &pcap, b"t").unwrap();
        let at_pca = LinkKey::agree(&pca, &lap, &lap, &pcap, b"t").unwrap();
        let other = LinkKey::agree(&pca, &la2p, &la2p, &pcap, b"t").unwrap();
        let sealed = at_la.seal(b"aad", b"secret").unwrap();
        assert_eq!(&at_pca.open(b"aad", &sealed, "x").unwrap()[..], b"secret");
        assert!(other.open(b"aad", &sealed, "x").is_err());
        assert!(at_pca.open(b"other aad", &sealed, "x").is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(at_pca.open(b"aad", &flipped, "x").is_err());
        assert!(at_pca.open(b"aad", &sealed[..10], "x").is_err());
        // Random nonces: the same plaintext never seals to the same bytes.
        assert_ne!(sealed, at_la.seal(b"aad", b"secret").unwrap());
    }
}
