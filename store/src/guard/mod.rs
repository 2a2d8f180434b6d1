//! Keeps a store serving reads when it cannot write, and brings writes back
//! by itself.
//!
//! [`GuardedStorage`] wraps the server's store. When a write fails because
//! the store cannot write (a full disk: [`StoreError::Full`]), it refuses
//! every further write at once with that error, without touching the
//! backend, and says so once in the log.
//!
//! An embedded engine ([`Recovery::Reopen`], sled) may have applied the
//! failed write in memory although it never reached the disk, and sled
//! then fails every later operation; it is reopened from disk right away,
//! so reads keep working, only committed data is visible, and nothing the
//! client was told failed ever shows up. Opening sled itself needs a little
//! room, so the guard keeps a reserve file beside the store
//! ([`RESERVE_BYTES`]) and gives it up to reopen. Space is back when the
//! reserve can be written again; writes then resume without a restart.
//! A backend that rolls a failed transaction back by itself
//! ([`Recovery::InPlace`], PostgreSQL) is probed with a small write.
//! Probes run at most once a second, backing off to every ten seconds.
//!
//! A store opened for recovery (`serve --allow-damaged-store`) is guarded
//! read-only for good: reads are served, every write gets
//! [`StoreError::ReadOnly`].

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::contain::engine_call;
use crate::{CloseWaiter, Issuance, Storage, StoreError};

/// Where an embedded store's high-water mark lives: beside its reserve
/// file (`DATA/db.high-water`). sled recovers a file cut short, or a
/// store replaced by an older copy, silently to an earlier — often empty —
/// state that checks as intact; the mark, written after every flush, is
/// how many audit entries the store held durably, so such a store is
/// refused when it is opened. PostgreSQL keeps its own durability.
fn high_water_path(recovery: &Recovery) -> Option<std::path::PathBuf> {
    match recovery {
        Recovery::Reopen { reserve } => Some(reserve.with_extension("high-water")),
        Recovery::InPlace => None,
    }
}

/// Refuses a store that holds fewer audit entries than it once did.
fn check_high_water(storage: &dyn Storage, path: &std::path::Path) -> Result<(), StoreError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let Ok(held) = text.trim().parse::<u64>() else {
        return Ok(());
    };
    let size = engine_call(|| storage.audit_head())?.0;
    if size < held {
        return Err(StoreError::Corrupt {
            key: "audit log".into(),
            reason: format!(
                "the store holds {size} audit entries but held {held} (recorded in {}): its files were cut short or replaced by an older copy; restore the newest backup, or delete that file if an older copy was put back on purpose",
                path.display()
            ),
        });
    }
    Ok(())
}

/// Records the high-water mark (best effort: a mark that lags only
/// weakens the check, it never refuses a good store).
fn record_high_water(path: &std::path::Path, size: u64) {
    let tmp = path.with_extension("high-water.tmp");
    let written =
        std::fs::write(&tmp, format!("{size}\n")).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        tracing::debug!(path = %path.display(), error = %e, "high-water mark not recorded");
    }
}

/// Whether a store accepts writes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteHealth {
    /// Writes are accepted.
    Writable,
    /// Writes are refused (full disk, read-only); the reason is a sentence.
    Refusing(String),
}

/// Opens the backend (again): the store and, for embedded engines, a waiter
/// that tells when the files are closed.
pub type Opener =
    Box<dyn Fn() -> Result<(Arc<dyn Storage>, Option<CloseWaiter>), StoreError> + Send + Sync>;

/// How a backend recovers from a failed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// The backend rolls failed writes back itself (PostgreSQL): probe with
    /// a small write.
    InPlace,
    /// An embedded engine reopened from disk after a failed write (sled);
    /// `reserve` is a file of [`RESERVE_BYTES`] on the same disk, given up
    /// so the engine can reopen, and written again to tell that space is
    /// back.
    Reopen {
        /// The reserve file (e.g. `DATA/db.reserve`).
        reserve: std::path::PathBuf,
    },
}

/// The size of the reserve file kept beside an embedded store.
pub const RESERVE_BYTES: usize = 16 * 1024 * 1024;

/// Writes the reserve file; false (and no partial file) when it does not fit.
fn write_reserve(path: &std::path::Path) -> bool {
    use std::io::Write;
    let attempt = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        let chunk = vec![0u8; 1024 * 1024];
        for _ in 0..RESERVE_BYTES / chunk.len() {
            f.write_all(&chunk)?;
        }
        f.sync_all()
    };
    match attempt() {
        Ok(()) => true,
        Err(_) => {
            let _ = std::fs::remove_file(path);
            false
        }
    }
}

/// Where the probe writes (one small record, overwritten each time).
const PROBE_SPACE: &str = "store.probe";
const FIRST_PROBE: Duration = Duration::from_secs(1);
const LAST_PROBE: Duration = Duration::from_secs(10);
/// How long a reopen waits for the old engine's files to close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum State {
    Writable,
    /// For good (a damaged store opened for recovery).
    ReadOnly(String),
    /// Until a probe write succeeds.
    Refusing {
        error: String,
        since: Instant,
        next_probe: Instant,
        backoff: Duration,
    },
}

struct Open {
    storage: Arc<dyn Storage>,
    /// In a mutex only because a receiver is not `Sync`.
    waiter: Mutex<Option<CloseWaiter>>,
}

impl Open {
    fn new(storage: Arc<dyn Storage>, waiter: Option<CloseWaiter>) -> Self {
        Self {
            storage,
            waiter: Mutex::new(waiter),
        }
    }
}

/// A store that refuses writes while it cannot write, keeps reads working
/// and recovers by itself. See the module documentation.
pub struct GuardedStorage {
    opener: Opener,
    recovery_kind: Recovery,
    current: RwLock<Option<Open>>,
    state: Mutex<State>,
    /// Serialises reopening and probing.
    recovery: Mutex<()>,
    /// Keys of damaged records met while serving (each logged once).
    damaged: Mutex<std::collections::HashSet<String>>,
    /// The record seal, handed again to a reopened backend.
    seal: std::sync::OnceLock<Arc<crate::RecordSeal>>,
    /// Why the backend could not be reached at the last operation, until
    /// one succeeds: writes cannot succeed meanwhile, so the writable
    /// health says so (the failures stay `Unavailable`, not `Full`).
    unreachable: Mutex<Option<String>>,
    /// Dropped last (after the engine's files are closed, see `Drop`):
    /// wakes the waiter [`GuardedStorage::open_with_close_waiter`] returned.
    _closed: Arc<std::sync::mpsc::SyncSender<()>>,
}

impl Drop for GuardedStorage {
    fn drop(&mut self) {
        let current = self
            .current
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(Open { storage, waiter }) = current {
            drop(storage);
            if let Some(w) = waiter.into_inner().unwrap_or_else(|p| p.into_inner()) {
                w.wait(CLOSE_WAIT);
            }
        }
    }
}

impl std::fmt::Debug for GuardedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedStorage")
            .field("recovery", &self.recovery_kind)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl GuardedStorage {
    /// Opens the store through `opener`, recovering from write failures as
    /// `recovery` says.
    pub fn open(opener: Opener, recovery: Recovery) -> Result<Self, StoreError> {
        Ok(Self::open_with_close_waiter(opener, recovery)?.0)
    }

    /// Like [`GuardedStorage::open`], with a waiter that tells when the
    /// store (every clone of it) is dropped and its files are closed.
    pub fn open_with_close_waiter(
        opener: Opener,
        recovery: Recovery,
    ) -> Result<(Self, CloseWaiter), StoreError> {
        if let Recovery::Reopen { reserve } = &recovery
            && !reserve.exists()
            && !write_reserve(reserve)
        {
            tracing::warn!(
                reserve = %reserve.display(),
                "no room for the store's reserve file: a full disk will stop reads too until space is freed"
            );
        }
        let (storage, waiter) = engine_call(&opener)?;
        if let Some(path) = high_water_path(&recovery) {
            check_high_water(storage.as_ref(), &path)?;
        }
        let (closed, close_waiter) = CloseWaiter::pair();
        Ok((
            Self {
                opener,
                recovery_kind: recovery,
                current: RwLock::new(Some(Open::new(storage, waiter))),
                state: Mutex::new(State::Writable),
                recovery: Mutex::new(()),
                damaged: Mutex::new(std::collections::HashSet::new()),
                seal: std::sync::OnceLock::new(),
                unreachable: Mutex::new(None),
                _closed: closed,
            },
            close_waiter,
        ))
    }

    /// Refuses every write from now on with `reason` (recovery mode).
    pub fn set_read_only(&self, reason: impl Into<String>) {
        *self.lock_state() = State::ReadOnly(reason.into());
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn inner(&self) -> Result<Arc<dyn Storage>, StoreError> {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .map(|o| Arc::clone(&o.storage))
            .ok_or_else(|| {
                StoreError::Unavailable(
                    "the store is being reopened after a write failure; try again".into(),
                )
            })
    }

    /// Notes whether the backend answered: an unreachable one is logged
    /// once when it goes and once when it comes back. Only writes and the
    /// health probe may say it is back: a read may be answered from a
    /// replica's cache without reaching the database.
    fn observe_reach<T>(&self, result: &Result<T, StoreError>, reached_backend: bool) {
        let mut unreachable = self.unreachable.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Err(StoreError::Unavailable(why)) => {
                if unreachable.is_none() {
                    tracing::error!(reason = %why, "the store cannot be reached: reads and writes fail until it answers again");
                }
                *unreachable = Some(why.clone());
            }
            Ok(_) if reached_backend && unreachable.is_some() => {
                tracing::info!("the store answers again");
                *unreachable = None;
            }
            _ => {}
        }
    }

    /// A read's outcome: a damaged record is logged the first time it is
    /// met (the caller answers DATA_LOSS for it every time).
    fn observe_read<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.observe_reach(&result, false);
        if let Err(StoreError::Corrupt { key, reason }) = &result {
            let first = self
                .damaged
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone());
            if first {
                tracing::error!(
                    record = %key,
                    %reason,
                    "damaged record in the store: answering DATA_LOSS for it; run `trustca store check`"
                );
            }
        }
        result
    }

    /// Whether a write may go to the backend now; runs a due probe.
    fn admit_write(&self) -> Result<(), StoreError> {
        let due = match &*self.lock_state() {
            State::Writable => return Ok(()),
            State::ReadOnly(reason) => return Err(StoreError::ReadOnly(reason.clone())),
            State::Refusing { next_probe, .. } => Instant::now() >= *next_probe,
        };
        if due {
            self.probe();
        }
        match &*self.lock_state() {
            State::Writable => Ok(()),
            State::ReadOnly(reason) => Err(StoreError::ReadOnly(reason.clone())),
            State::Refusing { error, .. } => Err(StoreError::Full(error.clone())),
        }
    }

    /// Looks at a write's outcome; a write the store could not make puts
    /// it in the refusing state (and reopens a backend that needs it).
    /// A write that met a damaged record is also noted as damage.
    fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        self.observe_reach(&result, true);
        if let Err(StoreError::Full(reason)) = &result {
            self.write_failed(reason);
        }
        self.observe_read(result)
    }

    fn write_failed(&self, reason: &str) {
        let now = Instant::now();
        {
            let mut state = self.lock_state();
            match &*state {
                State::Writable => {
                    tracing::error!(
                        reason,
                        "the store cannot write: refusing writes (reads continue) until space is freed"
                    );
                }
                State::ReadOnly(_) => return,
                State::Refusing { .. } => {}
            }
            let backoff = match &*state {
                State::Refusing { backoff, .. } => (*backoff * 2).min(LAST_PROBE),
                _ => FIRST_PROBE,
            };
            let since = match &*state {
                State::Refusing { since, .. } => *since,
                _ => now,
            };
            *state = State::Refusing {
                error: reason.to_owned(),
                since,
                next_probe: now + backoff,
                backoff,
            };
        }
        if let Recovery::Reopen { reserve } = &self.recovery_kind {
            let _recovering = self.recovery.lock().unwrap_or_else(|p| p.into_inner());
            // The reserve makes room for the engine to open again.
            let _ = std::fs::remove_file(reserve);
            self.reopen();
        }
    }

    /// Closes the engine and opens it again from disk. Readers get
    /// `Unavailable` for the moment it takes.
    fn reopen(&self) {
        let old = self
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(Open { storage, waiter }) = old {
            // Readers that took the engine before finish with it first;
            // the waiter tells when its files are closed.
            drop(storage);
            if let Some(w) = waiter.into_inner().unwrap_or_else(|p| p.into_inner())
                && !w.wait(CLOSE_WAIT)
            {
                tracing::warn!("the store's files were not closed in time; reopening anyway");
            }
        }
        match engine_call(&self.opener) {
            Ok((storage, waiter)) => {
                if let Some(seal) = self.seal.get() {
                    storage.set_record_seal(Arc::clone(seal));
                }
                *self.current.write().unwrap_or_else(|p| p.into_inner()) =
                    Some(Open::new(storage, waiter));
                tracing::info!("store reopened from disk after a write failure");
            }
            Err(e) => {
                tracing::warn!(error = %e, "reopening the store failed; retrying at the next probe");
            }
        }
    }

    /// One probe write; on success writes resume.
    fn probe(&self) {
        let _recovering = self.recovery.lock().unwrap_or_else(|p| p.into_inner());
        // Another thread may have recovered meanwhile.
        if !matches!(&*self.lock_state(), State::Refusing { next_probe, .. } if Instant::now() >= *next_probe)
        {
            return;
        }
        let space_back = match &self.recovery_kind {
            Recovery::InPlace => self
                .inner()
                .and_then(|s| {
                    let stamp = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_secs()
                        .to_be_bytes();
                    s.blob_put(
                        PROBE_SPACE,
                        &[(b"probe".to_vec(), stamp.to_vec())],
                        false,
                        None,
                    )
                })
                .is_ok(),
            Recovery::Reopen { reserve } => {
                if self.inner().is_err() {
                    // The last reopen failed: the engine has to open first.
                    self.reopen();
                }
                self.inner().is_ok() && write_reserve(reserve)
            }
        };
        let mut state = self.lock_state();
        if space_back {
            if let State::Refusing { since, .. } = &*state {
                tracing::info!(
                    refused_for_secs = since.elapsed().as_secs(),
                    "the store writes again: writes resumed"
                );
            }
            *state = State::Writable;
        } else if let State::Refusing {
            next_probe,
            backoff,
            ..
        } = &mut *state
        {
            *backoff = (*backoff * 2).min(LAST_PROBE);
            *next_probe = Instant::now() + *backoff;
        }
    }
}

mod storage;
#[cfg(test)]
mod tests;
