//! Devices under a foreign root recognised through this root's trust list
//! ([`trustca_model::trust_list`]).
//!
//! A peer chain that does not verify to this root is tried against each
//! root the list in force names; it is accepted only for a sector the
//! entry vouches for. No database of the foreign root is asked (this
//! instance has no federation with it): the level is the one its
//! certificate carries, which the recognition rules then count in the
//! caller's sector's terms, and the state holds until the certificate or
//! the list lapses, whichever is first.
//!
//! Revocation: the foreign sector's CRL, copied by the operator into
//! `DATA/crl/foreign/` from where that sector publishes it (as for any CRL
//! distribution point), is checked against the peer chain's issuing CA,
//! so a device its own operator revoked is refused here too.

use std::sync::Arc;

use time::OffsetDateTime;
use trustca_model::trust_list::TrustList;
use trustca_model::{DeviceIdentity, SignedTrustAssertion, TrustStatus, VerifiedChain};

use crate::TrustDbError;
use crate::engine::LiveState;

/// The state of a device under a listed foreign root: its certificate's
/// level, in good standing unless the CRL of its issuing CA (`issuer`,
/// the chain's second certificate) among `crls` lists it, until the
/// certificate, the list or that CRL lapses. A CRL of its CA that does
/// not verify or is stale refuses the device (its revocation cannot be
/// known); without one, the notes say revocation was not checked.
pub(crate) fn state(
    list: &TrustList,
    identity: &DeviceIdentity,
    verified: &VerifiedChain,
    issuer: Option<&[u8]>,
    crls: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<LiveState, TrustDbError> {
    let level = verified
        .extension
        .as_ref()
        .and_then(|e| e.level)
        .ok_or_else(|| {
            TrustDbError::InvalidRequest(
                "the foreign device's certificate carries no trust level".into(),
            )
        })?;
    let revocation = TrustList::foreign_revocation(crls, issuer, &verified.serial, now)
        .map_err(TrustDbError::InvalidRequest)?;
    let status = if revocation.revoked {
        TrustStatus::Revoked
    } else {
        TrustStatus::Active
    };
    let next_update = revocation
        .next_update
        .map_or(verified.not_after, |t| t.min(verified.not_after))
        .min(list.next_update);
    let notes = vec![list.foreign_note(&identity.sector, level), revocation.note];
    Ok(LiveState {
        identity: identity.urn(),
        sector: identity.sector.clone(),
        level,
        status,
        version: 0,
        assertion: Arc::new(SignedTrustAssertion {
            body: Vec::new(),
            signature: Vec::new(),
            responder_chain: Vec::new(),
        }),
        next_update,
        notes,
    })
}

/// Where in a data directory the CRLs of foreign sector CAs are kept.
pub const FOREIGN_CRL_DIR: &str = "crl/foreign";
