//! Change notifications for systems of linked devices: effective levels
//! are computed live (nothing to rewrite when a member changes), so a
//! change anywhere is noticed by following the audit log, which every
//! change to a trust record, certificate, model or system appends to in
//! its own transaction. [`SystemWatch::step`] reads the entries since the
//! last step, re-evaluates the systems whose members (or whose own records)
//! they name, and returns one notification per system whose combined or
//! effective levels moved, with the entries that caused it.

use std::collections::BTreeMap;

use serde_json::json;
use trustca_composition::Evaluation;
use trustca_model::DeviceIdentity;

use super::SystemRegistry;
use crate::TrustDbError;
use crate::engine::TrustEngine;

/// Audit entries one step reads at most (the rest wait for the next step).
pub const STEP_ENTRIES: usize = 5_000;

/// What a notification compares: the combined level and each member's
/// effective level by URN.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Levels {
    combined: Option<u8>,
    effective: BTreeMap<String, u8>,
}

impl Levels {
    fn of(e: &Evaluation) -> Self {
        Self {
            combined: e.combined.as_ref().map(|c| c.level.get()),
            effective: e
                .members
                .values()
                .map(|m| (m.urn.clone(), m.effective.get()))
                .collect(),
        }
    }
}

/// Steps a system that could not be evaluated is tried again in (a new
/// system's entry can be read before this process's index holds it).
const RETRIES: u8 = 5;

/// Follows the audit log and notices systems whose levels moved.
#[derive(Debug)]
pub struct SystemWatch {
    next_seq: u64,
    known: BTreeMap<String, Levels>,
    /// Systems whose evaluation failed: their causes and the tries left.
    pending: BTreeMap<String, (Vec<serde_json::Value>, u8)>,
}

/// The identity key an audit subject names: a device URN's, else the
/// subject itself (trust entries name the identity key).
fn subject_key(subject: &str) -> String {
    match DeviceIdentity::from_urn(subject) {
        Ok(identity) => identity.key(),
        Err(_) => subject.to_ascii_lowercase(),
    }
}

impl SystemWatch {
    /// Starts at the end of the log, with every system's levels now.
    pub fn start(registry: &SystemRegistry, engine: &TrustEngine) -> Result<Self, TrustDbError> {
        let next_seq = engine.storage().audit_head()?.0;
        let mut known = BTreeMap::new();
        for name in registry.names()? {
            if let Ok(e) = registry.evaluate_unchecked(engine, &name) {
                known.insert(name, Levels::of(&e));
            }
        }
        Ok(Self {
            next_seq,
            known,
            pending: BTreeMap::new(),
        })
    }

    /// Reads the entries appended since the last step and returns the
    /// notifications (JSON) of the systems whose levels they moved.
    pub fn step(
        &mut self,
        registry: &SystemRegistry,
        engine: &TrustEngine,
    ) -> Result<Vec<serde_json::Value>, TrustDbError> {
        let entries = engine
            .storage()
            .audit_entries(self.next_seq, STEP_ENTRIES)?;
        if let Some(last) = entries.last() {
            self.next_seq = last.seq + 1;
        } else if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = entries.iter().map(|e| subject_key(&e.subject)).collect();
        let mut touched = registry.systems_of(&keys)?;
        let mut causes: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for e in &entries {
            if e.kind.starts_with("system.") {
                touched.insert(e.subject.clone());
            }
        }
        for (name, (earlier, _)) in &self.pending {
            touched.insert(name.clone());
            causes
                .entry(name.clone())
                .or_default()
                .extend(earlier.iter().cloned());
        }
        for name in &touched {
            let members = registry.member_keys(name)?;
            let list = causes.entry(name.clone()).or_default();
            for e in &entries {
                let key = subject_key(&e.subject);
                if (e.kind.starts_with("system.") && e.subject == *name) || members.contains(&key) {
                    list.push(
                        json!({"seq": e.seq, "kind": e.kind, "subject": e.subject, "at": e.at}),
                    );
                }
            }
        }
        let mut out = Vec::new();
        for name in touched {
            let evaluation = match registry.evaluate_unchecked(engine, &name) {
                Ok(e) => {
                    self.pending.remove(&name);
                    e
                }
                Err(e) => {
                    let left = self.pending.get(&name).map_or(RETRIES, |(_, n)| *n);
                    if left <= 1 {
                        self.pending.remove(&name);
                        tracing::warn!(system = %name, error = %e, "system re-evaluation after a change failed; not notified");
                    } else {
                        let why = causes.remove(&name).unwrap_or_default();
                        self.pending.insert(name.clone(), (why, left - 1));
                    }
                    continue;
                }
            };
            let now = Levels::of(&evaluation);
            let before = self.known.insert(name.clone(), now.clone());
            if before.as_ref() == Some(&now) {
                continue;
            }
            out.push(notification(
                &evaluation,
                before.as_ref(),
                &now,
                causes.remove(&name).unwrap_or_default(),
            ));
        }
        Ok(out)
    }
}

fn notification(
    e: &Evaluation,
    before: Option<&Levels>,
    now: &Levels,
    causes: Vec<serde_json::Value>,
) -> serde_json::Value {
    let members: Vec<serde_json::Value> = e
        .members
        .values()
        .filter(|m| before.and_then(|b| b.effective.get(&m.urn)) != Some(&m.effective.get()))
        .map(|m| {
            json!({
                "identity": m.urn,
                "own_level": m.own_level.get(),
                "status": m.status.as_str(),
                "effective_before": before.and_then(|b| b.effective.get(&m.urn)),
                "effective_level": m.effective.get(),
                "cap_source": m.cap.as_ref().map(|c| c.source.clone()),
                "cap_reason": m.cap.as_ref().map(|c| c.reason.clone()),
            })
        })
        .collect();
    json!({
        "event": "system.reevaluated",
        "system": e.system,
        "system_version": e.system_version,
        "combined_before": before.and_then(|b| b.combined),
        "combined_level": now.combined,
        "members_changed": members,
        "caused_by": causes,
        "at": time::OffsetDateTime::now_utc().unix_timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_identity_keys() {
        assert_eq!(
            subject_key("urn:trustca:hems:Acme:hub:SN-1"),
            "hems/acme/hub/sn-1"
        );
        assert_eq!(subject_key("hems/acme/hub/sn-1"), "hems/acme/hub/sn-1");
    }
}
