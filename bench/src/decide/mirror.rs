//! The sized echo: `Decide`'s ceiling with `Decide`'s own messages.
//!
//! The plain echo (`GetCaCertificates`) has an empty request, while every
//! `DecideRequest` carries a ~1.5 KB peer chain, so the plain echo leaves
//! out the TLS, HTTP/2 and protobuf work of that chain. The mirror is a
//! second gRPC server in this process on the server's own transport
//! (`trustca_server::transport::incoming`: the same rustls configuration,
//! server chain and key, client-certificate check and HTTP/2 server): it
//! serves `trustca.v1.TrustDatabase/Decide`, decodes the full request and
//! answers a `Decision` the real server gave (same bytes every call), with
//! no engine work. `Decide` ÷ mirror is then the share of the transport's
//! ceiling `Decide` reaches for equal message sizes. What the mirror does
//! not run: the real server's auth layer (the caller's revocation check)
//! and its other services' routing.

use std::net::SocketAddr;
use std::pin::Pin;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};
use trustca_proto::v1 as pb;
use trustca_proto::v1::trust_database_server::{TrustDatabase, TrustDatabaseServer};

use super::World;

/// Answers every `Decide` with the recorded decision.
struct Mirror {
    decision: pb::Decision,
}

type Unary<T> = std::result::Result<Response<T>, Status>;

fn not_mirrored<T>() -> Unary<T> {
    Err(Status::unimplemented("the mirror answers Decide only"))
}

#[tonic::async_trait]
impl TrustDatabase for Mirror {
    async fn get_trust(&self, _: Request<pb::GetTrustRequest>) -> Unary<pb::TrustAnswer> {
        not_mirrored()
    }

    async fn decide(&self, request: Request<pb::DecideRequest>) -> Unary<pb::Decision> {
        // The request is decoded in full by tonic before this runs; keep
        // it observed so that nothing is optimised away.
        std::hint::black_box(request.into_inner());
        Ok(Response::new(self.decision.clone()))
    }

    type DecideBatchStream =
        Pin<Box<dyn tokio_stream::Stream<Item = std::result::Result<pb::Decision, Status>> + Send>>;

    async fn decide_batch(
        &self,
        _: Request<Streaming<pb::DecideRequest>>,
    ) -> Unary<Self::DecideBatchStream> {
        not_mirrored()
    }

    async fn change_trust(
        &self,
        _: Request<pb::ChangeTrustRequest>,
    ) -> Unary<pb::ChangeTrustResponse> {
        not_mirrored()
    }

    async fn bulk_downgrade(
        &self,
        _: Request<pb::BulkDowngradeRequest>,
    ) -> Unary<pb::BulkDowngradeResponse> {
        not_mirrored()
    }

    async fn get_history(
        &self,
        _: Request<pb::GetHistoryRequest>,
    ) -> Unary<pb::GetHistoryResponse> {
        not_mirrored()
    }

    async fn reload_policy(
        &self,
        _: Request<pb::ReloadPolicyRequest>,
    ) -> Unary<pb::ReloadPolicyResponse> {
        not_mirrored()
    }
}

/// The running mirror; stopped when dropped.
pub(crate) struct Running {
    /// Where it listens (the house's credentials connect to it).
    pub(crate) addr: SocketAddr,
    closing: CancellationToken,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.closing.cancel();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the mirror with the world's server identity, answering
/// `decision`.
pub(crate) async fn start(world: &World, decision: pb::Decision) -> Result<Running> {
    let data = world.data.path();
    let pass = crate::fixture::passphrase()?;
    let (_, set) = trustca_server::policies::resolve(None, Some(data))?;
    let h = trustca_ca::CaHierarchy::open(data, &set, &pass)?;
    let id = trustca_server::transport::TransportIdentity {
        root_der: h.root_der.clone(),
        sector_cas: h.all_sector_cas(),
        server_chain: h.server_chain.clone(),
        server_key: h.server_key(),
        extension_oid: set.pki.extensions.trust_level_oid.clone(),
        foreign: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let closing = CancellationToken::new();
    let incoming = trustca_server::transport::incoming(listener, &id, closing.clone())
        .context("the mirror's TLS")?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = TrustDatabaseServer::new(Mirror { decision })
        .max_decoding_message_size(trustca_server::MAX_MESSAGE_BYTES);
    tokio::spawn(
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(256))
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );
    Ok(Running {
        addr,
        closing,
        stop: Some(stop),
    })
}
