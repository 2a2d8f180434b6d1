//! Where the CA, the trust database and the server report what they did,
//! for metrics. The engines hold an `Arc<dyn Observer>` and call it; the
//! server implements it (a Prometheus registry) and hands it in, so neither
//! the engines nor this crate know any metrics format. Every method has a
//! do-nothing default, and [`NoObserver`] is what engines use until one is
//! set.

use std::fmt::Debug;
use std::time::Duration;

/// Receives counts and timings. Implementations must be cheap: they are
/// called on every request.
pub trait Observer: Send + Sync + Debug {
    /// One enrollment item finished: `outcome` is `issued` or a gRPC code
    /// name in snake case (`already_exists`, `invalid_argument`, ...).
    fn enrollment(&self, sector: &str, outcome: &str) {
        let _ = (sector, outcome);
    }
    /// One `Decide` answered: `outcome` is `allow`, `deny` or `error`.
    fn decision(&self, outcome: &str, took: Duration) {
        let _ = (outcome, took);
    }
    /// One request group went through the group committer: `items`
    /// issuances, `took` from hand-over until durable (or refused).
    fn commit(&self, items: usize, took: Duration) {
        let _ = (items, took);
    }
    /// A revocation list of `sector` was published (`kind` = `crl`): how long building, signing and writing took, and its size.
    fn published(&self, kind: &str, sector: &str, took: Duration, bytes: usize) {
        let _ = (kind, sector, took, bytes);
    }
    /// A store call failed (not a refusal such as a duplicate identity):
    /// `operation` says which work, e.g. `commit`, `decide`, `credential`.
    fn store_error(&self, operation: &str) {
        let _ = operation;
    }
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// The snake-case name of a gRPC status code number, for outcome labels.
pub fn code_label(code: i32) -> &'static str {
    match code {
        0 => "ok",
        1 => "cancelled",
        2 => "unknown",
        3 => "invalid_argument",
        4 => "deadline_exceeded",
        5 => "not_found",
        6 => "already_exists",
        7 => "permission_denied",
        8 => "resource_exhausted",
        9 => "failed_precondition",
        10 => "aborted",
        11 => "out_of_range",
        12 => "unimplemented",
        13 => "internal",
        14 => "unavailable",
        15 => "data_loss",
        16 => "unauthenticated",
        _ => "other",
    }
}
