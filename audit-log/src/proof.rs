//! Inclusion proofs (RFC 9162 §2.1.3) and consistency proofs (RFC 9162 §2.1.4):
//! generation over a caller-supplied [`LeafHashes`] source, and verification.
//!
//! A proof is a list of 32-byte node hashes ordered from the leaf (or the old
//! tree's subtree) upwards to the root, exactly as the RFC's `PATH` and `PROOF`
//! functions produce them. Verification follows §2.1.3.2 and §2.1.4.2 step by
//! step, and additionally checks the proof length up front so that a wrong
//! length is reported as such rather than as a root mismatch.

use crate::error::AuditError;
use crate::frontier::MerkleFrontier;
use crate::hash::{HASH_LEN, Hash, empty_root, node_hash, split_point};

/// A source of leaf hashes for proof generation, implemented by the log store.
///
/// Proof generation only needs leaf hashes, never entry bytes. A straightforward
/// implementation reads the stored leaf hash for an index; a store that caches
/// hashes of subtrees can also implement [`LeafHashes::subtree_hash`] to make
/// proofs cheaper than `O(n)` leaf reads.
pub trait LeafHashes {
    /// Number of leaves currently available (leaves `0..size()` can be read).
    fn size(&self) -> u64;

    /// The leaf hash (see [`crate::leaf_hash`]) of the entry at `index`.
    ///
    /// # Errors
    /// Whatever the source fails with; [`AuditError::LeafSource`] is meant for storage failures.
    fn leaf_hash(&self, index: u64) -> Result<Hash, AuditError>;

    /// Optional accelerator: the Merkle Tree Hash of leaves `start..end`, if known.
    ///
    /// Called only with `start < end <= size()` and `start` a multiple of the
    /// largest power of two `<= end - start`, i.e. for ranges that are nodes of
    /// some tree. Returning `Ok(None)` (the default) makes the library compute
    /// the hash from [`LeafHashes::leaf_hash`].
    ///
    /// # Errors
    /// Whatever the source fails with.
    fn subtree_hash(&self, start: u64, end: u64) -> Result<Option<Hash>, AuditError> {
        let _ = (start, end);
        Ok(None)
    }
}

impl LeafHashes for [Hash] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn leaf_hash(&self, index: u64) -> Result<Hash, AuditError> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .ok_or(AuditError::IndexOutOfRange {
                index,
                tree_size: self.len() as u64,
            })
    }
}

impl LeafHashes for Vec<Hash> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }

    fn leaf_hash(&self, index: u64) -> Result<Hash, AuditError> {
        self.as_slice().leaf_hash(index)
    }
}

impl<T: LeafHashes + ?Sized> LeafHashes for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }

    fn leaf_hash(&self, index: u64) -> Result<Hash, AuditError> {
        (**self).leaf_hash(index)
    }

    fn subtree_hash(&self, start: u64, end: u64) -> Result<Option<Hash>, AuditError> {
        (**self).subtree_hash(start, end)
    }
}

/// MTH of leaves `start..end` (`start < end`).
fn range_hash<L: LeafHashes + ?Sized>(log: &L, start: u64, end: u64) -> Result<Hash, AuditError> {
    if let Some(h) = log.subtree_hash(start, end)? {
        return Ok(h);
    }
    let n = end - start;
    if n == 1 {
        return log.leaf_hash(start);
    }
    if n.is_power_of_two() {
        let mut f = MerkleFrontier::new();
        for i in start..end {
            f.push(log.leaf_hash(i)?)?;
        }
        return Ok(f.root());
    }
    let mid = start + split_point(n);
    Ok(node_hash(
        &range_hash(log, start, mid)?,
        &range_hash(log, mid, end)?,
    ))
}

fn check_size<L: LeafHashes + ?Sized>(log: &L, tree_size: u64) -> Result<(), AuditError> {
    let available = log.size();
    if tree_size > available {
        return Err(AuditError::TreeSizeTooLarge {
            requested: tree_size,
            available,
        });
    }
    Ok(())
}

/// The Merkle Tree Hash (RFC 9162 §2.1.1) of the first `tree_size` leaves of `log`.
///
/// # Errors
/// [`AuditError::TreeSizeTooLarge`] if `tree_size > log.size()`, or the source's own errors.
pub fn root_at<L: LeafHashes + ?Sized>(log: &L, tree_size: u64) -> Result<Hash, AuditError> {
    check_size(log, tree_size)?;
    if tree_size == 0 {
        return Ok(empty_root());
    }
    range_hash(log, 0, tree_size)
}

/// The inclusion proof `PATH(index, D[0:tree_size])` (RFC 9162 §2.1.3.1) for leaf
/// `index` in the tree formed by the first `tree_size` leaves of `log`.
///
/// `tree_size` may be smaller than `log.size()`, to prove against an older signed head.
///
/// # Errors
/// [`AuditError::TreeSizeTooLarge`], [`AuditError::IndexOutOfRange`], or the source's own errors.
pub fn inclusion_proof<L: LeafHashes + ?Sized>(
    log: &L,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, AuditError> {
    check_size(log, tree_size)?;
    if index >= tree_size {
        return Err(AuditError::IndexOutOfRange { index, tree_size });
    }
    // Walk down from the root; each step records the sibling subtree hash.
    let mut path = Vec::with_capacity(inclusion_proof_len(index, tree_size));
    let (mut lo, mut hi) = (0u64, tree_size);
    while hi - lo > 1 {
        let mid = lo + split_point(hi - lo);
        if index < mid {
            path.push(range_hash(log, mid, hi)?);
            hi = mid;
        } else {
            path.push(range_hash(log, lo, mid)?);
            lo = mid;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof `PROOF(old_size, D[0:new_size])` (RFC 9162 §2.1.4.1)
/// between the trees formed by the first `old_size` and `new_size` leaves of `log`.
///
/// Empty when `old_size == 0` or `old_size == new_size`.
///
/// # Errors
/// [`AuditError::SizesOutOfOrder`], [`AuditError::TreeSizeTooLarge`], or the source's own errors.
pub fn consistency_proof<L: LeafHashes + ?Sized>(
    log: &L,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, AuditError> {
    if old_size > new_size {
        return Err(AuditError::SizesOutOfOrder { old_size, new_size });
    }
    check_size(log, new_size)?;
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled: `m` is relative to `lo`.
    let mut path = Vec::with_capacity(consistency_proof_len(old_size, new_size));
    let (mut lo, mut hi) = (0u64, new_size);
    let mut m = old_size;
    let mut whole_old_tree = true; // the RFC's `b`
    loop {
        let n = hi - lo;
        if m == n {
            if !whole_old_tree {
                path.push(range_hash(log, lo, hi)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            path.push(range_hash(log, lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(range_hash(log, lo, lo + k)?);
            lo += k;
            m -= k;
            whole_old_tree = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// Bit length of `x` (0 for 0).
fn bit_len(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// Number of hashes in an inclusion proof for `index < tree_size`.
pub(crate) fn inclusion_proof_len(index: u64, tree_size: u64) -> usize {
    if index >= tree_size {
        return 0;
    }
    let inner = bit_len(index ^ (tree_size - 1));
    let border = if inner >= u64::BITS {
        0
    } else {
        (index >> inner).count_ones()
    };
    (inner + border) as usize
}

/// Number of hashes in a consistency proof from `old_size` to `new_size`.
pub(crate) fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    if old_size == 0 || old_size >= new_size {
        return 0;
    }
    let last = old_size - 1;
    let inner = bit_len(last ^ (new_size - 1));
    let border = if inner >= u64::BITS {
        0
    } else {
        (last >> inner).count_ones()
    };
    let shift = old_size.trailing_zeros();
    let seed = u32::from(!old_size.is_power_of_two());
    (inner.saturating_sub(shift) + border + seed) as usize
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2): that the leaf with hash
/// `leaf_hash` is at `index` in the tree of `tree_size` leaves whose root is `root`.
///
/// # Errors
/// [`AuditError::IndexOutOfRange`] if `index >= tree_size`,
/// [`AuditError::InclusionProofLength`] if `proof` has the wrong number of hashes,
/// [`AuditError::InclusionProofMismatch`] if it does not lead to `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), AuditError> {
    if index >= tree_size {
        return Err(AuditError::IndexOutOfRange { index, tree_size });
    }
    let expected = inclusion_proof_len(index, tree_size);
    if proof.len() != expected {
        return Err(AuditError::InclusionProofLength {
            index,
            tree_size,
            expected,
            actual: proof.len(),
        });
    }
    let mismatch = AuditError::InclusionProofMismatch { index, tree_size };
    let (mut f_n, mut s_n) = (index, tree_size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if s_n == 0 {
            return Err(mismatch);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n == 0 && r == *root {
        Ok(())
    } else {
        Err(mismatch)
    }
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): that the tree of `old_size`
/// leaves with root `old_root` is a prefix of the tree of `new_size` leaves with
/// root `new_root`.
///
/// For `old_size == new_size` the proof must be empty and the roots equal; for
/// `old_size == 0` the proof must be empty and `old_root` must be the empty-tree
/// root (every tree extends the empty tree).
///
/// # Errors
/// [`AuditError::SizesOutOfOrder`] if `old_size > new_size`,
/// [`AuditError::ConsistencyProofLength`] if `proof` has the wrong number of hashes,
/// [`AuditError::ConsistencyProofMismatch`] if it does not reproduce both roots.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), AuditError> {
    if old_size > new_size {
        return Err(AuditError::SizesOutOfOrder { old_size, new_size });
    }
    let expected = consistency_proof_len(old_size, new_size);
    if proof.len() != expected {
        return Err(AuditError::ConsistencyProofLength {
            old_size,
            new_size,
            expected,
            actual: proof.len(),
        });
    }
    let mismatch = AuditError::ConsistencyProofMismatch { old_size, new_size };
    if old_size == new_size {
        return if old_root == new_root {
            Ok(())
        } else {
            Err(mismatch)
        };
    }
    if old_size == 0 {
        return if *old_root == empty_root() {
            Ok(())
        } else {
            Err(mismatch)
        };
    }
    // Step 2: if old_size is a power of two, the old root itself seeds the path.
    let (first, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some(split) => split,
            None => return Err(mismatch),
        }
    };
    let (mut f_n, mut s_n) = (old_size - 1, new_size - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut f_r, mut s_r) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return Err(mismatch);
        }
        if f_n & 1 == 1 || f_n == s_n {
            f_r = node_hash(c, &f_r);
            s_r = node_hash(c, &s_r);
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            s_r = node_hash(&s_r, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if f_r == *old_root && s_r == *new_root && s_n == 0 {
        Ok(())
    } else {
        Err(mismatch)
    }
}

/// Largest number of hashes accepted when decoding a proof (a proof for a
/// 64-bit tree size has at most 65).
const MAX_PROOF_HASHES: usize = 128;

fn encode_proof(a: u64, b: u64, path: &[Hash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(17 + path.len() * HASH_LEN);
    out.extend_from_slice(&a.to_be_bytes());
    out.extend_from_slice(&b.to_be_bytes());
    // Proofs never exceed MAX_PROOF_HASHES < 256 entries when produced by this crate;
    // a longer, hand-built path is clamped here and then fails decoding/verification.
    out.push(u8::try_from(path.len()).unwrap_or(u8::MAX));
    for h in path {
        out.extend_from_slice(h);
    }
    out
}

fn decode_proof(what: &'static str, bytes: &[u8]) -> Result<(u64, u64, Vec<Hash>), AuditError> {
    const HEADER: usize = 17;
    if bytes.len() < HEADER {
        return Err(AuditError::Truncated {
            what,
            needed: HEADER,
            got: bytes.len(),
        });
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[0..8]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[8..16]);
    let count = usize::from(bytes[16]);
    if count > MAX_PROOF_HASHES {
        return Err(AuditError::InvalidEncoding {
            what,
            reason: "too many proof hashes",
        });
    }
    let expected = HEADER + count * HASH_LEN;
    crate::error::exact_length(what, bytes.len(), expected)?;
    let path = bytes[HEADER..]
        .chunks_exact(HASH_LEN)
        .map(|c| {
            let mut h = [0u8; HASH_LEN];
            h.copy_from_slice(c);
            h
        })
        .collect();
    Ok((u64::from_be_bytes(a), u64::from_be_bytes(b), path))
}

/// An inclusion proof together with the index and tree size it is for, with a
/// byte encoding for transport: `leaf_index (u64 BE) || tree_size (u64 BE) ||
/// count (u8) || count × 32-byte hashes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// Index of the leaf the proof is for.
    pub leaf_index: u64,
    /// Size of the tree the proof is against.
    pub tree_size: u64,
    /// The audit path, leaf-adjacent sibling first.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Generates the proof for `leaf_index` in the first `tree_size` leaves of `log`
    /// (see [`inclusion_proof`]).
    ///
    /// # Errors
    /// As [`inclusion_proof`].
    pub fn generate<L: LeafHashes + ?Sized>(
        log: &L,
        leaf_index: u64,
        tree_size: u64,
    ) -> Result<Self, AuditError> {
        Ok(Self {
            leaf_index,
            tree_size,
            path: inclusion_proof(log, leaf_index, tree_size)?,
        })
    }

    /// Checks the proof for the leaf with hash `leaf_hash` against `root` (see [`verify_inclusion`]).
    ///
    /// # Errors
    /// As [`verify_inclusion`].
    pub fn verify(&self, leaf_hash: &Hash, root: &Hash) -> Result<(), AuditError> {
        verify_inclusion(leaf_hash, self.leaf_index, self.tree_size, &self.path, root)
    }

    /// The transport encoding (see the type's documentation).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_proof(self.leaf_index, self.tree_size, &self.path)
    }

    /// Strictly decodes [`InclusionProof::to_bytes`] output (exact length).
    ///
    /// # Errors
    /// [`AuditError::Truncated`], [`AuditError::TrailingBytes`] or [`AuditError::InvalidEncoding`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        let (leaf_index, tree_size, path) = decode_proof("inclusion proof", bytes)?;
        Ok(Self {
            leaf_index,
            tree_size,
            path,
        })
    }
}

/// A consistency proof together with the two sizes it relates, with a byte
/// encoding for transport: `old_size (u64 BE) || new_size (u64 BE) || count (u8)
/// || count × 32-byte hashes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// The proof hashes, in RFC 9162 order.
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Generates the proof between the first `old_size` and `new_size` leaves of `log`
    /// (see [`consistency_proof`]).
    ///
    /// # Errors
    /// As [`consistency_proof`].
    pub fn generate<L: LeafHashes + ?Sized>(
        log: &L,
        old_size: u64,
        new_size: u64,
    ) -> Result<Self, AuditError> {
        Ok(Self {
            old_size,
            new_size,
            path: consistency_proof(log, old_size, new_size)?,
        })
    }

    /// Checks the proof against the two roots (see [`verify_consistency`]).
    ///
    /// # Errors
    /// As [`verify_consistency`].
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), AuditError> {
        verify_consistency(self.old_size, self.new_size, old_root, new_root, &self.path)
    }

    /// The transport encoding (see the type's documentation).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_proof(self.old_size, self.new_size, &self.path)
    }

    /// Strictly decodes [`ConsistencyProof::to_bytes`] output (exact length).
    ///
    /// # Errors
    /// [`AuditError::Truncated`], [`AuditError::TrailingBytes`] or [`AuditError::InvalidEncoding`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AuditError> {
        let (old_size, new_size, path) = decode_proof("consistency proof", bytes)?;
        Ok(Self {
            old_size,
            new_size,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn proof_lengths_match_generated_proofs() {
        let log = leaves(40);
        for n in 0..=40u64 {
            for i in 0..n {
                let p = inclusion_proof(&log, i, n).unwrap();
                assert_eq!(p.len(), inclusion_proof_len(i, n), "incl i={i} n={n}");
            }
            for m in 0..=n {
                let p = consistency_proof(&log, m, n).unwrap();
                assert_eq!(p.len(), consistency_proof_len(m, n), "cons m={m} n={n}");
            }
        }
    }

    #[test]
    fn lengths_at_extreme_sizes_do_not_overflow() {
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        assert!(consistency_proof_len(1, u64::MAX) <= 65);
        assert!(consistency_proof_len(u64::MAX - 1, u64::MAX) <= 65);
        assert!(consistency_proof_len((1 << 63) + 1, u64::MAX) <= 65);
    }

    /// A source whose subtree cache lies: proofs must pick the cached value up.
    struct Cached(Vec<Hash>);
    impl LeafHashes for Cached {
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn leaf_hash(&self, index: u64) -> Result<Hash, AuditError> {
            self.0.leaf_hash(index)
        }
        fn subtree_hash(&self, start: u64, end: u64) -> Result<Option<Hash>, AuditError> {
            assert!(start < end && end <= self.size());
            let width = 1u64 << (63 - (end - start).leading_zeros());
            assert_eq!(start % width, 0, "range {start}..{end} is not a node");
            Ok(Some(root_at(
                &self.0[start as usize..end as usize],
                end - start,
            )?))
        }
    }

    #[test]
    fn subtree_hook_is_only_asked_for_nodes_and_gives_same_proofs() {
        let log = leaves(37);
        let cached = Cached(log.clone());
        for n in 1..=37u64 {
            assert_eq!(root_at(&cached, n).unwrap(), root_at(&log, n).unwrap());
            for i in 0..n {
                assert_eq!(
                    inclusion_proof(&cached, i, n).unwrap(),
                    inclusion_proof(&log, i, n).unwrap()
                );
            }
            for m in 0..=n {
                assert_eq!(
                    consistency_proof(&cached, m, n).unwrap(),
                    consistency_proof(&log, m, n).unwrap()
                );
            }
        }
    }
}
