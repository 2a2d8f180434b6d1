//! Opaque record spaces, imports of a copied store, and the sealing of
//! records written before seals existed.

use super::*;

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
                t.insert_certificate(c, &fingerprint(&c.der), Stamp::Copy(*seal))?;
            }
            StoredRecord::Device(d, seal) => {
                t.put_device(d, Stamp::Copy(*seal))?;
            }
            StoredRecord::Trust(r, seal) => {
                t.put_trust(r, Stamp::Copy(*seal))?;
            }
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
                    crate::codec::encode_as(c, trailer.encoding).map_err(T::fail)?,
                    trailer,
                )?;
                t.update_certificate(c, Stamp::Copy(*trailer))?;
            }
            StoredRecord::Device(d, trailer) => {
                check(
                    Sealed::Device,
                    d.identity_key.clone(),
                    crate::codec::encode_as(d, trailer.encoding).map_err(T::fail)?,
                    trailer,
                )?;
                t.put_device(d, Stamp::Copy(*trailer))?;
            }
            StoredRecord::Trust(r, trailer) => {
                check(
                    Sealed::Trust,
                    r.identity_key.clone(),
                    crate::codec::encode_as(r, trailer.encoding).map_err(T::fail)?,
                    trailer,
                )?;
                t.put_trust(r, Stamp::Copy(*trailer))?;
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
