//! The engine's typed commands and answers: plain Rust values with no
//! transport. `trustca-api` converts them to and from the gRPC messages
//! of the same names (one field each), so the wire contract stays where
//! the wire is.

use trustca_model::{
    AnomalyKind, CooperationDepth, ModelStatus, SignedTrustAssertion, TrustLevel, TrustStatus,
};

/// Add an evaluation to a registered model (certification body or, self-assessed, its manufacturer).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AddEvaluationRequest {
    /// Model.
    pub model: Option<ModelSelector>,
    /// Evaluation.
    pub evaluation: Option<ModelEvaluationInput>,
    /// Reason.
    pub reason: String,
}

/// What an anomaly report did (`AnomalyOutcome.action` on the wire, by
/// [`AnomalyAction::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnomalyAction {
    /// Recorded only: no template, or below its threshold.
    #[default]
    None,
    /// The provider is told; trust unchanged.
    Notify,
    /// The live level was lowered.
    Lower,
    /// The device was suspended.
    Suspend,
    /// Every certificate of the device was revoked.
    Revoke,
    /// The template fired but a preceding report marks it a known false
    /// positive: the provider is told, trust unchanged.
    Tolerated,
}

impl AnomalyAction {
    /// Lower-case name (the wire's and the notification's text).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Notify => "notify",
            Self::Lower => "lower",
            Self::Suspend => "suspend",
            Self::Revoke => "revoke",
            Self::Tolerated => "tolerated",
        }
    }
}

impl From<trustca_model::detection::DetectionAction> for AnomalyAction {
    fn from(action: trustca_model::detection::DetectionAction) -> Self {
        use trustca_model::detection::DetectionAction as D;
        match action {
            D::Notify => Self::Notify,
            D::Lower => Self::Lower,
            D::Suspend => Self::Suspend,
            D::Revoke => Self::Revoke,
        }
    }
}

impl std::fmt::Display for AnomalyAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason of a [`Decision`]: a denial before any policy applied, by
/// where it came from, or a reason the cooperation policy gave. Its text
/// on the wire is `trustca-api`'s conversion, which matches every variant
/// (so the enum is exhaustive: a new one must be given its text there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionReason {
    /// The caller's own standing could not be established.
    Caller(String),
    /// The peer's certificate chain was rejected.
    PeerCertificate(String),
    /// The peer's standing could not be established.
    Peer(String),
    /// What the cooperation policy said, as it said it.
    Policy(String),
}

/// What a gateway's anomaly report did to the device's trust.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnomalyOutcome {
    /// Identity.
    pub identity: String,
    /// What the report did.
    pub action: AnomalyAction,
    /// The template's severity (none without a template).
    pub severity: Option<trustca_model::Severity>,
    /// Count in window.
    pub count_in_window: u32,
    /// Threshold.
    pub threshold: u32,
    /// Record.
    pub record: Option<TrustRecordView>,
    /// Reasons.
    pub reasons: Vec<String>,
}

/// A gateway's report of a device behaving unusually.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyReport {
    /// The device's long-term certificate chain, DER, leaf first.
    pub device: Option<CertificateChain>,
    /// What the gateway saw (an unknown kind is refused where the report
    /// is read).
    pub anomaly: AnomalyKind,
    /// When the gateway observed it, unix seconds (0 = now).
    pub observed_at: i64,
    /// What was seen, e.g. {"expected_version": "2.1", "seen_version": "1.9"}.
    pub evidence: ::std::collections::HashMap<String, String>,
}

/// Lower every matching device of a model and firmware range to at most a level.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkDowngradeRequest {
    /// Sector.
    pub sector: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Inclusive firmware range; empty = unbounded.
    pub firmware_min: String,
    /// Firmware max.
    pub firmware_max: String,
    /// Lower matching devices to at most this level (a level outside
    /// 1..=5 is refused where the request is read).
    pub max_level: TrustLevel,
    /// Reason.
    pub reason: String,
}

/// How many devices a bulk downgrade matched and changed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkDowngradeResponse {
    /// Matched.
    pub matched: u64,
    /// Changed.
    pub changed: u64,
}

/// One link on the path that set a cap, from the weak device onwards.
#[derive(Debug, Clone, PartialEq)]
pub struct CapHop {
    /// From.
    pub from: String,
    /// To.
    pub to: String,
    /// Operation.
    pub operation: String,
    /// The depth the operation needs.
    pub depth: CooperationDepth,
    /// The weak device's level as `to`'s sector counts it after this hop.
    pub counted_level: u32,
}

/// A certificate chain, DER, leaf first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CertificateChain {
    /// Certificates.
    pub certificates: Vec<Vec<u8>>,
}

/// An operator's change to one device's trust record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeTrustRequest {
    /// urn:trustca:... of the device.
    pub identity: String,
    /// Reason.
    pub reason: String,
    /// Change.
    pub change: Option<change_trust_request::Change>,
}

/// A cooperation decision: may the caller work with the peer for an operation, and how deeply.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Allow.
    pub allow: bool,
    /// Deepest permitted cooperation depth (a rung of `cooperation.toml`'s
    /// ladder).
    pub depth: CooperationDepth,
    /// Depth the operation needs; `None` when no decision reached the
    /// operation (an unknown peer, a caller without standing).
    pub required_depth: Option<CooperationDepth>,
    /// Levels after cross-recognition, in the caller's sector's terms (0 = none).
    pub caller_level: u32,
    /// Peer level.
    pub peer_level: u32,
    /// Peer sector.
    pub peer_sector: String,
    /// Peer identity.
    pub peer_identity: String,
    /// The cooperation rule that decided ("" when none applied).
    pub rule: String,
    /// Reasons.
    pub reasons: Vec<DecisionReason>,
    /// Validity of this decision, unix seconds.
    pub valid_from: i64,
    /// Valid until.
    pub valid_until: i64,
    /// The peer's signed trust assertion (absent when the peer is unknown).
    pub peer_assertion: Option<SignedTrustAssertion>,
    /// Versions of the policies applied.
    pub policy_version: String,
    /// The peer's live level in its own sector's terms before any system of
    /// linked devices (systems.proto) capped it, and the cap that applied
    /// (absent when no system lowers it); `peer_level` is then the effective
    /// level, counted in the caller's sector's terms.
    pub peer_own_level: u32,
    /// Peer system cap.
    pub peer_system_cap: Option<SystemCap>,
    /// With a cap: the peer's trust assertion in version 2, which adds the cap
    /// (docs/trust-assertion.asn1), signed like `peer_assertion`. That field
    /// stays version 1, so verifiers that know only version 1 keep working.
    pub peer_system_assertion: Option<SignedTrustAssertion>,
}

/// One piece of evidence a manufacturer declares about a model, its type
/// typed (`EvidenceKind`): the wire's word is checked where it is read.
pub use trustca_model::EvidenceItem;

/// A device's trust record and its history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetHistoryResponse {
    /// Record.
    pub record: Option<TrustRecordView>,
    /// Entries.
    pub entries: Vec<HistoryEntryView>,
}

/// Show one registered model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetModelRequest {
    /// Model.
    pub model: Option<ModelSelector>,
}

/// Ask for a device's live trust, by chain, fingerprint or identity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetTrustRequest {
    /// Subject.
    pub subject: Option<get_trust_request::Subject>,
}

/// One change in a device's trust history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntryView {
    /// Version.
    pub version: u64,
    /// At.
    pub at: i64,
    /// Actor.
    pub actor: String,
    /// Change (its wire text is its `Display`).
    pub change: trustca_model::DeviceChange,
    /// Reason.
    pub reason: String,
}

/// Link (or unlink) devices in a system.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkRequest {
    /// System.
    pub system: String,
    /// One or more links (a request stays within the 64 KiB message limit:
    /// some 500 links).
    pub links: Vec<SystemLink>,
    /// Why, for the audit log.
    pub reason: String,
}

/// List registered models, optionally of one sector or manufacturer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListModelsRequest {
    /// Sector.
    pub sector: String,
    /// Optional: only this manufacturer's models.
    pub manufacturer: String,
}

/// Registered models.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListModelsResponse {
    /// Models.
    pub models: Vec<ModelView>,
}

/// One member of an evaluated system: its own and its effective level.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberLevel {
    /// Identity.
    pub identity: String,
    /// Sector.
    pub sector: String,
    /// Own level.
    pub own_level: u32,
    /// Status.
    pub status: TrustStatus,
    /// Effective level.
    pub effective_level: u32,
    /// Absent when nothing capped it.
    pub cap: Option<SystemCap>,
}

/// A model after a change, and how many of its devices moved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelChangeResponse {
    /// Model.
    pub model: Option<ModelView>,
    /// Enrolled devices of the model in the firmware range.
    pub devices_matched: u64,
    /// Devices whose live level or status moved with this change.
    pub devices_changed: u64,
}

/// An evaluation as given by its author.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelEvaluationInput {
    /// A scheme of the sector, e.g. "iso-sae-21434".
    pub scheme: String,
    /// The result, e.g. "CAL3".
    pub result: String,
    /// The evaluation certificate's number (unique per model record).
    pub certificate_number: String,
    /// RFC 3339 date or date-time.
    pub evaluated_at: String,
    /// RFC 3339 date or date-time after which it no longer counts.
    pub valid_until: String,
}

/// An evaluation as recorded on a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelEvaluationView {
    /// Scheme.
    pub scheme: String,
    /// Result.
    pub result: String,
    /// Certificate number.
    pub certificate_number: String,
    /// Evaluated at.
    pub evaluated_at: i64,
    /// Valid until.
    pub valid_until: i64,
    /// Registered by.
    pub registered_by: String,
    /// Self assessed.
    pub self_assessed: bool,
    /// 0 unless withdrawn.
    pub withdrawn_at: i64,
}

/// One change in a model's history.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelHistoryView {
    /// Version.
    pub version: u64,
    /// At.
    pub at: i64,
    /// Actor.
    pub actor: String,
    /// Change (its wire text is its `Display`).
    pub change: trustca_model::ModelChange,
    /// Reason.
    pub reason: String,
}

/// Which model: sector, manufacturer, model and firmware.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelSelector {
    /// Sector.
    pub sector: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// "1.4.2", "1.0..1.4.9", "2.0.." or "..1.9" (inclusive).
    pub firmware: String,
}

/// A registered model: its level, evaluations and history.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelView {
    /// Model.
    pub model: Option<ModelSelector>,
    /// Level.
    pub level: u32,
    /// Status.
    pub status: ModelStatus,
    /// Policy version.
    pub policy_version: String,
    /// Version.
    pub version: u64,
    /// Hardware root of trust.
    pub hardware_root_of_trust: String,
    /// "true", "false" or "" (not declared).
    pub secure_update: String,
    /// Supported until.
    pub supported_until: String,
    /// Evaluations.
    pub evaluations: Vec<ModelEvaluationView>,
    /// History.
    pub history: Vec<ModelHistoryView>,
    /// Registered at.
    pub registered_at: i64,
    /// Updated at.
    pub updated_at: i64,
    /// Suspension reason.
    pub suspension_reason: String,
}

/// A manufacturer registers a model with its declared evidence.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisterModelRequest {
    /// Model.
    pub model: Option<ModelSelector>,
    /// Declared for the model: "hardware-root-of-trust", "secure-update",
    /// "supported-until" (EvidenceItem as in enrollment; no evaluations).
    pub declared: Vec<EvidenceItem>,
    /// Evaluations the manufacturer made itself; the sector's
    /// registry.self_assessed_max_level caps what they can earn.
    pub self_assessed: Vec<ModelEvaluationInput>,
    /// Reason.
    pub reason: String,
}

/// Register a system of linked devices.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegisterSystemRequest {
    /// 1-64 characters of A-Z, a-z, 0-9, '.', '\_' and '-'.
    pub name: String,
    /// The sector whose terms the combined level is given in.
    pub sector: String,
    /// Member URNs; every one must be enrolled and not revoked.
    pub members: Vec<String>,
    /// Links.
    pub links: Vec<SystemLink>,
    /// Why, for the audit log.
    pub reason: String,
}

/// The policy versions in force after a reload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReloadPolicyResponse {
    /// Cooperation version.
    pub cooperation_version: String,
    /// Recognition version.
    pub recognition_version: String,
}

/// Suspend a model (or lift the suspension).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SuspendModelRequest {
    /// Model.
    pub model: Option<ModelSelector>,
    /// Lift an existing suspension instead.
    pub lift: bool,
    /// Reason.
    pub reason: String,
}

/// What lowered a device below its own level in a system.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemCap {
    /// System.
    pub system: String,
    /// Effective level.
    pub effective_level: u32,
    /// The weak device (URN); the device itself when its own status did.
    pub source: String,
    /// Path.
    pub path: Vec<CapHop>,
    /// Reason.
    pub reason: String,
}

/// A system evaluated: each member's effective level and the combined one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemEvaluation {
    /// System.
    pub system: String,
    /// System version.
    pub system_version: u64,
    /// composition@<v>+cooperation@<v>+recognition@<v>
    pub policy_version: String,
    /// In the system sector's terms (0 for a system without members).
    pub combined_level: u32,
    /// Combined set by.
    pub combined_set_by: String,
    /// Combined reason.
    pub combined_reason: String,
    /// Members.
    pub members: Vec<MemberLevel>,
    /// Unix seconds.
    pub evaluated_at: i64,
}

/// `from` may invoke `operation` (a name of cooperation.toml) on `to`.
/// Both are device URNs (urn:trustca:<sector>:<manufacturer>:<model>:<serial>).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemLink {
    /// From.
    pub from: String,
    /// To.
    pub to: String,
    /// Operation.
    pub operation: String,
}

/// A system of linked devices: its members and links.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemView {
    /// Name.
    pub name: String,
    /// Sector.
    pub sector: String,
    /// Incremented by every change.
    pub version: u64,
    /// Members.
    pub members: Vec<String>,
    /// Links.
    pub links: Vec<SystemLink>,
}

/// A device's live trust, with the responder's signed assertion of it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustAnswer {
    /// Identity.
    pub identity: String,
    /// Sector.
    pub sector: String,
    /// Level frozen in the certificate (0 when not asked by certificate).
    pub certificate_level: u32,
    /// Live level from the trust record.
    pub live_level: u32,
    /// Status.
    pub status: TrustStatus,
    /// Record version.
    pub record_version: u64,
    /// Reasons.
    pub reasons: Vec<String>,
    /// Assertion.
    pub assertion: Option<SignedTrustAssertion>,
}

/// A device's trust record as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustRecordView {
    /// Identity.
    pub identity: String,
    /// Sector.
    pub sector: String,
    /// Level.
    pub level: u32,
    /// Status.
    pub status: TrustStatus,
    /// Version.
    pub version: u64,
    /// Updated at.
    pub updated_at: i64,
}

/// Withdraw an evaluation from a model.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WithdrawEvaluationRequest {
    /// Model.
    pub model: Option<ModelSelector>,
    /// Certificate number.
    pub certificate_number: String,
    /// Reason.
    pub reason: String,
}

/// The choices inside `ChangeTrustRequest`.
pub mod change_trust_request {
    /// Which one.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Change {
        /// SetLevel (a level outside 1..=5 is refused where the request
        /// is read).
        SetLevel(trustca_model::TrustLevel),
        /// Suspend.
        Suspend(bool),
        /// Restore.
        Restore(bool),
        /// Retire.
        Retire(bool),
        /// Successor identity: the record and its history move there.
        TransferTo(String),
    }
}

/// The choices inside `GetTrustRequest`.
pub mod get_trust_request {
    /// Which one.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Subject {
        /// Certificate chain, DER, leaf first (the sub-CA may be omitted).
        Chain(super::CertificateChain),
        /// SHA-256 of the certificate, 32 bytes.
        Fingerprint(Vec<u8>),
        /// urn:trustca:<sector>:<manufacturer>:<model>:<serial>
        Identity(String),
    }
}
