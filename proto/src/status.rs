//! The one mapping from a failure's class to a gRPC status.
//!
//! Library crates classify their errors (`FailureClass`); every gRPC
//! service answers through [`grpc_code`], so the same failure gets the same
//! code on every service. The HTTP front ends use
//! `FailureClass::http_status` for the same classes.

use trustca_model::FailureClass;

/// The gRPC code of a failure class.
pub fn grpc_code(class: FailureClass) -> tonic::Code {
    use tonic::Code;
    match class {
        FailureClass::InvalidArgument => Code::InvalidArgument,
        FailureClass::Unauthenticated => Code::Unauthenticated,
        FailureClass::PermissionDenied => Code::PermissionDenied,
        FailureClass::NotFound => Code::NotFound,
        FailureClass::AlreadyExists => Code::AlreadyExists,
        FailureClass::FailedPrecondition => Code::FailedPrecondition,
        FailureClass::ResourceExhausted => Code::ResourceExhausted,
        FailureClass::Unavailable => Code::Unavailable,
        FailureClass::DataLoss => Code::DataLoss,
        _ => Code::Internal,
    }
}

/// The class of a gRPC code: the inverse of [`grpc_code`], for the few
/// places that turn a status made by shared gRPC code (caller checks) into
/// another protocol's answer. Codes no class maps to are `Internal`.
pub fn class_of(code: tonic::Code) -> FailureClass {
    use tonic::Code;
    match code {
        Code::InvalidArgument | Code::OutOfRange => FailureClass::InvalidArgument,
        Code::Unauthenticated => FailureClass::Unauthenticated,
        Code::PermissionDenied => FailureClass::PermissionDenied,
        Code::NotFound => FailureClass::NotFound,
        Code::AlreadyExists => FailureClass::AlreadyExists,
        Code::FailedPrecondition | Code::Aborted => FailureClass::FailedPrecondition,
        Code::ResourceExhausted => FailureClass::ResourceExhausted,
        Code::Unavailable | Code::DeadlineExceeded => FailureClass::Unavailable,
        Code::DataLoss => FailureClass::DataLoss,
        _ => FailureClass::Internal,
    }
}

/// A gRPC status of the given class with a message meant for people.
pub fn status(class: FailureClass, message: impl Into<String>) -> tonic::Status {
    tonic::Status::new(grpc_code(class), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_has_its_own_code_and_an_http_status_of_the_same_meaning() {
        let classes = [
            (FailureClass::InvalidArgument, 400),
            (FailureClass::Unauthenticated, 401),
            (FailureClass::PermissionDenied, 403),
            (FailureClass::NotFound, 404),
            (FailureClass::AlreadyExists, 409),
            (FailureClass::FailedPrecondition, 409),
            (FailureClass::ResourceExhausted, 503),
            (FailureClass::Unavailable, 503),
            (FailureClass::DataLoss, 500),
            (FailureClass::Internal, 500),
        ];
        let mut codes = std::collections::HashSet::new();
        for (class, http) in classes {
            assert!(codes.insert(grpc_code(class)), "{class:?} shares a code");
            assert_eq!(class_of(grpc_code(class)), class, "{class:?} round trip");
            assert_eq!(class.http_status(), http, "{class:?}");
        }
    }
}
