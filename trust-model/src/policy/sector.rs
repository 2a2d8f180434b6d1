//! One sector's policy: its file, validation, and the criteria that turn a
//! device's evidence into a trust level.

use super::*;

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
