//! The server's side of its HTTPS front ends (EST, the IEEE 1609.2.1
//! resources, the web front end): the listener, TLS and the connection
//! table, and what it lends the front ends of `trustca_api::est` and
//! `trustca_api::v2x_http` — the caller check of its authentication layer
//! ([`AuthCheck`]) and its metrics as request counters. Routes, handlers,
//! bodies and statuses are `trustca-api`'s.

use std::convert::Infallible;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::transport::server::Connected;
use trustca_ca::root_crl::RevokedCas;
use trustca_model::{AuthenticatedPeer, CertificateKind, Credential};
use trustca_store::Storage;

pub use trustca_api::est::MAX_BODY_BYTES;
pub(crate) use trustca_api::est::{Answer, Est, HttpsService, REQUEST_READ_TIMEOUT};

use crate::auth;
use crate::connections::ConnectionTable;
use crate::error::ServerError;
use crate::metrics::Metrics;
use crate::transport::{self, TlsConnection, TransportIdentity};

/// The authentication layer's check (`auth::check`) for the HTTPS front
/// ends, over the store that records revocations and the sector CAs the
/// root revoked.
pub(crate) struct AuthCheck {
    /// Where callers' certificates are checked for revocation.
    pub storage: Arc<dyn Storage>,
    /// Sector CAs the root revoked: every certificate under them is refused.
    pub revoked_cas: Arc<RevokedCas>,
}

impl trustca_api::est::CallerCheck for AuthCheck {
    fn check(
        &self,
        path: &str,
        roles: &'static [CertificateKind],
        peer: &AuthenticatedPeer,
    ) -> Result<Option<Arc<Credential>>, Status> {
        auth::check(
            path,
            auth::caller(roles),
            Some(peer),
            self.storage.as_ref(),
            Some(&self.revoked_cas),
        )
    }
}

impl trustca_api::est::HttpCounters for Metrics {
    fn est_request(&self, operation: &str, status: u16) {
        Metrics::est_request(self, operation, status);
    }

    fn v2x_http_request(&self, resource: &str, status: u16) {
        Metrics::v2x_http_request(self, resource, status);
    }

    fn etsi_http_request(&self, resource: &str, status: u16) {
        Metrics::etsi_http_request(self, resource, status);
    }
}

/// Serves EST on `listener` until `stop` is cancelled: new connections are
/// then refused and open ones finish their requests, until the shutdown
/// grace period ends. Connections are accepted like the gRPC port's
/// (`transport`: handshake deadline, client certificate check) and held in
/// the same connection `table`, so its limit, eviction and idle timeouts
/// cover both ports.
pub(crate) fn spawn(
    listener: TcpListener,
    identity: &TransportIdentity,
    table: Arc<ConnectionTable>,
    est: Arc<dyn HttpsService>,
    stop: CancellationToken,
) -> Result<(), ServerError> {
    // HTTP/1.0 too: `curl --http1.0` offers only `http/1.0`, and rustls
    // ends a handshake whose offer has nothing in common with ours.
    let alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec(), b"http/1.0".to_vec()];
    let mut incoming = transport::incoming_offering(listener, identity, table, Some(alpn))?;
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => break,
                next = incoming.next() => next,
            };
            let connection = match next {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "EST connection not accepted");
                    continue;
                }
                None => break,
            };
            tokio::spawn(serve_connection(connection, Arc::clone(&est), stop.clone()));
        }
    });
    Ok(())
}

/// Serves HTTP/1.1 or HTTP/2 on one accepted connection.
async fn serve_connection(
    connection: TlsConnection,
    est: Arc<dyn HttpsService>,
    stop: CancellationToken,
) {
    let info = connection.connect_info();
    let remote = info.peer.remote;
    let service = hyper::service::service_fn(move |request| {
        let (est, info) = (Arc::clone(&est), info.clone());
        async move {
            // In flight: the connection is not idle, nor evicted.
            let _request = info.activity.begin();
            Ok::<_, Infallible>(est.answer(&info.peer, request).await)
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64);
    let served = builder.serve_connection(TokioIo::new(connection), service);
    tokio::pin!(served);
    // The connection's own I/O fails once the grace period is over
    // (`transport`), which ends `served` in either branch.
    let result = tokio::select! {
        r = served.as_mut() => r,
        () = stop.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.as_mut().await
        }
    };
    if let Err(e) = result {
        tracing::debug!(?remote, error = %e, "EST connection ended");
    }
}
