//! Deciding offline from a verified snapshot, as the online `Decide` would.

use super::*;

/// An offline decision: what `Decide` would have answered, and from which
/// snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineDecision {
    /// The decision; its reasons are assembled as the online engine does
    /// (standing of both sides, notes, then the policy's reasons).
    pub outcome: DecisionOutcome,
    /// The serial of the snapshot decided from.
    pub snapshot_serial: u64,
    /// `cooperation@<v>+recognition@<v>` of the embedded policies.
    pub policy_version: String,
    /// The peer's sector from its certificate ("" when the peer chain did
    /// not verify).
    pub peer_sector: String,
    /// The peer's identity URN ("" when not known).
    pub peer_identity: String,
    /// The snapshot was past its `next_update` at the time of decision
    /// (only possible when it was verified with `allow_stale`).
    pub stale: bool,
}

/// One side's live state, as the snapshot gives it.
struct OfflineState {
    identity: String,
    sector: SectorName,
    level: TrustLevel,
    status: TrustStatus,
    notes: Vec<String>,
}

/// The live state of the device a verified chain names: listed devices
/// as listed, others active at their certificate's level; a revoked
/// certificate or a blocked key makes it revoked, as online.
fn offline_state(snapshot: &TrustSnapshot, v: &VerifiedChain) -> Result<OfflineState, String> {
    let identity = v
        .identity
        .as_ref()
        .ok_or("certificate names no device (not a long-term device certificate)")?;
    if !snapshot.covers(&identity.sector) {
        return Err(match &snapshot.scope {
            Some(scope) if scope != &identity.sector => format!(
                "snapshot {} covers sector {scope} only, not {}",
                snapshot.serial, identity.sector
            ),
            _ => format!(
                "sector {} is not in snapshot {}",
                identity.sector, snapshot.serial
            ),
        });
    }
    let urn = identity.urn();
    let (identity_urn, level, mut status) = match snapshot.device(&urn) {
        Some(d) => (d.identity.clone(), d.level, d.status),
        None => {
            let level = v
                .extension
                .as_ref()
                .and_then(|e| e.level)
                .ok_or("certificate carries no trust level")?;
            (urn, level, TrustStatus::Active)
        }
    };
    let listed_revoked = status == TrustStatus::Revoked;
    let mut notes = Vec::new();
    if snapshot.is_certificate_revoked(&identity.sector, &v.serial) {
        status = TrustStatus::Revoked;
        notes.push("certificate revoked".to_owned());
    }
    // A key revoked for compromise counts in every certificate that
    // carries it, as online.
    if snapshot.is_key_blocked(&v.key_fingerprint) {
        status = TrustStatus::Revoked;
        notes.push("key was revoked for compromise".to_owned());
    }
    if listed_revoked {
        notes.push("device revoked".to_owned());
    }
    Ok(OfflineState {
        identity: identity_urn,
        sector: identity.sector.clone(),
        level,
        status,
        notes,
    })
}

fn sector_of(v: &VerifiedChain) -> String {
    v.extension
        .as_ref()
        .map(|e| e.sector.to_string())
        .unwrap_or_default()
}

/// The state of a peer under a foreign root the snapshot's trust list
/// recognises: active at its certificate's level, as online (no database
/// of that root is asked). None when the snapshot carries no list; `Err`
/// gives why the peer is refused and its sector when known.
fn foreign_state(
    snapshot: &TrustSnapshot,
    peer_chain: &[Vec<u8>],
    root_der: &[u8],
    now: OffsetDateTime,
    oid: &ExtensionOid,
) -> Option<Result<OfflineState, (String, String)>> {
    let list = snapshot.trust_list.as_deref()?;
    let peer = match crate::snapshot_trust_list::foreign_peer(list, peer_chain, root_der, now, oid)
    {
        Ok(p) => p,
        Err(why) => return Some(Err((why, String::new()))),
    };
    let Some(identity) = &peer.verified.identity else {
        return Some(Err((
            "certificate names no device (not a long-term device certificate)".into(),
            peer.sector.to_string(),
        )));
    };
    let revocation = match crate::trust_list::TrustList::foreign_revocation(
        &snapshot.foreign_crls,
        peer_chain.get(1).map(Vec::as_slice),
        &peer.verified.serial,
        now,
    ) {
        Ok(r) => r,
        Err(why) => return Some(Err((why, peer.sector.to_string()))),
    };
    Some(Ok(OfflineState {
        identity: identity.urn(),
        sector: peer.sector,
        level: peer.level,
        status: if revocation.revoked {
            TrustStatus::Revoked
        } else {
            TrustStatus::Active
        },
        notes: vec![peer.note, revocation.note],
    }))
}

/// Decides offline whether the device of `caller_chain` may cooperate
/// with the device of `peer_chain` for `operation`, exactly as the online
/// `Decide` does, from a verified snapshot. Both chains are verified to
/// `root_der` (through `sector_cas`) at `now`.
///
/// Errors, as online: an unknown operation, a caller chain that does not
/// verify or is not a long-term device certificate, embedded policies that
/// do not parse. Problems with either side's standing or the peer's chain
/// are a deny with reasons.
#[allow(clippy::too_many_arguments)]
pub fn decide_offline(
    snapshot: &TrustSnapshot,
    caller_chain: &[Vec<u8>],
    peer_chain: &[Vec<u8>],
    sector_cas: &[Vec<u8>],
    operation: &str,
    root_der: &[u8],
    now: OffsetDateTime,
    oid: &ExtensionOid,
) -> Result<OfflineDecision, ModelError> {
    let policy = snapshot.policy()?;
    decide_offline_with_policy(
        snapshot,
        &policy,
        caller_chain,
        peer_chain,
        sector_cas,
        operation,
        root_der,
        now,
        oid,
        None,
    )
}

/// What a system of linked devices does to a peer offline: given the
/// peer's URN, its effective level and the note explaining the cap, or
/// None. `trustca-composition` provides it from the snapshot's systems
/// (this crate cannot: it does not depend on the evaluation).
pub type PeerCap<'a> = dyn Fn(&str) -> Result<Option<(TrustLevel, String)>, ModelError> + 'a;

/// [`decide_offline`] with the snapshot's policy already parsed
/// ([`TrustSnapshot::policy`]), for callers deciding many times from one
/// snapshot, and with the peer's level capped by `cap` before the
/// decision, as the online `Decide` caps a member of a system of linked
/// devices (None: no systems).
#[allow(clippy::too_many_arguments)]
pub fn decide_offline_with_policy(
    snapshot: &TrustSnapshot,
    policy: &TrustPolicy,
    caller_chain: &[Vec<u8>],
    peer_chain: &[Vec<u8>],
    sector_cas: &[Vec<u8>],
    operation: &str,
    root_der: &[u8],
    now: OffsetDateTime,
    oid: &ExtensionOid,
    cap: Option<&PeerCap<'_>>,
) -> Result<OfflineDecision, ModelError> {
    if !policy.knows_operation(operation) {
        return Err(ModelError::UnknownOperation(crate::sector::truncate(
            operation,
        )));
    }
    let decision =
        |outcome: DecisionOutcome, peer_sector: String, peer_identity: String| OfflineDecision {
            outcome,
            snapshot_serial: snapshot.serial,
            policy_version: policy.version(),
            peer_sector,
            peer_identity,
            stale: now > snapshot.next_update,
        };
    let deny = |reasons: Vec<String>, peer_sector: String| {
        decision(
            DecisionOutcome {
                allow: false,
                depth: crate::CooperationDepth::none(),
                required_depth: None,
                caller_level: None,
                peer_level: None,
                rule: None,
                reasons,
            },
            peer_sector,
            String::new(),
        )
    };
    // Online the caller is authenticated by TLS before Decide runs, so a
    // bad caller certificate is an error there too, not a deny.
    let caller = crate::verify_chain(caller_chain, sector_cas, root_der, now, oid)
        .map_err(|e| ModelError::InvalidChain(format!("caller certificate: {e}")))?;
    match &caller.extension {
        Some(ext) if ext.kind == CertificateKind::LongTerm && caller.identity.is_some() => {}
        ext => {
            let held = ext
                .as_ref()
                .map_or_else(|| "no trustca".to_owned(), |e| e.kind.with_article());
            return Err(ModelError::InvalidCredential(format!(
                "Decide is asked by devices with their own certificate; the caller holds {held} certificate"
            )));
        }
    }
    let caller_state = match offline_state(snapshot, &caller) {
        Ok(s) => s,
        Err(e) => return Ok(deny(vec![format!("caller: {e}")], String::new())),
    };
    let mut peer_state = match crate::verify_chain(peer_chain, sector_cas, root_der, now, oid) {
        Ok(peer) => match offline_state(snapshot, &peer) {
            Ok(s) => s,
            Err(e) => return Ok(deny(vec![format!("peer: {e}")], sector_of(&peer))),
        },
        // Not under this root: a root the carried trust list names may
        // vouch for it, as online.
        Err(e) => match foreign_state(snapshot, peer_chain, root_der, now, oid) {
            Some(Ok(s)) => s,
            Some(Err((why, sector))) => {
                return Ok(deny(
                    vec![format!("peer certificate rejected: {e}; {why}")],
                    sector,
                ));
            }
            None => {
                return Ok(deny(
                    vec![format!("peer certificate rejected: {e}")],
                    String::new(),
                ));
            }
        },
    };
    let peer_sector = peer_state.sector.to_string();
    if let Some(cap) = cap
        && let Some((effective, note)) = cap(&peer_state.identity)?
        && effective < peer_state.level
    {
        peer_state.level = effective;
        peer_state.notes.push(note);
    }
    fn side(s: &OfflineState) -> Standing<'_> {
        Standing {
            sector: &s.sector,
            level: s.level,
            status: s.status,
            notes: &s.notes,
        }
    }
    let outcome = policy.decide_standing(side(&caller_state), side(&peer_state), operation)?;
    Ok(decision(outcome, peer_sector, peer_state.identity))
}
