//! Property tests: proofs for random sizes and indices verify, tampered proofs
//! fail, the frontier agrees with a naive recursive MTH, encodings round-trip,
//! and decoders never panic on arbitrary input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use trustca_audit::{
    ConsistencyProof, Hash, InclusionProof, MerkleFrontier, SignedTreeHead, TreeHead,
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, root_at,
    verify_consistency, verify_inclusion,
};

fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
        .collect()
}

/// RFC 9162 §2.1.1 written out recursively, independent of the crate's frontier.
fn naive_mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => empty_root(),
        1 => d[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_mth(&d[..k]), &naive_mth(&d[k..]))
        }
    }
}

/// (tree size, index < size)
fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    (1u64..600).prop_flat_map(|n| (Just(n), 0..n))
}

/// (old size <= new size)
fn two_sizes() -> impl Strategy<Value = (u64, u64)> {
    (0u64..600).prop_flat_map(|n| (0..=n, Just(n)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn frontier_matches_naive_mth(n in 0u64..300) {
        let l = leaves(n);
        let f = MerkleFrontier::from_leaf_hashes(l.iter().copied()).unwrap();
        prop_assert_eq!(f.size(), n);
        prop_assert_eq!(f.root(), naive_mth(&l));
        prop_assert_eq!(root_at(&l, n).unwrap(), naive_mth(&l));
    }

    #[test]
    fn frontier_bytes_round_trip(n in 0u64..2000) {
        let f = MerkleFrontier::from_leaf_hashes(leaves(n)).unwrap();
        let bytes = f.to_bytes();
        let g = MerkleFrontier::from_bytes(&bytes).unwrap();
        prop_assert_eq!(&g, &f);
        // A restored frontier continues exactly like the original.
        let (mut f2, mut g2) = (f.clone(), g);
        for i in 0..5u8 {
            f2.push_entry(&[i]).unwrap();
            g2.push_entry(&[i]).unwrap();
        }
        prop_assert_eq!(f2.root(), g2.root());
        // Every strict prefix and every extension is rejected.
        for cut in 0..bytes.len() {
            prop_assert!(MerkleFrontier::from_bytes(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(MerkleFrontier::from_bytes(&longer).is_err());
    }

    #[test]
    fn inclusion_proofs_verify((n, i) in size_and_index()) {
        let l = leaves(n);
        let root = root_at(&l, n).unwrap();
        let p = inclusion_proof(&l, i, n).unwrap();
        prop_assert!(verify_inclusion(&l[i as usize], i, n, &p, &root).is_ok());
        let wire = InclusionProof::generate(&l, i, n).unwrap();
        prop_assert_eq!(InclusionProof::from_bytes(&wire.to_bytes()).unwrap(), wire);
    }

    #[test]
    fn inclusion_proofs_against_older_heads_verify((n, i) in size_and_index(), extra in 0u64..50) {
        // Generate from a longer log for an older tree size.
        let l = leaves(n + extra);
        let root = naive_mth(&l[..n as usize]);
        let p = inclusion_proof(&l, i, n).unwrap();
        prop_assert!(verify_inclusion(&l[i as usize], i, n, &p, &root).is_ok());
    }

    #[test]
    fn tampered_inclusion_proofs_fail(
        (n, i) in size_and_index(),
        which in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let l = leaves(n);
        let root = root_at(&l, n).unwrap();
        let p = inclusion_proof(&l, i, n).unwrap();
        // Flipped bit in a proof hash.
        if !p.is_empty() {
            let mut q = p.clone();
            let j = which.index(q.len());
            q[j][bit / 8] ^= 1 << (bit % 8);
            prop_assert!(verify_inclusion(&l[i as usize], i, n, &q, &root).is_err());
        }
        // Flipped bit in the leaf hash or the root.
        let mut bad_leaf = l[i as usize];
        bad_leaf[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(verify_inclusion(&bad_leaf, i, n, &p, &root).is_err());
        let mut bad_root = root;
        bad_root[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(verify_inclusion(&l[i as usize], i, n, &p, &bad_root).is_err());
        // Truncated / extended proofs.
        if !p.is_empty() {
            prop_assert!(verify_inclusion(&l[i as usize], i, n, &p[..p.len() - 1], &root).is_err());
        }
        let mut longer = p.clone();
        longer.push([0u8; 32]);
        prop_assert!(verify_inclusion(&l[i as usize], i, n, &longer, &root).is_err());
        // Another leaf's hash, or the right leaf at another index.
        if n > 1 {
            let other = (i + 1) % n;
            prop_assert!(verify_inclusion(&l[other as usize], i, n, &p, &root).is_err());
            prop_assert!(verify_inclusion(&l[i as usize], other, n, &p, &root).is_err());
        }
        // Index out of range.
        prop_assert!(verify_inclusion(&l[i as usize], n, n, &p, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify((m, n) in two_sizes()) {
        let l = leaves(n);
        let (old_root, new_root) = (naive_mth(&l[..m as usize]), naive_mth(&l));
        let p = consistency_proof(&l, m, n).unwrap();
        prop_assert!(verify_consistency(m, n, &old_root, &new_root, &p).is_ok());
        let wire = ConsistencyProof::generate(&l, m, n).unwrap();
        prop_assert_eq!(ConsistencyProof::from_bytes(&wire.to_bytes()).unwrap(), wire);
    }

    #[test]
    fn tampered_consistency_proofs_fail(
        (m, n) in two_sizes(),
        which in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let l = leaves(n);
        let (old_root, new_root) = (naive_mth(&l[..m as usize]), naive_mth(&l));
        let p = consistency_proof(&l, m, n).unwrap();
        let flip = |h: &Hash| { let mut h = *h; h[bit / 8] ^= 1 << (bit % 8); h };
        if !p.is_empty() {
            let mut q = p.clone();
            let j = which.index(q.len());
            q[j] = flip(&q[j]);
            prop_assert!(verify_consistency(m, n, &old_root, &new_root, &q).is_err());
            prop_assert!(verify_consistency(m, n, &old_root, &new_root, &p[..p.len() - 1]).is_err());
        }
        prop_assert!(verify_consistency(m, n, &flip(&old_root), &new_root, &p).is_err());
        if m > 0 {
            // With m == 0 the new root is unconstrained: every tree extends the empty one.
            prop_assert!(verify_consistency(m, n, &old_root, &flip(&new_root), &p).is_err());
        }
        let mut longer = p.clone();
        longer.push(new_root);
        prop_assert!(verify_consistency(m, n, &old_root, &new_root, &longer).is_err());
        if m < n {
            prop_assert!(verify_consistency(n, m, &new_root, &old_root, &p).is_err());
        }
        // A proof for a different old size does not pass.
        if m + 1 < n {
            let other_root = naive_mth(&l[..(m + 1) as usize]);
            prop_assert!(verify_consistency(m + 1, n, &other_root, &new_root, &p).is_err());
        }
    }

    #[test]
    fn diverging_logs_are_inconsistent((m, n) in two_sizes(), at in any::<prop::sample::Index>()) {
        prop_assume!(m > 0 && m < n);
        // The new log rewrote one of the first m entries: no proof may pass.
        let l = leaves(n);
        let mut forked = l.clone();
        let j = at.index(m as usize);
        forked[j] = leaf_hash(b"rewritten");
        let old_root = naive_mth(&l[..m as usize]);
        let new_root = naive_mth(&forked);
        let p = consistency_proof(&forked, m, n).unwrap();
        prop_assert!(verify_consistency(m, n, &old_root, &new_root, &p).is_err());
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = MerkleFrontier::from_bytes(&bytes);
        let _ = TreeHead::from_bytes(&bytes);
        let _ = SignedTreeHead::from_bytes(&bytes);
        let _ = InclusionProof::from_bytes(&bytes);
        let _ = ConsistencyProof::from_bytes(&bytes);
    }

    #[test]
    fn tree_head_bytes_round_trip(size: u64, timestamp_ms: u64, root: [u8; 32]) {
        let head = TreeHead { size, root, timestamp_ms };
        prop_assert_eq!(TreeHead::from_bytes(&head.to_bytes()).unwrap(), head);
    }
}
