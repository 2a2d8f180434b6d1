//! The `trustca.v1.Systems` gRPC service: the caller from the connection's
//! client certificate, the work off the async runtime (a change is a
//! durable store commit), errors mapped once by `TrustDbError`.

use std::sync::Arc;

use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use trustca_model::Credential;
use trustca_proto::v1 as pb;
use trustca_proto::v1::systems_server::Systems;

use crate::engine::TrustEngine;
use crate::service::off_runtime;
use crate::systems::{SystemRegistry, evaluation_view};

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

    async fn run<T, R>(
        &self,
        request: Request<T>,
        call: impl FnOnce(
            &SystemRegistry,
            &TrustEngine,
            &Credential,
            &T,
        ) -> Result<R, crate::TrustDbError>
        + Send
        + 'static,
    ) -> Result<Response<R>, Status>
    where
        T: Send + 'static,
        R: Send + 'static,
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
        self.run(request, |r, _, who, req| r.show(who, &req.system))
            .await
    }

    async fn evaluate(
        &self,
        request: Request<pb::ShowSystemRequest>,
    ) -> Result<Response<pb::SystemEvaluation>, Status> {
        self.run(request, |r, e, who, req| {
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
