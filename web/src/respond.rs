//! Building answers: the security headers every answer carries, HTML with
//! its CSP, JSON, images, refusals; and reading the request's query and
//! path segments (percent-decoded, bounded).

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::html::{content_security_policy, esc, page};
use crate::i18n::Lang;

/// An answer.
pub type Answer = Response<Full<Bytes>>;

/// Longest query string read.
pub const MAX_QUERY_BYTES: usize = 2048;

/// How an answer may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    /// Public pages: live state, so caches must ask again every time.
    Revalidate,
    /// QR codes: they never change for a URL.
    Long,
    /// Console pages and anything about a session: never.
    NoStore,
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// A response with `status`, `content_type` and `body`, and the headers
/// every answer carries.
pub fn bytes(status: StatusCode, content_type: &str, body: Vec<u8>, cache: Cache) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, header_value(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header_value(&content_security_policy(None)),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Language, Cookie"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(match cache {
            Cache::Revalidate => "public, no-cache",
            Cache::Long => "public, max-age=86400",
            Cache::NoStore => "no-store",
        }),
    );
    r
}

/// An HTML page; `script` (inline, allowed by its hash) only where needed.
pub fn html(
    status: StatusCode,
    lang: Lang,
    title: &str,
    path: &str,
    body: &str,
    script: Option<&'static str>,
    cache: Cache,
) -> Answer {
    let text = page(lang, title, path, body, script);
    let mut r = bytes(status, "text/html; charset=utf-8", text.into_bytes(), cache);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header_value(&content_security_policy(script)),
    );
    r
}

/// A JSON answer.
pub fn json<T: Serialize>(status: StatusCode, value: &T, cache: Cache) -> Answer {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => bytes(status, "application/json", body, cache),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("encoding JSON: {e}"),
        ),
    }
}

/// A refusal or short message as plain text.
pub fn plain(status: StatusCode, message: &str) -> Answer {
    let mut text = message.to_owned();
    text.push('\n');
    bytes(
        status,
        "text/plain; charset=utf-8",
        text.into_bytes(),
        Cache::NoStore,
    )
}

/// A refusal in the form the client asked for: JSON `{"error": ...}` or a
/// small HTML page.
pub fn refusal(
    status: StatusCode,
    wants_json: bool,
    lang: Lang,
    path: &str,
    message: &str,
) -> Answer {
    if wants_json {
        return json(
            status,
            &serde_json::json!({ "error": message }),
            Cache::NoStore,
        );
    }
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<h1>{}</h1><p id=\"message\">{}</p>",
        esc(title),
        esc(message)
    );
    html(status, lang, title, path, &body, None, Cache::NoStore)
}

/// `405` with the methods that are allowed.
pub fn method_not_allowed(allow: &'static str) -> Answer {
    let mut r = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("this resource answers {allow} only"),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// `303 See Other` to `location` (a path of ours).
pub fn see_other(location: &str) -> Answer {
    let mut r = bytes(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Vec::new(),
        Cache::NoStore,
    );
    r.headers_mut()
        .insert(header::LOCATION, header_value(location));
    r
}

/// `429` with `Retry-After`.
pub fn too_many(retry_after: u64) -> Answer {
    let mut r = plain(
        StatusCode::TOO_MANY_REQUESTS,
        "too many requests; try again later",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header_value(&retry_after.to_string()));
    r
}

/// Decodes `%XX` escapes (and `+` as space when `plus` is set); `None` for
/// a bad escape or text that is not UTF-8.
pub fn percent_decode(text: &str, plus: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The query's `name=value` pairs, decoded; pairs that do not decode are
/// left out, and so is everything past [`MAX_QUERY_BYTES`].
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let query = query.unwrap_or_default();
    let query = query
        .get(..MAX_QUERY_BYTES.min(query.len()))
        .unwrap_or_default();
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// The first value of `name` in `pairs`.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_refuses_bad_escapes_and_non_utf8() {
        assert_eq!(percent_decode("a%20b+c", true).as_deref(), Some("a b c"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(
            percent_decode("%3Cscript%3E", false).as_deref(),
            Some("<script>")
        );
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%4", false), None);
        assert_eq!(percent_decode("%ff", false), None);
        let pairs = query_pairs(Some("lang=ja&urn=urn%3Atrustca%3Ax&bad=%zz&flag"));
        assert_eq!(param(&pairs, "lang"), Some("ja"));
        assert_eq!(param(&pairs, "urn"), Some("urn:trustca:x"));
        assert_eq!(param(&pairs, "bad"), None);
        assert_eq!(param(&pairs, "flag"), Some(""));
    }

    #[test]
    fn every_answer_carries_the_security_headers() {
        let r = plain(StatusCode::OK, "x");
        for h in [
            "content-security-policy",
            "x-content-type-options",
            "referrer-policy",
            "x-frame-options",
        ] {
            assert!(r.headers().contains_key(h), "{h}");
        }
        assert_eq!(
            method_not_allowed("GET, HEAD").headers()["allow"],
            "GET, HEAD"
        );
        assert_eq!(too_many(7).headers()["retry-after"], "7");
    }
}
