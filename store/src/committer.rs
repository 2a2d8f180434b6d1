//! Group commit: many concurrent issuances share one fsync.
//!
//! Callers hand a batch to a dedicated thread and wait. The thread takes
//! everything queued, commits each issuance atomically, flushes once and
//! only then answers, so every answered success is durable and the cost of
//! the flush is spread over all the work that arrived while the previous
//! flush ran.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::{Issuance, Storage, StoreError};

type Job = (Vec<Issuance>, oneshot::Sender<Vec<Result<(), StoreError>>>);

/// Most issuances committed in one transaction: groups stay short enough
/// that the first caller in a flood is not kept waiting.
const MAX_GROUP: usize = 2048;

/// What one commit group did, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct CommitStats {
    /// Issuances in the group (refused ones included).
    pub issuances: usize,
    /// Time spent in the backend's transaction.
    pub commit: Duration,
    /// Time spent making it durable.
    pub flush: Duration,
    /// Whether the group failed as a whole (backend or flush error).
    pub failed: bool,
}

/// Called after every commit group (e.g. to feed metrics).
pub type CommitObserver = Arc<dyn Fn(CommitStats) + Send + Sync>;

/// Handle to the committer thread. Cloning shares the thread.
#[derive(Debug, Clone)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Job>,
}

impl GroupCommitter {
    /// Starts the committer thread over `storage`.
    pub fn start(storage: Arc<dyn Storage>) -> Result<Self, StoreError> {
        Self::start_observed(storage, Arc::new(|_| {}))
    }

    /// Starts the committer thread and reports every group to `observer`.
    pub fn start_observed(
        storage: Arc<dyn Storage>,
        observer: CommitObserver,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("trustca-commit".into())
            .spawn(move || run(storage, rx, observer))
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

fn run(storage: Arc<dyn Storage>, rx: mpsc::Receiver<Job>, observer: CommitObserver) {
    while let Ok(first) = rx.recv() {
        let mut size = first.0.len();
        let mut jobs = vec![first];
        // Take whatever else is already waiting, bounded so that a flood
        // cannot delay the first caller indefinitely.
        while size < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.0.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        // One transaction for the whole group (one lock and one commit on
        // PostgreSQL); each issuance is still refused or kept on its own.
        let started = Instant::now();
        let mut all: Vec<Issuance> = Vec::with_capacity(size);
        let mut lens = Vec::with_capacity(jobs.len());
        for (batch, _) in jobs.iter_mut() {
            lens.push(batch.len());
            all.append(batch);
        }
        let mut results = storage.commit_issuances(&all).into_iter();
        let committed = started.elapsed();
        let mut failed = false;
        let flush = storage.flush();
        let flushed = started.elapsed() - committed;
        let mut per_job: Vec<Vec<Result<(), StoreError>>> = lens
            .iter()
            .map(|n| results.by_ref().take(*n).collect())
            .collect();
        if let Err(e) = flush {
            // Nothing in this group is known to be durable: fail all of it.
            // A store that cannot write (full, read-only) reports its state
            // change once itself; only other failures are logged here.
            if !e.is_write_refusal() {
                tracing::error!(error = %e, "flush failed; failing the whole commit group");
            }
            failed = true;
            for r in per_job.iter_mut() {
                for item in r.iter_mut() {
                    if item.is_ok() {
                        *item = Err(e.repeat());
                    }
                }
            }
        }
        failed |= per_job.iter().flatten().all(|r| {
            matches!(
                r,
                Err(StoreError::Backend(_)
                    | StoreError::Unavailable(_)
                    | StoreError::Full(_)
                    | StoreError::ReadOnly(_))
            )
        }) && size > 0;
        observer(CommitStats {
            issuances: size,
            commit: committed,
            flush: flushed,
            failed,
        });
        for ((_, done), r) in jobs.into_iter().zip(per_job) {
            let _ = done.send(r);
        }
    }
}
