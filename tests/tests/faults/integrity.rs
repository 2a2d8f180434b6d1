//! Stores changed or damaged behind the server's back (issue 19 §1–2).
//!
//! A trust level rewritten in the store by someone without the CA's keys —
//! on sled with sled's own checksum recomputed, on PostgreSQL with an
//! `UPDATE` — is named by `store check` and answered DATA_LOSS by
//! `GetTrust` and `Decide`, never signed; the other devices are served.
//! A sled store cut short gives one plain line naming it and exit 1 from
//! `store check`, `audit verify` and `serve` (with or without
//! `--allow-damaged-store`), never a panic.

use super::*;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;

/// Where the records live in a scenario.
enum Backend {
    Sled,
    Postgres(String),
}

impl Backend {
    fn serve_args(&self) -> Vec<&str> {
        match self {
            Backend::Sled => Vec::new(),
            Backend::Postgres(url) => vec!["--store", url.as_str()],
        }
    }

    /// What `store check --store` takes.
    fn store_arg(&self, data: &Path) -> PathBuf {
        match self {
            Backend::Sled => data.join("db"),
            Backend::Postgres(url) => PathBuf::from(url),
        }
    }
}

/// Enrolls HEMS devices `H0..Hn` (no evidence: the sector's baseline
/// level) through the server at `url`.
async fn enroll_hems(ca: &TestCa, url: &str, n: usize) -> Vec<Device> {
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let mut client = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(url, &acme).await.unwrap(),
    );
    let mut devices = Vec::new();
    for i in 0..n {
        let serial = format!("H{i}");
        let root = ca.root_pem();
        devices.push(
            enroll_device(
                &mut client,
                &root,
                "hems",
                "Acme",
                "HB-1",
                &serial,
                "1.0.0",
                vec![],
            )
            .await,
        );
    }
    devices
}

/// Where the level byte of a stored trust record sits: after the record
/// encoding's 2-byte version mark and the 1-byte header of its first
/// segment (the record is shorter than 64 bytes; `trustca_store` codec),
/// then, in its postcard encoding, after the identity key and the sector,
/// each a one-byte length and its bytes (both are short).
fn level_offset(identity_key: &str, sector: &str) -> usize {
    2 + 1 + 1 + identity_key.len() + 1 + sector.len()
}

/// Sets device `identity_key`'s stored level byte to 5, as an attacker with
/// write access to the store (not to the CA's keys) would.
async fn raise_level_behind_the_servers_back(backend: &Backend, data: &Path, identity_key: &str) {
    let at = level_offset(identity_key, "hems");
    match backend {
        Backend::Sled => tamper(&data.join("db"), "trust", identity_key.as_bytes(), |v| {
            assert!((1..5).contains(&v[at]), "level byte {} at {at}", v[at]);
            v[at] = 5;
        }),
        Backend::Postgres(url) => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let changed = client
                .execute(
                    "UPDATE trust_records SET record = set_byte(record, $2, 5) WHERE identity_key = $1",
                    &[&identity_key, &(at as i32)],
                )
                .await
                .unwrap();
            assert_eq!(changed, 1);
        }
    }
}

async fn get_trust(channel: Channel, urn: &str) -> Result<pb::TrustAnswer, tonic::Status> {
    trust_of(channel, urn).await
}

/// The whole attack on one backend: enroll, stop, change a level in the
/// store, then check and serve.
async fn a_changed_level_is_refused(backend: Backend) {
    let ca = TestCa::init();
    let logs = tempfile::tempdir().unwrap();
    let extra = backend.serve_args();
    let server = serve(ca.data(), &extra, &logs.path().join("first.log")).expect("starts");
    let devices = enroll_hems(&ca, &server.url(), 3).await;
    let (_, status) = server.terminate();
    assert!(status.success());
    let target = "hems/acme/hb-1/h1";
    raise_level_behind_the_servers_back(&backend, ca.data(), target).await;

    let (code, report, stderr) = store_check(&backend.store_arg(ca.data()));
    assert_eq!(code, Some(1), "{report} {stderr}");
    let damaged = report["damaged"].as_array().unwrap();
    assert!(
        damaged
            .iter()
            .any(|d| d["kind"] == "trust" && d["key"] == target),
        "{report}"
    );
    assert_eq!(report["problems"], damaged.len(), "{report}");

    let server = serve(ca.data(), &extra, &logs.path().join("second.log")).expect("log intact");
    let operator = ca.credential(CertificateKind::Operator, "ops", &["hems"]);
    let channel = trustca_api::client::connect(&server.url(), &operator)
        .await
        .unwrap();
    let err = get_trust(channel.clone(), &devices[1].identity)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DataLoss, "{err:?}");
    assert!(err.message().contains(target), "{err:?}");
    assert_plain(err.message());
    // A device asking about it gets DATA_LOSS too, never a decision.
    let mut device = TrustDatabaseClient::new(
        trustca_api::client::connect(&server.url(), &devices[0].creds)
            .await
            .unwrap(),
    );
    let decision = device
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: devices[1].chain.clone(),
            }),
            operation: "read-telemetry".into(),
        })
        .await;
    assert_eq!(
        decision.as_ref().map_err(|s| s.code()).err(),
        Some(Code::DataLoss),
        "{decision:?}"
    );
    // The others are served and decided, with a signed assertion.
    let ok = get_trust(channel.clone(), &devices[2].identity)
        .await
        .unwrap();
    assert_eq!(ok.status, "active");
    assert!(ok.assertion.is_some());
    let allowed = device
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: devices[2].chain.clone(),
            }),
            operation: "read-telemetry".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(allowed.allow, "{allowed:?}");
    wait_for_health(
        &channel,
        "trustca.store.integrity",
        ServingStatus::NotServing,
        Duration::from_secs(5),
    )
    .await;
    drop((channel, device));
    let (_, status) = server.terminate();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_rewritten_in_sled_is_refused_not_signed() {
    a_changed_level_is_refused(Backend::Sled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_updated_in_postgresql_is_refused_not_signed() {
    if let Some(url) = postgres_database("update_tamper") {
        a_changed_level_is_refused(Backend::Postgres(url)).await;
    }
}

/// A data directory whose sled store holds `n` enrollment-shaped devices,
/// written through the store as a server opens it (quicker than enrolling
/// them), flushed, so its high-water mark is recorded.
fn store_of(n: u64) -> TestCa {
    let ca = TestCa::init();
    let store = trustca_server::StoreConfig::in_data_dir(ca.data())
        .open()
        .unwrap();
    let mut i = 0;
    while i < n {
        let batch: Vec<_> = (i..(i + 256).min(n)).map(synthetic).collect();
        i += batch.len() as u64;
        for r in store.commit_issuances(&batch) {
            r.unwrap();
        }
    }
    store.flush().unwrap();
    ca
}

fn synthetic(n: u64) -> trustca_store::Issuance {
    let key = format!("hems/acme/m1/s{n}");
    trustca_store::Issuance {
        certificate: trustca_store::CertificateRecord {
            serial: n.to_be_bytes().repeat(2),
            der: [&[0x30, 0x08][..], &n.to_be_bytes()].concat(),
            sector: "hems".into(),
            kind: "long-term".into(),
            identity_key: Some(key.clone()),
            issued_at: 1_700_000_000,
            not_after: 4_000_000_000,
            status: trustca_store::CertificateStatus::Active,
        },
        device: Some(trustca_store::DeviceRecord {
            identity_key: key.clone(),
            urn: format!("urn:trustca:hems:acme:m1:s{n}"),
            sector: "hems".into(),
            manufacturer: "acme".into(),
            model: "m1".into(),
            serial: format!("s{n}"),
            firmware_version: "1.0".into(),
            certificate_level: 2,
            policy_version: "p".into(),
            enrolled_at: 1_700_000_000,
            certificates: vec![],
        }),
        renewal: false,
        actor: "manufacturer:acme".into(),
        audit_kind: "certificate.issued".into(),
        audit_detail: "{}".into(),
    }
}

/// A copy of `ca`'s data directory whose largest store file (sled's page
/// file) keeps `keep(length)` bytes; the copy and its store.
fn copy_cut_short(ca: &TestCa, keep: impl Fn(u64) -> u64) -> (tempfile::TempDir, PathBuf) {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(ca.data(), copy.path());
    let db = copy.path().join("db");
    let (len, largest) = files_in(&db).into_iter().max().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&largest)
        .unwrap();
    f.set_len(keep(len)).unwrap();
    (copy, db)
}

/// One plain line naming the store, no panic, exit 1.
fn assert_refused_plainly(what: &str, code: Option<i32>, text: &str, store: &Path) {
    assert_eq!(code, Some(1), "{what}: {text}");
    assert!(!text.contains("panicked"), "{what}: {text}");
    assert!(!text.contains("RUST_BACKTRACE"), "{what}: {text}");
    assert!(
        text.contains(&store.display().to_string()),
        "{what} does not name the store: {text}"
    );
    assert_plain(text);
}

/// A sled store cut in half, and one whose tail is cut off. sled either
/// panics inside its page cache on such files or recovers them silently to
/// an earlier, often empty, state that checks as intact; the panic is
/// contained and the earlier state is caught by the store's high-water
/// mark. Every command that opens the store — `store check`, `audit
/// verify`, `serve`, `serve --allow-damaged-store` — says so in one line
/// naming the store and exits 1; none panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_cut_short_gives_words_not_panics() {
    let ca = store_of(20_000);
    let logs = tempfile::tempdir().unwrap();
    let half: fn(u64) -> u64 = |len| len / 2;
    let tail: fn(u64) -> u64 = |len| len - len / 8;
    for (cut, keep) in [("half", half), ("tail", tail)] {
        let (c, db) = copy_cut_short(&ca, keep);
        let (code, report, stderr) = store_check(&db);
        assert!(report.is_null(), "{cut}: {report}");
        assert_refused_plainly(&format!("store check ({cut})"), code, &stderr, &db);
        let out = Command::new(trustca_bin())
            .args(["audit", "verify", "--data"])
            .arg(c.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_refused_plainly(
            &format!("audit verify ({cut})"),
            out.status.code(),
            &text,
            &db,
        );
        for extra in [&[][..], &["--allow-damaged-store"][..]] {
            let log = logs.path().join(format!("{cut}-{}.log", extra.len()));
            match serve(c.path(), extra, &log) {
                Err((status, log)) => assert_refused_plainly(
                    &format!("serve {extra:?} ({cut})"),
                    status.code(),
                    &log,
                    &db,
                ),
                Ok(_) => panic!("serve {extra:?} started on a store cut short ({cut})"),
            }
        }
    }
}

/// A revocation taken off a sector's CRL index in the stopped server's
/// sled store (sled's checksums recomputed): `store check` names the
/// certificate, and `serve` refuses in one line to sign a CRL without it
/// rather than publishing one that lets the revoked device back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_dropped_from_the_crl_index_is_refused_not_signed() {
    let ca = TestCa::init();
    let logs = tempfile::tempdir().unwrap();
    let server = serve(ca.data(), &[], &logs.path().join("first.log")).expect("starts");
    let devices = enroll_hems(&ca, &server.url(), 2).await;
    let operator = ca.credential(CertificateKind::Operator, "ops", &["hems"]);
    let mut rev = trustca_proto::v1::revocation_client::RevocationClient::new(
        trustca_api::client::connect(&server.url(), &operator)
            .await
            .unwrap(),
    );
    let r = rev
        .revoke(pb::RevokeRequest {
            subject: Some(pb::revoke_request::Subject::Identity(
                devices[0].identity.clone(),
            )),
            reason: "superseded".into(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.revoked.len(), 1);
    drop(rev);
    let (_, status) = server.terminate();
    assert!(status.success());

    let db = ca.data().join("db");
    let serial = {
        let sled = trustca_store::raw_sled_config(&db).open().unwrap();
        let index = sled.open_tree("revoked").unwrap();
        let (key, _) = index.first().unwrap().expect("one revocation indexed");
        index.remove(&key).unwrap();
        sled.flush().unwrap();
        // The key is `sector 0x00 serial`; the serial itself may hold a
        // zero byte, so split at the first one only.
        key.splitn(2, |b| *b == 0).nth(1).unwrap().to_vec()
    };
    let named = format!("hems {}", trustca_model::hexfmt::encode(&serial));

    let (code, report, stderr) = store_check(&db);
    assert_eq!(code, Some(1), "{report} {stderr}");
    let damaged = report["damaged"].as_array().unwrap();
    assert!(
        damaged.iter().any(|d| d["kind"] == "revoked"
            && d["key"] == named.as_str()
            && d["reason"].as_str().unwrap().contains("deleted")),
        "{report}"
    );

    let refused = serve(ca.data(), &[], &logs.path().join("second.log"));
    let Err((status, text)) = refused else {
        panic!("served a CRL index the log does not vouch for");
    };
    assert!(!status.success());
    assert!(!text.contains("panicked"), "{text}");
    assert!(text.contains(&format!("revoked {named}")), "{text}");
    assert!(text.contains("deleted outside trustca"), "{text}");
}
