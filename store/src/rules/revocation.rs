//! Revocation: certificates revoked, compromised keys blocked, and a
//! device left without a valid certificate moved to `revoked`.

use super::*;

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
        let rec_digest = t.update_certificate(&rec, Stamp::Seal(log.next_seq()))?;
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
            &[(Sealed::Certificate, serial_hex.clone(), rec_digest)],
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
    let record_digest = t.put_trust(&record, Stamp::Seal(log.next_seq()))?;
    let change = DeviceChange::CertificatesRevoked { reason };
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
        json_str(&change.to_string()),
        json_str(&why),
        record.level,
        record.version
    );
    let detail = with_binds(
        &detail,
        &[(Sealed::Trust, identity_key.to_owned(), record_digest)],
    );
    log.append(t, at, actor, "trust.revoked", identity_key, &detail)
}
