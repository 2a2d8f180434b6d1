//! The store failing under a running server: a sled disk that fills up under
//! load, PostgreSQL on a full disk, PostgreSQL unreachable. Writes are refused
//! in plain words, reads go on, and the server recovers without a restart.

use super::*;

/// A full disk: enrollments get RESOURCE_EXHAUSTED (or UNAVAILABLE while
/// the store reopens) with a plain message; health reports the write
/// services NOT_SERVING; every certificate stored before stays readable;
/// nothing refused is ever visible; the error is logged once, not per
/// request; and once space is freed, writes resume without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers_without_restart() {
    let _timed = timed().await;
    let ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let outside = tempfile::tempdir().unwrap();
    let mnt = outside.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    if !mount_tmpfs(&mnt, 48) {
        return;
    }
    let _unmount = Unmount(mnt.clone());
    let data = mnt.join("data");
    copy_dir(ca.data(), &data);
    let log = outside.path().join("serve.log");
    let server = serve(&data, &[], &log).expect("serve starts");
    let channel = trustca_api::client::connect(&server.url(), &acme)
        .await
        .unwrap();
    let mut client = pb::enrollment_client::EnrollmentClient::new(channel.clone());

    let mut stored = Vec::new();
    for i in 0..20 {
        let serial = format!("D{i}");
        let r = client
            .enroll(request("hems", "Acme", &serial, csr().1, vec![]))
            .await
            .unwrap()
            .into_inner();
        stored.push((serial, r.serial));
    }

    fill(&mnt.join("filler"));
    // Enroll until the store notices (sled may still hold a little room).
    let mut refused = Vec::new();
    let mut accepted_while_full = Vec::new();
    for i in 0..200 {
        let serial = format!("F{i}");
        match client
            .enroll(request("hems", "Acme", &serial, csr().1, vec![]))
            .await
        {
            Ok(r) => accepted_while_full.push((serial, r.into_inner().serial)),
            Err(status) => {
                assert!(
                    matches!(status.code(), Code::ResourceExhausted | Code::Unavailable),
                    "{status:?}"
                );
                assert_plain(status.message());
                refused.push((serial, status));
            }
        }
        if refused.len() >= 20 {
            break;
        }
    }
    assert!(
        refused.len() >= 20,
        "enrollments kept succeeding on a full disk"
    );
    assert!(
        refused
            .iter()
            .any(|(_, s)| s.code() == Code::ResourceExhausted
                && s.message().contains("cannot write")),
        "{:?}",
        refused.first()
    );
    wait_for_health(
        &channel,
        "trustca.store.writable",
        ServingStatus::NotServing,
        Duration::from_secs(5),
    )
    .await;
    wait_for_health(
        &channel,
        "trustca.v1.Enrollment",
        ServingStatus::NotServing,
        Duration::from_secs(2),
    )
    .await;
    // Reads keep working, and nothing refused is visible.
    for (serial, _) in stored.iter().chain(&accepted_while_full) {
        let t = trust_of(channel.clone(), &identity(serial))
            .await
            .unwrap_or_else(|e| panic!("{serial}: {e:?}\n{}", server.log_text()));
        assert_eq!(t.status, "active");
    }
    for (serial, _) in &refused {
        let err = trust_of(channel.clone(), &identity(serial))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{serial}: {err:?}");
    }

    // Space comes back: writes resume by themselves.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    wait_for_health(
        &channel,
        "trustca.store.writable",
        ServingStatus::Serving,
        Duration::from_secs(30),
    )
    .await;
    for i in 0..5 {
        let serial = format!("R{i}");
        let r = client
            .enroll(request("hems", "Acme", &serial, csr().1, vec![]))
            .await
            .expect("enrollment after space was freed")
            .into_inner();
        stored.push((serial, r.serial));
    }
    stored.extend(accepted_while_full);

    let log_text = server.log_text();
    for l in log_text
        .lines()
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN ") || l.contains("resumed"))
    {
        eprintln!("serve: {l}");
    }
    let errors = log_text.lines().filter(|l| l.contains(" ERROR ")).count();
    assert!(
        errors <= 5,
        "{errors} ERROR lines for one full-disk episode:\n{log_text}"
    );
    let (_, status) = server.terminate();
    assert!(status.success(), "{status:?}");

    // Nothing returned was lost, and the store checks clean.
    let out = Command::new(trustca_bin())
        .args(["store", "check", "--json", "--store"])
        .arg(data.join("db"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], true, "{report}");
    let store = trustca_store::SledStorage::open(&data.join("db")).unwrap();
    for (serial, cert_serial) in &stored {
        let s = trustca_model::hexfmt::decode(cert_serial).unwrap();
        assert!(
            trustca_store::Storage::certificate(&store, &s)
                .unwrap()
                .is_some(),
            "{serial} was returned but is not stored"
        );
    }
}

/// Drops a database made by `create_database_in`, and its tablespace.
struct DropDatabase(String, String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        if let Err(e) = trustca_store::postgres_admin::drop_database_in(&self.0, &self.1) {
            eprintln!("could not drop the test database {}: {e}", self.1);
        }
    }
}

/// PostgreSQL with its data files on a full tmpfs (issue 19, section 3):
/// enrollments get `RESOURCE_EXHAUSTED` (never `INTERNAL`), refused at once
/// after the first, health `trustca.store.writable` goes `NOT_SERVING`, the
/// episode is logged once, and writes resume once space is freed. The
/// write-ahead log stays on the cluster's own disk (only the database's
/// tablespace is on the tmpfs), so PostgreSQL itself keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_on_a_full_disk_refuses_writes_and_says_so_once() {
    let _timed = timed().await;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(pg) = postgres_server("the PostgreSQL full-disk test") else {
        return;
    };
    let ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let outside = tempfile::tempdir().unwrap();
    // The PostgreSQL server's user must reach the tablespace.
    std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mnt = outside.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    if !mount_tmpfs(&mnt, 24) {
        return;
    }
    let _unmount = Unmount(mnt.clone());
    let owner =
        std::fs::metadata(trustca_store::postgres_admin::data_directory(&pg).unwrap()).unwrap();
    let tablespace = mnt.join("pg");
    std::fs::create_dir(&tablespace).unwrap();
    std::os::unix::fs::chown(&tablespace, Some(owner.uid()), Some(owner.gid())).unwrap();
    let name = unique_database_name("full");
    let store = trustca_store::postgres_admin::create_database_in(&pg, &name, &tablespace).unwrap();
    // Dropped before the tmpfs goes (locals drop in reverse order): a
    // tablespace whose files vanish breaks the whole cluster's checkpoints.
    let _dropped = DropDatabase(pg.clone(), name.clone());
    let log = outside.path().join("serve.log");
    let server = serve(ca.data(), &["--store", &store], &log).expect("serve starts");
    let channel = trustca_api::client::connect(&server.url(), &acme)
        .await
        .unwrap();
    let mut client = pb::enrollment_client::EnrollmentClient::new(channel.clone());
    for i in 0..10 {
        client
            .enroll(request("hems", "Acme", &format!("D{i}"), csr().1, vec![]))
            .await
            .unwrap();
    }

    fill(&mnt.join("filler"));
    let mut refused = Vec::new();
    for i in 0..2000 {
        let started = Instant::now();
        if let Err(status) = client
            .enroll(request("hems", "Acme", &format!("F{i}"), csr().1, vec![]))
            .await
        {
            assert_eq!(
                status.code(),
                Code::ResourceExhausted,
                "{status:?}\n{}",
                server.log_text()
            );
            assert_plain(status.message());
            refused.push(started.elapsed());
            if refused.len() >= 10 {
                break;
            }
        }
    }
    assert!(
        refused.len() >= 10,
        "enrollments kept succeeding on a full disk"
    );
    // After the first, refused without touching the database.
    assert!(
        refused[1..].iter().all(|t| *t < Duration::from_secs(1)),
        "{refused:?}"
    );
    wait_for_health(
        &channel,
        "trustca.store.writable",
        ServingStatus::NotServing,
        Duration::from_secs(5),
    )
    .await;

    std::fs::remove_file(mnt.join("filler")).unwrap();
    wait_for_health(
        &channel,
        "trustca.store.writable",
        ServingStatus::Serving,
        Duration::from_secs(30),
    )
    .await;
    client
        .enroll(request("hems", "Acme", "R0", csr().1, vec![]))
        .await
        .expect("enrollment after space was freed");
    let log_text = server.log_text();
    // One ERROR line for the episode (requests refused meanwhile are
    // logged at INFO, one line each, like every request).
    let errors = log_text.lines().filter(|l| l.contains(" ERROR ")).count();
    assert_eq!(errors, 1, "{log_text}");
    drop((client, channel));
    let (_, status) = server.terminate();
    assert!(status.success(), "{status:?}");
}

/// PostgreSQL unreachable (issue 19, section 3): every write fails with
/// `UNAVAILABLE` and one plain sentence (no pool wording, no repeated
/// prefix), health `trustca.store.writable` is `NOT_SERVING` meanwhile and
/// `SERVING` again once the database answers; `store check` says why it
/// cannot open the store once, and never creates or migrates a schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_is_one_plain_sentence_and_not_serving() {
    use trustca_store::postgres_admin;
    let Some(pg) = postgres_server("the PostgreSQL unreachable test") else {
        return;
    };
    let store_check = |url: &str| {
        Command::new(trustca_bin())
            .args(["store", "check", "--json", "--store", url])
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    };
    // `store check` on a database without trustca's schema leaves it so.
    let empty = postgres_admin::create_database(&pg, &unique_database_name("empty")).unwrap();
    for _ in 0..2 {
        let out = store_check(&empty);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("holds no trustca store"), "{err}");
        assert!(!err.contains("migration"), "{err}");
    }

    let ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let name = unique_database_name("gone");
    let store = postgres_admin::create_database(&pg, &name).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let log = outside.path().join("serve.log");
    let server = serve(ca.data(), &["--store", &store], &log).expect("serve starts");
    let channel = trustca_api::client::connect(&server.url(), &acme)
        .await
        .unwrap();
    let mut client = pb::enrollment_client::EnrollmentClient::new(channel.clone());
    client
        .enroll(request("hems", "Acme", "U0", csr().1, vec![]))
        .await
        .unwrap();
    // An existing store: checked without migrating it again.
    let out = store_check(&store);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("already exists") && !err.contains("migration"),
        "{err}"
    );

    postgres_admin::allow_connections(&pg, &name, false).unwrap();
    let mut refused = None;
    for i in 0..5 {
        if let Err(status) = client
            .enroll(request(
                "hems",
                "Acme",
                &format!("U{}", i + 1),
                csr().1,
                vec![],
            ))
            .await
        {
            refused = Some(status);
            break;
        }
    }
    let status = refused.expect("enrollment fails while the database is gone");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let message = status.message();
    assert_plain(message);
    for wording in ["Error occurred while creating a new object", "db error"] {
        assert!(!message.contains(wording), "{message}");
    }
    for said_once in ["the store is unavailable", "PostgreSQL at"] {
        assert!(message.matches(said_once).count() <= 1, "{message}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(channel.clone(), "trustca.store.writable").await
        != ServingStatus::NotServing as i32
    {
        assert!(
            Instant::now() < deadline,
            "writable health stayed SERVING:\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = store_check(&store);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("cannot open the store").count(), 1, "{err}");
    assert!(!err.contains("db error"), "{err}");

    postgres_admin::allow_connections(&pg, &name, true).unwrap();
    wait_for_health(
        &channel,
        "trustca.store.writable",
        ServingStatus::Serving,
        Duration::from_secs(15),
    )
    .await;
    client
        .enroll(request("hems", "Acme", "U9", csr().1, vec![]))
        .await
        .expect("enrollment once the database answers");
    drop((client, channel));
    let (_, status) = server.terminate();
    assert!(status.success(), "{status:?}");
}
