//! Once-per-deployment work under a lease in the store. Several replicas
//! may share one store; signing audit tree heads and reissuing CRLs on a
//! schedule must happen on one of them at a time. Each [`Lease`] is taken
//! and renewed every third of its time to live by a background task, and
//! the scheduled work asks [`Lease::held`] before it runs. A backend used
//! by one process at a time (sled) grants every lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use trustca_model::observe::Observer;
use trustca_store::Storage;

/// Lease of the audit tree-head signer.
pub const TREE_HEADS: &str = "tree-heads";
/// Lease of the scheduled CRL reissue.
pub const CRL: &str = "crl";
/// How long a lease lasts without renewal: a replica that dies hands the
/// work over within this time.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// A random name for this server instance, the lease holder.
pub(crate) fn replica_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    // A failing system RNG leaves zeros; the id then only loses uniqueness
    // across replicas, and the process id keeps most of it.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    format!(
        "{}-{}",
        std::process::id(),
        trustca_model::hexfmt::encode(&bytes)
    )
}

/// One named lease as this replica sees it.
#[derive(Debug)]
pub(crate) struct Lease {
    name: &'static str,
    holder: String,
    ttl: Duration,
    held: AtomicBool,
    observer: Arc<dyn Observer>,
}

impl Lease {
    /// Asks the store once, so work at start-up already knows.
    pub(crate) fn take(
        storage: &dyn Storage,
        name: &'static str,
        holder: &str,
        ttl: Duration,
        observer: &Arc<dyn Observer>,
    ) -> Arc<Self> {
        let lease = Arc::new(Self {
            name,
            holder: holder.to_owned(),
            ttl,
            held: AtomicBool::new(false),
            observer: Arc::clone(observer),
        });
        lease.renew(storage);
        lease
    }

    /// Whether this replica holds the lease now.
    pub(crate) fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    fn renew(&self, storage: &dyn Storage) {
        let held = match storage.hold_lease(self.name, &self.holder, self.ttl.as_secs().max(1)) {
            Ok(held) => held,
            Err(e) => {
                // Unknown is not held: two signers are worse than a late one.
                // A store that cannot write says so once itself.
                if !e.is_write_refusal() {
                    tracing::warn!(lease = self.name, error = %e, "lease renewal failed");
                }
                self.observer.store_error("lease");
                false
            }
        };
        let was = self.held.swap(held, Ordering::SeqCst);
        if held != was {
            tracing::info!(lease = self.name, holder = %self.holder, held, "lease changed hands");
        }
    }

    /// Renews every third of the time to live while the store is alive,
    /// until `stop`.
    pub(crate) fn spawn_renewal(
        self: &Arc<Self>,
        storage: &Arc<dyn Storage>,
        stop: &tokio_util::sync::CancellationToken,
    ) {
        let lease = Arc::downgrade(self);
        let storage = Arc::downgrade(storage);
        let period = self.ttl / 3;
        crate::background::spawn(stop, async move {
            loop {
                tokio::time::sleep(period).await;
                let (Some(lease), Some(storage)) = (lease.upgrade(), storage.upgrade()) else {
                    return;
                };
                let _ = tokio::task::spawn_blocking(move || lease.renew(storage.as_ref())).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_grants_and_ids_differ() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::StoreConfig::in_data_dir(dir.path()).open().unwrap();
        let observer: Arc<dyn Observer> = Arc::new(trustca_model::observe::NoObserver);
        let lease = Lease::take(store.as_ref(), CRL, &replica_id(), LEASE_TTL, &observer);
        assert!(lease.held());
        assert_ne!(replica_id(), replica_id());
    }
}
