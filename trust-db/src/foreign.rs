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

use std::sync::Arc;

use trustca_model::trust_list::TrustList;
use trustca_model::{DeviceIdentity, TrustStatus, VerifiedChain};
use trustca_proto::v1 as pb;

use crate::TrustDbError;
use crate::engine::LiveState;

/// The state of a device under a listed foreign root: its certificate's
/// level, in good standing, until the certificate or the list lapses.
pub(crate) fn state(
    list: &TrustList,
    identity: &DeviceIdentity,
    verified: &VerifiedChain,
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
    Ok(LiveState {
        identity: identity.urn(),
        sector: identity.sector.clone(),
        level,
        status: TrustStatus::Active,
        version: 0,
        assertion: Arc::new(pb::SignedAssertion::default()),
        next_update: verified.not_after.min(list.next_update),
        notes: vec![list.foreign_note(&identity.sector, level)],
    })
}
