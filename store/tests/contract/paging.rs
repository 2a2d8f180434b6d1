//! Reads of sets that grow with the fleet or with time, a page at a time:
//! a sector's revocations, the opaque records of a space, the kept tree
//! heads. Every walk crosses page boundaries and must return what the
//! whole-set read returns, in the same order; a record deleted behind the
//! store's back is refused by the page whose keys surround it, not skipped
//! because it fell between two pages.

use trustca_store::{BlobAudit, STORE_PAGE, Storage, StoreError, blob_pages, revoked_pages};

use crate::{Backend, issuance, raw};

contract!(
    revocations_walk_page_by_page_in_serial_order,
    a_revocation_deleted_between_pages_is_refused,
    blobs_walk_page_by_page_and_the_whole_read_crosses_a_page,
    a_vouched_record_deleted_between_pages_is_refused,
    tree_heads_page_and_the_newest_come_first,
);

fn serials(items: &[(Vec<u8>, i64, u8)]) -> Vec<u8> {
    items.iter().map(|(s, _, _)| s[0]).collect()
}

/// Devices 1..=7 enrolled; 2..=6 revoked at times 100 + n (reason 4).
fn five_revoked(s: &dyn Storage) {
    let batch: Vec<_> = (1..=7)
        .map(|n| issuance(n, &format!("d{n}"), false))
        .collect();
    for r in s.commit_issuances(&batch) {
        r.unwrap();
    }
    for n in 2..=6u8 {
        s.revoke(&[vec![n; 16]], 4, "operator:ops", "", 100 + i64::from(n))
            .unwrap();
    }
}

fn revocations_walk_page_by_page_in_serial_order(b: &Backend) {
    let s = b.open();
    five_revoked(s.as_ref());
    let first = s.revoked_page("automotive", None, 2).unwrap();
    assert_eq!(serials(&first), [2, 3]);
    let second = s.revoked_page("automotive", Some(&[3; 16]), 2).unwrap();
    assert_eq!(serials(&second), [4, 5]);
    assert_eq!(second[0], (vec![4; 16], 104, 4));
    // After the last serial: nothing; another sector: nothing.
    assert!(
        s.revoked_page("automotive", Some(&[6; 16]), 2)
            .unwrap()
            .is_empty()
    );
    assert!(s.revoked_page("energy", None, 2).unwrap().is_empty());
    // Walks of every page size give the whole read, in order.
    let whole = s.revoked_in_sector("automotive").unwrap();
    assert_eq!(serials(&whole), [2, 3, 4, 5, 6]);
    for size in [1, 2, 3, 5, 6] {
        let walked: Vec<_> = revoked_pages(s.as_ref(), "automotive", size)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(walked, whole, "pages of {size}");
    }
}

fn a_revocation_deleted_between_pages_is_refused(b: &Backend) {
    five_revoked(b.open().as_ref());
    // Serial 4 dropped from the CRL index behind the store's back.
    raw::delete_revoked(b, "automotive", &[4; 16]);
    let s = b.open();
    // The first page (2, 3) covers serials up to 3: intact.
    assert_eq!(
        serials(&s.revoked_page("automotive", None, 2).unwrap()),
        [2, 3]
    );
    // The next (5, 6) covers 4 too: refused, naming it.
    match s.revoked_page("automotive", Some(&[3; 16]), 2) {
        Err(StoreError::Corrupt { key, reason }) => {
            assert_eq!(key, format!("revoked automotive {}", "04".repeat(16)));
            assert!(reason.contains("deleted outside trustca"), "{reason}");
        }
        other => panic!("a page around a deleted revocation was served: {other:?}"),
    }
    let walk: Result<Vec<_>, _> = revoked_pages(s.as_ref(), "automotive", 2).collect();
    assert!(walk.is_err(), "the walk served {walk:?}");
}

fn blobs_walk_page_by_page_and_the_whole_read_crosses_a_page(b: &Backend) {
    let s = b.open();
    // More than a page of the whole-set read, under one prefix, beside
    // records of another prefix and another space.
    let n = STORE_PAGE + 76;
    let records: Vec<_> = (0..n)
        .map(|i| (format!("p/{i:05}").into_bytes(), i.to_be_bytes().to_vec()))
        .collect();
    s.blob_put("space.p", &records, false, None).unwrap();
    s.blob_put("space.p", &[(b"q/1".to_vec(), b"x".to_vec())], false, None)
        .unwrap();
    s.blob_put(
        "space.o",
        &[(b"p/00001".to_vec(), b"y".to_vec())],
        false,
        None,
    )
    .unwrap();
    assert_eq!(s.blob_scan("space.p", b"p/").unwrap(), records);
    assert_eq!(s.blob_scan("space.p", b"").unwrap().len(), n + 1);
    let page = s
        .blob_scan_page("space.p", b"p/", Some(b"p/00009"), 3)
        .unwrap();
    let keys: Vec<_> = page.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, [b"p/00010", b"p/00011", b"p/00012"]);
    // An `after` before the prefix starts at the prefix; after its last
    // record, nothing.
    let early = s.blob_scan_page("space.p", b"p/", Some(b"a"), 1).unwrap();
    assert_eq!(early[0].0, b"p/00000");
    let last = format!("p/{:05}", n - 1).into_bytes();
    assert!(
        s.blob_scan_page("space.p", b"p/", Some(&last), 3)
            .unwrap()
            .is_empty()
    );
    let walked: Vec<_> = blob_pages(s.as_ref(), "space.p", b"p/", 7)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(walked, records);
}

fn register_five(s: &dyn Storage) -> Vec<Vec<u8>> {
    let models = trustca_store::registry::MODEL_SPACE;
    let records: Vec<_> = (1..=5)
        .map(|i| (format!("hems/acme/m{i}/1.0").into_bytes(), vec![b'0' + i]))
        .collect();
    let audit = BlobAudit {
        actor: "certification-body:tuv".into(),
        kind: "model.registered".into(),
        subject: "hems/acme".into(),
        detail: "{}".into(),
        at: 9,
    };
    s.commit_model_change(models, &records, &audit, &[])
        .unwrap();
    records.into_iter().map(|(k, _)| k).collect()
}

fn a_vouched_record_deleted_between_pages_is_refused(b: &Backend) {
    let models = trustca_store::registry::MODEL_SPACE;
    let keys = register_five(b.open().as_ref());
    {
        let s = b.open();
        let walked: Vec<_> = blob_pages(s.as_ref(), models, b"hems/", 2)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(walked.len(), 5, "an intact space walks whole");
    }
    raw::set_blob(b, models, &keys[3], None);
    let s = b.open();
    let first = s.blob_scan_page(models, b"hems/", None, 2).unwrap();
    assert_eq!(first.len(), 2, "the first page covers m1 and m2 only");
    match s.blob_scan_page(models, b"hems/", Some(&keys[1]), 2) {
        Err(StoreError::Corrupt { key, reason }) => {
            assert_eq!(key, format!("{models}/hems/acme/m4/1.0"));
            assert!(reason.contains("deleted"), "{reason}");
        }
        other => panic!("a page around a deleted model record was served: {other:?}"),
    }
}

fn tree_heads_page_and_the_newest_come_first(b: &Backend) {
    let s = b.open();
    assert!(s.latest_tree_heads(2).unwrap().is_empty());
    for size in [50u64, 10, 40, 20, 30] {
        s.store_tree_head(size, format!("h{size}").as_bytes())
            .unwrap();
    }
    let head = |n: u64| (n, format!("h{n}").into_bytes());
    assert_eq!(s.tree_heads_page(0, 2).unwrap(), [head(10), head(20)]);
    assert_eq!(s.tree_heads_page(21, 2).unwrap(), [head(30), head(40)]);
    assert_eq!(s.tree_heads_page(50, 2).unwrap(), [head(50)]);
    assert!(s.tree_heads_page(51, 2).unwrap().is_empty());
    assert_eq!(
        s.latest_tree_heads(2).unwrap(),
        [b"h50".to_vec(), b"h40".to_vec()]
    );
    assert_eq!(s.latest_tree_heads(9).unwrap().len(), 5);
    assert!(s.latest_tree_heads(0).unwrap().is_empty());
}
