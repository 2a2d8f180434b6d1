//! Time limits every streaming RPC shares, so that a client can neither
//! hold a stream open without using it nor make the server buffer results
//! it does not read. `docs/operations.md` lists them beside the connection
//! limits.

use std::time::Duration;

/// How long a request stream may stay silent (no next item, no end) before
/// the server ends it with `DEADLINE_EXCEEDED`.
pub const STREAM_IDLE: Duration = Duration::from_secs(30);

/// How long the server waits for a client to read a queued result before
/// it ends the stream: a client that stops reading stalls its own stream
/// and then loses it, never the server.
pub const STALLED_READER: Duration = Duration::from_secs(30);

/// The two stream time limits a server applies: [`STREAM_IDLE`] and
/// [`STALLED_READER`] by default. A server's options carry one value, so a
/// test can shorten them (the limit is the same code path, only sooner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// How long a request stream may stay silent ([`STREAM_IDLE`]).
    pub idle: Duration,
    /// How long a queued result may wait for its reader ([`STALLED_READER`]).
    pub stalled_reader: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            idle: STREAM_IDLE,
            stalled_reader: STALLED_READER,
        }
    }
}

/// The text by which tonic refuses a message over a service's
/// `max_decoding_message_size` ("decoded message length too large"):
/// the server's oversize layer and `EnrollBatch` recognise it by this text.
pub const TONIC_OVERSIZE_TEXT: &str = "decoded message length too large";
