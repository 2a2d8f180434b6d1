//! A process killed right after its flushes (no destructor, no close) on
//! an embedded store: whatever was flushed is there after the restart,
//! whatever was committed after it is there a whole group or not at all,
//! and the store checks as intact. The test binary runs itself as the process to
//! kill (`crash_child`, which does nothing unless asked to).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use trustca_store::{FjallStorage, SledStorage, Storage};

use crate::{SEAL_KEY, issuance};

/// Names the engine and directory the child writes to (`engine:dir`).
const CHILD_ENV: &str = "TRUSTCA_STORE_CRASH_CHILD";
/// Devices committed in groups of [`GROUP`], each group flushed.
const FLUSHED: u8 = 100;
/// Devices committed after the last flush, never flushed.
const UNFLUSHED: u8 = 20;
const GROUP: u8 = 10;

/// A sealed handle on the embedded store `engine` in `dir`, as a server
/// opens it.
fn open_at(engine: &str, dir: &Path) -> Arc<dyn Storage> {
    let s: Arc<dyn Storage> = match engine {
        "sled" => Arc::new(SledStorage::open(dir).unwrap()),
        "fjall" => Arc::new(FjallStorage::open(dir).unwrap()),
        other => panic!("no embedded engine {other}"),
    };
    let seal = trustca_store::RecordSeal::new(&SEAL_KEY);
    seal.learn_floors(s.as_ref()).unwrap();
    s.set_record_seal(Arc::new(seal));
    s
}

fn group(s: &dyn Storage, from: u8) {
    let batch: Vec<_> = (from..from + GROUP)
        .map(|i| issuance(i, &format!("d{i:03}"), false))
        .collect();
    for r in s.commit_issuances(&batch) {
        r.unwrap();
    }
}

/// The process the tests kill: commits and flushes [`FLUSHED`] devices,
/// says so in a file, commits [`UNFLUSHED`] more and exits at once.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (engine, dir) = spec.split_once(':').unwrap();
    let s = open_at(engine, Path::new(dir));
    for from in (0..FLUSHED).step_by(GROUP.into()) {
        group(s.as_ref(), from);
        s.flush().unwrap();
    }
    std::fs::write(Path::new(dir).with_extension("flushed"), b"yes").unwrap();
    for from in (FLUSHED..FLUSHED + UNFLUSHED).step_by(GROUP.into()) {
        group(s.as_ref(), from);
    }
    // Gone without dropping the handle: no destructor, no close, no
    // flush (abort would do the same, and may leave a core file).
    std::process::exit(CRASHED);
}

/// The child's exit code once it has committed everything.
const CRASHED: i32 = 86;

fn a_killed_process_keeps_what_it_flushed(engine: &str) {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("db");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash::crash_child", "--nocapture"])
        .env(CHILD_ENV, format!("{engine}:{}", dir.display()))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(CRASHED), "the child failed: {status}");
    assert!(dir.with_extension("flushed").exists());
    let s = open_at(engine, &dir);
    for i in 0..FLUSHED {
        let identity = format!("d{i:03}");
        assert!(s.device(&identity).unwrap().is_some(), "{identity} lost");
        assert!(s.trust_record(&identity).unwrap().is_some(), "{identity}");
    }
    // Later groups: each there whole or not at all, the counters and the
    // audit log agreeing with what is there.
    let present = (0..FLUSHED + UNFLUSHED)
        .filter(|i| s.device(&format!("d{i:03}")).unwrap().is_some())
        .count() as u64;
    assert_eq!(present % u64::from(GROUP), 0, "{present} devices");
    assert_eq!(s.counts().unwrap(), (present, present));
    let (size, root) = s.audit_head().unwrap();
    assert_eq!(size, present);
    let entries = s.audit_entries(0, 1000).unwrap();
    let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.leaf_hash).collect();
    assert_eq!(trustca_audit::root_at(&hashes, size).unwrap(), root);
    let report = trustca_store::check_store(s.as_ref(), &mut |_, _| {}).unwrap();
    assert!(report.damaged.is_empty(), "{:?}", report.damaged);
}

#[test]
fn sled_keeps_what_it_flushed_when_the_process_is_killed() {
    a_killed_process_keeps_what_it_flushed("sled");
}

#[test]
fn fjall_keeps_what_it_flushed_when_the_process_is_killed() {
    a_killed_process_keeps_what_it_flushed("fjall");
}
