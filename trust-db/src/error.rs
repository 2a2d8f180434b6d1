//! The trust database's error type and its failure classes (the api crate
//! turns a class into a status, in one place).

use trustca_composition::CompositionError;
use trustca_model::FailureClass;
use trustca_model::ModelError;
use trustca_store::StoreError;

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

impl TrustDbError {
    /// What kind of failure this is; the wire code maps it to a status in
    /// one place (`trustca_api::status`).
    pub fn class(&self) -> FailureClass {
        match self {
            TrustDbError::InvalidRequest(_) | TrustDbError::Model(_) => {
                FailureClass::InvalidArgument
            }
            TrustDbError::PermissionDenied(_) => FailureClass::PermissionDenied,
            TrustDbError::NotFound(_) => FailureClass::NotFound,
            TrustDbError::FailedPrecondition(_)
            | TrustDbError::PolicyReload(_)
            | TrustDbError::IssuerRevoked(_) => FailureClass::FailedPrecondition,
            TrustDbError::Unreachable { .. } => FailureClass::Unavailable,
            TrustDbError::Store(s) => s.class(),
            TrustDbError::Signing(_) => FailureClass::Internal,
            TrustDbError::AlreadyExists(_) => FailureClass::AlreadyExists,
            TrustDbError::Composition(c) => c.class(),
        }
    }
}
