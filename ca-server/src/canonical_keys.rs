//! ETSI TS 102 941 canonical keys (`docs/v2x-etsi.md`): the P-256 key an
//! ITS station signs its first enrolment with, registered by the
//! manufacturer of a device it enrolled, so that the EU enrolment
//! authority links the station to the device record and its live trust
//! level. Over the network the manufacturer is the caller's credential
//! ([`EnrollmentEngine::register_canonical_key`]); offline, at a stopped
//! CA, the operator names it ([`register_canonical_key`]). Either way the
//! device must be the manufacturer's, a key is never replaced, and the
//! registration is audited.

use trustca_model::{CertificateKind, Credential, DeviceIdentity};
use trustca_store::{BlobAudit, Storage};
use trustca_v2x::PublicKeyP256;

use crate::{CaError, EnrollmentEngine};

/// Record space of canonical keys, by device identity key.
pub const CANONICAL_SPACE: &str = "etsi.canonical";

/// Longest device URN accepted (the identity's parts are bounded too).
const MAX_URN: usize = 512;

/// A registered canonical key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredKey {
    /// The device's URN as enrolled.
    pub urn: String,
    /// The key registered.
    pub key: PublicKeyP256,
    /// The device's live trust level (its enrolment credential's).
    pub trust_level: u8,
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical key `sec1` (33 or 65 octets) as a P-256 point.
pub fn canonical_key(sec1: &[u8]) -> Result<PublicKeyP256, CaError> {
    if !matches!(sec1.len(), 33 | 65) {
        return Err(CaError::InvalidRequest(format!(
            "the canonical key has {} octets; a SEC1 P-256 point has 33 or 65",
            sec1.len()
        )));
    }
    PublicKeyP256::from_sec1(sec1).map_err(|e| {
        CaError::InvalidRequest(format!("the canonical key is not a P-256 point: {e}"))
    })
}

/// The identity of the device URN `urn`.
fn identity(urn: &str) -> Result<DeviceIdentity, CaError> {
    if urn.len() > MAX_URN {
        return Err(CaError::InvalidRequest(format!(
            "the device URN has {} octets (at most {MAX_URN})",
            urn.len()
        )));
    }
    DeviceIdentity::from_urn(urn)
        .map_err(|e| CaError::InvalidRequest(format!("{urn:?} is not a device URN: {e}")))
}

/// Registers `key` for the device `urn` on behalf of `manufacturer`
/// (compared ignoring ASCII case, as an operator types it; the network
/// path compares exactly first). `actor` is the audit entry's actor.
pub fn register_canonical_key(
    storage: &dyn Storage,
    manufacturer: &str,
    actor: &str,
    urn: &str,
    key: &PublicKeyP256,
    now: i64,
) -> Result<RegisteredKey, CaError> {
    let id = identity(urn)?.key();
    let device = storage
        .device(&id)?
        .ok_or_else(|| CaError::NotFound(format!("{urn} is not enrolled")))?;
    if !device.manufacturer.eq_ignore_ascii_case(manufacturer) {
        return Err(CaError::PermissionDenied(format!(
            "{urn} is not a device of manufacturer {manufacturer}"
        )));
    }
    let trust = storage
        .trust_record(&id)?
        .ok_or_else(|| CaError::NotFound(format!("{urn} has no trust record")))?;
    if storage.blob_get(CANONICAL_SPACE, id.as_bytes())?.is_some() {
        return Err(CaError::AlreadyRegistered(format!(
            "{urn} already has a canonical key (it is never replaced)"
        )));
    }
    let audit = BlobAudit {
        actor: actor.to_owned(),
        kind: "etsi.canonical-key".into(),
        subject: device.urn.clone(),
        detail: format!(r#"{{"key":"{}"}}"#, hex_of(&key.compressed())),
        at: now,
    };
    // create_only: a concurrent registration of the same device fails here.
    let record = (id.into_bytes(), key.compressed().to_vec());
    storage.blob_put(CANONICAL_SPACE, &[record], true, Some(&audit))?;
    Ok(RegisteredKey {
        urn: device.urn,
        key: *key,
        trust_level: trust.level,
    })
}

impl EnrollmentEngine {
    /// Registers the canonical key `sec1` of the device `urn` for the
    /// calling manufacturer: its credential must be a manufacturer's,
    /// authorized for the device's sector and naming exactly the device's
    /// manufacturer.
    pub fn register_canonical_key(
        &self,
        caller: &Credential,
        urn: &str,
        sec1: &[u8],
        now: i64,
    ) -> Result<RegisteredKey, CaError> {
        if caller.kind != CertificateKind::Manufacturer {
            return Err(CaError::PermissionDenied(format!(
                "only a manufacturer registers canonical keys, not a {}",
                caller.kind.as_str()
            )));
        }
        let key = canonical_key(sec1)?;
        let identity = identity(urn)?;
        if !caller.may_act_for(&identity.sector) {
            return Err(CaError::PermissionDenied(format!(
                "manufacturer {} is not authorized for sector {}",
                caller.name, identity.sector
            )));
        }
        if identity.manufacturer != caller.name {
            return Err(CaError::PermissionDenied(format!(
                "{urn} is not a device of manufacturer {} (names are case-sensitive)",
                caller.name
            )));
        }
        let actor = crate::enroll::actor(caller);
        register_canonical_key(self.store(), &caller.name, &actor, urn, &key, now)
    }
}
