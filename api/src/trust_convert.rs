//! The trust database's messages and the engine's commands and answers
//! (`trustca_db::msg`), one field each, both ways. Each message is named
//! once with its fields; a field added to a message and not here fails to
//! compile.

use tonic::Status;
use trustca_db::msg as d;
use trustca_model::{
    AnomalyKind, CooperationDepth, ModelError, ModelStatus, SignedTrustAssertion, TrustLevel,
    TrustStatus,
};
use trustca_proto::v1 as pb;

/// A value's form on the other side of the wire: a message as the engine's
/// command or answer, or back. (`From` cannot join two types that both
/// live in other crates.)
pub trait Convert<T> {
    /// The same value in the other form.
    fn convert(self) -> T;
}

/// A message the engine takes as it is.
impl<T> Convert<T> for T {
    fn convert(self) -> T {
        self
    }
}

/// A value's form from the wire when the wire's text may name nothing
/// the engine knows (a status, a depth, a kind outside its vocabulary).
pub trait ConvertChecked<T> {
    /// The same value in the engine's form, or why the text names none.
    fn convert_checked(self) -> Result<T, ModelError>;
}

/// A signed assertion as it travels: the DER body, its signature and the
/// responder's chain, byte for byte. The message holds the same buffers
/// (`bytes::Bytes`, `proto/build.rs`): nothing is copied until the
/// message is encoded.
impl Convert<pb::SignedAssertion> for SignedTrustAssertion {
    fn convert(self) -> pb::SignedAssertion {
        pb::SignedAssertion {
            body: self.body,
            signature: self.signature,
            responder_chain: self.responder_chain.to_vec(),
        }
    }
}

/// A signed assertion from the wire (checked by whoever relies on it).
impl Convert<SignedTrustAssertion> for pb::SignedAssertion {
    fn convert(self) -> SignedTrustAssertion {
        SignedTrustAssertion {
            body: self.body,
            signature: self.signature,
            responder_chain: self.responder_chain.into(),
        }
    }
}

/// One field carried over: `same` as it is, `one` a nested message, `opt`
/// an optional one, `vec` a list of them.
macro_rules! carry {
    (same, $v:expr) => {
        $v
    };
    (one, $v:expr) => {
        $v.convert()
    };
    (opt, $v:expr) => {
        $v.map(Convert::convert)
    };
    (vec, $v:expr) => {
        $v.into_iter().map(Convert::convert).collect()
    };
    (word, $v:expr) => {
        $v.convert()
    };
    (maybe_word, $v:expr) => {
        $v.convert()
    };
}

/// One field read from the wire where a word must name a value: `word` a
/// typed value, `maybe_word` one that may be absent (empty on the wire).
macro_rules! carry_checked {
    (word, $v:expr) => {
        $v.parse()?
    };
    (maybe_word, $v:expr) => {
        if $v.is_empty() {
            None
        } else {
            Some($v.parse()?)
        }
    };
    ($kind:ident, $v:expr) => {
        carry!($kind, $v)
    };
}

/// Both conversions of a message and the engine's value of the same name.
macro_rules! both_ways {
    ($name:ident { $($field:ident: $kind:ident),* $(,)? }) => {
        impl Convert<pb::$name> for d::$name {
            fn convert(self) -> pb::$name {
                pb::$name { $($field: carry!($kind, self.$field)),* }
            }
        }

        impl Convert<d::$name> for pb::$name {
            fn convert(self) -> d::$name {
                d::$name { $($field: carry!($kind, self.$field)),* }
            }
        }
    };
}

/// The conversion of an engine's answer that only ever travels out.
macro_rules! to_wire {
    ($name:ident { $($field:ident: $kind:ident),* $(,)? }) => {
        impl Convert<pb::$name> for d::$name {
            fn convert(self) -> pb::$name {
                pb::$name { $($field: carry!($kind, self.$field)),* }
            }
        }
    };
}

/// Both conversions of a message whose words the engine holds typed: out
/// as the words, in checked ([`ConvertChecked`]).
macro_rules! both_ways_checked {
    ($name:ident { $($field:ident: $kind:ident),* $(,)? }) => {
        to_wire!($name { $($field: $kind),* });

        impl ConvertChecked<d::$name> for pb::$name {
            fn convert_checked(self) -> Result<d::$name, ModelError> {
                Ok(d::$name { $($field: carry_checked!($kind, self.$field)),* })
            }
        }
    };
}

/// Both conversions of a message's `oneof` and the engine's enum.
macro_rules! oneof_both_ways {
    ($module:ident :: $name:ident { $($variant:ident: $kind:ident),* $(,)? }) => {
        impl Convert<pb::$module::$name> for d::$module::$name {
            fn convert(self) -> pb::$module::$name {
                match self {
                    $(Self::$variant(x) => pb::$module::$name::$variant(carry!($kind, x)),)*
                }
            }
        }

        impl Convert<d::$module::$name> for pb::$module::$name {
            fn convert(self) -> d::$module::$name {
                match self {
                    $(Self::$variant(x) => d::$module::$name::$variant(carry!($kind, x)),)*
                }
            }
        }
    };
}

both_ways!(AddEvaluationRequest {
    model: opt,
    evaluation: opt,
    reason: same,
});
/// What an anomaly report did, as the wire names it.
impl Convert<String> for d::AnomalyAction {
    fn convert(self) -> String {
        self.as_str().to_owned()
    }
}

/// A template's severity as the wire names it; none is empty.
impl Convert<String> for Option<trustca_model::Severity> {
    fn convert(self) -> String {
        self.map(|s| s.as_str().to_owned()).unwrap_or_default()
    }
}

/// The wire text of a decision's reason: a denial before any policy says
/// where it came from (`caller: `, `peer certificate rejected: `,
/// `peer: `); the policy's reasons are as it wrote them.
impl Convert<String> for d::DecisionReason {
    fn convert(self) -> String {
        match self {
            d::DecisionReason::Caller(why) => format!("{CALLER}{why}"),
            d::DecisionReason::PeerCertificate(why) => format!("{PEER_CERTIFICATE}{why}"),
            d::DecisionReason::Peer(why) => format!("{PEER}{why}"),
            d::DecisionReason::Policy(why) => why,
        }
    }
}

/// A decision's reason read back from the wire (a federated or recorded
/// decision): the same prefixes, anything else the policy's.
impl Convert<d::DecisionReason> for String {
    fn convert(self) -> d::DecisionReason {
        let after = |prefix: &str| self.strip_prefix(prefix).map(str::to_owned);
        if let Some(why) = after(CALLER) {
            d::DecisionReason::Caller(why)
        } else if let Some(why) = after(PEER_CERTIFICATE) {
            d::DecisionReason::PeerCertificate(why)
        } else if let Some(why) = after(PEER) {
            d::DecisionReason::Peer(why)
        } else {
            d::DecisionReason::Policy(self)
        }
    }
}

/// The wire's prefixes of the reasons a decision denies with before any
/// policy applies.
const CALLER: &str = "caller: ";
const PEER_CERTIFICATE: &str = "peer certificate rejected: ";
const PEER: &str = "peer: ";

to_wire!(AnomalyOutcome {
    identity: same,
    action: one,
    severity: one,
    count_in_window: same,
    threshold: same,
    record: opt,
    reasons: same,
});
to_wire!(AnomalyReport {
    device: opt,
    anomaly: one,
    observed_at: same,
    evidence: same,
});

/// A closed vocabulary's word as the wire spells it.
impl Convert<String> for AnomalyKind {
    fn convert(self) -> String {
        self.as_str().to_owned()
    }
}

/// A device's status as the wire spells it.
impl Convert<String> for TrustStatus {
    fn convert(self) -> String {
        self.as_str().to_owned()
    }
}

/// A cooperation depth as the wire spells it.
impl Convert<String> for CooperationDepth {
    fn convert(self) -> String {
        self.as_str().to_owned()
    }
}

/// A depth an operation needs as the wire spells it; none is empty.
impl Convert<String> for Option<CooperationDepth> {
    fn convert(self) -> String {
        self.map(|d| d.as_str().to_owned()).unwrap_or_default()
    }
}

/// A model's status as the wire spells it.
impl Convert<String> for ModelStatus {
    fn convert(self) -> String {
        self.as_str().to_owned()
    }
}

/// A word of a closed vocabulary from the wire: an unknown one is
/// `INVALID_ARGUMENT`, naming it and the known ones, before the engine
/// sees the request.
fn wire_word<T: std::str::FromStr<Err = ModelError>>(word: &str) -> Result<T, Status> {
    word.parse()
        .map_err(|e: ModelError| Status::invalid_argument(e.to_string()))
}

/// An anomaly report from the wire, its kind checked.
pub(crate) fn anomaly_report(m: pb::AnomalyReport) -> Result<d::AnomalyReport, Status> {
    Ok(d::AnomalyReport {
        anomaly: wire_word(&m.anomaly)?,
        device: m.device.map(Convert::convert),
        observed_at: m.observed_at,
        evidence: m.evidence,
    })
}
both_ways!(BulkDowngradeResponse {
    matched: same,
    changed: same,
});
both_ways!(CapHop {
    from: same,
    to: same,
    operation: same,
    depth: same,
    counted_level: same,
});
both_ways!(CertificateChain { certificates: same });
both_ways_checked!(Decision {
    allow: same,
    depth: word,
    required_depth: maybe_word,
    caller_level: same,
    peer_level: same,
    peer_sector: same,
    peer_identity: same,
    rule: same,
    reasons: vec,
    valid_from: same,
    valid_until: same,
    peer_assertion: opt,
    policy_version: same,
    peer_own_level: same,
    peer_system_cap: opt,
    peer_system_assertion: opt,
});
both_ways!(EvidenceItem {
    r#type: same,
    scheme: same,
    value: same,
    evaluated_at: same,
});
to_wire!(GetHistoryResponse {
    record: opt,
    entries: vec,
});
both_ways!(GetModelRequest { model: opt });
both_ways!(GetTrustRequest { subject: opt });
both_ways!(HistoryEntryView {
    version: same,
    at: same,
    actor: same,
    change: same,
    reason: same,
});
both_ways!(LinkRequest {
    system: same,
    links: vec,
    reason: same,
});
both_ways!(ListModelsRequest {
    sector: same,
    manufacturer: same,
});
to_wire!(ListModelsResponse { models: vec });
to_wire!(MemberLevel {
    identity: same,
    sector: same,
    own_level: same,
    status: word,
    effective_level: same,
    cap: opt,
});
to_wire!(ModelChangeResponse {
    model: opt,
    devices_matched: same,
    devices_changed: same,
});
both_ways!(ModelEvaluationInput {
    scheme: same,
    result: same,
    certificate_number: same,
    evaluated_at: same,
    valid_until: same,
});
both_ways!(ModelEvaluationView {
    scheme: same,
    result: same,
    certificate_number: same,
    evaluated_at: same,
    valid_until: same,
    registered_by: same,
    self_assessed: same,
    withdrawn_at: same,
});
both_ways!(ModelHistoryView {
    version: same,
    at: same,
    actor: same,
    change: same,
    reason: same,
});
both_ways!(ModelSelector {
    sector: same,
    manufacturer: same,
    model: same,
    firmware: same,
});
to_wire!(ModelView {
    model: opt,
    level: same,
    status: word,
    policy_version: same,
    version: same,
    hardware_root_of_trust: same,
    secure_update: same,
    supported_until: same,
    evaluations: vec,
    history: vec,
    registered_at: same,
    updated_at: same,
    suspension_reason: same,
});
both_ways!(RegisterModelRequest {
    model: opt,
    declared: vec,
    self_assessed: vec,
    reason: same,
});
both_ways!(RegisterSystemRequest {
    name: same,
    sector: same,
    members: same,
    links: vec,
    reason: same,
});
both_ways!(ReloadPolicyResponse {
    cooperation_version: same,
    recognition_version: same,
});
both_ways!(SuspendModelRequest {
    model: opt,
    lift: same,
    reason: same,
});
both_ways!(SystemCap {
    system: same,
    effective_level: same,
    source: same,
    path: vec,
    reason: same,
});
to_wire!(SystemEvaluation {
    system: same,
    system_version: same,
    policy_version: same,
    combined_level: same,
    combined_set_by: same,
    combined_reason: same,
    members: vec,
    evaluated_at: same,
});
both_ways!(SystemLink {
    from: same,
    to: same,
    operation: same,
});
both_ways!(SystemView {
    name: same,
    sector: same,
    version: same,
    members: same,
    links: vec,
});
both_ways_checked!(TrustAnswer {
    identity: same,
    sector: same,
    certificate_level: same,
    live_level: same,
    status: word,
    record_version: same,
    reasons: same,
    assertion: opt,
});
to_wire!(TrustRecordView {
    identity: same,
    sector: same,
    level: same,
    status: word,
    version: same,
    updated_at: same,
});
both_ways!(WithdrawEvaluationRequest {
    model: opt,
    certificate_number: same,
    reason: same,
});
oneof_both_ways!(get_trust_request::Subject {
    Chain: one,
    Fingerprint: same,
    Identity: same,
});

/// A trust level from the wire: 1..=5, else `INVALID_ARGUMENT` before the
/// engine sees the request.
fn wire_level(field: &str, value: u32) -> Result<TrustLevel, Status> {
    TrustLevel::new(i64::from(value)).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

/// A bulk downgrade from the wire, its level checked.
pub(crate) fn bulk_downgrade_request(
    m: pb::BulkDowngradeRequest,
) -> Result<d::BulkDowngradeRequest, Status> {
    Ok(d::BulkDowngradeRequest {
        max_level: wire_level("max_level", m.max_level)?,
        sector: m.sector,
        manufacturer: m.manufacturer,
        model: m.model,
        firmware_min: m.firmware_min,
        firmware_max: m.firmware_max,
        reason: m.reason,
    })
}

/// A trust change from the wire, a level in it checked.
pub(crate) fn change_trust_request(
    m: pb::ChangeTrustRequest,
) -> Result<d::ChangeTrustRequest, Status> {
    use d::change_trust_request::Change as D;
    use pb::change_trust_request::Change as P;
    let change = match m.change {
        None => None,
        Some(P::SetLevel(v)) => Some(D::SetLevel(wire_level("set_level", v)?)),
        Some(P::Suspend(b)) => Some(D::Suspend(b)),
        Some(P::Restore(b)) => Some(D::Restore(b)),
        Some(P::Retire(b)) => Some(D::Retire(b)),
        Some(P::TransferTo(s)) => Some(D::TransferTo(s)),
    };
    Ok(d::ChangeTrustRequest {
        identity: m.identity,
        reason: m.reason,
        change,
    })
}

#[cfg(test)]
mod tests {
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
                    ..Default::default()
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
}
