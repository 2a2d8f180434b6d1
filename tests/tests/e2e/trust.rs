//! The trust database end to end: cross-sector decisions over mutual TLS,
//! live changes outranking certificates, signed assertions, operator
//! changes, policy reload, federation between sector databases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use trustca_model::{CertificateKind, SignedTrustAssertion};
use trustca_proto::v1 as pb;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;

fn change(
    identity: &str,
    c: pb::change_trust_request::Change,
    reason: &str,
) -> pb::ChangeTrustRequest {
    pb::ChangeTrustRequest {
        identity: identity.into(),
        change: Some(c),
        reason: reason.into(),
    }
}

struct World {
    ca: TestCa,
    house: Device,
    car: Device,
    operator: trustca_api::client::ClientCredentials,
}

async fn world() -> World {
    let ca = TestCa::start().await;
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems"],
    );
    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive", "hems"]);
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let house = enroll_acme_battery(&mut enroll, &root, "H1").await;
    // The car's Lv.5 comes from its registered, evaluated model: declared
    // per device, a secure element counts up to Lv.3 in automotive.
    register_automotive_lv5(&ca, &acme, "Acme", "EV-200").await;
    let car = enroll_acme_car(&mut enroll, &root, "C1").await;
    World {
        ca,
        house,
        car,
        operator,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_record_outranks_the_certificate_and_changes_apply_at_once() {
    let w = world().await;
    let url = w.ca.url();
    let mut house = trust_client(&url, &w.house.creds).await;
    let mut ops = trust_client(&url, &w.operator).await;

    // EV battery peak cut: HEMS Lv.5 asks car Lv.5 -> control permitted.
    let d = decide(&mut house, &w.car, "battery-discharge").await;
    assert!(d.allow, "{d:?}");
    assert_eq!(d.depth, "control");
    assert_eq!((d.caller_level, d.peer_level), (5, 5));
    assert_eq!(d.rule, "ev-battery-peak-cut");
    assert_eq!(d.peer_identity, w.car.identity);
    assert!(d.valid_until > d.valid_from);

    // Downgrade after issuance: the certificate still says Lv.5.
    ops.change_trust(change(
        &w.car.identity,
        pb::change_trust_request::Change::SetLevel(3),
        "CVE-2026-1234 in telematics unit",
    ))
    .await
    .unwrap();
    let d = decide(&mut house, &w.car, "battery-discharge").await;
    assert!(!d.allow, "{d:?}");
    assert_eq!(d.peer_level, 3);
    assert_eq!(d.depth, "exchange");

    // Suspended: denied with the reason.
    ops.change_trust(change(
        &w.car.identity,
        pb::change_trust_request::Change::Suspend(true),
        "anomaly under investigation",
    ))
    .await
    .unwrap();
    let d = decide(&mut house, &w.car, "read-telemetry").await;
    assert!(!d.allow);
    assert!(
        d.reasons.iter().any(|r| r.contains("peer is suspended")),
        "{:?}",
        d.reasons
    );

    // Restored: cooperation resumes at the live level.
    ops.change_trust(change(
        &w.car.identity,
        pb::change_trust_request::Change::Restore(true),
        "cleared",
    ))
    .await
    .unwrap();
    let d = decide(&mut house, &w.car, "read-telemetry").await;
    assert!(d.allow, "{d:?}");

    // History names who, when and why.
    let h = ops
        .get_history(pb::GetHistoryRequest {
            identity: w.car.identity.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.entries.len(), 4);
    assert_eq!(h.entries[1].actor, "operator:ops");
    assert!(h.entries[1].reason.contains("CVE-2026-1234"));
    assert_eq!(h.record.unwrap().status, "active");

    // Raising above what the evidence earned is refused; levels stay in 1..5.
    let acme =
        w.ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let mut enroll = w.ca.client(&acme).await;
    // (A model not in the registry, unlike the world's EV-200: Lv.1.)
    let plain = enroll_device(
        &mut enroll,
        &w.ca.root_pem(),
        "automotive",
        "Acme",
        "EV-100",
        "PLAIN",
        "1.0.0",
        vec![],
    )
    .await;
    let err = ops
        .change_trust(change(
            &plain.identity,
            pb::change_trust_request::Change::SetLevel(3),
            "promote",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("re-enrolling with new evidence"),
        "{}",
        err.message()
    );
    let err = ops
        .change_trust(change(
            &plain.identity,
            pb::change_trust_request::Change::SetLevel(6),
            "x",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assertions_are_signed_once_per_record_version_and_verify_offline() {
    let w = world().await;
    let url = w.ca.url();
    let mut house = trust_client(&url, &w.house.creds).await;
    let root_der = pem::parse(w.ca.root_pem()).unwrap().into_contents();
    let a1 = decide(&mut house, &w.car, "read-telemetry")
        .await
        .peer_assertion
        .unwrap();
    let a2 = decide(&mut house, &w.car, "exchange-data")
        .await
        .peer_assertion
        .unwrap();
    // ECDSA signatures are randomised: equal bytes mean the assertion was reused.
    assert_eq!(a1.signature, a2.signature);
    let signed = SignedTrustAssertion {
        body: a1.body.clone(),
        signature: a1.signature.clone(),
        responder_chain: a1.responder_chain.clone().into(),
    };
    let a = signed
        .verify(
            &root_der,
            time::OffsetDateTime::now_utc(),
            &Default::default(),
        )
        .unwrap();
    assert_eq!(a.identity, w.car.identity);
    assert_eq!(a.level.get(), 5);
    assert_eq!(a.record_version, 1);

    // A tampered answer is rejected.
    let mut tampered = signed.clone();
    let pos = tampered
        .body
        .windows(3)
        .position(|x| x == [0x02, 0x01, 0x05])
        .unwrap();
    let mut body = tampered.body.to_vec();
    body[pos + 2] = 4;
    tampered.body = body.into();
    assert!(
        tampered
            .verify(
                &root_der,
                time::OffsetDateTime::now_utc(),
                &Default::default()
            )
            .unwrap_err()
            .to_string()
            .contains("signature")
    );
    // And an expired one too.
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    assert!(
        signed
            .verify(&root_der, later, &Default::default())
            .unwrap_err()
            .to_string()
            .contains("expired")
    );

    // A new record version gets a new signature.
    let mut ops = trust_client(&url, &w.operator).await;
    ops.change_trust(change(
        &w.car.identity,
        pb::change_trust_request::Change::SetLevel(4),
        "re-evaluation",
    ))
    .await
    .unwrap();
    let a3 = decide(&mut house, &w.car, "read-telemetry")
        .await
        .peer_assertion
        .unwrap();
    assert_ne!(a3.signature, a1.signature);

    // The CLI checks a saved answer offline, and refuses a tampered one.
    let file = w.ca.data().join("answer.pem");
    let der = SignedTrustAssertion {
        body: a3.body.clone(),
        signature: a3.signature.clone(),
        responder_chain: a3.responder_chain.clone().into(),
    }
    .to_der();
    std::fs::write(
        &file,
        pem::encode(&pem::Pem::new("TRUSTCA TRUST ASSERTION", der)),
    )
    .unwrap();
    let root_file = w.ca.data().join("ca/root.pem");
    let verify_answer = |file: &std::path::Path| {
        std::process::Command::new(trustca_bin())
            .arg("verify-answer")
            .arg(file)
            .arg("--root")
            .arg(&root_file)
            .arg("--json")
            .output()
            .unwrap()
    };
    let good = verify_answer(&file);
    assert!(good.status.success(), "{good:?}");
    let shown: serde_json::Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(shown["valid"], true, "{shown}");
    let bad = w.ca.data().join("bad.pem");
    let der = SignedTrustAssertion {
        body: a1.body.clone(),
        signature: a3.signature.clone(),
        responder_chain: a3.responder_chain.clone().into(),
    }
    .to_der();
    std::fs::write(
        &bad,
        pem::encode(&pem::Pem::new("TRUSTCA TRUST ASSERTION", der)),
    )
    .unwrap();
    let tampered = verify_answer(&bad);
    assert_eq!(tampered.status.code(), Some(1), "{tampered:?}");
    let shown: serde_json::Value = serde_json::from_slice(&tampered.stdout).unwrap();
    assert_eq!(shown["valid"], false, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_trust_by_chain_fingerprint_and_identity_agree() {
    let w = world().await;
    let mut c = trust_client(&w.ca.url(), &w.house.creds).await;
    use pb::get_trust_request::Subject;
    let by_chain = c
        .get_trust(pb::GetTrustRequest {
            subject: Some(Subject::Chain(pb::CertificateChain {
                certificates: w.car.chain.clone(),
            })),
        })
        .await
        .unwrap()
        .into_inner();
    let fp = trustca_model::fingerprint(&w.car.chain[0]).to_vec();
    let by_fp = c
        .get_trust(pb::GetTrustRequest {
            subject: Some(Subject::Fingerprint(fp)),
        })
        .await
        .unwrap()
        .into_inner();
    let by_id = c
        .get_trust(pb::GetTrustRequest {
            subject: Some(Subject::Identity(w.car.identity.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    for a in [&by_chain, &by_fp, &by_id] {
        assert_eq!(a.identity, w.car.identity);
        assert_eq!((a.live_level, a.status.as_str()), (5, "active"));
    }
    assert_eq!(by_chain.certificate_level, 5);
    let err = c
        .get_trust(pb::GetTrustRequest {
            subject: Some(Subject::Fingerprint(vec![0; 32])),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .get_trust(pb::GetTrustRequest {
            subject: Some(Subject::Fingerprint(vec![0; 3])),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = c
        .get_trust(pb::GetTrustRequest { subject: None })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_come_from_certificates_and_bad_requests_are_precise() {
    let w = world().await;
    let url = w.ca.url();
    let acme =
        w.ca.credential(CertificateKind::Manufacturer, "Acme2", &["automotive"]);
    let mut manufacturer = trust_client(&url, &acme).await;
    let err = manufacturer
        .change_trust(change(
            &w.car.identity,
            pb::change_trust_request::Change::Suspend(true),
            "x",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let health_ops =
        w.ca.credential(CertificateKind::Operator, "hc", &["healthcare"]);
    let mut other = trust_client(&url, &health_ops).await;
    let err = other
        .change_trust(change(
            &w.car.identity,
            pb::change_trust_request::Change::Suspend(true),
            "x",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message()
            .contains("not authorized for sector automotive"),
        "{}",
        err.message()
    );
    let mut ops = trust_client(&url, &w.operator).await;
    let err = ops
        .change_trust(change(
            &w.car.identity,
            pb::change_trust_request::Change::Suspend(true),
            " ",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = ops
        .change_trust(change(
            "urn:trustca:automotive:Acme:EV-200:NOPE",
            pb::change_trust_request::Change::Suspend(true),
            "x",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Decide is for devices; an operator asking gets PermissionDenied.
    let err = ops
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: w.car.chain.clone(),
            }),
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Unknown operation and missing chain are bad requests.
    let mut house = trust_client(&url, &w.house.creds).await;
    let err = house
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: w.car.chain.clone(),
            }),
            operation: "launch-missiles".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = house
        .decide(pb::DecideRequest {
            peer: None,
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    // A peer chain that does not verify is an explicit deny with the reason.
    let mut forged = w.car.chain.clone();
    let n = forged[0].len();
    forged[0][n - 5] ^= 0x55;
    let d = house
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: forged,
            }),
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!d.allow);
    assert!(
        d.reasons[0].contains("peer certificate rejected"),
        "{:?}",
        d.reasons
    );
    // A device certificate (not an operator) cannot change trust.
    let err = house
        .change_trust(change(
            &w.car.identity,
            pb::change_trust_request::Change::Suspend(true),
            "x",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_downgrade_by_firmware_range_and_transfer_to_a_successor() {
    let w = world().await;
    let url = w.ca.url();
    let acme =
        w.ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let mut enroll = w.ca.client(&acme).await;
    let root = w.ca.root_pem();
    register_automotive_lv5(&w.ca, &acme, "Acme", "TCU-7").await;
    let mut fleet = Vec::new();
    for (i, fw) in ["1.0.0", "1.1.0", "1.2.9", "1.10.0", "2.0.0"]
        .iter()
        .enumerate()
    {
        fleet.push(
            enroll_device(
                &mut enroll,
                &root,
                "automotive",
                "Acme",
                "TCU-7",
                &format!("T{i}"),
                fw,
                vec![],
            )
            .await,
        );
    }
    let mut ops = trust_client(&url, &w.operator).await;
    // An inverted range would match nothing and look like success.
    let err = ops
        .bulk_downgrade(pb::BulkDowngradeRequest {
            sector: "automotive".into(),
            manufacturer: "Acme".into(),
            model: "TCU-7".into(),
            firmware_min: "1.9.99".into(),
            firmware_max: "1.0.0".into(),
            max_level: 2,
            reason: "CVE-2026-9999".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message()
            .contains("firmware_min 1.9.99 is above firmware_max 1.0.0"),
        "{}",
        err.message()
    );
    let r = ops
        .bulk_downgrade(pb::BulkDowngradeRequest {
            sector: "automotive".into(),
            manufacturer: "Acme".into(),
            model: "TCU-7".into(),
            firmware_min: "1.0.0".into(),
            firmware_max: "1.9.99".into(),
            max_level: 2,
            reason: "CVE-2026-9999 remote code execution in TCU firmware < 1.10".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((r.matched, r.changed), (3, 3));
    let mut house = trust_client(&url, &w.house.creds).await;
    for (i, d) in fleet.iter().enumerate() {
        let decision = decide(&mut house, d, "read-telemetry").await;
        let expected = if i < 3 { 2 } else { 5 };
        assert_eq!(decision.peer_level, expected, "device {i}");
    }
    // Other models are untouched.
    assert_eq!(
        decide(&mut house, &w.car, "read-telemetry")
            .await
            .peer_level,
        5
    );

    // Successor: the replacement takes the record and history; the old one is retired.
    let old = &fleet[0];
    let new = &fleet[4];
    let t = ops
        .change_trust(change(
            &old.identity,
            pb::change_trust_request::Change::TransferTo(new.identity.clone()),
            "unit replaced under warranty",
        ))
        .await
        .unwrap()
        .into_inner()
        .record
        .unwrap();
    assert_eq!(t.identity, new.identity);
    assert_eq!(t.level, 2, "successor inherits the live level");
    let d = decide(&mut house, old, "read-telemetry").await;
    assert!(!d.allow);
    assert!(
        d.reasons.iter().any(|r| r.contains("retired")),
        "{:?}",
        d.reasons
    );
    let h = ops
        .get_history(pb::GetHistoryRequest {
            identity: new.identity.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        h.entries
            .iter()
            .any(|e| e.change.contains("bulk downgrade")),
        "history travels with the record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_reload_keeps_the_old_policy_when_the_new_one_is_bad() {
    let w = world().await;
    let url = w.ca.url();
    let mut house = trust_client(&url, &w.house.creds).await;
    let mut ops = trust_client(&url, &w.operator).await;
    let recog_path = w.ca.data().join("policies/recognition.toml");
    let original = std::fs::read_to_string(&recog_path).unwrap();

    // A bad file: refused with file and reason, old policy keeps serving.
    std::fs::write(
        &recog_path,
        original.replace("map = [1, 2, 3, 4, 4]", "map = [1, 2, 3, 4, 9]"),
    )
    .unwrap();
    let err = ops
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("recognition.toml"),
        "{}",
        err.message()
    );
    assert!(decide(&mut house, &w.car, "battery-discharge").await.allow);

    // Remove the HEMS -> automotive table: no cross-sector cooperation, with the reason.
    let without = original.replace(
        "sector = \"hems\"\ncounts = \"automotive\"\nmap = [1, 2, 3, 4, 5]",
        "sector = \"hems\"\ncounts = \"healthcare\"\nmap = [1, 1, 1, 1, 1]\n[[recognition]]\nsector = \"healthcare\"\ncounts = \"healthcare-x\"\nmap = [1, 1, 1, 1, 1]",
    );
    // (that edit is invalid: unknown sector) -> refused as well
    std::fs::write(&recog_path, &without).unwrap();
    assert!(ops.reload_policy(pb::ReloadPolicyRequest {}).await.is_err());
    let mut lines: Vec<&str> = original.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("sector = \"hems\""))
        .unwrap();
    // Drop the [[recognition]] header above and the 4 lines of the hems->automotive table.
    assert!(lines[start + 1].contains("counts = \"automotive\""));
    lines.drain(start - 1..start + 4);
    std::fs::write(&recog_path, lines.join("\n")).unwrap();
    let r = ops
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.recognition_version, "2026.11-1");
    let d = decide(&mut house, &w.car, "read-telemetry").await;
    assert!(!d.allow);
    assert_eq!(d.depth, "none");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("no cross-recognition rule: hems does not count automotive")),
        "{:?}",
        d.reasons
    );
    // Non-operators may not reload.
    assert_eq!(
        house
            .reload_policy(pb::ReloadPolicyRequest {})
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
}

async fn live_level(ops: &mut TrustDatabaseClient<Channel>, identity: &str) -> u32 {
    ops.get_trust(pb::GetTrustRequest {
        subject: Some(pb::get_trust_request::Subject::Identity(identity.into())),
    })
    .await
    .unwrap()
    .into_inner()
    .live_level
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_downgrade_survives_renewal() {
    let w = world().await;
    let url = w.ca.url();
    let mut ops = trust_client(&url, &w.operator).await;
    let acme =
        w.ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let mut enroll = w.ca.client(&acme).await;
    let renew = |serial: &str, evidence: Vec<pb::EvidenceItem>| {
        let (_k, c) = csr();
        let mut r = request("automotive", "Acme", serial, c, evidence);
        r.renewal = true;
        r
    };

    // The operator lowers the car from 5 to 4; the manufacturer renews it
    // as the same Lv.5 model, twice. The operator's level stands.
    ops.change_trust(change(
        &w.car.identity,
        pb::change_trust_request::Change::SetLevel(4),
        "CVE-2026-9999 unpatched",
    ))
    .await
    .unwrap();
    for _ in 0..2 {
        let mut r = renew("C1", vec![]);
        r.device.as_mut().unwrap().model = "EV-200".into();
        let resp = enroll.enroll(r).await.unwrap().into_inner();
        assert_eq!(
            resp.level, 5,
            "the certificate states what the evidence earned"
        );
        assert_eq!(live_level(&mut ops, &w.car.identity).await, 4);
    }
    let h = ops
        .get_history(pb::GetHistoryRequest {
            identity: w.car.identity.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let last = h.entries.last().unwrap();
    assert!(last.change.contains("stands"), "{}", last.change);

    // Weaker evidence at renewal still lowers the level below the decision:
    // a unit declaring no hardware root of trust earns Lv.3 of its model.
    let mut r = renew(
        "C1",
        vec![evidence("hardware-root-of-trust", "", "none", "")],
    );
    r.device.as_mut().unwrap().model = "EV-200".into();
    enroll.enroll(r).await.unwrap();
    assert_eq!(live_level(&mut ops, &w.car.identity).await, 3);

    // Without any decision, renewal with better evidence raises the level.
    let (_k, c) = csr();
    let plain = enroll
        .enroll(request("automotive", "Acme", "RISE1", c, vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(live_level(&mut ops, &plain.identity).await, 1);
    enroll
        .enroll(renew("RISE1", automotive_lv5()))
        .await
        .unwrap();
    assert_eq!(
        live_level(&mut ops, &plain.identity).await,
        DECLARED_AUTOMOTIVE_LEVEL
    );
}
