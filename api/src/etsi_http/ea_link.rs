//! The AA's client of its EA over HTTP: `POST` of the
//! `AuthorizationValidationRequestMessage` to the EA's validation resource
//! (its CTL `aaAccessPoint`), one connection per request, plain HTTP (the
//! messages protect themselves), bounded in time and size.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use trustca_etsi::EtsiError;
use trustca_etsi::aa::EaLink;

use super::{REQUEST_TYPE, VALIDATION_PATH};

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
