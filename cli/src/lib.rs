//! The `trustca` binary's library: the command line and its commands, the
//! gRPC client, the vehicle's pseudonym pool, and certificate
//! inspection/verification. The server itself (`serve`, `init`, transport,
//! policies) is the `trustca-server` crate; exposed as a library so tests
//! use the same client code as the binary.
#![forbid(unsafe_code)]

pub mod attestation_cmd;
pub mod audit_cmd;
pub mod ca_cmd;
pub mod ceremony_cmd;
pub mod certinfo;
pub mod cli;
pub mod client;
pub mod enroll_cmd;
pub mod etsi_ceremony_cmd;
pub mod etsi_cmd;
pub mod etsi_tlm_cmd;
pub mod help;
pub mod model_cmd;
pub mod pkcs11;
pub mod pseudonym_cmd;
pub mod serve_cmd;
pub mod show;
pub mod snapshot_cmd;
pub mod store_cmd;
pub mod system_cmd;
pub mod ticket_cmd;
pub mod trust_cmd;
pub mod trust_list_cmd;
pub mod v2x_cmd;
pub mod v2x_crl_cmd;
pub mod v2x_inspect;
pub mod v2x_role_cmd;
pub mod verify_cmd;
pub mod web_cmd;

/// Policy discovery lives in the server crate; commands use it from there.
pub use trustca_server::policies;
