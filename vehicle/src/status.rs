//! What a pool reports about itself, without secrets: coverage, the ticket
//! in use and when to top up. Times are unix seconds; callers format them.

use std::path::PathBuf;

use serde::Serialize;

/// The ticket in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrentTicket {
    /// Its HashedId8 (hex).
    pub serial: String,
    /// Its period.
    pub period: u64,
    /// Its index `j` within the period.
    pub index: u32,
    /// In use since (unix seconds).
    pub since: i64,
    /// When the pool changes to the next one (unix seconds).
    pub next_change: i64,
    /// End of its validity (unix seconds).
    pub not_after: i64,
}

/// A pool's state for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    /// The pool directory.
    pub pool: PathBuf,
    /// Ticket requests whose tickets have not all arrived.
    pub pending_requests: usize,
    /// Tickets still expected from them.
    pub tickets_awaited: usize,
    /// The sector, once the pool has talked to a registration authority.
    pub sector: Option<String>,
    /// The current period.
    pub period_now: Option<u64>,
    /// The periods from now on that hold tickets.
    pub covered_periods: Vec<u64>,
    /// The last period held or requested.
    pub covered_through: Option<u64>,
    /// Tickets held.
    pub certificates: usize,
    /// Tickets of the current period not used yet.
    pub unused_in_current_period: usize,
    /// The ticket in use, if one is valid now.
    pub current: Option<CurrentTicket>,
    /// Seconds between changes of ticket (before jitter).
    pub rotation_seconds: u64,
    /// When a top-up is due (unix seconds).
    pub next_topup: i64,
    /// Whether it is due now.
    pub topup_due: bool,
}
