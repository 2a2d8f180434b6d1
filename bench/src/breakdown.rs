//! Where the time goes, without the transport: the enrollment engine driven
//! in-process exactly as `EnrollBatch` drives it (chunks of 256, two chunks
//! in flight, group-committed and flushed before results count) over the
//! real sled store; the CSR check alone; and the store alone (sled commits
//! of real issuance records plus one flush per group); the engine's time
//! in its store (the probe), and the engine over the same store without the
//! read before signing and over a store that keeps nothing (so the
//! difference is the store's share).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use trustca_ca::{CaHierarchy, EnrollmentEngine, EnrollmentOutcome};
use trustca_store::{
    CertificateRecord, CertificateStatus, DeviceRecord, GroupCommitter, Issuance, SledStorage,
    Storage,
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
    let (_, policy_set) = trustca_server::policies::resolve(None, Some(data))?;
    let policy_set = Arc::new(policy_set);
    let hierarchy = Arc::new(CaHierarchy::open(data, &policy_set, &pass)?);
    let sled = SledStorage::open(&data.join("db"))?;
    let (storage, stats) = crate::probe::wrap(sled, kind);
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
                if kind == StoreKind::Null {
                    String::new()
                } else {
                    stats.summary(elapsed)
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
