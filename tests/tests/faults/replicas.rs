//! Several replicas on one PostgreSQL store (issue 11): two `trustca serve`
//! processes share a database; EnrollBatch and Decide load is spread over
//! both; one replica is killed (SIGKILL) mid-load. Every certificate either
//! replica returned is stored exactly once, the survivor keeps answering
//! (also about devices the dead one enrolled), the audit log verifies with
//! `trustca audit verify`, and no CRL number repeats.
//!
//! Needs `TRUSTCA_TEST_POSTGRES` (a server URL without a database); fails
//! without it unless `TRUSTCA_SKIP_POSTGRES=1` asks to skip.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use super::{ServerProcess, serve};
use crate::common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_store::Storage;

/// Starts `trustca serve` on `data` with the PostgreSQL store (its log in
/// `DATA/replica.log`); returns the process, killed when dropped (also on a
/// failed assertion, so no server outlives its test), and its address.
fn replica(data: &Path, store: &str) -> (ServerProcess, String) {
    let server = serve(data, &["--store", store], &data.join("replica.log")).unwrap_or_else(
        |(status, log)| panic!("serve prints its address; it said {status}: {log}"),
    );
    let url = server.url();
    (server, url)
}

fn batch(prefix: &str, n: u64) -> Vec<pb::EnrollBatchItem> {
    (0..n)
        .map(|i| pb::EnrollBatchItem {
            id: i,
            request: Some(request(
                "hems",
                "Acme",
                &format!("{prefix}{i}"),
                csr().1,
                vec![],
            )),
        })
        .collect()
}

async fn crl_number(url: &str, creds: &trustca_api::client::ClientCredentials) -> u64 {
    let mut rev = pb::revocation_client::RevocationClient::new(
        trustca_api::client::connect(url, creds).await.unwrap(),
    );
    rev.get_crl(pb::GetCrlRequest {
        sector: "hems".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .crl_number
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_survive_losing_one() {
    let _alone = super::load_alone().await;
    let Some(store) = postgres_database("failover") else {
        return;
    };
    let ca = TestCa::init();
    let second = tempfile::tempdir().unwrap();
    copy_dir(ca.data(), second.path());
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["hems", "automotive"],
    );
    let operator = ca.credential(CertificateKind::Operator, "ops", &["hems"]);

    let (mut a, url_a) = replica(ca.data(), &store);
    let (mut b, url_b) = replica(second.path(), &store);
    let crl_a0 = crl_number(&url_a, &acme).await;
    let crl_b0 = crl_number(&url_b, &acme).await;

    // Two devices that ask each other, enrolled through different replicas.
    let root = ca.root_pem();
    let mut enroll_a = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(&url_a, &acme).await.unwrap(),
    );
    let mut enroll_b = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(&url_b, &acme).await.unwrap(),
    );
    let house = enroll_acme_battery(&mut enroll_a, &root, "H1").await;
    // battery-discharge needs the car at Lv.4+: its model is registered
    // (declared hardware counts up to Lv.3 in automotive).
    let body = ca.certification_body("TUV", &["automotive"], &["iso-sae-21434"]);
    register_automotive_lv5_with(&url_b, &acme, &body, "Acme", "EV-200").await;
    let car = enroll_acme_car(&mut enroll_b, &root, "C1").await;

    // Decide load on both replicas for the whole test.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut deciders = Vec::new();
    for url in [url_a.clone(), url_b.clone()] {
        let (creds, peer, stop) = (
            house.creds.clone(),
            car.chain.clone(),
            std::sync::Arc::clone(&stop),
        );
        deciders.push(tokio::spawn(async move {
            let mut c = pb::trust_database_client::TrustDatabaseClient::new(
                trustca_api::client::connect(&url, &creds).await.unwrap(),
            );
            let (mut ok, mut failed) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = c
                    .decide(pb::DecideRequest {
                        peer: Some(pb::CertificateChain {
                            certificates: peer.clone(),
                        }),
                        operation: "battery-discharge".into(),
                    })
                    .await;
                match r {
                    Ok(d) => {
                        assert!(d.into_inner().allow);
                        ok += 1;
                    }
                    Err(_) => failed += 1,
                }
            }
            (ok, failed)
        }));
    }

    // EnrollBatch on both; replica A is killed after it returned 300.
    let total = 1200u64;
    let mut stream_a = enroll_a
        .enroll_batch(tokio_stream::iter(batch("A", total)))
        .await
        .unwrap()
        .into_inner();
    let stream_b = tokio::spawn({
        let mut enroll_b = enroll_b.clone();
        async move {
            let mut s = enroll_b
                .enroll_batch(tokio_stream::iter(batch("B", total)))
                .await
                .unwrap()
                .into_inner();
            let mut got = Vec::new();
            while let Some(r) = s.message().await.unwrap() {
                match r.outcome {
                    Some(pb::enroll_batch_result::Outcome::Certificate(c)) => got.push(c),
                    other => panic!("replica B refused an item: {other:?}"),
                }
            }
            got
        }
    });
    let mut returned = Vec::new();
    while let Ok(Some(r)) = stream_a.message().await {
        if let Some(pb::enroll_batch_result::Outcome::Certificate(c)) = r.outcome {
            returned.push(c);
        }
        if returned.len() == 300 {
            a.child.kill().unwrap(); // SIGKILL: no shutdown, no final flush
            break;
        }
    }
    let _ = a.child.wait();
    assert_eq!(returned.len(), 300, "replica A returned certificates first");
    let from_b = stream_b.await.unwrap();
    assert_eq!(
        from_b.len() as u64,
        total,
        "the survivor finished its batch"
    );
    returned.extend(from_b);

    // The survivor answers about a device the dead replica enrolled, and
    // takes changes.
    let mut trust_b = pb::trust_database_client::TrustDatabaseClient::new(
        trustca_api::client::connect(&url_b, &operator)
            .await
            .unwrap(),
    );
    let t = trust_b
        .get_trust(pb::GetTrustRequest {
            subject: Some(pb::get_trust_request::Subject::Identity(
                house.identity.clone(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.identity, house.identity);
    let mut rev_b = pb::revocation_client::RevocationClient::new(
        trustca_api::client::connect(&url_b, &operator)
            .await
            .unwrap(),
    );
    let first_a = returned[0].chain_der[0].clone();
    let r = rev_b
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Certificate(first_a)),
            reason: "superseded".into(),
            note: "failover test".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.revoked.len(), 1);
    let crl_b1 = crl_number(&url_b, &acme).await;

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut decided = 0;
    for d in deciders {
        let (ok, _failed) = d.await.unwrap();
        decided += ok;
    }
    assert!(decided > 0, "Decide was answered during the test");

    // Every returned certificate is stored once, with its device and trust
    // record; the audit log has one issuance per certificate.
    let db = trustca_store::PgStorage::connect(&store).unwrap();
    let mut serials = HashSet::new();
    for c in &returned {
        let serial = trustca_model::hexfmt::decode(&c.serial).unwrap();
        assert!(serials.insert(serial.clone()), "serial returned twice");
        let rec = db
            .certificate(&serial)
            .unwrap()
            .expect("a returned certificate is durable");
        assert_eq!(rec.der, c.chain_der[0]);
        let key = rec.identity_key.unwrap();
        assert!(db.device(&key).unwrap().is_some());
        assert!(db.trust_record(&key).unwrap().is_some());
    }
    let devices = db.devices_with_prefix("hems/acme/m1/").unwrap();
    let issued = db
        .audit_entries(0, usize::MAX)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "certificate.issued")
        .count() as u64;
    let (certs, device_count) = db.counts().unwrap();
    assert_eq!(issued, device_count, "one issuance entry per device");
    assert!(devices.len() as u64 >= 300 + total);
    assert!(certs >= device_count);

    // Each replica published at start with its own number; both serve the
    // newest one (shared through the store), and the revocation's CRL has
    // a higher number still: numbers never repeat and keep growing.
    assert_eq!(crl_a0, crl_b0, "both replicas serve the newest CRL");
    assert!(crl_a0 >= 2, "two start-up publications, two numbers");
    assert!(crl_b1 > crl_a0, "{crl_b1} after {crl_a0}");

    b.child.kill().unwrap();
    let _ = b.child.wait();
    // The audit log, written by two replicas, verifies as one log.
    audit_verifies(second.path(), &store);
}

/// `trustca audit verify` passes over `store` with the tree heads and keys
/// of `data`.
fn audit_verifies(data: &Path, store: &str) {
    let out = Command::new(trustca_bin())
        .args(["audit", "verify", "--data"])
        .arg(data)
        .args(["--store", store])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_deployment_moves_to_postgres_with_its_audit_log() {
    let Some(store) = postgres_database("copy") else {
        return;
    };
    let mut ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let house = enroll_acme_battery(&mut enroll, &root, "H1").await;
    drop(enroll);
    ca.stop().await;

    let out = Command::new(trustca_bin())
        .args(["store", "copy", "--json", "--from"])
        .arg(ca.data().join("db"))
        .args(["--to", &store])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "store copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["audit_entries"].as_u64().unwrap() >= 1, "{report}");
    // A second copy into the now non-empty database is refused plainly.
    let again = Command::new(trustca_bin())
        .args(["store", "copy", "--from"])
        .arg(ca.data().join("db"))
        .args(["--to", &store])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    // The log verifies on PostgreSQL against the heads signed on sled.
    audit_verifies(ca.data(), &store);
    // A server on the copy knows the device enrolled before the move.
    let (mut server, url) = replica(ca.data(), &store);
    let operator = ca.credential(CertificateKind::Operator, "ops", &["hems"]);
    let mut trust = pb::trust_database_client::TrustDatabaseClient::new(
        trustca_api::client::connect(&url, &operator).await.unwrap(),
    );
    let t = trust
        .get_trust(pb::GetTrustRequest {
            subject: Some(pb::get_trust_request::Subject::Identity(
                house.identity.clone(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(t.identity, house.identity);
    assert_eq!(t.live_level, 5);
    server.child.kill().unwrap();
    let _ = server.child.wait();
}

/// Two replicas started at the same moment on a fresh database both
/// start (issue 19, section 3): both record the same credentials issued
/// offline, and both migrate the schema; neither may fail on the other's
/// work. Each credential is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_started_together_on_a_fresh_database_both_start() {
    const TRIALS: usize = 10;
    let ca = TestCa::init();
    for i in 0..3 {
        ca.credential(
            CertificateKind::Manufacturer,
            &format!("Maker{i}"),
            &["hems"],
        );
    }
    let second = tempfile::tempdir().unwrap();
    copy_dir(ca.data(), second.path());
    for trial in 0..TRIALS {
        let Some(store) = postgres_database(&format!("together{trial}")) else {
            return;
        };
        // Both processes are spawned at once, from two threads.
        let (dir_a, dir_b) = (ca.data().to_path_buf(), second.path().to_path_buf());
        let start = |dir: &Path| serve(dir, &["--store", &store], &dir.join("replica.log"));
        let (ra, rb) = std::thread::scope(|s| {
            let a = s.spawn(|| start(&dir_a));
            let b = s.spawn(|| start(&dir_b));
            (a.join().unwrap(), b.join().unwrap())
        });
        // Killed here, when both answered.
        let (ra, rb) = (ra.map(|_| ()), rb.map(|_| ()));
        assert!(ra.is_ok(), "trial {trial}: first replica failed: {ra:?}");
        assert!(rb.is_ok(), "trial {trial}: second replica failed: {rb:?}");
        let pg = trustca_store::PgStorage::connect(&store).unwrap();
        let issued = pg
            .audit_entries(0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == "credential.issued" && e.detail.contains("Maker"))
            .count();
        assert_eq!(issued, 3, "trial {trial}: each credential recorded once");
    }
}
