//! Repairing a damaged system: an operator removes the links that broke
//! it (see the parent module's documentation).

use crate::msg;
use serde_json::json;
use trustca_composition::{CompositionError, Link};
use trustca_model::{Credential, DeviceIdentity};

use super::{GENERATION, REMOVED, SystemRegistry, describe, header_key, link_key, operator_of};
use crate::TrustDbError;

impl SystemRegistry {
    /// The way out of a damaged system (see the module's documentation):
    /// an operator of both ends' sectors removes links from it as stored,
    /// without the checks a damaged system cannot pass, and the index is
    /// read again. None when the system is not damaged.
    pub(super) fn unlink_damaged(
        &self,
        caller: &Credential,
        req: &msg::LinkRequest,
        links: &[(DeviceIdentity, DeviceIdentity, Link)],
    ) -> Result<Option<msg::SystemView>, TrustDbError> {
        let index = self.index()?;
        let Some((_, record)) = index.damaged.get(&req.system) else {
            return Ok(None);
        };
        let version = record.version + 1;
        let mut records = vec![
            (
                GENERATION.to_vec(),
                Self::fresh_generation().to_be_bytes().to_vec(),
            ),
            (
                header_key(&record.name),
                json!({"sector": record.sector, "version": version})
                    .to_string()
                    .into_bytes(),
            ),
        ];
        for (from, to, link) in links {
            operator_of(caller, &from.sector, "repairing a damaged system")?;
            operator_of(caller, &to.sector, "repairing a damaged system")?;
            if !record.links.contains(link) {
                return Err(CompositionError::NoSuchLink {
                    system: record.name.clone(),
                    link: link.to_string(),
                }
                .into());
            }
            records.push((link_key(&record.name, link), REMOVED.to_vec()));
        }
        let detail = json!({"links": describe(links), "reason": req.reason, "repair": true});
        self.commit(&records, caller, "system.unlinked", &record.name, &detail)?;
        tracing::warn!(rpc = "Systems/Unlink", caller = %caller.name, system = %record.name, links = links.len(), outcome = "unlinked from a damaged system");
        self.reload()?;
        let urn = |key: &str| {
            record
                .members
                .iter()
                .find(|u| DeviceIdentity::from_urn(u).is_ok_and(|i| i.key() == key))
                .cloned()
                .unwrap_or_else(|| key.to_owned())
        };
        Ok(Some(msg::SystemView {
            name: record.name.clone(),
            sector: record.sector.clone(),
            version,
            members: record.members.clone(),
            links: record
                .links
                .iter()
                .filter(|l| !links.iter().any(|(_, _, gone)| gone == *l))
                .map(|l| msg::SystemLink {
                    from: urn(&l.from),
                    to: urn(&l.to),
                    operation: l.operation.clone(),
                })
                .collect(),
        }))
    }
}
