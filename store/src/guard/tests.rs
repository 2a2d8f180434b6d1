//! The guard against a real sled store: refusals while full, reopening,
//! the reserve, read-only recovery.

use super::*;
use crate::SledStorage;

fn guarded(dir: &std::path::Path) -> GuardedStorage {
    let path = dir.join("db");
    let opener: Opener = Box::new(move || {
        let (s, w) = SledStorage::open_with_close_waiter(&path)?;
        Ok((Arc::new(s) as Arc<dyn Storage>, Some(w)))
    });
    GuardedStorage::open(
        opener,
        Recovery::Reopen {
            reserve: dir.join("db.reserve"),
        },
    )
    .unwrap()
}

#[test]
fn read_only_refuses_every_write_and_serves_reads() {
    let dir = tempfile::tempdir().unwrap();
    let g = guarded(dir.path());
    assert_eq!(
        std::fs::metadata(dir.path().join("db.reserve"))
            .unwrap()
            .len(),
        RESERVE_BYTES as u64,
        "the reserve is written at open"
    );
    g.blob_put("s", &[(b"k".to_vec(), b"v".to_vec())], false, None)
        .unwrap();
    assert_eq!(g.write_health(), WriteHealth::Writable);
    g.set_read_only("damaged");
    let err = g
        .blob_put("s", &[(b"k2".to_vec(), b"v".to_vec())], false, None)
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::ReadOnly(m) if m == "damaged"),
        "{err}"
    );
    assert!(matches!(
        g.next_crl_number("hems"),
        Err(StoreError::ReadOnly(_))
    ));
    assert!(matches!(
        g.hold_lease("crl", "me", 10),
        Err(StoreError::ReadOnly(_))
    ));
    assert!(g.commit_issuances(&[]).is_empty());
    assert_eq!(g.blob_get("s", b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(g.blob_get("s", b"k2").unwrap(), None, "nothing written");
    assert!(matches!(g.write_health(), WriteHealth::Refusing(m) if m.contains("damaged")));
}

#[test]
fn a_reopen_keeps_what_was_committed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let g = guarded(dir.path());
    g.blob_put("s", &[(b"k".to_vec(), b"v".to_vec())], false, None)
        .unwrap();
    // What a failed write does: the engine is replaced by a fresh one
    // from disk, and writes wait for the reserve to be rewritten.
    g.write_failed("no space left on the store's disk");
    assert!(
        !dir.path().join("db.reserve").exists(),
        "the reserve made room"
    );
    assert_eq!(g.blob_get("s", b"k").unwrap(), Some(b"v".to_vec()));
    assert!(matches!(
        g.blob_put("s", &[(b"x".to_vec(), b"y".to_vec())], false, None),
        Err(StoreError::Full(_))
    ));
    assert!(matches!(g.write_health(), WriteHealth::Refusing(_)));
    // The probe is due after a second; space is there, so writes resume.
    std::thread::sleep(FIRST_PROBE + Duration::from_millis(50));
    assert_eq!(g.write_health(), WriteHealth::Writable);
    assert!(dir.path().join("db.reserve").exists());
    g.blob_put("s", &[(b"x".to_vec(), b"y".to_vec())], false, None)
        .unwrap();
    assert_eq!(g.damaged_records(), 0);
}
