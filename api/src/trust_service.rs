//! The trust database's gRPC services — `TrustDatabase`, `Anomalies`,
//! `ModelRegistry` and `TrustSnapshots`: the caller from the connection's
//! client certificate, messages converted to the engine's commands and
//! back, errors mapped once (`crate::status`).

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};
use trustca_db::{MAX_CHAIN, ModelRegistry, TrustDbError, TrustEngine, msg};
use trustca_model::Credential;
use trustca_model::limits::StreamLimits;
use trustca_model::observe::{NoObserver, Observer};
use trustca_proto::v1 as pb;
use trustca_proto::v1::trust_database_server::TrustDatabase;

use crate::status::{blocking, caller as authenticated, status};
use crate::stream_limits::{IdleWatch, Sent, Silent, send_within};
use crate::trust_convert::Convert;

/// Decisions one `DecideBatch` stream may carry.
pub const MAX_DECIDE_BATCH: usize = 1_000_000;

/// The trust service.
#[derive(Debug, Clone)]
pub struct TrustService {
    engine: Arc<TrustEngine>,
    observer: Arc<dyn Observer>,
    limits: StreamLimits,
}

impl TrustService {
    /// Wraps an engine, with the default stream limits.
    pub fn new(engine: Arc<TrustEngine>) -> Self {
        Self {
            engine,
            observer: Arc::new(NoObserver),
            limits: StreamLimits::default(),
        }
    }

    /// Ends `DecideBatch` streams by `limits` instead of the defaults.
    pub fn with_stream_limits(mut self, limits: StreamLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Counts and times every `Decide` in `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }
}

/// Reports one decision: allow, deny or error, and how long it took.
fn observe(
    observer: &dyn Observer,
    result: &Result<msg::Decision, TrustDbError>,
    took: std::time::Duration,
) {
    let outcome = match result {
        Ok(d) if d.allow => "allow",
        Ok(_) => "deny",
        Err(e) => {
            if let TrustDbError::Store(s) = e
                && s.is_backend()
            {
                observer.store_error("decide");
            }
            "error"
        }
    };
    observer.decision(outcome, took);
}

fn chain_of(c: Option<pb::CertificateChain>) -> Result<Vec<Vec<u8>>, Status> {
    let c = c.ok_or_else(|| Status::invalid_argument("peer certificate chain is required"))?;
    if c.certificates.is_empty() || c.certificates.len() > MAX_CHAIN {
        return Err(Status::invalid_argument(format!(
            "a chain holds 1 to {MAX_CHAIN} certificates"
        )));
    }
    Ok(c.certificates)
}

#[tonic::async_trait]
impl TrustDatabase for TrustService {
    async fn get_trust(
        &self,
        request: Request<pb::GetTrustRequest>,
    ) -> Result<Response<pb::TrustAnswer>, Status> {
        let who = authenticated(&request)?;
        let subject = request.into_inner().subject;
        if let Some(pb::get_trust_request::Subject::Chain(c)) = &subject
            && (c.certificates.is_empty() || c.certificates.len() > MAX_CHAIN)
        {
            return Err(Status::invalid_argument(format!(
                "a chain holds 1 to {MAX_CHAIN} certificates"
            )));
        }
        let r = self.engine.get_trust(subject.map(Convert::convert)).await;
        tracing::debug!(rpc = "GetTrust", role = who.kind.as_str(), caller = %who.name, ok = r.is_ok());
        r.map(|a| Response::new(a.convert())).map_err(status)
    }

    async fn decide(
        &self,
        request: Request<pb::DecideRequest>,
    ) -> Result<Response<pb::Decision>, Status> {
        let who = authenticated(&request)?;
        let req = request.into_inner();
        let chain = chain_of(req.peer)?;
        let started = std::time::Instant::now();
        let d = self.engine.decide(&who, &chain, &req.operation).await;
        observe(self.observer.as_ref(), &d, started.elapsed());
        let d = d.map_err(status)?;
        tracing::debug!(rpc = "Decide", caller = %who.name, sector = %who.sector, operation = %req.operation, allow = d.allow, depth = %d.depth);
        Ok(Response::new(d.convert()))
    }

    type DecideBatchStream = tokio_stream::wrappers::ReceiverStream<Result<pb::Decision, Status>>;

    async fn decide_batch(
        &self,
        request: Request<Streaming<pb::DecideRequest>>,
    ) -> Result<Response<Self::DecideBatchStream>, Status> {
        let who = authenticated(&request)?;
        let engine = Arc::clone(&self.engine);
        let observer = Arc::clone(&self.observer);
        let mut inbound = request.into_inner();
        let limits = self.limits;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            let mut n = 0usize;
            let mut watch = IdleWatch::new(limits.idle);
            loop {
                // A silent stream is ended rather than held open forever.
                let item = match watch.next(&mut inbound).await {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(Silent) => {
                        let _ = tx
                            .send(Err(Status::deadline_exceeded(format!(
                                "no request and no end of stream for {} s; the stream is closed",
                                limits.idle.as_secs()
                            ))))
                            .await;
                        tracing::info!(rpc = "DecideBatch", caller = %who.name, decisions = n, outcome = "client stopped sending");
                        return;
                    }
                };
                n += 1;
                let out = match item {
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                    Ok(_) if n > MAX_DECIDE_BATCH => Err(Status::resource_exhausted(format!(
                        "a DecideBatch stream carries at most {MAX_DECIDE_BATCH} requests"
                    ))),
                    Ok(req) => match chain_of(req.peer) {
                        Err(s) => Err(s),
                        Ok(chain) => {
                            let started = std::time::Instant::now();
                            let d = engine.decide(&who, &chain, &req.operation).await;
                            observe(observer.as_ref(), &d, started.elapsed());
                            d.map(Convert::convert).map_err(status)
                        }
                    },
                };
                // A bad item ends the stream with its status, like a unary call.
                let stop = out.is_err();
                // A client that does not read its decisions loses the
                // stream after `stalled_reader` instead of holding a task.
                match send_within(&tx, out, limits.stalled_reader).await {
                    Sent::Queued if !stop => {}
                    Sent::Queued | Sent::Gone => return,
                    Sent::Stalled => {
                        tracing::info!(rpc = "DecideBatch", caller = %who.name, decisions = n, outcome = "client stopped reading");
                        return;
                    }
                }
            }
            tracing::info!(rpc = "DecideBatch", caller = %who.name, decisions = n, outcome = "done");
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn change_trust(
        &self,
        request: Request<pb::ChangeTrustRequest>,
    ) -> Result<Response<pb::ChangeTrustResponse>, Status> {
        let who = authenticated(&request)?;
        let engine = Arc::clone(&self.engine);
        let req = crate::trust_convert::change_trust_request(request.into_inner())?;
        let record = blocking("trust change", move || engine.change_trust(&who, req)).await?;
        Ok(Response::new(pb::ChangeTrustResponse {
            record: Some(record.convert()),
        }))
    }

    async fn bulk_downgrade(
        &self,
        request: Request<pb::BulkDowngradeRequest>,
    ) -> Result<Response<pb::BulkDowngradeResponse>, Status> {
        let who = authenticated(&request)?;
        let engine = Arc::clone(&self.engine);
        let req = crate::trust_convert::bulk_downgrade_request(request.into_inner())?;
        blocking("bulk downgrade", move || engine.bulk_downgrade(&who, &req))
            .await
            .map(|r| Response::new(r.convert()))
    }

    async fn get_history(
        &self,
        request: Request<pb::GetHistoryRequest>,
    ) -> Result<Response<pb::GetHistoryResponse>, Status> {
        let who = authenticated(&request)?;
        self.engine
            .history(&who, &request.into_inner().identity)
            .map(|h| Response::new(h.convert()))
            .map_err(status)
    }

    async fn reload_policy(
        &self,
        request: Request<pb::ReloadPolicyRequest>,
    ) -> Result<Response<pb::ReloadPolicyResponse>, Status> {
        let who = authenticated(&request)?;
        self.engine
            .reload_by(&who)
            .map(|r| Response::new(r.convert()))
            .map_err(status)
    }
}

/// The `trustca.v1.Anomalies` service (gateway role).
#[derive(Debug, Clone)]
pub struct AnomalyService {
    engine: Arc<TrustEngine>,
    notifier: trustca_db::Notifier,
}

impl AnomalyService {
    /// Wraps an engine and where notifications go.
    pub fn new(engine: Arc<TrustEngine>, notifier: trustca_db::Notifier) -> Self {
        Self { engine, notifier }
    }
}

#[tonic::async_trait]
impl trustca_proto::v1::anomalies_server::Anomalies for AnomalyService {
    async fn report(
        &self,
        request: Request<pb::AnomalyReport>,
    ) -> Result<Response<pb::AnomalyOutcome>, Status> {
        let who = authenticated(&request)?;
        let engine = Arc::clone(&self.engine);
        let req = crate::trust_convert::anomaly_report(request.into_inner())?;
        let (outcome, notification) =
            blocking("anomaly", move || engine.report_anomaly(&who, req)).await?;
        if let Some(n) = notification {
            self.notifier.send(n);
        }
        Ok(Response::new(outcome.convert()))
    }
}

/// The `ModelRegistry` gRPC service.
#[derive(Debug, Clone)]
pub struct ModelRegistryService {
    registry: Arc<ModelRegistry>,
}

impl ModelRegistryService {
    /// Wraps a registry.
    pub fn new(registry: Arc<ModelRegistry>) -> Self {
        Self { registry }
    }

    /// Runs a registry call off the async runtime: a change may move a
    /// fleet of thousands of devices in one store transaction.
    async fn run<P, D, R, Q>(
        &self,
        request: Request<P>,
        call: impl FnOnce(&ModelRegistry, &Credential, &D) -> Result<R, TrustDbError> + Send + 'static,
    ) -> Result<Response<Q>, Status>
    where
        P: Convert<D>,
        D: Send + 'static,
        R: Convert<Q> + Send + 'static,
    {
        let registry = Arc::clone(&self.registry);
        off_runtime(request, "registry", move |who, req| {
            call(&registry, who, req)
        })
        .await
    }
}

/// Authenticates `request`, converts it to the engine's command and runs
/// `call` on the blocking pool (a store commit or a fleet move must not
/// hold an async worker); the answer goes back as its message.
pub(crate) async fn off_runtime<P, D, R, Q>(
    request: Request<P>,
    what: &'static str,
    call: impl FnOnce(&Credential, &D) -> Result<R, TrustDbError> + Send + 'static,
) -> Result<Response<Q>, Status>
where
    P: Convert<D>,
    D: Send + 'static,
    R: Convert<Q> + Send + 'static,
{
    let who = authenticated(&request)?;
    let req = request.into_inner().convert();
    blocking(what, move || call(&who, &req))
        .await
        .map(|r| Response::new(r.convert()))
}

#[tonic::async_trait]
impl pb::model_registry_server::ModelRegistry for ModelRegistryService {
    async fn register_model(
        &self,
        request: Request<pb::RegisterModelRequest>,
    ) -> Result<Response<pb::ModelChangeResponse>, Status> {
        // Its declared evidence's types are read checked, before the
        // registry sees the request.
        let who = authenticated(&request)?;
        let req = crate::trust_convert::checked_request(request.into_inner())?;
        let registry = Arc::clone(&self.registry);
        blocking("registry", move || registry.register(&who, &req))
            .await
            .map(|r| Response::new(r.convert()))
    }

    async fn add_evaluation(
        &self,
        request: Request<pb::AddEvaluationRequest>,
    ) -> Result<Response<pb::ModelChangeResponse>, Status> {
        self.run(request, |r, who, req| r.add_evaluation(who, req))
            .await
    }

    async fn withdraw_evaluation(
        &self,
        request: Request<pb::WithdrawEvaluationRequest>,
    ) -> Result<Response<pb::ModelChangeResponse>, Status> {
        self.run(request, |r, who, req| r.withdraw_evaluation(who, req))
            .await
    }

    async fn suspend_model(
        &self,
        request: Request<pb::SuspendModelRequest>,
    ) -> Result<Response<pb::ModelChangeResponse>, Status> {
        self.run(request, |r, who, req| r.suspend(who, req)).await
    }

    async fn get_model(
        &self,
        request: Request<pb::GetModelRequest>,
    ) -> Result<Response<pb::ModelView>, Status> {
        self.run(request, |r, _, req| r.get(req)).await
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        self.run(request, |r, _, req| r.list(req)).await
    }
}

/// The public `TrustSnapshots` gRPC service.
#[derive(Debug, Clone)]
pub struct SnapshotService {
    publisher: Arc<trustca_db::SnapshotPublisher>,
}

impl SnapshotService {
    /// Serves `publisher`'s snapshots.
    pub fn new(publisher: Arc<trustca_db::SnapshotPublisher>) -> Self {
        Self { publisher }
    }
}

#[tonic::async_trait]
impl pb::trust_snapshots_server::TrustSnapshots for SnapshotService {
    async fn get_snapshot(
        &self,
        request: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let sector = request.into_inner().sector;
        let scope = if sector.is_empty() {
            None
        } else {
            Some(
                trustca_model::SectorName::new(&sector)
                    .map_err(|e| status(TrustDbError::from(e)))?,
            )
        };
        let publisher = Arc::clone(&self.publisher);
        let (der, stamp) = blocking("snapshot", move || publisher.current(scope.as_ref())).await?;
        Ok(Response::new(pb::SnapshotResponse {
            signed_snapshot: der.as_ref().clone(),
            serial: stamp.serial,
            next_update: stamp.next_update.unix_timestamp(),
        }))
    }
}
