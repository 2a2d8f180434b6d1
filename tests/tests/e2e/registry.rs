//! The model registry and signed trust snapshots end to end, over mutual
//! TLS against a real server: who may register, evaluate, withdraw and
//! suspend; enrollment taking its level from the registry; a withdrawn
//! evaluation moving a whole fleet's live level in one audited step; and
//! offline decisions from a fetched snapshot equal to the online ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

// Their own file by subject; they share this module's helpers.
mod snapshots;

use std::process::Command;

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use trustca_model::{CertificateKind, SignedSnapshot, decide_offline};
use trustca_proto::v1 as pb;
use trustca_proto::v1::model_registry_client::ModelRegistryClient;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;

type Creds = trustca_api::client::ClientCredentials;

async fn registry(ca: &TestCa, creds: &Creds) -> ModelRegistryClient<Channel> {
    ModelRegistryClient::new(
        trustca_api::client::connect(&ca.url(), creds)
            .await
            .unwrap(),
    )
}

async fn trust(ca: &TestCa, creds: &Creds) -> TrustDatabaseClient<Channel> {
    TrustDatabaseClient::new(
        trustca_api::client::connect(&ca.url(), creds)
            .await
            .unwrap(),
    )
}

fn model(
    sector: &str,
    manufacturer: &str,
    model: &str,
    firmware: &str,
) -> Option<pb::ModelSelector> {
    Some(pb::ModelSelector {
        sector: sector.into(),
        manufacturer: manufacturer.into(),
        model: model.into(),
        firmware: firmware.into(),
    })
}

fn evaluation(scheme: &str, result: &str, number: &str) -> Option<pb::ModelEvaluationInput> {
    Some(pb::ModelEvaluationInput {
        scheme: scheme.into(),
        result: result.into(),
        certificate_number: number.into(),
        evaluated_at: date_from_today(-30),
        valid_until: date_from_today(700),
    })
}

fn declared_strong() -> Vec<pb::EvidenceItem> {
    vec![
        evidence("hardware-root-of-trust", "", "secure-element", ""),
        evidence("secure-update", "", "true", ""),
        evidence("supported-until", "", &date_from_today(365 * 10), ""),
    ]
}

async fn level_of(t: &mut TrustDatabaseClient<Channel>, identity: &str) -> (u32, String) {
    let a = t
        .get_trust(pb::GetTrustRequest {
            subject: Some(pb::get_trust_request::Subject::Identity(identity.into())),
        })
        .await
        .unwrap()
        .into_inner();
    (a.live_level, a.status)
}

fn code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> (Code, String) {
    let s = r.unwrap_err();
    (s.code(), s.message().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn evidence_on_the_model_drives_the_fleet() {
    let ca = TestCa::start().await;
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems"],
    );
    let other = ca.credential(CertificateKind::Manufacturer, "Other", &["automotive"]);
    let tuv = ca.certification_body("TUV", &["automotive"], &["iso-sae-21434"]);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let auditor = ca.credential(CertificateKind::Auditor, "audit", &["automotive"]);
    let mut as_acme = registry(&ca, &acme).await;
    let mut as_tuv = registry(&ca, &tuv).await;
    let mut as_ops = registry(&ca, &ops).await;
    let mut t = trust(&ca, &ops).await;

    // Registration: the manufacturer's own model; declared evidence alone
    // earns what the criteria give without an evaluation (Lv.2).
    let r = as_acme
        .register_model(pb::RegisterModelRequest {
            model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
            declared: declared_strong(),
            self_assessed: vec![],
            reason: "new model".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let m = r.model.unwrap();
    assert_eq!((m.level, m.status.as_str()), (2, "provisional"));
    // Not its own model, not its role, an overlapping range: refused, nothing stored.
    let mut as_other = registry(&ca, &other).await;
    let (c, msg) = code(
        as_other
            .register_model(pb::RegisterModelRequest {
                model: model("automotive", "Acme", "EV-X", "1.0"),
                reason: "x".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{msg}");
    let (c, msg) = code(
        as_tuv
            .register_model(pb::RegisterModelRequest {
                model: model("automotive", "Acme", "EV-X", "1.0"),
                reason: "x".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{msg}");
    assert!(msg.contains("manufacturer"), "{msg}");
    let (c, msg) = code(
        as_acme
            .register_model(pb::RegisterModelRequest {
                model: model("automotive", "Acme", "EV-9", "1.5..2.0"),
                reason: "x".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{msg}");
    assert!(msg.contains("overlaps"), "{msg}");
    let (c, msg) = code(
        as_acme
            .register_model(pb::RegisterModelRequest {
                model: model("automotive", "Acme", "EV-9", "2.0..1.0"),
                reason: "x".into(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::InvalidArgument, "{msg}");

    // The certification body: only its permitted schemes.
    let (c, msg) = code(
        as_tuv
            .add_evaluation(pb::AddEvaluationRequest {
                model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
                evaluation: evaluation("unece-r155", "approved", "R155-1"),
                reason: "type approval".into(),
            })
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{msg}");
    assert!(msg.contains("iso-sae-21434"), "{msg}");
    let r = as_tuv
        .add_evaluation(pb::AddEvaluationRequest {
            model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
            evaluation: evaluation("iso-sae-21434", "CAL3", "TUV-2026-001"),
            reason: "evaluation report 17".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let m = r.model.unwrap();
    assert_eq!((m.level, m.status.as_str()), (4, "certified"));
    assert_eq!(r.devices_matched, 0);

    // Enrollment takes the model's level; per-device evidence can only
    // lower it (a weaker root of trust) and may not bring evaluations.
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let mut fleet = Vec::new();
    for n in 0..5 {
        let d = enroll_device(
            &mut enroll,
            &root,
            "automotive",
            "Acme",
            "EV-9",
            &format!("F{n}"),
            "1.2.0",
            vec![],
        )
        .await;
        fleet.push(d);
    }
    let weak = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-9",
        "WEAK",
        "1.4.0",
        vec![evidence("hardware-root-of-trust", "", "none", "")],
    )
    .await;
    for d in &fleet {
        assert_eq!(level_of(&mut t, &d.identity).await, (4, "active".into()));
    }
    assert_eq!(level_of(&mut t, &weak.identity).await, (3, "active".into()));
    // The certificate says where its level came from.
    let (_, cert) = x509_parser::parse_x509_certificate(&fleet[0].chain[0]).unwrap();
    let ext = trustca_model::trust_extension(&cert, &Default::default())
        .unwrap()
        .unwrap();
    assert_eq!(ext.level.map(|l| l.get()), Some(4));
    assert!(
        ext.basis
            .iter()
            .any(|b| b.evidence == "registered-model" && b.result.starts_with("1.0..1.9")),
        "{ext:?}"
    );
    assert!(
        ext.basis
            .iter()
            .any(|b| b.evidence == "evaluation" && b.result == "CAL3"),
        "{ext:?}"
    );
    let (_, bad_csr) = csr();
    let mut req = request("automotive", "Acme", "BAD", bad_csr, automotive_lv5());
    req.device.as_mut().unwrap().model = "EV-9".into();
    req.device.as_mut().unwrap().firmware_version = "1.2.0".into();
    let (c, msg) = code(enroll.enroll(req).await);
    assert_eq!(c, Code::InvalidArgument, "{msg}");
    assert!(msg.contains("registry"), "{msg}");

    // An operator's own lowering of one device stands through model changes.
    t.change_trust(pb::ChangeTrustRequest {
        identity: fleet[4].identity.clone(),
        change: Some(pb::change_trust_request::Change::SetLevel(1)),
        reason: "field report".into(),
    })
    .await
    .unwrap();

    // Withdrawal: every device of the model and range moves at once.
    let (c, msg) = code(
        as_acme
            .withdraw_evaluation(pb::WithdrawEvaluationRequest {
                model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
                certificate_number: "TUV-2026-001".into(),
                reason: "not theirs".into(),
            })
            .await,
    );
    assert_eq!(c, Code::PermissionDenied, "{msg}");
    let r = as_tuv
        .withdraw_evaluation(pb::WithdrawEvaluationRequest {
            model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
            certificate_number: "TUV-2026-001".into(),
            reason: "certificate withdrawn after CVE-2026-4242".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let m = r.model.unwrap();
    assert_eq!((m.level, m.status.as_str()), (2, "withdrawn"));
    assert_eq!(r.devices_matched, 6);
    assert_eq!(
        r.devices_changed, 5,
        "four at Lv.4 and the weak one at Lv.3; the one at Lv.1 stays"
    );
    for d in &fleet[..4] {
        assert_eq!(level_of(&mut t, &d.identity).await, (2, "active".into()));
    }
    assert_eq!(level_of(&mut t, &weak.identity).await.0, 2);
    assert_eq!(level_of(&mut t, &fleet[4].identity).await.0, 1);
    let history = trust(&ca, &auditor)
        .await
        .get_history(pb::GetHistoryRequest {
            identity: fleet[0].identity.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let last = history.entries.last().unwrap();
    assert!(last.change.starts_with("model level"), "{last:?}");
    assert_eq!(last.actor, "certification-body:TUV");
    assert_eq!(last.reason, "certificate withdrawn after CVE-2026-4242");

    // A new evaluation raises what the registry lowered, never above the
    // certificate, and not the device the operator lowered.
    let r = as_tuv
        .add_evaluation(pb::AddEvaluationRequest {
            model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
            evaluation: evaluation("iso-sae-21434", "CAL3", "TUV-2026-002"),
            reason: "re-evaluated with the fix".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.model.unwrap().level, 4);
    for d in &fleet[..4] {
        assert_eq!(level_of(&mut t, &d.identity).await.0, 4);
    }
    assert_eq!(level_of(&mut t, &weak.identity).await.0, 3);
    assert_eq!(level_of(&mut t, &fleet[4].identity).await.0, 1);

    // Suspension: devices suspended, no new certificates; lifting restores
    // exactly what it suspended.
    t.change_trust(pb::ChangeTrustRequest {
        identity: fleet[3].identity.clone(),
        change: Some(pb::change_trust_request::Change::Suspend(true)),
        reason: "investigation".into(),
    })
    .await
    .unwrap();
    let (c, _) = code(
        as_acme
            .suspend_model(pb::SuspendModelRequest {
                model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
                lift: false,
                reason: "x".into(),
            })
            .await,
    );
    assert_eq!(c, Code::PermissionDenied);
    let r = as_ops
        .suspend_model(pb::SuspendModelRequest {
            model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
            lift: false,
            reason: "supplier breach".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.model.unwrap().status, "suspended");
    assert_eq!(r.devices_changed, 5);
    for d in fleet.iter().chain([&weak]) {
        assert_eq!(level_of(&mut t, &d.identity).await.1, "suspended");
    }
    let (_, csr) = csr();
    let mut req = request("automotive", "Acme", "NEW", csr, vec![]);
    req.device.as_mut().unwrap().model = "EV-9".into();
    req.device.as_mut().unwrap().firmware_version = "1.2.0".into();
    let (c, msg) = code(enroll.enroll(req).await);
    assert_eq!(c, Code::FailedPrecondition, "{msg}");
    assert!(msg.contains("suspended"), "{msg}");
    as_ops
        .suspend_model(pb::SuspendModelRequest {
            model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
            lift: true,
            reason: "breach contained".into(),
        })
        .await
        .unwrap();
    for d in fleet[..3].iter().chain([&fleet[4], &weak]) {
        assert_eq!(level_of(&mut t, &d.identity).await.1, "active");
    }
    assert_eq!(
        level_of(&mut t, &fleet[3].identity).await.1,
        "suspended",
        "the operator's own suspension stands"
    );

    // A new firmware release is a new range with its own evaluation.
    as_acme
        .register_model(pb::RegisterModelRequest {
            model: model("automotive", "Acme", "EV-9", "2.0.."),
            declared: declared_strong(),
            self_assessed: vec![],
            reason: "release 2.0 with the fix".into(),
        })
        .await
        .unwrap();
    as_tuv
        .add_evaluation(pb::AddEvaluationRequest {
            model: model("automotive", "Acme", "EV-9", "2.0.."),
            evaluation: evaluation("iso-sae-21434", "CAL4", "TUV-2026-003"),
            reason: "release 2.0".into(),
        })
        .await
        .unwrap();
    let v2 = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-9",
        "F2X",
        "2.0.1",
        vec![],
    )
    .await;
    assert_eq!(level_of(&mut t, &v2.identity).await.0, 5);

    // Show and list, for any authenticated role.
    let mut as_auditor = registry(&ca, &auditor).await;
    let shown = as_auditor
        .get_model(pb::GetModelRequest {
            model: model("automotive", "Acme", "EV-9", "1.0..1.9"),
        })
        .await
        .unwrap()
        .into_inner();
    let changes: Vec<&str> = shown.history.iter().map(|h| h.change.as_str()).collect();
    assert_eq!(changes.len(), 6, "{changes:?}");
    assert_eq!(shown.evaluations.len(), 2);
    assert_ne!(shown.evaluations[0].withdrawn_at, 0);
    let listed = as_auditor
        .list_models(pb::ListModelsRequest {
            sector: "automotive".into(),
            manufacturer: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.models.len(), 2);
    let (c, _) = code(
        as_auditor
            .get_model(pb::GetModelRequest {
                model: model("automotive", "Acme", "EV-9", "3.0"),
            })
            .await,
    );
    assert_eq!(c, Code::NotFound);

    // The audit log has every registry change and every device move.
    let mut ca = ca;
    ca.stop().await;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let entries = trustca_store::Storage::audit_entries(&store, 0, 10_000).unwrap();
    let kinds = |k: &str| entries.iter().filter(|e| e.kind == k).count();
    assert_eq!(kinds("model.registered"), 2);
    assert_eq!(kinds("model.evaluated"), 3);
    assert_eq!(kinds("model.withdrawn"), 1);
    assert_eq!(kinds("model.suspended"), 1);
    assert_eq!(kinds("model.reinstated"), 1);
    assert_eq!(kinds("trust.model-changed"), 5 + 5 + 5 + 5);
    let withdrawn = entries
        .iter()
        .find(|e| e.kind == "model.withdrawn")
        .unwrap();
    assert_eq!(withdrawn.actor, "certification-body:TUV");
    assert!(
        withdrawn.detail.contains("\"devices_changed\":5"),
        "{}",
        withdrawn.detail
    );
}
