//! Opaque label ids for device pages: what the QR code on a device carries
//! instead of its identity, so a label names no serial (no VIN) and ids
//! cannot be enumerated or forged.
//!
//! The construction is deterministic authenticated encryption in the
//! synthetic-IV style: the nonce is an HMAC-SHA-256 of the identity key
//! (truncated to 96 bits), and the identity is sealed with AES-128-GCM
//! under that nonce. The same device always gets the same id (a label can
//! be printed again), the server needs no index to resolve it, and an id
//! not made with the key fails the GCM tag. The key is 32 random bytes in
//! the CA's encrypted keystore (`DATA/ca/web-label-id.key`, under the
//! passphrase); a new key invalidates every printed label. An earlier
//! version kept it in the clear in `DATA/web/label-id.key`: the server
//! moves such a file into the keystore on start ([`LabelIds::legacy_key`],
//! [`remove_legacy_key`]).

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;

use crate::WebError;

/// The file an earlier version kept the key in, unencrypted.
pub const LEGACY_FILE: &str = "label-id.key";

/// Longest label id accepted (an identity key is at most ~200 bytes).
pub const MAX_ID_CHARS: usize = 400;

/// The keys that make and open label ids.
pub struct LabelIds {
    mac: hmac::Key,
    seal: LessSafeKey,
}

impl std::fmt::Debug for LabelIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LabelIds { .. }")
    }
}

impl LabelIds {
    /// Keys derived from 32 bytes of key material.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let derive = |label: &[u8]| hmac::sign(&root, label);
        let mac = hmac::Key::new(
            hmac::HMAC_SHA256,
            derive(b"trustca-label-id-nonce").as_ref(),
        );
        let enc = derive(b"trustca-label-id-seal");
        // 16 of 32 bytes: AES-128. `UnboundKey::new` fails only on a wrong length.
        let seal = UnboundKey::new(&AES_128_GCM, &enc.as_ref()[..16])
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("AES-128 takes 16 bytes"));
        Self { mac, seal }
    }

    /// The plaintext key an earlier version kept in `dir/label-id.key`,
    /// if that file exists: the server moves it into the encrypted
    /// keystore and then calls [`remove_legacy_key`].
    pub fn legacy_key(dir: &Path) -> Result<Option<[u8; 32]>, WebError> {
        let path = dir.join(LEGACY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(WebError::Io(format!("cannot read {}: {e}", path.display()))),
        };
        let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            WebError::Io(format!(
                "{} must hold 32 bytes (it holds {}); remove it to make a new key, which invalidates printed labels",
                path.display(),
                bytes.len()
            ))
        })?;
        Ok(Some(secret))
    }

    /// The label id of the device with `identity_key`.
    pub fn id_for(&self, identity_key: &str) -> String {
        let nonce = self.nonce(identity_key);
        let mut sealed = identity_key.as_bytes().to_vec();
        // Sealing fails only past GCM's 64 GiB limit.
        let _ = self.seal.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(b"trustca-label-id-v1"),
            &mut sealed,
        );
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The identity key a label id names, or `None` for anything this key
    /// did not make.
    pub fn open(&self, id: &str) -> Option<String> {
        if id.len() > MAX_ID_CHARS {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(id).ok()?;
        if raw.len() <= NONCE_LEN + AES_128_GCM.tag_len() {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .seal
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"trustca-label-id-v1"),
                &mut sealed,
            )
            .ok()?;
        let identity = String::from_utf8(plain.to_vec()).ok()?;
        // One id per device: a nonce other than the synthetic one is refused.
        (self.nonce(&identity) == nonce).then_some(identity)
    }

    fn nonce(&self, identity_key: &str) -> [u8; NONCE_LEN] {
        let tag = hmac::sign(&self.mac, identity_key.as_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&tag.as_ref()[..NONCE_LEN]);
        nonce
    }
}

/// Overwrites and removes the plaintext key file of an earlier version,
/// once its key is in the encrypted keystore.
pub fn remove_legacy_key(dir: &Path) -> Result<(), WebError> {
    let path = dir.join(LEGACY_FILE);
    let io = |e: std::io::Error| WebError::Io(format!("cannot remove {}: {e}", path.display()));
    std::fs::write(&path, [0u8; 32]).map_err(io)?;
    std::fs::remove_file(&path).map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_round_trip_are_stable_and_hide_the_serial() {
        let ids = LabelIds::from_secret(&[7; 32]);
        let key = "automotive/acme/roadster/vin1hgcm82633a004352";
        let id = ids.id_for(key);
        assert_eq!(id, ids.id_for(key));
        assert!(!id.to_ascii_lowercase().contains("vin1hgcm"));
        assert_eq!(ids.open(&id).as_deref(), Some(key));
        assert_ne!(id, ids.id_for("automotive/acme/roadster/vin2"));
    }

    #[test]
    fn forged_tampered_and_foreign_ids_are_refused() {
        let ids = LabelIds::from_secret(&[7; 32]);
        let id = ids.id_for("hems/acme/hub/sn1");
        let other = LabelIds::from_secret(&[8; 32]);
        assert_eq!(other.open(&id), None);
        let mut raw = URL_SAFE_NO_PAD.decode(&id).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(ids.open(&URL_SAFE_NO_PAD.encode(&raw)), None);
        for bad in ["", "!!", "AAAA", &"A".repeat(MAX_ID_CHARS + 1)] {
            assert_eq!(ids.open(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_legacy_key_file_is_read_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LabelIds::legacy_key(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join(LEGACY_FILE), [9u8; 32]).unwrap();
        assert_eq!(LabelIds::legacy_key(dir.path()).unwrap(), Some([9u8; 32]));
        remove_legacy_key(dir.path()).unwrap();
        assert!(!dir.path().join(LEGACY_FILE).exists());
        std::fs::write(dir.path().join(LEGACY_FILE), b"short").unwrap();
        assert!(LabelIds::legacy_key(dir.path()).is_err());
    }
}
