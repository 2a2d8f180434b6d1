//! What can go wrong building, changing or evaluating a system.

use trustca_model::{FailureClass, ModelError};

/// A refused system change, a bad composition policy or an evaluation that
/// cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompositionError {
    /// `composition.toml` is malformed or does not fit the trust policy.
    #[error("{file}:{line}: {reason}")]
    InvalidPolicy {
        /// The file.
        file: String,
        /// The line (0 when not known).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A system name that is empty, too long or has characters outside
    /// `A-Z a-z 0-9 . _ -`.
    #[error("system name {0:?} must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'")]
    InvalidName(String),
    /// A device named in a link or a query is not a member of the system.
    #[error("{device} is not a member of system {system}")]
    NotAMember {
        /// The system.
        system: String,
        /// The device (URN or identity key).
        device: String,
    },
    /// A link from a device to itself.
    #[error("a device cannot be linked to itself ({0})")]
    SelfLink(String),
    /// The same link (ends and operation) is already in the system.
    #[error("system {system} already has the link {link}")]
    DuplicateLink {
        /// The system.
        system: String,
        /// The link, `from -operation-> to`.
        link: String,
    },
    /// Unlinking a link the system does not have.
    #[error("system {system} has no link {link}")]
    NoSuchLink {
        /// The system.
        system: String,
        /// The link, `from -operation-> to`.
        link: String,
    },
    /// The link's operation is not in the cooperation policy.
    #[error("unknown operation {0:?}; the operations are those of cooperation.toml")]
    UnknownOperation(String),
    /// The link would close a cycle; the path is the cycle it closes.
    #[error("the link would close a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    /// The system would exceed a size limit of the policy.
    #[error("a system holds at most {limit} {what}")]
    TooLarge {
        /// `devices` or `links`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// `evaluate` was not given the live level of a member.
    #[error("no live level given for member {0}")]
    MissingLevel(String),
    /// A stored system that does not hold together (a link to a device that
    /// is not a member, a cycle): it was not written by this code.
    #[error("stored system {system} is inconsistent: {reason}")]
    Inconsistent {
        /// The system.
        system: String,
        /// What does not hold.
        reason: String,
    },
    /// A domain rule was broken (a device identity or sector name).
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl CompositionError {
    /// What kind of failure this is: bad input is `InvalidArgument`, a size
    /// limit `ResourceExhausted`, a link to a device outside the system
    /// `FailedPrecondition` (an operator adds it first), a stored system
    /// that does not hold together `DataLoss`.
    pub fn class(&self) -> FailureClass {
        match self {
            CompositionError::InvalidName(_)
            | CompositionError::SelfLink(_)
            | CompositionError::UnknownOperation(_)
            | CompositionError::Cycle(_)
            | CompositionError::Model(_) => FailureClass::InvalidArgument,
            CompositionError::NotAMember { .. } | CompositionError::InvalidPolicy { .. } => {
                FailureClass::FailedPrecondition
            }
            CompositionError::DuplicateLink { .. } => FailureClass::AlreadyExists,
            CompositionError::NoSuchLink { .. } => FailureClass::NotFound,
            CompositionError::TooLarge { .. } => FailureClass::ResourceExhausted,
            CompositionError::Inconsistent { .. } => FailureClass::DataLoss,
            CompositionError::MissingLevel(_) => FailureClass::Internal,
        }
    }
}
