//! What the audit log costs per issuance. The store appends one Merkle-leaf
//! audit entry per issuance inside the group's transaction
//! (`SledStorage::commit_group` → `apply_issuance` → `append_audit_to`), so
//! it cannot be switched off in the real store. Three measurements, on the
//! same issuances (records of a real enrolled car with distinct serials and
//! identities), each on its own fresh store, groups of 256 with one flush
//! each, one thread. The stores take turns group by group (the order
//! rotating), so a change of the machine's speed hits them alike, and the
//! comparison uses the median time per group:
//!
//! * the real store: `Storage::commit_issuances` + `flush`;
//! * a replica of the group commit (this file: the same sled
//!   configuration, trees, reads, writes and encodings as
//!   `commit_group`/`apply_issuance` for new devices) with the audit append
//!   and without it: the difference is the audit log's share, and the
//!   replica with it beside the real store shows how faithful it is; and,
//!   as a what-if, with the group's audit entries written as one sled value
//!   (same entries, same Merkle leaves, same transaction);
//! * the audit work alone, without sled: the entry built, its leaf bytes
//!   hashed and pushed onto the `trustca_audit::MerkleFrontier`, the entry
//!   encoded, and the frontier read and written once per group.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use trustca_audit::MerkleFrontier;
use trustca_store::{
    AuditEntry, HistoryEntry, Issuance, SledStorage, Storage, TrustRecord, TrustStatus,
};

use crate::report::{Figure, Group, Row};
use crate::storesize::Template;

/// Issuances per commit group, as `EnrollBatch` chunks them.
pub const GROUP: usize = 256;
const AUDIT_FRONTIER: &[u8] = b"audit.frontier";
const COUNT_CERTS: &[u8] = b"count.certificates";
const COUNT_DEVICES: &[u8] = b"count.devices";

/// Time spent in one run.
#[derive(Debug, Default, Clone, Copy)]
struct Spent {
    commit: Duration,
    flush: Duration,
}

impl Spent {
    fn total(self) -> Duration {
        self.commit + self.flush
    }

    fn add(&mut self, other: Spent) {
        self.commit += other.commit;
        self.flush += other.flush;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// One store under test: it commits one group and flushes.
trait GroupStore {
    fn commit_group(&self, batch: &[Issuance]) -> Result<Spent>;
}

impl GroupStore for SledStorage {
    fn commit_group(&self, batch: &[Issuance]) -> Result<Spent> {
        let t = Instant::now();
        for r in self.commit_issuances(batch) {
            r.context("commit_issuances")?;
        }
        let t2 = Instant::now();
        self.flush()?;
        Ok(Spent {
            commit: t2 - t,
            flush: t2.elapsed(),
        })
    }
}

type Abort = ConflictableTransactionError<String>;

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, Abort> {
    postcard::to_stdvec(v).map_err(|e| ConflictableTransactionError::Abort(e.to_string()))
}

fn history_key(identity_key: &str, version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(identity_key.len() + 9);
    k.extend_from_slice(identity_key.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn add_counter(
    meta: &sled::transaction::TransactionalTree,
    key: &[u8],
    n: u64,
) -> Result<(), Abort> {
    let old = match meta.get(key)? {
        Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
        None => 0,
    };
    meta.insert(key, &(old + n).to_be_bytes())?;
    Ok(())
}

/// How the replica writes the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    /// Not at all.
    Off,
    /// One sled value per entry, keyed by its index (as the store does).
    PerEntry,
    /// What-if: the group's entries as one sled value, keyed by the index
    /// of its first entry.
    PerGroup,
}

/// The replica of the store's group commit for new devices.
struct Replica {
    mode: Audit,
    db: sled::Db,
    trees: [sled::Tree; 7],
}

impl Replica {
    fn open(dir: &Path, mode: Audit) -> Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None)
            .open()?;
        let trees = [
            db.open_tree("certificates")?,
            db.open_tree("devices")?,
            db.open_tree("trust")?,
            db.open_tree("history")?,
            db.open_tree("audit")?,
            db.open_tree("meta")?,
            db.open_tree("fingerprints")?,
        ];
        Ok(Self { mode, db, trees })
    }
}

impl GroupStore for Replica {
    fn commit_group(&self, batch: &[Issuance]) -> Result<Spent> {
        let (mode, trees) = (self.mode, &self.trees);
        let audit_on = mode != Audit::Off;
        let t = Instant::now();
        let fingerprints: Vec<ring::digest::Digest> = batch
            .iter()
            .map(|i| ring::digest::digest(&ring::digest::SHA256, &i.certificate.der))
            .collect();
        let r = (
            &trees[0], &trees[1], &trees[2], &trees[3], &trees[4], &trees[5], &trees[6],
        )
            .transaction(|(certs, devices, trust, history, audit, meta, fps)| {
                let mut frontier = if audit_on {
                    match meta.get(AUDIT_FRONTIER)? {
                        Some(v) => MerkleFrontier::from_bytes(&v)
                            .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?,
                        None => MerkleFrontier::new(),
                    }
                } else {
                    MerkleFrontier::new()
                };
                let mut n = 0u64;
                let first = frontier.size();
                let mut group_entries = Vec::new();
                for (issuance, fp) in batch.iter().zip(&fingerprints) {
                    let cert = &issuance.certificate;
                    let serial_hex = trustca_model::hexfmt::encode(&cert.serial);
                    if certs.get(&cert.serial)?.is_some() {
                        return Err(ConflictableTransactionError::Abort("serial reused".into()));
                    }
                    let Some(device) = &issuance.device else {
                        return Err(ConflictableTransactionError::Abort("no device".into()));
                    };
                    let key = device.identity_key.as_bytes();
                    if devices.get(key)?.is_some() {
                        return Err(ConflictableTransactionError::Abort("enrolled".into()));
                    }
                    let mut record = device.clone();
                    record.certificates = vec![serial_hex.clone()];
                    let trust_record = TrustRecord {
                        identity_key: device.identity_key.clone(),
                        sector: device.sector.clone(),
                        level: device.certificate_level,
                        status: TrustStatus::Active,
                        version: 1,
                        updated_at: cert.issued_at,
                    };
                    devices.insert(key, encode(&record)?)?;
                    trust.insert(key, encode(&trust_record)?)?;
                    let entry = HistoryEntry {
                        version: 1,
                        at: cert.issued_at,
                        actor: issuance.actor.clone(),
                        change: trustca_store::DeviceChange::Enrolled {
                            level: device.certificate_level,
                        },
                        reason: "enrollment".into(),
                    };
                    history.insert(history_key(&device.identity_key, 1), encode(&entry)?)?;
                    certs.insert(cert.serial.as_slice(), encode(cert)?)?;
                    fps.insert(fp.as_ref(), cert.serial.as_slice())?;
                    if audit_on {
                        let mut entry = AuditEntry {
                            seq: frontier.size(),
                            at: cert.issued_at,
                            actor: issuance.actor.clone(),
                            kind: issuance.audit_kind.clone(),
                            subject: serial_hex,
                            detail: issuance.audit_detail.clone(),
                            leaf_hash: [0; 32],
                        };
                        let (_, leaf) = frontier
                            .push_entry(&entry.leaf_bytes())
                            .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                        entry.leaf_hash = leaf;
                        if mode == Audit::PerGroup {
                            group_entries.push(entry);
                        } else {
                            audit.insert(&entry.seq.to_be_bytes(), encode(&entry)?)?;
                        }
                    }
                    n += 1;
                }
                add_counter(meta, COUNT_CERTS, n)?;
                add_counter(meta, COUNT_DEVICES, n)?;
                if !group_entries.is_empty() {
                    audit.insert(&first.to_be_bytes(), encode(&group_entries)?)?;
                }
                if audit_on {
                    meta.insert(AUDIT_FRONTIER, frontier.to_bytes())?;
                }
                Ok(())
            });
        match r {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => bail!("replica commit refused: {e}"),
            Err(TransactionError::Storage(e)) => return Err(anyhow!("replica commit: {e}")),
        }
        let t2 = Instant::now();
        self.db.flush()?;
        Ok(Spent {
            commit: t2 - t,
            flush: t2.elapsed(),
        })
    }
}

/// The audit work alone, without sled; returns the time and the encoded
/// entry bytes in all.
fn audit_alone(batches: &[Vec<Issuance>]) -> Result<(Duration, usize)> {
    let mut stored = MerkleFrontier::new().to_bytes();
    let mut bytes = 0usize;
    let start = Instant::now();
    for batch in batches {
        let mut frontier = MerkleFrontier::from_bytes(&stored)?;
        for issuance in batch {
            let cert = &issuance.certificate;
            let mut entry = AuditEntry {
                seq: frontier.size(),
                at: cert.issued_at,
                actor: issuance.actor.clone(),
                kind: issuance.audit_kind.clone(),
                subject: trustca_model::hexfmt::encode(&cert.serial),
                detail: issuance.audit_detail.clone(),
                leaf_hash: [0; 32],
            };
            let (_, leaf) = frontier.push_entry(&entry.leaf_bytes())?;
            entry.leaf_hash = leaf;
            bytes += std::hint::black_box(postcard::to_stdvec(&entry)?).len();
        }
        stored = frontier.to_bytes();
    }
    Ok((start.elapsed(), bytes))
}

/// The real store, the replica with and without the audit log, and the
/// audit work alone, over `issuances` issuances in `rounds` rounds.
pub fn measure(
    template: &Template,
    issuances: usize,
    rounds: usize,
    aim_share: f64,
) -> Result<(Vec<Row>, Vec<Figure>)> {
    let all = template.issuances(0, issuances)?;
    let batches: Vec<Vec<Issuance>> = all.chunks(GROUP).map(<[Issuance]>::to_vec).collect();
    drop(all);
    let scratch = tempfile::tempdir()?;
    let mut totals = [Spent::default(); 4];
    let mut per_group: [Vec<Duration>; 4] = Default::default();
    for round in 0..rounds.max(1) {
        crate::progress(&format!(
            "audit: round {} of {}, {issuances} issuances into each of 4 stores",
            round + 1,
            rounds.max(1)
        ));
        let dir = |name: &str| scratch.path().join(format!("{name}{round}"));
        let stores: [Box<dyn GroupStore>; 4] = [
            Box::new(SledStorage::open(&dir("real")).context("open a scratch store")?),
            Box::new(Replica::open(&dir("on"), Audit::PerEntry)?),
            Box::new(Replica::open(&dir("off"), Audit::Off)?),
            Box::new(Replica::open(&dir("group"), Audit::PerGroup)?),
        ];
        for (g, batch) in batches.iter().enumerate() {
            for k in 0..stores.len() {
                // Rotate who goes first, so no store always follows another's flush.
                let which = (g + k) % stores.len();
                let spent = stores[which].commit_group(batch)?;
                totals[which].add(spent);
                per_group[which].push(spent.total());
            }
        }
        drop(stores);
        std::fs::remove_dir_all(scratch.path())?;
        std::fs::create_dir_all(scratch.path())?;
    }
    let [real_t, on_t, off_t, group_t] = totals;
    let medians = per_group.map(median);
    let [real_m, on_m, off_m, group_m] = medians.map(|d| d.as_secs_f64());
    let (alone, entry_bytes) = audit_alone(&batches)?;
    let n = (issuances * rounds.max(1)) as u64;
    let us = |d: Duration, count: u64| d.as_secs_f64() * 1e6 / count.max(1) as f64;
    let groups = batches.len() * rounds.max(1);
    let row = |key: &'static str, label: &str, s: Spent, extra: &str| Row {
        key,
        label: label.into(),
        group: Group::Breakdown,
        ops: n,
        errors: 0,
        elapsed: s.total(),
        latency: None,
        note: format!(
            "groups of {GROUP}, interleaved, {rounds} round(s); commit {:.1} us/item, flush {:.2} ms/group ({:.1} us/item){extra}",
            us(s.commit, n),
            s.flush.as_secs_f64() * 1e3 / groups.max(1) as f64,
            us(s.flush, n)
        ),
    };
    let rows = vec![
        row(
            "audit_store_real",
            "store: commit_issuances + flush (real, audit on)",
            real_t,
            "",
        ),
        row(
            "audit_replica_on",
            "replica of the group commit, audit on",
            on_t,
            &format!(
                "; {:.0}% of the real store's time",
                100.0 * on_t.total().as_secs_f64() / real_t.total().as_secs_f64().max(1e-9)
            ),
        ),
        row(
            "audit_replica_off",
            "replica of the group commit, audit off",
            off_t,
            "",
        ),
        row(
            "audit_replica_group",
            "what-if: replica, audit entries one sled value per group",
            group_t,
            "",
        ),
        Row {
            key: "audit_alone",
            label: "audit work alone (entry, leaf hash, frontier push, encode)".into(),
            group: Group::Breakdown,
            ops: issuances as u64,
            errors: 0,
            elapsed: alone,
            latency: None,
            note: format!(
                "1 thread, no sled; {:.2} us/entry; frontier read+written once per group; entries {:.0} bytes encoded",
                us(alone, issuances as u64),
                entry_bytes as f64 / issuances.max(1) as f64
            ),
        },
    ];
    let share_sum = 100.0 * (on_t.total().as_secs_f64() - off_t.total().as_secs_f64())
        / on_t.total().as_secs_f64().max(1e-9);
    let share = 100.0 * (on_m - off_m) / on_m.max(1e-12);
    let share_commit = 100.0 * (on_t.commit.as_secs_f64() - off_t.commit.as_secs_f64())
        / on_t.commit.as_secs_f64().max(1e-9);
    let group_share = 100.0 * (group_m - off_m) / group_m.max(1e-12);
    let cpu_share = 100.0 * alone.as_secs_f64()
        / issuances.max(1) as f64
        / (real_t.total().as_secs_f64() / n.max(1) as f64).max(1e-12);
    let figures = vec![
        Figure::new(
            "audit_share_store",
            "audit log share of the per-issuance store cost (replica on vs off)",
            share,
            "%",
        )
        .aim(true, aim_share)
        .note(format!(
            "median group {:.2} vs {:.2} ms (real store {:.2} ms); from the sums {share_sum:.1}%, commit alone {share_commit:.1}%; an upper bound on the enrollment throughput drop while the store commit is the bottleneck",
            on_m * 1e3,
            off_m * 1e3,
            real_m * 1e3
        )),
        Figure::new(
            "audit_share_store_per_group",
            "what-if: audit share with one sled value per group",
            group_share,
            "%",
        )
        .aim(true, aim_share)
        .note(format!(
            "median group {:.2} vs {:.2} ms without the audit log",
            group_m * 1e3,
            off_m * 1e3
        )),
        Figure::new(
            "audit_cpu_share",
            "audit work alone / real store cost per issuance",
            cpu_share,
            "%",
        )
        .note(format!(
            "{:.2} us of {:.1} us; the rest of the audit share is sled writing the entry",
            us(alone, issuances as u64),
            us(real_t.total(), n)
        )),
    ];
    Ok((rows, figures))
}
