//! The V2X authorities' wire (`trustca-scms` engines): their gRPC services
//! (`services.rs`: the registration authority, the pseudonym CA, the
//! linkage authorities; `enrolment.rs`: the CA process's enrolment CA) and
//! the registration authority's clients of the others when they run in
//! other processes (`remote.rs`). Which process runs which authority, and
//! how each is built from its keys and store, is the server's.
//!
//! Errors of the authorities become statuses through the crate's one
//! mapping ([`crate::status()`]), by their failure class.

use std::time::Duration;

use tonic::Status;
use trustca_scms::{HashCrl, ScmsError};
use trustca_v2x::Certificate;

mod enrolment;
mod remote;
mod services;

pub use enrolment::{ENROLMENT_POP_DOMAIN, EnrollmentCredentialService};
pub use remote::{RemoteLinkage, RemotePseudonymCa, RemoteTls};
pub(crate) use services::vehicle_of;
pub use services::{LinkageService, PseudonymCaService, RegistrationService};

/// Deadline of one call from the registration authority to another.
pub const REMOTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response of the pseudonym CA (20 000 responses of ~430 bytes).
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Runs an authority's work on the blocking pool, its error mapped once.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ScmsError> + Send + 'static,
) -> Result<T, Status> {
    crate::blocking("V2X authority", f).await
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Why the enrolment CA does not enrol a vehicle.
#[derive(Debug)]
pub enum EnrolmentRefused {
    /// The vehicle was revoked.
    Revoked,
    /// The register could not be read.
    Failed(ScmsError),
}

impl EnrolmentRefused {
    /// The sentence a revoked vehicle gets.
    pub const REVOKED: &'static str =
        "this vehicle is revoked: the enrolment CA issues it no enrolment certificate";
}

/// The CA's hash-based IEEE 1609.2 CRLs, as the enrolment CA's and the
/// registration authority's front ends use them (the server's publisher
/// signs, stores and distributes them).
pub trait HashCrls: Send + Sync + std::fmt::Debug {
    /// The current list of `series`, signed now if it changed.
    fn current(&self, series: u16) -> Result<HashCrl, ScmsError>;
    /// Records an enrolment certificate issued to `vehicle`.
    fn record_issued(&self, vehicle: &str, certificate: &Certificate) -> Result<(), ScmsError>;
    /// Refuses a revoked vehicle's enrolment: a new enrolment certificate
    /// would be on no list.
    fn refuse_revoked(&self, vehicle: &str) -> Result<(), EnrolmentRefused>;
    /// Lists every enrolment certificate of `vehicle` (audited as
    /// `actor`) and publishes the new lists. Returns how many are listed.
    fn revoke_vehicle(&self, vehicle: &str, actor: &str) -> Result<usize, ScmsError>;
    /// Lists a V2X CA certificate (audited with `reason` as `actor`) and
    /// returns the new list of its series.
    fn revoke_ca_certificate(
        &self,
        certificate: &Certificate,
        reason: &str,
        actor: &str,
    ) -> Result<HashCrl, ScmsError>;
}
