//! The ETSI TS 102 941 authorities' integration tests, in one test binary
//! (one link instead of one per file): flows, response codes, certificate
//! profiles, trust lists, the asn1tools cross-check and the ignored timing
//! breakdown. Shared set-up is `common`.

mod asn1tools;
mod codes;
mod common;
mod flows;
mod profile;
mod timing;
mod trust_lists;
