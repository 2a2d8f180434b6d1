//! Sealing a store that a build before record seals wrote (`trustca store
//! seal`): its certificate, device and trust records are their bare
//! postcard encodings, and its audit entries commit to none of them
//! (no `binds`). A sealed read refuses every such record, so the store is
//! unusable until this has run once.
//!
//! The migration needs the CA's record-seal key, i.e. the operator with the
//! passphrase. It first runs the full [`check_store`] — the log must
//! verify and every record agree with it as far as it can tell — so no
//! damage is sealed in. Then, page by page, each table's unsealed records
//! are rewritten sealed to one new audit entry per page
//! ([`SEALED_KIND`]) whose `binds` commits to each record's SHA-256, in one
//! transaction with it. A crash between pages leaves sealed and unsealed
//! records side by side, which the next run finishes; a marker
//! ([`MARKER_KEY`]) says so meanwhile, so a server refuses to start on a
//! half-sealed store.
//!
//! The encodings are sealed as stored, not re-encoded: what the log
//! commits to is exactly what the old build wrote.

use serde::de::DeserializeOwned;
use trustca_model::hexfmt;

use crate::codec::encode_as;
use crate::records::decode;
use crate::seal::{self, RecordSeal, SealTrailer, Sealed};
use crate::{
    AuditEntry, CertificateRecord, DeviceRecord, RecordTable, Storage, StoreError, StoredRecord,
    TrustRecord, check_store,
};

/// The audit event kind of each sealed page.
pub const SEALED_KIND: &str = "store.records-sealed";

/// Opaque-record space and key of the marker: `running` while a migration
/// is under way, `done` once it finished.
const MARKER_SPACE: &str = "store";
const MARKER_KEY: &[u8] = b"records-sealing";

/// What a migration sealed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SealReport {
    /// Certificates sealed.
    pub certificates: u64,
    /// Device records sealed.
    pub devices: u64,
    /// Trust records sealed.
    pub trust_records: u64,
    /// Audit entries appended (one per page).
    pub audit_entries: u64,
}

impl SealReport {
    /// Records sealed, of every kind.
    pub fn records(&self) -> u64 {
        self.certificates + self.devices + self.trust_records
    }
}

/// The record tables that carry seals (history does not).
const TABLES: [(RecordTable, Sealed); 3] = [
    (RecordTable::Certificates, Sealed::Certificate),
    (RecordTable::Devices, Sealed::Device),
    (RecordTable::Trust, Sealed::Trust),
];

/// Whether the whole of `stored` is one encoding of `T`. A record is read
/// from its start and ends where it ends, so a sealed record always leaves
/// its 40-byte trailer over and is never taken for a bare one.
fn bare<T: DeserializeOwned>(stored: &[u8]) -> bool {
    crate::codec::is_exactly::<T>(stored)
}

/// Whether a stored record is in the format of builds before record seals.
pub(crate) fn is_legacy(table: Sealed, stored: &[u8]) -> bool {
    match table {
        Sealed::Certificate => bare::<CertificateRecord>(stored),
        Sealed::Device => bare::<DeviceRecord>(stored),
        Sealed::Trust => bare::<TrustRecord>(stored),
    }
}

/// Whether the store still holds records written before record seals: a
/// migration was started and not finished, or the first record of a
/// sealed table is bare. Cheap (a few reads), for the server's start; a
/// store that fails it is refused with words naming `trustca store seal`
/// rather than served record by record as damage.
pub fn legacy_records_present(storage: &dyn Storage) -> Result<bool, StoreError> {
    if storage.blob_get(MARKER_SPACE, MARKER_KEY)?.as_deref() == Some(b"running") {
        return Ok(true);
    }
    for (table, sealed) in TABLES {
        if let Some((_, v)) = storage.raw_records(table, None, 1)?.first()
            && is_legacy(sealed, v)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Seals every record of `storage` written before record seals (see the
/// module docs), `chunk` records per audit entry and transaction, calling
/// `progress` after each. Nothing is written when the store fails its
/// check. Run it with every server of the store stopped: a write by anyone
/// while it runs aborts it (the log moved), and running it again goes on.
pub fn seal_legacy_records(
    storage: &dyn Storage,
    key: &RecordSeal,
    actor: &str,
    at: i64,
    chunk: usize,
    progress: &mut dyn FnMut(SealReport),
) -> Result<SealReport, StoreError> {
    let check = check_store(storage, &mut |_, _| {})?;
    if let Some(first) = check.damaged.first() {
        return Err(StoreError::Backend(format!(
            "nothing was sealed: the store fails its check ({} problem(s); first: {} {}: {}); run `trustca store check` and restore from a backup",
            check.damaged.len(),
            first.kind,
            first.key,
            first.reason
        )));
    }
    let mut report = SealReport::default();
    if check.unsealed == 0 {
        if storage.blob_get(MARKER_SPACE, MARKER_KEY)?.is_some() {
            mark(storage, b"done")?;
        }
        return Ok(report);
    }
    mark(storage, b"running")?;
    let chunk = chunk.max(1);
    for (table, sealed) in TABLES {
        let mut after: Option<Vec<u8>> = None;
        loop {
            // The log's size before the page is read: the entry takes that
            // number, so a write by anyone after this read aborts the page.
            let (seq, _) = storage.audit_head()?;
            let page = storage.raw_records(table, after.as_deref(), chunk)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let legacy: Vec<_> = page.iter().filter(|(_, v)| is_legacy(sealed, v)).collect();
            if legacy.is_empty() {
                continue;
            }
            let (entry, records) = sealed_page(key, sealed, &legacy, seq, actor, at)?;
            storage.seal_legacy_records(&entry, &records).map_err(|e| match e {
                StoreError::Corrupt { reason, .. } if reason.starts_with("the log continues") => {
                    StoreError::Backend(format!(
                        "the store was written while sealing (is a server or an older trustca still running?); stop every one and run `trustca store seal` again: {reason}"
                    ))
                }
                other => other,
            })?;
            let n = records.len() as u64;
            match sealed {
                Sealed::Certificate => report.certificates += n,
                Sealed::Device => report.devices += n,
                Sealed::Trust => report.trust_records += n,
            }
            report.audit_entries += 1;
            progress(report);
        }
    }
    mark(storage, b"done")?;
    storage.flush()?;
    Ok(report)
}

fn mark(storage: &dyn Storage, state: &[u8]) -> Result<(), StoreError> {
    storage.blob_put(
        MARKER_SPACE,
        &[(MARKER_KEY.to_vec(), state.to_vec())],
        false,
        None,
    )
}

/// One page's audit entry (number `seq`) and its records sealed to it.
fn sealed_page(
    key: &RecordSeal,
    table: Sealed,
    legacy: &[&(Vec<u8>, Vec<u8>)],
    seq: u64,
    actor: &str,
    at: i64,
) -> Result<(AuditEntry, Vec<StoredRecord>), StoreError> {
    let mut binds = Vec::with_capacity(legacy.len());
    let mut records = Vec::with_capacity(legacy.len());
    for (stored_key, body) in legacy {
        let name = seal::seal_key(table, stored_key);
        let trailer = key.trailer(table, &name, body, seq);
        let record = match table {
            Sealed::Certificate => {
                let c: CertificateRecord = checked(stored_key, body, |c: &CertificateRecord| {
                    c.serial == *stored_key
                })?;
                StoredRecord::Certificate(c, trailer)
            }
            Sealed::Device => StoredRecord::Device(
                checked(stored_key, body, |d: &DeviceRecord| {
                    d.identity_key.as_bytes() == stored_key.as_slice()
                })?,
                trailer,
            ),
            Sealed::Trust => StoredRecord::Trust(
                checked(stored_key, body, |r: &TrustRecord| {
                    r.identity_key.as_bytes() == stored_key.as_slice()
                })?,
                trailer,
            ),
        };
        binds.push((table, name, seal::digest(body)));
        records.push(record);
    }
    let detail = format!(
        "{{\"table\":\"{}\",\"records\":{},\"binds\":{}}}",
        table.name(),
        records.len(),
        seal::binds_json(&binds)
    );
    let mut entry = AuditEntry {
        seq,
        at,
        actor: actor.to_owned(),
        kind: SEALED_KIND.to_owned(),
        subject: format!("{} records", table.name()),
        detail,
        leaf_hash: [0; 32],
    };
    entry.leaf_hash = trustca_audit::leaf_hash(&entry.leaf_bytes());
    Ok((entry, records))
}

/// Decodes a bare record that must be stored under its own key and encode
/// back to exactly its stored bytes (the seal covers the bytes the backend
/// writes, which are the record re-encoded).
fn checked<T: DeserializeOwned + serde::Serialize>(
    stored_key: &[u8],
    body: &[u8],
    own_key: impl Fn(&T) -> bool,
) -> Result<T, StoreError> {
    let record: T = decode(stored_key, body)?;
    let name = || hexfmt::encode(stored_key);
    if !own_key(&record) {
        return Err(StoreError::Corrupt {
            key: name(),
            reason: "stored under another key; nothing more was sealed".into(),
        });
    }
    if encode_as(&record, crate::codec::version_of(body))? != body {
        return Err(StoreError::Corrupt {
            key: name(),
            reason: "its encoding is not canonical; nothing more was sealed".into(),
        });
    }
    Ok(record)
}

impl RecordSeal {
    /// The trailer that seals `body` to audit entry `seq`.
    pub(crate) fn trailer(&self, table: Sealed, key: &str, body: &[u8], seq: u64) -> SealTrailer {
        let stored = seal::seal(
            Some(self),
            table,
            key,
            body.to_vec(),
            seal::Stamp::Seal(seq),
        );
        let mut tag = [0; 32];
        tag.copy_from_slice(&stored[stored.len() - 32..]);
        SealTrailer {
            seq,
            tag,
            encoding: crate::codec::version_of(body),
        }
    }
}
