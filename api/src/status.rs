//! What every service shares: the caller from the client certificate, work
//! run off the async runtime, and the one mapping from a domain error to a
//! gRPC status.
//!
//! Engines classify their own errors (`FailureClass`); the code of a class
//! is `trustca_proto::grpc_code`, so the same failure (a full disk, a
//! damaged record) answers with the same code on every service.

use std::sync::Arc;

use tonic::{Request, Status};
use trustca_model::{AuthenticatedCaller, Credential, FailureClass};

/// A domain error whose class decides its gRPC code; its `Display` is the
/// status message.
pub trait Classified: std::fmt::Display {
    /// What kind of failure this is.
    fn class(&self) -> FailureClass;
}

impl Classified for trustca_db::TrustDbError {
    fn class(&self) -> FailureClass {
        trustca_db::TrustDbError::class(self)
    }
}

impl Classified for trustca_store::StoreError {
    fn class(&self) -> FailureClass {
        trustca_store::StoreError::class(self)
    }
}

/// The gRPC status of a domain error: its class's code, its message.
pub fn status(e: impl Classified) -> Status {
    trustca_proto::status(e.class(), e.to_string())
}

/// The gRPC code a domain error answers with.
pub fn code(e: &impl Classified) -> tonic::Code {
    trustca_proto::grpc_code(e.class())
}

/// The caller's credential, as the server's authentication layer put it in
/// the request (verified client certificate, the RPC's role and revocation
/// rule applied); never from a request field. Without that layer every
/// call is refused.
pub fn caller<T>(req: &Request<T>) -> Result<Arc<Credential>, Status> {
    req.extensions()
        .get::<AuthenticatedCaller>()
        .map(|c| Arc::clone(&c.0))
        .ok_or_else(|| Status::unauthenticated("no client certificate: connect with mutual TLS"))
}

/// Runs engine work on the blocking pool (a store commit, a signature or a
/// fleet move must not hold an async worker) and maps its error once;
/// `what` names the task if it fails.
pub async fn blocking<T, E>(
    what: &'static str,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, Status>
where
    T: Send + 'static,
    E: Classified + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("{what} task failed: {e}")))?
        .map_err(status)
}
