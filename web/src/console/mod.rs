//! The operator and auditor console under `/console`: sign-in by one-time
//! link ([`session`]), then read-only pages over the store, each limited to
//! the sectors of the signed-in credential: the level distribution per
//! sector, the audit log's changes (filtered to revocations, anomaly
//! reports and actions, model registry changes, ...), the model registry,
//! CRL and snapshot freshness, the signed tree heads with their
//! consistency proof, and systems of linked devices with their cap paths
//! ([`systems`]). Lists page and filter through the query, and export
//! CSV (`format=csv`).
//!
//! Security: nothing changes over GET; every POST form carries the
//! session's CSRF token, and a POST whose `Origin` or `Sec-Fetch-Site`
//! says it came from another site is refused before that.

pub mod audit;
pub mod history;
pub mod pages;
pub mod session;
pub mod systems;

use std::time::Instant;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, StatusCode};
use trustca_model::{CertificateKind, Credential};

use crate::html::esc;
use crate::respond::{self, Answer, Cache, param, query_pairs};
use crate::{Asked, Inner};
use session::{COOKIE, Principal, Session, cookie_value, same_secret};

/// What a console request brings besides [`Asked`].
pub(crate) struct ConsoleRequest<'a> {
    pub asked: &'a Asked,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub caller: Option<&'a Credential>,
}

fn principal(c: &Credential) -> Option<Principal> {
    let role = match c.kind {
        CertificateKind::Operator => "operator",
        CertificateKind::Auditor => "auditor",
        _ => return None,
    };
    Some(Principal {
        role,
        name: c.name.clone(),
        sectors: c.sectors.iter().map(|s| s.as_str().to_owned()).collect(),
    })
}

/// A POST that a browser says came from elsewhere.
fn cross_site(headers: &HeaderMap, base_url: &str) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    get("origin").is_some_and(|o| o != base_url)
}

impl Inner {
    pub(crate) fn console(&self, r: &ConsoleRequest<'_>) -> Answer {
        let asked = r.asked;
        let now = Instant::now();
        let route = asked.path.trim_end_matches('/');
        match (&asked.method, route) {
            (&Method::POST, "/console/login-link") => return self.login_link(r, now),
            (&Method::GET | &Method::HEAD, "/console/login") => return self.login_form(asked, now),
            (&Method::POST, "/console/login") => return self.sign_in(r, now),
            (_, "/console/login" | "/console/login-link") => {
                return respond::method_not_allowed(if route.ends_with("link") {
                    "POST"
                } else {
                    "GET, HEAD, POST"
                });
            }
            _ => {}
        }
        let cookie = r.headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
        let id = cookie_value(cookie).unwrap_or_default();
        let Some(session) = self.sessions.session(id, now) else {
            return asked.refuse(
                StatusCode::UNAUTHORIZED,
                "not signed in: run `trustca web login` with an operator's or auditor's credential and open the link it prints",
            );
        };
        match (&asked.method, route) {
            (&Method::POST, "/console/logout") => self.sign_out(r, id, &session),
            (_, "/console/logout") => respond::method_not_allowed("POST"),
            (&Method::GET | &Method::HEAD, _) => self.console_page(asked, &session),
            _ => respond::method_not_allowed("GET, HEAD"),
        }
    }

    fn login_link(&self, r: &ConsoleRequest<'_>, now: Instant) -> Answer {
        let Some(who) = r.caller.and_then(principal) else {
            return respond::json(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({"error": "a console login link is for an operator's or auditor's TLS client certificate"}),
                Cache::NoStore,
            );
        };
        let Some(token) = self.sessions.issue_link(who.clone(), now) else {
            return respond::plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "no randomness for a login link",
            );
        };
        tracing::info!(role = who.role, name = %who.name, "console login link issued");
        respond::json(
            StatusCode::OK,
            &serde_json::json!({
                "url": format!("{}/console/login?token={token}", self.base_url),
                "expires_in_seconds": self.sessions.link_ttl().as_secs(),
                "role": who.role,
                "name": who.name,
            }),
            Cache::NoStore,
        )
    }

    fn login_form(&self, asked: &Asked, now: Instant) -> Answer {
        let token = param(&asked.pairs, "token").unwrap_or_default();
        if !self.sessions.link_is_live(token, now) {
            return asked.refuse(
                StatusCode::FORBIDDEN,
                "this login link is unknown, used or expired; run `trustca web login` again",
            );
        }
        let lang = asked.lang;
        let body = format!(
            "<h1>{}</h1><form method=\"post\" action=\"/console/login\"><input type=\"hidden\" name=\"token\" value=\"{}\"><button type=\"submit\" id=\"sign-in\">{}</button></form>",
            esc(lang.t("Console")),
            esc(token),
            esc(lang.t("Sign in"))
        );
        respond::html(
            StatusCode::OK,
            lang,
            lang.t("Sign in"),
            "/console/login",
            &body,
            None,
            Cache::NoStore,
        )
    }

    fn sign_in(&self, r: &ConsoleRequest<'_>, now: Instant) -> Answer {
        if cross_site(r.headers, &self.base_url) {
            return r.asked.refuse(
                StatusCode::FORBIDDEN,
                "sign-in from another site is refused",
            );
        }
        let form = query_pairs(std::str::from_utf8(r.body).ok());
        let token = param(&form, "token").unwrap_or_default();
        let Some((id, session)) = self.sessions.sign_in(token, now) else {
            return r.asked.refuse(
                StatusCode::FORBIDDEN,
                "this login link is unknown, used or expired; run `trustca web login` again",
            );
        };
        tracing::info!(role = session.who.role, name = %session.who.name, "console session opened");
        let mut answer = respond::see_other("/console");
        let cookie = format!(
            "{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
            self.sessions.session_ttl().as_secs()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            answer.headers_mut().insert(header::SET_COOKIE, v);
        }
        answer
    }

    fn sign_out(&self, r: &ConsoleRequest<'_>, id: &str, session: &Session) -> Answer {
        if let Some(refused) = check_form(r, session, &self.base_url) {
            return refused;
        }
        self.sessions.sign_out(id);
        let mut answer = respond::see_other("/");
        answer.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "__Host-trustca-console=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
            ),
        );
        answer
    }
}

/// The refusal of a POST form that comes from another site or lacks the
/// session's CSRF token; `None` when it may proceed.
pub(crate) fn check_form(
    r: &ConsoleRequest<'_>,
    session: &Session,
    base_url: &str,
) -> Option<Answer> {
    if cross_site(r.headers, base_url) {
        return Some(r.asked.refuse(
            StatusCode::FORBIDDEN,
            "a form posted from another site is refused",
        ));
    }
    let form = query_pairs(std::str::from_utf8(r.body).ok());
    let sent = param(&form, "csrf").unwrap_or_default();
    if !same_secret(sent, &session.csrf) {
        return Some(r.asked.refuse(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or wrong; reload the page",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_from_other_sites_are_recognised() {
        let mut h = HeaderMap::new();
        assert!(!cross_site(&h, "https://a"));
        h.insert("origin", HeaderValue::from_static("https://a"));
        assert!(!cross_site(&h, "https://a"));
        h.insert("origin", HeaderValue::from_static("https://evil"));
        assert!(cross_site(&h, "https://a"));
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h, "https://a"));
    }
}
