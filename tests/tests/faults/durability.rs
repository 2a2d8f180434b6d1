//! Nothing lost: a server killed (SIGKILL) in the middle of a factory-line
//! batch has made every certificate it returned durable, and left no half
//! issuance behind (no device without its certificate, trust record and
//! audit entry).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use trustca_testkit as common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_store::Storage;

/// Starts `trustca serve` on the data directory; its address and how long
/// it took to listen.
fn spawn_serve(ca: &TestCa) -> (std::process::Child, String, std::time::Duration) {
    let started = std::time::Instant::now();
    let mut child = Command::new(trustca_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(ca.data())
        .env(
            "TRUSTCA_PASSPHRASE",
            std::str::from_utf8(PASSPHRASE).unwrap(),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("serve prints its address")
        .to_owned();
    (child, addr, started.elapsed())
}

/// One round: a factory-line batch of `total` devices, SIGKILL after
/// `kill_at` certificates came back. Returns what came back.
async fn killed_round(
    ca: &TestCa,
    acme: &trustca_api::client::ClientCredentials,
    round: u32,
    total: u64,
    kill_at: usize,
) -> Vec<pb::EnrollResponse> {
    let (mut child, addr, _) = spawn_serve(ca);
    let channel = trustca_api::client::connect(&format!("https://{addr}"), acme)
        .await
        .unwrap();
    let mut client = pb::enrollment_client::EnrollmentClient::new(channel);
    let items: Vec<pb::EnrollBatchItem> = (0..total)
        .map(|i| pb::EnrollBatchItem {
            id: i,
            request: Some(request(
                "hems",
                "Acme",
                &format!("R{round}K{i}"),
                csr().1,
                vec![],
            )),
        })
        .collect();
    let mut stream = client
        .enroll_batch(tokio_stream::iter(items))
        .await
        .unwrap()
        .into_inner();
    let mut returned = Vec::new();
    while let Ok(Some(r)) = stream.message().await {
        if let Some(pb::enroll_batch_result::Outcome::Certificate(c)) = r.outcome {
            returned.push(c);
        }
        if returned.len() == kill_at {
            child.kill().unwrap(); // SIGKILL: no shutdown, no final flush
            break;
        }
    }
    let _ = child.wait();
    drop((stream, client));
    assert_eq!(
        returned.len(),
        kill_at,
        "round {round}: the server returned certificates before it was killed"
    );
    returned
}

/// Several rounds of SIGKILL in the middle of a batch: every certificate
/// returned in any round is stored exactly once with its device and trust
/// record; no half issuance; each restart succeeds (and is quick); the
/// audit log verifies and `store check` finds nothing damaged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_nothing_it_returned() {
    let _timed = super::timed().await;
    let ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let total = 1500u64;
    let mut returned = Vec::new();
    for (round, kill_at) in [(0u32, 400usize), (1, 250), (2, 300)] {
        returned.extend(killed_round(&ca, &acme, round, total, kill_at).await);
    }
    // A restart after the last kill succeeds and is quick.
    let (mut child, _, took) = spawn_serve(&ca);
    child.kill().unwrap();
    let _ = child.wait();
    assert!(
        took < std::time::Duration::from_secs(10),
        "restart after SIGKILL took {took:?}"
    );

    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let mut serials = std::collections::HashSet::new();
    for c in &returned {
        assert!(
            serials.insert(c.serial.clone()),
            "serial {} returned twice",
            c.serial
        );
        let serial = trustca_model::hexfmt::decode(&c.serial).unwrap();
        let rec = store
            .certificate(&serial)
            .unwrap()
            .expect("a returned certificate is durable");
        assert_eq!(rec.der, c.chain_der[0]);
        let key = rec.identity_key.unwrap();
        let device = store.device(&key).unwrap().expect("its device");
        assert_eq!(device.certificates, vec![c.serial.clone()], "stored once");
        assert!(store.trust_record(&key).unwrap().is_some());
    }
    // No half issuance: every device has its certificate and trust record,
    // and the audit log holds one issuance entry per certificate.
    let (certs, devices) = store.counts().unwrap();
    let stored_devices = store.devices_with_prefix("hems/").unwrap();
    assert_eq!(stored_devices.len() as u64, devices);
    for d in &stored_devices {
        let serial = trustca_model::hexfmt::decode(&d.certificates[0]).unwrap();
        assert!(
            store.certificate(&serial).unwrap().is_some(),
            "device {} without certificate",
            d.urn
        );
        assert!(store.trust_record(&d.identity_key).unwrap().is_some());
    }
    let issued = store
        .audit_entries(0, usize::MAX)
        .unwrap()
        .iter()
        .filter(|e| e.kind == "certificate.issued")
        .count() as u64;
    assert_eq!(issued, devices);
    assert_eq!(
        certs,
        devices + 1,
        "plus the manufacturer credential recorded at start"
    );
    assert!(devices >= returned.len() as u64 && devices <= 3 * total);
    let report = trustca_store::check_store(&store, &mut |_, _| {}).unwrap();
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
    drop(store);
    let out = Command::new(trustca_bin())
        .args(["audit", "verify", "--data"])
        .arg(ca.data())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
