//! Wiring of the systems of linked devices (issue 22): the composition
//! policy from the policy directory (or the built-in default), the registry
//! over the server's store, `Decide` told about it, the `Systems` gRPC
//! service, the change notifications of re-evaluated systems, and
//! `composition.toml` read again on SIGHUP. Kept out of `serve.rs`, which
//! calls [`service`] once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use trustca_api::SystemsService;
use trustca_db::composition::CompositionPolicy;
use trustca_db::{Notifier, SystemRegistry, SystemWatch, TrustEngine};
use trustca_proto::v1::systems_server::SystemsServer;
use trustca_store::Storage;

use crate::error::{Result, ServerError};
use crate::lease::Lease;
use crate::policies;
use crate::serve::MAX_MESSAGE_BYTES;

/// How often the audit log is followed for changes that move a system.
pub(crate) const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// What [`service`] needs from the server.
pub(crate) struct SystemsParts<'a> {
    pub explicit_policies: Option<&'a Path>,
    pub data: &'a Path,
    pub trust: &'a Arc<TrustEngine>,
    pub storage: &'a Arc<dyn Storage>,
    /// Where re-evaluated systems are notified (the anomaly notifications' sink and webhook).
    pub notifier: Notifier,
    /// Notifications are sent by the replica holding this lease only.
    pub lease: &'a Arc<Lease>,
}

/// The composition policy of the policy set (or the built-in default).
fn read_policy(
    explicit_policies: Option<&Path>,
    data: &Path,
    trust: &TrustEngine,
) -> Result<CompositionPolicy> {
    let (files, _) = policies::resolve(explicit_policies, Some(data))?;
    let (name, text) = policies::composition_text(&files);
    CompositionPolicy::parse(name, &text, trust.policy())
        .map_err(|e| ServerError::Policy(e.to_string()))
}

/// Opens the systems registry for `trust`, makes `Decide` take it into
/// account, starts the change notifications and the SIGHUP reload, and
/// returns the gRPC service.
pub(crate) fn service(parts: SystemsParts<'_>) -> Result<SystemsServer<SystemsService>> {
    let policy = read_policy(parts.explicit_policies, parts.data, parts.trust)?;
    let registry = Arc::new(
        SystemRegistry::open(Arc::clone(parts.storage), policy)
            .map_err(|e| ServerError::Config(format!("systems of linked devices: {e}")))?,
    );
    parts.trust.set_systems(Arc::clone(&registry));
    spawn_watch(&registry, parts.trust, parts.notifier, parts.lease);
    spawn_reload_on_hangup(
        &registry,
        parts.trust,
        parts.explicit_policies.map(Path::to_path_buf),
        parts.data.to_path_buf(),
    );
    Ok(
        SystemsServer::new(SystemsService::new(Arc::clone(parts.trust), registry))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            // An evaluation of 1,000 members with their cap paths.
            .max_encoding_message_size(64 * MAX_MESSAGE_BYTES),
    )
}

/// Follows the audit log every [`WATCH_PERIOD`] and notifies the systems
/// whose levels a change moved. Holds the registry and engine weakly.
fn spawn_watch(
    registry: &Arc<SystemRegistry>,
    trust: &Arc<TrustEngine>,
    notifier: Notifier,
    lease: &Arc<Lease>,
) {
    let (registry, trust) = (Arc::downgrade(registry), Arc::downgrade(trust));
    let lease = Arc::clone(lease);
    tokio::spawn(async move {
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

/// SIGHUP reads `composition.toml` again; a bad file is logged and the
/// running policy stays.
fn spawn_reload_on_hangup(
    registry: &Arc<SystemRegistry>,
    trust: &Arc<TrustEngine>,
    explicit_policies: Option<PathBuf>,
    data: PathBuf,
) {
    let (registry, trust) = (Arc::downgrade(registry), Arc::downgrade(trust));
    crate::serve::on_hangup(move || {
        let (Some(r), Some(t)) = (registry.upgrade(), trust.upgrade()) else {
            return false;
        };
        reload(&r, &t, explicit_policies.as_deref(), &data);
        true
    });
}

/// Reads `composition.toml` again into `registry`; logs the outcome.
pub(crate) fn reload(
    registry: &SystemRegistry,
    trust: &TrustEngine,
    explicit_policies: Option<&Path>,
    data: &Path,
) {
    let read = policies::resolve(explicit_policies, Some(data)).map(|(files, _)| {
        let (name, text) = policies::composition_text(&files);
        (name.to_owned(), text)
    });
    let outcome = match read {
        Ok((name, text)) => registry
            .replace_policy(trust, |t| CompositionPolicy::parse(&name, &text, t))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match outcome {
        Ok(()) => tracing::info!("composition policy reloaded on SIGHUP"),
        Err(e) => {
            tracing::error!(error = %e, "composition policy reload on SIGHUP refused; the running policy stays")
        }
    }
}
