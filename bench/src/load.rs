//! A closed-loop load generator: `concurrency` workers each issue one call
//! at a time, taking the next index from a shared counter, until `total`
//! calls were made.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

/// What a closed-loop run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub errors: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Latency of every successful call.
    pub latencies: Vec<Duration>,
    /// Wall-clock time from the first call to the last answer.
    pub elapsed: Duration,
}

impl Outcome {
    /// "first error: ..." or empty.
    pub fn error_note(&self) -> String {
        self.first_error
            .as_ref()
            .map(|e| format!("first error: {e}"))
            .unwrap_or_default()
    }
}

/// Runs `call(i)` for every `i` in `0..total`, `concurrency` at a time.
pub async fn closed_loop<F, Fut>(concurrency: usize, total: usize, call: F) -> Result<Outcome>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let call = Arc::clone(&call);
        let next = Arc::clone(&next);
        workers.spawn(async move {
            let mut out = Outcome::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let t = Instant::now();
                match call(i).await {
                    Ok(()) => {
                        out.ok += 1;
                        out.latencies.push(t.elapsed());
                    }
                    Err(e) => {
                        out.errors += 1;
                        if out.first_error.is_none() {
                            out.first_error = Some(format!("{e:#}"));
                        }
                    }
                }
            }
            out
        });
    }
    let mut total_out = Outcome::default();
    while let Some(r) = workers.join_next().await {
        let w = r.map_err(|e| anyhow!("load worker failed: {e}"))?;
        total_out.ok += w.ok;
        total_out.errors += w.errors;
        total_out.latencies.extend(w.latencies);
        if total_out.first_error.is_none() {
            total_out.first_error = w.first_error;
        }
    }
    total_out.elapsed = start.elapsed();
    Ok(total_out)
}
