//! The single error type of the crate, [`AuditError`].
//!
//! Every fallible operation — proof generation and verification, decoding of
//! stored or transmitted structures, signing, and the whole-log walk of
//! [`crate::LogVerifier`] — reports one of these variants. Each variant carries
//! the indices and sizes needed to say *where* something went wrong, and
//! [`AuditError::first_bad_index`] extracts the first suspect entry index for
//! the errors produced while walking a log.

/// Everything that can go wrong in `trustca-audit`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A leaf index `index` was used with a tree of `tree_size` leaves, but must be `< tree_size`.
    #[error("leaf index {index} is out of range for a tree of size {tree_size}")]
    IndexOutOfRange {
        /// The offending leaf index.
        index: u64,
        /// The tree size it was used with.
        tree_size: u64,
    },

    /// A tree of `requested` leaves was asked for, but the leaf source only holds `available`.
    #[error("tree size {requested} exceeds the {available} leaves available")]
    TreeSizeTooLarge {
        /// The requested tree size.
        requested: u64,
        /// The number of leaves the source holds.
        available: u64,
    },

    /// A consistency proof between `old_size` and `new_size` was requested or checked, but `old_size > new_size`.
    #[error(
        "consistency between sizes {old_size} and {new_size}: old size is larger than new size"
    )]
    SizesOutOfOrder {
        /// The (claimed) older tree size.
        old_size: u64,
        /// The (claimed) newer tree size.
        new_size: u64,
    },

    /// The tree already holds `size` = 2^64 - 1 leaves and cannot grow.
    #[error("the tree is full ({size} leaves)")]
    TreeFull {
        /// The size of the full tree.
        size: u64,
    },

    /// An inclusion proof for leaf `index` in a tree of `tree_size` has `actual` hashes instead of `expected`.
    #[error(
        "inclusion proof for leaf {index} in tree of size {tree_size} has {actual} hashes, expected {expected}"
    )]
    InclusionProofLength {
        /// The leaf index the proof is for.
        index: u64,
        /// The tree size the proof is for.
        tree_size: u64,
        /// The number of hashes a correct proof has.
        expected: usize,
        /// The number of hashes supplied.
        actual: usize,
    },

    /// An inclusion proof for leaf `index` in a tree of `tree_size` does not lead to the given root.
    #[error("inclusion proof for leaf {index} in tree of size {tree_size} does not match the root")]
    InclusionProofMismatch {
        /// The leaf index the proof is for.
        index: u64,
        /// The tree size the proof is for.
        tree_size: u64,
    },

    /// A consistency proof from `old_size` to `new_size` has `actual` hashes instead of `expected`.
    #[error(
        "consistency proof from size {old_size} to {new_size} has {actual} hashes, expected {expected}"
    )]
    ConsistencyProofLength {
        /// The older tree size.
        old_size: u64,
        /// The newer tree size.
        new_size: u64,
        /// The number of hashes a correct proof has.
        expected: usize,
        /// The number of hashes supplied.
        actual: usize,
    },

    /// A consistency proof from `old_size` to `new_size` does not reproduce both roots.
    #[error("consistency proof from size {old_size} to {new_size} does not match the roots")]
    ConsistencyProofMismatch {
        /// The older tree size.
        old_size: u64,
        /// The newer tree size.
        new_size: u64,
    },

    /// The caller's leaf source (see [`crate::LeafHashes`]) failed to deliver leaf `index`.
    #[error("leaf source failed at index {index}: {reason}")]
    LeafSource {
        /// The leaf index (or the first index of the range) being read.
        index: u64,
        /// What the source reported.
        reason: String,
    },

    /// Decoding a `what` needed `needed` bytes but only `got` were present.
    #[error("truncated {what}: need {needed} bytes, got {got}")]
    Truncated {
        /// The structure being decoded.
        what: &'static str,
        /// The number of bytes required.
        needed: usize,
        /// The number of bytes present.
        got: usize,
    },

    /// Decoding a `what` of `expected` bytes found `got` bytes: the rest is trailing garbage.
    #[error("trailing bytes after {what}: expected {expected} bytes, got {got}")]
    TrailingBytes {
        /// The structure being decoded.
        what: &'static str,
        /// The exact length of the encoding.
        expected: usize,
        /// The number of bytes present.
        got: usize,
    },

    /// A `what` did not start with its fixed prefix / domain separator.
    #[error("{what} does not start with the expected prefix")]
    BadPrefix {
        /// The structure being decoded.
        what: &'static str,
    },

    /// A `what` carries format version `version`, which this crate does not understand.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// The structure being decoded.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },

    /// A `what` is structurally invalid: `reason` says how (for example, a length field out of bounds).
    #[error("invalid {what}: {reason}")]
    InvalidEncoding {
        /// The structure being decoded.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Signing the tree head of `size` leaves failed: `reason` gives ring's account.
    #[error("signing the tree head of size {size} failed: {reason}")]
    Signing {
        /// The size of the tree head being signed.
        size: u64,
        /// Why signing failed.
        reason: &'static str,
    },

    /// The signature on the tree head of `size` leaves at `timestamp_ms` does not verify under the given key.
    #[error("bad signature on tree head of size {size} at {timestamp_ms} ms")]
    BadSignature {
        /// The size of the signed tree head.
        size: u64,
        /// Its timestamp, in milliseconds since the Unix epoch.
        timestamp_ms: u64,
    },

    /// Log entry `index` does not hash to the leaf hash stored beside it: the entry (or its hash) was altered.
    #[error("entry {index}: stored leaf hash does not match the entry bytes")]
    LeafHashMismatch {
        /// The index of the altered entry.
        index: u64,
    },

    /// Log entry `index` is missing: the next entry present has index `next_present` (entries were deleted).
    #[error("entry {index} is missing: next entry present is {next_present}")]
    MissingEntry {
        /// The first missing index.
        index: u64,
        /// The index of the entry found in its place.
        next_present: u64,
    },

    /// At position `expected` of the log an entry with the smaller index `found` appeared (duplicated or reordered).
    #[error("entry out of order: expected index {expected}, found {found}")]
    OutOfOrderEntry {
        /// The index that should have come next.
        expected: u64,
        /// The index that came instead.
        found: u64,
    },

    /// The root recomputed over the first `size` entries differs from the signed head of that size;
    /// entries `[last_verified_size, size)` contain a modification (an entry rewritten together with its leaf hash).
    #[error(
        "root mismatch at signed tree head of size {size}: entries {last_verified_size}..{size} were altered"
    )]
    RootMismatch {
        /// The size of the signed tree head whose root does not match.
        size: u64,
        /// The size of the last signed tree head that did match (0 if none).
        last_verified_size: u64,
    },

    /// A signed tree head covers `head_size` entries but the log ends after `entries`: entries were deleted from its end.
    #[error("log truncated: signed tree head covers {head_size} entries, log has {entries}")]
    LogTruncated {
        /// The number of entries present.
        entries: u64,
        /// The size of the signed tree head that covers the missing entries.
        head_size: u64,
    },
}

impl AuditError {
    /// For errors found while walking a log (see [`crate::LogVerifier`]): the first entry index that is
    /// missing, altered or out of place — or, for [`AuditError::RootMismatch`], the first index that is
    /// no longer covered by a verified signed tree head (the altered entry lies at or after it).
    ///
    /// Returns `None` for errors that do not point at an entry (including a bad head signature).
    #[must_use]
    pub fn first_bad_index(&self) -> Option<u64> {
        match self {
            Self::LeafHashMismatch { index } | Self::MissingEntry { index, .. } => Some(*index),
            Self::OutOfOrderEntry { expected, .. } => Some(*expected),
            Self::RootMismatch {
                last_verified_size, ..
            } => Some(*last_verified_size),
            Self::LogTruncated { entries, .. } => Some(*entries),
            _ => None,
        }
    }
}

/// Refuses an encoding of `what` that is not exactly `expected` bytes long:
/// shorter is truncated, longer carries trailing bytes.
pub(crate) fn exact_length(
    what: &'static str,
    got: usize,
    expected: usize,
) -> Result<(), AuditError> {
    if got < expected {
        return Err(AuditError::Truncated {
            what,
            needed: expected,
            got,
        });
    }
    if got > expected {
        return Err(AuditError::TrailingBytes {
            what,
            expected,
            got,
        });
    }
    Ok(())
}
