//! The trustca server, put together in one place: the options of `serve`,
//! which store to open ([`StoreConfig`]), `init` of a data directory, the
//! mutual-TLS transport, caller authentication with each RPC's rule in one
//! table, and the schedules (CRLs, audit tree heads under leases, SIGHUP
//! reload, CA revocations made offline). The `trustca` command line,
//! the end-to-end tests and the benchmarks start servers through this crate.
#![forbid(unsafe_code)]

mod auth;
mod background;
mod ca_revocation;
mod ca_role;
mod connections;
mod crl_watch;
mod engines;
mod error;
pub mod est;
pub mod etsi;
mod front_ends;
mod instance;
pub mod instance_store;
mod lease;
pub mod legacy;
mod listeners;
pub mod loaded_policies;
pub mod message_limit;
pub mod metrics;
pub mod pkcs11;
pub mod policies;
mod role_start;
mod schedules;
mod serve;
mod startup;
mod store;
mod systems;
pub mod ticket_files;
pub mod transport;
mod tree_heads;
mod trust_list_watch;
pub mod v2x;
pub mod v2x_role;
mod web;

pub use connections::ConnectionLimits;
pub use error::ServerError;
pub use loaded_policies::{Policies, PolicyVersion};
pub use metrics::Metrics;
pub use pkcs11::{OpenToken, Pkcs11Options, open_token};
pub use serve::{
    FEDERATION_CACHE_TTL, MAX_MESSAGE_BYTES, RunningServer, ServeOptions, TREE_HEAD_INTERVAL,
    TRUST_LIST_REFRESH, TreeHeadSigner, init, init_with, start,
};
pub use store::StoreConfig;
