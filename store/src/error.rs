//! The one error type of the store.

/// What went wrong storing or reading records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The identity is already enrolled and the issuance was not a renewal.
    #[error("device {0} is already enrolled (use renewal to issue a new certificate)")]
    AlreadyEnrolled(String),
    /// A renewal named an identity that is not enrolled.
    #[error("device {0} is not enrolled, so it cannot be renewed")]
    NotEnrolled(String),
    /// A renewal for a device that is not active.
    #[error("device {identity} is {status}; only active devices are renewed")]
    NotActive {
        /// The identity key.
        identity: String,
        /// Its current status.
        status: String,
    },
    /// The public key was revoked for compromise; no certificate is issued
    /// for it again, under any identity.
    #[error("key was revoked for compromise on {on}; generate a new key")]
    KeyCompromised {
        /// When (RFC 3339).
        on: String,
    },
    /// Re-enrolling a device whose certificates were all revoked, with a key
    /// one of them already carried.
    #[error(
        "device {identity} was revoked; re-enrolling it needs a new key, and this key is in its certificate {serial}"
    )]
    KeyReused {
        /// The identity (URN).
        identity: String,
        /// Serial (hex) of the earlier certificate with the key.
        serial: String,
    },
    /// The random serial collided with a stored one; the caller retries.
    #[error("serial {0} is already used")]
    SerialReused(String),
    /// The backend failed (I/O, corruption).
    #[error("storage backend: {0}")]
    Backend(String),
    /// A stored record does not decode.
    #[error("stored record {key} is corrupt: {reason}")]
    Corrupt {
        /// The key of the record.
        key: String,
        /// Decoder message.
        reason: String,
    },
    /// Another process holds the store's lock.
    #[error("the data directory is in use by another trustca process (its store {0} is locked)")]
    InUse(String),
    /// The committer thread is gone (the store is shutting down).
    #[error("store is shutting down")]
    Closed,
    /// The database cannot be reached; nothing was changed and the caller
    /// may retry.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store's disk (or the database server's) is full: nothing was
    /// written; reads keep working and writes resume once space is freed.
    #[error("the store cannot write: {0}")]
    Full(String),
    /// The store refuses writes (a damaged store opened for recovery, or
    /// a write failure it is still recovering from); nothing was written.
    #[error("the store is read-only: {0}")]
    ReadOnly(String),
    /// The database was migrated by a newer trustca than this one.
    #[error(
        "the database schema is version {found}, newer than the {known} this trustca knows; upgrade trustca"
    )]
    SchemaTooNew {
        /// Version found in the database.
        found: i32,
        /// Newest version this binary knows.
        known: i32,
    },
}

pub use trustca_model::FailureClass;

impl StoreError {
    /// The kind of failure this is.
    pub fn class(&self) -> FailureClass {
        match self {
            StoreError::AlreadyEnrolled(_) => FailureClass::AlreadyExists,
            StoreError::NotEnrolled(_) => FailureClass::NotFound,
            StoreError::NotActive { .. }
            | StoreError::KeyReused { .. }
            | StoreError::SchemaTooNew { .. } => FailureClass::FailedPrecondition,
            StoreError::KeyCompromised { .. } => FailureClass::PermissionDenied,
            StoreError::InUse(_)
            | StoreError::Closed
            | StoreError::Unavailable(_)
            | StoreError::ReadOnly(_) => FailureClass::Unavailable,
            StoreError::Full(_) => FailureClass::ResourceExhausted,
            StoreError::Corrupt { .. } => FailureClass::DataLoss,
            StoreError::SerialReused(_) | StoreError::Backend(_) => FailureClass::Internal,
        }
    }

    /// Whether this is the backend failing (I/O, a full disk, corruption,
    /// gone), as opposed to a refusal of the request (duplicate, not
    /// enrolled, ...): what the engines count as store errors in metrics.
    pub fn is_backend(&self) -> bool {
        matches!(
            self.class(),
            FailureClass::Unavailable | FailureClass::DataLoss | FailureClass::ResourceExhausted
        ) || matches!(self, StoreError::Backend(_))
    }
}

impl StoreError {
    /// The same failure again, for each of several callers that share one
    /// (a commit group's items): the kind is kept, the text is copied.
    pub fn repeat(&self) -> StoreError {
        match self {
            StoreError::Full(m) => StoreError::Full(m.clone()),
            StoreError::ReadOnly(m) => StoreError::ReadOnly(m.clone()),
            StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
            StoreError::Closed => StoreError::Closed,
            StoreError::Corrupt { key, reason } => StoreError::Corrupt {
                key: key.clone(),
                reason: reason.clone(),
            },
            other => StoreError::Backend(other.to_string()),
        }
    }

    /// Whether this is a write the store refused because it cannot write
    /// now (full, read-only), as opposed to a refusal of the request.
    pub fn is_write_refusal(&self) -> bool {
        matches!(self, StoreError::Full(_) | StoreError::ReadOnly(_))
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn a_backend_failure_is_told_from_a_refusal() {
        assert!(StoreError::Full("disk".into()).is_backend());
        assert!(StoreError::Unavailable("down".into()).is_backend());
        assert!(StoreError::Backend("io".into()).is_backend());
        assert!(
            StoreError::Corrupt {
                key: "k".into(),
                reason: "r".into()
            }
            .is_backend()
        );
        assert!(!StoreError::AlreadyEnrolled("urn".into()).is_backend());
        assert!(!StoreError::NotEnrolled("urn".into()).is_backend());
    }
}
