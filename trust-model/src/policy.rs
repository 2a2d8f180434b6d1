//! Policy files: the PKI layout (`pki.toml`) and one file per sector
//! (`sectors/<name>.toml`) holding the certificate profile and the criteria
//! that turn a device's evidence into a trust level.
//!
//! Policies are validated once, when loaded: a bad file is refused with its
//! name, the line and the reason, and nothing here is parsed per request.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use time::{Date, OffsetDateTime};
use toml::Spanned;

use crate::evidence::{Evidence, HardwareRootOfTrust};
use crate::extension::EvaluationBasis;
use crate::{ModelError, SectorName, TrustLevel};

/// Key algorithms a profile may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 (the default).
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Ed25519 => "ed25519",
        }
    }
}

fn default_key_algorithm() -> KeyAlgorithm {
    KeyAlgorithm::EcdsaP256
}

/// `pki.toml`: names and lifetimes of the CA hierarchy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiPolicy {
    /// DNS suffix under which device names live (`<sector>.<trust_domain>`).
    pub trust_domain: String,
    /// The root CA.
    pub root: RootProfile,
    /// Every sector sub-CA.
    pub sector_ca: ValidityProfile,
    /// Manufacturer, operator, auditor and gateway credentials.
    pub credentials: ValidityProfile,
    /// Service certificates (the TLS server, the trust responder).
    pub service: ValidityProfile,
    /// Where CRLs are published (`<base><sector>.crl` goes into each issued
    /// certificate's CRL distribution point); none if absent.
    #[serde(default)]
    pub crl_base_url: Option<String>,
    /// The PKCS#11 token that holds CA keys (`[pkcs11]`); when present,
    /// every CA key `init` creates goes there unless `[keys.<role>]` says
    /// `backend = "file"`.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Location>,
    /// Where each kind of CA key is created (`[keys.root] backend = ...`).
    #[serde(default)]
    pub keys: BTreeMap<KeyRole, KeyPlacement>,
    /// OIDs of trustca's private extensions.
    #[serde(default)]
    pub extensions: ExtensionsProfile,
}

/// `[pkcs11]` in `pki.toml`: the module and token (never the PIN, which
/// comes from `TRUSTCA_PKCS11_PIN` or a PIN file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Location {
    /// Path of the PKCS#11 module (shared library).
    pub module: String,
    /// Label of the token.
    pub token: String,
}

/// The kinds of CA key, each placed in a file or a token as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRole {
    /// The root CA key.
    Root,
    /// Every sector CA key.
    Sector,
    /// The V2X authorization authority key (the pseudonym CA's, which
    /// signs IEEE 1609.2 tickets and the linkage CRL).
    Pseudonym,
    /// The trust responder key (signs trust assertions).
    Responder,
    /// The audit log signer key (signs tree heads).
    Audit,
    /// The TLS server key of `serve`.
    Server,
}

impl KeyRole {
    /// The name used in `pki.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Root => "root",
            KeyRole::Sector => "sector",
            KeyRole::Pseudonym => "pseudonym",
            KeyRole::Responder => "responder",
            KeyRole::Audit => "audit",
            KeyRole::Server => "server",
        }
    }
}

/// `[keys.<role>]`: where keys of that role are created.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPlacement {
    /// `file` (encrypted key file in `ca/`) or `pkcs11` (the token).
    pub backend: KeyBackend,
}

/// Where a CA key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyBackend {
    /// An encrypted key file in `ca/` (the default).
    File,
    /// A non-extractable key in the PKCS#11 token.
    Pkcs11,
}

/// `[extensions]` in `pki.toml`: the OIDs trustca writes and reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionsProfile {
    /// The OID of the trust-level extension (default
    /// [`crate::extension::DEFAULT_OID`]). Every arc must be below 2^31.
    /// Change it only before `init`: certificates already issued carry the
    /// old one, and components only recognise the configured OID.
    #[serde(default)]
    pub trust_level_oid: crate::extension::ExtensionOid,
}

/// The root CA's profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootProfile {
    /// Subject common name.
    pub common_name: String,
    /// Subject organization.
    pub organization: String,
    /// Lifetime in days.
    pub validity_days: u32,
    /// Root key algorithm.
    #[serde(default = "default_key_algorithm")]
    pub key_algorithm: KeyAlgorithm,
}

/// A lifetime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidityProfile {
    /// Lifetime in days.
    pub validity_days: u32,
}

/// A sector's certificate profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateProfile {
    /// Lifetime of long-term device certificates, in days.
    pub validity_days: u32,
    /// Key algorithms accepted in device CSRs.
    pub device_key_algorithms: Vec<KeyAlgorithm>,
    /// The sub-CA's own key algorithm.
    #[serde(default = "default_key_algorithm")]
    pub ca_key_algorithm: KeyAlgorithm,
    /// Hours between a CRL's thisUpdate and nextUpdate (it is reissued at
    /// half that, and on every revocation).
    #[serde(default = "default_crl_validity_hours")]
    pub crl_validity_hours: u32,
}

fn default_crl_validity_hours() -> u32 {
    24
}

/// The evaluation schemes a sector recognises.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceProfile {
    /// Scheme names, e.g. `common-criteria`; evaluations under any other
    /// scheme are refused as unknown evidence.
    pub schemes: Vec<String>,
    /// The highest level a hardware root of trust that is only declared
    /// (not attested, `docs/attestation.md`) can help reach: a level above
    /// it that requires a hardware root of trust needs a verified
    /// attestation. Absent: declared evidence counts at every level.
    #[serde(default)]
    pub declared_hardware_max_level: Option<TrustLevel>,
}

/// What a device must show to earn one level. Every stated requirement must
/// hold; an absent requirement is not checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelCriteria {
    /// The level granted.
    pub level: TrustLevel,
    /// Accepted evaluations as `scheme:result`; one of them must be declared.
    #[serde(default)]
    pub evaluation: Vec<String>,
    /// Evaluations older than this many days do not count.
    #[serde(default)]
    pub max_evaluation_age_days: Option<u32>,
    /// The weakest acceptable hardware root of trust.
    #[serde(default)]
    pub min_hardware_root_of_trust: Option<HardwareRootOfTrust>,
    /// Whether secure update must be declared as supported.
    #[serde(default)]
    pub secure_update: Option<bool>,
    /// Support must last at least this many years from evaluation time.
    #[serde(default)]
    pub min_support_years: Option<u32>,
}

/// How the model registry treats a sector's models (`[registry]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryProfile {
    /// The highest level self-assessed evaluations (declared by the
    /// manufacturer, not a certification body) can earn a model.
    #[serde(default = "default_self_assessed_max_level")]
    pub self_assessed_max_level: TrustLevel,
    /// Whether enrollment requires the device's model and firmware to be
    /// registered (else unregistered models enroll on per-device evidence).
    #[serde(default)]
    pub require_registered_model: bool,
}

fn default_self_assessed_max_level() -> TrustLevel {
    TrustLevel::new(2).unwrap_or(TrustLevel::MIN)
}

impl Default for RegistryProfile {
    fn default() -> Self {
        Self {
            self_assessed_max_level: default_self_assessed_max_level(),
            require_registered_model: false,
        }
    }
}

/// `sectors/<name>.toml` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectorFile {
    sector: SectorName,
    version: String,
    #[serde(default)]
    description: String,
    certificate: CertificateProfile,
    evidence: EvidenceProfile,
    #[serde(default)]
    registry: RegistryProfile,
    level: Vec<Spanned<LevelCriteria>>,
}

/// One sector's validated policy.
#[derive(Debug, Clone)]
pub struct SectorPolicy {
    /// The sector.
    pub sector: SectorName,
    /// Policy version, recorded in every certificate it shaped.
    pub version: String,
    /// Human description.
    pub description: String,
    /// Certificate profile.
    pub certificate: CertificateProfile,
    /// Known evaluation schemes.
    pub evidence: EvidenceProfile,
    /// How the model registry treats this sector's models.
    pub registry: RegistryProfile,
    /// Criteria, highest level first.
    pub levels: Vec<LevelCriteria>,
}

/// The level a sector's criteria gave and the evidence that gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelDecision {
    /// The level.
    pub level: TrustLevel,
    /// The evidence behind it, for the certificate's extension.
    pub basis: Vec<EvaluationBasis>,
    /// The policy version applied.
    pub policy_version: String,
    /// Why the level is lower than the evidence would earn without the
    /// sector's cap on declared hardware, when it is.
    pub capped: Option<String>,
}

fn line_of(text: &str, span: Option<Range<usize>>) -> usize {
    span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
        .unwrap_or(0)
}

fn policy_error(file: &str, line: usize, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidPolicy {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ModelError> {
    toml::from_str(text).map_err(|e| {
        let line = line_of(text, e.span());
        policy_error(file, line, e.message().to_owned())
    })
}

impl PkiPolicy {
    /// Parses and validates `pki.toml`.
    pub fn parse(file: &str, text: &str) -> Result<Self, ModelError> {
        let p: PkiPolicy = parse_toml(file, text)?;
        let labels_ok = !p.trust_domain.is_empty()
            && p.trust_domain.len() <= 100
            && p.trust_domain.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !labels_ok {
            return Err(policy_error(
                file,
                0,
                "trust_domain must be a lower-case DNS name",
            ));
        }
        for (what, days) in [
            ("root", p.root.validity_days),
            ("sector_ca", p.sector_ca.validity_days),
            ("credentials", p.credentials.validity_days),
            ("service", p.service.validity_days),
        ] {
            if days == 0 || days > 36_500 {
                return Err(policy_error(
                    file,
                    0,
                    format!("{what}.validity_days must be 1..=36500"),
                ));
            }
        }
        if let Some(t) = &p.pkcs11
            && (t.module.trim().is_empty() || t.token.trim().is_empty())
        {
            return Err(policy_error(
                file,
                0,
                "[pkcs11] needs a module path and a token label",
            ));
        }
        // X.520 upper bounds: ub-common-name and ub-organization-name are 64.
        for (what, value) in [
            ("root.common_name", &p.root.common_name),
            ("root.organization", &p.root.organization),
        ] {
            let n = value.chars().count();
            if n == 0 || n > 64 {
                return Err(policy_error(
                    file,
                    0,
                    format!("{what} must be 1-64 characters (X.520 upper bound)"),
                ));
            }
        }
        if p.sector_ca.validity_days > p.root.validity_days {
            return Err(policy_error(
                file,
                0,
                "sector_ca.validity_days exceeds the root's lifetime",
            ));
        }
        Ok(p)
    }
}

impl SectorPolicy {
    /// Parses and validates one sector file.
    pub fn parse(file: &str, text: &str) -> Result<Self, ModelError> {
        let f: SectorFile = parse_toml(file, text)?;
        if f.version.is_empty() || f.version.len() > 64 {
            return Err(policy_error(file, 0, "version must be 1-64 characters"));
        }
        if f.certificate.validity_days == 0 || f.certificate.validity_days > 36_500 {
            return Err(policy_error(
                file,
                0,
                "certificate.validity_days must be 1..=36500",
            ));
        }
        if f.certificate.crl_validity_hours == 0 || f.certificate.crl_validity_hours > 24 * 366 {
            return Err(policy_error(
                file,
                0,
                "certificate.crl_validity_hours must be 1..=8784",
            ));
        }
        if f.certificate.device_key_algorithms.is_empty() {
            return Err(policy_error(
                file,
                0,
                "certificate.device_key_algorithms must name at least one algorithm",
            ));
        }
        let mut seen = BTreeMap::new();
        for spanned in &f.level {
            let line = line_of(text, Some(spanned.span()));
            let c = spanned.get_ref();
            if seen.insert(c.level, line).is_some() {
                return Err(policy_error(
                    file,
                    line,
                    format!("level {} is defined twice", c.level.get()),
                ));
            }
            for e in &c.evaluation {
                let Some((scheme, result)) = e.split_once(':') else {
                    return Err(policy_error(
                        file,
                        line,
                        format!("evaluation {e:?} must be scheme:result"),
                    ));
                };
                if result.is_empty() || !f.evidence.schemes.iter().any(|s| s == scheme) {
                    return Err(policy_error(
                        file,
                        line,
                        format!(
                            "evaluation {e:?} names scheme {scheme:?}, which evidence.schemes does not list"
                        ),
                    ));
                }
            }
            if c.max_evaluation_age_days.is_some() && c.evaluation.is_empty() {
                return Err(policy_error(
                    file,
                    line,
                    "max_evaluation_age_days without an evaluation requirement",
                ));
            }
        }
        match f
            .level
            .iter()
            .find(|c| c.get_ref().level == TrustLevel::MIN)
        {
            None => {
                return Err(policy_error(
                    file,
                    0,
                    "a [[level]] with level = 1 (the baseline) is required",
                ));
            }
            Some(base) => {
                let c = base.get_ref();
                if !c.evaluation.is_empty()
                    || c.min_hardware_root_of_trust.is_some()
                    || c.secure_update.is_some()
                    || c.min_support_years.is_some()
                {
                    return Err(policy_error(
                        file,
                        line_of(text, Some(base.span())),
                        "level 1 is the baseline every enrolled device gets: it must have no requirements",
                    ));
                }
            }
        }
        let mut levels: Vec<LevelCriteria> = f.level.into_iter().map(Spanned::into_inner).collect();
        levels.sort_by_key(|c| std::cmp::Reverse(c.level));
        Ok(Self {
            sector: f.sector,
            version: f.version,
            description: f.description,
            certificate: f.certificate,
            evidence: f.evidence,
            registry: f.registry,
            levels,
        })
    }

    /// Checks that every evaluation names a scheme this sector knows.
    fn check_known(&self, ev: &Evidence) -> Result<(), ModelError> {
        for e in &ev.evaluations {
            if !self.evidence.schemes.contains(&e.scheme) {
                return Err(ModelError::InvalidEvidence(format!(
                    "unknown evaluation scheme {:?} for sector {}: known are {}",
                    crate::sector::truncate(&e.scheme),
                    self.sector,
                    self.evidence.schemes.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Why `level` is all `ev` earns when a higher level would be met but
    /// for the cap on declared hardware; `None` when the cap changed nothing.
    fn cap_reason(&self, level: TrustLevel, ev: &Evidence, now: OffsetDateTime) -> Option<String> {
        let cap = self.evidence.declared_hardware_max_level?;
        let hardware = ev.hardware_root_of_trust?;
        if ev.attestation.is_some() || ev.hardware_registered {
            return None;
        }
        let uncapped = self
            .levels
            .iter()
            .find(|c| c.level > level && meets(c, ev, now, None).is_some())?;
        Some(format!(
            "declared hardware-root-of-trust {} counts up to level {} in {}; level {} needs an attested key (docs/attestation.md) or a registered model",
            hardware.as_str(),
            cap.get(),
            self.sector,
            uncapped.level.get()
        ))
    }

    /// The highest level whose every requirement `ev` meets at `now`.
    pub fn evaluate(
        &self,
        ev: &Evidence,
        now: OffsetDateTime,
    ) -> Result<LevelDecision, ModelError> {
        self.check_known(ev)?;
        check_not_future(ev, now)?;
        let cap = self.evidence.declared_hardware_max_level;
        for c in &self.levels {
            if let Some(mut basis) = meets(c, ev, now, cap) {
                // The certificate names a verified attestation even when
                // no criterion of the level asked for hardware.
                if let Some(a) = &ev.attestation
                    && !basis.iter().any(|b| b.attestation.is_some())
                {
                    basis.push(a.basis());
                }
                return Ok(LevelDecision {
                    level: c.level,
                    basis,
                    policy_version: self.version.clone(),
                    capped: self.cap_reason(c.level, ev, now),
                });
            }
        }
        // Unreachable for a validated policy (level 1 has no requirements),
        // but a level is never invented: say what is wrong instead.
        Err(ModelError::InvalidPolicy {
            file: format!("sectors/{}.toml", self.sector),
            line: 0,
            reason: "no level matched; the baseline level 1 is missing".to_owned(),
        })
    }
}

/// How far ahead of this server's clock an evaluation date may lie: the
/// clock skew between a manufacturer's systems and the CA.
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

/// Refuses an evaluation dated after `now` (beyond the clock skew). Such a
/// date is a mistake or a lie; counting it would be wrong, and silently
/// ignoring it would hand the device a lower level with no reason given.
fn check_not_future(ev: &Evidence, now: OffsetDateTime) -> Result<(), ModelError> {
    for e in &ev.evaluations {
        if e.evaluated_at > now + MAX_CLOCK_SKEW {
            let when = e
                .evaluated_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| e.evaluated_at.date().to_string());
            return Err(ModelError::InvalidEvidence(format!(
                "the {} evaluation is dated {when}, which is in the future (more than {} minutes ahead of this server's clock)",
                crate::sector::truncate(&e.scheme),
                MAX_CLOCK_SKEW.whole_minutes()
            )));
        }
    }
    Ok(())
}

/// `date` moved by `years` calendar years. 29 February lands on 28
/// February in a year that has none, so support counted from a leap day is
/// never a year short and never refused outright.
pub fn add_years(date: Date, years: i32) -> Option<Date> {
    let year = date.year().checked_add(years)?;
    date.replace_year(year).ok().or_else(|| {
        // Only 29 February has no counterpart in another year.
        Date::from_calendar_date(year, time::Month::February, 28).ok()
    })
}

fn meets(
    c: &LevelCriteria,
    ev: &Evidence,
    now: OffsetDateTime,
    declared_cap: Option<TrustLevel>,
) -> Option<Vec<EvaluationBasis>> {
    let mut basis = Vec::new();
    let mut evaluated_at = None;
    if !c.evaluation.is_empty() {
        let found = ev.evaluations.iter().find(|e| {
            let fresh = c
                .max_evaluation_age_days
                .is_none_or(|d| now - e.evaluated_at <= time::Duration::days(d as i64));
            // Future dates were refused by `check_not_future`.
            fresh
                && c.evaluation.iter().any(|want| {
                    want.split_once(':') == Some((e.scheme.as_str(), e.result.as_str()))
                })
        })?;
        evaluated_at = Some(found.evaluated_at);
        basis.push(EvaluationBasis {
            evidence: "evaluation".to_owned(),
            scheme: found.scheme.clone(),
            result: found.result.clone(),
            evaluated_at: Some(found.evaluated_at),
            attestation: None,
        });
    }
    if let Some(min) = c.min_hardware_root_of_trust {
        // A verified attestation replaces what was declared.
        if let Some(a) = &ev.attestation {
            if a.format.hardware_root_of_trust() < min {
                return None;
            }
            basis.push(a.basis());
        } else {
            let have = ev.hardware_root_of_trust?;
            let capped = !ev.hardware_registered && declared_cap.is_some_and(|cap| c.level > cap);
            if have < min || capped {
                return None;
            }
            basis.push(EvaluationBasis {
                evidence: "hardware-root-of-trust".to_owned(),
                scheme: String::new(),
                result: have.as_str().to_owned(),
                evaluated_at: None,
                attestation: None,
            });
        }
    }
    if let Some(want) = c.secure_update {
        if ev.secure_update != Some(want) {
            return None;
        }
        basis.push(EvaluationBasis {
            evidence: "secure-update".to_owned(),
            scheme: String::new(),
            result: want.to_string(),
            evaluated_at: None,
            attestation: None,
        });
    }
    if let Some(years) = c.min_support_years {
        let until = ev.supported_until?;
        let from = evaluated_at.unwrap_or(now).max(now).date();
        let needed = add_years(from, i32::try_from(years).unwrap_or(i32::MAX))?;
        if until < needed {
            return None;
        }
        basis.push(EvaluationBasis {
            evidence: "supported-until".to_owned(),
            scheme: String::new(),
            result: until.to_string(),
            evaluated_at: None,
            attestation: None,
        });
    }
    Some(basis)
}

/// Every policy a trustca instance runs with, validated together.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// `pki.toml`.
    pub pki: PkiPolicy,
    /// One policy per sector, by name.
    pub sectors: BTreeMap<SectorName, SectorPolicy>,
    /// `cooperation.toml` and `recognition.toml`.
    pub trust: crate::TrustPolicy,
    /// `detection/<sector>.toml`.
    pub detection: crate::DetectionPolicy,
}

impl PolicySet {
    /// Builds a set from `pki.toml` and the sector files, given as
    /// (file name, text) pairs. Refuses duplicate sectors and a file whose
    /// name does not match the sector it declares.
    pub fn parse(
        pki: (&str, &str),
        sector_files: &[(String, String)],
        cooperation: (&str, &str),
        recognition: (&str, &str),
        detection_files: &[(String, String)],
    ) -> Result<Self, ModelError> {
        let pki = PkiPolicy::parse(pki.0, pki.1)?;
        let mut sectors = BTreeMap::new();
        for (file, text) in sector_files {
            let policy = SectorPolicy::parse(file, text)?;
            let stem = std::path::Path::new(file)
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if stem != policy.sector.as_str() {
                return Err(policy_error(
                    file,
                    1,
                    format!(
                        "file declares sector {:?}; name the file {}.toml",
                        policy.sector.as_str(),
                        policy.sector
                    ),
                ));
            }
            if sectors.insert(policy.sector.clone(), policy).is_some() {
                return Err(policy_error(file, 1, "sector defined twice"));
            }
        }
        if sectors.is_empty() {
            return Err(policy_error("sectors/", 0, "no sector policies found"));
        }
        let names: Vec<SectorName> = sectors.keys().cloned().collect();
        let trust = crate::TrustPolicy::parse(cooperation, recognition, &names)?;
        let detection = crate::DetectionPolicy::parse(detection_files, &names)?;
        Ok(Self {
            pki,
            sectors,
            trust,
            detection,
        })
    }

    /// The policy of `sector`.
    pub fn sector(&self, sector: &str) -> Result<&SectorPolicy, ModelError> {
        SectorName::new(sector)
            .ok()
            .and_then(|s| self.sectors.get(&s))
            .ok_or_else(|| ModelError::UnknownSector(crate::sector::truncate(sector)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::EvidenceItem;
    use crate::{AttestationFormat, VerifiedAttestation};

    const SECTOR: &str = r#"
sector = "automotive"
version = "t1"

[certificate]
validity_days = 365
device_key_algorithms = ["ecdsa-p256"]

[evidence]
schemes = ["common-criteria"]

[[level]]
level = 5
evaluation = ["common-criteria:EAL4+"]
max_evaluation_age_days = 1000
min_hardware_root_of_trust = "secure-element"
secure_update = true
min_support_years = 5

[[level]]
level = 3
secure_update = true

[[level]]
level = 1
"#;

    fn item(kind: &str, scheme: &str, value: &str, at: &str) -> EvidenceItem {
        EvidenceItem {
            kind: kind.into(),
            scheme: scheme.into(),
            value: value.into(),
            evaluated_at: at.into(),
        }
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-11-23 0:00 UTC)
    }

    /// Issue 25: with `declared_hardware_max_level = 3`, a declared
    /// hardware root of trust no longer reaches level 5; a verified
    /// attestation does, and the basis records it as attested.
    #[test]
    fn declared_hardware_is_capped_and_attestation_lifts_the_cap() {
        let capped = SECTOR.replace(
            "schemes = [\"common-criteria\"]",
            "schemes = [\"common-criteria\"]\ndeclared_hardware_max_level = 3",
        );
        let p = SectorPolicy::parse("automotive.toml", &capped).unwrap();
        let mut ev = Evidence::parse(&[
            item("evaluation", "common-criteria", "EAL4+", "2026-01-01"),
            item("hardware-root-of-trust", "", "tpm2", ""),
            item("secure-update", "", "true", ""),
            item("supported-until", "", "2032-01-01", ""),
        ])
        .unwrap();
        let declared = p.evaluate(&ev, now()).unwrap();
        assert_eq!(declared.level.get(), 3);
        assert!(declared.basis.iter().all(|b| b.attestation.is_none()));
        let why = declared.capped.as_deref().unwrap();
        assert!(why.contains("counts up to level 3"), "{why}");
        assert!(why.contains("level 5 needs an attested key"), "{why}");
        // The registry's hardware is not capped.
        let registered = Evidence {
            hardware_registered: true,
            ..ev.clone()
        };
        let d = p.evaluate(&registered, now()).unwrap();
        assert_eq!(d.level.get(), 5);
        assert_eq!(d.capped, None);
        // Without the cap the same evidence earns 5.
        let open = SectorPolicy::parse("automotive.toml", SECTOR).unwrap();
        assert_eq!(open.evaluate(&ev, now()).unwrap().level.get(), 5);
        ev.attestation = Some(VerifiedAttestation {
            format: AttestationFormat::Tpm2CertifyCreation,
        });
        let attested = p.evaluate(&ev, now()).unwrap();
        assert_eq!(attested.level.get(), 5);
        assert_eq!(attested.capped, None);
        let hw: Vec<_> = attested
            .basis
            .iter()
            .filter(|b| b.evidence == "hardware-root-of-trust")
            .collect();
        assert_eq!(hw.len(), 1);
        assert_eq!(hw[0].result, "tpm2");
        assert_eq!(hw[0].attestation.as_deref(), Some("tpm2-certify-creation"));
        // An attestation is recorded even when the level needs no hardware.
        let only = Evidence {
            attestation: ev.attestation.clone(),
            ..Evidence::default()
        };
        let d = p.evaluate(&only, now()).unwrap();
        assert_eq!(d.level.get(), 1);
        assert_eq!(d.basis.len(), 1);
        assert_eq!(d.basis[0].basis_kind(), "attested");
    }

    #[test]
    fn levels_from_evidence() {
        let p = SectorPolicy::parse("automotive.toml", SECTOR).unwrap();
        let full = Evidence::parse(&[
            item("evaluation", "common-criteria", "EAL4+", "2026-01-01"),
            item("hardware-root-of-trust", "", "tpm2", ""),
            item("secure-update", "", "true", ""),
            item("supported-until", "", "2032-01-01", ""),
        ])
        .unwrap();
        let d = p.evaluate(&full, now()).unwrap();
        assert_eq!(d.level.get(), 5);
        assert_eq!(d.basis.len(), 4);
        assert_eq!(d.policy_version, "t1");

        let only_update = Evidence::parse(&[item("secure-update", "", "true", "")]).unwrap();
        assert_eq!(p.evaluate(&only_update, now()).unwrap().level.get(), 3);
        assert_eq!(
            p.evaluate(&Evidence::default(), now()).unwrap().level.get(),
            1
        );

        // Short support drops the device from 5 to 3.
        let short = Evidence::parse(&[
            item("evaluation", "common-criteria", "EAL4+", "2026-01-01"),
            item("hardware-root-of-trust", "", "tpm2", ""),
            item("secure-update", "", "true", ""),
            item("supported-until", "", "2028-01-01", ""),
        ])
        .unwrap();
        assert_eq!(p.evaluate(&short, now()).unwrap().level.get(), 3);

        // A stale evaluation does not count.
        let stale = Evidence::parse(&[
            item("evaluation", "common-criteria", "EAL4+", "2020-01-01"),
            item("hardware-root-of-trust", "", "tpm2", ""),
            item("secure-update", "", "true", ""),
            item("supported-until", "", "2040-01-01", ""),
        ])
        .unwrap();
        assert_eq!(p.evaluate(&stale, now()).unwrap().level.get(), 3);
    }

    fn lv5_evidence(evaluated_at: &str, supported_until: &str) -> Evidence {
        Evidence::parse(&[
            item("evaluation", "common-criteria", "EAL4+", evaluated_at),
            item("hardware-root-of-trust", "", "tpm2", ""),
            item("secure-update", "", "true", ""),
            item("supported-until", "", supported_until, ""),
        ])
        .unwrap()
    }

    #[test]
    fn evidence_dated_in_the_future_is_refused_not_dropped() {
        let p = SectorPolicy::parse("automotive.toml", SECTOR).unwrap();
        let now = time::macros::datetime!(2026-11-23 12:00 UTC);
        let tomorrow = lv5_evidence("2026-11-24", "2040-01-01");
        let err = p.evaluate(&tomorrow, now).unwrap_err();
        assert!(matches!(err, ModelError::InvalidEvidence(_)), "{err}");
        assert!(err.to_string().contains("in the future"), "{err}");
        // Within the clock skew is fine; just beyond it is not.
        let skewed = lv5_evidence("2026-11-23T12:04:59Z", "2040-01-01");
        assert_eq!(p.evaluate(&skewed, now).unwrap().level.get(), 5);
        let beyond = lv5_evidence("2026-11-23T12:05:01Z", "2040-01-01");
        assert!(p.evaluate(&beyond, now).is_err());
    }

    #[test]
    fn support_years_count_from_a_leap_day() {
        let p = SectorPolicy::parse("automotive.toml", SECTOR).unwrap();
        let leap_day = time::macros::datetime!(2028-02-29 12:00 UTC);
        // Five years from 2028-02-29 end on 2033-02-28.
        let ev = lv5_evidence("2028-01-10", "2033-02-28");
        assert_eq!(p.evaluate(&ev, leap_day).unwrap().level.get(), 5);
        let short = lv5_evidence("2028-01-10", "2033-02-27");
        assert_eq!(p.evaluate(&short, leap_day).unwrap().level.get(), 3);
        assert_eq!(
            add_years(time::macros::date!(2028 - 02 - 29), 4),
            Some(time::macros::date!(2032 - 02 - 29))
        );
    }

    proptest::proptest! {
        /// Support of exactly `min_support_years` from any day (leap days
        /// included) earns the level; a day less does not.
        #[test]
        fn support_years_hold_on_every_day(day in 0i64..(366 * 12)) {
            let p = SectorPolicy::parse("automotive.toml", SECTOR).unwrap();
            let now = time::macros::datetime!(2024-01-01 12:00 UTC) + time::Duration::days(day);
            let evaluated = (now - time::Duration::days(10)).date().to_string();
            let until = add_years(now.date(), 5).unwrap();
            let enough = lv5_evidence(&evaluated, &until.to_string());
            proptest::prop_assert_eq!(p.evaluate(&enough, now).unwrap().level.get(), 5);
            let short = lv5_evidence(&evaluated, &(until - time::Duration::days(1)).to_string());
            proptest::prop_assert_eq!(p.evaluate(&short, now).unwrap().level.get(), 3);
        }

        /// Adding years keeps month and day, except 29 February in a
        /// common year, and never goes backwards.
        #[test]
        fn add_years_is_calendar_exact(day in 0i64..(366 * 40), years in 0i32..60) {
            let d = time::macros::date!(2000 - 01 - 01) + time::Duration::days(day);
            let moved = add_years(d, years).unwrap();
            proptest::prop_assert_eq!(moved.year(), d.year() + years);
            proptest::prop_assert_eq!(moved.month(), d.month());
            if (d.month(), d.day()) == (time::Month::February, 29) && !time::util::is_leap_year(moved.year()) {
                proptest::prop_assert_eq!(moved.day(), 28);
            } else {
                proptest::prop_assert_eq!(moved.day(), d.day());
            }
            let next = add_years(d + time::Duration::days(1), years).unwrap();
            proptest::prop_assert!(next >= moved);
        }
    }

    #[test]
    fn unknown_scheme_is_an_error() {
        let p = SectorPolicy::parse("automotive.toml", SECTOR).unwrap();
        let ev =
            Evidence::parse(&[item("evaluation", "self-assessed", "great", "2026-01-01")]).unwrap();
        assert!(
            p.evaluate(&ev, now())
                .unwrap_err()
                .to_string()
                .contains("unknown evaluation scheme")
        );
    }

    #[test]
    fn bad_files_name_the_line() {
        let dup = SECTOR.replace("level = 3", "level = 5");
        let err = SectorPolicy::parse("automotive.toml", &dup).unwrap_err();
        match err {
            ModelError::InvalidPolicy { file, line, reason } => {
                assert_eq!(file, "automotive.toml");
                assert!(line > 15, "line {line}");
                assert!(reason.contains("defined twice"), "{reason}");
            }
            other => panic!("{other}"),
        }
        let bad_level = SECTOR.replace("level = 3", "level = 6");
        let err = SectorPolicy::parse("automotive.toml", &bad_level)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("automotive.toml:"), "{err}");
        assert!(err.contains("out of range"), "{err}");
        let unknown_key = SECTOR.replace("validity_days = 365", "validity_days = 365\nvalidty = 3");
        let err = SectorPolicy::parse("automotive.toml", &unknown_key)
            .unwrap_err()
            .to_string();
        assert!(err.contains(":7:") || err.contains(":8:"), "{err}");
        assert!(err.contains("unknown field"), "{err}");
        let no_base = SECTOR.replace("[[level]]\nlevel = 1\n", "");
        assert!(
            SectorPolicy::parse("a.toml", &no_base)
                .unwrap_err()
                .to_string()
                .contains("baseline")
        );
    }

    const PKI: &str = r#"trust_domain = "trustca.internal"
[root]
common_name = "R"
organization = "O"
validity_days = 7300
[sector_ca]
validity_days = 3650
[credentials]
validity_days = 730
[service]
validity_days = 397
"#;

    #[test]
    fn trust_level_oid_defaults_and_is_configurable() {
        let p = PkiPolicy::parse("pki.toml", PKI).unwrap();
        assert_eq!(
            p.extensions.trust_level_oid.to_string(),
            crate::extension::DEFAULT_OID
        );
        let own = format!("{PKI}[extensions]\ntrust_level_oid = \"1.3.6.1.4.1.99999.1.1\"\n");
        let p = PkiPolicy::parse("pki.toml", &own).unwrap();
        assert_eq!(
            p.extensions.trust_level_oid.arcs(),
            &[1, 3, 6, 1, 4, 1, 99999, 1, 1]
        );
        let uuid_arc = format!(
            "{PKI}[extensions]\ntrust_level_oid = \"2.25.304917911047948023692104962459481245009\"\n"
        );
        let err = PkiPolicy::parse("pki.toml", &uuid_arc)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("pki.toml:13:"), "{err}");
        assert!(err.contains("larger than 2^31-1"), "{err}");
        let long_cn = PKI.replace(
            "common_name = \"R\"",
            &format!("common_name = \"{}\"", "R".repeat(65)),
        );
        let err = PkiPolicy::parse("pki.toml", &long_cn)
            .unwrap_err()
            .to_string();
        assert!(err.contains("root.common_name must be 1-64"), "{err}");
    }
}
