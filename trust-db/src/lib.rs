//! The trustca trust-level database: live trust records outrank the level
//! frozen in certificates; cooperation decisions across sectors apply the
//! explicit cross-recognition tables; answers carry assertions signed by a
//! trust responder the root certified; sector databases federate.
#![forbid(unsafe_code)]

mod anomaly;
mod engine;
mod error;
mod federation;
mod foreign;
mod notify;
mod registry;
mod service;
mod snapshot;

pub use engine::{
    IssuerCheck, LiveState, PolicyLoader, RevocationHook, TrustEngine, TrustEngineConfig,
};
pub use error::TrustDbError;
pub use federation::{Federation, FederationConfig};
pub use notify::Notifier;
pub use registry::{FleetMove, ModelRegistry, model_view};
pub use service::{
    AnomalyService, MAX_CHAIN, MAX_DECIDE_BATCH, ModelRegistryService, SnapshotService,
    TrustService,
};
pub use snapshot::{SNAPSHOT_VALIDITY, SnapshotPublisher};
