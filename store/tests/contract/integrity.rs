//! Records changed behind the store's back by someone who can write the
//! database but not the CA's keys (issue 19 §1): a changed level, a deleted
//! record, another device's record in its place, an older version restored,
//! a revocation dropped from the CRL index, a compromised key's block
//! deleted, model registry records changed, deleted or added, a record deleted while a replica serves.
//! Each must be refused when read (`StoreError::Corrupt`, which the services
//! answer as DATA_LOSS, naming the record) and named by `check_store`,
//! which needs no key: it replays what the audit log committed.

use trustca_store::{CertificateRecord, CertificateStatus, StoreError, TrustRecord, check_store};

use crate::raw;
use crate::{Backend, change, issuance};

/// Devices `a` and `b` enrolled at level 3, then `a` lowered to 1.
fn two_devices(b: &Backend) {
    let s = b.open();
    for r in s.commit_issuances(&[issuance(1, "a", false), issuance(2, "b", false)]) {
        r.unwrap();
    }
    s.apply_trust_changes(&[change("a", 1, None)], 100).unwrap();
}

/// Asserts that `read` was refused as damage naming `record`.
fn assert_refused<T: std::fmt::Debug>(read: Result<T, StoreError>, record: &str, why: &str) {
    match read {
        Err(StoreError::Corrupt { key, reason }) => {
            assert_eq!(key, record, "{reason}");
            assert!(reason.contains(why), "{record}: {reason}");
        }
        other => panic!("{record} was served: {other:?}"),
    }
}

/// Runs the offline check (no key, as `trustca store check`) and asserts
/// it names exactly `expected` (kind, key), each with a reason containing
/// the given words.
fn assert_check_names(b: &Backend, expected: &[(&str, &str, &str)]) {
    let s = b.open_unsealed();
    let report = check_store(s.as_ref(), &mut |_, _| {}).unwrap();
    for (kind, key, why) in expected {
        assert!(
            report
                .damaged
                .iter()
                .any(|d| d.kind == *kind && d.key == *key && d.reason.contains(why)),
            "{kind} {key} ({why}) not named: {:?}",
            report.damaged
        );
    }
    for d in &report.damaged {
        assert!(
            expected
                .iter()
                .any(|(k, key, _)| d.kind == *k && d.key == *key),
            "blamed wrongly: {d:?}"
        );
    }
}

/// Rewrites a stored record's fields, its seal left as it was.
fn rewrite<T: serde::Serialize + serde::de::DeserializeOwned>(
    b: &Backend,
    table: &str,
    key: &[u8],
    edit: impl Fn(&mut T),
) {
    raw::tamper(b, table, key, |v| {
        let (body, trailer) = v.split_at(v.len() - 40);
        let mut record: T = trustca_store::decode_record(body).unwrap();
        edit(&mut record);
        let mut out = trustca_store::encode_record(&record).unwrap();
        out.extend_from_slice(trailer);
        *v = out;
    });
}

pub fn a_changed_level_is_refused_and_reported(b: &Backend) {
    two_devices(b);
    // Level 1 → 5, the seal left as it was (sled rewrites its checksum;
    // PostgreSQL takes an UPDATE).
    rewrite(b, "trust", b"a", |r: &mut TrustRecord| {
        assert_eq!(r.level, 1);
        r.level = 5;
    });
    {
        let s = b.open();
        assert_refused(s.trust_record("a"), "trust a", "seal does not verify");
        // Only that record: the other device is served.
        assert_eq!(s.trust_record("b").unwrap().unwrap().level, 3);
        // Nothing builds on it either: a renewal reads it in its transaction.
        let renewal = s.commit_issuances(&[issuance(3, "a", true)]).remove(0);
        assert!(
            matches!(
                renewal,
                Err(StoreError::Corrupt { .. }) | Err(StoreError::Backend(_))
            ),
            "{renewal:?}"
        );
        assert!(s.certificate(&[3; 16]).unwrap().is_none());
    }
    assert_check_names(b, &[("trust", "a", "differs from what audit entry")]);
}

pub fn a_deleted_record_is_refused_and_reported(b: &Backend) {
    two_devices(b);
    raw::set(b, "trust", b"a", None);
    raw::set(b, "devices", b"b", None);
    {
        let s = b.open();
        assert_refused(s.trust_record("a"), "trust a", "deleted");
        assert_refused(s.device("b"), "device b", "deleted");
        // Never enrolled is still simply absent.
        assert!(s.trust_record("nobody").unwrap().is_none());
    }
    assert_check_names(
        b,
        &[
            ("trust", "a", "missing"),
            ("device", "a", "trust record is missing"),
            ("device", "b", "missing"),
        ],
    );
}

pub fn a_record_swapped_with_another_devices_is_refused_and_reported(b: &Backend) {
    two_devices(b);
    // b's record (level 3, correctly sealed for b) put in a's place.
    let b_record = raw::get(b, "trust", b"b").unwrap();
    raw::set(b, "trust", b"a", Some(b_record));
    {
        let s = b.open();
        assert_refused(s.trust_record("a"), "trust a", "seal does not verify");
        assert_eq!(s.trust_record("b").unwrap().unwrap().level, 3);
    }
    assert_check_names(
        b,
        &[
            ("trust", "a", "stored under another identity"),
            ("device", "a", "trust record is missing or damaged"),
        ],
    );
}

pub fn an_older_version_restored_is_refused_and_reported(b: &Backend) {
    two_devices(b);
    // The record as it stood at level 1, put back after an operator
    // suspended the device.
    let old = raw::get(b, "trust", b"a").unwrap();
    {
        let s = b.open();
        let suspended = trustca_store::TrustStatus::Suspended;
        s.apply_trust_changes(&[change("a", 1, Some(suspended))], 200)
            .unwrap();
    }
    raw::set(b, "trust", b"a", Some(old));
    {
        let s = b.open();
        assert_refused(s.trust_record("a"), "trust a", "older copy was restored");
    }
    assert_check_names(b, &[("trust", "a", "older copy restored")]);
}

pub fn the_check_compares_whole_records_with_the_log(b: &Backend) {
    two_devices(b);
    // A certificate marked revoked without a revocation in the log, and
    // a device record that no audit entry wrote.
    rewrite(b, "certificates", &[2; 16], |c: &mut CertificateRecord| {
        c.status = CertificateStatus::Revoked { reason: 0, at: 5 };
    });
    let a_device = raw::get(b, "devices", b"a").unwrap();
    raw::set(b, "devices", b"zz", Some(a_device));
    assert_check_names(
        b,
        &[
            (
                "certificate",
                "02020202020202020202020202020202",
                "audit log does not say so",
            ),
            (
                "certificate",
                "02020202020202020202020202020202",
                "differs from what audit entry",
            ),
            ("device", "zz", "no audit entry wrote it"),
        ],
    );
    let s = b.open();
    assert_refused(s.device("zz"), "device zz", "seal does not verify");
    assert_refused(
        s.certificate(&[2; 16]),
        "certificate 02020202020202020202020202020202",
        "seal does not verify",
    );
}

pub fn an_unrevoked_certificate_is_refused_and_reported(b: &Backend) {
    two_devices(b);
    {
        let s = b.open();
        s.revoke(&[vec![1; 16]], 1, "operator:ops", "leaked", 300)
            .unwrap();
    }
    // The revocation undone in the record (the log still has it).
    rewrite(b, "certificates", &[1; 16], |c: &mut CertificateRecord| {
        c.status = CertificateStatus::Active;
    });
    {
        let s = b.open();
        assert_refused(
            s.certificate(&[1; 16]),
            "certificate 01010101010101010101010101010101",
            "seal does not verify",
        );
    }
    assert_check_names(
        b,
        &[(
            "certificate",
            "01010101010101010101010101010101",
            "the audit log revoked it, but it is not revoked",
        )],
    );
}

pub fn a_dropped_revocation_or_block_is_refused_and_reported(b: &Backend) {
    let k = crate::key();
    let der = crate::cert_der(&k, 1);
    let fp = trustca_model::certificate_key_fingerprint(&der).unwrap();
    {
        let s = b.open();
        for r in s.commit_issuances(&[
            crate::issuance_with(1, "a", false, der),
            issuance(2, "b", false),
        ]) {
            r.unwrap();
        }
        // Key compromise: the certificate on the CRL, its key blocked.
        s.revoke(&[vec![1; 16]], 1, "operator:ops", "leaked", 300)
            .unwrap();
        s.revoke(&[vec![2; 16]], 4, "operator:ops", "superseded", 301)
            .unwrap();
        assert_eq!(s.revoked_in_sector("automotive").unwrap().len(), 2);
    }
    // Who can write the database takes the first off the CRL and frees
    // the key.
    raw::delete_revoked(b, "automotive", &[1; 16]);
    raw::set(b, "blocked_keys", &fp, None);
    let serial = "01010101010101010101010101010101";
    {
        let s = b.open();
        assert_refused(
            s.revoked_in_sector("automotive"),
            &format!("revoked automotive {serial}"),
            "deleted outside trustca",
        );
        assert_refused(
            s.blocked_key(&fp),
            &format!("blocked key {}", trustca_model::hexfmt::encode(&fp)),
            "block is gone",
        );
        // Nor does the freed key enroll again under another identity.
        let again = s
            .commit_issuances(&[crate::issuance_with(3, "z", false, crate::cert_der(&k, 3))])
            .remove(0);
        assert!(again.is_err(), "{again:?}");
        assert!(s.device("z").unwrap().is_none());
    }
    assert_check_names(
        b,
        &[
            ("revoked", &format!("automotive {serial}"), "deleted"),
            (
                "blocked key",
                &trustca_model::hexfmt::encode(&fp),
                "block is gone",
            ),
        ],
    );
}

pub fn a_record_deleted_while_serving_is_refused(b: &Backend) {
    // sled and fjall hold their directory locked while a server runs;
    // PostgreSQL is shared, so a record written after start can be
    // deleted under it.
    if matches!(b, Backend::Sled(_) | Backend::Fjall(_)) {
        return;
    }
    let s = b.open();
    for r in s.commit_issuances(&[issuance(1, "a", false)]) {
        r.unwrap();
    }
    // Another replica enrolls c after this one learned the log.
    {
        let other = b.open();
        for r in other.commit_issuances(&[issuance(3, "c", false)]) {
            r.unwrap();
        }
    }
    raw::set(b, "trust", b"c", None);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_refused(s.trust_record("c"), "trust c", "deleted");
}

pub fn a_changed_model_record_is_refused_and_reported(b: &Backend) {
    use trustca_store::BlobAudit;
    let models = trustca_store::registry::MODEL_SPACE;
    let register = |s: &dyn trustca_store::Storage, key: &str, value: &[u8]| {
        let audit = BlobAudit {
            actor: "certification-body:tuv".into(),
            kind: "model.registered".into(),
            subject: key.into(),
            detail: "{}".into(),
            at: 9,
        };
        s.commit_model_change(
            models,
            &[(key.as_bytes().to_vec(), value.to_vec())],
            &audit,
            &[],
        )
        .unwrap();
    };
    {
        let s = b.open();
        register(s.as_ref(), "hems/acme/m1/1.0", b"level 2");
        register(s.as_ref(), "hems/acme/m2/1.0", b"level 3");
        // Read back at once: written after the log was learned, still vouched.
        assert_eq!(s.blob_scan(models, b"hems/").unwrap().len(), 2);
    }
    raw::set_blob(b, models, b"hems/acme/m1/1.0", Some(b"level 5".to_vec()));
    raw::set_blob(b, models, b"hems/acme/m2/1.0", None);
    raw::set_blob(b, models, b"hems/acme/m3/1.0", Some(b"level 5".to_vec()));
    {
        let s = b.open();
        assert_refused(
            s.blob_scan(models, b"hems/acme/m1"),
            "registry.models/hems/acme/m1/1.0",
            "differs from what audit entry",
        );
        assert_refused(
            s.blob_get(models, b"hems/acme/m2/1.0"),
            "registry.models/hems/acme/m2/1.0",
            "deleted",
        );
        assert_refused(
            s.blob_get(models, b"hems/acme/m3/1.0"),
            "registry.models/hems/acme/m3/1.0",
            "added outside trustca",
        );
        // Never registered is simply absent; other spaces are not vouched.
        assert!(s.blob_get(models, b"hems/acme/m9/1.0").unwrap().is_none());
        assert!(s.blob_scan("anomaly", b"").unwrap().is_empty());
    }
    assert_check_names(
        b,
        &[
            ("registry.models", "hems/acme/m1/1.0", "differs"),
            ("registry.models", "hems/acme/m2/1.0", "deleted"),
            (
                "registry.models",
                "hems/acme/m3/1.0",
                "added outside trustca",
            ),
        ],
    );
}

pub fn a_sealed_space_refuses_changed_records_and_seals_old_ones_once(b: &Backend) {
    let space = "v2x.ra";
    let sealed = || {
        std::sync::Arc::new(
            trustca_store::RecordSeal::new(&crate::SEAL_KEY).sealing_spaces(&[space]),
        )
    };
    // Records written before the space was sealed, then sealed once with a
    // new key; a record of another space is left as it is.
    {
        let s = b.open_unsealed();
        s.blob_put(
            space,
            &[(b"v1".to_vec(), b"enrolled".to_vec())],
            false,
            None,
        )
        .unwrap();
        s.blob_put(
            "anomaly",
            &[(b"x".to_vec(), b"plain".to_vec())],
            false,
            None,
        )
        .unwrap();
    }
    {
        let s = b.open_unsealed();
        let n =
            trustca_store::install_record_seal(s.as_ref(), sealed(), "authority:ra", 5).unwrap();
        assert_eq!(n, 1);
        s.blob_put(space, &[(b"v2".to_vec(), b"revoked".to_vec())], false, None)
            .unwrap();
        assert_eq!(s.blob_get(space, b"v1").unwrap().unwrap(), b"enrolled");
        assert_eq!(s.blob_scan(space, b"v").unwrap().len(), 2);
    }
    // Stored with a trailer; another space as it was.
    assert_eq!(raw_blob(b, space, b"v2").len(), b"revoked".len() + 40);
    assert_eq!(raw_blob(b, "anomaly", b"x"), b"plain");
    // v2's record changed back to "enrolled" (its tag left), and v1's
    // record copied over v2's key.
    let mut changed = raw_blob(b, space, b"v2");
    changed[..7].copy_from_slice(b"enrolld");
    raw::set_blob(b, space, b"v2", Some(changed));
    let v1 = raw_blob(b, space, b"v1");
    raw::set_blob(b, space, b"v3", Some(v1));
    {
        let s = b.open_unsealed();
        // The log says the space is sealed: nothing is taken for old.
        let n =
            trustca_store::install_record_seal(s.as_ref(), sealed(), "authority:ra", 6).unwrap();
        assert_eq!(n, 0);
        for key in [&b"v2"[..], b"v3"] {
            let name = format!("{space} {}", trustca_model::hexfmt::encode(key));
            assert_refused(s.blob_get(space, key), &name, "seal does not verify");
        }
        assert!(s.blob_scan(space, b"v").is_err());
        assert_eq!(s.blob_get(space, b"v1").unwrap().unwrap(), b"enrolled");
    }
}

/// An opaque record's stored bytes.
fn raw_blob(b: &Backend, space: &str, key: &[u8]) -> Vec<u8> {
    raw::get_blob(b, space, key).expect("record")
}
