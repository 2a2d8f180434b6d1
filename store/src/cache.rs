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

use crate::layer::{StorageLayer, WriteKind};
use crate::{BlockedKey, CertificateRecord, DeviceRecord, Storage, StoreError, TrustRecord};

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
}

impl StorageLayer for CachedStorage {
    type Below<'a> = &'a dyn Storage;

    fn below(&self) -> Result<&dyn Storage, StoreError> {
        Ok(&*self.inner)
    }

    /// Forgets everything after a write of records through this handle.
    fn write<T>(
        &self,
        kind: WriteKind,
        call: impl FnOnce(&dyn Storage) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let r = call(&*self.inner);
        if kind == WriteKind::Records {
            self.invalidate();
        }
        r
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

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.cached(
            &serial.to_vec(),
            |m| &mut m.certificates,
            || self.inner.certificate(serial),
        )
    }

    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.cached(
            fingerprint,
            |m| &mut m.fingerprints,
            || self.inner.serial_by_fingerprint(fingerprint),
        )
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        self.cached(
            key_fingerprint,
            |m| &mut m.blocked,
            || self.inner.blocked_key(key_fingerprint),
        )
    }

    /// Other replicas write the shared store too: nothing this handle sees
    /// tells that nothing changed.
    fn change_marker(&self) -> Option<u64> {
        None
    }
}
