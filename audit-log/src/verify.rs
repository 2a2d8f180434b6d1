//! Whole-log verification: walk every stored entry in index order, recompute its
//! leaf hash and the running root, and check each signed tree head at its size.
//!
//! This is what `trustca audit verify` runs. It stops at the **first** problem
//! in log order and reports it as a precise [`AuditError`] variant:
//!
//! * [`AuditError::BadSignature`] — a signed tree head whose signature fails;
//! * [`AuditError::RootMismatch`] — the recomputed root at a signed size differs;
//! * [`AuditError::MissingEntry`] — an index was skipped (an entry was deleted);
//! * [`AuditError::OutOfOrderEntry`] — an index repeated or went backwards;
//! * [`AuditError::LeafHashMismatch`] — an entry no longer hashes to its stored leaf hash;
//! * [`AuditError::LogTruncated`] — a signed head covers entries past the end of the log.
//!
//! "Log order" means: a head of size `s` is checked after entry `s - 1` and
//! before entry `s`, so any problem it reveals (which lies in entries `< s`) is
//! reported before problems in later entries.

use crate::error::AuditError;
use crate::frontier::MerkleFrontier;
use crate::hash::{Hash, leaf_hash};
use crate::sth::{SignedTreeHead, TreeHead};

/// Summary of a log that verified cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// Number of entries walked.
    pub entries: u64,
    /// Merkle Tree Hash over all of them.
    pub root: Hash,
    /// Number of signed tree heads checked (signature and root).
    pub heads_verified: usize,
    /// The largest (then latest) signed head checked, if any.
    pub last_signed: Option<TreeHead>,
    /// Entries after the last signed head: present and well-formed, but not yet
    /// covered by any signature, so their deletion could not be detected.
    pub unsigned_entries: u64,
}

/// Streaming whole-log verifier: feed entries in index order with
/// [`LogVerifier::push`], then call [`LogVerifier::finish`].
///
/// Memory use is `O(log n)` plus the list of heads; entries are not retained.
/// After the first error every further call returns that same error.
#[derive(Debug, Clone)]
pub struct LogVerifier {
    /// Every key the log was ever signed with (the audit signer's key
    /// changes when its certificate is renewed).
    public_keys: Vec<Vec<u8>>,
    /// Sorted by (size, timestamp).
    heads: Vec<SignedTreeHead>,
    next_head: usize,
    frontier: MerkleFrontier,
    last_verified_size: u64,
    heads_verified: usize,
    last_signed: Option<TreeHead>,
    failed: Option<AuditError>,
}

impl LogVerifier {
    /// A verifier for a log signed by `public_key` (uncompressed SEC1 P-256
    /// point), which must match every head in `heads` (any order).
    #[must_use]
    pub fn new<I>(public_key: &[u8], heads: I) -> Self
    where
        I: IntoIterator<Item = SignedTreeHead>,
    {
        Self::with_keys(vec![public_key.to_vec()], heads)
    }

    /// A verifier for a log signed over time by several keys (uncompressed
    /// SEC1 P-256 points): each head must verify under the key it names
    /// ([`SignedTreeHead::signer`]), or, for a version 1 head that names
    /// none, under one of them.
    #[must_use]
    pub fn with_keys<I>(public_keys: Vec<Vec<u8>>, heads: I) -> Self
    where
        I: IntoIterator<Item = SignedTreeHead>,
    {
        let mut heads: Vec<SignedTreeHead> = heads.into_iter().collect();
        heads.sort_by_key(|h| (h.head.size, h.head.timestamp_ms));
        Self {
            public_keys,
            heads,
            next_head: 0,
            frontier: MerkleFrontier::new(),
            last_verified_size: 0,
            heads_verified: 0,
            last_signed: None,
            failed: None,
        }
    }

    /// Number of entries accepted so far (the index expected next).
    #[must_use]
    pub fn entries(&self) -> u64 {
        self.frontier.size()
    }

    /// Feeds the next entry: its `index`, its bytes, and the leaf hash stored beside it.
    ///
    /// # Errors
    /// The first problem found, in log order (see the module documentation).
    pub fn push(
        &mut self,
        index: u64,
        entry: &[u8],
        stored_leaf_hash: &Hash,
    ) -> Result<(), AuditError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.push_inner(index, entry, stored_leaf_hash);
        self.record(result)
    }

    fn record(&mut self, result: Result<(), AuditError>) -> Result<(), AuditError> {
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn push_inner(
        &mut self,
        index: u64,
        entry: &[u8],
        stored_leaf_hash: &Hash,
    ) -> Result<(), AuditError> {
        self.check_heads_at_current_size()?;
        let expected = self.frontier.size();
        if index > expected {
            return Err(AuditError::MissingEntry {
                index: expected,
                next_present: index,
            });
        }
        if index < expected {
            return Err(AuditError::OutOfOrderEntry {
                expected,
                found: index,
            });
        }
        let h = leaf_hash(entry);
        if h != *stored_leaf_hash {
            return Err(AuditError::LeafHashMismatch { index });
        }
        self.frontier.push(h)?;
        Ok(())
    }

    /// Checks every head whose size equals the number of entries seen so far.
    fn check_heads_at_current_size(&mut self) -> Result<(), AuditError> {
        let size = self.frontier.size();
        let mut root: Option<Hash> = None;
        while let Some(sth) = self.heads.get(self.next_head) {
            if sth.head.size != size {
                break;
            }
            sth.verify_any(&self.public_keys)?;
            let r = *root.get_or_insert_with(|| self.frontier.root());
            if sth.head.root != r {
                return Err(AuditError::RootMismatch {
                    size,
                    last_verified_size: self.last_verified_size,
                });
            }
            self.last_verified_size = size;
            self.heads_verified += 1;
            self.last_signed = Some(sth.head);
            self.next_head += 1;
        }
        Ok(())
    }

    /// Ends the walk: checks heads at the final size and that no head covers
    /// entries beyond it.
    ///
    /// # Errors
    /// The first problem found, in log order; [`AuditError::LogTruncated`] if a
    /// (validly signed) head is larger than the log.
    pub fn finish(mut self) -> Result<LogReport, AuditError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.check_heads_at_current_size()?;
        let entries = self.frontier.size();
        if let Some(sth) = self.heads.get(self.next_head) {
            // A forged head must not be reported as a truncation.
            sth.verify_any(&self.public_keys)?;
            return Err(AuditError::LogTruncated {
                entries,
                head_size: sth.head.size,
            });
        }
        Ok(LogReport {
            entries,
            root: self.frontier.root(),
            heads_verified: self.heads_verified,
            last_signed: self.last_signed,
            unsigned_entries: entries - self.last_verified_size,
        })
    }
}

/// Verifies a whole log in one call: `entries` yields `(index, entry bytes,
/// stored leaf hash)` in storage order, `heads` are the log's signed tree heads
/// (any order), `public_key` is the log's uncompressed SEC1 P-256 key.
///
/// # Errors
/// The first problem found, in log order (see the module documentation);
/// [`AuditError::first_bad_index`] gives the entry index it points at.
pub fn verify_log<I, E>(
    entries: I,
    heads: &[SignedTreeHead],
    public_key: &[u8],
) -> Result<LogReport, AuditError>
where
    I: IntoIterator<Item = (u64, E, Hash)>,
    E: AsRef<[u8]>,
{
    let mut v = LogVerifier::new(public_key, heads.iter().cloned());
    for (index, entry, stored) in entries {
        v.push(index, entry.as_ref(), &stored)?;
    }
    v.finish()
}
