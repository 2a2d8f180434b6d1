//! Cross-industry cooperation: the ladder of cooperation depths, which
//! operation needs which depth, the per-sector-pair rules giving the
//! minimum levels for each depth, and the explicit cross-recognition tables
//! saying how one sector counts another sector's levels.
//!
//! The source documents name "how one industry should evaluate another
//! industry's trust levels" as the open problem; the answer here is a
//! versioned, auditable table per (counting sector, counted sector). No
//! table for a pair means no cross-sector cooperation beyond `none`, and the
//! decision says so.
//!
//! Everything is parsed and validated once at load; [`TrustPolicy::decide`]
//! is pure and allocation-light, since it runs on every query.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use toml::Spanned;

use crate::{CooperationDepth, ModelError, SectorName, TrustLevel, TrustStatus};

mod pairs;
use pairs::PairMap;

/// `cooperation.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CooperationFile {
    version: String,
    depths: Vec<String>,
    operations: BTreeMap<String, String>,
    #[serde(default)]
    rule: Vec<Spanned<RuleFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    name: String,
    #[serde(default)]
    use_case: String,
    caller: String,
    peer: String,
    #[serde(default)]
    symmetric: bool,
    /// When set, the rule applies only to these operations, and for them it
    /// takes precedence over rules without an operation list (e.g. the
    /// all-sector evacuation rule).
    #[serde(default)]
    operations: Vec<String>,
    min_levels: BTreeMap<String, [i64; 2]>,
}

/// `recognition.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecognitionFile {
    version: String,
    /// Sectors under other roots, recognised through the trust list
    /// (`trustca root trust-list issue`): they may be named in rules and
    /// tables here, though this root has no CA for them.
    #[serde(default)]
    foreign: Vec<SectorName>,
    #[serde(default)]
    recognition: Vec<Spanned<RecognitionEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecognitionEntry {
    sector: SectorName,
    counts: SectorName,
    map: Vec<i64>,
    #[serde(default)]
    rationale: String,
}

/// One cooperation rule after validation.
#[derive(Debug, Clone)]
pub struct CooperationRule {
    /// Rule name, reported in decisions.
    pub name: String,
    /// The use case it serves.
    pub use_case: String,
    /// Minimum (caller, peer) levels per depth index; `None` where the
    /// depth is not permitted under this rule.
    pub min_levels: Vec<Option<(TrustLevel, TrustLevel)>>,
}

/// How `sector` counts the levels granted by `counts`.
#[derive(Debug, Clone)]
pub struct Recognition {
    /// Level n of the counted sector counts as `map[n-1]`.
    pub map: [TrustLevel; 5],
    /// Why, for auditors.
    pub rationale: String,
}

/// Cooperation rules and recognition tables, validated.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    /// Version of `cooperation.toml`.
    pub cooperation_version: String,
    /// Version of `recognition.toml`.
    pub recognition_version: String,
    /// Depth names, lowest (`none`) first.
    pub depths: Vec<String>,
    operations: HashMap<String, usize>,
    /// (caller sector or "*", peer sector or "*") -> rule.
    rules: PairMap<CooperationRule>,
    /// (caller, peer) -> operation -> rule restricted to that operation.
    op_rules: PairMap<HashMap<String, CooperationRule>>,
    /// (counting sector, counted sector) -> table.
    recognition: PairMap<Recognition>,
    /// The texts this was parsed from (cooperation, recognition), so a
    /// signed snapshot can carry exactly the rules the engine decides by.
    sources: (String, String),
    /// The sectors the texts were validated against.
    sectors: Vec<SectorName>,
    /// Sectors under other roots `recognition.toml` declares (`foreign`).
    foreign: Vec<SectorName>,
    /// [`TrustPolicy::version`], written once (every decision carries it).
    version: String,
}

/// The input of one decision: both sides' live levels (None when the side
/// is not in good standing) and sectors.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    /// The caller's sector.
    pub caller_sector: &'a SectorName,
    /// The caller's live level, None if it may not cooperate at all.
    pub caller_level: Option<TrustLevel>,
    /// The peer's sector.
    pub peer_sector: &'a SectorName,
    /// The peer's live level, None if it may not cooperate at all.
    pub peer_level: Option<TrustLevel>,
    /// The operation asked for.
    pub operation: &'a str,
}

/// One side of a decision as the trust database knows it: its sector,
/// live level and status, and notes explaining the status.
#[derive(Debug, Clone, Copy)]
pub struct Standing<'a> {
    /// The device's sector.
    pub sector: &'a SectorName,
    /// Its live level.
    pub level: TrustLevel,
    /// Its live status.
    pub status: TrustStatus,
    /// Why the status is what it is beyond the record (e.g. a revoked
    /// certificate).
    pub notes: &'a [String],
}

/// The outcome of one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionOutcome {
    /// Whether the operation may proceed.
    pub allow: bool,
    /// The deepest permitted depth.
    pub depth: CooperationDepth,
    /// The depth the operation needs (`None` when no decision reached the
    /// operation, e.g. an unknown peer).
    pub required_depth: Option<CooperationDepth>,
    /// The caller's level (its own sector's terms).
    pub caller_level: Option<TrustLevel>,
    /// The peer's level as the caller's sector counts it.
    pub peer_level: Option<TrustLevel>,
    /// The rule that decided.
    pub rule: Option<String>,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// `parts` joined into one string of exactly their length: the reasons
/// every decision carries, built without the formatting machinery (which
/// was most of a decision's policy time).
fn words(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

fn line_of(text: &str, span: std::ops::Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

fn err(file: &str, line: usize, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidPolicy {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ModelError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s)).unwrap_or(0);
        err(file, line, e.message().to_owned())
    })
}

impl TrustPolicy {
    /// Parses and validates both files against the known sectors.
    pub fn parse(
        cooperation: (&str, &str),
        recognition: (&str, &str),
        sectors: &[SectorName],
    ) -> Result<Self, ModelError> {
        let (cfile, ctext) = cooperation;
        let c: CooperationFile = parse_toml(cfile, ctext)?;
        let (rfile, rtext) = recognition;
        let r: RecognitionFile = parse_toml(rfile, rtext)?;
        for f in &r.foreign {
            if sectors.contains(f) {
                return Err(err(
                    rfile,
                    0,
                    format!("foreign sector {f} is one of this root's own sectors"),
                ));
            }
        }
        let own = sectors;
        let all: Vec<SectorName> = own.iter().chain(&r.foreign).cloned().collect();
        let sectors = all.as_slice();
        if c.version.is_empty() || c.version.len() > 64 {
            return Err(err(cfile, 0, "version must be 1-64 characters"));
        }
        if c.depths.len() < 2 || c.depths[0] != "none" {
            return Err(err(
                cfile,
                0,
                "depths must start with \"none\" and name at least one more",
            ));
        }
        let mut depth_index = HashMap::new();
        for (i, d) in c.depths.iter().enumerate() {
            CooperationDepth::parse(d).map_err(|e| err(cfile, 0, e.to_string()))?;
            if depth_index.insert(d.clone(), i).is_some() {
                return Err(err(cfile, 0, format!("depth {d:?} listed twice")));
            }
        }
        let mut operations = HashMap::new();
        for (op, depth) in &c.operations {
            let i = *depth_index.get(depth).ok_or_else(|| {
                err(
                    cfile,
                    0,
                    format!("operation {op:?} needs unknown depth {depth:?}"),
                )
            })?;
            if i == 0 {
                return Err(err(
                    cfile,
                    0,
                    format!("operation {op:?} cannot need depth none"),
                ));
            }
            operations.insert(op.clone(), i);
        }
        let known = |s: &str| s == "*" || sectors.iter().any(|k| k.as_str() == s);
        let mut rules = PairMap::default();
        let mut op_rules = PairMap::<HashMap<String, CooperationRule>>::default();
        for spanned in &c.rule {
            let line = line_of(ctext, spanned.span());
            let r = spanned.get_ref();
            for s in [&r.caller, &r.peer] {
                if !known(s) {
                    return Err(err(
                        cfile,
                        line,
                        format!("rule {:?} names unknown sector {s:?}", r.name),
                    ));
                }
            }
            let mut min_levels = vec![None; c.depths.len()];
            let mut last: Option<(usize, (TrustLevel, TrustLevel))> = None;
            let mut entries: Vec<(usize, (TrustLevel, TrustLevel))> = Vec::new();
            for (depth, [a, b]) in &r.min_levels {
                let i = *depth_index.get(depth).ok_or_else(|| {
                    err(
                        cfile,
                        line,
                        format!("rule {:?}: unknown depth {depth:?}", r.name),
                    )
                })?;
                if i == 0 {
                    return Err(err(
                        cfile,
                        line,
                        format!("rule {:?}: depth none needs no levels", r.name),
                    ));
                }
                let pair = (
                    TrustLevel::new(*a)
                        .map_err(|e| err(cfile, line, format!("rule {:?}: {e}", r.name)))?,
                    TrustLevel::new(*b)
                        .map_err(|e| err(cfile, line, format!("rule {:?}: {e}", r.name)))?,
                );
                entries.push((i, pair));
            }
            entries.sort_by_key(|(i, _)| *i);
            for (i, pair) in entries {
                if let Some((_, prev)) = last
                    && (pair.0 < prev.0 || pair.1 < prev.1)
                {
                    return Err(err(
                        cfile,
                        line,
                        format!(
                            "rule {:?}: depth {} needs lower levels than a shallower depth",
                            r.name, c.depths[i]
                        ),
                    ));
                }
                min_levels[i] = Some(pair);
                last = Some((i, pair));
            }
            let rule = CooperationRule {
                name: r.name.clone(),
                use_case: r.use_case.clone(),
                min_levels,
            };
            let mut keys = vec![(r.caller.clone(), r.peer.clone())];
            if r.symmetric && r.caller != r.peer {
                keys.push((r.peer.clone(), r.caller.clone()));
            }
            for op in &r.operations {
                if !operations.contains_key(op) {
                    return Err(err(
                        cfile,
                        line,
                        format!("rule {:?} names unknown operation {op:?}", r.name),
                    ));
                }
            }
            for key in keys {
                let mut rule = rule.clone();
                if key.0 != r.caller {
                    // The swapped direction swaps which side needs which level.
                    rule.min_levels = rule
                        .min_levels
                        .iter()
                        .map(|m| m.map(|(a, b)| (b, a)))
                        .collect();
                }
                if r.operations.is_empty() {
                    if rules.contains(&key.0, &key.1) {
                        return Err(err(
                            cfile,
                            line,
                            format!("a rule for {} -> {} is already defined", key.0, key.1),
                        ));
                    }
                    rules.insert(&key.0, &key.1, rule);
                } else {
                    for op in &r.operations {
                        let by_op = op_rules.entry(&key.0, &key.1);
                        if by_op.insert(op.clone(), rule.clone()).is_some() {
                            return Err(err(
                                cfile,
                                line,
                                format!(
                                    "a rule for {} -> {} and {op} is already defined",
                                    key.0, key.1
                                ),
                            ));
                        }
                    }
                }
            }
        }

        if r.version.is_empty() || r.version.len() > 64 {
            return Err(err(rfile, 0, "version must be 1-64 characters"));
        }
        let mut recog = PairMap::default();
        for spanned in &r.recognition {
            let line = line_of(rtext, spanned.span());
            let e = spanned.get_ref();
            for s in [&e.sector, &e.counts] {
                if !sectors.contains(s) {
                    return Err(err(rfile, line, format!("unknown sector {s}")));
                }
            }
            if e.sector == e.counts {
                return Err(err(
                    rfile,
                    line,
                    "a sector always counts its own levels as they are",
                ));
            }
            if e.map.len() != 5 {
                return Err(err(rfile, line, "map must give 5 levels (for levels 1..5)"));
            }
            let mut map = [TrustLevel::MIN; 5];
            for (i, v) in e.map.iter().enumerate() {
                map[i] = TrustLevel::new(*v).map_err(|x| err(rfile, line, x.to_string()))?;
                if i > 0 && map[i] < map[i - 1] {
                    return Err(err(
                        rfile,
                        line,
                        "map must not decrease: a higher level never counts for less",
                    ));
                }
            }
            if recog
                .insert(
                    e.sector.as_str(),
                    e.counts.as_str(),
                    Recognition {
                        map,
                        rationale: e.rationale.clone(),
                    },
                )
                .is_some()
            {
                return Err(err(
                    rfile,
                    line,
                    format!("{} already has a table for {}", e.sector, e.counts),
                ));
            }
        }
        let version = format!("cooperation@{}+recognition@{}", c.version, r.version);
        Ok(Self {
            version,
            cooperation_version: c.version,
            recognition_version: r.version,
            depths: c.depths,
            operations,
            rules,
            op_rules,
            recognition: recog,
            sources: (ctext.to_owned(), rtext.to_owned()),
            sectors: own.to_vec(),
            foreign: r.foreign,
        })
    }

    /// The cooperation and recognition texts this policy was parsed from.
    pub fn sources(&self) -> (&str, &str) {
        (&self.sources.0, &self.sources.1)
    }

    /// The sector names the policy was validated against.
    pub fn sectors(&self) -> &[SectorName] {
        &self.sectors
    }

    /// Sectors under other roots that `recognition.toml` declares
    /// (`foreign = [...]`): a trust list may name only these.
    pub fn foreign_sectors(&self) -> &[SectorName] {
        &self.foreign
    }

    /// `cooperation@<v>+recognition@<v>`, recorded with decisions.
    pub fn version(&self) -> String {
        self.version.clone()
    }

    /// The depth at index `index` of the ladder (`none` past its end,
    /// which an index from this policy never is).
    pub fn depth(&self, index: usize) -> CooperationDepth {
        self.depths
            .get(index)
            .map_or_else(CooperationDepth::none, |name| {
                CooperationDepth::validated(name.clone())
            })
    }

    /// Whether `operation` is known.
    pub fn knows_operation(&self, operation: &str) -> bool {
        self.operations.contains_key(operation)
    }

    /// The index in `depths` of the depth `operation` needs; None if the
    /// operation is unknown.
    pub fn operation_depth(&self, operation: &str) -> Option<usize> {
        self.operations.get(operation).copied()
    }

    /// How `counting` counts a `counted` level; None without a table.
    pub fn recognise(
        &self,
        counting: &SectorName,
        counted: &SectorName,
        level: TrustLevel,
    ) -> Option<TrustLevel> {
        if counting == counted {
            return Some(level);
        }
        self.recognition
            .get(counting.as_str(), counted.as_str())
            .map(|r| r.map[(level.get() - 1) as usize])
    }

    /// The rule for a pair and operation: operation-specific rules first
    /// (exact pair, then wildcards), then general rules likewise.
    fn rule(
        &self,
        caller: &SectorName,
        peer: &SectorName,
        operation: &str,
    ) -> Option<&CooperationRule> {
        let (c, p) = (caller.as_str(), peer.as_str());
        let pairs = [(c, p), (c, "*"), ("*", p), ("*", "*")];
        pairs
            .iter()
            .find_map(|(a, b)| self.op_rules.get(a, b)?.get(operation))
            .or_else(|| pairs.iter().find_map(|(a, b)| self.rules.get(a, b)))
    }

    /// Decides between two devices in their live standing. A side that is
    /// not active may not cooperate at all (it counts as having no level);
    /// the reasons say so first, then give the peer's notes, then the
    /// rule's reasons. The online `Decide` and the offline decision from a
    /// signed snapshot both decide here, so they cannot drift apart.
    pub fn decide_standing(
        &self,
        caller: Standing<'_>,
        peer: Standing<'_>,
        operation: &str,
    ) -> Result<DecisionOutcome, ModelError> {
        let standing = |s: &Standing<'_>| (s.status == TrustStatus::Active).then_some(s.level);
        let mut outcome = self.decide(DecisionInput {
            caller_sector: caller.sector,
            caller_level: standing(&caller),
            peer_sector: peer.sector,
            peer_level: standing(&peer),
            operation,
        })?;
        let inactive = usize::from(caller.status != TrustStatus::Active)
            + usize::from(peer.status != TrustStatus::Active);
        if inactive + peer.notes.len() == 0 {
            // Nothing goes before the rule's reasons: they are the list.
            return Ok(outcome);
        }
        let mut reasons = Vec::with_capacity(outcome.reasons.len() + inactive + peer.notes.len());
        if caller.status != TrustStatus::Active {
            reasons.push(format!("caller is {}", caller.status.as_str()));
        }
        if peer.status != TrustStatus::Active {
            reasons.push(format!("peer is {}", peer.status.as_str()));
        }
        // The caller's own notes are not reported: it knows its standing.
        reasons.extend(peer.notes.iter().cloned());
        reasons.append(&mut outcome.reasons);
        outcome.reasons = reasons;
        Ok(outcome)
    }

    /// Decides one query. An unknown operation is an error (a bad request),
    /// everything else is an allow or a deny with reasons.
    pub fn decide(&self, q: DecisionInput<'_>) -> Result<DecisionOutcome, ModelError> {
        let required = *self
            .operations
            .get(q.operation)
            .ok_or_else(|| ModelError::UnknownOperation(crate::sector::truncate(q.operation)))?;
        // One about each side, the rule's and the operation's: four at most.
        let mut reasons = Vec::with_capacity(4);
        let peer_level = match q.peer_level {
            None => {
                reasons.push("peer is not in good standing".to_owned());
                None
            }
            Some(l) => {
                let counted = self.recognise(q.caller_sector, q.peer_sector, l);
                match counted {
                    None => reasons.push(format!(
                        "no cross-recognition rule: {} does not count {} levels",
                        q.caller_sector, q.peer_sector
                    )),
                    Some(c) if q.caller_sector != q.peer_sector => reasons.push(words(&[
                        q.peer_sector.as_str(),
                        " ",
                        l.label(),
                        " counts as ",
                        c.label(),
                        " for ",
                        q.caller_sector.as_str(),
                    ])),
                    Some(_) => {}
                }
                counted
            }
        };
        if q.caller_level.is_none() {
            reasons.push("caller is not in good standing".to_owned());
        }
        let rule = self.rule(q.caller_sector, q.peer_sector, q.operation);
        let mut depth = 0;
        match (rule, q.caller_level, peer_level) {
            (None, _, _) => reasons.push(format!(
                "no cooperation rule for {} -> {}",
                q.caller_sector, q.peer_sector
            )),
            (Some(r), Some(cl), Some(pl)) => {
                for (i, m) in r.min_levels.iter().enumerate() {
                    if let Some((need_c, need_p)) = m
                        && cl >= *need_c
                        && pl >= *need_p
                    {
                        depth = i;
                    }
                }
                reasons.push(words(&[
                    "rule ",
                    &r.name,
                    " permits up to ",
                    &self.depths[depth],
                    " for caller ",
                    cl.label(),
                    " and peer ",
                    pl.label(),
                ]));
            }
            (Some(_), _, _) => {}
        }
        let allow = depth >= required;
        reasons.push(words(&[
            q.operation,
            " needs ",
            &self.depths[required],
            if allow { ": allowed" } else { ": denied" },
        ]));
        Ok(DecisionOutcome {
            allow,
            depth: self.depth(depth),
            required_depth: Some(self.depth(required)),
            caller_level: q.caller_level,
            peer_level,
            rule: rule.map(|r| r.name.clone()),
            reasons,
        })
    }
}

#[cfg(test)]
mod tests;
