//! Issuance: a group of new certificates committed together, first
//! enrollments and renewals (superseding, kept decisions, re-enrollment
//! after revocation only with a new key).

use super::*;

/// Commits a whole group of issuances in the caller's transaction. Each
/// issuance's checks run before any of its writes, so a refused one writes
/// nothing while the others commit; counters and the Merkle frontier are
/// written once. The outer error aborts the whole group.
pub(crate) fn issue_group<T: RecordTxn>(
    t: &T,
    batch: &[Issuance],
) -> Result<Vec<Result<(), StoreError>>, T::Fail> {
    // Each certificate parsed once for its key, for the read-ahead and
    // the rules alike.
    let keys: Vec<Option<[u8; 32]>> = batch.iter().map(|i| key_of(&i.certificate.der)).collect();
    t.prefetch_issuances(batch, &keys)?;
    let mut log = AuditAppend::load(t)?;
    let mut results = Vec::with_capacity(batch.len());
    let (mut new_certs, mut new_devices) = (0u64, 0u64);
    for (issuance, new_key) in batch.iter().zip(keys) {
        let r = issue_one(t, &mut log, issuance, new_key)?;
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

/// Applies one issuance whose certificate carries the key `new_key`. The
/// inner result is the item's own outcome (Ok(new device?) or why it was
/// refused — decided before any write).
fn issue_one<T: RecordTxn>(
    t: &T,
    log: &mut AuditAppend,
    issuance: &Issuance,
    new_key: Option<[u8; 32]>,
) -> Result<Result<bool, StoreError>, T::Fail> {
    let cert = &issuance.certificate;
    let serial_hex = hexfmt::encode(&cert.serial);
    if t.certificate(&cert.serial)?.is_some() {
        return Ok(Err(StoreError::SerialReused(serial_hex)));
    }
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
                    let change = DeviceChange::Enrolled {
                        level: device.certificate_level,
                    };
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
        let device_digest = t.put_device(&record, Stamp::Seal(bind_seq))?;
        let trust_digest = t.put_trust(&trust_record, Stamp::Seal(bind_seq))?;
        binds.push((Sealed::Device, device.identity_key.clone(), device_digest));
        binds.push((Sealed::Trust, device.identity_key.clone(), trust_digest));
        if let Some(prev) = &superseded {
            let prev_digest = t.update_certificate(prev, Stamp::Seal(bind_seq))?;
            let key = hexfmt::encode(&prev.serial);
            binds.push((Sealed::Certificate, key, prev_digest));
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
    let cert_digest = t.insert_certificate(cert, &digest, Stamp::Seal(log.next_seq()))?;
    binds.push((Sealed::Certificate, serial_hex.clone(), cert_digest));
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

/// The renewed device and trust records, the history text, whether the
/// device came back from `revoked`, and its certificate now superseded.
type RenewalWrites = (
    DeviceRecord,
    TrustRecord,
    DeviceChange,
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
    // that decision. A renewal that kept one says so, so the next renewal
    // keeps it too.
    let decided = last
        .as_ref()
        .is_none_or(|h| !h.change.level_from_evidence());
    let level = if decided {
        trust_record.level.min(device.certificate_level)
    } else {
        device.certificate_level
    };
    let change = DeviceChange::Renewed {
        reenrolled,
        firmware: device.firmware_version.clone(),
        from: trust_record.level,
        to: level,
        decision_kept: decided.then_some(device.certificate_level),
    };
    trust_record.level = level;
    trust_record.version += 1;
    trust_record.updated_at = cert.issued_at;
    Ok(Ok((record, trust_record, change, reenrolled, superseded)))
}
