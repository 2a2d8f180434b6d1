//! The storage contract: one set of tests run against every backend (sled
//! and fjall in a temporary directory, PostgreSQL in a fresh database).
//!
//! PostgreSQL is found through `TRUSTCA_TEST_POSTGRES`, a server URL
//! without a database name (e.g. `postgres://trustca@127.0.0.1:5433`).
//! Without it the PostgreSQL half fails, saying how to start a server,
//! unless `TRUSTCA_SKIP_POSTGRES=1` asks to skip it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod copy_and_check;
mod crash;
mod history;
mod integrity;
mod legacy;
mod log_and_leases;
mod raw;

use std::sync::Arc;

use copy_and_check::*;
use history::*;
use integrity::*;
use legacy::*;
use log_and_leases::*;
use raw::tamper;
use trustca_store::{
    BlobAudit, CachedStorage, CertificateRecord, CertificateStatus, DeviceChange, DeviceRecord,
    FjallStorage, Issuance, PgStorage, SledStorage, Storage, StoreError, TrustChange, TrustStatus,
};

/// A backend under test: how to open (and reopen) it.
enum Backend {
    Sled(tempfile::TempDir),
    Fjall(tempfile::TempDir),
    Postgres(String),
    /// PostgreSQL behind the replica read cache, checked on every read.
    CachedPostgres(String),
}

impl Backend {
    fn sled() -> Self {
        Backend::Sled(tempfile::tempdir().unwrap())
    }

    fn fjall() -> Self {
        Backend::Fjall(tempfile::tempdir().unwrap())
    }

    fn postgres(test: &str) -> Option<Self> {
        let Ok(server) = std::env::var("TRUSTCA_TEST_POSTGRES") else {
            assert!(
                std::env::var("TRUSTCA_SKIP_POSTGRES").as_deref() == Ok("1"),
                "{test} on PostgreSQL needs a server: run `eval \"$(bash .ci/postgres.sh start)\"` first (a throwaway cluster), or set TRUSTCA_SKIP_POSTGRES=1 to skip the PostgreSQL half"
            );
            eprintln!("*** SKIPPED {test} on PostgreSQL (TRUSTCA_SKIP_POSTGRES=1) ***");
            return None;
        };
        let url =
            trustca_store::postgres_admin::create_database(&server, &unique_name(test)).unwrap();
        Some(Backend::Postgres(url))
    }

    /// Opens a handle as a server does: its device and trust records
    /// sealed under the test key, each record's newest version learned
    /// from the audit log. For PostgreSQL every call is a separate
    /// replica's connection pool.
    fn open(&self) -> Arc<dyn Storage> {
        let s = self.open_unsealed();
        let seal = trustca_store::RecordSeal::new(&SEAL_KEY);
        seal.learn_floors(s.as_ref()).unwrap();
        s.set_record_seal(Arc::new(seal));
        s
    }

    /// Opens a handle that neither seals nor checks records, as offline
    /// tools without the CA's keys do.
    fn open_unsealed(&self) -> Arc<dyn Storage> {
        match self {
            Backend::Sled(dir) => Arc::new(SledStorage::open(dir.path()).unwrap()),
            Backend::Fjall(dir) => Arc::new(FjallStorage::open(dir.path()).unwrap()),
            Backend::Postgres(url) => Arc::new(PgStorage::connect(url).unwrap()),
            Backend::CachedPostgres(url) => Arc::new(CachedStorage::new(
                Arc::new(PgStorage::connect(url).unwrap()),
                std::time::Duration::ZERO,
            )),
        }
    }

    fn is_shared(&self) -> bool {
        matches!(self, Backend::Postgres(_) | Backend::CachedPostgres(_))
    }
}

/// A database name no other test run uses.
fn unique_name(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut name = format!("t_{}_{nanos}_{test}", std::process::id());
    name.truncate(63);
    name
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sled {
            $( #[test] fn $name() { super::$name(&super::Backend::sled()) } )*
        }
        mod fjall {
            $( #[test] fn $name() { super::$name(&super::Backend::fjall()) } )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(b) = super::Backend::postgres(stringify!($name)) {
                        super::$name(&b)
                    }
                }
            )*
        }
        mod cached_postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(super::Backend::Postgres(url)) =
                        super::Backend::postgres(stringify!($name))
                    {
                        super::$name(&super::Backend::CachedPostgres(url))
                    }
                }
            )*
        }
    };
}

contract!(
    issuance_is_atomic_and_unique,
    renewal_supersedes_and_bumps_version,
    a_renewal_keeps_a_level_set_by_an_operator,
    trust_changes_are_all_or_nothing_and_leave_history,
    transfer_copies_every_change_committed_before_it,
    devices_page_walks_a_prefix_in_key_order,
    device_pages_walk_more_records_than_a_page,
    audit_entries_are_merkle_leaves,
    revocation_marks_indexes_and_retires_the_device,
    key_compromise_blocks_the_key_everywhere,
    issuance_reads_answer_as_single_reads,
    crl_numbers_are_never_reused,
    blobs_and_their_audit_entries,
    a_model_change_moves_its_devices_in_one_transaction,
    tree_heads_are_kept_in_order,
    records_survive_reopening,
    concurrent_writers_keep_one_audit_log,
    leases_have_one_holder,
    attestation_challenges_are_taken_once_and_survive_reopening,
    copy_preserves_every_record_and_the_audit_log,
    the_check_passes_an_intact_store_and_names_damaged_records,
    a_changed_level_is_refused_and_reported,
    a_deleted_record_is_refused_and_reported,
    a_record_swapped_with_another_devices_is_refused_and_reported,
    an_older_version_restored_is_refused_and_reported,
    the_check_compares_whole_records_with_the_log,
    an_unrevoked_certificate_is_refused_and_reported,
    a_dropped_revocation_or_block_is_refused_and_reported,
    a_record_deleted_while_serving_is_refused,
    a_changed_model_record_is_refused_and_reported,
    a_sealed_space_refuses_changed_records_and_seals_old_ones_once,
    a_legacy_store_is_refused_in_words_then_sealed_and_served,
    an_interrupted_sealing_is_refused_and_finished_by_the_next_run,
    the_change_marker_moves_with_every_write_and_never_repeats,
    history_changes_are_stored_as_their_text_and_read_typed,
);

/// The record seal's key in these tests (a server's is in its keystore).
const SEAL_KEY: [u8; 32] = [0x5e; 32];

/// A real certificate for `key` (so key fingerprints work), unique per
/// `serial`.
fn cert_der(key: &rcgen::KeyPair, serial: u8) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&[1, serial]));
    params.self_signed(key).unwrap().der().to_vec()
}

fn key() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
}

fn issuance_with(serial: u8, identity: &str, renewal: bool, der: Vec<u8>) -> Issuance {
    Issuance {
        certificate: CertificateRecord {
            serial: vec![serial; 16],
            der,
            sector: "automotive".into(),
            kind: "long-term".into(),
            identity_key: Some(identity.into()),
            issued_at: 1_700_000_000,
            not_after: 4_000_000_000,
            status: CertificateStatus::Active,
        },
        device: Some(DeviceRecord {
            identity_key: identity.into(),
            urn: format!("urn:{identity}"),
            sector: "automotive".into(),
            manufacturer: "acme".into(),
            model: "m".into(),
            serial: "s".into(),
            firmware_version: "1.0".into(),
            certificate_level: 3,
            policy_version: "p".into(),
            enrolled_at: 1_700_000_000,
            certificates: vec![],
        }),
        renewal,
        actor: "manufacturer:acme".into(),
        audit_kind: "certificate.issued".into(),
        audit_detail: "{}".into(),
    }
}

/// An issuance whose DER does not parse (no key to block), unique per
/// serial so fingerprints stay unique.
fn issuance(serial: u8, identity: &str, renewal: bool) -> Issuance {
    issuance_with(serial, identity, renewal, vec![0x30, 0x01, serial])
}

fn change(identity: &str, level: u8, status: Option<TrustStatus>) -> TrustChange {
    TrustChange {
        identity_key: identity.into(),
        level: Some(level),
        status,
        actor: "operator:ops".into(),
        // A text of no known form, as an older build might have written:
        // the rules read it as a decision, not the evidence's level.
        change: DeviceChange::Recorded(format!("level -> {level}")),
        reason: "CVE-2026-0001".into(),
        audit_kind: "trust.changed".into(),
    }
}

fn issuance_is_atomic_and_unique(b: &Backend) {
    let s = b.open();
    let r = s.commit_issuances(&[
        issuance(1, "a", false),
        issuance(2, "a", false),
        issuance(1, "b", false),
    ]);
    assert!(r[0].is_ok(), "{r:?}");
    assert!(matches!(r[1], Err(StoreError::AlreadyEnrolled(_))), "{r:?}");
    assert!(matches!(r[2], Err(StoreError::SerialReused(_))), "{r:?}");
    // The refused ones left nothing behind.
    assert!(s.device("b").unwrap().is_none());
    assert!(s.certificate(&[2; 16]).unwrap().is_none());
    assert_eq!(s.counts().unwrap(), (1, 1));
    assert_eq!(s.audit_entries(0, 10).unwrap().len(), 1);
    assert_eq!(s.history("a").unwrap().len(), 1);
    let fp = ring::digest::digest(&ring::digest::SHA256, &[0x30, 0x01, 1]);
    let fp: [u8; 32] = fp.as_ref().try_into().unwrap();
    assert_eq!(s.serial_by_fingerprint(&fp).unwrap(), Some(vec![1; 16]));
    // A later group cannot reuse the identity or the serial either.
    let r = s.commit_issuances(&[issuance(1, "c", false), issuance(3, "a", false)]);
    assert!(matches!(r[0], Err(StoreError::SerialReused(_))), "{r:?}");
    assert!(matches!(r[1], Err(StoreError::AlreadyEnrolled(_))), "{r:?}");
    assert_eq!(s.counts().unwrap(), (1, 1));
}

fn renewal_supersedes_and_bumps_version(b: &Backend) {
    let s = b.open();
    assert!(matches!(
        s.commit_issuances(&[issuance(9, "a", true)])[0],
        Err(StoreError::NotEnrolled(_))
    ));
    assert!(s.commit_issuances(&[issuance(1, "a", false)])[0].is_ok());
    let mut renew = issuance(2, "a", true);
    renew.device.as_mut().unwrap().certificate_level = 5;
    assert!(s.commit_issuances(&[renew])[0].is_ok());
    let dev = s.device("a").unwrap().unwrap();
    assert_eq!(dev.certificates.len(), 2);
    let t = s.trust_record("a").unwrap().unwrap();
    assert_eq!((t.level, t.version), (5, 2));
    assert!(matches!(
        s.certificate(&[1; 16]).unwrap().unwrap().status,
        CertificateStatus::Superseded { .. }
    ));
    let hist = s.history("a").unwrap();
    assert_eq!(hist.len(), 2);
    assert!(
        hist[1].change.to_string().contains("3->5"),
        "{}",
        hist[1].change
    );
    assert_eq!(s.counts().unwrap(), (2, 1));
    // A suspended device is not renewed.
    s.apply_trust_changes(&[change("a", 5, Some(TrustStatus::Suspended))], 5)
        .unwrap();
    assert!(matches!(
        s.commit_issuances(&[issuance(3, "a", true)])[0],
        Err(StoreError::NotActive { .. })
    ));
}

fn a_renewal_keeps_a_level_set_by_an_operator(b: &Backend) {
    let s = b.open();
    assert!(s.commit_issuances(&[issuance(1, "a", false)])[0].is_ok());
    s.apply_trust_changes(&[change("a", 1, None)], 5).unwrap();
    for serial in [2, 3] {
        let mut renew = issuance(serial, "a", true);
        renew.device.as_mut().unwrap().certificate_level = 5;
        assert!(s.commit_issuances(&[renew])[0].is_ok());
        assert_eq!(s.trust_record("a").unwrap().unwrap().level, 1);
    }
}

fn trust_changes_are_all_or_nothing_and_leave_history(b: &Backend) {
    let s = b.open();
    let r = s.commit_issuances(&[issuance(1, "a", false), issuance(2, "b", false)]);
    assert!(r.iter().all(|r| r.is_ok()));
    let suspend = |key: &str| change(key, 1, Some(TrustStatus::Suspended));
    // One unknown device: nothing at all changes.
    assert!(matches!(
        s.apply_trust_changes(&[suspend("a"), suspend("zz")], 5),
        Err(StoreError::NotEnrolled(_))
    ));
    assert_eq!(s.trust_record("a").unwrap().unwrap().version, 1);
    assert_eq!(s.audit_entries(0, 100).unwrap().len(), 2);
    let out = s
        .apply_trust_changes(&[suspend("a"), suspend("b")], 5)
        .unwrap();
    assert_eq!(out.len(), 2);
    let a = s.trust_record("a").unwrap().unwrap();
    assert_eq!(
        (a.level, a.status, a.version),
        (1, TrustStatus::Suspended, 2)
    );
    let h = s.history("a").unwrap();
    assert_eq!(h[1].reason, "CVE-2026-0001");
    assert_eq!(s.audit_entries(0, 100).unwrap().len(), 4);
    // Transfer to a successor.
    let t = s
        .transfer_trust("a", "b", "operator:ops", "replacement unit", 6)
        .unwrap();
    assert_eq!(t.status, TrustStatus::Suspended);
    assert_eq!(
        s.trust_record("a").unwrap().unwrap().status,
        TrustStatus::Retired
    );
    assert!(
        s.history("b")
            .unwrap()
            .iter()
            .any(|e| e.change.to_string().contains("[from a v2]"))
    );
    // A retired record is not transferred again.
    assert!(matches!(
        s.transfer_trust("a", "b", "operator:ops", "again", 7),
        Err(StoreError::NotActive { .. })
    ));
    assert_eq!(s.devices_with_prefix("a").unwrap().len(), 1);
    assert_eq!(s.devices_with_prefix("").unwrap().len(), 2);
    assert!(s.devices_with_prefix("c").unwrap().is_empty());
}

fn devices_page_walks_a_prefix_in_key_order(b: &Backend) {
    let s = b.open();
    // Keys around the prefix's edges, so a page must neither start
    // before it nor run past it.
    let keys = [
        "fleet/a", "fleet/b", "fleet/c", "fleet/d", "fleet/e", "fleeu/x", "flee",
    ];
    for (n, key) in keys.iter().enumerate() {
        let r = s.commit_issuances(&[issuance(40 + n as u8, key, false)]);
        assert!(r[0].is_ok(), "{r:?}");
    }
    let mut walked = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.devices_page("fleet/", after.as_deref(), 2).unwrap();
        assert!(page.len() <= 2, "{} records in a page of 2", page.len());
        walked.extend(page.iter().map(|d| d.identity_key.clone()));
        if page.len() < 2 {
            break;
        }
        after = page.last().map(|d| d.identity_key.clone());
    }
    assert_eq!(
        walked,
        ["fleet/a", "fleet/b", "fleet/c", "fleet/d", "fleet/e"]
    );
    // A key before the prefix starts at the prefix; the last key ends it.
    assert_eq!(
        s.devices_page("fleet/", Some("a"), 1).unwrap()[0].identity_key,
        "fleet/a"
    );
    assert!(
        s.devices_page("fleet/", Some("fleet/e"), 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.devices_page("", None, 100).unwrap().len(), keys.len());
}

fn device_pages_walk_more_records_than_a_page(b: &Backend) {
    let s = b.open();
    let keys: Vec<String> = (0..7).map(|n| format!("fleet/{n}")).collect();
    for (n, key) in keys.iter().enumerate() {
        let r = s.commit_issuances(&[issuance(60 + n as u8, key, false)]);
        assert!(r[0].is_ok(), "{r:?}");
    }
    let r = s.commit_issuances(&[issuance(70, "fleeu/x", false)]);
    assert!(r[0].is_ok(), "{r:?}");
    // Pages of 3 over 7 records: two full pages and a short one; a page
    // of 7 is full, so one more (empty) read ends the walk.
    for page in [1, 3, 7, 100] {
        let walked: Vec<String> = trustca_store::device_pages_of(&*s, "fleet/", page)
            .map(|d| d.unwrap().identity_key)
            .collect();
        assert_eq!(walked, keys, "pages of {page}");
    }
    assert_eq!(trustca_store::device_pages(&*s, "").count(), keys.len() + 1);
    assert_eq!(trustca_store::device_pages(&*s, "nothing/").count(), 0);
}

#[test]
fn the_read_cache_stays_within_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let inner: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path()).unwrap());
    for n in 0..40u8 {
        let der = [0x30, n, 0x77].repeat(300);
        let r = inner.commit_issuances(&[issuance_with(n, &format!("d{n}"), false, der)]);
        assert!(r[0].is_ok(), "{r:?}");
    }
    let stale = std::time::Duration::from_secs(60);
    // About 1.1 KB per certificate entry as counted: 8 KiB holds a few.
    let by_bytes = CachedStorage::new(Arc::clone(&inner), stale).with_capacity(1_000, 8 << 10);
    let mut most = 0;
    for n in 0..40u8 {
        assert!(by_bytes.certificate(&[n; 16]).unwrap().is_some());
        let (entries, bytes) = by_bytes.held();
        assert!(bytes <= 8 << 10, "{bytes} bytes held after {n}");
        most = most.max(entries);
    }
    assert!((2..=8).contains(&most), "at most {most} entries held");
    let by_entries = CachedStorage::new(inner, stale).with_capacity(3, usize::MAX);
    for n in 0..10u8 {
        assert!(by_entries.trust_record(&format!("d{n}")).unwrap().is_some());
        assert!(by_entries.held().0 <= 3, "{:?}", by_entries.held());
    }
}

fn transfer_copies_every_change_committed_before_it(b: &Backend) {
    // A change racing a transfer must be either copied to the successor or
    // recorded after the predecessor's retirement, never lost.
    let s = b.open();
    let other = if b.is_shared() {
        b.open()
    } else {
        Arc::clone(&s)
    };
    let rounds = 20u8;
    for i in 0..rounds {
        let r = s.commit_issuances(&[
            issuance(i, &format!("a{i}"), false),
            issuance(100 + i, &format!("b{i}"), false),
        ]);
        assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
    }
    let changer = std::thread::spawn(move || {
        for i in 0..rounds {
            for _ in 0..4 {
                other
                    .apply_trust_changes(&[change(&format!("a{i}"), 2, None)], 7)
                    .unwrap();
            }
        }
    });
    for i in 0..rounds {
        while s.trust_record(&format!("a{i}")).unwrap().unwrap().version < 3 {
            std::thread::yield_now();
        }
        s.transfer_trust(
            &format!("a{i}"),
            &format!("b{i}"),
            "operator:ops",
            "swap",
            8,
        )
        .unwrap();
    }
    changer.join().unwrap();
    for i in 0..rounds {
        let from = s.history(&format!("a{i}")).unwrap();
        let retired = from
            .iter()
            .find(|h| h.change.to_string().starts_with("retired"))
            .unwrap()
            .version;
        let copied = s
            .history(&format!("b{i}"))
            .unwrap()
            .iter()
            .filter(|h| h.change.to_string().starts_with(&format!("[from a{i} ")))
            .count() as u64;
        assert_eq!(copied, retired - 1, "device a{i}: changes were lost");
    }
}

fn revocation_marks_indexes_and_retires_the_device(b: &Backend) {
    let s = b.open();
    let k = key();
    let r = s.commit_issuances(&[issuance_with(1, "a", false, cert_der(&k, 1))]);
    assert!(r[0].is_ok(), "{r:?}");
    // An unknown serial: refused, nothing changes.
    let before = s.audit_head().unwrap();
    assert!(matches!(
        s.revoke(&[vec![1; 16], vec![9; 16]], 4, "operator:ops", "", 10),
        Err(StoreError::NotEnrolled(_))
    ));
    assert_eq!(s.audit_head().unwrap(), before);
    assert!(s.revoked_in_sector("automotive").unwrap().is_empty());
    // Superseded (4): the device's only certificate, so it is revoked.
    let changed = s
        .revoke(&[vec![1; 16]], 4, "operator:ops", "replaced", 10)
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert_eq!(
        s.certificate(&[1; 16]).unwrap().unwrap().status,
        CertificateStatus::Revoked { reason: 4, at: 10 }
    );
    assert_eq!(
        s.revoked_in_sector("automotive").unwrap(),
        vec![(vec![1; 16], 10, 4)]
    );
    assert!(s.revoked_in_sector("energy").unwrap().is_empty());
    assert_eq!(
        s.trust_record("a").unwrap().unwrap().status,
        TrustStatus::Revoked
    );
    let kinds: Vec<String> = s
        .audit_entries(0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["certificate.issued", "certificate.revoked", "trust.revoked"]
    );
    // Revoking again changes nothing.
    assert!(
        s.revoke(&[vec![1; 16]], 1, "operator:ops", "", 11)
            .unwrap()
            .is_empty()
    );
    // Coming back needs a new key.
    let again = issuance_with(2, "a", true, cert_der(&k, 2));
    assert!(matches!(
        s.commit_issuances(&[again])[0],
        Err(StoreError::KeyReused { .. })
    ));
    let fresh = issuance_with(3, "a", true, cert_der(&key(), 3));
    assert!(s.commit_issuances(&[fresh])[0].is_ok());
    assert_eq!(
        s.trust_record("a").unwrap().unwrap().status,
        TrustStatus::Active
    );
}

fn key_compromise_blocks_the_key_everywhere(b: &Backend) {
    let s = b.open();
    let k = key();
    let r = s.commit_issuances(&[issuance_with(1, "a", false, cert_der(&k, 1))]);
    assert!(r[0].is_ok(), "{r:?}");
    // A renewal that kept the key.
    let r = s.commit_issuances(&[issuance_with(2, "a", true, cert_der(&k, 2))]);
    assert!(r[0].is_ok(), "{r:?}");
    let changed = s
        .revoke(&[vec![2; 16]], 1, "operator:ops", "leaked", 20)
        .unwrap();
    // Both certificates with the key are revoked.
    assert_eq!(changed.len(), 2);
    let spki = trustca_model::certificate_key_fingerprint(&cert_der(&k, 1)).unwrap();
    let block = s.blocked_key(&spki).unwrap().unwrap();
    assert_eq!(block.identity_key.as_deref(), Some("a"));
    // The key is refused under any identity.
    let r = s.commit_issuances(&[issuance_with(3, "z", false, cert_der(&k, 3))]);
    assert!(
        matches!(r[0], Err(StoreError::KeyCompromised { .. })),
        "{r:?}"
    );
    assert!(s.device("z").unwrap().is_none());
    assert!(
        s.audit_entries(0, 100)
            .unwrap()
            .iter()
            .any(|e| e.kind == "key.blocked")
    );
}

/// An enrollment group's read-ahead answers what single reads answer, for
/// every key asked about; the stores where single reads are as cheap
/// answer none (PostgreSQL, a round trip each, must).
fn issuance_reads_answer_as_single_reads(b: &Backend) {
    let s = b.open();
    let (blocked, free) = (key(), key());
    let r = s.commit_issuances(&[issuance_with(1, "a", false, cert_der(&blocked, 1))]);
    assert!(r[0].is_ok(), "{r:?}");
    s.revoke(&[vec![1; 16]], 1, "operator:ops", "leaked", 20)
        .unwrap();
    let fp = |k: &rcgen::KeyPair, n| {
        trustca_model::certificate_key_fingerprint(&cert_der(k, n)).unwrap()
    };
    let (keys, fps) = (
        ["a".to_owned(), "b".to_owned()],
        [fp(&blocked, 1), fp(&free, 2)],
    );
    let Some(reads) = s.issuance_reads(&keys, &fps).unwrap() else {
        assert!(!b.is_shared(), "PostgreSQL reads a group ahead");
        return;
    };
    for k in &keys {
        assert_eq!(reads.devices.get(k), Some(&s.device(k).unwrap()), "{k}");
    }
    assert!(reads.devices["a"].is_some() && reads.devices["b"].is_none());
    for f in &fps {
        assert_eq!(reads.blocked.get(f), Some(&s.blocked_key(f).unwrap()));
    }
    assert!(reads.blocked[&fps[0]].is_some() && reads.blocked[&fps[1]].is_none());
}

fn crl_numbers_are_never_reused(b: &Backend) {
    let first = b.open();
    let second = if b.is_shared() {
        b.open()
    } else {
        Arc::clone(&first)
    };
    let first_handle = Arc::clone(&first);
    let stores = [first, second];
    let mut threads = Vec::new();
    for s in stores {
        threads.push(std::thread::spawn(move || {
            (0..20)
                .map(|_| s.next_crl_number("automotive").unwrap())
                .collect::<Vec<u64>>()
        }));
    }
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<u64>>());
    assert_eq!(first_handle.next_crl_number("energy").unwrap(), 1);
}

fn a_model_change_moves_its_devices_in_one_transaction(b: &Backend) {
    let s = b.open();
    let r = s.commit_issuances(&[issuance(1, "m/a", false), issuance(2, "m/b", false)]);
    assert!(r.iter().all(|r| r.is_ok()));
    let before = s.audit_head().unwrap().0;
    let audit = BlobAudit {
        actor: "certification-body:tuv".into(),
        kind: "model.withdrawn".into(),
        subject: "automotive/acme/m1/1.0..1.9".into(),
        detail: "{}".into(),
        at: 9,
    };
    let record = (b"automotive/acme/m1/1.0..1.9".to_vec(), b"v2".to_vec());
    // One device that is not enrolled: neither the record nor any level moves.
    assert!(matches!(
        s.commit_model_change(
            "registry.models",
            std::slice::from_ref(&record),
            &audit,
            &[change("m/a", 2, None), change("m/zz", 2, None)],
        ),
        Err(StoreError::NotEnrolled(_))
    ));
    assert!(s.blob_get("registry.models", &record.0).unwrap().is_none());
    assert_eq!(s.trust_record("m/a").unwrap().unwrap().version, 1);
    assert_eq!(s.audit_head().unwrap().0, before);
    let out = s
        .commit_model_change(
            "registry.models",
            std::slice::from_ref(&record),
            &audit,
            &[change("m/a", 2, None), change("m/b", 2, None)],
        )
        .unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|r| r.level == 2 && r.version == 2));
    assert_eq!(
        s.blob_get("registry.models", &record.0).unwrap().unwrap(),
        b"v2"
    );
    // One entry for the model, one per device, in that order.
    let entries = s.audit_entries(before, 10).unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0].kind, "model.withdrawn");
    assert_eq!(entries[1].subject, "m/a");
    assert_eq!(s.history("m/b").unwrap().len(), 2);
}

#[test]
fn postgres_refuses_a_newer_schema() {
    let Some(Backend::Postgres(url)) = Backend::postgres("newer_schema") else {
        return;
    };
    drop(PgStorage::connect(&url).unwrap());
    trustca_store::postgres_admin::set_schema_version(&url, trustca_store::SCHEMA_VERSION + 1)
        .unwrap();
    let err = PgStorage::connect(&url).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
    assert!(err.to_string().contains("upgrade trustca"), "{err}");
}

#[test]
fn postgres_unreachable_is_a_plain_unavailable_error() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = PgStorage::connect(&format!("postgres://trustca@127.0.0.1:{port}/x")).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(!err.to_string().contains("Error {"), "{err}");
}

#[test]
fn the_cache_sees_its_own_writes_at_once_and_others_within_its_window() {
    let dir = tempfile::tempdir().unwrap();
    let plain: Arc<dyn Storage> = Arc::new(SledStorage::open(dir.path()).unwrap());
    let slow = CachedStorage::new(Arc::clone(&plain), std::time::Duration::from_secs(3600));
    let eager = CachedStorage::new(Arc::clone(&plain), std::time::Duration::ZERO);
    assert!(slow.commit_issuances(&[issuance(1, "a", false)])[0].is_ok());
    // Its own write: seen at once (the cache was cleared).
    assert_eq!(slow.trust_record("a").unwrap().unwrap().version, 1);
    assert_eq!(eager.trust_record("a").unwrap().unwrap().version, 1);
    // Another replica's write: the eager cache checks and sees it; the
    // slow one keeps its copy until its window ends.
    plain
        .apply_trust_changes(&[change("a", 2, None)], 5)
        .unwrap();
    assert_eq!(eager.trust_record("a").unwrap().unwrap().level, 2);
    assert_eq!(slow.trust_record("a").unwrap().unwrap().level, 3);
    // A change through the slow cache itself clears it.
    slow.apply_trust_changes(&[change("a", 1, None)], 6)
        .unwrap();
    assert_eq!(slow.trust_record("a").unwrap().unwrap().level, 1);
    // Negative answers are cached and cleared the same way.
    assert!(slow.device("b").unwrap().is_none());
    assert!(slow.commit_issuances(&[issuance(2, "b", false)])[0].is_ok());
    assert!(slow.device("b").unwrap().is_some());
}

// After `contract!`, whose definition it uses.
mod paging;
