//! Federation without shared keys (issue 20): an offline root and three
//! sector directories made separately by the key ceremony, three instances
//! forwarding to each other over mutual TLS with their own certificates,
//! answers checked against the answering sector's own responder, and a
//! sector CA revoked by the root offline reaching every instance through
//! the ARL. openssl checks the chains and the ARL independently.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::ceremony::{
    Ceremony, fresh_sector_dir, loopback_port, private_keys, serve_fixed_answer, trustca_cli,
    trustca_refused,
};
use common::go_check::{GoChecker, Instance};
use common::two_roots::device_at;
use common::*;
use tonic::Code;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

pub(crate) const SECTORS: [&str; 3] = ["automotive", "hems", "healthcare"];

/// An enrollment client at `url` with `creds`.
pub(crate) async fn enroller(
    url: &str,
    creds: &trustca_api::client::ClientCredentials,
) -> pb::enrollment_client::EnrollmentClient<tonic::transport::Channel> {
    pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(url, creds).await.unwrap(),
    )
}

/// `GetTrust` by identity.
pub(crate) async fn get_trust_of(
    db: &mut pb::trust_database_client::TrustDatabaseClient<tonic::transport::Channel>,
    identity: &str,
) -> Result<tonic::Response<pb::TrustAnswer>, tonic::Status> {
    db.get_trust(pb::GetTrustRequest {
        subject: Some(pb::get_trust_request::Subject::Identity(identity.into())),
    })
    .await
}

/// Starts `sector`'s instance on a loopback port the OS picks, forwarding
/// to `peers`.
pub(crate) async fn start_at(
    c: &Ceremony,
    sector: &str,
    peers: &[(&str, String)],
) -> trustca_server::RunningServer {
    trustca_server::start(c.options(sector, "127.0.0.1:0".parse().unwrap(), peers))
        .await
        .unwrap()
}

/// Lv.5 evidence of `sector`'s device `M-1`; in automotive none: the model
/// is registered ([`register_lv5_car_model`]), as declared hardware counts
/// up to Lv.3 there.
pub(crate) fn lv5(sector: &str) -> Vec<pb::EvidenceItem> {
    match sector {
        "automotive" => vec![],
        "hems" => hems_lv5(),
        _ => healthcare_lv5(),
    }
}

/// Registers Acme's automotive model `M-1` at Lv.5 at the automotive
/// instance `url`, with credentials of the automotive CA.
pub(crate) async fn register_lv5_car_model(c: &Ceremony, url: &str) {
    let maker = c.credential(
        "automotive",
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive"],
    );
    let body = c.credential(
        "automotive",
        CertificateKind::CertificationBody,
        "TUV",
        &["automotive"],
    );
    register_automotive_lv5_with(url, &maker, &body, "Acme", "M-1").await;
}

/// Every file under `dir`, relative: "nothing written" checks.
pub(crate) fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn the_ceremony_refuses_a_foreign_sector_and_a_certificate_for_another_key_and_writes_nothing() {
    let c = Ceremony::run(&SECTORS);
    // A request for a sector the root has no profile for.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationalUnitName, "aviation");
    let csr = c.exchange.path().join("aviation.csr");
    std::fs::write(&csr, params.serialize_request(&key).unwrap().pem().unwrap()).unwrap();
    let before = files(c.root.path());
    let out_cert = c.exchange.path().join("aviation.pem");
    trustca_refused(
        &[
            "root",
            "sign-sector",
            csr.to_str().unwrap(),
            "--data",
            c.root.path().to_str().unwrap(),
            "--out",
            out_cert.to_str().unwrap(),
        ],
        "the root has no profile for sector \"aviation\"",
    );
    assert_eq!(files(c.root.path()), before, "nothing written at the root");
    assert!(!out_cert.exists());

    // A fresh automotive directory given the installed automotive CA's
    // certificate (another key's): refused, nothing written.
    let fresh = fresh_sector_dir("automotive");
    let before = files(fresh.path());
    trustca_refused(
        &[
            "sector",
            "install",
            c.exchange.path().join("automotive.pem").to_str().unwrap(),
            "--root",
            c.root.path().join("ca/root.pem").to_str().unwrap(),
            "--data",
            fresh.path().to_str().unwrap(),
        ],
        "not for this directory's automotive CA key",
    );
    assert_eq!(files(fresh.path()), before, "nothing written");

    // An instance cannot be authoritative for a sector whose key it does
    // not hold: one line, before the store (made by `sector install`) is
    // opened.
    let auto = c.data("automotive");
    let store_before = files(&auto.join("db"));
    assert!(!store_before.is_empty(), "sector install made the store");
    trustca_refused(
        &[
            "serve",
            "--data",
            auto.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--authoritative",
            "hems",
        ],
        "holds no hems CA key",
    );
    assert_eq!(files(&auto.join("db")), store_before, "the store untouched");

    // The root's directory is not made into a serving one, and a sector's
    // directory cannot do the root's work.
    let root = c.root.path().to_str().unwrap();
    trustca_refused(&["init", "--data", root], "the offline root's directory");
    trustca_refused(
        &[
            "ca",
            "revoke",
            "hems",
            "--data",
            c.data("automotive").to_str().unwrap(),
            "--reason",
            "superseded",
            "--yes-revoke-sector-ca",
            "hems",
        ],
        "holds no root key (the root is offline)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_operators_federate_without_sharing_a_key_and_a_root_revocation_reaches_every_instance()
 {
    let c = Ceremony::run(&SECTORS);
    let root_pem = c.root_pem();

    // No directory holds another sector's private key or the root key.
    assert_eq!(private_keys(c.root.path()), ["root.key"]);
    for sector in SECTORS {
        let mut expected = vec![
            "audit.key".to_owned(),
            format!("{sector}.key"),
            "record-seal.key".to_owned(),
            "responder.key".to_owned(),
            "server.key".to_owned(),
        ];
        expected.sort();
        assert_eq!(private_keys(c.data(sector)), expected, "{sector}");
    }
    // Each instance has its own TLS certificate, issued by its sector CA.
    let tls: Vec<String> = SECTORS
        .iter()
        .map(|s| std::fs::read_to_string(c.data(s).join("ca/server.pem")).unwrap())
        .collect();
    assert_ne!(tls[0], tls[1]);
    assert_ne!(tls[1], tls[2]);

    // Three instances, each forwarding to the other two.
    let addrs: BTreeMap<&str, std::net::SocketAddr> =
        SECTORS.iter().map(|s| (*s, loopback_port())).collect();
    let url = |s: &str| format!("https://{}", addrs[s]);
    let mut servers = Vec::new();
    for sector in SECTORS {
        let peers: Vec<(&str, String)> = SECTORS
            .iter()
            .filter(|o| **o != sector)
            .map(|o| (*o, url(o)))
            .collect();
        servers.push(
            trustca_server::start(c.options(sector, addrs[sector], &peers))
                .await
                .unwrap(),
        );
    }

    // One device per sector, enrolled at its own instance by a
    // manufacturer credential of that sector's CA.
    register_lv5_car_model(&c, &url("automotive")).await;
    let mut devices = BTreeMap::new();
    for sector in SECTORS {
        devices.insert(
            sector,
            device_at(&c, &url(sector), sector, "S1", lv5(sector)).await,
        );
    }

    // openssl: every device chain, every instance's TLS, responder and
    // audit chain verify to the root, with the sector's CRL and the ARL.
    let work = tempfile::tempdir().unwrap();
    for sector in SECTORS {
        let crls = [
            c.data(sector).join(format!("crl/{sector}.crl")),
            c.root.path().join("crl/root.crl"),
        ];
        let extra = [
            "-crl_check_all",
            "-CRLfile",
            crls[0].to_str().unwrap(),
            "-CRLfile",
            crls[1].to_str().unwrap(),
        ];
        let (ok, out) = openssl_verify(work.path(), &root_pem, &devices[sector].chain, &extra);
        assert!(ok, "{sector} device: {out}");
        for stem in ["server", "responder", "audit"] {
            let chain: Vec<Vec<u8>> = pem::parse_many(
                std::fs::read(c.data(sector).join(format!("ca/{stem}.pem"))).unwrap(),
            )
            .unwrap()
            .into_iter()
            .map(pem::Pem::into_contents)
            .collect();
            assert_eq!(chain.len(), 3, "{sector} {stem}: leaf, sector CA, root");
            let (ok, out) = openssl_verify(work.path(), &root_pem, &chain, &extra);
            assert!(ok, "{sector} {stem}: {out}");
        }
    }
    // Go's standard library, independently: every chain, CRL, the ARL
    // and mutual TLS to each instance with a device of its sector.
    if let Some(go) = GoChecker::new() {
        let instances: Vec<Instance<'_>> = SECTORS
            .iter()
            .map(|sector| Instance {
                sector,
                device: &devices[sector].creds,
                addr: addrs[sector],
            })
            .collect();
        go.ceremony(&c, &instances, work.path());
    }

    // Decide across every pair, asked at the caller's own instance: the
    // peer's level comes from the peer's instance, signed by its responder.
    for a in SECTORS {
        let mut db = trust_client(&url(a), &devices[a].creds).await;
        for b in SECTORS.iter().filter(|b| **b != a) {
            let d = decide(&mut db, &devices[b], "read-telemetry").await;
            assert!(
                !d.reasons
                    .iter()
                    .any(|r| r.contains("unreachable") || r.contains("bad answer")),
                "{a} -> {b}: {:?}",
                d.reasons
            );
            assert!(d.peer_level > 0, "{a} -> {b}: {d:?}");
            // The shipped policy has a rule for every pair with automotive.
            if a == "automotive" || *b == "automotive" {
                assert!(d.allow, "{a} -> {b}: {:?}", d.reasons);
            }
        }
    }

    // The root revokes the hems CA offline; the new ARL goes to every
    // instance, each of which then refuses hems devices.
    trustca_cli(&[
        "root",
        "revoke-sector",
        "hems",
        "--data",
        c.root.path().to_str().unwrap(),
        "--reason",
        "ca-compromise",
        "--note",
        "issue 20 end-to-end test",
        "--yes-revoke-sector-ca",
        "hems",
    ]);
    let arl = c.root.path().join("crl/root.crl");
    for sector in SECTORS {
        let out = c.import(sector, std::slice::from_ref(&arl));
        assert!(out.contains("revoked by the root    hems"), "{out}");
    }
    // openssl: the hems device no longer verifies against the ARL; the
    // others still do.
    for sector in SECTORS {
        let extra = [
            "-crl_check_all".to_owned(),
            "-CRLfile".to_owned(),
            c.data(sector)
                .join(format!("crl/{sector}.crl"))
                .to_str()
                .unwrap()
                .to_owned(),
            "-CRLfile".to_owned(),
            arl.to_str().unwrap().to_owned(),
        ];
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (ok, out) = openssl_verify(work.path(), &root_pem, &devices[sector].chain, &extra);
        assert_eq!(ok, sector != "hems", "{sector}: {out}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    for a in ["automotive", "healthcare"] {
        let mut db = trust_client(&url(a), &devices[a].creds).await;
        loop {
            let d = decide(&mut db, &devices["hems"], "read-telemetry").await;
            if !d.allow && d.reasons.iter().any(|r| r.contains("revoked by the root")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{a} still trusts hems: {:?}",
                d.reasons
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // At its own instance a hems device is no longer let in at all.
    loop {
        let mut db = trust_client(&url("hems"), &devices["hems"].creds).await;
        match db
            .decide(pb::DecideRequest {
                peer: Some(pb::CertificateChain {
                    certificates: devices["automotive"].chain.clone(),
                }),
                operation: "read-telemetry".into(),
            })
            .await
        {
            Err(e) if e.code() == Code::Unauthenticated => {
                assert!(
                    e.message().contains("revoked by the root"),
                    "{}",
                    e.message()
                );
                break;
            }
            other => assert!(Instant::now() < deadline, "hems still serves: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for s in servers {
        s.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_answer_about_another_device_or_from_another_sector_is_refused_and_enrollment_stays_in_sector()
 {
    let c = Ceremony::run(&SECTORS);
    let root = c.root_pem();
    let acme_auto = c.credential(
        "automotive",
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive"],
    );

    // The real automotive database, with two cars.
    let auto = start_at(&c, "automotive", &[]).await;
    let auto_url = format!("https://{}", auto.addr);
    let mut e_auto = enroller(&auto_url, &acme_auto).await;
    let car = enroll_device(
        &mut e_auto,
        &root,
        "automotive",
        "Acme",
        "EV-200",
        "F1",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let other_car = enroll_acme_car(&mut e_auto, &root, "F2").await;

    // The automotive instance holds no hems key: a HEMS device is not
    // enrolled here.
    let acme_both = c.credential(
        "automotive",
        CertificateKind::Manufacturer,
        "Acme2",
        &["automotive", "hems"],
    );
    let mut e_both = enroller(&auto_url, &acme_both).await;
    let (_k, csr_der) = csr();
    let err = e_both
        .enroll(request("hems", "Acme2", "H9", csr_der, hems_lv5()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(
        err.message()
            .contains("enroll hems devices at the hems instance"),
        "{}",
        err.message()
    );

    // A genuine, signed answer about the other car, replayed by an
    // impostor "automotive" database that holds automotive's TLS key.
    let mut auto_db = trust_client(&auto_url, &other_car.creds).await;
    let genuine = get_trust_of(&mut auto_db, &other_car.identity)
        .await
        .unwrap()
        .into_inner();
    let impostor_url = serve_fixed_answer(&c, "automotive", genuine).await;

    // The HEMS database forwards automotive questions to the impostor.
    let hems = start_at(&c, "hems", &[("automotive", impostor_url)]).await;
    let hems_url = format!("https://{}", hems.addr);
    let house = device_at(&c, &hems_url, "hems", "FH", hems_lv5()).await;
    let mut house_db = trust_client(&hems_url, &house.creds).await;

    // Asked about the first car, the impostor answers about the other one.
    let d = decide(&mut house_db, &car, "read-telemetry").await;
    assert!(!d.allow, "{d:?}");
    assert!(
        d.reasons.iter().any(|r| r.contains("the answer is about")),
        "{:?}",
        d.reasons
    );
    let err = get_trust_of(&mut house_db, &car.identity)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    assert!(
        err.message().contains("the answer is about"),
        "{}",
        err.message()
    );
    // The same answer for the device it is about is accepted: the refusal
    // above is about the identity, nothing else.
    let ok = get_trust_of(&mut house_db, &other_car.identity)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.identity, other_car.identity);

    // An answer signed by the hems instance's own responder, passed off as
    // automotive's by a database the healthcare instance asks: refused,
    // because only automotive's responder speaks for automotive devices.
    let hems_signed = get_trust_of(&mut house_db, &house.identity)
        .await
        .unwrap()
        .into_inner();
    let wrong_url = serve_fixed_answer(&c, "hems", hems_signed).await;
    let health = start_at(&c, "healthcare", &[("automotive", wrong_url)]).await;
    let health_url = format!("https://{}", health.addr);
    let scale = device_at(&c, &health_url, "healthcare", "FS", healthcare_lv5()).await;
    let mut scale_db = trust_client(&health_url, &scale.creds).await;
    let d = decide(&mut scale_db, &car, "read-telemetry").await;
    assert!(!d.allow, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("signed by the hems responder, not by the automotive sector's own")),
        "{:?}",
        d.reasons
    );
    drop((e_auto, e_both, auto_db, house_db, scale_db));
    health.shutdown().await.unwrap();
    hems.shutdown().await.unwrap();
    auto.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sector_databases_federate_and_a_dead_one_is_a_clear_deny() {
    // Three sector databases made separately, each holding its own
    // sector's keys and devices; each forwards to those started before it.
    let c = Ceremony::run(&SECTORS);
    let mut instances = Vec::new();
    let mut addrs: BTreeMap<String, String> = BTreeMap::new();
    for sector in ["automotive", "healthcare", "hems"] {
        let peers: Vec<(&str, String)> =
            addrs.iter().map(|(s, a)| (s.as_str(), a.clone())).collect();
        let server = start_at(&c, sector, &peers).await;
        addrs.insert(sector.to_owned(), format!("https://{}", server.addr));
        instances.push(server);
    }
    let url = |s: &str| addrs[s].clone();
    let root = c.root_pem();
    // battery-discharge needs the car at Lv.4+: from its registered,
    // evaluated model (declared hardware counts up to Lv.3 in automotive).
    register_lv5_car_model(&c, &url("automotive")).await;
    let car = device_at(&c, &url("automotive"), "automotive", "F1", vec![]).await;
    let car2 = device_at(&c, &url("automotive"), "automotive", "F2", vec![]).await;
    let house = device_at(&c, &url("hems"), "hems", "FH", hems_lv5()).await;

    // The HEMS device asks its own (hems) database about the car: forwarded to automotive.
    let mut house_db = trust_client(&url("hems"), &house.creds).await;
    let d = decide(&mut house_db, &car, "battery-discharge").await;
    assert!(d.allow, "{d:?}");
    assert_eq!(d.peer_level, 5);
    // The relayed assertion was signed by the automotive instance's own
    // responder (its sector CA's), under the same root.
    let a = d.peer_assertion.unwrap();
    let root_der = pem::parse(&root).unwrap().into_contents();
    trustca_model::SignedTrustAssertion {
        body: a.body,
        signature: a.signature,
        responder_chain: a.responder_chain.into(),
    }
    .verify(
        &root_der,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
    )
    .unwrap();

    // The automotive database goes away: a clear deny within the deadline, not a hang.
    let auto = instances.remove(0);
    auto.shutdown().await.unwrap();
    let started = Instant::now();
    let d = decide(&mut house_db, &car2, "battery-discharge").await;
    assert!(!d.allow);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("sector database for automotive unreachable")),
        "{:?}",
        d.reasons
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_under_another_root_is_refused() {
    // Two deployments, each with its own offline root.
    let ours = Ceremony::run(&SECTORS);
    let theirs = Ceremony::run(&SECTORS);
    let their_auto = start_at(&theirs, "automotive", &[]).await;
    let their_url = format!("https://{}", their_auto.addr);
    let their_car = device_at(&theirs, &their_url, "automotive", "X1", automotive_lv5()).await;

    // Our hems instance is (mis)configured to forward to their automotive.
    let hems = start_at(&ours, "hems", &[("automotive", their_url)]).await;
    let hems_url = format!("https://{}", hems.addr);
    let house = device_at(&ours, &hems_url, "hems", "H1", hems_lv5()).await;
    let mut house_db = trust_client(&hems_url, &house.creds).await;

    // Their device's certificate does not chain to our root.
    let d = decide(&mut house_db, &their_car, "read-telemetry").await;
    assert!(!d.allow, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("peer certificate rejected: chain does not verify to the root")),
        "{:?}",
        d.reasons
    );
    // Asked about an automotive device by name, our instance does not
    // accept their instance's TLS certificate: no answer is taken from it.
    let err = get_trust_of(&mut house_db, &their_car.identity)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    assert!(
        err.message().contains(
            "sector database for automotive unreachable: its TLS certificate does not verify against this deployment's root"
        ),
        "{}",
        err.message()
    );
    drop(house_db);
    hems.shutdown().await.unwrap();
    their_auto.shutdown().await.unwrap();
}

/// The log lines `trustca serve --data DATA` writes until it listens.
fn start_up_log(data: &Path) -> Vec<String> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(trustca_bin())
        .args([
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env(
            "TRUSTCA_PASSPHRASE",
            String::from_utf8_lossy(PASSPHRASE).as_ref(),
        )
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let done = line.contains("trustca listening");
        lines.push(line);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn serve_says_once_when_the_root_key_is_online_or_the_arl_is_missing() {
    let warning = "the root CA key is in this online directory";
    let all_in_one = TestCa::init();
    let log = start_up_log(all_in_one.data());
    assert!(
        log.iter().any(|l| l.contains("trustca listening")),
        "{log:?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.contains(warning)).count(),
        1,
        "{log:?}"
    );
    let c = Ceremony::run(&SECTORS);
    let log = start_up_log(c.data("hems"));
    assert!(
        log.iter().any(|l| l.contains("trustca listening")),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains(warning)), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("ARL")), "{log:?}");
    // A sector's directory without the root's ARL is told where to get it.
    std::fs::remove_file(c.data("hems").join("crl/root.crl")).unwrap();
    let log = start_up_log(c.data("hems"));
    assert_eq!(
        log.iter()
            .filter(|l| l.contains("no readable ARL from the root"))
            .count(),
        1,
        "{log:?}"
    );
}
