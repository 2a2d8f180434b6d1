//! The `Storage` trait over sled: writes run the rules in one sled
//! transaction across the trees, reads go to the trees directly.

use std::ops::Bound;

use super::staged::Staging;
use super::*;
use crate::embedded::{OrderedTables, Records, Table};

impl Storage for SledStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        // The rules run outside sled's lock first (`staged.rs`); the
        // transaction writes their result unless what they read changed.
        let staging = Staging::new(self);
        if let Ok(results) = rules::issue_group(&SledTxn::new(&staging, self.record_seal()), batch)
        {
            match self.write_view(|view| staging.apply(view)) {
                Ok(true) => return results,
                Ok(false) => {}
                Err(e) => return batch.iter().map(|_| Err(e.repeat())).collect(),
            }
        }
        // Changed since, or the staging failed: the rules inside the
        // transaction decide, and give a failure its own words.
        match self.write(|t| rules::issue_group(t, batch)) {
            Ok(r) => r,
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(sled_error)?;
        Ok(())
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.get_sealed(&self.devices, Sealed::Device, identity_key.as_bytes())
    }

    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.get_sealed(&self.trust, Sealed::Trust, identity_key.as_bytes())
    }

    fn set_record_seal(&self, seal: Arc<RecordSeal>) {
        let _ = self.seal.set(seal);
        // Reads are checked from now on: nothing read before counts.
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn change_marker(&self) -> Option<u64> {
        Some(self.changes.load(std::sync::atomic::Ordering::Acquire))
    }

    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut prefix = identity_key.as_bytes().to_vec();
        prefix.push(0);
        self.history
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                decode(&k, &v)
            })
            .collect()
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.get_sealed(&self.certs, Sealed::Certificate, serial)
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((self.counter(COUNT_CERTS)?, self.counter(COUNT_DEVICES)?))
    }

    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                decode(&k, &v)
            })
            .collect()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(sled_error)
    }

    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .fingerprints
            .get(fingerprint)
            .map_err(sled_error)?
            .map(|v| v.to_vec()))
    }

    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write_durably(|t| rules::apply_trust_changes(t, changes, at))
    }

    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        self.write_durably(|t| rules::transfer_trust(t, from, to, actor, reason, at))
    }

    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        embedded::numbered_page(self, Table::Audit, from, limit)
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let stored = self.meta.get(AUDIT_FRONTIER).map_err(sled_error)?;
        let frontier = embedded::frontier(stored.as_deref())?;
        Ok((frontier.size(), frontier.root()))
    }

    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.heads
            .insert(size.to_be_bytes(), signed_head)
            .map_err(sled_error)?;
        self.heads.flush().map_err(sled_error)?;
        Ok(())
    }

    fn tree_heads_page(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        embedded::numbered_page(self, Table::TreeHeads, from, limit)
    }

    fn latest_tree_heads(&self, n: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.heads
            .iter()
            .values()
            .rev()
            .take(n)
            .map(|v| Ok(v.map_err(sled_error)?.to_vec()))
            .collect()
    }

    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.write_durably(|t| rules::revoke(t, serials, reason, actor, note, at))
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        vouched::vouch_blocked(
            self.seal.get().map(|s| &**s),
            key_fingerprint,
            Self::get(&self.blocked_keys, key_fingerprint)?,
        )
    }

    fn revoked_page(
        &self,
        sector: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        let stored = embedded::revoked_page(self, sector, after, limit)?;
        let seal = self.seal.get().map(|s| &**s);
        vouched::vouch_revoked_page(seal, self, sector, (after, limit), &stored)?;
        Ok(stored)
    }

    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        let key = crl_number_key(sector);
        let next = self
            .meta
            .update_and_fetch(key.as_bytes(), |old| {
                let n = old
                    .and_then(|v| v.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(sled_error)?;
        self.meta.flush().map_err(sled_error)?;
        Ok(next
            .and_then(|v| v.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    fn blob_put(
        &self,
        space: &str,
        records: &[crate::KeyValue],
        create_only: bool,
        audit: Option<&crate::BlobAudit>,
    ) -> Result<(), StoreError> {
        self.write_durably(|t| rules::put_blobs(t, space, records, create_only, audit))
    }

    fn commit_model_change(
        &self,
        space: &str,
        records: &[crate::KeyValue],
        audit: &crate::BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write_durably(|t| rules::commit_model_change(t, space, records, audit, changes))
    }

    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .blobs
            .get(blob_key(space, key))
            .map_err(sled_error)?
            .map(|v| seal::open_blob(self.seal.get().map(|s| &**s), space, key, v.to_vec()))
            .transpose()?;
        vouched::vouch_blob(self.seal.get().map(|s| &**s), self, space, key, value)
    }

    fn blob_scan_page(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<crate::KeyValue>, StoreError> {
        let stored = embedded::blob_page(self, space, prefix, after, limit)?;
        let seal = self.seal.get().map(|s| &**s);
        vouched::vouch_blob_page(seal, self, space, (prefix, after, limit), &stored)?;
        Ok(stored)
    }

    fn challenge_put(
        &self,
        id: &[u8],
        record: &[u8],
        expires_at: i64,
        now: i64,
        max_open: usize,
    ) -> Result<bool, StoreError> {
        let _one_at_a_time = self
            .challenge_lock
            .lock()
            .map_err(|_| StoreError::Backend("the challenge lock is poisoned".into()))?;
        if self.challenges.len() >= max_open {
            for kv in self.challenges.iter() {
                let (k, v) = kv.map_err(sled_error)?;
                if embedded::challenge_expiry(&v).is_none_or(|at| at <= now) {
                    self.challenges.remove(k).map_err(sled_error)?;
                }
            }
            if self.challenges.len() >= max_open {
                return Ok(false);
            }
        }
        let mut value = expires_at.to_be_bytes().to_vec();
        value.extend_from_slice(record);
        self.challenges.insert(id, value).map_err(sled_error)?;
        self.db.flush().map_err(sled_error)?;
        Ok(true)
    }

    fn challenge_take(&self, id: &[u8]) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        // One atomic remove: of concurrent takes, one gets the value. It
        // is made durable by the next flush, at the latest the one that
        // commits the enrollment answering it.
        let taken = self.challenges.remove(id).map_err(sled_error)?;
        taken.map(|v| embedded::challenge_record(&v)).transpose()
    }

    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        embedded::export(self, self.counts()?, each)
    }

    fn raw_records(
        &self,
        table: crate::RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<crate::KeyValue>, StoreError> {
        embedded::raw_page(self, table, after, limit)
    }

    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        self.write_durably(|t| rules::import(t, records))
    }

    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        self.write_durably(|t| rules::seal_legacy(t, entry, records))
    }

    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        embedded::devices_page(self, prefix, None, usize::MAX)
    }

    fn devices_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        embedded::devices_page(self, prefix, after, limit)
    }
}

impl OrderedTables for SledStorage {
    fn records(&self, table: Table, start: Bound<Vec<u8>>) -> Records<'_> {
        let tree = match table {
            Table::Certificates => &self.certs,
            Table::Devices => &self.devices,
            Table::Trust => &self.trust,
            Table::History => &self.history,
            Table::Audit => &self.audit,
            Table::TreeHeads => &self.heads,
            Table::Revoked => &self.revoked,
            Table::BlockedKeys => &self.blocked_keys,
            Table::Blobs => &self.blobs,
            Table::Meta => &self.meta,
        };
        Box::new(
            tree.range::<Vec<u8>, _>((start, Bound::Unbounded))
                .map(|kv| {
                    let (k, v) = kv.map_err(sled_error)?;
                    Ok((k.to_vec(), v.to_vec()))
                }),
        )
    }

    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal.get().map(|s| &**s)
    }
}
