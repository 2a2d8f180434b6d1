//! The composition scheme's integration tests, in one test binary (one link
//! instead of one per file): systems with known answers and random ones.
//! Shared set-up is `common`.

mod common;
mod evaluation;
mod properties;
