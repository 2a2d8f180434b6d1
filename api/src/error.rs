//! The one error of this crate: a front end, a remote V2X authority's
//! client or the command line's gRPC client that could not be set up or
//! could not reach its server. What a service answers a caller is a
//! `tonic::Status` (or an HTTP status), never this.

use std::path::PathBuf;

/// Why a client or a front end of this crate could not do its work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A front end or client was given something it cannot use (a URL, the
    /// hierarchy's certificates, a policy's algorithms).
    #[error("{0}")]
    Setup(String),
    /// A file a client needs could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// What the file is (the identity certificate, the root, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error of the read.
        source: std::io::Error,
    },
    /// A client credential is unusable: bad PEM, no key, or the key is not
    /// the certificate's.
    #[error("{0}")]
    Credential(String),
    /// The server could not be reached (the reason in words).
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The server's URL.
        url: String,
        /// Why, as a sentence.
        reason: String,
    },
    /// The server refused a call: the status code in words, its message.
    #[error("{what} ({words}): {message}")]
    Refused {
        /// What was refused.
        what: String,
        /// The gRPC code in lower-case words.
        words: &'static str,
        /// The server's message.
        message: String,
    },
}
