//! The cache of rendered public pages (label pages, device pages, their
//! JSON variants and QR codes), so that a burst of scans costs one render.
//!
//! Bounded: at most [`MAX_PAGES`] pages (a page is a few KiB; a QR PNG
//! about 1 KiB), each kept at most [`MAX_AGE`] (its relative dates and
//! "last checked" stay near the truth). Invalidated by the store's change
//! log: every change to a trust record, certificate or model appends an
//! audit entry in its own transaction, so before answering from the cache
//! the entries appended since the last look are read and the pages they
//! concern are dropped — a device's entries drop its pages, a model's
//! entries drop the model's page and its devices' pages, and an entry that
//! names neither (or more entries than one look reads) drops everything.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::header::HeaderMap;
use hyper::{Response, StatusCode};
use trustca_model::DeviceIdentity;
use trustca_store::Storage;

use crate::respond::Answer;

/// Pages kept at most; past it the cache starts over.
pub const MAX_PAGES: usize = 10_000;
/// Body bytes kept at most (a QR code PNG or a long device page is tens
/// of KiB, so the page count alone would allow hundreds of MiB); past it
/// the cache starts over.
pub const MAX_BYTES: usize = 32 << 20;
/// How long a page is kept at most.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// Change-log entries read per look; more than that drops every page.
const LOOK_ENTRIES: usize = 1_000;

/// A rendered answer.
#[derive(Debug, Clone)]
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    made: Instant,
    /// The lower-case identity or model key the page shows.
    depends_on: String,
}

#[derive(Debug, Default)]
struct State {
    pages: HashMap<String, Page>,
    /// Body bytes of `pages`, at most [`MAX_BYTES`].
    bytes: usize,
    /// The change log's size at the last look.
    seen: u64,
}

impl State {
    fn clear(&mut self) {
        self.pages.clear();
        self.bytes = 0;
    }

    fn retain(&mut self, keep: impl Fn(&Page) -> bool) {
        self.pages.retain(|_, p| keep(p));
        self.bytes = self.pages.values().map(|p| p.body.len()).sum();
    }
}

/// The page cache.
#[derive(Debug, Default)]
pub struct PageCache {
    state: Mutex<State>,
}

/// What an audit entry's subject names: a device's identity key, a model
/// key (`sector/manufacturer/model`, before any firmware range), or `None`.
fn subject_key(subject: &str) -> Option<String> {
    if let Ok(identity) = DeviceIdentity::from_urn(subject) {
        return Some(identity.key());
    }
    let key = subject.split(' ').next()?.to_ascii_lowercase();
    (key.matches('/').count() >= 2).then_some(key)
}

impl PageCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drops every page (the policy that shaped them was replaced).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Drops the pages that the change-log entries since the last look
    /// concern. A log that cannot be read drops everything.
    pub fn follow_changes(&self, storage: &dyn Storage) {
        let size = match storage.audit_head() {
            Ok((size, _)) => size,
            Err(_) => {
                self.lock().clear();
                return;
            }
        };
        let seen = self.lock().seen;
        if size == seen {
            return;
        }
        let entries = if size > seen && size - seen <= LOOK_ENTRIES as u64 {
            storage.audit_entries(seen, LOOK_ENTRIES).ok()
        } else {
            None
        };
        let mut state = self.lock();
        state.seen = size;
        let Some(entries) = entries else {
            state.clear();
            return;
        };
        for e in entries {
            match subject_key(&e.subject) {
                // A device's or model's key: its pages, and a model's devices'.
                Some(key) => state.retain(|p| {
                    !(p.depends_on == key || p.depends_on.starts_with(&format!("{key}/")))
                }),
                None if e.kind.starts_with("system.") || e.kind.starts_with("console.") => {}
                None => {
                    state.clear();
                    return;
                }
            }
        }
    }

    /// The cached answer for `key`, if fresh.
    pub fn get(&self, key: &str, now: Instant) -> Option<Answer> {
        let state = self.lock();
        let page = state.pages.get(key)?;
        if now.duration_since(page.made) > MAX_AGE {
            return None;
        }
        let mut answer = Response::new(http_body_util::Full::new(page.body.clone()));
        *answer.status_mut() = page.status;
        *answer.headers_mut() = page.headers.clone();
        Some(answer)
    }

    /// Keeps `answer` (a successful one) for `key`, showing `depends_on`,
    /// and gives it back.
    pub async fn put(&self, key: String, depends_on: &str, answer: Answer, now: Instant) -> Answer {
        if answer.status() != StatusCode::OK {
            return answer;
        }
        let (parts, body) = answer.into_parts();
        let Ok(collected) = body.collect().await;
        let body = collected.to_bytes();
        let page = Page {
            status: parts.status,
            headers: parts.headers.clone(),
            body: body.clone(),
            made: now,
            depends_on: depends_on.to_ascii_lowercase(),
        };
        {
            let mut state = self.lock();
            // A page replacing one under the same key counts only its growth.
            let replaced = state.pages.get(&key).map(|p| p.body.len());
            let pages_after = state.pages.len() + usize::from(replaced.is_none());
            let bytes_after = state.bytes - replaced.unwrap_or(0) + body.len();
            if pages_after > MAX_PAGES || bytes_after > MAX_BYTES {
                state.clear();
            }
            state.bytes += body.len();
            if let Some(old) = state.pages.insert(key, page) {
                state.bytes -= old.body.len();
            }
        }
        Response::from_parts(parts, http_body_util::Full::new(body))
    }

    /// Pages held now.
    pub fn len(&self) -> usize {
        self.lock().pages.len()
    }

    /// Whether no page is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn page(text: &'static str) -> Answer {
        crate::respond::bytes(
            StatusCode::OK,
            "text/plain",
            text.as_bytes().to_vec(),
            crate::respond::Cache::Revalidate,
        )
    }

    /// Appends a change-log entry about `subject`, as a change would.
    fn change(storage: &dyn Storage, n: u8, subject: &str) {
        storage
            .blob_put(
                "test",
                &[(vec![n], vec![n])],
                false,
                Some(&trustca_store::BlobAudit {
                    actor: "test".into(),
                    kind: "trust.changed".into(),
                    subject: subject.into(),
                    detail: "{}".into(),
                    at: 0,
                }),
            )
            .unwrap();
    }

    #[tokio::test]
    async fn pages_are_kept_until_a_change_concerns_them() {
        let dir = tempfile::tempdir().unwrap();
        let storage = trustca_store::SledStorage::open(dir.path()).unwrap();
        let cache = PageCache::default();
        let now = Instant::now();
        cache.follow_changes(&storage);
        let device = "hems/acme/hub/sn-1";
        cache.put("d1".into(), device, page("one"), now).await;
        cache
            .put("d2".into(), "hems/acme/hub/sn-2", page("two"), now)
            .await;
        cache
            .put("m".into(), "hems/acme/hub", page("model"), now)
            .await;
        assert!(cache.get("d1", now).is_some());
        assert!(
            cache
                .get("d1", now + MAX_AGE + Duration::from_secs(1))
                .is_none()
        );

        // A change of one device drops its pages only.
        change(&storage, 1, "urn:trustca:hems:Acme:hub:SN-1");
        cache.follow_changes(&storage);
        assert!(cache.get("d1", now).is_none());
        assert!(cache.get("d2", now).is_some() && cache.get("m", now).is_some());

        // A model's change drops its page and its devices'.
        cache
            .put("other".into(), "hems/acme/plug/sn-9", page("plug"), now)
            .await;
        change(&storage, 2, "hems/Acme/hub firmware 1.0-2.0");
        cache.follow_changes(&storage);
        assert!(cache.get("d2", now).is_none() && cache.get("m", now).is_none());
        assert!(cache.get("other", now).is_some());

        // An entry naming neither drops everything; a refusal is not kept.
        change(&storage, 3, "0a1b2c");
        cache.follow_changes(&storage);
        assert!(cache.is_empty());
        let refused = crate::respond::plain(StatusCode::NOT_FOUND, "no");
        cache.put("x".into(), device, refused, now).await;
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_its_bytes() {
        let cache = PageCache::default();
        let now = Instant::now();
        let big = || {
            crate::respond::bytes(
                StatusCode::OK,
                "image/png",
                vec![7u8; MAX_BYTES / 4 + 1],
                crate::respond::Cache::Revalidate,
            )
        };
        for n in 0..3 {
            cache
                .put(format!("p{n}"), "hems/acme/hub", big(), now)
                .await;
        }
        assert_eq!(cache.len(), 3);
        // Replacing a page counts its bytes once.
        cache.put("p0".into(), "hems/acme/hub", big(), now).await;
        assert_eq!(cache.len(), 3);
        assert!(cache.lock().bytes <= MAX_BYTES);
        // The fourth would pass the bound: the cache starts over with it.
        cache.put("p3".into(), "hems/acme/hub", big(), now).await;
        assert_eq!(cache.len(), 1);
        assert!(cache.get("p3", now).is_some() && cache.get("p0", now).is_none());
        assert_eq!(cache.lock().bytes, MAX_BYTES / 4 + 1);
    }

    #[test]
    fn subjects_name_devices_and_models() {
        assert_eq!(
            subject_key("urn:trustca:hems:Acme:hub:SN-1").as_deref(),
            Some("hems/acme/hub/sn-1")
        );
        assert_eq!(
            subject_key("hems/Acme/hub firmware 1.0-2.0").as_deref(),
            Some("hems/acme/hub")
        );
        assert_eq!(subject_key("0a1b2c"), None);
    }
}
