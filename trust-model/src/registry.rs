//! The model registry's records: evidence belongs to a product model and a
//! firmware range (an ISO/SAE 21434 or IEC 62443-4-2 evaluation covers a
//! model, not a serial number), so the registry keeps one [`ModelRecord`]
//! per (sector, manufacturer, model, firmware range) with its evaluations,
//! the level the sector's criteria give it, its status and its history.
//!
//! Everything here is pure: the trust database stores the records and
//! applies changes; this module decides what a record's level and status
//! are ([`ModelRecord::assess`]) and what a device of the model may hold
//! ([`device_level`]).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::evidence::{Evaluation, Evidence, HardwareRootOfTrust};
use crate::policy::SectorPolicy;
use crate::{ModelChange, ModelError, SectorName, TrustLevel, firmware};

/// At most this many evaluations (live and withdrawn) per model record.
pub const MAX_EVALUATIONS: usize = 32;
/// At most this many history entries are kept per record; older ones stay
/// in the audit log.
pub const MAX_HISTORY: usize = 256;

fn invalid(msg: impl Into<String>) -> ModelError {
    ModelError::InvalidEvidence(msg.into())
}

/// An inclusive range of firmware versions: `1.4.2` (one release),
/// `1.0..1.4.9`, `1.5..` (from 1.5 on) or `..1.4.9` (up to 1.4.9). Versions
/// compare as [`firmware::compare`] orders them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FirmwareRange {
    /// Lowest version in the range; empty for no lower bound.
    pub min: String,
    /// Highest version in the range; empty for no upper bound.
    pub max: String,
}

impl FirmwareRange {
    /// Parses `VERSION`, `MIN..MAX`, `MIN..` or `..MAX`.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let bad = |reason: &'static str| ModelError::InvalidAttribute {
            field: "firmware range",
            value: crate::sector::truncate(text),
            reason,
        };
        let (min, max) = match text.split_once("..") {
            None => (text, text),
            Some((min, max)) => (min, max),
        };
        if min.is_empty() && max.is_empty() {
            return Err(bad("give VERSION, MIN..MAX, MIN.. or ..MAX"));
        }
        for v in [min, max] {
            if !v.is_empty() {
                crate::validate_firmware_version(v)?;
                if v.contains("..") {
                    return Err(bad("a version must not contain '..'"));
                }
            }
        }
        if !min.is_empty() && !max.is_empty() && firmware::compare(min, max) == Ordering::Greater {
            return Err(bad("the lower bound is above the upper bound"));
        }
        Ok(Self {
            min: min.to_owned(),
            max: max.to_owned(),
        })
    }

    /// Whether `version` lies in the range.
    pub fn contains(&self, version: &str) -> bool {
        firmware::in_range(version, &self.min, &self.max)
    }

    /// Whether the two ranges share a version.
    pub fn overlaps(&self, other: &FirmwareRange) -> bool {
        let below = |max: &str, min: &str| {
            !max.is_empty() && !min.is_empty() && firmware::compare(max, min) == Ordering::Less
        };
        !below(&self.max, &other.min) && !below(&other.max, &self.min)
    }
}

impl fmt::Display for FirmwareRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            f.write_str(&self.min)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

/// What a record is keyed by: a model of a manufacturer in a sector, over a
/// firmware range.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelKey {
    /// The sector.
    pub sector: SectorName,
    /// Manufacturer name, as in its credential.
    pub manufacturer: String,
    /// Model name.
    pub model: String,
    /// Firmware versions covered.
    pub firmware: FirmwareRange,
}

impl ModelKey {
    /// Validates the parts (names are DNS labels, as in device identities).
    pub fn new(
        sector: SectorName,
        manufacturer: &str,
        model: &str,
        firmware: FirmwareRange,
    ) -> Result<Self, ModelError> {
        crate::DeviceIdentity::new(sector.clone(), manufacturer, model, "x")?;
        Ok(Self {
            sector,
            manufacturer: manufacturer.to_owned(),
            model: model.to_owned(),
            firmware,
        })
    }

    /// The store prefix of every range of this model (lower case, so
    /// names compare case-insensitively like device identities).
    pub fn model_prefix(sector: &str, manufacturer: &str, model: &str) -> String {
        format!("{sector}/{manufacturer}/{model}/").to_ascii_lowercase()
    }

    /// The store key: the model prefix and the range as written.
    pub fn store_key(&self) -> String {
        format!(
            "{}{}",
            Self::model_prefix(self.sector.as_str(), &self.manufacturer, &self.model),
            self.firmware
        )
    }

    /// The identity-key prefix of the model's devices.
    pub fn device_prefix(&self) -> String {
        Self::model_prefix(self.sector.as_str(), &self.manufacturer, &self.model)
    }
}

impl fmt::Display for ModelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{} firmware {}",
            self.sector, self.manufacturer, self.model, self.firmware
        )
    }
}

/// Where a model stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelStatus {
    /// At least one third-party evaluation is live.
    Certified,
    /// Registered with self-assessed evidence only (or none yet), or every
    /// third-party evaluation has expired.
    Provisional,
    /// An operator suspended the model: its devices are suspended.
    Suspended,
    /// Its third-party certification was withdrawn and none remains.
    Withdrawn,
}

impl ModelStatus {
    /// Every status.
    pub const ALL: [Self; 4] = [
        Self::Certified,
        Self::Provisional,
        Self::Suspended,
        Self::Withdrawn,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certified => "certified",
            Self::Provisional => "provisional",
            Self::Suspended => "suspended",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// The status `word` names (lower-case, as [`ModelStatus::as_str`]).
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

impl fmt::Display for ModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One evaluation of a model, by a certification body or self-assessed by
/// the manufacturer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEvaluation {
    /// Scheme, e.g. `iso-sae-21434`.
    pub scheme: String,
    /// Result, e.g. `CAL3`.
    pub result: String,
    /// The evaluation certificate's number (unique per record).
    pub certificate_number: String,
    /// Unix time of the evaluation.
    pub evaluated_at: i64,
    /// Unix time after which it no longer counts.
    pub valid_until: i64,
    /// Who registered it: the certification body's or the manufacturer's
    /// name, from its credential.
    pub registered_by: String,
    /// Declared by the manufacturer itself; the sector caps what it can earn.
    pub self_assessed: bool,
    /// Unix time of withdrawal, if withdrawn.
    pub withdrawn_at: Option<i64>,
}

impl ModelEvaluation {
    /// Whether it counts at `now`: not withdrawn, not expired.
    pub fn is_live(&self, now: i64) -> bool {
        self.withdrawn_at.is_none() && now < self.valid_until
    }
}

/// One change of a model record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelHistoryEntry {
    /// Record version after the change.
    pub version: u64,
    /// Unix time.
    pub at: i64,
    /// Who (from their certificate).
    pub actor: String,
    /// What (stored as its text; a text of no known form reads as
    /// [`ModelChange::Recorded`]).
    pub change: ModelChange,
    /// Why.
    pub reason: String,
}

/// A registered model over a firmware range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// What it is.
    pub key: ModelKey,
    /// Declared by the manufacturer for the model: where keys live.
    pub hardware_root_of_trust: Option<HardwareRootOfTrust>,
    /// Declared by the manufacturer: authenticated updates.
    pub secure_update: Option<bool>,
    /// Declared by the manufacturer: supported until (YYYY-MM-DD).
    pub supported_until: Option<String>,
    /// Evaluations, oldest first (withdrawn ones kept).
    pub evaluations: Vec<ModelEvaluation>,
    /// Set while an operator has the model suspended: (unix time, reason).
    pub suspended: Option<(i64, String)>,
    /// Level from the last assessment.
    pub level: u8,
    /// Status from the last assessment.
    pub status: ModelStatus,
    /// Sector policy version of the last assessment.
    pub policy_version: String,
    /// Incremented on every change.
    pub version: u64,
    /// Unix time of registration.
    pub registered_at: i64,
    /// Unix time of the last change.
    pub updated_at: i64,
    /// Changes, oldest first (the newest [`MAX_HISTORY`]).
    pub history: Vec<ModelHistoryEntry>,
}

/// What the criteria make of a record at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The level a device of the model earns.
    pub level: TrustLevel,
    /// The model's status.
    pub status: ModelStatus,
    /// The policy version applied.
    pub policy_version: String,
}

fn evaluation_of(e: &ModelEvaluation) -> Evaluation {
    Evaluation {
        scheme: e.scheme.clone(),
        result: e.result.clone(),
        evaluated_at: OffsetDateTime::from_unix_timestamp(e.evaluated_at)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}

impl ModelRecord {
    /// The model's own declared evidence with the given evaluations.
    fn evidence(&self, evaluations: Vec<Evaluation>) -> Result<Evidence, ModelError> {
        let supported_until = match &self.supported_until {
            None => None,
            Some(d) => {
                let fmt = time::macros::format_description!("[year]-[month]-[day]");
                Some(
                    time::Date::parse(d, &fmt)
                        .map_err(|_| invalid(format!("supported-until {d:?} is not a date")))?,
                )
            }
        };
        Ok(Evidence {
            evaluations,
            hardware_root_of_trust: self.hardware_root_of_trust,
            secure_update: self.secure_update,
            supported_until,
            attestation: None,
            hardware_registered: true,
        })
    }

    /// Level and status under `policy` at `now`. Third-party evaluations
    /// count fully; self-assessed ones count only up to the sector's
    /// `registry.self_assessed_max_level`. Expired and withdrawn
    /// evaluations do not count.
    pub fn assess(
        &self,
        policy: &SectorPolicy,
        now: OffsetDateTime,
    ) -> Result<Assessment, ModelError> {
        let t = now.unix_timestamp();
        let live = |self_assessed: bool| {
            self.evaluations
                .iter()
                .filter(move |e| e.is_live(t) && e.self_assessed == self_assessed)
                .map(evaluation_of)
        };
        let third_party: Vec<Evaluation> = live(false).collect();
        let certified = !third_party.is_empty();
        let strong = policy.evaluate(&self.evidence(third_party.clone())?, now)?;
        let mut all = third_party;
        all.extend(live(true));
        let with_self = policy.evaluate(&self.evidence(all)?, now)?;
        let capped = with_self.level.min(policy.registry.self_assessed_max_level);
        let level = strong.level.max(capped);
        let status = if self.suspended.is_some() {
            ModelStatus::Suspended
        } else if certified {
            ModelStatus::Certified
        } else if self
            .evaluations
            .iter()
            .any(|e| !e.self_assessed && e.withdrawn_at.is_some())
        {
            ModelStatus::Withdrawn
        } else {
            ModelStatus::Provisional
        };
        Ok(Assessment {
            level,
            status,
            policy_version: policy.version.clone(),
        })
    }

    /// Records a change: new version, history entry, assessment stored.
    pub fn record_change(
        &mut self,
        assessment: &Assessment,
        at: i64,
        actor: &str,
        change: ModelChange,
        reason: &str,
    ) {
        self.version += 1;
        self.updated_at = at;
        self.level = assessment.level.get();
        self.status = assessment.status;
        self.policy_version = assessment.policy_version.clone();
        self.history.push(ModelHistoryEntry {
            version: self.version,
            at,
            actor: actor.to_owned(),
            change,
            reason: reason.to_owned(),
        });
        if self.history.len() > MAX_HISTORY {
            let drop = self.history.len() - MAX_HISTORY;
            self.history.drain(..drop);
        }
    }

    /// Adds an evaluation, refusing a duplicate certificate number and more
    /// than [`MAX_EVALUATIONS`].
    pub fn add_evaluation(&mut self, e: ModelEvaluation) -> Result<(), ModelError> {
        if self
            .evaluations
            .iter()
            .any(|x| x.certificate_number == e.certificate_number)
        {
            return Err(invalid(format!(
                "evaluation certificate {:?} is already registered for this model",
                e.certificate_number
            )));
        }
        if self.evaluations.len() >= MAX_EVALUATIONS {
            return Err(invalid(format!(
                "a model keeps at most {MAX_EVALUATIONS} evaluations"
            )));
        }
        self.evaluations.push(e);
        Ok(())
    }

    /// Encodes the record for the store (JSON: readable in a dump, and the
    /// same bytes on every backend).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a stored record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("stored model record does not decode: {e}")))
    }
}

/// What the live state of a device of a registered model is: its level is
/// the model's level but never above what its certificate states (the
/// certificate is what relying parties see offline; a device rises above
/// it only by renewing), and a suspended model suspends its devices.
pub fn device_level(model_level: TrustLevel, certificate_level: TrustLevel) -> TrustLevel {
    model_level.min(certificate_level)
}

/// Checks an evaluation's text fields.
pub fn check_evaluation_fields(
    scheme: &str,
    result: &str,
    certificate_number: &str,
) -> Result<(), ModelError> {
    for (name, v) in [
        ("scheme", scheme),
        ("result", result),
        ("certificate number", certificate_number),
    ] {
        if v.is_empty() || v.len() > 64 || v.chars().any(char::is_control) {
            return Err(invalid(format!(
                "evaluation {name} must be 1-64 printable characters"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECTOR: &str = r#"
sector = "automotive"
version = "t1"

[certificate]
validity_days = 365
device_key_algorithms = ["ecdsa-p256"]

[evidence]
schemes = ["iso-sae-21434"]

[registry]
self_assessed_max_level = 2

[[level]]
level = 4
evaluation = ["iso-sae-21434:CAL3"]
secure_update = true

[[level]]
level = 3
evaluation = ["iso-sae-21434:CAL2", "iso-sae-21434:CAL3"]

[[level]]
level = 2
secure_update = true

[[level]]
level = 1
"#;

    fn policy() -> SectorPolicy {
        SectorPolicy::parse("sectors/automotive.toml", SECTOR).unwrap()
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-30 12:00 UTC)
    }

    fn record() -> ModelRecord {
        ModelRecord {
            key: ModelKey::new(
                SectorName::new("automotive").unwrap(),
                "Acme",
                "M1",
                FirmwareRange::parse("1.0..1.9").unwrap(),
            )
            .unwrap(),
            hardware_root_of_trust: None,
            secure_update: Some(true),
            supported_until: None,
            evaluations: vec![],
            suspended: None,
            level: 1,
            status: ModelStatus::Provisional,
            policy_version: String::new(),
            version: 0,
            registered_at: 0,
            updated_at: 0,
            history: vec![],
        }
    }

    fn evaluation(number: &str, result: &str, self_assessed: bool) -> ModelEvaluation {
        ModelEvaluation {
            scheme: "iso-sae-21434".into(),
            result: result.into(),
            certificate_number: number.into(),
            evaluated_at: now().unix_timestamp() - 86_400,
            valid_until: now().unix_timestamp() + 365 * 86_400,
            registered_by: "TUV".into(),
            self_assessed,
            withdrawn_at: None,
        }
    }

    #[test]
    fn ranges_parse_contain_and_overlap() {
        let r = FirmwareRange::parse("1.0..1.9").unwrap();
        assert!(r.contains("1.4.2") && r.contains("1.9") && !r.contains("1.10"));
        assert_eq!(r.to_string(), "1.0..1.9");
        let one = FirmwareRange::parse("2.1.0").unwrap();
        assert!(one.contains("2.1.0") && !one.contains("2.1.1"));
        assert_eq!(one.to_string(), "2.1.0");
        let open = FirmwareRange::parse("2.0..").unwrap();
        assert!(open.contains("99.0") && !open.contains("1.99"));
        assert!(open.overlaps(&one));
        assert!(!open.overlaps(&r));
        assert!(FirmwareRange::parse("..1.0").unwrap().overlaps(&r));
        for bad in ["", "..", "2.0..1.0", "1.0..2..3", "1 0", "a/b"] {
            assert!(FirmwareRange::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn third_party_evaluation_certifies_and_self_assessment_is_capped() {
        let p = policy();
        let mut m = record();
        let a = m.assess(&p, now()).unwrap();
        assert_eq!((a.level.get(), a.status), (2, ModelStatus::Provisional));
        m.add_evaluation(evaluation("SELF-1", "CAL3", true))
            .unwrap();
        let a = m.assess(&p, now()).unwrap();
        assert_eq!((a.level.get(), a.status), (2, ModelStatus::Provisional));
        m.add_evaluation(evaluation("TUV-1", "CAL3", false))
            .unwrap();
        let a = m.assess(&p, now()).unwrap();
        assert_eq!((a.level.get(), a.status), (4, ModelStatus::Certified));
        assert!(
            m.add_evaluation(evaluation("TUV-1", "CAL2", false))
                .is_err()
        );
    }

    #[test]
    fn withdrawal_and_expiry_lower_the_level() {
        let p = policy();
        let mut m = record();
        m.add_evaluation(evaluation("TUV-1", "CAL3", false))
            .unwrap();
        m.evaluations[0].withdrawn_at = Some(now().unix_timestamp());
        let a = m.assess(&p, now()).unwrap();
        assert_eq!((a.level.get(), a.status), (2, ModelStatus::Withdrawn));
        let mut m = record();
        m.add_evaluation(evaluation("TUV-2", "CAL3", false))
            .unwrap();
        let later = now() + time::Duration::days(400);
        let a = m.assess(&p, later).unwrap();
        assert_eq!((a.level.get(), a.status), (2, ModelStatus::Provisional));
        m.suspended = Some((0, "incident".into()));
        assert_eq!(m.assess(&p, now()).unwrap().status, ModelStatus::Suspended);
    }

    #[test]
    fn records_round_trip_and_history_is_bounded() {
        let p = policy();
        let mut m = record();
        let a = m.assess(&p, now()).unwrap();
        for i in 0..(MAX_HISTORY + 10) {
            m.record_change(
                &a,
                i as i64,
                "op",
                ModelChange::Recorded(format!("change {i}")),
                "why",
            );
        }
        assert_eq!(m.history.len(), MAX_HISTORY);
        assert_eq!(m.history.last().unwrap().version, m.version);
        assert_eq!(ModelRecord::from_bytes(&m.to_bytes()).unwrap(), m);
        assert!(ModelRecord::from_bytes(b"{\"key\":1}").is_err());
    }

    #[test]
    fn a_device_never_rises_above_its_certificate() {
        let l = |n| TrustLevel::new(n).unwrap();
        assert_eq!(device_level(l(5), l(3)), l(3));
        assert_eq!(device_level(l(2), l(4)), l(2));
    }

    proptest! {
        #[test]
        fn overlap_is_symmetric_and_agrees_with_membership(
            a in 0u32..20, b in 0u32..20, c in 0u32..20, d in 0u32..20, v in 0u32..20
        ) {
            let r1 = FirmwareRange::parse(&format!("1.{}..1.{}", a.min(b), a.max(b))).unwrap();
            let r2 = FirmwareRange::parse(&format!("1.{}..1.{}", c.min(d), c.max(d))).unwrap();
            prop_assert_eq!(r1.overlaps(&r2), r2.overlaps(&r1));
            let version = format!("1.{v}");
            if r1.contains(&version) && r2.contains(&version) {
                prop_assert!(r1.overlaps(&r2));
            }
            let reparsed = FirmwareRange::parse(&r1.to_string()).unwrap();
            prop_assert_eq!(reparsed, r1);
        }
    }

    /// A status's word, its parse and its stored (serde) form agree.
    #[test]
    fn model_statuses_round_trip_as_words() {
        for s in ModelStatus::ALL {
            assert_eq!(ModelStatus::parse(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(ModelStatus::parse("Certified"), None);
    }
}
