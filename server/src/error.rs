//! The one error type of the server crate: what can stop `init` or `serve`
//! from starting, each as a plain sentence.

/// Why the server could not be initialised or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A file or directory could not be read or written (the sentence names it).
    #[error("{0}")]
    Io(String),
    /// A policy file is missing or invalid.
    #[error("{0}")]
    Policy(String),
    /// The options contradict each other or the policy.
    #[error("{0}")]
    Config(String),
    /// The listening address cannot be bound.
    #[error("{0}")]
    Listen(String),
    /// The TLS configuration could not be built.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The PKCS#11 token could not be found, opened or logged into.
    #[error("{0}")]
    Pkcs11(String),
    /// The CA (hierarchy, keys, CRLs, pseudonym CAs) refused.
    #[error(transparent)]
    Ca(#[from] trustca_ca::CaError),
    /// The trust database refused its configuration.
    #[error(transparent)]
    Trust(#[from] trustca_db::TrustDbError),
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] trustca_store::StoreError),
    /// The store named by `--store` cannot be used by this build or is wrong.
    #[error("{0}")]
    StoreConfig(String),
    /// The store failed its start-up integrity check.
    #[error("{0}")]
    DamagedStore(String),
    /// An audit tree head could not be signed.
    #[error("{0}")]
    Audit(String),
    /// A front end or client of the wire (`trustca-api`) could not be set up.
    #[error(transparent)]
    Api(#[from] trustca_api::ApiError),
    /// The server task stopped with an error or panicked.
    #[error("{0}")]
    Stopped(String),
}

/// Results of the server crate.
pub type Result<T, E = ServerError> = std::result::Result<T, E>;

/// Attaches a sentence to an I/O error, like `anyhow::Context`.
pub(crate) fn io(what: impl std::fmt::Display, e: std::io::Error) -> ServerError {
    ServerError::Io(format!("{what}: {e}"))
}
