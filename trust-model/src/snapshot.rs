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

impl TrustSnapshot {
    /// Sorts every list into the canonical order [`TrustSnapshot::to_der`]
    /// requires. Duplicates are kept (and then refused by `to_der`): two
    /// states for one device are a bug to report, not to hide.
    pub fn sort(&mut self) {
        self.sectors.sort();
        self.models.sort_by(SnapshotModel::order);
        self.devices
            .sort_by(|a, b| cmp_ci(&a.identity, &b.identity));
        self.revoked_certificates.sort();
        self.blocked_keys.sort();
        if let Some(s) = &mut self.systems {
            s.sort();
        }
    }

    /// Whether the snapshot speaks for `sector`: it is a known sector and
    /// within the scope.
    pub(crate) fn covers(&self, sector: &SectorName) -> bool {
        self.sectors.binary_search(sector).is_ok()
            && self.scope.as_ref().is_none_or(|s| s == sector)
    }

    /// Checks every invariant the decoder enforces, so nothing is encoded
    /// that would not decode: bounds, names, canonical order, no
    /// duplicates, every entry within the scope.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (what, t) in [
            ("issued_at", self.issued_at),
            ("next_update", self.next_update),
        ] {
            if !(0..=9999).contains(&t.to_offset(time::UtcOffset::UTC).year()) {
                return Err(bad(format!("{what} year is out of range 0-9999")));
            }
        }
        if self.next_update < self.issued_at {
            return Err(bad("next_update is before issued_at"));
        }
        if self.sectors.is_empty() || self.sectors.len() > MAX_SECTORS {
            return Err(bad(format!("sectors must list 1-{MAX_SECTORS} names")));
        }
        strictly_sorted("sectors", &self.sectors, |a, b| a.cmp(b))?;
        if let Some(scope) = &self.scope
            && self.sectors.binary_search(scope).is_err()
        {
            return Err(bad(format!("scope {scope} is not among the sectors")));
        }
        for (what, p) in [
            ("cooperation policy", &self.cooperation_policy),
            ("recognition policy", &self.recognition_policy),
        ] {
            check_version_text(what, &p.version)?;
            if p.text.is_empty() || p.text.len() > MAX_POLICY_TEXT {
                return Err(bad(format!(
                    "{what} text must be 1-{MAX_POLICY_TEXT} bytes"
                )));
            }
        }
        for (what, n) in [
            ("models", self.models.len()),
            ("devices", self.devices.len()),
            ("revoked certificates", self.revoked_certificates.len()),
            ("blocked keys", self.blocked_keys.len()),
        ] {
            if n > MAX_ENTRIES {
                return Err(bad(format!(
                    "{what}: {n} entries, at most {MAX_ENTRIES} allowed"
                )));
            }
        }
        let outside = |what: &str, i: usize, sector: &SectorName| {
            bad(format!(
                "{what} {i}: sector {sector} is not covered by this snapshot (unknown or outside its scope)"
            ))
        };
        for (i, m) in self.models.iter().enumerate() {
            if !self.covers(&m.sector) {
                return Err(outside("model", i, &m.sector));
            }
            // The registry's own rules for names and ranges.
            ModelKey::new(
                m.sector.clone(),
                &m.manufacturer,
                &m.model,
                m.firmware.clone(),
            )
            .map_err(|e| bad(format!("model {i}: {e}")))?;
            FirmwareRange::parse(&m.firmware.to_string())
                .ok()
                .filter(|r| r == &m.firmware)
                .ok_or_else(|| bad(format!("model {i}: firmware range is not canonical")))?;
            check_version_text(&format!("model {i} policy"), &m.policy_version)?;
        }
        strictly_sorted("models", &self.models, SnapshotModel::order)?;
        for (i, d) in self.devices.iter().enumerate() {
            if d.identity.len() > MAX_IDENTITY {
                return Err(bad(format!(
                    "device {i}: identity longer than {MAX_IDENTITY} bytes"
                )));
            }
            let id = DeviceIdentity::from_urn(&d.identity)
                .map_err(|e| bad(format!("device {i}: {e}")))?;
            if !self.covers(&id.sector) {
                return Err(outside("device", i, &id.sector));
            }
        }
        strictly_sorted("devices", &self.devices, |a, b| {
            cmp_ci(&a.identity, &b.identity)
        })?;
        for (i, (sector, serial)) in self.revoked_certificates.iter().enumerate() {
            if !self.covers(sector) {
                return Err(outside("revoked certificate", i, sector));
            }
            if !valid_serial(serial) {
                return Err(bad(format!(
                    "revoked certificate {i}: serial must be 1-{MAX_SERIAL} octets of a minimal non-negative INTEGER"
                )));
            }
        }
        strictly_sorted(
            "revoked certificates",
            &self.revoked_certificates,
            |a, b| a.cmp(b),
        )?;
        strictly_sorted("blocked keys", &self.blocked_keys, |a, b| a.cmp(b))?;
        if let Some(s) = &self.systems {
            s.validate(self)?;
        }
        if let Some(l) = &self.trust_list {
            crate::snapshot_trust_list::validate(l)?;
        }
        crate::snapshot_trust_list::validate_crls(self)?;
        Ok(())
    }

    /// Canonical DER of the body (`docs/trust-snapshot.asn1`). Fails when
    /// [`TrustSnapshot::validate`] does (call [`TrustSnapshot::sort`] first).
    pub fn to_der(&self) -> Result<Vec<u8>, ModelError> {
        self.validate()?;
        let mut body = Vec::with_capacity(
            256 + self.cooperation_policy.text.len()
                + self.recognition_policy.text.len()
                + self.models.len() * 96
                + self.devices.len() * 64
                + self.revoked_certificates.len() * 32
                + self.blocked_keys.len() * 34,
        );
        let version = if self.trust_list.is_some() {
            VERSION_TRUST_LIST
        } else if self.systems.is_some() {
            VERSION_SYSTEMS
        } else {
            VERSION
        };
        der::write_small_uint(&mut body, der::TAG_INTEGER, version);
        der::write_small_uint(&mut body, der::TAG_INTEGER, self.serial);
        if let Some(scope) = &self.scope {
            der::write_tlv(&mut body, TAG_SCOPE, scope.as_str().as_bytes());
        }
        der::write_tlv(
            &mut body,
            der::TAG_GENERALIZED_TIME,
            &der::generalized_time(self.issued_at)?,
        );
        der::write_tlv(
            &mut body,
            der::TAG_GENERALIZED_TIME,
            &der::generalized_time(self.next_update)?,
        );
        let mut list = Vec::new();
        for s in &self.sectors {
            der::write_tlv(&mut list, der::TAG_UTF8, s.as_str().as_bytes());
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        for p in [&self.cooperation_policy, &self.recognition_policy] {
            let mut inner = Vec::with_capacity(p.text.len() + 80);
            der::write_tlv(&mut inner, der::TAG_UTF8, p.version.as_bytes());
            der::write_tlv(&mut inner, der::TAG_UTF8, p.text.as_bytes());
            der::write_tlv(&mut body, der::TAG_SEQUENCE, &inner);
        }
        list.clear();
        let mut entry = Vec::with_capacity(128);
        for m in &self.models {
            entry.clear();
            der::write_tlv(&mut entry, der::TAG_UTF8, m.sector.as_str().as_bytes());
            der::write_tlv(&mut entry, der::TAG_UTF8, m.manufacturer.as_bytes());
            der::write_tlv(&mut entry, der::TAG_UTF8, m.model.as_bytes());
            der::write_tlv(&mut entry, der::TAG_UTF8, m.firmware.to_string().as_bytes());
            der::write_small_uint(&mut entry, der::TAG_INTEGER, m.level.get() as u64);
            der::write_small_uint(&mut entry, der::TAG_ENUMERATED, model_status_code(m.status));
            der::write_small_uint(&mut entry, der::TAG_INTEGER, m.record_version);
            der::write_tlv(&mut entry, der::TAG_UTF8, m.policy_version.as_bytes());
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &entry);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        list.clear();
        for d in &self.devices {
            entry.clear();
            der::write_tlv(&mut entry, der::TAG_UTF8, d.identity.as_bytes());
            der::write_small_uint(&mut entry, der::TAG_INTEGER, d.level.get() as u64);
            der::write_small_uint(&mut entry, der::TAG_ENUMERATED, d.status.code());
            der::write_small_uint(&mut entry, der::TAG_INTEGER, d.record_version);
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &entry);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        list.clear();
        for (sector, serial) in &self.revoked_certificates {
            entry.clear();
            der::write_tlv(&mut entry, der::TAG_UTF8, sector.as_str().as_bytes());
            // The serial octets are already a minimal INTEGER (validated).
            der::write_tlv(&mut entry, der::TAG_INTEGER, serial);
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &entry);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        list.clear();
        for k in &self.blocked_keys {
            der::write_tlv(&mut list, TAG_OCTET_STRING, k);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        if let Some(s) = &self.systems {
            s.encode(&mut body);
        }
        if let Some(l) = &self.trust_list {
            crate::snapshot_trust_list::encode(&mut body, l, &self.foreign_crls);
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        der::write_tlv(&mut out, der::TAG_SEQUENCE, &body);
        Ok(out)
    }

    /// Strictly decodes a body: canonical DER only, known version, every
    /// [`TrustSnapshot::validate`] rule. `from_der(b)?.to_der()? == b`.
    pub fn from_der(input: &[u8]) -> Result<Self, ModelError> {
        let mut outer = Reader::new(input);
        let body = outer.read(der::TAG_SEQUENCE).map_err(bad)?;
        if !outer.is_empty() {
            return Err(bad("trailing bytes after the snapshot"));
        }
        let mut r = Reader::new(body);
        let version = r.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
        if ![VERSION, VERSION_SYSTEMS, VERSION_TRUST_LIST].contains(&version) {
            return Err(bad(format!("unsupported version {version}")));
        }
        let serial = r.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
        let scope = if r.peek_tag() == Some(TAG_SCOPE) {
            let text = std::str::from_utf8(r.read(TAG_SCOPE).map_err(bad)?)
                .map_err(|_| bad("scope is not valid UTF-8"))?;
            Some(sector(text, "scope")?)
        } else {
            None
        };
        let issued_at = read_time(&mut r)?;
        let next_update = read_time(&mut r)?;
        let mut sectors = Vec::new();
        let mut list = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
        while !list.is_empty() {
            if sectors.len() >= MAX_SECTORS {
                return Err(bad(format!("more than {MAX_SECTORS} sectors")));
            }
            sectors.push(sector(list.read_utf8().map_err(bad)?, "sectors")?);
        }
        let cooperation_policy = read_policy(&mut r)?;
        let recognition_policy = read_policy(&mut r)?;
        let models = read_list(&mut r, "models", |e| {
            let sector = sector(e.read_utf8().map_err(bad)?, "model")?;
            let manufacturer = e.read_utf8().map_err(bad)?.to_owned();
            let model = e.read_utf8().map_err(bad)?.to_owned();
            let firmware = FirmwareRange::parse(e.read_utf8().map_err(bad)?)
                .map_err(|x| bad(format!("model: {x}")))?;
            let level = read_level(e)?;
            let code = e.read_small_uint(der::TAG_ENUMERATED).map_err(bad)?;
            let status = model_status_from_code(code)
                .ok_or_else(|| bad(format!("unknown model status {code}")))?;
            let record_version = e.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
            let policy_version = e.read_utf8().map_err(bad)?.to_owned();
            Ok(SnapshotModel {
                sector,
                manufacturer,
                model,
                firmware,
                level,
                status,
                record_version,
                policy_version,
            })
        })?;
        let devices = read_list(&mut r, "devices", |e| {
            let identity = e.read_utf8().map_err(bad)?.to_owned();
            let level = read_level(e)?;
            let code = e.read_small_uint(der::TAG_ENUMERATED).map_err(bad)?;
            let status = TrustStatus::from_code(code)
                .ok_or_else(|| bad(format!("unknown device status {code}")))?;
            let record_version = e.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
            Ok(DeviceState {
                identity,
                level,
                status,
                record_version,
            })
        })?;
        let revoked_certificates = read_list(&mut r, "revoked certificates", |e| {
            let sector = sector(e.read_utf8().map_err(bad)?, "revoked certificate")?;
            let serial = e.read(der::TAG_INTEGER).map_err(bad)?.to_vec();
            Ok((sector, serial))
        })?;
        let mut blocked_keys = Vec::new();
        let mut list = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
        while !list.is_empty() {
            if blocked_keys.len() >= MAX_ENTRIES {
                return Err(bad(format!(
                    "blocked keys: more than {MAX_ENTRIES} entries"
                )));
            }
            let k: [u8; 32] = list
                .read(TAG_OCTET_STRING)
                .map_err(bad)?
                .try_into()
                .map_err(|_| bad("a blocked key fingerprint must be 32 bytes (SHA-256)"))?;
            blocked_keys.push(k);
        }
        // Version 2 has the systems, version 3 may have them and has the
        // trust list, version 1 has neither.
        let systems = match version {
            VERSION_SYSTEMS => Some(crate::snapshot_systems::SnapshotSystems::decode(&mut r)?),
            VERSION_TRUST_LIST if r.peek_tag() == Some(der::TAG_CONTEXT_1_CONSTRUCTED) => {
                Some(crate::snapshot_systems::SnapshotSystems::decode(&mut r)?)
            }
            _ => None,
        };
        let (trust_list, foreign_crls) = if version == VERSION_TRUST_LIST {
            let (list, crls) = crate::snapshot_trust_list::decode(&mut r)?;
            (Some(list), crls)
        } else {
            (None, Vec::new())
        };
        if !r.is_empty() {
            return Err(bad("trailing bytes inside the snapshot"));
        }
        let s = Self {
            serial,
            scope,
            issued_at,
            next_update,
            sectors,
            cooperation_policy,
            recognition_policy,
            models,
            devices,
            revoked_certificates,
            blocked_keys,
            systems,
            trust_list,
            foreign_crls,
        };
        s.validate()?;
        Ok(s)
    }

    /// Parses the embedded policies against the embedded sector names and
    /// checks that each declares the version the snapshot states.
    pub fn policy(&self) -> Result<TrustPolicy, ModelError> {
        let policy = TrustPolicy::parse(
            ("snapshot cooperation policy", &self.cooperation_policy.text),
            ("snapshot recognition policy", &self.recognition_policy.text),
            &self.sectors,
        )
        .map_err(|e| bad(format!("embedded policy: {e}")))?;
        for (what, declared, parsed) in [
            (
                "cooperation",
                &self.cooperation_policy.version,
                &policy.cooperation_version,
            ),
            (
                "recognition",
                &self.recognition_policy.version,
                &policy.recognition_version,
            ),
        ] {
            if declared != parsed {
                return Err(bad(format!(
                    "the {what} policy text is version {parsed:?} but the snapshot states {declared:?}"
                )));
            }
        }
        Ok(policy)
    }

    /// The listed state of a device, by identity URN (case-insensitively).
    pub fn device(&self, identity_urn: &str) -> Option<&DeviceState> {
        self.devices
            .binary_search_by(|d| cmp_ci(&d.identity, identity_urn))
            .ok()
            .map(|i| &self.devices[i])
    }

    /// Whether the certificate with this serial (DER INTEGER content
    /// octets) in `sector` is revoked.
    pub fn is_certificate_revoked(&self, sector: &SectorName, serial: &[u8]) -> bool {
        self.revoked_certificates
            .binary_search_by(|(s, n)| (s, n.as_slice()).cmp(&(sector, serial)))
            .is_ok()
    }

    /// Whether a key (by [`crate::key_fingerprint`]) is blocked.
    pub fn is_key_blocked(&self, key_fingerprint: &[u8; 32]) -> bool {
        self.blocked_keys.binary_search(key_fingerprint).is_ok()
    }

    /// The model record covering `firmware_version` of a model
    /// (manufacturer and model compare case-insensitively).
    pub fn model_for(
        &self,
        sector: &SectorName,
        manufacturer: &str,
        model: &str,
        firmware_version: &str,
    ) -> Option<&SnapshotModel> {
        let prefix = |m: &SnapshotModel| {
            cmp_ci(m.sector.as_str(), sector.as_str())
                .then_with(|| cmp_ci(&m.manufacturer, manufacturer))
                .then_with(|| cmp_ci(&m.model, model))
        };
        let start = self.models.partition_point(|m| prefix(m) == Ordering::Less);
        self.models[start..]
            .iter()
            .take_while(|m| prefix(m) == Ordering::Equal)
            .find(|m| m.firmware.contains(firmware_version))
    }
}

fn sector(text: &str, what: &str) -> Result<SectorName, ModelError> {
    SectorName::new(text).map_err(|e| bad(format!("{what}: {e}")))
}

fn read_time(r: &mut Reader<'_>) -> Result<OffsetDateTime, ModelError> {
    der::parse_generalized_time(r.read(der::TAG_GENERALIZED_TIME).map_err(bad)?).map_err(bad)
}

fn read_level(r: &mut Reader<'_>) -> Result<TrustLevel, ModelError> {
    let v = r.read_small_uint(der::TAG_INTEGER).map_err(bad)?;
    TrustLevel::new(v.min(99) as i64).map_err(|e| bad(e.to_string()))
}

fn read_policy(r: &mut Reader<'_>) -> Result<EmbeddedPolicy, ModelError> {
    let mut p = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
    let version = p.read_utf8().map_err(bad)?.to_owned();
    let text = p.read_utf8().map_err(bad)?.to_owned();
    if !p.is_empty() {
        return Err(bad("trailing bytes inside an embedded policy"));
    }
    Ok(EmbeddedPolicy { version, text })
}

/// Reads `SEQUENCE OF SEQUENCE { ... }`, each entry with `entry`, which
/// must consume it whole; at most [`MAX_ENTRIES`] entries.
fn read_list<T>(
    r: &mut Reader<'_>,
    what: &str,
    entry: impl Fn(&mut Reader<'_>) -> Result<T, ModelError>,
) -> Result<Vec<T>, ModelError> {
    let mut list = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
    let mut out = Vec::new();
    while !list.is_empty() {
        if out.len() >= MAX_ENTRIES {
            return Err(bad(format!("{what}: more than {MAX_ENTRIES} entries")));
        }
        let mut e = Reader::new(list.read(der::TAG_SEQUENCE).map_err(bad)?);
        let item = entry(&mut e).map_err(|x| bad(format!("{what} {}: {x}", out.len())))?;
        if !e.is_empty() {
            return Err(bad(format!(
                "{what} {}: trailing bytes inside the entry",
                out.len()
            )));
        }
        out.push(item);
    }
    Ok(out)
}

/// A body, its signature and the signer's chain, as published (PEM
/// [`PEM_LABEL`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedSnapshot {
    /// DER of a [`TrustSnapshot`], exactly as signed.
    pub body: Vec<u8>,
    /// ECDSA P-256 SHA-256 signature (ASN.1) over `body`.
    pub signature: Vec<u8>,
    /// Signer certificate chain, DER, leaf first.
    pub signer_chain: Vec<Vec<u8>>,
}

impl SignedSnapshot {
    /// Encodes and signs `snapshot` with the signer's key (a root-issued
    /// service certificate's, e.g. the trust responder's).
    pub fn sign(
        snapshot: &TrustSnapshot,
        key: &dyn crate::StatementSigner,
        signer_chain: Vec<Vec<u8>>,
    ) -> Result<Self, ModelError> {
        // Verifiers check P-256 only (as for trust assertions): refuse to
        // publish a file nobody could verify.
        if key.algorithm() != crate::StatementAlgorithm::EcdsaP256Sha256 {
            return Err(bad(
                "snapshots are signed with ECDSA P-256 SHA-256; the signer's key is another curve",
            ));
        }
        let body = snapshot.to_der()?;
        let signature = key.sign(&body).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            body,
            signature,
            signer_chain,
        })
    }

    /// Verifies the signer chain to `root` (the leaf must be a root-issued
    /// trustca service certificate), the signature over the body as
    /// received, then decodes the body and checks it is current at `now`:
    /// not issued more than 5 minutes ahead, and — unless `allow_stale` —
    /// not past its `next_update`. Returns the snapshot.
    pub fn verify(
        &self,
        root: &[u8],
        now: OffsetDateTime,
        oid: &ExtensionOid,
        allow_stale: bool,
    ) -> Result<TrustSnapshot, ModelError> {
        let chain = crate::verify_chain(&self.signer_chain, &[], root, now, oid)
            .map_err(|e| bad(format!("signer certificate: {e}")))?;
        match &chain.extension {
            Some(ext) if ext.kind == CertificateKind::Service => {}
            Some(ext) => {
                return Err(bad(format!(
                    "signer holds {} certificate; snapshots are signed by a root-issued trustca service certificate",
                    ext.kind.with_article()
                )));
            }
            None => {
                return Err(bad(
                    "signer certificate is not a trustca service certificate",
                ));
            }
        }
        let leaf = self
            .signer_chain
            .first()
            .ok_or_else(|| bad("no signer certificate"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|_| bad("signer certificate does not parse"))?;
        let key = cert.public_key().subject_public_key.data.as_ref();
        // The bytes as received: re-encoding first could verify a
        // different (normalised) body than the one that was signed.
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key)
            .verify(&self.body, &self.signature)
            .map_err(|_| bad("signature does not verify (tampered or wrong signer)"))?;
        let s = TrustSnapshot::from_der(&self.body)?;
        if now + FUTURE_SKEW < s.issued_at {
            return Err(bad(format!(
                "snapshot {} is issued in the future ({}); check the clock",
                s.serial,
                rfc3339(s.issued_at)
            )));
        }
        if now > s.next_update && !allow_stale {
            return Err(bad(format!(
                "snapshot {} is stale: its next_update {} has passed; fetch a newer one or allow stale snapshots explicitly",
                s.serial,
                rfc3339(s.next_update)
            )));
        }
        Ok(s)
    }

    /// DER: SEQUENCE { body, signature OCTET STRING, SEQUENCE OF Certificate }.
    pub fn to_der(&self) -> Vec<u8> {
        let mut inner = Vec::with_capacity(self.body.len() + 2048);
        inner.extend_from_slice(&self.body);
        der::write_tlv(&mut inner, TAG_OCTET_STRING, &self.signature);
        let mut certs = Vec::new();
        for c in &self.signer_chain {
            certs.extend_from_slice(c);
        }
        der::write_tlv(&mut inner, der::TAG_SEQUENCE, &certs);
        let mut out = Vec::with_capacity(inner.len() + 6);
        der::write_tlv(&mut out, der::TAG_SEQUENCE, &inner);
        out
    }

    /// Strict inverse of [`SignedSnapshot::to_der`]. The body is kept as
    /// received; it is decoded by [`SignedSnapshot::verify`].
    pub fn from_der(input: &[u8]) -> Result<Self, ModelError> {
        let mut outer = Reader::new(input);
        let inner = outer.read(der::TAG_SEQUENCE).map_err(bad)?;
        if !outer.is_empty() {
            return Err(bad("trailing bytes after the signed snapshot"));
        }
        let mut r = Reader::new(inner);
        let body = r.read_tlv(der::TAG_SEQUENCE).map_err(bad)?.to_vec();
        let signature = r.read(TAG_OCTET_STRING).map_err(bad)?.to_vec();
        let mut certs = Reader::new(r.read(der::TAG_SEQUENCE).map_err(bad)?);
        let mut signer_chain = Vec::new();
        while !certs.is_empty() {
            if signer_chain.len() >= 8 {
                return Err(bad("signer chain longer than 8 certificates"));
            }
            signer_chain.push(certs.read_tlv(der::TAG_SEQUENCE).map_err(bad)?.to_vec());
        }
        if !r.is_empty() {
            return Err(bad("trailing bytes inside the signed snapshot"));
        }
        Ok(Self {
            body,
            signature,
            signer_chain,
        })
    }
}

/// An offline decision: what `Decide` would have answered, and from which
/// snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineDecision {
    /// The decision; its reasons are assembled as the online engine does
    /// (standing of both sides, notes, then the policy's reasons).
    pub outcome: DecisionOutcome,
    /// The serial of the snapshot decided from.
    pub snapshot_serial: u64,
    /// `cooperation@<v>+recognition@<v>` of the embedded policies.
    pub policy_version: String,
    /// The peer's sector from its certificate ("" when the peer chain did
    /// not verify).
    pub peer_sector: String,
    /// The peer's identity URN ("" when not known).
    pub peer_identity: String,
    /// The snapshot was past its `next_update` at the time of decision
    /// (only possible when it was verified with `allow_stale`).
    pub stale: bool,
}

/// One side's live state, as the snapshot gives it.
struct OfflineState {
    identity: String,
    sector: SectorName,
    level: TrustLevel,
    status: TrustStatus,
    notes: Vec<String>,
}

/// The live state of the device a verified chain names: listed devices
/// as listed, others active at their certificate's level; a revoked
/// certificate or a blocked key makes it revoked, as online.
fn offline_state(snapshot: &TrustSnapshot, v: &VerifiedChain) -> Result<OfflineState, String> {
    let identity = v
        .identity
        .as_ref()
        .ok_or("certificate names no device (not a long-term device certificate)")?;
    if !snapshot.covers(&identity.sector) {
        return Err(match &snapshot.scope {
            Some(scope) if scope != &identity.sector => format!(
                "snapshot {} covers sector {scope} only, not {}",
                snapshot.serial, identity.sector
            ),
            _ => format!(
                "sector {} is not in snapshot {}",
                identity.sector, snapshot.serial
            ),
        });
    }
    let urn = identity.urn();
    let (identity_urn, level, mut status) = match snapshot.device(&urn) {
        Some(d) => (d.identity.clone(), d.level, d.status),
        None => {
            let level = v
                .extension
                .as_ref()
                .and_then(|e| e.level)
                .ok_or("certificate carries no trust level")?;
            (urn, level, TrustStatus::Active)
        }
    };
    let listed_revoked = status == TrustStatus::Revoked;
    let mut notes = Vec::new();
    if snapshot.is_certificate_revoked(&identity.sector, &v.serial) {
        status = TrustStatus::Revoked;
        notes.push("certificate revoked".to_owned());
    }
    // A key revoked for compromise counts in every certificate that
    // carries it, as online.
    if snapshot.is_key_blocked(&v.key_fingerprint) {
        status = TrustStatus::Revoked;
        notes.push("key was revoked for compromise".to_owned());
    }
    if listed_revoked {
        notes.push("device revoked".to_owned());
    }
    Ok(OfflineState {
        identity: identity_urn,
        sector: identity.sector.clone(),
        level,
        status,
        notes,
    })
}

fn sector_of(v: &VerifiedChain) -> String {
    v.extension
        .as_ref()
        .map(|e| e.sector.to_string())
        .unwrap_or_default()
}

/// The state of a peer under a foreign root the snapshot's trust list
/// recognises: active at its certificate's level, as online (no database
/// of that root is asked). None when the snapshot carries no list; `Err`
/// gives why the peer is refused and its sector when known.
fn foreign_state(
    snapshot: &TrustSnapshot,
    peer_chain: &[Vec<u8>],
    root_der: &[u8],
    now: OffsetDateTime,
    oid: &ExtensionOid,
) -> Option<Result<OfflineState, (String, String)>> {
    let list = snapshot.trust_list.as_deref()?;
    let peer = match crate::snapshot_trust_list::foreign_peer(list, peer_chain, root_der, now, oid)
    {
        Ok(p) => p,
        Err(why) => return Some(Err((why, String::new()))),
    };
    let Some(identity) = &peer.verified.identity else {
        return Some(Err((
            "certificate names no device (not a long-term device certificate)".into(),
            peer.sector.to_string(),
        )));
    };
    let revocation = match crate::trust_list::TrustList::foreign_revocation(
        &snapshot.foreign_crls,
        peer_chain.get(1).map(Vec::as_slice),
        &peer.verified.serial,
        now,
    ) {
        Ok(r) => r,
        Err(why) => return Some(Err((why, peer.sector.to_string()))),
    };
    Some(Ok(OfflineState {
        identity: identity.urn(),
        sector: peer.sector,
        level: peer.level,
        status: if revocation.revoked {
            TrustStatus::Revoked
        } else {
            TrustStatus::Active
        },
        notes: vec![peer.note, revocation.note],
    }))
}

/// Decides offline whether the device of `caller_chain` may cooperate
/// with the device of `peer_chain` for `operation`, exactly as the online
/// `Decide` does, from a verified snapshot. Both chains are verified to
/// `root_der` (through `sector_cas`) at `now`.
///
/// Errors, as online: an unknown operation, a caller chain that does not
/// verify or is not a long-term device certificate, embedded policies that
/// do not parse. Problems with either side's standing or the peer's chain
/// are a deny with reasons.
#[allow(clippy::too_many_arguments)]
pub fn decide_offline(
    snapshot: &TrustSnapshot,
    caller_chain: &[Vec<u8>],
    peer_chain: &[Vec<u8>],
    sector_cas: &[Vec<u8>],
    operation: &str,
    root_der: &[u8],
    now: OffsetDateTime,
    oid: &ExtensionOid,
) -> Result<OfflineDecision, ModelError> {
    let policy = snapshot.policy()?;
    decide_offline_with_policy(
        snapshot,
        &policy,
        caller_chain,
        peer_chain,
        sector_cas,
        operation,
        root_der,
        now,
        oid,
        None,
    )
}

/// What a system of linked devices does to a peer offline: given the
/// peer's URN, its effective level and the note explaining the cap, or
/// None. `trustca-composition` provides it from the snapshot's systems
/// (this crate cannot: it does not depend on the evaluation).
pub type PeerCap<'a> = dyn Fn(&str) -> Result<Option<(TrustLevel, String)>, ModelError> + 'a;

/// [`decide_offline`] with the snapshot's policy already parsed
/// ([`TrustSnapshot::policy`]), for callers deciding many times from one
/// snapshot, and with the peer's level capped by `cap` before the
/// decision, as the online `Decide` caps a member of a system of linked
/// devices (None: no systems).
#[allow(clippy::too_many_arguments)]
pub fn decide_offline_with_policy(
    snapshot: &TrustSnapshot,
    policy: &TrustPolicy,
    caller_chain: &[Vec<u8>],
    peer_chain: &[Vec<u8>],
    sector_cas: &[Vec<u8>],
    operation: &str,
    root_der: &[u8],
    now: OffsetDateTime,
    oid: &ExtensionOid,
    cap: Option<&PeerCap<'_>>,
) -> Result<OfflineDecision, ModelError> {
    if !policy.knows_operation(operation) {
        return Err(ModelError::UnknownOperation(crate::sector::truncate(
            operation,
        )));
    }
    let decision =
        |outcome: DecisionOutcome, peer_sector: String, peer_identity: String| OfflineDecision {
            outcome,
            snapshot_serial: snapshot.serial,
            policy_version: policy.version(),
            peer_sector,
            peer_identity,
            stale: now > snapshot.next_update,
        };
    let deny = |reasons: Vec<String>, peer_sector: String| {
        decision(
            DecisionOutcome {
                allow: false,
                depth: "none".into(),
                required_depth: String::new(),
                caller_level: None,
                peer_level: None,
                rule: None,
                reasons,
            },
            peer_sector,
            String::new(),
        )
    };
    // Online the caller is authenticated by TLS before Decide runs, so a
    // bad caller certificate is an error there too, not a deny.
    let caller = crate::verify_chain(caller_chain, sector_cas, root_der, now, oid)
        .map_err(|e| ModelError::InvalidChain(format!("caller certificate: {e}")))?;
    match &caller.extension {
        Some(ext) if ext.kind == CertificateKind::LongTerm && caller.identity.is_some() => {}
        ext => {
            let held = ext
                .as_ref()
                .map_or_else(|| "no trustca".to_owned(), |e| e.kind.with_article());
            return Err(ModelError::InvalidCredential(format!(
                "Decide is asked by devices with their own certificate; the caller holds {held} certificate"
            )));
        }
    }
    let caller_state = match offline_state(snapshot, &caller) {
        Ok(s) => s,
        Err(e) => return Ok(deny(vec![format!("caller: {e}")], String::new())),
    };
    let mut peer_state = match crate::verify_chain(peer_chain, sector_cas, root_der, now, oid) {
        Ok(peer) => match offline_state(snapshot, &peer) {
            Ok(s) => s,
            Err(e) => return Ok(deny(vec![format!("peer: {e}")], sector_of(&peer))),
        },
        // Not under this root: a root the carried trust list names may
        // vouch for it, as online.
        Err(e) => match foreign_state(snapshot, peer_chain, root_der, now, oid) {
            Some(Ok(s)) => s,
            Some(Err((why, sector))) => {
                return Ok(deny(
                    vec![format!("peer certificate rejected: {e}; {why}")],
                    sector,
                ));
            }
            None => {
                return Ok(deny(
                    vec![format!("peer certificate rejected: {e}")],
                    String::new(),
                ));
            }
        },
    };
    let peer_sector = peer_state.sector.to_string();
    if let Some(cap) = cap
        && let Some((effective, note)) = cap(&peer_state.identity)?
        && effective < peer_state.level
    {
        peer_state.level = effective;
        peer_state.notes.push(note);
    }
    fn side(s: &OfflineState) -> Standing<'_> {
        Standing {
            sector: &s.sector,
            level: s.level,
            status: s.status,
            notes: &s.notes,
        }
    }
    let outcome = policy.decide_standing(side(&caller_state), side(&peer_state), operation)?;
    Ok(decision(outcome, peer_sector, peer_state.identity))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::datetime;

    pub(crate) const COOP: &str = r#"version = "c1"
depths = ["none", "observe", "exchange", "control"]
[operations]
read-telemetry = "observe"
remote-control = "control"
[[rule]]
name = "hems-local"
caller = "hems"
peer = "hems"
min_levels = { observe = [2, 2], exchange = [3, 3], control = [4, 4] }
"#;
    const RECOG: &str = "version = \"r1\"\n";

    fn sn(s: &str) -> SectorName {
        SectorName::new(s).unwrap()
    }

    fn lv(n: i64) -> TrustLevel {
        TrustLevel::new(n).unwrap()
    }

    /// The snapshot of the published vector (testdata/trust-snapshot).
    pub(crate) fn sample() -> TrustSnapshot {
        TrustSnapshot {
            serial: 7,
            scope: Some(sn("hems")),
            issued_at: datetime!(2026-11-23 10:00 UTC),
            next_update: datetime!(2026-11-24 10:00 UTC),
            sectors: vec![sn("automotive"), sn("hems")],
            cooperation_policy: EmbeddedPolicy {
                version: "c1".into(),
                text: COOP.into(),
            },
            recognition_policy: EmbeddedPolicy {
                version: "r1".into(),
                text: RECOG.into(),
            },
            models: vec![
                SnapshotModel {
                    sector: sn("hems"),
                    manufacturer: "Acme".into(),
                    model: "HB-1".into(),
                    firmware: FirmwareRange::parse("1.0..1.4.9").unwrap(),
                    level: lv(4),
                    status: ModelStatus::Certified,
                    record_version: 2,
                    policy_version: "2026.11-1".into(),
                },
                SnapshotModel {
                    sector: sn("hems"),
                    manufacturer: "Acme".into(),
                    model: "HB-1".into(),
                    firmware: FirmwareRange::parse("1.5..").unwrap(),
                    level: lv(3),
                    status: ModelStatus::Provisional,
                    record_version: 1,
                    policy_version: "2026.11-1".into(),
                },
            ],
            devices: vec![DeviceState {
                identity: "urn:trustca:hems:Acme:HB-1:SN7".into(),
                level: lv(4),
                status: TrustStatus::Suspended,
                record_version: 3,
            }],
            revoked_certificates: vec![(sn("hems"), vec![0x00, 0x80, 0x01])],
            blocked_keys: vec![[0xab; 32]],
            systems: None,
            trust_list: None,
            foreign_crls: Vec::new(),
        }
    }

    #[test]
    fn round_trip_and_published_vector() {
        let der = sample().to_der().unwrap();
        assert_eq!(TrustSnapshot::from_der(&der).unwrap(), sample());
        let vector = include_str!("../testdata/trust-snapshot/hems-serial7.hex");
        assert_eq!(hex::encode(&der), vector.trim());
        let decoded = TrustSnapshot::from_der(&hex::decode(vector.trim()).unwrap()).unwrap();
        assert_eq!(decoded, sample());
        assert!(sample().policy().is_ok());
    }

    #[test]
    fn rejects_every_truncation_and_trailing_bytes() {
        let der = sample().to_der().unwrap();
        for cut in 0..der.len() {
            assert!(TrustSnapshot::from_der(&der[..cut]).is_err(), "cut {cut}");
        }
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(
            TrustSnapshot::from_der(&trailing)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        let mut bad_version = der.clone();
        // The version INTEGER follows the outer SEQUENCE header.
        let header = if der[1] & 0x80 != 0 {
            2 + (der[1] & 0x7f) as usize
        } else {
            2
        };
        assert_eq!(&der[header..header + 3], &[0x02, 0x01, 0x01]);
        // Version 3 carries a trust list (snapshot_trust_list.rs): this
        // body has none, so it is not version 3.
        bad_version[header + 2] = 3;
        assert!(TrustSnapshot::from_der(&bad_version).is_err());
        // Version 2 carries systems (snapshot_systems.rs); 4 is unknown.
        bad_version[header + 2] = 4;
        assert!(
            TrustSnapshot::from_der(&bad_version)
                .unwrap_err()
                .to_string()
                .contains("unsupported version")
        );
    }

    fn rejected(s: &TrustSnapshot, needle: &str) {
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{e}");
        assert!(s.to_der().is_err());
    }

    /// Encodes without the encoder's checks, as a hostile publisher would,
    /// to prove the decoder refuses it too.
    fn encode_unchecked(s: &TrustSnapshot) -> Vec<u8> {
        let mut body = Vec::new();
        der::write_small_uint(&mut body, der::TAG_INTEGER, VERSION);
        der::write_small_uint(&mut body, der::TAG_INTEGER, s.serial);
        if let Some(scope) = &s.scope {
            der::write_tlv(&mut body, TAG_SCOPE, scope.as_str().as_bytes());
        }
        for t in [s.issued_at, s.next_update] {
            der::write_tlv(
                &mut body,
                der::TAG_GENERALIZED_TIME,
                &der::generalized_time(t).unwrap(),
            );
        }
        let mut list = Vec::new();
        for x in &s.sectors {
            der::write_tlv(&mut list, der::TAG_UTF8, x.as_str().as_bytes());
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        for p in [&s.cooperation_policy, &s.recognition_policy] {
            let mut inner = Vec::new();
            der::write_tlv(&mut inner, der::TAG_UTF8, p.version.as_bytes());
            der::write_tlv(&mut inner, der::TAG_UTF8, p.text.as_bytes());
            der::write_tlv(&mut body, der::TAG_SEQUENCE, &inner);
        }
        let mut list = Vec::new();
        for m in &s.models {
            let mut e = Vec::new();
            der::write_tlv(&mut e, der::TAG_UTF8, m.sector.as_str().as_bytes());
            der::write_tlv(&mut e, der::TAG_UTF8, m.manufacturer.as_bytes());
            der::write_tlv(&mut e, der::TAG_UTF8, m.model.as_bytes());
            der::write_tlv(&mut e, der::TAG_UTF8, m.firmware.to_string().as_bytes());
            der::write_small_uint(&mut e, der::TAG_INTEGER, m.level.get() as u64);
            der::write_small_uint(&mut e, der::TAG_ENUMERATED, model_status_code(m.status));
            der::write_small_uint(&mut e, der::TAG_INTEGER, m.record_version);
            der::write_tlv(&mut e, der::TAG_UTF8, m.policy_version.as_bytes());
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &e);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        let mut list = Vec::new();
        for d in &s.devices {
            let mut e = Vec::new();
            der::write_tlv(&mut e, der::TAG_UTF8, d.identity.as_bytes());
            der::write_small_uint(&mut e, der::TAG_INTEGER, d.level.get() as u64);
            der::write_small_uint(&mut e, der::TAG_ENUMERATED, d.status.code());
            der::write_small_uint(&mut e, der::TAG_INTEGER, d.record_version);
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &e);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        let mut list = Vec::new();
        for (sector, serial) in &s.revoked_certificates {
            let mut e = Vec::new();
            der::write_tlv(&mut e, der::TAG_UTF8, sector.as_str().as_bytes());
            der::write_tlv(&mut e, der::TAG_INTEGER, serial);
            der::write_tlv(&mut list, der::TAG_SEQUENCE, &e);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        let mut list = Vec::new();
        for k in &s.blocked_keys {
            der::write_tlv(&mut list, TAG_OCTET_STRING, k);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
        let mut out = Vec::new();
        der::write_tlv(&mut out, der::TAG_SEQUENCE, &body);
        out
    }

    #[test]
    fn unchecked_encoder_matches_the_real_one() {
        assert_eq!(encode_unchecked(&sample()), sample().to_der().unwrap());
    }

    #[test]
    fn rejects_out_of_order_and_duplicate_lists() {
        let mut cases: Vec<(TrustSnapshot, &str)> = Vec::new();
        let mut s = sample();
        s.models.swap(0, 1);
        cases.push((s, "models: entry 1 is out of order"));
        let mut s = sample();
        s.models[1] = s.models[0].clone();
        s.models[1].manufacturer = "ACME".into();
        cases.push((s, "models: entries 0 and 1 are duplicates"));
        let mut s = sample();
        let mut d = s.devices[0].clone();
        d.identity = "urn:trustca:hems:ACME:HB-1:SN7".into();
        s.devices.push(d);
        cases.push((s, "devices: entries 0 and 1 are duplicates"));
        let mut s = sample();
        let mut d = s.devices[0].clone();
        d.identity = "urn:trustca:hems:Acme:HB-1:SN1".into();
        s.devices.push(d);
        cases.push((s, "devices: entry 1 is out of order"));
        let mut s = sample();
        s.revoked_certificates.insert(0, (sn("hems"), vec![0x7f]));
        cases.push((s, "revoked certificates: entry 1 is out of order"));
        let mut s = sample();
        s.blocked_keys.push([0xab; 32]);
        cases.push((s, "blocked keys: entries 0 and 1 are duplicates"));
        let mut s = sample();
        s.blocked_keys.push([0x01; 32]);
        cases.push((s, "blocked keys: entry 1 is out of order"));
        let mut s = sample();
        s.sectors.reverse();
        cases.push((s, "sectors: entry 1 is out of order"));
        let mut s = sample();
        s.revoked_certificates[0].1 = vec![0x00, 0x01];
        cases.push((s, "minimal non-negative INTEGER"));
        let mut s = sample();
        s.devices[0].identity = "urn:trustca:automotive:Acme:HB-1:SN7".into();
        cases.push((s, "not covered by this snapshot"));
        let mut s = sample();
        s.models[0].firmware = FirmwareRange {
            min: "1.0".into(),
            max: "1.0".into(),
        };
        s.models[0].firmware.max = "0.9".into();
        cases.push((s, "firmware range"));
        let mut s = sample();
        s.next_update = s.issued_at - time::Duration::SECOND;
        cases.push((s, "next_update is before issued_at"));
        for (s, needle) in cases {
            rejected(&s, needle);
            let e = TrustSnapshot::from_der(&encode_unchecked(&s))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "decoder: {e}, wanted {needle}");
        }
        // sort() repairs order (not duplicates).
        let mut s = sample();
        s.models.swap(0, 1);
        s.blocked_keys.insert(0, [0xff; 32]);
        s.sort();
        assert!(s.to_der().is_ok());
    }

    #[test]
    fn lookups() {
        let s = sample();
        let m = s.model_for(&sn("hems"), "acme", "hb-1", "1.4.2").unwrap();
        assert_eq!(m.level, lv(4));
        let m = s.model_for(&sn("hems"), "Acme", "HB-1", "2.0").unwrap();
        assert_eq!(m.status, ModelStatus::Provisional);
        assert!(s.model_for(&sn("hems"), "Acme", "HB-1", "0.9").is_none());
        assert!(s.model_for(&sn("hems"), "Acme", "HB-2", "1.0").is_none());
        assert!(s.device("urn:trustca:hems:acme:hb-1:sn7").is_some());
        assert!(s.device("urn:trustca:hems:acme:hb-1:sn8").is_none());
        assert!(s.is_certificate_revoked(&sn("hems"), &[0x00, 0x80, 0x01]));
        assert!(!s.is_certificate_revoked(&sn("hems"), &[0x01]));
        assert!(s.is_key_blocked(&[0xab; 32]));
        assert!(!s.is_key_blocked(&[0xac; 32]));
    }

    #[test]
    fn policy_versions_must_match_the_texts() {
        let mut s = sample();
        s.cooperation_policy.version = "c2".into();
        let e = s.policy().unwrap_err().to_string();
        assert!(e.contains("\"c1\"") && e.contains("\"c2\""), "{e}");
    }

    fn arb_snapshot() -> impl Strategy<Value = TrustSnapshot> {
        let sectors = ["automotive", "healthcare", "hems"];
        let model = (
            0..3usize,
            "[A-Za-z][A-Za-z0-9]{0,6}",
            "[A-Za-z][A-Za-z0-9-]{0,6}[A-Za-z0-9]",
            prop::sample::select(vec!["1.0", "1.0..2.0", "2.1..", "..0.9", "3.0-rc1"]),
            1..=5i64,
            0..4u64,
            any::<u64>(),
        );
        let device = (
            0..3usize,
            "[A-Za-z0-9]{1,8}",
            1..=5i64,
            0..4u64,
            any::<u64>(),
        );
        let revoked = (0..3usize, prop::collection::vec(any::<u8>(), 1..20));
        (
            any::<u64>(),
            prop::option::of(0..3usize),
            0..4_000_000_000i64,
            0..10_000_000i64,
            prop::collection::vec(model, 0..8),
            prop::collection::vec(device, 0..8),
            prop::collection::vec(revoked, 0..8),
            prop::collection::vec(any::<[u8; 32]>(), 0..4),
        )
            .prop_map(
                move |(serial, scope, issued, ttl, models, devices, revoked, blocked)| {
                    let scope = scope.map(|i| sn(sectors[i]));
                    let pick = |i: usize| scope.clone().unwrap_or_else(|| sn(sectors[i]));
                    let mut s = TrustSnapshot {
                        serial,
                        scope: scope.clone(),
                        issued_at: OffsetDateTime::from_unix_timestamp(issued).unwrap(),
                        next_update: OffsetDateTime::from_unix_timestamp(issued + ttl).unwrap(),
                        sectors: sectors.iter().map(|s| sn(s)).collect(),
                        cooperation_policy: EmbeddedPolicy {
                            version: "c1".into(),
                            text: COOP.into(),
                        },
                        recognition_policy: EmbeddedPolicy {
                            version: "r1".into(),
                            text: RECOG.into(),
                        },
                        models: models
                            .into_iter()
                            .map(|(i, mf, md, fw, level, status, rv)| SnapshotModel {
                                sector: pick(i),
                                manufacturer: mf,
                                model: md,
                                firmware: FirmwareRange::parse(fw).unwrap(),
                                level: lv(level),
                                status: model_status_from_code(status).unwrap(),
                                record_version: rv,
                                policy_version: "p1".into(),
                            })
                            .collect(),
                        devices: devices
                            .into_iter()
                            .map(|(i, serial, level, status, rv)| DeviceState {
                                identity: format!("urn:trustca:{}:Acme:HB-1:{serial}", pick(i)),
                                level: lv(level),
                                status: TrustStatus::from_code(status).unwrap(),
                                record_version: rv,
                            })
                            .collect(),
                        revoked_certificates: revoked
                            .into_iter()
                            .map(|(i, bytes)| {
                                let skip = bytes.iter().take_while(|b| **b == 0).count();
                                let mut n = bytes[skip.min(bytes.len() - 1)..].to_vec();
                                if n[0] & 0x80 != 0 {
                                    n.insert(0, 0);
                                }
                                (pick(i), n)
                            })
                            .collect(),
                        blocked_keys: blocked,
                        systems: None,
                        trust_list: None,
                        foreign_crls: Vec::new(),
                    };
                    s.sort();
                    s.models.dedup_by(|a, b| a.order(b) == Ordering::Equal);
                    s.devices
                        .dedup_by(|a, b| cmp_ci(&a.identity, &b.identity) == Ordering::Equal);
                    s.revoked_certificates.dedup();
                    s.blocked_keys.dedup();
                    s
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn random_snapshots_round_trip(s in arb_snapshot()) {
            let der = s.to_der().unwrap();
            let back = TrustSnapshot::from_der(&der).unwrap();
            prop_assert_eq!(&back, &s);
            prop_assert_eq!(back.to_der().unwrap(), der);
        }

        #[test]
        fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = TrustSnapshot::from_der(&bytes);
            let _ = SignedSnapshot::from_der(&bytes);
        }

        /// Any change to a valid body either fails to decode or decodes to
        /// something that re-encodes to exactly the changed bytes.
        #[test]
        fn mutated_bodies_are_rejected_or_canonical(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
        ) {
            let mut der = sample().to_der().unwrap();
            for (i, b) in edits {
                let i = i.index(der.len());
                der[i] = b;
            }
            if let Ok(s) = TrustSnapshot::from_der(&der) {
                prop_assert_eq!(s.to_der().unwrap(), der);
            }
        }
    }

    /// A tiny trustca hierarchy: root, hems sector CA, root-issued service
    /// certificate (the signer), and device certificates.
    pub(crate) mod pki {
        use rcgen::{
            BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
            ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
        };

        use crate::extension::ExtensionOid;
        use crate::{CertificateKind, SectorName, TrustLevel, TrustLevelExtension};

        pub struct Pki {
            pub oid: ExtensionOid,
            sector: &'static str,
            pub root_der: Vec<u8>,
            root: Issuer<'static, KeyPair>,
            pub sector_ca_der: Vec<u8>,
            sector_ca: Issuer<'static, KeyPair>,
        }

        fn ext(
            oid: &ExtensionOid,
            sector: &str,
            kind: CertificateKind,
            level: Option<u8>,
        ) -> CustomExtension {
            let e = TrustLevelExtension {
                kind,
                sector: SectorName::new(sector).unwrap(),
                level: level.map(|l| TrustLevel::new(l as i64).unwrap()),
                policy_version: "t1".into(),
                basis: vec![],
                authorized_sectors: vec![],
                permitted_schemes: vec![],
            };
            CustomExtension::from_oid_content(oid.arcs(), e.to_der().unwrap())
        }

        fn named(cn: &str) -> CertificateParams {
            let mut p = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, cn);
            p.distinguished_name = dn;
            p.not_before = time::macros::datetime!(2026-01-01 0:00 UTC);
            p.not_after = time::macros::datetime!(2028-01-01 0:00 UTC);
            p
        }

        impl Pki {
            pub fn new() -> Self {
                Self::for_sector("hems")
            }

            /// A root of its own with one sector CA, of `sector`.
            pub fn for_sector(sector: &'static str) -> Self {
                let oid = ExtensionOid::default();
                let key = KeyPair::generate().unwrap();
                let mut p = named(&format!("test root of {sector}"));
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
                let root_der = p.self_signed(&key).unwrap().der().to_vec();
                let root = Issuer::new(p, key);
                let key = KeyPair::generate().unwrap();
                let mut p = named(&format!("{sector} sector CA"));
                p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
                p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
                p.custom_extensions
                    .push(ext(&oid, sector, CertificateKind::SectorCa, None));
                let sector_ca_der = p.signed_by(&key, &root).unwrap().der().to_vec();
                let sector_ca = Issuer::new(p, key);
                Self {
                    oid,
                    sector,
                    root_der,
                    root,
                    sector_ca_der,
                    sector_ca,
                }
            }

            /// A root-issued service certificate and its key as a
            /// statement signer.
            pub fn service(&self) -> (Vec<Vec<u8>>, ring::signature::EcdsaKeyPair) {
                let key = KeyPair::generate().unwrap();
                let mut p = named("trust responder");
                p.is_ca = IsCa::ExplicitNoCa;
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
                p.custom_extensions.push(ext(
                    &self.oid,
                    self.sector,
                    CertificateKind::Service,
                    None,
                ));
                let der = p.signed_by(&key, &self.root).unwrap().der().to_vec();
                (vec![der, self.root_der.clone()], signer(&key))
            }

            /// A hems long-term device certificate at `level`; returns the
            /// chain (leaf, sector CA) and the device's key as a signer.
            pub fn device(
                &self,
                serial_label: &str,
                cert_serial: &[u8],
                level: u8,
            ) -> (Vec<Vec<u8>>, ring::signature::EcdsaKeyPair) {
                let key = KeyPair::generate().unwrap();
                let mut p = named(serial_label);
                p.is_ca = IsCa::ExplicitNoCa;
                p.serial_number = Some(SerialNumber::from_slice(cert_serial));
                p.subject_alt_names = vec![SanType::URI(
                    format!("urn:trustca:{}:Acme:HB-1:{serial_label}", self.sector)
                        .try_into()
                        .unwrap(),
                )];
                p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
                p.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ClientAuth,
                    ExtendedKeyUsagePurpose::ServerAuth,
                ];
                p.custom_extensions.push(ext(
                    &self.oid,
                    self.sector,
                    CertificateKind::LongTerm,
                    Some(level),
                ));
                let der = p.signed_by(&key, &self.sector_ca).unwrap().der().to_vec();
                (vec![der, self.sector_ca_der.clone()], signer(&key))
            }
        }

        impl Pki {
            /// Signs `msg` with the root's key (ECDSA P-256, DER), as the
            /// root signs a trust list.
            pub fn root_sign(&self, msg: &[u8]) -> Vec<u8> {
                use rcgen::SigningKey;
                self.root.key().sign(msg).unwrap()
            }

            /// A CRL of the sector CA, valid around `now`, listing `serials`
            /// as revoked for key compromise.
            pub fn crl(&self, now: time::OffsetDateTime, serials: &[&[u8]]) -> Vec<u8> {
                rcgen::CertificateRevocationListParams {
                    this_update: now - time::Duration::hours(1),
                    next_update: now + time::Duration::days(1),
                    crl_number: SerialNumber::from_slice(&[7]),
                    issuing_distribution_point: None,
                    revoked_certs: serials
                        .iter()
                        .map(|s| rcgen::RevokedCertParams {
                            serial_number: SerialNumber::from_slice(s),
                            revocation_time: now - time::Duration::minutes(30),
                            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                            invalidity_date: None,
                        })
                        .collect(),
                    key_identifier_method: rcgen::KeyIdMethod::Sha256,
                }
                .signed_by(&self.sector_ca)
                .unwrap()
                .der()
                .to_vec()
            }
        }

        fn signer(key: &KeyPair) -> ring::signature::EcdsaKeyPair {
            ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &key.serialize_der(),
                &ring::rand::SystemRandom::new(),
            )
            .unwrap()
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

    #[test]
    fn signed_snapshot_verifies_and_detects_tampering() {
        let pki = pki::Pki::new();
        let (chain, key) = pki.service();
        let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
        let der = signed.to_der();
        let back = SignedSnapshot::from_der(&der).unwrap();
        assert_eq!(back, signed);
        assert_eq!(
            back.verify(&pki.root_der, NOW, &pki.oid, false).unwrap(),
            sample()
        );
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(SignedSnapshot::from_der(&trailing).is_err());
        for cut in [0, 1, der.len() / 2, der.len() - 1] {
            assert!(SignedSnapshot::from_der(&der[..cut]).is_err());
        }
        // One bit of the body, anywhere in the level of the listed device.
        let mut tampered = signed.clone();
        let n = tampered.body.len();
        tampered.body[n - 40] ^= 1;
        let e = tampered
            .verify(&pki.root_der, NOW, &pki.oid, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("signature does not verify"), "{e}");
        // Another root: the chain does not verify.
        let other = pki::Pki::new();
        let e = signed
            .verify(&other.root_der, NOW, &other.oid, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("signer certificate"), "{e}");
    }

    #[test]
    fn p384_signer_is_refused() {
        let rng = ring::rand::SystemRandom::new();
        let alg = &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING;
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let e = SignedSnapshot::sign(&sample(), &key, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("P-256"), "{e}");
    }

    #[test]
    fn wrong_signer_kind_is_refused() {
        let pki = pki::Pki::new();
        let (chain, key) = pki.device("SN1", &[0x11], 4);
        let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
        let e = signed
            .verify(&pki.root_der, NOW, &pki.oid, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("service certificate"), "{e}");
    }

    #[test]
    fn stale_refused_unless_allowed_and_future_refused() {
        let pki = pki::Pki::new();
        let (chain, key) = pki.service();
        let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
        let late = datetime!(2026-11-25 10:00 UTC);
        let e = signed
            .verify(&pki.root_der, late, &pki.oid, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stale") && e.contains("2026-11-24T10:00:00Z"),
            "{e}"
        );
        assert_eq!(
            signed.verify(&pki.root_der, late, &pki.oid, true).unwrap(),
            sample()
        );
        let early = datetime!(2026-11-23 09:54 UTC);
        let e = signed
            .verify(&pki.root_der, early, &pki.oid, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("future"), "{e}");
        assert!(
            signed
                .verify(
                    &pki.root_der,
                    datetime!(2026-11-23 09:56 UTC),
                    &pki.oid,
                    false
                )
                .is_ok()
        );
    }

    /// A snapshot for the decision tests: `peer` may be listed.
    fn decision_snapshot() -> TrustSnapshot {
        let mut s = sample();
        s.devices.clear();
        s.revoked_certificates.clear();
        s.blocked_keys.clear();
        s
    }

    #[test]
    fn decide_offline_follows_the_snapshot() {
        let pki = pki::Pki::new();
        let cas = vec![pki.sector_ca_der.clone()];
        let (caller, _) = pki.device("CALLER1", &[0x21], 4);
        let (peer, _) = pki.device("PEER1", &[0x22], 4);
        let decide = |s: &TrustSnapshot, op: &str| {
            decide_offline(s, &caller, &peer, &cas, op, &pki.root_der, NOW, &pki.oid)
        };

        // Not listed: active at the certificate's level.
        let s = decision_snapshot();
        let d = decide(&s, "remote-control").unwrap();
        assert!(d.outcome.allow, "{:?}", d.outcome.reasons);
        assert_eq!(d.outcome.depth, "control");
        assert_eq!(d.outcome.rule.as_deref(), Some("hems-local"));
        assert_eq!(d.snapshot_serial, 7);
        assert_eq!(d.policy_version, "cooperation@c1+recognition@r1");
        assert_eq!(d.peer_sector, "hems");
        assert_eq!(d.peer_identity, "urn:trustca:hems:Acme:HB-1:PEER1");
        assert!(!d.stale);

        // Listed with a lower live level: observe only.
        let mut s = decision_snapshot();
        s.devices.push(DeviceState {
            identity: "urn:trustca:hems:acme:hb-1:peer1".into(),
            level: lv(2),
            status: TrustStatus::Active,
            record_version: 4,
        });
        let d = decide(&s, "remote-control").unwrap();
        assert!(!d.outcome.allow);
        assert_eq!(d.outcome.depth, "observe");
        assert_eq!(d.peer_identity, "urn:trustca:hems:acme:hb-1:peer1");

        // Listed as suspended.
        s.devices[0].level = lv(4);
        s.devices[0].status = TrustStatus::Suspended;
        let d = decide(&s, "read-telemetry").unwrap();
        assert!(!d.outcome.allow);
        assert_eq!(d.outcome.peer_level, None);
        assert_eq!(d.outcome.reasons[0], "peer is suspended");
        assert!(
            d.outcome
                .reasons
                .contains(&"peer is not in good standing".to_owned())
        );

        // The caller itself suspended.
        let mut s = decision_snapshot();
        s.devices.push(DeviceState {
            identity: "urn:trustca:hems:Acme:HB-1:CALLER1".into(),
            level: lv(4),
            status: TrustStatus::Suspended,
            record_version: 2,
        });
        let d = decide(&s, "read-telemetry").unwrap();
        assert!(!d.outcome.allow);
        assert_eq!(d.outcome.caller_level, None);
        assert_eq!(d.outcome.reasons[0], "caller is suspended");

        // The peer's certificate serial is revoked.
        let mut s = decision_snapshot();
        s.revoked_certificates.push((sn("hems"), vec![0x22]));
        let d = decide(&s, "read-telemetry").unwrap();
        assert!(!d.outcome.allow);
        assert_eq!(
            d.outcome.reasons[..2],
            [
                "peer is revoked".to_owned(),
                "certificate revoked".to_owned()
            ]
        );
        // ... in another sector it does not count.
        let mut s = decision_snapshot();
        s.scope = None;
        s.revoked_certificates.push((sn("automotive"), vec![0x22]));
        assert!(decide(&s, "read-telemetry").unwrap().outcome.allow);

        // The peer's key is blocked.
        let mut s = decision_snapshot();
        s.blocked_keys
            .push(crate::certificate_key_fingerprint(&peer[0]).unwrap());
        let d = decide(&s, "read-telemetry").unwrap();
        assert!(!d.outcome.allow);
        assert!(
            d.outcome
                .reasons
                .contains(&"key was revoked for compromise".to_owned())
        );

        // A snapshot of another sector does not speak for hems devices.
        let mut s = decision_snapshot();
        s.scope = Some(sn("automotive"));
        s.models.clear();
        let d = decide(&s, "read-telemetry").unwrap();
        assert!(!d.outcome.allow);
        assert!(
            d.outcome.reasons[0].starts_with("caller: snapshot 7 covers sector automotive only")
        );

        // Errors, as online: unknown operation, caller not a device.
        let s = decision_snapshot();
        assert!(matches!(
            decide(&s, "fly"),
            Err(ModelError::UnknownOperation(_))
        ));
        let (service, _) = pki.service();
        let e = decide_offline(
            &s,
            &service,
            &peer,
            &cas,
            "read-telemetry",
            &pki.root_der,
            NOW,
            &pki.oid,
        )
        .unwrap_err();
        assert!(matches!(e, ModelError::InvalidCredential(_)), "{e}");

        // A peer chain that does not verify is a deny.
        let other = pki::Pki::new();
        let (stranger, _) = other.device("X1", &[0x33], 5);
        let d = decide_offline(
            &s,
            &caller,
            &stranger,
            &cas,
            "read-telemetry",
            &pki.root_der,
            NOW,
            &pki.oid,
        )
        .unwrap();
        assert!(!d.outcome.allow);
        assert!(d.outcome.reasons[0].starts_with("peer certificate rejected:"));

        // Stale snapshots still decide, and say so.
        let late = datetime!(2026-11-25 10:00 UTC);
        let d = decide_offline(
            &s,
            &caller,
            &peer,
            &cas,
            "read-telemetry",
            &pki.root_der,
            late,
            &pki.oid,
        )
        .unwrap();
        assert!(d.stale);
    }
}
