//! Properties of the scheme on random systems: adding a link never raises
//! an effective level; removing the only weak link restores every level;
//! an effective level is never above the member's own; the evaluation is
//! deterministic, whatever order the links were added in.

use crate::common;

use std::collections::BTreeMap;

use common::*;
use proptest::prelude::*;
use trustca_composition::{Link, LiveLevel, System, evaluate};
use trustca_model::TrustStatus;

const SECTORS: [&str; 3] = ["automotive", "hems", "healthcare"];
const OPERATIONS: [&str; 5] = [
    "read-telemetry",
    "exchange-data",
    "remote-control",
    "demand-response",
    "safety-critical",
];

/// A random system: members with sectors and live standing, and candidate
/// links (i, j, op) with i < j, so any subset is acyclic.
#[derive(Debug, Clone)]
struct Shape {
    members: Vec<(usize, u8, bool)>,
    links: Vec<(usize, usize, usize)>,
}

fn shape() -> impl Strategy<Value = Shape> {
    (2usize..14).prop_flat_map(|n| {
        (
            prop::collection::vec((0usize..3, 1u8..=5, prop::bool::weighted(0.9)), n),
            prop::collection::vec((0..n, 0..n, 0usize..5), 0..30),
        )
            .prop_map(|(members, raw)| Shape {
                links: raw
                    .into_iter()
                    .filter(|(a, b, _)| a != b)
                    .map(|(a, b, op)| (a.min(b), a.max(b), op))
                    .collect(),
                members,
            })
    })
}

fn member_urn(i: usize, sector: usize) -> String {
    urn(SECTORS[sector], "M", &i.to_string())
}

fn build(shape: &Shape, links: &[(usize, usize, usize)]) -> (System, BTreeMap<String, LiveLevel>) {
    let p = policy();
    let mut s = System::new("random", sector("hems")).unwrap_or_else(|e| panic!("{e}"));
    let mut lv = BTreeMap::new();
    for (i, (sec, l, active)) in shape.members.iter().enumerate() {
        let u = member_urn(i, *sec);
        s.add_member(&u, &p).unwrap_or_else(|e| panic!("{e}"));
        lv.insert(
            key(&u),
            LiveLevel {
                level: level(*l),
                status: if *active {
                    TrustStatus::Active
                } else {
                    TrustStatus::Suspended
                },
            },
        );
    }
    for (a, b, op) in links {
        let link = link_of(shape, *a, *b, *op);
        // Duplicates in the random list are refused; that is fine here.
        let _ = s.add_link(link, &p);
    }
    (s, lv)
}

fn link_of(shape: &Shape, a: usize, b: usize, op: usize) -> Link {
    Link {
        from: key(&member_urn(a, shape.members[a].0)),
        to: key(&member_urn(b, shape.members[b].0)),
        operation: OPERATIONS[op].to_owned(),
    }
}

fn effective(s: &System, lv: &BTreeMap<String, LiveLevel>) -> BTreeMap<String, u8> {
    evaluate(s, lv, &policy())
        .unwrap_or_else(|e| panic!("{e}"))
        .members
        .into_iter()
        .map(|(k, m)| (k, m.effective.get()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn adding_a_link_never_raises_an_effective_level(
        shape in shape(),
        extra in (0usize..14, 0usize..14, 0usize..5),
    ) {
        let (s, lv) = build(&shape, &shape.links);
        let n = shape.members.len();
        let (a, b) = (extra.0 % n, extra.1 % n);
        prop_assume!(a != b);
        let before = effective(&s, &lv);
        let mut more = s.clone();
        let (a, b) = (a.min(b), a.max(b));
        if more.add_link(link_of(&shape, a, b, extra.2), &policy()).is_ok() {
            let after = effective(&more, &lv);
            for (k, l) in &after {
                prop_assert!(*l <= before[k], "{k}: {} -> {l}", before[k]);
            }
        }
    }

    #[test]
    fn effective_is_never_above_own_and_caps_explain_themselves(shape in shape()) {
        let (s, lv) = build(&shape, &shape.links);
        let e = evaluate(&s, &lv, &policy()).unwrap_or_else(|e| panic!("{e}"));
        for m in e.members.values() {
            prop_assert!(m.effective <= m.own_level);
            match &m.cap {
                None => prop_assert_eq!(m.effective, m.own_level),
                Some(cap) => {
                    prop_assert_eq!(cap.level, m.effective);
                    prop_assert!(cap.level < m.own_level);
                    // A path ends at the member and is connected.
                    if let Some(last) = cap.path.last() {
                        prop_assert_eq!(&last.to, &m.urn);
                        prop_assert_eq!(&cap.path[0].from, &cap.source);
                        for w in cap.path.windows(2) {
                            prop_assert_eq!(&w[0].to, &w[1].from);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn evaluation_is_deterministic_whatever_the_order(shape in shape()) {
        let (s, lv) = build(&shape, &shape.links);
        let mut reversed = shape.links.clone();
        reversed.reverse();
        let (r, _) = build(&shape, &reversed);
        let p = policy();
        let first = evaluate(&s, &lv, &p).unwrap_or_else(|e| panic!("{e}"));
        prop_assert_eq!(&first, &evaluate(&s, &lv, &p).unwrap_or_else(|e| panic!("{e}")));
        prop_assert_eq!(&first, &evaluate(&r, &lv, &p).unwrap_or_else(|e| panic!("{e}")));
    }

    #[test]
    fn removing_the_only_weak_link_restores_every_level(
        strong in 2usize..10,
        chain in prop::collection::vec(0usize..5, 0..12),
        weak_level in 1u8..=3,
        target in 0usize..10,
        op in 0usize..5,
    ) {
        // Strong members: hems devices at Lv.5, linked among themselves;
        // one weak hems device with a single link into them.
        let p = policy();
        let mut s = System::new("weak", sector("hems")).unwrap_or_else(|e| panic!("{e}"));
        let mut lv = BTreeMap::new();
        let mut keys = Vec::new();
        for i in 0..strong {
            let u = urn("hems", "S", &i.to_string());
            s.add_member(&u, &p).unwrap_or_else(|e| panic!("{e}"));
            lv.insert(key(&u), active(5));
            keys.push(key(&u));
        }
        for (i, o) in chain.iter().enumerate() {
            let a = i % keys.len();
            let b = (i * 7 + 1) % keys.len();
            if a < b {
                let _ = s.add_link(Link { from: keys[a].clone(), to: keys[b].clone(), operation: OPERATIONS[*o].to_owned() }, &p);
            }
        }
        let before = effective(&s, &lv);
        let weak = urn("hems", "Weak", "0");
        s.add_member(&weak, &p).unwrap_or_else(|e| panic!("{e}"));
        lv.insert(key(&weak), active(weak_level));
        let weak_link = Link {
            from: key(&weak),
            to: keys[target % keys.len()].clone(),
            operation: OPERATIONS[op].to_owned(),
        };
        s.add_link(weak_link.clone(), &p).unwrap_or_else(|e| panic!("{e}"));
        let with = effective(&s, &lv);
        for (k, l) in &before {
            prop_assert!(with[k] <= *l);
        }
        // Direct control by the weak device lowers its target to its level.
        if OPERATIONS[op] == "remote-control" {
            prop_assert_eq!(with[&weak_link.to], weak_level);
        }
        s.remove_link(&weak_link).unwrap_or_else(|e| panic!("{e}"));
        let after = effective(&s, &lv);
        for (k, l) in &before {
            prop_assert_eq!(after[k], *l, "{} not restored", k);
        }
    }
}
