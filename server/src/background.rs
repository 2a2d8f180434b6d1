//! The background tasks of `trustca serve`, every one stopped by the
//! server's one cancellation token (`RunningServer::shutdown` cancels it;
//! the tasks also end when what they act on, held weakly, is gone): lease
//! renewals, audit tree heads, CRL reissue, the watch for CA revocations
//! made offline, the SIGHUP policy reload, the model
//! registry's sweep, snapshot files, the systems watch and the store's
//! health names.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use trustca_datadir::DataDir;

use crate::engines::Engines;
use crate::schedules::{
    spawn_crl_schedule, spawn_registry_sweep, spawn_reload_on_hangup, spawn_snapshot_files,
    spawn_store_health,
};
use crate::serve::ServeOptions;

/// Runs `task` until it ends or `stop` is cancelled.
pub(crate) fn spawn(stop: &CancellationToken, task: impl Future<Output = ()> + Send + 'static) {
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = task => {}
        }
    });
}

/// Starts every schedule of the CA's process over `engines`.
pub(crate) fn start(
    opts: &ServeOptions,
    engines: &Engines,
    health: HealthReporter,
    stop: &CancellationToken,
) {
    let e = engines;
    let storage = &e.store.storage;
    e.crl_lease.spawn_renewal(storage, stop);
    e.heads_lease.spawn_renewal(storage, stop);
    e.heads.spawn(opts.tree_head_interval, stop);
    spawn_crl_schedule(&e.crls, &e.crl_lease, stop);
    crate::ca_revocation::spawn_watch(&e.hierarchy, storage, &e.crls, stop);
    spawn_reload_on_hangup(&e.trust, stop);
    spawn_registry_sweep(&e.registry, &e.crl_lease, stop);
    spawn_snapshot_files(&e.snapshots, DataDir::new(&opts.data).snapshots(), stop);
    crate::systems::spawn_watch(
        &e.systems,
        &e.trust,
        crate::ca_role::notifier(opts),
        &e.crl_lease,
        stop,
    );
    crate::legacy::warn_x509_pseudonym_material(&opts.data);
    spawn_store_health(storage, health, stop);
}
