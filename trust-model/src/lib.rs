//! The trustca domain model: sectors, trust levels, device identities, the
//! X.509 trust-level extension codec, device evidence and the policies that
//! turn evidence into levels.
//!
//! This crate does no I/O: callers read files and pass text in, so every rule
//! here is testable in isolation and the same code runs in the CA, the trust
//! database, the CLI and on devices.
#![forbid(unsafe_code)]

pub mod assertion;
pub mod chain;
pub mod cooperation;
mod credential;
mod depth;
mod der;
pub mod detection;
mod error;
mod evidence;
pub mod extension;
mod failure;
pub mod firmware;
pub mod hexfmt;
pub mod history;
mod identity;
mod level;
pub mod limits;
pub mod observe;
pub mod policy;
pub mod policy_source;
pub mod registry;
pub mod revocation;
mod sector;
pub mod signer;
pub mod snapshot;
pub mod snapshot_systems;
pub mod snapshot_trust_list;
mod status;
pub mod trust_list;
mod vocabulary;

pub use assertion::{ResponderChain, SignedTrustAssertion, SystemCapClaim, TrustAssertion};
pub use chain::{
    VerifiedChain, certificate_key_fingerprint, describe_webpki_error, fingerprint,
    key_fingerprint, verify_chain,
};
pub use cooperation::{CooperationRule, DecisionInput, DecisionOutcome, Standing, TrustPolicy};
pub use credential::{
    AuthenticatedCaller, AuthenticatedPeer, Credential, credential_from_chain, trust_extension,
};
pub use depth::CooperationDepth;
pub use detection::{DetectionAction, DetectionPolicy, DetectionTemplate, Severity};
pub use error::ModelError;
pub use evidence::{
    AttestationFormat, Evaluation, Evidence, EvidenceItem, HardwareRootOfTrust, VerifiedAttestation,
};
pub use extension::{CertificateKind, EvaluationBasis, TrustLevelExtension};
pub use failure::FailureClass;
pub use history::{DeviceChange, ModelChange};
pub use identity::{DeviceIdentity, validate_firmware_version};
pub use level::TrustLevel;
pub use policy::{
    KeyAlgorithm, LevelDecision, PkiPolicy, PolicySet, RegistryProfile, SectorPolicy,
};
pub use policy_source::PolicySource;
pub use registry::{FirmwareRange, ModelEvaluation, ModelKey, ModelRecord, ModelStatus};
pub use sector::SectorName;
pub use signer::{SignError, StatementAlgorithm, StatementSigner, ecdsa_raw_to_der};
pub use snapshot::{
    DeviceState, EmbeddedPolicy, OfflineDecision, PeerCap, SignedSnapshot, SnapshotModel,
    TrustSnapshot, decide_offline, decide_offline_with_policy,
};
pub use snapshot_systems::{SnapshotLink, SnapshotSystem, SnapshotSystems};
pub use status::TrustStatus;
pub use vocabulary::{AnomalyKind, EvidenceKind, FleetEvent};
