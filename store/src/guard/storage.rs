//! The `Storage` trait over the guard: each write admitted (or refused at
//! once while the store cannot write) and its outcome observed, each read
//! passed to the backend in force.

use super::*;

impl Storage for GuardedStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        let storage = match self.admit_write().and_then(|()| self.inner()) {
            Ok(s) => s,
            Err(e) => return batch.iter().map(|_| Err(e.repeat())).collect(),
        };
        let results = match engine_call(|| Ok(storage.commit_issuances(batch))) {
            Ok(results) => results,
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        };
        drop(storage);
        // A group that met a damaged record (or a contained engine panic)
        // is noted as damage, like a read.
        if let Some(Err(e)) = results
            .iter()
            .find(|r| matches!(r, Err(StoreError::Corrupt { .. })))
        {
            let _ = self.observe_read::<()>(Err(e.repeat()));
        }
        match results
            .iter()
            .find(|r| matches!(r, Err(StoreError::Unavailable(_))))
        {
            Some(unreachable) => self.observe_reach(unreachable, true),
            None => self.observe_reach(&Ok::<(), StoreError>(()), true),
        }
        if let Some(Err(StoreError::Full(reason))) = results
            .iter()
            .find(|r| matches!(r, Err(StoreError::Full(_))))
        {
            self.write_failed(reason);
        }
        results
    }
    fn flush(&self) -> Result<(), StoreError> {
        // Everything committed before the flush starts is durable after
        // it: that many entries is what the store must hold from now on.
        let high_water = high_water_path(&self.recovery_kind);
        self.admit_write()?;
        let size = high_water
            .as_ref()
            .and_then(|_| self.audit_head().ok().map(|(size, _)| size));
        write!(self.flush())?;
        if let (Some(path), Some(size)) = (high_water, size) {
            record_high_water(&path, size);
        }
        Ok(())
    }
    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        read!(self.device(identity_key))
    }
    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        read!(self.trust_record(identity_key))
    }
    fn change_marker(&self) -> Option<u64> {
        self.inner().ok().and_then(|s| s.change_marker())
    }
    fn set_record_seal(&self, seal: Arc<crate::RecordSeal>) {
        if let Ok(inner) = self.inner() {
            inner.set_record_seal(Arc::clone(&seal));
        }
        let _ = self.seal.set(seal);
    }
    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        read!(self.history(identity_key))
    }
    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        read!(self.certificate(serial))
    }
    fn counts(&self) -> Result<(u64, u64), StoreError> {
        read!(self.counts())
    }
    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        read!(self.audit_entries(from, limit))
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        read!(self.size_on_disk())
    }
    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        read!(self.serial_by_fingerprint(fingerprint))
    }
    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        write!(self.apply_trust_changes(changes, at))
    }
    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        write!(self.transfer_trust(from, to, actor, reason, at))
    }
    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        read!(self.devices_with_prefix(prefix))
    }
    fn devices_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        read!(self.devices_page(prefix, after, limit))
    }
    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        read!(self.audit_entries_raw(from, limit))
    }
    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        read!(self.audit_head())
    }
    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        write!(self.store_tree_head(size, signed_head))
    }
    fn tree_heads(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        read!(self.tree_heads())
    }
    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        write!(self.revoke(serials, reason, actor, note, at))
    }
    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        read!(self.blocked_key(key_fingerprint))
    }
    fn revoked_in_sector(&self, sector: &str) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        read!(self.revoked_in_sector(sector))
    }
    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        write!(self.next_crl_number(sector))
    }
    fn blob_put(
        &self,
        space: &str,
        records: &[KeyValue],
        create_only: bool,
        audit: Option<&BlobAudit>,
    ) -> Result<(), StoreError> {
        write!(self.blob_put(space, records, create_only, audit))
    }
    fn commit_model_change(
        &self,
        space: &str,
        records: &[KeyValue],
        audit: &BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        write!(self.commit_model_change(space, records, audit, changes))
    }
    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        read!(self.blob_get(space, key))
    }
    fn blob_scan(&self, space: &str, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        read!(self.blob_scan(space, prefix))
    }
    fn hold_lease(&self, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, StoreError> {
        // A store that cannot write holds no lease: scheduled writers
        // (tree heads, CRLs) pause with the other writes.
        write!(self.hold_lease(name, holder, ttl_secs))
    }
    fn challenge_put(
        &self,
        id: &[u8],
        record: &[u8],
        expires_at: i64,
        now: i64,
        max_open: usize,
    ) -> Result<bool, StoreError> {
        write!(self.challenge_put(id, record, expires_at, now, max_open))
    }
    fn challenge_take(&self, id: &[u8]) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        write!(self.challenge_take(id))
    }
    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        read!(self.export(each))
    }
    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        write!(self.import(records))
    }
    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        write!(self.seal_legacy_records(entry, records))
    }
    fn raw_records(
        &self,
        table: crate::RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        read!(self.raw_records(table, after, limit))
    }
    fn damaged_records(&self) -> usize {
        self.damaged.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
    fn write_health(&self) -> WriteHealth {
        let due = matches!(&*self.lock_state(), State::Refusing { next_probe, .. } if Instant::now() >= *next_probe);
        if due {
            self.probe();
        }
        let was_unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some();
        if was_unreachable {
            // Nothing else may ask the store meanwhile: look once (the
            // audit head is never cached).
            let looked = self.inner().and_then(|s| s.audit_head());
            self.observe_reach(&looked, true);
        }
        let unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match &*self.lock_state() {
            State::Writable => match unreachable {
                Some(why) => WriteHealth::Refusing(format!("unreachable: {why}")),
                None => WriteHealth::Writable,
            },
            State::ReadOnly(reason) => WriteHealth::Refusing(format!("read-only: {reason}")),
            State::Refusing { error, .. } => WriteHealth::Refusing(error.clone()),
        }
    }
}
