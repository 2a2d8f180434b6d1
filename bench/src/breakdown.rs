//! Where the time goes, without the transport: the enrollment engine driven
//! in-process exactly as `EnrollBatch` drives it (chunks of 256, two chunks
//! in flight, group-committed and flushed before results count) over the
//! real sled store, over the same store without the read before signing,
//! and over a store that keeps nothing (so the difference is the store's
//! share); the CSR check alone; and the store alone (sled commits of real
//! issuance records plus one flush per group).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use trustca_ca::{CaHierarchy, EnrollmentEngine, EnrollmentOutcome};
use trustca_store::{
    AuditEntry, CertificateRecord, CertificateStatus, DeviceRecord, GroupCommitter, HistoryEntry,
    Issuance, SledStorage, Storage, StoreError, TrustChange, TrustRecord,
};

use crate::fixture::{self, Device, Manufacturer};
use crate::grpc::join_notes;
use crate::report::{Group, Row};

/// Items per `enroll_many` call, as the server's `EnrollBatch` chunks them.
pub const CHUNK: usize = 256;
/// Chunks in flight, as in the server's `EnrollBatch`.
const IN_FLIGHT: usize = 2;

/// What the engine run produced, for the store measurement.
#[derive(Debug)]
pub struct EngineRun {
    /// The row.
    pub row: Row,
    /// Issued certificates (leaf DER) and the device each went to.
    pub issued: Vec<(Vec<u8>, String)>,
}

/// Time the engine spent in its store, by operation.
#[derive(Debug, Default)]
struct StoreStats {
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
    fn summary(&self, wall: Duration) -> String {
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
    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        self.inner.next_crl_number(sector)
    }
}

/// Which store the in-process engine runs over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// The real sled store, flushed per group.
    Sled,
    /// What-if: the real sled store, but the engine's duplicate-identity
    /// check before signing does not read sled.
    SledNoPrecheck,
    /// Nothing is stored or flushed: no store cost at all (not durable).
    Null,
}

/// The enrollment engine over its own CA and store in `data`.
pub async fn engine(data: &Path, devices: &[Device], kind: StoreKind) -> Result<EngineRun> {
    let manufacturer: Manufacturer = fixture::init_ca(data)?;
    let pass = fixture::passphrase()?;
    let (_, policy_set) = trustca::policies::resolve(None, Some(data))?;
    let policy_set = Arc::new(policy_set);
    let hierarchy = Arc::new(CaHierarchy::open(data, &policy_set, &pass)?);
    let stats = Arc::new(StoreStats::default());
    let storage: Arc<dyn Storage> = Arc::new(BenchStorage {
        inner: SledStorage::open(&data.join("db"))?,
        kind,
        stats: Arc::clone(&stats),
    });
    let committer = GroupCommitter::start(Arc::clone(&storage))?;
    let engine = Arc::new(EnrollmentEngine::new(
        policy_set, hierarchy, storage, committer,
    ));
    let caller = manufacturer.credential;
    let chunks: Vec<Vec<trustca_ca::EnrollmentRequest>> = devices
        .chunks(CHUNK)
        .map(|c| c.iter().map(Device::engine_request).collect())
        .collect();

    let start = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for (n, chunk) in chunks.into_iter().enumerate() {
        let permit = Arc::clone(&permits).acquire_owned().await?;
        let engine = Arc::clone(&engine);
        let caller = caller.clone();
        tasks.spawn(async move {
            let r = engine.enroll_many(&caller, chunk).await;
            drop(permit);
            (n, r)
        });
    }
    let mut results: Vec<(usize, Vec<Result<EnrollmentOutcome, trustca_ca::CaError>>)> = Vec::new();
    while let Some(r) = tasks.join_next().await {
        results.push(r.map_err(|e| anyhow!("engine task failed: {e}"))?);
    }
    let elapsed = start.elapsed();
    results.sort_by_key(|(n, _)| *n);
    let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
    let mut issued = Vec::with_capacity(devices.len());
    for (outcome, device) in results.into_iter().flat_map(|(_, v)| v).zip(devices) {
        match outcome {
            Ok(o) => {
                ok += 1;
                if let Some(leaf) = o.chain_der.into_iter().next() {
                    issued.push((leaf, device.serial.clone()));
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(EngineRun {
        row: Row {
            key: match kind {
                StoreKind::Sled => "engine_inprocess",
                StoreKind::SledNoPrecheck => "engine_no_precheck",
                StoreKind::Null => "engine_null_store",
            },
            label: match kind {
                StoreKind::Sled => "engine in-process (no gRPC/TLS, durable)".into(),
                StoreKind::SledNoPrecheck => "what-if: engine, no sled read before signing".into(),
                StoreKind::Null => "engine in-process, no-op store (not durable)".into(),
            },
            group: Group::Breakdown,
            ops: ok,
            errors,
            elapsed,
            latency: None,
            note: join_notes(&[
                format!("enroll_many x{CHUNK}, {IN_FLIGHT} in flight"),
                if kind != StoreKind::Null {
                    stats.summary(elapsed)
                } else {
                    String::new()
                },
                first_error
                    .map(|e| format!("first error: {e}"))
                    .unwrap_or_default(),
            ]),
        },
        issued,
    })
}

/// `verify_csr` (parse + proof-of-possession check) alone, one thread.
pub fn csr_check(devices: &[Device]) -> Result<Row> {
    let start = Instant::now();
    for d in devices {
        trustca_ca::verify_csr(&d.csr_der).context("CSR check")?;
    }
    Ok(Row {
        key: "csr_verify",
        label: "CSR parse+verify alone".into(),
        group: Group::Breakdown,
        ops: devices.len() as u64,
        errors: 0,
        elapsed: start.elapsed(),
        latency: None,
        note: "1 thread, trustca_ca::verify_csr".into(),
    })
}

fn issuance(der: Vec<u8>, serial: &str, n: usize) -> Issuance {
    let key = format!(
        "{}/acme/ev-200/{}",
        fixture::SECTOR,
        serial.to_ascii_lowercase()
    );
    let cert_serial: Vec<u8> = {
        let mut s = vec![0x40u8; 16];
        s[8..].copy_from_slice(&(n as u64).to_be_bytes());
        s
    };
    Issuance {
        certificate: CertificateRecord {
            serial: cert_serial,
            der,
            sector: fixture::SECTOR.into(),
            kind: "long-term".into(),
            identity_key: Some(key.clone()),
            issued_at: 1_800_000_000,
            not_after: 2_100_000_000,
            status: CertificateStatus::Active,
        },
        device: Some(DeviceRecord {
            identity_key: key,
            urn: format!("urn:trustca:{}:Acme:EV-200:{serial}", fixture::SECTOR),
            sector: fixture::SECTOR.into(),
            manufacturer: "Acme".into(),
            model: "EV-200".into(),
            serial: serial.to_owned(),
            firmware_version: "1.0.0".into(),
            certificate_level: 1,
            policy_version: "bench".into(),
            enrolled_at: 1_800_000_000,
            certificates: vec![],
        }),
        renewal: false,
        actor: "manufacturer:Acme".into(),
        audit_kind: "certificate.issued".into(),
        audit_detail: format!(
            "{{\"identity\":\"urn:trustca:{}:Acme:EV-200:{serial}\",\"level\":1,\"policy\":\"bench\",\"firmware\":\"1.0.0\",\"renewal\":false}}",
            fixture::SECTOR
        ),
    }
}

/// The store alone: the engine's certificates committed to a fresh sled
/// store in groups of [`CHUNK`], one flush (fsync) per group, one thread,
/// as the group committer does under steady load.
pub fn store(dir: &Path, issued: Vec<(Vec<u8>, String)>) -> Result<Row> {
    let storage = SledStorage::open(dir).context("open a scratch store")?;
    let batches: Vec<Vec<Issuance>> = {
        let all: Vec<Issuance> = issued
            .into_iter()
            .enumerate()
            .map(|(n, (der, serial))| issuance(der, &serial, n))
            .collect();
        all.chunks(CHUNK).map(<[Issuance]>::to_vec).collect()
    };
    let (mut commit, mut flush) = (Duration::ZERO, Duration::ZERO);
    let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
    let start = Instant::now();
    for b in &batches {
        let t = Instant::now();
        for r in storage.commit_issuances(b) {
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let t2 = Instant::now();
        storage.flush()?;
        commit += t2 - t;
        flush += t2.elapsed();
    }
    let elapsed = start.elapsed();
    let per_item = |d: Duration| {
        if ok > 0 {
            d.as_secs_f64() * 1e6 / ok as f64
        } else {
            0.0
        }
    };
    let per_flush = if batches.is_empty() {
        0.0
    } else {
        flush.as_secs_f64() * 1e3 / batches.len() as f64
    };
    Ok(Row {
        key: "store_sled",
        label: "store alone: sled commit + flush".into(),
        group: Group::Breakdown,
        ops: ok,
        errors,
        elapsed,
        latency: None,
        note: join_notes(&[
            format!(
                "groups of {CHUNK}; commit {:.1} us/item, flush {:.2} ms/group ({:.1} us/item)",
                per_item(commit),
                per_flush,
                per_item(flush)
            ),
            first_error
                .map(|e| format!("first error: {e}"))
                .unwrap_or_default(),
        ]),
    })
}
