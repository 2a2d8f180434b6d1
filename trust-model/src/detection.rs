//! Detection templates: per sector, how reported anomalies (the IoT secure
//! gateway field trial's detections) turn into actions on a device's trust —
//! notify only, lower the level, suspend, revoke — once enough reports of a
//! kind arrive within a window. Templates also encode the trial's false
//! positives: a burst right after a silence (a car leaving an underground
//! car park) is tolerated.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use toml::Spanned;

use crate::{AnomalyKind, ModelError, SectorName};

/// What a template does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DetectionAction {
    /// Tell the provider; trust unchanged.
    Notify,
    /// Lower the live level by `lower_by` (never below 1).
    Lower,
    /// Suspend the device.
    Suspend,
    /// Revoke every certificate of the device.
    Revoke,
}

impl DetectionAction {
    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Lower => "lower",
            Self::Suspend => "suspend",
            Self::Revoke => "revoke",
        }
    }
}

/// How serious a template says its anomaly is: the threat level told to
/// the provider, and the anomaly outcome's `severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high`.
    High,
    /// `critical`.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// Lower-case name, as template files and answers spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// The severity named `name` (lower-case only).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    anomaly: AnomalyKind,
    #[serde(default = "one")]
    threshold: u32,
    #[serde(default = "sixty")]
    window_minutes: u32,
    severity: String,
    action: DetectionAction,
    #[serde(default)]
    lower_by: Option<u8>,
    #[serde(default)]
    tolerate_after: Option<AnomalyKind>,
    #[serde(default)]
    tolerate_minutes: Option<u32>,
    #[serde(default)]
    note: String,
}

fn one() -> u32 {
    1
}
fn sixty() -> u32 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectionFile {
    sector: SectorName,
    version: String,
    template: Vec<Spanned<TemplateFile>>,
}

/// One validated template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectionTemplate {
    /// The anomaly kind it handles.
    pub anomaly: AnomalyKind,
    /// Reports within the window needed to fire.
    pub threshold: u32,
    /// The window, in minutes.
    pub window_minutes: u32,
    /// The threat level told to the provider.
    pub severity: Severity,
    /// What to do.
    pub action: DetectionAction,
    /// For `lower`: by how many levels.
    pub lower_by: u8,
    /// A report of this kind shortly before makes this one a known false
    /// positive (notify only).
    pub tolerate_after: Option<(AnomalyKind, u32)>,
    /// Why, for people.
    pub note: String,
}

/// All detection templates, by sector then anomaly kind.
#[derive(Debug, Clone, Default)]
pub struct DetectionPolicy {
    templates: HashMap<SectorName, (String, BTreeMap<AnomalyKind, DetectionTemplate>)>,
}

impl DetectionPolicy {
    /// Parses `detection/<sector>.toml` files (name, text).
    pub fn parse(files: &[(String, String)], sectors: &[SectorName]) -> Result<Self, ModelError> {
        let mut templates = HashMap::new();
        for (file, text) in files {
            let err = |line: usize, reason: String| ModelError::InvalidPolicy {
                file: file.clone(),
                line,
                reason,
            };
            let line_of = |start: usize| text[..start.min(text.len())].matches('\n').count() + 1;
            let f: DetectionFile = toml::from_str(text).map_err(|e| {
                err(
                    e.span().map(|s| line_of(s.start)).unwrap_or(0),
                    e.message().to_owned(),
                )
            })?;
            if !sectors.contains(&f.sector) {
                return Err(err(1, format!("unknown sector {}", f.sector)));
            }
            let mut by_kind = BTreeMap::new();
            for t in f.template {
                let line = line_of(t.span().start);
                // An unknown anomaly kind was refused while reading, with
                // the known ones.
                let t = t.into_inner();
                let Some(severity) = Severity::parse(&t.severity) else {
                    return Err(err(
                        line,
                        "severity must be low, medium, high or critical".into(),
                    ));
                };
                if t.threshold == 0 || t.window_minutes == 0 || t.window_minutes > 7 * 24 * 60 {
                    return Err(err(
                        line,
                        "threshold must be >= 1 and window_minutes 1..=10080".into(),
                    ));
                }
                let lower_by = match (t.action, t.lower_by) {
                    (DetectionAction::Lower, Some(n)) if (1..=4).contains(&n) => n,
                    (DetectionAction::Lower, _) => {
                        return Err(err(line, "action lower needs lower_by = 1..4".into()));
                    }
                    (_, Some(_)) => {
                        return Err(err(line, "lower_by only goes with action lower".into()));
                    }
                    (_, None) => 0,
                };
                let tolerate_after =
                    match (t.tolerate_after, t.tolerate_minutes) {
                        (Some(k), Some(m)) if m > 0 => Some((k, m)),
                        (None, None) => None,
                        _ => return Err(err(
                            line,
                            "tolerate_after needs a known anomaly kind and tolerate_minutes > 0"
                                .into(),
                        )),
                    };
                let template = DetectionTemplate {
                    anomaly: t.anomaly,
                    threshold: t.threshold,
                    window_minutes: t.window_minutes,
                    severity,
                    action: t.action,
                    lower_by,
                    tolerate_after,
                    note: t.note,
                };
                if by_kind.insert(t.anomaly, template).is_some() {
                    return Err(err(
                        line,
                        format!("anomaly {} has two templates", t.anomaly),
                    ));
                }
            }
            if templates
                .insert(f.sector.clone(), (f.version, by_kind))
                .is_some()
            {
                return Err(err(
                    1,
                    format!("sector {} has two detection files", f.sector),
                ));
            }
        }
        Ok(Self { templates })
    }

    /// The template for `anomaly` in `sector`, if any.
    pub fn template(
        &self,
        sector: &SectorName,
        anomaly: AnomalyKind,
    ) -> Option<&DetectionTemplate> {
        self.templates
            .get(sector)
            .and_then(|(_, t)| t.get(&anomaly))
    }

    /// The version of a sector's templates.
    pub fn version(&self, sector: &SectorName) -> Option<&str> {
        self.templates.get(sector).map(|(v, _)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sectors() -> Vec<SectorName> {
        vec![SectorName::new("automotive").unwrap()]
    }

    #[test]
    fn parses_and_rejects() {
        let ok = r#"
sector = "automotive"
version = "d1"
[[template]]
anomaly = "firmware-downgrade"
severity = "critical"
action = "suspend"
[[template]]
anomaly = "frequency-high"
threshold = 3
window_minutes = 60
severity = "medium"
action = "lower"
lower_by = 1
tolerate_after = "silence"
tolerate_minutes = 30
"#;
        let p = DetectionPolicy::parse(&[("a.toml".into(), ok.into())], &sectors()).unwrap();
        let t = p
            .template(&sectors()[0], AnomalyKind::FrequencyHigh)
            .unwrap();
        assert_eq!((t.threshold, t.lower_by), (3, 1));
        assert_eq!(t.tolerate_after, Some((AnomalyKind::Silence, 30)));
        for bad in [
            ok.replace("firmware-downgrade", "alien-signal"),
            ok.replace("lower_by = 1", ""),
            ok.replace("severity = \"critical\"", "severity = \"apocalyptic\""),
            ok.replace("tolerate_after = \"silence\"", "tolerate_after = \"nap\""),
        ] {
            let e = DetectionPolicy::parse(&[("a.toml".into(), bad.clone())], &sectors())
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("a.toml:"), "{e}");
            if bad.contains("alien-signal") || bad.contains("nap") {
                assert!(e.contains("unknown anomaly kind"), "{e}");
            }
        }
    }
}
