//! Wiring of the systems of linked devices (issue 22): the composition
//! policy from the policy directory (or the built-in default), the registry
//! over the server's store, `Decide` told about it, the `Systems` gRPC
//! service, the change notifications of re-evaluated systems, and
//! `composition.toml` of every reloaded policy version. Kept out of the
//! composition root, which calls [`open`] and [`service`] once.

use std::sync::Arc;
use std::time::Duration;

use trustca_api::SystemsService;
use trustca_db::composition::CompositionPolicy;
use trustca_db::{Notifier, SystemRegistry, SystemWatch, TrustEngine};
use trustca_proto::v1::systems_server::SystemsServer;
use trustca_store::Storage;

use crate::error::{Result, ServerError};
use crate::lease::Lease;
use crate::loaded_policies::{Policies, PolicyVersion};
use crate::serve::MAX_MESSAGE_BYTES;

/// How often the audit log is followed for changes that move a system.
pub(crate) const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// Opens the systems registry over `storage` with the composition policy
/// of the policies in force (or the built-in default), makes `Decide` take
/// it into account, and has it follow every policy reload.
pub(crate) fn open(
    policies: &Policies,
    trust: &Arc<TrustEngine>,
    storage: &Arc<dyn Storage>,
) -> Result<Arc<SystemRegistry>> {
    let current = policies.current();
    let (name, text) = crate::policies::composition_text(&current.files);
    let policy = CompositionPolicy::parse(name, &text, trust.policy())
        .map_err(|e| ServerError::Policy(e.to_string()))?;
    let registry = Arc::new(
        SystemRegistry::open(Arc::clone(storage), policy)
            .map_err(|e| ServerError::Config(format!("systems of linked devices: {e}")))?,
    );
    trust.set_systems(Arc::clone(&registry));
    let (weak_registry, weak_trust) = (Arc::downgrade(&registry), Arc::downgrade(trust));
    policies.follow(Box::new(move |version| {
        let (Some(r), Some(t)) = (weak_registry.upgrade(), weak_trust.upgrade()) else {
            return Ok(());
        };
        follow(&r, &t, version)
    }));
    Ok(registry)
}

/// The `Systems` gRPC service over `registry`.
pub(crate) fn service(
    trust: &Arc<TrustEngine>,
    registry: &Arc<SystemRegistry>,
) -> SystemsServer<SystemsService> {
    SystemsServer::new(SystemsService::new(Arc::clone(trust), Arc::clone(registry)))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        // An evaluation of 1,000 members with their cap paths.
        .max_encoding_message_size(64 * MAX_MESSAGE_BYTES)
}

/// Follows the audit log every [`WATCH_PERIOD`] and notifies the systems
/// whose levels a change moved. Holds the registry and engine weakly.
pub(crate) fn spawn_watch(
    registry: &Arc<SystemRegistry>,
    trust: &Arc<TrustEngine>,
    notifier: Notifier,
    lease: &Arc<Lease>,
    stop: &tokio_util::sync::CancellationToken,
) {
    let (registry, trust) = (Arc::downgrade(registry), Arc::downgrade(trust));
    let lease = Arc::clone(lease);
    crate::background::spawn(stop, async move {
        let mut watch: Option<SystemWatch> = None;
        loop {
            tokio::time::sleep(WATCH_PERIOD).await;
            let (Some(r), Some(t)) = (registry.upgrade(), trust.upgrade()) else {
                return;
            };
            if !lease.held() {
                // Another replica notifies; start afresh if this one takes over.
                watch = None;
                continue;
            }
            let mut w = watch.take();
            let stepped = tokio::task::spawn_blocking(move || {
                let w = match w.take() {
                    Some(w) => w,
                    None => SystemWatch::start(&r, &t)?,
                };
                let mut w = w;
                let out = w.step(&r, &t)?;
                Ok::<_, trustca_db::TrustDbError>((w, out))
            })
            .await;
            match stepped {
                Ok(Ok((w, notes))) => {
                    for n in notes {
                        notifier.send(n.to_string());
                    }
                    watch = Some(w);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "following changes for systems failed"),
                Err(e) => tracing::warn!(error = %e, "system watch task failed"),
            }
        }
    });
}

/// Takes `composition.toml` of a reloaded version, checked against that
/// version's trust policy (the trust engine takes it after the followers).
fn follow(
    registry: &SystemRegistry,
    trust: &TrustEngine,
    version: &PolicyVersion,
) -> std::result::Result<(), String> {
    let (name, text) = crate::policies::composition_text(&version.files);
    let fresh = Arc::new(version.set.trust.clone());
    registry
        .replace_policy(trust, |_| CompositionPolicy::parse(name, &text, fresh))
        .map_err(|e| e.to_string())?;
    tracing::info!(version = version.number, "composition policy reloaded");
    Ok(())
}
