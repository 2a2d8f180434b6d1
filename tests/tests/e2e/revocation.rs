//! Revocation end to end: operators revoke, each sector CA publishes a
//! signed v2 CRL that openssl verifies and applies, the trust database
//! reflects it at once, and every step is in the audit log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

use common::*;
use tonic::Code;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::revocation_client::RevocationClient;

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_certificates_are_in_a_crl_openssl_accepts_and_applies() {
    let mut ca = TestCa::start().await;
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems"],
    );
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let bad = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-200",
        "R1",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let good = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-200",
        "R2",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let house = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "RH",
        "1.0.0",
        hems_lv5(),
    )
    .await;

    // The certificates name where their CRL is published.
    let text = {
        let p = ca.data().join("bad.pem");
        std::fs::write(&p, bad.pem()).unwrap();
        openssl(&["x509", "-noout", "-text", "-in", p.to_str().unwrap()]).1
    };
    assert!(
        text.contains("http://crl.trustca.internal/automotive.crl"),
        "{text}"
    );

    let url = ca.url();
    let mut rev = RevocationClient::new(trustca_api::client::connect(&url, &ops).await.unwrap());
    // Bad requests first: nothing changes.
    let err = rev
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Certificate(
                bad.chain[0].clone(),
            )),
            reason: "bored".into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let mut as_maker =
        RevocationClient::new(trustca_api::client::connect(&url, &acme).await.unwrap());
    let err = as_maker
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Certificate(
                bad.chain[0].clone(),
            )),
            reason: "key-compromise".into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = rev
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Identity(
                house.identity.clone(),
            )),
            reason: "key-compromise".into(),
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "an automotive operator cannot revoke HEMS devices"
    );

    let r = rev
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Certificate(
                bad.chain[0].clone(),
            )),
            reason: "key-compromise".into(),
            note: "key extracted from a scrapped unit".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.revoked.len(), 1);
    assert_eq!(r.sector, "automotive");

    // The CRL from gRPC and the one on disk are the same, verify under the
    // sector CA, and list the serial with its reason.
    let crl = rev
        .get_crl(pb::GetCrlRequest {
            sector: "automotive".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(crl.crl_number, r.crl_number);
    let on_disk = std::fs::read(ca.data().join("crl/automotive.crl")).unwrap();
    assert_eq!(on_disk, crl.crl_der);
    let crl_pem = ca.data().join("automotive-crl.pem");
    std::fs::write(
        &crl_pem,
        pem::encode(&pem::Pem::new("X509 CRL", crl.crl_der.clone())),
    )
    .unwrap();
    let sub_ca = ca.data().join("ca/automotive.pem");
    let (ok, out) = openssl(&[
        "crl",
        "-in",
        crl_pem.to_str().unwrap(),
        "-CAfile",
        sub_ca.to_str().unwrap(),
        "-noout",
        "-verify",
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    let (_, text) = openssl(&["crl", "-in", crl_pem.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains(&r.revoked[0].to_uppercase()), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("X509v3 CRL Number"), "{text}");

    // openssl verify -crl_check: the revoked certificate fails, the other passes.
    let root_file = ca.data().join("ca/root.pem");
    let check = |dev: &Device, name: &str| {
        let leaf = ca.data().join(format!("{name}.pem"));
        std::fs::write(&leaf, pem_of(&dev.chain[0])).unwrap();
        openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            root_file.to_str().unwrap(),
            "-untrusted",
            sub_ca.to_str().unwrap(),
            "-CRLfile",
            crl_pem.to_str().unwrap(),
            leaf.to_str().unwrap(),
        ])
    };
    let (ok, out) = check(&bad, "leaf-bad");
    assert!(!ok && out.contains("revoked"), "{out}");
    let (ok, out) = check(&good, "leaf-good");
    assert!(ok, "{out}");

    // The trust database reflects it at once.
    let mut house_db = trustca_proto::v1::trust_database_client::TrustDatabaseClient::new(
        trustca_api::client::connect(&url, &house.creds)
            .await
            .unwrap(),
    );
    let d = house_db
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: bad.chain.clone(),
            }),
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!d.allow);
    assert!(
        d.reasons.iter().any(|r| r.contains("certificate revoked")),
        "{:?}",
        d.reasons
    );

    // Revoking a whole device revokes all its certificates and its trust.
    let r2 = rev
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Identity(good.identity.clone())),
            reason: "cessation-of-operation".into(),
            note: "vehicle scrapped".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r2.revoked.len(), 1);
    assert!(r2.crl_number > r.crl_number, "CRL numbers increase");
    let d = house_db
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: good.chain.clone(),
            }),
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!d.allow);
    assert!(
        d.reasons.iter().any(|r| r.contains("peer is revoked")),
        "{:?}",
        d.reasons
    );

    // Everything is in the audit log, as Merkle leaves.
    drop((rev, as_maker, house_db, enroll));
    ca.stop().await;
    use trustca_store::Storage;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let entries = store.audit_entries(0, 1000).unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "certificate.revoked")
            .count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"trust.revoked"));
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.leaf_hash).collect();
    let (size, root_hash) = store.audit_head().unwrap();
    assert_eq!(size as usize, entries.len());
    assert_eq!(trustca_audit::root_at(&hashes, size).unwrap(), root_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_revocation_by_firmware_range() {
    let ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["hems"]);
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let mut fleet = Vec::new();
    for (i, fw) in ["3.0", "3.1", "3.2", "4.0"].iter().enumerate() {
        fleet.push(
            enroll_device(
                &mut enroll,
                &root,
                "hems",
                "Acme",
                "GW-9",
                &format!("G{i}"),
                fw,
                vec![],
            )
            .await,
        );
    }
    let mut rev =
        RevocationClient::new(trustca_api::client::connect(&ca.url(), &ops).await.unwrap());
    let err = rev
        .bulk_revoke(pb::BulkRevokeRequest {
            sector: "hems".into(),
            manufacturer: "Acme".into(),
            model: "GW-9".into(),
            firmware_min: "3.0".into(),
            firmware_max: "3.1".into(),
            reason: "key-compromise".into(),
            note: "".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "a note saying why is required"
    );
    let r = rev
        .bulk_revoke(pb::BulkRevokeRequest {
            sector: "hems".into(),
            manufacturer: "Acme".into(),
            model: "GW-9".into(),
            firmware_min: "3.0".into(),
            firmware_max: "3.1".into(),
            reason: "key-compromise".into(),
            note: "CVE-2026-7777: shared private key in firmware 3.0-3.1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.devices, r.certificates), (2, 2));
    let crl = rev
        .get_crl(pb::GetCrlRequest {
            sector: "hems".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let (_, parsed) = x509_parser::parse_x509_crl(&crl.crl_der).unwrap();
    let revoked: Vec<Vec<u8>> = parsed
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect();
    for (i, d) in fleet.iter().enumerate() {
        let (_, c) = x509_parser::parse_x509_certificate(&d.chain[0]).unwrap();
        assert_eq!(
            revoked.contains(&c.raw_serial().to_vec()),
            i < 2,
            "device {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_revocation_reissues_a_narrower_certificate() {
    let ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut enroll = ca.client(&acme).await;
    let car = enroll_device(
        &mut enroll,
        &ca.root_pem(),
        "automotive",
        "Acme",
        "EV-200",
        "P1",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let mut rev =
        RevocationClient::new(trustca_api::client::connect(&ca.url(), &ops).await.unwrap());
    let err = rev
        .restrict(pb::RestrictRequest {
            identity: car.identity.clone(),
            withdraw: vec!["teleport".into()],
            note: "x".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let r = rev
        .restrict(pb::RestrictRequest {
            identity: car.identity.clone(),
            withdraw: vec!["server-auth".into()],
            note: "remote diagnostics port withdrawn".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let (_, old) = x509_parser::parse_x509_certificate(&car.chain[0]).unwrap();
    let (_, new) = x509_parser::parse_x509_certificate(&r.chain_der[0]).unwrap();
    assert_eq!(
        r.revoked_serial,
        trustca_model::hexfmt::encode(old.raw_serial())
    );
    let eku = new.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth, "narrower: client only");
    assert_eq!(
        old.public_key().raw,
        new.public_key().raw,
        "same key: no new key needed on the device"
    );
    assert_eq!(
        trustca_model::chain::identity_of(&new).unwrap().urn(),
        car.identity,
        "same identity"
    );
    // The new certificate verifies; the old one is in the CRL as privilegeWithdrawn.
    let (ok, out) = openssl_verify(ca.data(), &ca.root_pem(), &r.chain_der, &[]);
    assert!(ok, "{out}");
    let crl = rev
        .get_crl(pb::GetCrlRequest {
            sector: "automotive".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let crl_pem = ca.data().join("p.crl.pem");
    std::fs::write(
        &crl_pem,
        pem::encode(&pem::Pem::new("X509 CRL", crl.crl_der)),
    )
    .unwrap();
    let (_, text) = openssl(&["crl", "-in", crl_pem.to_str().unwrap(), "-noout", "-text"]);
    assert!(text.contains("Privilege Withdrawn"), "{text}");
    // The device keeps working with its narrower certificate (same key).
    let narrower = trustca_api::client::ClientCredentials {
        cert_pem: r.chain_der.iter().map(|d| pem_of(d)).collect(),
        key_pem: car.creds.key_pem.clone(),
        root_pem: ca.root_pem(),
    };
    let mut db = trustca_proto::v1::trust_database_client::TrustDatabaseClient::new(
        trustca_api::client::connect(&ca.url(), &narrower)
            .await
            .unwrap(),
    );
    let a = db
        .get_trust(pb::GetTrustRequest {
            subject: Some(pb::get_trust_request::Subject::Identity(
                car.identity.clone(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (a.status.as_str(), a.live_level),
        ("active", DECLARED_AUTOMOTIVE_LEVEL)
    );
}
