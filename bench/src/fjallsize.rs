//! fjall beside sled on the same records: would an LSM store with lz4
//! blocks get a device under 1.5 KiB on disk?
//!
//! After the `store-size` fill, the sled store of the data directory holds
//! exactly what the server would hold. This module reads it back tree by
//! tree and writes the very same keys and values into a fresh fjall
//! database (one keyspace per sled tree, lz4 on every level), in as many
//! atomic batches as the fill had group commits, each made durable with a
//! synced journal (as the server's group commit flushes sled once per
//! group). Each batch carries its share of every tree, so a batch holds
//! about one group's devices; the few `meta` records (counters, the audit
//! frontier) are rewritten in every batch, as every group commit rewrites
//! them. Trees keyed by random serials or digests (certificates,
//! fingerprints) are written in a random order, as the fill wrote them;
//! the others in key order, which is their fill order (device numbers and
//! audit indexes only grow).
//!
//! Reported, for fjall's default 4 KiB data blocks and for 32 KiB blocks:
//! bytes on disk per device right after the fill and after every
//! keyspace's memtable is flushed and majorly compacted and the database
//! closed (du of the directory both times), commit µs per device, and
//! random certificate point reads per second on the reopened fjall and on
//! the sled store, one thread each.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fjall::config::{BlockSizePolicy, CompressionPolicy};
use fjall::{CompressionType, Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::report::{Figure, Group, Row};
use crate::storesize::du;

/// Trees whose keys were random when the fill wrote them.
const RANDOM_ORDER: &[&str] = &["certificates", "fingerprints"];
/// The tree rewritten by every group commit.
const META: &str = "meta";
/// Most `meta` records rewritten per batch (it holds a handful).
const META_REWRITTEN: usize = 64;
/// The journal's bound (fjall's smallest; its default is 512 MiB).
const JOURNAL_BYTES: u64 = 64 << 20;
/// Point reads per store.
const READS: usize = 20_000;

/// One sled tree to copy: its name, its keys in write order.
struct Source {
    name: String,
    tree: sled::Tree,
    keys: Vec<sled::IVec>,
}

/// The comparison's result.
pub struct Comparison {
    /// Rows: fjall's commits, and point reads on both stores.
    pub rows: Vec<Row>,
    /// Figures: bytes per device before and after compaction.
    pub figures: Vec<Figure>,
}

/// xorshift64: the same order whatever the run.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn sources(db: &sled::Db) -> Result<Vec<Source>> {
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut out = Vec::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name)?;
        let mut keys = tree.iter().keys().collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            continue;
        }
        let name = String::from_utf8_lossy(&name).into_owned();
        if RANDOM_ORDER.contains(&name.as_str()) {
            for i in (1..keys.len()).rev() {
                keys.swap(i, (next(&mut x) % (i as u64 + 1)) as usize);
            }
        }
        out.push(Source { name, tree, keys });
    }
    Ok(out)
}

/// A keyspace as the comparison configures it: lz4 data blocks on every
/// level (fjall's default leaves the first two levels uncompressed), data
/// blocks of `block` bytes.
fn keyspace(db: &Database, name: &str, block: u32) -> Result<Keyspace> {
    Ok(db.keyspace(name, || {
        KeyspaceCreateOptions::default()
            .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
            .data_block_size_policy(BlockSizePolicy::all(block))
    })?)
}

/// Copies `sources` into `db` in `batches` durable batches; returns the
/// time spent committing and persisting.
fn copy(db: &Database, sources: &[Source], batches: usize, block: u32) -> Result<Duration> {
    let spaces = sources
        .iter()
        .map(|s| keyspace(db, &s.name, block))
        .collect::<Result<Vec<_>>>()?;
    let mut spent = Duration::ZERO;
    for b in 0..batches {
        let mut batch = db.batch();
        for (s, space) in sources.iter().zip(&spaces) {
            let n = s.keys.len();
            let range = if s.name == META && n <= META_REWRITTEN {
                0..n
            } else {
                b * n / batches..(b + 1) * n / batches
            };
            for key in &s.keys[range] {
                let value = s.tree.get(key)?.context("a sled record vanished")?;
                batch.insert(space, key.as_ref(), value.as_ref());
            }
        }
        let t = Instant::now();
        batch.commit()?;
        db.persist(PersistMode::SyncAll)?;
        spent += t.elapsed();
    }
    Ok(spent)
}

/// Flushes every keyspace's memtable and compacts it into one run;
/// returns each keyspace's bytes on disk after.
fn compact(db: &Database, sources: &[Source], block: u32) -> Result<Vec<(String, u64)>> {
    let mut sizes = Vec::new();
    for s in sources {
        let space = keyspace(db, &s.name, block)?;
        space.rotate_memtable_and_wait()?;
        space.major_compact()?;
        sizes.push((s.name.clone(), space.disk_space()));
    }
    db.persist(PersistMode::SyncAll)?;
    Ok(sizes)
}

/// `READS` random point reads of certificate records through `get`.
fn point_reads(
    key: &'static str,
    label: String,
    keys: &[sled::IVec],
    mut get: impl FnMut(&[u8]) -> Result<bool>,
) -> Result<Row> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let picks: Vec<&[u8]> = (0..READS)
        .map(|_| keys[(next(&mut x) % keys.len().max(1) as u64) as usize].as_ref())
        .collect();
    let started = Instant::now();
    let mut errors = 0;
    for k in picks {
        if !get(k)? {
            errors += 1;
        }
    }
    Ok(Row {
        key,
        label,
        group: Group::Breakdown,
        ops: (READS - errors) as u64,
        errors: errors as u64,
        elapsed: started.elapsed(),
        latency: None,
        note: "random certificate records by serial, 1 thread, fjall reopened, sled warm from the copy".into(),
    })
}

/// What one fjall configuration did with the records.
struct Run {
    block: u32,
    spent: Duration,
    before: u64,
    after: u64,
    journal: u64,
    sizes: Vec<(String, u64)>,
    reads: Row,
}

/// Copies `sources` into a fresh fjall database with data blocks of
/// `block` bytes, measures it before and after compaction (closed, so
/// journals and replaced tables are gone), then reopens it for reads.
fn run(sources: &[Source], batches: usize, block: u32, devices: usize) -> Result<Run> {
    let dir = tempfile::tempdir()?;
    let open = || {
        Database::builder(dir.path())
            .cache_size(trustca_store::DEFAULT_CACHE_BYTES)
            // The smallest journal bound fjall takes: a fixed cost, not
            // one per device, kept out of the per-device figure below.
            .max_journaling_size(JOURNAL_BYTES)
            .open()
    };
    let db = open()?;
    let spent = copy(&db, sources, batches, block)?;
    let (before, _) = du(dir.path())?;
    let sizes = compact(&db, sources, block)?;
    let journal = db.journal_disk_space()?;
    drop(db);
    let (after, _) = du(dir.path())?;
    let db = open()?;
    let certs = sources
        .iter()
        .find(|s| s.name == "certificates")
        .context("the sled store has no certificates tree")?;
    let space = keyspace(&db, "certificates", block)?;
    let reads = point_reads(
        "store_point_read_fjall",
        format!(
            "fjall point reads, {devices} devices, {} KiB blocks",
            block / 1024
        ),
        &certs.keys,
        |k| Ok(space.get(k)?.is_some()),
    )?;
    Ok(Run {
        block,
        spent,
        before,
        after,
        journal,
        sizes,
        reads,
    })
}

/// The same copy into a fresh sled store (the store's own settings): one
/// `sled::Batch` per tree and batch, then one flush, so its commit time is
/// comparable with fjall's (the fill's commits also run the store's rules,
/// seals and audit log). Returns the time spent and du after.
fn sled_copy(sources: &[Source], batches: usize) -> Result<(Duration, u64)> {
    let dir = tempfile::tempdir()?;
    let db = trustca_store::raw_sled_config(dir.path()).open()?;
    let trees = sources
        .iter()
        .map(|s| db.open_tree(&s.name))
        .collect::<Result<Vec<_>, _>>()?;
    let mut spent = Duration::ZERO;
    for b in 0..batches {
        let mut work = Vec::new();
        for s in sources {
            let n = s.keys.len();
            let range = if s.name == META && n <= META_REWRITTEN {
                0..n
            } else {
                b * n / batches..(b + 1) * n / batches
            };
            let mut batch = sled::Batch::default();
            for key in &s.keys[range] {
                let value = s.tree.get(key)?.context("a sled record vanished")?;
                batch.insert(key.as_ref(), value.as_ref());
            }
            work.push(batch);
        }
        let t = Instant::now();
        for (tree, batch) in trees.iter().zip(work) {
            tree.apply_batch(batch)?;
        }
        db.flush()?;
        spent += t.elapsed();
    }
    drop(trees);
    drop(db);
    let (bytes, _) = du(dir.path())?;
    Ok((spent, bytes))
}

/// Data block sizes tried: fjall's default (for point reads) and one for
/// space (its documentation suggests 16–64 KiB).
const BLOCKS: [u32; 2] = [4 * 1024, 32 * 1024];

/// Copies the sled store in `sled_dir` (closed) into fresh fjall
/// databases and measures them beside it; `devices` and `group` are the
/// fill's.
pub fn compare(sled_dir: &Path, devices: usize, group: usize) -> Result<Comparison> {
    let sled_db = trustca_store::raw_sled_config(sled_dir)
        .open()
        .context("open the filled sled store")?;
    let sources = sources(&sled_db)?;
    let records: usize = sources.iter().map(|s| s.keys.len()).sum();
    let (sled_du, _) = du(sled_dir)?;
    let batches = devices.div_ceil(group.max(1)).max(1);
    let per = |b: u64| b as f64 / devices.max(1) as f64;
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    for block in BLOCKS {
        crate::progress(&format!(
            "store: copying {records} records of {} trees into fjall ({} KiB blocks) in {batches} batches",
            sources.len(),
            block / 1024
        ));
        let r = run(&sources, batches, block, devices)?;
        let kib = r.block / 1024;
        rows.push(Row {
            key: "store_fill_fjall",
            label: format!("fjall ({kib} KiB blocks): the same records, {batches} batches"),
            group: Group::Breakdown,
            ops: devices as u64,
            errors: 0,
            elapsed: r.spent,
            latency: None,
            note: format!(
                "commit + persist(SyncAll) {:.1} us/device; {records} records, the fill's groups of {group}",
                r.spent.as_secs_f64() * 1e6 / devices.max(1) as f64
            ),
        });
        rows.push(r.reads);
        figures.push(
            Figure::new(
                "store_bytes_per_device_fjall_before",
                format!("fjall ({kib} KiB blocks) bytes/device at {devices} devices, right after the fill (du)"),
                per(r.before),
                "bytes",
            )
            .note(format!(
                "journal and tables as the fill left them; sled's store of the same records: {:.0} bytes/device (du)",
                per(sled_du)
            )),
        );
        let tables: u64 = r.sizes.iter().map(|(_, b)| b).sum();
        figures.push(
            Figure::new(
                "store_bytes_per_device_fjall_closed",
                format!("fjall ({kib} KiB blocks) bytes/device at {devices} devices, flushed, compacted, closed (du)"),
                per(r.after),
                "bytes",
            )
            .note(format!(
                "tables and the journal ({:.1} MiB, bounded by {} MiB: a fixed cost)",
                r.journal as f64 / (1u64 << 20) as f64,
                JOURNAL_BYTES >> 20
            )),
        );
        figures.push(
            Figure::new(
                "store_bytes_per_device_fjall",
                format!("fjall ({kib} KiB blocks) table bytes/device at {devices} devices, compacted"),
                per(tables),
                "bytes",
            )
            .aim(true, 1536.0)
            .note(format!(
                "lz4 on every level; journal left out; {:.2}x smaller than sled's {:.0} (du); per keyspace: {}",
                sled_du as f64 / tables.max(1) as f64,
                per(sled_du),
                r.sizes
                    .iter()
                    .map(|(name, b)| format!("{name} {:.0}", per(*b)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        );
    }
    crate::progress("store: the same copy into a fresh sled store");
    let (spent, bytes) = sled_copy(&sources, batches)?;
    rows.push(Row {
        key: "store_fill_sled_copy",
        label: format!("sled: the same records, {batches} batches (raw copy)"),
        group: Group::Breakdown,
        ops: devices as u64,
        errors: 0,
        elapsed: spent,
        latency: None,
        note: format!(
            "apply_batch per tree + flush {:.1} us/device: comparable with fjall's rows, unlike the fill's (rules, seals, audit log)",
            spent.as_secs_f64() * 1e6 / devices.max(1) as f64
        ),
    });
    figures.push(Figure::new(
        "store_bytes_per_device_sled_copy",
        format!("sled bytes/device at {devices} devices, the same records copied raw (du)"),
        per(bytes),
        "bytes",
    ));
    let certs = sources
        .iter()
        .find(|s| s.name == "certificates")
        .context("the sled store has no certificates tree")?;
    rows.push(point_reads(
        "store_point_read_sled",
        format!("sled point reads, {devices} devices"),
        &certs.keys,
        |k| Ok(certs.tree.get(k)?.is_some()),
    )?);
    Ok(Comparison { rows, figures })
}
