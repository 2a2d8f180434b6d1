//! The `trustca.v1.Enrollment` gRPC service: authenticates the caller from
//! the connection's client certificate, converts messages, and logs one line
//! per request (role, sector, outcome; never key material).

use std::sync::Arc;
use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use trustca_model::limits::{STALLED_READER, STREAM_IDLE};
use trustca_model::{AuthenticatedCaller, Credential, EvidenceItem};
use trustca_proto::v1 as pb;
use trustca_proto::v1::enrollment_server::Enrollment;

use crate::CaError;
use crate::enroll::{DeviceAttributes, EnrollmentEngine, EnrollmentOutcome, EnrollmentRequest};

/// Items one `EnrollBatch` stream may carry.
pub const MAX_BATCH_ITEMS: usize = 100_000;
/// Items signed and committed together.
const CHUNK: usize = 256;

/// The enrollment service.
#[derive(Debug, Clone)]
pub struct EnrollmentService {
    engine: Arc<EnrollmentEngine>,
}

impl EnrollmentService {
    /// Wraps an engine.
    pub fn new(engine: Arc<EnrollmentEngine>) -> Self {
        Self { engine }
    }
}

/// The caller's credential, as the server's authentication layer put it in
/// the request (verified client certificate, the RPC's role and revocation
/// rule applied); never from a request field. Without that layer every
/// call is refused.
pub fn caller<T>(req: &Request<T>) -> Result<Arc<Credential>, Status> {
    req.extensions()
        .get::<AuthenticatedCaller>()
        .map(|c| Arc::clone(&c.0))
        .ok_or_else(|| Status::unauthenticated("no client certificate: connect with mutual TLS"))
}

fn to_request(msg: pb::EnrollRequest) -> EnrollmentRequest {
    let d = msg.device.unwrap_or_default();
    EnrollmentRequest {
        csr_der: msg.csr_der,
        device: DeviceAttributes {
            sector: d.sector,
            manufacturer: d.manufacturer,
            model: d.model,
            serial: d.serial,
            firmware_version: d.firmware_version,
        },
        evidence: msg
            .evidence
            .into_iter()
            .map(|e| EvidenceItem {
                kind: e.r#type,
                scheme: e.scheme,
                value: e.value,
                evaluated_at: e.evaluated_at,
            })
            .collect(),
        renewal: msg.renewal,
        require_registered_model: false,
    }
}

fn to_response(o: EnrollmentOutcome) -> pb::EnrollResponse {
    pb::EnrollResponse {
        chain_der: o.chain_der,
        serial: o.serial,
        level: o.level as u32,
        identity: o.identity,
        not_after: o
            .not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        policy_version: o.policy_version,
    }
}

fn log_outcome(caller: &Credential, sector: &str, result: &Result<EnrollmentOutcome, CaError>) {
    match result {
        Ok(o) => tracing::info!(
            rpc = "Enroll",
            role = caller.kind.as_str(),
            caller = %caller.name,
            sector,
            outcome = "issued",
            serial = %o.serial,
            level = o.level
        ),
        Err(e) => tracing::info!(
            rpc = "Enroll",
            role = caller.kind.as_str(),
            caller = %caller.name,
            sector,
            outcome = "refused",
            code = ?tonic::Code::from(e),
            reason = %e
        ),
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn enroll(
        &self,
        request: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let caller = caller(&request)?;
        let req = to_request(request.into_inner());
        let sector = req.device.sector.clone();
        let mut results = self.engine.enroll_many(&caller, vec![req]).await;
        let result = results
            .pop()
            .unwrap_or_else(|| Err(CaError::Signing("no result".into())));
        log_outcome(&caller, &sector, &result);
        result
            .map(|o| Response::new(to_response(o)))
            .map_err(Status::from)
    }

    type EnrollBatchStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::EnrollBatchResult, Status>>;

    async fn enroll_batch(
        &self,
        request: Request<Streaming<pb::EnrollBatchItem>>,
    ) -> Result<Response<Self::EnrollBatchStream>, Status> {
        let caller = caller(&request)?;
        let engine = Arc::clone(&self.engine);
        let (tx, rx) = tokio::sync::mpsc::channel(CHUNK * 4);
        let inbound = request.into_inner();
        tokio::spawn(async move {
            let chunks = inbound.chunks_timeout(CHUNK, Duration::from_millis(2));
            tokio::pin!(chunks);
            let mut seen = 0usize;
            let (mut issued, mut refused, mut delivered) = (0usize, 0usize, 0usize);
            let mut stalled = false;
            let mut silent = false;
            // Up to two chunks in flight: one signing while one commits.
            let permits = Arc::new(tokio::sync::Semaphore::new(2));
            let mut tasks = tokio::task::JoinSet::new();
            loop {
                // A stream that sends nothing (and does not end) for
                // STREAM_IDLE is ended: it would hold its connection and a
                // task for as long as the client liked.
                let chunk = match tokio::time::timeout(STREAM_IDLE, chunks.next()).await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(_) => {
                        silent = true;
                        break;
                    }
                };
                let mut ids = Vec::with_capacity(chunk.len());
                let mut reqs = Vec::with_capacity(chunk.len());
                let mut early = Vec::new();
                let mut stream_error = None;
                for item in chunk {
                    match item {
                        Ok(item) => {
                            seen += 1;
                            if seen > MAX_BATCH_ITEMS {
                                early.push(failure(
                                    item.id,
                                    tonic::Code::ResourceExhausted,
                                    format!("a batch stream carries at most {MAX_BATCH_ITEMS} items; open a new stream"),
                                ));
                                continue;
                            }
                            match item.request {
                                Some(r) => {
                                    ids.push(item.id);
                                    reqs.push(to_request(r));
                                }
                                None => early.push(failure(
                                    item.id,
                                    tonic::Code::InvalidArgument,
                                    "item has no request".into(),
                                )),
                            }
                        }
                        Err(status) => stream_error = Some(status),
                    }
                }
                refused += early.len();
                for e in early {
                    if !matches!(
                        tokio::time::timeout(STALLED_READER, tx.send(Ok(e))).await,
                        Ok(Ok(()))
                    ) {
                        return;
                    }
                }
                if let Some(status) = stream_error {
                    tracing::info!(rpc = "EnrollBatch", caller = %caller.name, outcome = "stream error", %status);
                    break;
                }
                if reqs.is_empty() {
                    continue;
                }
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let engine = Arc::clone(&engine);
                let caller = Arc::clone(&caller);
                let tx = tx.clone();
                tasks.spawn(async move {
                    let results = engine.enroll_many(&caller, reqs).await;
                    // The permit is held until the results are queued for
                    // the client: a client that stops reading fills the
                    // queue, the senders wait, and no further chunk is
                    // issued. At most the permits' chunks plus the queue
                    // are ever ahead of what the client read.
                    let _permit = permit;
                    // (issued, refused, results queued for the client, stalled)
                    let mut counts = (0usize, 0usize, 0usize, false);
                    for (id, r) in ids.into_iter().zip(results) {
                        let msg = match r {
                            Ok(o) => {
                                counts.0 += 1;
                                pb::EnrollBatchResult {
                                    id,
                                    outcome: Some(pb::enroll_batch_result::Outcome::Certificate(
                                        to_response(o),
                                    )),
                                }
                            }
                            Err(e) => {
                                counts.1 += 1;
                                failure(id, tonic::Code::from(&e), e.to_string())
                            }
                        };
                        match tokio::time::timeout(STALLED_READER, tx.send(Ok(msg))).await {
                            Ok(Ok(())) => counts.2 += 1,
                            // The client left, or has not read for
                            // STALLED_READER: end the stream.
                            _ => {
                                counts.3 = true;
                                break;
                            }
                        }
                    }
                    counts
                });
                while let Some(Ok((i, r, d, s))) = tasks.try_join_next() {
                    issued += i;
                    refused += r;
                    delivered += d;
                    stalled |= s;
                }
                if stalled {
                    break;
                }
            }
            while let Some(Ok((i, r, d, s))) = tasks.join_next().await {
                issued += i;
                refused += r;
                delivered += d;
                stalled |= s;
            }
            if silent && !stalled {
                let _ = tx
                    .send(Err(Status::deadline_exceeded(format!(
                        "no item and no end of stream for {} s; the stream is closed",
                        STREAM_IDLE.as_secs()
                    ))))
                    .await;
            }
            tracing::info!(
                rpc = "EnrollBatch",
                role = caller.kind.as_str(),
                caller = %caller.name,
                items = seen,
                issued,
                refused,
                delivered,
                outcome = if stalled {
                    "client stopped reading"
                } else if silent {
                    "client stopped sending"
                } else {
                    "done"
                }
            );
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn get_ca_certificates(
        &self,
        _request: Request<pb::GetCaCertificatesRequest>,
    ) -> Result<Response<pb::GetCaCertificatesResponse>, Status> {
        let h = self.engine.hierarchy();
        Ok(Response::new(pb::GetCaCertificatesResponse {
            root_der: h.root_der.clone(),
            sector_ca_der: h
                .sectors
                .iter()
                .map(|(s, ca)| (s.to_string(), ca.cert_der.clone()))
                .collect(),
        }))
    }
}

fn failure(id: u64, code: tonic::Code, message: String) -> pb::EnrollBatchResult {
    pb::EnrollBatchResult {
        id,
        outcome: Some(pb::enroll_batch_result::Outcome::Error(pb::Failure {
            code: code as i32,
            message,
        })),
    }
}
