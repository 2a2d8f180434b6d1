//! Bytes flipped in a stopped server's store: every damaged record is named
//! by `store check`, refused when read, or the store is served read-only.

use super::*;

/// Enrolls `n` devices through a server in this process and stops it.
async fn enrolled_store(n: usize) -> (TestCa, Vec<String>) {
    let mut ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let mut client = ca.client(&acme).await;
    let mut serials = Vec::new();
    for i in 0..n {
        let serial = format!("C{i}");
        client
            .enroll(request("hems", "Acme", &serial, csr().1, vec![]))
            .await
            .unwrap();
        serials.push(serial);
    }
    drop(client);
    ca.stop().await;
    (ca, serials)
}

/// Damaged records: `store check` names them; a server on a store whose
/// audit log is intact starts and answers DATA_LOSS for the damaged record
/// (health `trustca.store.integrity` NOT_SERVING) while the others are
/// served; a store whose audit log does not verify is refused at start
/// with one plain line, or served read-only with `--allow-damaged-store`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_records_are_named_refused_or_served_read_only() {
    let (ca, serials) = enrolled_store(8).await;
    let reader = ca.credential(CertificateKind::Operator, "ops", &["hems"]);
    let logs = tempfile::tempdir().unwrap();

    // A record damaged, the log intact.
    let a = tempfile::tempdir().unwrap();
    copy_dir(ca.data(), a.path());
    let damaged_key = format!("hems/acme/m1/{}", serials[3].to_ascii_lowercase());
    tamper(&a.path().join("db"), "trust", damaged_key.as_bytes(), |v| {
        v.truncate(v.len() / 2)
    });
    let (code, report, _) = store_check(&a.path().join("db"));
    assert_eq!(code, Some(1), "{report}");
    let damaged = report["damaged"].as_array().unwrap();
    assert!(
        damaged
            .iter()
            .any(|d| d["kind"] == "trust" && d["key"] == damaged_key.as_str()),
        "{report}"
    );
    let server = serve(a.path(), &[], &logs.path().join("a.log")).expect("the log is intact");
    let channel = trustca_api::client::connect(&server.url(), &reader)
        .await
        .unwrap();
    let err = trust_of(channel.clone(), &identity(&serials[3]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DataLoss, "{err:?}");
    assert_plain(err.message());
    let ok = trust_of(channel.clone(), &identity(&serials[4]))
        .await
        .unwrap();
    assert_eq!(ok.status, "active");
    wait_for_health(
        &channel,
        "trustca.store.integrity",
        ServingStatus::NotServing,
        Duration::from_secs(5),
    )
    .await;
    drop(channel);
    let (_, status) = server.terminate();
    assert!(status.success());

    // An audit entry altered: refused, or served read-only on request.
    let b = tempfile::tempdir().unwrap();
    copy_dir(ca.data(), b.path());
    tamper(&b.path().join("db"), "audit", &2u64.to_be_bytes(), |v| {
        let at = v.len() - 40;
        v[at] ^= 0x01;
    });
    let (code, report, _) = store_check(&b.path().join("db"));
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report["damaged"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "audit"),
        "{report}"
    );
    let Err((status, log)) = serve(b.path(), &[], &logs.path().join("b.log")) else {
        panic!("serve started on a store whose audit log does not verify");
    };
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("does not verify"), "{log}");
    assert!(log.contains("--allow-damaged-store"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    let server = serve(
        b.path(),
        &["--allow-damaged-store"],
        &logs.path().join("b2.log"),
    )
    .expect("served read-only with the flag");
    let channel = trustca_api::client::connect(&server.url(), &reader)
        .await
        .unwrap();
    let ok = trust_of(channel.clone(), &identity(&serials[5]))
        .await
        .unwrap();
    assert_eq!(ok.status, "active");
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let mut client = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(&server.url(), &acme)
            .await
            .unwrap(),
    );
    let err = client
        .enroll(request("hems", "Acme", "NEW", csr().1, vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(err.message().contains("read-only"), "{err:?}");
    drop((client, channel));
    let (_, status) = server.terminate();
    assert!(status.success());

    // Random bytes flipped in sled's own files: whatever they hit, nothing
    // panics — the check reports, the server starts or refuses plainly.
    for seed in 1..=4u64 {
        let c = tempfile::tempdir().unwrap();
        copy_dir(ca.data(), c.path());
        flip_bytes(&c.path().join("db"), seed, 24);
        let (code, report, stderr) = store_check(&c.path().join("db"));
        assert!(
            matches!(code, Some(0) | Some(1)),
            "seed {seed}: store check exited {code:?}: {report} {stderr}"
        );
        match serve(c.path(), &[], &logs.path().join(format!("c{seed}.log"))) {
            Ok(server) => drop(server),
            Err((status, log)) => {
                assert_eq!(status.code(), Some(1), "seed {seed}: {log}");
                assert!(!log.contains("panicked"), "seed {seed}: {log}");
            }
        }
    }
}

/// Flips `n` bytes at positions drawn from `seed` across the files of `dir`.
fn flip_bytes(dir: &Path, seed: u64, n: usize) {
    let mut files: Vec<PathBuf> = files_in(dir)
        .into_iter()
        .filter(|(len, _)| *len > 0)
        .map(|(_, p)| p)
        .collect();
    files.sort();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..n {
        let f = &files[(next() as usize) % files.len()];
        let mut bytes = std::fs::read(f).unwrap();
        let at = (next() as usize) % bytes.len();
        bytes[at] ^= 1 << (next() % 8);
        std::fs::write(f, bytes).unwrap();
    }
}
