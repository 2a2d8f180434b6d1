//! Failure classes as HTTP statuses for the HTTP front ends (EST, IEEE
//! 1609.2.1), and the test that one failure answers alike on every service
//! and protocol of this crate.
//!
//! The classification is each engine's (`CaError::class`,
//! `TrustDbError::class`, `ScmsError::class`, `StoreError::class`); the gRPC
//! code is `trustca_proto::grpc_code`, the HTTP status
//! `FailureClass::http_status`.
//!
//! The ETSI TS 102 941 front end ([`crate::etsi_http`]) is not in the test:
//! a store failure never reaches its HTTP status. The authorities answer
//! it inside the signed, encrypted answer as the standard asks
//! (`deniedrequest`, `etsi/tests/etsi/codes.rs`), so the status is `200`; its
//! other statuses are the front end's own ([`crate::etsi_http::status_of`]),
//! a body's EST's.

use hyper::StatusCode;
use trustca_model::FailureClass;

/// The HTTP status of a failure class.
pub fn http_status(class: FailureClass) -> StatusCode {
    StatusCode::from_u16(class.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use trustca_ca::CaError;
    use trustca_db::TrustDbError;
    use trustca_scms::EeRefusal;
    use trustca_scms::ScmsError;
    use trustca_store::StoreError;

    use crate::est::EstError;

    /// One of each store failure a client can meet.
    fn store_failures() -> Vec<fn() -> StoreError> {
        vec![
            || StoreError::Full("disk full".into()),
            || StoreError::Corrupt {
                key: "device/x".into(),
                reason: "bad".into(),
            },
            || StoreError::Unavailable("down".into()),
            || StoreError::ReadOnly("recovering".into()),
            || StoreError::KeyCompromised {
                on: "2026-12-07T00:00:00Z".into(),
            },
            || StoreError::AlreadyEnrolled("urn".into()),
            || StoreError::NotEnrolled("urn".into()),
            || StoreError::Backend("io".into()),
        ]
    }

    #[test]
    fn a_store_failure_answers_alike_on_every_service_and_protocol() {
        for failure in store_failures() {
            let what = failure().to_string();
            let enrollment = crate::code(&CaError::Store(failure()));
            let trust = crate::code(&TrustDbError::Store(failure()));
            let v2x = crate::status(ScmsError::Store(failure())).code();
            assert_eq!(enrollment, trust, "{what}: enrollment vs trust");
            assert_eq!(enrollment, v2x, "{what}: enrollment vs V2X");
            assert_eq!(
                enrollment,
                trustca_proto::grpc_code(failure().class()),
                "{what}: the store's own class"
            );

            let est = EstError::Ca(CaError::Store(failure())).status();
            let dot1 =
                crate::v2x_http::status_of(&EeRefusal::Internal(ScmsError::Store(failure())));
            assert_eq!(est, dot1, "{what}: EST vs IEEE 1609.2.1");
            assert_eq!(
                est.as_u16(),
                failure().class().http_status(),
                "{what}: HTTP"
            );
        }
    }

    #[test]
    fn the_named_drifts_are_gone() {
        // A full disk is RESOURCE_EXHAUSTED and a damaged record DATA_LOSS
        // on V2X too (they were UNAVAILABLE there).
        let full = crate::status(ScmsError::Store(StoreError::Full("x".into())));
        assert_eq!(full.code(), tonic::Code::ResourceExhausted);
        let corrupt = crate::status(ScmsError::Store(StoreError::Corrupt {
            key: "k".into(),
            reason: "r".into(),
        }));
        assert_eq!(corrupt.code(), tonic::Code::DataLoss);
    }
}
