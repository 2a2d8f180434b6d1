//! A store written by a trustca from before record seals (bare record
//! encodings, audit entries without `binds`): refused in words, reported
//! by the check as not sealed yet rather than as damage, sealed once by
//! `seal_legacy_records` (also when interrupted half-way), then served and
//! checked like any store, a tamper after it still caught.

use std::sync::Arc;

use trustca_store::{
    RecordSeal, RecordTable, SEALED_KIND, SledStorage, Storage, StoreError, StoredRecord,
    check_store, legacy_records_present, seal_legacy_records,
};

use crate::{Backend, SEAL_KEY, change, issuance, raw};

/// The sled tree of a sealed record table, for `raw`.
fn tree(table: RecordTable) -> &'static str {
    match table {
        RecordTable::Certificates => "certificates",
        RecordTable::Devices => "devices",
        _ => "trust",
    }
}

/// Writes into the empty store `b` what an older build left: devices `a`
/// and `b` enrolled at level 3, `a` lowered to 1; every record bare, no
/// audit entry with `binds`. Made with today's rules in a scratch store,
/// then copied with each entry's `binds` taken out (its leaf recomputed)
/// and each record's seal cut off.
fn legacy_store(b: &Backend) {
    let scratch = tempfile::tempdir().unwrap();
    let mut records = Vec::new();
    {
        let s = SledStorage::open(scratch.path()).unwrap();
        for r in s.commit_issuances(&[issuance(1, "a", false), issuance(2, "b", false)]) {
            r.unwrap();
        }
        s.apply_trust_changes(&[change("a", 1, None)], 100).unwrap();
        s.export(&mut |r| {
            records.push(match r {
                StoredRecord::Audit(mut entry) => {
                    let mut detail: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&entry.detail).unwrap();
                    detail.remove("binds");
                    entry.detail = serde_json::Value::Object(detail).to_string();
                    entry.leaf_hash = trustca_audit::leaf_hash(&entry.leaf_bytes());
                    StoredRecord::Audit(entry)
                }
                other => other,
            });
            Ok(())
        })
        .unwrap();
    }
    let mut keys = Vec::new();
    {
        let s = b.open_unsealed();
        s.import(&records).unwrap();
        for table in [
            RecordTable::Certificates,
            RecordTable::Devices,
            RecordTable::Trust,
        ] {
            for (k, _) in s.raw_records(table, None, 100).unwrap() {
                keys.push((table, k));
            }
        }
    }
    assert_eq!(keys.len(), 6);
    for (table, k) in keys {
        raw::tamper(b, tree(table), &k, |v| v.truncate(v.len() - 40));
    }
}

fn seal(s: &dyn Storage, chunk: usize) -> Result<trustca_store::SealReport, StoreError> {
    seal_legacy_records(
        s,
        &RecordSeal::new(&SEAL_KEY),
        "operator:ops",
        200,
        chunk,
        &mut |_| {},
    )
}

pub fn a_legacy_store_is_refused_in_words_then_sealed_and_served(b: &Backend) {
    legacy_store(b);
    {
        let s = b.open_unsealed();
        assert!(legacy_records_present(s.as_ref()).unwrap());
        // Not damage: the check says what to run.
        let report = check_store(s.as_ref(), &mut |_, _| {}).unwrap();
        assert!(report.damaged.is_empty(), "{:?}", report.damaged);
        assert_eq!(report.unsealed, 6);
    }
    // A sealed read refuses a bare record.
    assert!(matches!(
        b.open().trust_record("a"),
        Err(StoreError::Corrupt { .. })
    ));

    let report = seal(b.open_unsealed().as_ref(), 1000).unwrap();
    assert_eq!(
        (report.certificates, report.devices, report.trust_records),
        (2, 2, 2)
    );
    assert_eq!(report.audit_entries, 3);
    {
        let s = b.open_unsealed();
        assert!(!legacy_records_present(s.as_ref()).unwrap());
        let check = check_store(s.as_ref(), &mut |_, _| {}).unwrap();
        assert!(check.damaged.is_empty(), "{:?}", check.damaged);
        assert_eq!(check.unsealed, 0);
        let entries = s.audit_entries(0, 100).unwrap();
        let sealed: Vec<_> = entries.iter().filter(|e| e.kind == SEALED_KIND).collect();
        assert_eq!(sealed.len(), 3);
        assert!(sealed.iter().all(|e| e.actor == "operator:ops"));
        // Running it again finds nothing to do.
        assert_eq!(seal(s.as_ref(), 1000).unwrap().records(), 0);
    }
    {
        // Served as a server does (seals checked, floors learned), and
        // written to.
        let s = b.open();
        assert_eq!(s.trust_record("a").unwrap().unwrap().level, 1);
        assert_eq!(s.trust_record("b").unwrap().unwrap().level, 3);
        assert!(s.device("b").unwrap().is_some());
        assert!(s.certificate(&[1; 16]).unwrap().is_some());
        s.apply_trust_changes(&[change("b", 2, None)], 300).unwrap();
        assert_eq!(s.trust_record("b").unwrap().unwrap().level, 2);
    }
    // A tamper after sealing is caught: a changed byte, and a sealed
    // record put back bare (which is no longer "not sealed yet").
    raw::tamper(b, "trust", b"a", |v| {
        let at = v.len() - 41;
        v[at] ^= 1;
    });
    raw::tamper(b, "devices", b"b", |v| v.truncate(v.len() - 40));
    {
        let s = b.open();
        assert!(matches!(
            s.trust_record("a"),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(s.device("b"), Err(StoreError::Corrupt { .. })));
    }
    let s = b.open_unsealed();
    let check = check_store(s.as_ref(), &mut |_, _| {}).unwrap();
    assert_eq!(check.unsealed, 0);
    assert!(
        check
            .damaged
            .iter()
            .any(|d| d.kind == "trust" && d.key == "a"),
        "{:?}",
        check.damaged
    );
    assert!(
        check
            .damaged
            .iter()
            .any(|d| d.kind == "device" && d.key == "b" && d.reason.contains("without its seal")),
        "{:?}",
        check.damaged
    );
    // Damage is never sealed in.
    assert!(seal(s.as_ref(), 1000).is_err());
}

pub fn an_interrupted_sealing_is_refused_and_finished_by_the_next_run(b: &Backend) {
    legacy_store(b);
    {
        let s: Arc<dyn Storage> = b.open_unsealed();
        // Stopped after its first page, as by a crash.
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            seal_legacy_records(
                s.as_ref(),
                &RecordSeal::new(&SEAL_KEY),
                "operator:ops",
                200,
                1,
                &mut |_| panic!("stopped"),
            )
        }));
        assert!(stopped.is_err());
        // The first certificate is sealed now, so only the marker says
        // the store is half done.
        assert!(legacy_records_present(s.as_ref()).unwrap());
        let check = check_store(s.as_ref(), &mut |_, _| {}).unwrap();
        assert!(check.damaged.is_empty(), "{:?}", check.damaged);
        assert_eq!(check.unsealed, 5);
        let report = seal(s.as_ref(), 2).unwrap();
        assert_eq!(report.records(), 5);
        assert!(!legacy_records_present(s.as_ref()).unwrap());
    }
    assert_eq!(b.open().trust_record("a").unwrap().unwrap().level, 1);
    let check = check_store(b.open_unsealed().as_ref(), &mut |_, _| {}).unwrap();
    assert!(check.damaged.is_empty(), "{:?}", check.damaged);
}
