//! Rate limits of the public pages: a token bucket per client address
//! (`requests_per_minute`, a burst of as many), so one client cannot crawl
//! every label or load the store; past it, `429` with `Retry-After`. The
//! console has its own, more generous buckets per session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Addresses remembered at most; past it the table starts over (a flood
/// of fresh addresses then gets fresh buckets, which a reverse proxy's own
/// limit should cover).
const MAX_CLIENTS: usize = 100_000;

/// Token buckets by client address (public pages) or by session (the
/// console).
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    /// Replaced on a policy reload ([`RateLimiter::set_per_minute`]).
    per_minute: AtomicU32,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    /// `per_minute` requests a minute per address.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: AtomicU32::new(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// A new rate (a policy reload), from the next request on; buckets
    /// fuller than the new burst are cut down to it.
    pub fn set_per_minute(&self, per_minute: u32) {
        self.per_minute.store(per_minute.max(1), Ordering::Relaxed);
    }

    /// Takes a token for `client`; `Err(seconds)` to wait when none is left.
    pub fn take(&self, client: K, now: Instant) -> Result<(), u64> {
        let per_minute = f64::from(self.per_minute.load(Ordering::Relaxed));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_CLIENTS && !buckets.contains_key(&client) {
            buckets.clear();
        }
        let (tokens, last) = buckets.entry(client).or_insert((per_minute, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * per_minute / 60.0;
        *tokens = (*tokens + refill).min(per_minute);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - *tokens) * 60.0 / per_minute;
            Err(wait.ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_refused_then_refilled() {
        let limiter = RateLimiter::new(3);
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        let t = Instant::now();
        for _ in 0..3 {
            limiter.take(a, t).unwrap();
        }
        let wait = limiter.take(a, t).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        limiter.take(b, t).unwrap();
        limiter.take(a, t + Duration::from_secs(21)).unwrap();
    }

    #[test]
    fn a_new_rate_applies_to_the_next_request() {
        let limiter = RateLimiter::new(100);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let t = Instant::now();
        limiter.take(a, t).unwrap();
        limiter.set_per_minute(2);
        limiter.take(a, t).unwrap();
        limiter.take(a, t).unwrap();
        assert!(
            limiter.take(a, t).is_err(),
            "the bucket is cut to the new burst"
        );
    }
}
