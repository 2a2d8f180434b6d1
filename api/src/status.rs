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

impl Classified for trustca_ca::CaError {
    fn class(&self) -> FailureClass {
        trustca_ca::CaError::class(self)
    }
}

impl Classified for trustca_scms::ScmsError {
    fn class(&self) -> FailureClass {
        trustca_scms::ScmsError::class(self)
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

#[cfg(test)]
mod tests {
    use trustca_ca::CaError;
    use trustca_db::TrustDbError;
    use trustca_model::FailureClass;
    use trustca_store::StoreError;

    use super::*;

    /// The full list of store failures against every service and protocol
    /// is `wire_status.rs`; here the two that once drifted.
    #[test]
    fn a_store_failure_answers_alike_on_enrollment_revocation_and_trust() {
        for failure in [
            || StoreError::Full("disk full".into()),
            || StoreError::Corrupt {
                key: "device/x".into(),
                reason: "bad".into(),
            },
        ] {
            let ca = status(CaError::Store(failure()));
            let trust = status(TrustDbError::Store(failure()));
            assert_eq!(ca.code(), trust.code());
            assert_eq!(ca.code(), code(&failure()));
            assert!(trust.message().contains(&failure().to_string()));
        }
        let full = status(TrustDbError::Store(StoreError::Full("x".into())));
        assert_eq!(full.code(), tonic::Code::ResourceExhausted);
        let corrupt = status(CaError::Store(StoreError::Corrupt {
            key: "k".into(),
            reason: "r".into(),
        }));
        assert_eq!(corrupt.code(), tonic::Code::DataLoss);
    }

    #[test]
    fn the_metrics_label_of_a_class_names_its_grpc_code() {
        let classes = [
            FailureClass::InvalidArgument,
            FailureClass::Unauthenticated,
            FailureClass::PermissionDenied,
            FailureClass::NotFound,
            FailureClass::AlreadyExists,
            FailureClass::FailedPrecondition,
            FailureClass::ResourceExhausted,
            FailureClass::Unavailable,
            FailureClass::DataLoss,
            FailureClass::Internal,
        ];
        for class in classes {
            let code = trustca_proto::grpc_code(class) as i32;
            assert_eq!(
                class.label(),
                trustca_model::observe::code_label(code),
                "{class:?}"
            );
        }
    }

    #[tokio::test]
    async fn blocking_work_answers_with_the_class_of_its_error() {
        let refused = blocking("test", || -> Result<(), _> {
            Err(TrustDbError::PermissionDenied("not yours".into()))
        })
        .await
        .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(refused.message().contains("not yours"));
        let done = blocking("test", || Ok::<_, CaError>(7)).await.unwrap();
        assert_eq!(done, 7);
    }

    #[test]
    fn a_request_without_an_authenticated_caller_is_refused() {
        let refused = caller(&Request::new(())).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let mut with = Request::new(());
        let sector = trustca_model::SectorName::new("hems").unwrap();
        let kind = trustca_model::CertificateKind::Operator;
        let credential = Arc::new(Credential {
            kind,
            sector: sector.clone(),
            sectors: vec![sector.clone()],
            name: "op".into(),
            serial: "01".into(),
            serial_octets: vec![1],
            extension: trustca_model::TrustLevelExtension {
                kind,
                sector: sector.clone(),
                level: None,
                policy_version: "t".into(),
                basis: vec![],
                authorized_sectors: vec![sector],
                permitted_schemes: vec![],
            },
            identity: None,
            identity_key: None,
            key_fingerprint: [0; 32],
        });
        with.extensions_mut()
            .insert(AuthenticatedCaller(Arc::clone(&credential)));
        assert_eq!(caller(&with).unwrap().name, "op");
    }
}
