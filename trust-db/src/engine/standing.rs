//! What the store says about a locally held device, remembered while the
//! store is unchanged.
//!
//! `Decide` asks about the same devices again and again. Each answer needs
//! the device's trust record, the presented certificate's record (is it
//! revoked?), the key's block entry and the device record (its URN): four
//! reads that decode and check sealed records, most of a `Decide`'s time
//! once the chain and the assertion are cached. The store's change marker
//! ([`Storage::change_marker`]) differs after every write, so an entry
//! read under the marker read now is exactly what the store would answer:
//! revocations, blocks and trust changes count from the next query on, as
//! before. A backend without a marker (PostgreSQL replicas, which have
//! their own read cache) is read every time.
//!
//! Bounded: at most [`MAX_ENTRIES`] devices and [`MAX_BYTES`] (one entry
//! each, about 400 bytes with its strings, counted); a full cache is
//! emptied.

use std::sync::{Arc, Mutex};

use trustca_model::DeviceIdentity;
use trustca_store::{CertificateStatus, Storage, TrustRecord};

use super::bounded::Bounded;
use crate::TrustDbError;

/// Devices remembered before the cache is emptied ...
pub(crate) const MAX_ENTRIES: usize = 65_536;
/// ... and bytes of them.
pub(crate) const MAX_BYTES: usize = 32 << 20;

/// The store's part of a device's live state.
#[derive(Debug)]
pub(crate) struct StoredStanding {
    /// The trust record.
    pub record: TrustRecord,
    /// The record's status, or revoked when the certificate presented or
    /// its key is revoked.
    pub status: trustca_model::TrustStatus,
    /// Why, beyond the record: the certificate's and the key's revocation.
    pub notes: Vec<String>,
    /// Why the record itself is revoked (its last certificate's reason).
    pub record_note: Option<String>,
    /// The device's URN as enrolled.
    pub urn: String,
}

impl StoredStanding {
    /// What a standing owns: itself (behind its `Arc`) and its strings.
    fn heap_bytes(&self) -> usize {
        size_of::<Self>()
            + self.record.identity_key.len()
            + self.record.sector.len()
            + self
                .notes
                .iter()
                .map(|n| n.len() + size_of::<String>())
                .sum::<usize>()
            + self.record_note.as_ref().map_or(0, String::len)
            + self.urn.len()
    }
}

struct Entry {
    marker: u64,
    serial: Option<Vec<u8>>,
    key_fp: Option<[u8; 32]>,
    standing: Arc<StoredStanding>,
}

/// Standings by identity key, each valid under one change marker.
pub(crate) struct StandingCache {
    entries: Mutex<Bounded<String, Entry>>,
}

impl Default for StandingCache {
    fn default() -> Self {
        Self {
            entries: Mutex::new(Bounded::new(MAX_ENTRIES, MAX_BYTES)),
        }
    }
}

impl std::fmt::Debug for StandingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandingCache").finish_non_exhaustive()
    }
}

impl StandingCache {
    /// The standing of `identity` (identity key `key`) as the store holds
    /// it now, for the certificate `serial` with key `key_fp`.
    pub(crate) fn get(
        &self,
        storage: &dyn Storage,
        identity: &DeviceIdentity,
        key: &str,
        serial: Option<&[u8]>,
        key_fp: Option<&[u8; 32]>,
    ) -> Result<Arc<StoredStanding>, TrustDbError> {
        // Read before any record: a write after this point changes it.
        let Some(marker) = storage.change_marker() else {
            return read(storage, identity, key, serial, key_fp).map(Arc::new);
        };
        if let Ok(entries) = self.entries.lock()
            && let Some(e) = entries.get(key)
            && e.marker == marker
            && e.serial.as_deref() == serial
            && e.key_fp.as_ref() == key_fp
        {
            return Ok(Arc::clone(&e.standing));
        }
        let standing = Arc::new(read(storage, identity, key, serial, key_fp)?);
        if let Ok(mut entries) = self.entries.lock() {
            let bytes = key.len() + serial.map_or(0, <[u8]>::len) + standing.heap_bytes();
            entries.insert(
                key.to_owned(),
                Entry {
                    marker,
                    serial: serial.map(<[u8]>::to_vec),
                    key_fp: key_fp.copied(),
                    standing: Arc::clone(&standing),
                },
                bytes,
            );
        }
        Ok(standing)
    }
}

/// Reads a device's standing from the store.
fn read(
    storage: &dyn Storage,
    identity: &DeviceIdentity,
    key: &str,
    serial: Option<&[u8]>,
    key_fp: Option<&[u8; 32]>,
) -> Result<StoredStanding, TrustDbError> {
    let record = storage.trust_record(key)?.ok_or_else(|| {
        TrustDbError::NotFound(format!(
            "{} is not enrolled in the {} database",
            identity.urn(),
            identity.sector
        ))
    })?;
    let mut status = record.status;
    let mut notes = Vec::new();
    if let Some(serial) = serial
        && let Some(cert) = storage.certificate(serial)?
        && let CertificateStatus::Revoked { reason, .. } = cert.status
    {
        status = trustca_model::TrustStatus::Revoked;
        notes.push(format!(
            "certificate revoked ({}, reason code {reason})",
            trustca_model::revocation::reason_name(reason)
        ));
    }
    // A key revoked for compromise counts in every certificate that
    // carries it, including ones issued before the compromise was known.
    if let Some(key_fp) = key_fp
        && let Some(block) = storage.blocked_key(key_fp)?
    {
        status = trustca_model::TrustStatus::Revoked;
        notes.push(format!(
            "key was revoked for compromise on {}",
            block.date()
        ));
    }
    let device = storage.device(key)?;
    let record_note = (record.status == trustca_model::TrustStatus::Revoked)
        .then(|| revocation_note(storage, device.as_ref()))
        .transpose()?;
    let urn = device.map(|d| d.urn).unwrap_or_else(|| identity.urn());
    Ok(StoredStanding {
        record,
        status,
        notes,
        record_note,
        urn,
    })
}

/// Why a device's record is `revoked`: its last certificate's reason.
fn revocation_note(
    storage: &dyn Storage,
    device: Option<&trustca_store::DeviceRecord>,
) -> Result<String, TrustDbError> {
    let last = device
        .and_then(|d| d.certificates.last())
        .and_then(|h| trustca_model::hexfmt::decode(h));
    let status = match last {
        Some(serial) => storage.certificate(&serial)?.map(|c| c.status),
        None => None,
    };
    Ok(match status {
        Some(CertificateStatus::Revoked { reason, at }) => format!(
            "device revoked: every certificate is revoked (last for {} on {})",
            trustca_model::revocation::reason_name(reason),
            time::OffsetDateTime::from_unix_timestamp(at)
                .ok()
                .and_then(|t| t
                    .format(&time::format_description::well_known::Rfc3339)
                    .ok())
                .unwrap_or_default()
        ),
        _ => "device revoked".to_owned(),
    })
}
