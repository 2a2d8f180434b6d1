//! The audit log's integration tests, in one test binary (one link instead
//! of one per file): whole-log verification, properties, signed tree heads
//! and the published and independently generated vectors.

mod log_verify;
mod properties;
mod signed_heads;
mod vectors;
