//! The vehicle as an EU C-ITS station, end to end with the `trustca`
//! binary: a real CA server with the ETSI authorities (`start_with_etsi`);
//! the car makes its canonical key in its pool (`pseudonym canonical-key`)
//! and its manufacturer registers it over mutual TLS (`etsi register-key`);
//! `pseudonym request --profile etsi` enrols at the EA and fills the pool
//! with TS 103 097 tickets from the AA (id none, the car's trust level as
//! assurance level), re-enrols with its credential when asked, and a
//! refused request (key not registered yet) leaves the pool's files as
//! they were. `pseudonym check --profile etsi` reads the CTL and CRL: green
//! from the server's distribution centre; a distribution centre serving a
//! CRL that revokes the AA makes it report the AA revoked (exit 3) and
//! `request` refuse to use it; a CRL signed by another key, a stale one
//! and an unknown root are each one line and exit 1; a trust list
//! manager's ECTL is read once its certificate is given, and must name the
//! root. No key of the station is anywhere in the CA's directory. A Lv.1
//! car enrols but is refused tickets by the AA: nothing of it is stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::etsi_http::enrolled_car;
use crate::etsi_serve::start_with_etsi;
use crate::v2x_separation::dir_contains;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use common::ceremony::trustca_output;
use common::*;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use trustca_ca::{Keystore, Passphrase};
use trustca_model::CertificateKind;
use trustca_pseudonym::P256PrivateKey;
use trustca_v2x::{CertProfile, Certificate, CertificateId, Time32};
use trustca_vehicle::{Pool, PoolSecret, TicketKind};

/// Runs `trustca ARGS` off the runtime (the server runs on it): exit code,
/// stdout, stderr.
pub(crate) async fn cli(args: Vec<String>) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        trustca_output(&refs)
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn json_of(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

pub(crate) fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A distribution centre serving fixed bytes for `/etsi/dc/getctl/`,
/// `/etsi/dc/getcrl/` and `/etsi/dc/getectl/` (any root or TLM), one
/// thread; returns its URL.
fn fixed_dc(ctl: Vec<u8>, crl: Vec<u8>) -> String {
    fixed_dc_with_ectl(ctl, crl, Vec::new())
}

fn fixed_dc_with_ectl(ctl: Vec<u8>, crl: Vec<u8>, ectl: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&head).into_owned();
            let body = if line.contains("/getctl/") {
                &ctl
            } else if line.contains("/getcrl/") {
                &crl
            } else if line.contains("/getectl/") && !ectl.is_empty() {
                &ectl
            } else {
                let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                continue;
            };
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = conn.write_all(body);
        }
    });
    url
}

/// The body of a GET of `path` at `addr` (binary).
fn get_bytes(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&raw[..split])
    );
    raw[split + 4..].to_vec()
}

/// `trustca etsi register-key` for `urn`'s key `x/canonical.pem` with the
/// credential `who` (written to `x` as `name`).
pub(crate) fn register_args(
    ca: &TestCa,
    x: &Path,
    urn: &str,
    who: &trustca_api::client::ClientCredentials,
    name: &str,
) -> Vec<String> {
    let (chain, key) = go_check::device_files(x, name, who);
    std::fs::write(x.join("root.pem"), ca.root_pem()).unwrap();
    let mut args: Vec<String> = ["etsi", "register-key", "--server"]
        .map(String::from)
        .to_vec();
    args.push(ca.url());
    for (flag, value) in [
        ("--identity", s(&chain)),
        ("--key", s(&key)),
        ("--ca", s(&x.join("root.pem"))),
        ("--device", urn.to_owned()),
        ("--canonical-key", s(&x.join("canonical.pem"))),
    ] {
        args.extend([flag.to_owned(), value]);
    }
    args.push("--json".into());
    args
}

pub(crate) struct Car {
    pub(crate) pool: PathBuf,
    pub(crate) key: PathBuf,
}

impl Car {
    pub(crate) fn args(&self, head: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = head.iter().map(|a| (*a).to_owned()).collect();
        v.extend([
            "--pool".into(),
            s(&self.pool),
            "--pool-key".into(),
            s(&self.key),
        ]);
        v
    }

    fn pool_files(&self) -> (Vec<u8>, Vec<u8>) {
        (
            std::fs::read(self.pool.join("pool.toml")).unwrap(),
            std::fs::read(self.pool.join("pool.bin")).unwrap(),
        )
    }

    /// `pseudonym canonical-key` for `urn`, public key to `x/canonical.pem`.
    pub(crate) async fn make_canonical_key(&self, urn: &str, x: &Path) -> serde_json::Value {
        let pem = s(&x.join("canonical.pem"));
        let args = self.args(&[
            "pseudonym",
            "canonical-key",
            "--its-id",
            urn,
            "--out",
            &pem,
            "--json",
        ]);
        let (code, out, err) = cli(args).await;
        assert_eq!(code, 0, "{err}");
        json_of(&out)
    }

    pub(crate) fn open(&self) -> Pool {
        Pool::open(&self.pool, &PoolSecret::key_file(&self.key).unwrap()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_car_fills_its_pool_with_etsi_tickets_and_checks_the_lists() {
    let (mut ca, urn, store) = enrolled_car("VIN0500").await;
    let identity = trustca_model::DeviceIdentity::from_urn(&urn).unwrap().key();
    let level = store.trust_record(&identity).unwrap().unwrap().level;
    drop(store);
    let etsi = start_with_etsi(&mut ca, "127.0.0.1:0".parse().unwrap(), None).await;
    let dc = format!("http://{etsi}");
    let work = tempfile::tempdir().unwrap();
    let x = work.path();
    std::fs::write(x.join("pool.key"), [0x5au8; 32]).unwrap();
    let car = Car {
        pool: x.join("pool"),
        key: x.join("pool.key"),
    };
    let root_oer = ca.data().join("etsi/root.oer");

    // The car makes its canonical key; only the public key leaves the pool.
    let made = car.make_canonical_key(&urn, x).await;
    assert_eq!(made["made"], true);
    assert!(
        std::fs::read_to_string(x.join("canonical.pem"))
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );

    // Not registered yet: the EA answers unknownits; one line, exit 1, and
    // the pool's files are byte for byte as they were.
    let before = car.pool_files();
    let request = |extra: &[&str]| {
        let mut a = car.args(&["pseudonym", "request", "--profile", "etsi"]);
        a.extend(extra.iter().map(|e| (*e).to_owned()));
        a
    };
    let first = request(&[
        "--dc",
        &dc,
        "--etsi-root",
        &s(&root_oer),
        "--tickets",
        "3",
        "--json",
    ]);
    let (code, out, err) = cli(first.clone()).await;
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("refused the enrolment: unknownits (6)"),
        "{err}"
    );
    assert_eq!(
        car.pool_files(),
        before,
        "a refused request changes nothing"
    );

    // The manufacturer registers it over mutual TLS; another manufacturer
    // is refused in one line with the status.
    let register = |who, name| register_args(&ca, x, &urn, who, name);
    let globex = ca.credential(CertificateKind::Manufacturer, "Globex", &["automotive"]);
    let (code, _, err) = cli(register(&globex, "globex")).await;
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("(permission denied)"), "{err}");
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let (code, out, err) = cli(register(&acme, "acme")).await;
    assert_eq!(code, 0, "{err}");
    let registered = json_of(&out);
    assert_eq!(registered["device"], urn.as_str());
    assert_eq!(registered["canonical_key"], made["canonical_key"]);
    assert_eq!(registered["trust_level"], u64::from(level));

    // Enrolment and three tickets.
    let (code, out, err) = cli(first).await;
    assert_eq!(code, 0, "{err}");
    let got = json_of(&out);
    assert_eq!(got["enrolment"], "enrolled", "{got}");
    assert_eq!(got["tickets"], 3, "{got}");
    assert_eq!(got["trust_level"], u64::from(level), "{got}");
    assert_eq!(got["status"]["profile"], "etsi-ts-103-097", "{got}");
    let pool = car.open();
    assert_eq!(pool.profile().unwrap().kind, TicketKind::Etsi);
    assert_eq!(pool.entries().len(), 3);
    let aa =
        Certificate::from_coer_in(CertProfile::EtsiTs103097, &pool.pseudonym_ca_der()).unwrap();
    for e in pool.entries() {
        assert_eq!(e.kind, TicketKind::Etsi);
        let at =
            Certificate::from_coer_in(CertProfile::EtsiTs103097, &e.certificate_der().unwrap())
                .unwrap();
        assert_eq!(at.tbs().id, CertificateId::None);
        assert_eq!(at.tbs().crl_series, 0);
        assert_eq!(at.tbs().craca_id, [0; 3]);
        assert_eq!(
            at.tbs().assurance_level.and_then(|a| a.trust_level()),
            Some(level)
        );
        at.verify_signed_by(Some(&aa)).unwrap();
    }
    drop(pool);

    // Rotation picks another of the period's tickets; the ticket in use
    // exports for the V2X stack; status names the profile.
    let (code, out, err) = cli(car.args(&["pseudonym", "rotate", "--force", "--json"])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["rotation"], "changed", "{out}");
    let (code, out, err) = cli(car.args(&["pseudonym", "status", "--json"])).await;
    assert_eq!(code, 0, "{err}");
    let status = json_of(&out);
    assert_eq!(status["profile"], "etsi-ts-103-097");
    assert_eq!(status["certificates"], 3);
    assert!(status["current"]["serial"].is_string(), "{status}");
    let export = x.join("export");
    let (code, _, err) = cli(car.args(&["pseudonym", "export", "--out", &s(&export)])).await;
    assert_eq!(code, 0, "{err}");
    let exported = std::fs::read(export.join("ticket.oer")).unwrap();
    assert_eq!(
        hex::encode(Certificate::from_coer(&exported).unwrap().hashed_id8()),
        status["current"]["serial"].as_str().unwrap()
    );

    // Again: the credential is kept; with --re-enrol it signs the
    // re-enrolment (the root and DC were kept from the first request).
    let (code, out, err) = cli(request(&["--tickets", "1", "--json"])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["enrolment"], "kept", "{out}");
    let (code, out, err) = cli(request(&["--tickets", "1", "--re-enrol", "--json"])).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["enrolment"], "re-enrolled", "{out}");
    assert_eq!(car.open().entries().len(), 5);

    // The lists from the server's distribution centre: all green.
    let check = |extra: &[&str]| {
        let mut a = car.args(&["pseudonym", "check", "--profile", "etsi"]);
        a.extend(extra.iter().map(|e| (*e).to_owned()));
        a
    };
    let (code, out, err) = cli(check(&["--json"])).await;
    assert_eq!(code, 0, "{out}{err}");
    let green = json_of(&out);
    assert_eq!(green["ok"], true, "{green}");
    assert_eq!(green["ea_status"], "listed", "{green}");
    let tickets = green["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 5);
    assert!(tickets.iter().all(|t| t["verdict"] == "valid"), "{green}");
    let (code, table, err) = cli(check(&[])).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("VERDICT") && table.contains("valid"),
        "{table}"
    );

    // The root revokes the AA: a distribution centre serving that CRL.
    let root = Certificate::from_coer_in(
        CertProfile::EtsiTs103097,
        &std::fs::read(&root_oer).unwrap(),
    )
    .unwrap();
    let ctl_path = format!("/etsi/dc/getctl/{}", hex::encode(root.hashed_id8()));
    let ctl = tokio::task::spawn_blocking(move || get_bytes(etsi, &ctl_path))
        .await
        .unwrap();
    let pass = Passphrase::new(PASSPHRASE.to_vec()).unwrap();
    let keys = Keystore::open(&ca.data().join("etsi/keys"), &pass).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let root_key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &keys.load("root").unwrap(),
        &rng,
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let t = |d: i64| Time32::from_unix(now + d).unwrap();
    let sign_crl = |key: &EcdsaKeyPair, revoked: Vec<[u8; 8]>, from: i64, until: i64| {
        trustca_etsi::trust_lists::crl(&root, key, revoked, t(from), t(until), now).unwrap()
    };
    let revoking = sign_crl(&root_key, vec![aa.hashed_id8()], 0, 86_400);
    let revoked_dc = fixed_dc(ctl.clone(), revoking);
    let (code, out, err) = cli(check(&["--dc", &revoked_dc, "--json"])).await;
    assert_eq!(code, 3, "{out}{err}");
    let red = json_of(&out);
    assert_eq!(red["ok"], false);
    assert_eq!(red["lists"]["crl_entries"], 1);
    for t in red["tickets"].as_array().unwrap() {
        assert_eq!(t["aa_status"], "revoked", "{red}");
        assert_eq!(t["verdict"], "AA revoked", "{red}");
    }

    // A car reading that CRL asks the revoked AA for nothing: refused in
    // one line, the pool's files unchanged (its DC too).
    let before = car.pool_files();
    let (code, out, err) = cli(request(&["--dc", &revoked_dc, "--tickets", "1"])).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no authorization authority the CRL leaves valid"),
        "{err}"
    );
    assert_eq!(car.pool_files(), before);

    // Bad lists: one line each, exit 1.
    let other_key = P256PrivateKey::generate().unwrap().to_pkcs8_der();
    let other =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &other_key, &rng).unwrap();
    let forged = fixed_dc(ctl.clone(), sign_crl(&other, vec![], 0, 86_400));
    let stale = fixed_dc(
        ctl.clone(),
        sign_crl(&root_key, vec![], -2 * 86_400, -86_400),
    );
    for (url, says) in [
        (forged, "the CRL does not verify with the root"),
        (stale, "the CRL is past its nextUpdate"),
    ] {
        let (code, out, err) = cli(check(&["--dc", &url])).await;
        assert_eq!(code, 1, "{out}{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
    // A root the distribution centre does not know (a fresh one made by
    // `trustca etsi root init`): the DC's refusal in one line, and the pool
    // keeps the root it had.
    let stranger = x.join("stranger");
    let (code, _, err) = cli(vec![
        "etsi".into(),
        "root".into(),
        "init".into(),
        "--dir".into(),
        s(&stranger),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let unknown = check(&["--dc", &dc, "--etsi-root", &s(&stranger.join("root.oer"))]);
    let (code, out, err) = cli(unknown).await;
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("404"), "{err}");
    let (code, _, err) = cli(check(&["--dc", &dc])).await;
    assert_eq!(code, 0, "the pool still trusts its root: {err}");

    // The station's keys never left it: neither the canonical key, nor the
    // enrolment credential's, nor any ticket's is anywhere in the CA's
    // data directory.
    let pool = car.open();
    let station = pool.etsi_station().unwrap();
    let scalar = |pkcs8: &[u8]| P256PrivateKey::from_pkcs8_der(pkcs8).unwrap().to_bytes();
    let mut secrets = vec![
        scalar(&station.canonical_key_pkcs8().unwrap()),
        scalar(&station.enrolment.as_ref().unwrap().key_pkcs8().unwrap()),
    ];
    secrets.extend(
        pool.entries()
            .iter()
            .map(|e| scalar(&e.private_key_pkcs8().unwrap())),
    );
    for secret in &secrets {
        assert!(!dir_contains(ca.data(), secret.as_ref()));
        assert!(!dir_contains(
            ca.data(),
            hex::encode(secret.as_ref()).as_bytes()
        ));
    }
    drop(pool);

    // A trust list manager: once its certificate is given, its ECTL is read
    // and must name the root.
    let tlm = x.join("tlm");
    let ectl_of = |root_file: PathBuf, out: PathBuf| {
        vec![
            "etsi".to_owned(),
            "tlm".into(),
            "sign-ectl".into(),
            "--dir".into(),
            s(&tlm),
            "--root".into(),
            s(&root_file),
            "--out".into(),
            s(&out),
        ]
    };
    let (code, _, err) = cli(vec![
        "etsi".into(),
        "tlm".into(),
        "init".into(),
        "--dir".into(),
        s(&tlm),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    for (root_file, out) in [
        (root_oer.clone(), x.join("ectl.oer")),
        (stranger.join("root.oer"), x.join("ectl-other.oer")),
    ] {
        let (code, _, err) = cli(ectl_of(root_file, out)).await;
        assert_eq!(code, 0, "{err}");
    }
    let good_crl = sign_crl(&root_key, vec![], 0, 86_400);
    let with_ectl = fixed_dc_with_ectl(
        ctl.clone(),
        good_crl.clone(),
        std::fs::read(x.join("ectl.oer")).unwrap(),
    );
    let tlm_oer = s(&tlm.join("tlm.oer"));
    let (code, out, err) = cli(check(&[
        "--dc",
        &with_ectl,
        "--etsi-tlm",
        &tlm_oer,
        "--json",
    ]))
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(json_of(&out)["lists"]["ectl_checked"], true, "{out}");
    let without_root = fixed_dc_with_ectl(
        ctl.clone(),
        good_crl,
        std::fs::read(x.join("ectl-other.oer")).unwrap(),
    );
    let (code, out, err) = cli(check(&["--dc", &without_root])).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("is not on the trust list manager's ECTL"),
        "{err}"
    );
    ca.stop().await;
}

/// A car below the ticket profile's level (Lv.1: no model registered, no
/// evidence) enrols, but its tickets are refused: the refusal is one line
/// and the pool is not written, not even the new enrolment credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_leaves_the_pool_as_it_was() {
    let mut ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let device = enroll_device(
        &mut ca.client(&acme).await,
        &ca.root_pem(),
        "automotive",
        "Acme",
        "Basic",
        "VIN0600",
        "1.0.0",
        vec![],
    )
    .await;
    let etsi = start_with_etsi(&mut ca, "127.0.0.1:0".parse().unwrap(), None).await;
    let work = tempfile::tempdir().unwrap();
    let x = work.path();
    std::fs::write(x.join("pool.key"), [0x6bu8; 32]).unwrap();
    let car = Car {
        pool: x.join("pool"),
        key: x.join("pool.key"),
    };
    car.make_canonical_key(&device.identity, x).await;
    let (code, out, err) = cli(register_args(&ca, x, &device.identity, &acme, "acme")).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["trust_level"], 1, "{out}");
    let before = car.pool_files();
    let mut request = car.args(&["pseudonym", "request", "--profile", "etsi"]);
    request.extend([
        "--dc".into(),
        format!("http://{etsi}"),
        "--etsi-root".into(),
        s(&ca.data().join("etsi/root.oer")),
    ]);
    let (code, out, err) = cli(request).await;
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Enrolled (a Lv.1 credential), then the AA refuses the ticket.
    assert!(
        err.contains("the authorization authority refused the ticket: itsaadeniedpermissions"),
        "{err}"
    );
    assert_eq!(car.pool_files(), before, "the pool's files are unchanged");
    let pool = car.open();
    assert!(pool.entries().is_empty());
    assert!(pool.etsi_station().unwrap().enrolment.is_none());
    assert!(
        pool.etsi_station().unwrap().root.is_empty(),
        "the root was not kept either"
    );
    ca.stop().await;
}
