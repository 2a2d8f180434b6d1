//! The one test kit of trustca's end-to-end tests: a real server on a
//! loopback port with a fresh data directory, credentials, CSRs, clients,
//! the key ceremony (`ceremony`), two industries under two roots
//! (`two_roots`), separated V2X authorities (`separated`),
//! and the independent checkers — openssl, the stdlib-only Go program
//! (`go_check`) and headless Chromium (`browser`). Compiled once and linked
//! into every test binary of `tests/`.
#![forbid(unsafe_code)]
#![allow(
    missing_debug_implementations,
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_arguments
)]

pub mod interop;
pub mod softhsm;
#[cfg(feature = "tpm")]
pub mod swtpm;

pub use interop::{
    asn1_dir, asn1tools_ready, available, interop_required, python_missing, python_ready, repo_dir,
    skip_or_fail,
};

#[cfg(feature = "server")]
pub mod browser;
#[cfg(feature = "server")]
mod ca_template;
#[cfg(feature = "server")]
pub mod ceremony;
#[cfg(feature = "server")]
pub mod go_check;
#[cfg(feature = "server")]
pub mod separated;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::*;
#[cfg(feature = "server")]
pub mod two_roots;
