//! Whole-store operations every backend supports: a copy to another backend
//! keeps every record and the audit log, and `check_store` passes an intact
//! store and names damaged records.

use super::*;

pub(crate) fn everything(s: &dyn Storage) -> Vec<String> {
    let mut out = Vec::new();
    s.export(&mut |r| {
        out.push(format!("{r:?}"));
        Ok(())
    })
    .unwrap();
    out.sort();
    out
}

pub(crate) fn copy_preserves_every_record_and_the_audit_log(b: &Backend) {
    let source_dir = tempfile::tempdir().unwrap();
    let source = SledStorage::open(source_dir.path()).unwrap();
    // Seals travel with the records: the sealed target checks them.
    source.set_record_seal(Arc::new(trustca_store::RecordSeal::new(&SEAL_KEY)));
    let k = key();
    for i in 0..30u8 {
        let der = if i == 0 {
            cert_der(&k, 0)
        } else {
            vec![0x30, 0x01, i]
        };
        let r = source.commit_issuances(&[issuance_with(i, &format!("d{i}"), false, der)]);
        assert!(r[0].is_ok(), "{r:?}");
    }
    source
        .apply_trust_changes(&[change("d3", 1, Some(TrustStatus::Suspended))], 9)
        .unwrap();
    source
        .revoke(&[vec![0; 16]], 1, "operator:ops", "leaked", 10)
        .unwrap();
    source
        .transfer_trust("d4", "d5", "operator:ops", "swap", 11)
        .unwrap();
    source
        .blob_put("space.a", &[(b"k".to_vec(), b"v".to_vec())], true, None)
        .unwrap();
    source.next_crl_number("automotive").unwrap();
    source.next_crl_number("automotive").unwrap();
    let (size, root) = source.audit_head().unwrap();
    source.store_tree_head(size, b"signed head").unwrap();

    let target = b.open();
    let mut calls = 0;
    let report =
        trustca_store::copy_store(&source, target.as_ref(), 7, &mut |_| calls += 1).unwrap();
    assert!(calls > 3, "progress is reported per chunk");
    assert_eq!(report.audit_entries, size);
    assert_eq!(everything(&source), everything(target.as_ref()));
    assert_eq!(target.audit_head().unwrap(), (size, root));
    assert_eq!(target.counts().unwrap(), source.counts().unwrap());
    // The copy goes on where the source stopped.
    assert_eq!(target.next_crl_number("automotive").unwrap(), 3);
    let spki = trustca_model::certificate_key_fingerprint(&cert_der(&k, 0)).unwrap();
    assert!(target.blocked_key(&spki).unwrap().is_some());
    let fp = ring::digest::digest(&ring::digest::SHA256, &[0x30, 0x01, 7]);
    let fp: [u8; 32] = fp.as_ref().try_into().unwrap();
    assert_eq!(
        target.serial_by_fingerprint(&fp).unwrap(),
        Some(vec![7; 16])
    );
    let r = target.commit_issuances(&[issuance(200, "new", false)]);
    assert!(r[0].is_ok(), "{r:?}");
    let entries = target.audit_entries(0, 1000).unwrap();
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.leaf_hash).collect();
    assert_eq!(
        target.audit_head().unwrap().1,
        trustca_audit::root_at(&hashes, hashes.len() as u64).unwrap()
    );
    // A second copy into a store that is no longer empty is refused.
    let err = trustca_store::copy_store(&source, target.as_ref(), 7, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
}

pub(crate) fn the_check_passes_an_intact_store_and_names_damaged_records(b: &Backend) {
    {
        let s = b.open();
        for r in s.commit_issuances(&[
            issuance(1, "a", false),
            issuance(2, "b", false),
            issuance(3, "c", false),
        ]) {
            r.unwrap();
        }
        s.apply_trust_changes(&[change("b", 2, None)], 100).unwrap();
        s.revoke(&[vec![3; 16]], 0, "operator:ops", "", 101)
            .unwrap();
        let report = trustca_store::check_store(s.as_ref(), &mut |_, _| {}).unwrap();
        assert!(report.damaged.is_empty(), "{:?}", report.damaged);
        assert_eq!(
            (report.certificates, report.devices, report.trust_records),
            (3, 3, 3)
        );
        assert_eq!(
            report.history_entries, 5,
            "three enrolments, a change, a revocation"
        );
        assert_eq!(report.audit_entries, s.audit_head().unwrap().0);
        // The issuance entry commits to the certificate's bytes.
        let issued = s.audit_entries(0, 1).unwrap().remove(0);
        assert!(
            issued.detail.contains("\"der_sha256\":\""),
            "{}",
            issued.detail
        );
    }
    // A flipped byte in a certificate record (its last before the seal),
    // and a truncated device record.
    tamper(b, "certificates", &[2; 16], |v| {
        let last = v.len() - 41;
        v[last] ^= 0x40;
    });
    tamper(b, "devices", b"c", |v| v.truncate(v.len() / 2));
    let s = b.open();
    let report = trustca_store::check_store(s.as_ref(), &mut |_, _| {}).unwrap();
    let named: Vec<(&str, &str)> = report
        .damaged
        .iter()
        .map(|d| (d.kind, d.key.as_str()))
        .collect();
    assert!(
        named.contains(&("certificate", "02020202020202020202020202020202")),
        "{:?}",
        report.damaged
    );
    assert!(named.contains(&("device", "c")), "{:?}", report.damaged);
    // Nothing else is blamed, except device b for its damaged certificate.
    for d in &named {
        assert!(
            [
                ("certificate", "02020202020202020202020202020202"),
                ("device", "c"),
                ("device", "b"),
            ]
            .contains(d),
            "{:?}",
            report.damaged
        );
    }
    // The audit log itself is intact.
    assert!(
        trustca_store::check_audit_log(s.as_ref())
            .unwrap()
            .damaged
            .is_empty()
    );
}
