//! The AA's client of its EA over HTTP: `POST` of the
//! `AuthorizationValidationRequestMessage` to the EA's validation resource
//! (its CTL `aaAccessPoint`), one connection per request, plain HTTP (the
//! messages protect themselves), bounded in time and size.

use std::net::SocketAddr;
use std::time::Duration;

use trustca_etsi::EtsiError;
use trustca_etsi::aa::EaLink;

use super::{VALIDATION_PATH, plain};

/// How long the AA waits for its EA.
const EA_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer the AA reads from an EA.
const MAX_EA_ANSWER: usize = 64 * 1024;

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
        let refused = |why: String| EtsiError::Profile(format!("EA access point: {why}"));
        // An access point names its resource: a bare host is a mistake.
        if !url.strip_prefix("http://").is_some_and(|r| r.contains('/')) {
            return Err(refused(format!("{url:?} names no resource path")));
        }
        let (host, path) = plain::split_url(url).map_err(refused)?;
        Ok(Self { host, path })
    }
}

impl EaLink for HttpEaLink {
    fn validate(&self, message: &[u8]) -> Result<Vec<u8>, EtsiError> {
        let limits = plain::ExchangeLimits {
            timeout: EA_TIMEOUT,
            max_answer: MAX_EA_ANSWER,
        };
        plain::exchange(&self.host, &self.path, Some(message), limits)
            .map_err(|why| EtsiError::Profile(format!("EA at {}: {why}", self.host)))
    }
}
