//! EnrollBatch stream ends (issue 19, section 3), seen from the client:
//! an item over the message limit, sent by grpcio (a gRPC client we did
//! not write), ends the stream with `RESOURCE_EXHAUSTED` after every
//! earlier item was answered; a client that never reads its results loses
//! the stream after the documented 30 s, told how many certificates were
//! issued, which is what the store holds. The server under test has that
//! limit shortened to [`STALLED`] (the same code path, only sooner).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::*;
use prost::Message;
use tokio_stream::StreamExt;
use trustca_model::CertificateKind;
use trustca_model::limits::StreamLimits;
use trustca_proto::v1 as pb;
use trustca_store::Storage;

/// The stalled-reader limit of the server under test (30 s in production).
const STALLED: Duration = Duration::from_secs(8);

/// Sends pre-encoded EnrollBatchItem messages (hex, one a line in argv[2])
/// on one stream with grpcio's generic stream-stream call, reads every
/// result, and prints the results (hex) and the final status as JSON.
const GRPCIO_CLIENT: &str = r#"
import json, sys
import grpc
target, items_file, work = sys.argv[1], sys.argv[2], sys.argv[3]
items = [bytes.fromhex(l.strip()) for l in open(items_file) if l.strip()]
read = lambda n: open(work + "/" + n, "rb").read()
creds = grpc.ssl_channel_credentials(read("root.pem"), read("key.pem"), read("cert.pem"))
channel = grpc.secure_channel(target, creds)
call = channel.stream_stream(
    "/trustca.v1.Enrollment/EnrollBatch",
    request_serializer=lambda b: b,
    response_deserializer=lambda b: b,
)
results, code, details = [], "OK", ""
try:
    for r in call(iter(items), timeout=60):
        results.append(r.hex())
except grpc.RpcError as e:
    code, details = e.code().name, e.details()
print(json.dumps({"results": results, "code": code, "details": details}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_item_from_grpcio_is_resource_exhausted_after_every_earlier_answer() {
    if !available("python3", &["-c", "import grpc"], "pip install grpcio") {
        return;
    }
    let mut ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("cert.pem"), &acme.cert_pem).unwrap();
    std::fs::write(work.path().join("key.pem"), &acme.key_pem).unwrap();
    std::fs::write(work.path().join("root.pem"), ca.root_pem()).unwrap();
    let item = |id: u64, csr_der: Vec<u8>| pb::EnrollBatchItem {
        id,
        request: Some(request("hems", "Acme", &format!("G{id}"), csr_der, vec![])),
    };
    let mut items = vec![item(0, csr().1), item(1, csr().1)];
    // 70 KiB: over the server's 64 KiB a message.
    items.push(item(2, vec![0x30; 70 * 1024]));
    items.push(item(3, csr().1));
    let lines: String = items
        .iter()
        .map(|i| hex::encode(i.encode_to_vec()) + "\n")
        .collect();
    std::fs::write(work.path().join("items.txt"), lines).unwrap();
    std::fs::write(work.path().join("client.py"), GRPCIO_CLIENT).unwrap();
    let target = ca.url().trim_start_matches("https://").to_owned();
    let work_path = work.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(work_path.join("client.py"))
            .arg(&target)
            .arg(work_path.join("items.txt"))
            .arg(&work_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], "RESOURCE_EXHAUSTED", "{v}");
    let details = v["details"].as_str().unwrap();
    assert!(
        details.contains("larger than this server accepts"),
        "{details}"
    );
    for debug in ["Status {", "compression flag", "OutOfRange"] {
        assert!(!details.contains(debug), "{details}");
    }
    let mut answered: Vec<u64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let r =
                pb::EnrollBatchResult::decode(&*hex::decode(h.as_str().unwrap()).unwrap()).unwrap();
            assert!(
                matches!(
                    r.outcome,
                    Some(pb::enroll_batch_result::Outcome::Certificate(_))
                ),
                "item {} not issued: {:?}",
                r.id,
                r.outcome
            );
            r.id
        })
        .collect();
    answered.sort();
    assert_eq!(answered, vec![0, 1], "every item before the oversized one");
    ca.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_whose_results_are_never_read_ends_after_the_limit_with_true_counts() {
    let mut ca = TestCa::start_with(|o| {
        o.streams = StreamLimits {
            stalled_reader: STALLED,
            ..StreamLimits::default()
        }
    })
    .await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let total = 12_000u64;
    let items = hems_batch_items("R", total);
    let mut client = ca.client(&acme).await;
    let mut stream = client
        .enroll_batch(tokio_stream::iter(items))
        .await
        .unwrap()
        .into_inner();
    // The limit runs from when the queue ahead of the reader is full:
    // issuance then stops (how long that takes depends on the machine's
    // load). Read past the limit from there, but before twice the limit,
    // which the stream used to last: reading then must not revive it.
    let stopped = ca.issuance_stopped().await;
    tokio::time::sleep_until((stopped + STALLED * 3 / 2).into()).await;
    let mut delivered = 0u64;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.next()).await {
            Ok(Some(Ok(_))) => delivered += 1,
            Ok(Some(Err(status))) => break Some(status),
            Ok(None) => break None,
            Err(_) => panic!("the stream neither ended nor delivered for 20 s"),
        }
    };
    let status = end.expect("the stream ends with a status saying why");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("not read for {} s", STALLED.as_secs())),
        "{}",
        status.message()
    );
    assert!(
        delivered < total,
        "the stream was revived: {delivered} results"
    );
    let issued: u64 = status
        .message()
        .split("after issuing ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the count of certificates issued");
    drop((stream, client));
    ca.stop().await;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let (_, devices) = store.counts().unwrap();
    assert_eq!(issued, devices, "issued count against the store");
    assert!(delivered <= issued, "{delivered} > {issued}");
}
