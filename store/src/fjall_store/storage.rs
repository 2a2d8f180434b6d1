//! The `Storage` trait over fjall: writes run the rules in one write
//! transaction across the keyspaces, reads go to the keyspaces directly
//! (each read sees every committed transaction whole or not at all).

use fjall::Readable;

use super::*;
use crate::embedded::{AUDIT_FRONTIER, COUNT_CERTS, COUNT_DEVICES};
use crate::{
    AuditEntry, BlockedKey, CertificateRecord, DeviceRecord, HistoryEntry, Issuance, Storage,
    StoredRecord, TrustChange, TrustRecord, vouched,
};

impl Storage for FjallStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        match self.write(&|t| rules::issue_group(t, batch)) {
            Ok(r) => r,
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.persist()
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.get_sealed(
            &self.spaces.devices,
            Sealed::Device,
            identity_key.as_bytes(),
        )
    }

    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.get_sealed(&self.spaces.trust, Sealed::Trust, identity_key.as_bytes())
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
        embedded::with_prefix(self, Table::History, &prefix)
            .map(|kv| {
                let (k, v) = kv?;
                crate::records::decode(&k, &v)
            })
            .collect()
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.get_sealed(&self.spaces.certs, Sealed::Certificate, serial)
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((self.counter(COUNT_CERTS)?, self.counter(COUNT_DEVICES)?))
    }

    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        embedded::numbered_page(self, Table::Audit, from, limit)?
            .into_iter()
            .map(|(seq, v)| crate::records::decode(&seq.to_be_bytes(), &v))
            .collect()
    }

    /// The directory's allocated bytes: tables, journal, fjall's own
    /// files (see `allocated_bytes`).
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        allocated_bytes(&self.spaces.path).map_err(|e| io_error(&e))
    }

    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(&self.spaces.fingerprints, fingerprint)
    }

    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write_durably(&|t| rules::apply_trust_changes(t, changes, at))
    }

    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        self.write_durably(&|t| rules::transfer_trust(t, from, to, actor, reason, at))
    }

    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        embedded::numbered_page(self, Table::Audit, from, limit)
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let stored = self.spaces.meta.get(AUDIT_FRONTIER).map_err(fjall_error)?;
        let frontier = embedded::frontier(stored.as_deref())?;
        Ok((frontier.size(), frontier.root()))
    }

    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.write_durably(&|t| t.put_tree_head(size, signed_head))
    }

    fn tree_heads_page(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        embedded::numbered_page(self, Table::TreeHeads, from, limit)
    }

    fn latest_tree_heads(&self, n: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self
            .last_records(Table::TreeHeads, n)?
            .into_iter()
            .map(|(_, v)| v)
            .collect())
    }

    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.write_durably(&|t| rules::revoke(t, serials, reason, actor, note, at))
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        let stored = self
            .get(&self.spaces.blocked_keys, key_fingerprint)?
            .map(|v| crate::records::decode(key_fingerprint, &v))
            .transpose()?;
        vouched::vouch_blocked(self.seal(), key_fingerprint, stored)
    }

    fn revoked_page(
        &self,
        sector: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        let stored = embedded::revoked_page(self, sector, after, limit)?;
        vouched::vouch_revoked_page(self.seal(), self, sector, (after, limit), &stored)?;
        Ok(stored)
    }

    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        let key = embedded::crl_number_key(sector);
        let next = self.write_durably(&|t| {
            let n = embedded::counter_value(t.read(&self.spaces.meta, key.as_bytes())?.as_deref());
            let next = n + 1;
            t.set_crl_number(sector, next)?;
            Ok(next)
        })?;
        Ok(next)
    }

    fn blob_put(
        &self,
        space: &str,
        records: &[KeyValue],
        create_only: bool,
        audit: Option<&crate::BlobAudit>,
    ) -> Result<(), StoreError> {
        self.write_durably(&|t| rules::put_blobs(t, space, records, create_only, audit))
    }

    fn commit_model_change(
        &self,
        space: &str,
        records: &[KeyValue],
        audit: &crate::BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write_durably(&|t| rules::commit_model_change(t, space, records, audit, changes))
    }

    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .get(&self.spaces.blobs, &embedded::blob_key(space, key))?
            .map(|v| seal::open_blob(self.seal(), space, key, v))
            .transpose()?;
        vouched::vouch_blob(self.seal(), self, space, key, value)
    }

    fn blob_scan_page(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        let stored = embedded::blob_page(self, space, prefix, after, limit)?;
        vouched::vouch_blob_page(self.seal(), self, space, (prefix, after, limit), &stored)?;
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
        let challenges = &self.spaces.challenges;
        // Counted, pruned and inserted in one write transaction: writers
        // take turns, so the limit holds under concurrent puts.
        let stored = self.write_durably(&|t| {
            let mut tx = t.tx.borrow_mut();
            let open: Vec<KeyValue> = tx
                .iter(challenges)
                .map(|g| pair(g.into_inner()))
                .collect::<Result<_, _>>()?;
            let mut count = open.len();
            if count >= max_open {
                for (k, v) in &open {
                    if embedded::challenge_expiry(v).is_none_or(|at| at <= now) {
                        tx.remove(challenges, k.as_slice());
                        count -= 1;
                    }
                }
                if count >= max_open {
                    return Ok(false);
                }
            }
            let mut value = expires_at.to_be_bytes().to_vec();
            value.extend_from_slice(record);
            tx.insert(challenges, id, value);
            Ok(true)
        })?;
        Ok(stored)
    }

    fn challenge_take(&self, id: &[u8]) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        // Taken in one write transaction: of concurrent takes, one gets
        // the value. It is made durable by the next flush, at the latest
        // the one that commits the enrollment answering it.
        let taken = self.write(&|t| {
            t.tx.borrow_mut()
                .take(&self.spaces.challenges, id)
                .map_err(fjall_error)
        })?;
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
    ) -> Result<Vec<KeyValue>, StoreError> {
        embedded::raw_page(self, table, after, limit)
    }

    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        self.write_durably(&|t| rules::import(t, records))
    }

    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        self.write_durably(&|t| rules::seal_legacy(t, entry, records))
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
