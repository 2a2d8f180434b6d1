//! Tamper-evident audit log primitives (work in progress).
#![forbid(unsafe_code)]
