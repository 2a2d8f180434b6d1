//! What kind of failure an error is, independent of any protocol.
//!
//! Every library crate classifies its own errors into a [`FailureClass`]
//! (`CaError::class`, `TrustDbError::class`, `ScmsError::class`,
//! `StoreError::class`); the wire code maps a class to a gRPC code or an
//! HTTP status in one place (`trustca_proto::status`). So a full disk, a
//! damaged record or a refused key answers alike on enrollment, trust
//! queries, the V2X authorities, EST and the IEEE 1609.2.1 HTTP interface.

/// The class of a failure: what a client should make of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureClass {
    /// The request is malformed or breaks a rule of the domain
    /// (gRPC INVALID_ARGUMENT, HTTP 400).
    InvalidArgument,
    /// The caller presented no credential we trust
    /// (gRPC UNAUTHENTICATED, HTTP 401).
    Unauthenticated,
    /// The caller is known but may not do this, or the thing is refused for
    /// good, e.g. a compromised key (gRPC PERMISSION_DENIED, HTTP 403).
    PermissionDenied,
    /// The record does not exist (gRPC NOT_FOUND, HTTP 404).
    NotFound,
    /// The record exists already (gRPC ALREADY_EXISTS, HTTP 409).
    AlreadyExists,
    /// The record's state forbids the change now
    /// (gRPC FAILED_PRECONDITION, HTTP 409).
    FailedPrecondition,
    /// A limit or the store's space is exhausted; retry later or with less
    /// (gRPC RESOURCE_EXHAUSTED, HTTP 503 with Retry-After).
    ResourceExhausted,
    /// The service cannot answer now; retrying later may work
    /// (gRPC UNAVAILABLE, HTTP 503 with Retry-After).
    Unavailable,
    /// A stored record is damaged or was changed outside trustca
    /// (gRPC DATA_LOSS, HTTP 500).
    DataLoss,
    /// Anything else: a bug or an unexpected failure (gRPC INTERNAL, HTTP 500).
    Internal,
}

impl FailureClass {
    /// The HTTP status code of this class, for the HTTP front ends (EST,
    /// IEEE 1609.2.1, the web pages).
    pub fn http_status(self) -> u16 {
        match self {
            FailureClass::InvalidArgument => 400,
            FailureClass::Unauthenticated => 401,
            FailureClass::PermissionDenied => 403,
            FailureClass::NotFound => 404,
            FailureClass::AlreadyExists | FailureClass::FailedPrecondition => 409,
            FailureClass::ResourceExhausted | FailureClass::Unavailable => 503,
            FailureClass::DataLoss | FailureClass::Internal => 500,
        }
    }

    /// The snake-case name of the gRPC code this class answers with
    /// (`invalid_argument`, `data_loss`, ...), for metrics labels counted
    /// where no transport is known; `trustca-api` checks that it names the
    /// code `trustca_proto::grpc_code` gives.
    pub fn label(self) -> &'static str {
        match self {
            FailureClass::InvalidArgument => "invalid_argument",
            FailureClass::Unauthenticated => "unauthenticated",
            FailureClass::PermissionDenied => "permission_denied",
            FailureClass::NotFound => "not_found",
            FailureClass::AlreadyExists => "already_exists",
            FailureClass::FailedPrecondition => "failed_precondition",
            FailureClass::ResourceExhausted => "resource_exhausted",
            FailureClass::Unavailable => "unavailable",
            FailureClass::DataLoss => "data_loss",
            FailureClass::Internal => "internal",
        }
    }

    /// Whether a client may retry the same request later and expect it to
    /// work (HTTP answers carry `Retry-After`).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            FailureClass::ResourceExhausted | FailureClass::Unavailable
        )
    }
}
