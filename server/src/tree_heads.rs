//! Signing the audit log's tree heads on a schedule, under the
//! `tree-heads` lease, and once more at shutdown.

use std::sync::Arc;
use std::time::Duration;

use trustca_model::StatementSigner;
use trustca_store::Storage;

use crate::error::{Result, ServerError};
use crate::lease::Lease;

/// Signs audit-log tree heads with the root-certified audit key: every
/// [`TREE_HEAD_INTERVAL`] while entries arrive, and once more at shutdown,
/// while this replica holds the `tree-heads` lease.
#[derive(Clone)]
pub struct TreeHeadSigner {
    storage: Arc<dyn Storage>,
    key: Arc<dyn StatementSigner>,
    last_size: Arc<std::sync::atomic::AtomicU64>,
    lease: Arc<Lease>,
}

impl std::fmt::Debug for TreeHeadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeHeadSigner").finish_non_exhaustive()
    }
}

/// How often a new tree head is signed while the log grows.
pub const TREE_HEAD_INTERVAL: Duration = Duration::from_secs(10);

impl TreeHeadSigner {
    pub(crate) fn new(
        storage: &Arc<dyn Storage>,
        key: Arc<dyn StatementSigner>,
        lease: Arc<Lease>,
    ) -> Result<Self> {
        let last = storage
            .latest_tree_heads(1)?
            .first()
            .and_then(|b| trustca_audit::SignedTreeHead::from_bytes(b).ok())
            .map(|h| h.head.size)
            .unwrap_or(0);
        Ok(Self {
            storage: Arc::clone(storage),
            key,
            last_size: Arc::new(std::sync::atomic::AtomicU64::new(last)),
            lease,
        })
    }

    /// Signs a head if the log grew since the last one and this replica
    /// holds the `tree-heads` lease.
    pub fn sign_now(&self) -> Result<()> {
        if !self.lease.held() {
            return Ok(());
        }
        let storage = &self.storage;
        let (size, root) = storage.audit_head()?;
        if size == 0 || size == self.last_size.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let head = trustca_audit::TreeHead {
            size,
            root,
            timestamp_ms: now_ms.max(0) as u64,
        };
        let signed = trustca_audit::SignedTreeHead::sign_with(head, self.key.public_key(), |m| {
            self.key.sign(m).ok()
        })
        .map_err(|e| ServerError::Audit(format!("signing a tree head: {e}")))?;
        storage.store_tree_head(size, &signed.to_bytes())?;
        self.last_size
            .store(size, std::sync::atomic::Ordering::SeqCst);
        tracing::debug!(size, "audit tree head signed");
        Ok(())
    }

    /// Signs every `interval` until `stop`; the task holds the store
    /// weakly so a stopped server is released.
    pub(crate) fn spawn(&self, interval: Duration, stop: &tokio_util::sync::CancellationToken) {
        let storage = Arc::downgrade(&self.storage);
        let (key, last_size) = (Arc::clone(&self.key), Arc::clone(&self.last_size));
        let lease = Arc::clone(&self.lease);
        crate::background::spawn(stop, async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(storage) = storage.upgrade() else {
                    return;
                };
                let s = TreeHeadSigner {
                    storage,
                    key: Arc::clone(&key),
                    last_size: Arc::clone(&last_size),
                    lease: Arc::clone(&lease),
                };
                match tokio::task::spawn_blocking(move || s.sign_now()).await {
                    // A store that cannot write says so once itself.
                    Ok(Err(ServerError::Store(e))) if e.is_write_refusal() => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "signing an audit tree head failed"),
                    Err(e) => tracing::error!(error = %e, "tree head task failed"),
                    Ok(Ok(())) => {}
                }
            }
        });
    }
}
