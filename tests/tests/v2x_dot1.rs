//! The IEEE 1609.2.1 HTTPS interfaces end to end, driven by a vehicle we
//! did not write: `scms/tests/dot1_client.py` (Python asn1tools compiled
//! from the published 1609.2 / 1609.2.1 modules, cryptography, requests; no
//! trustca code). Against a real server on loopback it enrols over mutual
//! TLS with the car's X.509 device credential, downloads the certificate
//! chain, requests two weeks of tickets with unified butterfly keys,
//! downloads and decrypts them, checks each ticket's key and signature
//! chain, and verifies the linkage CRL. Then it sends the bad requests
//! (truncated, non-canonical, wrong signer, unknown ECA, wrong recipient,
//! replay), each of which must be refused with its 4xx and store nothing.
//! Skipped, loudly, when python3 or its modules are missing, unless
//! TRUSTCA_REQUIRE_INTEROP=1.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{PASSPHRASE, TestCa};
use serde_json::Value;
use trustca_scms::BatchPolicy;
use trustca_server::ServeOptions;
use trustca_server::v2x::V2xRole;

fn client_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scms/tests/dot1_client.py")
}

fn asn1_dir() -> PathBuf {
    match std::env::var_os("V2X_ASN1_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/v2x-asn1"),
    }
}

/// False (loudly) when the client cannot run; panics then if
/// TRUSTCA_REQUIRE_INTEROP=1.
fn can_run() -> bool {
    let why = if !asn1_dir().join("ieee1609dot2dot1/ee-ra.asn").is_file() {
        Some(format!("no 1609.2.1 modules in {}", asn1_dir().display()))
    } else {
        match Command::new("python3")
            .args(["-c", "import asn1tools, cryptography, requests"])
            .output()
        {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
            Err(e) => Some(format!("python3 not runnable: {e}")),
        }
    };
    match why {
        None => true,
        Some(why) => {
            assert_ne!(
                std::env::var("TRUSTCA_REQUIRE_INTEROP").as_deref(),
                Ok("1"),
                "the 1609.2.1 client is required but cannot run: {why}"
            );
            eprintln!("*** SKIPPING: {why} ***");
            false
        }
    }
}

fn python(args: &[&str]) -> (Value, bool, String) {
    let out = Command::new("python3")
        .arg(client_script())
        .args(args)
        .env("V2X_ASN1_DIR", asn1_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (json, out.status.success(), format!("{stdout}\n{stderr}"))
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

/// How many 1609.2.1 requests the RA recorded in its store (its server
/// must be stopped).
fn recorded_requests(store_dir: &Path) -> usize {
    use trustca_store::Storage;
    let store = trustca_store::SledStorage::open(store_dir).unwrap();
    store.blob_scan("v2x.ra", b"e/").unwrap().len()
}

async fn client(args: Vec<String>) -> (Value, bool, String) {
    tokio::task::spawn_blocking(move || {
        python(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The independent vehicle's whole journey (enrolment at `eca`, tickets
/// from `ra`), then every bad request; returns after checking the answers.
/// The RA then holds exactly two recorded requests.
async fn journey_and_attacks(ca: &TestCa, eca: &str, ra: &str, ra_grpc: &str) {
    let car = common::separated::enroll_cars(ca, 1).await.remove(0);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let ca_pem = write(dir, "root.pem", ca.root_pem());
    let cert = write(dir, "car.pem", &car.device.creds.cert_pem);
    let key = write(dir, "car.key", &car.device.creds.key_pem);
    let v2x_root = write(
        dir,
        "v2x-root.oer",
        std::fs::read(ca.data().join("ca/v2x-root.oer")).unwrap(),
    );
    let state = dir.join("state");
    let state = state.to_str().unwrap();

    let (run, ok, output) = client(strings(&[
        "run",
        "--eca-url",
        eca,
        "--ra-url",
        ra,
        "--ca-pem",
        &ca_pem,
        "--device-cert",
        &cert,
        "--device-key",
        &key,
        "--root",
        &v2x_root,
        "--periods",
        "2",
        "--timeout",
        "60",
        "--state",
        state,
    ]))
    .await;
    assert!(ok, "the independent vehicle failed:\n{output}");
    assert_eq!(run["failures"], serde_json::json!([]), "{output}");
    assert_eq!(run["tickets"], 40, "two periods of 20 tickets: {output}");
    assert_eq!(run["periods"].as_array().unwrap().len(), 2, "{output}");

    // Each bad request gets its status (and, checked by the caller,
    // stores nothing).
    let cases = [
        ("truncated", 400),
        ("non-canonical", 400),
        ("wrong-signer", 401),
        ("unknown-ec", 401),
        ("wrong-recipient", 421),
        ("wrong-recipient-key", 400),
    ];
    let attack = |case: &str| {
        strings(&[
            "attack", "--ra-url", ra, "--ca-pem", &ca_pem, "--root", &v2x_root, "--state", state,
            "--case", case,
        ])
    };
    for (case, status) in cases {
        let (answer, ok, output) = client(attack(case)).await;
        assert!(ok, "{case}: {output}");
        assert_eq!(answer["status"], status, "{case}: {output}");
        assert!(
            !answer["body"]
                .as_str()
                .unwrap_or_default()
                .contains("Error"),
            "{case}: a plain sentence, not a Rust error name: {output}"
        );
    }
    let (answer, ok, output) = client(attack("replay")).await;
    assert!(ok, "replay: {output}");
    assert_eq!(
        answer["statuses"],
        serde_json::json!([200, 409]),
        "{output}"
    );

    // Revoked at the RA (the operator's RevokeVehicle): its enrolment
    // certificate no longer gets tickets, and nothing is recorded.
    use trustca_proto::v1 as pb;
    let mut as_car = pb::v2x_registration_client::V2xRegistrationClient::new(
        trustca::client::connect(ra_grpc, &car.device.creds)
            .await
            .unwrap(),
    );
    let current = as_car
        .get_ticket_profile(pb::GetTicketProfileRequest {})
        .await
        .unwrap()
        .into_inner()
        .current_period;
    let ops = ca.credential(
        trustca_model::CertificateKind::Operator,
        "ops",
        &["automotive"],
    );
    pb::v2x_registration_client::V2xRegistrationClient::new(
        trustca::client::connect(ra_grpc, &ops).await.unwrap(),
    )
    .revoke_vehicle(pb::RevokeVehicleRequest {
        vehicle: car.device.identity.clone(),
        from_period: current,
        include_past: false,
    })
    .await
    .unwrap();
    let mut later = attack("replay");
    later.extend(strings(&["--start-offset-hours", "5000"]));
    let (answer, ok, output) = client(later).await;
    assert!(ok, "revoked: {output}");
    assert_eq!(
        answer["statuses"],
        serde_json::json!([403, 403]),
        "{output}"
    );
}

fn quick_batches() -> BatchPolicy {
    BatchPolicy {
        min_vehicles: 1,
        max_wait_secs: 1,
        ..BatchPolicy::default()
    }
}

/// All four authorities in the CA's process; RA and ECA on its HTTPS port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_vehicle_enrols_gets_tickets_and_is_refused_when_it_cheats() {
    if !can_run() {
        return;
    }
    let mut ca = TestCa::init();
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.est_listen = Some("127.0.0.1:0".parse().unwrap());
    opts.metrics = Some("127.0.0.1:0".parse().unwrap());
    opts.v2x_batch = quick_batches();
    let server = trustca_server::start(opts).await.unwrap();
    let base = format!("https://{}", server.est_addr.unwrap());
    let metrics = server.metrics_addr.unwrap();
    ca.server = Some(server);
    let grpc = ca.url();
    journey_and_attacks(&ca, &base, &base, &grpc).await;
    // Counted by resource and status, and nothing else of the vehicle.
    let (status, body) = tokio::task::spawn_blocking(move || common::http_get(metrics, "/metrics"))
        .await
        .unwrap();
    assert!(status.contains("200"), "{status}");
    for line in [
        r#"trustca_v2x_http_requests_total{operation="provision-pseudonym-certificate-batch",status="200"}"#,
        r#"trustca_v2x_http_requests_total{operation="provision-pseudonym-certificate-batch",status="409"}"#,
        r#"trustca_v2x_http_requests_total{operation="download",status="200"}"#,
        r#"trustca_v2x_http_requests_total{operation="eca/enrolment-certificate",status="200"}"#,
    ] {
        assert!(body.contains(line), "{line} missing from\n{body}");
    }
    assert!(!body.contains("V2X-0"), "a vehicle in the metrics");
    ca.stop().await;
    // The run's request and the replay's first copy: the refused ones left
    // nothing behind.
    assert_eq!(
        recorded_requests(&ca.data().join("v2x/registration/store")),
        2
    );
}

/// Separated authorities: the vehicle enrols at the CA (the ECA) and gets
/// its tickets from the registration authority's own process, whose
/// directory holds only its own keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_separated_registration_authority_speaks_1609_2_1() {
    if !can_run() {
        return;
    }
    let mut ca = TestCa::init();
    let mut sep = common::separated::Separated::provision(&ca);
    let mut opts = ServeOptions::new(
        ca.data().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        trustca_ca::Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
    );
    opts.v2x_in_process = false;
    opts.est_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = trustca_server::start(opts).await.unwrap();
    let eca = format!("https://{}", server.est_addr.unwrap());
    ca.server = Some(server);
    sep.start(quick_batches()).await;
    let ra = sep.get(V2xRole::Registration).https_url();
    let ra_grpc = sep.get(V2xRole::Registration).url();
    journey_and_attacks(&ca, &eca, &ra, &ra_grpc).await;
    let store = sep.get(V2xRole::Registration).path().join("store");
    sep.stop().await;
    ca.stop().await;
    assert_eq!(recorded_requests(&store), 2);
}

/// The independent client's own checks: the CAMP butterfly vectors, every
/// OpenSCMS vector decoded and re-encoded, the 1609.2 signature rule on
/// OpenSCMS's signed request (its implicit enrolment certificate
/// reconstructed from OpenSCMS's ECA), ECIES round trips.
#[test]
fn the_independent_client_passes_its_own_vectors() {
    if !can_run() {
        return;
    }
    let (result, ok, output) = python(&["selftest"]);
    assert!(ok, "{output}");
    assert_eq!(result["ok"], true, "{output}");
    assert_eq!(result["failures"], serde_json::json!([]), "{output}");
}
