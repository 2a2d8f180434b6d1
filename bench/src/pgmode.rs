//! `--store postgres://…` or `--store fjall`: servers the harness starts
//! keep their records in a fresh PostgreSQL database on that server, or in
//! an embedded fjall store (`DATA/fjall`), instead of the data directory's
//! sled store, so PostgreSQL and fjall figures come from the same stages
//! as sled's. Each data directory gets its own database (named after the
//! process and a counter); the stages that reopen a stopped server's store
//! to check it, and the store-size fill, open that store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result};
use trustca_server::StoreConfig;
use trustca_store::{CloseWaiter, FjallStorage, PgStorage, SledStorage, Storage};

/// The PostgreSQL server given with `--store`, when there is one.
static SERVER: OnceLock<String> = OnceLock::new();
/// The database of each data directory whose server ran on PostgreSQL.
static DATABASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Whether the servers run on an embedded fjall store.
static FJALL: OnceLock<()> = OnceLock::new();

/// Makes every server started from now on use a database on `server_url`.
pub fn use_postgres(server_url: &str) {
    let _ = SERVER.set(server_url.to_owned());
}

/// `--store`: `sled` (the default), `fjall`, or a PostgreSQL server URL.
pub fn use_store(store: &str) -> Result<()> {
    match store {
        "sled" => {}
        "fjall" => {
            let _ = FJALL.set(());
        }
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            use_postgres(url);
        }
        other => {
            anyhow::bail!("--store {other}: give sled, fjall or a postgres://USER@HOST:PORT server")
        }
    }
    Ok(())
}

/// Whether the servers run on fjall.
pub fn on_fjall() -> bool {
    FJALL.get().is_some()
}

/// The backend the servers run on, for messages and labels.
pub fn backend_name() -> &'static str {
    if on_postgres() {
        "PostgreSQL"
    } else if on_fjall() {
        "fjall"
    } else {
        "sled"
    }
}

/// The arguments that put a child harness process (`--serve-data DATA`)
/// on the very store this one used for `data`: the embedded store of its
/// kind, or on PostgreSQL the database this process created for `data`
/// (with `--store` alone the child would create a fresh, empty one).
pub fn child_args(data: &Path) -> Result<Vec<String>> {
    if on_fjall() {
        return Ok(vec!["--store".into(), "fjall".into()]);
    }
    match (SERVER.get(), store_for(data)?) {
        (Some(server), Some(StoreConfig::Postgres(url))) => Ok(vec![
            "--store".into(),
            server.clone(),
            "--serve-database".into(),
            url,
        ]),
        _ => Ok(Vec::new()),
    }
}

/// `--serve-database URL` (a child process): the server over `data` uses
/// the database `url`, which the parent created and filled.
pub fn adopt_database(data: &Path, url: &str) {
    let mut dbs = DATABASES.lock().unwrap_or_else(|p| p.into_inner());
    dbs.get_or_insert_with(HashMap::new)
        .insert(data.to_path_buf(), url.to_owned());
}

/// The directory of the embedded store of `data` (sled's `DATA/db`, or
/// `DATA/fjall`).
pub fn embedded_dir(data: &Path) -> PathBuf {
    if on_fjall() {
        data.join("fjall")
    } else {
        data.join("db")
    }
}

/// Opens the embedded store of a stopped server's `data` directory with
/// a waiter that tells when it is closed.
pub fn open_embedded(data: &Path) -> Result<(Arc<dyn Storage>, CloseWaiter)> {
    let dir = embedded_dir(data);
    let (store, closed): (Arc<dyn Storage>, _) = if on_fjall() {
        let (s, c) = FjallStorage::open_with(&dir, &Default::default())?;
        (Arc::new(s), c)
    } else {
        let (s, c) = SledStorage::open_with_close_waiter(&dir)?;
        (Arc::new(s), c)
    };
    Ok((store, closed))
}

/// Whether the servers run on PostgreSQL.
pub fn on_postgres() -> bool {
    SERVER.get().is_some()
}

/// The store a server over `data` uses: a fresh database on PostgreSQL
/// (the same one again for a data directory seen before), `DATA/fjall`,
/// or `None` for the data directory's sled store.
pub fn store_for(data: &Path) -> Result<Option<StoreConfig>> {
    if on_fjall() {
        return Ok(Some(StoreConfig::Fjall(embedded_dir(data))));
    }
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
    Ok(reopen_with_close_waiter(data)?.0)
}

/// [`reopen`], with a waiter that tells when an embedded store is closed
/// (`None` on PostgreSQL: nothing on this machine holds it).
pub fn reopen_with_close_waiter(data: &Path) -> Result<(Arc<dyn Storage>, Option<CloseWaiter>)> {
    Ok(match store_for(data)? {
        Some(StoreConfig::Postgres(url)) => (Arc::new(PgStorage::connect(&url)?), None),
        _ => {
            let (store, closed) = open_embedded(data).context("reopen the store")?;
            (store, Some(closed))
        }
    })
}

/// Bytes the store of `data` occupies: (allocated, apparent). The
/// embedded store's directory as `du` counts it; on PostgreSQL the
/// database's own count of its tables with their indexes and TOAST
/// (`Storage::size_on_disk`), the write-ahead log left out.
pub fn store_bytes(data: &Path, store: &dyn Storage) -> Result<(u64, u64)> {
    if on_postgres() {
        let size = store.size_on_disk()?;
        return Ok((size, size));
    }
    crate::storesize::du(&embedded_dir(data))
}
