//! The vehicle's command line over IEEE 1609.2 tickets: `trustca pseudonym
//! request --format ieee1609` against a real in-process server (batches go
//! out at once), then `status`, `rotate`, `export --format coer` (checked
//! with `trustca inspect` and against the ticket's verification key), and
//! `check --linkage-crl` before and after an operator revokes the car.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::separated::ticket_request;
use common::*;
use trustca_ca::Passphrase;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::v2x_registration_client::V2xRegistrationClient;
use trustca_pseudonym::{Caterpillar, P256PrivateKey};
use trustca_scms::BatchPolicy;
use trustca_server::ServeOptions;
use trustca_v2x::{CertProfile, Certificate};

use super::tickets::registration;

fn cli(args: &[String]) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(trustca_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("TRUSTCA_POOL_PASSPHRASE")
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|x| x.to_string()).collect()
}

/// A CA serving its V2X authorities in-process with this batching, and two
/// cars enrolled with Lv.5 evidence.
async fn server_with_cars(
    min_vehicles: usize,
    max_wait_secs: i64,
    serials: [&str; 2],
) -> (TestCa, Vec<Device>) {
    let mut ca = TestCa::init();
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.v2x_batch = BatchPolicy {
        min_vehicles,
        max_wait_secs,
        max_requests_per_batch: 10_000,
    };
    ca.server = Some(trustca_server::start(opts).await.unwrap());
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let mut enroll = ca.client(&acme).await;
    // Lv.5 from the registered model (declared hardware counts up to Lv.3
    // in automotive).
    register_automotive_lv5(&ca, &acme, "Acme", "EV-200").await;
    let mut cars = Vec::new();
    for serial in serials {
        cars.push(
            enroll_device(
                &mut enroll,
                &ca.root_pem(),
                "automotive",
                "Acme",
                "EV-200",
                serial,
                "2.1.0",
                vec![],
            )
            .await,
        );
    }
    (ca, cars)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vehicle_requests_rotates_exports_and_checks_tickets_with_the_cli() {
    let (mut ca, cars) = server_with_cars(1, 0, ["CLI-0", "CLI-1"]).await;
    let url = ca.url();
    let car = &cars[0];

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("car.pem"), &car.creds.cert_pem).unwrap();
    std::fs::write(d.join("car.key"), &car.creds.key_pem).unwrap();
    std::fs::write(d.join("root.pem"), ca.root_pem()).unwrap();
    std::fs::write(d.join("pool.key"), [0x5au8; 32]).unwrap();
    let pool = d.join("pool");
    let pool_args = |cmd: &str| -> Vec<String> {
        args(&[
            "pseudonym",
            cmd,
            "--pool",
            &s(&pool),
            "--pool-key",
            &s(&d.join("pool.key")),
            "--json",
        ])
    };
    let creds = args(&[
        "--server",
        &url,
        "--identity",
        &s(&d.join("car.pem")),
        "--key",
        &s(&d.join("car.key")),
        "--ca",
        &s(&d.join("root.pem")),
    ]);
    let request = |extra: &[&str]| -> Vec<String> {
        let mut a = pool_args("request");
        a.extend(creds.iter().cloned());
        a.extend(args(extra));
        a
    };

    // Request two periods of tickets: queued, batched at once, downloaded
    // and opened within the wait.
    let (code, v, out) = cli(&request(&[
        "--format",
        "ieee1609",
        "--periods",
        "2",
        "--wait",
        "30",
    ]));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["format"], "ieee1609", "{v}");
    assert_eq!(v["queued"], 40, "{v}");
    assert_eq!(v["tickets"], 40, "{v}");
    assert_eq!(v["tickets_awaited"], 0, "{v}");
    let p0 = v["periods"][0].as_u64().unwrap();
    assert_eq!(v["periods"][1].as_u64(), Some(p0 + 1));

    let (code, st, out) = cli(&pool_args("status"));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(st["format"], "ieee1609", "{st}");
    assert_eq!(st["certificates"], 40);
    assert_eq!(st["periods_covered"], 2);
    assert_eq!(st["period_now"], p0);
    assert_eq!(st["pending_requests"], 0, "the caterpillar is dropped");
    assert_eq!(st["unused_in_current_period"], 19);
    let first = st["current"]["serial"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 16, "a HashedId8");

    // The table for people.
    let mut table = pool_args("status");
    table.pop();
    let (code, _, out) = cli(&table);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ieee1609") && out.contains(&first), "{out}");

    // Again: nothing new to request, and the responses downloaded again
    // are not stored twice.
    let (code, v, out) = cli(&request(&["--periods", "2", "--wait", "0"]));
    assert_eq!(code, Some(0), "{out}");
    assert!(v["periods"].is_null(), "{v}");
    assert_eq!(v["tickets"], 0, "{v}");
    assert_eq!(v["status"]["certificates"], 40, "{v}");

    // X.509 pseudonyms are no longer issued: asking for them is refused
    // clearly (by the command line, before anything is opened or sent).
    let (code, _, out) = cli(&request(&["--format", "x509"]));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("no longer issues X.509 pseudonym certificates"),
        "{out}"
    );

    // Rotation: kept, then forced to another ticket of the period.
    let (_, r, out) = cli(&pool_args("rotate"));
    assert_eq!(r["rotation"], "kept", "{out}");
    let mut forced = pool_args("rotate");
    forced.push("--force".into());
    let (code, r, out) = cli(&forced);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(r["rotation"], "changed", "{out}");
    let current = r["status"]["current"]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(current, first);

    // Export for a V2X stack.
    let out_dir = d.join("v2x");
    let mut export = pool_args("export");
    export.extend(args(&["--format", "coer", "--out", &s(&out_dir)]));
    let (code, e, out) = cli(&export);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(e["hashed_id8"], current.as_str());
    let ticket_bytes = std::fs::read(out_dir.join("ticket.oer")).unwrap();
    let ticket = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &ticket_bytes).unwrap();
    assert_eq!(hex::encode(ticket.hashed_id8()), current);
    let issuer = Certificate::from_coer_in(
        CertProfile::Ieee1609Dot2,
        &std::fs::read(out_dir.join("issuer.oer")).unwrap(),
    )
    .unwrap();
    ticket.verify_signed_by(Some(&issuer)).unwrap();
    let key_pem = pem::parse(std::fs::read(out_dir.join("ticket.key")).unwrap()).unwrap();
    assert_eq!(key_pem.tag(), "PRIVATE KEY");
    let key = P256PrivateKey::from_pkcs8_der(key_pem.contents()).unwrap();
    assert_eq!(
        key.public_key().to_sec1_uncompressed(),
        ticket.tbs().verification_key.uncompressed().unwrap(),
        "the exported key is the ticket's"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out_dir.join("ticket.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
    let (code, v, out) = cli(&[
        "inspect".into(),
        "--json".into(),
        s(&out_dir.join("ticket.oer")),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["profile"], "Ieee1609Dot2", "{v}");
    assert_eq!(v["id"]["i_cert"].as_u64(), Some(p0));
    // PEM export (of X.509 pseudonyms) is refused, and writes nothing.
    let mut pem_export = pool_args("export");
    pem_export.extend(args(&["--format", "pem", "--out", &s(&d.join("x.pem"))]));
    let (code, _, out) = cli(&pem_export);
    assert_eq!(code, Some(2));
    assert!(out.contains("--format coer"), "{out}");
    assert!(!d.join("x.pem").exists());

    // At rest, neither the tickets nor the keys are readable.
    let state = std::fs::read(pool.join("pool.bin")).unwrap();
    assert!(!state.windows(16).any(|w| w == &ticket_bytes[..16]));
    assert!(!state.windows(16).any(|w| w == current.as_bytes()));

    // An operator revokes the other car: car 0's ticket is not revoked.
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    registration(&url, &cars[1].creds)
        .await
        .request_tickets(ticket_request(&Caterpillar::generate().unwrap(), None, 1))
        .await
        .unwrap();
    let mut as_ops =
        V2xRegistrationClient::new(trustca_api::client::connect(&url, &ops).await.unwrap());
    let revoke = |vehicle: String| pb::RevokeVehicleRequest {
        vehicle,
        from_period: p0,
        include_past: false,
    };
    let crl1 = as_ops
        .revoke_vehicle(revoke(cars[1].identity.clone()))
        .await
        .unwrap()
        .into_inner()
        .crl;
    std::fs::write(d.join("crl1"), &crl1).unwrap();
    // The list the CLI fetches is the same one (and, further down, the one
    // after the next revocation: the pseudonym CA's cache must not serve
    // a list older than a revocation).
    let fetch = |out: &Path| -> Vec<String> {
        let mut a = args(&["pseudonym", "linkage-crl"]);
        a.extend(creds.iter().cloned());
        a.extend(args(&[
            "--out",
            &s(out),
            "--issuer",
            &s(&out_dir.join("issuer.oer")),
            "--json",
        ]));
        a
    };
    let (code, v, out) = cli(&fetch(&d.join("crl1-fetched")));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["entries"], 1, "{v}");
    let check = |crl: &Path, ticket: &Path| -> Vec<String> {
        args(&[
            "pseudonym",
            "check",
            "--linkage-crl",
            &s(crl),
            "--issuer",
            &s(&out_dir.join("issuer.oer")),
            "--json",
            &s(ticket),
        ])
    };
    let (code, v, out) = cli(&check(&d.join("crl1"), &out_dir.join("ticket.oer")));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["revoked"], false, "{v}");
    assert_eq!(v["entries"], 1, "{v}");

    // Then car 0 from the current period: its ticket is revoked (exit 3),
    // with the list from the revocation and with the one fetched by the CLI.
    as_ops
        .revoke_vehicle(revoke(car.identity.clone()))
        .await
        .unwrap();
    let fetched = d.join("crl2");
    let (code, v, out) = cli(&fetch(&fetched));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["entries"], 2, "{v}");
    assert_eq!(v["verified"], true, "{v}");
    let (code, v, out) = cli(&check(&fetched, &out_dir.join("ticket.oer")));
    assert_eq!(code, Some(3), "{out}");
    assert_eq!(v["revoked"], true, "{v}");
    assert_eq!(v["period"].as_u64(), Some(p0));
    let mut human = check(&fetched, &out_dir.join("ticket.oer"));
    human.retain(|a| a != "--json");
    let (code, _, out) = cli(&human);
    assert_eq!(code, Some(3));
    assert!(out.starts_with("REVOKED"), "{out}");

    // Bad input: one line, non-zero.
    std::fs::write(d.join("junk"), b"not a list").unwrap();
    for (crl, ticket) in [
        (d.join("junk"), out_dir.join("ticket.oer")),
        (fetched.clone(), d.join("junk")),
        (fetched.clone(), d.join("missing.oer")),
        (fetched.clone(), out_dir.join("issuer.oer")),
    ] {
        let (code, _, out) = cli(&check(&crl, &ticket));
        assert_eq!(code, Some(1), "{out}");
        assert_eq!(out.trim().lines().count(), 1, "{out}");
        assert!(out.starts_with("error: "), "{out}");
    }
    let (code, _, out) = cli(&args(&[
        "pseudonym",
        "check",
        "--linkage-crl",
        &s(&fetched),
        &s(&out_dir.join("ticket.oer")),
    ]));
    assert_eq!(code, Some(2), "clap: --issuer is required: {out}");

    // A revoked car gets no more tickets, and the refused request leaves
    // no key behind.
    let (code, _, out) = cli(&request(&["--periods", "5", "--wait", "0"]));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error:"), "{out}");
    let (code, st, out) = cli(&pool_args("status"));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(st["pending_requests"], 0, "{st}");
    assert_eq!(st["certificates"], 40, "{st}");

    ca.stop().await;
}

/// Tickets that the registration authority batches later are picked up by
/// a later `request`, which asks for nothing new meanwhile; `--resend`
/// while the RA still holds the request is refused (one set of tickets per
/// vehicle and period) and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_batched_later_are_picked_up_by_the_next_request() {
    let (mut ca, cars) = server_with_cars(2, 3600, ["LATE-0", "LATE-1"]).await;
    let url = ca.url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("car.pem"), &cars[0].creds.cert_pem).unwrap();
    std::fs::write(d.join("car.key"), &cars[0].creds.key_pem).unwrap();
    std::fs::write(d.join("root.pem"), ca.root_pem()).unwrap();
    let pool = d.join("pool");
    let request = |extra: &[&str]| -> Vec<String> {
        let mut a = args(&[
            "pseudonym",
            "request",
            "--pool",
            &s(&pool),
            "--server",
            &url,
            "--identity",
            &s(&d.join("car.pem")),
            "--key",
            &s(&d.join("car.key")),
            "--ca",
            &s(&d.join("root.pem")),
            "--periods",
            "1",
            "--json",
        ]);
        a.extend(args(extra));
        a
    };
    let run = |a: Vec<String>| {
        let out = Command::new(trustca_bin())
            .args(&a)
            .env("RUST_LOG", "warn")
            .env("TRUSTCA_POOL_PASSPHRASE", "a long pool passphrase")
            .output()
            .unwrap();
        (
            out.status.code(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .unwrap_or(serde_json::Value::Null),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    // Alone, the car's request waits in the RA's queue.
    let (code, v, out) = run(request(&["--format", "ieee1609", "--wait", "0"]));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["queued"], 20, "{v}");
    assert_eq!(v["tickets"], 0, "{v}");
    assert_eq!(v["tickets_awaited"], 20, "{v}");
    assert_eq!(v["status"]["pending_requests"], 1, "{v}");
    // Covered by the pending request: nothing new asked for.
    let (code, v, out) = run(request(&["--wait", "0"]));
    assert_eq!(code, Some(0), "{out}");
    assert!(v["periods"].is_null(), "{v}");

    // --resend (for a registration authority that lost its queue) while
    // the RA still holds the request: refused, one set of tickets per
    // vehicle and period, and the pool is unchanged.
    let (code, _, out) = run(request(&["--resend", "--wait", "0"]));
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("already issued"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "{out}"
    );
    let (code, v, out) = run(request(&["--wait", "0"]));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["status"]["pending_requests"], 1, "{v}");
    assert_eq!(v["tickets_awaited"], 20, "{v}");

    // A second vehicle asks: the batch goes out.
    registration(&url, &cars[1].creds)
        .await
        .request_tickets(ticket_request(&Caterpillar::generate().unwrap(), None, 1))
        .await
        .unwrap();

    // The next request picks them up and asks for nothing new.
    let (code, v, out) = run(request(&["--wait", "5"]));
    assert_eq!(code, Some(0), "{out}");
    assert!(v["periods"].is_null(), "{v}");
    assert_eq!(v["tickets"], 20, "{v}");
    assert_eq!(v["rejected"], 0, "{v}");
    assert_eq!(v["status"]["certificates"], 20, "{v}");
    assert_eq!(v["tickets_awaited"], 0, "{v}");
    assert_eq!(v["status"]["pending_requests"], 0, "{v}");
    assert!(!v["status"]["current"].is_null(), "{v}");
    // Asked again, nothing is stored twice.
    let (code, v, out) = run(request(&["--wait", "0"]));
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(v["tickets"], 0, "{v}");
    assert_eq!(v["status"]["certificates"], 20, "{v}");
    ca.stop().await;
}
