//! The server's side of the ETSI TS 102 941 front end: the plain-HTTP
//! listener and its connection limit. Routes, media types, the handling of
//! each request, its statuses and the AA's HTTP client of its EA are
//! `trustca_api::etsi_http`'s (re-exported here for the server's callers).

use std::convert::Infallible;
use std::sync::Arc;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use trustca_api::etsi_http::{
    AUTHORIZATION_PATH, CRL_PREFIX, CTL_PREFIX, ECTL_PREFIX, ENROLMENT_PATH, EtsiHttp, HttpEaLink,
    PublishedLists, REQUEST_TYPE, RESPONSE_TYPE, VALIDATION_PATH,
};

use crate::est::REQUEST_READ_TIMEOUT;

/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 256;

/// Serves `http` on `listener` (plain HTTP/1.1) until `stop` is cancelled.
pub fn spawn(listener: TcpListener, http: Arc<EtsiHttp>, stop: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else { continue };
            let (http, stop) = (Arc::clone(&http), stop.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |request| {
                    let http = Arc::clone(&http);
                    async move { Ok::<_, Infallible>(http.answer(request).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(REQUEST_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                let result = tokio::select! {
                    r = conn.as_mut() => r,
                    () = stop.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        conn.as_mut().await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "ETSI connection ended");
                }
            });
        }
    });
}
