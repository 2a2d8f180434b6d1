//! The ETSI TS 102 941 HTTP resources (`docs/v2x-etsi.md`): TS 102 941
//! messages are POSTed as `application/x-its-request` and answered as
//! `application/x-its-response` (TS 102 941 clause 6.3: HTTP, TLS
//! optional, the messages protect themselves):
//!
//! | resource | authority | body |
//! |---|---|---|
//! | `POST /etsi/ea/enrolment` | EA | `EnrolmentRequestMessage` |
//! | `POST /etsi/ea/authorization-validation` | EA | `AuthorizationValidationRequestMessage` |
//! | `POST /etsi/aa/authorization` | AA | `AuthorizationRequestMessage` |
//! | `GET /etsi/dc/getctl/<HashedId8>` | distribution centre | the root's `RcaCertificateTrustListMessage` |
//! | `GET /etsi/dc/getcrl/<HashedId8>` | distribution centre | the root's `CertificateRevocationListMessage` |
//! | `GET /etsi/dc/getectl/<HashedId8>` | distribution centre | a trust list manager's ECTL |
//!
//! The distribution centre's resources name the root (or TLM) by the hex
//! HashedId8 of its certificate and answer `application/octet-stream`.
//!
//! The protocol work is `trustca_etsi`'s; this module maps HTTP to it and
//! its refusals to statuses, in one place ([`status_of`]). A refusal the
//! authority can answer (any response code, a store failure included: the
//! authorities answer it `deniedrequest` inside the signed answer) is
//! `200` with the encrypted answer; a message it cannot decrypt (so no key
//! to answer under) is `400` with a plain-text reason. Bodies are read
//! with EST's reader, so with its bound and timeout. The AA's client of
//! its EA is [`HttpEaLink`]. Sockets and the connection limit are the
//! server's.

mod ea_link;
pub mod plain;

use std::sync::{Arc, OnceLock, RwLock};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use trustca_etsi::aa::AuthorizationAuthority;
use trustca_etsi::ea::{EnrolmentAuthority, Unanswerable};

use crate::est::{Answer, EstError, HttpCounters, read_body};

pub use ea_link::HttpEaLink;

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
#[derive(Default)]
pub struct EtsiHttp {
    /// The enrolment authority, if this process runs it.
    pub ea: Option<Arc<EnrolmentAuthority>>,
    /// The authorization authority, if this process runs it.
    pub aa: Option<Arc<AuthorizationAuthority>>,
    /// The trust lists, if this process is a distribution centre; replaced
    /// whole when the root re-issues them.
    pub lists: Option<RwLock<PublishedLists>>,
    /// A trust list manager's ECTL a distribution centre serves: (the
    /// TLM's HashedId8 hex, the signed ECTL), replaced when a new one is
    /// installed.
    pub ectl: RwLock<Option<(String, Bytes)>>,
    /// Where requests are counted (set once the process's metrics exist;
    /// a standalone AA or DC has none).
    pub metrics: OnceLock<Arc<dyn HttpCounters>>,
}

impl std::fmt::Debug for EtsiHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtsiHttp")
            .field("ea", &self.ea)
            .field("aa", &self.aa)
            .field("lists", &self.lists)
            .field("counted", &self.metrics.get().is_some())
            .finish_non_exhaustive()
    }
}

/// The resources, as metric labels (anything else is `other`).
fn resource_label(path: &str) -> &'static str {
    let under = |prefix: &str| path.starts_with(prefix);
    match path {
        ENROLMENT_PATH => "enrolment",
        VALIDATION_PATH => "authorization-validation",
        AUTHORIZATION_PATH => "authorization",
        _ if under(CTL_PREFIX) => "getctl",
        _ if under(CRL_PREFIX) => "getcrl",
        _ if under(ECTL_PREFIX) => "getectl",
        _ => "other",
    }
}

/// Why a request got no TS 102 941 answer; [`status_of`] gives each its
/// status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtsiRefusal {
    /// Nothing is served at that path here (404).
    #[error("{0}")]
    NotFound(&'static str),
    /// The resource takes the other method (405, with `Allow`).
    #[error("use {0}")]
    MethodNotAllowed(&'static str),
    /// The body is not `application/x-its-request` (415).
    #[error("the content type must be {REQUEST_TYPE}")]
    MediaType,
    /// The body could not be read within the bound and timeout (EST's
    /// reader and its statuses: 413, 408, 400).
    #[error(transparent)]
    Body(EstError),
    /// The authority could not decrypt the message, so it has no key to
    /// answer under (400).
    #[error("{0}")]
    Unanswerable(&'static str),
    /// The authority's task failed (500).
    #[error("the authority failed")]
    Failed,
}

/// The status of each refusal.
pub fn status_of(e: &EtsiRefusal) -> StatusCode {
    match e {
        EtsiRefusal::NotFound(_) => StatusCode::NOT_FOUND,
        EtsiRefusal::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        EtsiRefusal::MediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        EtsiRefusal::Body(e) => e.status(),
        EtsiRefusal::Unanswerable(_) => StatusCode::BAD_REQUEST,
        EtsiRefusal::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A refusal as a plain-text answer.
fn refused(e: &EtsiRefusal) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(format!("{e}\n"))));
    *r.status_mut() = status_of(e);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let EtsiRefusal::MethodNotAllowed(allowed) = e {
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allowed));
    }
    r
}

fn octets(content_type: &'static str, body: Bytes) -> Answer {
    let mut r = Response::new(Full::new(body));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
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
    /// Answers one request (and counts it, by resource and status).
    pub async fn answer(self: Arc<Self>, request: Request<Incoming>) -> Answer {
        let (parts, body) = request.into_parts();
        let answered = match self.trust_list(&parts.method, parts.uri.path()) {
            Some(lists) => lists,
            None => Arc::clone(&self).post(&parts, body).await,
        };
        let response = answered.unwrap_or_else(|e| refused(&e));
        if let Some(m) = self.metrics.get() {
            m.etsi_http_request(resource_label(parts.uri.path()), response.status().as_u16());
        }
        response
    }

    /// A `POST` to one of the authorities.
    async fn post(
        self: Arc<Self>,
        parts: &hyper::http::request::Parts,
        body: Incoming,
    ) -> Result<Answer, EtsiRefusal> {
        let route = match parts.uri.path() {
            ENROLMENT_PATH if self.ea.is_some() => Route::Enrolment,
            VALIDATION_PATH if self.ea.is_some() => Route::Validation,
            AUTHORIZATION_PATH if self.aa.is_some() => Route::Authorization,
            _ => return Err(EtsiRefusal::NotFound("no such ETSI resource here")),
        };
        if parts.method != Method::POST {
            return Err(EtsiRefusal::MethodNotAllowed("POST"));
        }
        let media = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(str::trim)
            .unwrap_or_default();
        if !media.eq_ignore_ascii_case(REQUEST_TYPE) {
            return Err(EtsiRefusal::MediaType);
        }
        let body = read_body(&parts.headers, body)
            .await
            .map_err(EtsiRefusal::Body)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // Signing, ECIES and the AA's call to its EA block: off the runtime.
        let message = tokio::task::spawn_blocking(move || self.dispatch(route, &body, now))
            .await
            .map_err(|_| EtsiRefusal::Failed)?
            .map_err(|Unanswerable(why)| EtsiRefusal::Unanswerable(why))?;
        Ok(octets(RESPONSE_TYPE, Bytes::from(message)))
    }

    /// A `GET` of a trust list, if the path names one.
    fn trust_list(&self, method: &Method, path: &str) -> Option<Result<Answer, EtsiRefusal>> {
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
            return Some(Err(EtsiRefusal::NotFound("no lists of that root here")));
        }
        if method != Method::GET {
            return Some(Err(EtsiRefusal::MethodNotAllowed("GET")));
        }
        let body = if ctl {
            lists.ctl.clone()
        } else {
            lists.crl.clone()
        };
        Some(Ok(octets("application/octet-stream", body)))
    }

    /// A `GET` of the ECTL of the TLM `name`.
    fn ectl(&self, method: &Method, name: &str) -> Result<Answer, EtsiRefusal> {
        let held = self.ectl.read().ok().and_then(|e| e.clone());
        let Some((_, body)) = held.filter(|(tlm, _)| name.eq_ignore_ascii_case(tlm)) else {
            return Err(EtsiRefusal::NotFound("no ECTL of that TLM here"));
        };
        if method != Method::GET {
            return Err(EtsiRefusal::MethodNotAllowed("GET"));
        }
        Ok(octets("application/octet-stream", body))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status() {
        let cases = [
            (EtsiRefusal::NotFound("x"), 404),
            (EtsiRefusal::MethodNotAllowed("POST"), 405),
            (EtsiRefusal::MediaType, 415),
            (EtsiRefusal::Body(EstError::TooLarge), 413),
            (EtsiRefusal::Body(EstError::Timeout), 408),
            (
                EtsiRefusal::Unanswerable("the message does not decrypt"),
                400,
            ),
            (EtsiRefusal::Failed, 500),
        ];
        for (refusal, status) in cases {
            let answer = refused(&refusal);
            assert_eq!(answer.status().as_u16(), status, "{refusal:?}");
            let allow = answer.headers().get(header::ALLOW);
            assert_eq!(allow.is_some(), status == 405, "{refusal:?}: Allow");
        }
    }
}
