//! The store's rules, written once for every backend: what an issuance, a
//! trust change, a transfer, a revocation and an opaque-record write read
//! and write, and which audit entries they append.
//!
//! A backend provides [`RecordTxn`] — typed reads and writes inside one of
//! its transactions — and runs one of the functions here inside that
//! transaction. It decides nothing itself, so sled and PostgreSQL cannot
//! drift apart on renewal superseding, record versions, history copying,
//! key blocking or the Merkle frontier.

use trustca_audit::MerkleFrontier;
use trustca_model::hexfmt;
use trustca_model::revocation::{KEY_COMPROMISE, reason_name};

use crate::records::encode;
use crate::seal::{self, Sealed, Stamp};
use crate::{
    AuditEntry, BlobAudit, BlockedKey, CertificateRecord, CertificateStatus, DeviceRecord,
    HistoryEntry, Issuance, KeyValue, StoreError, StoredRecord, TrustChange, TrustRecord,
    TrustStatus,
};

/// Typed reads and writes inside one backend transaction. `Fail` is the
/// backend's way of aborting (sled also retries conflicts through it).
pub(crate) trait RecordTxn {
    /// Aborts the transaction.
    type Fail;
    /// Turns a rule's refusal into an abort.
    fn fail(e: StoreError) -> Self::Fail;

    fn certificate(&self, serial: &[u8]) -> Result<Option<CertificateRecord>, Self::Fail>;
    /// Stores a new certificate, sealed as `stamp` says, and its
    /// fingerprint index entry.
    fn insert_certificate(
        &self,
        record: &CertificateRecord,
        fingerprint: &[u8; 32],
        stamp: Stamp,
    ) -> Result<(), Self::Fail>;
    /// Rewrites a stored certificate (status changes only).
    fn update_certificate(
        &self,
        record: &CertificateRecord,
        stamp: Stamp,
    ) -> Result<(), Self::Fail>;
    fn device(&self, identity_key: &str) -> Result<Option<DeviceRecord>, Self::Fail>;
    /// Writes a device record sealed as `stamp` says: to the audit entry
    /// that commits to its digest, or as copied (`seal.rs`).
    fn put_device(&self, record: &DeviceRecord, stamp: Stamp) -> Result<(), Self::Fail>;
    fn trust(&self, identity_key: &str) -> Result<Option<TrustRecord>, Self::Fail>;
    /// Writes a trust record sealed as `stamp` says.
    fn put_trust(&self, record: &TrustRecord, stamp: Stamp) -> Result<(), Self::Fail>;
    fn history_entry(
        &self,
        identity_key: &str,
        version: u64,
    ) -> Result<Option<HistoryEntry>, Self::Fail>;
    fn put_history(&self, identity_key: &str, entry: &HistoryEntry) -> Result<(), Self::Fail>;
    fn blocked_key(&self, fingerprint: &[u8; 32]) -> Result<Option<BlockedKey>, Self::Fail>;
    fn put_blocked_key(&self, fingerprint: &[u8; 32], block: &BlockedKey)
    -> Result<(), Self::Fail>;
    /// Indexes a revocation for the sector's CRL.
    fn put_revoked(
        &self,
        sector: &str,
        serial: &[u8],
        at: i64,
        reason: u8,
    ) -> Result<(), Self::Fail>;
    /// The Merkle frontier of the audit log as committed.
    fn audit_frontier(&self) -> Result<MerkleFrontier, Self::Fail>;
    fn put_audit_entry(&self, entry: &AuditEntry) -> Result<(), Self::Fail>;
    fn put_audit_frontier(&self, frontier: &MerkleFrontier) -> Result<(), Self::Fail>;
    /// Adds to the certificate and device counters.
    fn add_counts(&self, certificates: u64, devices: u64) -> Result<(), Self::Fail>;
    fn blob(&self, space: &str, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Fail>;
    /// Stores an opaque record's bytes as given (sealed already, or a copy).
    fn put_blob(&self, space: &str, key: &[u8], value: &[u8]) -> Result<(), Self::Fail>;
    /// The seal records are written under, if the store has one.
    fn record_seal(&self) -> Option<&crate::RecordSeal>;
    fn put_tree_head(&self, size: u64, head: &[u8]) -> Result<(), Self::Fail>;
    /// Sets the last CRL number of a sector (copying a store only).
    fn set_crl_number(&self, sector: &str, number: u64) -> Result<(), Self::Fail>;
    /// Reads ahead what [`issue_group`] will read about `batch`, for
    /// backends where each read is a round trip.
    fn prefetch_issuances(&self, batch: &[Issuance]) -> Result<(), Self::Fail> {
        let _ = batch;
        Ok(())
    }
}

/// The audit log as one transaction sees it: entries are numbered from the
/// committed frontier, and the frontier is written once at the end.
pub(crate) struct AuditAppend {
    frontier: MerkleFrontier,
}

impl AuditAppend {
    pub(crate) fn load<T: RecordTxn>(t: &T) -> Result<Self, T::Fail> {
        Ok(Self {
            frontier: t.audit_frontier()?,
        })
    }

    /// The sequence number the next appended entry gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.frontier.size()
    }

    pub(crate) fn append<T: RecordTxn>(
        &mut self,
        t: &T,
        at: i64,
        actor: &str,
        kind: &str,
        subject: &str,
        detail: &str,
    ) -> Result<(), T::Fail> {
        let mut entry = AuditEntry {
            seq: self.frontier.size(),
            at,
            actor: actor.to_owned(),
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            detail: detail.to_owned(),
            leaf_hash: [0; 32],
        };
        let (_, leaf) = self
            .frontier
            .push_entry(&entry.leaf_bytes())
            .map_err(|e| T::fail(StoreError::Backend(format!("audit log: {e}"))))?;
        entry.leaf_hash = leaf;
        t.put_audit_entry(&entry)
    }

    pub(crate) fn save<T: RecordTxn>(self, t: &T) -> Result<(), T::Fail> {
        t.put_audit_frontier(&self.frontier)
    }
}

/// The key fingerprint of a stored certificate; `None` for DER that does
/// not parse (only hand-made test records), which carries no key to block.
fn key_of(der: &[u8]) -> Option<[u8; 32]> {
    trustca_model::certificate_key_fingerprint(der).ok()
}

/// SHA-256 of a certificate's DER: the fingerprint index key.
pub(crate) fn fingerprint(der: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// What an audit entry commits to about a record it writes: table, key
/// and the SHA-256 of the record's encoding (the `binds` member).
type Binding = (Sealed, String, [u8; 32]);

fn binding<T: RecordTxn, R: serde::Serialize>(
    table: Sealed,
    key: &str,
    record: &R,
) -> Result<Binding, T::Fail> {
    Ok((
        table,
        key.to_owned(),
        seal::digest(&encode(record).map_err(T::fail)?),
    ))
}

/// `detail` with the `binds` member naming the records this entry wrote.
fn with_binds(detail: &str, binds: &[Binding]) -> String {
    with_member(detail, "binds", &seal::binds_json(binds))
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

/// Commits a whole group of issuances in the caller's transaction. Each
/// issuance's checks run before any of its writes, so a refused one writes
/// nothing while the others commit; counters and the Merkle frontier are
/// written once. The outer error aborts the whole group.
pub(crate) fn issue_group<T: RecordTxn>(
    t: &T,
    batch: &[Issuance],
) -> Result<Vec<Result<(), StoreError>>, T::Fail> {
    t.prefetch_issuances(batch)?;
    let mut log = AuditAppend::load(t)?;
    let mut results = Vec::with_capacity(batch.len());
    let (mut new_certs, mut new_devices) = (0u64, 0u64);
    for issuance in batch {
        let r = issue_one(t, &mut log, issuance)?;
        if let Ok(new_device) = &r {
            new_certs += 1;
            new_devices += u64::from(*new_device);
        }
        results.push(r.map(|_| ()));
    }
    if new_certs > 0 {
        t.add_counts(new_certs, new_devices)?;
        log.save(t)?;
    }
    Ok(results)
}

/// Applies one issuance. The inner result is the item's own outcome
/// (Ok(new device?) or why it was refused — decided before any write).
fn issue_one<T: RecordTxn>(
    t: &T,
    log: &mut AuditAppend,
    issuance: &Issuance,
) -> Result<Result<bool, StoreError>, T::Fail> {
    let cert = &issuance.certificate;
    let serial_hex = hexfmt::encode(&cert.serial);
    if t.certificate(&cert.serial)?.is_some() {
        return Ok(Err(StoreError::SerialReused(serial_hex)));
    }
    let new_key = key_of(&cert.der);
    // Inside the issuing transaction, so that a revocation committed a
    // moment earlier cannot be overtaken.
    if let Some(key) = &new_key
        && let Some(block) = t.blocked_key(key)?
    {
        return Ok(Err(StoreError::KeyCompromised { on: block.date() }));
    }
    let mut new_device = false;
    let mut binds = Vec::new();
    if let Some(device) = &issuance.device {
        let existing = t.device(&device.identity_key)?;
        let (record, trust_record, change, reenrolled, superseded) =
            match (existing, issuance.renewal) {
                (Some(_), false) => {
                    return Ok(Err(StoreError::AlreadyEnrolled(device.urn.clone())));
                }
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
                    let change = format!("enrolled level={}", device.certificate_level);
                    (record, trust_record, change, false, None)
                }
                (Some(old), true) => match renewal(t, issuance, device, old, &serial_hex, new_key)?
                {
                    Ok(r) => r,
                    Err(refused) => return Ok(Err(refused)),
                },
            };
        // Both records are sealed to the certificate's issuance entry,
        // which comes after the re-enrolment entry when there is one.
        let bind_seq = log.next_seq() + u64::from(reenrolled);
        t.put_device(&record, Stamp::Seal(bind_seq))?;
        t.put_trust(&trust_record, Stamp::Seal(bind_seq))?;
        binds.push(binding::<T, _>(
            Sealed::Device,
            &device.identity_key,
            &record,
        )?);
        binds.push(binding::<T, _>(
            Sealed::Trust,
            &device.identity_key,
            &trust_record,
        )?);
        if let Some(prev) = &superseded {
            t.update_certificate(prev, Stamp::Seal(bind_seq))?;
            let key = hexfmt::encode(&prev.serial);
            binds.push(binding::<T, _>(Sealed::Certificate, &key, prev)?);
        }
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
        t.put_history(&device.identity_key, &entry)?;
        if reenrolled {
            let detail = format!(
                "{{\"identity\":{},\"certificate\":\"{serial_hex}\",\"level\":{},\"status\":\"active\",\"version\":{}}}",
                json_str(&device.urn),
                trust_record.level,
                trust_record.version
            );
            log.append(
                t,
                cert.issued_at,
                &issuance.actor,
                "device.re-enrolled",
                &device.identity_key,
                &detail,
            )?;
        }
    }
    let digest = fingerprint(&cert.der);
    t.insert_certificate(cert, &digest, Stamp::Seal(log.next_seq()))?;
    binds.push(binding::<T, _>(Sealed::Certificate, &serial_hex, cert)?);
    // The entry commits to the certificate's bytes, so that `store check`
    // can tell a damaged certificate record from the one issued.
    let detail = with_der_digest(&issuance.audit_detail, &digest);
    let detail = with_binds(&detail, &binds);
    log.append(
        t,
        cert.issued_at,
        &issuance.actor,
        &issuance.audit_kind,
        &serial_hex,
        &detail,
    )?;
    Ok(Ok(new_device))
}

/// `detail` (a JSON object) with `"der_sha256"` added as its last member.
fn with_der_digest(detail: &str, digest: &[u8; 32]) -> String {
    with_member(
        detail,
        "der_sha256",
        &format!("\"{}\"", hexfmt::encode(digest)),
    )
}

/// `detail` (a JSON object) with `"name":value` added as its last member.
fn with_member(detail: &str, name: &str, value: &str) -> String {
    let member = format!("\"{name}\":{value}");
    let body = detail.trim_end();
    match body.strip_suffix('}') {
        Some(open) if open.trim_end().ends_with('{') => format!("{open}{member}}}"),
        Some(open) => format!("{open},{member}}}"),
        // Not an object: keep the caller's text and the digest side by side.
        None => format!("{{\"detail\":{},{member}}}", json_str(detail)),
    }
}

/// The renewed device and trust records, the history text, whether the
/// device came back from `revoked`, and its certificate now superseded.
type RenewalWrites = (
    DeviceRecord,
    TrustRecord,
    String,
    bool,
    Option<CertificateRecord>,
);

/// A renewal of an enrolled device: supersedes its last certificate, keeps
/// a level decided by an operator, and lets a revoked device come back only
/// with a key none of its certificates carried.
fn renewal<T: RecordTxn>(
    t: &T,
    issuance: &Issuance,
    device: &DeviceRecord,
    old: DeviceRecord,
    serial_hex: &str,
    new_key: Option<[u8; 32]>,
) -> Result<Result<RenewalWrites, StoreError>, T::Fail> {
    let cert = &issuance.certificate;
    let Some(mut trust_record) = t.trust(&device.identity_key)? else {
        return Ok(Err(StoreError::NotEnrolled(device.urn.clone())));
    };
    let mut reenrolled = false;
    if trust_record.status == TrustStatus::Revoked {
        // Every certificate was revoked: coming back is an explicit
        // renewal with a key none of them carried.
        for prev in &old.certificates {
            let prev_serial = hexfmt::decode(prev).unwrap_or_default();
            if let Some(prev_cert) = t.certificate(&prev_serial)?
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
        reenrolled = true;
    } else if trust_record.status != TrustStatus::Active {
        return Ok(Err(StoreError::NotActive {
            identity: device.urn.clone(),
            status: trust_record.status.as_str().to_owned(),
        }));
    }
    // Written by the caller, sealed to the new certificate's entry.
    let mut superseded = None;
    if let Some(prev) = old.certificates.last() {
        let prev_serial = hexfmt::decode(prev).unwrap_or_default();
        if let Some(mut prev_cert) = t.certificate(&prev_serial)?
            && prev_cert.status == CertificateStatus::Active
        {
            prev_cert.status = CertificateStatus::Superseded {
                by: serial_hex.to_owned(),
            };
            superseded = Some(prev_cert);
        }
    }
    let mut record = device.clone();
    record.enrolled_at = old.enrolled_at;
    record.certificates = old.certificates;
    record.certificates.push(serial_hex.to_owned());
    let last = t.history_entry(&device.identity_key, trust_record.version)?;
    // An operator's (or anomaly template's) decision outranks fresh
    // evidence: a renewal may lower the live level, never raise it past
    // that decision.
    let decided = last.as_ref().is_none_or(|h| !set_by_evidence(h));
    let level = if decided {
        trust_record.level.min(device.certificate_level)
    } else {
        device.certificate_level
    };
    let mut change = format!(
        "{} firmware={} level {}->{level}",
        // Still "renewed ..." so later renewals read it as set by evidence
        // (see `set_by_evidence`).
        if reenrolled {
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
    Ok(Ok((record, trust_record, change, reenrolled, superseded)))
}

/// A JSON string literal (audit details are JSON; Rust's `{:?}` escapes
/// differently from JSON for control characters and non-ASCII).
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Applies every change or none; returns the records after the change.
pub(crate) fn apply_trust_changes<T: RecordTxn>(
    t: &T,
    changes: &[TrustChange],
    at: i64,
) -> Result<Vec<TrustRecord>, T::Fail> {
    let mut log = AuditAppend::load(t)?;
    let out = change_records(t, &mut log, changes, at)?;
    log.save(t)?;
    Ok(out)
}

fn change_records<T: RecordTxn>(
    t: &T,
    log: &mut AuditAppend,
    changes: &[TrustChange],
    at: i64,
) -> Result<Vec<TrustRecord>, T::Fail> {
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        let mut record = t
            .trust(&c.identity_key)?
            .ok_or_else(|| T::fail(StoreError::NotEnrolled(c.identity_key.clone())))?;
        if let Some(level) = c.level {
            record.level = level;
        }
        if let Some(status) = c.status {
            record.status = status;
        }
        record.version += 1;
        record.updated_at = at;
        t.put_trust(&record, Stamp::Seal(log.next_seq()))?;
        t.put_history(
            &c.identity_key,
            &HistoryEntry {
                version: record.version,
                at,
                actor: c.actor.clone(),
                change: c.change.clone(),
                reason: c.reason.clone(),
            },
        )?;
        let detail = format!(
            "{{\"change\":{},\"reason\":{},\"level\":{},\"status\":\"{}\",\"version\":{}}}",
            json_str(&c.change),
            json_str(&c.reason),
            record.level,
            record.status.as_str(),
            record.version
        );
        let detail = with_binds(
            &detail,
            &[binding::<T, _>(Sealed::Trust, &c.identity_key, &record)?],
        );
        log.append(t, at, &c.actor, &c.audit_kind, &c.identity_key, &detail)?;
        out.push(record);
    }
    Ok(out)
}

/// Writes opaque records with their audit entry and applies trust changes
/// with theirs, as one transaction: a model registry change and the move
/// of every affected device's live level (see
/// [`crate::Storage::commit_model_change`]).
pub(crate) fn commit_model_change<T: RecordTxn>(
    t: &T,
    space: &str,
    records: &[KeyValue],
    audit: &BlobAudit,
    changes: &[TrustChange],
) -> Result<Vec<TrustRecord>, T::Fail> {
    for (k, v) in records {
        t.put_blob(space, k, &seal::seal_blob(t.record_seal(), space, k, v))?;
    }
    let mut log = AuditAppend::load(t)?;
    // The entry commits to each record's bytes, so what is read later can
    // be compared with it (`vouched.rs`).
    let detail = with_member(
        &audit.detail,
        crate::vouched::BLOBS_MEMBER,
        &crate::vouched::blobs_json(space, records),
    );
    log.append(
        t,
        audit.at,
        &audit.actor,
        &audit.kind,
        &audit.subject,
        &detail,
    )?;
    let out = change_records(t, &mut log, changes, audit.at)?;
    log.save(t)?;
    Ok(out)
}

/// Moves the trust of `from` to its successor `to`: `to` gets a copy of
/// the history, then the level and status; `from` is retired.
pub(crate) fn transfer_trust<T: RecordTxn>(
    t: &T,
    from: &str,
    to: &str,
    actor: &str,
    reason: &str,
    at: i64,
) -> Result<TrustRecord, T::Fail> {
    let mut src = t
        .trust(from)?
        .ok_or_else(|| T::fail(StoreError::NotEnrolled(from.to_owned())))?;
    let mut dst = t
        .trust(to)?
        .ok_or_else(|| T::fail(StoreError::NotEnrolled(to.to_owned())))?;
    if src.status == TrustStatus::Retired {
        return Err(T::fail(StoreError::NotActive {
            identity: from.to_owned(),
            status: "retired".into(),
        }));
    }
    let mut log = AuditAppend::load(t)?;
    // The history is read inside the transaction, so a change committed
    // meanwhile is neither lost nor copied half.
    for v in 1..=src.version {
        if let Some(h) = t.history_entry(from, v)? {
            dst.version += 1;
            let mut copy = h.clone();
            copy.change = format!("[from {from} v{}] {}", h.version, h.change);
            copy.version = dst.version;
            t.put_history(to, &copy)?;
        }
    }
    dst.version += 1;
    dst.level = src.level;
    dst.status = src.status;
    dst.updated_at = at;
    t.put_history(
        to,
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
    t.put_trust(&dst, Stamp::Seal(log.next_seq()))?;
    src.version += 1;
    src.status = TrustStatus::Retired;
    src.updated_at = at;
    t.put_history(
        from,
        &HistoryEntry {
            version: src.version,
            at,
            actor: actor.to_owned(),
            change: format!("retired: replaced by successor {to}"),
            reason: reason.to_owned(),
        },
    )?;
    t.put_trust(&src, Stamp::Seal(log.next_seq()))?;
    let detail = format!(
        "{{\"successor\":{},\"reason\":{}}}",
        json_str(to),
        json_str(reason)
    );
    let detail = with_binds(
        &detail,
        &[
            binding::<T, _>(Sealed::Trust, to, &dst)?,
            binding::<T, _>(Sealed::Trust, from, &src)?,
        ],
    );
    log.append(t, at, actor, "trust.transferred", from, &detail)?;
    log.save(t)?;
    Ok(dst)
}

/// Revokes `serials` (see [`crate::Storage::revoke`]): marks and indexes
/// each certificate, blocks its key on keyCompromise (and revokes the
/// device's other certificates with that key), and moves a device left
/// without a valid certificate to `revoked`. Kept in one function so that
/// every path that revokes gets all of it.
pub(crate) fn revoke<T: RecordTxn>(
    t: &T,
    serials: &[Vec<u8>],
    reason: u8,
    actor: &str,
    note: &str,
    at: i64,
) -> Result<Vec<CertificateRecord>, T::Fail> {
    let mut log = AuditAppend::load(t)?;
    let mut changed: Vec<CertificateRecord> = Vec::new();
    let mut queue: Vec<Vec<u8>> = serials.to_vec();
    let mut devices_touched: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(serial) = queue.get(i).cloned() {
        // Serials the caller named must exist; ones added by the key sweep
        // below come from device records and are re-read here.
        let named = i < serials.len();
        i += 1;
        let Some(mut rec) = t.certificate(&serial)? else {
            if named {
                return Err(T::fail(StoreError::NotEnrolled(format!(
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
        t.update_certificate(&rec, Stamp::Seal(log.next_seq()))?;
        t.put_revoked(&rec.sector, &serial, at, reason)?;
        let serial_hex = hexfmt::encode(&serial);
        let identity = rec.identity_key.clone().unwrap_or_default();
        let detail = format!(
            "{{\"reason_code\":{reason},\"sector\":{},\"identity\":{},\"note\":{}}}",
            json_str(&rec.sector),
            json_str(&identity),
            json_str(note)
        );
        let detail = with_binds(
            &detail,
            &[binding::<T, _>(Sealed::Certificate, &serial_hex, &rec)?],
        );
        log.append(t, at, actor, "certificate.revoked", &serial_hex, &detail)?;
        if let Some(device) = &rec.identity_key
            && !devices_touched.contains(device)
        {
            devices_touched.push(device.clone());
        }
        if reason == KEY_COMPROMISE
            && let Some(fp) = key_of(&rec.der)
        {
            if t.blocked_key(&fp)?.is_none() {
                let block = BlockedKey {
                    at,
                    serial: serial_hex.clone(),
                    identity_key: rec.identity_key.clone(),
                    actor: actor.to_owned(),
                };
                t.put_blocked_key(&fp, &block)?;
                let detail = format!(
                    "{{\"certificate\":\"{serial_hex}\",\"identity\":{},\"note\":{}}}",
                    json_str(&identity),
                    json_str(note)
                );
                log.append(t, at, actor, "key.blocked", &hexfmt::encode(&fp), &detail)?;
            }
            // A renewal may have kept the key: every certificate of the
            // device that carries it is compromised with it.
            if let Some(identity_key) = &rec.identity_key
                && let Some(device) = t.device(identity_key)?
            {
                for other in device.certificates.iter().filter_map(|h| hexfmt::decode(h)) {
                    if queue.contains(&other) {
                        continue;
                    }
                    if let Some(o) = t.certificate(&other)?
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
        retire_if_no_valid_certificate(t, &mut log, &identity_key, reason, actor, note, at)?;
    }
    log.save(t)?;
    Ok(changed)
}

/// Moves a device whose every certificate is revoked or expired to
/// `revoked`, with its history and audit entries.
fn retire_if_no_valid_certificate<T: RecordTxn>(
    t: &T,
    log: &mut AuditAppend,
    identity_key: &str,
    reason: u8,
    actor: &str,
    note: &str,
    at: i64,
) -> Result<(), T::Fail> {
    let Some(device) = t.device(identity_key)? else {
        return Ok(());
    };
    for serial in device.certificates.iter().filter_map(|h| hexfmt::decode(h)) {
        if let Some(c) = t.certificate(&serial)?
            && !matches!(c.status, CertificateStatus::Revoked { .. })
            && c.not_after > at
        {
            return Ok(());
        }
    }
    let Some(mut record) = t.trust(identity_key)? else {
        return Ok(());
    };
    if !matches!(record.status, TrustStatus::Active | TrustStatus::Suspended) {
        return Ok(());
    }
    record.status = TrustStatus::Revoked;
    record.version += 1;
    record.updated_at = at;
    t.put_trust(&record, Stamp::Seal(log.next_seq()))?;
    let change = format!(
        "revoked: no valid certificate left (last revoked for {})",
        reason_name(reason)
    );
    let why = if note.is_empty() {
        reason_name(reason).to_owned()
    } else {
        note.to_owned()
    };
    t.put_history(
        identity_key,
        &HistoryEntry {
            version: record.version,
            at,
            actor: actor.to_owned(),
            change: change.clone(),
            reason: why.clone(),
        },
    )?;
    let detail = format!(
        "{{\"change\":{},\"reason\":{},\"level\":{},\"status\":\"revoked\",\"version\":{}}}",
        json_str(&change),
        json_str(&why),
        record.level,
        record.version
    );
    let detail = with_binds(
        &detail,
        &[binding::<T, _>(Sealed::Trust, identity_key, &record)?],
    );
    log.append(t, at, actor, "trust.revoked", identity_key, &detail)
}

/// Writes opaque records of one space and, with them, an optional audit
/// entry. Refuses to overwrite an existing key when `create_only`.
pub(crate) fn put_blobs<T: RecordTxn>(
    t: &T,
    space: &str,
    records: &[KeyValue],
    create_only: bool,
    audit: Option<&BlobAudit>,
) -> Result<(), T::Fail> {
    let vouched = crate::VOUCHED_SPACES.contains(&space);
    if vouched && audit.is_none() && !records.is_empty() {
        return Err(T::fail(StoreError::Backend(format!(
            "{space}: every record is vouched for by the audit log, so a write needs an audit entry"
        ))));
    }
    for (k, v) in records {
        if create_only && t.blob(space, k)?.is_some() {
            return Err(T::fail(StoreError::Backend(format!(
                "{space}: key already exists"
            ))));
        }
        t.put_blob(space, k, &seal::seal_blob(t.record_seal(), space, k, v))?;
    }
    if let Some(a) = audit {
        let detail = if vouched {
            with_member(
                &a.detail,
                crate::vouched::BLOBS_MEMBER,
                &crate::vouched::blobs_json(space, records),
            )
        } else {
            a.detail.clone()
        };
        let mut log = AuditAppend::load(t)?;
        log.append(t, a.at, &a.actor, &a.kind, &a.subject, &detail)?;
        log.save(t)?;
    }
    Ok(())
}

/// Writes records exported from another store (see
/// [`crate::Storage::import`]).
pub(crate) fn import<T: RecordTxn>(t: &T, records: &[StoredRecord]) -> Result<(), T::Fail> {
    let mut log = AuditAppend::load(t)?;
    let mut audited = false;
    for record in records {
        match record {
            StoredRecord::Certificate(c, seal) => {
                t.insert_certificate(c, &fingerprint(&c.der), Stamp::Copy(*seal))?
            }
            StoredRecord::Device(d, seal) => t.put_device(d, Stamp::Copy(*seal))?,
            StoredRecord::Trust(r, seal) => t.put_trust(r, Stamp::Copy(*seal))?,
            StoredRecord::History(key, h) => t.put_history(key, h)?,
            StoredRecord::Audit(entry) => {
                append_made(&mut log, t, entry)?;
                audited = true;
            }
            StoredRecord::TreeHead(size, head) => t.put_tree_head(*size, head)?,
            StoredRecord::Revoked(sector, serial, at, reason) => {
                t.put_revoked(sector, serial, *at, *reason)?
            }
            StoredRecord::BlockedKey(fp, block) => t.put_blocked_key(fp, block)?,
            StoredRecord::Blob(space, key, value) => t.put_blob(space, key, value)?,
            StoredRecord::CrlNumber(sector, n) => t.set_crl_number(sector, *n)?,
            StoredRecord::Counts(certificates, devices) => t.add_counts(*certificates, *devices)?,
        }
    }
    if audited {
        log.save(t)?;
    }
    Ok(())
}

/// Appends an entry made outside this transaction (a copied one, the
/// sealing of legacy records): it must continue the log exactly and hash
/// to its leaf, so nothing else was appended since it was made.
fn append_made<T: RecordTxn>(
    log: &mut AuditAppend,
    t: &T,
    entry: &AuditEntry,
) -> Result<(), T::Fail> {
    let expected = log.frontier.size();
    if entry.seq != expected {
        return Err(T::fail(StoreError::Corrupt {
            key: format!("audit {}", entry.seq),
            reason: format!("the log continues at {expected}"),
        }));
    }
    let (_, leaf) = log
        .frontier
        .push_entry(&entry.leaf_bytes())
        .map_err(|e| T::fail(StoreError::Backend(format!("audit log: {e}"))))?;
    if leaf != entry.leaf_hash {
        return Err(T::fail(StoreError::Corrupt {
            key: format!("audit {}", entry.seq),
            reason: "its leaf hash does not match its content".into(),
        }));
    }
    t.put_audit_entry(entry)
}

/// Rewrites records a build before record seals stored, each sealed to
/// `entry` (see [`crate::Storage::seal_legacy_records`]). The entry must
/// continue the log — a write by anyone since the records were read moves
/// the log and aborts this — and commit to every record (`binds`).
pub(crate) fn seal_legacy<T: RecordTxn>(
    t: &T,
    entry: &AuditEntry,
    records: &[StoredRecord],
) -> Result<(), T::Fail> {
    let mut log = AuditAppend::load(t)?;
    append_made(&mut log, t, entry)?;
    let bound: std::collections::HashSet<(Sealed, String, [u8; 32])> =
        seal::bindings(&entry.detail).into_iter().collect();
    let check = |table: Sealed, key: String, body: Vec<u8>, trailer: &seal::SealTrailer| {
        if trailer.seq != entry.seq || !bound.contains(&(table, key.clone(), seal::digest(&body))) {
            return Err(T::fail(StoreError::Backend(format!(
                "{} {key}: not sealed to audit entry {} or not committed by it",
                table.name(),
                entry.seq
            ))));
        }
        Ok(())
    };
    for record in records {
        match record {
            StoredRecord::Certificate(c, trailer) => {
                check(
                    Sealed::Certificate,
                    hexfmt::encode(&c.serial),
                    encode(c).map_err(T::fail)?,
                    trailer,
                )?;
                t.update_certificate(c, Stamp::Copy(*trailer))?
            }
            StoredRecord::Device(d, trailer) => {
                check(
                    Sealed::Device,
                    d.identity_key.clone(),
                    encode(d).map_err(T::fail)?,
                    trailer,
                )?;
                t.put_device(d, Stamp::Copy(*trailer))?
            }
            StoredRecord::Trust(r, trailer) => {
                check(
                    Sealed::Trust,
                    r.identity_key.clone(),
                    encode(r).map_err(T::fail)?,
                    trailer,
                )?;
                t.put_trust(r, Stamp::Copy(*trailer))?
            }
            _ => {
                return Err(T::fail(StoreError::Backend(
                    "only certificate, device and trust records are sealed".into(),
                )));
            }
        }
    }
    log.save(t)
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn json_strings_escape_like_json() {
        assert_eq!(json_str("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
        let parsed: String = serde_json::from_str(&json_str("x\u{7}\"y\u{2028}")).unwrap();
        assert_eq!(parsed, "x\u{7}\"y\u{2028}");
    }
}
