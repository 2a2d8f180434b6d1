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
//! The operator then revokes the vehicle: its enrolment certificate is on
//! the CA's hash CRL served at `/v2x/crl/3` (decoded and its signature
//! checked by `scms/tests/hash_crl_check.py`, the IEEE 1609.2-2022 modules
//! and `cryptography`), and the RA refuses it because of that list; a
//! revoked pseudonym CA certificate is on the series-2 list.
//! Skipped, loudly, when python3 or its modules are missing, unless
//! TRUSTCA_REQUIRE_INTEROP=1.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{PASSPHRASE, TestCa};
use serde_json::Value;
use trustca_scms::BatchPolicy;
use trustca_server::ServeOptions;
use trustca_server::v2x::V2xRole;

fn client_script() -> PathBuf {
    script("dot1_client.py")
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../scms/tests")
        .join(name)
}

fn python(args: &[&str]) -> (Value, bool, String) {
    python_script(&client_script(), args)
}

fn python_script(script: &Path, args: &[&str]) -> (Value, bool, String) {
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .env("V2X_ASN1_DIR", common::asn1_dir())
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
    run_script("dot1_client.py", args).await
}

/// `scms/tests/<name>` with `args`, off the async threads.
async fn run_script(name: &'static str, args: Vec<String>) -> (Value, bool, String) {
    tokio::task::spawn_blocking(move || {
        python_script(
            &script(name),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    })
    .await
    .unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Where a separated registration authority gets the CA's hash CRLs: the
/// operator revokes the enrolment certificates at the CA (as `v2x revoke
/// --eca` does) and syncs `DATA/crl/v2x-crl-*.oer` to the RA's `crl/`.
struct SeparatedRa<'a> {
    ca_grpc: String,
    crl_dir: &'a Path,
}

/// The independent vehicle's whole journey (enrolment at `eca`, tickets
/// from `ra`), then every bad request; returns after checking the answers.
/// Then the operator revokes the vehicle: its enrolment certificate is on
/// the CA's hash CRL (checked independently by `hash_crl_check.py`) and
/// the RA refuses it because of that list. The RA then holds exactly two
/// recorded requests. Returns the vehicle's state directory.
async fn journey_and_attacks(
    ca: &TestCa,
    eca: &str,
    ra: &str,
    ra_grpc: &str,
    separated: Option<SeparatedRa<'_>>,
) -> tempfile::TempDir {
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

    let journey = |state: &str| {
        strings(&[
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
        ])
    };
    let (run, ok, output) = client(journey(state)).await;
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
        trustca_api::client::connect(ra_grpc, &car.device.creds)
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
        trustca_api::client::connect(ra_grpc, &ops).await.unwrap(),
    )
    .revoke_vehicle(pb::RevokeVehicleRequest {
        vehicle: car.device.identity.clone(),
        from_period: current,
        include_past: false,
    })
    .await
    .unwrap();
    // In the CA's process RevokeVehicle listed the enrolment certificate
    // itself; separated, the operator does it at the CA and syncs the list.
    if let Some(sep) = &separated {
        let listed = pb::v2x_enrollment_client::V2xEnrollmentClient::new(
            trustca_api::client::connect(&sep.ca_grpc, &ops)
                .await
                .unwrap(),
        )
        .revoke_enrolment(pb::RevokeEnrolmentRequest {
            vehicle: car.device.identity.clone(),
        })
        .await
        .unwrap()
        .into_inner();
        assert_eq!(listed.certificates, 1);
        std::fs::create_dir_all(sep.crl_dir).unwrap();
        std::fs::copy(
            ca.data().join("crl/v2x-crl-3.oer"),
            sep.crl_dir.join("v2x-crl-3.oer"),
        )
        .unwrap();
        // The RA re-reads its crl/ every 200 ms in the test kit.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    // The list served over HTTP (by the CA, and by a separated RA from its
    // copy) names the vehicle's enrolment certificate, as a decoder built
    // only from the published modules reads it.
    let ec_file = dir.join("state/ec.oer");
    let mut lists = vec![format!("{eca}/v2x/crl/3")];
    if separated.is_some() {
        lists.push(format!("{ra}/v2x/crl/3"));
    }
    for url in lists {
        let args = strings(&[
            "--url",
            &url,
            "--ca-pem",
            &ca_pem,
            "--root",
            &v2x_root,
            "--series",
            "3",
            "--listed",
            ec_file.to_str().unwrap(),
        ]);
        let (crl, ok, output) = run_script("hash_crl_check.py", args).await;
        assert!(ok, "the enrolment certificate CRL at {url}: {output}");
        assert_eq!(crl["signature"], "verified", "{output}");
        assert_eq!(crl["entries"].as_array().unwrap().len(), 1, "{output}");
    }
    // Nor does the revoked vehicle get a new enrolment certificate, which
    // would be on no list.
    let again = dir.join("again");
    let (rerun, ok, output) = client(journey(again.to_str().unwrap())).await;
    assert!(!ok, "a revoked vehicle enrolled again: {output}");
    assert!(
        rerun["failures"][0]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 403"),
        "{output}"
    );
    let mut later = attack("replay");
    later.extend(strings(&["--start-offset-hours", "5000"]));
    let (answer, ok, output) = client(later).await;
    assert!(ok, "revoked: {output}");
    assert_eq!(
        answer["statuses"],
        serde_json::json!([403, 403]),
        "{output}"
    );
    // Refused because of the hash CRL, which the RA checks before its own
    // record of the vehicle.
    assert!(
        answer["body"]
            .as_str()
            .unwrap_or_default()
            .contains("hash CRL of crlSeries 3"),
        "{output}"
    );
    work
}

/// The operator revokes the pseudonym CA's certificate (the AA): it is on
/// the CA certificate CRL (series 2) served over HTTP, checked by the
/// independent decoder and by `trustca v2x check-revoked`, which also finds
/// the revoked vehicle's enrolment certificate on the series-3 list.
async fn revoked_ca_certificate_is_listed(ca: &TestCa, base: &str, work: &Path) {
    use trustca_proto::v1 as pb;
    let ops = ca.credential(
        trustca_model::CertificateKind::Operator,
        "ops",
        &["automotive"],
    );
    let aa = ca.data().join("ca/v2x-aa.oer");
    let crl = pb::v2x_enrollment_client::V2xEnrollmentClient::new(
        trustca_api::client::connect(&ca.url(), &ops).await.unwrap(),
    )
    .revoke_ca_certificate(pb::RevokeCaCertificateRequest {
        certificate: std::fs::read(&aa).unwrap(),
        reason: "pseudonym CA key compromised (test)".into(),
    })
    .await
    .unwrap()
    .into_inner()
    .crl;
    let ca_pem = write(work, "root.pem", ca.root_pem());
    let v2x_root = ca.data().join("ca/v2x-root.oer");
    let args = strings(&[
        "--url",
        &format!("{base}/v2x/crl/2"),
        "--ca-pem",
        &ca_pem,
        "--root",
        v2x_root.to_str().unwrap(),
        "--series",
        "2",
        "--listed",
        aa.to_str().unwrap(),
        "--not-listed",
        ca.data().join("ca/v2x-ea.oer").to_str().unwrap(),
    ]);
    let (answer, ok, output) = run_script("hash_crl_check.py", args).await;
    assert!(ok, "the CA certificate CRL: {output}");
    assert_eq!(answer["entries"].as_array().unwrap().len(), 1, "{output}");
    // The vehicle side: the CLI reads the lists and reports what is listed.
    let ca_list = write(work, "ca.crl", &crl);
    let ec_list = write(
        work,
        "ec.crl",
        std::fs::read(ca.data().join("crl/v2x-crl-3.oer")).unwrap(),
    );
    let check = |cert: &Path| {
        Command::new(common::trustca_bin())
            .args(["v2x", "check-revoked", "--json", "--root"])
            .arg(&v2x_root)
            .args(["--crl", &ca_list, "--crl", &ec_list])
            .arg(cert)
            .output()
            .unwrap()
    };
    for (cert, code) in [
        (aa.clone(), 3),
        (work.join("state/ec.oer"), 3),
        (ca.data().join("ca/v2x-ea.oer"), 0),
    ] {
        let out = check(&cert);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}: {}{}",
            cert.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
    if !common::asn1tools_ready(&["ieee1609dot2dot1/ee-ra.asn"], &["requests"]) {
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
    let work = journey_and_attacks(&ca, &base, &base, &grpc, None).await;
    revoked_ca_certificate_is_listed(&ca, &base, work.path()).await;
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
    if !common::asn1tools_ready(&["ieee1609dot2dot1/ee-ra.asn"], &["requests"]) {
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
    let crl_dir = sep.get(V2xRole::Registration).path().join("crl");
    let separated = SeparatedRa {
        ca_grpc: ca.url(),
        crl_dir: &crl_dir,
    };
    journey_and_attacks(&ca, &eca, &ra, &ra_grpc, Some(separated)).await;
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
    if !common::asn1tools_ready(&["ieee1609dot2dot1/ee-ra.asn"], &["requests"]) {
        return;
    }
    let (result, ok, output) = python(&["selftest"]);
    assert!(ok, "{output}");
    assert_eq!(result["ok"], true, "{output}");
    assert_eq!(result["failures"], serde_json::json!([]), "{output}");
}
