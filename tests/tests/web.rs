//! The web front end (issue 22 §2) against a real server on loopback:
//! - the device's QR code (PNG, fetched with curl) is decoded with an
//!   independent reader (`rqrr`), and headless Chromium (WebDriver) opens
//!   the URL it holds and shows the level and status; the device is
//!   revoked over gRPC and the page shows it; a hostile model name renders
//!   as text and runs nothing; screenshots go to `target/web-screenshots/`;
//! - plain HTTPS with curl: security headers, the JSON variant, 405 on
//!   other methods, the label endpoint's caller check, lookup by serial as
//!   the sector policy says, and 429 past the rate limit.
//!
//! Chromium and chromedriver are optional on a developer's machine (the
//! browser test says it skipped) and required in CI
//! (`TRUSTCA_REQUIRE_INTEROP=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use trustca::client::ClientCredentials;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::revocation_client::RevocationClient;
use trustca_server::ServeOptions;

/// Starts `ca`'s server with the web front end on 127.0.0.1:0.
async fn start_with_web(ca: &mut TestCa) -> std::net::SocketAddr {
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.web_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = trustca_server::start(opts).await.unwrap();
    let web = server.web_addr.expect("the web front end is served");
    ca.server = Some(server);
    web
}

/// Files for curl in one directory: the root, and credentials by name.
struct Curl {
    dir: tempfile::TempDir,
}

impl Curl {
    fn new(root_pem: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.pem"), root_pem).unwrap();
        Self { dir }
    }

    fn add(&self, name: &str, creds: &ClientCredentials) {
        std::fs::write(self.dir.path().join(format!("{name}.pem")), &creds.cert_pem).unwrap();
        std::fs::write(self.dir.path().join(format!("{name}.key")), &creds.key_pem).unwrap();
    }

    /// (status, headers lower-cased, body).
    fn get(&self, url: &str, client: Option<&str>, extra: &[&str]) -> (u16, String, Vec<u8>) {
        let out = self.dir.path().join("out");
        let headers = self.dir.path().join("headers");
        let _ = std::fs::remove_file(&out);
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--cacert"])
            .arg(self.dir.path().join("root.pem"))
            .arg("-o")
            .arg(&out)
            .arg("-D")
            .arg(&headers)
            .args(["-w", "%{http_code}"])
            .args(extra);
        if let Some(name) = client {
            cmd.arg("--cert")
                .arg(self.dir.path().join(format!("{name}.pem")))
                .arg("--key")
                .arg(self.dir.path().join(format!("{name}.key")));
        }
        let o = cmd.arg(url).output().unwrap();
        assert!(
            o.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        (
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap(),
            std::fs::read_to_string(&headers)
                .unwrap_or_default()
                .to_ascii_lowercase(),
            std::fs::read(&out).unwrap_or_default(),
        )
    }

    fn json(&self, url: &str, client: Option<&str>) -> (u16, serde_json::Value) {
        let (code, _, body) = self.get(url, client, &["-H", "Accept: application/json"]);
        (
            code,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// The URL a QR code PNG holds, read with `rqrr` (not the encoder we use).
fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .unwrap()
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the PNG");
    let (_, content) = grids[0].decode().unwrap();
    content
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots")
}

/// Base64 SHA-256 of the server's TLS key, for Chromium's pin.
fn server_pin(data: &Path) -> String {
    let chain = std::fs::read_to_string(data.join("ca/server.pem")).unwrap();
    let leaf = pem::parse_many(chain).unwrap().remove(0);
    browser::spki_pin(leaf.contents())
}

struct World {
    ca: TestCa,
    web: std::net::SocketAddr,
    curl: Curl,
    device: Device,
    ops: ClientCredentials,
}

async fn world() -> World {
    world_with("hems", "hub", "SN-0001", "2.1.0", hems_lv5()).await
}

/// A server with the web front end, Acme's credential for `sector`, an
/// operator of it, and one device.
async fn world_with(
    sector: &str,
    model: &str,
    serial: &str,
    firmware: &str,
    evidence: Vec<pb::EvidenceItem>,
) -> World {
    let mut ca = TestCa::init();
    let web = start_with_web(&mut ca).await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &[sector]);
    let ops = ca.credential(CertificateKind::Operator, "grid-ops", &[sector]);
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let device = enroll_device(
        &mut enroll,
        &root,
        sector,
        "Acme",
        model,
        serial,
        firmware,
        evidence,
    )
    .await;
    let curl = Curl::new(&root);
    curl.add("acme", &acme);
    curl.add("ops", &ops);
    World {
        ca,
        web,
        curl,
        device,
        ops,
    }
}

async fn revoke(w: &World) {
    revoke_noting(w, "").await;
}

/// Revokes the device for key compromise over gRPC, with `note`.
async fn revoke_noting(w: &World, note: &str) {
    let mut rev =
        RevocationClient::new(trustca::client::connect(&w.ca.url(), &w.ops).await.unwrap());
    rev.revoke(pb::RevokeRequest {
        subject: Some(pb::revoke_request::Subject::Identity(
            w.device.identity.clone(),
        )),
        reason: "key-compromise".into(),
        note: note.into(),
    })
    .await
    .unwrap();
}

/// What the manufacturer prints on the label: the device's page URL.
fn label_url(w: &World) -> (String, String) {
    let urn = w.device.identity.replace(':', "%3A");
    let (code, label) = w.curl.json(
        &format!("https://{}/labels/device?urn={urn}", w.web),
        Some("acme"),
    );
    assert_eq!(code, 200, "{label}");
    (
        label["url"].as_str().unwrap().to_owned(),
        label["qr_png"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_opens_the_scanned_label_and_sees_the_revocation() {
    if !browser::available() {
        return;
    }
    let w = world().await;
    let (printed, qr_png) = label_url(&w);
    let (code, headers, png) = w.curl.get(&format!("https://{}{qr_png}", w.web), None, &[]);
    assert_eq!(code, 200);
    assert!(headers.contains("content-type: image/png"), "{headers}");
    let scanned = decode_qr(&png);
    assert_eq!(scanned, printed, "the QR code holds the label URL");
    assert!(
        !scanned.to_ascii_lowercase().contains("sn-0001"),
        "no serial in {scanned}"
    );

    let shots = screenshots();
    let chrome = browser::Browser::start(&server_pin(w.ca.data()), &shots);
    chrome.open(&scanned);
    assert_eq!(chrome.text("#level").as_deref(), Some("5"));
    assert_eq!(
        chrome.attribute("[data-status]", "data-status").as_deref(),
        Some("active")
    );
    assert_eq!(
        chrome.attribute("svg.level", "data-level").as_deref(),
        Some("5")
    );
    assert!(chrome.text("#meaning").unwrap().starts_with("Level 5"));
    // HEMS shows serials (policies/web.toml).
    assert!(chrome.text("table.facts").unwrap().contains("SN-0001"));
    // The QR image on the page loads under the CSP (img-src 'self').
    assert!(
        chrome
            .attribute("img.qr", "src")
            .unwrap()
            .ends_with("/qr.svg")
    );
    chrome.screenshot("device-active");

    revoke(&w).await;
    chrome.open(&scanned);
    assert_eq!(
        chrome.attribute("[data-status]", "data-status").as_deref(),
        Some("revoked")
    );
    assert_eq!(chrome.text("#reason-class").as_deref(), Some("revocation"));
    assert_eq!(
        chrome.count("svg.level rect[fill='#2e7d32']"),
        0,
        "no level bars lit"
    );
    chrome.screenshot("device-revoked");

    chrome.open(&format!("{scanned}?lang=ja"));
    assert_eq!(chrome.text("[data-status]").as_deref(), Some("失効"));
    assert_eq!(chrome.attribute("html", "lang").as_deref(), Some("ja"));
    chrome.screenshot("device-revoked-ja");

    // A hostile model name in the URL comes back as text, and runs nothing.
    let hostile =
        "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";
    let path: String = hostile.bytes().map(|b| format!("%{b:02X}")).collect();
    chrome.open(&format!("https://{}/label/hems/Acme/{path}", w.web));
    assert_ne!(chrome.title(), "pwned");
    assert!(
        chrome.text("#message").unwrap().contains(hostile),
        "shown as text"
    );
    assert_eq!(
        chrome.count("main img, main script"),
        0,
        "no element made from it"
    );
    chrome.screenshot("hostile-model-name");
}

#[tokio::test(flavor = "multi_thread")]
async fn public_pages_over_https_carry_their_headers_and_refusals() {
    let w = world().await;
    let (printed, _) = label_url(&w);
    let base = format!("https://{}", w.web);
    let path = printed.strip_prefix(&base).unwrap().to_owned();

    let (code, headers, body) = w.curl.get(&printed, None, &[]);
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("id=\"level\">5<"), "{page}");
    for h in [
        "content-security-policy: default-src 'none'; style-src 'sha256-",
        "script-src 'none'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: same-origin",
    ] {
        assert!(headers.contains(h), "{h} in {headers}");
    }
    // No external resource anywhere on the page.
    for external in ["src=\"http", "href=\"http", "url(", "@import"] {
        assert!(!page.contains(external), "{external} in {page}");
    }
    assert!(
        headers.contains("cache-control: public, no-cache"),
        "{headers}"
    );

    // The JSON variant at the same URL.
    let (code, label) = w.curl.json(&printed, None);
    assert_eq!(code, 200);
    assert_eq!(label["level"], 5);
    assert_eq!(label["status"], "active");
    assert_eq!(label["serial"], "SN-0001");

    // Nothing changes state over a public URL, whatever the method.
    for method in ["POST", "PUT", "DELETE"] {
        let (code, headers, _) = w.curl.get(&printed, None, &["-X", method]);
        assert_eq!(code, 405, "{method}");
        assert!(headers.contains("allow: get, head"), "{headers}");
    }

    // The label endpoint wants the manufacturer's (or an operator's) certificate.
    let urn = w.device.identity.replace(':', "%3A");
    let (code, _) = w
        .curl
        .json(&format!("{base}/labels/device?urn={urn}"), None);
    assert_eq!(code, 401);
    let other =
        w.ca.credential(CertificateKind::Manufacturer, "Other", &["hems"]);
    w.curl.add("other", &other);
    let (code, refusal) = w
        .curl
        .json(&format!("{base}/labels/device?urn={urn}"), Some("other"));
    assert_eq!(code, 403, "{refusal}");
    let (code, _) = w
        .curl
        .json(&format!("{base}/labels/device?urn={urn}"), Some("ops"));
    assert_eq!(code, 200);

    // HEMS allows lookup by serial; forged and unknown ids are 404.
    let (code, headers, _) = w.curl.get(&format!("{base}/lookup?urn={urn}"), None, &[]);
    assert_eq!(code, 303);
    assert!(
        headers.contains(&format!("location: {}", path.to_ascii_lowercase())),
        "{headers}"
    );
    let (code, _) = w.curl.json(
        &format!("{base}/device/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        None,
    );
    assert_eq!(code, 404);

    // Revoked: the JSON says so at once (no stale cache on the server).
    revoke(&w).await;
    let (_, label) = w.curl.json(&printed, None);
    assert_eq!(label["status"], "revoked");
    assert_eq!(label["reason_class"], "revocation");
}

#[tokio::test(flavor = "multi_thread")]
async fn cars_have_no_serial_lookup_and_no_serial_on_the_page() {
    let w = world_with(
        "automotive",
        "roadster",
        "VIN1HGCM82633A004352",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let (car, curl, web) = (&w.device, &w.curl, w.web);
    let urn = car.identity.replace(':', "%3A");
    let (code, refusal) = curl.json(&format!("https://{web}/lookup?urn={urn}"), None);
    assert_eq!(code, 404);
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .contains("no lookup by serial")
    );
    let (code, label) = curl.json(
        &format!("https://{web}/labels/device?urn={urn}"),
        Some("acme"),
    );
    assert_eq!(code, 200);
    let url = label["url"].as_str().unwrap();
    assert!(!url.to_ascii_lowercase().contains("vin1hgcm"), "{url}");
    let (code, page) = curl.json(url, None);
    assert_eq!(code, 200);
    assert_eq!(page["serial"], serde_json::Value::Null);
    assert!(
        !page.to_string().to_ascii_lowercase().contains("vin1hgcm"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn public_pages_are_rate_limited_per_client() {
    let mut ca = TestCa::init();
    let policy = ca.data().join("policies/web.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("requests_per_minute = 120", "requests_per_minute = 5"),
    )
    .unwrap();
    let web = start_with_web(&mut ca).await;
    let curl = Curl::new(&ca.root_pem());
    let mut codes = Vec::new();
    for _ in 0..7 {
        let (code, headers, _) = curl.get(&format!("https://{web}/"), None, &[]);
        if code == 429 {
            assert!(headers.contains("retry-after: "), "{headers}");
        }
        codes.push(code);
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429]);
}

/// `trustca web login` as `creds`: the one-time console link.
fn console_link(w: &World, creds: &ClientCredentials, name: &str) -> String {
    let dir = w.curl.dir.path();
    let mut args = client_args(&w.ca, dir, name, creds);
    let server = args.iter().position(|a| a == "--server").unwrap();
    args[server + 1] = format!("https://{}", w.web);
    let out = Command::new(trustca_bin())
        .args(["web", "login"])
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Enrolls `serial` with `evidence`; its live level and status from `GetTrust`.
async fn enroll_more(
    w: &World,
    serial: &str,
    evidence: Vec<pb::EvidenceItem>,
) -> (Device, u32, String) {
    let acme =
        w.ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let mut enroll = w.ca.client(&acme).await;
    let d = enroll_device(
        &mut enroll,
        &w.ca.root_pem(),
        "hems",
        "Acme",
        "hub",
        serial,
        "2.1.0",
        evidence,
    )
    .await;
    let mut trust = trust_client(&w.ca.url(), &w.ops).await;
    let view = trust
        .get_trust(pb::GetTrustRequest {
            subject: Some(pb::get_trust_request::Subject::Identity(d.identity.clone())),
        })
        .await
        .unwrap()
        .into_inner();
    (d, view.live_level, view.status)
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_signs_into_the_console_and_sees_what_the_store_holds() {
    if !browser::available() {
        return;
    }
    let w = world().await;
    let (_, l2, s2) = enroll_more(&w, "SN-0002", hems_lv5()).await;
    let basic = vec![evidence("secure-update", "", "true", "")];
    let (_, l3, s3) = enroll_more(&w, "SN-0003", basic).await;
    // The first device is revoked with a hostile note; GetTrust says so.
    let hostile = "<script>document.title='pwned'</script>";
    revoke_noting(&w, hostile).await;
    let mut expected = std::collections::BTreeMap::<String, u64>::new();
    for (level, status) in [(l2, s2), (l3, s3)] {
        assert_eq!(status, "active");
        *expected.entry(format!("Lv.{level}")).or_default() += 1;
    }
    *expected.entry("revoked".into()).or_default() += 1;

    let link = console_link(&w, &w.ops, "ops");
    assert!(
        link.starts_with(&format!("https://{}/console/login?token=", w.web)),
        "{link}"
    );
    let chrome = browser::Browser::start(&server_pin(w.ca.data()), &screenshots());
    chrome.open(&link);
    chrome.screenshot("console-sign-in");
    chrome.click("#sign-in");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !chrome.url().ends_with("/console") {
        if std::time::Instant::now() > deadline {
            chrome.screenshot("console-sign-in-failed");
            panic!("still at {}: {:?}", chrome.url(), chrome.text("main"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(chrome.text("#who").unwrap().contains("grid-ops"));
    for bar in [
        "Lv.1",
        "Lv.2",
        "Lv.3",
        "Lv.4",
        "Lv.5",
        "suspended",
        "revoked",
    ] {
        let shown: u64 = chrome
            .attribute(
                &format!("#sector-hems rect[data-label='{bar}']"),
                "data-count",
            )
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(shown, expected.get(bar).copied().unwrap_or(0), "{bar}");
    }
    chrome.screenshot("console-levels");

    chrome.open(&format!("https://{}/console/revocations", w.web));
    let list = chrome.text("#changes").unwrap();
    // Both entries of the revocation: the certificate's and the trust record's.
    assert!(list.contains("certificate.revoked"), "{list}");
    assert!(
        list.contains("trust.revoked hems/acme/hub/sn-0001"),
        "{list}"
    );
    assert!(
        list.contains(hostile),
        "the hostile note is shown as text: {list}"
    );
    assert_ne!(chrome.title(), "pwned");
    chrome.screenshot("console-revocations");

    // Two tree heads (one is signed every 10 s while the log grows; the
    // log grows here by enrolling more), then the consistency proof is
    // checked by the server and in the browser.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for n in 10.. {
        chrome.open(&format!("https://{}/console/audit", w.web));
        if chrome.text("#server-check").is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no second tree head within 60 s"
        );
        enroll_more(&w, &format!("SN-00{n}"), hems_lv5()).await;
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    }
    assert_eq!(
        chrome.text("#server-check").as_deref(),
        Some("consistent (checked by the server)")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while chrome
        .text("#browser-check")
        .unwrap_or_default()
        .starts_with("checking")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the in-browser check did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        chrome.text("#browser-check").as_deref(),
        Some("consistent (checked in this browser)")
    );
    chrome.screenshot("console-audit");

    chrome.click("#sign-out");
    chrome.open(&format!("https://{}/console", w.web));
    assert!(chrome.text("#message").unwrap().contains("not signed in"));
}

#[tokio::test(flavor = "multi_thread")]
async fn console_sign_in_csrf_and_methods_over_https() {
    let w = world().await;
    let base = format!("https://{}", w.web);
    // A login link needs an operator's or auditor's certificate.
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/login-link"), None, &["-X", "POST"]);
    assert_eq!(code, 401);
    let (code, _, _) = w.curl.get(
        &format!("{base}/console/login-link"),
        Some("acme"),
        &["-X", "POST"],
    );
    assert_eq!(code, 401);
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/login-link"), Some("ops"), &[]);
    assert_eq!(code, 405, "a link is never made over GET");
    let token = curl_login_token(&w);

    // Opening the link changes nothing; posting its form from elsewhere is refused.
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/login?token={token}"), None, &[]);
    assert_eq!(code, 200);
    let form = format!("token={token}");
    let (code, _, _) = w.curl.get(
        &format!("{base}/console/login"),
        None,
        &["-d", &form, "-H", "Origin: https://evil.example"],
    );
    assert_eq!(code, 403);
    let (code, headers, _) = w
        .curl
        .get(&format!("{base}/console/login"), None, &["-d", &form]);
    assert_eq!(code, 303);
    let session = raw_set_cookie(&w);
    let cookie_line = headers
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap()
        .to_owned();
    for attr in [
        "__host-trustca-console=",
        "path=/",
        "secure",
        "httponly",
        "samesite=strict",
        "max-age=900",
    ] {
        assert!(cookie_line.contains(attr), "{attr} in {cookie_line}");
    }
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/login"), None, &["-d", &form]);
    assert_eq!(code, 403, "a link works once");
    let cookie = format!("Cookie: {}", session.split(';').next().unwrap());
    let (code, _, body) = w
        .curl
        .get(&format!("{base}/console"), None, &["-H", &cookie]);
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    // CSV export of a list.
    let (code, headers, body) = w.curl.get(
        &format!("{base}/console/changes?format=csv"),
        None,
        &["-H", &cookie],
    );
    assert_eq!(code, 200);
    assert!(headers.contains("content-type: text/csv"), "{headers}");
    assert!(
        headers.contains("content-disposition: attachment"),
        "{headers}"
    );
    let csv = String::from_utf8(body).unwrap();
    assert!(csv.starts_with("\"#\",\"When\""), "{csv}");

    // Forms need the session's CSRF token; nothing changes over GET.
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/logout"), None, &["-H", &cookie]);
    assert_eq!(code, 405);
    for bad in ["", "csrf=wrong"] {
        let (code, _, _) = w.curl.get(
            &format!("{base}/console/logout"),
            None,
            &["-H", &cookie, "-d", bad],
        );
        assert_eq!(code, 403, "{bad:?}");
    }
    let good = format!("csrf={csrf}");
    let (code, _, _) = w.curl.get(
        &format!("{base}/console/logout"),
        None,
        &[
            "-H",
            &cookie,
            "-H",
            "Origin: https://evil.example",
            "-d",
            &good,
        ],
    );
    assert_eq!(code, 403, "a form from another site");
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console"), None, &["-H", &cookie]);
    assert_eq!(code, 200, "still signed in after the refused forms");
    let (code, _, _) = w.curl.get(
        &format!("{base}/console/logout"),
        None,
        &["-H", &cookie, "-d", &good],
    );
    assert_eq!(code, 303);
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console"), None, &["-H", &cookie]);
    assert_eq!(code, 401, "signed out");
}

/// A one-time console login token for the operator, over mutual TLS.
fn curl_login_token(w: &World) -> String {
    let url = format!("https://{}/console/login-link", w.web);
    let (code, _, body) = w.curl.get(&url, Some("ops"), &["-X", "POST"]);
    assert_eq!(code, 200);
    let link: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = link["url"].as_str().unwrap();
    url.split("token=").nth(1).unwrap().to_owned()
}

/// The `Set-Cookie` value of curl's last answer, as sent (the session id
/// is case-sensitive).
fn raw_set_cookie(w: &World) -> String {
    let raw = std::fs::read_to_string(w.curl.dir.path().join("headers")).unwrap();
    raw.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().to_owned())
        })
        .unwrap()
}

/// Signs into the console with curl as the operator: the `Cookie` header.
fn curl_console_cookie(w: &World) -> String {
    let form = format!("token={}", curl_login_token(w));
    let url = format!("https://{}/console/login", w.web);
    let (code, _, _) = w.curl.get(&url, None, &["-d", &form]);
    assert_eq!(code, 303);
    format!("Cookie: {}", raw_set_cookie(w).split(';').next().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_model_has_a_label_page_and_shows_its_suspension() {
    use trustca_proto::v1::model_registry_client::ModelRegistryClient;
    let w = world().await;
    let acme =
        w.ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let lab =
        w.ca.certification_body("Lab", &["hems"], &["iec-62443-4-2"]);
    let selector = || {
        Some(pb::ModelSelector {
            sector: "hems".into(),
            manufacturer: "Acme".into(),
            model: "hub".into(),
            firmware: "2.0..2.9".into(),
        })
    };
    let connect = |c: &ClientCredentials| {
        let (url, c) = (w.ca.url(), c.clone());
        async move { ModelRegistryClient::new(trustca::client::connect(&url, &c).await.unwrap()) }
    };
    connect(&acme)
        .await
        .register_model(pb::RegisterModelRequest {
            model: selector(),
            declared: vec![
                evidence("hardware-root-of-trust", "", "secure-element", ""),
                evidence("secure-update", "", "true", ""),
                evidence("supported-until", "", "2036-01-31", ""),
            ],
            self_assessed: vec![],
            reason: "new model".into(),
        })
        .await
        .unwrap();
    connect(&lab)
        .await
        .add_evaluation(pb::AddEvaluationRequest {
            model: selector(),
            evaluation: Some(pb::ModelEvaluationInput {
                scheme: "iec-62443-4-2".into(),
                result: "SL3".into(),
                certificate_number: "LAB-<b>42</b>".into(),
                evaluated_at: date_from_today(-30),
                valid_until: date_from_today(700),
            }),
            reason: "report 1".into(),
        })
        .await
        .unwrap();
    let hostile = "<img src=x onerror=alert(1)> breach";
    connect(&w.ops)
        .await
        .suspend_model(pb::SuspendModelRequest {
            model: selector(),
            lift: false,
            reason: hostile.into(),
        })
        .await
        .unwrap();

    let url = format!("https://{}/label/hems/Acme/hub", w.web);
    let (code, label) = w.curl.json(&url, None);
    assert_eq!(code, 200, "{label}");
    let range = &label["ranges"][0];
    assert_eq!(range["firmware"], "2.0..2.9");
    assert_eq!(range["status"], "suspended");
    assert_eq!(range["reason"], hostile);
    assert_eq!(range["supported_until"], "2036-01-31");
    assert_eq!(range["evaluations"][0]["scheme"], "iec-62443-4-2");
    assert_eq!(range["evaluations"][0]["kind"], "third-party");
    assert_eq!(range["evaluations"][0]["state"], "live");
    let (_, _, html) = w.curl.get(&url, None, &[]);
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt; breach"),
        "{html}"
    );
    assert!(html.contains("LAB-&lt;b&gt;42&lt;/b&gt;"), "{html}");
    assert!(
        !html.contains("<img src=x") && !html.contains("<b>42"),
        "{html}"
    );
    // The model's QR code opens this page.
    let (_, _, png) = w.curl.get(&format!("{url}/qr.png"), None, &[]);
    assert_eq!(decode_qr(&png), url);

    // The device of that model now shows the suspension, its range,
    // support period and evaluation.
    let (printed, _) = label_url(&w);
    let (_, device) = w.curl.json(&printed, None);
    assert_eq!(device["status"], "suspended");
    assert_eq!(device["reason_class"], "model registry");
    assert_eq!(device["firmware_range"], "2.0..2.9");
    assert_eq!(device["supported_until"], "2036-01-31");
    assert_eq!(device["evaluations"][0]["result"], "SL3");

    // The console's registry list, filtered to suspended models, and its CSV.
    let cookie = curl_console_cookie(&w);
    let base = format!("https://{}", w.web);
    let (code, _, page) = w.curl.get(
        &format!("{base}/console/models?status=suspended"),
        None,
        &["-H", &cookie],
    );
    assert_eq!(code, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("hems/Acme/hub firmware 2.0..2.9"), "{page}");
    assert!(page.contains("&lt;img src=x"), "{page}");
    let (_, _, page) = w.curl.get(
        &format!("{base}/console/models?status=certified"),
        None,
        &["-H", &cookie],
    );
    assert!(!String::from_utf8(page).unwrap().contains("hems/Acme/hub"));
    let (_, _, csv) = w.curl.get(
        &format!("{base}/console/models?format=csv"),
        None,
        &["-H", &cookie],
    );
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("\"suspended\""), "{csv}");
}
