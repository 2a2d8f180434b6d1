//! Trust changes: operator and anomaly changes to live records, model
//! changes that move a fleet, and transfers to a successor device.

use super::*;

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
        let record_digest = t.put_trust(&record, Stamp::Seal(log.next_seq()))?;
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
            json_str(&c.change.to_string()),
            json_str(&c.reason),
            record.level,
            record.status.as_str(),
            record.version
        );
        let detail = with_binds(
            &detail,
            &[(Sealed::Trust, c.identity_key.clone(), record_digest)],
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
            let copy = HistoryEntry {
                version: dst.version,
                change: DeviceChange::Copied {
                    from: from.to_owned(),
                    version: h.version,
                    change: Box::new(h.change),
                },
                ..h
            };
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
            change: DeviceChange::TookOver {
                from: from.to_owned(),
                level: src.level,
                status: src.status,
            },
            reason: reason.to_owned(),
        },
    )?;
    let dst_digest = t.put_trust(&dst, Stamp::Seal(log.next_seq()))?;
    src.version += 1;
    src.status = TrustStatus::Retired;
    src.updated_at = at;
    t.put_history(
        from,
        &HistoryEntry {
            version: src.version,
            at,
            actor: actor.to_owned(),
            change: DeviceChange::ReplacedBy {
                successor: to.to_owned(),
            },
            reason: reason.to_owned(),
        },
    )?;
    let src_digest = t.put_trust(&src, Stamp::Seal(log.next_seq()))?;
    let detail = format!(
        "{{\"successor\":{},\"reason\":{}}}",
        json_str(to),
        json_str(reason)
    );
    let detail = with_binds(
        &detail,
        &[
            (Sealed::Trust, to.to_owned(), dst_digest),
            (Sealed::Trust, from.to_owned(), src_digest),
        ],
    );
    log.append(t, at, actor, "trust.transferred", from, &detail)?;
    log.save(t)?;
    Ok(dst)
}
