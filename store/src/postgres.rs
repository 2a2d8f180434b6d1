//! The PostgreSQL backend: several `trustca serve` replicas share one
//! database.
//!
//! Every write runs the rules of [`crate::rules`] in one database
//! transaction that first takes one transaction-scoped advisory lock
//! ([`WRITE_LOCK`]). Writes are therefore serialised across replicas: the
//! audit log's sequence numbers and Merkle frontier advance in one order,
//! and the read-modify-write rules (renewal, trust changes, revocation)
//! see every earlier commit. The database still enforces what must be
//! unique (serial, certificate fingerprint, identity, history version,
//! audit sequence) as a second line. Commits are synchronous
//! (`synchronous_commit = on`), so a returned certificate is durable.
//!
//! The [`Storage`] trait is synchronous (sled is), while the driver is
//! async: the backend owns a small tokio runtime for its connections and
//! blocks the caller's thread on it, stepping out of the caller's runtime
//! with `block_in_place` where there is one.

use std::cell::RefCell;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use crate::records::{decode, encode};
use crate::rules::{self, RecordTxn};
use crate::seal::{self, RecordSeal, Sealed, Stamp};
use crate::vouched;
use crate::{
    AuditEntry, BlobAudit, BlockedKey, CertificateRecord, DeviceRecord, HistoryEntry, Issuance,
    KeyValue, Storage, StoreError, StoredRecord, TrustChange, TrustRecord,
};

/// The schema version this binary writes; a database with a newer one is
/// refused.
pub const SCHEMA_VERSION: i32 = 1;

/// Embedded migrations: (version it produces, SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../migrations/0001_initial.sql"))];

/// Advisory lock serialising every write transaction ("trustca" + 1).
const WRITE_LOCK: i64 = 0x7472_7573_7463_6101;
/// Advisory lock serialising schema migrations ("trustca" + 2).
const MIGRATION_LOCK: i64 = 0x7472_7573_7463_6102;

const AUDIT_FRONTIER: &str = "audit.frontier";
const COUNT_CERTS: &str = "count.certificates";
const COUNT_DEVICES: &str = "count.devices";

/// PostgreSQL-backed [`Storage`].
pub struct PgStorage {
    pool: Pool,
    handle: Handle,
    // Shut down without blocking on drop (the last handle may be dropped
    // inside the server's runtime, where a blocking shutdown panics).
    runtime: Option<tokio::runtime::Runtime>,
    /// The URL without its password, for messages.
    target: String,
    /// The key that seals certificate, device and trust records (`seal.rs`), once set.
    seal: std::sync::OnceLock<std::sync::Arc<RecordSeal>>,
}

impl std::fmt::Debug for PgStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStorage")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStorage {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Whether `s` names a PostgreSQL store rather than a sled directory.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

fn unavailable(target: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL at {target}: {e}"))
}

/// The innermost cause of a driver error, as words: the pool's and the
/// driver's own wrappers ("Error occurred while creating a new object:
/// db error") say nothing about what went wrong.
fn driver_words(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_owned();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if text == "db error" || text.is_empty() {
        "the connection failed".into()
    } else {
        text
    }
}

/// Why no connection could be had from the pool, as words.
fn pool_words(e: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError as P;
    match e {
        P::Backend(e) => format!("cannot connect: {}", driver_words(e)),
        P::Timeout(_) => "no connection became free in time".into(),
        P::Closed => "the connection pool is closed".into(),
        P::NoRuntimeSpecified => "no runtime for the connection pool".into(),
        P::PostCreateHook(_) => "a new connection could not be set up".into(),
    }
}

/// Maps a driver error: connection trouble is `Unavailable` (clients may
/// retry), anything the server answered is a backend error with its text.
fn pg_error(target: &str, e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        // Class 53: insufficient resources (53100 disk full, 53200 out of
        // memory, 53300 too many connections); retrying later may work.
        // Class 08 (connection exception) and 57P (the server shut the
        // session down or cannot take it now): the database is not
        // reachable for the moment; nothing was changed.
        let code = db.code().code();
        if code.starts_with("08") || code.starts_with("57P") {
            return unavailable(target, db.message());
        }
        if db.code().code().starts_with("53") {
            return StoreError::Full(format!(
                "PostgreSQL at {target} is out of resources ({}): {}",
                db.code().code(),
                db.message()
            ));
        }
        return StoreError::Backend(format!(
            "PostgreSQL refused a statement ({}): {}",
            db.code().code(),
            db.message()
        ));
    }
    if e.is_closed() || e.to_string().contains("connection") {
        return unavailable(target, driver_words(&e));
    }
    StoreError::Backend(format!("PostgreSQL: {e}"))
}

fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{v} does not fit the database")))
}

impl PgStorage {
    /// Connects to `url` (`postgres://user:pass@host:port/db`), applies the
    /// embedded migrations and refuses a schema newer than this binary.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let store = Self::bare(url)?;
        store.migrate()?;
        Ok(store)
    }

    /// Connects to `url` without changing the schema: for commands that
    /// only read (`trustca store check`). A database without trustca's
    /// schema, or with another version of it, is refused.
    pub fn connect_existing(url: &str) -> Result<Self, StoreError> {
        let store = Self::bare(url)?;
        let found = store.run(|h| {
            let client = store.client(h)?;
            let e = |e| pg_error(&store.target, e);
            let exists: bool = h
                .block_on(client.query_one("SELECT to_regclass('trustca_schema') IS NOT NULL", &[]))
                .map_err(e)?
                .get(0);
            if !exists {
                return Ok(None);
            }
            Ok(
                h.block_on(client.query_opt("SELECT max(version) FROM trustca_schema", &[]))
                    .map_err(e)?
                    .and_then(|row| row.get::<_, Option<i32>>(0)),
            )
        })?;
        match found {
            None => Err(StoreError::Backend(format!(
                "PostgreSQL at {} holds no trustca store (no schema); nothing to read",
                store.target
            ))),
            Some(v) if v > SCHEMA_VERSION => Err(StoreError::SchemaTooNew {
                found: v,
                known: SCHEMA_VERSION,
            }),
            Some(v) if v < SCHEMA_VERSION => Err(StoreError::Backend(format!(
                "the schema at {} is version {v}, older than this trustca's {SCHEMA_VERSION}; `trustca serve` migrates it",
                store.target
            ))),
            Some(_) => Ok(store),
        }
    }

    /// A pool on `url` without touching the schema.
    fn bare(url: &str) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        let target = format!(
            "{}:{}/{}",
            config
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_else(|| "localhost".into()),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap_or("(default)")
        );
        config
            .connect_timeout(Duration::from_secs(5))
            .options("-c synchronous_commit=on -c statement_timeout=30000")
            .application_name("trustca");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("trustca-pg")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::Backend(format!("cannot start the PostgreSQL runtime: {e}"))
            })?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Backend(format!("PostgreSQL pool: {e}")))?;
        let store = Self {
            pool,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            target,
            seal: std::sync::OnceLock::new(),
        };
        Ok(store)
    }

    /// Runs `work` on this thread where it may block on the backend's
    /// runtime: directly outside any runtime, through `block_in_place` on
    /// a multi-threaded runtime, on a scoped thread otherwise.
    fn run<R: Send>(&self, work: impl FnOnce(&Handle) -> R + Send) -> R {
        let handle = &self.handle;
        match Handle::try_current() {
            Err(_) => work(handle),
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| work(handle))
            }
            Ok(_) => std::thread::scope(|s| match s.spawn(|| work(handle)).join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }),
        }
    }

    fn client(&self, h: &Handle) -> Result<deadpool_postgres::Object, StoreError> {
        h.block_on(self.pool.get())
            .map_err(|e| unavailable(&self.target, pool_words(&e)))
    }

    fn migrate(&self) -> Result<(), StoreError> {
        self.run(|h| {
            let mut client = self.client(h)?;
            let e = |e| pg_error(&self.target, e);
            let tx = h.block_on(client.transaction()).map_err(e)?;
            h.block_on(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]))
                .map_err(e)?;
            h.block_on(tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS trustca_schema (version INTEGER NOT NULL)",
            ))
            .map_err(e)?;
            let current: i32 = h
                .block_on(tx.query_opt("SELECT max(version) FROM trustca_schema", &[]))
                .map_err(e)?
                .and_then(|row| row.get::<_, Option<i32>>(0))
                .unwrap_or(0);
            if current > SCHEMA_VERSION {
                return Err(StoreError::SchemaTooNew {
                    found: current,
                    known: SCHEMA_VERSION,
                });
            }
            for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                h.block_on(tx.batch_execute(sql)).map_err(e)?;
                h.block_on(tx.execute("INSERT INTO trustca_schema VALUES ($1)", &[version]))
                    .map_err(e)?;
                tracing::info!(version, "applied PostgreSQL schema migration");
            }
            h.block_on(tx.commit()).map_err(e)
        })
    }

    /// Runs `rules` in one transaction holding the write lock, and commits.
    fn write<R: Send>(
        &self,
        rules: impl Fn(&PgTxn<'_>) -> Result<R, StoreError> + Sync,
    ) -> Result<R, StoreError> {
        self.run(|h| {
            let mut client = self.client(h)?;
            let e = |e| pg_error(&self.target, e);
            let tx = h.block_on(client.transaction()).map_err(e)?;
            h.block_on(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]))
                .map_err(e)?;
            let t = PgTxn::new(&tx, h, &self.target, self.seal.get().map(|s| &**s));
            let r = rules(&t)?;
            t.flush_writes()?;
            drop(t);
            h.block_on(tx.commit()).map_err(e)?;
            Ok(r)
        })
    }

    /// Runs one read query and maps its rows.
    fn read<R: Send>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        mut each: impl FnMut(&tokio_postgres::Row) -> Result<R, StoreError> + Send,
    ) -> Result<Vec<R>, StoreError> {
        self.run(|h| {
            let client = self.client(h)?;
            let stmt = h
                .block_on(client.prepare_cached(sql))
                .map_err(|e| pg_error(&self.target, e))?;
            let rows = h
                .block_on(client.query(&stmt, params))
                .map_err(|e| pg_error(&self.target, e))?;
            rows.iter().map(&mut each).collect()
        })
    }

    fn read_one<R: Send>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        each: impl FnMut(&tokio_postgres::Row) -> Result<R, StoreError> + Send,
    ) -> Result<Option<R>, StoreError> {
        Ok(self.read(sql, params, each)?.into_iter().next())
    }

    fn seal(&self) -> Option<&RecordSeal> {
        self.seal.get().map(|s| &**s)
    }

    /// The seal, with what the log vouches for read to its end at most a
    /// second ago: other replicas write to the same database, and a record
    /// one of them wrote must not be deletable or replaceable by an older
    /// copy unnoticed for longer than that.
    fn fresh_seal(&self) -> Result<Option<&RecordSeal>, StoreError> {
        if let Some(s) = self.seal() {
            s.catch_up_within(self, Duration::from_secs(1))?;
        }
        Ok(self.seal())
    }

    fn meta_u64(&self, key: &str) -> Result<u64, StoreError> {
        Ok(self
            .read_one("SELECT value FROM meta WHERE key = $1", &[&key], |r| {
                Ok(u64_of(r.get::<_, &[u8]>(0)))
            })?
            .unwrap_or(0))
    }
}

/// A row limit for SQL: "everything" (`usize::MAX`) is the largest BIGINT.
fn limit_of(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn u64_of(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]))
}

/// One PostgreSQL transaction seen through [`RecordTxn`].
///
/// The records an issuance writes (certificates, devices, trust records,
/// history, audit entries, counters and the frontier) are buffered and
/// written at the end with one multi-row statement per table, and the
/// records a group of issuances reads are fetched up front with one query
/// per table ([`RecordTxn::prefetch_issuances`]): a commit group costs a
/// dozen round trips instead of ten per certificate. Reads see the
/// buffered writes first, so the rules observe their own changes.
pub(crate) struct PgTxn<'a> {
    tx: &'a deadpool_postgres::Transaction<'a>,
    h: &'a Handle,
    target: &'a str,
    seal: Option<&'a RecordSeal>,
    known: RefCell<Known>,
    dirty: RefCell<Dirty>,
}

/// Rows read or written in this transaction (`None`: known absent), as
/// encoded records.
#[derive(Default)]
struct Known {
    certificates: HashMap<Vec<u8>, Option<Vec<u8>>>,
    devices: HashMap<String, Option<Vec<u8>>>,
    trust: HashMap<String, Option<Vec<u8>>>,
    meta: HashMap<String, Option<Vec<u8>>>,
    blocked: HashMap<Vec<u8>, Option<Vec<u8>>>,
}

/// A new certificate's indexed columns: serial, fingerprint, sector,
/// identity key (its record is in [`Known::certificates`]).
type NewCertificate = (Vec<u8>, Vec<u8>, String, Option<String>);

/// Writes not yet sent.
#[derive(Default)]
struct Dirty {
    new_certificates: Vec<NewCertificate>,
    /// Certificates whose record changed (new or existing).
    certificates: Vec<Vec<u8>>,
    devices: Vec<String>,
    trust: Vec<String>,
    history: Vec<(String, i64, Vec<u8>)>,
    audit: Vec<(i64, Vec<u8>)>,
    meta: Vec<String>,
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

impl<'a> PgTxn<'a> {
    fn sealed_certificate(
        &self,
        record: &CertificateRecord,
        stamp: Stamp,
    ) -> Result<Vec<u8>, StoreError> {
        let key = trustca_model::hexfmt::encode(&record.serial);
        Ok(seal::seal(
            self.seal,
            Sealed::Certificate,
            &key,
            encode(record)?,
            stamp,
        ))
    }

    fn exec(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let e = |e| pg_error(self.target, e);
        let stmt = self.h.block_on(self.tx.prepare_cached(sql)).map_err(e)?;
        self.h.block_on(self.tx.execute(&stmt, params)).map_err(e)
    }

    fn bytes(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let e = |e| pg_error(self.target, e);
        let stmt = self.h.block_on(self.tx.prepare_cached(sql)).map_err(e)?;
        Ok(self
            .h
            .block_on(self.tx.query_opt(&stmt, params))
            .map_err(e)?
            .map(|row| row.get::<_, Vec<u8>>(0)))
    }

    fn record<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>, StoreError> {
        match self.bytes(sql, params)? {
            Some(b) => decode(what.as_bytes(), &b).map(Some),
            None => Ok(None),
        }
    }

    fn new(
        tx: &'a deadpool_postgres::Transaction<'a>,
        h: &'a Handle,
        target: &'a str,
        seal: Option<&'a RecordSeal>,
    ) -> Self {
        Self {
            tx,
            h,
            target,
            seal,
            known: RefCell::default(),
            dirty: RefCell::default(),
        }
    }

    /// Rows of `sql` (taking one array parameter) as (key, record).
    fn rows<K: for<'r> tokio_postgres::types::FromSql<'r>>(
        &self,
        sql: &str,
        keys: &(dyn ToSql + Sync),
    ) -> Result<Vec<(K, Vec<u8>)>, StoreError> {
        let e = |e| pg_error(self.target, e);
        let stmt = self.h.block_on(self.tx.prepare_cached(sql)).map_err(e)?;
        Ok(self
            .h
            .block_on(self.tx.query(&stmt, &[keys]))
            .map_err(e)?
            .iter()
            .map(|r| (r.get::<_, K>(0), r.get::<_, Vec<u8>>(1)))
            .collect())
    }

    /// Sends every buffered write, one statement per table.
    fn flush_writes(&self) -> Result<(), StoreError> {
        let dirty = std::mem::take(&mut *self.dirty.borrow_mut());
        let known = self.known.borrow();
        let record_of = |map: &HashMap<String, Option<Vec<u8>>>, k: &String| {
            map.get(k).cloned().flatten().unwrap_or_default()
        };
        if !dirty.new_certificates.is_empty() {
            let (mut serials, mut fps, mut sectors, mut ids, mut records) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (serial, fp, sector, id) in &dirty.new_certificates {
                records.push(
                    known
                        .certificates
                        .get(serial)
                        .cloned()
                        .flatten()
                        .unwrap_or_default(),
                );
                serials.push(serial.clone());
                fps.push(fp.clone());
                sectors.push(sector.clone());
                ids.push(id.clone());
            }
            self.exec(
                "INSERT INTO certificates (serial, fingerprint, sector, identity_key, record) \
                 SELECT * FROM UNNEST($1::BYTEA[], $2::BYTEA[], $3::TEXT[], $4::TEXT[], $5::BYTEA[])",
                &[&serials, &fps, &sectors, &ids, &records],
            )?;
        }
        let inserted: Vec<&Vec<u8>> = dirty.new_certificates.iter().map(|c| &c.0).collect();
        let (serials, records): (Vec<Vec<u8>>, Vec<Vec<u8>>) = dirty
            .certificates
            .iter()
            .filter(|s| !inserted.contains(s))
            .map(|s| {
                (
                    s.clone(),
                    known
                        .certificates
                        .get(s)
                        .cloned()
                        .flatten()
                        .unwrap_or_default(),
                )
            })
            .unzip();
        if !serials.is_empty() {
            self.exec(
                "UPDATE certificates AS c SET record = u.record \
                 FROM UNNEST($1::BYTEA[], $2::BYTEA[]) AS u(serial, record) \
                 WHERE c.serial = u.serial",
                &[&serials, &records],
            )?;
        }
        for (table, keys, map) in [
            ("devices", &dirty.devices, &known.devices),
            ("trust_records", &dirty.trust, &known.trust),
        ] {
            if keys.is_empty() {
                continue;
            }
            let records: Vec<Vec<u8>> = keys.iter().map(|k| record_of(map, k)).collect();
            self.exec(
                &format!(
                    "INSERT INTO {table} (identity_key, record) \
                     SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[]) \
                     ON CONFLICT (identity_key) DO UPDATE SET record = EXCLUDED.record"
                ),
                &[keys, &records],
            )?;
        }
        if !dirty.history.is_empty() {
            let (mut ids, mut versions, mut records) = (Vec::new(), Vec::new(), Vec::new());
            for (id, v, r) in dirty.history {
                ids.push(id);
                versions.push(v);
                records.push(r);
            }
            self.exec(
                "INSERT INTO history (identity_key, version, record) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::BYTEA[])",
                &[&ids, &versions, &records],
            )?;
        }
        if !dirty.audit.is_empty() {
            let (seqs, records): (Vec<i64>, Vec<Vec<u8>>) = dirty.audit.into_iter().unzip();
            self.exec(
                "INSERT INTO audit_log (seq, record) SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])",
                &[&seqs, &records],
            )?;
        }
        if !dirty.meta.is_empty() {
            let values: Vec<Vec<u8>> = dirty
                .meta
                .iter()
                .map(|k| record_of(&known.meta, k))
                .collect();
            self.exec(
                "INSERT INTO meta (key, value) SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&dirty.meta, &values],
            )?;
        }
        Ok(())
    }

    /// A buffered table's row: from this transaction's view, else the
    /// database (remembered, also when absent).
    fn cached_row<K: Clone + Eq + std::hash::Hash>(
        &self,
        pick: impl Fn(&mut Known) -> &mut HashMap<K, Option<Vec<u8>>>,
        key: &K,
        load: impl FnOnce() -> Result<Option<Vec<u8>>, StoreError>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(hit) = pick(&mut self.known.borrow_mut()).get(key) {
            return Ok(hit.clone());
        }
        let row = load()?;
        pick(&mut self.known.borrow_mut()).insert(key.clone(), row.clone());
        Ok(row)
    }

    fn meta_value(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.cached_row(
            |k| &mut k.meta,
            &key.to_owned(),
            || self.bytes("SELECT value FROM meta WHERE key = $1", &[&key]),
        )
    }

    fn set_meta(&self, key: &str, value: Vec<u8>) {
        self.known
            .borrow_mut()
            .meta
            .insert(key.to_owned(), Some(value));
        push_unique(&mut self.dirty.borrow_mut().meta, key.to_owned());
    }
}

impl RecordTxn for PgTxn<'_> {
    type Fail = StoreError;

    fn fail(e: StoreError) -> StoreError {
        e
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        let row = self.cached_row(
            |k| &mut k.certificates,
            &serial.to_vec(),
            || {
                self.bytes(
                    "SELECT record FROM certificates WHERE serial = $1",
                    &[&serial],
                )
            },
        )?;
        seal::sealed_value(row.as_deref(), self.seal, Sealed::Certificate, serial)
    }

    fn insert_certificate(
        &self,
        record: &CertificateRecord,
        fingerprint: &[u8; 32],
        stamp: Stamp,
    ) -> Result<(), StoreError> {
        let stored = self.sealed_certificate(record, stamp)?;
        self.known
            .borrow_mut()
            .certificates
            .insert(record.serial.clone(), Some(stored));
        self.dirty.borrow_mut().new_certificates.push((
            record.serial.clone(),
            fingerprint.to_vec(),
            record.sector.clone(),
            record.identity_key.clone(),
        ));
        Ok(())
    }

    fn update_certificate(
        &self,
        record: &CertificateRecord,
        stamp: Stamp,
    ) -> Result<(), StoreError> {
        let stored = self.sealed_certificate(record, stamp)?;
        self.known
            .borrow_mut()
            .certificates
            .insert(record.serial.clone(), Some(stored));
        push_unique(
            &mut self.dirty.borrow_mut().certificates,
            record.serial.clone(),
        );
        Ok(())
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = self.cached_row(
            |k| &mut k.devices,
            &identity_key.to_owned(),
            || {
                self.bytes(
                    "SELECT record FROM devices WHERE identity_key = $1",
                    &[&identity_key],
                )
            },
        )?;
        seal::sealed_value(
            row.as_deref(),
            self.seal,
            Sealed::Device,
            identity_key.as_bytes(),
        )
    }

    fn put_device(&self, record: &DeviceRecord, stamp: Stamp) -> Result<(), StoreError> {
        let key = &record.identity_key;
        let stored = seal::seal(self.seal, Sealed::Device, key, encode(record)?, stamp);
        self.known
            .borrow_mut()
            .devices
            .insert(record.identity_key.clone(), Some(stored));
        push_unique(
            &mut self.dirty.borrow_mut().devices,
            record.identity_key.clone(),
        );
        Ok(())
    }

    fn trust(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        let row = self.cached_row(
            |k| &mut k.trust,
            &identity_key.to_owned(),
            || {
                self.bytes(
                    "SELECT record FROM trust_records WHERE identity_key = $1",
                    &[&identity_key],
                )
            },
        )?;
        seal::sealed_value(
            row.as_deref(),
            self.seal,
            Sealed::Trust,
            identity_key.as_bytes(),
        )
    }

    fn put_trust(&self, record: &TrustRecord, stamp: Stamp) -> Result<(), StoreError> {
        let key = &record.identity_key;
        let stored = seal::seal(self.seal, Sealed::Trust, key, encode(record)?, stamp);
        self.known
            .borrow_mut()
            .trust
            .insert(record.identity_key.clone(), Some(stored));
        push_unique(
            &mut self.dirty.borrow_mut().trust,
            record.identity_key.clone(),
        );
        Ok(())
    }

    fn history_entry(
        &self,
        identity_key: &str,
        version: u64,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        let v = int(version)?;
        if let Some((_, _, r)) = self
            .dirty
            .borrow()
            .history
            .iter()
            .find(|(id, ver, _)| id == identity_key && *ver == v)
        {
            return decode(b"history", r).map(Some);
        }
        self.record(
            "history",
            "SELECT record FROM history WHERE identity_key = $1 AND version = $2",
            &[&identity_key, &v],
        )
    }

    fn put_history(&self, identity_key: &str, entry: &HistoryEntry) -> Result<(), StoreError> {
        // Versions only grow: a second entry for one version is a bug the
        // primary key turns into an aborted transaction.
        self.dirty.borrow_mut().history.push((
            identity_key.to_owned(),
            int(entry.version)?,
            encode(entry)?,
        ));
        Ok(())
    }

    fn blocked_key(&self, fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        let row = self.cached_row(
            |k| &mut k.blocked,
            &fingerprint.to_vec(),
            || {
                self.bytes(
                    "SELECT record FROM blocked_keys WHERE fingerprint = $1",
                    &[&fingerprint.as_slice()],
                )
            },
        )?;
        let block = row.map(|b| decode(b"blocked key", &b)).transpose()?;
        vouched::vouch_blocked(self.seal, fingerprint, block)
    }

    fn put_blocked_key(
        &self,
        fingerprint: &[u8; 32],
        block: &BlockedKey,
    ) -> Result<(), StoreError> {
        let record = encode(block)?;
        self.exec(
            "INSERT INTO blocked_keys (fingerprint, record) VALUES ($1, $2)",
            &[&fingerprint.as_slice(), &record],
        )?;
        self.known
            .borrow_mut()
            .blocked
            .insert(fingerprint.to_vec(), Some(record));
        Ok(())
    }

    fn put_revoked(
        &self,
        sector: &str,
        serial: &[u8],
        at: i64,
        reason: u8,
    ) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO revoked (sector, serial, at, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (sector, serial) DO NOTHING",
            &[&sector, &serial, &at, &i16::from(reason)],
        )?;
        Ok(())
    }

    fn audit_frontier(&self) -> Result<trustca_audit::MerkleFrontier, StoreError> {
        match self.meta_value(AUDIT_FRONTIER)? {
            Some(v) => {
                trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                    key: AUDIT_FRONTIER.into(),
                    reason: e.to_string(),
                })
            }
            None => Ok(trustca_audit::MerkleFrontier::new()),
        }
    }

    fn put_audit_entry(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.dirty
            .borrow_mut()
            .audit
            .push((int(entry.seq)?, encode(entry)?));
        Ok(())
    }

    fn put_audit_frontier(
        &self,
        frontier: &trustca_audit::MerkleFrontier,
    ) -> Result<(), StoreError> {
        self.set_meta(AUDIT_FRONTIER, frontier.to_bytes());
        Ok(())
    }

    fn add_counts(&self, certificates: u64, devices: u64) -> Result<(), StoreError> {
        for (key, n) in [(COUNT_CERTS, certificates), (COUNT_DEVICES, devices)] {
            if n == 0 {
                continue;
            }
            let old = self.meta_value(key)?.map(|b| u64_of(&b)).unwrap_or(0);
            self.set_meta(key, (old + n).to_be_bytes().to_vec());
        }
        Ok(())
    }

    fn prefetch_issuances(&self, batch: &[Issuance]) -> Result<(), StoreError> {
        let serials: Vec<Vec<u8>> = batch.iter().map(|i| i.certificate.serial.clone()).collect();
        let keys: Vec<String> = batch
            .iter()
            .filter_map(|i| i.device.as_ref().map(|d| d.identity_key.clone()))
            .collect();
        let certs: Vec<(Vec<u8>, Vec<u8>)> = self.rows(
            "SELECT serial, record FROM certificates WHERE serial = ANY($1)",
            &serials,
        )?;
        let devices: Vec<(String, Vec<u8>)> = self.rows(
            "SELECT identity_key, record FROM devices WHERE identity_key = ANY($1)",
            &keys,
        )?;
        let renewals: Vec<String> = batch
            .iter()
            .filter(|i| i.renewal)
            .filter_map(|i| i.device.as_ref().map(|d| d.identity_key.clone()))
            .collect();
        let trust: Vec<(String, Vec<u8>)> = if renewals.is_empty() {
            Vec::new()
        } else {
            self.rows(
                "SELECT identity_key, record FROM trust_records WHERE identity_key = ANY($1)",
                &renewals,
            )?
        };
        let key_fps: Vec<Vec<u8>> = batch
            .iter()
            .filter_map(|i| trustca_model::certificate_key_fingerprint(&i.certificate.der).ok())
            .map(|fp| fp.to_vec())
            .collect();
        let blocked: Vec<(Vec<u8>, Vec<u8>)> = if key_fps.is_empty() {
            Vec::new()
        } else {
            self.rows(
                "SELECT fingerprint, record FROM blocked_keys WHERE fingerprint = ANY($1)",
                &key_fps,
            )?
        };
        let mut known = self.known.borrow_mut();
        for k in key_fps {
            known.blocked.entry(k).or_insert(None);
        }
        for (k, r) in blocked {
            known.blocked.insert(k, Some(r));
        }
        for s in serials {
            known.certificates.entry(s).or_insert(None);
        }
        for (s, r) in certs {
            known.certificates.insert(s, Some(r));
        }
        for k in keys {
            known.devices.entry(k).or_insert(None);
        }
        for (k, r) in devices {
            known.devices.insert(k, Some(r));
        }
        for (k, r) in trust {
            known.trust.insert(k, Some(r));
        }
        Ok(())
    }

    fn blob(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.bytes(
            "SELECT value FROM blobs WHERE space = $1 AND key = $2",
            &[&space, &key],
        )
    }

    fn put_blob(&self, space: &str, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO blobs (space, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value",
            &[&space, &key, &value],
        )?;
        Ok(())
    }

    fn record_seal(&self) -> Option<&RecordSeal> {
        self.seal
    }

    fn put_tree_head(&self, size: u64, head: &[u8]) -> Result<(), StoreError> {
        self.put_tree_head_row(size, head)
    }

    fn set_crl_number(&self, sector: &str, number: u64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO crl_numbers (sector, number) VALUES ($1, $2) \
             ON CONFLICT (sector) DO UPDATE SET number = EXCLUDED.number",
            &[&sector, &int(number)?],
        )?;
        Ok(())
    }
}

impl PgTxn<'_> {
    fn put_tree_head_row(&self, size: u64, head: &[u8]) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO tree_heads (size, head) VALUES ($1, $2) \
             ON CONFLICT (size) DO UPDATE SET head = EXCLUDED.head",
            &[&int(size)?, &head],
        )?;
        Ok(())
    }
}

fn decoded<T: serde::de::DeserializeOwned>(
    what: &str,
    row: &tokio_postgres::Row,
) -> Result<T, StoreError> {
    decode(what.as_bytes(), row.get::<_, &[u8]>(0))
}

/// The smallest byte string greater than every string starting with
/// `prefix`; `None` when there is none (empty, or all 0xff).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Storage for PgStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        match self.write(|t| rules::issue_group(t, batch)) {
            Ok(r) => r,
            // The transaction rolled back: nothing of the group is stored.
            // Each item keeps the failure's kind: a full disk must stay
            // `Full` (RESOURCE_EXHAUSTED, and the guard's refusing state),
            // not become a backend error (INTERNAL).
            Err(e) => batch.iter().map(|_| Err(e.repeat())).collect(),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every write committed synchronously before it returned.
        Ok(())
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = self.read_one(
            "SELECT record FROM devices WHERE identity_key = $1",
            &[&identity_key],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )?;
        seal::sealed_value(
            row.as_deref(),
            self.fresh_seal()?,
            Sealed::Device,
            identity_key.as_bytes(),
        )
    }

    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        let row = self.read_one(
            "SELECT record FROM trust_records WHERE identity_key = $1",
            &[&identity_key],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )?;
        seal::sealed_value(
            row.as_deref(),
            self.fresh_seal()?,
            Sealed::Trust,
            identity_key.as_bytes(),
        )
    }

    fn set_record_seal(&self, seal: std::sync::Arc<RecordSeal>) {
        let _ = self.seal.set(seal);
    }

    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read(
            "SELECT record FROM history WHERE identity_key = $1 ORDER BY version",
            &[&identity_key],
            |r| decoded("history", r),
        )
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        let row = self.read_one(
            "SELECT record FROM certificates WHERE serial = $1",
            &[&serial],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )?;
        seal::sealed_value(
            row.as_deref(),
            self.fresh_seal()?,
            Sealed::Certificate,
            serial,
        )
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((self.meta_u64(COUNT_CERTS)?, self.meta_u64(COUNT_DEVICES)?))
    }

    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(
            "SELECT record FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
            &[&int(from)?, &limit_of(limit)],
            |r| decoded("audit", r),
        )
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self
            .read_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::BIGINT \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'",
                &[],
                |r| Ok(r.get::<_, i64>(0)),
            )?
            .unwrap_or(0)
            .max(0) as u64)
    }

    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_one(
            "SELECT serial FROM certificates WHERE fingerprint = $1",
            &[&fingerprint.as_slice()],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )
    }

    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write(|t| rules::apply_trust_changes(t, changes, at))
    }

    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        self.write(|t| rules::transfer_trust(t, from, to, actor, reason, at))
    }

    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        let s = self.seal();
        self.read(
            "SELECT identity_key, record FROM devices \
             WHERE substr(identity_key, 1, char_length($1)) = $1 ORDER BY identity_key",
            &[&prefix],
            |r| {
                let key: &str = r.get(0);
                Ok(seal::decode_sealed(s, Sealed::Device, key.as_bytes(), r.get(1))?.0)
            },
        )
    }

    fn raw_records(
        &self,
        table: crate::RecordTable,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StoreError> {
        use crate::RecordTable;
        let limit = limit_of(limit);
        let text_key = |after: Option<&[u8]>| -> Result<String, StoreError> {
            Ok(match after {
                Some(k) => String::from_utf8(k.to_vec()).map_err(|_| {
                    StoreError::Backend("an identity key continuation is not UTF-8".into())
                })?,
                None => String::new(),
            })
        };
        match table {
            RecordTable::Certificates => self.read(
                "SELECT serial, record FROM certificates WHERE serial > $1 ORDER BY serial LIMIT $2",
                &[&after.unwrap_or_default().to_vec(), &limit],
                |r| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1))),
            ),
            RecordTable::Devices | RecordTable::Trust => {
                let sql = if table == RecordTable::Devices {
                    "SELECT identity_key, record FROM devices WHERE identity_key > $1 ORDER BY identity_key LIMIT $2"
                } else {
                    "SELECT identity_key, record FROM trust_records WHERE identity_key > $1 ORDER BY identity_key LIMIT $2"
                };
                self.read(sql, &[&text_key(after)?, &limit], |r| {
                    Ok((r.get::<_, String>(0).into_bytes(), r.get::<_, Vec<u8>>(1)))
                })
            }
            RecordTable::History => {
                // The continuation key is `identity, 0, version`.
                let (identity, version) = match after {
                    Some(k) if k.len() >= 9 => (
                        text_key(Some(&k[..k.len() - 9]))?,
                        i64::from_be_bytes(k[k.len() - 8..].try_into().unwrap_or([0; 8])),
                    ),
                    _ => (String::new(), -1),
                };
                self.read(
                    "SELECT identity_key, version, record FROM history WHERE (identity_key, version) > ($1, $2) ORDER BY identity_key, version LIMIT $3",
                    &[&identity, &version, &limit],
                    |r| {
                        let mut key = r.get::<_, String>(0).into_bytes();
                        key.push(0);
                        key.extend_from_slice(&r.get::<_, i64>(1).to_be_bytes());
                        Ok((key, r.get::<_, Vec<u8>>(2)))
                    },
                )
            }
        }
    }

    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(
            "SELECT seq, record FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2",
            &[&int(from)?, &limit_of(limit)],
            |r| Ok((r.get::<_, i64>(0).max(0) as u64, r.get::<_, Vec<u8>>(1))),
        )
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let frontier = match self.read_one(
            "SELECT value FROM meta WHERE key = $1",
            &[&AUDIT_FRONTIER],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )? {
            Some(v) => {
                trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                    key: AUDIT_FRONTIER.into(),
                    reason: e.to_string(),
                })?
            }
            None => trustca_audit::MerkleFrontier::new(),
        };
        Ok((frontier.size(), frontier.root()))
    }

    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.write(|t| t.put_tree_head_row(size, signed_head))
    }

    fn tree_heads(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read("SELECT head FROM tree_heads ORDER BY size", &[], |r| {
            Ok(r.get::<_, Vec<u8>>(0))
        })
    }

    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.write(|t| rules::revoke(t, serials, reason, actor, note, at))
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        let block = self.read_one(
            "SELECT record FROM blocked_keys WHERE fingerprint = $1",
            &[&key_fingerprint.as_slice()],
            |r| decoded("blocked key", r),
        )?;
        vouched::vouch_blocked(self.fresh_seal()?, key_fingerprint, block)
    }

    fn revoked_in_sector(&self, sector: &str) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        let stored = self.read(
            "SELECT serial, at, reason FROM revoked WHERE sector = $1 ORDER BY serial",
            &[&sector],
            |r| {
                let reason = u8::try_from(r.get::<_, i16>(2)).map_err(|_| StoreError::Corrupt {
                    key: "revoked".into(),
                    reason: "reason code out of range".into(),
                })?;
                Ok((r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1), reason))
            },
        )?;
        vouched::vouch_revoked(self.seal(), self, sector, &stored)?;
        Ok(stored)
    }

    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        // One statement, atomic across replicas: numbers are never reused.
        let n = self.read_one(
            "INSERT INTO crl_numbers (sector, number) VALUES ($1, 1) \
             ON CONFLICT (sector) DO UPDATE SET number = crl_numbers.number + 1 \
             RETURNING number",
            &[&sector],
            |r| Ok(r.get::<_, i64>(0)),
        )?;
        n.map(|n| n.max(1) as u64)
            .ok_or_else(|| StoreError::Backend("no CRL number was returned".into()))
    }

    fn blob_put(
        &self,
        space: &str,
        records: &[KeyValue],
        create_only: bool,
        audit: Option<&BlobAudit>,
    ) -> Result<(), StoreError> {
        self.write(|t| rules::put_blobs(t, space, records, create_only, audit))
    }

    fn commit_model_change(
        &self,
        space: &str,
        records: &[KeyValue],
        audit: &BlobAudit,
        changes: &[TrustChange],
    ) -> Result<Vec<TrustRecord>, StoreError> {
        self.write(|t| rules::commit_model_change(t, space, records, audit, changes))
    }

    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let value = self.read_one(
            "SELECT value FROM blobs WHERE space = $1 AND key = $2",
            &[&space, &key],
            |r| Ok(r.get::<_, Vec<u8>>(0)),
        )?;
        let value = value
            .map(|v| seal::open_blob(self.seal(), space, key, v))
            .transpose()?;
        vouched::vouch_blob(self.fresh_seal()?, self, space, key, value)
    }

    fn blob_scan(&self, space: &str, prefix: &[u8]) -> Result<Vec<KeyValue>, StoreError> {
        // A key range rather than substr(), so the primary key's index
        // serves it: enrollment scans one model's records among many.
        let row = |r: &tokio_postgres::Row| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)));
        let stored = match prefix_successor(prefix) {
            Some(end) => self.read(
                "SELECT key, value FROM blobs WHERE space = $1 AND key >= $2 AND key < $3 \
                 ORDER BY key",
                &[&space, &prefix, &end],
                row,
            ),
            None => self.read(
                "SELECT key, value FROM blobs WHERE space = $1 AND key >= $2 ORDER BY key",
                &[&space, &prefix],
                row,
            ),
        }?
        .into_iter()
        .map(|(k, v)| {
            let v = seal::open_blob(self.seal(), space, &k, v)?;
            Ok((k, v))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        vouched::vouch_blobs(
            self.fresh_seal()?,
            self,
            space,
            vouched::Scope::Prefix(prefix),
            &stored,
        )?;
        Ok(stored)
    }

    fn export(
        &self,
        each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Page through each table in key order so memory stays bounded.
        const PAGE: i64 = 2000;
        let mut after: Vec<u8> = Vec::new();
        loop {
            let rows = self.read(
                "SELECT serial, record FROM certificates WHERE serial > $1 ORDER BY serial LIMIT $2",
                &[&after, &PAGE],
                |r| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1))),
            )?;
            let Some((last, _)) = rows.last() else { break };
            after = last.clone();
            for (k, v) in rows {
                let (record, seal) = seal::decode_sealed(self.seal(), Sealed::Certificate, &k, &v)?;
                each(StoredRecord::Certificate(record, seal))?;
            }
        }
        for (table, make) in [("devices", 0u8), ("trust_records", 1u8)] {
            let mut after = String::new();
            loop {
                let rows = self.read(
                    &format!(
                        "SELECT identity_key, record FROM {table} WHERE identity_key > $1 \
                         ORDER BY identity_key LIMIT $2"
                    ),
                    &[&after, &PAGE],
                    |r| Ok((r.get::<_, String>(0), r.get::<_, Vec<u8>>(1))),
                )?;
                let Some((last, _)) = rows.last() else { break };
                after = last.clone();
                for (k, v) in rows {
                    let s = self.seal();
                    each(if make == 0 {
                        let (r, seq) = seal::decode_sealed(s, Sealed::Device, k.as_bytes(), &v)?;
                        StoredRecord::Device(r, seq)
                    } else {
                        let (r, seq) = seal::decode_sealed(s, Sealed::Trust, k.as_bytes(), &v)?;
                        StoredRecord::Trust(r, seq)
                    })?;
                }
            }
        }
        let mut after = (String::new(), -1i64);
        loop {
            let rows = self.read(
                "SELECT identity_key, version, record FROM history \
                 WHERE (identity_key, version) > ($1, $2) ORDER BY identity_key, version LIMIT $3",
                &[&after.0, &after.1, &PAGE],
                |r| {
                    Ok((
                        r.get::<_, String>(0),
                        r.get::<_, i64>(1),
                        r.get::<_, Vec<u8>>(2),
                    ))
                },
            )?;
            let Some((k, v, _)) = rows.last() else { break };
            after = (k.clone(), *v);
            for (k, _, record) in rows {
                let entry = decode(k.as_bytes(), &record)?;
                each(StoredRecord::History(k, entry))?;
            }
        }
        let mut from = 0u64;
        loop {
            let entries = self.audit_entries(from, PAGE as usize)?;
            let Some(last) = entries.last() else { break };
            from = last.seq + 1;
            for e in entries {
                each(StoredRecord::Audit(e))?;
            }
        }
        for (size, head) in self.read(
            "SELECT size, head FROM tree_heads ORDER BY size",
            &[],
            |r| Ok((r.get::<_, i64>(0), r.get::<_, Vec<u8>>(1))),
        )? {
            each(StoredRecord::TreeHead(size.max(0) as u64, head))?;
        }
        for (sector, serial, at, reason) in self.read(
            "SELECT sector, serial, at, reason FROM revoked ORDER BY sector, serial",
            &[],
            |r| {
                Ok((
                    r.get::<_, String>(0),
                    r.get::<_, Vec<u8>>(1),
                    r.get::<_, i64>(2),
                    r.get::<_, i16>(3),
                ))
            },
        )? {
            let reason = u8::try_from(reason).map_err(|_| StoreError::Corrupt {
                key: "revoked".into(),
                reason: "reason code out of range".into(),
            })?;
            each(StoredRecord::Revoked(sector, serial, at, reason))?;
        }
        for (fp, record) in self.read(
            "SELECT fingerprint, record FROM blocked_keys ORDER BY fingerprint",
            &[],
            |r| Ok((r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1))),
        )? {
            let key: [u8; 32] = fp.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                key: "blocked key".into(),
                reason: "key is not a SHA-256".into(),
            })?;
            each(StoredRecord::BlockedKey(key, decode(&fp, &record)?))?;
        }
        for (space, key, value) in self.read(
            "SELECT space, key, value FROM blobs ORDER BY space, key",
            &[],
            |r| {
                Ok((
                    r.get::<_, String>(0),
                    r.get::<_, Vec<u8>>(1),
                    r.get::<_, Vec<u8>>(2),
                ))
            },
        )? {
            each(StoredRecord::Blob(space, key, value))?;
        }
        for (sector, n) in self.read(
            "SELECT sector, number FROM crl_numbers ORDER BY sector",
            &[],
            |r| Ok((r.get::<_, String>(0), r.get::<_, i64>(1))),
        )? {
            each(StoredRecord::CrlNumber(sector, n.max(0) as u64))?;
        }
        let (certificates, devices) = self.counts()?;
        each(StoredRecord::Counts(certificates, devices))
    }

    fn import(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        self.write(|t| rules::import(t, records))
    }

    fn seal_legacy_records(
        &self,
        entry: &AuditEntry,
        records: &[StoredRecord],
    ) -> Result<(), StoreError> {
        self.write(|t| rules::seal_legacy(t, entry, records))
    }

    fn hold_lease(&self, name: &str, holder: &str, ttl_secs: u64) -> Result<bool, StoreError> {
        // Taken when free or expired, renewed by its holder; the database's
        // clock decides, so replicas' clocks need not agree.
        let held = self.read_one(
            "INSERT INTO leases (name, holder, expires_at) \
             VALUES ($1, $2, now() + $3::BIGINT * interval '1 second') \
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                 expires_at = EXCLUDED.expires_at \
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_at < now() \
             RETURNING holder",
            &[&name, &holder, &int(ttl_secs)?],
            |r| Ok(r.get::<_, String>(0)),
        )?;
        Ok(held.as_deref() == Some(holder))
    }
}

/// Administration helpers for deployments and tests.
pub mod postgres_admin {
    use super::{PgStorage, StoreError, pg_error};

    /// Creates the database `name` on the server at `server_url` (a URL
    /// without a database name, e.g. `postgres://trustca@127.0.0.1:5432`)
    /// and returns the URL of the new database.
    pub fn create_database(server_url: &str, name: &str) -> Result<String, StoreError> {
        check_name(name)?;
        admin_sql(server_url, &[format!("CREATE DATABASE {name}")], name)
    }

    /// Like [`create_database`], with the database's files in a new
    /// tablespace (also called `name`) at `location`, a directory the
    /// PostgreSQL server's user owns: for tests that fill its file system.
    pub fn create_database_in(
        server_url: &str,
        name: &str,
        location: &std::path::Path,
    ) -> Result<String, StoreError> {
        check_name(name)?;
        let location = location
            .to_str()
            .filter(|l| !l.contains('\''))
            .ok_or_else(|| StoreError::Backend("tablespace location must be plain UTF-8".into()))?;
        // One statement at a time: neither may run in a transaction block.
        admin_sql(
            server_url,
            &[
                format!("CREATE TABLESPACE {name} LOCATION '{location}'"),
                format!("CREATE DATABASE {name} TABLESPACE {name}"),
            ],
            name,
        )
    }

    /// Drops the database `name` and the tablespace of the same name that
    /// [`create_database_in`] made, disconnecting its sessions.
    pub fn drop_database_in(server_url: &str, name: &str) -> Result<(), StoreError> {
        check_name(name)?;
        admin_sql(
            server_url,
            &[
                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                format!("DROP TABLESPACE IF EXISTS {name}"),
            ],
            name,
        )
        .map(|_| ())
    }

    /// Lets the database `name` accept connections or not; refusing also
    /// ends its open sessions (a database gone away, for tests).
    pub fn allow_connections(
        server_url: &str,
        name: &str,
        allowed: bool,
    ) -> Result<(), StoreError> {
        check_name(name)?;
        let mut statements = vec![format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allowed}")];
        if !allowed {
            statements.push(format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ));
        }
        admin_sql(server_url, &statements, name).map(|_| ())
    }

    /// The PostgreSQL server's data directory (whose owner is the user
    /// the server runs as).
    pub fn data_directory(server_url: &str) -> Result<std::path::PathBuf, StoreError> {
        let base = server_url.trim_end_matches('/');
        let admin = PgStorage::bare(&format!("{base}/postgres"))?;
        admin.run(|h| {
            let client = admin.client(h)?;
            h.block_on(client.query_one("SHOW data_directory", &[]))
                .map(|row| std::path::PathBuf::from(row.get::<_, String>(0)))
                .map_err(|e| pg_error(&admin.target, e))
        })
    }

    fn check_name(name: &str) -> Result<(), StoreError> {
        if name.is_empty()
            || name.len() > 63
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(StoreError::Backend(format!(
                "database name {name:?} must be 1-63 characters of a-z, 0-9 and _"
            )));
        }
        Ok(())
    }

    /// Runs `statements` in order on the server's `postgres` database;
    /// returns the URL of the database `name`.
    fn admin_sql(
        server_url: &str,
        statements: &[String],
        name: &str,
    ) -> Result<String, StoreError> {
        let base = server_url.trim_end_matches('/');
        let admin = PgStorage::bare(&format!("{base}/postgres"))?;
        admin.run(|h| {
            let client = admin.client(h)?;
            statements.iter().try_for_each(|sql| {
                h.block_on(client.batch_execute(sql))
                    .map_err(|e| pg_error(&admin.target, e))
            })
        })?;
        Ok(format!("{base}/{name}"))
    }

    /// Overwrites the recorded schema version (tests of the refusal of a
    /// newer schema).
    pub fn set_schema_version(url: &str, version: i32) -> Result<(), StoreError> {
        let store = PgStorage::bare(url)?;
        store.run(|h| {
            let client = store.client(h)?;
            h.block_on(client.execute("UPDATE trustca_schema SET version = $1", &[&version]))
                .map(|_| ())
                .map_err(|e| pg_error(&store.target, e))
        })
    }
}
