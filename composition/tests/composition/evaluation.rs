//! The scheme on small systems whose answers are known by hand, the bad
//! inputs a system refuses, and the policy checks.

use crate::common;

use common::*;
use trustca_composition::{CompositionError, CompositionPolicy, Link, System, evaluate};
use trustca_model::TrustStatus;

fn link(from: &str, to: &str, op: &str) -> Link {
    Link {
        from: key(from),
        to: key(to),
        operation: op.to_owned(),
    }
}

#[test]
fn a_weak_appliance_that_commands_the_hems_caps_it_and_says_why() {
    let p = policy();
    let hems = urn("hems", "HB-1", "1");
    let plug = urn("hems", "Plug", "2");
    let mut s = system("house", "hems", &[&hems, &plug]);
    s.add_link(link(&plug, &hems, "remote-control"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    let e = evaluate(&s, &levels(&[(&hems, active(4)), (&plug, active(2))]), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    let h = &e.members[&key(&hems)];
    assert_eq!(h.own_level, level(4));
    assert_eq!(h.effective, level(2));
    let cap = h.cap.as_ref().unwrap_or_else(|| panic!("no cap"));
    assert_eq!(cap.source, plug);
    assert_eq!(cap.path.len(), 1);
    assert_eq!(cap.path[0].operation, "remote-control");
    assert_eq!(cap.depth.as_ref().map(|d| d.as_str()), Some("control"));
    assert!(cap.reason.contains("capped at Lv.2"), "{}", cap.reason);
    assert!(cap.reason.contains(&plug), "{}", cap.reason);
    // The plug itself is not acted on: its own level stands.
    assert_eq!(e.members[&key(&plug)].effective, level(2));
    assert!(e.members[&key(&plug)].cap.is_none());
    let combined = e.combined.unwrap_or_else(|| panic!("no combined level"));
    assert_eq!(combined.level, level(2));
}

#[test]
fn reading_lends_less_than_control_and_hops_attenuate() {
    let p = policy();
    let a = urn("hems", "A", "1");
    let b = urn("hems", "B", "1");
    let c = urn("hems", "C", "1");
    let d = urn("hems", "D", "1");
    let mut s = system("chain", "hems", &[&a, &b, &c, &d]);
    // a (Lv.1) controls b, b controls c, c is read by d (observe: d reads c).
    s.add_link(link(&a, &b, "remote-control"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    s.add_link(link(&b, &c, "remote-control"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    s.add_link(link(&c, &d, "read-telemetry"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    let lv = levels(&[
        (&a, active(1)),
        (&b, active(5)),
        (&c, active(5)),
        (&d, active(5)),
    ]);
    let e = evaluate(&s, &lv, &p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.members[&key(&b)].effective, level(1), "1 hop of control");
    assert_eq!(e.members[&key(&c)].effective, level(2), "2 hops: +1");
    // 3 hops, shallowest observe: 1 + 3 + 2 = 6 -> no cap.
    assert_eq!(e.members[&key(&d)].effective, level(5));
    let path = &e.members[&key(&c)]
        .cap
        .as_ref()
        .unwrap_or_else(|| panic!("no cap"))
        .path;
    assert_eq!(
        path.iter().map(|h| h.from.as_str()).collect::<Vec<_>>(),
        [a.as_str(), b.as_str()]
    );
}

#[test]
fn recognition_discounts_along_the_path() {
    let p = policy();
    // hems Lv.3 controlling a healthcare device: healthcare counts hems 3
    // as 2.
    let hub = urn("hems", "Hub", "1");
    let monitor = urn("healthcare", "BP", "1");
    let mut s = system("care", "healthcare", &[&hub, &monitor]);
    s.add_link(link(&hub, &monitor, "remote-control"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    let e = evaluate(&s, &levels(&[(&hub, active(3)), (&monitor, active(5))]), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.members[&key(&monitor)].effective, level(2));
    // Combined in healthcare terms: the hub's 3 counts as 2 too.
    assert_eq!(
        e.combined.map(|c| c.level),
        Some(level(2)),
        "combined level in healthcare terms"
    );
}

#[test]
fn an_inactive_member_counts_as_the_policy_says() {
    let p = policy();
    let hems = urn("hems", "HB-1", "1");
    let plug = urn("hems", "Plug", "2");
    let mut s = system("house", "hems", &[&hems, &plug]);
    s.add_link(link(&plug, &hems, "exchange-data"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut lv = levels(&[(&hems, active(4)), (&plug, active(4))]);
    let e = evaluate(&s, &lv, &p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.members[&key(&hems)].effective, level(4));
    lv.insert(
        key(&plug),
        trustca_composition::LiveLevel {
            level: level(4),
            status: TrustStatus::Suspended,
        },
    );
    let e = evaluate(&s, &lv, &p).unwrap_or_else(|e| panic!("{e}"));
    // suspended counts as Lv.1; exchange slack 1.
    assert_eq!(e.members[&key(&hems)].effective, level(2));
    assert_eq!(e.members[&key(&plug)].effective, level(1));
}

#[test]
fn bad_links_are_refused_and_leave_the_system_unchanged() {
    let p = policy();
    let a = urn("hems", "A", "1");
    let b = urn("hems", "B", "1");
    let c = urn("hems", "C", "1");
    let mut s = system("s", "hems", &[&a, &b, &c]);
    s.add_link(link(&a, &b, "remote-control"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    s.add_link(link(&b, &c, "exchange-data"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    let before = s.clone();
    match s.add_link(link(&c, &a, "read-telemetry"), &p) {
        Err(CompositionError::Cycle(path)) => {
            assert_eq!(path, [key(&c), key(&a), key(&b), key(&c)]);
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
    assert!(matches!(
        s.add_link(link(&a, &a, "remote-control"), &p),
        Err(CompositionError::SelfLink(_))
    ));
    assert!(matches!(
        s.add_link(link(&a, &b, "remote-control"), &p),
        Err(CompositionError::DuplicateLink { .. })
    ));
    assert!(matches!(
        s.add_link(link(&a, &c, "teleport"), &p),
        Err(CompositionError::UnknownOperation(_))
    ));
    let outsider = urn("hems", "X", "9");
    assert!(matches!(
        s.add_link(link(&a, &outsider, "remote-control"), &p),
        Err(CompositionError::NotAMember { .. })
    ));
    assert!(matches!(
        s.remove_link(&link(&c, &a, "remote-control")),
        Err(CompositionError::NoSuchLink { .. })
    ));
    assert_eq!(s, before);
    assert!(matches!(
        System::new("no spaces", sector("hems")),
        Err(CompositionError::InvalidName(_))
    ));
}

#[test]
fn size_limits_hold() {
    let text = include_str!("../../../policies/composition.toml")
        .replace("max_devices = 1000", "max_devices = 2")
        .replace("max_links = 5000", "max_links = 1");
    let p = CompositionPolicy::parse("composition.toml", &text, trust_policy())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut s = System::new("s", sector("hems")).unwrap_or_else(|e| panic!("{e}"));
    let (a, b, c) = (
        urn("hems", "A", "1"),
        urn("hems", "B", "1"),
        urn("hems", "C", "1"),
    );
    assert!(s.add_member(&a, &p).unwrap_or(false));
    assert!(s.add_member(&b, &p).unwrap_or(false));
    assert!(matches!(
        s.add_member(&c, &p),
        Err(CompositionError::TooLarge {
            what: "devices",
            limit: 2
        })
    ));
    s.add_link(link(&a, &b, "remote-control"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        s.add_link(link(&a, &b, "read-telemetry"), &p),
        Err(CompositionError::TooLarge {
            what: "links",
            limit: 1
        })
    ));
}

#[test]
fn stored_form_round_trips_and_a_tampered_cycle_is_refused() {
    let p = policy();
    let (a, b) = (urn("hems", "A", "1"), urn("hems", "B", "1"));
    let mut s = system("s", "hems", &[&a, &b]);
    s.add_link(link(&a, &b, "remote-control"), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    let record = s.to_record();
    assert_eq!(System::from_record(&record, &p).ok(), Some(s));
    let mut bad = record;
    bad.links.push(link(&b, &a, "remote-control"));
    assert!(matches!(
        System::from_record(&bad, &p),
        Err(CompositionError::Inconsistent { .. })
    ));
}

#[test]
fn policy_checks_refuse_what_would_break_the_scheme() {
    let base = include_str!("../../../policies/composition.toml");
    let cases = [
        (
            "observe = 3, exchange = 1",
            "observe = 0, exchange = 1",
            "larger than",
        ),
        ("observe = 3, ", "", "no value for depth"),
        ("control = 0", "control = 0, sideways = 1", "not a depth"),
        ("max_hops = 4", "max_hops = 0", "max_hops"),
        (
            "method = \"weakest-effective\"",
            "method = \"average\"",
            "combined.method",
        ),
        (
            "inactive_counts_as = 1",
            "inactive_counts_as = 0",
            "inactive_counts_as",
        ),
    ];
    for (from, to, expect) in cases {
        let text = base.replacen(from, to, 1);
        assert_ne!(text, base, "case {from:?} did not apply");
        match CompositionPolicy::parse("composition.toml", &text, trust_policy()) {
            Err(e) => assert!(e.to_string().contains(expect), "{e} lacks {expect:?}"),
            Ok(_) => panic!("{to:?} accepted"),
        }
    }
}

#[test]
fn upstream_part_gives_the_same_level_for_its_member() {
    let p = policy();
    let names: Vec<String> = (0..6).map(|i| urn("hems", "M", &i.to_string())).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut s = system("s", "hems", &refs);
    for (f, t, op) in [
        (0, 1, "remote-control"),
        (1, 2, "exchange-data"),
        (3, 2, "read-telemetry"),
        (2, 4, "remote-control"),
        (5, 4, "read-telemetry"),
    ] {
        s.add_link(link(&names[f], &names[t], op), &p)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let lv = levels(&[
        (&names[0], active(1)),
        (&names[1], active(3)),
        (&names[2], active(5)),
        (&names[3], active(2)),
        (&names[4], active(5)),
        (&names[5], active(1)),
    ]);
    let whole = evaluate(&s, &lv, &p).unwrap_or_else(|e| panic!("{e}"));
    for n in &names {
        let part = s.upstream_of(&key(n), p.max_hops);
        let e = evaluate(&part, &lv, &p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.members[&key(n)], whole.members[&key(n)], "{n}");
    }
}
