//! How a model change reaches its fleet: the trust changes that bring every
//! enrolled device of the model and firmware range in line with the
//! record, and the one transaction that writes the record and moves them.

use super::*;

impl ModelRegistry {
    /// The trust changes that bring every enrolled device of `record`'s
    /// model and range in line with it.
    pub(super) fn fleet_changes(
        &self,
        record: &ModelRecord,
        who: &str,
        reason: &str,
    ) -> Result<(u64, Vec<TrustChange>), TrustDbError> {
        let model_level = TrustLevel::new(record.level as i64)?;
        let suspended = record.status == ModelStatus::Suspended;
        let mut matched = 0;
        let mut changes = Vec::new();
        // A page of devices at a time: a model may have a million.
        let prefix = record.key.device_prefix();
        for d in trustca_store::device_pages(self.storage.as_ref(), &prefix) {
            let d = d?;
            if !record.key.firmware.contains(&d.firmware_version) {
                continue;
            }
            matched += 1;
            let Some(trust) = self.storage.trust_record(&d.identity_key)? else {
                continue;
            };
            if matches!(trust.status, TrustStatus::Revoked | TrustStatus::Retired) {
                continue;
            }
            let certificate_level =
                TrustLevel::new(d.certificate_level as i64).unwrap_or(TrustLevel::MIN);
            let target = device_level(model_level, certificate_level).get();
            let mut history = None;
            let mut history_of = || -> Result<Vec<DeviceChange>, TrustDbError> {
                if history.is_none() {
                    history = Some(
                        self.storage
                            .history(&d.identity_key)?
                            .into_iter()
                            .map(|h| h.change)
                            .collect::<Vec<_>>(),
                    );
                }
                Ok(history.clone().unwrap_or_default())
            };
            // Lower at once; raise only what the registry itself lowered
            // (an operator's lowering stands until the operator lifts it).
            let level = if target < trust.level
                || (target > trust.level && last_level_set_by_registry(&history_of()?))
            {
                Some(target)
            } else {
                None
            };
            let status = if suspended && trust.status == TrustStatus::Active {
                Some(TrustStatus::Suspended)
            } else if !suspended
                && trust.status == TrustStatus::Suspended
                && history_of()?
                    .last()
                    .is_some_and(DeviceChange::model_suspension)
            {
                Some(TrustStatus::Active)
            } else {
                None
            };
            if level.is_none() && status.is_none() {
                continue;
            }
            let event = match status {
                Some(TrustStatus::Suspended) => FleetEvent::Suspended,
                Some(_) => FleetEvent::Reinstated,
                None => FleetEvent::Level,
            };
            changes.push(TrustChange {
                identity_key: d.identity_key.clone(),
                level,
                status,
                actor: who.to_owned(),
                // Only a level change names the levels, so the history
                // tells who set the level last (`last_level_set_by_registry`).
                change: DeviceChange::ModelMoved {
                    event,
                    model: record.key.to_string(),
                    levels: level.map(|l| (trust.level, l)),
                    model_status: record.status,
                    model_version: record.version,
                },
                reason: reason.to_owned(),
                audit_kind: "trust.model-changed".to_owned(),
            });
        }
        Ok((matched, changes))
    }

    /// Stores the record with its history entry and moves its fleet, in
    /// one transaction; then sweeps once more for devices enrolled while
    /// the change was being prepared.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn commit(
        &self,
        mut record: ModelRecord,
        assessment: Assessment,
        who: &str,
        audit_kind: &str,
        text: ModelChange,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<msg::ModelChangeResponse, TrustDbError> {
        let at = now.unix_timestamp();
        let who = who.to_owned();
        let before = (record.level, record.status);
        record.record_change(&assessment, at, &who, text.clone(), reason);
        let (matched, changes) = self.fleet_changes(&record, &who, reason)?;
        let detail = format!(
            "{{\"change\":{},\"reason\":{},\"level\":{},\"status\":\"{}\",\"version\":{},\"previous_level\":{},\"previous_status\":\"{}\",\"devices_changed\":{}}}",
            json_str(&text.to_string()),
            json_str(reason),
            record.level,
            record.status.as_str(),
            record.version,
            before.0,
            before.1.as_str(),
            changes.len()
        );
        let audit = BlobAudit {
            actor: who.clone(),
            kind: audit_kind.to_owned(),
            subject: record.key.store_key(),
            detail,
            at,
        };
        let mut changed = changes.len() as u64;
        self.storage.commit_model_change(
            MODEL_SPACE,
            &[(record.key.store_key().into_bytes(), record.to_bytes())],
            &audit,
            &changes,
        )?;
        let (_, stragglers) = self.fleet_changes(&record, &who, reason)?;
        if !stragglers.is_empty() {
            changed += stragglers.len() as u64;
            self.storage.apply_trust_changes(&stragglers, at)?;
        }
        tracing::info!(
            rpc = "ModelRegistry",
            caller = %who,
            model = %record.key,
            event = audit_kind,
            level = record.level,
            status = record.status.as_str(),
            devices_matched = matched,
            devices_changed = changed,
            "model registry change"
        );
        Ok(msg::ModelChangeResponse {
            model: Some(model_view(&record)),
            devices_matched: matched,
            devices_changed: changed,
        })
    }
}
