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
//! The log is read once at start and then its new entries only
//! ([`crate::RecordSeal::catch_up`]): before every CRL build, and on
//! PostgreSQL at most a second apart on reads, so that what another
//! replica wrote is vouched for too.

use std::collections::{BTreeMap, HashMap, HashSet};

use trustca_model::hexfmt;

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
    /// (table, key) → the newest entry that wrote the record.
    pub(crate) floors: HashMap<(Sealed, String), u64>,
    /// Sector → serial → its revocation.
    revoked: HashMap<String, BTreeMap<Vec<u8>, Revocation>>,
    /// Serials revoked by entries too old to name the sector.
    revoked_unplaced: HashSet<Vec<u8>>,
    /// Blocked key fingerprint → the entry that blocked it.
    blocked: HashMap<[u8; 32], u64>,
}

impl LogIndex {
    /// Takes in one entry; entries come in sequence order.
    pub(crate) fn learn(&mut self, entry: &AuditEntry) {
        self.next_seq = entry.seq + 1;
        for (table, key, _) in seal::bindings(&entry.detail) {
            self.floors.insert((table, key), entry.seq);
        }
        match entry.kind.as_str() {
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

fn refused(key: String, reason: String) -> StoreError {
    StoreError::Corrupt { key, reason }
}

/// How a sector's revocation index as stored differs from the revocations
/// the log committed for it: (serial, what is wrong), sorted by serial.
pub(crate) fn revocation_differences(
    index: &LogIndex,
    sector: &str,
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
    for (serial, r) in committed {
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
    stored: &[(Vec<u8>, i64, u8)],
) -> Result<(), StoreError> {
    match revocation_differences(index, sector, stored).into_iter().next() {
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

/// Checks a sector's stored revocation index against the log, read to its
/// end first (nothing to check without a seal: offline tools).
pub(crate) fn vouch_revoked(
    seal: Option<&RecordSeal>,
    storage: &dyn Storage,
    sector: &str,
    stored: &[(Vec<u8>, i64, u8)],
) -> Result<(), StoreError> {
    let Some(seal) = seal else { return Ok(()) };
    seal.catch_up(storage)?;
    seal.with_learned(|l| check_revoked(l, sector, stored))
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
        check_revoked(&i, "hems", &good).unwrap();
        // Deleted, added, changed, and another sector's list.
        let e = check_revoked(&i, "hems", &[]).unwrap_err();
        assert!(e.to_string().contains("revoked hems 0a0b"), "{e}");
        assert!(e.to_string().contains("deleted"), "{e}");
        let added = vec![good[0].clone(), (vec![1], 5, 0)];
        assert!(
            check_revoked(&i, "hems", &added)
                .unwrap_err()
                .to_string()
                .contains("added")
        );
        let changed = vec![(vec![0x0a, 0x0b], 100, 4)];
        assert!(
            check_revoked(&i, "hems", &changed)
                .unwrap_err()
                .to_string()
                .contains("differs")
        );
        assert!(check_revoked(&i, "automotive", &good).is_err());
        check_revoked(&i, "automotive", &[]).unwrap();
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
