//! The store probe: the sled store wrapped so the
//! in-process engine's store calls are timed, or skipped for the what-if
//! measurements. It is a `trustca_store::StorageLayer`: it overrides the
//! three calls on the enrollment path and the layer passes every other
//! call to sled, so a new store method needs no edit here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use trustca_store::{DeviceRecord, Issuance, SledStorage, Storage, StorageLayer, StoreError};

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
/// touching sled); everything else is passed through unchanged by the
/// layer.
#[derive(Debug)]
struct BenchStorage {
    inner: SledStorage,
    kind: StoreKind,
    stats: Arc<StoreStats>,
}

impl StorageLayer for BenchStorage {
    type Below<'a> = &'a dyn Storage;

    fn below(&self) -> Result<&dyn Storage, StoreError> {
        Ok(&self.inner)
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

    /// The skipped writes do not move sled's marker: claim none, as the
    /// probe always did.
    fn change_marker(&self) -> Option<u64> {
        None
    }
}
