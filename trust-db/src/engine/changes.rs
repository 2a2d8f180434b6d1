//! Operator changes to live trust: level, status, transfers, bulk
//! downgrades, history and policy reloads.

use super::*;

impl TrustEngine {
    fn operator_for(&self, caller: &Credential, sector: &SectorName) -> Result<(), TrustDbError> {
        if caller.kind != CertificateKind::Operator {
            return Err(TrustDbError::PermissionDenied(format!(
                "trust changes need an operator credential; the caller holds {} certificate",
                caller.kind.with_article()
            )));
        }
        if !caller.may_act_for(sector) {
            return Err(TrustDbError::PermissionDenied(format!(
                "operator {} is not authorized for sector {sector}",
                caller.name
            )));
        }
        Ok(())
    }

    fn local_identity(&self, urn: &str) -> Result<DeviceIdentity, TrustDbError> {
        let identity = DeviceIdentity::from_urn(urn)?;
        if !self.is_local(&identity.sector) {
            return Err(TrustDbError::FailedPrecondition(format!(
                "this database is not authoritative for sector {}; ask its own database",
                identity.sector
            )));
        }
        Ok(identity)
    }

    fn record(&self, identity: &DeviceIdentity) -> Result<TrustRecord, TrustDbError> {
        self.storage
            .trust_record(&identity.key())?
            .ok_or_else(|| TrustDbError::NotFound(format!("{} is not enrolled", identity.urn())))
    }

    /// Operator change of one device (set level, suspend, restore, retire,
    /// transfer). Durable and audited on return.
    pub fn change_trust(
        &self,
        caller: &Credential,
        req: msg::ChangeTrustRequest,
    ) -> Result<msg::TrustRecordView, TrustDbError> {
        use msg::change_trust_request::Change;
        let identity = self.local_identity(&req.identity)?;
        self.operator_for(caller, &identity.sector)?;
        check_reason(&req.reason)?;
        let record = self.record(&identity)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let who = actor(caller);
        let change =
            |level: Option<u8>, status: Option<TrustStatus>, what: DeviceChange, kind: &str| {
                TrustChange {
                    identity_key: identity.key(),
                    level,
                    status,
                    actor: who.clone(),
                    change: what,
                    reason: req.reason.clone(),
                    audit_kind: kind.to_owned(),
                }
            };
        let c = match req.change {
            None => return Err(TrustDbError::InvalidRequest("no change given".into())),
            Some(Change::SetLevel(level)) => {
                let device = self
                    .storage
                    .device(&identity.key())?
                    .ok_or_else(|| TrustDbError::NotFound(identity.urn()))?;
                if level.get() > device.certificate_level {
                    return Err(TrustDbError::FailedPrecondition(format!(
                        "Lv.{} is above the Lv.{} its evidence earned; raise it by re-enrolling with new evidence",
                        level.get(),
                        device.certificate_level
                    )));
                }
                if record.status == TrustStatus::Retired || record.status == TrustStatus::Revoked {
                    return Err(TrustDbError::FailedPrecondition(format!(
                        "device is {}",
                        record.status.as_str()
                    )));
                }
                change(
                    Some(level.get()),
                    None,
                    DeviceChange::LevelSet {
                        from: record.level,
                        to: level.get(),
                    },
                    "trust.level-changed",
                )
            }
            Some(Change::Suspend(_)) => {
                if record.status != TrustStatus::Active {
                    return Err(TrustDbError::FailedPrecondition(format!(
                        "only active devices are suspended; this one is {}",
                        record.status.as_str()
                    )));
                }
                change(
                    None,
                    Some(TrustStatus::Suspended),
                    DeviceChange::Suspended,
                    "trust.suspended",
                )
            }
            Some(Change::Restore(_)) => {
                if record.status != TrustStatus::Suspended {
                    return Err(TrustDbError::FailedPrecondition(format!(
                        "only suspended devices are restored; this one is {}",
                        record.status.as_str()
                    )));
                }
                change(
                    None,
                    Some(TrustStatus::Active),
                    DeviceChange::Restored,
                    "trust.restored",
                )
            }
            Some(Change::Retire(_)) => {
                if record.status == TrustStatus::Retired {
                    return Err(TrustDbError::FailedPrecondition("already retired".into()));
                }
                // Disposal: every certificate is revoked (cessation of
                // operation); the record is kept.
                let serials: Vec<Vec<u8>> = self
                    .storage
                    .device(&identity.key())?
                    .map(|d| {
                        d.certificates
                            .iter()
                            .filter_map(|h| trustca_model::hexfmt::decode(h))
                            .collect()
                    })
                    .unwrap_or_default();
                self.storage.revoke(&serials, 5, &who, &req.reason, now)?;
                self.after_revocation(&identity.sector);
                change(
                    None,
                    Some(TrustStatus::Retired),
                    DeviceChange::Retired,
                    "trust.retired",
                )
            }
            Some(Change::TransferTo(successor)) => {
                let to = self.local_identity(&successor)?;
                if to.sector != identity.sector {
                    return Err(TrustDbError::InvalidRequest(
                        "a successor must be of the same sector".into(),
                    ));
                }
                if to.key() == identity.key() {
                    return Err(TrustDbError::InvalidRequest(
                        "a device cannot succeed itself".into(),
                    ));
                }
                let r = self.storage.transfer_trust(
                    &identity.key(),
                    &to.key(),
                    &who,
                    &req.reason,
                    now,
                )?;
                tracing::info!(rpc = "ChangeTrust", operator = %caller.name, device = %identity, successor = %to, outcome = "transferred");
                return Ok(view(&to.urn(), &r));
            }
        };
        let mut out = self.storage.apply_trust_changes(&[c], now)?;
        let r = out
            .pop()
            .ok_or_else(|| TrustDbError::NotFound(identity.urn()))?;
        tracing::info!(rpc = "ChangeTrust", operator = %caller.name, device = %identity, level = r.level, status = r.status.as_str(), outcome = "changed");
        Ok(view(&identity.urn(), &r))
    }

    /// Lowers every matching device to at most `max_level`, atomically.
    pub fn bulk_downgrade(
        &self,
        caller: &Credential,
        req: &msg::BulkDowngradeRequest,
    ) -> Result<msg::BulkDowngradeResponse, TrustDbError> {
        let sector = SectorName::new(&req.sector)?;
        if !self.is_local(&sector) {
            return Err(TrustDbError::FailedPrecondition(format!(
                "not authoritative for sector {sector}"
            )));
        }
        self.operator_for(caller, &sector)?;
        check_reason(&req.reason)?;
        let max = req.max_level;
        if req.manufacturer.is_empty() || req.model.is_empty() {
            return Err(TrustDbError::InvalidRequest(
                "manufacturer and model are required".into(),
            ));
        }
        firmware::check_range(&req.firmware_min, &req.firmware_max)
            .map_err(TrustDbError::InvalidRequest)?;
        let prefix = format!("{}/{}/{}/", sector, req.manufacturer, req.model).to_ascii_lowercase();
        let who = actor(caller);
        let mut matched = 0u64;
        let mut changes = Vec::new();
        // A page of devices at a time: a model may have a million.
        for d in trustca_store::device_pages(self.storage.as_ref(), &prefix) {
            let d = d?;
            if !firmware::in_range(&d.firmware_version, &req.firmware_min, &req.firmware_max) {
                continue;
            }
            matched += 1;
            let Some(record) = self.storage.trust_record(&d.identity_key)? else {
                continue;
            };
            if record.level > max.get()
                && matches!(record.status, TrustStatus::Active | TrustStatus::Suspended)
            {
                changes.push(TrustChange {
                    identity_key: d.identity_key.clone(),
                    level: Some(max.get()),
                    status: None,
                    actor: who.clone(),
                    change: DeviceChange::BulkDowngrade {
                        from: record.level,
                        to: max.get(),
                        firmware: d.firmware_version.clone(),
                    },
                    reason: req.reason.clone(),
                    audit_kind: "trust.bulk-downgraded".into(),
                });
            }
        }
        let changed = changes.len() as u64;
        if !changes.is_empty() {
            self.storage
                .apply_trust_changes(&changes, OffsetDateTime::now_utc().unix_timestamp())?;
        }
        tracing::info!(rpc = "BulkDowngrade", operator = %caller.name, %sector, matched, changed, outcome = "applied");
        Ok(msg::BulkDowngradeResponse { matched, changed })
    }

    /// A device's record and history (operators and auditors of its sector).
    pub fn history(
        &self,
        caller: &Credential,
        urn: &str,
    ) -> Result<msg::GetHistoryResponse, TrustDbError> {
        let identity = self.local_identity(urn)?;
        if !matches!(
            caller.kind,
            CertificateKind::Operator | CertificateKind::Auditor
        ) || !caller.may_act_for(&identity.sector)
        {
            return Err(TrustDbError::PermissionDenied(format!(
                "history is for operators and auditors of sector {}",
                identity.sector
            )));
        }
        let record = self.record(&identity)?;
        let entries = self
            .storage
            .history(&identity.key())?
            .into_iter()
            .map(|h| msg::HistoryEntryView {
                version: h.version,
                at: h.at,
                actor: h.actor,
                change: h.change,
                reason: h.reason,
            })
            .collect();
        Ok(msg::GetHistoryResponse {
            record: Some(view(&identity.urn(), &record)),
            entries,
        })
    }

    /// Operator-triggered policy reload.
    pub fn reload_by(
        &self,
        caller: &Credential,
    ) -> Result<msg::ReloadPolicyResponse, TrustDbError> {
        if caller.kind != CertificateKind::Operator {
            return Err(TrustDbError::PermissionDenied(
                "policy reload needs an operator credential".into(),
            ));
        }
        let p = self.reload()?;
        Ok(msg::ReloadPolicyResponse {
            cooperation_version: p.cooperation_version.clone(),
            recognition_version: p.recognition_version.clone(),
        })
    }
}
