//! Fault injection against a real `trustca serve` process: a disk that
//! fills up under load, bytes flipped in a stopped server's store, and
//! clients that open connections and streams and never use them. Each test
//! is bounded in time; what it proves is written above it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use trustca_testkit as common;
// Two whole-server tests that were binaries of their own share this one
// (each test binary links the whole workspace); `replicas.rs`, two servers
// under load on PostgreSQL, stays alone beside it.
mod backpressure;
mod durability;
mod integrity;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

/// A `trustca serve` process and where its log goes.
struct ServerProcess {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl ServerProcess {
    fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then how long the process took to exit and its status.
    fn terminate(mut self) -> (Duration, std::process::ExitStatus) {
        let started = Instant::now();
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = started + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (started.elapsed(), status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("serve did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `trustca serve` on 127.0.0.1:0 with `extra` arguments; the
/// exit status and log when it refuses to start.
fn serve(
    data: &Path,
    extra: &[&str],
    log: &Path,
) -> Result<ServerProcess, (std::process::ExitStatus, String)> {
    let mut child = Command::new(trustca_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env(
            "TRUSTCA_PASSPHRASE",
            std::str::from_utf8(PASSPHRASE).unwrap(),
        )
        // The product's default log filter, as operators get it.
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.trim().strip_prefix("listening on ") {
        Some(addr) => Ok(ServerProcess {
            child,
            addr: addr.to_owned(),
            log: log.to_owned(),
        }),
        None => {
            let status = child.wait().unwrap();
            Err((status, std::fs::read_to_string(log).unwrap_or_default()))
        }
    }
}

async fn health(channel: Channel, service: &str) -> i32 {
    tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .map(|r| r.into_inner().status)
        .unwrap_or(-1)
}

async fn wait_for_health(channel: &Channel, service: &str, want: ServingStatus, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = health(channel.clone(), service).await;
        if got == want as i32 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{service} did not become {want:?} within {within:?} (last {got})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn trust_of(channel: Channel, identity: &str) -> Result<pb::TrustAnswer, tonic::Status> {
    pb::trust_database_client::TrustDatabaseClient::new(channel)
        .get_trust(pb::GetTrustRequest {
            subject: Some(pb::get_trust_request::Subject::Identity(
                identity.to_owned(),
            )),
        })
        .await
        .map(|r| r.into_inner())
}

fn identity(serial: &str) -> String {
    format!("urn:trustca:hems:Acme:M1:{serial}")
}

/// No Rust `Debug` rendering reaches a client.
fn assert_plain(message: &str) {
    for debug in ["Os {", "Some(", "Custom {", "kind: ", "backtrace"] {
        assert!(
            !message.contains(debug),
            "a status message carries Debug text: {message}"
        );
    }
}

/// Mounts a small tmpfs at `dir`; false (after a loud message) where
/// mounting is not permitted.
fn mount_tmpfs(dir: &Path, megabytes: u32) -> bool {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        // Containers without CAP_SYS_ADMIN cannot mount even as root: the
        // test cannot run there, and says so loudly rather than pass.
        eprintln!(
            "*** SKIPPED the full-disk test: mounting a tmpfs is not permitted here (needs root with CAP_SYS_ADMIN) ***"
        );
    }
    ok
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `path` to the last byte.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    for chunk in [1 << 20, 4096, 512, 1] {
        let buf = vec![0xA5u8; chunk];
        while f.write_all(&buf).and_then(|()| f.sync_data()).is_ok() {}
    }
}

/// A full disk: enrollments get RESOURCE_EXHAUSTED (or UNAVAILABLE while
/// the store reopens) with a plain message; health reports the write
/// services NOT_SERVING; every certificate stored before stays readable;
/// nothing refused is ever visible; the error is logged once, not per
/// request; and once space is freed, writes resume without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers_without_restart() {
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

fn store_check(db: &Path) -> (Option<i32>, serde_json::Value, String) {
    let out = Command::new(trustca_bin())
        .args(["store", "check", "--json", "--store"])
        .arg(db)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "store check panicked: {stderr}"
    );
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
        stderr,
    )
}

/// Rewrites one record of a stopped store's sled tree.
fn tamper(db: &Path, tree: &str, key: &[u8], edit: impl Fn(&mut Vec<u8>)) {
    let sled = trustca_store::raw_sled_config(db).open().unwrap();
    let t = sled.open_tree(tree).unwrap();
    let mut v = t.get(key).unwrap().expect("record to tamper with").to_vec();
    edit(&mut v);
    t.insert(key, v).unwrap();
    sled.flush().unwrap();
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

/// Every file below `dir`, with its length.
fn files_in(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push((e.metadata().map(|m| m.len()).unwrap_or(0), p));
            }
        }
    }
    files
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

/// Raises this process's descriptor limit (it holds thousands of sockets);
/// returns the soft limit in force.
fn raise_own_descriptor_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum.map(|m| m.min(65_536)).or(Some(65_536)),
            maximum: l.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(65_536)
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 * p).ceil() as usize)
        .saturating_sub(1)
        .min(v.len() - 1)]
}

/// Abuse: 2,000 idle connections (1,000 bare TCP, 1,000 TLS without a
/// client certificate) and 100 streams that never send, while a normal
/// client enrolls and queries with p99 under 100 ms; the server's memory
/// stays under 256 MiB; the idle connections are closed by the server
/// (first-request timeout); SIGTERM exits within the grace period + 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_and_silent_streams_lock_nobody_out() {
    let descriptors = raise_own_descriptor_limit();
    // Half bare TCP, half TLS; fewer (loudly) where this process may not
    // hold 2,000 sockets.
    let per_kind = (descriptors.saturating_sub(400) / 2).min(1000) as usize;
    if per_kind < 1000 {
        eprintln!(
            "*** the descriptor limit ({descriptors}) allows {} idle connections, not 2,000 ***",
            2 * per_kind
        );
    }
    let ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let logs = tempfile::tempdir().unwrap();
    let grace = 3u64;
    let server = serve(
        ca.data(),
        &[
            "--shutdown-grace",
            &grace.to_string(),
            "--first-request-timeout",
            "8",
        ],
        &logs.path().join("serve.log"),
    )
    .expect("serve starts");
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();

    let mut bare = Vec::new();
    for _ in 0..per_kind {
        bare.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut anonymous = Vec::new();
    for _ in 0..per_kind {
        anonymous.push(
            trustca_api::client::connect_public(&server.url(), &ca.root_pem())
                .await
                .unwrap(),
        );
    }
    // 100 streams that never send an item, on four connections.
    let mut silent = Vec::new();
    for _ in 0..4 {
        let channel = trustca_api::client::connect(&server.url(), &acme)
            .await
            .unwrap();
        for _ in 0..25 {
            let mut client = pb::enrollment_client::EnrollmentClient::new(channel.clone());
            silent.push(tokio::spawn(async move {
                let r = client
                    .enroll_batch(tokio_stream::pending::<pb::EnrollBatchItem>())
                    .await;
                // Held open until the server ends it.
                if let Ok(resp) = r {
                    let mut s = resp.into_inner();
                    while let Ok(Some(_)) = s.message().await {}
                }
            }));
        }
    }

    let normal = trustca_api::client::connect(&server.url(), &acme)
        .await
        .unwrap();
    let mut client = pb::enrollment_client::EnrollmentClient::new(normal.clone());
    let mut latencies = Vec::new();
    for i in 0..150 {
        let serial = format!("N{i}");
        let t = Instant::now();
        let r = client
            .enroll(request("hems", "Acme", &serial, csr().1, vec![]))
            .await
            .unwrap();
        latencies.push(t.elapsed());
        let t = Instant::now();
        trust_of(normal.clone(), &r.into_inner().identity)
            .await
            .unwrap();
        latencies.push(t.elapsed());
    }
    let p99 = percentile(latencies.clone(), 0.99);
    let p50 = percentile(latencies, 0.50);
    let rss_mib = server.rss_kib() / 1024;
    eprintln!("abuse: p50 {p50:?} p99 {p99:?}, server RSS {rss_mib} MiB");
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    assert!(rss_mib < 256, "server RSS {rss_mib} MiB");

    // The server closes what was never used (first-request timeout 8 s,
    // handshake timeout 10 s for the bare ones).
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut closed = 0;
    for mut s in bare.drain(..) {
        let mut buf = [0u8; 1];
        if let Ok(Ok(0)) | Ok(Err(_)) = tokio::time::timeout(
            Duration::from_millis(5),
            tokio::io::AsyncReadExt::read(&mut s, &mut buf),
        )
        .await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 990,
        "only {closed} of 1000 idle TCP connections were closed"
    );
    drop(anonymous);

    let (took, status) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        took <= Duration::from_secs(grace + 1),
        "exit took {took:?} with a {grace} s grace period"
    );
    for s in silent {
        let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
    }
}

/// A full connection table closes the longest-idle connection to admit a
/// new one: 300 idle TLS connections against `--max-connections 64` do not
/// keep a real client out, and the limit is logged once, not per accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_connection_table_makes_room_for_real_clients() {
    let _ = raise_own_descriptor_limit();
    let ca = TestCa::init();
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let logs = tempfile::tempdir().unwrap();
    let server = serve(
        ca.data(),
        &["--max-connections", "64"],
        &logs.path().join("serve.log"),
    )
    .expect("serve starts");
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(c) = trustca_api::client::connect_public(&server.url(), &ca.root_pem()).await {
            idle.push(c);
        }
    }
    let mut client = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(&server.url(), &acme)
            .await
            .unwrap(),
    );
    for i in 0..5 {
        client
            .enroll(request("hems", "Acme", &format!("M{i}"), csr().1, vec![]))
            .await
            .expect("a real client is admitted");
    }
    let log = server.log_text();
    let limit_lines = log.matches("connection limit reached").count();
    assert!(
        (1..=3).contains(&limit_lines),
        "{limit_lines} limit lines:\n{log}"
    );
    drop(idle);
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
