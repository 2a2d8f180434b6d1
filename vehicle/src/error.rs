//! What can go wrong with a vehicle's pool.

use std::path::{Path, PathBuf};

use crate::X509_POOL_REFUSED;

/// Why a pool could not be created, opened, changed or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// A pool file could not be read, created, written or replaced.
    #[error("cannot {action} {}: {message}", path.display())]
    Io {
        /// What was being done (`read`, `create`, `replace`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's words.
        message: String,
    },
    /// The key file or passphrase is too short, or of the other kind than
    /// the pool's.
    #[error("{0}")]
    Secret(String),
    /// The key file or passphrase does not open this pool.
    #[error("wrong pool key or passphrase for {}", .0.display())]
    WrongSecret(PathBuf),
    /// A pool file is damaged, or not a trustca pool at all.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `create` on a directory that already holds a pool.
    #[error("{} already holds a pseudonym pool", .0.display())]
    AlreadyExists(PathBuf),
    /// `open` on a directory that holds no pool.
    #[error("no pseudonym pool in {}", .0.display())]
    NoPool(PathBuf),
    /// A pool of the retired X.509 pseudonyms; it is left as it is.
    #[error("{}: {X509_POOL_REFUSED}", .0.display())]
    X509Pool(PathBuf),
    /// A change the pool refuses (another sector's profile).
    #[error("{0}")]
    Refused(String),
    /// The system random generator, the pool cipher or an encoder failed.
    #[error("{0}")]
    Crypto(&'static str),
}

impl PoolError {
    pub(crate) fn io(action: &'static str, path: &Path, e: &std::io::Error) -> Self {
        PoolError::Io {
            action,
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    /// A record inside the encrypted state does not decode.
    pub(crate) fn corrupt_state(what: &str) -> Self {
        PoolError::Corrupt {
            path: PathBuf::from(crate::POOL_STATE),
            reason: format!("{what} does not decode"),
        }
    }
}

/// Results of the pool.
pub type Result<T, E = PoolError> = std::result::Result<T, E>;
