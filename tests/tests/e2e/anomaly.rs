//! Anomaly reports end to end: a gateway reports, the sector's detection
//! template acts through the trust record (history, audit, decisions see it
//! at once), known false positives are tolerated, and the provider is
//! notified with details (log sink and webhook).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::anomalies_client::AnomaliesClient;

/// A one-shot-per-connection HTTP server that hands every request body over.
async fn webhook() -> (String, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/trustca", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let mut got = 0;
            loop {
                let n = s.read(&mut buf[got..]).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                got += n;
                let text = String::from_utf8_lossy(&buf[..got]).into_owned();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if got >= i + 4 + len {
                        let _ = s
                            .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        let _ = tx.send(text[i + 4..i + 4 + len].to_owned()).await;
                        break;
                    }
                }
            }
        }
    });
    (url, rx)
}

async fn report(
    g: &mut AnomaliesClient<tonic::transport::Channel>,
    d: &Device,
    kind: &str,
    at: i64,
) -> pb::AnomalyOutcome {
    g.report(pb::AnomalyReport {
        device: Some(pb::CertificateChain {
            certificates: d.chain.clone(),
        }),
        anomaly: kind.into(),
        observed_at: at,
        evidence: [
            ("seen_version".to_string(), "1.9.0".to_string()),
            ("expected_version".to_string(), "2.1.0".to_string()),
        ]
        .into_iter()
        .collect(),
    })
    .await
    .unwrap()
    .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anomalies_move_trust_levels_through_detection_templates() {
    let ca = TestCa::init();
    let (hook_url, mut hook) = webhook().await;
    let mut opts = trustca_server::ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.notify_webhook = Some(hook_url);
    let server = trustca_server::start(opts).await.unwrap();
    let url = format!("https://{}", server.addr);
    let root = ca.root_pem();
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems", "healthcare"],
    );
    let gw = ca.credential(
        CertificateKind::Gateway,
        "soc-east",
        &["automotive", "healthcare"],
    );
    let ops = ca.credential(
        CertificateKind::Operator,
        "ops",
        &["automotive", "healthcare"],
    );
    let mut enroll = trustca_proto::v1::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(&url, &acme).await.unwrap(),
    );
    // The cars' Lv.5 comes from their registered model (a secure element
    // declared per device counts up to Lv.3 in automotive).
    register_automotive_lv5_at(&ca, &url, &acme, "Acme", "EV-200").await;
    let car = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-200",
        "N1",
        "2.1.0",
        vec![],
    )
    .await;
    let parked = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-200",
        "N2",
        "2.1.0",
        vec![],
    )
    .await;
    let hijacked = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-200",
        "N3",
        "2.1.0",
        vec![],
    )
    .await;
    let house = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "NH",
        "1.0.0",
        hems_lv5(),
    )
    .await;
    let meter = enroll_device(
        &mut enroll,
        &root,
        "healthcare",
        "Acme",
        "BP-1",
        "NM",
        "1.0.0",
        vec![],
    )
    .await;
    let mut g = AnomaliesClient::new(trustca_api::client::connect(&url, &gw).await.unwrap());

    // Firmware downgrade: suspended at once.
    let o = report(&mut g, &car, "firmware-downgrade", 0).await;
    assert_eq!(o.action, "suspend", "{o:?}");
    assert_eq!(o.severity, "critical");
    assert_eq!(o.record.as_ref().unwrap().status, "suspended");
    let mut house_db = trustca_proto::v1::trust_database_client::TrustDatabaseClient::new(
        trustca_api::client::connect(&url, &house.creds)
            .await
            .unwrap(),
    );
    let d = house_db
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: car.chain.clone(),
            }),
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !d.allow && d.reasons.iter().any(|r| r.contains("peer is suspended")),
        "{:?}",
        d.reasons
    );
    // The provider hears the details, not just "anomaly".
    let body = tokio::time::timeout(std::time::Duration::from_secs(5), hook.recv())
        .await
        .unwrap()
        .unwrap();
    let n: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(n["device"], car.identity.as_str());
    assert_eq!(n["anomaly"], "firmware-downgrade");
    assert_eq!(n["threat_level"], "critical");
    assert_eq!(n["action"], "suspend");
    assert_eq!(n["evidence"]["seen_version"], "1.9.0");
    let sink = std::fs::read_to_string(ca.data().join("notifications.jsonl")).unwrap();
    assert!(sink.contains(&car.identity));

    // The underground car park: silence, then a burst on reconnection -> tolerated.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let o = report(&mut g, &parked, "silence", now - 3600).await;
    assert_eq!(
        o.action, "none",
        "one silence is below its threshold: {o:?}"
    );
    for i in 0..3 {
        let o = report(&mut g, &parked, "frequency-high", now - 60 + i).await;
        if i == 2 {
            assert_eq!(o.action, "tolerated", "{o:?}");
            assert_eq!(o.record.as_ref().unwrap().level, 5, "level unchanged");
        }
    }
    // The same burst without a silence before it: a hijack, level lowered.
    for i in 0..3 {
        let o = report(&mut g, &hijacked, "frequency-high", now - 60 + i).await;
        if i < 2 {
            assert_eq!(o.action, "none");
        } else {
            assert_eq!(o.action, "lower", "{o:?}");
            assert_eq!(o.record.as_ref().unwrap().level, 4);
        }
    }

    // Health care: a firmware downgrade revokes the device's certificates.
    let o = report(&mut g, &meter, "firmware-downgrade", 0).await;
    assert_eq!(o.action, "revoke");
    assert_eq!(o.record.as_ref().unwrap().status, "revoked");
    let mut rev = trustca_proto::v1::revocation_client::RevocationClient::new(
        trustca_api::client::connect(&url, &gw).await.unwrap(),
    );
    let crl = rev
        .get_crl(pb::GetCrlRequest {
            sector: "healthcare".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let (_, parsed) = x509_parser::parse_x509_crl(&crl.crl_der).unwrap();
    let (_, meter_cert) = x509_parser::parse_x509_certificate(&meter.chain[0]).unwrap();
    assert!(
        parsed
            .iter_revoked_certificates()
            .any(|r| r.raw_serial() == meter_cert.raw_serial()),
        "revocation reached the CRL"
    );

    // Roles and bad reports.
    let mut not_gw = AnomaliesClient::new(trustca_api::client::connect(&url, &ops).await.unwrap());
    let err = not_gw
        .report(pb::AnomalyReport {
            device: Some(pb::CertificateChain {
                certificates: car.chain.clone(),
            }),
            anomaly: "silence".into(),
            observed_at: 0,
            evidence: Default::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = g
        .report(pb::AnomalyReport {
            device: Some(pb::CertificateChain {
                certificates: car.chain.clone(),
            }),
            anomaly: "bad-vibes".into(),
            observed_at: 0,
            evidence: Default::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = g
        .report(pb::AnomalyReport {
            device: Some(pb::CertificateChain {
                certificates: house.chain.clone(),
            }),
            anomaly: "silence".into(),
            observed_at: 0,
            evidence: Default::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::PermissionDenied,
        "this gateway does not cover hems"
    );

    // History names the gateway and the template's reason.
    let mut ops_db = trustca_proto::v1::trust_database_client::TrustDatabaseClient::new(
        trustca_api::client::connect(&url, &ops).await.unwrap(),
    );
    let h = ops_db
        .get_history(pb::GetHistoryRequest {
            identity: hijacked.identity.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let last = h.entries.last().unwrap();
    assert_eq!(last.actor, "gateway:soc-east");
    assert!(last.reason.contains("frequency-high x3"), "{}", last.reason);

    // The anomaly's revocation and the record's move to `revoked` are one
    // transaction: one history entry, not a revocation followed by a
    // separate trust change.
    let h = ops_db
        .get_history(pb::GetHistoryRequest {
            identity: meter.identity.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.record.as_ref().unwrap().status, "revoked");
    let to_revoked: Vec<_> = h
        .entries
        .iter()
        .filter(|e| e.change.contains("revoked"))
        .collect();
    assert_eq!(to_revoked.len(), 1, "{:?}", h.entries);

    // Disposal (retire) revokes every certificate and keeps the record.
    ops_db
        .change_trust(pb::ChangeTrustRequest {
            identity: parked.identity.clone(),
            change: Some(pb::change_trust_request::Change::Retire(true)),
            reason: "vehicle scrapped".into(),
        })
        .await
        .unwrap();
    let crl = rev
        .get_crl(pb::GetCrlRequest {
            sector: "automotive".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let (_, parsed) = x509_parser::parse_x509_crl(&crl.crl_der).unwrap();
    let (_, parked_cert) = x509_parser::parse_x509_certificate(&parked.chain[0]).unwrap();
    assert!(
        parsed
            .iter_revoked_certificates()
            .any(|r| r.raw_serial() == parked_cert.raw_serial())
    );
    let h = ops_db
        .get_history(pb::GetHistoryRequest {
            identity: parked.identity.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.record.unwrap().status, "retired");
    drop((g, not_gw, house_db, ops_db, rev, enroll));
    server.shutdown().await.unwrap();
}
