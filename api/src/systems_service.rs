//! The `trustca.v1.Systems` gRPC service: the caller from the connection's
//! client certificate, the work off the async runtime (a change is a
//! durable store commit), messages converted to the engine's commands and
//! back, errors mapped once (`crate::status`).

use std::sync::Arc;

use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use trustca_model::Credential;
use trustca_proto::v1 as pb;
use trustca_proto::v1::systems_server::Systems;

use trustca_db::{SystemRegistry, TrustDbError, TrustEngine, evaluation_view};

use crate::trust_convert::Convert;
use crate::trust_service::off_runtime;

/// The systems service.
#[derive(Debug, Clone)]
pub struct SystemsService {
    engine: Arc<TrustEngine>,
    registry: Arc<SystemRegistry>,
}

impl SystemsService {
    /// Serves `registry`, evaluating with `engine`'s live records.
    pub fn new(engine: Arc<TrustEngine>, registry: Arc<SystemRegistry>) -> Self {
        Self { engine, registry }
    }

    async fn run<P, D, R, Q>(
        &self,
        request: Request<P>,
        call: impl FnOnce(&SystemRegistry, &TrustEngine, &Credential, &D) -> Result<R, TrustDbError>
        + Send
        + 'static,
    ) -> Result<Response<Q>, Status>
    where
        P: Convert<D>,
        D: Send + 'static,
        R: Convert<Q> + Send + 'static,
    {
        let registry = Arc::clone(&self.registry);
        let engine = Arc::clone(&self.engine);
        off_runtime(request, "systems", move |who, req| {
            call(&registry, &engine, who, req)
        })
        .await
    }
}

#[tonic::async_trait]
impl Systems for SystemsService {
    async fn register(
        &self,
        request: Request<pb::RegisterSystemRequest>,
    ) -> Result<Response<pb::SystemView>, Status> {
        self.run(request, |r, e, who, req| r.register(e, who, req))
            .await
    }

    async fn link(
        &self,
        request: Request<pb::LinkRequest>,
    ) -> Result<Response<pb::SystemView>, Status> {
        self.run(request, |r, e, who, req| r.link(e, who, req))
            .await
    }

    async fn unlink(
        &self,
        request: Request<pb::LinkRequest>,
    ) -> Result<Response<pb::SystemView>, Status> {
        self.run(request, |r, e, who, req| r.unlink(e, who, req))
            .await
    }

    async fn show(
        &self,
        request: Request<pb::ShowSystemRequest>,
    ) -> Result<Response<pb::SystemView>, Status> {
        self.run(request, |r, _, who, req: &pb::ShowSystemRequest| {
            r.show(who, &req.system)
        })
        .await
    }

    async fn evaluate(
        &self,
        request: Request<pb::ShowSystemRequest>,
    ) -> Result<Response<pb::SystemEvaluation>, Status> {
        self.run(request, |r, e, who, req: &pb::ShowSystemRequest| {
            let (evaluation, policy) = r.evaluate(e, who, &req.system)?;
            Ok(evaluation_view(
                &evaluation,
                &policy,
                OffsetDateTime::now_utc(),
            ))
        })
        .await
    }
}
