//! Before serving: the start-up integrity check of the audit log, sealing
//! older records, and the refusal of writes on a store opened read-only.

use std::sync::Arc;
use std::time::Duration;

use trustca_ca::CaHierarchy;
use trustca_store::Storage;

use crate::error::{Result, ServerError};
use crate::store::StoreConfig;

/// Second looks the start-up check takes on a shared store (see
/// [`startup_check`]).
pub(crate) const STARTUP_CHECK_RETRIES: usize = 3;

/// The start-up integrity check: the audit log is recomputed from its
/// entries and compared with the stored frontier and the kept tree heads.
/// A store that fails it is refused, or with `allow_damaged` served
/// read-only for recovery.
pub(crate) fn startup_check(
    guarded: &trustca_store::GuardedStorage,
    store: &StoreConfig,
    allow_damaged: bool,
) -> Result<bool> {
    let started = std::time::Instant::now();
    // A log that cannot be read at all (damaged pages, files cut short)
    // is damage like any other: refused, or read-only on request.
    let check = |g: &trustca_store::GuardedStorage| {
        trustca_store::check_audit_log(g).unwrap_or_else(|e| trustca_store::AuditCheck {
            damaged: vec![trustca_store::Damage {
                kind: "store",
                key: "audit log".into(),
                reason: format!("cannot be read: {e}"),
            }],
            ..Default::default()
        })
    };
    let mut report = check(guarded);
    // On a shared PostgreSQL store another replica may append between the
    // check's read of the frontier and its read of the entries (they are
    // not one snapshot), e.g. two replicas starting at once: a mismatch
    // that is gone on a second look was that race; real damage stays.
    if matches!(store, StoreConfig::Postgres(_)) {
        for _ in 0..STARTUP_CHECK_RETRIES {
            if report.damaged.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
            report = check(guarded);
        }
    }
    tracing::info!(
        entries = report.entries,
        tree_heads = report.tree_heads,
        damaged = report.damaged.len(),
        ms = started.elapsed().as_millis() as u64,
        "start-up check of the audit log"
    );
    let Some(first) = report.damaged.first() else {
        return Ok(false);
    };
    let summary = format!(
        "the store {}'s audit log does not verify ({} problem(s); first: {} {}: {})",
        store.describe(),
        report.damaged.len(),
        first.kind,
        first.key,
        first.reason
    );
    if !allow_damaged {
        return Err(ServerError::DamagedStore(format!(
            "{summary}; run `trustca store check --store {}` to see every damaged record, restore from a backup, or start with --allow-damaged-store to serve reads only",
            store.describe()
        )));
    }
    tracing::error!(%summary, "serving the damaged store read-only (--allow-damaged-store): every write is refused");
    guarded
        .set_read_only("the store failed its integrity check; started with --allow-damaged-store");
    Ok(true)
}

/// Seals the store's certificate, device and trust records under the CA's record-seal
/// key and learns from the (checked) audit log which version of each it
/// must serve (`trustca_store::RecordSeal`). A directory an older `init`
/// made has no such key: its records are served unchecked, with a warning.
pub(crate) fn seal_records(
    storage: &dyn Storage,
    hierarchy: &CaHierarchy,
    read_only: bool,
) -> Result<()> {
    let Some(key) = hierarchy.record_seal_key()? else {
        tracing::warn!(
            "ca/record-seal.key is missing (the CA directory predates record seals): certificate, device and trust records are served without checking them against the audit log; run `trustca init` on this directory and copy ca/ to every replica"
        );
        return Ok(());
    };
    let started = std::time::Instant::now();
    let seal = trustca_store::RecordSeal::new(&key);
    let records = match seal.learn_floors(storage) {
        Ok(n) => n,
        // A damaged store served read-only: seals are still checked.
        Err(e) if read_only => {
            tracing::warn!(error = %e, "the audit log cannot be read: deleted or rolled-back records are not recognised");
            0
        }
        Err(e) => return Err(e.into()),
    };
    let floor_bytes = seal.floor_bytes();
    storage.set_record_seal(Arc::new(seal));
    tracing::info!(
        records,
        floor_bytes,
        ms = started.elapsed().as_millis() as u64,
        "certificate, device and trust records sealed to the audit log"
    );
    Ok(())
}

/// A start-up step that writes: on a store served read-only it is skipped
/// with a warning instead of stopping the start.
pub(crate) fn unless_read_only<T, E: Into<ServerError>>(
    read_only: bool,
    what: &str,
    result: std::result::Result<T, E>,
) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if read_only => {
            let e: ServerError = e.into();
            tracing::warn!(step = what, error = %e, "skipped on the read-only store");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
