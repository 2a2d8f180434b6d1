//! Prometheus metrics: a registry that implements the engines'
//! [`Observer`], and `--metrics ADDR`, a plain HTTP/1 endpoint answering
//! `GET /metrics` in the OpenMetrics text format (which Prometheus reads).
//! Off unless asked for; it serves nothing else and takes no input but the
//! request line, so it can listen on loopback next to the mutual-TLS port.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use trustca_model::observe::Observer;
use trustca_store::Storage;

use crate::error::ServerError;

/// Content type of the OpenMetrics text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Longest request head read from a scraper.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SectorOutcome {
    sector: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindSector {
    kind: String,
    sector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Operation {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationStatus {
    operation: String,
    status: String,
}

/// Counts one request in `family` under `operation` (`other` when empty).
fn count_request(family: &Family<OperationStatus, Counter>, operation: &str, status: u16) {
    let operation = if operation.is_empty() {
        "other"
    } else {
        operation
    };
    family
        .get_or_create(&OperationStatus {
            operation: operation.to_owned(),
            status: status.to_string(),
        })
        .inc();
}

fn seconds_histogram() -> Histogram {
    // 100 µs to about 13 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

/// Every metric trustca exports, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    enrollments: Family<SectorOutcome, Counter>,
    decisions: Family<Outcome, Counter>,
    /// The series of `decisions` a `Decide` counts in, made once: counting
    /// a decision then takes no label string, map lookup or lock.
    decision_outcomes: [(&'static str, Counter); 3],
    decide_seconds: Histogram,
    commit_items: Histogram,
    commit_seconds: Histogram,
    group_items: Histogram,
    group_transaction_seconds: Histogram,
    group_flush_seconds: Histogram,
    published: Family<KindSector, Counter>,
    publish_seconds: Family<KindSector, Histogram, fn() -> Histogram>,
    published_bytes: Family<KindSector, Gauge>,
    audit_size: Gauge,
    store_errors: Family<Operation, Counter>,
    est_requests: Family<OperationStatus, Counter>,
    v2x_http_requests: Family<OperationStatus, Counter>,
    etsi_http_requests: Family<OperationStatus, Counter>,
    storage: std::sync::Mutex<Option<Weak<dyn Storage>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("trustca");
        let enrollments = Family::<SectorOutcome, Counter>::default();
        registry.register(
            "enrollments",
            "Enrollment items by sector and outcome (issued, or the refusal's gRPC code)",
            enrollments.clone(),
        );
        let decisions = Family::<Outcome, Counter>::default();
        registry.register(
            "decisions",
            "Decide answers by outcome (allow, deny, error)",
            decisions.clone(),
        );
        let decision_outcomes = ["allow", "deny", "error"].map(|outcome| {
            let series = decisions.get_or_create(&Outcome {
                outcome: outcome.to_owned(),
            });
            (outcome, series.clone())
        });
        let decide_seconds = seconds_histogram();
        registry.register(
            "decide_seconds",
            "Time to answer one Decide, in seconds",
            decide_seconds.clone(),
        );
        let commit_items = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "commit_request_items",
            "Issuances per request group (one Enroll, or one EnrollBatch chunk) handed to the group committer",
            commit_items.clone(),
        );
        let commit_seconds = seconds_histogram();
        registry.register(
            "commit_wait_seconds",
            "Time a request group waited from hand-over to the group committer until durable, in seconds",
            commit_seconds.clone(),
        );
        let group_items = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        registry.register(
            "commit_group_items",
            "Issuances per commit group: what the group committer wrote in one transaction and one flush",
            group_items.clone(),
        );
        let group_transaction_seconds = seconds_histogram();
        registry.register(
            "commit_transaction_seconds",
            "Time of one commit group's transaction in the store, in seconds",
            group_transaction_seconds.clone(),
        );
        let group_flush_seconds = seconds_histogram();
        registry.register(
            "commit_flush_seconds",
            "Time to make one commit group durable (flush / fsync), in seconds",
            group_flush_seconds.clone(),
        );
        let published = Family::<KindSector, Counter>::default();
        registry.register(
            "revocation_lists_published",
            "CRLs (kind crl) published, by sector",
            published.clone(),
        );
        let publish_seconds: Family<KindSector, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(seconds_histogram);
        registry.register(
            "revocation_list_publish_seconds",
            "Time to build, sign and write a CRL, in seconds",
            publish_seconds.clone(),
        );
        let published_bytes = Family::<KindSector, Gauge>::default();
        registry.register(
            "revocation_list_bytes",
            "Size of the latest CRL of a sector, in bytes",
            published_bytes.clone(),
        );
        let audit_size = Gauge::default();
        registry.register(
            "audit_tree_size",
            "Entries in the audit log's Merkle tree",
            audit_size.clone(),
        );
        let store_errors = Family::<Operation, Counter>::default();
        registry.register(
            "store_errors",
            "Store calls that failed (I/O, corruption, unreachable), by the work that made them",
            store_errors.clone(),
        );
        let est_requests = Family::<OperationStatus, Counter>::default();
        registry.register(
            "est_requests",
            "EST (RFC 7030) requests by operation and HTTP status",
            est_requests.clone(),
        );
        let v2x_http_requests = Family::<OperationStatus, Counter>::default();
        registry.register(
            "v2x_http_requests",
            "IEEE 1609.2.1 requests (/v2x/) by resource and HTTP status",
            v2x_http_requests.clone(),
        );
        let etsi_http_requests = Family::<OperationStatus, Counter>::default();
        registry.register(
            "etsi_http_requests",
            "ETSI TS 102 941 requests (/etsi/) by resource and HTTP status",
            etsi_http_requests.clone(),
        );
        Self {
            registry,
            enrollments,
            decisions,
            decision_outcomes,
            decide_seconds,
            commit_items,
            commit_seconds,
            group_items,
            group_transaction_seconds,
            group_flush_seconds,
            published,
            publish_seconds,
            published_bytes,
            audit_size,
            store_errors,
            est_requests,
            v2x_http_requests,
            etsi_http_requests,
            storage: std::sync::Mutex::new(None),
        }
    }

    /// One EST request: its operation (`cacerts`, ..., or `other` for a
    /// path that named none) and its HTTP status.
    pub(crate) fn est_request(&self, operation: &str, status: u16) {
        count_request(&self.est_requests, operation, status);
    }

    /// One IEEE 1609.2.1 request: its resource (`certificates`, ..., or
    /// `other` for a path naming none) and HTTP status. Nothing of the
    /// vehicle: resource and status only.
    pub(crate) fn v2x_http_request(&self, resource: &str, status: u16) {
        count_request(&self.v2x_http_requests, resource, status);
    }

    /// One ETSI TS 102 941 request: its resource (`enrolment`, ...,
    /// `getctl`, or `other`) and HTTP status. Nothing of the station.
    pub(crate) fn etsi_http_request(&self, resource: &str, status: u16) {
        count_request(&self.etsi_http_requests, resource, status);
    }

    /// One commit group of the group committer.
    pub(crate) fn commit_group(&self, stats: &trustca_store::CommitStats) {
        self.group_items.observe(stats.issuances as f64);
        self.group_transaction_seconds
            .observe(stats.commit.as_secs_f64());
        self.group_flush_seconds.observe(stats.flush.as_secs_f64());
        if stats.failed {
            self.store_error("commit_group");
        }
    }

    /// The store whose audit tree size is read at each scrape.
    pub(crate) fn watch_store(&self, storage: &Arc<dyn Storage>) {
        if let Ok(mut s) = self.storage.lock() {
            *s = Some(Arc::downgrade(storage));
        }
    }

    /// The text a scrape returns (reads the audit tree size first).
    pub fn encode(&self) -> String {
        let storage = self
            .storage
            .lock()
            .ok()
            .and_then(|s| s.as_ref().and_then(Weak::upgrade));
        if let Some(storage) = storage {
            match storage.audit_head() {
                Ok((size, _)) => {
                    self.audit_size.set(i64::try_from(size).unwrap_or(i64::MAX));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: audit head not readable");
                    self.store_error("metrics");
                }
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Observer for Metrics {
    fn enrollment(&self, sector: &str, outcome: &str) {
        self.enrollments
            .get_or_create(&SectorOutcome {
                sector: label(sector),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    fn decision(&self, outcome: &str, took: Duration) {
        match self.decision_outcomes.iter().find(|(o, _)| *o == outcome) {
            Some((_, series)) => {
                series.inc();
            }
            None => {
                self.decisions
                    .get_or_create(&Outcome {
                        outcome: outcome.to_owned(),
                    })
                    .inc();
            }
        }
        self.decide_seconds.observe(took.as_secs_f64());
    }

    fn commit(&self, items: usize, took: Duration) {
        self.commit_items.observe(items as f64);
        self.commit_seconds.observe(took.as_secs_f64());
    }

    fn published(&self, kind: &str, sector: &str, took: Duration, bytes: usize) {
        let labels = KindSector {
            kind: kind.to_owned(),
            sector: label(sector),
        };
        self.published.get_or_create(&labels).inc();
        self.publish_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.published_bytes
            .get_or_create(&labels)
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    fn store_error(&self, operation: &str) {
        self.store_errors
            .get_or_create(&Operation {
                operation: operation.to_owned(),
            })
            .inc();
    }
}

/// A sector label from request input: known sectors are short lower-case
/// names, so anything else is folded into one label instead of letting a
/// client grow the label set without bound.
fn label(sector: &str) -> String {
    let ok = !sector.is_empty()
        && sector.len() <= 32
        && sector
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        sector.to_owned()
    } else {
        "other".to_owned()
    }
}

/// Serves `GET /metrics` on `listener` until the registry is dropped.
pub(crate) fn spawn_endpoint(listener: TcpListener, metrics: &Arc<Metrics>) {
    let metrics = Arc::downgrade(metrics);
    tokio::spawn(async move {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(m) = metrics.upgrade() else { return };
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &m).await {
                    tracing::debug!(%remote, error = %e, "metrics request failed");
                }
            });
        }
    });
}

/// Reads one request head and answers it; the connection is then closed.
async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(REQUEST_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_REQUEST {
                return Ok(false);
            }
        }
    })
    .await
    .unwrap_or(Ok(false))?;
    if !complete {
        return respond(
            &mut stream,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
        )
        .await;
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, target) = (parts.next(), parts.next());
    match (method, target) {
        (Some(b"GET"), Some(b"/metrics")) => {
            let body = metrics.encode();
            respond(&mut stream, "200 OK", CONTENT_TYPE, body.as_bytes()).await
        }
        (Some(b"GET"), Some(_)) => {
            respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                b"only /metrics here\n",
            )
            .await
        }
        _ => {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                b"only GET /metrics\n",
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut tokio::net::TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}

/// Binds the metrics address (before the server changes any state, like
/// the main port).
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Listen(format!("cannot serve metrics on {addr}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_text() {
        let m = Metrics::new();
        m.enrollment("automotive", "issued");
        m.enrollment("<script>", "invalid_argument");
        m.decision("allow", Duration::from_millis(3));
        m.commit(12, Duration::from_millis(4));
        m.published("crl", "hems", Duration::from_millis(5), 321);
        m.store_error("commit");
        let text = m.encode();
        for want in [
            "trustca_enrollments_total{sector=\"automotive\",outcome=\"issued\"} 1",
            "trustca_enrollments_total{sector=\"other\",outcome=\"invalid_argument\"} 1",
            "trustca_decisions_total{outcome=\"allow\"} 1",
            // Every outcome a decision can have is a series from the start.
            "trustca_decisions_total{outcome=\"deny\"} 0",
            "trustca_decisions_total{outcome=\"error\"} 0",
            "trustca_decide_seconds_count 1",
            "trustca_commit_request_items_count 1",
            "trustca_revocation_list_bytes{kind=\"crl\",sector=\"hems\"} 321",
            "trustca_store_errors_total{operation=\"commit\"} 1",
            "trustca_audit_tree_size 0",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
    }
}
