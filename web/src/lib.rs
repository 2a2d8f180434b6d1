//! The web front end for people (issue 22 §2), served by `trustca serve
//! --web-listen ADDR` over HTTPS with the server's TLS identity:
//!
//! - **public label pages** per registered model (`/label/<sector>/<manufacturer>/<model>`)
//!   and per device (`/device/<label id>`, an opaque id that names no
//!   serial, [`label_id`]), with a QR code (`…/qr.svg`, `…/qr.png`) that
//!   opens them and a JSON variant at the same URL (`Accept:
//!   application/json`). What a sector shows is [`policy::WebPolicy`]
//!   (`policies/web.toml`). They work without JavaScript and are rate
//!   limited per client address;
//! - `/labels/device?urn=` (a manufacturer's or operator's TLS client
//!   certificate): a device's label id, page URL and QR code paths, to
//!   print on the label; `/lookup?urn=` for sectors whose policy allows
//!   lookup by serial.
//!
//! The crate knows no TLS: the server hands each request with the
//! caller's [`AuthenticatedPeer`] (verified chain, not revoked) to
//! [`WebApp::answer`]. It reads through the store's engines only.
#![forbid(unsafe_code)]

pub mod cache;
pub mod console;
pub mod html;
pub mod i18n;
pub mod label_id;
pub mod limits;
pub mod policy;
pub mod public;
pub mod qr;
pub mod render;
pub mod respond;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;

use hyper::header::{self, HeaderMap};
use hyper::{Method, Request, StatusCode};
use trustca_model::{AuthenticatedPeer, CertificateKind, DeviceIdentity};
use trustca_store::Storage;

use crate::i18n::Lang;
use crate::label_id::LabelIds;
use crate::limits::RateLimiter;
use crate::policy::WebPolicy;
use crate::respond::{Answer, Cache, param, query_pairs, refusal};

pub use crate::respond::Answer as WebAnswer;

/// Errors of the web front end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// `web.toml` does not parse or names what does not exist.
    #[error("{file}: {reason}")]
    Policy {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// A file of the web front end cannot be read or written.
    #[error("{0}")]
    Io(String),
    /// The store could not be read.
    #[error("store: {0}")]
    Store(#[from] trustca_store::StoreError),
    /// A QR code could not be made.
    #[error("QR code: {0}")]
    Qr(String),
}

/// The web front end's state.
#[derive(Debug, Clone)]
pub struct WebApp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: Arc<dyn Storage>,
    /// `web.toml` in force: what each sector shows (replaced on a policy
    /// reload through a [`PolicySlot`]).
    policy: Arc<std::sync::RwLock<Arc<WebPolicy>>>,
    ids: LabelIds,
    base_url: String,
    limiter: Arc<RateLimiter>,
    /// The console's buckets: by session, or by address before sign-in.
    console_limiter: Arc<RateLimiter<String>>,
    sessions: Arc<console::session::Sessions>,
    data: PathBuf,
    audit_key: Option<Vec<u8>>,
    systems: Option<Arc<dyn console::systems::SystemSource>>,
    pages: Arc<cache::PageCache>,
    /// The sectors whose level distribution is sampled daily.
    sectors: Vec<String>,
}

/// The `web.toml` a running front end serves, replaceable on a policy
/// reload: what each sector shows, the rate limits and the session and
/// login link lengths change from the next request, and cached pages are
/// dropped. The base URL stays as at start (printed labels carry it).
#[derive(Debug, Clone)]
pub struct PolicySlot {
    policy: Arc<std::sync::RwLock<Arc<WebPolicy>>>,
    pages: Arc<cache::PageCache>,
    limiter: Arc<RateLimiter>,
    console_limiter: Arc<RateLimiter<String>>,
    sessions: Arc<console::session::Sessions>,
}

impl PolicySlot {
    /// Serves `policy` from the next request on.
    pub fn replace(&self, policy: WebPolicy) {
        self.limiter
            .set_per_minute(policy.public.requests_per_minute);
        self.console_limiter
            .set_per_minute(policy.console.requests_per_minute);
        self.sessions.set_lengths(
            Duration::from_secs(u64::from(policy.console.login_link_seconds)),
            Duration::from_secs(60 * u64::from(policy.console.session_minutes)),
        );
        *self
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
        self.pages.clear();
    }
}

/// What the front end is built from.
#[derive(Debug)]
#[non_exhaustive]
pub struct WebSetup {
    /// The store it reads.
    pub storage: Arc<dyn Storage>,
    /// `web.toml`.
    pub policy: WebPolicy,
    /// The label id key.
    pub ids: LabelIds,
    /// What QR codes open unless the policy names a `base_url`.
    pub base_url: String,
    /// The data directory (CRL and snapshot files, for their freshness).
    pub data: PathBuf,
    /// The audit key's public key, to check tree head signatures.
    pub audit_key: Option<Vec<u8>>,
    /// Systems of linked devices for the console.
    pub systems: Option<Arc<dyn console::systems::SystemSource>>,
    /// The sectors whose level distribution is sampled daily.
    pub sectors: Vec<String>,
}

impl WebSetup {
    /// A setup with no audit key.
    pub fn new(
        storage: Arc<dyn Storage>,
        policy: WebPolicy,
        ids: LabelIds,
        base_url: &str,
        data: PathBuf,
    ) -> Self {
        Self {
            storage,
            policy,
            ids,
            base_url: base_url.to_owned(),
            data,
            audit_key: None,
            systems: None,
            sectors: Vec::new(),
        }
    }

    /// Samples the level distribution of `sectors` daily
    /// ([`WebApp::spawn_history_sampler`]).
    pub fn with_sectors(mut self, sectors: Vec<String>) -> Self {
        self.sectors = sectors;
        self
    }

    /// Shows the systems of `source` on the console.
    pub fn with_systems(mut self, source: Arc<dyn console::systems::SystemSource>) -> Self {
        self.systems = Some(source);
        self
    }

    /// Checks tree head signatures against `key`.
    pub fn with_audit_key(mut self, key: Vec<u8>) -> Self {
        self.audit_key = Some(key);
        self
    }
}

/// Largest request body read (console forms are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 4096;

/// What a request is, read once.
struct Asked {
    method: Method,
    path: String,
    /// The path with its query, for the language switch.
    path_and_query: String,
    pairs: Vec<(String, String)>,
    lang: Lang,
    json: bool,
}

impl Asked {
    fn read(parts: &hyper::http::request::Parts) -> Self {
        let pairs = query_pairs(parts.uri.query());
        let header =
            |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let lang = Lang::choose(param(&pairs, "lang"), header(header::ACCEPT_LANGUAGE));
        let kept: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| format!("{}={}", html::url_component(k), html::url_component(v)))
            .collect();
        let path = parts.uri.path().to_owned();
        let path_and_query = if kept.is_empty() {
            path.clone()
        } else {
            format!("{path}?{}", kept.join("&"))
        };
        Self {
            method: parts.method.clone(),
            path,
            path_and_query,
            pairs,
            lang,
            json: wants_json(&parts.headers),
        }
    }

    fn refuse(&self, status: StatusCode, message: &str) -> Answer {
        refusal(status, self.json, self.lang, &self.path_and_query, message)
    }

    /// A public page (live state: caches must ask again).
    fn page(&self, title: &str, body: &str) -> Answer {
        respond::html(
            StatusCode::OK,
            self.lang,
            title,
            &self.path_and_query,
            body,
            None,
            Cache::Revalidate,
        )
    }

    /// The path's segments after `prefix`, percent-decoded, or the refusal.
    fn segments(&self, prefix: &str) -> Result<Vec<String>, Box<Answer>> {
        segments(&self.path, prefix).ok_or_else(|| {
            Box::new(self.refuse(StatusCode::BAD_REQUEST, "the path does not decode as UTF-8"))
        })
    }
}

/// `Accept` names JSON before (or without) HTML.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match (accept.find("application/json"), accept.find("text/html")) {
        (Some(j), Some(h)) => j < h,
        (Some(_), None) => true,
        _ => false,
    }
}

impl WebApp {
    /// The front end of `setup`; the policy's `base_url` wins over the setup's.
    pub fn new(setup: WebSetup) -> Self {
        let WebSetup {
            storage,
            policy,
            ids,
            base_url,
            data,
            audit_key,
            systems,
            sectors,
        } = setup;
        let base_url = if policy.base_url.is_empty() {
            base_url.trim_end_matches('/').to_owned()
        } else {
            policy.base_url.clone()
        };
        let sessions = console::session::Sessions::new(
            Duration::from_secs(u64::from(policy.console.login_link_seconds)),
            Duration::from_secs(60 * u64::from(policy.console.session_minutes)),
        );
        Self {
            inner: Arc::new(Inner {
                storage,
                limiter: Arc::new(RateLimiter::new(policy.public.requests_per_minute)),
                console_limiter: Arc::new(RateLimiter::new(policy.console.requests_per_minute)),
                policy: Arc::new(std::sync::RwLock::new(Arc::new(policy))),
                ids,
                base_url,
                sessions: Arc::new(sessions),
                data,
                audit_key,
                systems,
                pages: Arc::default(),
                sectors,
            }),
        }
    }

    /// Samples the level distribution of every sector now and then
    /// whenever the change log grew, checked every
    /// [`console::history::SAMPLE_EVERY`], until the app is dropped.
    pub fn spawn_history_sampler(&self) {
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut sampled_at: Option<(u64, time::Date)> = None;
            loop {
                let Some(app) = inner.upgrade() else { return };
                let done =
                    tokio::task::spawn_blocking(move || app.sample_history(sampled_at)).await;
                match done {
                    Ok(Ok(at)) => sampled_at = Some(at),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "sampling the level distribution failed")
                    }
                    Err(e) => tracing::warn!(error = %e, "level sampling task failed"),
                }
                tokio::time::sleep(console::history::SAMPLE_EVERY).await;
            }
        });
    }

    /// Where a policy reload puts a new `web.toml` for this app (it holds
    /// neither the app nor its store).
    pub fn policy_slot(&self) -> PolicySlot {
        PolicySlot {
            policy: Arc::clone(&self.inner.policy),
            pages: Arc::clone(&self.inner.pages),
            limiter: Arc::clone(&self.inner.limiter),
            console_limiter: Arc::clone(&self.inner.console_limiter),
            sessions: Arc::clone(&self.inner.sessions),
        }
    }

    /// What QR codes open.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The label id of a device (what its QR code carries).
    pub fn label_id(&self, identity_key: &str) -> String {
        self.inner.ids.id_for(identity_key)
    }

    /// Answers one request from `peer` (logged at debug level).
    pub async fn answer<B>(&self, peer: &AuthenticatedPeer, request: Request<B>) -> Answer
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let head = request.method() == Method::HEAD;
        let answer = self.answer_with_body(peer, request).await;
        if !head {
            return answer;
        }
        // HEAD: the GET answer's headers without its body (HTTP/2 refuses a
        // HEAD answer that carries data).
        let (mut parts, _) = answer.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        hyper::Response::from_parts(parts, http_body_util::Full::new(bytes::Bytes::new()))
    }

    async fn answer_with_body<B>(&self, peer: &AuthenticatedPeer, request: Request<B>) -> Answer
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let asked = Asked::read(&parts);
        let console = asked.path == "/console" || asked.path.starts_with("/console/");
        if !console
            && let Some(ip) = peer.remote.map(|r| r.ip())
            && let Err(wait) = self.inner.limiter.take(ip, Instant::now())
        {
            return respond::too_many(wait);
        }
        if console
            && let Err(wait) = self.inner.console_limiter.take(
                self.inner.console_bucket(&parts.headers, peer),
                Instant::now(),
            )
        {
            return respond::too_many(wait);
        }
        if !console && !matches!(asked.method, Method::GET | Method::HEAD) {
            return respond::method_not_allowed("GET, HEAD");
        }
        let body = if asked.method == Method::POST {
            match read_body(body).await {
                Ok(b) => b,
                Err(refused) => return *refused,
            }
        } else {
            bytes::Bytes::new()
        };
        let cached = if console {
            None
        } else {
            self.inner.cache_key(&asked)
        };
        if let Some((key, _)) = &cached {
            self.inner.pages.follow_changes(self.inner.storage.as_ref());
            if let Some(page) = self.inner.pages.get(key, Instant::now()) {
                return page;
            }
        }
        let caller = peer.credential.as_ref().ok().cloned();
        let inner = Arc::clone(&self.inner);
        let headers = parts.headers.clone();
        let answer = tokio::task::spawn_blocking(move || {
            if console {
                inner.console(&console::ConsoleRequest {
                    asked: &asked,
                    headers: &headers,
                    body: &body,
                    caller: caller.as_deref(),
                })
            } else {
                inner.public(&asked, caller.as_deref())
            }
        })
        .await
        .unwrap_or_else(|e| {
            respond::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("page task failed: {e}"),
            )
        });
        tracing::debug!(path = %parts.uri.path(), status = answer.status().as_u16(), "web request");
        match cached {
            Some((key, depends_on)) => {
                self.inner
                    .pages
                    .put(key, &depends_on, answer, Instant::now())
                    .await
            }
            None => answer,
        }
    }
}

/// Reads a request body of at most [`MAX_BODY_BYTES`] within 10 s.
async fn read_body<B>(body: B) -> Result<bytes::Bytes, Box<Answer>>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match tokio::time::timeout(Duration::from_secs(10), limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(_)) => Err(Box::new(respond::plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is over {MAX_BODY_BYTES} bytes or broken"),
        ))),
        Err(_) => Err(Box::new(respond::plain(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive within 10 s",
        ))),
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The path's segments after `prefix`, percent-decoded; `None` if one does
/// not decode.
fn segments(path: &str, prefix: &str) -> Option<Vec<String>> {
    path.strip_prefix(prefix)?
        .split('/')
        .map(|s| respond::percent_decode(s, false))
        .collect()
}

impl Inner {
    /// The `web.toml` in force now.
    fn policy(&self) -> Arc<WebPolicy> {
        Arc::clone(
            &self
                .policy
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The console rate bucket of a request: its live session's, else its
    /// client address's (a made-up cookie gets no bucket of its own).
    fn console_bucket(&self, headers: &HeaderMap, peer: &AuthenticatedPeer) -> String {
        let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
        match console::session::cookie_value(cookie) {
            Some(id) if self.sessions.session(id, Instant::now()).is_some() => {
                format!("session:{id}")
            }
            _ => format!("address:{:?}", peer.remote.map(|r| r.ip())),
        }
    }

    /// The cache key of a public page that may be cached (label and device
    /// pages, their JSON and QR codes) and the key of what it shows.
    fn cache_key(&self, asked: &Asked) -> Option<(String, String)> {
        let depends_on = if let Some(rest) = asked.path.strip_prefix("/device/") {
            self.ids.open(rest.split('/').next()?)?
        } else if asked.path.starts_with("/label/") {
            let parts = segments(&asked.path, "/label/")?;
            parts.get(..3)?.join("/").to_ascii_lowercase()
        } else {
            return None;
        };
        let key = format!(
            "{}|{}|{}",
            asked.lang.tag(),
            if asked.json { "json" } else { "html" },
            asked.path_and_query
        );
        Some((key, depends_on))
    }

    fn public(&self, asked: &Asked, caller: Option<&trustca_model::Credential>) -> Answer {
        let result = match asked.path.as_str() {
            "/" => Ok(self.index(asked)),
            "/lookup" => self.lookup(asked),
            "/labels/device" => self.label_for_printing(asked, caller),
            p if p.starts_with("/label/") => self.model(asked),
            p if p.starts_with("/device/") => self.device(asked),
            _ => Ok(asked.refuse(StatusCode::NOT_FOUND, "no such page")),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "web page failed");
            asked.refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the trust database cannot be read now; try again",
            )
        })
    }

    fn index(&self, asked: &Asked) -> Answer {
        let body = format!(
            "<h1>{}</h1><p>{}</p>",
            html::esc(asked.lang.t("Trust label")),
            html::esc("Scan the QR code on a product to see its trust level and status.")
        );
        asked.page("trustca", &body)
    }

    fn model(&self, asked: &Asked) -> Result<Answer, WebError> {
        let parts = match asked.segments("/label/") {
            Ok(p) => p,
            Err(refused) => return Ok(*refused),
        };
        let (name, qr) = match parts.as_slice() {
            [s, m, model] => ((s, m, model), None),
            [s, m, model, file] if file == "qr.svg" || file == "qr.png" => {
                ((s, m, model), Some(file.as_str()))
            }
            _ => {
                return Ok(asked.refuse(
                    StatusCode::NOT_FOUND,
                    "expected /label/<sector>/<manufacturer>/<model>",
                ));
            }
        };
        let exposure = self.policy().exposure(&name.0.to_ascii_lowercase());
        let label = public::model_label(
            self.storage.as_ref(),
            exposure,
            (name.0, name.1, name.2),
            now(),
        )?;
        let Some(label) = label else {
            return Ok(asked.refuse(
                StatusCode::NOT_FOUND,
                &format!(
                    "no registered model {}/{}/{} is shown here",
                    name.0, name.1, name.2
                ),
            ));
        };
        let url = format!(
            "{}/label/{}/{}/{}",
            self.base_url,
            html::url_component(&label.sector),
            html::url_component(&label.manufacturer),
            html::url_component(&label.model)
        );
        if let Some(file) = qr {
            return Ok(qr_answer(file, &url));
        }
        if asked.json {
            return Ok(respond::json(StatusCode::OK, &label, Cache::Revalidate));
        }
        let title = format!("{} {}", label.manufacturer, label.model);
        let body = render::model_page(asked.lang, &label);
        Ok(asked.page(&title, &body))
    }

    fn device(&self, asked: &Asked) -> Result<Answer, WebError> {
        let parts = match asked.segments("/device/") {
            Ok(p) => p,
            Err(refused) => return Ok(*refused),
        };
        let (id, qr) = match parts.as_slice() {
            [id] => (id, None),
            [id, file] if file == "qr.svg" || file == "qr.png" => (id, Some(file.as_str())),
            _ => return Ok(asked.refuse(StatusCode::NOT_FOUND, "expected /device/<label id>")),
        };
        let unknown = || asked.refuse(StatusCode::NOT_FOUND, "no device has this label id");
        let Some(identity_key) = self.ids.open(id) else {
            return Ok(unknown());
        };
        let sector = identity_key.split('/').next().unwrap_or_default();
        let exposure = self.policy().exposure(sector);
        let Some(label) =
            public::device_label(self.storage.as_ref(), exposure, &identity_key, now())?
        else {
            return Ok(unknown());
        };
        if let Some(file) = qr {
            return Ok(qr_answer(file, &format!("{}/device/{id}", self.base_url)));
        }
        if asked.json {
            return Ok(respond::json(StatusCode::OK, &label, Cache::Revalidate));
        }
        let title = format!("{} {}", label.manufacturer, label.model);
        let body = render::device_page(asked.lang, &label, id);
        Ok(asked.page(&title, &body))
    }

    /// The identity in `?urn=`, or the refusal to answer.
    fn identity_param(asked: &Asked) -> Result<DeviceIdentity, Box<Answer>> {
        let urn = param(&asked.pairs, "urn").unwrap_or_default();
        DeviceIdentity::from_urn(urn)
            .map_err(|e| Box::new(asked.refuse(StatusCode::BAD_REQUEST, &e.to_string())))
    }

    fn lookup(&self, asked: &Asked) -> Result<Answer, WebError> {
        let identity = match Self::identity_param(asked) {
            Ok(i) => i,
            Err(refused) => return Ok(*refused),
        };
        let exposure = self.policy().exposure(identity.sector.as_str());
        if !exposure.serial_lookup || !exposure.device_pages {
            return Ok(asked.refuse(
                StatusCode::NOT_FOUND,
                &format!(
                    "the {} sector offers no lookup by serial number; scan the label's QR code",
                    identity.sector
                ),
            ));
        }
        if self.storage.device(&identity.key())?.is_none() {
            return Ok(asked.refuse(StatusCode::NOT_FOUND, "no such device is enrolled"));
        }
        Ok(respond::see_other(&format!(
            "/device/{}",
            self.ids.id_for(&identity.key())
        )))
    }

    /// For the label printer: the device's label id and URLs, to its
    /// manufacturer or an operator of its sector.
    fn label_for_printing(
        &self,
        asked: &Asked,
        caller: Option<&trustca_model::Credential>,
    ) -> Result<Answer, WebError> {
        let Some(caller) = caller else {
            return Ok(asked.refuse(
                StatusCode::UNAUTHORIZED,
                "connect with the manufacturer's or an operator's TLS client certificate",
            ));
        };
        let identity = match Self::identity_param(asked) {
            Ok(i) => i,
            Err(refused) => return Ok(*refused),
        };
        let allowed = match caller.kind {
            CertificateKind::Manufacturer => {
                caller.name.eq_ignore_ascii_case(&identity.manufacturer)
                    && caller.may_act_for(&identity.sector)
            }
            CertificateKind::Operator => caller.may_act_for(&identity.sector),
            _ => false,
        };
        if !allowed {
            return Ok(asked.refuse(
                StatusCode::FORBIDDEN,
                &format!(
                    "labels of {} are printed by its manufacturer or an operator of the {} sector; the caller holds {} certificate for {}",
                    identity.urn(),
                    identity.sector,
                    caller.kind.with_article(),
                    caller.name
                ),
            ));
        }
        if self.storage.device(&identity.key())?.is_none() {
            return Ok(asked.refuse(StatusCode::NOT_FOUND, "no such device is enrolled"));
        }
        let id = self.ids.id_for(&identity.key());
        let path = format!("/device/{id}");
        Ok(respond::json(
            StatusCode::OK,
            &serde_json::json!({
                "identity": identity.urn(),
                "label_id": id,
                "url": format!("{}{path}", self.base_url),
                "qr_svg": format!("{path}/qr.svg"),
                "qr_png": format!("{path}/qr.png"),
            }),
            Cache::NoStore,
        ))
    }
}

fn qr_answer(file: &str, url: &str) -> Answer {
    let made = if file == "qr.png" {
        qr::png(url).map(|b| ("image/png", b))
    } else {
        qr::svg(url).map(|s| ("image/svg+xml", s.into_bytes()))
    };
    match made {
        Ok((kind, body)) => respond::bytes(StatusCode::OK, kind, body, Cache::Long),
        Err(e) => respond::plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}
