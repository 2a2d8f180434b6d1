//! One way to wrap a store: a [`StorageLayer`] sits on another [`Storage`]
//! and says what it does around every read and every write; every layer is
//! a [`Storage`] through the one blanket implementation below.
//!
//! The guard (`guard/`: refuses writes while the store cannot write), the
//! replica cache (`cache.rs`: forgets what a write may have changed) and the
//! benchmark's store probe each change a few calls and pass the rest on.
//! Written as three forwarding `Storage` impls, a new store method meant
//! five edits; here it is declared in [`Storage`], written in each backend,
//! and named once below as a read or a write (the one choice every layer
//! needs: the guard refuses writes, the cache forgets after them).
//!
//! A layer overrides only the calls it treats specially: the hooks of
//! [`StorageLayer`] named like [`Storage`]'s methods default to passing the
//! call through [`StorageLayer::read`] or [`StorageLayer::write`].

use std::ops::Deref;
use std::sync::Arc;

use crate::{
    AuditEntry, BlobAudit, BlockedKey, CertificateRecord, DeviceRecord, HistoryEntry, Issuance,
    IssuanceReads, KeyValue, RecordSeal, RecordTable, Storage, StoreError, StoredRecord,
    TrustChange, TrustRecord, WriteHealth,
};

/// What a write changes, for layers that keep what reads returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteKind {
    /// Certificate, device, trust or opaque records, with their audit
    /// entries: what a read before it returned may be stale after it.
    Records,
    /// The store's own bookkeeping (signed tree heads, CRL numbers,
    /// leases, attestation challenges): no record a read returns changes.
    Bookkeeping,
}

/// A store on top of another: see the module documentation.
pub trait StorageLayer: Send + Sync + std::fmt::Debug + 'static {
    /// A handle on the store below, held for one call.
    type Below<'a>: Deref<Target = dyn Storage>
    where
        Self: 'a;

    /// The store below, or why there is none at the moment.
    fn below(&self) -> Result<Self::Below<'_>, StoreError>;

    /// Runs one read on the store below; by default just that.
    fn read<T>(
        &self,
        call: impl FnOnce(&dyn Storage) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        call(&*self.below()?)
    }

    /// Runs one write of `kind` on the store below; by default just that.
    fn write<T>(
        &self,
        kind: WriteKind,
        call: impl FnOnce(&dyn Storage) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _ = kind;
        call(&*self.below()?)
    }

    /// [`Storage::commit_issuances`]: one write; a refused write fails
    /// every issuance of the batch with the same error.
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        match self.write(WriteKind::Records, |s| Ok(s.commit_issuances(batch))) {
            Ok(results) => results,
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        }
    }
    /// [`Storage::flush`].
    fn flush(&self) -> Result<(), StoreError> {
        self.write(WriteKind::Bookkeeping, |s| s.flush())
    }
    /// [`Storage::set_record_seal`]: handed to the store below.
    fn set_record_seal(&self, seal: Arc<RecordSeal>) {
        if let Ok(below) = self.below() {
            below.set_record_seal(seal);
        }
    }
    /// [`Storage::change_marker`]: the store below's.
    fn change_marker(&self) -> Option<u64> {
        self.below().ok().and_then(|s| s.change_marker())
    }
    /// [`Storage::write_health`]: the store below's.
    fn write_health(&self) -> WriteHealth {
        match self.below() {
            Ok(s) => s.write_health(),
            Err(e) => WriteHealth::Refusing(e.to_string()),
        }
    }
    /// [`Storage::damaged_records`]: the store below's.
    fn damaged_records(&self) -> usize {
        self.below().map_or(0, |s| s.damaged_records())
    }
    /// [`Storage::device`].
    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.read(|s| s.device(identity_key))
    }
    /// [`Storage::trust_record`].
    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.read(|s| s.trust_record(identity_key))
    }
    /// [`Storage::certificate`].
    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.read(|s| s.certificate(serial))
    }
    /// [`Storage::serial_by_fingerprint`].
    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|s| s.serial_by_fingerprint(fingerprint))
    }
    /// [`Storage::blocked_key`].
    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        self.read(|s| s.blocked_key(key_fingerprint))
    }
}

/// Every layer is a store. The calls no layer treats specially are named
/// here once each, as a read or a write of a kind.
impl<L: StorageLayer> Storage for L {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        StorageLayer::commit_issuances(self, batch)
    }
    fn flush(&self) -> Result<(), StoreError> {
        StorageLayer::flush(self)
    }
    fn set_record_seal(&self, seal: Arc<RecordSeal>) {
        StorageLayer::set_record_seal(self, seal);
    }
    fn change_marker(&self) -> Option<u64> {
        StorageLayer::change_marker(self)
    }
    fn write_health(&self) -> WriteHealth {
        StorageLayer::write_health(self)
    }
    fn damaged_records(&self) -> usize {
        StorageLayer::damaged_records(self)
    }
    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        StorageLayer::device(self, identity_key)
    }
    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        StorageLayer::trust_record(self, identity_key)
    }
    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        StorageLayer::certificate(self, serial)
    }
    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        StorageLayer::serial_by_fingerprint(self, fingerprint)
    }
    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        StorageLayer::blocked_key(self, key_fingerprint)
    }
    fn issuance_reads(
        &self,
        identity_keys: &[String],
        key_fingerprints: &[[u8; 32]],
    ) -> Result<Option<IssuanceReads>, StoreError> {
        self.read(|s| s.issuance_reads(identity_keys, key_fingerprints))
    }

    // Reads.
    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(|s| s.history(identity_key))
    }
    fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.read(|s| s.counts())
    }
    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|s| s.audit_entries(from, limit))
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.read(|s| s.size_on_disk())
    }
    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        self.read(|s| s.devices_with_prefix(prefix))
    }
    fn devices_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        self.read(|s| s.devices_page(prefix, after, limit))
    }
    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(|s| s.audit_entries_raw(from, limit))
    }
    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.read(|s| s.audit_head())
    }
    fn tree_heads_page(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(|s| s.tree_heads_page(from, limit))
    }
    fn latest_tree_heads(&self, n: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|s| s.latest_tree_heads(n))
    }
    fn revoked_page(
        &self,
        sector: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        self.read(|s| s.revoked_page(sector, after, limit))
    }
    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|s| s.blob_get(space, key))
    }
    fn blob_scan_page(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.read(|s| s.blob_scan_page(space, prefix, after, limit))
    }
    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.read(|s| s.export(each))
    }
    fn raw_records(
        &self,
        table: RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.read(|s| s.raw_records(table, after, limit))
    }

    // Writes of records (with their audit entries).
    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write(WriteKind::Records, |s| s.apply_trust_changes(changes, at))
    }
    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        self.write(WriteKind::Records, |s| {
            s.transfer_trust(from, to, actor, reason, at)
        })
    }
    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.write(WriteKind::Records, |s| {
            s.revoke(serials, reason, actor, note, at)
        })
    }
    fn blob_put(
        &self,
        space: &str,
        records: &[KeyValue],
        create_only: bool,
        audit: Option<&BlobAudit>,
    ) -> Result<(), StoreError> {
        // Opaque records are not cached, but an audit entry moves the
        // cache's marker: a write of records.
        self.write(WriteKind::Records, |s| {
            s.blob_put(space, records, create_only, audit)
        })
    }
    fn commit_model_change(
        &self,
        space: &str,
        records: &[KeyValue],
        audit: &BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write(WriteKind::Records, |s| {
            s.commit_model_change(space, records, audit, changes)
        })
    }
    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        self.write(WriteKind::Records, |s| s.import(records))
    }
    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        self.write(WriteKind::Records, |s| {
            s.seal_legacy_records(entry, records)
        })
    }

    // Writes of the store's bookkeeping.
    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.write(WriteKind::Bookkeeping, |s| {
            s.store_tree_head(size, signed_head)
        })
    }
    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        self.write(WriteKind::Bookkeeping, |s| s.next_crl_number(sector))
    }
    fn hold_lease(&self, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, StoreError> {
        // A store that cannot write holds no lease: scheduled writers
        // (tree heads, CRLs) pause with the other writes.
        self.write(WriteKind::Bookkeeping, |s| {
            s.hold_lease(name, holder, ttl_secs)
        })
    }
    fn challenge_put(
        &self,
        id: &[u8],
        record: &[u8],
        expires_at: i64,
        now: i64,
        max_open: usize,
    ) -> Result<bool, StoreError> {
        self.write(WriteKind::Bookkeeping, |s| {
            s.challenge_put(id, record, expires_at, now, max_open)
        })
    }
    fn challenge_take(&self, id: &[u8]) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        self.write(WriteKind::Bookkeeping, |s| s.challenge_take(id))
    }
}
