//! One `init`, many CAs: `trustca_server::init` (a root, three sector
//! CAs, the service certificates and the V2X hierarchy, with six
//! passphrase-derived keystores) costs most of a second of CPU, and almost
//! every end-to-end test needs a data directory only as `init` leaves it.
//! The first test of a process runs `init` once into a template under the
//! target directory's scratch space; each [`crate::TestCa::init`] copies it
//! into a fresh directory. Tests that need a root of their own (another
//! deployment) use [`crate::TestCa::init_fresh`].
//!
//! Templates of processes that have ended are removed by the next one, so
//! they do not pile up.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::server::{PASSPHRASE, creating_passphrase, target_tmpdir};

/// Copies the template into `to` (an empty directory), keeping each
/// file's permissions (key files are private).
pub(crate) fn copy_into(to: &Path) {
    copy_tree(template(), to);
}

/// The data directory `init` made for this process.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let base = target_tmpdir().join("testkit-ca-template");
        remove_stale(&base);
        let dir = base.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        trustca_server::init(&dir, None, &creating_passphrase(PASSPHRASE), &[]).unwrap();
        dir
    })
}

/// Removes the templates of processes that no longer run (`/proc/<pid>`
/// gone); elsewhere than Linux, none.
fn remove_stale(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir(&target).unwrap();
            std::fs::set_permissions(&target, e.metadata().unwrap().permissions()).unwrap();
            copy_tree(&e.path(), &target);
        } else {
            // `copy` keeps the permission bits.
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
