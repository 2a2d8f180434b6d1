//! The server's side of the ETSI TS 102 941 front end: the plain-HTTP
//! listener. Its connections take places in the server's connection table
//! like the gRPC and HTTPS ports' (one limit for all, the idle ones
//! evicted first when it is full, the first-request and idle timeouts,
//! closed at the end of the shutdown grace period); a connection here has
//! no credential, so it counts as unauthenticated when the table chooses
//! whom to evict. Routes, media types, the handling of each request, its
//! statuses and the AA's HTTP client of its EA are
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

use crate::connections::{ConnectionActivity, ConnectionLimits, ConnectionTable, Registration};
use crate::est::REQUEST_READ_TIMEOUT;

/// Serves `http` on `listener` (plain HTTP/1.1) until `stop` is cancelled,
/// in a connection table of its own with the default limits (its maximum
/// from the descriptor limit, raised as `serve` raises it): for a
/// standalone AA or distribution centre (`serve --etsi-role`) and the
/// bench, which have no gRPC port to share one with.
pub fn spawn(listener: TcpListener, http: Arc<EtsiHttp>, stop: CancellationToken) {
    let limits = ConnectionLimits::default();
    let max = limits.resolve(crate::connections::raise_descriptor_limit());
    let table = Arc::new(ConnectionTable::new(max, limits, stop.child_token()));
    spawn_in(listener, http, table, stop);
}

/// Serves `http` on `listener` (plain HTTP/1.1) until `stop` is cancelled,
/// each connection in the server's `table`.
pub(crate) fn spawn_in(
    listener: TcpListener,
    http: Arc<EtsiHttp>,
    table: Arc<ConnectionTable>,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, remote)) = accepted else {
                continue;
            };
            let Some(registration) = table.admit() else {
                // Every held connection is busy: refuse this one.
                tracing::debug!(%remote, "ETSI connection refused: the connection table is full");
                continue;
            };
            // No handshake: the first-request clock starts now.
            registration.activity.handshake_done(false);
            let limits = *table.limits();
            tokio::spawn(serve_connection(
                stream,
                Arc::clone(&http),
                registration,
                limits,
                stop.clone(),
            ));
        }
    });
}

/// Serves HTTP/1.1 on one accepted connection until it ends, is idle past
/// its timeout, is evicted, or the server stops.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    http: Arc<EtsiHttp>,
    registration: Registration,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let activity = Arc::clone(&registration.activity);
    let service = hyper::service::service_fn(move |request| {
        let (http, activity) = (Arc::clone(&http), Arc::clone(&activity));
        async move {
            // In flight: the connection is not idle, nor evicted.
            let _request = activity.begin();
            Ok::<_, Infallible>(http.answer(request).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let close = registration.activity.close_token().clone();
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = close.cancelled() => return,
        () = idle_past_timeout(&registration.activity, &limits) => return,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => r,
                () = close.cancelled() => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "ETSI connection ended");
    }
}

/// Returns once the connection has been idle past its deadline (never
/// while a request is in flight).
async fn idle_past_timeout(activity: &ConnectionActivity, limits: &ConnectionLimits) {
    loop {
        let now = tokio::time::Instant::now();
        match activity.idle_deadline(limits) {
            Some(deadline) if deadline <= now => return,
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => tokio::time::sleep(limits.idle_timeout / 4).await,
        }
    }
}
