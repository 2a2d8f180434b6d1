//! EnrollBatch waits for its reader (issue 12): a client that sends a large
//! batch and never reads the results stalls its own stream instead of
//! making the server issue, commit and buffer certificates it cannot
//! deliver. Memory and issuance stay bounded by a few chunks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use trustca_testkit as common;

use common::*;
use trustca_model::CertificateKind;
use trustca_store::Storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_stalls_only_its_own_stream() {
    // The stalled stream's task holds a graceful shutdown for its whole
    // grace period: 1 s here instead of 10.
    let mut ca = TestCa::start_with(|o| o.shutdown_grace = std::time::Duration::from_secs(1)).await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let total = 12_000u64;
    let items = hems_batch_items("S", total);
    let mut greedy = ca.client(&acme).await;
    // Send everything, never read a result.
    let stream = greedy
        .enroll_batch(tokio_stream::iter(items))
        .await
        .unwrap()
        .into_inner();
    // Until issuance stops (it must: the server waits for the reader),
    // instead of a fixed sleep.
    ca.issuance_stopped().await;
    let stalled_at = ca.issued();

    // Meanwhile another client is served normally.
    let mut polite = ca.client(&acme).await;
    let (_, other_csr) = csr();
    let r = polite
        .enroll(request("hems", "Acme", "polite-1", other_csr, vec![]))
        .await
        .unwrap()
        .into_inner();
    assert!(!r.serial.is_empty());
    eprintln!("polite enrolled");

    // Connections left open would hold a graceful shutdown.
    drop((stream, greedy, polite));
    ca.stop().await;
    eprintln!("stopped");
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let (_, devices) = store.counts().unwrap();
    // A few chunks of 256 ahead of the reader (two being issued, four
    // queued, what HTTP/2 flow control lets through), never the batch.
    assert!(
        devices < 5_000,
        "{devices} devices issued for a client that read nothing"
    );
    assert!(devices >= 256, "the stream did start issuing ({devices})");
    assert!(
        devices >= stalled_at,
        "{devices} stored, {stalled_at} counted"
    );
}
