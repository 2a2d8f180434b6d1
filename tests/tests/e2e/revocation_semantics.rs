//! What a revocation means, end to end over mutual TLS: a key revoked for
//! compromise is refused for good under every identity (enrollment,
//! renewal, restriction, decisions), other reasons do not
//! block the key, a device whose every certificate is revoked is `revoked`
//! in answers and signed assertions, and coming back takes an explicit
//! renewal with a new key. Every step is checked in the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use trustca_api::client::connect;
use trustca_model::{CertificateKind, SignedTrustAssertion, TrustStatus};
use trustca_proto::v1 as pb;
use trustca_proto::v1::enrollment_client::EnrollmentClient;
use trustca_proto::v1::revocation_client::RevocationClient;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;
use trustca_store::Storage;

/// A CSR for an existing key (the key an attacker or a lazy renewal reuses).
fn csr_with(key: &rcgen::KeyPair) -> Vec<u8> {
    let params = rcgen::CertificateParams::new(vec!["device.example".to_string()]).unwrap();
    params.serialize_request(key).unwrap().der().to_vec()
}

async fn enroll_with(
    client: &mut EnrollmentClient<Channel>,
    key: &rcgen::KeyPair,
    serial: &str,
    renewal: bool,
) -> Result<pb::EnrollResponse, tonic::Status> {
    let mut req = request(
        "automotive",
        "Acme",
        serial,
        csr_with(key),
        automotive_lv5(),
    );
    req.renewal = renewal;
    client.enroll(req).await.map(|r| r.into_inner())
}

fn device_from(resp: pb::EnrollResponse, key: &rcgen::KeyPair, root_pem: &str) -> Device {
    Device {
        creds: trustca_api::client::ClientCredentials {
            cert_pem: resp.chain_der.iter().map(|c| pem_of(c)).collect(),
            key_pem: key.serialize_pem(),
            root_pem: root_pem.to_owned(),
        },
        chain: resp.chain_der,
        identity: resp.identity,
    }
}

fn revoke_cert(der: &[u8], reason: &str) -> pb::RevokeRequest {
    pb::RevokeRequest {
        subject: Some(pb::revoke_request::Subject::Certificate(der.to_vec())),
        reason: reason.into(),
        note: format!("test: {reason}"),
    }
}

fn assert_key_refused(r: Result<impl std::fmt::Debug, tonic::Status>, what: &str) {
    let err = r.expect_err(what);
    assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
    assert!(
        err.message()
            .contains("key was revoked for compromise on 20"),
        "{what}: {}",
        err.message()
    );
}

async fn get_trust(db: &mut TrustDatabaseClient<Channel>, urn: &str) -> pb::TrustAnswer {
    db.get_trust(pb::GetTrustRequest {
        subject: Some(pb::get_trust_request::Subject::Identity(urn.into())),
    })
    .await
    .unwrap()
    .into_inner()
}

fn assertion_status(ca: &TestCa, answer: &pb::TrustAnswer) -> TrustStatus {
    let a = answer.assertion.clone().unwrap();
    let root = pem::parse(ca.root_pem()).unwrap().into_contents();
    SignedTrustAssertion {
        body: a.body,
        signature: a.signature,
        responder_chain: a.responder_chain.into(),
    }
    .verify(&root, time::OffsetDateTime::now_utc(), &Default::default())
    .unwrap()
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_for_compromise_is_refused_everywhere_for_good() {
    let mut ca = TestCa::start().await;
    let root = ca.root_pem();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive", "hems"]);
    let home = ca.credential(CertificateKind::Manufacturer, "Home", &["hems"]);
    let mut enroll = ca.client(&acme).await;

    // Key K is in two cars: C1 (to be revoked) and C1b (a clone enrolled
    // before anyone knew). The car was also renewed with the same key.
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let c1 = device_from(
        enroll_with(&mut enroll, &k, "K1", false).await.unwrap(),
        &k,
        &root,
    );
    let c1_renewed = device_from(
        enroll_with(&mut enroll, &k, "K1", true).await.unwrap(),
        &k,
        &root,
    );
    let clone = device_from(
        enroll_with(&mut enroll, &k, "K1B", false).await.unwrap(),
        &k,
        &root,
    );
    let mut house_enroll = ca.client(&home).await;
    let house = enroll_device(
        &mut house_enroll,
        &root,
        "hems",
        "Home",
        "HB-1",
        "H1",
        "1.0.0",
        hems_lv5(),
    )
    .await;

    let url = ca.url();
    let mut rev = RevocationClient::new(connect(&url, &ops).await.unwrap());
    let mut db = TrustDatabaseClient::new(connect(&url, &ops).await.unwrap());
    let before = get_trust(&mut db, &c1.identity).await;
    assert_eq!(before.status, "active");

    // Revoke only the current certificate, for key compromise.
    let r = rev
        .revoke(revoke_cert(&c1_renewed.chain[0], "key-compromise"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.revoked.len(),
        2,
        "the superseded certificate with the same key goes too: {:?}",
        r.revoked
    );

    // The device is revoked: the answer, its reason and the signed assertion.
    let after = get_trust(&mut db, &c1.identity).await;
    assert_eq!(after.status, "revoked", "{after:?}");
    assert!(
        after.reasons.iter().any(|r| r.contains("key-compromise")),
        "{:?}",
        after.reasons
    );
    assert_eq!(assertion_status(&ca, &after), TrustStatus::Revoked);

    // Renewal with the same key, a new identity with that key, and
    // restriction of the clone: all refused.
    assert_key_refused(enroll_with(&mut enroll, &k, "K1", true).await, "renewal");
    assert_key_refused(
        enroll_with(&mut enroll, &k, "K9", false).await,
        "new identity",
    );
    assert_key_refused(
        rev.restrict(pb::RestrictRequest {
            identity: clone.identity.clone(),
            withdraw: vec!["server-auth".into()],
            note: "narrow it".into(),
        })
        .await,
        "restriction",
    );
    // The clone's own certificate was never revoked, yet Decide denies it.
    let mut house_db = TrustDatabaseClient::new(connect(&url, &house.creds).await.unwrap());
    let d = house_db
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: clone.chain.clone(),
            }),
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!d.allow);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("key was revoked for compromise")),
        "{:?}",
        d.reasons
    );

    // For good: after a restart the block holds.
    drop((enroll, rev, db, house_db, house_enroll));
    ca.restart().await;
    let mut enroll = ca.client(&acme).await;
    assert_key_refused(
        enroll_with(&mut enroll, &k, "K10", false).await,
        "after restart",
    );

    // The block was written with the revocation, and audited.
    drop(enroll);
    ca.stop().await;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let entries = store.audit_entries(0, 10_000).unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    let blocked: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "key.blocked")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(blocked.len(), 1, "one key, one block: {kinds:?}");
    assert_eq!(
        kinds[blocked[0] - 1],
        "certificate.revoked",
        "written together: {kinds:?}"
    );
    assert!(kinds.contains(&"trust.revoked"), "{kinds:?}");
    let (_, leaf) = x509_parser::parse_x509_certificate(&c1.chain[0]).unwrap();
    let fp = trustca_model::key_fingerprint(leaf.public_key().raw);
    assert_eq!(entries[blocked[0]].subject, hex::encode(fp));
    assert!(store.blocked_key(&fp).unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_reasons_revoke_the_device_but_not_the_key_and_it_returns_only_with_a_new_key() {
    let mut ca = TestCa::start().await;
    let root = ca.root_pem();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut enroll = ca.client(&acme).await;
    let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let car = device_from(
        enroll_with(&mut enroll, &k, "S1", false).await.unwrap(),
        &k,
        &root,
    );
    let url = ca.url();
    let mut rev = RevocationClient::new(connect(&url, &ops).await.unwrap());
    rev.revoke(revoke_cert(&car.chain[0], "affiliation-changed"))
        .await
        .unwrap();
    let mut db = TrustDatabaseClient::new(connect(&url, &ops).await.unwrap());
    let a = get_trust(&mut db, &car.identity).await;
    assert_eq!(a.status, "revoked", "its only certificate is revoked");
    assert_eq!(assertion_status(&ca, &a), TrustStatus::Revoked);
    assert!(
        a.reasons.iter().any(|r| r.contains("affiliation-changed")),
        "{:?}",
        a.reasons
    );

    // The key is not blocked: another identity may use it.
    enroll_with(&mut enroll, &k, "S2", false)
        .await
        .expect("affiliation-changed does not block the key");
    // The revoked identity: not without the renewal flag, not with its old key.
    let err = enroll_with(&mut enroll, &k, "S1", false).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    let err = enroll_with(&mut enroll, &k, "S1", true).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("needs a new key"),
        "{}",
        err.message()
    );
    // A renewal with a new key brings it back.
    let k2 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    enroll_with(&mut enroll, &k2, "S1", true)
        .await
        .expect("explicit renewal with a new key");
    let a = get_trust(&mut db, &car.identity).await;
    assert_eq!(a.status, "active");
    assert_eq!(assertion_status(&ca, &a), TrustStatus::Active);

    drop((enroll, rev, db));
    ca.stop().await;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let entries = store.audit_entries(0, 10_000).unwrap();
    assert!(!entries.iter().any(|e| e.kind == "key.blocked"));
    let back = entries
        .iter()
        .find(|e| e.kind == "device.re-enrolled")
        .expect("re-enrollment is audited");
    assert!(back.detail.contains(&car.identity), "{}", back.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_revocation_for_key_compromise_blocks_every_key() {
    let ca = TestCa::start().await;
    let root = ca.root_pem();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut enroll = ca.client(&acme).await;
    let mut keys = Vec::new();
    for i in 0..3 {
        let k = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let d = device_from(
            enroll_with(&mut enroll, &k, &format!("B{i}"), false)
                .await
                .unwrap(),
            &k,
            &root,
        );
        keys.push((k, d));
    }
    let mut rev = RevocationClient::new(connect(&ca.url(), &ops).await.unwrap());
    let r = rev
        .bulk_revoke(pb::BulkRevokeRequest {
            sector: "automotive".into(),
            manufacturer: "Acme".into(),
            model: "M1".into(),
            firmware_min: String::new(),
            firmware_max: String::new(),
            reason: "key-compromise".into(),
            note: "shared key material leaked".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.devices, r.certificates), (3, 3));
    let mut db = TrustDatabaseClient::new(connect(&ca.url(), &ops).await.unwrap());
    for (i, (k, d)) in keys.iter().enumerate() {
        assert_key_refused(
            enroll_with(&mut enroll, k, &format!("N{i}"), false).await,
            "a bulk-revoked key",
        );
        assert_eq!(get_trust(&mut db, &d.identity).await.status, "revoked");
    }
}
