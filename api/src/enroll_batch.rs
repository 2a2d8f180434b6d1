//! One `EnrollBatch` stream: items read in chunks, each chunk signed and
//! committed while the next is read, results queued for the client.
//!
//! How a stream ends, and what the client is told last:
//! - the client closed its side: every item answered, then OK;
//! - no item and no end for [`StreamLimits::idle`]: `DEADLINE_EXCEEDED`;
//! - the client did not read a queued result for
//!   [`StreamLimits::stalled_reader`]: every
//!   task stops at once (no further chunk is issued) and the last message,
//!   read whenever the client reads again, says so with the counts;
//! - the request stream broke (an item over the message size limit, a
//!   malformed frame): every item before it is answered, then
//!   `RESOURCE_EXHAUSTED` for an oversized item, else `INVALID_ARGUMENT`.
//!
//! One slot of the result queue is reserved at the start for that last
//! message, so it is delivered even when the queue is full.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};
use trustca_model::Credential;
use trustca_model::limits::{StreamLimits, TONIC_OVERSIZE_TEXT};
use trustca_proto::v1 as pb;

use trustca_ca::{EnrollmentEngine, EnrollmentRequest};

use crate::enrollment_service::{failure, to_request, to_response};
use crate::status::code;
use crate::stream_limits::{IdleWatch, Sent, Silent, send_within};

/// Items one `EnrollBatch` stream may carry.
pub const MAX_BATCH_ITEMS: usize = 100_000;
/// Items signed and committed together.
const CHUNK: usize = 256;
/// Results queued for the client beyond what HTTP/2 flow control holds.
pub(crate) const QUEUE: usize = CHUNK * 4;

type Sender = mpsc::Sender<Result<pb::EnrollBatchResult, Status>>;

/// What a stream did, for its log line and its last message.
#[derive(Debug, Default)]
struct Tally {
    issued: AtomicUsize,
    refused: AtomicUsize,
    delivered: AtomicUsize,
}

impl Tally {
    fn get(n: &AtomicUsize) -> usize {
        n.load(Ordering::Relaxed)
    }
}

/// Shared by the reading loop and the chunk tasks.
#[derive(Debug)]
struct Batch {
    tx: Sender,
    tally: Tally,
    /// The stream's time limits.
    limits: StreamLimits,
    /// Cancelled once the client has not read for `limits.stalled_reader` (or
    /// left): every pending send gives up and no further chunk is issued.
    stalled: CancellationToken,
}

impl Batch {
    /// Queues one result; false once the reader is stalled or gone.
    async fn send(&self, msg: pb::EnrollBatchResult) -> bool {
        let sent = !self.stalled.is_cancelled()
            && tokio::select! {
                biased;
                r = send_within(&self.tx, Ok(msg), self.limits.stalled_reader) => r == Sent::Queued,
                () = self.stalled.cancelled() => false,
            };
        if sent {
            self.tally.delivered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stalled.cancel();
        }
        sent
    }
}

/// Why the reading loop stopped.
#[derive(Debug)]
enum End {
    /// The client closed its side.
    Done,
    /// Nothing arrived for [`StreamLimits::idle`].
    Silent,
    /// The request stream failed with this status.
    Broken(Status),
}

/// One chunk as read: the requests to issue and the answers known at once.
struct Chunk {
    ids: Vec<u64>,
    reqs: Vec<EnrollmentRequest>,
    early: Vec<pb::EnrollBatchResult>,
    /// The first read error; items after it are not taken.
    error: Option<Status>,
}

fn split(items: Vec<Result<pb::EnrollBatchItem, Status>>, seen: &mut usize) -> Chunk {
    let mut c = Chunk {
        ids: Vec::with_capacity(items.len()),
        reqs: Vec::with_capacity(items.len()),
        early: Vec::new(),
        error: None,
    };
    for item in items {
        let item = match item {
            Ok(item) => item,
            Err(status) => {
                c.error = Some(status);
                break;
            }
        };
        *seen += 1;
        if *seen > MAX_BATCH_ITEMS {
            c.early.push(failure(
                item.id,
                tonic::Code::ResourceExhausted,
                format!(
                    "a batch stream carries at most {MAX_BATCH_ITEMS} items; open a new stream"
                ),
            ));
            continue;
        }
        match item.request.map(to_request) {
            Some(Ok(r)) => {
                c.ids.push(item.id);
                c.reqs.push(r);
            }
            Some(Err(e)) => c.early.push(failure(item.id, code(&e), e.to_string())),
            None => c.early.push(failure(
                item.id,
                tonic::Code::InvalidArgument,
                "item has no request".into(),
            )),
        }
    }
    c
}

/// Issues one chunk and queues its results. Every result is counted before
/// any is sent, so the log's `issued` matches the store even when the
/// client stops reading half-way.
async fn issue(
    engine: Arc<EnrollmentEngine>,
    caller: Arc<Credential>,
    batch: Arc<Batch>,
    chunk: (Vec<u64>, Vec<EnrollmentRequest>),
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let (ids, reqs) = chunk;
    let results = engine.enroll_many(&caller, reqs).await;
    // The permit is held until the results are queued for the client: a
    // client that stops reading fills the queue, the senders wait, and no
    // further chunk is issued.
    let _permit = permit;
    let msgs: Vec<pb::EnrollBatchResult> = ids
        .into_iter()
        .zip(results)
        .map(|(id, r)| match r {
            Ok(o) => {
                batch.tally.issued.fetch_add(1, Ordering::Relaxed);
                pb::EnrollBatchResult {
                    id,
                    outcome: Some(pb::enroll_batch_result::Outcome::Certificate(to_response(
                        o,
                    ))),
                }
            }
            Err(e) => {
                batch.tally.refused.fetch_add(1, Ordering::Relaxed);
                failure(id, code(&e), e.to_string())
            }
        })
        .collect();
    for m in msgs {
        if !batch.send(m).await {
            break;
        }
    }
}

/// The status that ends a broken request stream, in words.
fn broken(status: &Status) -> Status {
    if status.message().contains(TONIC_OVERSIZE_TEXT) {
        Status::resource_exhausted(
            "an item is larger than this server accepts (64 KiB a message); every item before it was answered and the stream was ended",
        )
    } else {
        Status::invalid_argument(
            "the request stream could not be read (malformed gRPC framing); every item before the damage was answered and the stream was ended",
        )
    }
}

/// Runs one stream to its end; `tx` carries the results to the client.
pub(crate) async fn run(
    engine: Arc<EnrollmentEngine>,
    caller: Arc<Credential>,
    inbound: Streaming<pb::EnrollBatchItem>,
    tx: Sender,
    limits: StreamLimits,
) {
    let Ok(last) = tx.clone().reserve_owned().await else {
        return;
    };
    let batch = Arc::new(Batch {
        tx,
        tally: Tally::default(),
        limits,
        stalled: CancellationToken::new(),
    });
    let chunks = inbound.chunks_timeout(CHUNK, Duration::from_millis(2));
    tokio::pin!(chunks);
    let mut seen = 0usize;
    // Up to two chunks in flight: one signing while one commits.
    let permits = Arc::new(tokio::sync::Semaphore::new(2));
    let mut tasks = tokio::task::JoinSet::new();
    let mut end = End::Done;
    let mut watch = IdleWatch::new(limits.idle);
    'read: loop {
        let next = tokio::select! {
            r = watch.next(&mut chunks) => r,
            () = batch.stalled.cancelled() => break,
        };
        let items = match next {
            Ok(Some(items)) => items,
            Ok(None) => break,
            Err(Silent) => {
                end = End::Silent;
                break;
            }
        };
        let chunk = split(items, &mut seen);
        batch
            .tally
            .refused
            .fetch_add(chunk.early.len(), Ordering::Relaxed);
        for e in chunk.early {
            if !batch.send(e).await {
                break 'read;
            }
        }
        if !chunk.reqs.is_empty() {
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => p,
                () = batch.stalled.cancelled() => break,
            };
            let Ok(permit) = permit else { break };
            tasks.spawn(issue(
                Arc::clone(&engine),
                Arc::clone(&caller),
                Arc::clone(&batch),
                (chunk.ids, chunk.reqs),
                permit,
            ));
        }
        while tasks.try_join_next().is_some() {}
        if let Some(status) = chunk.error {
            end = End::Broken(status);
            break;
        }
    }
    while tasks.join_next().await.is_some() {}
    finish(&batch, &caller, seen, &end, last);
}

/// Sends the last message (in the reserved slot) and logs the stream.
fn finish(
    batch: &Batch,
    caller: &Credential,
    items: usize,
    end: &End,
    last: mpsc::OwnedPermit<Result<pb::EnrollBatchResult, Status>>,
) {
    let (issued, refused, delivered) = (
        Tally::get(&batch.tally.issued),
        Tally::get(&batch.tally.refused),
        Tally::get(&batch.tally.delivered),
    );
    let stalled = batch.stalled.is_cancelled();
    let (outcome, status) = if stalled {
        (
            "client stopped reading",
            Some(Status::deadline_exceeded(format!(
                "results were not read for {} s; the stream was ended after issuing {issued} certificates, {delivered} results delivered",
                batch.limits.stalled_reader.as_secs()
            ))),
        )
    } else {
        match end {
            End::Done => ("done", None),
            End::Silent => (
                "client stopped sending",
                Some(Status::deadline_exceeded(format!(
                    "no item and no end of stream for {} s; the stream is closed",
                    batch.limits.idle.as_secs()
                ))),
            ),
            End::Broken(s) => {
                tracing::info!(
                    rpc = "EnrollBatch",
                    caller = %caller.name,
                    code = ?s.code(),
                    error = s.message(),
                    "request stream broken"
                );
                ("request stream broken", Some(broken(s)))
            }
        }
    };
    if let Some(status) = status {
        last.send(Err(status));
    }
    tracing::info!(
        rpc = "EnrollBatch",
        role = caller.kind.as_str(),
        caller = %caller.name,
        items,
        issued,
        refused,
        delivered,
        outcome
    );
}
