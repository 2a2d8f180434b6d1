//! One plain HTTP/1.1 exchange with a TS 102 941 resource (clause 6.3:
//! HTTP, TLS optional, the messages protect themselves): `POST` of an
//! `application/x-its-request`, or `GET` of a trust list. One connection
//! per exchange, a time limit on each step and a cap on what is read. The
//! AA's link to its EA and the vehicle's station both use it.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::REQUEST_TYPE;

/// The longest header block read.
const MAX_HEAD: usize = 16 * 1024;

/// How long an exchange may take and how much of an answer it reads.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeLimits {
    /// For connecting, and for each read and write.
    pub timeout: Duration,
    /// The largest body accepted.
    pub max_answer: usize,
}

/// `HOST:PORT` (port 80 when the URL names none) and the path of an
/// `http://HOST[:PORT][/PATH]` URL.
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let bad = || format!("{url:?} is not an http://HOST[:PORT]/PATH URL");
    let rest = url.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, format!("/{p}")),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() || authority.contains('@') || authority.len() > 255 {
        return Err(bad());
    }
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']');
    let host = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((host, path))
}

/// One exchange with `path` at `host`: `POST` with `body` as a TS 102 941
/// request, or `GET` without. The body of a `200` answer; anything else is
/// an error naming the status and the server's first line of text.
pub fn exchange(
    host: &str,
    path: &str,
    body: Option<&[u8]>,
    limits: ExchangeLimits,
) -> Result<Vec<u8>, String> {
    let mut stream = connect(host, limits.timeout)?;
    stream
        .set_read_timeout(Some(limits.timeout))
        .and_then(|()| stream.set_write_timeout(Some(limits.timeout)))
        .map_err(|e| e.to_string())?;
    let head = match body {
        Some(b) => format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {REQUEST_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            b.len()
        ),
        None => format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    };
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.unwrap_or_default()))
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut raw = Vec::new();
    stream
        .take((limits.max_answer + MAX_HEAD) as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("no answer: {e}"))?;
    read_answer(&raw, limits.max_answer)
}

/// The first address of `host` that accepts a connection in time.
fn connect(host: &str, timeout: Duration) -> Result<TcpStream, String> {
    let mut last = None;
    for addr in host
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
    {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(format!(
        "cannot connect: {}",
        last.map_or("the name has no address".into(), |e| e.to_string())
    ))
}

/// The body of a complete `200` answer of at most `max_answer` bytes
/// (`raw` is everything the server sent; public for the fuzz target).
pub fn read_answer(raw: &[u8], max_answer: usize) -> Result<Vec<u8>, String> {
    let split = raw
        .windows(4)
        .take(MAX_HEAD)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no HTTP header")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "the header is not UTF-8")?;
    let body = &raw[split + 4..];
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        let reason = String::from_utf8_lossy(body);
        let reason = reason.lines().next().unwrap_or_default().trim();
        return Err(format!(
            "{}{}",
            status.trim(),
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {}", reason.chars().take(200).collect::<String>())
            }
        ));
    }
    if body.len() > max_answer {
        return Err(format!("the answer is larger than {max_answer} bytes"));
    }
    let declared = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|n| n != body.len()) {
        return Err("the answer is cut short".into());
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MAX: usize = 1 << 20;

    #[test]
    fn urls_and_answers_are_read_strictly() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/etsi/ea/enrolment").unwrap(),
            ("127.0.0.1:8080".into(), "/etsi/ea/enrolment".into())
        );
        assert_eq!(
            split_url("http://dc.example").unwrap(),
            ("dc.example:80".into(), "/".into())
        );
        for bad in ["https://x/", "http://", "http://u@x/", "ftp://x"] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(read_answer(ok, MAX).unwrap(), b"abc");
        assert!(read_answer(ok, 2).unwrap_err().contains("larger than 2"));
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert!(read_answer(short, MAX).unwrap_err().contains("cut short"));
        let refused = b"HTTP/1.1 404 Not Found\r\n\r\nno such root\nmore";
        assert_eq!(
            read_answer(refused, MAX).unwrap_err(),
            "HTTP/1.1 404 Not Found: no such root"
        );
        assert!(read_answer(b"garbage", MAX).is_err());
    }

    proptest::proptest! {
        /// Whatever a server sends, reading it returns (no panic), and a
        /// body is only ever taken from a 200 whose length matches.
        #[test]
        fn any_answer_is_read_without_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(body) = read_answer(&raw, MAX) {
                proptest::prop_assert!(raw.starts_with(b"HTTP/1."));
                proptest::prop_assert!(raw.ends_with(&body));
            }
        }

        /// A well-formed 200 gives back exactly its body.
        #[test]
        fn a_200_gives_its_body(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            raw.extend(&body);
            proptest::prop_assert_eq!(read_answer(&raw, MAX), Ok(body));
        }
    }
}
