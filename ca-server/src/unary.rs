//! Unary `Enroll` calls that arrive together are issued together.
//!
//! Each call alone would be validated and signed on a blocking thread of
//! its own and handed to the group committer as a job of one. Here a
//! call joins a queue; one task takes everything queued, up to
//! [`MAX_GROUP`], and issues it through [`EnrollmentEngine::enroll_many`]
//! as `EnrollBatch` issues a chunk: signing spread over the blocking
//! threads, one commit job, one flush shared by all. At most [`IN_FLIGHT`]
//! groups are issued at a time, so under load the calls that arrive
//! meanwhile form the next group; a lone call is issued at once, alone.
//! A certificate is still returned only after its group is durable.

use std::sync::{Arc, Weak};

use tokio::sync::{Semaphore, mpsc, oneshot};
use trustca_model::Credential;
use trustca_store::StoreError;

use crate::CaError;
use crate::enroll::{EnrollmentEngine, EnrollmentOutcome, EnrollmentRequest};

/// Most calls issued as one group (an `EnrollBatch` chunk).
const MAX_GROUP: usize = 256;
/// Groups issued at a time: one signing while one commits.
const IN_FLIGHT: usize = 2;

type Answer = oneshot::Sender<Result<EnrollmentOutcome, CaError>>;

/// One waiting call.
pub(crate) struct Pending {
    caller: Arc<Credential>,
    request: EnrollmentRequest,
    done: Answer,
}

/// The queue's sending end; the task ends when it is dropped (with the
/// engine, which it does not keep alive).
pub(crate) type Queue = mpsc::UnboundedSender<Pending>;

/// Starts the task that issues queued calls for `engine`.
pub(crate) fn start(engine: Weak<EnrollmentEngine>) -> Queue {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(engine, rx));
    tx
}

/// Queues one call on `queue` and waits for its outcome. A queue whose
/// task is gone (its runtime shut down) issues the call alone instead.
pub(crate) async fn enroll(
    engine: &Arc<EnrollmentEngine>,
    queue: &Queue,
    caller: Arc<Credential>,
    request: EnrollmentRequest,
) -> Result<EnrollmentOutcome, CaError> {
    let (done, outcome) = oneshot::channel();
    let pending = Pending {
        caller,
        request,
        done,
    };
    if let Err(mpsc::error::SendError(p)) = queue.send(pending) {
        let mut results = engine.enroll_many(&p.caller, vec![p.request]).await;
        return results.pop().unwrap_or(Err(StoreError::Closed.into()));
    }
    outcome.await.map_err(|_| StoreError::Closed)?
}

async fn run(engine: Weak<EnrollmentEngine>, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Wait for a free slot before taking the rest: what arrives while
        // the groups in flight are busy joins this one.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
        let Some(engine) = engine.upgrade() else {
            break;
        };
        tokio::spawn(async move {
            issue(&engine, group).await;
            drop(permit);
        });
    }
}

/// Issues a group, caller by caller (`enroll_many` serves one caller),
/// and answers each call.
async fn issue(engine: &Arc<EnrollmentEngine>, group: Vec<Pending>) {
    let mut by_caller: Vec<(Arc<Credential>, Vec<EnrollmentRequest>, Vec<Answer>)> = Vec::new();
    for p in group {
        match by_caller
            .iter_mut()
            .find(|(c, _, _)| Arc::ptr_eq(c, &p.caller) || **c == *p.caller)
        {
            Some((_, requests, answers)) => {
                requests.push(p.request);
                answers.push(p.done);
            }
            None => by_caller.push((p.caller, vec![p.request], vec![p.done])),
        }
    }
    for (caller, requests, answers) in by_caller {
        let results = engine.enroll_many(&caller, requests).await;
        for (done, result) in answers.into_iter().zip(results) {
            // A caller that went away does not want its answer.
            let _ = done.send(result);
        }
    }
}
