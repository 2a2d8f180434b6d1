//! trustca's wire: every protocol the server speaks, over engines that
//! know no transport.
//!
//! Each gRPC service takes the caller from the connection's client
//! certificate (put in the request by the server's authentication layer,
//! [`caller`]), converts the message to the engine's typed command, runs
//! it off the async runtime where it may block ([`blocking`]), and answers
//! the engine's domain value as its message, or the domain error as a
//! status through one mapping ([`status()`], by the error's failure
//! class). The V2X authorities' services and the registration
//! authority's clients of the others are in [`v2x`]; EST (RFC 7030) in
//! [`est`], the IEEE 1609.2.1 resources in [`v2x_http`], whose
//! refusals take their HTTP status from the same failure classes
//! ([`http_status`]), and the ETSI TS 102 941 resources and the AA's
//! client of its EA in [`etsi_http`]. The federation client that asks other sectors'
//! databases is here too: it is transport, and the trust engine sees it
//! only as `PeerDatabases`. So is the command line's gRPC client
//! ([`client`]). Binding sockets, TLS and the connection table are the
//! server's.
#![forbid(unsafe_code)]

mod attestation_service;
pub mod client;
mod enroll_batch;
mod enrollment_service;
mod error;
pub mod est;
pub mod etsi_http;
mod federation;
mod revocation_service;
mod status;
mod stream_limits;
mod systems_service;
pub mod trust_convert;
mod trust_service;
pub mod v2x;
pub mod v2x_http;
mod wire_status;

pub use attestation_service::AttestationService;
pub use enrollment_service::{EnrollmentService, MAX_BATCH_ITEMS};
pub use revocation_service::RevocationService;

pub use client::{ClientCredentials, connect, connect_public};
pub use error::ApiError;
pub use federation::{Federation, FederationConfig};
pub use status::{Classified, blocking, caller, code, status};
pub use systems_service::SystemsService;
pub use trust_service::{
    AnomalyService, MAX_DECIDE_BATCH, ModelRegistryService, SnapshotService, TrustService,
};
pub use wire_status::http_status;
