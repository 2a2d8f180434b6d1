//! Systems listed for people (the web console) and watched for changes:
//! the evaluations of the systems an operator's or auditor's sectors touch,
//! a page at a time, and the systems a set of devices belongs to, for
//! re-evaluation after a change.

use std::collections::BTreeSet;

use trustca_composition::{Evaluation, System, evaluate};
use trustca_model::{DeviceIdentity, SectorName};

use super::{SystemRegistry, decide::live_levels};
use crate::TrustDbError;
use crate::engine::TrustEngine;

/// One listed system: its live evaluation, or its name and why it cannot
/// be evaluated (a damaged system, a member no longer enrolled).
pub type ListedSystem = Result<Evaluation, (String, String)>;

/// Whether `sectors` touch a system of `sector` with members `urns`.
fn touches<'a>(
    sectors: &[SectorName],
    sector: &str,
    mut member_sectors: impl Iterator<Item = &'a str>,
) -> bool {
    sectors.iter().any(|s| s.as_str() == sector)
        || member_sectors.any(|m| sectors.iter().any(|s| s.as_str() == m))
}

impl SystemRegistry {
    /// The systems of `sectors` (their own sector or a member's), in name
    /// order: `take` of them after skipping `skip`, each evaluated from the
    /// live records now, and whether more follow.
    pub fn list_evaluations(
        &self,
        engine: &TrustEngine,
        sectors: &[SectorName],
        skip: usize,
        take: usize,
    ) -> Result<(Vec<ListedSystem>, bool), TrustDbError> {
        let index = self.index()?;
        let policy = self.policy(engine)?;
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for (name, s) in &index.systems {
            let members = s.system.members().values().map(|m| m.sector.as_str());
            if touches(sectors, s.system.sector().as_str(), members) {
                names.insert(name);
            }
        }
        for (name, (_, record)) in &index.damaged {
            let members: Vec<String> = record
                .members
                .iter()
                .filter_map(|u| DeviceIdentity::from_urn(u).ok())
                .map(|i| i.sector.as_str().to_owned())
                .collect();
            if touches(sectors, &record.sector, members.iter().map(String::as_str)) {
                names.insert(name);
            }
        }
        let more = names.len() > skip.saturating_add(take);
        let mut rows = Vec::new();
        for name in names.into_iter().skip(skip).take(take) {
            let row = match index.get(name) {
                Ok(Some(indexed)) => Self::evaluate_now(engine, &indexed.system, &policy)
                    .map_err(|e| (name.to_owned(), e.to_string())),
                Ok(None) => continue,
                Err(e) => Err((name.to_owned(), e.to_string())),
            };
            rows.push(row);
        }
        Ok((rows, more))
    }

    fn evaluate_now(
        engine: &TrustEngine,
        system: &System,
        policy: &trustca_composition::CompositionPolicy,
    ) -> Result<Evaluation, TrustDbError> {
        let levels = live_levels(engine, system)?;
        Ok(evaluate(system, &levels, policy)?)
    }

    /// The names of the systems any of the devices `keys` (identity keys)
    /// is a member of.
    pub fn systems_of(&self, keys: &[String]) -> Result<BTreeSet<String>, TrustDbError> {
        let index = self.index()?;
        Ok(keys
            .iter()
            .filter_map(|k| index.by_member.get(k))
            .flatten()
            .cloned()
            .collect())
    }

    /// Every usable system's name.
    pub fn names(&self) -> Result<Vec<String>, TrustDbError> {
        Ok(self.index()?.systems.keys().cloned().collect())
    }

    /// The identity keys of system `name`'s members (none for an unknown
    /// or damaged system).
    pub fn member_keys(&self, name: &str) -> Result<BTreeSet<String>, TrustDbError> {
        let index = self.index()?;
        Ok(match index.systems.get(name) {
            Some(s) => s.system.members().keys().cloned().collect(),
            None => BTreeSet::new(),
        })
    }

    /// The live evaluation of system `name` without a caller check (for
    /// the server's own watchers; `evaluate` is the one for callers).
    pub fn evaluate_unchecked(
        &self,
        engine: &TrustEngine,
        name: &str,
    ) -> Result<Evaluation, TrustDbError> {
        let indexed = self.system(name)?;
        let policy = self.policy(engine)?;
        Self::evaluate_now(engine, &indexed.system, &policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_is_touched_by_its_own_or_a_members_sector() {
        let hems = [SectorName::new("hems").unwrap_or_else(|_| unreachable!())];
        assert!(touches(&hems, "hems", std::iter::empty()));
        assert!(touches(
            &hems,
            "automotive",
            ["automotive", "hems"].into_iter()
        ));
        assert!(!touches(&hems, "automotive", ["automotive"].into_iter()));
    }
}
