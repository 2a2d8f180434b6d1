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
use trustca_model::revocation;
use trustca_model::trust_list::TrustList;
use trustca_model::{DeviceIdentity, TrustStatus, VerifiedChain};
use trustca_proto::v1 as pb;

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
    let mut notes = vec![list.foreign_note(&identity.sector, level)];
    let mut status = TrustStatus::Active;
    let mut next_update = verified.not_after.min(list.next_update);
    // CRLs are matched by issuer name first; two foreign CAs may share a
    // name, so the one that verifies under this chain's CA counts.
    let mut checked = None;
    if let Some(ca) = issuer {
        for crl in crls.iter().filter(|c| revocation::crl_is_from(c, ca)) {
            checked = Some(revocation::check_crl(crl, ca, &verified.serial, now));
            if matches!(checked, Some(Ok(_))) {
                break;
            }
        }
    }
    match checked {
        Some(check) => {
            let check = check.map_err(|e| {
                TrustDbError::InvalidRequest(format!(
                    "the CRL held for its CA cannot be relied on ({e}), so its revocation is unknown"
                ))
            })?;
            next_update = next_update.min(check.next_update);
            let number = check.crl_number.map_or(String::new(), |n| format!(" #{n}"));
            match check.revoked {
                Some((reason, _)) => {
                    status = TrustStatus::Revoked;
                    notes.push(format!(
                        "certificate revoked ({}) on CRL{number} of {}",
                        revocation::reason_name(reason),
                        check.issuer
                    ));
                }
                None => notes.push(format!("not on CRL{number} of {}", check.issuer)),
            }
        }
        None => notes.push(format!(
            "no CRL of its CA is held here (DATA/{FOREIGN_CRL_DIR}/): revocation not checked"
        )),
    }
    Ok(LiveState {
        identity: identity.urn(),
        sector: identity.sector.clone(),
        level,
        status,
        version: 0,
        assertion: Arc::new(pb::SignedAssertion::default()),
        next_update,
        notes,
    })
}

/// Where in a data directory the CRLs of foreign sector CAs are kept.
pub const FOREIGN_CRL_DIR: &str = "crl/foreign";
