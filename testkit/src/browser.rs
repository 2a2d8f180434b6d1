//! Headless Chromium driven over the W3C WebDriver protocol (Debian's
//! `chromium` and `chromium-driver`): a minimal JSON-over-HTTP client to
//! `chromedriver` on a loopback port, enough to open pages, read elements'
//! text, click, and take screenshots. The server's TLS key is pinned with
//! `--ignore-certificate-errors-spki-list` (its root is not in the
//! browser's store); no other certificate error is ignored.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// A running chromedriver with one browser session.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

/// Whether Chromium and chromedriver run; fails under
/// `TRUSTCA_REQUIRE_INTEROP=1` when they do not.
pub fn available() -> bool {
    super::available(
        "chromedriver",
        &["--version"],
        "apt-get install chromium chromium-driver",
    ) && super::available(
        "chromium",
        &["--version"],
        "apt-get install chromium chromium-driver",
    )
}

/// Base64 SHA-256 of the server certificate's SubjectPublicKeyInfo (the
/// form Chromium's SPKI list takes).
pub fn spki_pin(cert_der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).unwrap();
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request to chromedriver; the JSON answer's `value`.
/// chromedriver keeps connections open, so the answer is read by its
/// `Content-Length`.
fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    let (head, mut rest) = loop {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("chromedriver closed the connection".into());
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break (
                String::from_utf8_lossy(&raw[..at]).into_owned(),
                raw[at + 4..].to_vec(),
            );
        }
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while rest.len() < length {
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        rest.extend_from_slice(&buf[..n]);
    }
    let v: Value = serde_json::from_slice(&rest).map_err(|e| format!("{e}: {head}"))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if head.starts_with("HTTP/1.1 2") {
        Ok(value)
    } else {
        Err(value.to_string())
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium that accepts the
    /// server key `spki_pin` and no other certificate error; screenshots
    /// go to `shots`.
    pub fn start(spki_pin: &str, shots: &Path) -> Self {
        std::fs::create_dir_all(shots).unwrap();
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while call(addr, "GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1100,1400",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--ignore-certificate-errors-spki-list={spki_pin}"),
                ]
            }
        }}});
        let v = call(addr, "POST", "/session", Some(&caps)).expect("a Chromium session");
        let session = v["sessionId"].as_str().unwrap().to_owned();
        Self {
            driver,
            addr,
            session,
            _profile: profile,
            shots: shots.to_path_buf(),
        }
    }

    fn session_call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        call(
            self.addr,
            method,
            &format!("/session/{}{path}", self.session),
            body,
        )
    }

    /// Opens `url` and waits for the page to load.
    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(&json!({ "url": url })))
            .unwrap();
    }

    /// The document's title.
    pub fn title(&self) -> String {
        self.session_call("GET", "/title", None)
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.session_call("GET", "/url", None)
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn element(&self, css: &str) -> Option<String> {
        let v = self
            .session_call(
                "POST",
                "/element",
                Some(&json!({"using": "css selector", "value": css})),
            )
            .ok()?;
        v.as_object()?.values().next()?.as_str().map(str::to_owned)
    }

    /// The visible text of the first element matching `css`, if any.
    pub fn text(&self, css: &str) -> Option<String> {
        let id = self.element(css)?;
        let v = self
            .session_call("GET", &format!("/element/{id}/text"), None)
            .ok()?;
        v.as_str().map(str::to_owned)
    }

    /// An attribute of the first element matching `css`.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        let id = self.element(css)?;
        let v = self
            .session_call("GET", &format!("/element/{id}/attribute/{name}"), None)
            .ok()?;
        v.as_str().map(str::to_owned)
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.session_call(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": css})),
        )
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
    }

    /// Clicks the first element matching `css`.
    pub fn click(&self, css: &str) {
        let id = self
            .element(css)
            .unwrap_or_else(|| panic!("no element {css}"));
        self.session_call("POST", &format!("/element/{id}/click"), Some(&json!({})))
            .unwrap();
    }

    /// Waits (up to 10 s) until the current URL ends with `suffix`; the
    /// URL it is at otherwise.
    pub fn wait_for_url(&self, suffix: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url();
            if url.ends_with(suffix) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(url);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page source as the browser holds it.
    pub fn source(&self) -> String {
        self.session_call("GET", "/source", None)
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Saves a screenshot as `<shots>/<name>.png` and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let v = self.session_call("GET", "/screenshot", None).unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.session_call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
