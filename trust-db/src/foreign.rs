//! Devices under a foreign root recognised through this root's trust list
//! ([`trustca_model::trust_list`]).
//!
//! A peer chain that does not verify to this root is tried against each
//! root the list in force names; it is accepted only for a sector the
//! entry vouches for. When a peer database is configured for that sector
//! (`--peer railway=URL`), it is asked over mutual TLS, its TLS certificate
//! checked against the listed root, and its signed answer verified against
//! that root through the sector's own responder: the device's live level
//! and status count (a revoked or suspended answer denies), counted by the
//! recognition rules in the caller's sector's terms. A bad answer denies;
//! an unreachable database falls back to what needs no database, as does a
//! sector without a peer: the level its certificate carries. Either way
//! the state holds until the certificate, the answer or the list lapses.
//!
//! Revocation: the foreign sector's CRL, copied by the operator into
//! `DATA/crl/foreign/` from where that sector publishes it (as for any CRL
//! distribution point), is checked against the peer chain's issuing CA,
//! so a device its own operator revoked is refused here too.

use time::OffsetDateTime;
use trustca_model::trust_list::{CheckedTrustList, TrustList};
use trustca_model::{DeviceIdentity, SignedTrustAssertion, TrustStatus, VerifiedChain};

use crate::engine::LiveState;
use crate::{TrustDbError, TrustEngine, msg};

impl TrustEngine {
    /// The state of a device of a sector the list in force names: its own
    /// database's signed answer when a peer is configured for the sector,
    /// with its CA's CRL (held here) counting too; its certificate's level
    /// ([`state`]) otherwise, or when that database cannot be reached.
    pub(crate) async fn foreign_state(
        &self,
        list: &CheckedTrustList,
        chain: &[Vec<u8>],
        identity: &DeviceIdentity,
        verified: &VerifiedChain,
        now: OffsetDateTime,
    ) -> Result<LiveState, TrustDbError> {
        let crls = self.foreign_crls();
        let issuer = chain.get(1).map(Vec::as_slice);
        let mut by_certificate = state(&list.list, identity, verified, issuer, &crls, now)?;
        let Some(root) = list.list.root_for(&identity.sector) else {
            return Ok(by_certificate);
        };
        if !self.has_peer(&identity.sector) {
            return Ok(by_certificate);
        }
        let request = msg::GetTrustRequest {
            subject: Some(msg::get_trust_request::Subject::Chain(
                msg::CertificateChain {
                    certificates: chain.to_vec(),
                },
            )),
        };
        let answer = match self
            .ask_peer(identity, Some(root), verified.fingerprint.to_vec(), request)
            .await
        {
            Ok(a) => a,
            Err(e @ TrustDbError::Unreachable { .. }) => {
                by_certificate.notes.push(format!(
                    "its own database was not asked successfully ({e}): judged by its certificate"
                ));
                return Ok(by_certificate);
            }
            Err(e) => return Err(e),
        };
        let mut live = self.checked_answer(identity, root, answer, now)?;
        let mut notes = vec![format!(
            "sector {} is under a foreign root recognised by trust list #{}: level {} and status {} from its own database, signed by its responder",
            identity.sector,
            list.list.sequence,
            live.level.get(),
            live.status.as_str()
        )];
        notes.extend(by_certificate.notes.into_iter().skip(1));
        notes.append(&mut live.notes);
        live.notes = notes;
        // Its own CRL, copied here, counts beside its database's word (the
        // notes name it).
        if by_certificate.status == TrustStatus::Revoked {
            live.status = TrustStatus::Revoked;
        }
        live.next_update = live
            .next_update
            .min(by_certificate.next_update)
            .min(list.list.next_update);
        Ok(live)
    }
}

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
        assertion: SignedTrustAssertion {
            body: Default::default(),
            signature: Default::default(),
            responder_chain: Default::default(),
        },
        next_update,
        notes,
    })
}

/// Where in a data directory the CRLs of foreign sector CAs are kept.
pub const FOREIGN_CRL_DIR: &str = "crl/foreign";
