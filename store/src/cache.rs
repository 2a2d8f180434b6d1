//! A read cache for a store shared by several replicas (PostgreSQL).
//!
//! `Decide` and `GetTrust` read the same few records (trust record,
//! certificate, device, blocked key) again and again; over a network each
//! read is a round trip. [`CachedStorage`] keeps them in memory and checks
//! that they are still current with one cheap question to the store: the
//! audit log's size. Every change of a cached kind appends audit entries in
//! the same transaction (issuance, renewal, trust change, transfer,
//! revocation, key block), so an unchanged size means unchanged records.
//!
//! * Changes made through this handle (this replica) clear the cache at
//!   once: the next read sees them.
//! * Changes made by another replica are seen once the size is checked
//!   again, at most `max_staleness` later (default 20 ms); within that
//!   window a read may return the record as it was.
//!
//! The cache is bounded in entries and in bytes: it is emptied when it
//! holds [`DEFAULT_CAPACITY`] entries (200,000) or about
//! [`DEFAULT_CAPACITY_BYTES`] (64 MiB) of records, whichever comes first.
//! A record's bytes are counted as its keys' and fields' lengths plus a
//! fixed overhead per entry (the map slot and allocations), so the real
//! footprint stays within a small factor of the bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{
    AuditEntry, BlobAudit, BlockedKey, CertificateRecord, DeviceRecord, HistoryEntry, Issuance,
    KeyValue, Storage, StoreError, StoredRecord, TrustChange, TrustRecord,
};

/// Entries kept before the cache is emptied.
pub const DEFAULT_CAPACITY: usize = 200_000;
/// Bytes of records (as [`Weight`] counts them) kept before the cache is
/// emptied: a certificate record is about 1.1 KB, so certificates alone
/// would otherwise reach 220 MB at [`DEFAULT_CAPACITY`].
pub const DEFAULT_CAPACITY_BYTES: usize = 64 << 20;
/// What one entry costs beyond its fields' bytes: the map slot, the key's
/// and the record's allocations.
const ENTRY_OVERHEAD: usize = 96;

/// Approximate heap bytes of a cached value, for the byte bound.
trait Weight {
    fn weight(&self) -> usize;
}

impl<T: Weight> Weight for Option<T> {
    fn weight(&self) -> usize {
        self.as_ref().map_or(0, Weight::weight) + ENTRY_OVERHEAD
    }
}

impl Weight for CertificateRecord {
    fn weight(&self) -> usize {
        self.serial.len()
            + self.der.len()
            + self.sector.len()
            + self.kind.len()
            + self.identity_key.as_ref().map_or(0, String::len)
            + 64
    }
}

impl Weight for DeviceRecord {
    fn weight(&self) -> usize {
        [
            &self.identity_key,
            &self.urn,
            &self.sector,
            &self.manufacturer,
            &self.model,
            &self.serial,
            &self.firmware_version,
            &self.policy_version,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>()
            + self
                .certificates
                .iter()
                .map(|c| c.len() + 24)
                .sum::<usize>()
            + 64
    }
}

impl Weight for TrustRecord {
    fn weight(&self) -> usize {
        self.identity_key.len() + self.sector.len() + 32
    }
}

impl Weight for BlockedKey {
    fn weight(&self) -> usize {
        self.serial.len() + self.actor.len() + self.identity_key.as_ref().map_or(0, String::len)
    }
}

impl Weight for String {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weight for [u8; 32] {
    fn weight(&self) -> usize {
        32
    }
}

impl Weight for Vec<u8> {
    fn weight(&self) -> usize {
        self.len()
    }
}

#[derive(Default)]
struct Maps {
    trust: HashMap<String, Option<TrustRecord>>,
    devices: HashMap<String, Option<DeviceRecord>>,
    certificates: HashMap<Vec<u8>, Option<CertificateRecord>>,
    blocked: HashMap<[u8; 32], Option<BlockedKey>>,
    fingerprints: HashMap<[u8; 32], Option<Vec<u8>>>,
}

impl Maps {
    fn len(&self) -> usize {
        self.trust.len()
            + self.devices.len()
            + self.certificates.len()
            + self.blocked.len()
            + self.fingerprints.len()
    }
}

struct State {
    maps: Maps,
    /// What the maps hold, as [`Weight`] counts it.
    bytes: usize,
    /// Audit log size when the maps were last known current.
    marker: u64,
    /// When the marker was last read; `None` forces a check.
    checked_at: Option<Instant>,
    /// Bumped on every clear, so a read that raced a clear does not put a
    /// record from before it back.
    generation: u64,
}

impl State {
    /// Forgets every record; reads that raced this do not put theirs back
    /// (the generation moves on).
    fn clear(&mut self) {
        self.maps = Maps::default();
        self.bytes = 0;
        self.generation += 1;
    }
}

/// A [`Storage`] that caches the records `Decide` reads (see the module
/// documentation for how fresh they are).
pub struct CachedStorage {
    inner: Arc<dyn Storage>,
    max_staleness: Duration,
    capacity: usize,
    capacity_bytes: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for CachedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStorage")
            .field("inner", &self.inner)
            .field("max_staleness", &self.max_staleness)
            .finish_non_exhaustive()
    }
}

impl CachedStorage {
    /// Caches reads of `inner`; changes by other replicas are seen within
    /// `max_staleness`.
    pub fn new(inner: Arc<dyn Storage>, max_staleness: Duration) -> Self {
        Self {
            inner,
            max_staleness,
            capacity: DEFAULT_CAPACITY,
            capacity_bytes: DEFAULT_CAPACITY_BYTES,
            state: Mutex::new(State {
                maps: Maps::default(),
                bytes: 0,
                marker: 0,
                checked_at: None,
                generation: 0,
            }),
        }
    }

    /// The same cache emptied at `entries` entries or `bytes` bytes of
    /// records instead of the defaults.
    pub fn with_capacity(mut self, entries: usize, bytes: usize) -> Self {
        self.capacity = entries.max(1);
        self.capacity_bytes = bytes;
        self
    }

    /// Entries and bytes (as counted for the bound) held now.
    pub fn held(&self) -> (usize, usize) {
        let s = self.lock();
        (s.maps.len(), s.bytes)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Makes sure the maps are current; returns the generation to insert
    /// under.
    fn validate(&self) -> Result<u64, StoreError> {
        {
            let s = self.lock();
            if s.checked_at
                .is_some_and(|t| t.elapsed() <= self.max_staleness)
            {
                return Ok(s.generation);
            }
        }
        let (size, _) = self.inner.audit_head()?;
        let mut s = self.lock();
        if size != s.marker || s.checked_at.is_none() {
            s.clear();
            s.marker = size;
        }
        s.checked_at = Some(Instant::now());
        Ok(s.generation)
    }

    /// Forgets everything after a write through this handle.
    fn invalidate(&self) {
        let mut s = self.lock();
        s.clear();
        s.checked_at = None;
    }

    /// Reads through the cache: `get` picks the map, `load` asks the store.
    fn cached<K, V>(
        &self,
        key: &K,
        get: impl Fn(&mut Maps) -> &mut HashMap<K, Option<V>>,
        load: impl FnOnce() -> Result<Option<V>, StoreError>,
    ) -> Result<Option<V>, StoreError>
    where
        K: std::hash::Hash + Eq + Clone + Weight,
        V: Clone + Weight,
    {
        let generation = self.validate()?;
        if let Some(hit) = get(&mut self.lock().maps).get(key) {
            return Ok(hit.clone());
        }
        let value = load()?;
        let mut s = self.lock();
        if s.generation == generation {
            let weight = key.weight() + value.weight();
            if s.maps.len() >= self.capacity || s.bytes + weight > self.capacity_bytes {
                s.clear();
            }
            s.bytes += weight;
            get(&mut s.maps).insert(key.clone(), value.clone());
        }
        Ok(value)
    }

    fn writing<R>(&self, r: R) -> R {
        self.invalidate();
        r
    }
}

impl Storage for CachedStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        let r = self.inner.commit_issuances(batch);
        self.writing(r)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn set_record_seal(&self, seal: Arc<crate::RecordSeal>) {
        self.inner.set_record_seal(seal);
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.cached(
            &identity_key.to_owned(),
            |m| &mut m.devices,
            || self.inner.device(identity_key),
        )
    }

    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.cached(
            &identity_key.to_owned(),
            |m| &mut m.trust,
            || self.inner.trust_record(identity_key),
        )
    }

    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.inner.history(identity_key)
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.cached(
            &serial.to_vec(),
            |m| &mut m.certificates,
            || self.inner.certificate(serial),
        )
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
        self.cached(
            fingerprint,
            |m| &mut m.fingerprints,
            || self.inner.serial_by_fingerprint(fingerprint),
        )
    }

    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        let r = self.inner.apply_trust_changes(changes, at);
        self.writing(r)
    }

    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        let r = self.inner.transfer_trust(from, to, actor, reason, at);
        self.writing(r)
    }

    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        self.inner.devices_with_prefix(prefix)
    }

    fn devices_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        self.inner.devices_page(prefix, after, limit)
    }

    fn raw_records(
        &self,
        table: crate::RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        self.inner.raw_records(table, after, limit)
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
        let r = self.inner.revoke(serials, reason, actor, note, at);
        self.writing(r)
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        self.cached(
            key_fingerprint,
            |m| &mut m.blocked,
            || self.inner.blocked_key(key_fingerprint),
        )
    }

    fn revoked_in_sector(&self, sector: &str) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        self.inner.revoked_in_sector(sector)
    }

    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        self.inner.next_crl_number(sector)
    }

    fn commit_model_change(
        &self,
        space: &str,
        records: &[KeyValue],
        audit: &BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        let r = self
            .inner
            .commit_model_change(space, records, audit, changes);
        self.writing(r)
    }

    fn blob_put(
        &self,
        space: &str,
        records: &[KeyValue],
        create_only: bool,
        audit: Option<&BlobAudit>,
    ) -> Result<(), StoreError> {
        // Opaque records are not cached, but the audit entry moves the
        // marker: keep the marker in step.
        let r = self.inner.blob_put(space, records, create_only, audit);
        self.writing(r)
    }

    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.blob_get(space, key)
    }

    fn blob_scan(&self, space: &str, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        self.inner.blob_scan(space, prefix)
    }

    fn hold_lease(&self, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, StoreError> {
        self.inner.hold_lease(name, holder, ttl_secs)
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
        let r = self.inner.import(records);
        self.writing(r)
    }

    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        let r = self.inner.seal_legacy_records(entry, records);
        self.writing(r)
    }
}
