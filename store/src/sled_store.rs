//! The embedded sled backend: one tree per record kind; every write is one
//! multi-tree transaction running the rules of [`crate::rules`].

use std::path::Path;
use std::sync::Arc;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::records::{decode, encode};
use crate::rules::{self, RecordTxn};
use crate::seal::{self, RecordSeal, Sealed, Stamp};
use crate::vouched;
use crate::{
    AuditEntry, BlockedKey, CertificateRecord, DeviceRecord, HistoryEntry, Issuance, Storage,
    StoreError, StoredRecord, TrustChange, TrustRecord,
};

const AUDIT_FRONTIER: &[u8] = b"audit.frontier";
const COUNT_CERTS: &[u8] = b"count.certificates";
const COUNT_DEVICES: &[u8] = b"count.devices";

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
    /// The key that seals certificate, device and trust records (`seal.rs`), once set.
    seal: std::sync::OnceLock<Arc<RecordSeal>>,
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

fn blob_key(space: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(space.len() + 1 + key.len());
    k.extend_from_slice(space.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn history_key(identity_key: &str, version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(identity_key.len() + 9);
    k.extend_from_slice(identity_key.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

type Abort = ConflictableTransactionError<StoreError>;

fn abort(e: StoreError) -> Abort {
    ConflictableTransactionError::Abort(e)
}

fn tx_get<T: serde::de::DeserializeOwned>(
    tree: &TransactionalTree,
    key: &[u8],
) -> Result<Option<T>, Abort> {
    match tree.get(key)? {
        Some(v) => decode(key, &v).map(Some).map_err(abort),
        None => Ok(None),
    }
}

/// Reads a sealed record inside a transaction (see `seal.rs`): rules
/// never build on a record the log does not vouch for.
fn tx_get_sealed<T: serde::de::DeserializeOwned>(
    tree: &TransactionalTree,
    s: Option<&RecordSeal>,
    table: Sealed,
    key: &[u8],
) -> Result<Option<T>, Abort> {
    seal::sealed_value(tree.get(key)?.as_deref(), s, table, key).map_err(abort)
}

fn tx_put_sealed<T: serde::Serialize>(
    tree: &TransactionalTree,
    s: Option<&RecordSeal>,
    table: Sealed,
    key: &[u8],
    v: &T,
    stamp: Stamp,
) -> Result<(), Abort> {
    let body = encode(v).map_err(abort)?;
    let sealed = seal::seal(s, table, &seal::seal_key(table, key), body, stamp);
    tree.insert(key, sealed)?;
    Ok(())
}

fn tx_put<T: serde::Serialize>(tree: &TransactionalTree, key: &[u8], v: &T) -> Result<(), Abort> {
    tree.insert(key, encode(v).map_err(abort)?)?;
    Ok(())
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

/// One sled transaction seen through [`RecordTxn`]: the rules run on it
/// and sled retries them on conflicts.
struct SledTxn<'a> {
    certs: &'a TransactionalTree,
    devices: &'a TransactionalTree,
    trust: &'a TransactionalTree,
    history: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    meta: &'a TransactionalTree,
    fingerprints: &'a TransactionalTree,
    revoked: &'a TransactionalTree,
    blobs: &'a TransactionalTree,
    blocked_keys: &'a TransactionalTree,
    heads: &'a TransactionalTree,
    seal: Option<&'a RecordSeal>,
}

impl<'a> SledTxn<'a> {
    fn new(v: &'a WriteView, seal: Option<&'a RecordSeal>) -> Self {
        Self {
            seal,
            certs: &v.0,
            devices: &v.1,
            trust: &v.2,
            history: &v.3,
            audit: &v.4,
            meta: &v.5,
            fingerprints: &v.6,
            revoked: &v.7,
            blobs: &v.8,
            blocked_keys: &v.9,
            heads: &v.10,
        }
    }

    fn add(&self, key: &[u8], n: u64) -> Result<(), Abort> {
        if n == 0 {
            return Ok(());
        }
        let old = match self.meta.get(key)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
            None => 0,
        };
        self.meta.insert(key, &(old + n).to_be_bytes())?;
        Ok(())
    }
}

impl RecordTxn for SledTxn<'_> {
    type Fail = Abort;

    fn fail(e: StoreError) -> Abort {
        abort(e)
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, Abort> {
        tx_get_sealed(self.certs, self.seal, Sealed::Certificate, serial)
    }

    fn insert_certificate(
        &self,
        record: &CertificateRecord,
        fingerprint: &[u8; 32],
        stamp: Stamp,
    ) -> Result<(), Abort> {
        self.update_certificate(record, stamp)?;
        self.fingerprints
            .insert(fingerprint.as_slice(), record.serial.as_slice())?;
        Ok(())
    }

    fn update_certificate(&self, record: &CertificateRecord, stamp: Stamp) -> Result<(), Abort> {
        let key = &record.serial;
        tx_put_sealed(
            self.certs,
            self.seal,
            Sealed::Certificate,
            key,
            record,
            stamp,
        )
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, Abort> {
        let key = identity_key.as_bytes();
        tx_get_sealed(self.devices, self.seal, Sealed::Device, key)
    }

    fn put_device(&self, record: &DeviceRecord, stamp: Stamp) -> Result<(), Abort> {
        let key = record.identity_key.as_bytes();
        tx_put_sealed(self.devices, self.seal, Sealed::Device, key, record, stamp)
    }

    fn trust(&self, identity_key: &str) -> Result<Option<TrustRecord>, Abort> {
        let key = identity_key.as_bytes();
        tx_get_sealed(self.trust, self.seal, Sealed::Trust, key)
    }

    fn put_trust(&self, record: &TrustRecord, stamp: Stamp) -> Result<(), Abort> {
        let key = record.identity_key.as_bytes();
        tx_put_sealed(self.trust, self.seal, Sealed::Trust, key, record, stamp)
    }

    fn history_entry(
        &self,
        identity_key: &str,
        version: u64,
    ) -> Result<Option<HistoryEntry>, Abort> {
        tx_get(self.history, &history_key(identity_key, version))
    }

    fn put_history(&self, identity_key: &str, entry: &HistoryEntry) -> Result<(), Abort> {
        tx_put(
            self.history,
            &history_key(identity_key, entry.version),
            entry,
        )
    }

    fn blocked_key(&self, fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, Abort> {
        vouched::vouch_blocked(
            self.seal,
            fingerprint,
            tx_get(self.blocked_keys, fingerprint)?,
        )
        .map_err(abort)
    }

    fn put_blocked_key(&self, fingerprint: &[u8; 32], block: &BlockedKey) -> Result<(), Abort> {
        tx_put(self.blocked_keys, fingerprint, block)
    }

    fn put_revoked(&self, sector: &str, serial: &[u8], at: i64, reason: u8) -> Result<(), Abort> {
        let mut key = sector.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(serial);
        let mut value = at.to_be_bytes().to_vec();
        value.push(reason);
        self.revoked.insert(key, value)?;
        Ok(())
    }

    fn audit_frontier(&self) -> Result<trustca_audit::MerkleFrontier, Abort> {
        match self.meta.get(AUDIT_FRONTIER)? {
            Some(v) => trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| {
                abort(StoreError::Corrupt {
                    key: "audit.frontier".into(),
                    reason: e.to_string(),
                })
            }),
            None => Ok(trustca_audit::MerkleFrontier::new()),
        }
    }

    fn put_audit_entry(&self, entry: &AuditEntry) -> Result<(), Abort> {
        tx_put(self.audit, &entry.seq.to_be_bytes(), entry)
    }

    fn put_audit_frontier(&self, frontier: &trustca_audit::MerkleFrontier) -> Result<(), Abort> {
        self.meta.insert(AUDIT_FRONTIER, frontier.to_bytes())?;
        Ok(())
    }

    fn add_counts(&self, certificates: u64, devices: u64) -> Result<(), Abort> {
        self.add(COUNT_CERTS, certificates)?;
        self.add(COUNT_DEVICES, devices)
    }

    fn blob(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Abort> {
        Ok(self.blobs.get(blob_key(space, key))?.map(|v| v.to_vec()))
    }

    fn put_blob(&self, space: &str, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        self.blobs.insert(blob_key(space, key), value)?;
        Ok(())
    }

    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal
    }

    fn put_tree_head(&self, size: u64, head: &[u8]) -> Result<(), Abort> {
        self.heads.insert(&size.to_be_bytes(), head)?;
        Ok(())
    }

    fn set_crl_number(&self, sector: &str, number: u64) -> Result<(), Abort> {
        self.meta
            .insert(crl_number_key(sector).as_bytes(), &number.to_be_bytes())?;
        Ok(())
    }
}

fn crl_number_key(sector: &str) -> String {
    format!("{CRL_NUMBER_PREFIX}{sector}")
}

const CRL_NUMBER_PREFIX: &str = "crl.number.";

fn be_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            key: what.into(),
            reason: "not an 8-byte number".into(),
        })
}

impl SledStorage {
    /// Opens (or creates) a store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self::open_with_close_waiter(dir)?.0)
    }

    fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
        sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            // Every write path flushes explicitly (group commit, operator
            // changes); a background flusher would only add work.
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                // sled reports a held lock as an I/O error whose text
                // embeds a Debug dump; callers get a sentence instead.
                sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock") => {
                    StoreError::InUse(dir.display().to_string())
                }
                other => sled_error(other),
            })
    }

    /// Opens a store and returns a waiter that tells when it is closed.
    pub fn open_with_close_waiter(dir: &Path) -> Result<(Self, CloseWaiter), StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // A process that just closed the store may still be releasing
        // sled's file lock from a background thread for a moment: a
        // restart (or a test reopening after shutdown) retries briefly
        // before calling the directory in use.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let db = loop {
            match Self::open_db(dir) {
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
            seal: std::sync::OnceLock::new(),
            db,
            _closed: Arc::new(tx),
        };
        Ok((store, CloseWaiter(rx)))
    }

    /// Runs `rules` in one transaction over every write tree. sled
    /// retries it on conflicts; an abort carries the rule's refusal.
    fn write<R>(&self, rules: impl Fn(&SledTxn<'_>) -> Result<R, Abort>) -> Result<R, StoreError> {
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
        trees
            .transaction(|view: &WriteView| {
                rules(&SledTxn::new(view, self.seal.get().map(|s| &**s)))
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => sled_error(e),
            })
    }

    /// Like [`Self::write`], then durable.
    fn write_durably<R>(
        &self,
        rules: impl Fn(&SledTxn<'_>) -> Result<R, Abort>,
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
        Ok(match self.meta.get(key).map_err(sled_error)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
            None => 0,
        })
    }
}

impl Storage for SledStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        match self.write(|t| rules::issue_group(t, batch)) {
            Ok(r) => r,
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(sled_error)?;
        Ok(())
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.get_sealed(&self.devices, Sealed::Device, identity_key.as_bytes())
    }

    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        self.get_sealed(&self.trust, Sealed::Trust, identity_key.as_bytes())
    }

    fn set_record_seal(&self, seal: Arc<RecordSeal>) {
        let _ = self.seal.set(seal);
    }

    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut prefix = identity_key.as_bytes().to_vec();
        prefix.push(0);
        self.history
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                decode(&k, &v)
            })
            .collect()
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        self.get_sealed(&self.certs, Sealed::Certificate, serial)
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((self.counter(COUNT_CERTS)?, self.counter(COUNT_DEVICES)?))
    }

    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                decode(&k, &v)
            })
            .collect()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(sled_error)
    }

    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .fingerprints
            .get(fingerprint)
            .map_err(sled_error)?
            .map(|v| v.to_vec()))
    }

    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write_durably(|t| rules::apply_trust_changes(t, changes, at))
    }

    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        self.write_durably(|t| rules::transfer_trust(t, from, to, actor, reason, at))
    }

    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.audit
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                let index =
                    u64::from_be_bytes(k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                        key: "audit".into(),
                        reason: "key is not an index".into(),
                    })?);
                Ok((index, v.to_vec()))
            })
            .collect()
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let frontier = match self.meta.get(AUDIT_FRONTIER).map_err(sled_error)? {
            Some(v) => {
                trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                    key: "audit.frontier".into(),
                    reason: e.to_string(),
                })?
            }
            None => trustca_audit::MerkleFrontier::new(),
        };
        Ok((frontier.size(), frontier.root()))
    }

    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.heads
            .insert(size.to_be_bytes(), signed_head)
            .map_err(sled_error)?;
        self.heads.flush().map_err(sled_error)?;
        Ok(())
    }

    fn tree_heads(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.heads
            .iter()
            .values()
            .map(|v| Ok(v.map_err(sled_error)?.to_vec()))
            .collect()
    }

    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.write_durably(|t| rules::revoke(t, serials, reason, actor, note, at))
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        vouched::vouch_blocked(
            self.seal.get().map(|s| &**s),
            key_fingerprint,
            Self::get(&self.blocked_keys, key_fingerprint)?,
        )
    }

    fn revoked_in_sector(&self, sector: &str) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        let mut prefix = sector.as_bytes().to_vec();
        prefix.push(0);
        self.revoked
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                if v.len() != 9 {
                    return Err(StoreError::Corrupt {
                        key: "revoked".into(),
                        reason: "bad value length".into(),
                    });
                }
                let at = i64::from_be_bytes(v[..8].try_into().unwrap_or([0; 8]));
                Ok((k[prefix.len()..].to_vec(), at, v[8]))
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|stored| {
                vouched::vouch_revoked(self.seal.get().map(|s| &**s), self, sector, &stored)?;
                Ok(stored)
            })
    }

    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        let key = crl_number_key(sector);
        let next = self
            .meta
            .update_and_fetch(key.as_bytes(), |old| {
                let n = old
                    .and_then(|v| v.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(sled_error)?;
        self.meta.flush().map_err(sled_error)?;
        Ok(next
            .and_then(|v| v.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    fn blob_put(
        &self,
        space: &str,
        records: &[crate::KeyValue],
        create_only: bool,
        audit: Option<&crate::BlobAudit>,
    ) -> Result<(), StoreError> {
        self.write_durably(|t| rules::put_blobs(t, space, records, create_only, audit))
    }

    fn commit_model_change(
        &self,
        space: &str,
        records: &[crate::KeyValue],
        audit: &crate::BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write_durably(|t| rules::commit_model_change(t, space, records, audit, changes))
    }

    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self
            .blobs
            .get(blob_key(space, key))
            .map_err(sled_error)?
            .map(|v| seal::open_blob(self.seal.get().map(|s| &**s), space, key, v.to_vec()))
            .transpose()?;
        vouched::vouch_blob(self.seal.get().map(|s| &**s), self, space, key, value)
    }

    fn blob_scan(&self, space: &str, prefix: &[u8]) -> Result<Vec<crate::KeyValue>, StoreError> {
        let full = blob_key(space, prefix);
        let skip = space.len() + 1;
        self.blobs
            .scan_prefix(full)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                let key = k[skip..].to_vec();
                let value =
                    seal::open_blob(self.seal.get().map(|s| &**s), space, &key, v.to_vec())?;
                Ok((key, value))
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .and_then(|stored| {
                let seal = self.seal.get().map(|s| &**s);
                vouched::vouch_blobs(seal, self, space, vouched::Scope::Prefix(prefix), &stored)?;
                Ok(stored)
            })
    }

    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let s = self.seal.get().map(|s| &**s);
        for kv in self.certs.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let (record, seal) = seal::decode_sealed(s, Sealed::Certificate, &k, &v)?;
            each(StoredRecord::Certificate(record, seal))?;
        }
        for kv in self.devices.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let (record, seq) = seal::decode_sealed(s, Sealed::Device, &k, &v)?;
            each(StoredRecord::Device(record, seq))?;
        }
        for kv in self.trust.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let (record, seq) = seal::decode_sealed(s, Sealed::Trust, &k, &v)?;
            each(StoredRecord::Trust(record, seq))?;
        }
        for kv in self.history.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let identity = k
                .len()
                .checked_sub(9)
                .and_then(|n| std::str::from_utf8(&k[..n]).ok())
                .ok_or_else(|| StoreError::Corrupt {
                    key: "history".into(),
                    reason: "key is not identity, 0, version".into(),
                })?;
            each(StoredRecord::History(identity.to_owned(), decode(&k, &v)?))?;
        }
        for kv in self.audit.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            each(StoredRecord::Audit(decode(&k, &v)?))?;
        }
        for kv in self.heads.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            each(StoredRecord::TreeHead(be_u64(&k, "tree head")?, v.to_vec()))?;
        }
        for kv in self.revoked.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let corrupt = || StoreError::Corrupt {
                key: "revoked".into(),
                reason: "bad key or value".into(),
            };
            let split = k.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
            let sector = std::str::from_utf8(&k[..split]).map_err(|_| corrupt())?;
            if v.len() != 9 {
                return Err(corrupt());
            }
            each(StoredRecord::Revoked(
                sector.to_owned(),
                k[split + 1..].to_vec(),
                i64::from_be_bytes(v[..8].try_into().map_err(|_| corrupt())?),
                v[8],
            ))?;
        }
        for kv in self.blocked_keys.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let fp: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                key: "blocked key".into(),
                reason: "key is not a SHA-256".into(),
            })?;
            each(StoredRecord::BlockedKey(fp, decode(&k, &v)?))?;
        }
        for kv in self.blobs.iter() {
            let (k, v) = kv.map_err(sled_error)?;
            let corrupt = || StoreError::Corrupt {
                key: "blob".into(),
                reason: "key is not space, 0, key".into(),
            };
            let split = k.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
            let space = std::str::from_utf8(&k[..split]).map_err(|_| corrupt())?;
            each(StoredRecord::Blob(
                space.to_owned(),
                k[split + 1..].to_vec(),
                v.to_vec(),
            ))?;
        }
        for kv in self.meta.scan_prefix(CRL_NUMBER_PREFIX.as_bytes()) {
            let (k, v) = kv.map_err(sled_error)?;
            let sector = String::from_utf8_lossy(&k[CRL_NUMBER_PREFIX.len()..]).into_owned();
            each(StoredRecord::CrlNumber(sector, be_u64(&v, "crl number")?))?;
        }
        let (certificates, devices) = self.counts()?;
        each(StoredRecord::Counts(certificates, devices))
    }

    fn raw_records(
        &self,
        table: crate::RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<crate::KeyValue>, StoreError> {
        use std::ops::Bound;
        let tree = match table {
            crate::RecordTable::Certificates => &self.certs,
            crate::RecordTable::Devices => &self.devices,
            crate::RecordTable::Trust => &self.trust,
            crate::RecordTable::History => &self.history,
        };
        let start = match after {
            Some(k) => Bound::Excluded(k.to_vec()),
            None => Bound::Unbounded,
        };
        tree.range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        self.write_durably(|t| rules::import(t, records))
    }

    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        self.write_durably(|t| rules::seal_legacy(t, entry, records))
    }

    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let s = self.seal.get().map(|s| &**s);
        self.devices
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (k, v) = kv.map_err(sled_error)?;
                Ok(seal::decode_sealed(s, Sealed::Device, &k, &v)?.0)
            })
            .collect()
    }
}

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
