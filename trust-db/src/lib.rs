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
pub mod msg;
mod notify;
mod registry;
mod snapshot;
mod systems;

pub use engine::{
    IssuerCheck, LiveState, MAX_CHAIN, PolicyLoader, RevocationHook, TrustEngine, TrustEngineConfig,
};
pub use error::TrustDbError;
pub use federation::{PeerAnswer, PeerDatabases};
pub use foreign::FOREIGN_CRL_DIR;
pub use notify::Notifier;
pub use registry::{FleetMove, ModelRegistry, model_view};
pub use snapshot::{SNAPSHOT_VALIDITY, SnapshotPublisher, SnapshotStamp};
pub use systems::{
    ListedSystem, MemberCap, RECHECK, SPACE as SYSTEMS_SPACE, SystemRegistry, SystemWatch,
    cap_view, evaluation_view, system_view,
};
pub use trustca_composition as composition;

#[cfg(test)]
mod vouched_spaces {
    /// The store vouches for every system record by the audit log, so a
    /// link removed behind trustca's back cannot lift a cap unnoticed.
    #[test]
    fn systems_are_a_vouched_space() {
        assert!(trustca_store::VOUCHED_SPACES.contains(&crate::systems::SPACE));
    }
}
