//! Which store a server (or an offline command) uses: the embedded sled
//! directory, the default; an embedded fjall directory (`fjall:PATH`); or
//! a PostgreSQL database named by URL. Every place that opens a store
//! goes through [`StoreConfig::open`], so a new backend is wired here once.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use trustca_datadir::DataDir;

use trustca_store::{
    CachedStorage, FjallSettings, FjallStorage, GuardedStorage, PgStorage, Recovery, SledStorage,
    Storage, StoreError,
};

use crate::error::ServerError;

/// Where the records live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// An embedded sled database in this directory (one process at a time).
    Sled(PathBuf),
    /// An embedded fjall database in this directory (one process at a
    /// time): `fjall:PATH`.
    Fjall(PathBuf),
    /// A PostgreSQL database, by connection URL (`postgres://…`).
    Postgres(String),
}

impl StoreConfig {
    /// The default store of a data directory: `DATA/db`.
    pub fn in_data_dir(data: &Path) -> Self {
        Self::Sled(DataDir::new(data).db())
    }

    /// `--store` if given, else the data directory's sled store.
    pub fn or_data_dir(store: Option<&StoreConfig>, data: &Path) -> Self {
        store.cloned().unwrap_or_else(|| Self::in_data_dir(data))
    }

    /// The directory of an embedded store (sled or fjall); `None` for
    /// PostgreSQL.
    pub fn embedded_dir(&self) -> Option<&Path> {
        match self {
            Self::Sled(dir) | Self::Fjall(dir) => Some(dir),
            Self::Postgres(_) => None,
        }
    }

    /// A short description for logs and messages; a URL is shown without
    /// its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sled(dir) => dir.display().to_string(),
            Self::Fjall(dir) => format!("fjall:{}", dir.display()),
            Self::Postgres(url) => redact(url),
        }
    }

    /// Opens the store (creating an embedded store's directory when there
    /// is none; migrating a PostgreSQL schema to this binary's version).
    pub fn open(&self) -> Result<Arc<dyn Storage>, ServerError> {
        match self {
            Self::Sled(_) | Self::Fjall(_) => Ok(self.open_with_close()?.0),
            Self::Postgres(url) => Ok(Arc::new(connect(url)?)),
        }
    }

    /// Opens an existing store to read it, changing nothing first: no
    /// PostgreSQL migration (an embedded store's directory must exist).
    pub fn open_existing(&self) -> Result<Arc<dyn Storage>, ServerError> {
        match self {
            Self::Sled(dir) | Self::Fjall(dir) if !dir.exists() => Err(ServerError::StoreConfig(
                format!("there is no store at {}", dir.display()),
            )),
            Self::Sled(_) | Self::Fjall(_) => self.open(),
            Self::Postgres(url) => Ok(Arc::new(
                PgStorage::connect_existing(url).map_err(|e| open_error(url, &e))?,
            )),
        }
    }

    /// Opens the store for a server; the waiter, for an embedded store, tells when the
    /// directory is closed and unlocked after shutdown, so it can be
    /// reopened at once. A PostgreSQL store, shared with other replicas,
    /// is read through a cache of the records `Decide` needs, revalidated
    /// against the audit log's size at most [`REPLICA_STALENESS`] after the
    /// last check.
    pub(crate) fn open_with_close(
        &self,
    ) -> Result<(Arc<dyn Storage>, Option<trustca_store::CloseWaiter>), ServerError> {
        let (guarded, closed) = self.open_guarded()?;
        Ok((guarded, Some(closed)))
    }

    /// The store behind the guard that keeps reads working while it cannot
    /// write and brings writes back by itself (`trustca_store::GuardedStorage`).
    pub(crate) fn open_guarded(
        &self,
    ) -> Result<(Arc<GuardedStorage>, trustca_store::CloseWaiter), ServerError> {
        let config = self.clone();
        let opener: trustca_store::Opener = Box::new(move || {
            config
                .open_backend()
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        });
        // sled's memory cannot be trusted after a failed write (it fails
        // every later operation), nor fjall's after a failed fsync (it
        // refuses every later write): reopen from disk, with a reserve
        // file beside the store to make room. PostgreSQL rolls a failed
        // transaction back by itself.
        let recovery = match self {
            Self::Sled(dir) | Self::Fjall(dir) => {
                let mut reserve = dir.clone().into_os_string();
                reserve.push(".reserve");
                Recovery::Reopen {
                    reserve: reserve.into(),
                }
            }
            Self::Postgres(_) => Recovery::InPlace,
        };
        let (guarded, closed) =
            GuardedStorage::open_with_close_waiter(opener, recovery).map_err(|e| match e {
                StoreError::Unavailable(m) => ServerError::StoreConfig(m),
                // Damaged files (a contained engine panic, a file cut
                // short): one sentence naming the store and what to do.
                StoreError::Corrupt { reason, .. } => ServerError::StoreConfig(format!(
                    "the store {} cannot be opened: {reason}; restore it from a backup (`trustca store check` names damaged records of a store that opens)",
                    self.describe()
                )),
                other => ServerError::StoreConfig(other.to_string()),
            })?;
        Ok((Arc::new(guarded), closed))
    }

    fn open_backend(
        &self,
    ) -> Result<(Arc<dyn Storage>, Option<trustca_store::CloseWaiter>), ServerError> {
        match self {
            Self::Sled(dir) => {
                let (store, closed) = SledStorage::open_with_close_waiter(dir)
                    .map_err(|e| embedded_open_error(dir, e))?;
                Ok((Arc::new(store), Some(closed)))
            }
            Self::Fjall(dir) => {
                let (store, closed) = FjallStorage::open_with(dir, &FjallSettings::default())
                    .map_err(|e| embedded_open_error(dir, e))?;
                Ok((Arc::new(store), Some(closed)))
            }
            Self::Postgres(url) => {
                let pg: Arc<dyn Storage> = Arc::new(connect(url)?);
                Ok((Arc::new(CachedStorage::new(pg, REPLICA_STALENESS)), None))
            }
        }
    }
}

/// Why an embedded store in `dir` did not open, in words.
fn embedded_open_error(dir: &Path, e: StoreError) -> ServerError {
    match e {
        StoreError::InUse(_) => ServerError::StoreConfig(format!(
            "the store {} is in use by another trustca process",
            dir.display()
        )),
        other => ServerError::StoreConfig(format!(
            "cannot open the store at {}: {other}",
            dir.display()
        )),
    }
}

/// How stale a replica's cached read may be (PostgreSQL deployments).
pub const REPLICA_STALENESS: std::time::Duration = std::time::Duration::from_millis(20);

fn connect(url: &str) -> Result<PgStorage, ServerError> {
    PgStorage::connect(url).map_err(|e| open_error(url, &e))
}

/// "cannot open the store URL: why", said once (the store error's own
/// "the store is unavailable:" prefix would repeat it).
fn open_error(url: &str, e: &StoreError) -> ServerError {
    // The driver's text may quote the URL; never show its password.
    ServerError::StoreConfig(match e {
        // These already name the server ("PostgreSQL at HOST:PORT/DB").
        StoreError::Unavailable(m) | StoreError::Backend(m) => {
            format!("cannot open the store: {}", scrub(m, url))
        }
        other => format!(
            "cannot open the store {}: {}",
            redact(url),
            scrub(&other.to_string(), url)
        ),
    })
}

/// `text` with any occurrence of the URL's password removed.
fn scrub(text: &str, url: &str) -> String {
    match password(url) {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text.to_owned(),
    }
}

fn password(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1)
}

/// What marks a fjall store in `--store`.
const FJALL_PREFIX: &str = "fjall:";

impl FromStr for StoreConfig {
    type Err = ServerError;

    /// `postgres://…` or `postgresql://…` is a PostgreSQL URL; `fjall:PATH`
    /// a fjall directory; anything else is a sled directory.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(ServerError::StoreConfig(
                "the store is empty: give a directory, fjall:DIRECTORY or a postgres:// URL".into(),
            ));
        }
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Ok(Self::Postgres(s.to_owned()))
        } else if let Some(dir) = s.strip_prefix(FJALL_PREFIX) {
            if dir.trim().is_empty() {
                return Err(ServerError::StoreConfig(
                    "fjall: names no directory: give fjall:DIRECTORY".into(),
                ));
            }
            Ok(Self::Fjall(PathBuf::from(dir)))
        } else {
            Ok(Self::Sled(PathBuf::from(s)))
        }
    }
}

/// The URL with any password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_the_rest_directories() {
        assert_eq!(
            "postgres://u@h/db".parse::<StoreConfig>().unwrap(),
            StoreConfig::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            "postgresql://h/db".parse::<StoreConfig>().unwrap(),
            StoreConfig::Postgres("postgresql://h/db".into())
        );
        assert_eq!(
            "/var/lib/trustca/db".parse::<StoreConfig>().unwrap(),
            StoreConfig::Sled("/var/lib/trustca/db".into())
        );
        assert_eq!(
            "fjall:/var/lib/trustca/db".parse::<StoreConfig>().unwrap(),
            StoreConfig::Fjall("/var/lib/trustca/db".into())
        );
        assert!("".parse::<StoreConfig>().is_err());
        assert!("fjall:".parse::<StoreConfig>().is_err());
    }

    #[test]
    fn passwords_are_not_shown() {
        // Port 1 on loopback: refused at once, nothing listens there.
        let c: StoreConfig = "postgres://ca:secret@127.0.0.1:1/trustca".parse().unwrap();
        assert_eq!(c.describe(), "postgres://ca:***@127.0.0.1:1/trustca");
        let err = c.open().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("cannot open the store"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn fjall_opens_reopens_and_reports_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let c: StoreConfig = format!("fjall:{}", dir.path().join("db").display())
            .parse()
            .unwrap();
        assert!(c.describe().starts_with("fjall:"), "{}", c.describe());
        assert!(c.open_existing().is_err(), "no store yet");
        let store = c.open().unwrap();
        assert_eq!(store.counts().unwrap(), (0, 0));
        let err = c.open().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("in use"), "{err}");
        drop(store);
        assert_eq!(c.open_existing().unwrap().counts().unwrap(), (0, 0));
    }

    #[test]
    fn sled_opens_and_reports_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        let c = StoreConfig::in_data_dir(dir.path());
        let store = c.open().unwrap();
        assert_eq!(store.counts().unwrap(), (0, 0));
        let err = c.open().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("in use"), "{err}");
    }
}
