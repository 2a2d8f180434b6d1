//! The one error type of the ETSI authorities and profiles.

use trustca_scms::ScmsError;
use trustca_v2x::V2xError;

/// What went wrong in an ETSI profile or authority.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtsiError {
    /// A certificate or message codec or signature operation failed.
    #[error("V2X format: {0}")]
    V2x(#[from] V2xError),
    /// The ticket profile refused (level too low, period out of range).
    #[error("ticket profile: {0}")]
    Ticket(#[from] ScmsError),
    /// The configuration does not fit the TS 103 097 profile.
    #[error("ETSI profile: {0}")]
    Profile(String),
}
