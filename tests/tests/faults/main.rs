//! Fault injection against a real `trustca serve` process: a disk that
//! fills up under load, bytes flipped in a stopped server's store, clients
//! that open connections and streams and never use them, and a replica
//! killed under load beside another on the same PostgreSQL store. Each test
//! is bounded in time; what it proves is written above it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use trustca_testkit as common;
// Whole-server tests that were binaries of their own share this one (each
// test binary links the whole workspace).
mod backpressure;
mod connections;
mod damaged;
mod durability;
mod integrity;
mod replicas;
mod store_outages;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

/// Keeps the tests that bound the server's timing (latencies, refusals,
/// restarts) apart from the two replicas under load, which take both cores
/// while they run: timed tests share it (`timed()`), the load takes it
/// alone (`load_alone()`). Tests in one binary run in parallel.
static CPU: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Held by a test whose assertions bound how long the server takes.
async fn timed() -> tokio::sync::RwLockReadGuard<'static, ()> {
    CPU.read().await
}

/// Held by a test that saturates the machine's cores.
async fn load_alone() -> tokio::sync::RwLockWriteGuard<'static, ()> {
    CPU.write().await
}

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
    let mut args: Vec<&std::ffi::OsStr> = vec!["--data".as_ref(), data.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (child, addr) = spawn_serve(&args, std::str::from_utf8(PASSPHRASE).unwrap(), log)?;
    Ok(ServerProcess {
        child,
        addr,
        log: log.to_owned(),
    })
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
