//! End-to-end tests of the CA and the trust database, in one test binary (one link of the
//! workspace instead of one per file): real servers on loopback, real mutual-TLS clients,
//! and independent checkers (openssl, Go, pkilint, curl, Python).
//!
//! Each module was its own test binary; shared set-up is `common` (the test kit).

use trustca_testkit as common;

mod anomaly;
mod attestation;
mod audit;
mod enrollment;
mod est;
mod est_attestation;
mod federation;
mod federation_roots;
mod interop;
mod metrics;
mod policy_reload;
mod registry;
mod revocation;
mod revocation_semantics;
mod rollover;
mod root_crl;
mod streams;
mod systems;
mod trust;
mod trust_list;
mod web;
