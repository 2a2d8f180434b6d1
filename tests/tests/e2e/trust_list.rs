//! Recognition across roots through a signed trust list (issue 20): a
//! second root, made by `trustca root init` in a directory of its own, with
//! its own sector (`railway`); our root lists it for that sector; our
//! automotive instance then decides about a railway device under the
//! second root, counting its level through `recognition.toml`, and refuses
//! a railway device under a third, unlisted root; and their railway
//! instance, with their root's list naming ours, decides about our car.
//! openssl verifies each cross-root device chain under its own root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::ceremony::{Ceremony, trustca_cli, trustca_refused};
use common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

const OURS: [&str; 3] = ["automotive", "hems", "healthcare"];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn builtin(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../policies")
            .join(file),
    )
    .unwrap()
}

/// Our policies: the built-in ones, with `railway` declared foreign and
/// counted by automotive one lower at the top.
fn our_policies(dir: &Path) {
    copy_builtin(dir);
    let recognition = builtin("recognition.toml").replacen(
        "\n[[recognition]]",
        "\nforeign = [\"railway\"]\n\n[[recognition]]",
        1,
    ) + "\n[[recognition]]\nsector = \"automotive\"\ncounts = \"railway\"\nmap = [1, 2, 3, 3, 4]\nrationale = \"test\"\n";
    std::fs::write(dir.join("recognition.toml"), recognition).unwrap();
}

/// Another industry's policies: one sector, railway (the automotive
/// profile renamed), the all-sector rules only.
fn their_policies(dir: &Path) {
    copy_builtin(dir);
    for sector in OURS {
        std::fs::remove_file(dir.join(format!("sectors/{sector}.toml"))).unwrap();
        let _ = std::fs::remove_file(dir.join(format!("detection/{sector}.toml")));
    }
    std::fs::write(
        dir.join("sectors/railway.toml"),
        builtin("sectors/automotive.toml")
            .replace("sector = \"automotive\"", "sector = \"railway\""),
    )
    .unwrap();
    let cooperation = builtin("cooperation.toml");
    let mut blocks = cooperation.split("[[rule]]");
    let mut kept = blocks.next().unwrap().to_owned();
    for b in blocks.filter(|b| b.contains("caller = \"*\"")) {
        kept.push_str("[[rule]]");
        kept.push_str(b);
    }
    std::fs::write(dir.join("cooperation.toml"), kept).unwrap();
    std::fs::write(
        dir.join("recognition.toml"),
        "version = \"test-1\"\nforeign = [\"automotive\"]\n\n[[recognition]]\nsector = \"railway\"\ncounts = \"automotive\"\nmap = [1, 2, 3, 4, 5]\nrationale = \"test\"\n",
    )
    .unwrap();
}

fn copy_builtin(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let out = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.display()))
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_root_listed_on_the_trust_list_is_recognised_and_an_unlisted_one_is_refused() {
    let (ours_pol, theirs_pol) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    our_policies(ours_pol.path());
    their_policies(theirs_pol.path());
    let ours = Ceremony::run_with(&OURS, Some(ours_pol.path()));
    let theirs = Ceremony::run_with(&["railway"], Some(theirs_pol.path()));
    let unlisted = Ceremony::run_with(&["railway"], Some(theirs_pol.path()));

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
    // A list signed by another root is refused, and nothing is written.
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
        "signed by an unknown key",
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
    let device = |c: &Ceremony, url: String, sector: &'static str, serial: &'static str| {
        let acme = c.credential(sector, CertificateKind::Manufacturer, "Acme", &[sector]);
        let root = c.root_pem();
        async move {
            let mut e = pb::enrollment_client::EnrollmentClient::new(
                trustca::client::connect(&url, &acme).await.unwrap(),
            );
            enroll_device(
                &mut e,
                &root,
                sector,
                "Acme",
                "M-1",
                serial,
                "1.0.0",
                automotive_lv5(),
            )
            .await
        }
    };
    let auto_url = format!("https://{}", auto.addr);
    let car = device(&ours, auto_url.clone(), "automotive", "C1").await;
    let train = device(&theirs, format!("https://{}", rail.addr), "railway", "T1").await;
    let stranger = device(
        &unlisted,
        format!("https://{}", other.addr),
        "railway",
        "T2",
    )
    .await;

    // openssl: the train's chain verifies under their (listed) root.
    let (ok, text) = openssl_verify(ours.exchange.path(), &theirs.root_pem(), &train.chain, &[]);
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
    assert_eq!(d.peer_level, 5, "{d:?}");
    drop(train_db);
    auto.shutdown().await.unwrap();
    rail.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}
