//! Systems in `Decide`: the cap a system puts on a peer, from the live
//! records of the members that can reach it (or the member's last
//! evaluation while the store's audit log has not grown), and the signed
//! version 2 assertion stating it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::msg;
use time::OffsetDateTime;
use trustca_composition::{CompositionPolicy, LiveLevel, System, evaluate};
use trustca_model::{
    SectorName, SignedTrustAssertion, SystemCapClaim, TrustAssertion, TrustStatus,
};

use super::{Evaluated, Indexed, MemberCap, SystemRegistry, Upstream, cap_view, poisoned};
use crate::TrustDbError;
use crate::engine::TrustEngine;

impl SystemRegistry {
    /// The lowest cap any system puts on the device `key`, from the live
    /// records of the members that can reach it; None when it is in no
    /// system or none lowers it.
    pub fn cap_for(
        &self,
        engine: &TrustEngine,
        key: &str,
    ) -> Result<Option<MemberCap>, TrustDbError> {
        let index = self.index()?;
        let Some(names) = index.by_member.get(key) else {
            return Ok(None);
        };
        let policy = self.policy(engine)?;
        // Read before any record, so that a change made while evaluating
        // leaves an entry that the next call will not trust.
        let audit_size = self.storage.audit_head()?.0;
        let mut lowest: Option<MemberCap> = None;
        for name in names {
            let Some(indexed) = index.get(name)? else {
                continue;
            };
            let Some((effective, cap)) =
                Self::member_cap(engine, indexed, key, &policy, audit_size)?
            else {
                continue;
            };
            if lowest.as_ref().is_none_or(|l| effective < l.effective) {
                lowest = Some(MemberCap {
                    system: name.clone(),
                    effective,
                    cap,
                });
            }
        }
        Ok(lowest)
    }

    /// Member `key`'s cap in one system: from its last evaluation while
    /// nothing it depends on changed, else evaluated anew from the live
    /// records of the members that can reach it.
    fn member_cap(
        engine: &TrustEngine,
        indexed: &Indexed,
        key: &str,
        policy: &Arc<CompositionPolicy>,
        audit_size: u64,
    ) -> Result<Option<(trustca_model::TrustLevel, trustca_composition::Cap)>, TrustDbError> {
        let part = {
            let mut cache = poisoned(indexed.upstream.lock());
            Arc::clone(cache.entry(key.to_owned()).or_insert_with(|| {
                let part = indexed.system.upstream_of(key, policy.max_hops);
                let mut sectors: Vec<SectorName> =
                    part.members().values().map(|m| m.sector.clone()).collect();
                sectors.sort();
                sectors.dedup();
                Arc::new(Upstream { part, sectors })
            }))
        };
        let Upstream { part, sectors } = &*part;
        let reusable = !sectors
            .iter()
            .any(|s| engine.sector_ca_revoked(s).is_some());
        if reusable
            && let Some(e) = poisoned(indexed.evaluated.lock()).get(key)
            && e.audit_size == audit_size
            && Arc::ptr_eq(&e.policy, policy)
        {
            return Ok(e.cap.clone());
        }
        let levels = live_levels(engine, part)?;
        let mut e = evaluate(part, &levels, policy)?;
        let cap = e
            .members
            .remove(key)
            .and_then(|m| m.cap.map(|c| (m.effective, c)));
        if reusable {
            poisoned(indexed.evaluated.lock()).insert(
                key.to_owned(),
                Evaluated {
                    audit_size,
                    policy: Arc::clone(policy),
                    cap: cap.clone(),
                },
            );
        }
        Ok(cap)
    }
}

/// The live level and status of every member of `system`: the trust
/// record, and `revoked` when the member's sector CA was revoked by the
/// root.
pub(super) fn live_levels(
    engine: &TrustEngine,
    system: &System,
) -> Result<BTreeMap<String, LiveLevel>, TrustDbError> {
    let mut levels = BTreeMap::new();
    for (key, member) in system.members() {
        let record = engine.storage().trust_record(key)?.ok_or_else(|| {
            TrustDbError::NotFound(format!(
                "{} of system {} is no longer enrolled",
                member.urn,
                system.name()
            ))
        })?;
        let mut status = record.status;
        if engine.sector_ca_revoked(&member.sector).is_some() {
            status = TrustStatus::Revoked;
        }
        levels.insert(
            key.clone(),
            LiveLevel {
                level: trustca_model::TrustLevel::new(i64::from(record.level))?,
                status,
            },
        );
    }
    Ok(levels)
}

/// What `Decide` adds for a capped peer: the cap and the signed version 2
/// assertion stating it.
#[derive(Debug)]
pub(crate) struct PeerSystemCap {
    /// The cap, for `Decision.peer_system_cap`.
    pub cap: msg::SystemCap,
    /// For `Decision.peer_system_assertion`.
    pub assertion: SignedTrustAssertion,
}

/// A signed cap assertion, reused while its record, claim and validity
/// are those of the peer's plain assertion.
#[derive(Debug)]
pub(super) struct SignedCap {
    version: u64,
    status: TrustStatus,
    claim: SystemCapClaim,
    next_update: OffsetDateTime,
    signed: SignedTrustAssertion,
}

/// Bound of the signed-cap cache (emptied when full, like the engine's),
/// in entries and in bytes (the responder chain they share counted once).
const MAX_SIGNED_CAPS: usize = 100_000;
const MAX_SIGNED_CAP_BYTES: usize = 32 << 20;

/// Reasons longer than this are cut (at a character boundary) in the
/// signed claim; the decision's reasons keep them whole.
const MAX_CLAIM_REASON: usize = 1024;

impl TrustEngine {
    /// Lowers a peer's state to its effective level when a system it
    /// belongs to caps it, adding the cap's reason to its notes; the cap
    /// and its signed assertion for the decision, or None. `key` is the
    /// peer's identity key, made once with its verified chain.
    pub(crate) fn apply_system_cap(
        &self,
        state: &mut crate::LiveState,
        key: Option<&str>,
    ) -> Result<Option<PeerSystemCap>, TrustDbError> {
        let (Some(systems), Some(key)) = (self.systems(), key) else {
            return Ok(None);
        };
        let Some(member) = systems.cap_for(self, key)? else {
            return Ok(None);
        };
        if member.effective >= state.level {
            return Ok(None);
        }
        let mut reason = member.cap.reason.clone();
        if reason.len() > MAX_CLAIM_REASON {
            let mut cut = MAX_CLAIM_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        let claim = SystemCapClaim {
            system: member.system.clone(),
            effective_level: member.effective,
            source: member.cap.source.clone(),
            reason,
        };
        let assertion = systems.signed_cap(self, state, claim)?;
        state.level = member.effective;
        state
            .notes
            .push(format!("system {}: {}", member.system, member.cap.reason));
        Ok(Some(PeerSystemCap {
            cap: cap_view(&member.system, member.effective.get(), &member.cap),
            assertion,
        }))
    }
}

impl SystemRegistry {
    /// The version 2 assertion of `state` with `claim`, signed by the
    /// engine's responder once per (record, claim, validity).
    fn signed_cap(
        &self,
        engine: &TrustEngine,
        state: &crate::LiveState,
        claim: SystemCapClaim,
    ) -> Result<SignedTrustAssertion, TrustDbError> {
        let key = state.identity.to_ascii_lowercase();
        if let Some(c) = poisoned(self.signed.lock()).get(&key)
            && c.version == state.version
            && c.status == state.status
            && c.next_update == state.next_update
            && c.claim == claim
        {
            return Ok(c.signed.clone());
        }
        let assertion = TrustAssertion {
            identity: state.identity.clone(),
            sector: state.sector.clone(),
            level: state.level,
            status: state.status,
            record_version: state.version,
            produced_at: OffsetDateTime::now_utc().min(state.next_update),
            next_update: state.next_update,
            system_cap: Some(claim.clone()),
        };
        let (signer, chain) = engine.responder();
        let signed = SignedTrustAssertion::sign(&assertion, signer, chain)?;
        let mut cache = poisoned(self.signed.lock());
        if cache.len()
            >= crate::engine::entries_within(&signed, MAX_SIGNED_CAPS, MAX_SIGNED_CAP_BYTES)
        {
            cache.clear();
        }
        cache.insert(
            key,
            SignedCap {
                version: state.version,
                status: state.status,
                claim,
                next_update: state.next_update,
                signed: signed.clone(),
            },
        );
        Ok(signed)
    }
}
