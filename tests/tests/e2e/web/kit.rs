//! What the web tests share: a server with the web front end, curl with
//! credentials, the QR reader, the console sign-in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;
use trustca_api::client::ClientCredentials;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::revocation_client::RevocationClient;
use trustca_server::ServeOptions;

/// How often the web tests' servers sign an audit tree head.
pub(crate) const WEB_TREE_HEAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts `ca`'s server with the web front end on 127.0.0.1:0.
pub(crate) async fn start_with_web(ca: &mut TestCa) -> std::net::SocketAddr {
    let server = try_start_with_web(ca).await.unwrap();
    let web = server.web_addr.expect("the web front end is served");
    ca.server = Some(server);
    web
}

/// Starts a server with the web front end on `ca`'s data directory, or why not.
pub(crate) async fn try_start_with_web(
    ca: &TestCa,
) -> Result<trustca_server::RunningServer, trustca_server::ServerError> {
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.web_listen = Some("127.0.0.1:0".parse().unwrap());
    // A tree head every second, not every 10 s: the console's audit page
    // needs two to prove consistency (console.rs).
    opts.tree_head_interval = WEB_TREE_HEAD_INTERVAL;
    trustca_server::start(opts).await
}

/// Files for curl in one directory: the root, and credentials by name.
pub(crate) struct Curl {
    pub(crate) dir: tempfile::TempDir,
}

impl Curl {
    pub(crate) fn new(root_pem: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.pem"), root_pem).unwrap();
        Self { dir }
    }

    pub(crate) fn add(&self, name: &str, creds: &ClientCredentials) {
        std::fs::write(self.dir.path().join(format!("{name}.pem")), &creds.cert_pem).unwrap();
        std::fs::write(self.dir.path().join(format!("{name}.key")), &creds.key_pem).unwrap();
    }

    /// (status, headers lower-cased, body).
    pub(crate) fn get(
        &self,
        url: &str,
        client: Option<&str>,
        extra: &[&str],
    ) -> (u16, String, Vec<u8>) {
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

    pub(crate) fn json(&self, url: &str, client: Option<&str>) -> (u16, serde_json::Value) {
        let (code, _, body) = self.get(url, client, &["-H", "Accept: application/json"]);
        (
            code,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// The URL a QR code PNG holds, read with `rqrr` (not the encoder we use).
pub(crate) fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .unwrap()
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the PNG");
    let (_, content) = grids[0].decode().unwrap();
    content
}

pub(crate) fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots")
}

/// Base64 SHA-256 of the server's TLS key, for Chromium's pin.
pub(crate) fn server_pin(data: &Path) -> String {
    let chain = std::fs::read_to_string(data.join("ca/server.pem")).unwrap();
    let leaf = pem::parse_many(chain).unwrap().remove(0);
    browser::spki_pin(leaf.contents())
}

pub(crate) struct World {
    pub(crate) ca: TestCa,
    pub(crate) web: std::net::SocketAddr,
    pub(crate) curl: Curl,
    pub(crate) device: Device,
    pub(crate) ops: ClientCredentials,
}

pub(crate) async fn world() -> World {
    world_in(
        TestCa::init(),
        "hems",
        "hub",
        "SN-0001",
        "2.1.0",
        hems_lv5(),
    )
    .await
}

/// A server with the web front end on `ca`, Acme's credential for
/// `sector`, an operator of it, and one device.
pub(crate) async fn world_in(
    mut ca: TestCa,
    sector: &str,
    model: &str,
    serial: &str,
    firmware: &str,
    evidence: Vec<pb::EvidenceItem>,
) -> World {
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

pub(crate) async fn revoke(w: &World) {
    revoke_noting(w, "").await;
}

/// Revokes the device for key compromise over gRPC, with `note`.
pub(crate) async fn revoke_noting(w: &World, note: &str) {
    let mut rev = RevocationClient::new(
        trustca_api::client::connect(&w.ca.url(), &w.ops)
            .await
            .unwrap(),
    );
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
pub(crate) fn label_url(w: &World) -> (String, String) {
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

/// `trustca web login` as `creds`: the one-time console link.
pub(crate) fn console_link(w: &World, creds: &ClientCredentials, name: &str) -> String {
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
pub(crate) async fn enroll_more(
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

/// A one-time console login token for the operator, over mutual TLS.
pub(crate) fn curl_login_token(w: &World) -> String {
    let url = format!("https://{}/console/login-link", w.web);
    let (code, _, body) = w.curl.get(&url, Some("ops"), &["-X", "POST"]);
    assert_eq!(code, 200);
    let link: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let url = link["url"].as_str().unwrap();
    url.split("token=").nth(1).unwrap().to_owned()
}

/// The `Set-Cookie` value of curl's last answer, as sent (the session id
/// is case-sensitive).
pub(crate) fn raw_set_cookie(w: &World) -> String {
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
pub(crate) fn curl_console_cookie(w: &World) -> String {
    let form = format!("token={}", curl_login_token(w));
    let url = format!("https://{}/console/login", w.web);
    let (code, _, _) = w.curl.get(&url, None, &["-d", &form]);
    assert_eq!(code, 303);
    format!("Cookie: {}", raw_set_cookie(w).split(';').next().unwrap())
}

/// Headless Chromium signed into the console as the operator with a link
/// from `trustca web login`.
pub(crate) fn chromium_console(w: &World) -> browser::Browser {
    let link = console_link(w, &w.ops, "ops");
    assert!(
        link.starts_with(&format!("https://{}/console/login?token=", w.web)),
        "{link}"
    );
    let chrome = browser::Browser::start(&server_pin(w.ca.data()), &screenshots());
    chrome.open(&link);
    chrome.screenshot("console-sign-in");
    chrome.click("#sign-in");
    if let Err(at) = chrome.wait_for_url("/console") {
        chrome.screenshot("console-sign-in-failed");
        panic!("still at {at}: {:?}", chrome.text("main"));
    }
    chrome
}

/// Sets a device's live level over gRPC as the operator.
pub(crate) async fn set_level(w: &World, identity: &str, level: u32) {
    let mut trust = trust_client(&w.ca.url(), &w.ops).await;
    trust
        .change_trust(pb::ChangeTrustRequest {
            identity: identity.into(),
            change: Some(pb::change_trust_request::Change::SetLevel(level)),
            reason: "firmware finding".into(),
        })
        .await
        .unwrap();
}
