//! Group commit: many concurrent issuances share one fsync.
//!
//! Callers hand a batch to a dedicated thread and wait. The thread takes
//! everything queued, commits each issuance atomically, flushes once and
//! only then answers, so every answered success is durable and the cost of
//! the flush is spread over all the work that arrived while the previous
//! flush ran.

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::{Issuance, Storage, StoreError};

type Job = (Vec<Issuance>, oneshot::Sender<Vec<Result<(), StoreError>>>);

/// Handle to the committer thread. Cloning shares the thread.
#[derive(Debug, Clone)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Job>,
}

impl GroupCommitter {
    /// Starts the committer thread over `storage`.
    pub fn start(storage: Arc<dyn Storage>) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("trustca-commit".into())
            .spawn(move || run(storage, rx))
            .map_err(|e| StoreError::Backend(format!("cannot start committer: {e}")))?;
        Ok(Self { tx })
    }

    /// Commits `batch` and waits until it is durable. Results are per item.
    pub async fn commit(
        &self,
        batch: Vec<Issuance>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((batch, done))
            .map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)
    }
}

fn run(storage: Arc<dyn Storage>, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        // Take whatever else is already waiting, bounded so that a flood
        // cannot delay the first caller indefinitely.
        while jobs.len() < 4096 {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut results: Vec<Vec<Result<(), StoreError>>> = jobs
            .iter()
            .map(|(batch, _)| storage.commit_issuances(batch))
            .collect();
        if let Err(e) = storage.flush() {
            // Nothing in this group is known to be durable: fail all of it.
            tracing::error!(error = %e, "flush failed; failing the whole commit group");
            for r in results.iter_mut() {
                for item in r.iter_mut() {
                    if item.is_ok() {
                        *item = Err(StoreError::Backend(format!("flush failed: {e}")));
                    }
                }
            }
        }
        for ((_, done), r) in jobs.into_iter().zip(results) {
            let _ = done.send(r);
        }
    }
}
