//! The embedded sled backend: one tree per record kind, multi-tree
//! transactions for atomic issuance.

use std::path::Path;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use crate::{
    AuditEntry, BlockedKey, CertificateRecord, CertificateStatus, DeviceRecord, HistoryEntry,
    Issuance, Storage, StoreError, TrustChange, TrustRecord, TrustStatus,
};

const AUDIT_FRONTIER: &[u8] = b"audit.frontier";
const COUNT_CERTS: &[u8] = b"count.certificates";
const COUNT_DEVICES: &[u8] = b"count.devices";

/// sled-backed [`Storage`].
#[derive(Debug, Clone)]
pub struct SledStorage {
    db: sled::Db,
    certs: sled::Tree,
    devices: sled::Tree,
    trust: sled::Tree,
    history: sled::Tree,
    audit: sled::Tree,
    meta: sled::Tree,
    fingerprints: sled::Tree,
    revoked: sled::Tree,
    heads: sled::Tree,
    blobs: sled::Tree,
    blocked_keys: sled::Tree,
    // Declared last so it drops after the database: its receiver then
    // learns that the files are closed and unlocked.
    _closed: std::sync::Arc<std::sync::mpsc::SyncSender<()>>,
}

/// Waits for a [`SledStorage`] (all its clones) to be closed.
#[derive(Debug)]
pub struct CloseWaiter(std::sync::mpsc::Receiver<()>);

impl CloseWaiter {
    /// Blocks until the store is closed or `timeout` passes; true if closed.
    pub fn wait(&self, timeout: std::time::Duration) -> bool {
        matches!(
            self.0.recv_timeout(timeout),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(v).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

fn blob_key(space: &str, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(space.len() + 1 + key.len());
    k.extend_from_slice(space.as_bytes());
    k.push(0);
    k.extend_from_slice(key);
    k
}

fn history_key(identity_key: &str, version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(identity_key.len() + 9);
    k.extend_from_slice(identity_key.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

type Abort = ConflictableTransactionError<StoreError>;

fn abort(e: StoreError) -> Abort {
    ConflictableTransactionError::Abort(e)
}

fn tx_get<T: serde::de::DeserializeOwned>(
    tree: &TransactionalTree,
    key: &[u8],
) -> Result<Option<T>, Abort> {
    match tree.get(key)? {
        Some(v) => decode(key, &v).map(Some).map_err(abort),
        None => Ok(None),
    }
}

fn tx_put<T: serde::Serialize>(tree: &TransactionalTree, key: &[u8], v: &T) -> Result<(), Abort> {
    tree.insert(key, encode(v).map_err(abort)?)?;
    Ok(())
}

/// Appends one audit entry to `frontier` and the audit tree (the caller
/// stores the frontier).
fn append_audit_to(
    audit: &TransactionalTree,
    frontier: &mut trustca_audit::MerkleFrontier,
    at: i64,
    actor: &str,
    kind: &str,
    subject: &str,
    detail: &str,
) -> Result<(), Abort> {
    let mut entry = AuditEntry {
        seq: frontier.size(),
        at,
        actor: actor.to_owned(),
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        detail: detail.to_owned(),
        leaf_hash: [0; 32],
    };
    let (_, leaf) = frontier
        .push_entry(&entry.leaf_bytes())
        .map_err(|e| abort(StoreError::Backend(format!("audit log: {e}"))))?;
    entry.leaf_hash = leaf;
    tx_put(audit, &entry.seq.to_be_bytes(), &entry)
}

/// Appends one audit entry inside a transaction: the entry, its leaf hash
/// and the Merkle frontier after it are written together.
pub(crate) fn tx_append_audit(
    audit: &TransactionalTree,
    meta: &TransactionalTree,
    at: i64,
    actor: &str,
    kind: &str,
    subject: &str,
    detail: &str,
) -> Result<(), Abort> {
    let mut frontier = tx_frontier(meta)?;
    append_audit_to(audit, &mut frontier, at, actor, kind, subject, detail)?;
    meta.insert(AUDIT_FRONTIER, frontier.to_bytes())?;
    Ok(())
}

/// Applies one trust change inside a transaction: the record, its history
/// entry and its audit entry.
fn tx_apply_trust_change(
    trust: &TransactionalTree,
    history: &TransactionalTree,
    audit: &TransactionalTree,
    meta: &TransactionalTree,
    c: &TrustChange,
    at: i64,
) -> Result<TrustRecord, Abort> {
    let key = c.identity_key.as_bytes();
    let mut record: TrustRecord = tx_get(trust, key)?
        .ok_or_else(|| abort(StoreError::NotEnrolled(c.identity_key.clone())))?;
    if let Some(level) = c.level {
        record.level = level;
    }
    if let Some(status) = c.status {
        record.status = status;
    }
    record.version += 1;
    record.updated_at = at;
    tx_put(trust, key, &record)?;
    let entry = HistoryEntry {
        version: record.version,
        at,
        actor: c.actor.clone(),
        change: c.change.clone(),
        reason: c.reason.clone(),
    };
    tx_put(
        history,
        &history_key(&c.identity_key, record.version),
        &entry,
    )?;
    let detail = format!(
        "{{\"change\":{:?},\"reason\":{:?},\"level\":{},\"status\":\"{}\",\"version\":{}}}",
        c.change,
        c.reason,
        record.level,
        record.status.as_str(),
        record.version
    );
    tx_append_audit(
        audit,
        meta,
        at,
        &c.actor,
        &c.audit_kind,
        &c.identity_key,
        &detail,
    )?;
    Ok(record)
}

struct IssuanceTrees<'a> {
    certs: &'a TransactionalTree,
    devices: &'a TransactionalTree,
    trust: &'a TransactionalTree,
    history: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    fingerprints: &'a TransactionalTree,
    blocked_keys: &'a TransactionalTree,
}

/// The key fingerprint of a stored certificate; `None` for DER that does
/// not parse (only hand-made test records), which carries no key to block.
fn key_of(der: &[u8]) -> Option<[u8; 32]> {
    trustca_model::certificate_key_fingerprint(der).ok()
}

/// Refuses a key revoked for compromise, inside the issuing transaction so
/// that a revocation committed a moment earlier cannot be overtaken.
fn tx_check_key(
    blocked_keys: &TransactionalTree,
    key: Option<&[u8; 32]>,
) -> Result<Result<(), StoreError>, Abort> {
    let Some(key) = key else {
        return Ok(Ok(()));
    };
    Ok(match tx_get::<BlockedKey>(blocked_keys, key)? {
        Some(block) => Err(StoreError::KeyCompromised { on: block.date() }),
        None => Ok(()),
    })
}

fn tx_frontier(meta: &TransactionalTree) -> Result<trustca_audit::MerkleFrontier, Abort> {
    match meta.get(AUDIT_FRONTIER)? {
        Some(v) => trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| {
            abort(StoreError::Corrupt {
                key: "audit.frontier".into(),
                reason: e.to_string(),
            })
        }),
        None => Ok(trustca_audit::MerkleFrontier::new()),
    }
}

fn tx_add(meta: &TransactionalTree, key: &[u8], n: u64) -> Result<(), Abort> {
    if n == 0 {
        return Ok(());
    }
    let old = match meta.get(key)? {
        Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
        None => 0,
    };
    meta.insert(key, &(old + n).to_be_bytes())?;
    Ok(())
}

/// Marks a renewal that kept a level set by an operator or an anomaly
/// template, so the next renewal keeps it too.
const RENEWAL_KEPT_DECISION: &str = "the level set by an operator or anomaly stands";

/// Whether the live level after history entry `h` is the one the evidence
/// earned (an enrollment, or a renewal that did not keep an earlier
/// decision) rather than a decision by an operator or anomaly template.
/// The `change` texts are written by trustca itself, never by a caller.
fn set_by_evidence(h: &HistoryEntry) -> bool {
    h.change.starts_with("enrolled ")
        || (h.change.starts_with("renewed ") && !h.change.contains(RENEWAL_KEPT_DECISION))
}

/// Applies one issuance inside a group transaction. The inner result is
/// the item's own outcome (Ok(new device?) or why it was refused — decided
/// before any write); the outer error aborts the whole group.
fn apply_issuance(
    t: &IssuanceTrees<'_>,
    frontier: &mut trustca_audit::MerkleFrontier,
    issuance: &Issuance,
    fingerprint: &[u8],
) -> Result<Result<bool, StoreError>, Abort> {
    let cert = &issuance.certificate;
    let serial_hex = trustca_model::hexfmt::encode(&cert.serial);
    if t.certs.get(&cert.serial)?.is_some() {
        return Ok(Err(StoreError::SerialReused(serial_hex)));
    }
    let new_key = key_of(&cert.der);
    if let Err(e) = tx_check_key(t.blocked_keys, new_key.as_ref())? {
        return Ok(Err(e));
    }
    let mut reenrolled = None;
    let mut new_device = false;
    if let Some(device) = &issuance.device {
        let key = device.identity_key.as_bytes();
        let existing: Option<DeviceRecord> = tx_get(t.devices, key)?;
        let (record, trust_record, change) = match (existing, issuance.renewal) {
            (Some(_), false) => return Ok(Err(StoreError::AlreadyEnrolled(device.urn.clone()))),
            (None, true) => return Ok(Err(StoreError::NotEnrolled(device.urn.clone()))),
            (None, false) => {
                new_device = true;
                let mut record = device.clone();
                record.certificates = vec![serial_hex.clone()];
                let trust_record = TrustRecord {
                    identity_key: device.identity_key.clone(),
                    sector: device.sector.clone(),
                    level: device.certificate_level,
                    status: TrustStatus::Active,
                    version: 1,
                    updated_at: cert.issued_at,
                };
                (
                    record,
                    trust_record,
                    format!("enrolled level={}", device.certificate_level),
                )
            }
            (Some(old), true) => {
                let Some(mut trust_record) = tx_get::<TrustRecord>(t.trust, key)? else {
                    return Ok(Err(StoreError::NotEnrolled(device.urn.clone())));
                };
                if trust_record.status == TrustStatus::Revoked {
                    // Every certificate was revoked: coming back is an
                    // explicit renewal with a key none of them carried.
                    for prev in &old.certificates {
                        let prev_serial = trustca_model::hexfmt::decode(prev).unwrap_or_default();
                        if let Some(prev_cert) = tx_get::<CertificateRecord>(t.certs, &prev_serial)?
                            && new_key.is_some()
                            && key_of(&prev_cert.der) == new_key
                        {
                            return Ok(Err(StoreError::KeyReused {
                                identity: device.urn.clone(),
                                serial: prev.clone(),
                            }));
                        }
                    }
                    trust_record.status = TrustStatus::Active;
                    reenrolled = Some(trust_record.version + 1);
                } else if trust_record.status != TrustStatus::Active {
                    return Ok(Err(StoreError::NotActive {
                        identity: device.urn.clone(),
                        status: trust_record.status.as_str().to_owned(),
                    }));
                }
                if let Some(prev) = old.certificates.last() {
                    let prev_serial = trustca_model::hexfmt::decode(prev).unwrap_or_default();
                    if let Some(mut prev_cert) = tx_get::<CertificateRecord>(t.certs, &prev_serial)?
                        && prev_cert.status == CertificateStatus::Active
                    {
                        prev_cert.status = CertificateStatus::Superseded {
                            by: serial_hex.clone(),
                        };
                        tx_put(t.certs, &prev_serial, &prev_cert)?;
                    }
                }
                let mut record = device.clone();
                record.enrolled_at = old.enrolled_at;
                record.certificates = old.certificates;
                record.certificates.push(serial_hex.clone());
                let last: Option<HistoryEntry> = tx_get(
                    t.history,
                    &history_key(&device.identity_key, trust_record.version),
                )?;
                // An operator's (or anomaly template's) decision outranks
                // fresh evidence: a renewal may lower the live level, never
                // raise it past that decision.
                let decided = last.as_ref().is_none_or(|h| !set_by_evidence(h));
                let level = if decided {
                    trust_record.level.min(device.certificate_level)
                } else {
                    device.certificate_level
                };
                let mut change = format!(
                    "{} firmware={} level {}->{level}",
                    // Still "renewed ..." so later renewals read it as
                    // set by evidence (see `set_by_evidence`).
                    if reenrolled.is_some() {
                        "renewed (re-enrolled after revocation with a new key)"
                    } else {
                        "renewed"
                    },
                    device.firmware_version,
                    trust_record.level
                );
                if decided {
                    change.push_str(&format!(
                        " (certificate level {}; {RENEWAL_KEPT_DECISION})",
                        device.certificate_level
                    ));
                }
                trust_record.level = level;
                trust_record.version += 1;
                trust_record.updated_at = cert.issued_at;
                (record, trust_record, change)
            }
        };
        tx_put(t.devices, key, &record)?;
        tx_put(t.trust, key, &trust_record)?;
        let entry = HistoryEntry {
            version: trust_record.version,
            at: cert.issued_at,
            actor: issuance.actor.clone(),
            change,
            reason: if issuance.renewal {
                "renewal".into()
            } else {
                "enrollment".into()
            },
        };
        tx_put(
            t.history,
            &history_key(&device.identity_key, trust_record.version),
            &entry,
        )?;
        if let Some(version) = reenrolled {
            let detail = format!(
                "{{\"identity\":{:?},\"certificate\":\"{serial_hex}\",\"level\":{},\"status\":\"active\",\"version\":{version}}}",
                device.urn, trust_record.level
            );
            append_audit_to(
                t.audit,
                frontier,
                cert.issued_at,
                &issuance.actor,
                "device.re-enrolled",
                &device.identity_key,
                &detail,
            )?;
        }
    }
    tx_put(t.certs, &cert.serial, cert)?;
    t.fingerprints.insert(fingerprint, cert.serial.as_slice())?;
    append_audit_to(
        t.audit,
        frontier,
        cert.issued_at,
        &issuance.actor,
        &issuance.audit_kind,
        &serial_hex,
        &issuance.audit_detail,
    )?;
    Ok(Ok(new_device))
}

/// The trees a revocation touches.
pub(crate) struct RevocationTrees<'a> {
    pub(crate) certs: &'a TransactionalTree,
    pub(crate) revoked: &'a TransactionalTree,
    pub(crate) audit: &'a TransactionalTree,
    pub(crate) meta: &'a TransactionalTree,
    pub(crate) devices: &'a TransactionalTree,
    pub(crate) trust: &'a TransactionalTree,
    pub(crate) history: &'a TransactionalTree,
    pub(crate) blocked_keys: &'a TransactionalTree,
}

/// Revokes `serials` inside a transaction (see [`Storage::revoke`]): marks
/// and indexes each certificate, blocks its key on keyCompromise (and
/// revokes the device's other certificates with that key), and moves a
/// device left without a valid certificate to `revoked`. Kept in one
/// function so that every path that revokes gets all of it.
pub(crate) fn tx_revoke(
    t: &RevocationTrees<'_>,
    serials: &[Vec<u8>],
    reason: u8,
    actor: &str,
    note: &str,
    at: i64,
) -> Result<Vec<CertificateRecord>, Abort> {
    use trustca_model::hexfmt;
    use trustca_model::revocation::{KEY_COMPROMISE, reason_name};
    let mut changed: Vec<CertificateRecord> = Vec::new();
    let mut queue: Vec<Vec<u8>> = serials.to_vec();
    let mut devices_touched: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(serial) = queue.get(i).cloned() {
        // Serials the caller named must exist; ones added by the key sweep
        // below come from device records and are re-read here.
        let named = i < serials.len();
        i += 1;
        let Some(mut rec) = tx_get::<CertificateRecord>(t.certs, &serial)? else {
            if named {
                return Err(abort(StoreError::NotEnrolled(format!(
                    "certificate {}",
                    hexfmt::encode(&serial)
                ))));
            }
            continue;
        };
        if matches!(rec.status, CertificateStatus::Revoked { .. }) {
            continue;
        }
        rec.status = CertificateStatus::Revoked { reason, at };
        tx_put(t.certs, &serial, &rec)?;
        let mut key = rec.sector.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&serial);
        let mut value = at.to_be_bytes().to_vec();
        value.push(reason);
        t.revoked.insert(key, value)?;
        let serial_hex = hexfmt::encode(&serial);
        let detail = format!(
            "{{\"reason_code\":{reason},\"sector\":\"{}\",\"identity\":{:?},\"note\":{:?}}}",
            rec.sector,
            rec.identity_key.clone().unwrap_or_default(),
            note
        );
        tx_append_audit(
            t.audit,
            t.meta,
            at,
            actor,
            "certificate.revoked",
            &serial_hex,
            &detail,
        )?;
        if let Some(device) = &rec.identity_key
            && !devices_touched.contains(device)
        {
            devices_touched.push(device.clone());
        }
        if reason == KEY_COMPROMISE
            && let Some(fp) = key_of(&rec.der)
        {
            if t.blocked_keys.get(fp)?.is_none() {
                let block = BlockedKey {
                    at,
                    serial: serial_hex.clone(),
                    identity_key: rec.identity_key.clone(),
                    actor: actor.to_owned(),
                };
                tx_put(t.blocked_keys, &fp, &block)?;
                let detail = format!(
                    "{{\"certificate\":\"{serial_hex}\",\"identity\":{:?},\"note\":{:?}}}",
                    rec.identity_key.clone().unwrap_or_default(),
                    note
                );
                tx_append_audit(
                    t.audit,
                    t.meta,
                    at,
                    actor,
                    "key.blocked",
                    &hexfmt::encode(&fp),
                    &detail,
                )?;
            }
            // A renewal may have kept the key: every certificate of the
            // device that carries it is compromised with it.
            if let Some(identity_key) = &rec.identity_key
                && let Some(device) = tx_get::<DeviceRecord>(t.devices, identity_key.as_bytes())?
            {
                for other in device.certificates.iter().filter_map(|h| hexfmt::decode(h)) {
                    if queue.contains(&other) {
                        continue;
                    }
                    if let Some(o) = tx_get::<CertificateRecord>(t.certs, &other)?
                        && !matches!(o.status, CertificateStatus::Revoked { .. })
                        && key_of(&o.der) == Some(fp)
                    {
                        queue.push(other);
                    }
                }
            }
        }
        changed.push(rec);
    }
    for identity_key in devices_touched {
        let Some(device) = tx_get::<DeviceRecord>(t.devices, identity_key.as_bytes())? else {
            continue;
        };
        let mut still_valid = false;
        for serial in device.certificates.iter().filter_map(|h| hexfmt::decode(h)) {
            if let Some(c) = tx_get::<CertificateRecord>(t.certs, &serial)?
                && !matches!(c.status, CertificateStatus::Revoked { .. })
                && c.not_after > at
            {
                still_valid = true;
                break;
            }
        }
        if still_valid {
            continue;
        }
        let Some(mut record) = tx_get::<TrustRecord>(t.trust, identity_key.as_bytes())? else {
            continue;
        };
        if !matches!(record.status, TrustStatus::Active | TrustStatus::Suspended) {
            continue;
        }
        record.status = TrustStatus::Revoked;
        record.version += 1;
        record.updated_at = at;
        tx_put(t.trust, identity_key.as_bytes(), &record)?;
        let change = format!(
            "revoked: no valid certificate left (last revoked for {})",
            reason_name(reason)
        );
        let why = if note.is_empty() {
            reason_name(reason).to_owned()
        } else {
            note.to_owned()
        };
        tx_put(
            t.history,
            &history_key(&identity_key, record.version),
            &HistoryEntry {
                version: record.version,
                at,
                actor: actor.to_owned(),
                change: change.clone(),
                reason: why.clone(),
            },
        )?;
        let detail = format!(
            "{{\"change\":{change:?},\"reason\":{why:?},\"level\":{},\"status\":\"revoked\",\"version\":{}}}",
            record.level, record.version
        );
        tx_append_audit(
            t.audit,
            t.meta,
            at,
            actor,
            "trust.revoked",
            &identity_key,
            &detail,
        )?;
    }
    Ok(changed)
}

impl SledStorage {
    /// Opens (or creates) a store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(Self::open_with_close_waiter(dir)?.0)
    }

    /// Opens a store and returns a waiter that tells when it is closed.
    pub fn open_with_close_waiter(dir: &Path) -> Result<(Self, CloseWaiter), StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput)
            // Every write path flushes explicitly (group commit, operator
            // changes); a background flusher would only add work.
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                // sled reports a held lock as an I/O error whose text
                // embeds a Debug dump; callers get a sentence instead.
                sled::Error::Io(io) if io.to_string().starts_with("could not acquire lock") => {
                    StoreError::InUse(dir.display().to_string())
                }
                other => other.into(),
            })?;
        let store = Self {
            certs: db.open_tree("certificates")?,
            devices: db.open_tree("devices")?,
            trust: db.open_tree("trust")?,
            history: db.open_tree("history")?,
            audit: db.open_tree("audit")?,
            meta: db.open_tree("meta")?,
            fingerprints: db.open_tree("fingerprints")?,
            revoked: db.open_tree("revoked")?,
            heads: db.open_tree("tree_heads")?,
            blobs: db.open_tree("blobs")?,
            blocked_keys: db.open_tree("blocked_keys")?,
            db,
            _closed: std::sync::Arc::new(tx),
        };
        Ok((store, CloseWaiter(rx)))
    }

    /// Commits a whole group in one transaction. Each issuance's checks run
    /// before any of its writes, so a refused one writes nothing while the
    /// others commit; counters and the Merkle frontier are written once.
    fn commit_group(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        let fingerprints: Vec<ring::digest::Digest> = batch
            .iter()
            .map(|i| ring::digest::digest(&ring::digest::SHA256, &i.certificate.der))
            .collect();
        let result = (
            &self.certs,
            &self.devices,
            &self.trust,
            &self.history,
            &self.audit,
            &self.meta,
            &self.fingerprints,
            &self.blocked_keys,
        )
            .transaction(
                |(certs, devices, trust, history, audit, meta, fps, blocked_keys)| {
                    let mut frontier = tx_frontier(meta)?;
                    let mut results = Vec::with_capacity(batch.len());
                    let (mut new_certs, mut new_devices) = (0u64, 0u64);
                    for (issuance, fp) in batch.iter().zip(&fingerprints) {
                        let trees = IssuanceTrees {
                            certs,
                            devices,
                            trust,
                            history,
                            audit,
                            fingerprints: fps,
                            blocked_keys,
                        };
                        let r = apply_issuance(&trees, &mut frontier, issuance, fp.as_ref())?;
                        if let Ok(new_device) = &r {
                            new_certs += 1;
                            new_devices += u64::from(*new_device);
                        }
                        results.push(r.map(|_| ()));
                    }
                    tx_add(meta, COUNT_CERTS, new_certs)?;
                    tx_add(meta, COUNT_DEVICES, new_devices)?;
                    meta.insert(AUDIT_FRONTIER, frontier.to_bytes())?;
                    Ok(results)
                },
            );
        match result {
            Ok(r) => r,
            Err(e) => {
                let msg = match e {
                    TransactionError::Abort(e) => e.to_string(),
                    TransactionError::Storage(e) => e.to_string(),
                };
                batch
                    .iter()
                    .map(|_| Err(StoreError::Backend(msg.clone())))
                    .collect()
            }
        }
    }

    fn get<T: serde::de::DeserializeOwned>(
        tree: &sled::Tree,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match tree.get(key)? {
            Some(v) => decode(key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn counter(&self, key: &[u8]) -> Result<u64, StoreError> {
        Ok(match self.meta.get(key)? {
            Some(v) => u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])),
            None => 0,
        })
    }
}

impl Storage for SledStorage {
    fn commit_issuances(&self, batch: &[Issuance]) -> Vec<Result<(), StoreError>> {
        self.commit_group(batch)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Self::get(&self.devices, identity_key.as_bytes())
    }

    fn trust_record(&self, identity_key: &str) -> Result<Option<TrustRecord>, StoreError> {
        Self::get(&self.trust, identity_key.as_bytes())
    }

    fn history(&self, identity_key: &str) -> Result<Vec<HistoryEntry>, StoreError> {
        let mut prefix = identity_key.as_bytes().to_vec();
        prefix.push(0);
        self.history
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, StoreError> {
        Self::get(&self.certs, serial)
    }

    fn counts(&self) -> Result<(u64, u64), StoreError> {
        Ok((self.counter(COUNT_CERTS)?, self.counter(COUNT_DEVICES)?))
    }

    fn audit_entries(&self, from: u64, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    fn serial_by_fingerprint(&self, fingerprint: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.fingerprints.get(fingerprint)?.map(|v| v.to_vec()))
    }

    fn apply_trust_changes(
        &self,
        changes: &[TrustChange],
        at: i64,
    ) -> Result<Vec<TrustRecord>, StoreError> {
        let result = (&self.trust, &self.history, &self.audit, &self.meta).transaction(
            |(trust, history, audit, meta)| {
                changes
                    .iter()
                    .map(|c| tx_apply_trust_change(trust, history, audit, meta, c, at))
                    .collect::<Result<Vec<_>, _>>()
            },
        );
        let records = match result {
            Ok(r) => r,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        };
        self.db.flush()?;
        Ok(records)
    }

    fn transfer_trust(
        &self,
        from: &str,
        to: &str,
        actor: &str,
        reason: &str,
        at: i64,
    ) -> Result<TrustRecord, StoreError> {
        let result = (&self.trust, &self.history, &self.audit, &self.meta).transaction(
            |(trust, history, audit, meta)| {
                let mut src: TrustRecord = tx_get(trust, from.as_bytes())?
                    .ok_or_else(|| abort(StoreError::NotEnrolled(from.to_owned())))?;
                let mut dst: TrustRecord = tx_get(trust, to.as_bytes())?
                    .ok_or_else(|| abort(StoreError::NotEnrolled(to.to_owned())))?;
                if src.status == TrustStatus::Retired {
                    return Err(abort(StoreError::NotActive {
                        identity: from.to_owned(),
                        status: "retired".into(),
                    }));
                }
                // The successor carries the predecessor's history first, then
                // the transfer itself, renumbered after its own versions. The
                // history is read here, inside the transaction, so a change
                // committed meanwhile is neither lost nor copied half.
                let mut old_history = Vec::new();
                for v in 1..=src.version {
                    if let Some(h) = tx_get::<HistoryEntry>(history, &history_key(from, v))? {
                        old_history.push(h);
                    }
                }
                for h in &old_history {
                    dst.version += 1;
                    let mut copy = h.clone();
                    copy.change = format!("[from {from} v{}] {}", h.version, h.change);
                    copy.version = dst.version;
                    tx_put(history, &history_key(to, dst.version), &copy)?;
                }
                dst.version += 1;
                dst.level = src.level;
                dst.status = src.status;
                dst.updated_at = at;
                tx_put(
                    history,
                    &history_key(to, dst.version),
                    &HistoryEntry {
                        version: dst.version,
                        at,
                        actor: actor.to_owned(),
                        change: format!(
                            "took over the trust record of {from} (level {}, {})",
                            src.level,
                            src.status.as_str()
                        ),
                        reason: reason.to_owned(),
                    },
                )?;
                tx_put(trust, to.as_bytes(), &dst)?;
                src.version += 1;
                src.status = TrustStatus::Retired;
                src.updated_at = at;
                tx_put(
                    history,
                    &history_key(from, src.version),
                    &HistoryEntry {
                        version: src.version,
                        at,
                        actor: actor.to_owned(),
                        change: format!("retired: replaced by successor {to}"),
                        reason: reason.to_owned(),
                    },
                )?;
                tx_put(trust, from.as_bytes(), &src)?;
                let detail = format!("{{\"successor\":{to:?},\"reason\":{reason:?}}}");
                tx_append_audit(audit, meta, at, actor, "trust.transferred", from, &detail)?;
                Ok(dst)
            },
        );
        let record = match result {
            Ok(r) => r,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        };
        self.db.flush()?;
        Ok(record)
    }

    fn audit_entries_raw(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.audit
            .range(from.to_be_bytes()..)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                let index =
                    u64::from_be_bytes(k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                        key: "audit".into(),
                        reason: "key is not an index".into(),
                    })?);
                Ok((index, v.to_vec()))
            })
            .collect()
    }

    fn audit_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let frontier = match self.meta.get(AUDIT_FRONTIER)? {
            Some(v) => {
                trustca_audit::MerkleFrontier::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                    key: "audit.frontier".into(),
                    reason: e.to_string(),
                })?
            }
            None => trustca_audit::MerkleFrontier::new(),
        };
        Ok((frontier.size(), frontier.root()))
    }

    fn store_tree_head(&self, size: u64, signed_head: &[u8]) -> Result<(), StoreError> {
        self.heads.insert(size.to_be_bytes(), signed_head)?;
        self.heads.flush()?;
        Ok(())
    }

    fn tree_heads(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.heads
            .iter()
            .values()
            .map(|v| Ok(v?.to_vec()))
            .collect()
    }

    fn revoke(
        &self,
        serials: &[Vec<u8>],
        reason: u8,
        actor: &str,
        note: &str,
        at: i64,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let result = (
            &self.certs,
            &self.revoked,
            &self.audit,
            &self.meta,
            &self.devices,
            &self.trust,
            &self.history,
            &self.blocked_keys,
        )
            .transaction(
                |(certs, revoked, audit, meta, devices, trust, history, blocked_keys)| {
                    let trees = RevocationTrees {
                        certs,
                        revoked,
                        audit,
                        meta,
                        devices,
                        trust,
                        history,
                        blocked_keys,
                    };
                    tx_revoke(&trees, serials, reason, actor, note, at)
                },
            );
        let changed = match result {
            Ok(r) => r,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        };
        self.db.flush()?;
        Ok(changed)
    }

    fn blocked_key(&self, key_fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, StoreError> {
        Self::get(&self.blocked_keys, key_fingerprint)
    }

    fn revoked_in_sector(&self, sector: &str) -> Result<Vec<(Vec<u8>, i64, u8)>, StoreError> {
        let mut prefix = sector.as_bytes().to_vec();
        prefix.push(0);
        self.revoked
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, v) = kv?;
                if v.len() != 9 {
                    return Err(StoreError::Corrupt {
                        key: "revoked".into(),
                        reason: "bad value length".into(),
                    });
                }
                let at = i64::from_be_bytes(v[..8].try_into().unwrap_or([0; 8]));
                Ok((k[prefix.len()..].to_vec(), at, v[8]))
            })
            .collect()
    }

    fn next_crl_number(&self, sector: &str) -> Result<u64, StoreError> {
        let key = format!("crl.number.{sector}");
        let next = self.meta.update_and_fetch(key.as_bytes(), |old| {
            let n = old
                .and_then(|v| v.try_into().ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            Some((n + 1).to_be_bytes().to_vec())
        })?;
        self.meta.flush()?;
        Ok(next
            .and_then(|v| v.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    fn blob_put(
        &self,
        space: &str,
        records: &[crate::KeyValue],
        create_only: bool,
        audit: Option<&crate::BlobAudit>,
    ) -> Result<(), StoreError> {
        let result =
            (&self.blobs, &self.audit, &self.meta).transaction(|(blobs, audit_tree, meta)| {
                for (k, v) in records {
                    let key = blob_key(space, k);
                    if create_only && blobs.get(&key)?.is_some() {
                        return Err(abort(StoreError::Backend(format!(
                            "{space}: key already exists"
                        ))));
                    }
                    blobs.insert(key, v.as_slice())?;
                }
                if let Some(a) = audit {
                    tx_append_audit(
                        audit_tree, meta, a.at, &a.actor, &a.kind, &a.subject, &a.detail,
                    )?;
                }
                Ok(())
            });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(e.into()),
        }
        self.db.flush()?;
        Ok(())
    }

    fn blob_get(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.blobs.get(blob_key(space, key))?.map(|v| v.to_vec()))
    }

    fn blob_scan(&self, space: &str, prefix: &[u8]) -> Result<Vec<crate::KeyValue>, StoreError> {
        let full = blob_key(space, prefix);
        let skip = space.len() + 1;
        self.blobs
            .scan_prefix(full)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k[skip..].to_vec(), v.to_vec()))
            })
            .collect()
    }

    fn devices_with_prefix(&self, prefix: &str) -> Result<Vec<DeviceRecord>, StoreError> {
        self.devices
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                decode(&k, &v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn issuance(serial: u8, key: &str, renewal: bool) -> Issuance {
        Issuance {
            certificate: CertificateRecord {
                serial: vec![serial; 16],
                der: vec![0x30, 0x00],
                sector: "automotive".into(),
                kind: "long-term".into(),
                identity_key: Some(key.into()),
                issued_at: 1_700_000_000,
                not_after: 1_800_000_000,
                status: CertificateStatus::Active,
            },
            device: Some(DeviceRecord {
                identity_key: key.into(),
                urn: format!("urn:{key}"),
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

    #[test]
    fn issuance_is_atomic_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path()).unwrap();
        let r = s.commit_issuances(&[
            issuance(1, "a", false),
            issuance(2, "a", false),
            issuance(1, "b", false),
        ]);
        assert!(r[0].is_ok());
        assert!(matches!(r[1], Err(StoreError::AlreadyEnrolled(_))));
        assert!(matches!(r[2], Err(StoreError::SerialReused(_))));
        // The failed ones left nothing behind.
        assert!(s.device("b").unwrap().is_none());
        assert!(s.certificate(&[2; 16]).unwrap().is_none());
        assert_eq!(s.counts().unwrap(), (1, 1));
        assert_eq!(s.audit_entries(0, 10).unwrap().len(), 1);
        assert_eq!(s.history("a").unwrap().len(), 1);
    }

    #[test]
    fn renewal_supersedes_and_bumps_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path()).unwrap();
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
        assert!(hist[1].change.contains("3->5"), "{}", hist[1].change);
    }

    #[test]
    fn a_renewal_keeps_a_level_set_by_an_operator() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path()).unwrap();
        assert!(s.commit_issuances(&[issuance(1, "a", false)])[0].is_ok());
        let lower = TrustChange {
            identity_key: "a".into(),
            level: Some(1),
            status: None,
            actor: "operator:ops".into(),
            change: "level 3 -> 1".into(),
            reason: "unpatched CVE".into(),
            audit_kind: "trust.level-changed".into(),
        };
        s.apply_trust_changes(&[lower], 5).unwrap();
        for serial in [2, 3] {
            let mut renew = issuance(serial, "a", true);
            renew.device.as_mut().unwrap().certificate_level = 5;
            assert!(s.commit_issuances(&[renew])[0].is_ok());
            assert_eq!(s.trust_record("a").unwrap().unwrap().level, 1);
        }
    }

    #[test]
    fn transfer_copies_every_change_committed_before_it() {
        // A change racing a transfer must be either copied to the
        // successor or recorded after the predecessor's retirement, never
        // lost between a read outside the transaction and the transaction.
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SledStorage::open(dir.path()).unwrap());
        let rounds = 100u8;
        for i in 0..rounds {
            let r = s.commit_issuances(&[
                issuance(i, &format!("a{i}"), false),
                issuance(100 + i, &format!("b{i}"), false),
            ]);
            assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
        }
        let changer = {
            let s = std::sync::Arc::clone(&s);
            std::thread::spawn(move || {
                for i in 0..rounds {
                    for _ in 0..6 {
                        let c = TrustChange {
                            identity_key: format!("a{i}"),
                            level: Some(2),
                            status: None,
                            actor: "gateway:g".into(),
                            change: "level 3 -> 2".into(),
                            reason: "anomaly".into(),
                            audit_kind: "anomaly.action".into(),
                        };
                        s.apply_trust_changes(&[c], 7).unwrap();
                    }
                }
            })
        };
        for i in 0..rounds {
            // Let the changer reach this device before transferring it.
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
                .find(|h| h.change.starts_with("retired"))
                .unwrap()
                .version;
            let copied = s
                .history(&format!("b{i}"))
                .unwrap()
                .iter()
                .filter(|h| h.change.starts_with(&format!("[from a{i} ")))
                .count() as u64;
            assert_eq!(
                copied,
                retired - 1,
                "device a{i}: changes before the transfer were lost"
            );
        }
    }

    #[test]
    fn audit_entries_are_merkle_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path()).unwrap();
        for i in 0..5u8 {
            assert!(s.commit_issuances(&[issuance(i + 1, &format!("d{i}"), false)])[0].is_ok());
        }
        let entries = s.audit_entries(0, 100).unwrap();
        assert_eq!(entries.len(), 5);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.seq, i as u64);
            assert_eq!(e.leaf_hash, trustca_audit::leaf_hash(&e.leaf_bytes()));
        }
        let (size, root) = s.audit_head().unwrap();
        assert_eq!(size, 5);
        let hashes: Vec<[u8; 32]> = entries.iter().map(|e| e.leaf_hash).collect();
        assert_eq!(root, trustca_audit::root_at(&hashes, 5).unwrap());
    }

    #[test]
    fn trust_changes_are_all_or_nothing_and_leave_history() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStorage::open(dir.path()).unwrap();
        assert!(
            s.commit_issuances(&[issuance(1, "a", false), issuance(2, "b", false)])
                .iter()
                .all(|r| r.is_ok())
        );
        let change = |key: &str| TrustChange {
            identity_key: key.into(),
            level: Some(1),
            status: Some(TrustStatus::Suspended),
            actor: "operator:ops".into(),
            change: "level 3->1".into(),
            reason: "CVE-2026-0001".into(),
            audit_kind: "trust.changed".into(),
        };
        // One unknown device: nothing at all changes.
        assert!(matches!(
            s.apply_trust_changes(&[change("a"), change("zz")], 5),
            Err(StoreError::NotEnrolled(_))
        ));
        assert_eq!(s.trust_record("a").unwrap().unwrap().version, 1);
        let out = s
            .apply_trust_changes(&[change("a"), change("b")], 5)
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
                .any(|e| e.change.contains("[from a v2]"))
        );
        assert_eq!(s.devices_with_prefix("a").unwrap().len(), 1);
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStorage::open(dir.path()).unwrap();
            assert!(s.commit_issuances(&[issuance(1, "a", false)])[0].is_ok());
            s.flush().unwrap();
        }
        let s = SledStorage::open(dir.path()).unwrap();
        assert!(s.device("a").unwrap().is_some());
        assert_eq!(s.counts().unwrap(), (1, 1));
    }
}
