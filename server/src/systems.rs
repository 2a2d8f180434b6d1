//! Wiring of the systems of linked devices (issue 22): the composition
//! policy from the policy directory (or the built-in default), the registry
//! over the server's store, `Decide` told about it, and the `Systems` gRPC
//! service. Kept out of `serve.rs`, which calls [`service`] once.

use std::path::Path;
use std::sync::Arc;

use trustca_api::SystemsService;
use trustca_db::composition::CompositionPolicy;
use trustca_db::{SystemRegistry, TrustEngine};
use trustca_proto::v1::systems_server::SystemsServer;
use trustca_store::Storage;

use crate::error::{Result, ServerError};
use crate::policies;
use crate::serve::MAX_MESSAGE_BYTES;

/// Opens the systems registry for `trust`, makes `Decide` take it into
/// account and returns the gRPC service.
pub(crate) fn service(
    explicit_policies: Option<&Path>,
    data: &Path,
    trust: &Arc<TrustEngine>,
    storage: &Arc<dyn Storage>,
) -> Result<SystemsServer<SystemsService>> {
    let (files, _) = policies::resolve(explicit_policies, Some(data))?;
    let (name, text) = policies::composition_text(&files);
    let policy = CompositionPolicy::parse(name, &text, trust.policy())
        .map_err(|e| ServerError::Policy(e.to_string()))?;
    let registry = Arc::new(
        SystemRegistry::open(Arc::clone(storage), policy)
            .map_err(|e| ServerError::Config(format!("systems of linked devices: {e}")))?,
    );
    trust.set_systems(Arc::clone(&registry));
    Ok(
        SystemsServer::new(SystemsService::new(Arc::clone(trust), registry))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            // An evaluation of 1,000 members with their cap paths.
            .max_encoding_message_size(64 * MAX_MESSAGE_BYTES),
    )
}
