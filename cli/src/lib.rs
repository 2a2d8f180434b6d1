//! The `trustca` binary's library: the command line and its commands, and
//! certificate inspection/verification. The server itself (`serve`,
//! `init`, transport, policies) is the `trustca-server` crate, the gRPC
//! client `trustca-api`'s (`trustca_api::client`, re-exported here as
//! `client` for the commands).
#![forbid(unsafe_code)]

pub mod attestation_cmd;
pub mod audit_cmd;
pub mod ca_cmd;
pub mod ceremony_cmd;
pub mod certinfo;
pub mod cli;
pub mod enroll_cmd;
pub mod etsi_ceremony_cmd;
pub mod etsi_cmd;
pub mod etsi_tlm_cmd;
pub mod etsi_transport;
pub mod help;
pub mod model_cmd;
pub mod pkcs11;
pub mod pseudonym_cmd;
pub mod pseudonym_etsi;
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

/// The gRPC client lives in the wire crate; commands use it from there.
pub use trustca_api::client;
/// Policy discovery lives in the server crate; commands use it from there.
pub use trustca_server::policies;
