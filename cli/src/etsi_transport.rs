//! The station's side of the TS 102 941 transport (clause 6.3: HTTP, TLS
//! optional, the messages protect themselves): `POST` of
//! `application/x-its-request` to the EA's and AA's access points, and
//! `GET` of the root's CTL and CRL (and a trust list manager's ECTL) from
//! the distribution centre, each list checked against the anchor the
//! vehicle trusts. One connection per exchange, a time limit on each and a
//! cap on what is read.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use trustca_api::etsi_http::{CRL_PREFIX, CTL_PREFIX, ECTL_PREFIX, REQUEST_TYPE};
use trustca_etsi::trust_lists::{read_crl, read_rca_ctl, read_tlm_ectl};
use trustca_v2x::trust_lists::{CtlCommand, CtlEntry, CtlFormat, ToBeSignedCrl};
use trustca_v2x::{CertProfile, Certificate, Time32};

/// How long one exchange may take to connect, send and answer.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read (a CTL with many authorities stays far below).
const MAX_ANSWER: usize = 1 << 20;
/// The longest header block read.
const MAX_HEAD: usize = 16 * 1024;

/// `http://HOST[:PORT]` and the path of a URL.
fn split_url(url: &str) -> Result<(String, String)> {
    let bad = || anyhow!("{url:?} is not an http://HOST[:PORT]/PATH URL");
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

/// One HTTP/1.1 exchange: `POST` with `body` as a TS 102 941 request, or
/// `GET` without. The body of a `200` answer; anything else is an error
/// naming the status and the server's first line of text.
pub fn exchange(url: &str, body: Option<&[u8]>) -> Result<Vec<u8>> {
    let (host, path) = split_url(url)?;
    let fail = |what: String| anyhow!("{url}: {what}");
    let mut last = None;
    let mut stream = None;
    for addr in host
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve {host}: {e}")))?
    {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut stream = stream.ok_or_else(|| {
        fail(format!(
            "cannot connect: {}",
            last.map_or("the name has no address".into(), |e| e.to_string())
        ))
    })?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| fail(e.to_string()))?;
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
        .map_err(|e| fail(format!("cannot send: {e}")))?;
    let mut raw = Vec::new();
    stream
        .take((MAX_ANSWER + MAX_HEAD) as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| fail(format!("no answer: {e}")))?;
    parse_answer(&raw).map_err(fail)
}

/// The body of a complete `200` answer.
fn parse_answer(raw: &[u8]) -> std::result::Result<Vec<u8>, String> {
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
    if body.len() > MAX_ANSWER {
        return Err(format!("the answer is larger than {MAX_ANSWER} bytes"));
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

/// An authority the root's CTL lists, and where stations reach it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Its certificate (issued by the root).
    pub certificate: Certificate,
    /// Where stations POST to it (`itsAccessPoint` / `accessPoint`).
    pub access_point: Option<String>,
    /// Whether the root's CRL lists it.
    pub revoked: bool,
}

/// The root's lists as the distribution centre served them, verified.
#[derive(Debug)]
pub struct TrustLists {
    /// The CTL.
    pub ctl: CtlFormat,
    /// The CRL.
    pub crl: ToBeSignedCrl,
    /// The enrolment authorities on the CTL.
    pub eas: Vec<Listed>,
    /// The authorization authorities on the CTL.
    pub aas: Vec<Listed>,
    /// Whether a trust list manager's ECTL was read (and names the root).
    pub ectl_checked: bool,
}

impl TrustLists {
    /// The first EA and AA on the CTL that the CRL does not revoke.
    pub fn usable(&self) -> Result<(&Listed, &Listed)> {
        let ea = self
            .eas
            .iter()
            .find(|l| !l.revoked)
            .context("the root's CTL lists no enrolment authority the CRL leaves valid")?;
        let aa = self
            .aas
            .iter()
            .find(|l| !l.revoked)
            .context("the root's CTL lists no authorization authority the CRL leaves valid")?;
        Ok((ea, aa))
    }

    /// The listed authority with this HashedId8.
    pub fn find(&self, id: [u8; 8]) -> Option<&Listed> {
        self.eas
            .iter()
            .chain(&self.aas)
            .find(|l| l.certificate.hashed_id8() == id)
    }
}

/// Reads a TS 103 097 certificate (COER) the vehicle was given.
pub fn read_etsi_certificate(bytes: &[u8], what: &str) -> Result<Certificate> {
    Certificate::from_coer_in(CertProfile::EtsiTs103097, bytes)
        .map_err(|e| anyhow!("{what} is not an ETSI TS 103 097 certificate (COER): {e}"))
}

fn current(next_update: Time32, what: &str, now: i64) -> Result<()> {
    if next_update.to_unix() < now {
        bail!(
            "the {what} is past its nextUpdate ({}): the distribution centre serves no current list",
            crate::show::unix(next_update.to_unix())
        );
    }
    Ok(())
}

/// Fetches the CTL and CRL of `root` from the distribution centre `dc`
/// (and, with `tlm`, the TLM's ECTL, which must name the root), checks
/// their signatures and `nextUpdate`.
pub fn fetch_lists(
    dc: &str,
    root: &Certificate,
    tlm: Option<&Certificate>,
    now: i64,
) -> Result<TrustLists> {
    root.verify_signed_by(None)
        .map_err(|e| anyhow!("the root certificate is not a self-signed root: {e}"))?;
    let dc = dc.trim_end_matches('/');
    let root_id = hex::encode(root.hashed_id8());
    let ectl_checked = match tlm {
        Some(tlm) => {
            let url = format!("{dc}{ECTL_PREFIX}{}", hex::encode(tlm.hashed_id8()));
            let (ectl, roots) = read_tlm_ectl(&exchange(&url, None)?, tlm).map_err(|e| {
                anyhow!("the ECTL does not verify with the trust list manager: {e}")
            })?;
            current(ectl.next_update, "ECTL", now)?;
            if !roots.iter().any(|r| r.hashed_id8() == root.hashed_id8()) {
                bail!("the root {root_id} is not on the trust list manager's ECTL");
            }
            true
        }
        None => false,
    };
    let ctl = read_rca_ctl(
        &exchange(&format!("{dc}{CTL_PREFIX}{root_id}"), None)?,
        root,
    )
    .map_err(|e| anyhow!("the CTL does not verify with the root {root_id}: {e}"))?;
    current(ctl.next_update, "CTL", now)?;
    let crl = read_crl(
        &exchange(&format!("{dc}{CRL_PREFIX}{root_id}"), None)?,
        root,
    )
    .map_err(|e| anyhow!("the CRL does not verify with the root {root_id}: {e}"))?;
    current(crl.next_update, "CRL", now)?;
    let revoked = |c: &Certificate| crl.entries.contains(&c.hashed_id8());
    let (mut eas, mut aas) = (Vec::new(), Vec::new());
    for command in &ctl.commands {
        let CtlCommand::Add(entry) = command else {
            continue;
        };
        match &**entry {
            CtlEntry::Ea {
                certificate,
                its_access_point,
                ..
            } => eas.push(Listed {
                revoked: revoked(certificate),
                certificate: certificate.clone(),
                access_point: its_access_point.clone(),
            }),
            CtlEntry::Aa {
                certificate,
                access_point,
            } => aas.push(Listed {
                revoked: revoked(certificate),
                certificate: certificate.clone(),
                access_point: Some(access_point.clone()),
            }),
            _ => {}
        }
    }
    Ok(TrustLists {
        ctl,
        crl,
        eas,
        aas,
        ectl_checked,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
        assert_eq!(parse_answer(ok).unwrap(), b"abc");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert!(parse_answer(short).unwrap_err().contains("cut short"));
        let refused = b"HTTP/1.1 404 Not Found\r\n\r\nno such root\nmore";
        assert_eq!(
            parse_answer(refused).unwrap_err(),
            "HTTP/1.1 404 Not Found: no such root"
        );
        assert!(parse_answer(b"garbage").is_err());
    }

    proptest::proptest! {
        /// Whatever a server sends, reading it returns (no panic), and a
        /// body is only ever taken from a 200 whose length matches.
        #[test]
        fn any_answer_is_read_without_panic(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(body) = parse_answer(&raw) {
                proptest::prop_assert!(raw.starts_with(b"HTTP/1."));
                proptest::prop_assert!(raw.ends_with(&body));
            }
        }

        /// A well-formed 200 gives back exactly its body.
        #[test]
        fn a_200_gives_its_body(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            raw.extend(&body);
            proptest::prop_assert_eq!(parse_answer(&raw), Ok(body));
        }
    }
}
