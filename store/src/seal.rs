//! Seals that bind every served certificate, device and trust record to the
//! audit log, so that whoever can write the database but not the CA's keys
//! (a database administrator, a stolen disk, a backup restored by hand)
//! cannot make trustca serve — and sign — a record it did not write.
//!
//! Each stored record of these tables is its postcard encoding followed by
//! a trailer: the sequence number of the audit entry that last wrote it
//! (8 bytes, big-endian) and an HMAC-SHA256 tag (32 bytes) over the table,
//! the key, the encoding and that number, under a key the database never
//! sees (kept in the CA's encrypted keystore, see `trustca-ca`). That audit
//! entry commits to the SHA-256 of the encoding (its `binds` member), so
//! `store check` can replay the log and compare every record's whole state
//! without the key.
//!
//! Reads check, with the key ([`RecordSeal`]):
//! - the tag, which catches a changed byte and a record moved to another
//!   key (another device's record);
//! - the sequence number against the newest entry the log held for the
//!   record when the server started (its floor), which catches an older,
//!   correctly sealed version restored and a record deleted.
//!
//! A failed check is [`StoreError::Corrupt`] naming the record: `DATA_LOSS`
//! to callers, never an answer.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use trustca_model::hexfmt;

use crate::StoreError;
use crate::vouched::LogIndex;

/// Bytes after the encoding: sequence number and tag.
pub(crate) const TRAILER: usize = 8 + 32;

/// The record tables that carry seals (history, revocation index, blobs
/// and the rest do not; see `docs/operations.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Sealed {
    /// Certificate records (serial, hex).
    Certificate,
    /// Device records (identity key).
    Device,
    /// Live trust records (identity key).
    Trust,
}

impl Sealed {
    /// The name used in tags, audit commitments and messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Sealed::Certificate => "certificate",
            Sealed::Device => "device",
            Sealed::Trust => "trust",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "certificate" => Some(Sealed::Certificate),
            "device" => Some(Sealed::Device),
            "trust" => Some(Sealed::Trust),
            _ => None,
        }
    }
}

/// The sealing key and, once learned from the log, each record's floor.
pub struct RecordSeal {
    key: ring::hmac::Key,
    /// What the log vouches for, as far as it has been read (floors,
    /// revocations, blocked keys; `vouched.rs`).
    learned: RwLock<LogIndex>,
    /// When the log was last read to its end; held while reading, so
    /// readers of the log never race each other.
    caught_up: Mutex<Option<Instant>>,
    /// Opaque record spaces whose every record carries a seal.
    sealed_spaces: Vec<String>,
}

impl std::fmt::Debug for RecordSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSeal").finish_non_exhaustive()
    }
}

impl RecordSeal {
    /// A seal under `key` (32 secret bytes the database never holds).
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            learned: RwLock::new(LogIndex::default()),
            caught_up: Mutex::new(None),
            sealed_spaces: Vec::new(),
        }
    }

    /// Also seals every opaque record of `spaces`: each is stored with a
    /// tag over space, key and content (bound to no audit entry), so one
    /// changed, or moved from another key, is refused when read. For
    /// records whose log must stay coarse (the V2X authorities' stores,
    /// where an entry naming each record would tie a vehicle's records
    /// together), so a deleted record or an older copy restored is not
    /// caught this way.
    pub fn sealing_spaces(mut self, spaces: &[&str]) -> Self {
        self.sealed_spaces = spaces.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    fn seals_space(&self, space: &str) -> bool {
        self.sealed_spaces.iter().any(|s| s == space)
    }

    /// Reads the whole audit log and remembers, for every record it wrote,
    /// the newest entry that did: a read of an older version, or no record
    /// at all, is then refused. Returns how many records the log vouches
    /// for. Run once at start, after the log itself was checked.
    pub fn learn_floors(&self, storage: &dyn crate::Storage) -> Result<usize, StoreError> {
        if let Ok(mut l) = self.learned.write() {
            *l = LogIndex::default();
        }
        self.catch_up(storage)?;
        if let Ok(mut l) = self.learned.write() {
            l.settle();
        }
        Ok(self.with_learned(LogIndex::records))
    }

    /// Bytes of memory the floors learned so far take (16 a record; the
    /// one part of the seal that grows with the store).
    pub fn floor_bytes(&self) -> usize {
        self.with_learned(LogIndex::floor_bytes)
    }

    /// Reads the entries appended to the log since it was last read (by
    /// this server or, on a shared database, another replica).
    pub fn catch_up(&self, storage: &dyn crate::Storage) -> Result<(), StoreError> {
        let caught_up = self
            .caught_up
            .lock()
            .map_err(|_| StoreError::Backend("record seal lock poisoned".into()))?;
        self.catch_up_holding(storage, caught_up)
    }

    /// Reads the log's new entries while holding the catch-up lock.
    fn catch_up_holding(
        &self,
        storage: &dyn crate::Storage,
        mut caught_up: std::sync::MutexGuard<'_, Option<Instant>>,
    ) -> Result<(), StoreError> {
        let mut from = self.with_learned(|l| l.next_seq);
        loop {
            let page = storage.audit_entries(from, 4096)?;
            let Some(last) = page.last() else { break };
            from = last.seq + 1;
            if let Ok(mut l) = self.learned.write() {
                for entry in &page {
                    l.learn(entry);
                }
            }
        }
        *caught_up = Some(Instant::now());
        Ok(())
    }

    /// [`RecordSeal::catch_up`] unless the log was read to its end less
    /// than `age` ago.
    pub(crate) fn catch_up_within(
        &self,
        storage: &dyn crate::Storage,
        age: Duration,
    ) -> Result<(), StoreError> {
        // Readers that find another one reading the log wait for it and
        // take its reading when it is fresh enough, rather than each
        // reading the log again after it (a queue of round trips, once a
        // second, on a busy replica).
        let caught_up = self
            .caught_up
            .lock()
            .map_err(|_| StoreError::Backend("record seal lock poisoned".into()))?;
        if caught_up.is_some_and(|t| t.elapsed() < age) {
            return Ok(());
        }
        self.catch_up_holding(storage, caught_up)
    }

    /// Runs `f` on what the log vouches for, as read so far.
    pub(crate) fn with_learned<R>(&self, f: impl FnOnce(&LogIndex) -> R) -> R {
        match self.learned.read() {
            Ok(l) => f(&l),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn tag(&self, table: &str, key: &str, body: &[u8], seq: u64) -> ring::hmac::Tag {
        ring::hmac::sign(&self.key, &message(table, key, body, seq))
    }

    /// Whether `tag` seals this content (compared in constant time).
    fn verify(&self, table: &str, key: &str, body: &[u8], seq: u64, tag: &[u8]) -> bool {
        ring::hmac::verify(&self.key, &message(table, key, body, seq), tag).is_ok()
    }

    fn floor(&self, table: Sealed, key: &str) -> Option<u64> {
        self.with_learned(|l| l.floor(table, key))
    }
}

/// What a tag covers: a domain tag, then table, key, encoding and
/// sequence number, each length-prefixed where it varies.
fn message(table: &str, key: &str, body: &[u8], seq: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(48 + key.len() + body.len());
    m.extend_from_slice(b"trustca-record-seal-v1\0");
    m.extend_from_slice(table.as_bytes());
    m.extend_from_slice(&(key.len() as u64).to_be_bytes());
    m.extend_from_slice(key.as_bytes());
    m.extend_from_slice(&(body.len() as u64).to_be_bytes());
    m.extend_from_slice(body);
    m.extend_from_slice(&seq.to_be_bytes());
    m
}

/// A record's seal as stored: the audit entry it is bound to and the tag.
/// Copies between stores carry it unchanged (the key is the CA's, not the
/// store's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealTrailer {
    /// Sequence number of the audit entry that wrote the record.
    pub seq: u64,
    /// HMAC-SHA256 tag (zeros when written without a key).
    pub tag: [u8; 32],
    /// The encoding version of the record it seals (`codec.rs`; read from
    /// the record, not stored): a copy is written in the same version, so
    /// its bytes, its tag and the audit log's digest of it still agree.
    pub encoding: u8,
}

/// How a record being written is sealed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stamp {
    /// Written by audit entry `seq`: sealed now.
    Seal(u64),
    /// Copied from another store with its seal.
    Copy(SealTrailer),
}

/// `body` with its trailer: the sequence number and the tag (zeros without
/// a seal, for offline tools and tests that hold no key; a sealed read
/// refuses them).
pub(crate) fn seal(
    seal: Option<&RecordSeal>,
    table: Sealed,
    key: &str,
    mut body: Vec<u8>,
    stamp: Stamp,
) -> Vec<u8> {
    let trailer = match stamp {
        Stamp::Copy(t) => t,
        Stamp::Seal(seq) => SealTrailer {
            seq,
            encoding: crate::codec::version_of(&body),
            tag: seal.map_or([0; 32], |s| {
                let mut tag = [0; 32];
                tag.copy_from_slice(s.tag(table.name(), key, &body, seq).as_ref());
                tag
            }),
        },
    };
    body.extend_from_slice(&trailer.seq.to_be_bytes());
    body.extend_from_slice(&trailer.tag);
    body
}

/// Splits a stored record into its encoding and sequence number, without
/// checking the tag (for `store check`, which compares with the log).
pub(crate) fn split(stored: &[u8]) -> Option<(&[u8], u64)> {
    let at = stored.len().checked_sub(TRAILER)?;
    let (body, trailer) = stored.split_at(at);
    let seq = u64::from_be_bytes(trailer[..8].try_into().ok()?);
    Some((body, seq))
}

fn refused(table: Sealed, key: &str, reason: String) -> StoreError {
    StoreError::Corrupt {
        key: format!("{} {key}", table.name()),
        reason,
    }
}

/// Checks a stored record read for serving and returns its encoding and
/// sequence number.
pub(crate) fn open<'a>(
    s: Option<&RecordSeal>,
    table: Sealed,
    key: &str,
    stored: &'a [u8],
) -> Result<(&'a [u8], u64), StoreError> {
    let Some((body, seq)) = split(stored) else {
        return Err(refused(table, key, "too short to carry its seal".into()));
    };
    let Some(s) = s else { return Ok((body, seq)) };
    let tag = &stored[stored.len() - 32..];
    if !s.verify(table.name(), key, body, seq, tag) {
        return Err(refused(
            table,
            key,
            "its seal does not verify: it was changed, or moved from another record, outside trustca".into(),
        ));
    }
    if let Some(floor) = s.floor(table, key)
        && seq < floor
    {
        return Err(refused(
            table,
            key,
            format!(
                "it is the version written by audit entry {seq}, but entry {floor} wrote a newer one: an older copy was restored"
            ),
        ));
    }
    Ok((body, seq))
}

/// Checks that a record the store does not have was never written.
pub(crate) fn absent(s: Option<&RecordSeal>, table: Sealed, key: &str) -> Result<(), StoreError> {
    match s.and_then(|s| s.floor(table, key)) {
        Some(floor) => Err(refused(
            table,
            key,
            format!("it is missing, but audit entry {floor} wrote it: it was deleted"),
        )),
        None => Ok(()),
    }
}

/// The table name in an opaque record's tag (no audit entry binds one:
/// its sequence number is always 0).
const BLOB_TABLE: &str = "blob";

/// What an opaque record's tag names it by.
fn blob_name(space: &str, key: &[u8]) -> String {
    format!("{space}/{}", hexfmt::encode(key))
}

/// An opaque record as stored: sealed when its space is sealed.
pub(crate) fn seal_blob(s: Option<&RecordSeal>, space: &str, key: &[u8], value: &[u8]) -> Vec<u8> {
    let Some(s) = s.filter(|s| s.seals_space(space)) else {
        return value.to_vec();
    };
    let tag = s.tag(BLOB_TABLE, &blob_name(space, key), value, 0);
    let mut out = Vec::with_capacity(value.len() + TRAILER);
    out.extend_from_slice(value);
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(tag.as_ref());
    out
}

/// An opaque record's content, its seal checked when its space is sealed.
pub(crate) fn open_blob(
    s: Option<&RecordSeal>,
    space: &str,
    key: &[u8],
    mut stored: Vec<u8>,
) -> Result<Vec<u8>, StoreError> {
    let Some(s) = s.filter(|s| s.seals_space(space)) else {
        return Ok(stored);
    };
    if !blob_verifies(s, space, key, &stored) {
        return Err(StoreError::Corrupt {
            key: format!("{space} {}", hexfmt::encode(key)),
            reason: "its seal does not verify: it was changed, or moved from another record, outside trustca".into(),
        });
    }
    stored.truncate(stored.len() - TRAILER);
    Ok(stored)
}

/// The audit subject of the entry that started sealing a space.
pub(crate) fn space_sealed_subject(space: &str) -> String {
    format!("{space} records")
}

/// Reads the log ([`RecordSeal::learn_floors`]) and hands `seal` to
/// `storage` (which must not have one yet). A sealed space that no entry
/// says was sealed before is sealed now: its records, written by a build
/// before such seals, are rewritten sealed under one audit entry with
/// their count (written also when there are none, so a record slipped in
/// later is never taken for an old one). Returns how many were sealed.
pub fn install_record_seal(
    storage: &dyn crate::Storage,
    seal: std::sync::Arc<RecordSeal>,
    actor: &str,
    at: i64,
) -> Result<u64, StoreError> {
    seal.learn_floors(storage)?;
    let mut bare: Vec<(String, Vec<crate::KeyValue>)> = Vec::new();
    for space in &seal.sealed_spaces {
        if seal.with_learned(|l| l.space_sealed(space)) {
            continue;
        }
        // Whole: this one-off migration rewrites a legacy space's bare
        // records in one audited commit, so it holds them all anyway.
        let records: Vec<_> = storage
            .blob_scan(space, b"")?
            .into_iter()
            .filter(|(k, v)| !blob_verifies(&seal, space, k, v))
            .collect();
        bare.push((space.clone(), records));
    }
    storage.set_record_seal(seal);
    let mut sealed = 0;
    for (space, records) in bare {
        let audit = crate::BlobAudit {
            actor: actor.to_owned(),
            kind: crate::SEALED_KIND.to_owned(),
            subject: space_sealed_subject(&space),
            detail: format!("{{\"records\":{}}}", records.len()),
            at,
        };
        storage.blob_put(&space, &records, false, Some(&audit))?;
        sealed += records.len() as u64;
    }
    Ok(sealed)
}

/// Whether a stored opaque record of a sealed space verifies.
pub(crate) fn blob_verifies(s: &RecordSeal, space: &str, key: &[u8], stored: &[u8]) -> bool {
    let Some((body, seq)) = split(stored) else {
        return false;
    };
    seq == 0
        && s.verify(
            BLOB_TABLE,
            &blob_name(space, key),
            body,
            0,
            &stored[stored.len() - 32..],
        )
}

/// The key a record is sealed under: the identity key as stored, a
/// certificate's serial as hex.
pub(crate) fn seal_key(table: Sealed, stored_key: &[u8]) -> String {
    match table {
        Sealed::Certificate => hexfmt::encode(stored_key),
        Sealed::Device | Sealed::Trust => String::from_utf8_lossy(stored_key).into_owned(),
    }
}

/// Checks and decodes a stored record (`None`: there is none), its key as
/// stored.
pub(crate) fn sealed_value<T: serde::de::DeserializeOwned>(
    stored: Option<&[u8]>,
    s: Option<&RecordSeal>,
    table: Sealed,
    stored_key: &[u8],
) -> Result<Option<T>, StoreError> {
    match stored {
        Some(v) => Ok(Some(decode_sealed(s, table, stored_key, v)?.0)),
        None => absent(s, table, &seal_key(table, stored_key)).map(|()| None),
    }
}

/// Checks and decodes a whole stored record with its seal, the key given
/// as stored bytes (exports and scans).
pub(crate) fn decode_sealed<T: serde::de::DeserializeOwned>(
    s: Option<&RecordSeal>,
    table: Sealed,
    key: &[u8],
    stored: &[u8],
) -> Result<(T, SealTrailer), StoreError> {
    let key = seal_key(table, key);
    let (body, seq) = open(s, table, &key, stored)?;
    let mut tag = [0; 32];
    tag.copy_from_slice(&stored[stored.len() - 32..]);
    let record = crate::records::decode(key.as_bytes(), body)?;
    let encoding = crate::codec::version_of(body);
    Ok((record, SealTrailer { seq, tag, encoding }))
}

/// The stored bytes of `record` written as `stamp` says: encoded in the
/// current version and sealed now, or, for a copy, in the version its seal
/// was made over.
pub(crate) fn sealed_record<T: serde::Serialize>(
    s: Option<&RecordSeal>,
    table: Sealed,
    key: &str,
    record: &T,
    stamp: Stamp,
) -> Result<(Vec<u8>, [u8; 32]), StoreError> {
    let body = match stamp {
        Stamp::Copy(t) => crate::codec::encode_as(record, t.encoding)?,
        Stamp::Seal(_) => crate::codec::encode(record)?,
    };
    // Digested here, from the bytes stored: the audit entry's `binds`
    // commits to them without encoding the record a second time.
    let body_digest = digest(&body);
    Ok((seal(s, table, key, body, stamp), body_digest))
}

/// SHA-256 of a record's encoding: what an audit entry commits to.
pub(crate) fn digest(body: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, body);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The `binds` member's value for records written by one entry:
/// `[["trust","<key>","<sha256 hex>"], …]`.
pub(crate) fn binds_json(records: &[(Sealed, String, [u8; 32])]) -> String {
    let items: Vec<String> = records
        .iter()
        .map(|(t, k, d)| {
            format!(
                "[\"{}\",{},\"{}\"]",
                t.name(),
                crate::rules::json_str(k),
                hexfmt::encode(d)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// The records an audit entry's detail says it wrote, with their digests.
/// Details without `binds` (entries that wrote no device or trust record,
/// and logs older than seals) name none.
pub(crate) fn bindings(detail: &str) -> Vec<(Sealed, String, [u8; 32])> {
    if !detail.contains("\"binds\":") {
        return Vec::new();
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        #[serde(default)]
        binds: Vec<(String, String, String)>,
    }
    let Ok(d) = serde_json::from_str::<Detail>(detail) else {
        return Vec::new();
    };
    d.binds
        .into_iter()
        .filter_map(|(t, k, h)| {
            let table = Sealed::from_name(&t)?;
            let digest: [u8; 32] = hexfmt::decode(&h)?.try_into().ok()?;
            Some((table, k, digest))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_binds_table_key_body_and_sequence() {
        let s = RecordSeal::new(&[7; 32]);
        let stored = seal(
            Some(&s),
            Sealed::Trust,
            "a",
            b"body".to_vec(),
            Stamp::Seal(5),
        );
        assert_eq!(
            open(Some(&s), Sealed::Trust, "a", &stored).unwrap(),
            (&b"body"[..], 5)
        );
        // Another key, another table, a changed byte, another seal key.
        assert!(open(Some(&s), Sealed::Trust, "b", &stored).is_err());
        assert!(open(Some(&s), Sealed::Device, "a", &stored).is_err());
        let mut changed = stored.clone();
        changed[0] ^= 1;
        assert!(open(Some(&s), Sealed::Trust, "a", &changed).is_err());
        assert!(
            open(
                Some(&RecordSeal::new(&[8; 32])),
                Sealed::Trust,
                "a",
                &stored
            )
            .is_err()
        );
        // Unsealed (no key when written) is refused by a sealed read.
        let unsealed = seal(None, Sealed::Trust, "a", b"body".to_vec(), Stamp::Seal(5));
        assert!(open(Some(&s), Sealed::Trust, "a", &unsealed).is_err());
        assert!(open(None, Sealed::Trust, "a", &unsealed).is_ok());
    }

    #[test]
    fn bindings_round_trip_through_json() {
        let d = [3u8; 32];
        let detail = format!(
            "{{\"x\":1,\"binds\":{}}}",
            binds_json(&[(Sealed::Device, "s/m/o/\"q".to_owned(), d)])
        );
        assert_eq!(
            bindings(&detail),
            vec![(Sealed::Device, "s/m/o/\"q".to_owned(), d)]
        );
    }
}
