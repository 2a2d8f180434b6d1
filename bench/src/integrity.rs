//! What the integrity checks cost: `trustca store check` (every record
//! against the audit log) and the start-up check (the audit log alone), on
//! a sled store of enrollment-shaped records, beside the ceiling measured
//! in the same run: reading the same tables raw, without decoding or
//! hashing.

use std::time::Instant;

use anyhow::Result;
use trustca_store::{RecordTable, SledStorage, Storage};

use crate::report::Figure;

/// Builds a store of `devices` enrolled devices and times the checks.
pub fn measure(devices: u64) -> Result<Vec<Figure>> {
    let dir = tempfile::tempdir()?;
    let store = SledStorage::open(&dir.path().join("db"))?;
    let mut n = 0;
    while n < devices {
        let batch: Vec<_> = (n..(n + 256).min(devices))
            .map(crate::stores::issuance)
            .collect();
        n += batch.len() as u64;
        for r in store.commit_issuances(&batch) {
            r?;
        }
    }
    store.flush()?;

    // Ceiling: every record read raw, no decoding, no hashing.
    let started = Instant::now();
    let mut raw = 0u64;
    let mut from = 0;
    loop {
        let page = store.audit_entries_raw(from, 4096)?;
        let Some((last, _)) = page.last() else { break };
        from = last + 1;
        raw += page.len() as u64;
    }
    for table in [
        RecordTable::Certificates,
        RecordTable::Devices,
        RecordTable::Trust,
        RecordTable::History,
    ] {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = store.raw_records(table, after.as_deref(), 4096)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            raw += page.len() as u64;
        }
    }
    let raw_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let audit = trustca_store::check_audit_log(&store)?;
    let audit_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let report = trustca_store::check_store(&store, &mut |_, _| {})?;
    let full_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.damaged.is_empty() && audit.damaged.is_empty(),
        "the benchmark store reports damage"
    );
    let per_million = |secs: f64, records: u64| secs * 1e6 / records.max(1) as f64;
    Ok(vec![
        Figure::new(
            "check_full_s_per_million",
            format!(
                "store check: every record ({} records, {devices} devices)",
                report.records()
            ),
            per_million(full_secs, report.records()),
            "s/1M records",
        ),
        Figure::new(
            "check_startup_s_per_million",
            format!("start-up check: the audit log ({} entries)", audit.entries),
            per_million(audit_secs, audit.entries),
            "s/1M entries",
        ),
        Figure::new(
            "check_startup_s",
            format!("start-up check for {devices} devices"),
            audit_secs,
            "s",
        ),
        Figure::new(
            "check_ceiling_raw_read_s_per_million",
            format!("ceiling: the same records read raw ({raw} records)"),
            per_million(raw_secs, raw),
            "s/1M records",
        ),
        Figure::new(
            "check_full_vs_raw_read",
            "store check time / raw read time",
            full_secs / raw_secs.max(1e-9),
            "x",
        ),
    ])
}
