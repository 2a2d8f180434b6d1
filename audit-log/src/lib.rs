//! `trustca-audit`: a storage-agnostic, tamper-evident, append-only audit log in
//! the style of Certificate Transparency (RFC 6962 / RFC 9162 §2.1).
//!
//! The crate holds no storage of its own. A store (the CA keeps one in sled)
//! persists, per entry, the entry bytes and its [`leaf_hash`], plus the
//! serialised [`MerkleFrontier`] and the [`SignedTreeHead`]s it issues. This crate
//! provides:
//!
//! * hashing — [`leaf_hash`], [`node_hash`], [`empty_root`] (RFC 9162 §2.1.1);
//! * incremental roots — [`MerkleFrontier`], `O(log n)` state, serialisable;
//! * proofs — [`inclusion_proof`] / [`verify_inclusion`] (§2.1.3) and
//!   [`consistency_proof`] / [`verify_consistency`] (§2.1.4), generated over any
//!   [`LeafHashes`] source, with [`InclusionProof`] / [`ConsistencyProof`]
//!   transport encodings;
//! * signed tree heads — [`TreeHead`], [`SignedTreeHead`] (ECDSA P-256);
//! * whole-log verification — [`LogVerifier`] / [`verify_log`], which report
//!   the first bad entry.
//!
//! All failures are an [`AuditError`]. The formats are documented byte by byte
//! in `docs/audit-log.md`.
//!
//! ```
//! use ring::rand::SystemRandom;
//! use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
//! use trustca_audit::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rng = SystemRandom::new();
//! let alg = &ECDSA_P256_SHA256_ASN1_SIGNING;
//! let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).map_err(|e| e.to_string())?;
//! let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).map_err(|e| e.to_string())?;
//!
//! // Append: the store keeps (index, entry, leaf hash) and the frontier bytes.
//! let mut frontier = MerkleFrontier::new();
//! let mut stored: Vec<(u64, Vec<u8>, Hash)> = Vec::new();
//! for entry in [b"issue serial=1".to_vec(), b"revoke serial=1".to_vec()] {
//!     let (index, leaf) = frontier.push_entry(&entry)?;
//!     stored.push((index, entry, leaf));
//! }
//! let persisted = frontier.to_bytes();
//! let frontier = MerkleFrontier::from_bytes(&persisted)?;
//!
//! // Sign the current head.
//! let sth = frontier.tree_head(1_700_000_000_000).sign(&key, &rng)?;
//! let sth = SignedTreeHead::from_bytes(&sth.to_bytes())?;
//! sth.verify(key.public_key().as_ref())?;
//!
//! // Prove entry 1 is in the signed tree.
//! let leaves: Vec<Hash> = stored.iter().map(|e| e.2).collect();
//! let proof = InclusionProof::generate(&leaves, 1, sth.head.size)?;
//! proof.verify(&leaves[1], &sth.head.root)?;
//!
//! // Walk the whole log.
//! let report = verify_log(stored, &[sth], key.public_key().as_ref())?;
//! assert_eq!((report.entries, report.heads_verified), (2, 1));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod error;
mod frontier;
mod hash;
mod proof;
mod sth;
mod verify;

pub use error::AuditError;
pub use frontier::MerkleFrontier;
pub use hash::{HASH_LEN, Hash, empty_root, leaf_hash, node_hash};
pub use proof::{
    ConsistencyProof, InclusionProof, LeafHashes, consistency_proof, inclusion_proof, root_at,
    verify_consistency, verify_inclusion,
};
pub use sth::{
    MAX_SIGNATURE_LEN, STH_DOMAIN, STH_DOMAIN_V2, SignedTreeHead, TREE_HEAD_LEN, TREE_HEAD_V2_LEN,
    TreeHead, signer_key_id,
};
pub use verify::{LogReport, LogVerifier, verify_log};
