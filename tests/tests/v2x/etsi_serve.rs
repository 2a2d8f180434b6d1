//! `trustca serve --etsi-listen` end to end: a real CA server with the
//! ETSI listener makes its ETSI root, EA and AA keys in `DATA/etsi/` at the
//! first start (encrypted under the passphrase); the manufacturer registers
//! an openssl-made canonical key with `trustca etsi
//! register-canonical-key`; and the Python ITS station (`etsi_station.py`,
//! asn1tools + cryptography only) downloads the CTL from the server,
//! enrols and obtains a ticket carrying the car's trust level. After a
//! restart the same root and authorities answer, at the `--etsi-public-url`
//! the CTL then names instead of the listen address.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::etsi_http::{enrolled_car, python_ready, run_station};

use std::path::Path;
use std::process::Command;

use common::*;
use trustca_server::ServeOptions;
use trustca_server::etsi::http::CTL_PREFIX;
use trustca_v2x::{CertProfile, Certificate};

/// Starts `ca`'s server with the ETSI listener on `listen`, the CTL naming
/// `public_url` if given.
pub(crate) async fn start_with_etsi(
    ca: &mut TestCa,
    listen: std::net::SocketAddr,
    public_url: Option<String>,
) -> std::net::SocketAddr {
    ca.stop().await;
    let options = |demo: bool| {
        let mut opts = ServeOptions::new(
            ca.data().to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
            // The ETSI keystore is made on the first start.
            creating_passphrase(PASSPHRASE),
        );
        opts.etsi_listen = Some(listen);
        opts.etsi_public_url = public_url.clone();
        opts.etsi_demo_root_online = demo;
        opts
    };
    // The root key online only when asked for by name.
    let made = ca.data().join("etsi").exists();
    let refused = trustca_server::start(options(false)).await.err().unwrap();
    assert!(
        refused
            .to_string()
            .contains("keeps the ETSI root key online"),
        "{refused}"
    );
    assert_eq!(
        ca.data().join("etsi").exists(),
        made,
        "a refused start made keys"
    );
    let opts = options(true);
    let server = trustca_server::start(opts).await.unwrap();
    let addr = server.etsi_addr.expect("the ETSI listener is bound");
    ca.server = Some(server);
    addr
}

/// An openssl P-256 key: (its private scalar hex, its public key PEM file).
pub(crate) fn openssl_key(dir: &Path) -> (String, std::path::PathBuf) {
    let key = dir.join("canonical.pem");
    let public = dir.join("canonical.pub.pem");
    let ok = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let k = key.to_str().unwrap();
    ok(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        k,
    ]);
    ok(&["ec", "-in", k, "-pubout", "-out", public.to_str().unwrap()]);
    let text = ok(&["ec", "-in", k, "-text", "-noout"]);
    let hex: String = text
        .split("priv:")
        .nth(1)
        .and_then(|t| t.split("pub:").next())
        .unwrap()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    (hex[hex.len() - 64..].to_owned(), public)
}

pub(crate) fn register(
    data: &Path,
    urn: &str,
    manufacturer: &str,
    key: &Path,
) -> std::process::Output {
    Command::new(trustca_bin())
        .args(["etsi", "register-canonical-key", "--data"])
        .arg(data)
        .args(["--device", urn, "--manufacturer", manufacturer, "--key"])
        .arg(key)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_etsi_listen_enrols_and_authorizes_a_python_station() {
    if !python_ready() || !available("openssl", &["version"], "apt-get install openssl") {
        return;
    }
    let (mut ca, urn, store) = enrolled_car("VIN0042").await;
    let identity = trustca_model::DeviceIdentity::from_urn(&urn).unwrap().key();
    let level = u64::from(store.trust_record(&identity).unwrap().unwrap().level);
    drop(store); // the server and the CLI open it next
    assert!(
        !ca.data().join("etsi").exists(),
        "no ETSI keys without --etsi-listen"
    );

    // Offline registration: another manufacturer is refused in one line
    // and stores nothing; the device's own manufacturer succeeds.
    let dir = tempfile::tempdir().unwrap();
    let (secret_hex, public) = openssl_key(dir.path());
    let refused = register(ca.data(), &urn, "Globex", &public);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(err.contains("not a device of manufacturer Globex"), "{err}");
    let done = register(ca.data(), &urn, "Acme", &public);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let again = register(ca.data(), &urn, "Acme", &public);
    assert!(!again.status.success(), "a key is never replaced");

    let etsi = start_with_etsi(&mut ca, "127.0.0.1:0".parse().unwrap(), None).await;
    // Keys at rest are encrypted under the passphrase, never in the clear.
    let keys = ca.data().join("etsi/keys");
    for name in ["root", "ea", "aa", "ea-encryption", "aa-encryption"] {
        let text = std::fs::read_to_string(keys.join(format!("{name}.key"))).unwrap();
        assert!(text.starts_with("-----BEGIN TRUSTCA ENCRYPTED PRIVATE KEY-----"));
    }
    let root_bytes = std::fs::read(ca.data().join("etsi/root.oer")).unwrap();
    let root = Certificate::from_coer_in(CertProfile::EtsiTs103097, &root_bytes).unwrap();
    std::fs::write(dir.path().join("root.oer"), &root_bytes).unwrap();
    let ctl_url = format!(
        "http://{etsi}{CTL_PREFIX}{}",
        hex::encode(root.hashed_id8())
    );
    let station = |its_id: &str| {
        let args = vec![
            ctl_url.clone(),
            dir.path().join("root.oer").display().to_string(),
            secret_hex.clone(),
            its_id.to_owned(),
            dir.path().display().to_string(),
        ];
        tokio::task::spawn_blocking(move || run_station(&args))
    };
    let result = station(&urn).await.unwrap();
    assert_eq!(result["enrolment"], "ok", "{result}");
    assert_eq!(result["authorization"], "ok", "{result}");
    assert_eq!(result["ec_level"], level, "the car's trust level: {result}");
    assert_eq!(result["at_level"], level, "{result}");
    assert_eq!(result["at_id"], "none");
    assert_eq!(result["crl_entries"], 0, "{result}");
    let stranger = station("urn:trustca:automotive:Acme:Roadster:VIN9999")
        .await
        .unwrap();
    assert_eq!(stranger["enrolment"], "unknownits", "{stranger}");

    // A restart keeps the authorities: same root, and they still answer,
    // at the public URL the CTL now gives (--etsi-public-url), not the
    // listen address.
    let listen = ceremony::loopback_port();
    let public_url = format!("http://localhost:{}", listen.port());
    let etsi = start_with_etsi(&mut ca, listen, Some(public_url.clone())).await;
    assert_eq!(
        std::fs::read(ca.data().join("etsi/root.oer")).unwrap(),
        root_bytes
    );
    let ctl_url = format!(
        "http://{etsi}{CTL_PREFIX}{}",
        hex::encode(root.hashed_id8())
    );
    let args = vec![
        ctl_url,
        dir.path().join("root.oer").display().to_string(),
        secret_hex.clone(),
        urn.clone(),
        dir.path().display().to_string(),
    ];
    let ctl = Command::new("python3")
        .args(["-c", crate::etsi_roles::FETCH, &args[0]])
        .output()
        .unwrap()
        .stdout;
    let enrolment = format!("{public_url}/etsi/ea/enrolment");
    let listed = ctl
        .windows(enrolment.len())
        .any(|w| w == enrolment.as_bytes());
    assert!(listed, "the CTL names the public URL {enrolment}");
    let result = tokio::task::spawn_blocking(move || run_station(&args))
        .await
        .unwrap();
    assert_eq!(result["authorization"], "ok", "{result}");
    ca.stop().await;
}
