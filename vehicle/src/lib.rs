//! The vehicle's pseudonym pool: its IEEE 1609.2 authorization tickets and
//! the private keys it derived for them, encrypted at rest, and the policy
//! for using them.
//!
//! * **At rest.** `DIR/pool.toml` holds the key derivation parameters and a
//!   check value; `DIR/pool.bin` holds the whole state (tickets, keys,
//!   rotation state) sealed with AES-256-GCM. The key comes from a
//!   passphrase (PBKDF2-HMAC-SHA256) or a key file of at least 32 random
//!   bytes (HKDF-SHA256). Tickets are encrypted too: which tickets belong
//!   to one vehicle is exactly what must not leak from a stolen disk.
//!   Every save writes a temporary file, syncs it and renames it over the
//!   old one, so a crash leaves the previous or the new state.
//! * **Rotation.** The pool uses one certificate at a time and changes it
//!   after an interval with ±20 % jitter (default: the period length divided
//!   by the certificates per period), and at once when a period begins. It
//!   never goes back to a certificate already used in the same period:
//!   when all are used, it keeps the current one until the period ends.
//! * **Top-up.** The pool reports when fewer than `topup_margin_periods`
//!   periods (counting the current one) remain covered; `request` fills it.
//! * **Expiry.** Certificates whose validity has ended are dropped on every
//!   save.
//!
//! * **Tickets.** The pool holds IEEE 1609.2 authorization tickets (COER)
//!   from the V2X registration authority, and keeps, sealed, the
//!   caterpillar key of every request whose tickets have not all arrived
//!   (the registration authority delivers them after its next batch); it
//!   drops that key once they have or once the request's last period is
//!   over. For an entry, `serial` is the ticket's HashedId8 and `index` its
//!   `j`.
//! * **EU C-ITS tickets.** A pool may instead hold ETSI TS 103 097
//!   authorization tickets (`PoolProfile::kind`, and each entry's `kind`)
//!   and, sealed with them, the station's canonical key, enrolment
//!   credential and trust anchors ([`EtsiStation`]); one pool holds one
//!   kind.
//! * **Old pools.** Pools written before trustca retired its X.509
//!   pseudonym certificates record the format `x509` (or none, before
//!   tickets existed). Opening one that holds anything fails with
//!   [`X509_POOL_REFUSED`] and changes nothing; an empty one becomes a
//!   ticket pool.
//!
#![forbid(unsafe_code)]

mod error;
mod pool;
mod records;
mod sealed;
mod station;
mod status;

pub use error::PoolError;
pub use pool::Pool;
pub use records::{
    Current, PoolEntry, PoolProfile, Rotation, Settings, TicketKind, TicketRequestRecord,
};
pub use sealed::{PoolSecret, write_atomic};
pub use station::{EnrolmentCredential, EtsiStation, new_scalar};
pub use status::{CurrentTicket, PoolStatus};

/// The key derivation and check file.
pub const POOL_META: &str = "pool.toml";
/// The encrypted state.
pub const POOL_STATE: &str = "pool.bin";
/// The pool format recorded for IEEE 1609.2 ticket pools.
pub const POOL_FORMAT: &str = "ieee1609";
/// Default jitter of the rotation interval, percent either way.
pub const DEFAULT_JITTER_PERCENT: u32 = 20;
/// Default number of covered periods below which a top-up is due.
pub const DEFAULT_TOPUP_MARGIN: u32 = 2;
/// Why a pool holding X.509 pseudonym certificates is not opened.
pub const X509_POOL_REFUSED: &str = "this pool holds X.509 pseudonyms, which trustca no longer issues; request IEEE 1609.2 tickets with `trustca pseudonym request` (into a new --pool directory)";
