//! EST (RFC 7030) end to end with clients we did not write: `openssl req`
//! makes the CSRs, `curl` posts them over mutual TLS, `openssl pkcs7` reads
//! the certs-only answers and `openssl verify` checks the chains; Python's
//! `requests` + `cryptography` enroll too. Refusals are checked for their
//! status, their plain-text body and that nothing was stored.
//!
//! curl and the Python modules are optional on a developer's machine (the
//! test says it skips them) and required under `TRUSTCA_REQUIRE_INTEROP=1`
//! (CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

// Their own file by subject; they share this module's helpers.
mod refusals;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use trustca_api::client::{ClientCredentials, connect};
use trustca_api::est::FIRMWARE_VERSION_OID;
use trustca_model::{CertificateKind, trust_extension};
use trustca_proto::v1 as pb;
use trustca_server::ServeOptions;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Starts `ca`'s server with gRPC and EST, both on loopback port 0; returns
/// the EST base URL.
pub(crate) async fn serve_est(ca: &mut TestCa) -> String {
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.est_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = trustca_server::start(opts).await.unwrap();
    let est = format!("https://{}/.well-known/est", server.est_addr.unwrap());
    ca.server = Some(server);
    est
}

/// A fresh CA serving gRPC and EST.
pub(crate) async fn start_with_est() -> (TestCa, String) {
    let mut ca = TestCa::init();
    let est = serve_est(&mut ca).await;
    (ca, est)
}

/// The audit log's size (the server must be stopped).
fn audit_size(ca: &TestCa) -> u64 {
    use trustca_store::Storage;
    trustca_store::SledStorage::open(&ca.data().join("db"))
        .unwrap()
        .audit_head()
        .unwrap()
        .0
}

/// Files for curl and openssl in one directory.
pub(crate) struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    pub(crate) fn new(ca: &TestCa) -> Self {
        let w = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(w.path("root.pem"), ca.root_pem()).unwrap();
        w
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn write_creds(&self, name: &str, creds: &ClientCredentials) {
        std::fs::write(self.path(&format!("{name}.pem")), &creds.cert_pem).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), &creds.key_pem).unwrap();
    }

    /// `openssl req` with a config naming the device in the subject and the
    /// firmware version in trustca's CSR attribute; base64 as EST wants it.
    fn csr(&self, name: &str, subject: &[(&str, &str)], firmware: Option<&str>) -> PathBuf {
        let dn: String = subject
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        let (attributes, attrs) = match firmware {
            Some(v) => (
                "attributes = attrs\n",
                format!("[attrs]\nfirmwareVersion = {v}\n"),
            ),
            None => ("", String::new()),
        };
        let cnf = format!(
            "oid_section = trustca_oids\n[trustca_oids]\nfirmwareVersion = {FIRMWARE_VERSION_OID}\n\
             [req]\nprompt = no\ndistinguished_name = dn\n{attributes}[dn]\n{dn}{attrs}"
        );
        let cnf_path = self.path(&format!("{name}.cnf"));
        std::fs::write(&cnf_path, cnf).unwrap();
        let der = self.path(&format!("{name}.csr.der"));
        run(Command::new("openssl")
            .args([
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-outform", "DER", "-keyout"])
            .arg(self.path(&format!("{name}.key")))
            .arg("-config")
            .arg(&cnf_path)
            .arg("-out")
            .arg(&der));
        let b64 = self.path(&format!("{name}.csr.b64"));
        run(Command::new("openssl")
            .args(["base64", "-in"])
            .arg(&der)
            .arg("-out")
            .arg(&b64));
        b64
    }

    /// [`Work::csr`] for device `(manufacturer, model, serial)`: the
    /// subject's O, CN and serialNumber.
    fn device_csr(
        &self,
        name: &str,
        (manufacturer, model, serial): (&str, &str, &str),
        firmware: Option<&str>,
    ) -> PathBuf {
        self.csr(
            name,
            &[("O", manufacturer), ("CN", model), ("serialNumber", serial)],
            firmware,
        )
    }

    /// curl POSTs the CSR `csr` (`application/pkcs10`) to `url` with the
    /// credential `client`: returns (HTTP status, body).
    pub(crate) fn post_csr(&self, url: &str, client: &str, csr: &Path) -> (u16, Vec<u8>) {
        let (code, _, body) = self.curl(url, Some(client), Some((csr, "application/pkcs10")));
        (code, body)
    }

    /// curl: returns (HTTP status, headers, body).
    pub(crate) fn curl(
        &self,
        url: &str,
        client: Option<&str>,
        body: Option<(&Path, &str)>,
    ) -> (u16, String, Vec<u8>) {
        self.curl_with(&[], url, client, body)
    }

    /// [`Work::curl`] with more curl options (`--http1.0`, `--http2`).
    fn curl_with(
        &self,
        options: &[&str],
        url: &str,
        client: Option<&str>,
        body: Option<(&Path, &str)>,
    ) -> (u16, String, Vec<u8>) {
        let out = self.path("curl.out");
        let headers = self.path("curl.headers");
        let _ = std::fs::remove_file(&out);
        let mut cmd = Command::new("curl");
        cmd.args(options)
            .args(["-sS", "--cacert"])
            .arg(self.path("root.pem"))
            .arg("-o")
            .arg(&out)
            .arg("-D")
            .arg(&headers)
            .args(["-w", "%{http_code}"]);
        if let Some(name) = client {
            cmd.arg("--cert")
                .arg(self.path(&format!("{name}.pem")))
                .arg("--key")
                .arg(self.path(&format!("{name}.key")));
        }
        if let Some((file, content_type)) = body {
            cmd.arg("--data-binary")
                .arg(format!("@{}", file.display()))
                .arg("-H")
                .arg(format!("Content-Type: {content_type}"));
        }
        let o = cmd.arg(url).output().unwrap();
        assert!(
            o.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let code = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        (
            code,
            std::fs::read_to_string(&headers).unwrap_or_default(),
            std::fs::read(&out).unwrap_or_default(),
        )
    }

    /// `openssl base64 -d` then `openssl pkcs7 -print_certs`: the PEM certificates.
    pub(crate) fn pkcs7_certs(&self, name: &str, body: &[u8]) -> Vec<String> {
        let b64 = self.path(&format!("{name}.p7.b64"));
        let der = self.path(&format!("{name}.p7.der"));
        let pem = self.path(&format!("{name}.pem"));
        std::fs::write(&b64, body).unwrap();
        run(Command::new("openssl")
            .args(["base64", "-d", "-in"])
            .arg(&b64)
            .arg("-out")
            .arg(&der));
        run(Command::new("openssl")
            .args(["pkcs7", "-inform", "DER", "-print_certs", "-in"])
            .arg(&der)
            .arg("-out")
            .arg(&pem));
        pem::parse_many(std::fs::read(&pem).unwrap())
            .unwrap()
            .iter()
            .map(pem::encode)
            .collect()
    }
}

pub(crate) fn run(cmd: &mut Command) -> String {
    let o = cmd.output().expect("openssl must be installed");
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn der_of(pem_text: &str) -> Vec<u8> {
    pem::parse(pem_text).unwrap().into_contents()
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Registers a model over gRPC as its manufacturer (EST enrolls
/// registered models only: it has no evidence channel). Declared evidence
/// secure update earns Lv.2 in every shipped sector.
pub(crate) async fn register_model(
    ca: &TestCa,
    creds: &ClientCredentials,
    sector: &str,
    model: &str,
    firmware: &str,
) {
    pb::model_registry_client::ModelRegistryClient::new(connect(&ca.url(), creds).await.unwrap())
        .register_model(pb::RegisterModelRequest {
            model: Some(pb::ModelSelector {
                sector: sector.into(),
                manufacturer: "Acme".into(),
                model: model.into(),
                firmware: firmware.into(),
            }),
            declared: vec![evidence("secure-update", "", "true", "")],
            self_assessed: vec![],
            reason: "EST test".into(),
        })
        .await
        .unwrap();
}

pub(crate) async fn trust_client(
    ca: &TestCa,
    creds: &ClientCredentials,
) -> pb::trust_database_client::TrustDatabaseClient<tonic::transport::Channel> {
    pb::trust_database_client::TrustDatabaseClient::new(connect(&ca.url(), creds).await.unwrap())
}

pub(crate) async fn get_trust(
    client: &mut pb::trust_database_client::TrustDatabaseClient<tonic::transport::Channel>,
    urn: &str,
) -> Result<pb::TrustAnswer, tonic::Status> {
    client
        .get_trust(pb::GetTrustRequest {
            subject: Some(pb::get_trust_request::Subject::Identity(urn.into())),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_and_openssl_enroll_reenroll_and_read_cacerts() {
    if !available("curl", &["--version"], "apt-get install curl") {
        return;
    }
    let (ca, est) = start_with_est().await;
    let w = Work::new(&ca);
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems"],
    );
    w.write_creds("acme", &acme);
    register_model(&ca, &acme, "automotive", "EV-200", "1.0.0..1.9.9").await;

    // cacerts without a client certificate: the sector CA and the root.
    let (code, headers, body) = w.curl(&format!("{est}/automotive/cacerts"), None, None);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/pkcs7-mime; smime-type=certs-only")
    );
    assert_eq!(
        header(&headers, "content-transfer-encoding"),
        Some("base64")
    );
    let cas = w.pkcs7_certs("cacerts", &body);
    assert_eq!(cas.len(), 2, "sector CA and root");
    let root_der = der_of(&ca.root_pem());
    let sector_pem = cas
        .iter()
        .find(|p| der_of(p) != root_der)
        .expect("the sector CA")
        .clone();
    assert!(
        cas.iter().any(|p| der_of(p) == root_der),
        "the root is included"
    );
    std::fs::write(w.path("automotive-ca.pem"), &sector_pem).unwrap();
    // Without a label: every sector CA and the root.
    let (code, _, body) = w.curl(&format!("{est}/cacerts"), None, None);
    assert_eq!(code, 200);
    assert_eq!(w.pkcs7_certs("all-cacerts", &body).len(), 4);

    // csrattrs: base64 DER that openssl parses as a SEQUENCE naming P-256.
    let (code, headers, body) = w.curl(&format!("{est}/automotive/csrattrs"), None, None);
    assert_eq!(code, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/csrattrs")
    );
    std::fs::write(w.path("csrattrs.b64"), &body).unwrap();
    run(Command::new("openssl")
        .args(["base64", "-d", "-in"])
        .arg(w.path("csrattrs.b64"))
        .arg("-out")
        .arg(w.path("csrattrs.der")));
    let parsed = run(Command::new("openssl")
        .args(["asn1parse", "-inform", "DER", "-in"])
        .arg(w.path("csrattrs.der")));
    for want in [
        "id-ecPublicKey",
        "prime256v1",
        "ecdsa-with-SHA256",
        "serialNumber",
        FIRMWARE_VERSION_OID,
    ] {
        assert!(parsed.contains(want), "csrattrs lacks {want}: {parsed}");
    }

    // simpleenroll: openssl req + curl with the manufacturer credential.
    let csr = w.device_csr("dev", ("Acme", "EV-200", "SN0001"), Some("1.0.0"));
    let (code, headers, body) = w.curl(
        &format!("{est}/automotive/simpleenroll"),
        Some("acme"),
        Some((&csr, "application/pkcs10")),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/pkcs7-mime; smime-type=certs-only")
    );
    let issued = w.pkcs7_certs("issued", &body);
    assert_eq!(
        issued.len(),
        1,
        "the answer holds the issued certificate only"
    );
    std::fs::write(w.path("leaf.pem"), &issued[0]).unwrap();
    let verified = run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(w.path("root.pem"))
        .arg("-untrusted")
        .arg(w.path("automotive-ca.pem"))
        .arg(w.path("leaf.pem")));
    assert!(verified.contains("OK"), "{verified}");
    let leaf_der = der_of(&issued[0]);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    let ext = trust_extension(&leaf, &Default::default())
        .unwrap()
        .unwrap();
    assert_eq!(ext.kind, CertificateKind::LongTerm);
    assert_eq!(ext.sector.as_str(), "automotive");
    assert_eq!(
        ext.level.unwrap().get(),
        2,
        "the level the model registry gives EV-200"
    );
    assert!(
        ext.basis.iter().any(|b| b.evidence == "registered-model"),
        "{:?}",
        ext.basis
    );
    let urn = "urn:trustca:automotive:Acme:EV-200:SN0001";
    let san = format!(
        "{:?}",
        leaf.subject_alternative_name().unwrap().unwrap().value
    );
    assert!(san.contains(urn), "{san}");
    // The key is the one openssl generated.
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(w.path("dev.key"))
        .arg("-out")
        .arg(w.path("dev.pub.der")));
    assert_eq!(
        std::fs::read(w.path("dev.pub.der")).unwrap(),
        leaf.public_key().raw
    );

    // The store has it, as gRPC sees it.
    let mut trust = trust_client(&ca, &acme).await;
    let answer = get_trust(&mut trust, urn).await.unwrap();
    assert_eq!((answer.live_level, answer.record_version), (2, 1));
    // A second simpleenroll of the same device is a conflict.
    let again = w.device_csr("again", ("Acme", "EV-200", "SN0001"), None);
    let (code, body) = w.post_csr(&format!("{est}/automotive/simpleenroll"), "acme", &again);
    assert_eq!(code, 409, "{}", String::from_utf8_lossy(&body));

    // simplereenroll: the device's certificate (and its CA) as client
    // certificate, a new key, the same identity.
    std::fs::write(w.path("device.pem"), format!("{}{sector_pem}", issued[0])).unwrap();
    std::fs::copy(w.path("dev.key"), w.path("device.key")).unwrap();
    let renew = w.device_csr("renew", ("Acme", "EV-200", "SN0001"), Some("1.1.0"));
    let (code, body) = w.post_csr(
        &format!("{est}/automotive/simplereenroll"),
        "device",
        &renew,
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let renewed = w.pkcs7_certs("renewed", &body);
    std::fs::write(w.path("renewed-leaf.pem"), &renewed[0]).unwrap();
    let verified = run(Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(w.path("root.pem"))
        .arg("-untrusted")
        .arg(w.path("automotive-ca.pem"))
        .arg(w.path("renewed-leaf.pem")));
    assert!(verified.contains("OK"), "{verified}");
    let renewed_der = der_of(&renewed[0]);
    let (_, new_leaf) = X509Certificate::from_der(&renewed_der).unwrap();
    assert_eq!(
        new_leaf.subject().as_raw(),
        leaf.subject().as_raw(),
        "same identity"
    );
    let san = format!(
        "{:?}",
        new_leaf.subject_alternative_name().unwrap().unwrap().value
    );
    assert!(san.contains(urn), "{san}");
    assert_ne!(
        new_leaf.public_key().raw,
        leaf.public_key().raw,
        "a new key"
    );
    assert_ne!(new_leaf.raw_serial(), leaf.raw_serial());
    let answer = get_trust(&mut trust, urn).await.unwrap();
    assert_eq!(answer.record_version, 2, "the renewal is recorded");
    assert_eq!(answer.status, "active");

    // The replaced certificate cannot renew again.
    let stale = w.device_csr("stale", ("Acme", "EV-200", "SN0001"), None);
    let (code, body) = w.post_csr(
        &format!("{est}/automotive/simplereenroll"),
        "device",
        &stale,
    );
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("current certificate"));
    // The renewed device re-enrolls without a label, in its own sector.
    std::fs::write(w.path("device2.pem"), format!("{}{sector_pem}", renewed[0])).unwrap();
    std::fs::copy(w.path("renew.key"), w.path("device2.key")).unwrap();
    let (code, body) = w.post_csr(&format!("{est}/simplereenroll"), "device2", &stale);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let third = w.pkcs7_certs("third", &body);
    std::fs::write(w.path("device3.pem"), format!("{}{sector_pem}", third[0])).unwrap();
    std::fs::copy(w.path("stale.key"), w.path("device3.key")).unwrap();

    // Once the device is revoked, its certificate renews nothing.
    let operator = ca.credential(CertificateKind::Operator, "Ops", &["automotive"]);
    let mut revocation =
        pb::revocation_client::RevocationClient::new(connect(&ca.url(), &operator).await.unwrap());
    revocation
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Identity(urn.into())),
            reason: "cessation-of-operation".into(),
            note: "EST test".into(),
        })
        .await
        .unwrap();
    let (code, body) = w.post_csr(
        &format!("{est}/automotive/simplereenroll"),
        "device3",
        &stale,
    );
    assert_eq!(code, 401, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("revoked"));

    // Every request is counted by operation and status.
    let metrics = ca.server.as_ref().unwrap().metrics.encode();
    for line in [
        "trustca_est_requests_total{operation=\"simpleenroll\",status=\"200\"} 1",
        "trustca_est_requests_total{operation=\"simpleenroll\",status=\"409\"} 1",
        "trustca_est_requests_total{operation=\"simplereenroll\",status=\"401\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from:\n{metrics}");
    }

    // A manufacturer credential cannot use simplereenroll.
    let (code, _, _) = w.curl(
        &format!("{est}/automotive/simplereenroll"),
        Some("acme"),
        Some((&stale, "application/pkcs10")),
    );
    assert_eq!(code, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_and_cryptography_enroll() {
    if !available(
        "python3",
        &[
            "-c",
            "import requests, cryptography.hazmat.primitives.serialization.pkcs7",
        ],
        "pip install requests cryptography",
    ) {
        return;
    }
    let (ca, est) = start_with_est().await;
    let w = Work::new(&ca);
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["healthcare"]);
    w.write_creds("acme", &acme);
    register_model(&ca, &acme, "healthcare", "PUMP-7", "3.0..").await;
    let script = r#"
import base64, json, sys
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7

est, work, firmware_oid = sys.argv[1], sys.argv[2], sys.argv[3]
tls = dict(cert=(work + "/acme.pem", work + "/acme.key"), verify=work + "/root.pem")

r = requests.get(est + "/healthcare/cacerts", verify=work + "/root.pem", timeout=10)
r.raise_for_status()
cas = pkcs7.load_der_pkcs7_certificates(base64.b64decode(r.content))

key = ec.generate_private_key(ec.SECP256R1())
csr = (x509.CertificateSigningRequestBuilder()
       .subject_name(x509.Name([
           x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
           x509.NameAttribute(NameOID.COMMON_NAME, "PUMP-7"),
           x509.NameAttribute(NameOID.SERIAL_NUMBER, "PY0001"),
       ]))
       .add_attribute(ObjectIdentifier(firmware_oid), b"3.2.1")
       .sign(key, hashes.SHA256()))
body = base64.encodebytes(csr.public_bytes(serialization.Encoding.DER))
r = requests.post(est + "/healthcare/simpleenroll", data=body,
                  headers={"Content-Type": "application/pkcs10"}, timeout=10, **tls)
if r.status_code != 200:
    sys.exit("simpleenroll: %d %s" % (r.status_code, r.text))
certs = pkcs7.load_der_pkcs7_certificates(base64.b64decode(r.content))
leaf = certs[0]
print(json.dumps({
    "content_type": r.headers["Content-Type"],
    "count": len(certs),
    "cas": len(cas),
    "subject": leaf.subject.rfc4514_string(),
    "san": [str(u) for u in leaf.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)],
    "same_key": leaf.public_key().public_numbers() == key.public_key().public_numbers(),
}))
"#;
    std::fs::write(w.path("est.py"), script).unwrap();
    let out = run(Command::new("python3")
        .arg(w.path("est.py"))
        .arg(&est)
        .arg(w.dir.path())
        .arg(FIRMWARE_VERSION_OID));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        v["content_type"],
        "application/pkcs7-mime; smime-type=certs-only"
    );
    assert_eq!(v["count"], 1);
    assert_eq!(v["cas"], 2);
    assert_eq!(v["same_key"], true);
    assert_eq!(v["san"][0], "urn:trustca:healthcare:Acme:PUMP-7:PY0001");
    assert!(v["subject"].as_str().unwrap().contains("O=Acme"), "{v}");

    // The firmware version came from the CSR attribute: it is in the audit log.
    let mut ca = ca;
    ca.stop().await;
    use trustca_store::Storage;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let entries = store.audit_entries(0, 1000).unwrap();
    let issued = entries
        .iter()
        .find(|e| e.kind == "certificate.issued" && e.detail.contains("PY0001"))
        .expect("audit entry of the EST issuance");
    assert!(
        issued.detail.contains("\"firmware\":\"3.2.1\""),
        "{}",
        issued.detail
    );
    assert_eq!(issued.actor, "manufacturer:Acme");
}
