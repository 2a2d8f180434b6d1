//! sled beside fjall and PostgreSQL, in one run: what the storage
//! backends cost for the two things the server asks of them most.
//!
//! * **commit**: groups of 256 new-device issuances (records shaped like a
//!   real enrollment: ~600-byte certificate DER, device, trust record,
//!   history and audit entries), each group committed and made durable
//!   (`commit_issuances` + `flush`, as the group committer does) — the
//!   store's share of `EnrollBatch`.
//! * **decide reads**: the four records `Decide` reads about a peer
//!   (trust record, certificate, blocked key, device) for random enrolled
//!   devices among a hot set of 1,000 (as the decide stage's cars), from 4
//!   threads — on sled, on fjall, on PostgreSQL directly, and on
//!   PostgreSQL behind the replica read cache (`CachedStorage`, 20 ms).
//!
//! PostgreSQL is found through `TRUSTCA_BENCH_POSTGRES` (a server URL
//! without a database, as for the tests); without it the PostgreSQL rows
//! are skipped with a note. Bytes on disk per device are reported for both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use trustca_store::{
    CachedStorage, CertificateRecord, CertificateStatus, DeviceRecord, FjallStorage, Issuance,
    PgStorage, SledStorage, Storage,
};

use crate::report::{Figure, Group, Row, skipped};

const GROUP: usize = 256;

/// An enrollment-shaped issuance of device `n`.
pub(crate) fn issuance(n: u64) -> Issuance {
    let mut der = vec![0u8; 600];
    der[..8].copy_from_slice(&n.to_be_bytes());
    let key = format!("automotive/acme/ev-200/bench-{n}");
    let mut serial = vec![0x42u8; 16];
    serial[8..].copy_from_slice(&n.to_be_bytes());
    Issuance {
        certificate: CertificateRecord {
            serial,
            der,
            sector: "automotive".into(),
            kind: "long-term".into(),
            identity_key: Some(key.clone()),
            issued_at: 1_790_000_000,
            not_after: 1_900_000_000,
            status: CertificateStatus::Active,
        },
        device: Some(DeviceRecord {
            identity_key: key,
            urn: format!("urn:trustca:automotive:Acme:EV-200:bench-{n}"),
            sector: "automotive".into(),
            manufacturer: "Acme".into(),
            model: "EV-200".into(),
            serial: format!("bench-{n}"),
            firmware_version: "1.0.0".into(),
            certificate_level: 5,
            policy_version: "automotive-2026.1".into(),
            enrolled_at: 1_790_000_000,
            certificates: vec![],
        }),
        renewal: false,
        actor: "manufacturer:Acme".into(),
        audit_kind: "certificate.issued".into(),
        audit_detail: format!(
            "{{\"identity\":\"urn:trustca:automotive:Acme:EV-200:bench-{n}\",\"level\":5,\"policy\":\"automotive-2026.1\",\"firmware\":\"1.0.0\",\"renewal\":false}}"
        ),
    }
}

fn commit(store: &dyn Storage, key: &'static str, label: &str, devices: u64) -> Result<Row> {
    let started = Instant::now();
    let mut errors = 0;
    let mut n = 0;
    while n < devices {
        let batch: Vec<Issuance> = (n..(n + GROUP as u64).min(devices)).map(issuance).collect();
        n += batch.len() as u64;
        errors += store
            .commit_issuances(&batch)
            .iter()
            .filter(|r| r.is_err())
            .count() as u64;
        store.flush()?;
    }
    Ok(Row {
        key,
        label: label.to_owned(),
        group: Group::Breakdown,
        ops: devices - errors,
        errors,
        elapsed: started.elapsed(),
        latency: None,
        note: format!("groups of {GROUP}, durable"),
    })
}

fn decide_reads(
    store: Arc<dyn Storage>,
    key: &'static str,
    label: &str,
    devices: u64,
    seconds: f64,
) -> Result<Row> {
    let threads = 4;
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || -> Result<u64> {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                let mut done = 0;
                while Instant::now() < until {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Decide asks about the same peers again and again:
                    // a hot set of 1,000 devices (the decide stage's cars).
                    let i = issuance(x % devices.min(1_000));
                    let identity = i.certificate.identity_key.clone().unwrap_or_default();
                    store.trust_record(&identity)?.context("trust record")?;
                    store
                        .certificate(&i.certificate.serial)?
                        .context("certificate")?;
                    store.blocked_key(&[7; 32])?;
                    store.device(&identity)?.context("device")?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut ops = 0;
    for w in workers {
        ops += w
            .join()
            .map_err(|_| anyhow::anyhow!("reader thread panicked"))??;
    }
    Ok(Row {
        key,
        label: label.to_owned(),
        group: Group::Breakdown,
        ops,
        errors: 0,
        elapsed: started.elapsed(),
        latency: None,
        note: format!("{threads} threads, 4 records per query"),
    })
}

/// Runs the stage: rows (rates) and figures (bytes per device, ratios).
pub fn measure(devices: u64, seconds: f64) -> Result<(Vec<Row>, Vec<Figure>)> {
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    let dir = tempfile::tempdir()?;
    let sled: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path())?);
    let sled_commit = commit(
        sled.as_ref(),
        "store-commit-sled",
        "commit groups, sled",
        devices,
    )?;
    let sled_reads = decide_reads(
        Arc::clone(&sled),
        "store-decide-sled",
        "Decide's reads, sled",
        devices,
        seconds,
    )?;
    figures.push(Figure::new(
        "store-bytes-sled",
        format!("sled bytes on disk per device ({devices} devices)"),
        sled.size_on_disk()? as f64 / devices as f64,
        "bytes",
    ));
    let fjall_dir = tempfile::tempdir()?;
    let fjall: Arc<dyn Storage> = Arc::new(FjallStorage::open(fjall_dir.path())?);
    rows.push(commit(
        fjall.as_ref(),
        "store-commit-fjall",
        "commit groups, fjall",
        devices,
    )?);
    rows.push(decide_reads(
        Arc::clone(&fjall),
        "store-decide-fjall",
        "Decide's reads, fjall",
        devices,
        seconds,
    )?);
    figures.push(Figure::new(
        "store-bytes-fjall",
        format!("fjall bytes on disk per device ({devices} devices, tables + journal)"),
        fjall.size_on_disk()? as f64 / devices as f64,
        "bytes",
    ));
    let Ok(server) = std::env::var("TRUSTCA_BENCH_POSTGRES") else {
        rows.insert(0, sled_commit);
        rows.insert(1, sled_reads);
        let why = "set TRUSTCA_BENCH_POSTGRES=postgres://USER@HOST:PORT".to_owned();
        rows.push(skipped(
            "store-commit-pg",
            "commit groups, PostgreSQL",
            Group::Breakdown,
            why.clone(),
        ));
        rows.push(skipped(
            "store-decide-pg",
            "Decide's reads, PostgreSQL",
            Group::Breakdown,
            why,
        ));
        return Ok((rows, figures));
    };
    let name = format!("bench_{}", std::process::id());
    let url = trustca_store::postgres_admin::create_database(&server, &name)?;
    let pg: Arc<dyn Storage> = Arc::new(PgStorage::connect(&url)?);
    let pg_commit = commit(
        pg.as_ref(),
        "store-commit-pg",
        "commit groups, PostgreSQL",
        devices,
    )?;
    let pg_reads = decide_reads(
        Arc::clone(&pg),
        "store-decide-pg",
        "Decide's reads, PostgreSQL",
        devices,
        seconds,
    )?;
    let cached: Arc<dyn Storage> = Arc::new(CachedStorage::new(
        Arc::clone(&pg),
        Duration::from_millis(20),
    ));
    let cached_reads = decide_reads(
        cached,
        "store-decide-pg-cached",
        "Decide's reads, PostgreSQL + replica cache (20 ms)",
        devices,
        seconds,
    )?;
    figures.push(Figure::new(
        "store-bytes-pg",
        format!("PostgreSQL bytes per device ({devices} devices, tables + indexes)"),
        pg.size_on_disk()? as f64 / devices as f64,
        "bytes",
    ));
    figures.push(
        Figure::new(
            "store-commit-pg-ratio",
            "PostgreSQL commit rate / sled commit rate",
            100.0 * pg_commit.rate() / sled_commit.rate().max(1e-9),
            "%",
        )
        .aim(false, 50.0),
    );
    figures.push(
        Figure::new(
            "store-decide-pg-ratio",
            "Decide's reads: cached PostgreSQL / sled",
            100.0 * cached_reads.rate() / sled_reads.rate().max(1e-9),
            "%",
        )
        .aim(false, 80.0),
    );
    rows.extend([sled_commit, pg_commit, sled_reads, pg_reads, cached_reads]);
    Ok((rows, figures))
}
