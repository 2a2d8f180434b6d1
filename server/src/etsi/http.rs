//! The HTTP front end of the ETSI authorities: TS 102 941 messages are
//! POSTed as `application/x-its-request` and answered as
//! `application/x-its-response` (TS 102 941 clause 6.3: HTTP, TLS optional,
//! the messages protect themselves):
//!
//! | resource | authority | body |
//! |---|---|---|
//! | `POST /etsi/ea/enrolment` | EA | `EnrolmentRequestMessage` |
//! | `POST /etsi/ea/authorization-validation` | EA | `AuthorizationValidationRequestMessage` |
//! | `POST /etsi/aa/authorization` | AA | `AuthorizationRequestMessage` |
//! | `GET /etsi/dc/getctl/<HashedId8>` | distribution centre | the root's `RcaCertificateTrustListMessage` |
//! | `GET /etsi/dc/getcrl/<HashedId8>` | distribution centre | the root's `CertificateRevocationListMessage` |
//!
//! The distribution centre's resources name the root by the hex HashedId8
//! of its certificate and answer `application/octet-stream`.
//!
//! A refusal the authority can answer (any response code) is `200` with
//! the encrypted answer; a message it cannot decrypt (so no key to answer
//! under) is `400` with a plain-text reason. Bodies are limited to
//! [`crate::est::MAX_BODY_BYTES`] and read within the EST read timeout, connections to
//! [`MAX_CONNECTIONS`] at a time.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trustca_etsi::EtsiError;
use trustca_etsi::aa::{AuthorizationAuthority, EaLink};
use trustca_etsi::ea::{EnrolmentAuthority, Unanswerable};

use crate::est::{EstError, REQUEST_READ_TIMEOUT, read_body};

/// The media type of requests.
pub const REQUEST_TYPE: &str = "application/x-its-request";
/// The media type of answers.
pub const RESPONSE_TYPE: &str = "application/x-its-response";
/// The EA's enrolment resource.
pub const ENROLMENT_PATH: &str = "/etsi/ea/enrolment";
/// The EA's authorization validation resource (for AAs).
pub const VALIDATION_PATH: &str = "/etsi/ea/authorization-validation";
/// The AA's authorization resource.
pub const AUTHORIZATION_PATH: &str = "/etsi/aa/authorization";
/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 256;
/// How long the AA waits for its EA.
const EA_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer the AA reads from an EA.
const MAX_EA_ANSWER: usize = 64 * 1024;

type Answer = Response<Full<Bytes>>;

/// The distribution centre's path prefix of CTLs.
pub const CTL_PREFIX: &str = "/etsi/dc/getctl/";
/// The distribution centre's path prefix of CRLs.
pub const CRL_PREFIX: &str = "/etsi/dc/getcrl/";
/// The distribution centre's path prefix of a trust list manager's ECTL
/// (by the TLM's HashedId8).
pub const ECTL_PREFIX: &str = "/etsi/dc/getectl/";

/// A root's signed lists, as the distribution centre serves them.
#[derive(Debug, Clone)]
pub struct PublishedLists {
    /// HashedId8 of the root certificate, lower-case hex.
    pub root: String,
    /// The signed CTL.
    pub ctl: Bytes,
    /// The signed CRL.
    pub crl: Bytes,
}

/// The authorities one listener serves.
#[derive(Debug, Default)]
pub struct EtsiHttp {
    /// The enrolment authority, if this process runs it.
    pub ea: Option<Arc<EnrolmentAuthority>>,
    /// The authorization authority, if this process runs it.
    pub aa: Option<Arc<AuthorizationAuthority>>,
    /// The trust lists, if this process is a distribution centre; replaced
    /// whole when the root re-issues them.
    pub lists: Option<std::sync::RwLock<PublishedLists>>,
    /// A trust list manager's ECTL a distribution centre serves: (the
    /// TLM's HashedId8 hex, the signed ECTL), replaced when a new one is
    /// installed.
    pub ectl: std::sync::RwLock<Option<(String, Bytes)>>,
}

fn plain(status: StatusCode, text: &str) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn its_response(message: Vec<u8>) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(message)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(RESPONSE_TYPE),
    );
    r
}

/// Which engine answers a resource.
#[derive(Clone, Copy)]
enum Route {
    Enrolment,
    Validation,
    Authorization,
}

impl EtsiHttp {
    /// Answers one request.
    pub async fn answer(self: Arc<Self>, request: Request<Incoming>) -> Answer {
        let (parts, body) = request.into_parts();
        if let Some(answer) = self.trust_list(&parts.method, parts.uri.path()) {
            return answer;
        }
        let route = match parts.uri.path() {
            ENROLMENT_PATH if self.ea.is_some() => Route::Enrolment,
            VALIDATION_PATH if self.ea.is_some() => Route::Validation,
            AUTHORIZATION_PATH if self.aa.is_some() => Route::Authorization,
            _ => return plain(StatusCode::NOT_FOUND, "no such ETSI resource here"),
        };
        if parts.method != Method::POST {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "use POST");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        let media = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if !media.eq_ignore_ascii_case(REQUEST_TYPE) {
            return plain(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("the content type must be {REQUEST_TYPE}"),
            );
        }
        let body = match read_body(&parts.headers, body).await {
            Ok(b) => b,
            Err(e @ EstError::TooLarge) => {
                return plain(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string());
            }
            Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let this = Arc::clone(&self);
        // Signing, ECIES and the AA's call to its EA block: off the runtime.
        let answered = tokio::task::spawn_blocking(move || this.dispatch(route, &body, now)).await;
        match answered {
            Ok(Ok(message)) => its_response(message),
            Ok(Err(Unanswerable(why))) => plain(StatusCode::BAD_REQUEST, why),
            Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "the authority failed"),
        }
    }

    /// A `GET` of a trust list, if the path names one.
    fn trust_list(&self, method: &Method, path: &str) -> Option<Answer> {
        if let Some(name) = path.strip_prefix(ECTL_PREFIX) {
            return Some(self.ectl(method, name));
        }
        let (name, ctl) = match (path.strip_prefix(CTL_PREFIX), path.strip_prefix(CRL_PREFIX)) {
            (Some(name), _) => (name, true),
            (_, Some(name)) => (name, false),
            _ => return None,
        };
        let lists = self.lists.as_ref()?.read().ok()?;
        if !name.eq_ignore_ascii_case(&lists.root) {
            return Some(plain(StatusCode::NOT_FOUND, "no lists of that root here"));
        }
        if method != Method::GET {
            return Some(plain(StatusCode::METHOD_NOT_ALLOWED, "use GET"));
        }
        let body = if ctl {
            lists.ctl.clone()
        } else {
            lists.crl.clone()
        };
        let mut r = Response::new(Full::new(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        Some(r)
    }

    /// A `GET` of the ECTL of the TLM `name`.
    fn ectl(&self, method: &Method, name: &str) -> Answer {
        let held = self.ectl.read().ok().and_then(|e| e.clone());
        let Some((_, body)) = held.filter(|(tlm, _)| name.eq_ignore_ascii_case(tlm)) else {
            return plain(StatusCode::NOT_FOUND, "no ECTL of that TLM here");
        };
        if method != Method::GET {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET");
        }
        let mut r = Response::new(Full::new(body));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        r
    }

    fn dispatch(&self, route: Route, body: &[u8], now: i64) -> Result<Vec<u8>, Unanswerable> {
        let missing = Unanswerable("this authority does not run here");
        let (message, code) = match route {
            Route::Enrolment => {
                let a = self
                    .ea
                    .as_ref()
                    .ok_or(missing)?
                    .answer_enrolment(body, now)?;
                (a.message, format!("{:?}", a.code))
            }
            Route::Validation => {
                let a = self
                    .ea
                    .as_ref()
                    .ok_or(missing)?
                    .answer_validation(body, now)?;
                (a.message, format!("{:?}", a.code))
            }
            Route::Authorization => {
                let a = self.aa.as_ref().ok_or(missing)?.answer(body, now)?;
                (a.message, format!("{:?}", a.code))
            }
        };
        // The code only: no identifier of a station or ticket is logged.
        tracing::info!(code = %code, "ETSI TS 102 941 request answered");
        Ok(message)
    }
}

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

/// The AA's way to an EA over HTTP: `POST` to the EA's validation
/// resource (its CTL `aaAccessPoint`), one connection per request.
#[derive(Debug, Clone)]
pub struct HttpEaLink {
    /// `HOST:PORT` of the EA's listener (resolved at each request).
    pub host: String,
    /// The resource's path.
    pub path: String,
}

impl HttpEaLink {
    /// The link to the EA's listener at `addr`, at [`VALIDATION_PATH`].
    pub fn local(addr: SocketAddr) -> Self {
        Self {
            host: addr.to_string(),
            path: VALIDATION_PATH.into(),
        }
    }

    /// The link to an `aaAccessPoint` URL (`http://HOST[:PORT]/PATH`; the
    /// messages protect themselves, so the AA's link is plain HTTP).
    pub fn from_url(url: &str) -> Result<Self, EtsiError> {
        let bad = || {
            EtsiError::Profile(format!(
                "EA access point {url:?} is not http://HOST[:PORT]/PATH"
            ))
        };
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        if authority.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let host = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            host,
            path: format!("/{path}"),
        })
    }

    fn connect(&self) -> std::io::Result<std::net::TcpStream> {
        use std::net::ToSocketAddrs;
        let mut last = std::io::Error::other("the name has no address");
        for addr in self.host.to_socket_addrs()? {
            match std::net::TcpStream::connect_timeout(&addr, EA_TIMEOUT) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl EaLink for HttpEaLink {
    fn validate(&self, message: &[u8]) -> Result<Vec<u8>, EtsiError> {
        let fail = |what: &str| EtsiError::Profile(format!("EA at {}: {what}", self.host));
        let mut stream = self.connect().map_err(|e| fail(&e.to_string()))?;
        stream
            .set_read_timeout(Some(EA_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(EA_TIMEOUT)))
            .map_err(|e| fail(&e.to_string()))?;
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {REQUEST_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            message.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(message))
            .map_err(|e| fail(&e.to_string()))?;
        let mut raw = Vec::new();
        stream
            .take((MAX_EA_ANSWER + 4096) as u64)
            .read_to_end(&mut raw)
            .map_err(|e| fail(&e.to_string()))?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| fail("no HTTP header"))?;
        let head = std::str::from_utf8(&raw[..split]).map_err(|_| fail("header not UTF-8"))?;
        if !head.starts_with("HTTP/1.1 200") {
            return Err(fail(head.lines().next().unwrap_or("no status line")));
        }
        let body = &raw[split + 4..];
        let declared = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        if declared != Some(body.len()) || body.len() > MAX_EA_ANSWER {
            return Err(fail("answer length does not match"));
        }
        Ok(body.to_vec())
    }
}
