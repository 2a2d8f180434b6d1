//! The IEEE 1609.2.1 HTTPS resources (`docs/v2x-1609dot2dot1.md`), served
//! on the HTTPS listener beside EST: the enrolment CA's
//! `POST /v2x/eca/enrolment-certificate` (mutual TLS with the vehicle's
//! X.509 device credential), and the registration authority's
//! `GET /v2x/certificates`, `GET /v2x/crl` (the linkage CRL), `GET
//! /v2x/crl/<crlSeries>` (the CA's hash CRLs, where the CA runs),
//! `POST /v2x/provision-pseudonym-certificate-batch` and
//! `GET /v2x/download` (`Download-Req` header). The protocol work is in
//! `trustca_scms::{ee_interface, eca_interface}`; this module maps HTTP to
//! it and its refusals to statuses, in one place ([`status_of`]). Ticket
//! downloads are stored ZIP files ([`stored_zip`]). The server builds the
//! authorities behind it and serves it on its HTTPS listener.

pub mod stored_zip;

use std::sync::Arc;

use base64::Engine as _;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use trustca_model::{AuthenticatedPeer, CertificateKind};
use trustca_scms::{EcaIdentity, EeInterface, EeRefusal, PseudonymCaApi, ScmsError};
use trustca_v2x::Certificate;

use crate::est::{Answer, CallerCheck, EstError, HttpCounters, HttpsService, read_body};
use crate::v2x::{EnrolmentRefused, HashCrls};

/// Path prefix of every 1609.2.1 resource.
pub const PREFIX: &str = "/v2x/";
/// `Download-Req` values longer than this are refused (a request is about
/// 700 octets, 1 KiB in Base64).
const MAX_DOWNLOAD_REQ: usize = 8 * 1024;
const OCTETS: &str = "application/octet-stream";

/// The enrolment CA behind `POST /v2x/eca/enrolment-certificate`.
pub struct EcaRoute {
    /// The EA's key and certificate.
    pub ea: Arc<(trustca_ca::v2x_ca::OwnedV2xSigner, Certificate)>,
    /// The V2X root.
    pub root: Certificate,
    /// The sector whose device credentials may enrol (the ticket profile's).
    pub sector: String,
    /// The server's caller check (revoked credentials, and devices of a
    /// sector CA the root revoked, may not enrol).
    pub callers: Arc<dyn CallerCheck>,
    /// Where each issued enrolment certificate is recorded (for the hash
    /// CRL when its vehicle is revoked).
    pub hash_crls: Arc<dyn HashCrls>,
}

impl std::fmt::Debug for EcaRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcaRoute")
            .field("sector", &self.sector)
            .finish_non_exhaustive()
    }
}

/// How long a fetched linkage CRL is served before it is fetched again:
/// every fetch in the CA's process signs a new CRL with a new number, so
/// vehicles polling `/v2x/crl` must not each cause one. A revocation
/// reaches this download within this time (its CRL is valid far longer).
const CRL_CACHE_SECS: i64 = 60;

/// The 1609.2.1 resources one process serves.
#[derive(Default)]
pub struct V2xHttp {
    /// The registration authority's resources.
    pub ra: Option<Arc<EeInterface>>,
    /// Where the newest linkage CRL comes from.
    pub crl: Option<Arc<dyn PseudonymCaApi>>,
    /// The enrolment CA's resource.
    pub eca: Option<EcaRoute>,
    /// The CA's hash CRLs (`GET /v2x/crl/<crlSeries>`), in the CA's process.
    pub hash_crls: Option<Arc<dyn HashCrls>>,
    /// The last linkage CRL fetched and when (`None`: none published).
    pub crl_cache: std::sync::Mutex<Option<(i64, Option<Bytes>)>>,
    /// Where requests are counted (set once the process's metrics exist).
    pub metrics: std::sync::OnceLock<Arc<dyn HttpCounters>>,
}

/// The resources, as metric labels (anything else is `other`).
const RESOURCES: [&str; 7] = [
    "eca/enrolment-certificate",
    "provision-pseudonym-certificate-batch",
    "certificates",
    "crl",
    "crl/2",
    "crl/3",
    "download",
];

/// The `crlSeries` of `GET crl/<series>` (a hash CRL).
fn hash_crl_series(route: &str) -> Option<u16> {
    route.strip_prefix("crl/")?.parse().ok()
}

/// The metric label of `path`: one of [`RESOURCES`] or `other`.
pub fn resource_label(path: &str) -> &'static str {
    let route = path.strip_prefix(PREFIX).unwrap_or_default();
    RESOURCES
        .iter()
        .find(|r| **r == route)
        .copied()
        .unwrap_or("other")
}

impl std::fmt::Debug for V2xHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V2xHttp")
            .field("ra", &self.ra.is_some())
            .field("eca", &self.eca.is_some())
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One refusal: its status and a plain sentence.
fn plain(status: StatusCode, message: &str) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn octets(content_type: &'static str, body: Vec<u8>) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The status of each refusal (`docs/v2x-1609dot2dot1.md`, "Errors").
pub fn status_of(e: &EeRefusal) -> StatusCode {
    match e {
        EeRefusal::Malformed(_) => StatusCode::BAD_REQUEST,
        EeRefusal::WrongRecipient => StatusCode::MISDIRECTED_REQUEST,
        EeRefusal::NotAuthenticated(_) => StatusCode::UNAUTHORIZED,
        EeRefusal::Forbidden(_) => StatusCode::FORBIDDEN,
        EeRefusal::Conflict(_) => StatusCode::CONFLICT,
        EeRefusal::NotFound => StatusCode::NOT_FOUND,
        EeRefusal::NotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
        // The store or another authority failing answers as it does on
        // every other interface (full or unavailable: 503, damaged: 500).
        EeRefusal::Internal(e @ (ScmsError::Store(_) | ScmsError::Remote { .. })) => {
            crate::http_status(e.class())
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refused(e: &EeRefusal) -> Answer {
    let status = status_of(e);
    if status.is_server_error() {
        tracing::warn!(error = %e, "IEEE 1609.2.1 request failed");
    }
    let mut r = plain(status, &e.to_string());
    if let EeRefusal::NotReady { retry_after_secs } = e {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(30u64));
    }
    r
}

/// Runs CPU-heavy protocol work off the I/O threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EeRefusal> + Send + 'static,
) -> Result<T, EeRefusal> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| EeRefusal::Internal(ScmsError::Response(format!("task failed: {e}"))))?
}

impl V2xHttp {
    /// Answers a request under [`PREFIX`]; `body` is the POST body, read
    /// within the listener's limit.
    pub async fn respond(&self, peer: &AuthenticatedPeer, parts: &Parts, body: Bytes) -> Answer {
        let path = parts.uri.path();
        let route = path.strip_prefix(PREFIX).unwrap_or_default();
        let expected = if matches!(
            route,
            "eca/enrolment-certificate" | "provision-pseudonym-certificate-batch"
        ) {
            Method::POST
        } else {
            Method::GET
        };
        let known = matches!(
            route,
            "eca/enrolment-certificate"
                | "provision-pseudonym-certificate-batch"
                | "certificates"
                | "crl"
                | "download"
        ) || hash_crl_series(route).is_some();
        if !known {
            return plain(
                StatusCode::NOT_FOUND,
                &format!("no IEEE 1609.2.1 resource {path}"),
            );
        }
        if parts.method != expected {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("{path} takes {expected}"),
            );
            let allow = if expected == Method::POST {
                "POST"
            } else {
                "GET"
            };
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            return r;
        }
        let result = match route {
            "eca/enrolment-certificate" => self.enrol(peer, body).await,
            "certificates" => self
                .ra()
                .map(|ra| octets(OCTETS, ra.certificate_chain().to_vec())),
            "crl" => self.crl().await,
            r if hash_crl_series(r).is_some() => self.hash_crl(r).await,
            "provision-pseudonym-certificate-batch" => match self.ra() {
                Ok(ra) => {
                    let ra = Arc::clone(ra);
                    blocking(move || ra.certificate_request(&body, now()))
                        .await
                        .map(|ack| octets(OCTETS, ack))
                }
                Err(e) => Err(e),
            },
            _ => self.download(parts).await,
        };
        result.unwrap_or_else(|e| refused(&e))
    }

    fn ra(&self) -> Result<&Arc<EeInterface>, EeRefusal> {
        self.ra.as_ref().ok_or(EeRefusal::NotFound)
    }

    async fn crl(&self) -> Result<Answer, EeRefusal> {
        let t = now();
        let cached = self
            .crl_cache
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .filter(|(at, _)| t - at < CRL_CACHE_SECS);
        let crl = match cached {
            Some((_, crl)) => crl,
            None => {
                let pca = Arc::clone(self.crl.as_ref().ok_or(EeRefusal::NotFound)?);
                let crl = blocking(move || match pca.current_crl(t) {
                    Ok(crl) => Ok(Some(Bytes::from(crl.as_bytes().to_vec()))),
                    Err(ScmsError::NotFound(_)) => Ok(None),
                    Err(e) => Err(EeRefusal::Internal(e)),
                })
                .await?;
                if let Ok(mut c) = self.crl_cache.lock() {
                    *c = Some((t, crl.clone()));
                }
                crl
            }
        };
        match crl {
            Some(c) => {
                let mut r = Response::new(Full::new(c));
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(OCTETS));
                Ok(r)
            }
            None => Ok(plain(
                StatusCode::NOT_FOUND,
                "no linkage CRL has been published",
            )),
        }
    }

    /// `GET crl/<crlSeries>`: the CA's hash CRL of that series, signed on
    /// change and served from memory between changes (see `hash_crls.rs`);
    /// at a separated RA, the newest copy it holds.
    async fn hash_crl(&self, route: &str) -> Result<Answer, EeRefusal> {
        let series = hash_crl_series(route).ok_or(EeRefusal::NotFound)?;
        let crl = match (&self.hash_crls, &self.ra) {
            (Some(hash_crls), _) => {
                let hash_crls = Arc::clone(hash_crls);
                blocking(move || match hash_crls.current(series) {
                    Ok(crl) => Ok(Some(crl)),
                    Err(ScmsError::NotFound(_)) => Ok(None),
                    Err(e) => Err(EeRefusal::Internal(e)),
                })
                .await?
            }
            (None, Some(ra)) => ra.hash_crl(series)?,
            (None, None) => None,
        };
        Ok(match crl {
            Some(c) => octets(OCTETS, c.as_bytes().to_vec()),
            None => plain(
                StatusCode::NOT_FOUND,
                &format!("no hash CRL of crlSeries {series} is published here"),
            ),
        })
    }

    async fn download(&self, parts: &Parts) -> Result<Answer, EeRefusal> {
        let ra = Arc::clone(self.ra()?);
        let header = parts
            .headers
            .get("download-req")
            .ok_or_else(|| EeRefusal::Malformed("the Download-Req header is missing".into()))?
            .as_bytes();
        if header.len() > MAX_DOWNLOAD_REQ {
            return Err(EeRefusal::Malformed(
                "the Download-Req header is too long".into(),
            ));
        }
        let request = base64::engine::general_purpose::STANDARD
            .decode(header)
            .map_err(|_| EeRefusal::Malformed("Download-Req is not Base64".into()))?;
        let entries = blocking(move || ra.download(&request, now())).await?;
        let zip = stored_zip::write(&entries)
            .map_err(|e| EeRefusal::Internal(ScmsError::Response(e.to_string())))?;
        Ok(octets("application/zip", zip))
    }

    async fn enrol(&self, peer: &AuthenticatedPeer, body: Bytes) -> Result<Answer, EeRefusal> {
        let eca = self.eca.as_ref().ok_or(EeRefusal::NotFound)?;
        let credential = match eca.callers.check(
            "/v2x/eca/enrolment-certificate",
            &[CertificateKind::LongTerm],
            peer,
        ) {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Err(EeRefusal::NotAuthenticated(
                    "connect with the vehicle's X.509 device credential as TLS client certificate"
                        .into(),
                ));
            }
            Err(status) => return Err(EeRefusal::Forbidden(status.message().to_owned())),
        };
        let vehicle = crate::v2x::vehicle_of(&credential, &eca.sector)
            .map_err(|s| EeRefusal::Forbidden(s.message().to_owned()))?;
        let (ea, root) = (Arc::clone(&eca.ea), eca.root.clone());
        let hash_crls = Arc::clone(&eca.hash_crls);
        let answer = blocking(move || {
            hash_crls.refuse_revoked(&vehicle.id).map_err(|e| match e {
                EnrolmentRefused::Revoked => EeRefusal::Forbidden(EnrolmentRefused::REVOKED.into()),
                EnrolmentRefused::Failed(e) => EeRefusal::Internal(e),
            })?;
            let identity = EcaIdentity {
                certificate: &ea.1,
                root: &root,
                signer: &ea.0,
            };
            let issue = |key| {
                let cert = trustca_ca::v2x_ca::issue_enrolment_credential(
                    &ea,
                    &vehicle.id,
                    key,
                    vehicle.level,
                    time::OffsetDateTime::now_utc(),
                )
                .map_err(|e| ScmsError::Config(e.to_string()))?;
                // Recorded before it is handed out, so that revoking the
                // vehicle always finds it.
                hash_crls.record_issued(&vehicle.id, &cert)?;
                Ok(cert)
            };
            trustca_scms::answer_enrolment_request(&body, &vehicle, &identity, issue, now())
        })
        .await?;
        Ok(octets(OCTETS, answer))
    }
}

/// The 1609.2.1 resources served over the EST stack's HTTPS listener: the
/// body read with the same bound and timeout, one log line and metric per
/// request.
#[tonic::async_trait]
impl HttpsService for V2xHttp {
    async fn answer(&self, peer: &AuthenticatedPeer, request: Request<Incoming>) -> Answer {
        let started = std::time::Instant::now();
        let (parts, body) = request.into_parts();
        let response = if !parts.uri.path().starts_with(PREFIX) {
            crate::est::refusal(EstError::NotFound(crate::est::printable(parts.uri.path())))
        } else {
            let body = if parts.method == Method::POST {
                read_body(&parts.headers, body).await
            } else {
                Ok(Bytes::new())
            };
            match body {
                Ok(body) => self.respond(peer, &parts, body).await,
                Err(e) => crate::est::refusal(e),
            }
        };
        if let Some(m) = self.metrics.get() {
            m.v2x_http_request(resource_label(parts.uri.path()), response.status().as_u16());
        }
        tracing::info!(
            path = %crate::est::printable(parts.uri.path()),
            remote = %peer.remote.map(|r| r.to_string()).unwrap_or_default(),
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "IEEE 1609.2.1 request"
        );
        response
    }
}
