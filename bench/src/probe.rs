//! The store probe (feature `store-probe`): the sled store wrapped so the
//! in-process engine's store calls are timed, or skipped for the what-if
//! measurements. It implements the whole `trustca_store::Storage` trait by
//! delegation, so it only compiles while its method list matches the trait;
//! that is why it is behind a feature that the workspace build leaves off.
//! When the trait grows, add one delegating method below.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use trustca_store::{
    AuditEntry, BlobAudit, CertificateRecord, DeviceRecord, HistoryEntry, Issuance, KeyValue,
    RecordTable, SledStorage, Storage, StoreError, StoredRecord, TrustChange, TrustRecord,
};

use crate::breakdown::StoreKind;

/// Wraps `sled` for an engine run of `kind`; returns the store and the
/// statistics it fills.
pub fn wrap(sled: SledStorage, kind: StoreKind) -> (Arc<dyn Storage>, Arc<StoreStats>) {
    let stats = Arc::new(StoreStats::default());
    let storage = Arc::new(BenchStorage {
        inner: sled,
        kind,
        stats: Arc::clone(&stats),
    });
    (storage, stats)
}

/// Time the engine spent in its store, by operation.
#[derive(Debug, Default)]
pub struct StoreStats {
    commit_ns: AtomicU64,
    committed: AtomicU64,
    flush_ns: AtomicU64,
    flushes: AtomicU64,
    lookup_ns: AtomicU64,
    lookups: AtomicU64,
}

impl StoreStats {
    fn add(&self, ns: &AtomicU64, count: &AtomicU64, since: Instant, n: u64) {
        let spent = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        ns.fetch_add(spent, Ordering::Relaxed);
        count.fetch_add(n, Ordering::Relaxed);
    }

    /// One line: where the committer thread's time went, and the lookups.
    pub fn summary(&self, wall: Duration) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let per = |ns: u64, n: u64| {
            if n > 0 {
                ns as f64 / n as f64 / 1e3
            } else {
                0.0
            }
        };
        let (commit, flush) = (get(&self.commit_ns), get(&self.flush_ns));
        let busy = (commit + flush) as f64 / 1e9 / wall.as_secs_f64().max(1e-9);
        format!(
            "committer: commit {:.0} us/item, flush {:.1} ms x{} (avg group {:.0}), busy {:.0}% of wall; \
             duplicate check {:.0} us",
            per(commit, get(&self.committed)),
            per(flush, get(&self.flushes)) / 1e3,
            get(&self.flushes),
            get(&self.committed) as f64 / get(&self.flushes).max(1) as f64,
            busy * 100.0,
            per(get(&self.lookup_ns), get(&self.lookups)),
        )
    }
}

/// The sled store as the in-process engine sees it: the three calls on the
/// enrollment path are timed (or, for [`StoreKind::Null`], answered without
/// touching sled); everything else is passed through unchanged.
#[derive(Debug)]
struct BenchStorage {
    inner: SledStorage,
    kind: StoreKind,
    stats: Arc<StoreStats>,
}

impl Storage for BenchStorage {
    fn set_record_seal(&self, seal: Arc<trustca_store::RecordSeal>) {
        self.inner.set_record_seal(seal);
    }
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        if self.kind == StoreKind::Null {
            return batch.iter().map(|_| Ok(())).collect();
        }
        let t = Instant::now();
        let r = self.inner.commit_issuances(batch);
        self.stats.add(
            &self.stats.commit_ns,
            &self.stats.committed,
            t,
            batch.len() as u64,
        );
        r
    }
    fn flush(&self) -> Result<(), StoreError> {
        if self.kind == StoreKind::Null {
            return Ok(());
        }
        let t = Instant::now();
        let r = self.inner.flush();
        self.stats
            .add(&self.stats.flush_ns, &self.stats.flushes, t, 1);
        r
    }
    fn device(&self, key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        // Fresh serials are never enrolled; the commit still refuses a
        // duplicate inside its transaction.
        if self.kind != StoreKind::Sled {
            return Ok(None);
        }
        let t = Instant::now();
        let r = self.inner.device(key);
        self.stats
            .add(&self.stats.lookup_ns, &self.stats.lookups, t, 1);
        r
    }

    // Everything below: unchanged sled behaviour.
    fn trust_record(&self, key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.inner.trust_record(key)
    }
    fn history(&self, key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(key)
    }
    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.inner.certificate(serial)
    }
    fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.inner.counts()
    }
    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit_entries(from, limit)
    }
    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.inner.size_on_disk()
    }
    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.serial_by_fingerprint(fingerprint)
    }
    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.inner.apply_trust_changes(changes, at)
    }
    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        self.inner.transfer_trust(from, to, actor, reason, at)
    }
    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        self.inner.devices_with_prefix(prefix)
    }
    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.inner.audit_entries_raw(from, limit)
    }
    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        self.inner.audit_head()
    }
    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.inner.store_tree_head(size, signed_head)
    }
    fn tree_heads(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.tree_heads()
    }
    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.inner.revoke(serials, reason, actor, note, at)
    }
    fn revoked_in_sector(&self, sector: &str) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        self.inner.revoked_in_sector(sector)
    }
    fn blocked_key(
        &self,
        key_fingerprint: &[u8; 32],
    ) -> Result<Option<trustca_store::BlockedKey>, StoreError> {
        self.inner.blocked_key(key_fingerprint)
    }
    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        self.inner.next_crl_number(sector)
    }
    fn blob_put(
        &self,
        space: &str,
        records: &[(Vec<u8>, Vec<u8>)],
        create_only: bool,
        audit: Option<&BlobAudit>,
    ) -> Result<(), StoreError> {
        self.inner.blob_put(space, records, create_only, audit)
    }
    fn commit_model_change(
        &self,
        space: &str,
        records: &[(Vec<u8>, Vec<u8>)],
        audit: &BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.inner
            .commit_model_change(space, records, audit, changes)
    }
    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.blob_get(space, key)
    }
    fn blob_scan(&self, space: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        self.inner.blob_scan(space, prefix)
    }
    fn challenge_put(
        &self,
        id: &[u8],
        record: &[u8],
        expires_at: i64,
        now: i64,
        max_open: usize,
    ) -> Result<bool, StoreError> {
        self.inner
            .challenge_put(id, record, expires_at, now, max_open)
    }
    fn challenge_take(&self, id: &[u8]) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
        self.inner.challenge_take(id)
    }
    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.inner.export(each)
    }
    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        self.inner.import(records)
    }
    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        self.inner.seal_legacy_records(entry, records)
    }
    fn raw_records(
        &self,
        table: RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.inner.raw_records(table, after, limit)
    }
}
