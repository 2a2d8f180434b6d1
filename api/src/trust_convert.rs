//! The trust database's messages and the engine's commands and answers
//! (`trustca_db::msg`), one field each, both ways. Generated from the
//! compiled protos' field lists; a field added to a message and not here
//! fails to compile.

use trustca_db::msg as d;
use trustca_model::SignedTrustAssertion;
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

/// A signed assertion as it travels: the DER body, its signature and the
/// responder's chain, byte for byte.
pub fn signed_to_pb(s: SignedTrustAssertion) -> pb::SignedAssertion {
    pb::SignedAssertion {
        body: s.body,
        signature: s.signature,
        responder_chain: s.responder_chain,
    }
}

/// A signed assertion from the wire (checked by whoever relies on it).
pub fn signed_from_pb(s: pb::SignedAssertion) -> SignedTrustAssertion {
    SignedTrustAssertion {
        body: s.body,
        signature: s.signature,
        responder_chain: s.responder_chain,
    }
}

impl Convert<pb::AddEvaluationRequest> for d::AddEvaluationRequest {
    fn convert(self) -> pb::AddEvaluationRequest {
        pb::AddEvaluationRequest {
            model: self.model.map(Convert::convert),
            evaluation: self.evaluation.map(Convert::convert),
            reason: self.reason,
        }
    }
}

impl Convert<d::AddEvaluationRequest> for pb::AddEvaluationRequest {
    fn convert(self) -> d::AddEvaluationRequest {
        d::AddEvaluationRequest {
            model: self.model.map(Convert::convert),
            evaluation: self.evaluation.map(Convert::convert),
            reason: self.reason,
        }
    }
}

impl Convert<pb::AnomalyOutcome> for d::AnomalyOutcome {
    fn convert(self) -> pb::AnomalyOutcome {
        pb::AnomalyOutcome {
            identity: self.identity,
            action: self.action,
            severity: self.severity,
            count_in_window: self.count_in_window,
            threshold: self.threshold,
            record: self.record.map(Convert::convert),
            reasons: self.reasons,
        }
    }
}

impl Convert<d::AnomalyOutcome> for pb::AnomalyOutcome {
    fn convert(self) -> d::AnomalyOutcome {
        d::AnomalyOutcome {
            identity: self.identity,
            action: self.action,
            severity: self.severity,
            count_in_window: self.count_in_window,
            threshold: self.threshold,
            record: self.record.map(Convert::convert),
            reasons: self.reasons,
        }
    }
}

impl Convert<pb::AnomalyReport> for d::AnomalyReport {
    fn convert(self) -> pb::AnomalyReport {
        pb::AnomalyReport {
            device: self.device.map(Convert::convert),
            anomaly: self.anomaly,
            observed_at: self.observed_at,
            evidence: self.evidence,
        }
    }
}

impl Convert<d::AnomalyReport> for pb::AnomalyReport {
    fn convert(self) -> d::AnomalyReport {
        d::AnomalyReport {
            device: self.device.map(Convert::convert),
            anomaly: self.anomaly,
            observed_at: self.observed_at,
            evidence: self.evidence,
        }
    }
}

impl Convert<pb::BulkDowngradeRequest> for d::BulkDowngradeRequest {
    fn convert(self) -> pb::BulkDowngradeRequest {
        pb::BulkDowngradeRequest {
            sector: self.sector,
            manufacturer: self.manufacturer,
            model: self.model,
            firmware_min: self.firmware_min,
            firmware_max: self.firmware_max,
            max_level: self.max_level,
            reason: self.reason,
        }
    }
}

impl Convert<d::BulkDowngradeRequest> for pb::BulkDowngradeRequest {
    fn convert(self) -> d::BulkDowngradeRequest {
        d::BulkDowngradeRequest {
            sector: self.sector,
            manufacturer: self.manufacturer,
            model: self.model,
            firmware_min: self.firmware_min,
            firmware_max: self.firmware_max,
            max_level: self.max_level,
            reason: self.reason,
        }
    }
}

impl Convert<pb::BulkDowngradeResponse> for d::BulkDowngradeResponse {
    fn convert(self) -> pb::BulkDowngradeResponse {
        pb::BulkDowngradeResponse {
            matched: self.matched,
            changed: self.changed,
        }
    }
}

impl Convert<d::BulkDowngradeResponse> for pb::BulkDowngradeResponse {
    fn convert(self) -> d::BulkDowngradeResponse {
        d::BulkDowngradeResponse {
            matched: self.matched,
            changed: self.changed,
        }
    }
}

impl Convert<pb::CapHop> for d::CapHop {
    fn convert(self) -> pb::CapHop {
        pb::CapHop {
            from: self.from,
            to: self.to,
            operation: self.operation,
            depth: self.depth,
            counted_level: self.counted_level,
        }
    }
}

impl Convert<d::CapHop> for pb::CapHop {
    fn convert(self) -> d::CapHop {
        d::CapHop {
            from: self.from,
            to: self.to,
            operation: self.operation,
            depth: self.depth,
            counted_level: self.counted_level,
        }
    }
}

impl Convert<pb::CertificateChain> for d::CertificateChain {
    fn convert(self) -> pb::CertificateChain {
        pb::CertificateChain {
            certificates: self.certificates,
        }
    }
}

impl Convert<d::CertificateChain> for pb::CertificateChain {
    fn convert(self) -> d::CertificateChain {
        d::CertificateChain {
            certificates: self.certificates,
        }
    }
}

impl Convert<pb::ChangeTrustRequest> for d::ChangeTrustRequest {
    fn convert(self) -> pb::ChangeTrustRequest {
        pb::ChangeTrustRequest {
            identity: self.identity,
            reason: self.reason,
            change: self.change.map(Convert::convert),
        }
    }
}

impl Convert<d::ChangeTrustRequest> for pb::ChangeTrustRequest {
    fn convert(self) -> d::ChangeTrustRequest {
        d::ChangeTrustRequest {
            identity: self.identity,
            reason: self.reason,
            change: self.change.map(Convert::convert),
        }
    }
}

impl Convert<pb::Decision> for d::Decision {
    fn convert(self) -> pb::Decision {
        pb::Decision {
            allow: self.allow,
            depth: self.depth,
            required_depth: self.required_depth,
            caller_level: self.caller_level,
            peer_level: self.peer_level,
            peer_sector: self.peer_sector,
            peer_identity: self.peer_identity,
            rule: self.rule,
            reasons: self.reasons,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            peer_assertion: self.peer_assertion.map(signed_to_pb),
            policy_version: self.policy_version,
            peer_own_level: self.peer_own_level,
            peer_system_cap: self.peer_system_cap.map(Convert::convert),
            peer_system_assertion: self.peer_system_assertion.map(signed_to_pb),
        }
    }
}

impl Convert<d::Decision> for pb::Decision {
    fn convert(self) -> d::Decision {
        d::Decision {
            allow: self.allow,
            depth: self.depth,
            required_depth: self.required_depth,
            caller_level: self.caller_level,
            peer_level: self.peer_level,
            peer_sector: self.peer_sector,
            peer_identity: self.peer_identity,
            rule: self.rule,
            reasons: self.reasons,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            peer_assertion: self.peer_assertion.map(signed_from_pb),
            policy_version: self.policy_version,
            peer_own_level: self.peer_own_level,
            peer_system_cap: self.peer_system_cap.map(Convert::convert),
            peer_system_assertion: self.peer_system_assertion.map(signed_from_pb),
        }
    }
}

impl Convert<pb::EvidenceItem> for d::EvidenceItem {
    fn convert(self) -> pb::EvidenceItem {
        pb::EvidenceItem {
            r#type: self.r#type,
            scheme: self.scheme,
            value: self.value,
            evaluated_at: self.evaluated_at,
        }
    }
}

impl Convert<d::EvidenceItem> for pb::EvidenceItem {
    fn convert(self) -> d::EvidenceItem {
        d::EvidenceItem {
            r#type: self.r#type,
            scheme: self.scheme,
            value: self.value,
            evaluated_at: self.evaluated_at,
        }
    }
}

impl Convert<pb::GetHistoryResponse> for d::GetHistoryResponse {
    fn convert(self) -> pb::GetHistoryResponse {
        pb::GetHistoryResponse {
            record: self.record.map(Convert::convert),
            entries: self.entries.into_iter().map(Convert::convert).collect(),
        }
    }
}

impl Convert<d::GetHistoryResponse> for pb::GetHistoryResponse {
    fn convert(self) -> d::GetHistoryResponse {
        d::GetHistoryResponse {
            record: self.record.map(Convert::convert),
            entries: self.entries.into_iter().map(Convert::convert).collect(),
        }
    }
}

impl Convert<pb::GetModelRequest> for d::GetModelRequest {
    fn convert(self) -> pb::GetModelRequest {
        pb::GetModelRequest {
            model: self.model.map(Convert::convert),
        }
    }
}

impl Convert<d::GetModelRequest> for pb::GetModelRequest {
    fn convert(self) -> d::GetModelRequest {
        d::GetModelRequest {
            model: self.model.map(Convert::convert),
        }
    }
}

impl Convert<pb::GetTrustRequest> for d::GetTrustRequest {
    fn convert(self) -> pb::GetTrustRequest {
        pb::GetTrustRequest {
            subject: self.subject.map(Convert::convert),
        }
    }
}

impl Convert<d::GetTrustRequest> for pb::GetTrustRequest {
    fn convert(self) -> d::GetTrustRequest {
        d::GetTrustRequest {
            subject: self.subject.map(Convert::convert),
        }
    }
}

impl Convert<pb::HistoryEntryView> for d::HistoryEntryView {
    fn convert(self) -> pb::HistoryEntryView {
        pb::HistoryEntryView {
            version: self.version,
            at: self.at,
            actor: self.actor,
            change: self.change,
            reason: self.reason,
        }
    }
}

impl Convert<d::HistoryEntryView> for pb::HistoryEntryView {
    fn convert(self) -> d::HistoryEntryView {
        d::HistoryEntryView {
            version: self.version,
            at: self.at,
            actor: self.actor,
            change: self.change,
            reason: self.reason,
        }
    }
}

impl Convert<pb::LinkRequest> for d::LinkRequest {
    fn convert(self) -> pb::LinkRequest {
        pb::LinkRequest {
            system: self.system,
            links: self.links.into_iter().map(Convert::convert).collect(),
            reason: self.reason,
        }
    }
}

impl Convert<d::LinkRequest> for pb::LinkRequest {
    fn convert(self) -> d::LinkRequest {
        d::LinkRequest {
            system: self.system,
            links: self.links.into_iter().map(Convert::convert).collect(),
            reason: self.reason,
        }
    }
}

impl Convert<pb::ListModelsRequest> for d::ListModelsRequest {
    fn convert(self) -> pb::ListModelsRequest {
        pb::ListModelsRequest {
            sector: self.sector,
            manufacturer: self.manufacturer,
        }
    }
}

impl Convert<d::ListModelsRequest> for pb::ListModelsRequest {
    fn convert(self) -> d::ListModelsRequest {
        d::ListModelsRequest {
            sector: self.sector,
            manufacturer: self.manufacturer,
        }
    }
}

impl Convert<pb::ListModelsResponse> for d::ListModelsResponse {
    fn convert(self) -> pb::ListModelsResponse {
        pb::ListModelsResponse {
            models: self.models.into_iter().map(Convert::convert).collect(),
        }
    }
}

impl Convert<d::ListModelsResponse> for pb::ListModelsResponse {
    fn convert(self) -> d::ListModelsResponse {
        d::ListModelsResponse {
            models: self.models.into_iter().map(Convert::convert).collect(),
        }
    }
}

impl Convert<pb::MemberLevel> for d::MemberLevel {
    fn convert(self) -> pb::MemberLevel {
        pb::MemberLevel {
            identity: self.identity,
            sector: self.sector,
            own_level: self.own_level,
            status: self.status,
            effective_level: self.effective_level,
            cap: self.cap.map(Convert::convert),
        }
    }
}

impl Convert<d::MemberLevel> for pb::MemberLevel {
    fn convert(self) -> d::MemberLevel {
        d::MemberLevel {
            identity: self.identity,
            sector: self.sector,
            own_level: self.own_level,
            status: self.status,
            effective_level: self.effective_level,
            cap: self.cap.map(Convert::convert),
        }
    }
}

impl Convert<pb::ModelChangeResponse> for d::ModelChangeResponse {
    fn convert(self) -> pb::ModelChangeResponse {
        pb::ModelChangeResponse {
            model: self.model.map(Convert::convert),
            devices_matched: self.devices_matched,
            devices_changed: self.devices_changed,
        }
    }
}

impl Convert<d::ModelChangeResponse> for pb::ModelChangeResponse {
    fn convert(self) -> d::ModelChangeResponse {
        d::ModelChangeResponse {
            model: self.model.map(Convert::convert),
            devices_matched: self.devices_matched,
            devices_changed: self.devices_changed,
        }
    }
}

impl Convert<pb::ModelEvaluationInput> for d::ModelEvaluationInput {
    fn convert(self) -> pb::ModelEvaluationInput {
        pb::ModelEvaluationInput {
            scheme: self.scheme,
            result: self.result,
            certificate_number: self.certificate_number,
            evaluated_at: self.evaluated_at,
            valid_until: self.valid_until,
        }
    }
}

impl Convert<d::ModelEvaluationInput> for pb::ModelEvaluationInput {
    fn convert(self) -> d::ModelEvaluationInput {
        d::ModelEvaluationInput {
            scheme: self.scheme,
            result: self.result,
            certificate_number: self.certificate_number,
            evaluated_at: self.evaluated_at,
            valid_until: self.valid_until,
        }
    }
}

impl Convert<pb::ModelEvaluationView> for d::ModelEvaluationView {
    fn convert(self) -> pb::ModelEvaluationView {
        pb::ModelEvaluationView {
            scheme: self.scheme,
            result: self.result,
            certificate_number: self.certificate_number,
            evaluated_at: self.evaluated_at,
            valid_until: self.valid_until,
            registered_by: self.registered_by,
            self_assessed: self.self_assessed,
            withdrawn_at: self.withdrawn_at,
        }
    }
}

impl Convert<d::ModelEvaluationView> for pb::ModelEvaluationView {
    fn convert(self) -> d::ModelEvaluationView {
        d::ModelEvaluationView {
            scheme: self.scheme,
            result: self.result,
            certificate_number: self.certificate_number,
            evaluated_at: self.evaluated_at,
            valid_until: self.valid_until,
            registered_by: self.registered_by,
            self_assessed: self.self_assessed,
            withdrawn_at: self.withdrawn_at,
        }
    }
}

impl Convert<pb::ModelHistoryView> for d::ModelHistoryView {
    fn convert(self) -> pb::ModelHistoryView {
        pb::ModelHistoryView {
            version: self.version,
            at: self.at,
            actor: self.actor,
            change: self.change,
            reason: self.reason,
        }
    }
}

impl Convert<d::ModelHistoryView> for pb::ModelHistoryView {
    fn convert(self) -> d::ModelHistoryView {
        d::ModelHistoryView {
            version: self.version,
            at: self.at,
            actor: self.actor,
            change: self.change,
            reason: self.reason,
        }
    }
}

impl Convert<pb::ModelSelector> for d::ModelSelector {
    fn convert(self) -> pb::ModelSelector {
        pb::ModelSelector {
            sector: self.sector,
            manufacturer: self.manufacturer,
            model: self.model,
            firmware: self.firmware,
        }
    }
}

impl Convert<d::ModelSelector> for pb::ModelSelector {
    fn convert(self) -> d::ModelSelector {
        d::ModelSelector {
            sector: self.sector,
            manufacturer: self.manufacturer,
            model: self.model,
            firmware: self.firmware,
        }
    }
}

impl Convert<pb::ModelView> for d::ModelView {
    fn convert(self) -> pb::ModelView {
        pb::ModelView {
            model: self.model.map(Convert::convert),
            level: self.level,
            status: self.status,
            policy_version: self.policy_version,
            version: self.version,
            hardware_root_of_trust: self.hardware_root_of_trust,
            secure_update: self.secure_update,
            supported_until: self.supported_until,
            evaluations: self.evaluations.into_iter().map(Convert::convert).collect(),
            history: self.history.into_iter().map(Convert::convert).collect(),
            registered_at: self.registered_at,
            updated_at: self.updated_at,
            suspension_reason: self.suspension_reason,
        }
    }
}

impl Convert<d::ModelView> for pb::ModelView {
    fn convert(self) -> d::ModelView {
        d::ModelView {
            model: self.model.map(Convert::convert),
            level: self.level,
            status: self.status,
            policy_version: self.policy_version,
            version: self.version,
            hardware_root_of_trust: self.hardware_root_of_trust,
            secure_update: self.secure_update,
            supported_until: self.supported_until,
            evaluations: self.evaluations.into_iter().map(Convert::convert).collect(),
            history: self.history.into_iter().map(Convert::convert).collect(),
            registered_at: self.registered_at,
            updated_at: self.updated_at,
            suspension_reason: self.suspension_reason,
        }
    }
}

impl Convert<pb::RegisterModelRequest> for d::RegisterModelRequest {
    fn convert(self) -> pb::RegisterModelRequest {
        pb::RegisterModelRequest {
            model: self.model.map(Convert::convert),
            declared: self.declared.into_iter().map(Convert::convert).collect(),
            self_assessed: self
                .self_assessed
                .into_iter()
                .map(Convert::convert)
                .collect(),
            reason: self.reason,
        }
    }
}

impl Convert<d::RegisterModelRequest> for pb::RegisterModelRequest {
    fn convert(self) -> d::RegisterModelRequest {
        d::RegisterModelRequest {
            model: self.model.map(Convert::convert),
            declared: self.declared.into_iter().map(Convert::convert).collect(),
            self_assessed: self
                .self_assessed
                .into_iter()
                .map(Convert::convert)
                .collect(),
            reason: self.reason,
        }
    }
}

impl Convert<pb::RegisterSystemRequest> for d::RegisterSystemRequest {
    fn convert(self) -> pb::RegisterSystemRequest {
        pb::RegisterSystemRequest {
            name: self.name,
            sector: self.sector,
            members: self.members,
            links: self.links.into_iter().map(Convert::convert).collect(),
            reason: self.reason,
        }
    }
}

impl Convert<d::RegisterSystemRequest> for pb::RegisterSystemRequest {
    fn convert(self) -> d::RegisterSystemRequest {
        d::RegisterSystemRequest {
            name: self.name,
            sector: self.sector,
            members: self.members,
            links: self.links.into_iter().map(Convert::convert).collect(),
            reason: self.reason,
        }
    }
}

impl Convert<pb::ReloadPolicyResponse> for d::ReloadPolicyResponse {
    fn convert(self) -> pb::ReloadPolicyResponse {
        pb::ReloadPolicyResponse {
            cooperation_version: self.cooperation_version,
            recognition_version: self.recognition_version,
        }
    }
}

impl Convert<d::ReloadPolicyResponse> for pb::ReloadPolicyResponse {
    fn convert(self) -> d::ReloadPolicyResponse {
        d::ReloadPolicyResponse {
            cooperation_version: self.cooperation_version,
            recognition_version: self.recognition_version,
        }
    }
}

impl Convert<pb::SuspendModelRequest> for d::SuspendModelRequest {
    fn convert(self) -> pb::SuspendModelRequest {
        pb::SuspendModelRequest {
            model: self.model.map(Convert::convert),
            lift: self.lift,
            reason: self.reason,
        }
    }
}

impl Convert<d::SuspendModelRequest> for pb::SuspendModelRequest {
    fn convert(self) -> d::SuspendModelRequest {
        d::SuspendModelRequest {
            model: self.model.map(Convert::convert),
            lift: self.lift,
            reason: self.reason,
        }
    }
}

impl Convert<pb::SystemCap> for d::SystemCap {
    fn convert(self) -> pb::SystemCap {
        pb::SystemCap {
            system: self.system,
            effective_level: self.effective_level,
            source: self.source,
            path: self.path.into_iter().map(Convert::convert).collect(),
            reason: self.reason,
        }
    }
}

impl Convert<d::SystemCap> for pb::SystemCap {
    fn convert(self) -> d::SystemCap {
        d::SystemCap {
            system: self.system,
            effective_level: self.effective_level,
            source: self.source,
            path: self.path.into_iter().map(Convert::convert).collect(),
            reason: self.reason,
        }
    }
}

impl Convert<pb::SystemEvaluation> for d::SystemEvaluation {
    fn convert(self) -> pb::SystemEvaluation {
        pb::SystemEvaluation {
            system: self.system,
            system_version: self.system_version,
            policy_version: self.policy_version,
            combined_level: self.combined_level,
            combined_set_by: self.combined_set_by,
            combined_reason: self.combined_reason,
            members: self.members.into_iter().map(Convert::convert).collect(),
            evaluated_at: self.evaluated_at,
        }
    }
}

impl Convert<d::SystemEvaluation> for pb::SystemEvaluation {
    fn convert(self) -> d::SystemEvaluation {
        d::SystemEvaluation {
            system: self.system,
            system_version: self.system_version,
            policy_version: self.policy_version,
            combined_level: self.combined_level,
            combined_set_by: self.combined_set_by,
            combined_reason: self.combined_reason,
            members: self.members.into_iter().map(Convert::convert).collect(),
            evaluated_at: self.evaluated_at,
        }
    }
}

impl Convert<pb::SystemLink> for d::SystemLink {
    fn convert(self) -> pb::SystemLink {
        pb::SystemLink {
            from: self.from,
            to: self.to,
            operation: self.operation,
        }
    }
}

impl Convert<d::SystemLink> for pb::SystemLink {
    fn convert(self) -> d::SystemLink {
        d::SystemLink {
            from: self.from,
            to: self.to,
            operation: self.operation,
        }
    }
}

impl Convert<pb::SystemView> for d::SystemView {
    fn convert(self) -> pb::SystemView {
        pb::SystemView {
            name: self.name,
            sector: self.sector,
            version: self.version,
            members: self.members,
            links: self.links.into_iter().map(Convert::convert).collect(),
        }
    }
}

impl Convert<d::SystemView> for pb::SystemView {
    fn convert(self) -> d::SystemView {
        d::SystemView {
            name: self.name,
            sector: self.sector,
            version: self.version,
            members: self.members,
            links: self.links.into_iter().map(Convert::convert).collect(),
        }
    }
}

impl Convert<pb::TrustAnswer> for d::TrustAnswer {
    fn convert(self) -> pb::TrustAnswer {
        pb::TrustAnswer {
            identity: self.identity,
            sector: self.sector,
            certificate_level: self.certificate_level,
            live_level: self.live_level,
            status: self.status,
            record_version: self.record_version,
            reasons: self.reasons,
            assertion: self.assertion.map(signed_to_pb),
        }
    }
}

impl Convert<d::TrustAnswer> for pb::TrustAnswer {
    fn convert(self) -> d::TrustAnswer {
        d::TrustAnswer {
            identity: self.identity,
            sector: self.sector,
            certificate_level: self.certificate_level,
            live_level: self.live_level,
            status: self.status,
            record_version: self.record_version,
            reasons: self.reasons,
            assertion: self.assertion.map(signed_from_pb),
        }
    }
}

impl Convert<pb::TrustRecordView> for d::TrustRecordView {
    fn convert(self) -> pb::TrustRecordView {
        pb::TrustRecordView {
            identity: self.identity,
            sector: self.sector,
            level: self.level,
            status: self.status,
            version: self.version,
            updated_at: self.updated_at,
        }
    }
}

impl Convert<d::TrustRecordView> for pb::TrustRecordView {
    fn convert(self) -> d::TrustRecordView {
        d::TrustRecordView {
            identity: self.identity,
            sector: self.sector,
            level: self.level,
            status: self.status,
            version: self.version,
            updated_at: self.updated_at,
        }
    }
}

impl Convert<pb::WithdrawEvaluationRequest> for d::WithdrawEvaluationRequest {
    fn convert(self) -> pb::WithdrawEvaluationRequest {
        pb::WithdrawEvaluationRequest {
            model: self.model.map(Convert::convert),
            certificate_number: self.certificate_number,
            reason: self.reason,
        }
    }
}

impl Convert<d::WithdrawEvaluationRequest> for pb::WithdrawEvaluationRequest {
    fn convert(self) -> d::WithdrawEvaluationRequest {
        d::WithdrawEvaluationRequest {
            model: self.model.map(Convert::convert),
            certificate_number: self.certificate_number,
            reason: self.reason,
        }
    }
}

impl Convert<pb::change_trust_request::Change> for d::change_trust_request::Change {
    fn convert(self) -> pb::change_trust_request::Change {
        match self {
            d::change_trust_request::Change::SetLevel(x) => {
                pb::change_trust_request::Change::SetLevel(x)
            }
            d::change_trust_request::Change::Suspend(x) => {
                pb::change_trust_request::Change::Suspend(x)
            }
            d::change_trust_request::Change::Restore(x) => {
                pb::change_trust_request::Change::Restore(x)
            }
            d::change_trust_request::Change::Retire(x) => {
                pb::change_trust_request::Change::Retire(x)
            }
            d::change_trust_request::Change::TransferTo(x) => {
                pb::change_trust_request::Change::TransferTo(x)
            }
        }
    }
}

impl Convert<d::change_trust_request::Change> for pb::change_trust_request::Change {
    fn convert(self) -> d::change_trust_request::Change {
        match self {
            pb::change_trust_request::Change::SetLevel(x) => {
                d::change_trust_request::Change::SetLevel(x)
            }
            pb::change_trust_request::Change::Suspend(x) => {
                d::change_trust_request::Change::Suspend(x)
            }
            pb::change_trust_request::Change::Restore(x) => {
                d::change_trust_request::Change::Restore(x)
            }
            pb::change_trust_request::Change::Retire(x) => {
                d::change_trust_request::Change::Retire(x)
            }
            pb::change_trust_request::Change::TransferTo(x) => {
                d::change_trust_request::Change::TransferTo(x)
            }
        }
    }
}

impl Convert<pb::get_trust_request::Subject> for d::get_trust_request::Subject {
    fn convert(self) -> pb::get_trust_request::Subject {
        match self {
            d::get_trust_request::Subject::Chain(x) => {
                pb::get_trust_request::Subject::Chain(x.convert())
            }
            d::get_trust_request::Subject::Fingerprint(x) => {
                pb::get_trust_request::Subject::Fingerprint(x)
            }
            d::get_trust_request::Subject::Identity(x) => {
                pb::get_trust_request::Subject::Identity(x)
            }
        }
    }
}

impl Convert<d::get_trust_request::Subject> for pb::get_trust_request::Subject {
    fn convert(self) -> d::get_trust_request::Subject {
        match self {
            pb::get_trust_request::Subject::Chain(x) => {
                d::get_trust_request::Subject::Chain(x.convert())
            }
            pb::get_trust_request::Subject::Fingerprint(x) => {
                d::get_trust_request::Subject::Fingerprint(x)
            }
            pb::get_trust_request::Subject::Identity(x) => {
                d::get_trust_request::Subject::Identity(x)
            }
        }
    }
}
