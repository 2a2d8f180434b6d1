//! Federation across roots (issue 20): two roots' instances, each made by
//! its own key ceremony — our automotive, their railway under a second
//! root — each importing a trust list its root signed naming the other's
//! root. Decide both ways is answered from the other side's *database*
//! (its TLS certificate and its signed answer checked against the listed
//! root), so a revocation at the railway database reaches our Decide
//! without any CRL being copied. Refused: a caller under an unlisted root
//! (`UNAUTHENTICATED`, naming why), a foreign caller on an operator RPC
//! (`PERMISSION_DENIED`), and a foreign caller whose root a newer list no
//! longer names (on its open connection, without a restart). openssl and
//! the Go checker verify the cross-root chains through the lists.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::ceremony::{Ceremony, loopback_port, trustca_cli};
use common::go_check::{GoChecker, device_files};
use common::two_roots::{TwoRoots, decide_until, enrolled, listed_root};
use common::*;
use tonic::Code;
use trustca_api::client::ClientCredentials;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

/// How long our automotive instance reuses an answer from the railway
/// database.
const ANSWER_CACHE_TTL: Duration = Duration::from_secs(2);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `issuer`'s root signs a trust list naming `listed`'s root for
/// `sector`, and `into` (a sector directory) imports it.
fn list_and_import(issuer: &Ceremony, listed: &Ceremony, sector: &str, into: &Path, name: &str) {
    let out = issuer.exchange.path().join(name);
    let root = listed.root.path().join("ca/root.pem");
    trustca_cli(&[
        "root",
        "trust-list",
        "issue",
        "--data",
        s(issuer.root.path()),
        "--add",
        s(&root),
        "--sector",
        sector,
        "--next-update",
        "30d",
        "--out",
        s(&out),
    ]);
    trustca_cli(&[
        "sector",
        "import",
        "--data",
        s(into),
        "--trust-list",
        s(&out),
    ]);
}

/// `creds` for talking to an instance under `root` (the client checks
/// the server's certificate against it; its own chain stays its root's).
fn towards(creds: &ClientCredentials, root: &Ceremony) -> ClientCredentials {
    ClientCredentials {
        root_pem: root.root_pem(),
        ..creds.clone()
    }
}

fn by_chain(chain: &[Vec<u8>]) -> pb::GetTrustRequest {
    pb::GetTrustRequest {
        subject: Some(pb::get_trust_request::Subject::Chain(
            pb::CertificateChain {
                certificates: chain.to_vec(),
            },
        )),
    }
}

fn says(reasons: &[String], needle: &str) -> bool {
    reasons.iter().any(|r| r.contains(needle))
}

/// The DER certificates of a PEM file.
fn ders(path: &Path) -> Vec<Vec<u8>> {
    pem::parse_many(std::fs::read(path).unwrap())
        .unwrap()
        .into_iter()
        .map(pem::Pem::into_contents)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_under_two_roots_federate_through_their_trust_lists() {
    let TwoRoots {
        ours,
        theirs,
        unlisted,
        policies: _policies,
    } = TwoRoots::run();
    let (auto_dir, rail_dir) = (ours.data("automotive"), theirs.data("railway"));
    list_and_import(&ours, &theirs, "railway", auto_dir, "ours-1.pem");
    list_and_import(&theirs, &ours, "automotive", rail_dir, "theirs-1.pem");
    // The root each list names, as the list holds it (not a file copy).
    let listed_theirs = listed_root(auto_dir, ours.exchange.path());
    let listed_ours = listed_root(rail_dir, theirs.exchange.path());

    // Each instance names the other as the peer database of its sector.
    let (auto_addr, rail_addr) = (loopback_port(), loopback_port());
    let (auto_url, rail_url) = (
        format!("https://{auto_addr}"),
        format!("https://{rail_addr}"),
    );
    let mut auto_opts = ours.options("automotive", auto_addr, &[("railway", rail_url.clone())]);
    // Forwarded answers are reused for 2 s, not 30 s: the revocation below
    // reaches Decide once the cached answer expires, and the test waits.
    auto_opts.federation_cache_ttl = ANSWER_CACHE_TTL;
    let auto = trustca_server::start(auto_opts).await.unwrap();
    let rail = trustca_server::start(theirs.options(
        "railway",
        rail_addr,
        &[("automotive", auto_url.clone())],
    ))
    .await
    .unwrap();
    let other =
        trustca_server::start(unlisted.options("railway", "127.0.0.1:0".parse().unwrap(), &[]))
            .await
            .unwrap();
    let car = enrolled(&ours, auto_url.clone(), "automotive", "C1").await;
    let train = enrolled(&theirs, rail_url.clone(), "railway", "T1").await;
    let stranger = enrolled(
        &unlisted,
        format!("https://{}", other.addr),
        "railway",
        "T2",
    )
    .await;

    // Ours about theirs: the railway database answers, signed by its own
    // responder under the listed root; railway Lv.5 counts as automotive
    // Lv.4 (recognition.toml).
    let mut car_db = trust_client(&auto_url, &car.creds).await;
    let d = decide(&mut car_db, &train, "evacuation-notice").await;
    assert!(d.allow, "{d:?}");
    assert_eq!(
        (d.peer_sector.as_str(), d.peer_level),
        ("railway", 4),
        "{d:?}"
    );
    assert!(
        says(&d.reasons, "status active from its own database"),
        "{:?}",
        d.reasons
    );
    // openssl, independently: the responder that signed the answer chains
    // to the root our list names, not to ours.
    let responder: Vec<Vec<u8>> = d
        .peer_assertion
        .clone()
        .unwrap()
        .responder_chain
        .iter()
        .map(|c| c.to_vec())
        .collect();
    let work = ours.exchange.path();
    let listed_pem = std::fs::read_to_string(&listed_theirs).unwrap();
    let (ok, text) = openssl_verify(work, &listed_pem, &responder, &[]);
    assert!(ok, "{text}");
    let (ok, _) = openssl_verify(work, &ours.root_pem(), &responder, &[]);
    assert!(!ok, "their responder verified under our root");

    // Theirs about ours: their instance asks our automotive database,
    // which accepts it as a foreign caller through our list.
    let mut train_db = trust_client(&rail_url, &train.creds).await;
    let d = decide(&mut train_db, &car, "evacuation-notice").await;
    assert!(d.allow, "{d:?}");
    assert_eq!(
        (d.peer_sector.as_str(), d.peer_level),
        ("automotive", DECLARED_AUTOMOTIVE_LEVEL),
        "{d:?}"
    );
    assert!(says(&d.reasons, "from its own database"), "{:?}", d.reasons);
    drop(train_db);
    // The train itself as a caller of our Decide: accepted through our
    // list, its own standing asked from the railway database by identity
    // (our policy has no table counting automotive for railway, so the
    // answer is a deny for that reason, not for the caller).
    let mut train_at_ours = trust_client(&auto_url, &towards(&train.creds, &ours)).await;
    let d = decide(&mut train_at_ours, &car, "evacuation-notice").await;
    assert!(d.caller_level > 0, "{d:?}");
    assert!(
        !d.reasons.iter().any(|r| r.starts_with("caller")),
        "{:?}",
        d.reasons
    );
    drop(train_at_ours);

    foreign_callers_may_only_ask(&ours, &theirs, &auto_url, &car).await;

    // An unlisted root: its device is denied as a peer, and refused as a
    // caller, naming why.
    let d = decide(&mut car_db, &stranger, "evacuation-notice").await;
    assert!(!d.allow, "{d:?}");
    assert!(
        says(&d.reasons, "nor to any of the 1 root(s) on the trust list"),
        "{:?}",
        d.reasons
    );
    let mut stranger_db = trust_client(&auto_url, &towards(&stranger.creds, &ours)).await;
    let err = decide_status(&mut stranger_db, &car).await;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message()
            .contains("chains neither to this root nor to any of the 1 root(s) on the trust list"),
        "{}",
        err.message()
    );

    // Revocation at the railway database reaches our Decide (no CRL is
    // copied: its database says so), once the cached answer expires.
    let their_ops = theirs.credential("railway", CertificateKind::Operator, "ops", &["railway"]);
    let mut rev = pb::revocation_client::RevocationClient::new(
        trustca_api::client::connect(&rail_url, &their_ops)
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
    let d = decide_until(&mut car_db, &train, Duration::from_secs(20), |d| !d.allow).await;
    assert!(!d.allow, "{d:?}");
    assert!(
        says(&d.reasons, "status revoked from its own database"),
        "{:?}",
        d.reasons
    );
    assert!(
        says(&d.reasons, "no CRL of its CA is held here"),
        "{:?}",
        d.reasons
    );

    cross_root_chains_verify(
        &ours,
        &theirs,
        &unlisted,
        &listed_theirs,
        &listed_ours,
        &car,
        rail.addr,
    );

    // A newer list naming another root for railway: the railway caller's
    // open connection is refused on its next request, without a restart.
    let mut foreign_db = trust_client(&auto_url, &towards(&their_ops, &ours)).await;
    foreign_db.get_trust(by_chain(&car.chain)).await.unwrap();
    list_and_import(&ours, &unlisted, "railway", auto_dir, "ours-2.pem");
    let err = get_trust_refused(&mut foreign_db, &car.chain).await;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message()
            .contains("not on the trust list (#2) any more"),
        "{}",
        err.message()
    );

    auto.shutdown().await.unwrap();
    rail.shutdown().await.unwrap();
    other.shutdown().await.unwrap();
}

/// Their railway operator, a foreign caller at our automotive instance,
/// may ask about our car, but no operator RPC.
async fn foreign_callers_may_only_ask(
    ours: &Ceremony,
    theirs: &Ceremony,
    auto_url: &str,
    car: &Device,
) {
    let ops = theirs.credential("railway", CertificateKind::Operator, "ops", &["railway"]);
    let channel = trustca_api::client::connect(auto_url, &towards(&ops, ours))
        .await
        .unwrap();
    let mut db = pb::trust_database_client::TrustDatabaseClient::new(channel.clone());
    let answer = db
        .get_trust(by_chain(&car.chain))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (answer.sector.as_str(), answer.status.as_str()),
        ("automotive", "active")
    );
    let err = db
        .change_trust(pb::ChangeTrustRequest {
            identity: car.identity.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("foreign callers may only ask"),
        "{}",
        err.message()
    );
    let mut rev = pb::revocation_client::RevocationClient::new(channel);
    let err = rev
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Certificate(
                car.chain[0].clone(),
            )),
            reason: "key-compromise".into(),
            note: "a foreign operator".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("foreign callers may only ask"));
    // Nothing changed: the car is still active.
    let answer = db
        .get_trust(by_chain(&car.chain))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status, "active");
}

async fn decide_status(
    db: &mut pb::trust_database_client::TrustDatabaseClient<tonic::transport::Channel>,
    peer: &Device,
) -> tonic::Status {
    db.decide(pb::DecideRequest {
        peer: Some(pb::CertificateChain {
            certificates: peer.chain.clone(),
        }),
        operation: "evacuation-notice".into(),
    })
    .await
    .unwrap_err()
}

/// Asks `GetTrust` until it is refused (the server re-reads its list
/// every [`common::ceremony::TRUST_LIST_REFRESH`]), at most 20 s.
async fn get_trust_refused(
    db: &mut pb::trust_database_client::TrustDatabaseClient<tonic::transport::Channel>,
    chain: &[Vec<u8>],
) -> tonic::Status {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match db.get_trust(by_chain(chain)).await {
            Err(e) => return e,
            Ok(_) if std::time::Instant::now() > deadline => {
                panic!("still answered 20 s after the new list")
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// openssl and Go's standard library: each instance's TLS certificate
/// (as client and as server) and responder verify under the root the
/// *other* side's list names; mutual TLS with the railway instance under
/// the listed root; the unlisted instance does not verify under it.
fn cross_root_chains_verify(
    ours: &Ceremony,
    theirs: &Ceremony,
    unlisted: &Ceremony,
    listed_theirs: &Path,
    listed_ours: &Path,
    car: &Device,
    rail: std::net::SocketAddr,
) {
    let work = ours.exchange.path();
    let their_tls = theirs.data("railway").join("ca/server.pem");
    let (ok, text) = openssl_verify(
        work,
        &std::fs::read_to_string(listed_theirs).unwrap(),
        &ders(&their_tls),
        &["-purpose", "sslclient"],
    );
    assert!(ok, "{text}");
    let (ok, text) = openssl_verify(
        work,
        &std::fs::read_to_string(listed_ours).unwrap(),
        &ders(&ours.data("automotive").join("ca/server.pem")),
        &["-purpose", "sslclient"],
    );
    assert!(ok, "{text}");
    let Some(go) = GoChecker::new() else {
        return;
    };
    for (file, eku) in [
        ("server.pem", "client"),
        ("server.pem", "server"),
        ("responder.pem", "ocsp"),
    ] {
        go.verify(
            listed_theirs,
            &theirs.data("railway").join("ca").join(file),
            eku,
        );
        go.verify(
            listed_ours,
            &ours.data("automotive").join("ca").join(file),
            eku,
        );
    }
    let (car_pem, car_key) = device_files(work, "car", &car.creds);
    go.tls(rail, listed_theirs, &car_pem, &car_key);
    go.verify_fails(
        listed_theirs,
        &unlisted.data("railway").join("ca/server.pem"),
        "server",
    );
}
