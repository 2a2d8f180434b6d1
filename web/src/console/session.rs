//! Console sign-in without passwords: the operator's or auditor's CLI asks
//! for a one-time login link over mutual TLS with its credential; the
//! browser opens it, and posting its form exchanges the link for a session
//! cookie (`__Host-` prefix, `Secure`, `HttpOnly`, `SameSite=Strict`,
//! `Max-Age` of the policy's session time). Links work once and expire;
//! sessions expire whatever happens. A policy reload that changes the
//! lengths applies to links and sessions already open too (each keeps the
//! instant it was made), so shortening them takes effect at once. Both
//! live in memory only: a restart
//! signs everyone out. Each session has its own CSRF token, which every
//! form posts back.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// The session cookie's name; `__Host-` makes browsers insist on
/// `Secure`, `Path=/` and no `Domain`.
pub const COOKIE: &str = "__Host-trustca-console";

/// Links and sessions held at most (each kind); past it the oldest expire first.
const MAX_HELD: usize = 10_000;

/// Who is signed in, from their client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `operator` or `auditor`.
    pub role: &'static str,
    /// The credential's name.
    pub name: String,
    /// The sectors it may see.
    pub sectors: Vec<String>,
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub who: Principal,
    /// The token every form must carry.
    pub csrf: String,
    signed_in: Instant,
}

/// How long links and sessions last (replaced on a policy reload).
#[derive(Debug, Clone, Copy)]
struct Lengths {
    link: Duration,
    session: Duration,
}

/// The one-time links and the sessions.
#[derive(Debug)]
pub struct Sessions {
    lengths: RwLock<Lengths>,
    /// Each link with its principal and the instant it was issued.
    links: Mutex<HashMap<String, (Principal, Instant)>>,
    sessions: Mutex<HashMap<String, Session>>,
}

fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn prune<V>(map: &mut HashMap<String, V>, expiry: impl Fn(&V) -> Instant, now: Instant) {
    map.retain(|_, v| expiry(v) > now);
    if map.len() >= MAX_HELD {
        let oldest = map
            .iter()
            .min_by_key(|(_, v)| expiry(v))
            .map(|(k, _)| k.clone());
        if let Some(k) = oldest {
            map.remove(&k);
        }
    }
}

impl Sessions {
    /// Links usable for `link_ttl`, sessions lasting `session_ttl`.
    pub fn new(link_ttl: Duration, session_ttl: Duration) -> Self {
        Self {
            lengths: RwLock::new(Lengths {
                link: link_ttl,
                session: session_ttl,
            }),
            links: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// New lengths (a policy reload), for the links and sessions already
    /// open too: each lasts the new length from when it was made.
    pub fn set_lengths(&self, link_ttl: Duration, session_ttl: Duration) {
        *self.lengths.write().unwrap_or_else(PoisonError::into_inner) = Lengths {
            link: link_ttl,
            session: session_ttl,
        };
    }

    fn lengths(&self) -> Lengths {
        *self.lengths.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a session lasts.
    pub fn session_ttl(&self) -> Duration {
        self.lengths().session
    }

    /// How long a link can be used.
    pub fn link_ttl(&self) -> Duration {
        self.lengths().link
    }

    /// A new one-time login token for `who`; `None` without randomness.
    pub fn issue_link(&self, who: Principal, now: Instant) -> Option<String> {
        let token = random_token()?;
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let ttl = self.link_ttl();
        prune(&mut links, |(_, at)| *at + ttl, now);
        links.insert(token.clone(), (who, now));
        Some(token)
    }

    /// Whether `token` is a live link (the sign-in form shows; nothing is used up).
    pub fn link_is_live(&self, token: &str, now: Instant) -> bool {
        let links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        let ttl = self.link_ttl();
        links.get(token).is_some_and(|(_, at)| *at + ttl > now)
    }

    /// Uses up `token` and opens a session: (session id, session); `None`
    /// for a link that is unknown, used or expired.
    pub fn sign_in(&self, token: &str, now: Instant) -> Option<(String, Session)> {
        let (who, issued) = self
            .links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token)?;
        let Lengths { link, session: ttl } = self.lengths();
        if issued + link <= now {
            return None;
        }
        let (id, csrf) = (random_token()?, random_token()?);
        let session = Session {
            who,
            csrf,
            signed_in: now,
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        prune(&mut sessions, |s| s.signed_in + ttl, now);
        sessions.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The live session `id` names.
    pub fn session(&self, id: &str, now: Instant) -> Option<Session> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let ttl = self.session_ttl();
        sessions
            .get(id)
            .filter(|s| s.signed_in + ttl > now)
            .cloned()
    }

    /// Ends session `id`.
    pub fn sign_out(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

/// The session id in a `Cookie` header.
pub fn cookie_value(header: Option<&str>) -> Option<&str> {
    header?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn who() -> Principal {
        Principal {
            role: "operator",
            name: "ops".into(),
            sectors: vec!["hems".into()],
        }
    }

    #[test]
    fn a_link_works_once_and_sessions_expire() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let t = Instant::now();
        let token = s.issue_link(who(), t).unwrap();
        assert!(s.link_is_live(&token, t));
        let (id, session) = s.sign_in(&token, t).unwrap();
        assert!(s.sign_in(&token, t).is_none(), "used up");
        assert_eq!(s.session(&id, t).unwrap().csrf, session.csrf);
        assert!(s.session(&id, t + Duration::from_secs(601)).is_none());
        s.sign_out(&id);
        assert!(s.session(&id, t).is_none());
    }

    #[test]
    fn expired_and_unknown_links_open_nothing() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let t = Instant::now();
        let token = s.issue_link(who(), t).unwrap();
        assert!(!s.link_is_live(&token, t + Duration::from_secs(61)));
        assert!(s.sign_in(&token, t + Duration::from_secs(61)).is_none());
        assert!(s.sign_in("forged", t).is_none());
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("a", "ab"));
        assert_eq!(
            cookie_value(Some("a=b; __Host-trustca-console=xyz")),
            Some("xyz")
        );
        assert_eq!(cookie_value(Some("trustca-console=xyz")), None);
    }

    /// A reload that shortens the lengths ends what is already open past
    /// them; lengthening gives new links and sessions the new time.
    #[test]
    fn new_lengths_apply_to_what_is_open() {
        let s = Sessions::new(Duration::from_secs(60), Duration::from_secs(600));
        let t = Instant::now();
        let token = s.issue_link(who(), t).unwrap();
        let (id, _) = s.sign_in(&s.issue_link(who(), t).unwrap(), t).unwrap();
        s.set_lengths(Duration::from_secs(20), Duration::from_secs(120));
        assert_eq!(s.session_ttl(), Duration::from_secs(120));
        assert!(!s.link_is_live(&token, t + Duration::from_secs(21)));
        assert!(s.session(&id, t + Duration::from_secs(119)).is_some());
        assert!(s.session(&id, t + Duration::from_secs(121)).is_none());
        s.set_lengths(Duration::from_secs(60), Duration::from_secs(900));
        assert!(s.session(&id, t + Duration::from_secs(899)).is_some());
    }
}
