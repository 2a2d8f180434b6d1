//! The `trustca` binary's library: the command line, the server assembly
//! (`serve`), the mutual-TLS transport and client, policy discovery and
//! certificate inspection/verification. Exposed as a library so end-to-end
//! tests and the benchmark harness start real servers in-process.
#![forbid(unsafe_code)]

pub mod audit_cmd;
pub mod ca_cmd;
pub mod certinfo;
pub mod cli;
pub mod client;
pub mod message_limit;
pub mod pkcs11;
pub mod policies;
pub mod pseudonym_cmd;
pub mod server;
pub mod transport;
pub mod trust_cmd;
pub mod vehicle_pool;
pub mod verify_cmd;
