//! The server's background schedules: SIGHUP policy reloads, the model
//! registry's sweep, snapshot files, CRL re-issue, and the store's health
//! names followed once a second.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use trustca_api::EnrollmentService;
use trustca_ca::CrlPublisher;
use trustca_db::TrustEngine;
use trustca_proto::v1::enrollment_server::EnrollmentServer;
use trustca_store::Storage;

use crate::lease::Lease;

/// SIGHUP reloads the policies: the trust engine's reload reads them once
/// through the shared [`crate::loaded_policies::Policies`], which every
/// other component follows. A bad file is logged and the running policies
/// stay. Holds the engine weakly, so a stopped server is released.
pub(crate) fn spawn_reload_on_hangup(
    engine: &Arc<TrustEngine>,
    stop: &tokio_util::sync::CancellationToken,
) {
    let engine = Arc::downgrade(engine);
    on_hangup(stop, move || {
        let Some(engine) = engine.upgrade() else {
            return false;
        };
        if let Err(e) = engine.reload() {
            tracing::error!(error = %e, "policy reload on SIGHUP refused");
        }
        true
    });
}

/// Calls `action` on every SIGHUP until it returns false (what it acts on
/// is gone) or `stop`. Nothing on platforms without SIGHUP.
pub(crate) fn on_hangup(
    stop: &tokio_util::sync::CancellationToken,
    mut action: impl FnMut() -> bool + Send + 'static,
) {
    #[cfg(unix)]
    crate::background::spawn(stop, async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if !action() {
                return;
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (&mut action, stop);
}

/// Reissues every CRL at half the shortest CRL validity, so relying parties
/// always hold a current one, on the replica holding the `crl` lease. Holds
/// the publisher weakly.
/// How often the model registry is re-assessed for expired evaluations.
pub(crate) const REGISTRY_SWEEP_PERIOD: Duration = Duration::from_secs(3600);

/// Re-assesses every registered model at start and every
/// [`REGISTRY_SWEEP_PERIOD`], on the replica holding the CRL lease, so an
/// evaluation that expires moves its fleet without anyone asking.
pub(crate) fn spawn_registry_sweep(
    registry: &Arc<trustca_db::ModelRegistry>,
    lease: &Arc<Lease>,
    stop: &tokio_util::sync::CancellationToken,
) {
    let registry = Arc::downgrade(registry);
    let lease = Arc::clone(lease);
    crate::background::spawn(stop, async move {
        loop {
            let Some(r) = registry.upgrade() else { return };
            if lease.held() {
                match tokio::task::spawn_blocking(move || {
                    r.reassess_all(time::OffsetDateTime::now_utc())
                })
                .await
                {
                    Ok(Ok(0)) => {}
                    Ok(Ok(n)) => {
                        tracing::info!(models = n, "model registry re-assessed: expiries applied")
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "model registry sweep failed"),
                    Err(e) => tracing::warn!(error = %e, "model registry sweep task failed"),
                }
            }
            tokio::time::sleep(REGISTRY_SWEEP_PERIOD).await;
        }
    });
}

/// How often the snapshot files under `DATA/snapshots/` are rewritten.
pub(crate) const SNAPSHOT_FILE_PERIOD: Duration = Duration::from_secs(300);

/// Writes `DATA/snapshots/{all,<sector>}.snapshot` now and every
/// [`SNAPSHOT_FILE_PERIOD`], off the request path (a build reads the whole
/// store). Failures are logged; the gRPC endpoint builds on demand anyway.
pub(crate) fn spawn_snapshot_files(
    publisher: &Arc<trustca_db::SnapshotPublisher>,
    dir: PathBuf,
    stop: &tokio_util::sync::CancellationToken,
) {
    let publisher = Arc::downgrade(publisher);
    let stop = stop.clone();
    tokio::spawn(async move {
        while !stop.is_cancelled() {
            let Some(p) = publisher.upgrade() else { return };
            let dir = dir.clone();
            match tokio::task::spawn_blocking(move || p.write_files(&dir)).await {
                Ok(Ok(n)) => tracing::debug!(files = n, "trust snapshot files written"),
                Ok(Err(_)) if stop.is_cancelled() => return,
                Ok(Err(e)) => tracing::warn!(error = %e, "writing the trust snapshot files failed"),
                Err(e) => tracing::warn!(error = %e, "snapshot task failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(SNAPSHOT_FILE_PERIOD) => {}
            }
        }
    });
}

pub(crate) fn spawn_crl_schedule(
    crls: &Arc<CrlPublisher>,
    lease: &Arc<Lease>,
    stop: &tokio_util::sync::CancellationToken,
) {
    let period = crls.shortest_validity() / 2;
    let crls = Arc::downgrade(crls);
    let lease = Arc::clone(lease);
    crate::background::spawn(stop, async move {
        loop {
            tokio::time::sleep(period).await;
            let Some(crls) = crls.upgrade() else { return };
            if !lease.held() {
                continue;
            }
            let result = tokio::task::spawn_blocking(move || crls.publish_all()).await;
            if let Ok(Err(e)) | Err(e) =
                result.map_err(|e| trustca_ca::CaError::Signing(e.to_string()))
            {
                tracing::error!(error = %e, "scheduled CRL reissue failed");
            }
        }
    });
}

/// Health names that report the store: writes possible, no damage seen.
pub const HEALTH_STORE_WRITABLE: &str = "trustca.store.writable";
/// See [`HEALTH_STORE_WRITABLE`].
pub const HEALTH_STORE_INTEGRITY: &str = "trustca.store.integrity";

/// Follows the store's state once a second: while it cannot write, the
/// write service (enrollment) and `trustca.store.writable`
/// report NOT_SERVING; once a damaged record was met,
/// `trustca.store.integrity` does. Each change is logged once. Polling
/// also drives the store's own recovery probe.
pub(crate) fn spawn_store_health(
    storage: &Arc<dyn Storage>,
    health: tonic_health::server::HealthReporter,
    stop: &tokio_util::sync::CancellationToken,
) {
    use tonic_health::ServingStatus;
    let storage = Arc::downgrade(storage);
    crate::background::spawn(stop, async move {
        health
            .set_service_status(HEALTH_STORE_WRITABLE, ServingStatus::Serving)
            .await;
        health
            .set_service_status(HEALTH_STORE_INTEGRITY, ServingStatus::Serving)
            .await;
        let mut writable = true;
        let mut intact = true;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let Some(s) = storage.upgrade() else { return };
            let state =
                tokio::task::spawn_blocking(move || (s.write_health(), s.damaged_records())).await;
            let Ok((write, damaged)) = state else {
                continue;
            };
            let now_writable = write == trustca_store::WriteHealth::Writable;
            if now_writable != writable {
                writable = now_writable;
                let status = if writable {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                if let trustca_store::WriteHealth::Refusing(reason) = &write {
                    tracing::warn!(%reason, "health: write services NOT_SERVING");
                } else {
                    tracing::info!("health: write services SERVING again");
                }
                health
                    .set_service_status(HEALTH_STORE_WRITABLE, status)
                    .await;
                health
                    .set_service_status(
                        <EnrollmentServer<EnrollmentService> as tonic::server::NamedService>::NAME,
                        status,
                    )
                    .await;
            }
            if intact && damaged > 0 {
                intact = false;
                tracing::warn!(damaged, "health: trustca.store.integrity NOT_SERVING");
                health
                    .set_service_status(HEALTH_STORE_INTEGRITY, ServingStatus::NotServing)
                    .await;
            }
        }
    });
}
