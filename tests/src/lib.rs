//! End-to-end tests for trustca live in `tests/`; this library is empty.
#![forbid(unsafe_code)]
