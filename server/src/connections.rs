//! How many connections the server holds and for how long.
//!
//! Every accepted TCP connection is registered in a [`ConnectionTable`]
//! before its TLS handshake starts, and stays there until it is dropped.
//! The table bounds the number of connections (and so the descriptors they
//! use); when it is full, the longest-idle connection that has no request in
//! flight is closed to make room (connections without a trusted client
//! certificate first), so idle or unauthenticated connections can never lock
//! real clients out. Only when every connection is busy is a new one refused.
//!
//! A connection is idle when no request is in flight on it. A connection
//! that sends no request within [`ConnectionLimits::first_request_timeout`]
//! of its handshake, or stays idle for [`ConnectionLimits::idle_timeout`],
//! is closed ([`ConnectionActivity::idle_deadline`]); HTTP/2 keepalive pings
//! do not count as activity. In-flight requests are counted by
//! [`ActivityLayer`], which holds a guard until the response body ends.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::codegen::Service;
use tonic::codegen::http;

/// Connection limits of one server (`serve --max-connections`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections held at once, handshakes included. `None`: derived from
    /// the descriptor limit at start ([`ConnectionLimits::resolve`]).
    pub max_connections: Option<usize>,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed between the handshake and the first request.
    pub first_request_timeout: Duration,
    /// Time a connection may stay without a request in flight.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: None,
            handshake_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
        }
    }
}

/// Descriptors kept back from connections for the store, files, logs and
/// outgoing calls (federation, PostgreSQL, webhooks).
const RESERVED_DESCRIPTORS: u64 = 256;
/// The default maximum when the descriptor limit allows it.
const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
/// The soft descriptor limit asked for at start (if the hard limit allows).
const WANTED_DESCRIPTORS: u64 = DEFAULT_MAX_CONNECTIONS + 2 * RESERVED_DESCRIPTORS;

/// Raises the process's soft descriptor limit towards its hard limit, so
/// the default 1,024 does not cap connections. Returns the soft limit in
/// force afterwards (`None` where it cannot be read).
pub fn raise_descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let current = getrlimit(Resource::Nofile);
        let soft = current.current?;
        let wanted = match current.maximum {
            Some(hard) => WANTED_DESCRIPTORS.min(hard),
            None => WANTED_DESCRIPTORS,
        };
        if wanted <= soft {
            return Some(soft);
        }
        let raised = rustix::process::Rlimit {
            current: Some(wanted),
            maximum: current.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => Some(wanted),
            Err(e) => {
                tracing::warn!(soft, wanted, error = %e, "cannot raise the descriptor limit");
                Some(soft)
            }
        }
    }
    #[cfg(not(unix))]
    None
}

impl ConnectionLimits {
    /// The maximum to enforce: the configured one, else what the descriptor
    /// limit leaves after a reserve (at most 10,000). A configured maximum
    /// the descriptor limit cannot carry is lowered, with a warning.
    pub fn resolve(&self, descriptors: Option<u64>) -> usize {
        let room = descriptors.map(|d| d.saturating_sub(RESERVED_DESCRIPTORS).max(16));
        let max = match (self.max_connections, room) {
            (Some(m), Some(room)) if m as u64 > room => {
                tracing::warn!(
                    configured = m,
                    descriptors = descriptors.unwrap_or_default(),
                    allowed = room,
                    "--max-connections is above what the descriptor limit allows; lowered"
                );
                room
            }
            (Some(m), _) => m as u64,
            (None, Some(room)) => room.min(DEFAULT_MAX_CONNECTIONS),
            (None, None) => DEFAULT_MAX_CONNECTIONS,
        };
        usize::try_from(max).unwrap_or(usize::MAX).max(1)
    }
}

/// What the table knows about one connection.
#[derive(Debug)]
pub(crate) struct ConnectionActivity {
    id: u64,
    /// When the handshake ended (or the connection was accepted, before).
    ready_at: Mutex<Instant>,
    /// Requests whose response has not ended.
    in_flight: AtomicUsize,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// When the last request ended.
    last_end: Mutex<Instant>,
    /// Whether the handshake produced a trusted credential.
    authenticated: AtomicBool,
    /// Fired to close the connection (eviction or shutdown).
    close: CancellationToken,
}

impl ConnectionActivity {
    fn lock(m: &Mutex<Instant>) -> Instant {
        *m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handshake finished; the first-request clock starts.
    pub(crate) fn handshake_done(&self, authenticated: bool) {
        *self.ready_at.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.authenticated.store(authenticated, Ordering::Relaxed);
    }

    /// The token that closes this connection.
    pub(crate) fn close_token(&self) -> &CancellationToken {
        &self.close
    }

    /// A request started; the guard ends it when dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::Relaxed);
        RequestGuard(Arc::clone(self))
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// When this connection is to be closed for idleness, if nothing
    /// happens before; `None` while a request is in flight.
    pub(crate) fn idle_deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.busy() {
            return None;
        }
        Some(if self.requests.load(Ordering::Relaxed) == 0 {
            Self::lock(&self.ready_at) + limits.first_request_timeout
        } else {
            Self::lock(&self.last_end) + limits.idle_timeout
        })
    }

    /// How long since anything happened (for choosing whom to evict).
    fn idle_since(&self) -> Instant {
        Self::lock(&self.last_end).max(Self::lock(&self.ready_at))
    }
}

/// Ends a request when dropped (with its response body).
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<ConnectionActivity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every connection the server holds.
#[derive(Debug)]
pub(crate) struct ConnectionTable {
    max: usize,
    limits: ConnectionLimits,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnectionActivity>>>,
    /// Whether the table was full at the last admission (logged on change).
    full: AtomicBool,
    /// Closes every connection (shutdown's end of grace).
    closing: CancellationToken,
}

/// A connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Registration {
    table: Arc<ConnectionTable>,
    pub(crate) activity: Arc<ConnectionActivity>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.activity.id);
    }
}

impl ConnectionTable {
    pub(crate) fn new(max: usize, limits: ConnectionLimits, closing: CancellationToken) -> Self {
        Self {
            max,
            limits,
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            full: AtomicBool::new(false),
            closing,
        }
    }

    pub(crate) fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    /// Connections held now.
    pub(crate) fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Registers a new connection, closing an idle one if the table is
    /// full; `None` when every held connection is busy.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Registration> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let full = open.len() >= self.max;
        if full {
            // Unauthenticated before authenticated, then the longest idle.
            let victim = open
                .values()
                .filter(|a| !a.busy())
                .min_by_key(|a| (a.authenticated.load(Ordering::Relaxed), a.idle_since()))
                .map(|a| a.id);
            match victim.and_then(|id| open.remove(&id)) {
                Some(v) => v.close.cancel(),
                None => {
                    if !self.full.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            max = self.max,
                            "connection limit reached and every connection is busy: refusing new connections"
                        );
                    }
                    return None;
                }
            }
        }
        if full != self.full.swap(full, Ordering::Relaxed) {
            if full {
                tracing::warn!(
                    max = self.max,
                    "connection limit reached: closing the longest-idle connections to admit new ones"
                );
            } else {
                tracing::info!(max = self.max, "connections below the limit again");
            }
        }
        let now = Instant::now();
        let activity = Arc::new(ConnectionActivity {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            ready_at: Mutex::new(now),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
            last_end: Mutex::new(now),
            authenticated: AtomicBool::new(false),
            close: self.closing.child_token(),
        });
        open.insert(activity.id, Arc::clone(&activity));
        Some(Registration {
            table: Arc::clone(self),
            activity,
        })
    }
}

/// The layer for `Server::builder().layer(...)` that counts in-flight
/// requests per connection (see [`RequestGuard`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ActivityLayer;

impl<S> tower::Layer<S> for ActivityLayer {
    type Service = CountRequests<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountRequests { inner }
    }
}

/// Holds a [`RequestGuard`] from the request's arrival to the end of its
/// response body.
#[derive(Debug, Clone)]
pub(crate) struct CountRequests<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for CountRequests<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guard = request
            .extensions()
            .get::<crate::transport::ConnectionInfo>()
            .map(|c| c.activity.begin());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(match guard {
                Some(guard) => response.map(|body| {
                    tonic::body::Body::new(GuardedBody {
                        inner: body,
                        _guard: guard,
                    })
                }),
                None => response,
            })
        })
    }
}

/// A response body that ends its request when it is dropped.
struct GuardedBody {
    inner: tonic::body::Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(max: usize) -> Arc<ConnectionTable> {
        Arc::new(ConnectionTable::new(
            max,
            ConnectionLimits::default(),
            CancellationToken::new(),
        ))
    }

    #[tokio::test]
    async fn a_full_table_closes_an_unauthenticated_idle_connection_first() {
        let t = table(3);
        let a = t.admit().unwrap();
        a.activity.handshake_done(true);
        let b = t.admit().unwrap();
        b.activity.handshake_done(false);
        let c = t.admit().unwrap();
        c.activity.handshake_done(true);
        let d = t.admit().expect("an idle connection makes room");
        assert!(b.activity.close_token().is_cancelled());
        assert!(!a.activity.close_token().is_cancelled());
        assert!(!c.activity.close_token().is_cancelled());
        assert_eq!(t.len(), 3);
        drop(d);
        assert_eq!(t.len(), 2);
    }

    #[tokio::test]
    async fn busy_connections_are_never_evicted() {
        let t = table(2);
        let a = t.admit().unwrap();
        let b = t.admit().unwrap();
        let _ga = a.activity.begin();
        let gb = b.activity.begin();
        assert!(t.admit().is_none(), "every connection is busy");
        drop(gb);
        assert!(t.admit().is_some());
        assert!(b.activity.close_token().is_cancelled());
        assert!(!a.activity.close_token().is_cancelled());
    }

    #[tokio::test]
    async fn deadlines_follow_the_first_request_and_idle_timeouts() {
        let t = table(4);
        let limits = *t.limits();
        let r = t.admit().unwrap();
        let before = Instant::now();
        r.activity.handshake_done(true);
        let first = r.activity.idle_deadline(&limits).unwrap();
        assert!(first >= before + limits.first_request_timeout);
        assert!(first <= Instant::now() + limits.first_request_timeout);
        let g = r.activity.begin();
        assert_eq!(r.activity.idle_deadline(&limits), None, "busy");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let ended = Instant::now();
        drop(g);
        let idle = r.activity.idle_deadline(&limits).unwrap();
        assert!(idle >= ended + limits.idle_timeout);
        assert!(idle <= Instant::now() + limits.idle_timeout);
        assert!(
            idle > first,
            "the idle timeout replaces the first-request one"
        );
    }

    #[test]
    fn the_maximum_follows_the_descriptor_limit() {
        let l = ConnectionLimits::default();
        assert_eq!(l.resolve(Some(1024)), 768);
        assert_eq!(l.resolve(Some(1_048_576)), 10_000);
        let set = ConnectionLimits {
            max_connections: Some(50_000),
            ..l
        };
        assert_eq!(set.resolve(Some(20_000)), 19_744);
        assert_eq!(set.resolve(None), 50_000);
    }
}
