//! Systems of linked devices offline: the cap that the systems carried in a
//! signed trust snapshot put on a peer, computed as the online `Decide`
//! computes it (the same scheme, the members' levels as the snapshot lists
//! them, the same note), so `trustca snapshot decide` gives the same answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use trustca_model::{DeviceIdentity, TrustLevel, TrustPolicy, TrustSnapshot};

use crate::{CompositionError, CompositionPolicy, Link, LiveLevel, System, SystemRecord, evaluate};

/// The composition policy a snapshot carries, checked against its trust
/// policy; None for a snapshot without systems.
pub fn snapshot_policy(
    snapshot: &TrustSnapshot,
    trust: Arc<TrustPolicy>,
) -> Result<Option<CompositionPolicy>, CompositionError> {
    let Some(systems) = &snapshot.systems else {
        return Ok(None);
    };
    let p = CompositionPolicy::parse(
        "composition.toml (in the snapshot)",
        &systems.composition_policy.text,
        trust,
    )?;
    if p.version != systems.composition_policy.version {
        return Err(CompositionError::InvalidPolicy {
            file: "composition.toml (in the snapshot)".into(),
            line: 0,
            reason: format!(
                "the text is version {:?} but the snapshot states {:?}",
                p.version, systems.composition_policy.version
            ),
        });
    }
    Ok(Some(p))
}

/// The lowest cap the snapshot's systems put on the device `urn`: its
/// effective level and the note `Decide` adds ("system NAME: REASON"), or
/// None when it is in no system or none lowers it.
pub fn snapshot_cap(
    snapshot: &TrustSnapshot,
    policy: &CompositionPolicy,
    urn: &str,
) -> Result<Option<(TrustLevel, String)>, CompositionError> {
    let Some(systems) = &snapshot.systems else {
        return Ok(None);
    };
    let key = DeviceIdentity::from_urn(urn)?.key();
    let mut lowest: Option<(TrustLevel, String)> = None;
    for s in &systems.systems {
        let key_of = |u: &str| DeviceIdentity::from_urn(u).map(|i| i.key());
        let mut members_key = Vec::with_capacity(s.members.len());
        for m in &s.members {
            members_key.push(key_of(m)?);
        }
        if !members_key.contains(&key) {
            continue;
        }
        let mut links = Vec::with_capacity(s.links.len());
        for l in &s.links {
            links.push(Link {
                from: key_of(&l.from)?,
                to: key_of(&l.to)?,
                operation: l.operation.clone(),
            });
        }
        let record = SystemRecord {
            name: s.name.clone(),
            sector: s.sector.to_string(),
            members: s.members.clone(),
            links,
            version: 0,
        };
        let part = System::from_record(&record, policy)?.upstream_of(&key, policy.max_hops);
        let mut levels = BTreeMap::new();
        for m in part.members().values() {
            let d = snapshot
                .device(&m.urn)
                .ok_or_else(|| CompositionError::MissingLevel(m.urn.clone()))?;
            levels.insert(
                m.key.clone(),
                LiveLevel {
                    level: d.level,
                    status: d.status,
                },
            );
        }
        let e = evaluate(&part, &levels, policy)?;
        if let Some(member) = e.members.get(&key)
            && let Some(cap) = &member.cap
            && lowest.as_ref().is_none_or(|(l, _)| member.effective < *l)
        {
            lowest = Some((
                member.effective,
                format!("system {}: {}", s.name, cap.reason),
            ));
        }
    }
    Ok(lowest)
}
