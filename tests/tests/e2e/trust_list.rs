//! Recognition across roots through a signed trust list (issue 20): a
//! second root, made by `trustca root init` in a directory of its own, with
//! its own sector (`railway`); our root lists it for that sector; our
//! automotive instance then decides about a railway device under the
//! second root, counting its level through `recognition.toml`, and refuses
//! a railway device under a third, unlisted root; and their railway
//! instance, with their root's list naming ours, decides about our car.
//! openssl verifies each cross-root device chain under its own root, and
//! the Go checker every chain, CRL and ARL of both roots. A snapshot of
//! our automotive sector carries the list, so `trustca snapshot decide`
//! answers offline as `Decide` does online.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::ceremony::{Ceremony, trustca_cli, trustca_output, trustca_refused};
use common::go_check::{GoChecker, Instance, device_files};
use common::two_roots::{TwoRoots, decide_until, enrolled, listed_root};
use common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_root_listed_on_the_trust_list_is_recognised_and_an_unlisted_one_is_refused() {
    let TwoRoots {
        ours,
        theirs,
        unlisted,
        policies: _policies,
    } = TwoRoots::run();

    // Every root is named by its operator: `root init` without a name, or
    // with the built-in default, is refused.
    let unnamed = tempfile::tempdir().unwrap();
    let out = trustca_output(&["root", "init", "--data", s(unnamed.path())]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--name <NAME>"));
    trustca_refused(
        &[
            "root",
            "init",
            "--name",
            "trustca Root CA",
            "--data",
            s(unnamed.path()),
        ],
        "default name of pki.toml",
    );
    assert!(!unnamed.path().join("ca").exists());

    // Our root lists their root for railway; our automotive imports it.
    let list = ours.exchange.path().join("trust-list.pem");
    let their_root = theirs.root.path().join("ca/root.pem");
    trustca_cli(&[
        "root",
        "trust-list",
        "issue",
        "--data",
        s(ours.root.path()),
        "--add",
        s(&their_root),
        "--sector",
        "railway",
        "--next-update",
        "30d",
        "--out",
        s(&list),
    ]);
    // Their root may not vouch for one of our sectors.
    trustca_refused(
        &[
            "root",
            "trust-list",
            "issue",
            "--data",
            s(ours.root.path()),
            "--add",
            s(&their_root),
            "--sector",
            "automotive",
            "--out",
            s(&ours.exchange.path().join("bad.pem")),
        ],
        "one of this root's own sectors",
    );
    // And the other way: their root lists ours for automotive.
    let their_list = theirs.exchange.path().join("trust-list.pem");
    let our_root = ours.root.path().join("ca/root.pem");
    trustca_cli(&[
        "root",
        "trust-list",
        "issue",
        "--data",
        s(theirs.root.path()),
        "--add",
        s(&our_root),
        "--sector",
        "automotive",
        "--out",
        s(&their_list),
    ]);
    trustca_cli(&[
        "sector",
        "import",
        "--data",
        s(theirs.data("railway")),
        "--trust-list",
        s(&their_list),
    ]);
    // A list issued by another root is refused, and nothing is written.
    let forged = theirs.exchange.path().join("forged.pem");
    std::fs::write(
        theirs.root.path().join("policies/recognition.toml"),
        "version = \"t\"\nforeign = [\"railway2\"]\n",
    )
    .unwrap();
    let unlisted_root = unlisted.root.path().join("ca/root.pem");
    trustca_cli(&[
        "root",
        "trust-list",
        "issue",
        "--data",
        s(theirs.root.path()),
        "--add",
        s(&unlisted_root),
        "--sector",
        "railway2",
        "--out",
        s(&forged),
    ]);
    let auto_dir = ours.data("automotive");
    trustca_refused(
        &[
            "sector",
            "import",
            "--data",
            s(auto_dir),
            "--trust-list",
            s(&forged),
        ],
        // Roots are named apart (`root init --name`), so the issuer name
        // already tells; a list under our name with another key is refused
        // by its signature (trust-model/src/trust_list_tests.rs).
        "issued by another authority, not this root",
    );
    assert!(!auto_dir.join("ca/trust-list.der").exists());
    trustca_cli(&[
        "sector",
        "import",
        "--data",
        s(auto_dir),
        "--trust-list",
        s(&list),
    ]);
    trustca_refused(
        &[
            "sector",
            "import",
            "--data",
            s(auto_dir),
            "--trust-list",
            s(&list),
        ],
        "not newer",
    );

    let start = |c: &Ceremony, sector: &str| {
        let opts = c.options(sector, "127.0.0.1:0".parse().unwrap(), &[]);
        async move { trustca_server::start(opts).await.unwrap() }
    };
    let auto = start(&ours, "automotive").await;
    let rail = start(&theirs, "railway").await;
    let other = start(&unlisted, "railway").await;
    let auto_url = format!("https://{}", auto.addr);
    let car = enrolled(&ours, auto_url.clone(), "automotive", "C1").await;
    let train = enrolled(&theirs, format!("https://{}", rail.addr), "railway", "T1").await;
    let stranger = enrolled(
        &unlisted,
        format!("https://{}", other.addr),
        "railway",
        "T2",
    )
    .await;

    // openssl: the train's chain verifies under the root our list names.
    let listed_root = listed_root(auto_dir, ours.exchange.path());
    let listed_pem = std::fs::read_to_string(&listed_root).unwrap();
    assert_eq!(listed_pem.replace('\r', ""), theirs.root_pem());
    let (ok, text) = openssl_verify(ours.exchange.path(), &listed_pem, &train.chain, &[]);
    assert!(ok, "{text}");

    let mut car_db = trust_client(&auto_url, &car.creds).await;
    let d = decide(&mut car_db, &train, "evacuation-notice").await;
    assert!(d.allow, "{d:?}");
    assert_eq!(d.peer_sector, "railway");
    // Railway Lv.5 counts as automotive Lv.4 (recognition.toml).
    assert_eq!(d.peer_level, 4, "{d:?}");
    let d = decide(&mut car_db, &stranger, "evacuation-notice").await;
    assert!(!d.allow, "{d:?}");
    assert!(
        d.reasons.iter().any(|r| r.contains("trust list")),
        "{:?}",
        d.reasons
    );
    drop(car_db);
    // Both ways: their railway instance decides about our car.
    let (ok, text) = openssl_verify(theirs.exchange.path(), &ours.root_pem(), &car.chain, &[]);
    assert!(ok, "{text}");
    let mut train_db = trust_client(&format!("https://{}", rail.addr), &train.creds).await;
    let d = decide(&mut train_db, &car, "evacuation-notice").await;
    assert!(d.allow, "{d:?}");
    assert_eq!(d.peer_sector, "automotive");
    // Our car's declared evidence earns automotive Lv.3 (our cap on
    // declared hardware), which their table counts as railway Lv.3.
    assert_eq!(d.peer_level, DECLARED_AUTOMOTIVE_LEVEL, "{d:?}");
    drop(train_db);

    // Offline: a snapshot of our automotive sector carries the list, and
    // decides as the online Decide did.
    offline_decisions(&ours, &auto_url, &car, &train, &stranger);

    // Revocation across roots: their operator revokes the train, ours puts
    // their published CRL in DATA/crl/foreign/, and the train is refused.
    let stranger_crl = unlisted.data("railway").join("crl/railway.crl");
    foreign_revocation(
        &theirs,
        rail.addr,
        auto_dir,
        &auto_url,
        &car,
        &train,
        &stranger_crl,
    )
    .await;
    // The snapshot carries the foreign CRLs too: offline, the train is
    // refused for the same reason.
    let (code, v) = snapshot_decide(&ours, &auto_url, &car, &train);
    assert_eq!(code, Some(3), "{v}");
    assert!(
        v["reasons"].as_array().unwrap().iter().any(|r| r
            .as_str()
            .unwrap()
            .contains("certificate revoked (key-compromise) on CRL")),
        "{v}"
    );

    // Go's standard library, independently: each root's chains, CRLs, ARL
    // and mutual TLS; the train's chain under the root our list names, and
    // neither under our root nor the stranger's under the listed one.
    if let Some(go) = GoChecker::new() {
        let work = ours.exchange.path();
        for (c, sector, device, addr) in [
            (&ours, "automotive", &car, auto.addr),
            (&theirs, "railway", &train, rail.addr),
        ] {
            let instance = Instance {
                sector,
                device: &device.creds,
                addr,
            };
            go.ceremony(c, &[instance], work);
        }
        let (train_pem, _) = device_files(work, "train", &train.creds);
        let (stranger_pem, _) = device_files(work, "stranger", &stranger.creds);
        go.verify(&listed_root, &train_pem, "client");
        go.verify_fails(&ours.root.path().join("ca/root.pem"), &train_pem, "client");
        go.verify_fails(&listed_root, &stranger_pem, "client");
    }
    auto.shutdown().await.unwrap();
    rail.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}

/// `trustca snapshot fetch` from our automotive instance, then `snapshot
/// decide` by our car about `peer`: the exit code and the JSON answer.
fn snapshot_decide(
    ours: &Ceremony,
    url: &str,
    car: &Device,
    peer: &Device,
) -> (Option<i32>, serde_json::Value) {
    let dir = ours.exchange.path();
    let root = ours.root.path().join("ca/root.pem");
    let snapshot = dir.join("automotive.snapshot");
    trustca_cli(&[
        "snapshot",
        "fetch",
        "--server",
        url,
        "--ca",
        s(&root),
        "--sector",
        "automotive",
        "--out",
        s(&snapshot),
    ]);
    let (car_pem, peer_pem) = (dir.join("car-chain.pem"), dir.join("peer-chain.pem"));
    std::fs::write(&car_pem, car.pem()).unwrap();
    std::fs::write(&peer_pem, peer.pem()).unwrap();
    let out = trustca_output(&[
        "snapshot",
        "decide",
        s(&snapshot),
        "--root",
        s(&root),
        "--caller",
        s(&car_pem),
        "--peer",
        s(&peer_pem),
        "--operation",
        "evacuation-notice",
        "--json",
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    (out.status.code(), v)
}

/// Offline, by our car: the train (listed root) allowed at the level the
/// recognition table counts, the stranger (unlisted root) refused.
fn offline_decisions(ours: &Ceremony, url: &str, car: &Device, train: &Device, stranger: &Device) {
    let (code, v) = snapshot_decide(ours, url, car, train);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["allow"], true, "{v}");
    assert_eq!(v["peer_sector"], "railway", "{v}");
    // Railway Lv.5 counts as automotive Lv.4, as online.
    assert_eq!(v["peer_level"], 4, "{v}");
    let (code, v) = snapshot_decide(ours, url, car, stranger);
    assert_eq!(code, Some(3), "{v}");
    assert_eq!(v["allow"], false, "{v}");
    assert!(
        v["reasons"][0]
            .as_str()
            .unwrap()
            .contains("nor to any of the 1 root(s) on the trust list"),
        "{v}"
    );
}

/// The railway operator revokes the train at their instance; a CRL of
/// another CA of the same name (the stranger's railway CA) is not relied
/// on; their real CRL in our `DATA/crl/foreign/` makes our Decide refuse
/// the train, naming the CRL.
async fn foreign_revocation(
    theirs: &Ceremony,
    rail: std::net::SocketAddr,
    auto_dir: &Path,
    auto_url: &str,
    car: &Device,
    train: &Device,
    stranger_crl: &Path,
) {
    let mut car_db = trust_client(auto_url, &car.creds).await;
    let d = decide(&mut car_db, train, "evacuation-notice").await;
    assert!(d.allow, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("no CRL of its CA is held")),
        "{:?}",
        d.reasons
    );
    let ops = theirs.credential("railway", CertificateKind::Operator, "ops", &["railway"]);
    let mut rev = pb::revocation_client::RevocationClient::new(
        trustca_api::client::connect(&format!("https://{rail}"), &ops)
            .await
            .unwrap(),
    );
    rev.revoke(pb::RevokeRequest {
        subject: Some(pb::revoke_request::Subject::Certificate(
            train.chain[0].clone(),
        )),
        reason: "key-compromise".into(),
        note: "stolen train unit".into(),
    })
    .await
    .unwrap();
    let crl = rev
        .get_crl(pb::GetCrlRequest {
            sector: "railway".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .crl_der;
    let foreign = auto_dir.join("crl/foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    // A same-named CA's CRL (the unlisted root's railway CA) does not
    // verify under the train's CA: its revocation cannot be known, so it
    // is refused.
    std::fs::copy(stranger_crl, foreign.join("other.crl")).unwrap();
    let d = decide_until(
        &mut car_db,
        train,
        std::time::Duration::from_secs(20),
        |d| !d.allow,
    )
    .await;
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("the CRL held for its CA cannot be relied on")),
        "{:?}",
        d.reasons
    );
    std::fs::write(foreign.join("railway.crl"), &crl).unwrap();
    // Their real CRL beside it: the one that verifies counts.
    let d = decide_until(
        &mut car_db,
        train,
        std::time::Duration::from_secs(20),
        |d| d.reasons.iter().any(|r| r.contains("certificate revoked")),
    )
    .await;
    assert!(!d.allow, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("certificate revoked (key-compromise) on CRL")),
        "{:?}",
        d.reasons
    );
}
