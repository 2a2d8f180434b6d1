//! Misbehaviour resolution: naming the vehicle behind one ticket needs all
//! four authorities, each contributing only its piece and auditing it in
//! its own store under the same case reference:
//!
//! 1. the pseudonym CA hands out the two chain envelopes it kept for the
//!    ticket (it cannot open them);
//! 2. each linkage authority opens its own envelope to a chain id (it
//!    learns a random id, not a vehicle);
//! 3. the registration authority maps the pair of chain ids to the vehicle.
//!
//! Revocation then continues at the registration authority
//! ([`RegistrationAuthority::revoke`]) and the pseudonym CA
//! ([`PseudonymCa::revoke`]). In a deployment each step is a separate
//! request by the misbehaviour authority to a separate operator; this
//! function runs them in order for one process.

use trustca_v2x::Certificate;

use crate::error::Result;
use crate::linkage_authority::LinkageAuthority;
use crate::pseudonym_ca::PseudonymCa;
use crate::registration::{RegistrationAuthority, VehicleHandle};

/// Who asks, and under which case reference (written in every audit entry).
#[derive(Debug, Clone, Copy)]
pub struct ResolutionCase<'a> {
    /// The misbehaviour authority's identity.
    pub actor: &'a str,
    /// The case reference.
    pub case: &'a str,
    /// Unix time.
    pub now: i64,
}

/// Identifies the vehicle behind `ticket` with all four authorities.
pub fn identify(
    ticket: &Certificate,
    pca: &PseudonymCa,
    linkage: [&LinkageAuthority; 2],
    ra: &RegistrationAuthority,
    case: ResolutionCase<'_>,
) -> Result<(VehicleHandle, String)> {
    let [e1, e2] = pca.resolution_envelopes(ticket, case.actor, case.case, case.now)?;
    let c1 = linkage[0].open_envelope(&e1, case.actor, case.case, case.now)?;
    let c2 = linkage[1].open_envelope(&e2, case.actor, case.case, case.now)?;
    ra.vehicle_for_chains([c1, c2], case.actor, case.case, case.now)
}
