//! The trust database's error type and its one mapping to gRPC statuses.

use trustca_composition::CompositionError;
use trustca_model::ModelError;
use trustca_store::{FailureClass, StoreError};

/// What went wrong answering a trust query or applying a change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustDbError {
    /// The request is malformed (missing field, bad identity, bad value).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A domain rule was broken (unknown operation, bad URN, ...).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The caller's role or sectors do not allow this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// No such device in this database.
    #[error("not found: {0}")]
    NotFound(String),
    /// The change does not apply to the record's current state.
    #[error("not possible now: {0}")]
    FailedPrecondition(String),
    /// A federated sector database did not answer in time or at all.
    #[error("sector database for {sector} unreachable: {reason}")]
    Unreachable {
        /// The sector whose database failed.
        sector: String,
        /// What happened.
        reason: String,
    },
    /// Policy files could not be reloaded; the old policy stays in force.
    #[error("policy reload refused, previous policy kept: {0}")]
    PolicyReload(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing an assertion failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The root revoked the CA of the device's sector (its ARL says so):
    /// that sector's database, perhaps the compromised party, is not asked.
    #[error("{0}")]
    IssuerRevoked(String),
    /// What is to be created exists already (a system's name).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// A system of linked devices refused a change, or a stored one cannot
    /// be evaluated.
    #[error(transparent)]
    Composition(#[from] CompositionError),
}

impl TrustDbError {
    /// Whether a stored record is damaged or was changed outside trustca
    /// (DATA_LOSS): no answer may be built on it.
    pub fn is_data_loss(&self) -> bool {
        matches!(self, TrustDbError::Store(s) if s.class() == FailureClass::DataLoss)
    }
}

impl From<&TrustDbError> for tonic::Code {
    fn from(e: &TrustDbError) -> Self {
        use tonic::Code;
        match e {
            TrustDbError::InvalidRequest(_) | TrustDbError::Model(_) => Code::InvalidArgument,
            TrustDbError::PermissionDenied(_) => Code::PermissionDenied,
            TrustDbError::NotFound(_) => Code::NotFound,
            TrustDbError::FailedPrecondition(_)
            | TrustDbError::PolicyReload(_)
            | TrustDbError::IssuerRevoked(_) => Code::FailedPrecondition,
            TrustDbError::Unreachable { .. } => Code::Unavailable,
            TrustDbError::Store(s) => match s.class() {
                FailureClass::AlreadyExists => Code::AlreadyExists,
                FailureClass::NotFound => Code::NotFound,
                FailureClass::FailedPrecondition => Code::FailedPrecondition,
                FailureClass::Refused => Code::PermissionDenied,
                FailureClass::Unavailable => Code::Unavailable,
                FailureClass::ResourceExhausted => Code::ResourceExhausted,
                FailureClass::DataLoss => Code::DataLoss,
                _ => Code::Internal,
            },
            TrustDbError::Signing(_) => Code::Internal,
            TrustDbError::AlreadyExists(_) => Code::AlreadyExists,
            TrustDbError::Composition(c) => composition_code(c),
        }
    }
}

/// A system refusal's code: bad input is `INVALID_ARGUMENT`, a size limit
/// `RESOURCE_EXHAUSTED`, a link to a device outside the system
/// `FAILED_PRECONDITION` (an operator adds it first), a stored system that
/// does not hold together `DATA_LOSS`.
fn composition_code(e: &CompositionError) -> tonic::Code {
    use tonic::Code;
    match e {
        CompositionError::InvalidName(_)
        | CompositionError::SelfLink(_)
        | CompositionError::UnknownOperation(_)
        | CompositionError::Cycle(_)
        | CompositionError::Model(_) => Code::InvalidArgument,
        CompositionError::NotAMember { .. } | CompositionError::InvalidPolicy { .. } => {
            Code::FailedPrecondition
        }
        CompositionError::DuplicateLink { .. } => Code::AlreadyExists,
        CompositionError::NoSuchLink { .. } => Code::NotFound,
        CompositionError::TooLarge { .. } => Code::ResourceExhausted,
        CompositionError::Inconsistent { .. } => Code::DataLoss,
        _ => Code::Internal,
    }
}

impl From<TrustDbError> for tonic::Status {
    fn from(e: TrustDbError) -> Self {
        tonic::Status::new(tonic::Code::from(&e), e.to_string())
    }
}
