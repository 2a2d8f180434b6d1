//! The audit log end to end: every change is a Merkle leaf, tree heads are
//! signed by a root-certified key, and `trustca audit` (an independent
//! process reading a copy of the data directory) recomputes everything,
//! proves inclusion and consistency, and names the first tampered or
//! deleted entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

fn audit(args: &[&str], data: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(trustca_bin())
        .arg("audit")
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--json")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_proves_and_catches_tampering_and_deletion() {
    let mut ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    ca.restart().await; // records both credentials, signs the first head
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let mut devices = Vec::new();
    for i in 0..4 {
        devices.push(enroll_acme_car(&mut enroll, &root, &format!("A{i}")).await);
    }
    let mut db = trustca_proto::v1::trust_database_client::TrustDatabaseClient::new(
        trustca_api::client::connect(&ca.url(), &ops).await.unwrap(),
    );
    db.change_trust(pb::ChangeTrustRequest {
        identity: devices[0].identity.clone(),
        change: Some(pb::change_trust_request::Change::Suspend(true)),
        reason: "audit test".into(),
    })
    .await
    .unwrap();
    drop((enroll, db));
    ca.stop().await; // signs the final head

    let data = ca.data().to_path_buf();
    let (code, v, err) = audit(&["verify"], &data);
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(
        v["entries"], 7,
        "2 credentials + 4 issuances + 1 suspension: {v}"
    );
    assert!(v["signed_heads_verified"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["unsigned_entries"], 0);

    let (code, v, err) = audit(&["prove", "3"], &data);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["verified"], true);
    assert_eq!(v["tree_size"], 7);

    let (code, v, err) = audit(&["consistency", "2", "7"], &data);
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["verified"], true);
    let (code, _, err) = audit(&["consistency", "3", "7"], &data);
    assert_ne!(code, Some(0));
    assert!(err.contains("no signed tree head of size 3"), "{err}");

    let (code, v, _) = audit(&["list", "--kind", "trust."], &data);
    assert_eq!(code, Some(0));
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["actor"], "operator:ops");
    let (code, v, _) = audit(&["report"], &data);
    assert_eq!(code, Some(0));
    assert_eq!(v["issued by sector"]["automotive"], 4, "{v}");
    assert_eq!(v["trust changes"]["suspended"], 1, "{v}");

    // Flip one byte of entry 4's stored bytes in a copy.
    let flipped = tempfile::tempdir().unwrap();
    copy_dir(&data, flipped.path());
    {
        let db = trustca_store::raw_sled_config(&flipped.path().join("db"))
            .open()
            .unwrap();
        let tree = db.open_tree("audit").unwrap();
        let key = 4u64.to_be_bytes();
        let mut value = tree.get(key).unwrap().unwrap().to_vec();
        let pos = value.windows(4).position(|w| w == b"Acme").unwrap();
        value[pos] = b'X';
        tree.insert(key, value).unwrap();
        db.flush().unwrap();
    }
    let (code, v, _) = audit(&["verify"], flipped.path());
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["first_bad_entry"], 4, "{v}");

    // Delete entry 2 in another copy.
    let deleted = tempfile::tempdir().unwrap();
    copy_dir(&data, deleted.path());
    {
        let db = trustca_store::raw_sled_config(&deleted.path().join("db"))
            .open()
            .unwrap();
        db.open_tree("audit")
            .unwrap()
            .remove(2u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let (code, v, _) = audit(&["verify"], deleted.path());
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["first_bad_entry"], 2, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_tree_heads_verify_after_the_audit_signer_is_renewed() {
    let mut ca = TestCa::init();
    ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    ca.restart().await; // records the credential, signs a head with the first key
    ca.stop().await;
    let first_signer = std::fs::read(ca.data().join("ca/audit.pem")).unwrap();

    // About 13 months later the audit certificate is within 30 days of
    // expiry and is renewed, with a new key, when the hierarchy is opened.
    let (_, set) = trustca_server::policies::resolve(None, Some(ca.data())).unwrap();
    let pass = trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap();
    let later = time::OffsetDateTime::now_utc()
        + time::Duration::days(i64::from(set.pki.service.validity_days) - 20);
    trustca_ca::CaHierarchy::open_at(ca.data(), &set, &pass, later, None).unwrap();
    assert_ne!(
        std::fs::read(ca.data().join("ca/audit.pem")).unwrap(),
        first_signer,
        "the audit signer was renewed"
    );
    let kept: Vec<_> = std::fs::read_dir(ca.data().join("ca/audit-signers"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(kept.len(), 1, "the replaced signer certificate is kept");

    // New entries, and a head signed with the new key.
    ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    ca.restart().await;
    ca.stop().await;

    let (code, v, err) = audit(&["verify"], ca.data());
    assert_eq!(code, Some(0), "{err} {v}");
    assert_eq!(v["signed_heads_verified"], 2, "{v}");

    // The old head alone: checked against the new key only it would fail,
    // so the pass above used the kept certificate.
    std::fs::remove_dir_all(ca.data().join("ca/audit-signers")).unwrap();
    let (code, _, err) = audit(&["verify"], ca.data());
    assert_ne!(code, Some(0), "{err}");
}
