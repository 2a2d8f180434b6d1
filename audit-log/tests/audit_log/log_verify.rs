//! Whole-log verification: a clean log passes, and every kind of tampering is
//! reported as the first bad entry with a precise error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use std::sync::OnceLock;
use trustca_audit::{
    AuditError, Hash, LogVerifier, MerkleFrontier, SignedTreeHead, TreeHead, leaf_hash, verify_log,
};

type Entry = (u64, Vec<u8>, Hash);

fn new_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

/// One signing key shared by the whole test binary (key generation is slow-ish).
fn log_key() -> &'static EcdsaKeyPair {
    static KEY: OnceLock<EcdsaKeyPair> = OnceLock::new();
    KEY.get_or_init(new_key)
}

fn pk() -> Vec<u8> {
    log_key().public_key().as_ref().to_vec()
}

/// A log of `n` entries as a store would keep it, with signed heads at `head_sizes`.
fn build(n: u64, head_sizes: &[u64]) -> (Vec<Entry>, Vec<SignedTreeHead>) {
    let rng = SystemRandom::new();
    let mut f = MerkleFrontier::new();
    let mut entries = Vec::new();
    let mut heads = Vec::new();
    for s in head_sizes.iter().filter(|s| **s == 0) {
        heads.push(f.tree_head(1000 + s).sign(log_key(), &rng).unwrap());
    }
    for i in 0..n {
        let bytes = format!("{{\"event\":\"issue\",\"serial\":{i}}}").into_bytes();
        let (idx, h) = f.push_entry(&bytes).unwrap();
        assert_eq!(idx, i);
        entries.push((idx, bytes, h));
        for s in head_sizes.iter().filter(|s| **s == f.size()) {
            heads.push(f.tree_head(1000 + s).sign(log_key(), &rng).unwrap());
        }
    }
    (entries, heads)
}

fn verify(
    entries: &[Entry],
    heads: &[SignedTreeHead],
) -> Result<trustca_audit::LogReport, AuditError> {
    verify_log(
        entries.iter().map(|(i, e, h)| (*i, e.as_slice(), *h)),
        heads,
        &pk(),
    )
}

#[test]
fn clean_log_verifies() {
    let (entries, heads) = build(50, &[0, 1, 10, 32, 45]);
    let report = verify(&entries, &heads).unwrap();
    assert_eq!(report.entries, 50);
    assert_eq!(report.heads_verified, 5);
    assert_eq!(report.last_signed.unwrap().size, 45);
    assert_eq!(report.unsigned_entries, 5);
    let f = MerkleFrontier::from_leaf_hashes(entries.iter().map(|e| e.2)).unwrap();
    assert_eq!(report.root, f.root());
}

#[test]
fn empty_logs_verify() {
    let report = verify(&[], &[]).unwrap();
    assert_eq!(
        (report.entries, report.heads_verified, report.last_signed),
        (0, 0, None)
    );
    let (entries, heads) = build(0, &[0]);
    let report = verify(&entries, &heads).unwrap();
    assert_eq!(report.heads_verified, 1);
    assert_eq!(report.unsigned_entries, 0);
}

#[test]
fn heads_may_come_in_any_order() {
    let (entries, mut heads) = build(40, &[5, 40, 17, 17, 33]);
    heads.reverse();
    assert_eq!(verify(&entries, &heads).unwrap().heads_verified, 5);
}

#[test]
fn tampered_entry_is_found() {
    let (mut entries, heads) = build(30, &[10, 30]);
    entries[17].1[3] ^= 0x20;
    let err = verify(&entries, &heads).unwrap_err();
    assert_eq!(err, AuditError::LeafHashMismatch { index: 17 });
    assert_eq!(err.first_bad_index(), Some(17));
}

#[test]
fn tampered_stored_hash_is_found() {
    let (mut entries, heads) = build(30, &[30]);
    entries[4].2[0] ^= 1;
    assert_eq!(
        verify(&entries, &heads),
        Err(AuditError::LeafHashMismatch { index: 4 })
    );
}

#[test]
fn rewritten_entry_and_hash_is_caught_by_the_next_head() {
    let (mut entries, heads) = build(30, &[8, 16, 24]);
    entries[19].1 = b"{\"event\":\"nothing to see\"}".to_vec();
    entries[19].2 = leaf_hash(&entries[19].1);
    let err = verify(&entries, &heads).unwrap_err();
    assert_eq!(
        err,
        AuditError::RootMismatch {
            size: 24,
            last_verified_size: 16
        }
    );
    assert_eq!(err.first_bad_index(), Some(16));
}

#[test]
fn deleted_entry_is_found() {
    let (mut entries, heads) = build(30, &[30]);
    entries.remove(12);
    let err = verify(&entries, &heads).unwrap_err();
    assert_eq!(
        err,
        AuditError::MissingEntry {
            index: 12,
            next_present: 13
        }
    );
    assert_eq!(err.first_bad_index(), Some(12));
}

#[test]
fn deleted_first_entry_is_found() {
    let (mut entries, heads) = build(5, &[]);
    entries.remove(0);
    assert_eq!(
        verify(&entries, &heads),
        Err(AuditError::MissingEntry {
            index: 0,
            next_present: 1
        })
    );
}

#[test]
fn deleted_tail_is_found_when_signed() {
    let (mut entries, heads) = build(30, &[10, 28]);
    entries.truncate(25);
    let err = verify(&entries, &heads).unwrap_err();
    assert_eq!(
        err,
        AuditError::LogTruncated {
            entries: 25,
            head_size: 28
        }
    );
    assert_eq!(err.first_bad_index(), Some(25));
}

#[test]
fn deleted_unsigned_tail_is_invisible_but_reported_as_unsigned() {
    let (mut entries, heads) = build(30, &[20]);
    assert_eq!(verify(&entries, &heads).unwrap().unsigned_entries, 10);
    entries.truncate(26);
    let report = verify(&entries, &heads).unwrap();
    assert_eq!((report.entries, report.unsigned_entries), (26, 6));
}

#[test]
fn duplicated_or_reordered_entries_are_found() {
    let (entries, heads) = build(20, &[20]);
    let mut dup = entries.clone();
    dup.insert(8, entries[7].clone());
    assert_eq!(
        verify(&dup, &heads),
        Err(AuditError::OutOfOrderEntry {
            expected: 8,
            found: 7
        })
    );
    let mut swapped = entries.clone();
    swapped.swap(3, 4);
    assert_eq!(
        verify(&swapped, &heads),
        Err(AuditError::MissingEntry {
            index: 3,
            next_present: 4
        })
    );
}

#[test]
fn head_with_wrong_root_is_found() {
    let (entries, mut heads) = build(30, &[10, 20, 30]);
    let mut forged = heads[1].head;
    forged.root[0] ^= 0xff;
    heads[1] = forged.sign(log_key(), &SystemRandom::new()).unwrap();
    assert_eq!(
        verify(&entries, &heads),
        Err(AuditError::RootMismatch {
            size: 20,
            last_verified_size: 10
        })
    );
}

#[test]
fn bad_signatures_are_found() {
    let (entries, mut heads) = build(30, &[10, 20]);
    // Signed by someone else.
    let other = new_key();
    let mut h = heads.clone();
    h[1] = h[1].head.sign(&other, &SystemRandom::new()).unwrap();
    let err = verify(&entries, &h).unwrap_err();
    assert_eq!(
        err,
        AuditError::BadSignature {
            size: 20,
            timestamp_ms: 1020
        }
    );
    assert_eq!(err.first_bad_index(), None);
    // Corrupted signature bytes.
    let last = heads[0].signature.len() - 1;
    heads[0].signature[last] ^= 1;
    assert!(matches!(
        verify(&entries, &heads),
        Err(AuditError::BadSignature { size: 10, .. })
    ));
    // Verifying with the wrong public key fails at the first head.
    let (entries, heads) = build(5, &[0, 5]);
    let res = verify_log(
        entries.iter().map(|(i, e, h)| (*i, e.clone(), *h)),
        &heads,
        other.public_key().as_ref(),
    );
    assert_eq!(
        res,
        Err(AuditError::BadSignature {
            size: 0,
            timestamp_ms: 1000
        })
    );
}

#[test]
fn forged_oversized_head_is_a_bad_signature_not_a_truncation() {
    let (entries, mut heads) = build(10, &[10]);
    heads.push(SignedTreeHead {
        head: TreeHead {
            size: 500,
            root: [1; 32],
            timestamp_ms: 9,
        },
        signature: heads[0].signature.clone(),
        signer: heads[0].signer,
    });
    assert!(matches!(
        verify(&entries, &heads),
        Err(AuditError::BadSignature { size: 500, .. })
    ));
}

#[test]
fn the_first_problem_in_log_order_wins() {
    // Tampered entry 5, missing entry 20: entry 5 first.
    let (mut entries, heads) = build(30, &[10, 30]);
    entries[5].1.push(b'!');
    entries.remove(20);
    assert_eq!(
        verify(&entries, &heads),
        Err(AuditError::LeafHashMismatch { index: 5 })
    );

    // Bad head at size 10 comes before tampered entry 15 ...
    let (mut entries, mut heads) = build(30, &[10, 30]);
    heads[0].signature[4] ^= 0x55;
    entries[15].1.push(b'!');
    assert!(matches!(
        verify(&entries, &heads),
        Err(AuditError::BadSignature { size: 10, .. })
    ));
    // ... but after tampered entry 9 (the head at 10 is checked after entry 9).
    entries[9].1.push(b'!');
    assert_eq!(
        verify(&entries, &heads),
        Err(AuditError::LeafHashMismatch { index: 9 })
    );
}

#[test]
fn streaming_verifier_is_sticky_after_an_error() {
    let (entries, heads) = build(12, &[12]);
    let mut v = LogVerifier::new(&pk(), heads);
    for (i, e, h) in &entries[..5] {
        v.push(*i, e, h).unwrap();
    }
    assert_eq!(v.entries(), 5);
    let err = v.push(5, b"forged", &entries[5].2).unwrap_err();
    assert_eq!(err, AuditError::LeafHashMismatch { index: 5 });
    // Feeding the genuine entry afterwards does not clear the error.
    assert_eq!(v.push(5, &entries[5].1, &entries[5].2), Err(err.clone()));
    assert_eq!(v.finish(), Err(err));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever single entry is altered or deleted, the verifier names it.
    #[test]
    fn any_single_tampering_is_located(
        n in 1u64..80,
        pos in any::<prop::sample::Index>(),
        delete in any::<bool>(),
    ) {
        let (mut entries, heads) = build(n, &[n]);
        let p = pos.index(n as usize);
        if delete {
            entries.remove(p);
        } else {
            entries[p].1.push(0);
        }
        let err = verify(&entries, &heads).unwrap_err();
        prop_assert_eq!(err.first_bad_index(), Some(p as u64), "{:?}", err);
    }
}

/// A version 1 head (no key id), as logs written before key ids carry.
fn sign_v1(head: TreeHead, key: &EcdsaKeyPair) -> SignedTreeHead {
    let sig = key
        .sign(&SystemRandom::new(), &head.to_bytes())
        .unwrap()
        .as_ref()
        .to_vec();
    SignedTreeHead {
        head,
        signature: sig,
        signer: None,
    }
}

#[test]
fn heads_name_their_signer_and_a_renewed_key_keeps_old_heads_verifying() {
    // The audit signer's key is replaced at certificate renewal: heads up
    // to size 4 were signed by the old key (one of them before heads
    // carried a key id), later ones by the new key.
    let rng = SystemRandom::new();
    let (old_key, new_key) = (new_key(), new_key());
    let mut f = MerkleFrontier::new();
    let mut entries = Vec::new();
    let mut heads = Vec::new();
    for i in 0..8u64 {
        let bytes = format!("entry {i}").into_bytes();
        let (idx, h) = f.push_entry(&bytes).unwrap();
        entries.push((idx, bytes, h));
        match f.size() {
            2 => heads.push(sign_v1(f.tree_head(2), &old_key)),
            4 => heads.push(f.tree_head(4).sign(&old_key, &rng).unwrap()),
            6 | 8 => heads.push(f.tree_head(f.size()).sign(&new_key, &rng).unwrap()),
            _ => {}
        }
    }
    let old_pk = old_key.public_key().as_ref().to_vec();
    let new_pk = new_key.public_key().as_ref().to_vec();
    assert_eq!(heads[1].signer, Some(trustca_audit::signer_key_id(&old_pk)));
    assert_eq!(heads[2].signer, Some(trustca_audit::signer_key_id(&new_pk)));
    for h in &heads {
        assert_eq!(&SignedTreeHead::from_bytes(&h.to_bytes()).unwrap(), h);
    }

    // Checking every head against the current key alone fails at the
    // first old head: the defect `audit verify` had after a renewal.
    let mut only_new = LogVerifier::new(&new_pk, heads.clone());
    let err = entries
        .iter()
        .try_for_each(|(i, e, h)| only_new.push(*i, e, h))
        .and_then(|()| only_new.finish().map(|_| ()))
        .unwrap_err();
    assert_eq!(
        err,
        AuditError::BadSignature {
            size: 2,
            timestamp_ms: 2
        }
    );

    let mut all = LogVerifier::with_keys(vec![new_pk.clone(), old_pk.clone()], heads.clone());
    for (i, e, h) in &entries {
        all.push(*i, e, h).unwrap();
    }
    let report = all.finish().unwrap();
    assert_eq!((report.entries, report.heads_verified), (8, 4));

    // The key id is signed: naming the other key breaks the head.
    let mut renamed = heads[3].clone();
    renamed.signer = heads[1].signer;
    assert!(renamed.verify(&old_pk).is_err());
    assert!(renamed.verify(&new_pk).is_err());
    assert!(renamed.verify_any(&[&old_pk, &new_pk]).is_err());
}
