//! The separated V2X authorities' integration tests, in one test binary
//! (one link instead of one per file): the authorities end to end, hash
//! CRLs and the cross-check with an independent implementation. Shared
//! set-up is `common`.

mod authorities;
mod common;
mod hash_crl;
mod independent;
