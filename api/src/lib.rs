//! trustca's wire: the gRPC services over the engines, which know no
//! transport.
//!
//! Each service takes the caller from the connection's client certificate
//! (put in the request by the server's authentication layer, [`caller`]),
//! converts the message to the engine's typed command, runs it off the
//! async runtime where it may block ([`blocking`]), and answers the
//! engine's domain value as its message, or the domain error as a status
//! through one mapping ([`status()`], by the error's failure class). The
//! federation client that asks other sectors' databases is here too: it
//! is transport, and the trust engine sees it only as `PeerDatabases`.
#![forbid(unsafe_code)]

mod attestation_service;
mod enroll_batch;
mod enrollment_service;
mod federation;
mod revocation_service;
mod status;
mod systems_service;
pub mod trust_convert;
mod trust_service;

pub use attestation_service::AttestationService;
pub use enrollment_service::{EnrollmentService, MAX_BATCH_ITEMS};
pub use revocation_service::RevocationService;

pub use federation::{Federation, FederationConfig};
pub use status::{Classified, blocking, caller, code, status};
pub use systems_service::SystemsService;
pub use trust_service::{
    AnomalyService, MAX_DECIDE_BATCH, ModelRegistryService, SnapshotService, TrustService,
};
