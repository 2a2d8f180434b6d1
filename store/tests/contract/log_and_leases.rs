//! What a store keeps beside the records: audit entries as Merkle leaves, the
//! change marker, blobs, tree heads, records across reopening, one audit log
//! under concurrent writers, leases with one holder and attestation
//! challenges taken once.

use super::*;

pub(crate) fn audit_entries_are_merkle_leaves(b: &Backend) {
    let s = b.open();
    for i in 0..5u8 {
        assert!(s.commit_issuances(&[issuance(i + 1, &format!("d{i}"), false)])[0].is_ok());
    }
    let entries = s.audit_entries(0, 100).unwrap();
    assert_eq!(entries.len(), 5);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
        assert_eq!(e.leaf_hash, trustca_audit::leaf_hash(&e.leaf_bytes()));
    }
    let (size, root) = s.audit_head().unwrap();
    assert_eq!(size, 5);
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.leaf_hash).collect();
    assert_eq!(root, trustca_audit::root_at(&hashes, 5).unwrap());
    assert_eq!(s.audit_entries(3, 100).unwrap().len(), 2);
    assert_eq!(s.audit_entries(0, 2).unwrap().len(), 2);
    assert_eq!(s.audit_entries(0, usize::MAX).unwrap().len(), 5);
    assert_eq!(s.audit_entries_raw(0, usize::MAX).unwrap().len(), 5);
    let raw = s.audit_entries_raw(4, 10).unwrap();
    assert_eq!(raw.len(), 1);
    assert_eq!(raw[0].0, 4);
    assert_eq!(
        trustca_store::AuditEntry::decode(&raw[0].1).unwrap(),
        entries[4]
    );
    // Inclusion proof of every entry against the head.
    for i in 0..5u64 {
        let proof = trustca_audit::inclusion_proof(&hashes, i, 5).unwrap();
        assert!(
            trustca_audit::verify_inclusion(&hashes[i as usize], i, 5, &proof, &root).is_ok(),
            "entry {i}"
        );
    }
}

/// Readers keep what they derived from records while the marker stays
/// (`trust-db`'s standing cache): every write moves it, reads do not, a
/// refused write may, and a reopened store never repeats a number. A
/// backend shared with other writers has none.
pub(crate) fn the_change_marker_moves_with_every_write_and_never_repeats(b: &Backend) {
    let s = b.open();
    let Some(start) = s.change_marker() else {
        assert!(b.is_shared(), "an embedded store has a change marker");
        return;
    };
    assert!(!b.is_shared(), "a shared store cannot have a change marker");
    let k = key();
    let r = s.commit_issuances(&[issuance_with(1, "a", false, cert_der(&k, 1))]);
    assert!(r[0].is_ok(), "{r:?}");
    let issued = s.change_marker().unwrap();
    assert_ne!(issued, start);
    s.trust_record("a").unwrap();
    s.certificate(&[1; 16]).unwrap();
    assert_eq!(s.change_marker(), Some(issued), "reads leave it");
    s.revoke(&[vec![1; 16]], 1, "operator:ops", "leaked", 20)
        .unwrap();
    let revoked = s.change_marker().unwrap();
    assert_ne!(revoked, issued);
    let seen = [start, issued, revoked];
    drop(s);
    let again = b.open();
    let reopened = again.change_marker().unwrap();
    assert!(
        !seen.contains(&reopened),
        "{reopened} was used before the reopening"
    );
}

pub(crate) fn blobs_and_their_audit_entries(b: &Backend) {
    let s = b.open();
    let audit = BlobAudit {
        actor: "service:pseudonym".into(),
        kind: "pseudonym.issued".into(),
        subject: "batch".into(),
        detail: "{}".into(),
        at: 5,
    };
    s.blob_put(
        "space.a",
        &[
            (b"k1".to_vec(), b"v1".to_vec()),
            (b"k2".to_vec(), b"v2".to_vec()),
        ],
        true,
        Some(&audit),
    )
    .unwrap();
    s.blob_put(
        "space.b",
        &[(b"k1".to_vec(), b"other".to_vec())],
        false,
        None,
    )
    .unwrap();
    assert_eq!(s.blob_get("space.a", b"k1").unwrap().unwrap(), b"v1");
    assert_eq!(s.blob_get("space.b", b"k1").unwrap().unwrap(), b"other");
    assert!(s.blob_get("space.a", b"k3").unwrap().is_none());
    assert_eq!(s.blob_scan("space.a", b"k").unwrap().len(), 2);
    assert_eq!(s.blob_scan("space.a", b"").unwrap().len(), 2);
    assert_eq!(s.blob_scan("space.a", b"k2").unwrap().len(), 1);
    // Prefixes are byte prefixes, including 0xff and LIKE's wildcards.
    s.blob_put(
        "space.c",
        &[
            (b"a\xff1".to_vec(), b"1".to_vec()),
            (b"a\xff\xff".to_vec(), b"2".to_vec()),
            (b"b".to_vec(), b"3".to_vec()),
            (b"m_1".to_vec(), b"4".to_vec()),
            (b"mx1".to_vec(), b"5".to_vec()),
        ],
        false,
        None,
    )
    .unwrap();
    assert_eq!(s.blob_scan("space.c", b"a\xff").unwrap().len(), 2);
    assert_eq!(s.blob_scan("space.c", b"a\xff\xff").unwrap().len(), 1);
    assert_eq!(s.blob_scan("space.c", b"m_").unwrap().len(), 1);
    assert_eq!(s.blob_scan("space.c", b"").unwrap().len(), 5);
    // create_only refuses an existing key, and writes nothing of the call.
    assert!(
        s.blob_put(
            "space.a",
            &[
                (b"k9".to_vec(), b"x".to_vec()),
                (b"k1".to_vec(), b"x".to_vec())
            ],
            true,
            Some(&audit),
        )
        .is_err()
    );
    assert!(s.blob_get("space.a", b"k9").unwrap().is_none());
    assert_eq!(s.blob_get("space.a", b"k1").unwrap().unwrap(), b"v1");
    // Overwrite when allowed.
    s.blob_put("space.a", &[(b"k1".to_vec(), b"v1b".to_vec())], false, None)
        .unwrap();
    assert_eq!(s.blob_get("space.a", b"k1").unwrap().unwrap(), b"v1b");
    let entries = s.audit_entries(0, 10).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, "pseudonym.issued");
}

pub(crate) fn tree_heads_are_kept_in_order(b: &Backend) {
    let s = b.open();
    assert!(s.tree_heads().unwrap().is_empty());
    s.store_tree_head(300, b"h300").unwrap();
    s.store_tree_head(2, b"h2").unwrap();
    s.store_tree_head(40, b"h40").unwrap();
    assert_eq!(
        s.tree_heads().unwrap(),
        vec![b"h2".to_vec(), b"h40".to_vec(), b"h300".to_vec()]
    );
}

pub(crate) fn records_survive_reopening(b: &Backend) {
    {
        let s = b.open();
        assert!(s.commit_issuances(&[issuance(1, "a", false)])[0].is_ok());
        s.flush().unwrap();
    }
    let s = b.open();
    assert!(s.device("a").unwrap().is_some());
    assert_eq!(s.counts().unwrap(), (1, 1));
    assert_eq!(s.audit_head().unwrap().0, 1);
    assert!(s.size_on_disk().unwrap() > 0);
}

pub(crate) fn concurrent_writers_keep_one_audit_log(b: &Backend) {
    // Two handles (two replicas on PostgreSQL; one shared handle on sled)
    // write at once: the audit log stays one gap-free Merkle log.
    let first = b.open();
    let second = if b.is_shared() {
        b.open()
    } else {
        Arc::clone(&first)
    };
    let writers: Vec<_> = [(first.clone(), 0u8), (second, 100u8)]
        .into_iter()
        .map(|(s, base)| {
            std::thread::spawn(move || {
                for i in 0..25u8 {
                    let id = format!("w{base}-{i}");
                    let r = s.commit_issuances(&[issuance(base + i, &id, false)]);
                    assert!(r[0].is_ok(), "{r:?}");
                    s.apply_trust_changes(&[change(&id, 2, None)], 9).unwrap();
                    s.next_crl_number("automotive").unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let entries = first.audit_entries(0, 1000).unwrap();
    assert_eq!(entries.len(), 100);
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.leaf_hash).collect();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
        assert_eq!(e.leaf_hash, trustca_audit::leaf_hash(&e.leaf_bytes()));
    }
    let (size, root) = first.audit_head().unwrap();
    assert_eq!(size, 100);
    assert_eq!(root, trustca_audit::root_at(&hashes, 100).unwrap());
    assert_eq!(first.counts().unwrap(), (50, 50));
    assert_eq!(first.next_crl_number("automotive").unwrap(), 51);
}

pub(crate) fn leases_have_one_holder(b: &Backend) {
    let a = b.open();
    if !b.is_shared() {
        // One process per store: every lease is its own.
        assert!(a.hold_lease("tree-heads", "replica-a", 30).unwrap());
        assert!(a.hold_lease("tree-heads", "replica-b", 30).unwrap());
        return;
    }
    let other = b.open();
    assert!(a.hold_lease("tree-heads", "replica-a", 30).unwrap());
    assert!(!other.hold_lease("tree-heads", "replica-b", 30).unwrap());
    // Renewed by its holder; another lease is independent.
    assert!(a.hold_lease("tree-heads", "replica-a", 30).unwrap());
    assert!(other.hold_lease("crl", "replica-b", 30).unwrap());
    // Expired: the next asker takes it over.
    assert!(a.hold_lease("short", "replica-a", 1).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert!(other.hold_lease("short", "replica-b", 30).unwrap());
    assert!(!a.hold_lease("short", "replica-a", 30).unwrap());
}

/// Open attestation challenges (issue 25): kept durably until taken,
/// taken once (also by another replica of a shared store, also by many at
/// once), the open-challenge limit holding with expired ones making room.
pub(crate) fn attestation_challenges_are_taken_once_and_survive_reopening(b: &Backend) {
    let now = 1_800_000_000;
    {
        let a = b.open();
        assert!(
            a.challenge_put(b"id-1", b"record-1", now + 300, now, 3)
                .unwrap()
        );
        assert!(a.challenge_put(b"id-old", b"old", now - 1, now, 3).unwrap());
        assert!(
            a.challenge_put(b"id-2", b"record-2", now + 300, now, 3)
                .unwrap()
        );
        // Full (3 open), but one expired: it makes room for the new one.
        assert!(
            a.challenge_put(b"id-3", b"record-3", now + 300, now, 3)
                .unwrap()
        );
        assert!(
            !a.challenge_put(b"id-4", b"record-4", now + 300, now, 3)
                .unwrap()
        );
        assert_eq!(a.challenge_take(b"id-old").unwrap(), None);
    }
    // A restart (or, shared, another replica) takes what was put, once.
    let a = b.open();
    assert_eq!(
        a.challenge_take(b"id-1").unwrap(),
        Some((b"record-1".to_vec(), now + 300))
    );
    assert_eq!(a.challenge_take(b"id-1").unwrap(), None);
    assert_eq!(a.challenge_take(b"unknown").unwrap(), None);
    // Many takers at once, on their own handles: exactly one wins.
    let handles: Vec<Arc<dyn Storage>> = (0..4)
        .map(|_| {
            if b.is_shared() {
                b.open()
            } else {
                Arc::clone(&a)
            }
        })
        .collect();
    let won: usize = std::thread::scope(|scope| {
        let takers: Vec<_> = handles
            .iter()
            .map(|h| scope.spawn(move || h.challenge_take(b"id-2").unwrap().is_some()))
            .collect();
        takers
            .into_iter()
            .map(|t| usize::from(t.join().unwrap()))
            .sum()
    });
    assert_eq!(won, 1);
}
