//! Tree heads and signed tree heads (STHs): the canonical byte encoding that is
//! signed, ECDSA P-256 signing and verification, and a strict wire encoding.
//!
//! Canonical tree-head encoding ([`TreeHead::to_bytes`], 63 bytes):
//!
//! | offset | length | content                                   |
//! |-------:|-------:|-------------------------------------------|
//! | 0      | 15     | `b"trustca-sth-v1\0"` (domain separator)  |
//! | 15     | 8      | tree size, u64 big-endian                 |
//! | 23     | 8      | timestamp, ms since Unix epoch, u64 BE    |
//! | 31     | 32     | root hash (Merkle Tree Hash)              |
//!
//! A head that names its signer (version 2, what [`SignedTreeHead::sign`]
//! writes) signs 95 bytes instead: the same layout with the domain
//! separator `b"trustca-sth-v2\0"`, followed by the 32-byte signer key id
//! ([`signer_key_id`]: SHA-256 of the signer's uncompressed SEC1 public key).
//! The audit signer's key changes when its certificate is renewed; the key
//! id tells a verifier which of the log's keys signed each head, and the
//! signature covers it. Version 1 heads (no key id) still decode and verify.
//!
//! Signed tree head encoding ([`SignedTreeHead::to_bytes`]): the signed bytes
//! above (63 or 95), then the signature length as u16 big-endian (1..=72),
//! then the ASN.1 DER ECDSA P-256 / SHA-256 signature over those bytes.

use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};

use crate::error::AuditError;
use crate::hash::{HASH_LEN, Hash};

/// Domain-separation prefix of the canonical tree-head encoding.
pub const STH_DOMAIN: &[u8; 15] = b"trustca-sth-v1\0";

/// Domain-separation prefix of a tree head that names its signer.
pub const STH_DOMAIN_V2: &[u8; 15] = b"trustca-sth-v2\0";

/// Length of the signed bytes of a head that names its signer.
pub const TREE_HEAD_V2_LEN: usize = TREE_HEAD_LEN + HASH_LEN;

/// The key id that names a tree head's signer: SHA-256 of its uncompressed
/// SEC1 P-256 public key (65 bytes, `0x04 || X || Y`), the bytes of
/// `EcdsaKeyPair::public_key()` and of the signer certificate's
/// `subjectPublicKey`.
#[must_use]
pub fn signer_key_id(public_key: &[u8]) -> Hash {
    let mut id = [0u8; HASH_LEN];
    id.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, public_key).as_ref());
    id
}

/// Length of [`TreeHead::to_bytes`]: prefix, size, timestamp, root.
pub const TREE_HEAD_LEN: usize = STH_DOMAIN.len() + 8 + 8 + HASH_LEN;

/// Largest signature accepted: an ASN.1 DER ECDSA P-256 signature is at most 72 bytes.
pub const MAX_SIGNATURE_LEN: usize = 72;

const SIG_LEN_FIELD: usize = 2;

/// The statement a log signs: "the log had `size` entries with root `root` at `timestamp_ms`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    /// Number of entries covered.
    pub size: u64,
    /// Merkle Tree Hash of those entries.
    pub root: Hash,
    /// When the head was produced, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

impl TreeHead {
    /// The canonical 63-byte encoding, which is also the signing input (see the module docs).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; TREE_HEAD_LEN] {
        let mut out = [0u8; TREE_HEAD_LEN];
        let (prefix, rest) = out.split_at_mut(STH_DOMAIN.len());
        prefix.copy_from_slice(STH_DOMAIN);
        let (size, rest) = rest.split_at_mut(8);
        size.copy_from_slice(&self.size.to_be_bytes());
        let (ts, root) = rest.split_at_mut(8);
        ts.copy_from_slice(&self.timestamp_ms.to_be_bytes());
        root.copy_from_slice(&self.root);
        out
    }

    /// Strictly decodes [`TreeHead::to_bytes`] output: exactly 63 bytes with the right prefix.
    ///
    /// # Errors
    /// [`AuditError::Truncated`], [`AuditError::TrailingBytes`] or [`AuditError::BadPrefix`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        const WHAT: &str = "tree head";
        if bytes.len() < TREE_HEAD_LEN {
            return Err(AuditError::Truncated {
                what: WHAT,
                needed: TREE_HEAD_LEN,
                got: bytes.len(),
            });
        }
        if bytes.len() > TREE_HEAD_LEN {
            return Err(AuditError::TrailingBytes {
                what: WHAT,
                expected: TREE_HEAD_LEN,
                got: bytes.len(),
            });
        }
        Self::decode_prefix(bytes, WHAT)
    }

    /// Decodes the first `TREE_HEAD_LEN` bytes (caller checked the length).
    fn decode_prefix(bytes: &[u8], what: &'static str) -> Result<Self, AuditError> {
        let (prefix, rest) = bytes.split_at(STH_DOMAIN.len());
        if prefix != STH_DOMAIN {
            return Err(AuditError::BadPrefix { what });
        }
        let mut size = [0u8; 8];
        size.copy_from_slice(&rest[0..8]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&rest[8..16]);
        let mut root = [0u8; HASH_LEN];
        root.copy_from_slice(&rest[16..16 + HASH_LEN]);
        Ok(Self {
            size: u64::from_be_bytes(size),
            root,
            timestamp_ms: u64::from_be_bytes(ts),
        })
    }

    /// Signs this head; shorthand for [`SignedTreeHead::sign`].
    ///
    /// # Errors
    /// As [`SignedTreeHead::sign`].
    pub fn sign(
        self,
        key: &EcdsaKeyPair,
        rng: &dyn SecureRandom,
    ) -> Result<SignedTreeHead, AuditError> {
        SignedTreeHead::sign(self, key, rng)
    }
}

/// A [`TreeHead`] with the log's ECDSA P-256 signature over its canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// The signed statement.
    pub head: TreeHead,
    /// ASN.1 DER ECDSA P-256 / SHA-256 signature over [`SignedTreeHead::signed_bytes`].
    pub signature: Vec<u8>,
    /// The signer's key id ([`signer_key_id`]), covered by the signature;
    /// `None` for a version 1 head, which does not name its signer.
    pub signer: Option<Hash>,
}

/// The bytes a head with `signer` signs: version 1 without, version 2 with.
fn signed_bytes_of(head: &TreeHead, signer: Option<&Hash>) -> Vec<u8> {
    let mut out = head.to_bytes().to_vec();
    if let Some(id) = signer {
        out[..STH_DOMAIN_V2.len()].copy_from_slice(STH_DOMAIN_V2);
        out.extend_from_slice(id);
    }
    out
}

impl SignedTreeHead {
    /// Signs `head` with `key`, which must have been loaded for
    /// `ECDSA_P256_SHA256_ASN1_SIGNING`; `rng` is normally `ring::rand::SystemRandom`.
    /// The result names its signer (version 2).
    ///
    /// The fresh signature is verified against the key pair's own public key
    /// before it is returned, so a key of the wrong algorithm is caught here.
    ///
    /// # Errors
    /// [`AuditError::Signing`] if ring fails to sign, or the key is not a P-256 /
    /// ASN.1 signing key.
    pub fn sign(
        head: TreeHead,
        key: &EcdsaKeyPair,
        rng: &dyn SecureRandom,
    ) -> Result<Self, AuditError> {
        Self::sign_with(head, key.public_key().as_ref(), |msg| {
            key.sign(rng, msg).ok().map(|s| s.as_ref().to_vec())
        })
    }

    /// Signs `head` with any ECDSA P-256 signer (a file key, a key in a
    /// PKCS#11 token): `sign` gets the bytes to sign and returns the ASN.1
    /// DER signature, or `None` when signing failed. `public_key` is the
    /// signer's uncompressed SEC1 point; the fresh signature is verified
    /// against it before it is returned, so a signer of the wrong algorithm
    /// or a garbled signature (e.g. raw `r ‖ s` not converted to DER) is
    /// caught here.
    ///
    /// # Errors
    /// [`AuditError::Signing`] if signing fails or the signature does not
    /// verify as ECDSA P-256 / SHA-256.
    pub fn sign_with(
        head: TreeHead,
        public_key: &[u8],
        sign: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Self, AuditError> {
        let signer = signer_key_id(public_key);
        let msg = signed_bytes_of(&head, Some(&signer));
        let signature = sign(&msg).ok_or(AuditError::Signing {
            size: head.size,
            reason: "ECDSA signing failed",
        })?;
        let wrong_key = AuditError::Signing {
            size: head.size,
            reason: "key pair is not an ECDSA P-256 key with ASN.1 signatures",
        };
        if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
            return Err(wrong_key);
        }
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
            .verify(&msg, &signature)
            .map_err(|_| wrong_key)?;
        Ok(Self {
            head,
            signature,
            signer: Some(signer),
        })
    }

    /// The bytes the signature covers: the 63-byte canonical encoding for a
    /// version 1 head, the 95-byte version 2 encoding for one that names
    /// its signer.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes_of(&self.head, self.signer.as_ref())
    }

    /// Whether this head may have been signed by `public_key`: a head that
    /// names its signer names exactly one key; a version 1 head any.
    #[must_use]
    pub fn names_signer(&self, public_key: &[u8]) -> bool {
        self.signer.is_none_or(|id| id == signer_key_id(public_key))
    }

    /// Verifies the signature with the log's public key: an uncompressed SEC1
    /// P-256 point (65 bytes, `0x04 || X || Y`). A head that names another
    /// signer fails.
    ///
    /// # Errors
    /// [`AuditError::BadSignature`] if the signature (or the key) is invalid.
    pub fn verify(&self, public_key: &[u8]) -> Result<(), AuditError> {
        let bad = AuditError::BadSignature {
            size: self.head.size,
            timestamp_ms: self.head.timestamp_ms,
        };
        if !self.names_signer(public_key) {
            return Err(bad);
        }
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_key)
            .verify(&self.signed_bytes(), &self.signature)
            .map_err(|_| bad)
    }

    /// Verifies the signature with whichever of the log's keys signed it:
    /// the key the head names, or for a version 1 head any of `public_keys`.
    ///
    /// # Errors
    /// [`AuditError::BadSignature`] if no key verifies it.
    pub fn verify_any<K: AsRef<[u8]>>(&self, public_keys: &[K]) -> Result<(), AuditError> {
        if public_keys.iter().any(|k| self.verify(k.as_ref()).is_ok()) {
            Ok(())
        } else {
            Err(AuditError::BadSignature {
                size: self.head.size,
                timestamp_ms: self.head.timestamp_ms,
            })
        }
    }

    /// The wire/storage encoding: `signed_bytes() || sig_len (u16 BE) || signature`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.reserve(SIG_LEN_FIELD + self.signature.len());
        // A signature longer than u16::MAX cannot come from `sign`; clamping makes
        // such a hand-built value fail to decode instead of being misread.
        let len = u16::try_from(self.signature.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.signature);
        out
    }

    /// Strictly decodes [`SignedTreeHead::to_bytes`] output of either version:
    /// rejects truncation, trailing bytes, a wrong prefix and a signature
    /// length outside `1..=72`. Does **not** verify the signature: call
    /// [`SignedTreeHead::verify`].
    ///
    /// # Errors
    /// [`AuditError::Truncated`], [`AuditError::TrailingBytes`], [`AuditError::BadPrefix`]
    /// or [`AuditError::InvalidEncoding`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        const WHAT: &str = "signed tree head";
        let names_signer = bytes.starts_with(STH_DOMAIN_V2);
        let signed_len = if names_signer {
            TREE_HEAD_V2_LEN
        } else {
            TREE_HEAD_LEN
        };
        let header = signed_len + SIG_LEN_FIELD;
        if bytes.len() < header {
            return Err(AuditError::Truncated {
                what: WHAT,
                needed: header,
                got: bytes.len(),
            });
        }
        let head = if names_signer {
            // Same layout as version 1 after the prefix.
            let mut v1 = bytes[..TREE_HEAD_LEN].to_vec();
            v1[..STH_DOMAIN.len()].copy_from_slice(STH_DOMAIN);
            TreeHead::decode_prefix(&v1, WHAT)?
        } else {
            TreeHead::decode_prefix(&bytes[..TREE_HEAD_LEN], WHAT)?
        };
        let signer = names_signer.then(|| {
            let mut id = [0u8; HASH_LEN];
            id.copy_from_slice(&bytes[TREE_HEAD_LEN..TREE_HEAD_V2_LEN]);
            id
        });
        let sig_len = usize::from(u16::from_be_bytes([
            bytes[signed_len],
            bytes[signed_len + 1],
        ]));
        if sig_len == 0 || sig_len > MAX_SIGNATURE_LEN {
            return Err(AuditError::InvalidEncoding {
                what: WHAT,
                reason: "signature length outside 1..=72",
            });
        }
        let expected = header + sig_len;
        crate::error::exact_length(WHAT, bytes.len(), expected)?;
        Ok(Self {
            head,
            signature: bytes[header..].to_vec(),
            signer,
        })
    }
}
