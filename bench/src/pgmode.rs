//! `--store postgres://…`: servers the harness starts keep their records in
//! a fresh PostgreSQL database on that server instead of the data
//! directory's sled store, so PostgreSQL figures come from the same stages
//! as sled's. Each data directory gets its own database (named after the
//! process and a counter); the stages that reopen a stopped server's store
//! to check it open that database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use trustca_server::StoreConfig;
use trustca_store::{PgStorage, SledStorage, Storage};

/// The PostgreSQL server given with `--store`, when there is one.
static SERVER: OnceLock<String> = OnceLock::new();
/// The database of each data directory whose server ran on PostgreSQL.
static DATABASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Makes every server started from now on use a database on `server_url`.
pub fn use_postgres(server_url: &str) {
    let _ = SERVER.set(server_url.to_owned());
}

/// Whether the servers run on PostgreSQL.
pub fn on_postgres() -> bool {
    SERVER.get().is_some()
}

/// The store a server over `data` uses: a fresh database on PostgreSQL
/// (the same one again for a data directory seen before), or `None` for
/// the data directory's sled store.
pub fn store_for(data: &Path) -> Result<Option<StoreConfig>> {
    let Some(server) = SERVER.get() else {
        return Ok(None);
    };
    let mut dbs = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
    let dbs = dbs.get_or_insert_with(HashMap::new);
    if let Some(url) = dbs.get(data) {
        return Ok(Some(StoreConfig::Postgres(url.clone())));
    }
    let name = format!(
        "bench_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let url = trustca_store::postgres_admin::create_database(server, &name)
        .with_context(|| format!("create database {name}"))?;
    dbs.insert(data.to_path_buf(), url.clone());
    Ok(Some(StoreConfig::Postgres(url)))
}

/// Opens the store a stopped server over `data` used.
pub fn reopen(data: &Path) -> Result<Arc<dyn Storage>> {
    Ok(match store_for(data)? {
        Some(StoreConfig::Postgres(url)) => Arc::new(PgStorage::connect(&url)?),
        _ => Arc::new(SledStorage::open(&data.join("db")).context("reopen the store")?),
    })
}
