//! The evaluation: each member's effective level, with the path that set
//! its cap, and the system's combined level.
//!
//! Rationale (also in `docs/policies.md`): a device is no stronger than the
//! weakest device that can act on it. A link `from → to` lets `from` invoke
//! an operation on `to`; a compromised `from` then reaches `to`, and
//! through `to`'s own links whatever `to` may act on. How much of the
//! weakness passes depends on how deep the operations are (reading
//! telemetry lends little, remote control lends everything) and how far
//! away the weak device is (each hop is one more device an attacker must
//! turn). So a path from a source device `S` to a member `T` caps `T` at
//!
//! ```text
//! level of S, counted hop by hop in each next device's sector's terms
//!   + slack(shallowest depth on the path) + per_hop × (hops − 1)
//! ```
//!
//! and `T`'s effective level is the lowest of its own level and every cap.
//! Only the lowest counted level per (node, shallowest depth, hops) is
//! kept, in topological order: with monotonic recognition tables that is
//! exact, and it is linear in links × depths × hops rather than in paths.

use std::collections::BTreeMap;

use trustca_model::{CooperationDepth, SectorName, TrustLevel, TrustStatus};

use crate::{CombinedMethod, CompositionError, CompositionPolicy, System};

/// A member's live standing, read from its trust record when evaluating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveLevel {
    /// Live level.
    pub level: TrustLevel,
    /// Live status.
    pub status: TrustStatus,
}

/// One link on a cap path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathHop {
    /// The invoking device (URN).
    pub from: String,
    /// The device acted on (URN).
    pub to: String,
    /// The operation.
    pub operation: String,
    /// Its depth.
    pub depth: CooperationDepth,
    /// The source's level as `to`'s sector counts it, after this hop.
    pub counted: TrustLevel,
}

/// What lowered a member below its own level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    /// The cap.
    pub level: TrustLevel,
    /// The weak device it comes from (URN).
    pub source: String,
    /// The links from the source to the member, in order; empty when the
    /// member's own status set it.
    pub path: Vec<PathHop>,
    /// The shallowest depth on the path; `None` when the member's own
    /// status set the cap.
    pub depth: Option<CooperationDepth>,
    /// Why, in one sentence.
    pub reason: String,
}

/// One member's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvaluation {
    /// Identity key.
    pub key: String,
    /// URN as enrolled.
    pub urn: String,
    /// Sector.
    pub sector: SectorName,
    /// Live level.
    pub own_level: TrustLevel,
    /// Live status.
    pub status: TrustStatus,
    /// Its level in this system: never above `own_level`.
    pub effective: TrustLevel,
    /// What set `effective` below `own_level`; None when nothing did.
    pub cap: Option<Cap>,
}

/// The system's combined level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Combined {
    /// The level, in the system's sector's terms.
    pub level: TrustLevel,
    /// The member that set it (URN).
    pub set_by: String,
    /// Why, in one sentence.
    pub reason: String,
}

/// The evaluation of one system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The system's name.
    pub system: String,
    /// The system's version.
    pub system_version: u64,
    /// The composition policy's version.
    pub policy_version: String,
    /// Members by identity key.
    pub members: BTreeMap<String, MemberEvaluation>,
    /// The combined level; None for a system without members.
    pub combined: Option<Combined>,
}

/// The weakest level reaching a node for one (shallowest depth, hops).
#[derive(Debug, Clone, Copy)]
struct Label {
    level: u8,
    source: usize,
    /// Previous (node, slot) and the link index that led here.
    previous: Option<(usize, usize, usize)>,
}

/// Counted levels by (counting sector, counted sector, level − 1), computed
/// once per evaluation: recognition is asked once per pair, not per hop.
struct Counting {
    table: Vec<[u8; 5]>,
    sectors: usize,
}

impl Counting {
    fn new(sectors: &[SectorName], policy: &CompositionPolicy) -> Self {
        let mut table = Vec::with_capacity(sectors.len() * sectors.len());
        for counting in sectors {
            for counted in sectors {
                let mut row = [0u8; 5];
                for (i, slot) in row.iter_mut().enumerate() {
                    let level = TrustLevel::new(i as i64 + 1).unwrap_or(TrustLevel::MIN);
                    *slot = policy
                        .trust()
                        .recognise(counting, counted, level)
                        .unwrap_or(policy.unrecognised_counts_as)
                        .get();
                }
                table.push(row);
            }
        }
        Self {
            table,
            sectors: sectors.len(),
        }
    }

    fn count(&self, counting: usize, counted: usize, level: u8) -> u8 {
        self.table[counting * self.sectors + counted][usize::from(level.clamp(1, 5)) - 1]
    }
}

fn level(v: u8) -> TrustLevel {
    TrustLevel::new(i64::from(v.clamp(1, 5))).unwrap_or(TrustLevel::MIN)
}

/// The system as indices: members, their sectors, links out of each and
/// a topological order.
struct Graph<'a> {
    members: Vec<&'a crate::Member>,
    links: Vec<&'a crate::Link>,
    /// Per member: (target, depth index, link index).
    out: Vec<Vec<(usize, usize, usize)>>,
    order: Vec<usize>,
    member_sector: Vec<usize>,
    sectors: Vec<SectorName>,
    counting: Counting,
}

impl<'a> Graph<'a> {
    fn new(system: &'a System, policy: &CompositionPolicy) -> Result<Self, CompositionError> {
        let members: Vec<_> = system.members().values().collect();
        let index: BTreeMap<&str, usize> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (m.key.as_str(), i))
            .collect();
        let mut sectors: Vec<SectorName> = members.iter().map(|m| m.sector.clone()).collect();
        sectors.push(system.sector().clone());
        sectors.sort();
        sectors.dedup();
        let counting = Counting::new(&sectors, policy);
        let member_sector = members
            .iter()
            .map(|m| sectors.binary_search(&m.sector).unwrap_or(0))
            .collect();
        let links: Vec<_> = system.links().iter().collect();
        let mut out: Vec<Vec<(usize, usize, usize)>> = vec![Vec::new(); members.len()];
        let mut indegree = vec![0usize; members.len()];
        for (li, l) in links.iter().enumerate() {
            let (Some(&f), Some(&t)) = (index.get(l.from.as_str()), index.get(l.to.as_str()))
            else {
                return Err(CompositionError::Inconsistent {
                    system: system.name().to_owned(),
                    reason: format!("link {l} names a device that is not a member"),
                });
            };
            out[f].push((t, policy.operation_depth(&l.operation), li));
            indegree[t] += 1;
        }
        let order = topological(system, &mut indegree, &out)?;
        Ok(Self {
            members,
            links,
            out,
            order,
            member_sector,
            sectors,
            counting,
        })
    }

    fn sector_index(&self, s: &SectorName) -> usize {
        self.sectors.binary_search(s).unwrap_or(0)
    }
}

/// The weakest level reaching each (member, depth, hops) slot; slots of
/// member `v` are `v * per_node ..`, slot `d * (hops + 1) + h`, and depth
/// `depths` marks the member itself as a source.
struct Labels {
    slots: Vec<Option<Label>>,
    per_node: usize,
    hops: usize,
}

impl Labels {
    fn get(&self, member: usize, slot: usize) -> Option<Label> {
        self.slots[member * self.per_node + slot]
    }

    fn split(&self, slot: usize) -> (usize, usize) {
        (slot / (self.hops + 1), slot % (self.hops + 1))
    }
}

/// Carries every member's lent level along the links in topological
/// order, keeping the weakest per slot.
fn propagate(graph: &Graph<'_>, lends: &[u8], policy: &CompositionPolicy) -> Labels {
    let depths = policy.trust().depths.len();
    let hops = policy.max_hops;
    let per_node = (depths + 1) * (hops + 1);
    let mut labels = Labels {
        slots: vec![None; graph.members.len() * per_node],
        per_node,
        hops,
    };
    for (v, lend) in lends.iter().enumerate() {
        labels.slots[v * per_node + depths * (hops + 1)] = Some(Label {
            level: *lend,
            source: v,
            previous: None,
        });
    }
    for &v in &graph.order {
        for s in 0..per_node {
            let Some(label) = labels.get(v, s) else {
                continue;
            };
            let (d, h) = labels.split(s);
            if h >= hops {
                continue;
            }
            for &(w, e, li) in &graph.out[v] {
                let counted = graph.counting.count(
                    graph.member_sector[w],
                    graph.member_sector[v],
                    label.level,
                );
                let target = w * per_node + d.min(e) * (hops + 1) + h + 1;
                if labels.slots[target].is_none_or(|old| counted < old.level) {
                    labels.slots[target] = Some(Label {
                        level: counted,
                        source: label.source,
                        previous: Some((v, s, li)),
                    });
                }
            }
        }
    }
    labels
}

/// The lowest cap reaching member `t`: (cap, hops, slot); fewer hops win a
/// tie, then the lower slot, so the answer is deterministic.
fn lowest_cap(labels: &Labels, t: usize, policy: &CompositionPolicy) -> Option<(u8, usize, usize)> {
    let mut best: Option<(u8, usize, usize)> = None;
    for s in 0..labels.per_node {
        let (d, h) = labels.split(s);
        let Some(label) = labels.get(t, s) else {
            continue;
        };
        if h == 0 {
            continue;
        }
        let cap = (u32::from(label.level)
            + u32::from(policy.slack(d))
            + u32::from(policy.per_hop) * (h as u32 - 1))
            .min(5) as u8;
        if best.is_none_or(|(c, bh, _)| cap < c || (cap == c && h < bh)) {
            best = Some((cap, h, s));
        }
    }
    best
}

/// Evaluates `system` with the members' live `levels` (by identity key)
/// under `policy`.
pub fn evaluate(
    system: &System,
    levels: &BTreeMap<String, LiveLevel>,
    policy: &CompositionPolicy,
) -> Result<Evaluation, CompositionError> {
    let graph = Graph::new(system, policy)?;
    let mut live = Vec::with_capacity(graph.members.len());
    for m in &graph.members {
        live.push(
            *levels
                .get(&m.key)
                .ok_or_else(|| CompositionError::MissingLevel(m.urn.clone()))?,
        );
    }
    // What a member lends as a source: its level, or the policy's level for
    // members not in good standing.
    let lends: Vec<u8> = live
        .iter()
        .map(|l| match l.status {
            TrustStatus::Active => l.level.get(),
            _ => l.level.min(policy.inactive_counts_as).get(),
        })
        .collect();
    let labels = propagate(&graph, &lends, policy);
    let mut result = BTreeMap::new();
    for (t, m) in graph.members.iter().enumerate() {
        let own = live[t].level;
        let mut effective = own;
        let mut cap = None;
        if live[t].status != TrustStatus::Active && policy.inactive_counts_as < own {
            effective = policy.inactive_counts_as;
            cap = Some(Cap {
                level: effective,
                source: m.urn.clone(),
                path: Vec::new(),
                depth: None,
                reason: format!(
                    "{} is {}: it counts as {} in its systems",
                    m.urn,
                    live[t].status.as_str(),
                    policy.inactive_counts_as
                ),
            });
        }
        if let Some((c, _, s)) = lowest_cap(&labels, t, policy)
            && c < effective.get()
        {
            effective = level(c);
            let path = cap_path(&graph, &labels, t, s, policy);
            let source = labels.get(t, s).map(|l| l.source).unwrap_or(t);
            let (depth, _) = labels.split(s);
            cap = Some(explain(
                effective, source, path, &graph, &live, depth, policy,
            ));
        }
        result.insert(
            m.key.clone(),
            MemberEvaluation {
                key: m.key.clone(),
                urn: m.urn.clone(),
                sector: m.sector.clone(),
                own_level: own,
                status: live[t].status,
                effective,
                cap,
            },
        );
    }
    let combined = combine(system, &result, &graph, policy);
    Ok(Evaluation {
        system: system.name().to_owned(),
        system_version: system.version(),
        policy_version: policy.version.clone(),
        members: result,
        combined,
    })
}

/// Members in an order where every link goes forward; smallest index first
/// among the ready ones, so the order (and every tie) is deterministic.
fn topological(
    system: &System,
    indegree: &mut [usize],
    out: &[Vec<(usize, usize, usize)>],
) -> Result<Vec<usize>, CompositionError> {
    let mut ready: std::collections::BTreeSet<usize> =
        (0..indegree.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(v) = ready.pop_first() {
        order.push(v);
        for &(w, _, _) in &out[v] {
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.insert(w);
            }
        }
    }
    if order.len() != indegree.len() {
        return Err(CompositionError::Inconsistent {
            system: system.name().to_owned(),
            reason: "its links form a cycle".into(),
        });
    }
    Ok(order)
}

/// Follows the labels back from member `t`'s slot `s` to the source.
fn cap_path(
    graph: &Graph<'_>,
    labels: &Labels,
    t: usize,
    s: usize,
    policy: &CompositionPolicy,
) -> Vec<PathHop> {
    let mut path = Vec::new();
    let mut at = (t, s);
    while let Some(label) = labels.get(at.0, at.1)
        && let Some((v, vs, li)) = label.previous
    {
        let l = graph.links[li];
        let depth = policy.operation_depth(&l.operation);
        path.push(PathHop {
            from: graph.members[v].urn.clone(),
            to: graph.members[at.0].urn.clone(),
            operation: l.operation.clone(),
            depth: policy.trust().depth(depth),
            counted: level(label.level),
        });
        at = (v, vs);
    }
    path.reverse();
    path
}

fn explain(
    effective: TrustLevel,
    source: usize,
    path: Vec<PathHop>,
    graph: &Graph<'_>,
    live: &[LiveLevel],
    depth: usize,
    policy: &CompositionPolicy,
) -> Cap {
    let depth_name = policy.trust().depth(depth);
    let route = path
        .iter()
        .map(|h| format!("{} -{}-> ", h.from, h.operation))
        .collect::<String>();
    let end = path.last().map(|h| h.to.clone()).unwrap_or_default();
    let m = graph.members[source];
    let reason = format!(
        "capped at {effective} by {} ({} {}, {}) over {} link(s) [{route}{end}]: {depth_name} links let a device stand {} level(s) above what reaches it, plus {} per further hop",
        m.urn,
        m.sector,
        live[source].level,
        live[source].status.as_str(),
        path.len(),
        policy.slack(depth),
        policy.per_hop,
    );
    Cap {
        level: effective,
        source: m.urn.clone(),
        path,
        depth: Some(depth_name),
        reason,
    }
}

fn combine(
    system: &System,
    members: &BTreeMap<String, MemberEvaluation>,
    graph: &Graph<'_>,
    policy: &CompositionPolicy,
) -> Option<Combined> {
    let home = graph.sector_index(system.sector());
    let mut best: Option<(u8, &MemberEvaluation)> = None;
    for m in members.values() {
        let own = match policy.combined {
            CombinedMethod::WeakestOwn => m.own_level,
            _ => m.effective,
        };
        let counted = graph
            .counting
            .count(home, graph.sector_index(&m.sector), own.get());
        if best.is_none_or(|(b, _)| counted < b) {
            best = Some((counted, m));
        }
    }
    best.map(|(l, m)| Combined {
        level: level(l),
        set_by: m.urn.clone(),
        reason: format!(
            "{} ({}, {} {} effective {}) is the weakest member in {} terms ({})",
            m.urn,
            m.status.as_str(),
            m.sector,
            m.own_level,
            m.effective,
            system.sector(),
            policy.combined.as_str()
        ),
    })
}
