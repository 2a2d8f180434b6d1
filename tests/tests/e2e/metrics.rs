//! `--metrics`: a real server with its Prometheus endpoint on a loopback
//! port, scraped with a plain TCP client (and with curl when there is one)
//! before and after an enrollment and a decision.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use trustca_ca::Passphrase;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;
use trustca_server::ServeOptions;

/// One HTTP/1.1 GET over a plain TCP socket: (status line, body).
/// The value of the sample whose line starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A fresh CA served with its metrics endpoint; the endpoint's address.
async fn with_metrics() -> (TestCa, std::net::SocketAddr) {
    let mut ca = TestCa::init();
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.metrics = Some("127.0.0.1:0".parse().unwrap());
    let server = trustca_server::start(opts).await.unwrap();
    let metrics = server.metrics_addr.expect("metrics address");
    ca.server = Some(server);
    (ca, metrics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_enrollments_decisions_and_publications() {
    let (mut ca, metrics) = with_metrics().await;
    assert!(metrics.ip().is_loopback());

    let (status, before) = tokio::task::spawn_blocking(move || http_get(metrics, "/metrics"))
        .await
        .unwrap();
    assert!(status.contains("200"), "{status}");
    // CRLs were published at start (no PRLs: the X.509 pseudonym path is
    // retired), and the audit log has entries.
    assert!(
        sample(
            &before,
            "trustca_revocation_lists_published_total{kind=\"crl\",sector=\"automotive\"}"
        ) >= 1.0,
        "{before}"
    );
    assert!(
        !before.contains("kind=\"prl\""),
        "no pseudonym revocation lists any more: {before}"
    );
    assert!(before.contains("trustca_revocation_list_bytes{kind=\"crl\",sector=\"hems\"}"));
    let issued = "trustca_enrollments_total{sector=\"automotive\",outcome=\"issued\"}";
    assert_eq!(sample(&before, issued), 0.0);

    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems"],
    );
    let root = ca.root_pem();
    let mut enroll = ca.client(&acme).await;
    // battery-discharge needs the car at Lv.4+: its model is registered
    // (declared hardware counts up to Lv.3 in automotive).
    register_automotive_lv5(&ca, &acme, "Acme", "EV-200").await;
    let car = enroll_acme_car(&mut enroll, &root, "M1").await;
    let house = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "M2",
        "1.0.0",
        hems_lv5(),
    )
    .await;
    // A refused enrollment: the same identity again.
    let (_k, c) = csr();
    let mut again = request("automotive", "Acme", "M1", c, vec![]);
    again.device.as_mut().unwrap().model = "EV-200".into();
    let err = enroll.enroll(again).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err:?}");
    let mut house_db = TrustDatabaseClient::new(
        trustca_api::client::connect(&ca.url(), &house.creds)
            .await
            .unwrap(),
    );
    let d = house_db
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: car.chain.clone(),
            }),
            operation: "battery-discharge".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(d.allow, "{d:?}");

    let (_, after) = tokio::task::spawn_blocking(move || http_get(metrics, "/metrics"))
        .await
        .unwrap();
    assert_eq!(sample(&after, issued), 1.0, "{after}");
    assert_eq!(
        sample(
            &after,
            "trustca_enrollments_total{sector=\"hems\",outcome=\"issued\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            "trustca_enrollments_total{sector=\"automotive\",outcome=\"already_exists\"}"
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "trustca_decisions_total{outcome=\"allow\"}"),
        1.0
    );
    assert_eq!(sample(&after, "trustca_decide_seconds_count"), 1.0);
    assert!(
        sample(&after, "trustca_commit_request_items_count") >= 2.0,
        "{after}"
    );
    assert!(sample(&after, "trustca_commit_wait_seconds_count") >= 2.0);
    assert!(
        sample(&after, "trustca_commit_group_items_count") >= 1.0,
        "{after}"
    );
    assert!(sample(&after, "trustca_commit_flush_seconds_count") >= 1.0);
    assert!(
        sample(&after, "trustca_audit_tree_size") > sample(&before, "trustca_audit_tree_size"),
        "{after}"
    );
    // Nothing failed in the store (the family has no series yet).
    assert!(!after.contains("trustca_store_errors_total{"), "{after}");

    // Anything but GET /metrics is refused.
    let (status, _) = tokio::task::spawn_blocking(move || http_get(metrics, "/other"))
        .await
        .unwrap();
    assert!(status.contains("404"), "{status}");

    // curl, when the machine has it, reads the same endpoint.
    let curl = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("http://{metrics}/metrics"),
        ])
        .output();
    match curl {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(issued), "{text}");
            assert!(text.trim_end().ends_with("# EOF"), "{text}");
        }
        Ok(out) => panic!("curl failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => eprintln!("curl is not installed; scraped with the TCP client only"),
    }
    ca.stop().await;
}

/// Unary `Enroll` calls in flight together are issued as groups
/// (`ca-server/src/unary.rs`): every call gets its own certificate, but
/// the committer sees fewer request groups than calls (one group per call
/// before), each answered after its group's flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_unary_enrollments_are_committed_in_groups() {
    const CALLS: usize = 48;
    let (ca, metrics) = with_metrics().await;
    let scrape = move || async move {
        tokio::task::spawn_blocking(move || http_get(metrics, "/metrics").1)
            .await
            .unwrap()
    };
    let before = scrape().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let enroll = ca.client(&acme).await;
    let requests: Vec<pb::EnrollRequest> = (0..CALLS)
        .map(|i| {
            request(
                "automotive",
                "Acme",
                &format!("G{i:03}"),
                csr().1,
                automotive_lv5(),
            )
        })
        .collect();
    let mut calls = tokio::task::JoinSet::new();
    for r in requests {
        let mut client = enroll.clone();
        calls.spawn(async move { client.enroll(r).await.map(|a| a.into_inner()) });
    }
    let mut serials = std::collections::HashSet::new();
    while let Some(answer) = calls.join_next().await {
        let answer = answer.unwrap().expect("every call is issued");
        assert!(serials.insert(answer.serial.clone()), "{answer:?}");
    }
    assert_eq!(serials.len(), CALLS);
    let after = scrape().await;
    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    assert_eq!(
        delta("trustca_commit_request_items_sum"),
        CALLS as f64,
        "{after}"
    );
    let groups = delta("trustca_commit_request_items_count");
    assert!(
        (1.0..CALLS as f64).contains(&groups),
        "{CALLS} calls in flight together were committed as {groups} request groups"
    );
}
