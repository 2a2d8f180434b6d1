//! Sector CA rollover (issue 20) and the store made at `sector install`:
//! automotive's next CA is made by its operator, signed offline by the
//! root and run beside the old one; devices under either verify (openssl,
//! Go) and are decided on across instances; a revocation under each lands
//! on the CRL of the CA that issued the certificate and on no other.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::two_roots::device_at;
use crate::federation::{SECTORS, files, lv5, register_lv5_car_model};

use std::path::{Path, PathBuf};

use common::ceremony::{
    Ceremony, fresh_sector_dir, loopback_port, trustca_cli, trustca_output, trustca_refused,
};
use common::go_check::{GoChecker, device_files};
use common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use x509_parser::prelude::FromDer;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The serials (hex) a DER CRL lists, and its issuer's common name.
fn crl_entries(path: &Path) -> (String, Vec<String>) {
    let der = std::fs::read(path).unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let issuer = crl
        .issuer()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let serials = crl
        .iter_revoked_certificates()
        .map(|e| trustca_model::hexfmt::encode(e.raw_serial()))
        .collect();
    (issuer, serials)
}

/// The CRL number of a DER CRL file.
fn crl_number(path: &Path) -> u64 {
    let der = std::fs::read(path).unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    u64::try_from(crl.crl_number().unwrap()).unwrap()
}

fn serial_of(der: &[u8]) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    trustca_model::hexfmt::encode(c.raw_serial())
}

fn issuer_cn(der: &[u8]) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    c.issuer()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

/// The rollover's three steps: `sector rollover` at automotive, `root
/// sign-sector --rollover` offline, `sector install` back at automotive;
/// then hems imports the new CA certificate. Returns the certificate file.
fn roll_over_automotive(c: &Ceremony) -> PathBuf {
    // A `trustca init` directory (every sector's key and the root's
    // together) cannot roll over: one line naming the ceremony path, and
    // nothing written.
    let all_in_one = tempfile::tempdir().unwrap();
    trustca_cli(&["init", "--data", s(all_in_one.path())]);
    let before = files(all_in_one.path());
    trustca_refused(
        &["sector", "rollover", "--data", s(all_in_one.path())],
        "a `trustca init` directory (every sector's key and the root's together) cannot roll over; move each sector to its own directory with the key ceremony",
    );
    assert_eq!(files(all_in_one.path()), before);
    let auto = c.data("automotive");
    let out = trustca_cli(&["sector", "rollover", "--data", s(auto)]);
    assert!(out.contains("automotive.2"), "{out}");
    let csr = auto.join("ca/automotive.2.csr");
    assert!(csr.exists());
    // A second rollover while this one waits for its certificate: refused.
    trustca_refused(
        &["sector", "rollover", "--data", s(auto)],
        "waits for its certificate",
    );
    let cert = c.exchange.path().join("automotive.2.pem");
    let root = c.root.path();
    // The root signs a second automotive CA only when asked for a rollover.
    let before = files(root);
    trustca_refused(
        &[
            "root",
            "sign-sector",
            s(&csr),
            "--data",
            s(root),
            "--out",
            s(&cert),
        ],
        "give --rollover",
    );
    // The first request again (the current CA's key) as a rollover: refused.
    trustca_refused(
        &[
            "root",
            "sign-sector",
            s(&auto.join("ca/automotive.csr")),
            "--rollover",
            "--data",
            s(root),
            "--out",
            s(&cert),
        ],
        "next automotive CA is generation 2",
    );
    assert_eq!(files(root), before, "nothing written at the root");
    let out = trustca_cli(&[
        "root",
        "sign-sector",
        s(&csr),
        "--rollover",
        "--data",
        s(root),
        "--out",
        s(&cert),
    ]);
    assert!(out.contains("automotive.2 CA certificate"), "{out}");
    assert!(root.join("ca/automotive.2.pem").exists());
    assert!(root.join("ca/automotive.pem").exists(), "the old one kept");
    let root_pem = root.join("ca/root.pem");
    let install = |data: &Path| {
        [
            "sector",
            "install",
            s(&cert),
            "--root",
            s(&root_pem),
            "--data",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([s(data).to_owned()])
        .collect::<Vec<String>>()
    };
    // Another sector's directory cannot install it.
    let hems_install = install(c.data("hems"));
    trustca_refused(&strs(&hems_install), "but this directory is hems's");
    let auto_install = install(auto);
    let out = trustca_cli(&strs(&auto_install));
    assert!(out.contains("installed the automotive.2 CA"), "{out}");
    // The same answer twice: nothing pending any more.
    trustca_refused(&strs(&auto_install), "no rollover is pending");
    for other in ["hems", "healthcare"] {
        let out = c.import(other, std::slice::from_ref(&cert));
        assert!(
            out.contains("imported the automotive CA certificate"),
            "{out}"
        );
        assert!(c.data(other).join("ca/automotive.2.pem").exists());
        assert!(c.data(other).join("ca/automotive.pem").exists());
    }
    cert
}

/// openssl with the root, the device's CA, `crl` and the ARL.
fn openssl_with_crl(c: &Ceremony, work: &Path, chain: &[Vec<u8>], crl: &Path) -> (bool, String) {
    let arl = c.root.path().join("crl/root.crl");
    let extra = ["-crl_check_all", "-CRLfile", s(crl), "-CRLfile", s(&arl)];
    openssl_verify(work, &c.root_pem(), chain, &extra)
}

/// The automotive and hems instances, forwarding to each other, on fresh
/// ports; returns them with a function from sector to URL.
async fn start_pair(
    c: &Ceremony,
) -> (
    [trustca_server::RunningServer; 2],
    impl Fn(&str) -> String + use<>,
) {
    let addrs = [("automotive", loopback_port()), ("hems", loopback_port())];
    let url = move |s: &str| format!("https://{}", addrs.iter().find(|a| a.0 == s).unwrap().1);
    let auto = c.options("automotive", addrs[0].1, &[("hems", url("hems"))]);
    let hems = c.options("hems", addrs[1].1, &[("automotive", url("automotive"))]);
    (
        [
            trustca_server::start(auto).await.unwrap(),
            trustca_server::start(hems).await.unwrap(),
        ],
        url,
    )
}

/// An automotive device enrolled at `url`.
async fn car(c: &Ceremony, url: &str, serial: &str) -> Device {
    device_at(c, url, "automotive", serial, lv5("automotive")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_over_sector_runs_both_cas_each_revocation_on_its_issuers_crl() {
    let c = Ceremony::run(&SECTORS);
    let (servers, url) = start_pair(&c).await;
    // Automotive Lv.5 rests on the registered model: declared hardware
    // counts up to Lv.3 there.
    register_lv5_car_model(&c, &url("automotive")).await;
    let old = car(&c, &url("automotive"), "OLD-1").await;
    let old_bad = car(&c, &url("automotive"), "OLD-2").await;
    let house = device_at(&c, &url("hems"), "hems", "H-1", lv5("hems")).await;

    let new_ca = roll_over_automotive(&c);
    // The new CA is taken at the next start.
    for server in servers {
        server.shutdown().await.unwrap();
    }
    let (servers, url) = start_pair(&c).await;
    let new = car(&c, &url("automotive"), "NEW-1").await;
    let new_bad = car(&c, &url("automotive"), "NEW-2").await;
    assert_eq!(issuer_cn(&old.chain[0]), "trustca automotive Sector CA");
    assert_eq!(issuer_cn(&new.chain[0]), "trustca automotive Sector CA 2");
    assert_ne!(old.chain[1], new.chain[1]);

    // Decide accepts devices under both CAs, at either instance, either way.
    for (at, caller, peer) in [
        ("hems", &house, &old),
        ("hems", &house, &new),
        ("automotive", &old, &house),
        ("automotive", &new, &house),
        ("automotive", &new, &old),
    ] {
        let mut db = trust_client(&url(at), &caller.creds).await;
        let d = decide(&mut db, peer, "read-telemetry").await;
        assert!(
            d.allow,
            "{at}: {} -> {}: {:?}",
            caller.identity, peer.identity, d.reasons
        );
    }

    // One revocation under each CA.
    let ops = c.credential(
        "automotive",
        CertificateKind::Operator,
        "ops",
        &["automotive"],
    );
    let mut rev = pb::revocation_client::RevocationClient::new(
        trustca_api::client::connect(&url("automotive"), &ops)
            .await
            .unwrap(),
    );
    let data = c.data("automotive");
    let (old_crl, new_crl) = (
        data.join("crl/automotive.crl"),
        data.join("crl/automotive.2.crl"),
    );
    for (d, crl) in [(&old_bad, &old_crl), (&new_bad, &new_crl)] {
        let answer = rev
            .revoke(pb::RevokeRequest {
                subject: Some(pb::revoke_request::Subject::Identity(d.identity.clone())),
                reason: "key-compromise".into(),
                note: "rollover test".into(),
            })
            .await
            .unwrap()
            .into_inner();
        // The answer names the number of the CRL that lists it: its own
        // CA generation's, not the newest one's.
        assert_eq!(answer.crl_number, crl_number(crl), "{}", crl.display());
    }
    // Each CA's CRL lists what it issued, and only that.
    let (issuer, listed) = crl_entries(&old_crl);
    assert_eq!(issuer, "trustca automotive Sector CA");
    assert_eq!(listed, vec![serial_of(&old_bad.chain[0])]);
    let (issuer, listed) = crl_entries(&new_crl);
    assert_eq!(issuer, "trustca automotive Sector CA 2");
    assert_eq!(listed, vec![serial_of(&new_bad.chain[0])]);
    // GetCrl serves each by its CA's name; a name that is no CA is refused.
    let mut pubc = pb::revocation_client::RevocationClient::new(
        trustca_api::client::connect(&url("automotive"), &ops)
            .await
            .unwrap(),
    );
    for (name, file) in [("automotive", &old_crl), ("automotive.2", &new_crl)] {
        let got = pubc
            .get_crl(pb::GetCrlRequest {
                sector: name.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.crl_der, std::fs::read(file).unwrap(), "{name}");
    }
    for bad in ["automotive.1", "automotive.9", "automotive..2"] {
        let e = pubc
            .get_crl(pb::GetCrlRequest { sector: bad.into() })
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.code(),
                tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
            ),
            "{bad}: {e:?}"
        );
    }

    // openssl, each device with its own CA's CRL and the ARL.
    let work = tempfile::tempdir().unwrap();
    for (device, crl, good) in [
        (&old, &old_crl, true),
        (&old_bad, &old_crl, false),
        (&new, &new_crl, true),
        (&new_bad, &new_crl, false),
    ] {
        let (ok, out) = openssl_with_crl(&c, work.path(), &device.chain, crl);
        assert_eq!(ok, good, "{}: {out}", device.identity);
        if !good {
            assert!(out.contains("certificate revoked"), "{out}");
        }
    }
    // `trustca verify --server` fetches the CRL of the device's own CA
    // generation (and the ARL) by GetCrl.
    for (device, good) in [
        (&old, true),
        (&old_bad, false),
        (&new, true),
        (&new_bad, false),
    ] {
        let file = work.path().join("verify-me.pem");
        std::fs::write(&file, device.pem()).unwrap();
        let out = trustca_output(&[
            "verify",
            s(&file),
            "--root",
            s(&c.root.path().join("ca/root.pem")),
            "--server",
            &url("automotive"),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), good, "{}: {text}", device.identity);
        if !good {
            assert!(text.contains("revoked"), "{text}");
        }
    }
    // The other CA's CRL does not vouch for a device: openssl finds no CRL
    // for its issuer.
    let (ok, out) = openssl_with_crl(&c, work.path(), &new.chain, &old_crl);
    assert!(!ok, "{out}");
    // Go, independently: both chains and both CRLs under their issuers.
    if let Some(go) = GoChecker::new() {
        let root = c.root.path().join("ca/root.pem");
        for (name, d) in [("old", &old), ("new", &new)] {
            let (chain, _) = device_files(work.path(), name, &d.creds);
            go.verify(&root, &chain, "client");
        }
        go.crl(&old_crl, &data.join("ca/automotive.pem"));
        go.crl(&new_crl, &new_ca);
    }
    // The revoked ones are denied, under either CA, at the peer instance.
    let mut db = trust_client(&url("hems"), &house.creds).await;
    for d in [&old_bad, &new_bad] {
        let decision = decide(&mut db, d, "read-telemetry").await;
        assert!(!decision.allow, "{}: {:?}", d.identity, decision.reasons);
    }
    for server in servers {
        server.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sector_install_makes_and_checks_the_store_before_the_instance_serves() {
    let c = Ceremony::run(&SECTORS);
    let passphrase = trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap();
    for sector in SECTORS {
        let data = c.data(sector);
        let store = trustca_server::StoreConfig::in_data_dir(data);
        let storage = store.open_existing().unwrap();
        let check = trustca_store::check_audit_log(storage.as_ref()).unwrap();
        assert!(check.damaged.is_empty(), "{sector}: {:?}", check.damaged);
        assert_eq!(check.entries, 1, "{sector}: the install entry only");
        let installed = trustca_server::instance_store::installed_as(storage.as_ref())
            .unwrap()
            .unwrap();
        assert_eq!(installed["sector"], sector);
        let ca = std::fs::read(data.join(format!("ca/{sector}.pem"))).unwrap();
        let ca = pem::parse(ca).unwrap().into_contents();
        assert_eq!(
            installed["ca_sha256"],
            trustca_model::hexfmt::encode(&trustca_model::fingerprint(&ca))
        );
        drop(storage);
        // A second store for the same directory is refused.
        let e = trustca_server::instance_store::create_instance_store(
            data,
            None,
            &passphrase,
            &trustca_model::SectorName::new(sector).unwrap(),
            &ca,
        )
        .unwrap_err();
        assert!(e.to_string().contains("already holds a store"), "{e}");
    }
    // The instance then serves that store: the log goes on from the entry.
    let server = trustca_server::start(c.options("hems", loopback_port(), &[]))
        .await
        .unwrap();
    let house = device_at(
        &c,
        &format!("https://{}", server.addr),
        "hems",
        "H-9",
        lv5("hems"),
    )
    .await;
    assert!(!house.chain.is_empty());
    server.shutdown().await.unwrap();
    let storage = trustca_server::StoreConfig::in_data_dir(c.data("hems"))
        .open_existing()
        .unwrap();
    let check = trustca_store::check_audit_log(storage.as_ref()).unwrap();
    assert!(check.damaged.is_empty());
    assert!(check.entries > 1, "{}", check.entries);
    assert!(
        trustca_server::instance_store::installed_as(storage.as_ref())
            .unwrap()
            .is_some()
    );

    // Installing into a directory whose store exists already: refused
    // before anything is written.
    let fresh = fresh_sector_dir("automotive");
    let csr = fresh.path().join("ca/automotive.csr");
    let root = c.root.path();
    // A store squatting where this directory's would go.
    std::fs::create_dir_all(fresh.path().join("db")).unwrap();
    std::fs::write(fresh.path().join("db/conf"), b"someone else's").unwrap();
    let before = files(fresh.path());
    trustca_refused(
        &[
            "sector",
            "install",
            s(&c.exchange.path().join("automotive.pem")),
            "--root",
            s(&root.join("ca/root.pem")),
            "--data",
            s(fresh.path()),
        ],
        "already holds a store",
    );
    assert_eq!(files(fresh.path()), before, "nothing written");
    assert!(csr.exists());
}
