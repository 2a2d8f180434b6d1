//! A separated authority reloads its policies on SIGHUP: a real `trustca
//! serve --role registration` process (its own directory, passphrase and
//! `--policies`), beside the pseudonym CA and linkage authorities, takes a
//! new `v2x-tickets.toml` when the operator signals it, without a restart
//! and on the vehicle's open connection; a file that would move what
//! issued tickets carry (the period clock) is refused on the next signal,
//! the refusal is logged in words, and the profile in force stays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::separated::{Separated, role_passphrase_text, role_server};
use common::*;
use trustca_scms::BatchPolicy;
use trustca_server::v2x::V2xRole;

use super::ticket_reload::profile;
use super::tickets::{enroll_lv5_car, registration};

/// A `trustca serve --role` process, killed when dropped.
struct RoleProcess {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl RoleProcess {
    /// Starts `trustca serve --role ROLE` over `dir` with `extra` flags.
    fn start(dir: &Path, role: V2xRole, extra: &[&str], log: &Path) -> Self {
        let mut args: Vec<&OsStr> = vec!["--role".as_ref(), role.as_str().as_ref()];
        args.extend(["--data".as_ref(), dir.as_os_str()]);
        args.extend(extra.iter().map(OsStr::new));
        match spawn_serve(&args, &role_passphrase_text(role), log) {
            Ok((child, addr)) => Self {
                child,
                addr,
                log: log.to_owned(),
            },
            Err((status, log)) => panic!("serve --role did not start ({status}):\n{log}"),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RoleProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 100 ms for up to 15 s; panics with `what` if it
/// never holds.
pub(crate) async fn within<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_process_reloads_its_ticket_profile_on_sighup() {
    let mut ca = TestCa::init();
    let mut v2x = Separated::provision(&ca);
    ca.start_without_v2x().await;
    let car = enroll_lv5_car(&ca, "VIN-HANGUP-1").await;
    // The pseudonym CA and the linkage authorities in this process; the
    // registration authority, whose signal is under test, in its own.
    let batch = BatchPolicy::default();
    for a in v2x.authorities.iter_mut() {
        if a.role != V2xRole::Registration {
            a.server = Some(role_server(a.path(), a.role, None, batch).await);
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    let policies = scratch.path().join("policies");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(ca.data().join("policies"))
        .arg(&policies)
        .status()
        .unwrap();
    assert!(copied.success());
    let (pca, la1, la2) = (
        v2x.get(V2xRole::PseudonymCa).url(),
        v2x.get(V2xRole::Linkage1).url(),
        v2x.get(V2xRole::Linkage2).url(),
    );
    let ra = RoleProcess::start(
        v2x.get(V2xRole::Registration).path(),
        V2xRole::Registration,
        &[
            "--policies",
            policies.to_str().unwrap(),
            "--pseudonym-ca",
            &pca,
            "--linkage-1",
            &la1,
            "--linkage-2",
            &la2,
        ],
        &scratch.path().join("ra.log"),
    );
    let mut client = registration(&format!("https://{}", ra.addr), &car.creds).await;
    let before = profile(&mut client).await;
    assert_eq!(before.certificates_per_period, 20);

    // Written, not yet signalled: the profile in force still applies.
    let file = policies.join("v2x-tickets.toml");
    let shipped = std::fs::read_to_string(&file).unwrap();
    assert!(shipped.contains("certificates_per_period = 20"));
    let fewer = shipped.replace(
        "certificates_per_period = 20",
        "certificates_per_period = 5",
    );
    std::fs::write(&file, &fewer).unwrap();
    assert_eq!(profile(&mut client).await.certificates_per_period, 20);

    // SIGHUP: the same connection sees the new file, the process runs on.
    hangup(&ra.child);
    within("the RA takes the new profile after SIGHUP", || {
        let mut c = client.clone();
        async move { profile(&mut c).await.certificates_per_period == 5 }
    })
    .await;

    // A file moving the period clock is refused on the next signal: the
    // refusal is logged in words and the profile in force stays.
    assert!(fewer.contains("period_hours = 168"));
    std::fs::write(
        &file,
        fewer.replace("period_hours = 168", "period_hours = 24"),
    )
    .unwrap();
    hangup(&ra.child);
    within("the RA logs the refused reload", || {
        let text = ra.log_text();
        async move {
            text.contains("policy reload on SIGHUP refused")
                && text.contains("period_hours cannot change")
        }
    })
    .await;
    let kept = profile(&mut client).await;
    assert_eq!(kept.certificates_per_period, 5);
    assert_eq!(kept.period_hours, before.period_hours);
    assert_eq!(kept.current_period, before.current_period);
    drop(ra);
    v2x.stop().await;
}
