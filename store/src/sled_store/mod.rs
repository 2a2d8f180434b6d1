//! The embedded sled backend: one tree per record kind; every write is one
//! multi-tree transaction running the rules of [`crate::rules`].

use std::path::Path;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::embedded::{
    self, AUDIT_FRONTIER, COUNT_CERTS, COUNT_DEVICES, blob_key, crl_number_key, history_key,
};
use crate::records::{decode, encode};
use crate::rules::{self, RecordTxn};
use crate::seal::{self, RecordSeal, Sealed, Stamp};
use crate::vouched;
use crate::{
    AuditEntry, BlockedKey, CertificateRecord, DeviceRecord, HistoryEntry, Issuance, Storage,
    StoreError, StoredRecord, TrustChange, TrustRecord,
};

/// sled-backed [`Storage`].
#[derive(Debug, Clone)]
pub struct SledStorage {
    db: sled::Db,
    certs: sled::Tree,
    devices: sled::Tree,
    trust: sled::Tree,
    history: sled::Tree,
    audit: sled::Tree,
    meta: sled::Tree,
    fingerprints: sled::Tree,
    revoked: sled::Tree,
    heads: sled::Tree,
    blobs: sled::Tree,
    blocked_keys: sled::Tree,
    /// Open attestation challenges: id digest → expiry (8 bytes, big
    /// endian) ‖ record. Outside the write transactions: a challenge is
    /// taken with one atomic remove.
    challenges: sled::Tree,
    /// Serialises the count-and-insert of [`Storage::challenge_put`].
    challenge_lock: Arc<std::sync::Mutex<()>>,
    /// The key that seals certificate, device and trust records (`seal.rs`), once set.
    seal: std::sync::OnceLock<Arc<RecordSeal>>,
    /// Grows after every write transaction ([`Storage::change_marker`]);
    /// shared by clones. sled's lock keeps other processes out.
    changes: Arc<std::sync::atomic::AtomicU64>,
    // Declared last so it drops after the database: its receiver then
    // learns that the files are closed and unlocked.
    _closed: Arc<std::sync::mpsc::SyncSender<()>>,
}

/// Waits for a [`SledStorage`] (all its clones) to be closed.
#[derive(Debug)]
pub struct CloseWaiter(std::sync::mpsc::Receiver<()>);

impl CloseWaiter {
    /// A waiter and the sender whose last clone's drop wakes it.
    pub(crate) fn pair() -> (Arc<std::sync::mpsc::SyncSender<()>>, Self) {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        (Arc::new(tx), Self(rx))
    }

    /// Blocks until the store is closed or `timeout` passes; true if closed.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        matches!(
            self.0.recv_timeout(timeout),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

/// sled's errors stay inside this module: callers see a [`StoreError`].
fn sled_error(e: sled::Error) -> StoreError {
    match e {
        // sled wraps the OS error; its kind survives.
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
            StoreError::Full("no space left on the store's disk".into())
        }
        // A file that ends early (cut off, half-copied) holds less than
        // its pages claim: damaged data, not a passing I/O fault.
        sled::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
            ) =>
        {
            StoreError::Corrupt {
                key: "storage engine page".into(),
                reason: format!(
                    "the store's files end early or hold damaged data ({})",
                    io.kind()
                ),
            }
        }
        // sled's texts for these embed Debug dumps (`Os { code: .. }`,
        // `Some(Inline(..)) backtrace ()`); clients get words instead.
        sled::Error::Io(io) => {
            StoreError::Backend(format!("I/O error on the store: {}", io.kind()))
        }
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            key: "storage engine page".into(),
            reason: "the engine found damaged data on disk".into(),
        },
        other => StoreError::Backend(other.to_string()),
    }
}

type Abort = ConflictableTransactionError<StoreError>;

fn abort(e: StoreError) -> Abort {
    ConflictableTransactionError::Abort(e)
}

/// Every tree a write transaction may touch, in the order of
/// [`SledStorage::write_trees`].
type WriteView = (
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
    TransactionalTree,
);

impl SledStorage {
    /// Opens (or creates) a store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self::open_with_close_waiter(dir)?.0)
    }

    /// Opens a store and returns a waiter that tells when it is closed.
    pub fn open_with_close_waiter(dir: &Path) -> Result<(Self, CloseWaiter), StoreError> {
        Self::open_with(dir, &SledSettings::default())
    }

    fn open_db(dir: &Path, settings: &SledSettings) -> Result<sled::Db, StoreError> {
        settings.config(dir).open().map_err(|e| match e {
            // sled reports a held lock as an I/O error whose text
            // embeds a Debug dump; callers get a sentence instead.
            sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock") => {
                StoreError::InUse(dir.display().to_string())
            }
            other => sled_error(other),
        })
    }

    /// Opens a store with `settings` (sled's cache and compression) and
    /// returns a waiter that tells when it is closed.
    pub fn open_with(
        dir: &Path,
        settings: &SledSettings,
    ) -> Result<(Self, CloseWaiter), StoreError> {
        embedded::refuse_other_engine(dir, embedded::Engine::Sled)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // A process that just closed the store may still be releasing
        // sled's file lock from a background thread for a moment: a
        // restart (or a test reopening after shutdown) retries briefly
        // before calling the directory in use.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let db = loop {
            match Self::open_db(dir, settings) {
                Err(StoreError::InUse(_)) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other?,
            }
        };
        let store = Self {
            certs: db.open_tree("certificates").map_err(sled_error)?,
            devices: db.open_tree("devices").map_err(sled_error)?,
            trust: db.open_tree("trust").map_err(sled_error)?,
            history: db.open_tree("history").map_err(sled_error)?,
            audit: db.open_tree("audit").map_err(sled_error)?,
            meta: db.open_tree("meta").map_err(sled_error)?,
            fingerprints: db.open_tree("fingerprints").map_err(sled_error)?,
            revoked: db.open_tree("revoked").map_err(sled_error)?,
            heads: db.open_tree("tree_heads").map_err(sled_error)?,
            blobs: db.open_tree("blobs").map_err(sled_error)?,
            blocked_keys: db.open_tree("blocked_keys").map_err(sled_error)?,
            challenges: db.open_tree("attestation_challenges").map_err(sled_error)?,
            challenge_lock: Arc::new(std::sync::Mutex::new(())),
            seal: std::sync::OnceLock::new(),
            changes: Arc::new(std::sync::atomic::AtomicU64::new(embedded::first_marker())),
            db,
            _closed: Arc::new(tx),
        };
        Ok((store, CloseWaiter(rx)))
    }

    /// Runs `rules` in one transaction over every write tree. sled
    /// retries it on conflicts; an abort carries the rule's refusal.
    fn write<R>(
        &self,
        rules: impl Fn(&SledTxn<'_, WriteView>) -> Result<R, Abort>,
    ) -> Result<R, StoreError> {
        self.write_view(|view| rules(&SledTxn::new(view, self.record_seal())))
    }

    /// Runs `body` in one transaction over every write tree's view.
    fn write_view<R>(
        &self,
        body: impl Fn(&WriteView) -> Result<R, Abort>,
    ) -> Result<R, StoreError> {
        let trees = (
            &self.certs,
            &self.devices,
            &self.trust,
            &self.history,
            &self.audit,
            &self.meta,
            &self.fingerprints,
            &self.revoked,
            &self.blobs,
            &self.blocked_keys,
            &self.heads,
        );
        let result = trees
            .transaction(|view: &WriteView| body(view))
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => sled_error(e),
            });
        // After the commit, whatever its outcome: a reader that saw the
        // old marker read at most what was there before this write.
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        result
    }

    /// The seal records are written and read under, once set.
    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal.get().map(|s| &**s)
    }

    /// Like [`Self::write`], then durable.
    fn write_durably<R>(
        &self,
        rules: impl Fn(&SledTxn<'_, WriteView>) -> Result<R, Abort>,
    ) -> Result<R, StoreError> {
        let r = self.write(rules)?;
        self.db.flush().map_err(sled_error)?;
        Ok(r)
    }

    fn get<T: serde::de::DeserializeOwned>(
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key).map_err(sled_error)? {
            Some(v) => decode(key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn get_sealed<T: serde::de::DeserializeOwned>(
        &self,
        tree: &sled::Tree,
        table: Sealed,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        let stored = tree.get(key).map_err(sled_error)?;
        seal::sealed_value(stored.as_deref(), self.seal.get().map(|s| &**s), table, key)
    }

    fn counter(&self, key: &[u8]) -> Result<u64, StoreError> {
        let stored = self.meta.get(key).map_err(sled_error)?;
        Ok(embedded::counter_value(stored.as_deref()))
    }
}

mod settings;
mod staged;
mod storage;
mod txn;

pub use settings::{DEFAULT_CACHE_BYTES, DEFAULT_COMPRESSION_LEVEL, SledSettings, raw_sled_config};

use txn::SledTxn;

#[cfg(test)]
mod tests {
    use super::sled_error;
    use crate::FailureClass;

    #[test]
    fn a_file_that_ends_early_is_data_loss_not_internal() {
        for kind in [
            std::io::ErrorKind::UnexpectedEof,
            std::io::ErrorKind::InvalidData,
        ] {
            let e = sled_error(sled::Error::Io(std::io::Error::new(kind, "short read")));
            assert_eq!(e.class(), FailureClass::DataLoss, "{e}");
        }
        let e = sled_error(sled::Error::Io(std::io::Error::other("transient")));
        assert_eq!(e.class(), FailureClass::Internal, "{e}");
    }
}
