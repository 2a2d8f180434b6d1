//! The trust database's messages and the engine's commands and answers
//! (`trustca_db::msg`), one field each, both ways. Each message is named
//! once with its fields; a field added to a message and not here fails to
//! compile.

use tonic::Status;
use trustca_db::msg as d;
use trustca_model::{
    AnomalyKind, CooperationDepth, DeviceChange, EvidenceItem, ModelChange, ModelError,
    ModelStatus, SignedTrustAssertion, TrustLevel, TrustStatus,
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
/// an optional one, `vec` a list of them; `checked_opt` and `checked_vec`
/// go out as `opt` and `vec` and are read back checked.
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
    (checked_opt, $v:expr) => {
        $v.map(Convert::convert)
    };
    (checked_vec, $v:expr) => {
        $v.into_iter().map(Convert::convert).collect()
    };
}

/// One field read from the wire where a word must name a value: `word` a
/// typed value, `maybe_word` one that may be absent (empty on the wire),
/// `checked_opt` and `checked_vec` messages that hold such words.
macro_rules! carry_checked {
    (checked_opt, $v:expr) => {
        $v.map(ConvertChecked::convert_checked).transpose()?
    };
    (checked_vec, $v:expr) => {
        $v.into_iter()
            .map(ConvertChecked::convert_checked)
            .collect::<Result<_, _>>()?
    };
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

/// A history entry's change as the wire shows it: the text it is stored
/// as, byte for byte.
impl Convert<String> for DeviceChange {
    fn convert(self) -> String {
        self.to_string()
    }
}

/// A history entry's change from the wire: any text reads (one of no
/// known form as `Recorded`), since a history is never refused.
impl Convert<DeviceChange> for String {
    fn convert(self) -> DeviceChange {
        DeviceChange::parse(&self)
    }
}

/// A model history entry's change as the wire shows it.
impl Convert<String> for ModelChange {
    fn convert(self) -> String {
        self.to_string()
    }
}

/// A model history entry's change from the wire (see `DeviceChange`'s).
impl Convert<ModelChange> for String {
    fn convert(self) -> ModelChange {
        ModelChange::parse(&self)
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

/// A request from the wire whose words must name values: an unknown one is
/// `INVALID_ARGUMENT`, naming it and the known ones.
pub(crate) fn checked_request<P: ConvertChecked<T>, T>(message: P) -> Result<T, Status> {
    message
        .convert_checked()
        .map_err(|e| Status::invalid_argument(e.to_string()))
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
both_ways_checked!(CapHop {
    from: same,
    to: same,
    operation: same,
    depth: word,
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
    peer_system_cap: checked_opt,
    peer_system_assertion: opt,
});

/// A declared evidence item as the wire spells its type.
impl Convert<pb::EvidenceItem> for EvidenceItem {
    fn convert(self) -> pb::EvidenceItem {
        pb::EvidenceItem {
            r#type: self.kind.as_str().to_owned(),
            scheme: self.scheme,
            value: self.value,
            evaluated_at: self.evaluated_at,
        }
    }
}

/// A declared evidence item from the wire: a type outside the vocabulary
/// is refused by name (enrollment and the model registry alike).
impl ConvertChecked<EvidenceItem> for pb::EvidenceItem {
    fn convert_checked(self) -> Result<EvidenceItem, ModelError> {
        Ok(EvidenceItem {
            kind: self.r#type.parse()?,
            scheme: self.scheme,
            value: self.value,
            evaluated_at: self.evaluated_at,
        })
    }
}
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
    change: one,
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
    change: one,
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
both_ways_checked!(RegisterModelRequest {
    model: opt,
    declared: checked_vec,
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
both_ways_checked!(SystemCap {
    system: same,
    effective_level: same,
    source: same,
    path: checked_vec,
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
mod tests;
