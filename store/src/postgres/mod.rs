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
    IssuanceReads, KeyValue, Storage, StoreError, StoredRecord, TrustChange, TrustRecord,
};

/// The schema version this binary writes; a database with a newer one is
/// refused.
pub const SCHEMA_VERSION: i32 = 2;

/// Embedded migrations: (version it produces, SQL).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_initial.sql")),
    (
        2,
        include_str!("../../migrations/0002_attestation_challenges.sql"),
    ),
];

/// Advisory lock serialising every write transaction ("trustca" + 1).
const WRITE_LOCK: i64 = 0x7472_7573_7463_6101;
/// Advisory lock serialising schema migrations ("trustca" + 2).
const MIGRATION_LOCK: i64 = 0x7472_7573_7463_6102;
/// Advisory lock serialising the count-and-insert of open attestation
/// challenges ("trustca" + 3).
const CHALLENGE_LOCK: i64 = 0x7472_7573_7463_6103;

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

/// Decodes a one-column row holding an encoded record.
pub(super) fn decoded<T: serde::de::DeserializeOwned>(
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

mod storage;
mod txn;

use txn::PgTxn;

/// Administration helpers for deployments and tests.
pub mod postgres_admin;
