//! What the two embedded backends (sled and fjall) share: the layout of
//! their keys and `meta` records, and the walks over their key-ordered
//! tables (a whole-store export, paged scans under a prefix).
//!
//! Both keep one table per record kind with the same keys and values, so
//! a store copied raw from one engine to the other reads the same, and the
//! code that turns stored bytes into records is written once here; each
//! backend only says how to walk one of its tables ([`OrderedTables`]).

use std::ops::Bound;

use crate::records::decode;
use crate::seal::{self, RecordSeal, Sealed};
use crate::{DeviceRecord, KeyValue, StoreError, StoredRecord};

/// The `meta` record holding the audit log's Merkle frontier.
pub(crate) const AUDIT_FRONTIER: &[u8] = b"audit.frontier";
/// The `meta` record counting certificates (8 bytes, big-endian).
pub(crate) const COUNT_CERTS: &[u8] = b"count.certificates";
/// The `meta` record counting devices (8 bytes, big-endian).
pub(crate) const COUNT_DEVICES: &[u8] = b"count.devices";
/// Where the `meta` records of the sectors' last CRL numbers start.
pub(crate) const CRL_NUMBER_PREFIX: &str = "crl.number.";

/// Where the next opened store's change markers start: each store (and
/// each reopening of one, of either engine) gets its own range of 2^40
/// numbers, so a marker read from a store before it was reopened never
/// matches one after.
static MARKER_BASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 40);

/// The first change marker of a store being opened.
pub(crate) fn first_marker() -> u64 {
    MARKER_BASE.fetch_add(1 << 40, std::sync::atomic::Ordering::Relaxed)
}

/// The `meta` key of a sector's last CRL number.
pub(crate) fn crl_number_key(sector: &str) -> String {
    format!("{CRL_NUMBER_PREFIX}{sector}")
}

/// An opaque record's key: the space, a zero byte, the key.
pub(crate) fn blob_key(space: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(space.len() + 1 + key.len());
    k.extend_from_slice(space.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

/// A history entry's key: the identity key, a zero byte, the version
/// (8 bytes, big-endian), so an identity's entries are in version order.
pub(crate) fn history_key(identity_key: &str, version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(identity_key.len() + 9);
    k.extend_from_slice(identity_key.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

/// A CRL index entry: key sector, 0, serial; value the unix time
/// (8 bytes, big-endian) and the reason code.
pub(crate) fn revoked_entry(sector: &str, serial: &[u8], at: i64, reason: u8) -> KeyValue {
    let mut key = sector.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(serial);
    let mut value = at.to_be_bytes().to_vec();
    value.push(reason);
    (key, value)
}

/// An 8-byte big-endian number as stored in `meta` and in tree head keys.
pub(crate) fn be_u64(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    bytes
        .try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            key: what.into(),
            reason: "not an 8-byte number".into(),
        })
}

/// A counter in `meta` (absent: 0).
pub(crate) fn counter_value(stored: Option<&[u8]>) -> u64 {
    stored.map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap_or([0; 8])))
}

/// The audit log's frontier as stored in `meta` (absent: an empty log).
pub(crate) fn frontier(stored: Option<&[u8]>) -> Result<trustca_audit::MerkleFrontier, StoreError> {
    match stored {
        Some(v) => trustca_audit::MerkleFrontier::from_bytes(v).map_err(|e| StoreError::Corrupt {
            key: "audit.frontier".into(),
            reason: e.to_string(),
        }),
        None => Ok(trustca_audit::MerkleFrontier::new()),
    }
}

/// The expiry a stored attestation challenge starts with.
pub(crate) fn challenge_expiry(v: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

/// A stored attestation challenge: its record and expiry.
pub(crate) fn challenge_record(v: &[u8]) -> Result<(Vec<u8>, i64), StoreError> {
    let at = challenge_expiry(v).ok_or_else(|| StoreError::Corrupt {
        key: "attestation_challenges".into(),
        reason: "a challenge record shorter than its expiry".into(),
    })?;
    Ok((v[8..].to_vec(), at))
}

/// The embedded engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    Sled,
    Fjall,
}

impl Engine {
    /// A file only this engine keeps at the top of its directory.
    fn marker(self) -> &'static str {
        match self {
            Engine::Sled => "conf",
            Engine::Fjall => "version",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Engine::Sled => "sled",
            Engine::Fjall => "fjall",
        }
    }
}

/// Refuses to open `dir` with `engine` when the other engine's store is
/// there: each would otherwise write its own files beside the other's
/// and serve an empty store (a `--store` given without, or with a
/// stray, `fjall:`).
pub(crate) fn refuse_other_engine(dir: &std::path::Path, engine: Engine) -> Result<(), StoreError> {
    let other = match engine {
        Engine::Sled => Engine::Fjall,
        Engine::Fjall => Engine::Sled,
    };
    if dir.join(other.marker()).exists() && !dir.join(engine.marker()).exists() {
        let hint = match other {
            Engine::Fjall => "give it as fjall:DIR",
            Engine::Sled => "give it without fjall:",
        };
        return Err(StoreError::Backend(format!(
            "{} holds a {} store, not a {} one ({hint})",
            dir.display(),
            other.name(),
            engine.name()
        )));
    }
    Ok(())
}

/// The tables of an embedded store, by what they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Certificates,
    Devices,
    Trust,
    History,
    Audit,
    TreeHeads,
    Revoked,
    BlockedKeys,
    Blobs,
    Meta,
}

/// Stored records in key order.
pub(crate) type Records<'a> = Box<dyn Iterator<Item = Result<KeyValue, StoreError>> + 'a>;

/// An embedded store's tables, walked in key order.
pub(crate) trait OrderedTables {
    /// The records of `table` from `start` on, in key order.
    fn records(&self, table: Table, start: Bound<Vec<u8>>) -> Records<'_>;
    /// The seal records are checked against, once set.
    fn record_seal(&self) -> Option<&RecordSeal>;
}

/// The records of `table` whose key starts with `prefix`, in key order.
pub(crate) fn with_prefix<'a>(
    t: &'a dyn OrderedTables,
    table: Table,
    prefix: &'a [u8],
) -> Records<'a> {
    page_after(t, table, prefix, None, usize::MAX)
}

/// Up to `limit` records of `table` under `prefix` whose key comes after
/// `after` (a whole key, prefix included; from the first when `None`), in
/// key order.
pub(crate) fn page_after<'a>(
    t: &'a dyn OrderedTables,
    table: Table,
    prefix: &'a [u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Records<'a> {
    let start = match after {
        Some(a) if a >= prefix => Bound::Excluded(a.to_vec()),
        _ => Bound::Included(prefix.to_vec()),
    };
    Box::new(
        t.records(table, start)
            .take_while(move |kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .take(limit),
    )
}

/// Up to `limit` device records under `prefix` after the identity key
/// `after`, in key order, each checked against its seal.
pub(crate) fn devices_page(
    t: &dyn OrderedTables,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<DeviceRecord>, StoreError> {
    let s = t.record_seal();
    page_after(
        t,
        Table::Devices,
        prefix.as_bytes(),
        after.map(str::as_bytes),
        limit,
    )
    .map(|kv| {
        let (k, v) = kv?;
        Ok(seal::decode_sealed(s, Sealed::Device, &k, &v)?.0)
    })
    .collect()
}

/// Up to `limit` entries of a sector's CRL index after the serial
/// `after`: (serial, unix time, reason code), not yet vouched for.
pub(crate) fn revoked_page(
    t: &dyn OrderedTables,
    sector: &str,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
    let mut prefix = sector.as_bytes().to_vec();
    prefix.push(0);
    let after_key = after.map(|a| [prefix.as_slice(), a].concat());
    page_after(t, Table::Revoked, &prefix, after_key.as_deref(), limit)
        .map(|kv| {
            let (k, v) = kv?;
            let (_, serial, at, reason) = revoked_from(&k, &v)?;
            Ok((serial.to_vec(), at, reason))
        })
        .collect()
}

/// Up to `limit` opaque records of `space` under `prefix` after the key
/// `after`, opened (their seals checked), not yet vouched for.
pub(crate) fn blob_page(
    t: &dyn OrderedTables,
    space: &str,
    prefix: &[u8],
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<KeyValue>, StoreError> {
    let skip = space.len() + 1;
    let full = blob_key(space, prefix);
    let after_key = after.map(|a| blob_key(space, a));
    page_after(t, Table::Blobs, &full, after_key.as_deref(), limit)
        .map(|kv| {
            let (k, v) = kv?;
            let key = k[skip..].to_vec();
            let value = seal::open_blob(t.record_seal(), space, &key, v)?;
            Ok((key, value))
        })
        .collect()
}

/// Up to `limit` records of `table` from `from` (an 8-byte big-endian
/// number: audit indexes, tree head sizes) on, with their numbers.
pub(crate) fn numbered_page(
    t: &dyn OrderedTables,
    table: Table,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    t.records(table, Bound::Included(from.to_be_bytes().to_vec()))
        .take(limit)
        .map(|kv| {
            let (k, v) = kv?;
            Ok((be_u64(&k, "record number")?, v))
        })
        .collect()
}

/// Up to `limit` stored records of `table` after the key `after`, as
/// stored bytes (see `Storage::raw_records`).
pub(crate) fn raw_page(
    t: &dyn OrderedTables,
    table: crate::RecordTable,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<KeyValue>, StoreError> {
    let table = match table {
        crate::RecordTable::Certificates => Table::Certificates,
        crate::RecordTable::Devices => Table::Devices,
        crate::RecordTable::Trust => Table::Trust,
        crate::RecordTable::History => Table::History,
    };
    let start = match after {
        Some(k) => Bound::Excluded(k.to_vec()),
        None => Bound::Unbounded,
    };
    t.records(table, start).take(limit).collect()
}

/// A CRL index entry as stored: sector, serial, unix time, reason code.
fn revoked_from<'k>(k: &'k [u8], v: &[u8]) -> Result<(&'k str, &'k [u8], i64, u8), StoreError> {
    let corrupt = || StoreError::Corrupt {
        key: "revoked".into(),
        reason: "bad key or value".into(),
    };
    let split = k.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
    let sector = std::str::from_utf8(&k[..split]).map_err(|_| corrupt())?;
    if v.len() != 9 {
        return Err(corrupt());
    }
    let at = i64::from_be_bytes(v[..8].try_into().map_err(|_| corrupt())?);
    Ok((sector, &k[split + 1..], at, v[8]))
}

/// A key made of a text, a zero byte and the rest (blob and CRL keys).
fn split_text_key<'k>(k: &'k [u8], what: &str) -> Result<(&'k str, &'k [u8]), StoreError> {
    let corrupt = || StoreError::Corrupt {
        key: what.into(),
        reason: "key is not name, 0, key".into(),
    };
    let split = k.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
    let text = std::str::from_utf8(&k[..split]).map_err(|_| corrupt())?;
    Ok((text, &k[split + 1..]))
}

/// Hands every stored record of `t` to `each` (see `Storage::export`),
/// audit entries in sequence order, the counters last.
pub(crate) fn export(
    t: &dyn OrderedTables,
    counts: (u64, u64),
    each: &mut dyn FnMut(StoredRecord) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let s = t.record_seal();
    let all = |table| t.records(table, Bound::Unbounded);
    for kv in all(Table::Certificates) {
        let (k, v) = kv?;
        let (record, seal) = seal::decode_sealed(s, Sealed::Certificate, &k, &v)?;
        each(StoredRecord::Certificate(record, seal))?;
    }
    for kv in all(Table::Devices) {
        let (k, v) = kv?;
        let (record, seq) = seal::decode_sealed(s, Sealed::Device, &k, &v)?;
        each(StoredRecord::Device(record, seq))?;
    }
    for kv in all(Table::Trust) {
        let (k, v) = kv?;
        let (record, seq) = seal::decode_sealed(s, Sealed::Trust, &k, &v)?;
        each(StoredRecord::Trust(record, seq))?;
    }
    for kv in all(Table::History) {
        let (k, v) = kv?;
        let identity = k
            .len()
            .checked_sub(9)
            .and_then(|n| std::str::from_utf8(&k[..n]).ok())
            .ok_or_else(|| StoreError::Corrupt {
                key: "history".into(),
                reason: "key is not identity, 0, version".into(),
            })?;
        each(StoredRecord::History(identity.to_owned(), decode(&k, &v)?))?;
    }
    for kv in all(Table::Audit) {
        let (k, v) = kv?;
        each(StoredRecord::Audit(decode(&k, &v)?))?;
    }
    for kv in all(Table::TreeHeads) {
        let (k, v) = kv?;
        each(StoredRecord::TreeHead(be_u64(&k, "tree head")?, v))?;
    }
    for kv in all(Table::Revoked) {
        let (k, v) = kv?;
        let (sector, serial, at, reason) = revoked_from(&k, &v)?;
        each(StoredRecord::Revoked(
            sector.to_owned(),
            serial.to_vec(),
            at,
            reason,
        ))?;
    }
    for kv in all(Table::BlockedKeys) {
        let (k, v) = kv?;
        let fp: [u8; 32] = k.as_slice().try_into().map_err(|_| StoreError::Corrupt {
            key: "blocked key".into(),
            reason: "key is not a SHA-256".into(),
        })?;
        each(StoredRecord::BlockedKey(fp, decode(&k, &v)?))?;
    }
    for kv in all(Table::Blobs) {
        let (k, v) = kv?;
        let (space, key) = split_text_key(&k, "blob")?;
        each(StoredRecord::Blob(space.to_owned(), key.to_vec(), v))?;
    }
    for kv in with_prefix(t, Table::Meta, CRL_NUMBER_PREFIX.as_bytes()) {
        let (k, v) = kv?;
        let sector = String::from_utf8_lossy(&k[CRL_NUMBER_PREFIX.len()..]).into_owned();
        each(StoredRecord::CrlNumber(sector, be_u64(&v, "crl number")?))?;
    }
    each(StoredRecord::Counts(counts.0, counts.1))
}
