//! The conversions' tests: wire text pinned, words read checked.

use super::*;

fn assertion(tag: u8) -> SignedTrustAssertion {
    SignedTrustAssertion {
        body: vec![0x30, 0x03, 0x02, 0x01, tag].into(),
        signature: vec![0x30, tag].into(),
        responder_chain: vec![vec![1, tag], vec![2]].into(),
    }
}

#[test]
fn a_decision_crosses_the_wire_with_its_assertions_byte_for_byte() {
    let decision = d::Decision {
        allow: true,
        depth: CooperationDepth::parse("control").unwrap(),
        required_depth: Some(CooperationDepth::parse("observe").unwrap()),
        caller_level: 0,
        peer_sector: String::new(),
        peer_identity: String::new(),
        rule: String::new(),
        valid_from: 0,
        policy_version: String::new(),
        peer_own_level: 0,
        peer_level: 4,
        reasons: vec![
            d::DecisionReason::Policy("a".into()),
            d::DecisionReason::Caller("unknown device".into()),
            d::DecisionReason::PeerCertificate("expired".into()),
            d::DecisionReason::Peer("unreachable".into()),
        ],
        valid_until: 1_700_000_000,
        peer_assertion: Some(assertion(1)),
        peer_system_cap: Some(d::SystemCap {
            system: "house".into(),
            path: vec![d::CapHop {
                from: "x".into(),
                to: "y".into(),
                operation: "drive".into(),
                depth: CooperationDepth::parse("control").unwrap(),
                counted_level: 2,
            }],
            ..Default::default()
        }),
        peer_system_assertion: Some(assertion(2)),
    };
    let wire: pb::Decision = decision.clone().convert();
    assert_eq!(
        (wire.depth.as_str(), wire.required_depth.as_str()),
        ("control", "observe")
    );
    let sent = wire.peer_assertion.as_ref().unwrap();
    assert_eq!(sent.body, assertion(1).body);
    assert_eq!(sent.signature, assertion(1).signature);
    assert_eq!(sent.responder_chain[..], assertion(1).responder_chain[..]);
    // The message holds the engine's buffers, not copies of them.
    let held = decision.peer_assertion.as_ref().unwrap();
    assert_eq!(sent.body.as_ptr(), held.body.as_ptr());
    assert_eq!(sent.signature.as_ptr(), held.signature.as_ptr());
    for (sent, held) in sent.responder_chain.iter().zip(held.responder_chain.iter()) {
        assert_eq!(sent.as_ptr(), held.as_ptr());
    }
    assert_eq!(wire.peer_system_cap.as_ref().unwrap().path[0].from, "x");
    // The reasons' wire text, which clients read and tests pin.
    assert_eq!(
        wire.reasons,
        [
            "a",
            "caller: unknown device",
            "peer certificate rejected: expired",
            "peer: unreachable"
        ]
    );
    let back: d::Decision = wire.clone().convert_checked().unwrap();
    assert_eq!(back, decision);
    // No depth needed travels as empty and back as none; an empty
    // granted depth names nothing.
    let unneeded = d::Decision {
        required_depth: None,
        ..decision
    };
    let wire: pb::Decision = unneeded.clone().convert();
    assert_eq!(wire.required_depth, "");
    assert_eq!(wire.clone().convert_checked(), Ok(unneeded));
    let nameless = pb::Decision {
        depth: String::new(),
        ..wire
    };
    let e = ConvertChecked::<d::Decision>::convert_checked(nameless).unwrap_err();
    assert!(
        e.to_string().starts_with("unknown cooperation depth"),
        "{e}"
    );
}

/// Every anomaly action's wire text.
#[test]
fn anomaly_actions_keep_their_wire_names() {
    use d::AnomalyAction as A;
    let names: Vec<String> = [
        A::None,
        A::Notify,
        A::Lower,
        A::Suspend,
        A::Revoke,
        A::Tolerated,
    ]
    .into_iter()
    .map(Convert::convert)
    .collect();
    assert_eq!(
        names,
        ["none", "notify", "lower", "suspend", "revoke", "tolerated"]
    );
    let severities: Vec<String> = trustca_model::Severity::ALL
        .into_iter()
        .map(Some)
        .chain([None])
        .map(Convert::convert)
        .collect();
    assert_eq!(severities, ["low", "medium", "high", "critical", ""]);
}

#[test]
fn a_trust_question_keeps_its_subject() {
    for subject in [
        d::get_trust_request::Subject::Chain(d::CertificateChain {
            certificates: vec![vec![1], vec![2]],
        }),
        d::get_trust_request::Subject::Fingerprint(vec![7; 32]),
        d::get_trust_request::Subject::Identity("urn:trustca:hems:a:b:c".into()),
    ] {
        let asked = d::GetTrustRequest {
            subject: Some(subject),
        };
        let wire: pb::GetTrustRequest = asked.clone().convert();
        let back: d::GetTrustRequest = wire.convert();
        assert_eq!(back, asked);
    }
}

/// Levels outside 1..=5 are refused at the wire, naming the field;
/// levels inside reach the engine typed.
#[test]
fn levels_outside_one_to_five_are_refused_at_the_wire() {
    let bulk = |max_level| pb::BulkDowngradeRequest {
        max_level,
        ..Default::default()
    };
    let set = |level| pb::ChangeTrustRequest {
        change: Some(pb::change_trust_request::Change::SetLevel(level)),
        ..Default::default()
    };
    for bad in [0, 6, u32::MAX] {
        let e = bulk_downgrade_request(bulk(bad)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("max_level"), "{}", e.message());
        let e = change_trust_request(set(bad)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains(&bad.to_string()), "{}", e.message());
    }
    for good in 1..=5u32 {
        let want = TrustLevel::new(i64::from(good)).unwrap();
        assert_eq!(bulk_downgrade_request(bulk(good)).unwrap().max_level, want);
        assert_eq!(
            change_trust_request(set(good)).unwrap().change,
            Some(d::change_trust_request::Change::SetLevel(want))
        );
    }
}

/// Statuses travel as their words; a peer's answer with a status
/// outside the vocabulary is refused by name, not read loosely.
#[test]
fn statuses_cross_the_wire_as_words() {
    let answer = d::TrustAnswer {
        identity: "urn:trustca:hems:a:b:c".into(),
        sector: "hems".into(),
        certificate_level: 3,
        live_level: 2,
        status: TrustStatus::Suspended,
        record_version: 4,
        reasons: vec!["why".into()],
        assertion: Some(assertion(3)),
    };
    let wire: pb::TrustAnswer = answer.clone().convert();
    assert_eq!(wire.status, "suspended");
    assert_eq!(wire.clone().convert_checked(), Ok(answer));
    let odd = pb::TrustAnswer {
        status: "Suspended".into(),
        ..wire
    };
    let e = ConvertChecked::<d::TrustAnswer>::convert_checked(odd)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown trust status \"Suspended\""), "{e}");
    let names: Vec<String> = ModelStatus::ALL.into_iter().map(Convert::convert).collect();
    assert_eq!(
        names,
        ["certified", "provisional", "suspended", "withdrawn"]
    );
}

/// An anomaly report's kind is read at the wire: a known word reaches
/// the engine typed, any other is `INVALID_ARGUMENT` naming it.
#[test]
fn anomaly_kinds_are_read_at_the_wire() {
    let report = |anomaly: &str| pb::AnomalyReport {
        anomaly: anomaly.into(),
        ..Default::default()
    };
    for &kind in AnomalyKind::ALL {
        let read = anomaly_report(report(kind.as_str())).unwrap();
        assert_eq!(read.anomaly, kind);
        let back: pb::AnomalyReport = read.convert();
        assert_eq!(back.anomaly, kind.as_str());
    }
    let e = anomaly_report(report("bad-vibes")).unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("unknown anomaly kind \"bad-vibes\"; known: frequency-high"),
        "{}",
        e.message()
    );
}

/// Declared evidence reaches the registry typed; a type outside the
/// vocabulary is `INVALID_ARGUMENT` naming it, as in enrollment.
#[test]
fn evidence_types_are_read_at_the_wire() {
    let item = |kind: &str| pb::EvidenceItem {
        r#type: kind.into(),
        value: "true".into(),
        ..Default::default()
    };
    let request = |kind: &str| pb::RegisterModelRequest {
        declared: vec![item("secure-update"), item(kind)],
        ..Default::default()
    };
    let read: d::RegisterModelRequest = checked_request(request("supported-until")).unwrap();
    let kinds: Vec<_> = read.declared.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            trustca_model::EvidenceKind::SecureUpdate,
            trustca_model::EvidenceKind::SupportedUntil
        ]
    );
    let back: pb::RegisterModelRequest = read.convert();
    assert_eq!(back, request("supported-until"));
    let e = checked_request::<_, d::RegisterModelRequest>(request("secure_update")).unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message()
            .starts_with("unknown evidence type \"secure_update\"; known: evaluation"),
        "{}",
        e.message()
    );
}

/// A cap path's hop depth travels as its name; a peer's cap whose hop
/// names no depth is a bad answer, not a depth read loosely.
#[test]
fn cap_hop_depths_are_read_checked() {
    let cap = d::SystemCap {
        system: "house".into(),
        effective_level: 2,
        source: "urn:trustca:hems:a:b:weak".into(),
        path: vec![d::CapHop {
            from: "urn:trustca:hems:a:b:weak".into(),
            to: "urn:trustca:hems:a:b:hub".into(),
            operation: "control".into(),
            depth: CooperationDepth::parse("control").unwrap(),
            counted_level: 2,
        }],
        reason: "capped".into(),
    };
    let wire: pb::SystemCap = cap.clone().convert();
    assert_eq!(wire.path[0].depth, "control");
    assert_eq!(wire.clone().convert_checked(), Ok(cap));
    let mut nameless = wire;
    nameless.path[0].depth = String::new();
    let e = ConvertChecked::<d::SystemCap>::convert_checked(nameless)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("unknown cooperation depth \"\""), "{e}");
}

/// History entries travel as the text they are stored as, typed or
/// recorded, and read back as the same change.
#[test]
fn history_changes_travel_as_their_text() {
    for text in [
        "enrolled level=4",
        "level 4 -> 3 (anomaly silence)",
        "model suspended: hems/acme/hub firmware 1.0 (suspended v2)",
        "an older build's words",
    ] {
        let entry = d::HistoryEntryView {
            version: 2,
            at: 10,
            actor: "operator:ops".into(),
            change: DeviceChange::parse(text),
            reason: "why".into(),
        };
        let wire: pb::HistoryEntryView = entry.clone().convert();
        assert_eq!(wire.change, text);
        let back: d::HistoryEntryView = wire.convert();
        assert_eq!(back, entry);
    }
    let model = d::ModelHistoryView {
        version: 1,
        at: 10,
        actor: "manufacturer:acme".into(),
        change: ModelChange::Suspended,
        reason: "why".into(),
    };
    let wire: pb::ModelHistoryView = model.clone().convert();
    assert_eq!(wire.change, "suspended");
    assert_eq!(Convert::<d::ModelHistoryView>::convert(wire), model);
}
