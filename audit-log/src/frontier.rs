//! Incremental tree-head computation: the Merkle *frontier* (a "compact range" `[0, n)`).
//!
//! A log of `n` entries is, by RFC 9162 §2.1.1, the concatenation of perfect
//! subtrees whose sizes are the set bits of `n`, largest (leftmost) first. The
//! frontier keeps only the roots of those subtrees — `popcount(n) <= 64`
//! hashes — so appending a leaf costs `O(log n)` hashes, a root is available at
//! any size without touching earlier leaves, and the whole state fits in at most
//! `13 + 64 * 32` bytes that a store can persist next to the log.

use crate::error::AuditError;
use crate::hash::{HASH_LEN, Hash, empty_root, leaf_hash, node_hash};
use crate::sth::TreeHead;

/// Magic bytes at the start of [`MerkleFrontier::to_bytes`].
const FRONTIER_MAGIC: &[u8; 4] = b"TCFR";
/// Current version of the frontier encoding.
const FRONTIER_VERSION: u8 = 1;
/// Magic + version + size.
const FRONTIER_HEADER_LEN: usize = FRONTIER_MAGIC.len() + 1 + 8;
const WHAT: &str = "Merkle frontier";

/// The `O(log n)` state needed to append leaves and compute the Merkle Tree Hash
/// of a growing log.
///
/// Invariant: `nodes.len() == size.count_ones()`, and `nodes[i]` is the root of
/// the perfect subtree for the `i`-th set bit of `size`, counting from the most
/// significant bit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MerkleFrontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl MerkleFrontier {
    /// An empty frontier (tree of size 0).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a frontier by pushing every leaf hash in order.
    ///
    /// # Errors
    /// [`AuditError::TreeFull`] if more than `2^64 - 1` hashes are supplied.
    pub fn from_leaf_hashes<I>(leaf_hashes: I) -> Result<Self, AuditError>
    where
        I: IntoIterator<Item = Hash>,
    {
        let mut frontier = Self::new();
        for h in leaf_hashes {
            frontier.push(h)?;
        }
        Ok(frontier)
    }

    /// Number of leaves appended so far (the tree size).
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether no leaf has been appended yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Appends one leaf hash (see [`crate::leaf_hash`]) and returns the index it was given.
    ///
    /// Costs `trailing_ones(size)` node hashes, `O(log n)` at worst and `O(1)` amortised.
    ///
    /// # Errors
    /// [`AuditError::TreeFull`] if the tree already has `2^64 - 1` leaves.
    pub fn push(&mut self, leaf_hash: Hash) -> Result<u64, AuditError> {
        let index = self.size;
        let new_size = index
            .checked_add(1)
            .ok_or(AuditError::TreeFull { size: index })?;
        // Every trailing one bit of `index` is a perfect subtree of equal size
        // immediately to the left of the new leaf: merge them, smallest first.
        let merges = index.trailing_ones() as usize;
        let keep = self.nodes.len().saturating_sub(merges);
        let mut acc = leaf_hash;
        for left in self.nodes.drain(keep..).rev() {
            acc = node_hash(&left, &acc);
        }
        self.nodes.push(acc);
        self.size = new_size;
        Ok(index)
    }

    /// Hashes `entry` as a leaf, appends it, and returns `(index, leaf hash)` so the
    /// caller can store both beside the entry.
    ///
    /// # Errors
    /// [`AuditError::TreeFull`] if the tree already has `2^64 - 1` leaves.
    pub fn push_entry(&mut self, entry: &[u8]) -> Result<(u64, Hash), AuditError> {
        let h = leaf_hash(entry);
        let index = self.push(h)?;
        Ok((index, h))
    }

    /// The Merkle Tree Hash (RFC 9162 §2.1.1) of the leaves pushed so far.
    ///
    /// Costs `popcount(size) - 1` node hashes.
    #[must_use]
    pub fn root(&self) -> Hash {
        match self.nodes.split_last() {
            None => empty_root(),
            Some((last, rest)) => rest
                .iter()
                .rev()
                .fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }

    /// An unsigned [`TreeHead`] for the current size and root.
    #[must_use]
    pub fn tree_head(&self, timestamp_ms: u64) -> TreeHead {
        TreeHead {
            size: self.size,
            root: self.root(),
            timestamp_ms,
        }
    }

    /// Serialises the frontier:
    /// `"TCFR" || version (0x01) || size (u64 big-endian) || popcount(size) × 32-byte hashes`
    /// (subtree roots, largest/leftmost first).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FRONTIER_HEADER_LEN + self.nodes.len() * HASH_LEN);
        out.extend_from_slice(FRONTIER_MAGIC);
        out.push(FRONTIER_VERSION);
        out.extend_from_slice(&self.size.to_be_bytes());
        for n in &self.nodes {
            out.extend_from_slice(n);
        }
        out
    }

    /// Parses the encoding of [`MerkleFrontier::to_bytes`]; the length must be exact.
    ///
    /// # Errors
    /// [`AuditError::Truncated`], [`AuditError::TrailingBytes`], [`AuditError::BadPrefix`]
    /// or [`AuditError::UnsupportedVersion`] for malformed input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        if bytes.len() < FRONTIER_HEADER_LEN {
            return Err(AuditError::Truncated {
                what: WHAT,
                needed: FRONTIER_HEADER_LEN,
                got: bytes.len(),
            });
        }
        let (magic, rest) = bytes.split_at(FRONTIER_MAGIC.len());
        if magic != FRONTIER_MAGIC {
            return Err(AuditError::BadPrefix { what: WHAT });
        }
        let (version, rest) = rest.split_at(1);
        if version[0] != FRONTIER_VERSION {
            return Err(AuditError::UnsupportedVersion {
                what: WHAT,
                version: version[0],
            });
        }
        let (size_bytes, hashes) = rest.split_at(8);
        let mut size_arr = [0u8; 8];
        size_arr.copy_from_slice(size_bytes);
        let size = u64::from_be_bytes(size_arr);
        let count = size.count_ones() as usize;
        let expected = FRONTIER_HEADER_LEN + count * HASH_LEN;
        crate::error::exact_length(WHAT, bytes.len(), expected)?;
        let nodes = hashes
            .chunks_exact(HASH_LEN)
            .map(|c| {
                let mut h = [0u8; HASH_LEN];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(Self { size, nodes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_count_tracks_popcount() {
        let mut f = MerkleFrontier::new();
        for i in 0u64..300 {
            assert_eq!(f.push(leaf_hash(&i.to_be_bytes())).unwrap(), i);
            assert_eq!(f.nodes.len() as u32, f.size().count_ones());
        }
    }

    #[test]
    fn full_tree_is_rejected() {
        let mut f = MerkleFrontier {
            size: u64::MAX,
            nodes: vec![[7u8; HASH_LEN]; 64],
        };
        assert_eq!(
            f.push([0u8; HASH_LEN]),
            Err(AuditError::TreeFull { size: u64::MAX })
        );
    }
}
