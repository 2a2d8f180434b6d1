//! The root's CRL (ARL) and revoking a sector CA, end to end: openssl
//! checks whole chains against the root and sector CRLs, `trustca verify`
//! checks revocation from files or from a server without a credential and
//! says which check it made, and `trustca ca revoke` (offline, while the
//! server runs) lists the CA in the root CRL and stops its issuance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use tonic::Code;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::revocation_client::RevocationClient;
use trustca_store::Storage;

fn run(args: &[&str]) -> Output {
    Command::new(trustca_bin())
        .args(args)
        .env(
            "TRUSTCA_PASSPHRASE",
            std::str::from_utf8(PASSPHRASE).unwrap(),
        )
        .env_remove("TRUSTCA_SERVER")
        .env_remove("TRUSTCA_IDENTITY")
        .env_remove("TRUSTCA_KEY")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `trustca verify LEAF` of an automotive leaf, with the root and the
/// automotive CA of `data` and the arguments `extra`.
fn verify_automotive(leaf: &str, data: &Path, extra: &[&str]) -> Output {
    let (root, chain) = (data.join("ca/root.pem"), data.join("ca/automotive.pem"));
    let args = ["verify", leaf, "--root", p(&root), "--chain", p(&chain)];
    run(&[&args[..], extra].concat())
}

/// `trustca ca revoke automotive` for a key compromise, offline on `data`,
/// with the arguments `extra`.
fn revoke_automotive_ca(data: &Path, extra: &[&str]) -> Output {
    let args = ["ca", "revoke", "automotive", "--data", p(data)];
    run(&[&args[..], &["--reason", "ca-compromise"], extra].concat())
}

/// openssl verify with full CRL checking (every CA in the path needs a CRL).
fn openssl_crl_check_all(data: &Path, leaf: &Path, crls: &[&Path]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-crl_check_all", "-CAfile"])
        .arg(data.join("ca/root.pem"))
        .arg("-untrusted")
        .arg(data.join("ca/automotive.pem"));
    for c in crls {
        cmd.arg("-CRLfile").arg(c);
    }
    let out = cmd.arg(leaf).output().expect("openssl must be installed");
    (out.status.success(), text(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_crl_covers_sector_cas_and_revoking_one_stops_its_issuance() {
    let mut ca = TestCa::start().await;
    let data = ca.data().to_path_buf();
    let root_crl = data.join("crl/root.crl");
    let sector_crl = data.join("crl/automotive.crl");
    assert!(root_crl.exists(), "init publishes the root CRL");

    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems"],
    );
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    // Issued by the hems CA (its first sector), authorized for automotive.
    let house_acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["hems", "automotive"],
    );
    let root = ca.root_pem();
    let mut enroll = ca.client(&acme).await;
    let car = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-200",
        "V1",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let car2 = enroll_device(
        &mut enroll,
        &root,
        "automotive",
        "Acme",
        "EV-200",
        "V2",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let mut house_enroll = ca.client(&house_acme).await;
    let house = enroll_acme_battery(&mut house_enroll, &root, "H0").await;
    drop(house_enroll);
    let car_pem = data.join("car.pem");
    std::fs::write(&car_pem, pem_of(&car.chain[0])).unwrap();
    let car2_pem = data.join("car2.pem");
    std::fs::write(&car2_pem, pem_of(&car2.chain[0])).unwrap();
    let root_pem = data.join("ca/root.pem");

    // openssl: the whole chain is checked against both CRLs (DER files as published).
    let (ok, out) = openssl_crl_check_all(&data, &car_pem, &[&root_crl, &sector_crl]);
    assert!(ok, "{out}");
    let (ok, out) = openssl_crl_check_all(&data, &car_pem, &[&sector_crl]);
    assert!(
        !ok && out.contains("unable to get certificate CRL"),
        "without the root CRL: {out}"
    );
    let crl_text = Command::new("openssl")
        .args([
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-text",
            "-in",
            p(&root_crl),
        ])
        .output()
        .unwrap();
    let crl_text = text(&crl_text);
    assert!(crl_text.contains("X509v3 CRL Number"), "{crl_text}");
    assert!(
        crl_text.contains("X509v3 Authority Key Identifier"),
        "{crl_text}"
    );
    assert!(crl_text.contains("Version 2"), "{crl_text}");

    // trustca verify: without a revocation source it says so plainly.
    let o = verify_automotive(p(&car_pem), &data, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("revocation: NOT checked"), "{}", text(&o));
    // The sector CRL alone leaves the sector CA unchecked: not a pass.
    let o = verify_automotive(p(&car_pem), &data, &["--crl", p(&sector_crl)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("could not check the issuing CA") && text(&o).contains("crl/root.crl"),
        "{}",
        text(&o)
    );
    // From files: both CRLs checked.
    let o = verify_automotive(
        p(&car_pem),
        &data,
        &["--crl", p(&sector_crl), "--crl", p(&root_crl)],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("certificate not listed in CRL #"),
        "{}",
        text(&o)
    );
    assert!(
        text(&o).contains("issuing CA not listed in CRL #"),
        "{}",
        text(&o)
    );

    // An unknown sector is the same mistake to GetCrl and GetSnapshot.
    let public = trustca_api::client::connect_public(&ca.url(), &root)
        .await
        .unwrap();
    let crl_err = RevocationClient::new(public.clone())
        .get_crl(pb::GetCrlRequest {
            sector: "nope".into(),
        })
        .await
        .unwrap_err();
    let snap_err = pb::trust_snapshots_client::TrustSnapshotsClient::new(public)
        .get_snapshot(pb::GetSnapshotRequest {
            sector: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(crl_err.code(), Code::InvalidArgument, "{crl_err:?}");
    assert_eq!(snap_err.code(), crl_err.code(), "{snap_err:?}");

    // `trustca crl` needs no client credential, and serves the root CRL too.
    let fetched = data.join("fetched-root.crl");
    let o = run(&[
        "crl",
        "--server",
        &ca.url(),
        "--ca",
        p(&root_pem),
        "--sector",
        "root",
        "--out",
        p(&fetched),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(&fetched).unwrap(),
        std::fs::read(&root_crl).unwrap()
    );

    // Revoke the car for key compromise; --server sees it (no credential).
    let mut rev =
        RevocationClient::new(trustca_api::client::connect(&ca.url(), &ops).await.unwrap());
    rev.revoke(pb::RevokeRequest {
        subject: Some(pb::revoke_request::Subject::Certificate(
            car.chain[0].clone(),
        )),
        reason: "key-compromise".into(),
        note: "extracted".into(),
    })
    .await
    .unwrap();
    let o = verify_automotive(p(&car_pem), &data, &["--server", &ca.url(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["revocation"]["checked"], true, "{v}");
    assert_eq!(v["revocation"]["revoked"], true, "{v}");
    assert_eq!(
        v["revocation"]["checks"][0]["reason"], "key-compromise",
        "{v}"
    );
    assert!(
        v["revocation"]["source"]
            .as_str()
            .unwrap()
            .contains(&ca.url()),
        "{v}"
    );
    // A CRL file of the wrong issuer is refused, not silently passed.
    let hems_crl = data.join("crl/hems.crl");
    let o = verify_automotive(p(&car2_pem), &data, &["--crl", p(&hems_crl)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("none of the CRL files is issued by"),
        "{}",
        text(&o)
    );

    // The sector CRL as it stands before the root revokes its CA: the
    // running server lists the CA's certificates on it within seconds of
    // the revocation, and the checks below must fail because of the root's
    // CRL, not because the leaf is on a newer sector CRL.
    let sector_crl_now = data.join("automotive-before-ca-revocation.crl");
    std::fs::copy(data.join("crl/automotive.crl"), &sector_crl_now).unwrap();

    // Revoking the sector CA: refused without the confirmation, then done
    // offline while the server runs.
    let o = revoke_automotive_ca(&data, &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--yes-revoke-sector-ca automotive"),
        "{}",
        text(&o)
    );
    let o = revoke_automotive_ca(
        &data,
        &[
            "--note",
            "sub-CA key exposed",
            "--yes-revoke-sector-ca",
            "automotive",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o2 = revoke_automotive_ca(&data, &["--yes-revoke-sector-ca", "automotive"]);
    assert!(
        !o2.status.success() && text(&o2).contains("already revoked"),
        "{}",
        text(&o2)
    );

    // openssl now rejects every automotive chain through the root CRL.
    let (ok, out) = openssl_crl_check_all(&data, &car2_pem, &[&root_crl, &sector_crl_now]);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let o = verify_automotive(
        p(&car2_pem),
        &data,
        &["--crl", p(&sector_crl_now), "--crl", p(&root_crl)],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("issuing CA is revoked (ca-compromise)"),
        "{}",
        text(&o)
    );

    // The running server stops issuing from it at its next check.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut attempt = 0;
    let err = loop {
        attempt += 1;
        let (_, csr) = csr();
        let serial = format!("V3-{attempt}");
        match enroll
            .enroll(request(
                "automotive",
                "Acme",
                &serial,
                csr,
                automotive_lv5(),
            ))
            .await
        {
            // The revocation can land between the caller check and the
            // issuance of one request (concurrent unary calls are issued in
            // groups): the engine then refuses that one itself; the next
            // request meets the caller check.
            Err(e)
                if e.code() == Code::FailedPrecondition
                    && e.message().contains("issues no more certificates") =>
            {
                assert!(Instant::now() < deadline, "{e:?}");
            }
            Err(e) => break e,
            Ok(_) => {
                assert!(
                    Instant::now() < deadline,
                    "enrollment still works 15 s after the sector CA was revoked"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    };
    // Acme's credential was issued by the automotive CA: it goes too.
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message()
            .contains("issuing CA (automotive) was revoked by the root"),
        "{}",
        err.message()
    );
    revoked_ca_takes_its_certificates_along(&ca, &car2, &house_acme, &house).await;
    // A credential from another CA may still ask for automotive: refused
    // because the automotive CA may issue no more.
    let mut enroll = ca.client(&house_acme).await;
    let (_, v3_csr) = csr();
    let err = enroll
        .enroll(request(
            "automotive",
            "Acme",
            "V3",
            v3_csr,
            automotive_lv5(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("revoked by the root"),
        "{}",
        err.message()
    );
    // Other sectors are unaffected.
    enroll_acme_battery(&mut enroll, &root, "H1").await;

    // At the next start the refusal holds, and the revocation is audited.
    drop((enroll, rev));
    ca.restart().await;
    let mut enroll = ca.client(&house_acme).await;
    let (_, v4_csr) = csr();
    let err = enroll
        .enroll(request(
            "automotive",
            "Acme",
            "V4",
            v4_csr,
            automotive_lv5(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let mut enroll_old = ca.client(&acme).await;
    let (_, h9_csr) = csr();
    let err = enroll_old
        .enroll(request("hems", "Acme", "H9", h9_csr, hems_lv5()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    drop(enroll_old);
    drop(enroll);
    ca.stop().await;
    let store = trustca_store::SledStorage::open(&data.join("db")).unwrap();
    let revoked: Vec<_> = store
        .audit_entries(0, 10_000)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "ca.revoked")
        .collect();
    assert_eq!(revoked.len(), 1, "recorded once");
    assert_eq!(revoked[0].subject, "automotive");
    assert!(
        revoked[0].detail.contains("ca-compromise"),
        "{}",
        revoked[0].detail
    );
}

/// After the root revoked the automotive CA (seen by the server), its
/// device `car` is revoked for Decide, GetTrust and the snapshot, by a
/// caller whose own CA is intact.
async fn revoked_ca_takes_its_certificates_along(
    ca: &TestCa,
    car: &Device,
    other: &trustca_api::client::ClientCredentials,
    house: &Device,
) {
    use trustca_proto::v1::trust_database_client::TrustDatabaseClient;
    use trustca_proto::v1::trust_snapshots_client::TrustSnapshotsClient;
    // The server applies the revocation at its next check (every 2 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut db = TrustDatabaseClient::new(
        trustca_api::client::connect(&ca.url(), other)
            .await
            .unwrap(),
    );
    let trust = loop {
        let t = db
            .get_trust(pb::GetTrustRequest {
                subject: Some(pb::get_trust_request::Subject::Identity(
                    car.identity.clone(),
                )),
            })
            .await
            .unwrap()
            .into_inner();
        if t.status == "revoked" || Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(trust.status, "revoked", "{trust:?}");
    let mut as_house = TrustDatabaseClient::new(
        trustca_api::client::connect(&ca.url(), &house.creds)
            .await
            .unwrap(),
    );
    let d = as_house
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: car.chain.clone(),
            }),
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!d.allow, "{d:?}");
    assert!(
        d.reasons.iter().any(|r| r.contains("revoked")),
        "{:?}",
        d.reasons
    );
    // A served snapshot is rebuilt at most once a second after a change:
    // asked again until it lists the revocation, for up to 10 s.
    let mut snaps = TrustSnapshotsClient::new(
        trustca_api::client::connect_public(&ca.url(), &ca.root_pem())
            .await
            .unwrap(),
    );
    let root_der = pem::parse(ca.root_pem().as_bytes())
        .unwrap()
        .into_contents();
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        let der = snaps
            .get_snapshot(pb::GetSnapshotRequest {
                sector: "automotive".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .signed_snapshot;
        let snapshot = trustca_model::SignedSnapshot::from_der(&der)
            .unwrap()
            .verify(
                &root_der,
                time::OffsetDateTime::now_utc(),
                &Default::default(),
                false,
            )
            .unwrap();
        let state = snapshot
            .device(&car.identity)
            .expect("listed in the snapshot")
            .clone();
        if state.status == trustca_model::TrustStatus::Revoked || Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        state.status,
        trustca_model::TrustStatus::Revoked,
        "{state:?}"
    );
}
