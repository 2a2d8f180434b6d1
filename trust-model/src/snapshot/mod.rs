//! Signed trust snapshots: one file per sector (or for all sectors) that
//! lets a gateway or device decide offline exactly as the online `Decide`
//! RPC would — like a FIDO metadata BLOB. It carries the model registry's
//! levels, every device whose live state differs from its certificate,
//! the revoked certificates and blocked keys, and the cooperation and
//! recognition policies themselves, so the decision rules travel inside
//! the signed file.
//!
//! The body is canonical DER (`docs/trust-snapshot.asn1`): every list is
//! sorted and free of duplicates, so one snapshot has exactly one encoding
//! and two publishers of the same state produce the same bytes. The
//! signature is ECDSA P-256 with SHA-256 over the body as received, by a
//! root-issued service certificate, as for trust assertions. Test vector:
//! `testdata/trust-snapshot/`.
//!
//! Everything here is pure: the trust database builds snapshots from its
//! store, devices fetch them; this module encodes, verifies and decides.

use std::cmp::Ordering;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::chain::VerifiedChain;
use crate::cooperation::{DecisionOutcome, Standing, TrustPolicy};
use crate::der::{self, Reader};
use crate::extension::ExtensionOid;
use crate::registry::{FirmwareRange, ModelKey, ModelStatus};
use crate::{CertificateKind, DeviceIdentity, ModelError, SectorName, TrustLevel, TrustStatus};

const VERSION: u64 = 1;
/// The version that carries systems of linked devices
/// ([`crate::snapshot_systems`]); a snapshot without systems stays version 1.
const VERSION_SYSTEMS: u64 = 2;
/// The version that carries the root's trust list of foreign roots
/// ([`crate::snapshot_trust_list`]), with or without systems.
const VERSION_TRUST_LIST: u64 = 3;
const TAG_OCTET_STRING: u8 = 0x04;
/// `scope [0] IMPLICIT UTF8String OPTIONAL`: context-specific, primitive, 0.
const TAG_SCOPE: u8 = 0x80;

/// At most this many entries in each of the models, devices, revoked
/// certificates and blocked keys lists.
pub const MAX_ENTRIES: usize = 1_000_000;
/// At most this many sector names.
pub const MAX_SECTORS: usize = 1024;
/// At most this many bytes of TOML per embedded policy.
pub const MAX_POLICY_TEXT: usize = 1 << 20;
/// At most this many bytes in a device identity URN (as in assertions).
const MAX_IDENTITY: usize = 256;
/// At most this many bytes in a policy version string.
const MAX_VERSION_TEXT: usize = 64;
/// A certificate serial is at most 20 octets (RFC 5280), plus the zero
/// byte DER puts in front of a set high bit.
const MAX_SERIAL: usize = 21;
/// Clock skew tolerated on `issued_at`, as for trust assertions.
const FUTURE_SKEW: time::Duration = time::Duration::minutes(5);

/// PEM label of a snapshot file.
pub const PEM_LABEL: &str = "TRUSTCA TRUST SNAPSHOT";

fn bad(m: impl Into<String>) -> ModelError {
    ModelError::InvalidSnapshot(m.into())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Compares ASCII case-insensitively without allocating: identities and
/// model names are DNS labels, so `Acme` and `acme` are one name.
pub(crate) fn cmp_ci(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

fn model_status_code(s: ModelStatus) -> u64 {
    match s {
        ModelStatus::Certified => 0,
        ModelStatus::Provisional => 1,
        ModelStatus::Suspended => 2,
        ModelStatus::Withdrawn => 3,
    }
}

fn model_status_from_code(code: u64) -> Option<ModelStatus> {
    [
        ModelStatus::Certified,
        ModelStatus::Provisional,
        ModelStatus::Suspended,
        ModelStatus::Withdrawn,
    ]
    .into_iter()
    .find(|s| model_status_code(*s) == code)
}

/// A policy file carried inside the snapshot: its declared version and its
/// full TOML text, parsed by [`TrustPolicy::parse`] on the receiving side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedPolicy {
    /// The `version` the file declares (checked against the text when parsed).
    pub version: String,
    /// The whole file.
    pub text: String,
}

/// One model registry record as the snapshot states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotModel {
    /// The sector.
    pub sector: SectorName,
    /// Manufacturer name.
    pub manufacturer: String,
    /// Model name.
    pub model: String,
    /// Firmware versions covered.
    pub firmware: FirmwareRange,
    /// The level the sector's criteria give the model.
    pub level: TrustLevel,
    /// Where the model stands.
    pub status: ModelStatus,
    /// The model record version.
    pub record_version: u64,
    /// The sector policy version the level was assessed under.
    pub policy_version: String,
}

impl SnapshotModel {
    /// The canonical order: sector, manufacturer, model, firmware text,
    /// ASCII case-insensitively.
    fn order(&self, other: &Self) -> Ordering {
        cmp_ci(self.sector.as_str(), other.sector.as_str())
            .then_with(|| cmp_ci(&self.manufacturer, &other.manufacturer))
            .then_with(|| cmp_ci(&self.model, &other.model))
            .then_with(|| cmp_ci(&self.firmware.to_string(), &other.firmware.to_string()))
    }
}

/// A device whose live state differs from what its certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    /// The device identity URN, as enrolled.
    pub identity: String,
    /// Its live level.
    pub level: TrustLevel,
    /// Its live status.
    pub status: TrustStatus,
    /// Its trust record version.
    pub record_version: u64,
}

/// The signed body of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustSnapshot {
    /// Increases with every snapshot of the same scope, so a verifier can
    /// refuse to go back to an older one.
    pub serial: u64,
    /// The one sector this snapshot covers; `None` for all sectors.
    pub scope: Option<SectorName>,
    /// When it was made. DER keeps whole seconds only.
    pub issued_at: OffsetDateTime,
    /// Until when it may be relied on. DER keeps whole seconds only.
    pub next_update: OffsetDateTime,
    /// Every sector name the policies may mention (what
    /// [`TrustPolicy::parse`] validates against), sorted.
    pub sectors: Vec<SectorName>,
    /// `cooperation.toml` in force.
    pub cooperation_policy: EmbeddedPolicy,
    /// `recognition.toml` in force.
    pub recognition_policy: EmbeddedPolicy,
    /// Model registry records, sorted by (sector, manufacturer, model,
    /// firmware text), case-insensitively.
    pub models: Vec<SnapshotModel>,
    /// Devices whose live state differs from their certificate, sorted by
    /// identity case-insensitively. A device not listed is active at its
    /// certificate's level.
    pub devices: Vec<DeviceState>,
    /// Revoked certificates: (sector, serial as the DER INTEGER content
    /// octets, i.e. as the certificate carries it), sorted.
    pub revoked_certificates: Vec<(SectorName, Vec<u8>)>,
    /// SHA-256 of the SubjectPublicKeyInfo of every key revoked for
    /// compromise ([`crate::key_fingerprint`]), sorted.
    pub blocked_keys: Vec<[u8; 32]>,
    /// Systems of linked devices and the composition policy (version 2,
    /// optional in version 3); None in version 1.
    pub systems: Option<crate::snapshot_systems::SnapshotSystems>,
    /// The root's signed trust list of recognised foreign roots, DER as
    /// issued (version 3); None in versions 1 and 2.
    pub trust_list: Option<Vec<u8>>,
    /// CRLs of foreign sector CAs (DER), sorted, no duplicates; only with a
    /// trust list (version 3). Each counts only for peers of the CA it
    /// verifies under.
    pub foreign_crls: Vec<Vec<u8>>,
}

/// Whether `serial` is what a certificate's serial INTEGER holds: 1-21
/// octets, non-negative, minimal.
fn valid_serial(serial: &[u8]) -> bool {
    match serial {
        [] => false,
        [b, ..] if b & 0x80 != 0 => false,
        [0, b, ..] if b & 0x80 == 0 => false,
        _ => serial.len() <= MAX_SERIAL,
    }
}

/// Checks that `items` is strictly increasing under `order` (sorted, no
/// duplicates), naming the list and position of the first offence.
pub(crate) fn strictly_sorted<T>(
    list: &str,
    items: &[T],
    order: impl Fn(&T, &T) -> Ordering,
) -> Result<(), ModelError> {
    for (i, w) in items.windows(2).enumerate() {
        match order(&w[0], &w[1]) {
            Ordering::Less => {}
            Ordering::Equal => {
                return Err(bad(format!(
                    "{list}: entries {i} and {} are duplicates",
                    i + 1
                )));
            }
            Ordering::Greater => {
                return Err(bad(format!(
                    "{list}: entry {} is out of order (lists must be sorted so the encoding is canonical)",
                    i + 1
                )));
            }
        }
    }
    Ok(())
}

fn check_version_text(what: &str, v: &str) -> Result<(), ModelError> {
    if v.is_empty() || v.len() > MAX_VERSION_TEXT {
        return Err(bad(format!(
            "{what} version must be 1-{MAX_VERSION_TEXT} bytes"
        )));
    }
    Ok(())
}

mod codec;
mod offline;
mod signed;
#[cfg(test)]
pub(crate) mod tests;

pub use offline::{OfflineDecision, PeerCap, decide_offline, decide_offline_with_policy};
pub use signed::SignedSnapshot;
