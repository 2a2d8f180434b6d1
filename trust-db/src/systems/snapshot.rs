//! Systems in signed trust snapshots: the systems a snapshot covers, with
//! every member's live state, so an offline decision caps a member as
//! `Decide` does.

use trustca_model::SectorName;

use super::{SystemRegistry, system_view};
use crate::TrustDbError;
use crate::engine::TrustEngine;

impl SystemRegistry {
    /// The systems a snapshot covering `sectors` carries (those whose every
    /// member is of a covered sector), with the composition policy; every
    /// member's live state is added to `devices` if it is not there yet, so
    /// an offline decision knows every level the cap depends on. None when
    /// no system is covered (the snapshot then stays version 1). A damaged
    /// system fails the build (`DATA_LOSS`), as it fails `Decide`.
    pub(crate) fn snapshot_part(
        &self,
        engine: &TrustEngine,
        sectors: &[SectorName],
        devices: &mut Vec<trustca_model::DeviceState>,
    ) -> Result<Option<trustca_model::SnapshotSystems>, TrustDbError> {
        let index = self.index()?;
        if let Some(name) = index.damaged.keys().next() {
            index.get(name)?;
        }
        let policy = self.policy(engine)?;
        let mut listed: std::collections::HashSet<String> = devices
            .iter()
            .map(|d| d.identity.to_ascii_lowercase())
            .collect();
        let mut systems = Vec::new();
        for indexed in index.systems.values() {
            let s = &indexed.system;
            if !s.members().values().all(|m| sectors.contains(&m.sector)) {
                continue;
            }
            for (key, m) in s.members() {
                if listed.insert(m.urn.to_ascii_lowercase()) {
                    let r = self.storage.trust_record(key)?.ok_or_else(|| {
                        TrustDbError::NotFound(format!("{} is no longer enrolled", m.urn))
                    })?;
                    devices.push(trustca_model::DeviceState {
                        identity: m.urn.clone(),
                        level: trustca_model::TrustLevel::new(i64::from(r.level))?,
                        status: r.status,
                        record_version: r.version,
                    });
                }
            }
            let view = system_view(s);
            systems.push(trustca_model::SnapshotSystem {
                name: view.name,
                sector: s.sector().clone(),
                members: view.members,
                links: view
                    .links
                    .into_iter()
                    .map(|l| trustca_model::SnapshotLink {
                        from: l.from,
                        to: l.to,
                        operation: l.operation,
                    })
                    .collect(),
            });
        }
        if systems.is_empty() {
            return Ok(None);
        }
        Ok(Some(trustca_model::SnapshotSystems {
            composition_policy: trustca_model::EmbeddedPolicy {
                version: policy.version.clone(),
                text: policy.source().to_owned(),
            },
            systems,
        }))
    }
}
