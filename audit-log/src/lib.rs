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
pub use sth::{MAX_SIGNATURE_LEN, STH_DOMAIN, SignedTreeHead, TREE_HEAD_LEN, TreeHead};
pub use verify::{LogReport, LogVerifier, verify_log};
