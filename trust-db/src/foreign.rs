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

use time::OffsetDateTime;
use trustca_model::extension::ExtensionOid;
use trustca_model::trust_list::TrustList;
use trustca_model::{DeviceIdentity, TrustStatus, VerifiedChain};
use trustca_proto::v1 as pb;

use crate::TrustDbError;
use crate::engine::LiveState;

/// Verifies `chain` to a root `list` names, for a sector that root may
/// vouch for; `Err` says why none accepts it.
pub(crate) fn verify(
    list: &TrustList,
    chain: &[Vec<u8>],
    now: OffsetDateTime,
    oid: &ExtensionOid,
) -> Result<VerifiedChain, String> {
    if now >= list.next_update {
        return Err(format!(
            "the trust list (#{}) is past its nextUpdate ({})",
            list.sequence, list.next_update
        ));
    }
    for entry in &list.entries {
        if let Ok(v) = trustca_model::verify_chain(chain, &[], &entry.certificate, now, oid) {
            {
                let sector = v.extension.as_ref().map(|e| &e.sector);
                return match sector {
                    Some(s) if entry.sectors.contains(s) => Ok(v),
                    Some(s) => Err(format!(
                        "it chains to a listed foreign root, which the trust list does not let vouch for sector {s}"
                    )),
                    None => Err(
                        "it chains to a listed foreign root but carries no trust-level extension"
                            .into(),
                    ),
                };
            }
        }
    }
    Err(format!(
        "nor to any of the {} root(s) on the trust list (#{})",
        list.entries.len(),
        list.sequence
    ))
}

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
        notes: vec![format!(
            "sector {} is under a foreign root recognised by trust list #{}: level {} is its certificate's, not confirmed by its own database",
            identity.sector,
            list.sequence,
            level.get()
        )],
    })
}
