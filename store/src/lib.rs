//! Durable records of trustca: certificates by serial, device records,
//! live trust records with their history, and the append-only audit log.
//!
//! Every issuance is one atomic commit across all of them ([`Issuance`]),
//! and the [`GroupCommitter`] makes commits durable in groups, so a
//! certificate is only handed out after its records are on disk while many
//! concurrent enrollments share one flush.
//!
//! Three backends implement the [`Storage`] trait: [`SledStorage`], the
//! embedded default for one machine; [`FjallStorage`], embedded too, an
//! LSM store with compressed tables about a seventh of sled's size on
//! disk; and [`PgStorage`], PostgreSQL shared by several replicas. None
//! decides anything: the rules (renewal,
//! trust changes, transfer, revocation, the audit log's Merkle frontier)
//! live once in `rules.rs`, and each backend only reads and writes typed
//! records inside its own transaction. `tests/contract/` runs one test
//! suite against all of them. Whatever sits on a store (the guard, the replica
//! cache, a benchmark's probe) is a [`StorageLayer`]: it says what it does
//! around reads and writes and is a [`Storage`] through one blanket impl.
#![forbid(unsafe_code)]

mod cache;
mod check;
mod codec;
mod committer;
mod contain;
mod embedded;
mod error;
mod fjall_store;
mod floors;
mod guard;
mod layer;
mod pages;
mod postgres;
mod records;
pub mod registry;
mod reseal;
mod rules;
mod seal;
mod sled_store;
mod vouched;
pub use vouched::VOUCHED_SPACES;

pub use cache::CachedStorage;
pub use check::{AuditCheck, CheckReport, Damage, check_audit_log, check_store};
pub use codec::{decode_record, encode_record};
pub use committer::{CommitObserver, CommitStats, GroupCommitter};
pub use contain::quiet_engine_panics;
pub use error::{FailureClass, StoreError};
pub use fjall_store::{
    DEFAULT_BLOCK_BYTES, DEFAULT_FJALL_CACHE_BYTES, DEFAULT_JOURNAL_BYTES, DEFAULT_MEMTABLE_BYTES,
    FjallSettings, FjallStorage,
};
pub use guard::{GuardedStorage, Opener, RESERVE_BYTES, Recovery, WriteHealth};
pub use layer::{StorageLayer, WriteKind};
pub use pages::{
    DEVICE_PAGE, DevicePages, KeyedPages, STORE_PAGE, blob_pages, device_pages, device_pages_of,
    revoked_pages,
};
pub use postgres::{PgStorage, SCHEMA_VERSION, is_postgres_url, postgres_admin};
pub use records::{
    AuditEntry, BlockedKey, CertificateRecord, CertificateStatus, DeviceChange, DeviceRecord,
    HistoryEntry, Issuance, StoredRecord, TrustChange, TrustRecord, TrustStatus,
};
pub use reseal::{SEALED_KIND, SealReport, legacy_records_present, seal_legacy_records};
pub use seal::{RecordSeal, SealTrailer, install_record_seal};
pub use sled_store::{
    CloseWaiter, DEFAULT_CACHE_BYTES, DEFAULT_COMPRESSION_LEVEL, SledSettings, SledStorage,
    raw_sled_config,
};

/// What [`Storage::issuance_reads`] read: every key asked about, with its
/// record or `None` when the store has none.
#[derive(Debug, Default, Clone)]
pub struct IssuanceReads {
    /// Device records by identity key.
    pub devices: std::collections::HashMap<String, Option<DeviceRecord>>,
    /// Blocks by public key fingerprint.
    pub blocked: std::collections::HashMap<[u8; 32], Option<BlockedKey>>,
}

/// What every storage backend provides. Commits are atomic per
/// [`Issuance`]; [`Storage::flush`] makes everything committed so far durable.
pub trait Storage: Send + Sync + std::fmt::Debug + 'static {
    /// Applies each issuance atomically and independently: one failing
    /// (duplicate identity, reused serial) does not affect the others.
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>>;
    /// Waits until every committed change is on stable storage.
    fn flush(&self) -> Result<(), StoreError>;
    /// The device record of an identity key, if enrolled.
    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Seals certificate, device and trust records from now on and checks every read of
    /// them against `seal` (`seal.rs`): a record changed, moved, deleted
    /// or rolled back outside trustca is `StoreError::Corrupt`, never an
    /// answer. Wrappers hand it to the backend they wrap. Set once, before
    /// serving; a second call is ignored.
    fn set_record_seal(&self, seal: std::sync::Arc<RecordSeal>);
    /// The live trust record of an identity key.
    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError>;
    /// A number that is different after every write committed through
    /// this store, or `None` when the backend cannot tell (other processes
    /// write to it too, or it is being reopened). A reader that reads it
    /// before some records may reuse what it derived from them for as long
    /// as it reads the same number again: nothing was written in between.
    /// Numbers are never reused, not even by a reopened store.
    fn change_marker(&self) -> Option<u64> {
        None
    }
    /// The history of an identity key, oldest first.
    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError>;
    /// A certificate by serial.
    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError>;
    /// Number of certificates and devices stored.
    fn counts(&self) -> Result<(u64, u64), StoreError>;
    /// Audit entries with sequence numbers in `from..`, at most `limit`.
    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError>;
    /// Bytes the backend occupies on disk.
    fn size_on_disk(&self) -> Result<u64, StoreError>;
    /// The serial of the certificate with this SHA-256 fingerprint.
    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies every change or none (one transaction), durably; returns the
    /// records after the change.
    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError>;
    /// Moves the trust of `from` to its successor `to` (which must be
    /// enrolled): `to` takes the level and status and a copy of the
    /// history; `from` is retired. Durable on return.
    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError>;
    /// Device records whose identity key starts with `prefix`.
    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError>;
    /// Up to `limit` device records whose identity key starts with
    /// `prefix` and comes after `after` (from the first when `None`), in
    /// key order: for work over a whole fleet (snapshot builds) that must
    /// not hold every record at once, and can stop between pages. The
    /// default reads them all and keeps the page; backends page for real.
    fn devices_page(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeviceRecord>, StoreError> {
        Ok(self
            .devices_with_prefix(prefix)?
            .into_iter()
            .filter(|d| after.is_none_or(|a| d.identity_key.as_str() > a))
            .take(limit)
            .collect())
    }
    /// Raw stored audit entries (key index, encoded bytes) from `from`, for
    /// verifiers that must see corrupt entries rather than fail on them.
    fn audit_entries_raw(&self, from: u64, limit: usize)
    -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Size and root of the audit log's Merkle tree.
    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError>;
    /// Keeps a signed tree head (encoded) for `size`.
    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError>;
    /// Every kept signed tree head, smallest size first. One is kept every
    /// ten seconds while the log grows, so the list grows with time:
    /// whole-log verifiers (the CLI's `audit verify`, `check`) read it;
    /// the server and the console ask [`Storage::latest_tree_heads`].
    fn tree_heads(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut all = Vec::new();
        let mut from = 0;
        loop {
            let page = self.tree_heads_page(from, STORE_PAGE)?;
            let next = match page.last() {
                Some((size, _)) if page.len() == STORE_PAGE => size.checked_add(1),
                _ => None,
            };
            all.extend(page.into_iter().map(|(_, head)| head));
            match next {
                Some(n) => from = n,
                None => return Ok(all),
            }
        }
    }
    /// Up to `limit` kept tree heads (size, encoded head) of size `from` or
    /// more, smallest size first.
    fn tree_heads_page(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// The `n` newest kept tree heads (encoded), newest first.
    fn latest_tree_heads(&self, n: usize) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Revokes certificates (RFC 5280 reason code) with their audit entries,
    /// durably; already revoked ones are left as they are. Returns the
    /// records that changed. In the same transaction: with keyCompromise
    /// (1) each certificate's public key is blocked for good (audit
    /// `key.blocked`) and the device's other certificates with that key are
    /// revoked too; and a device left with no valid unrevoked certificate
    /// becomes `revoked` unless already revoked or retired (`trust.revoked`).
    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
    /// The block on a public key revoked for compromise, by the SHA-256 of
    /// its SubjectPublicKeyInfo.
    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError>;
    /// Reads ahead, at once, what checking a group of enrollments before
    /// signing would read one by one: the device records of
    /// `identity_keys` and the blocks on `key_fingerprints`, each checked
    /// as [`Storage::device`] and [`Storage::blocked_key`] check them.
    /// `None` where reading each is as cheap (the embedded stores, the
    /// default); PostgreSQL answers with two queries instead of two round
    /// trips per enrollment. Only a read-ahead: the commit checks again.
    fn issuance_reads(
        &self,
        identity_keys: &[String],
        key_fingerprints: &[[u8; 32]],
    ) -> Result<Option<IssuanceReads>, StoreError> {
        let _ = (identity_keys, key_fingerprints);
        Ok(None)
    }
    /// Revoked certificates of a sector: (serial, unix time, reason code),
    /// in serial order, all at once. A sector can hold a million: work over
    /// them (CRL and snapshot builds, checks) walks
    /// [`Storage::revoked_page`] instead ([`revoked_pages`]).
    fn revoked_in_sector(&self, sector: &str) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        revoked_pages(self, sector, STORE_PAGE).collect()
    }
    /// Up to `limit` revoked certificates of a sector whose serial comes
    /// after `after` (from the first when `None`), in serial order, each
    /// page checked against the audit log for the serials it covers.
    fn revoked_page(
        &self,
        sector: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError>;
    /// Allocates the next CRL number of a sector (durable, never reused).
    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError>;
    /// Writes opaque records of one `space` (e.g. `pseudonym.escrow`) and,
    /// in the same atomic commit, an optional audit entry; durable on return.
    /// Refuses to overwrite an existing key when `create_only`.
    fn blob_put(
        &self,
        space: &str,
        records: &[KeyValue],
        create_only: bool,
        audit: Option<&BlobAudit>,
    ) -> Result<(), StoreError>;
    /// Writes opaque records of `space` (overwriting) with `audit`, and
    /// applies `changes` to devices' trust records with their history and
    /// audit entries, all in one transaction, durably: a model registry
    /// change moves its fleet's live level in one atomic, audited step.
    /// Every changed device must be enrolled, else nothing is written.
    fn commit_model_change(
        &self,
        space: &str,
        records: &[KeyValue],
        audit: &BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError>;
    /// Reads one opaque record.
    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Opaque records of a space whose key starts with `prefix`, in key
    /// order, all at once: for prefixes whose records are few by
    /// construction (one vehicle's, one manufacturer's models). Spaces that
    /// grow with devices are walked with [`Storage::blob_scan_page`]
    /// ([`blob_pages`]).
    fn blob_scan(&self, space: &str, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        blob_pages(self, space, prefix, STORE_PAGE).collect()
    }
    /// Up to `limit` opaque records of a space whose key starts with
    /// `prefix` and comes after `after` (from the first when `None`), in
    /// key order, each page checked against the audit log for the keys it
    /// covers.
    fn blob_scan_page(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError>;
    /// Takes or renews the lease `name` (e.g. `tree-heads`, `crl`) for
    /// `holder` for `ttl_secs`; true while `holder` holds it. Scheduled
    /// work that must happen once per deployment (signing tree heads and
    /// CRLs) runs only on the replica holding its lease. A backend used by
    /// one process at a time grants every lease to its caller.
    fn hold_lease(&self, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, StoreError> {
        let _ = (name, holder, ttl_secs);
        Ok(true)
    }
    /// Keeps an open attestation challenge (issue 25): `record` under `id`
    /// (a digest of the challenge's id) until unix time `expires_at`,
    /// durably, so that it outlives a restart and every replica sharing the
    /// store can take it. Challenges expired at `now` are dropped first;
    /// returns false, storing nothing, when `max_open` are still open.
    fn challenge_put(
        &self,
        id: &[u8],
        record: &[u8],
        expires_at: i64,
        now: i64,
        max_open: usize,
    ) -> Result<bool, StoreError>;
    /// Takes the open challenge `id`: its record and expiry, removed in
    /// the same atomic step, so that of any number of takes — on any
    /// replica — exactly one gets it. `None` when unknown or taken.
    fn challenge_take(&self, id: &[u8]) -> Result<Option<(Vec<u8>, i64)>, StoreError>;
    /// Hands every stored record to `each`, audit entries in sequence
    /// order, for copying the store to another backend.
    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Writes records exported from another store in one transaction,
    /// durably. Audit entries must continue the log exactly (sequence
    /// number and leaf hash are checked), so the copy's log verifies
    /// against the original's signed tree heads.
    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError>;
    /// Rewrites certificate, device and trust records that a build before
    /// record seals stored without one, each sealed to `entry` — a new
    /// audit entry that continues the log and commits to every one of them
    /// (`binds`) — in one transaction, durably. Only
    /// [`seal_legacy_records`] calls it: it makes the entry and the seals.
    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError>;
    /// Up to `limit` stored records of `table` with keys after `after`
    /// (from the start when `None`), as stored bytes, in key order: for
    /// integrity checks that must see a damaged record rather than fail on
    /// it. History keys are `identity key, 0, version (8 bytes, big-endian)`.
    fn raw_records(
        &self,
        table: RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError>;
    /// Whether writes are accepted now ([`GuardedStorage`] refuses them
    /// while the store cannot write, and in recovery mode).
    fn write_health(&self) -> WriteHealth {
        WriteHealth::Writable
    }
    /// How many distinct damaged records reads have met since the store
    /// was opened ([`GuardedStorage`] counts them; others report 0).
    fn damaged_records(&self) -> usize {
        0
    }
}

/// How many records [`copy_store`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Records copied, of every kind.
    pub records: u64,
    /// Audit entries among them.
    pub audit_entries: u64,
}

/// Copies every record of `from` into the empty store `to`, in
/// transactions of `chunk` records, calling `progress` after each. The
/// audit log keeps its sequence numbers and leaf hashes, so it verifies on
/// the target against the source's signed tree heads. A copy that fails
/// half-way leaves a partial target: start again on a fresh one.
pub fn copy_store(
    from: &dyn Storage,
    to: &dyn Storage,
    chunk: usize,
    progress: &mut dyn FnMut(CopyReport),
) -> Result<CopyReport, StoreError> {
    if to.counts()? != (0, 0) || to.audit_head()?.0 != 0 {
        return Err(StoreError::Backend(
            "the target store is not empty; copy into a fresh one".into(),
        ));
    }
    let chunk = chunk.max(1);
    let mut report = CopyReport::default();
    let mut pending = Vec::with_capacity(chunk);
    from.export(&mut |record| {
        if matches!(record, StoredRecord::Audit(_)) {
            report.audit_entries += 1;
        }
        report.records += 1;
        pending.push(record);
        if pending.len() >= chunk {
            to.import(&pending)?;
            pending.clear();
            progress(report);
        }
        Ok(())
    })?;
    if !pending.is_empty() {
        to.import(&pending)?;
    }
    to.flush()?;
    progress(report);
    Ok(report)
}

/// The record tables an integrity check reads raw
/// ([`Storage::raw_records`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordTable {
    /// Certificates by serial.
    Certificates,
    /// Device records by identity key.
    Devices,
    /// Live trust records by identity key.
    Trust,
    /// History entries by identity key and version.
    History,
}

/// One opaque record: key and value.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// The audit entry written with a [`Storage::blob_put`].
#[derive(Debug, Clone)]
pub struct BlobAudit {
    /// Who (from their certificate).
    pub actor: String,
    /// Event kind, e.g. `pseudonym.issued`.
    pub kind: String,
    /// What it is about (must not identify a vehicle for pseudonym events).
    pub subject: String,
    /// Details, compact JSON.
    pub detail: String,
    /// Unix time.
    pub at: i64,
}
