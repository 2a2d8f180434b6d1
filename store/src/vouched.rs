//! What the audit log vouches for, kept current while a server runs: each
//! sealed record's newest writing entry (its floor, see `seal.rs`), every
//! revocation a sector's CRL must list, and every key blocked for
//! compromise.
//!
//! The revocation index and the blocked keys are not sealed records: the
//! CRL is built by scanning the first, and the second is looked up by a
//! fingerprint that may never have been stored. A deleted index row would
//! silently drop a revoked certificate from the signed CRL and the
//! snapshot, and a deleted block would let a compromised key enroll again,
//! so both are compared with what the log says instead ([`check_revoked`],
//! [`check_blocked`]). Additions are caught the same way.
//!
//! Model registry records (opaque records of the spaces in
//! [`VOUCHED_SPACES`]) are compared the same way: their audit entry
//! commits to the SHA-256 of each record written (the `blobs` member), so
//! a level raised in the database, a record added or one deleted is
//! refused when read ([`check_blobs`]), before enrollment or a snapshot
//! builds on it.
//!
//! The log is read once at start and then its new entries only
//! ([`crate::RecordSeal::catch_up`]): before every CRL build, and on
//! PostgreSQL at most a second apart on reads, so that what another
//! replica wrote is vouched for too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use trustca_model::hexfmt;

use crate::floors::{Floors, floor_key};
use crate::seal::{self, Sealed};
use crate::{AuditEntry, RecordSeal, Storage, StoreError};

/// A revocation as the log committed it: time, reason, and the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Revocation {
    pub(crate) at: i64,
    pub(crate) reason: u8,
    pub(crate) seq: u64,
}

/// The log's view of the records it wrote, up to `next_seq`.
#[derive(Debug, Default)]
pub(crate) struct LogIndex {
    /// The first entry not read yet.
    pub(crate) next_seq: u64,
    /// (table, key) → the newest entry that wrote the record, keyed by
    /// [`floor_key`] (12 bytes instead of the key's text: a server holds
    /// three per device).
    floors: Floors,
    /// Sector → serial → its revocation.
    revoked: HashMap<String, BTreeMap<Vec<u8>, Revocation>>,
    /// Serials revoked by entries too old to name the sector.
    revoked_unplaced: HashSet<Vec<u8>>,
    /// Blocked key fingerprint → the entry that blocked it.
    blocked: HashMap<[u8; 32], u64>,
    /// (space, key) of a vouched record → the newest entry that wrote it
    /// and the SHA-256 of what it wrote.
    blobs: HashMap<(String, Vec<u8>), (u64, [u8; 32])>,
    /// Model records written by entries from before `blobs` (their
    /// subject is the key): known, but their content is not vouched.
    blobs_unvouched: HashSet<Vec<u8>>,
    /// Audit subjects of the entries that started sealing an opaque space.
    spaces_sealed: HashSet<String>,
}

impl LogIndex {
    /// Takes in one entry; entries come in sequence order.
    pub(crate) fn learn(&mut self, entry: &AuditEntry) {
        self.next_seq = entry.seq + 1;
        for (table, key, _) in seal::bindings(&entry.detail) {
            self.floors.learn(floor_key(table, &key), entry.seq);
        }
        if entry.detail.contains(BLOBS_MEMBER_QUOTED) {
            for (space, key, digest) in blob_bindings(&entry.detail) {
                self.blobs.insert((space, key), (entry.seq, digest));
            }
        } else if entry.kind.starts_with("model.") {
            self.blobs_unvouched
                .insert(entry.subject.as_bytes().to_vec());
        }
        match entry.kind.as_str() {
            crate::SEALED_KIND => {
                self.spaces_sealed.insert(entry.subject.clone());
            }
            "certificate.revoked" => self.learn_revocation(entry),
            "key.blocked" => {
                if let Some(fp) = hexfmt::decode(&entry.subject).and_then(|v| v.try_into().ok()) {
                    self.blocked.insert(fp, entry.seq);
                }
            }
            _ => {}
        }
    }

    fn learn_revocation(&mut self, entry: &AuditEntry) {
        #[derive(serde::Deserialize)]
        struct Detail {
            reason_code: u8,
            #[serde(default)]
            sector: Option<String>,
        }
        let Some(serial) = hexfmt::decode(&entry.subject) else {
            return;
        };
        let Ok(d) = serde_json::from_str::<Detail>(&entry.detail) else {
            return;
        };
        match d.sector {
            Some(sector) => {
                self.revoked.entry(sector).or_default().insert(
                    serial,
                    Revocation {
                        at: entry.at,
                        reason: d.reason_code,
                        seq: entry.seq,
                    },
                );
            }
            None => {
                self.revoked_unplaced.insert(serial);
            }
        }
    }
}

/// The detail member naming the opaque records an entry wrote.
pub(crate) const BLOBS_MEMBER: &str = "blobs";
const BLOBS_MEMBER_QUOTED: &str = "\"blobs\":";

/// Record spaces whose every record must be vouched for by the log: the
/// model registry, the systems of linked devices (`trustca_db::systems`;
/// a link removed behind trustca's back would lift a cap) and the V2X CA's
/// register of enrolment certificates issued and revoked
/// (`trustca_scms::hash_crl::SPACE`), from which the hash CRLs are built.
/// Every write to them must carry an audit entry.
/// `attestation.roots` (issue 25): a TPM manufacturer root slipped into the
/// database would let any TPM of that maker attest, so it is vouched too.
pub const VOUCHED_SPACES: &[&str] = &[
    crate::registry::MODEL_SPACE,
    "systems",
    "v2x.hash-crl",
    "attestation.roots",
];

/// The `blobs` member's value: `[["<space>","<key hex>","<sha256 hex>"], …]`.
pub(crate) fn blobs_json(space: &str, records: &[crate::KeyValue]) -> String {
    let items: Vec<String> = records
        .iter()
        .map(|(k, v)| {
            format!(
                "[{},\"{}\",\"{}\"]",
                crate::rules::json_str(space),
                hexfmt::encode(k),
                hexfmt::encode(&seal::digest(v))
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn blob_bindings(detail: &str) -> Vec<(String, Vec<u8>, [u8; 32])> {
    #[derive(serde::Deserialize)]
    struct Detail {
        #[serde(default)]
        blobs: Vec<(String, String, String)>,
    }
    let Ok(d) = serde_json::from_str::<Detail>(detail) else {
        return Vec::new();
    };
    d.blobs
        .into_iter()
        .filter_map(|(space, k, h)| {
            let key = hexfmt::decode(&k)?;
            let digest: [u8; 32] = hexfmt::decode(&h)?.try_into().ok()?;
            Some((space, key, digest))
        })
        .collect()
}

/// The keys one page of a keyed read covers: those after `after` (all
/// when `None`) up to `upto` included (to the end when `None`). A full page
/// covers up to its last key, a short page (the last) to the end, so a
/// record deleted between two pages' keys is missed by neither.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span<'a> {
    after: Option<&'a [u8]>,
    upto: Option<&'a [u8]>,
}

impl<'a> Span<'a> {
    /// Every key.
    #[cfg(test)]
    pub(crate) const ALL: Span<'static> = Span {
        after: None,
        upto: None,
    };

    /// What a page read after `after` with at most `limit` records covers,
    /// given the last key it returned.
    pub(crate) fn of_page(
        after: Option<&'a [u8]>,
        limit: usize,
        len: usize,
        last: Option<&'a [u8]>,
    ) -> Self {
        Span {
            after,
            upto: if len >= limit.max(1) { last } else { None },
        }
    }

    fn holds(&self, key: &[u8]) -> bool {
        self.after.is_none_or(|a| key > a) && self.upto.is_none_or(|u| key <= u)
    }

    /// The span as bounds for a `BTreeMap` range (`None`: nothing in it).
    fn bounds(&self) -> Option<KeyBounds<'a>> {
        if let (Some(a), Some(u)) = (self.after, self.upto)
            && a >= u
        {
            return None;
        }
        Some((
            self.after.map_or(Bound::Unbounded, Bound::Excluded),
            self.upto.map_or(Bound::Unbounded, Bound::Included),
        ))
    }
}

/// A key range's lower and upper bounds.
type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// Which records of a space a read asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// This key only.
    Exact(&'a [u8]),
    /// The keys with this prefix that one page covers.
    Page(&'a [u8], Span<'a>),
}

impl Scope<'_> {
    fn holds(&self, key: &[u8]) -> bool {
        match self {
            Scope::Exact(k) => key == *k,
            Scope::Page(p, span) => key.starts_with(p) && span.holds(key),
        }
    }
}

/// How the records of a vouched space in `scope`, as stored, differ
/// from what the log wrote: (key, what is wrong), in key order. Spaces
/// that are not vouched never differ.
pub(crate) fn blob_differences(
    index: &LogIndex,
    space: &str,
    scope: Scope<'_>,
    stored: &[crate::KeyValue],
) -> Vec<(Vec<u8>, String)> {
    if !VOUCHED_SPACES.contains(&space) {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut seen = HashSet::with_capacity(stored.len());
    for (k, v) in stored {
        seen.insert(k.as_slice());
        match index.blobs.get(&(space.to_owned(), k.clone())) {
            Some((_, digest)) if *digest == seal::digest(v) => {}
            Some((seq, _)) => found.push((
                k.clone(),
                format!("its content differs from what audit entry {seq} wrote (changed outside trustca)"),
            )),
            None if index.blobs_unvouched.contains(k) => {}
            None => found.push((
                k.clone(),
                "no audit entry wrote it: it was added outside trustca".into(),
            )),
        }
    }
    for ((s, k), (seq, _)) in &index.blobs {
        if s == space && scope.holds(k) && !seen.contains(k.as_slice()) {
            found.push((
                k.clone(),
                format!("missing, but audit entry {seq} wrote it: it was deleted"),
            ));
        }
    }
    found.sort();
    found
}

/// Checks records read from a vouched space against the log. A stale view
/// (a record written since it was last read) is caught up once before a
/// difference is taken for damage.
pub(crate) fn vouch_blobs(
    seal: Option<&RecordSeal>,
    storage: &dyn Storage,
    space: &str,
    scope: Scope<'_>,
    stored: &[crate::KeyValue],
) -> Result<(), StoreError> {
    let Some(seal) = seal else { return Ok(()) };
    if !VOUCHED_SPACES.contains(&space) {
        return Ok(());
    }
    let differs = |seal: &RecordSeal| {
        seal.with_learned(|l| blob_differences(l, space, scope, stored))
            .into_iter()
            .next()
    };
    if differs(seal).is_none() {
        return Ok(());
    }
    seal.catch_up(storage)?;
    match differs(seal) {
        Some((key, reason)) => Err(refused(
            format!("{space}/{}", String::from_utf8_lossy(&key)),
            reason,
        )),
        None => Ok(()),
    }
}

/// [`vouch_blobs`] for one page of records read under `prefix` after
/// `after` with at most `limit` of them.
pub(crate) fn vouch_blob_page(
    seal: Option<&RecordSeal>,
    storage: &dyn Storage,
    space: &str,
    (prefix, after, limit): (&[u8], Option<&[u8]>, usize),
    stored: &[crate::KeyValue],
) -> Result<(), StoreError> {
    let last = stored.last().map(|(k, _)| k.as_slice());
    let span = Span::of_page(after, limit, stored.len(), last);
    vouch_blobs(seal, storage, space, Scope::Page(prefix, span), stored)
}

/// [`vouch_blobs`] for one record read by its key.
pub(crate) fn vouch_blob(
    seal: Option<&RecordSeal>,
    storage: &dyn Storage,
    space: &str,
    key: &[u8],
    value: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, StoreError> {
    let stored: Vec<crate::KeyValue> = value.into_iter().map(|v| (key.to_vec(), v)).collect();
    vouch_blobs(seal, storage, space, Scope::Exact(key), &stored)?;
    Ok(stored.into_iter().next().map(|(_, v)| v))
}

fn refused(key: String, reason: String) -> StoreError {
    StoreError::Corrupt { key, reason }
}

/// How a sector's revocation index as stored differs from the revocations
/// the log committed for it, among the serials `span` covers (one page
/// of a read): (serial, what is wrong), sorted by serial.
pub(crate) fn revocation_differences(
    index: &LogIndex,
    sector: &str,
    span: Span<'_>,
    stored: &[(Vec<u8>, i64, u8)],
) -> Vec<(Vec<u8>, String)> {
    let empty = BTreeMap::new();
    let committed = index.revoked.get(sector).unwrap_or(&empty);
    let mut found = Vec::new();
    let mut seen = HashSet::with_capacity(stored.len());
    for (serial, at, reason) in stored {
        seen.insert(serial.as_slice());
        match committed.get(serial) {
            Some(r) if r.at == *at && r.reason == *reason => {}
            Some(r) => found.push((
                serial.clone(),
                format!(
                    "its time or reason differs from what audit entry {} committed (changed outside trustca)",
                    r.seq
                ),
            )),
            None if index.revoked_unplaced.contains(serial) => {}
            None => found.push((
                serial.clone(),
                "it is in the CRL index, but no audit entry revoked it (added outside trustca)"
                    .into(),
            )),
        }
    }
    let in_span = span
        .bounds()
        .map(|b| committed.range::<[u8], _>(b))
        .into_iter()
        .flatten();
    for (serial, r) in in_span {
        if !seen.contains(serial.as_slice()) {
            found.push((
                serial.clone(),
                format!(
                    "audit entry {} revoked it, but the CRL index has no entry (deleted outside trustca)",
                    r.seq
                ),
            ));
        }
    }
    found.sort();
    found
}

/// Compares a sector's revocation index with the log; the first difference
/// is the error, naming the certificate.
pub(crate) fn check_revoked(
    index: &LogIndex,
    sector: &str,
    span: Span<'_>,
    stored: &[(Vec<u8>, i64, u8)],
) -> Result<(), StoreError> {
    match revocation_differences(index, sector, span, stored)
        .into_iter()
        .next()
    {
        Some((serial, reason)) => Err(refused(
            format!("revoked {sector} {}", hexfmt::encode(&serial)),
            reason,
        )),
        None => Ok(()),
    }
}

/// Checks a blocked-key lookup against the log: a block the log committed
/// must be found.
pub(crate) fn check_blocked<T>(
    index: &LogIndex,
    fingerprint: &[u8; 32],
    stored: Option<T>,
) -> Result<Option<T>, StoreError> {
    match (&stored, index.blocked.get(fingerprint)) {
        (None, Some(seq)) => Err(refused(
            format!("blocked key {}", hexfmt::encode(fingerprint)),
            format!(
                "audit entry {seq} blocked it for compromise, but the block is gone (deleted outside trustca)"
            ),
        )),
        _ => Ok(stored),
    }
}

/// Checks a page of a sector's stored revocation index against the log,
/// read to its end first (nothing to check without a seal: offline tools).
fn vouch_revoked(
    seal: Option<&RecordSeal>,
    storage: &dyn Storage,
    sector: &str,
    span: Span<'_>,
    stored: &[(Vec<u8>, i64, u8)],
) -> Result<(), StoreError> {
    let Some(seal) = seal else { return Ok(()) };
    seal.catch_up(storage)?;
    seal.with_learned(|l| check_revoked(l, sector, span, stored))
}

/// [`vouch_revoked`] for one page read after `after` with at most `limit`
/// revocations.
pub(crate) fn vouch_revoked_page(
    seal: Option<&RecordSeal>,
    storage: &dyn Storage,
    sector: &str,
    (after, limit): (Option<&[u8]>, usize),
    stored: &[(Vec<u8>, i64, u8)],
) -> Result<(), StoreError> {
    let last = stored.last().map(|(serial, _, _)| serial.as_slice());
    let span = Span::of_page(after, limit, stored.len(), last);
    vouch_revoked(seal, storage, sector, span, stored)
}

/// Checks a blocked-key lookup against the log as read so far.
pub(crate) fn vouch_blocked<T>(
    seal: Option<&RecordSeal>,
    fingerprint: &[u8; 32],
    stored: Option<T>,
) -> Result<Option<T>, StoreError> {
    match seal {
        Some(seal) => seal.with_learned(|l| check_blocked(l, fingerprint, stored)),
        None => Ok(stored),
    }
}

impl LogIndex {
    /// Whether the log says `space`'s records were sealed from some point on.
    pub(crate) fn space_sealed(&self, space: &str) -> bool {
        self.spaces_sealed
            .contains(&seal::space_sealed_subject(space))
    }

    /// The newest entry that wrote a record, if the log wrote it.
    pub(crate) fn floor(&self, table: Sealed, key: &str) -> Option<u64> {
        self.floors.get(&floor_key(table, key))
    }

    /// How many records the log vouches for.
    pub(crate) fn records(&self) -> usize {
        self.floors.len()
    }

    /// Merges the floors learned so far into their compact list (after the
    /// whole log was read at start).
    pub(crate) fn settle(&mut self) {
        self.floors.settle();
    }

    /// Bytes the floors hold.
    pub(crate) fn floor_bytes(&self) -> usize {
        self.floors.heap_bytes()
    }

    /// The sectors the log revoked certificates in.
    pub(crate) fn revoking_sectors(&self) -> impl Iterator<Item = &str> {
        self.revoked.keys().map(String::as_str)
    }

    /// Whether the log revoked `serial` of `sector`: `Some(None)` when it
    /// did in an entry too old to say when and why.
    pub(crate) fn revocation(&self, sector: &str, serial: &[u8]) -> Option<Option<Revocation>> {
        if let Some(r) = self.revoked.get(sector).and_then(|m| m.get(serial)) {
            return Some(Some(*r));
        }
        self.revoked_unplaced.contains(serial).then_some(None)
    }

    /// Every key the log blocked, with the entry that did.
    pub(crate) fn blocked(&self) -> impl Iterator<Item = (&[u8; 32], u64)> {
        self.blocked.iter().map(|(k, v)| (k, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, kind: &str, subject: &str, detail: &str) -> AuditEntry {
        AuditEntry {
            seq,
            at: 100 + seq as i64,
            actor: "operator:ops".into(),
            kind: kind.into(),
            subject: subject.into(),
            detail: detail.into(),
            leaf_hash: [0; 32],
        }
    }

    fn index() -> LogIndex {
        let mut i = LogIndex::default();
        i.learn(&entry(
            0,
            "certificate.revoked",
            "0a0b",
            r#"{"reason_code":1,"sector":"hems","identity":"x","note":""}"#,
        ));
        i.learn(&entry(1, "key.blocked", &"ab".repeat(32), "{}"));
        i
    }

    #[test]
    fn the_committed_index_passes_and_every_difference_is_named() {
        let i = index();
        assert_eq!(i.next_seq, 2);
        let good = vec![(vec![0x0a, 0x0b], 100, 1)];
        check_revoked(&i, "hems", Span::ALL, &good).unwrap();
        // Deleted, added, changed, and another sector's list.
        let e = check_revoked(&i, "hems", Span::ALL, &[]).unwrap_err();
        assert!(e.to_string().contains("revoked hems 0a0b"), "{e}");
        assert!(e.to_string().contains("deleted"), "{e}");
        let added = vec![good[0].clone(), (vec![1], 5, 0)];
        assert!(
            check_revoked(&i, "hems", Span::ALL, &added)
                .unwrap_err()
                .to_string()
                .contains("added")
        );
        let changed = vec![(vec![0x0a, 0x0b], 100, 4)];
        assert!(
            check_revoked(&i, "hems", Span::ALL, &changed)
                .unwrap_err()
                .to_string()
                .contains("differs")
        );
        assert!(check_revoked(&i, "automotive", Span::ALL, &good).is_err());
        check_revoked(&i, "automotive", Span::ALL, &[]).unwrap();
    }

    #[test]
    fn a_page_answers_for_the_serials_it_covers_only() {
        let i = index();
        let serial: &[u8] = &[0x0a, 0x0b];
        // A full page ending before the revoked serial does not cover it.
        let before = Span::of_page(None, 1, 1, Some(&[0x01]));
        check_revoked(&i, "hems", before, &[(vec![0x01], 5, 0)]).unwrap_err();
        check_revoked(&i, "hems", before, &[]).unwrap();
        // A short page after it, nor; one around it must hold it.
        check_revoked(&i, "hems", Span::of_page(Some(serial), 2, 0, None), &[]).unwrap();
        let around = Span::of_page(Some(&[0x01]), 1, 1, Some(&[0x0c]));
        let e = check_revoked(&i, "hems", around, &[(vec![0x0c], 5, 0)]).unwrap_err();
        assert!(e.to_string().contains("revoked hems 0a0b"), "{e}");
    }

    #[test]
    fn a_deleted_block_is_refused() {
        let i = index();
        let fp = [0xab; 32];
        assert!(check_blocked::<()>(&i, &fp, None).is_err());
        assert_eq!(check_blocked(&i, &fp, Some(1)).unwrap(), Some(1));
        assert_eq!(check_blocked::<()>(&i, &[0; 32], None).unwrap(), None);
    }
}
