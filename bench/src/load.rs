//! Load generators.
//!
//! * Closed loop: `concurrency` workers each issue one call at a time,
//!   taking the next index from a shared counter, until `total` calls were
//!   made.
//! * Open loop: calls are sent at a fixed offered rate whatever the answers
//!   do, by a pacing thread that starts call `i` at `start + i / rate`; each
//!   call's latency runs from its *scheduled* time, so a server (or a pacer)
//!   that falls behind shows up in the latency instead of slowing the
//!   offered load down (no coordinated omission).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

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
    /// This run as a table row: `how` it ran, then the first error if any.
    pub fn into_row(
        mut self,
        (key, label): (&'static str, &str),
        group: crate::report::Group,
        how: String,
    ) -> crate::report::Row {
        let note = crate::grpc::join_notes(&[how, self.error_note()]);
        crate::report::Row {
            key,
            label: label.into(),
            group,
            ops: self.ok,
            errors: self.errors,
            elapsed: self.elapsed,
            latency: crate::report::Latency::of(&mut self.latencies),
            note,
        }
    }

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

/// What an open-loop run did.
#[derive(Debug, Default)]
pub struct OpenOutcome {
    /// The calls, as for a closed loop; latencies run from the scheduled
    /// send time, and `elapsed` from the first scheduled send to the last
    /// answer.
    pub calls: Outcome,
    /// How late each call started, from its scheduled time to when its
    /// task first ran (the load generator's own share of the latency).
    pub send_lag: Vec<Duration>,
    /// Latency of every successful call from when its task first ran (the
    /// server's and the transport's share).
    pub service: Vec<Duration>,
}

/// Sends `total` calls at `rate` per second: call `i` is started at
/// `start + i / rate` on the current tokio runtime by a pacing thread (a
/// thread sleep is finer than tokio's 1 ms timer), and its latency is
/// measured from that scheduled time.
pub async fn open_loop<F, Fut>(rate: f64, total: usize, call: F) -> Result<OpenOutcome>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    if rate <= 0.0 || !rate.is_finite() {
        return Err(anyhow!("the offered rate must be positive, not {rate}"));
    }
    let runtime = tokio::runtime::Handle::current();
    let interval = Duration::from_secs_f64(1.0 / rate);
    type Done = (Result<(Duration, Duration), String>, Duration);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    let start = Instant::now() + Duration::from_millis(20);
    let pacer = std::thread::Builder::new()
        .name("bench-pacer".into())
        .spawn(move || {
            let call = Arc::new(call);
            for i in 0..total {
                let at = start + interval.mul_f64(i as f64);
                let now = Instant::now();
                if at > now {
                    std::thread::sleep(at - now);
                }
                let fut = call(i);
                let tx = tx.clone();
                runtime.spawn(async move {
                    let sent = Instant::now();
                    let lag = sent.saturating_duration_since(at);
                    let r = fut
                        .await
                        .map(|()| (at.elapsed(), sent.elapsed()))
                        .map_err(|e| format!("{e:#}"));
                    let _ = tx.send((r, lag));
                });
            }
        })
        .context("cannot start the pacing thread")?;
    let mut out = OpenOutcome::default();
    out.calls.latencies.reserve(total);
    out.send_lag.reserve(total);
    out.service.reserve(total);
    for _ in 0..total {
        let Some((r, lag)) = rx.recv().await else {
            break;
        };
        out.send_lag.push(lag);
        match r {
            Ok((latency, service)) => {
                out.calls.ok += 1;
                out.calls.latencies.push(latency);
                out.service.push(service);
            }
            Err(e) => {
                out.calls.errors += 1;
                out.calls.first_error.get_or_insert(e);
            }
        }
    }
    out.calls.elapsed = start.elapsed();
    pacer
        .join()
        .map_err(|_| anyhow!("the pacing thread panicked"))?;
    Ok(out)
}
