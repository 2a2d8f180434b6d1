//! `policies/composition.toml`: how links between devices cap their levels
//! and how a system's combined level is formed. Every number is policy; the
//! code only applies them.
//!
//! The file is checked against the trust policy it will be used with: every
//! depth of `cooperation.toml` beyond `none` has a slack, slack never grows
//! with depth (a deeper operation gives the invoker more power over the
//! target, so it may not lend more), and every recognition table is
//! monotonic (a higher level never counts lower), which is what lets the
//! evaluation follow only the weakest level reaching each device.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use trustca_model::{TrustLevel, TrustPolicy};

use crate::CompositionError;

/// Hard bounds on the policy's own limits, whatever the file says: the
/// evaluation's work grows with hops × depths × links.
const MAX_HOPS_BOUND: usize = 16;
const MAX_DEVICES_BOUND: usize = 100_000;
const MAX_LINKS_BOUND: usize = 500_000;

/// How the system's combined level is formed from its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CombinedMethod {
    /// The lowest effective level of any member, counted in the system's
    /// sector's terms: the system is as strong as its weakest member once
    /// the links have been taken into account.
    WeakestEffective,
    /// The lowest own level of any member, links ignored: for systems whose
    /// links are not all known.
    WeakestOwn,
}

impl CombinedMethod {
    /// The name used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WeakestEffective => "weakest-effective",
            Self::WeakestOwn => "weakest-own",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    limits: LimitsFile,
    cap: CapFile,
    combined: CombinedFile,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_devices: usize,
    max_links: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapFile {
    slack: BTreeMap<String, u8>,
    per_hop: u8,
    max_hops: usize,
    unrecognised_counts_as: i64,
    inactive_counts_as: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CombinedFile {
    method: String,
}

/// The composition policy, validated against a trust policy.
#[derive(Debug, Clone)]
pub struct CompositionPolicy {
    /// Version of `composition.toml`, recorded with evaluations.
    pub version: String,
    /// Most members a system may have.
    pub max_devices: usize,
    /// Most links a system may have.
    pub max_links: usize,
    /// Levels above the invoker's that a device reached by a path of each
    /// depth (index into the trust policy's depths) may keep.
    slack: Vec<u8>,
    /// Further slack per hop beyond the first.
    pub per_hop: u8,
    /// Paths longer than this are not followed.
    pub max_hops: usize,
    /// How a level from a sector with no recognition table counts.
    pub unrecognised_counts_as: TrustLevel,
    /// How a suspended, revoked or retired member counts as a source.
    pub inactive_counts_as: TrustLevel,
    /// How the combined level is formed.
    pub combined: CombinedMethod,
    text: Arc<str>,
    file: Arc<str>,
    trust: Arc<TrustPolicy>,
}

fn invalid(file: &str, line: usize, reason: impl Into<String>) -> CompositionError {
    CompositionError::InvalidPolicy {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

impl CompositionPolicy {
    /// Parses `text` (named `file` in errors) and checks it against `trust`.
    pub fn parse(
        file: &str,
        text: &str,
        trust: Arc<TrustPolicy>,
    ) -> Result<Self, CompositionError> {
        let f: File = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            invalid(file, line, e.message())
        })?;
        if f.version.is_empty() || f.version.len() > 64 {
            return Err(invalid(file, 0, "version must be 1-64 characters"));
        }
        if !(1..=MAX_DEVICES_BOUND).contains(&f.limits.max_devices) {
            return Err(invalid(
                file,
                0,
                format!("limits.max_devices must be 1-{MAX_DEVICES_BOUND}"),
            ));
        }
        if f.limits.max_links > MAX_LINKS_BOUND {
            return Err(invalid(
                file,
                0,
                format!("limits.max_links must be at most {MAX_LINKS_BOUND}"),
            ));
        }
        if !(1..=MAX_HOPS_BOUND).contains(&f.cap.max_hops) {
            return Err(invalid(
                file,
                0,
                format!("cap.max_hops must be 1-{MAX_HOPS_BOUND}"),
            ));
        }
        if f.cap.per_hop > 4 {
            return Err(invalid(file, 0, "cap.per_hop must be 0-4"));
        }
        let level = |name: &str, v: i64| {
            TrustLevel::new(v).map_err(|_| invalid(file, 0, format!("cap.{name} must be 1-5")))
        };
        let unrecognised_counts_as = level("unrecognised_counts_as", f.cap.unrecognised_counts_as)?;
        let inactive_counts_as = level("inactive_counts_as", f.cap.inactive_counts_as)?;
        let combined = match f.combined.method.as_str() {
            "weakest-effective" => CombinedMethod::WeakestEffective,
            "weakest-own" => CombinedMethod::WeakestOwn,
            other => {
                return Err(invalid(
                    file,
                    0,
                    format!(
                        "combined.method {other:?} is not one of \"weakest-effective\", \"weakest-own\""
                    ),
                ));
            }
        };
        let slack = slack_by_depth(file, &f.cap.slack, &trust)?;
        check_recognition_monotonic(file, &trust)?;
        Ok(Self {
            version: f.version,
            max_devices: f.limits.max_devices,
            max_links: f.limits.max_links,
            slack,
            per_hop: f.cap.per_hop,
            max_hops: f.cap.max_hops,
            unrecognised_counts_as,
            inactive_counts_as,
            combined,
            text: Arc::from(text),
            file: Arc::from(file),
            trust,
        })
    }

    /// The same composition file checked against another trust policy (after
    /// the cooperation or recognition files were reloaded).
    pub fn with_trust(&self, trust: Arc<TrustPolicy>) -> Result<Self, CompositionError> {
        Self::parse(&self.file, &self.text, trust)
    }

    /// The trust policy this was checked against: its depths, operations
    /// and recognition tables are the ones evaluations use.
    pub fn trust(&self) -> &Arc<TrustPolicy> {
        &self.trust
    }

    /// The text this was parsed from.
    pub fn source(&self) -> &str {
        &self.text
    }

    /// The slack of a path whose shallowest link has depth index `depth`.
    pub fn slack(&self, depth: usize) -> u8 {
        self.slack.get(depth).copied().unwrap_or(0)
    }

    /// The depth index an operation needs. An operation that a reloaded
    /// cooperation policy no longer knows counts as the deepest depth: the
    /// link stays and caps as hard as any.
    pub fn operation_depth(&self, operation: &str) -> usize {
        self.trust
            .operation_depth(operation)
            .unwrap_or(self.trust.depths.len().saturating_sub(1))
    }
}

/// Slack per depth index; `none` (index 0) never caps.
fn slack_by_depth(
    file: &str,
    given: &BTreeMap<String, u8>,
    trust: &TrustPolicy,
) -> Result<Vec<u8>, CompositionError> {
    for name in given.keys() {
        if !trust.depths.iter().skip(1).any(|d| d == name) {
            return Err(invalid(
                file,
                0,
                format!(
                    "cap.slack names {name:?}, which is not a depth of cooperation.toml (besides none)"
                ),
            ));
        }
    }
    let mut slack = vec![4];
    for depth in trust.depths.iter().skip(1) {
        let s = *given.get(depth).ok_or_else(|| {
            invalid(
                file,
                0,
                format!("cap.slack has no value for depth {depth:?}"),
            )
        })?;
        if s > 4 {
            return Err(invalid(
                file,
                0,
                format!("cap.slack.{depth} must be 0-4 (4 never caps)"),
            ));
        }
        if slack.len() > 1 && slack.last().is_some_and(|prev| s > *prev) {
            return Err(invalid(
                file,
                0,
                format!(
                    "cap.slack.{depth} is larger than the slack of a shallower depth: a deeper operation may not lend more"
                ),
            ));
        }
        slack.push(s);
    }
    Ok(slack)
}

/// Every recognition table must count a higher level at least as high as a
/// lower one; the evaluation relies on it to keep only the weakest level
/// per path shape.
fn check_recognition_monotonic(file: &str, trust: &TrustPolicy) -> Result<(), CompositionError> {
    for counting in trust.sectors() {
        for counted in trust.sectors() {
            let mut previous = None;
            for l in 1..=5 {
                let level = TrustLevel::new(l)?;
                let now = trust.recognise(counting, counted, level);
                if let (Some(p), Some(n)) = (previous, now)
                    && n < p
                {
                    return Err(invalid(
                        file,
                        0,
                        format!(
                            "recognition of {counted} by {counting} counts {level} lower than a lower level; composition needs monotonic tables"
                        ),
                    ));
                }
                previous = now;
            }
        }
    }
    Ok(())
}
