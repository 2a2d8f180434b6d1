//! Tests of the cooperation rules, recognition tables and decisions.

use super::*;

const COOP: &str = r#"
version = "c1"
depths = ["none", "observe", "exchange", "control"]
[operations]
read-telemetry = "observe"
remote-control = "control"
[[rule]]
name = "peak-cut"
caller = "hems"
peer = "automotive"
symmetric = true
min_levels = { observe = [2, 2], exchange = [3, 3], control = [4, 3] }
"#;
const RECOG: &str = r#"
version = "r1"
[[recognition]]
sector = "hems"
counts = "automotive"
map = [1, 2, 3, 4, 5]
[[recognition]]
sector = "automotive"
counts = "hems"
map = [1, 2, 3, 4, 4]
rationale = "HEMS schemes are younger"
"#;

fn sectors() -> Vec<SectorName> {
    ["automotive", "hems", "healthcare"]
        .iter()
        .map(|s| SectorName::new(s).unwrap())
        .collect()
}

fn policy() -> TrustPolicy {
    TrustPolicy::parse(("c.toml", COOP), ("r.toml", RECOG), &sectors()).unwrap()
}

fn lv(n: i64) -> Option<TrustLevel> {
    Some(TrustLevel::new(n).unwrap())
}

#[test]
fn decides_with_recognition_and_symmetry() {
    let p = policy();
    let (hems, auto, health) = (
        SectorName::new("hems").unwrap(),
        SectorName::new("automotive").unwrap(),
        SectorName::new("healthcare").unwrap(),
    );
    let d = p
        .decide(DecisionInput {
            caller_sector: &hems,
            caller_level: lv(4),
            peer_sector: &auto,
            peer_level: lv(3),
            operation: "remote-control",
        })
        .unwrap();
    assert!(d.allow, "{d:?}");
    assert_eq!(d.depth, "control");
    // The swapped direction swaps the minimums: automotive caller needs 3, hems peer 4.
    let d = p
        .decide(DecisionInput {
            caller_sector: &auto,
            caller_level: lv(3),
            peer_sector: &hems,
            peer_level: lv(5),
            operation: "remote-control",
        })
        .unwrap();
    // HEMS Lv.5 counts as Lv.4 for automotive, which meets 4.
    assert_eq!(d.peer_level, lv(4));
    assert!(d.allow, "{d:?}");
    assert!(
        d.reasons.iter().any(|r| r.contains("counts as Lv.4")),
        "{:?}",
        d.reasons
    );
    // The reasons' words exactly (they are the wire's text).
    assert_eq!(
        d.reasons,
        [
            "hems Lv.5 counts as Lv.4 for automotive",
            "rule peak-cut permits up to control for caller Lv.3 and peer Lv.4",
            "remote-control needs control: allowed",
        ]
    );
    let d = p
        .decide(DecisionInput {
            caller_sector: &hems,
            caller_level: lv(2),
            peer_sector: &auto,
            peer_level: lv(5),
            operation: "remote-control",
        })
        .unwrap();
    assert_eq!(
        d.reasons,
        [
            "automotive Lv.5 counts as Lv.5 for hems",
            "rule peak-cut permits up to observe for caller Lv.2 and peer Lv.5",
            "remote-control needs control: denied",
        ]
    );
    // No recognition table: nothing beyond none, with the reason.
    let d = p
        .decide(DecisionInput {
            caller_sector: &auto,
            caller_level: lv(5),
            peer_sector: &health,
            peer_level: lv(5),
            operation: "read-telemetry",
        })
        .unwrap();
    assert!(!d.allow);
    assert_eq!(d.depth, "none");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("no cross-recognition rule")),
        "{:?}",
        d.reasons
    );
    // A suspended peer gets nothing.
    let d = p
        .decide(DecisionInput {
            caller_sector: &hems,
            caller_level: lv(5),
            peer_sector: &auto,
            peer_level: None,
            operation: "read-telemetry",
        })
        .unwrap();
    assert!(!d.allow);
    assert!(
        p.decide(DecisionInput {
            caller_sector: &hems,
            caller_level: lv(5),
            peer_sector: &auto,
            peer_level: lv(5),
            operation: "launch"
        })
        .is_err()
    );
}

#[test]
fn operation_rules_take_precedence_over_pair_rules() {
    let coop = format!("{COOP}\n[operations2]\n")
        .replace("[operations2]\n", "")
        .replace(
            "remote-control = \"control\"",
            "remote-control = \"control\"\nevacuation-notice = \"observe\"",
        )
        + "\n[[rule]]\nname = \"evac\"\ncaller = \"*\"\npeer = \"*\"\noperations = [\"evacuation-notice\"]\nmin_levels = { observe = [1, 3] }\n";
    let p = TrustPolicy::parse(("c.toml", &coop), ("r.toml", RECOG), &sectors()).unwrap();
    let (hems, auto) = (
        SectorName::new("hems").unwrap(),
        SectorName::new("automotive").unwrap(),
    );
    // The pair rule would allow observe at Lv.2; the evacuation rule needs the sender at Lv.3.
    let d = p
        .decide(DecisionInput {
            caller_sector: &hems,
            caller_level: lv(5),
            peer_sector: &auto,
            peer_level: lv(2),
            operation: "evacuation-notice",
        })
        .unwrap();
    assert!(!d.allow, "{d:?}");
    assert_eq!(d.rule.as_deref(), Some("evac"));
    let d = p
        .decide(DecisionInput {
            caller_sector: &hems,
            caller_level: lv(5),
            peer_sector: &auto,
            peer_level: lv(2),
            operation: "read-telemetry",
        })
        .unwrap();
    assert!(d.allow);
    assert_eq!(d.rule.as_deref(), Some("peak-cut"));
}

#[test]
fn rejects_bad_policies_with_lines() {
    let s = sectors();
    let bad_depth = COOP.replace("control = [4, 3]", "teleport = [4, 3]");
    let e = TrustPolicy::parse(("c.toml", &bad_depth), ("r.toml", RECOG), &s)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("c.toml:") && e.contains("unknown depth"),
        "{e}"
    );
    let non_monotone = COOP.replace("control = [4, 3]", "control = [1, 1]");
    assert!(TrustPolicy::parse(("c.toml", &non_monotone), ("r.toml", RECOG), &s).is_err());
    let decreasing = RECOG.replace("[1, 2, 3, 4, 4]", "[1, 2, 3, 4, 3]");
    let e = TrustPolicy::parse(("c.toml", COOP), ("r.toml", &decreasing), &s)
        .unwrap_err()
        .to_string();
    assert!(e.contains("r.toml:") && e.contains("decrease"), "{e}");
    let unknown = RECOG.replace("counts = \"hems\"", "counts = \"aviation\"");
    assert!(TrustPolicy::parse(("c.toml", COOP), ("r.toml", &unknown), &s).is_err());
    let dup = format!(
        "{COOP}\n[[rule]]\nname = \"x\"\ncaller = \"automotive\"\npeer = \"hems\"\nmin_levels = {{ observe = [1, 1] }}\n"
    );
    let e = TrustPolicy::parse(("c.toml", &dup), ("r.toml", RECOG), &s)
        .unwrap_err()
        .to_string();
    assert!(e.contains("already defined"), "{e}");
}
