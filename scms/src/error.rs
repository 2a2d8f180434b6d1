//! The one error type of the separated authorities.

use trustca_pseudonym::PseudonymError;
use trustca_store::{FailureClass, StoreError};
use trustca_v2x::V2xError;

/// What went wrong in a V2X authority.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScmsError {
    /// A store read or write failed; nothing was issued.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A V2X certificate or encrypted-data operation failed.
    #[error("V2X format: {0}")]
    V2x(#[from] V2xError),
    /// A pseudonym cryptography operation failed.
    #[error("pseudonym crypto: {0}")]
    Crypto(#[from] PseudonymError),
    /// An envelope did not decrypt: wrong key, wrong context or altered.
    #[error("{what} does not decrypt under this authority's key (altered, or meant for another)")]
    Envelope {
        /// Which envelope.
        what: &'static str,
    },
    /// A stored or received record has the wrong shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which record.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The request asks for something the profile does not allow.
    #[error("refused by the ticket profile: {0}")]
    Profile(String),
    /// The vehicle's trust level is below the profile's minimum.
    #[error("trust level {level} is below the minimum {min} for authorization tickets")]
    LevelTooLow {
        /// The vehicle's level.
        level: u8,
        /// The profile's minimum.
        min: u8,
    },
    /// The vehicle is revoked.
    #[error("the vehicle is revoked from period {from_period}")]
    Revoked {
        /// First revoked period.
        from_period: u64,
    },
    /// A revocation from a period already begun would link tickets
    /// vehicles have used; refused unless explicitly asked for.
    #[error(
        "revocation from period {from_period} would link tickets already used (the current period is {current}); revoke from {current} or later, or pass --include-past to link past tickets too"
    )]
    PastRevocation {
        /// The period asked for.
        from_period: u64,
        /// The current period.
        current: u64,
    },
    /// Something looked up does not exist in this authority's store.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The system random generator failed.
    #[error("random number generator failed")]
    Random,
    /// A relayed response does not belong to the vehicle's request, or its
    /// certificate does not match the key the vehicle derives.
    #[error("response rejected: {0}")]
    Response(String),
    /// Another authority (over gRPC) failed or refused.
    #[error("{authority} answered {code}: {message}")]
    Remote {
        /// Which authority.
        authority: &'static str,
        /// Its gRPC status code.
        code: String,
        /// Its message.
        message: String,
    },
    /// The profile file is invalid.
    #[error("invalid ticket profile: {0}")]
    Config(String),
}

impl ScmsError {
    /// What kind of failure this is; the wire code maps it to a gRPC or
    /// HTTP status in one place. A store failure keeps the store's class
    /// (a full disk is `ResourceExhausted`, a damaged record `DataLoss`), as
    /// on every other service.
    pub fn class(&self) -> FailureClass {
        match self {
            ScmsError::Store(s) => s.class(),
            ScmsError::V2x(_)
            | ScmsError::Crypto(_)
            | ScmsError::Malformed { .. }
            | ScmsError::Envelope { .. }
            | ScmsError::Profile(_) => FailureClass::InvalidArgument,
            ScmsError::LevelTooLow { .. } | ScmsError::Revoked { .. } => {
                FailureClass::PermissionDenied
            }
            ScmsError::NotFound(_) => FailureClass::NotFound,
            ScmsError::PastRevocation { .. } => FailureClass::FailedPrecondition,
            // Another authority failed or answered something unusable: the
            // caller's request may succeed once it is back.
            ScmsError::Remote { .. } | ScmsError::Response(_) => FailureClass::Unavailable,
            ScmsError::Random | ScmsError::Config(_) => FailureClass::Internal,
        }
    }
}

/// Result with [`ScmsError`].
pub type Result<T, E = ScmsError> = std::result::Result<T, E>;
