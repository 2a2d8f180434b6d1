//! The time limits of a streaming RPC ([`StreamLimits`]) applied without a
//! timer per message.
//!
//! A stream carries up to a million messages. Wrapping every read and every
//! queued answer in `tokio::time::timeout` built a timer entry per message and
//! registered it in the runtime's timer wheel (a lock) whenever the read or
//! the queue had to wait, which on a busy `DecideBatch` stream is most of the
//! time. Here a stream keeps one idle deadline, moved forward only when it
//! fires early, and an answer arms a timer only when the queue is full.

use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_stream::{Stream, StreamExt};

/// The client sent nothing, and did not end its stream, for the idle limit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Silent;

/// Reads a request stream, ending it once nothing arrived for `idle`.
#[derive(Debug)]
pub(crate) struct IdleWatch {
    idle: Duration,
    last: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl IdleWatch {
    pub(crate) fn new(idle: Duration) -> Self {
        let last = Instant::now();
        IdleWatch {
            idle,
            last,
            deadline: Box::pin(tokio::time::sleep_until(last + idle)),
        }
    }

    /// The stream's next item (`None` at its end), or [`Silent`] when none
    /// came for the idle limit since the last one.
    pub(crate) async fn next<S>(&mut self, stream: &mut S) -> Result<Option<S::Item>, Silent>
    where
        S: Stream + Unpin,
    {
        loop {
            tokio::select! {
                biased;
                item = stream.next() => {
                    self.last = Instant::now();
                    return Ok(item);
                }
                () = &mut self.deadline => {
                    // The deadline was set from an older item: move it to
                    // the idle limit after the last one, once per idle span.
                    let due = self.last + self.idle;
                    if Instant::now() >= due {
                        return Err(Silent);
                    }
                    self.deadline.as_mut().reset(due);
                }
            }
        }
    }
}

/// What became of an answer handed to [`send_within`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Queued for the client.
    Queued,
    /// The queue stayed full for the stalled-reader limit.
    Stalled,
    /// The response stream is gone (the client left).
    Gone,
}

/// Queues `item`, waiting at most `limit` for room: a client that stops
/// reading loses its stream instead of holding a task. The timer is armed
/// only when the queue is full.
pub(crate) async fn send_within<T>(tx: &mpsc::Sender<T>, item: T, limit: Duration) -> Sent {
    match tx.try_send(item) {
        Ok(()) => Sent::Queued,
        Err(mpsc::error::TrySendError::Closed(_)) => Sent::Gone,
        Err(mpsc::error::TrySendError::Full(item)) => {
            match tokio::time::timeout(limit, tx.send(item)).await {
                Ok(Ok(())) => Sent::Queued,
                Ok(Err(_)) => Sent::Gone,
                Err(_) => Sent::Stalled,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, with spans far apart so a loaded machine does not blur them.
    const IDLE: Duration = Duration::from_millis(1_000);

    #[tokio::test]
    async fn a_steady_stream_is_never_silent_and_a_pause_is() {
        let (tx, rx) = mpsc::channel::<u32>(4);
        let mut rx = tokio_stream::wrappers::ReceiverStream::new(rx);
        let mut watch = IdleWatch::new(IDLE);
        // Items 600 ms apart: each within the limit of the one before,
        // though the first deadline (1 s after the start) passes in between.
        for n in 0..3 {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(600)).await;
                tx.send(n).await.ok();
            });
            assert_eq!(watch.next(&mut rx).await, Ok(Some(n)));
        }
        // Then nothing: silent after the limit, not before.
        let started = Instant::now();
        assert_eq!(watch.next(&mut rx).await, Err(Silent));
        assert!(started.elapsed() >= IDLE, "{:?}", started.elapsed());
        drop(tx);
        assert_eq!(watch.next(&mut rx).await, Ok(None));
    }

    #[tokio::test]
    async fn a_full_queue_waits_the_limit_and_a_closed_one_is_gone() {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        assert_eq!(send_within(&tx, 1, IDLE).await, Sent::Queued);
        let started = Instant::now();
        assert_eq!(send_within(&tx, 2, IDLE).await, Sent::Stalled);
        assert!(started.elapsed() >= IDLE, "{:?}", started.elapsed());
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(send_within(&tx, 3, IDLE).await, Sent::Queued);
        drop(rx);
        assert_eq!(send_within(&tx, 4, IDLE).await, Sent::Gone);
    }
}
