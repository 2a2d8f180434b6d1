//! The CA's error type and its one mapping to gRPC statuses.

use std::path::{Path, PathBuf};

use trustca_model::FailureClass;
use trustca_model::ModelError;
use trustca_store::StoreError;

/// What went wrong in the CA engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaError {
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// `init` found an existing CA and refused to overwrite it.
    #[error("{0} already holds a CA; refusing to overwrite it")]
    AlreadyInitialized(PathBuf),
    /// The data directory has no CA yet.
    #[error("{0} holds no CA; run `trustca init --data {0}` first")]
    NotInitialized(PathBuf),
    /// The passphrase is missing, too short or wrong.
    #[error("passphrase: {0}")]
    Passphrase(String),
    /// An encrypted key file is unreadable.
    #[error("keystore: {0}")]
    Keystore(String),
    /// The PKCS#11 module, token, PIN or a key in the token is unusable
    /// (missing module, no token of that label, wrong PIN, key not found).
    #[error("{0}")]
    Pkcs11(String),
    /// A domain rule was broken (attribute, evidence, sector, policy).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The CSR does not parse or its signature does not verify.
    #[error("invalid CSR: {0}")]
    InvalidCsr(String),
    /// The CSR's key type is not allowed by the sector's profile.
    #[error("key algorithm {algorithm} is not allowed for sector {sector} (allowed: {allowed})")]
    KeyAlgorithmNotAllowed {
        /// The CSR's algorithm.
        algorithm: String,
        /// The sector.
        sector: String,
        /// What the profile allows.
        allowed: String,
    },
    /// A request is missing a field or is otherwise malformed.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The caller is authenticated but its role or sectors do not allow this.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The caller presented no trusted trustca client certificate.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// Storing the issuance failed or was refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building or signing a certificate failed.
    #[error("certificate generation failed: {0}")]
    Signing(String),
    /// This instance serves other sectors (`serve --authoritative`).
    #[error(
        "this instance enrolls devices of {served} only; enroll {sector} devices at the {sector} instance"
    )]
    NotAuthoritative {
        /// The device's sector.
        sector: String,
        /// The sectors this instance serves.
        served: String,
    },
    /// The root revoked the CA that would sign (see `trustca ca revoke`).
    #[error(
        "the {name} CA was revoked by the root on {on} ({reason}); it issues no more certificates"
    )]
    CaRevoked {
        /// The CA's name (`automotive`, `automotive-pseudonym`).
        name: String,
        /// When (RFC 3339).
        on: String,
        /// The reason's name.
        reason: String,
    },
    /// A limit was exceeded (batch size, message size).
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// The device's model and firmware are not in the model registry, and
    /// the sector (or the EST profile) requires them to be.
    #[error("model not registered: {0}")]
    ModelNotRegistered(String),
    /// The device's model is suspended in the registry: no new certificates.
    #[error("model suspended: {0}")]
    ModelSuspended(String),
    /// A hardware attestation did not prove the key (wrong key, wrong
    /// nonce, bad signature, exportable key, EK chain to no registered root).
    #[error("attestation refused: {0}")]
    AttestationRefused(String),
    /// An attestation challenge that is unknown, answered or expired.
    #[error("attestation challenge unusable: {0}")]
    ChallengeUnusable(String),
    /// Something the request needs is not set up (e.g. no attestation root
    /// registered for the sector).
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// The thing to add is there already.
    #[error("already registered: {0}")]
    AlreadyRegistered(String),
    /// The thing named does not exist.
    #[error("not found: {0}")]
    NotFound(String),
}

impl CaError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        CaError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

impl From<rcgen::Error> for CaError {
    fn from(e: rcgen::Error) -> Self {
        CaError::Signing(e.to_string())
    }
}

impl CaError {
    /// What kind of failure this is; the wire code maps it to a status in
    /// one place (`trustca_api::status`, `FailureClass::http_status`).
    pub fn class(&self) -> FailureClass {
        match self {
            CaError::InvalidCsr(_)
            | CaError::KeyAlgorithmNotAllowed { .. }
            | CaError::InvalidRequest(_) => FailureClass::InvalidArgument,
            CaError::Model(m) => match m {
                ModelError::InvalidPolicy { .. } => FailureClass::Internal,
                _ => FailureClass::InvalidArgument,
            },
            CaError::PermissionDenied(_) | CaError::AttestationRefused(_) => {
                FailureClass::PermissionDenied
            }
            CaError::ChallengeUnusable(_) | CaError::NotConfigured(_) => {
                FailureClass::FailedPrecondition
            }
            CaError::AlreadyRegistered(_) => FailureClass::AlreadyExists,
            CaError::NotFound(_) => FailureClass::NotFound,
            CaError::Unauthenticated(_) => FailureClass::Unauthenticated,
            CaError::LimitExceeded(_) => FailureClass::ResourceExhausted,
            CaError::NotAuthoritative { .. }
            | CaError::CaRevoked { .. }
            | CaError::ModelNotRegistered(_)
            | CaError::ModelSuspended(_) => FailureClass::FailedPrecondition,
            CaError::Store(s) => s.class(),
            _ => FailureClass::Internal,
        }
    }
}
