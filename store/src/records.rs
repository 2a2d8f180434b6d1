//! The records the store keeps; `codec.rs` says how they are stored.

use serde::{Deserialize, Serialize};

use crate::StoreError;

pub(crate) use crate::codec::{decode, encode};

/// The state of one issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertificateStatus {
    /// Valid (subject to its validity period).
    Active,
    /// Replaced by a renewal; still valid until revoked or expired.
    Superseded {
        /// Serial (hex) of the replacing certificate.
        by: String,
    },
    /// Revoked.
    Revoked {
        /// RFC 5280 reason code.
        reason: u8,
        /// Unix time of revocation.
        at: i64,
    },
}

/// One issued certificate, by serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Serial number bytes (big-endian, positive).
    pub serial: Vec<u8>,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Issuing sector.
    pub sector: String,
    /// Certificate kind (kebab-case).
    pub kind: String,
    /// Identity key of the device, for device certificates.
    pub identity_key: Option<String>,
    /// Unix time of issuance.
    pub issued_at: i64,
    /// Unix time of expiry.
    pub not_after: i64,
    /// Current status.
    pub status: CertificateStatus,
}

/// What was enrolled about a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Identity key (lower-case `sector/manufacturer/model/serial`).
    pub identity_key: String,
    /// The URN as enrolled (original case).
    pub urn: String,
    /// Sector.
    pub sector: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial.
    pub serial: String,
    /// Firmware version at the last (re)enrollment.
    pub firmware_version: String,
    /// Level computed at the last (re)enrollment.
    pub certificate_level: u8,
    /// Policy version that computed it.
    pub policy_version: String,
    /// Unix time of first enrollment.
    pub enrolled_at: i64,
    /// Serials (hex) of every certificate bound to the device, oldest first.
    pub certificates: Vec<String>,
}

pub use trustca_model::{DeviceChange, TrustStatus};

/// The live trust record of a device; outranks the level in its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustRecord {
    /// Identity key.
    pub identity_key: String,
    /// Sector.
    pub sector: String,
    /// Current level.
    pub level: u8,
    /// Current status.
    pub status: TrustStatus,
    /// Incremented on every change; history entries carry it.
    pub version: u64,
    /// Unix time of the last change.
    pub updated_at: i64,
}

/// One change of a trust record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Record version after the change.
    pub version: u64,
    /// Unix time.
    pub at: i64,
    /// Who made it (from their certificate).
    pub actor: String,
    /// What changed (stored as its text, e.g. `enrolled level=4`; a text
    /// of no known form reads as [`DeviceChange::Recorded`]).
    pub change: DeviceChange,
    /// Why.
    pub reason: String,
}

/// One entry of the append-only audit log. Entries are the leaves of a
/// Merkle tree (RFC 9162 hashing, `trustca-audit`): `leaf_hash` is the
/// leaf hash of [`AuditEntry::leaf_bytes`], and signed tree heads commit to
/// every entry up to their size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Unix time.
    pub at: i64,
    /// Who caused it.
    pub actor: String,
    /// Event kind, e.g. `certificate.issued`.
    pub kind: String,
    /// What it is about (identity URN, serial).
    pub subject: String,
    /// Details as compact JSON.
    pub detail: String,
    /// Merkle leaf hash of `leaf_bytes()`.
    pub leaf_hash: [u8; 32],
}

impl AuditEntry {
    /// Decodes a stored entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        decode(b"audit", bytes)
    }

    /// The canonical bytes hashed into the tree: a domain tag, then every
    /// field length-prefixed, so no two entries share an encoding.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            64 + self.actor.len() + self.kind.len() + self.subject.len() + self.detail.len(),
        );
        out.extend_from_slice(b"trustca-audit-entry-v1\0");
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.at.to_be_bytes());
        for field in [&self.actor, &self.kind, &self.subject, &self.detail] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }
}

/// A public key revoked for compromise, keyed by the SHA-256 of its
/// SubjectPublicKeyInfo. Written in the same transaction as the revocation
/// and never removed: no certificate for this key is issued again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockedKey {
    /// Unix time of the revocation that blocked it.
    pub at: i64,
    /// Serial (hex) of the certificate whose revocation blocked it.
    pub serial: String,
    /// Identity key of that certificate's device, if it was a device's.
    pub identity_key: Option<String>,
    /// Who revoked it (from their certificate).
    pub actor: String,
}

impl BlockedKey {
    /// The revocation time as RFC 3339 text, for messages.
    pub fn date(&self) -> String {
        time::OffsetDateTime::from_unix_timestamp(self.at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| format!("unix time {}", self.at))
    }
}

/// Everything one issuance changes, committed atomically.
#[derive(Debug, Clone)]
pub struct Issuance {
    /// The new certificate.
    pub certificate: CertificateRecord,
    /// The device record to write (new, or updated for a renewal).
    pub device: Option<DeviceRecord>,
    /// Whether this renews an existing identity (else it must be new).
    pub renewal: bool,
    /// Who asked for it (from their certificate).
    pub actor: String,
    /// Audit event kind.
    pub audit_kind: String,
    /// Audit details (JSON).
    pub audit_detail: String,
}

/// One change to a trust record, applied with its history and audit entry.
#[derive(Debug, Clone)]
pub struct TrustChange {
    /// The device.
    pub identity_key: String,
    /// New level, if it changes.
    pub level: Option<u8>,
    /// New status, if it changes.
    pub status: Option<TrustStatus>,
    /// Who (from their certificate).
    pub actor: String,
    /// What (the history's entry).
    pub change: DeviceChange,
    /// Why (given by the operator).
    pub reason: String,
    /// Audit event kind, e.g. `trust.level-changed`.
    pub audit_kind: String,
}

/// One stored record of any kind, as `Storage::export` yields them and
/// `Storage::import` takes them: what `trustca store copy` moves between
/// backends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoredRecord {
    /// A certificate and its seal (its fingerprint index entry is rebuilt).
    Certificate(CertificateRecord, crate::SealTrailer),
    /// A device record and its seal.
    Device(DeviceRecord, crate::SealTrailer),
    /// A live trust record and its seal.
    Trust(TrustRecord, crate::SealTrailer),
    /// One history entry of an identity key.
    History(String, HistoryEntry),
    /// One audit entry; imported in sequence order, its leaf re-checked.
    Audit(AuditEntry),
    /// A signed tree head (encoded) for a tree size.
    TreeHead(u64, Vec<u8>),
    /// A revocation index entry: sector, serial, unix time, reason code.
    Revoked(String, Vec<u8>, i64, u8),
    /// A key blocked for compromise, by SPKI fingerprint.
    BlockedKey([u8; 32], BlockedKey),
    /// An opaque record: space, key, value.
    Blob(String, Vec<u8>, Vec<u8>),
    /// The last CRL number allocated for a sector.
    CrlNumber(String, u64),
    /// The certificate and device counters.
    Counts(u64, u64),
}
