//! The embedded fjall backend: an LSM store with lz4-compressed tables,
//! one keyspace per record kind (the same keys and values as sled's
//! trees); every write is one fjall write transaction running the rules
//! of [`crate::rules`].
//!
//! fjall's single-writer transactional database serialises write
//! transactions (as sled's serialise anyway) and commits every keyspace a
//! transaction touched atomically; reads inside it see its own writes.
//! A commit hands its journal entry to the operating system; `flush`
//! makes everything committed durable with one fsync of the journal, so
//! the group committer keeps one fsync per group. At 100k devices the same
//! records took 901 bytes per device in fjall's tables against 6,779 in
//! sled (`BENCHMARKS.md`, "fjall beside sled").

use std::cell::RefCell;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use fjall::{PersistMode, SingleWriterTxDatabase, SingleWriterTxKeyspace};

use crate::embedded::{self, Engine, OrderedTables, Records, Table};
use crate::rules::{self, RecordTxn};
use crate::seal::{self, RecordSeal, Sealed};
use crate::sled_store::CloseWaiter;
use crate::{KeyValue, StoreError};

/// fjall-backed [`crate::Storage`].
#[derive(Clone)]
pub struct FjallStorage {
    db: SingleWriterTxDatabase,
    spaces: Arc<Spaces>,
    /// The key that seals certificate, device and trust records
    /// (`seal.rs`), once set.
    seal: Arc<std::sync::OnceLock<Arc<RecordSeal>>>,
    /// Grows after every write transaction ([`crate::Storage::change_marker`]);
    /// shared by clones. fjall's lock file keeps other processes out.
    changes: Arc<std::sync::atomic::AtomicU64>,
    // Declared last so it drops after the database: its receiver then
    // learns that the files are closed and unlocked.
    _closed: Arc<std::sync::mpsc::SyncSender<()>>,
}

impl std::fmt::Debug for FjallStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStorage")
            .field("path", &self.spaces.path)
            .finish_non_exhaustive()
    }
}

/// The keyspaces: one per record kind, named as sled's trees.
struct Spaces {
    path: std::path::PathBuf,
    certs: SingleWriterTxKeyspace,
    devices: SingleWriterTxKeyspace,
    trust: SingleWriterTxKeyspace,
    history: SingleWriterTxKeyspace,
    audit: SingleWriterTxKeyspace,
    meta: SingleWriterTxKeyspace,
    fingerprints: SingleWriterTxKeyspace,
    revoked: SingleWriterTxKeyspace,
    heads: SingleWriterTxKeyspace,
    blobs: SingleWriterTxKeyspace,
    blocked_keys: SingleWriterTxKeyspace,
    /// Open attestation challenges: id digest → expiry (8 bytes, big
    /// endian) ‖ record.
    challenges: SingleWriterTxKeyspace,
}

impl Spaces {
    fn of(&self, table: Table) -> &SingleWriterTxKeyspace {
        match table {
            Table::Certificates => &self.certs,
            Table::Devices => &self.devices,
            Table::Trust => &self.trust,
            Table::History => &self.history,
            Table::Audit => &self.audit,
            Table::TreeHeads => &self.heads,
            Table::Revoked => &self.revoked,
            Table::BlockedKeys => &self.blocked_keys,
            Table::Blobs => &self.blobs,
            Table::Meta => &self.meta,
        }
    }
}

/// fjall's errors stay inside this module: callers see a [`StoreError`].
fn fjall_error(e: fjall::Error) -> StoreError {
    match e {
        fjall::Error::Io(io) | fjall::Error::Storage(fjall::LsmError::Io(io)) => io_error(&io),
        fjall::Error::Locked => StoreError::InUse("its directory".into()),
        // An earlier fsync failed: fjall accepts no write after it, and
        // its memory is not trusted (the guard reopens the store).
        fjall::Error::Poisoned => StoreError::Full(
            "an earlier write to the store's disk failed; the store must be reopened".into(),
        ),
        fjall::Error::KeyspaceDeleted => StoreError::Backend("a keyspace was deleted".into()),
        // Checksums, decompression, tags, versions, unrecoverable files:
        // damaged data on disk. fjall's texts are Debug dumps; clients
        // get words instead.
        other => StoreError::Corrupt {
            key: "storage engine table".into(),
            reason: format!(
                "the engine found damaged data on disk ({})",
                engine_error_kind(&other)
            ),
        },
    }
}

/// A short name of a fjall error for messages (its Display is a Debug
/// dump with checksums).
fn engine_error_kind(e: &fjall::Error) -> &'static str {
    match e {
        fjall::Error::Storage(fjall::LsmError::ChecksumMismatch { .. }) => "checksum mismatch",
        fjall::Error::Storage(fjall::LsmError::Decompress(_)) | fjall::Error::Decompress(_) => {
            "a block does not decompress"
        }
        fjall::Error::JournalRecovery(_) => "the journal does not replay",
        fjall::Error::InvalidVersion(_)
        | fjall::Error::Storage(fjall::LsmError::InvalidVersion(_)) => "an unknown format version",
        _ => "unreadable files",
    }
}

fn io_error(io: &std::io::Error) -> StoreError {
    match io.kind() {
        std::io::ErrorKind::StorageFull => {
            StoreError::Full("no space left on the store's disk".into())
        }
        // A file that ends early holds less than its index claims:
        // damaged data, not a passing I/O fault.
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData => {
            StoreError::Corrupt {
                key: "storage engine table".into(),
                reason: format!(
                    "the store's files end early or hold damaged data ({})",
                    io.kind()
                ),
            }
        }
        kind => StoreError::Backend(format!("I/O error on the store: {kind}")),
    }
}

/// One write transaction's rules, given the transaction as they see it.
type Rules<'r, R> = dyn Fn(&FjallTxn<'_, '_>) -> Result<R, StoreError> + 'r;

impl FjallStorage {
    /// Opens (or creates) a store in `dir` with the default settings.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self::open_with(dir, &FjallSettings::default())?.0)
    }

    /// Opens a store with `settings` and returns a waiter that tells when
    /// it (every clone) is closed.
    pub fn open_with(
        dir: &Path,
        settings: &FjallSettings,
    ) -> Result<(Self, CloseWaiter), StoreError> {
        embedded::refuse_other_engine(dir, Engine::Fjall)?;
        // A process that just closed the store may still be joining its
        // background threads for a moment: a restart retries briefly
        // before calling the directory in use.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let db = loop {
            match settings.open(dir) {
                Err(fjall::Error::Locked) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(fjall::Error::Locked) => {
                    return Err(StoreError::InUse(dir.display().to_string()));
                }
                other => break other.map_err(fjall_error)?,
            }
        };
        let space = |name: &str| {
            db.keyspace(name, || settings.keyspace())
                .map_err(fjall_error)
        };
        let spaces = Spaces {
            path: dir.to_path_buf(),
            certs: space("certificates")?,
            devices: space("devices")?,
            trust: space("trust")?,
            history: space("history")?,
            audit: space("audit")?,
            meta: space("meta")?,
            fingerprints: space("fingerprints")?,
            revoked: space("revoked")?,
            heads: space("tree_heads")?,
            blobs: space("blobs")?,
            blocked_keys: space("blocked_keys")?,
            challenges: space("attestation_challenges")?,
        };
        let (closed, waiter) = CloseWaiter::pair();
        let store = Self {
            db,
            spaces: Arc::new(spaces),
            seal: Arc::default(),
            changes: Arc::new(std::sync::atomic::AtomicU64::new(embedded::first_marker())),
            _closed: closed,
        };
        Ok((store, waiter))
    }

    fn seal(&self) -> Option<&RecordSeal> {
        self.seal.get().map(|s| &**s)
    }

    /// Runs `rules` in one write transaction and commits it when they
    /// succeed; a refusal rolls everything back.
    fn write<R>(&self, rules: &Rules<'_, R>) -> Result<R, StoreError> {
        let tx = RefCell::new(self.db.write_tx());
        // A panic inside the rules (a bug, never input) is caught while
        // the transaction is still open, so that fjall's writer lock is
        // released normally rather than poisoned for every later write.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rules(&FjallTxn {
                tx: &tx,
                spaces: &self.spaces,
                seal: self.seal(),
            })
        }))
        .unwrap_or_else(|_| {
            Err(StoreError::Backend(
                "a store rule failed unexpectedly; nothing was written".into(),
            ))
        });
        let result = match outcome {
            Ok(r) => tx.into_inner().commit().map_err(fjall_error).map(|()| r),
            Err(e) => {
                tx.into_inner().rollback();
                Err(e)
            }
        };
        // After the commit, whatever its outcome: a reader that saw the
        // old marker read at most what was there before this write.
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        result
    }

    /// Like [`Self::write`], then durable.
    fn write_durably<R>(&self, rules: &Rules<'_, R>) -> Result<R, StoreError> {
        let r = self.write(rules)?;
        self.persist()?;
        Ok(r)
    }

    /// Everything committed so far, on stable storage (one fsync).
    fn persist(&self) -> Result<(), StoreError> {
        self.db.persist(PersistMode::SyncAll).map_err(fjall_error)
    }

    fn get(
        &self,
        table: &SingleWriterTxKeyspace,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(table.get(key).map_err(fjall_error)?.map(|v| v.to_vec()))
    }

    fn get_sealed<T: serde::de::DeserializeOwned>(
        &self,
        table: &SingleWriterTxKeyspace,
        sealed: Sealed,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let stored = table.get(key).map_err(fjall_error)?;
        seal::sealed_value(stored.as_deref(), self.seal(), sealed, key)
    }

    fn counter(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(embedded::counter_value(
            self.spaces.meta.get(key).map_err(fjall_error)?.as_deref(),
        ))
    }

    /// The newest `n` records of `table`, newest first.
    fn last_records(&self, table: Table, n: usize) -> Result<Vec<KeyValue>, StoreError> {
        self.spaces
            .of(table)
            .inner()
            .iter()
            .rev()
            .take(n)
            .map(|g| pair(g.into_inner()))
            .collect()
    }
}

/// Bytes the files under `dir` occupy on disk. fjall sizes a new journal
/// file to its whole bound up front (64 MiB long, few blocks written), so
/// lengths would overstate a young store; allocated blocks do not.
fn allocated_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            allocated_bytes(&entry.path())?
        } else {
            file_bytes(&meta)
        };
    }
    Ok(total)
}

#[cfg(unix)]
fn file_bytes(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

#[cfg(not(unix))]
fn file_bytes(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

/// A record read from a table iterator, as owned bytes.
fn pair(kv: fjall::Result<fjall::KvPair>) -> Result<KeyValue, StoreError> {
    let (k, v) = kv.map_err(fjall_error)?;
    Ok((k.to_vec(), v.to_vec()))
}

impl OrderedTables for FjallStorage {
    fn records(&self, table: Table, start: Bound<Vec<u8>>) -> Records<'_> {
        let iter = self
            .spaces
            .of(table)
            .inner()
            .range::<Vec<u8>, _>((start, Bound::Unbounded));
        Box::new(iter.map(|g| pair(g.into_inner())))
    }

    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal()
    }
}

mod settings;
mod storage;
mod txn;

pub use settings::{
    DEFAULT_BLOCK_BYTES, DEFAULT_FJALL_CACHE_BYTES, DEFAULT_JOURNAL_BYTES, DEFAULT_MEMTABLE_BYTES,
    FjallSettings,
};

use txn::FjallTxn;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FailureClass;

    #[test]
    fn engine_errors_become_store_errors_of_their_kind() {
        let full = fjall_error(fjall::Error::Io(std::io::Error::from(
            std::io::ErrorKind::StorageFull,
        )));
        assert_eq!(full.class(), FailureClass::ResourceExhausted, "{full}");
        let short = fjall_error(fjall::Error::Io(std::io::Error::from(
            std::io::ErrorKind::UnexpectedEof,
        )));
        assert_eq!(short.class(), FailureClass::DataLoss, "{short}");
        let bad = fjall_error(fjall::Error::Storage(fjall::LsmError::InvalidTrailer));
        assert_eq!(bad.class(), FailureClass::DataLoss, "{bad}");
        assert!(!bad.to_string().contains("LsmTreeError"), "{bad}");
        let locked = fjall_error(fjall::Error::Locked);
        assert_eq!(locked.class(), FailureClass::Unavailable, "{locked}");
    }

    #[test]
    fn a_second_opening_is_refused_as_in_use_and_the_waiter_sees_the_close() {
        let dir = tempfile::tempdir().unwrap();
        let (store, closed) =
            FjallStorage::open_with(dir.path(), &FjallSettings::default()).unwrap();
        let again = FjallStorage::open(dir.path()).unwrap_err();
        assert!(matches!(again, StoreError::InUse(_)), "{again}");
        let clone = store.clone();
        drop(store);
        assert!(!closed.wait(std::time::Duration::from_millis(50)));
        drop(clone);
        assert!(closed.wait(std::time::Duration::from_secs(5)));
        FjallStorage::open(dir.path()).unwrap();
    }

    #[test]
    fn neither_engine_opens_the_others_directory() {
        let sled_dir = tempfile::tempdir().unwrap();
        drop(crate::SledStorage::open(sled_dir.path()).unwrap());
        let e = FjallStorage::open(sled_dir.path()).unwrap_err();
        assert!(e.to_string().contains("holds a sled store"), "{e}");
        let fjall_dir = tempfile::tempdir().unwrap();
        drop(FjallStorage::open(fjall_dir.path()).unwrap());
        let e = crate::SledStorage::open(fjall_dir.path()).unwrap_err();
        assert!(e.to_string().contains("holds a fjall store"), "{e}");
        // Both refused without writing a file of their own there.
        assert!(!sled_dir.path().join("version").exists());
        assert!(!fjall_dir.path().join("conf").exists());
    }
}
