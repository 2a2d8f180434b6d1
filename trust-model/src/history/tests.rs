#![allow(clippy::unwrap_used)]

use super::*;
use crate::{AnomalyKind, FleetEvent, ModelStatus, TrustStatus};
use proptest::prelude::*;

/// Every form trustca writes, with the text it has always written (the
/// store, the wire and the CLI show these bytes).
fn device_forms() -> Vec<(DeviceChange, &'static str)> {
    use DeviceChange as D;
    vec![
        (D::Enrolled { level: 4 }, "enrolled level=4"),
        (
            D::Renewed {
                reenrolled: false,
                firmware: "2.1.0".into(),
                from: 3,
                to: 5,
                decision_kept: None,
            },
            "renewed firmware=2.1.0 level 3->5",
        ),
        (
            D::Renewed {
                reenrolled: true,
                firmware: "1.0".into(),
                from: 2,
                to: 2,
                decision_kept: Some(4),
            },
            "renewed (re-enrolled after revocation with a new key) firmware=1.0 level 2->2 (certificate level 4; the level set by an operator or anomaly stands)",
        ),
        (D::LevelSet { from: 4, to: 2 }, "level 4 -> 2"),
        (D::Suspended, "suspended"),
        (D::Restored, "restored"),
        (D::Retired, "retired (disposal): every certificate revoked"),
        (
            D::BulkDowngrade {
                from: 5,
                to: 2,
                firmware: "1.0.3".into(),
            },
            "bulk downgrade level 5 -> 2 (firmware 1.0.3)",
        ),
        (
            D::AnomalyLowered {
                from: 4,
                to: 3,
                anomaly: AnomalyKind::AuthBurst,
            },
            "level 4 -> 3 (anomaly auth-burst)",
        ),
        (
            D::AnomalySuspended {
                anomaly: AnomalyKind::Silence,
            },
            "suspended (anomaly silence)",
        ),
        (
            D::AnomalyRevoked {
                anomaly: AnomalyKind::FirmwareDowngrade,
            },
            "revoked (anomaly firmware-downgrade)",
        ),
        (
            D::CertificatesRevoked { reason: 1 },
            "revoked: no valid certificate left (last revoked for key-compromise)",
        ),
        (
            D::TookOver {
                from: "hems/acme/hub/s1".into(),
                level: 4,
                status: TrustStatus::Suspended,
            },
            "took over the trust record of hems/acme/hub/s1 (level 4, suspended)",
        ),
        (
            D::ReplacedBy {
                successor: "hems/acme/hub/s2".into(),
            },
            "retired: replaced by successor hems/acme/hub/s2",
        ),
        (
            D::Copied {
                from: "hems/acme/hub/s1".into(),
                version: 2,
                change: Box::new(D::LevelSet { from: 4, to: 3 }),
            },
            "[from hems/acme/hub/s1 v2] level 4 -> 3",
        ),
        (
            D::ModelMoved {
                event: FleetEvent::Level,
                model: "hems/acme/hub firmware 1.0..2.0".into(),
                levels: Some((5, 3)),
                model_status: ModelStatus::Withdrawn,
                model_version: 3,
            },
            "model level: hems/acme/hub firmware 1.0..2.0 level 5 -> 3 (withdrawn v3)",
        ),
        (
            D::ModelMoved {
                event: FleetEvent::Suspended,
                model: "hems/acme/hub firmware 1.0".into(),
                levels: None,
                model_status: ModelStatus::Suspended,
                model_version: 2,
            },
            "model suspended: hems/acme/hub firmware 1.0 (suspended v2)",
        ),
    ]
}

fn model_forms() -> Vec<(ModelChange, &'static str)> {
    use ModelChange as M;
    vec![
        (
            M::Registered {
                level: 3,
                status: ModelStatus::Provisional,
            },
            "registered level 3 (provisional)",
        ),
        (
            M::EvaluationAdded {
                self_assessed: false,
                scheme: "iso-sae-21434".into(),
                result: "CAL3".into(),
                certificate_number: "TUV-1".into(),
            },
            "evaluation iso-sae-21434:CAL3 (TUV-1) registered",
        ),
        (
            M::EvaluationAdded {
                self_assessed: true,
                scheme: "en-18031".into(),
                result: "pass".into(),
                certificate_number: "self-7".into(),
            },
            "self-assessment en-18031:pass (self-7) registered",
        ),
        (
            M::EvaluationWithdrawn {
                scheme: "iso-sae-21434".into(),
                result: "CAL3".into(),
                certificate_number: "TUV-1".into(),
            },
            "evaluation iso-sae-21434:CAL3 (TUV-1) withdrawn",
        ),
        (M::Suspended, "suspended"),
        (M::SuspensionLifted, "suspension lifted"),
        (
            M::Reassessed {
                from: 5,
                to: 3,
                status_from: ModelStatus::Certified,
                status_to: ModelStatus::Provisional,
            },
            "re-assessed: level 5 -> 3 (certified -> provisional)",
        ),
    ]
}

/// Each form is written as its text and that text reads as the form, in
/// text and in serde alike.
#[test]
fn every_form_is_written_and_read_as_its_text() {
    for (change, text) in device_forms() {
        assert_eq!(change.to_string(), text);
        assert_eq!(DeviceChange::parse(text), change, "{text}");
        assert_eq!(
            serde_json::to_string(&change).unwrap(),
            serde_json::to_string(text).unwrap()
        );
        let json = serde_json::to_string(text).unwrap();
        assert_eq!(serde_json::from_str::<DeviceChange>(&json).unwrap(), change);
    }
    for (change, text) in model_forms() {
        assert_eq!(change.to_string(), text);
        assert_eq!(ModelChange::parse(text), change, "{text}");
        let json = serde_json::to_string(text).unwrap();
        assert_eq!(serde_json::from_str::<ModelChange>(&json).unwrap(), change);
    }
}

/// Texts in no form (what older builds wrote, near misses) read as
/// `Recorded`, are written back unchanged, and count for none of the
/// rules that read history.
#[test]
fn unknown_texts_stay_readable_as_recorded() {
    for text in [
        "",
        "suspended: hems/acme/hub firmware 1.0-2.0 (suspended v3)",
        "level -> 4",
        "level 04 -> 2",
        "enrolled level=",
        "enrolled level=300",
        "Suspended",
        "level 4 -> 3 (anomaly alien-signal)",
        "revoked: no valid certificate left (last revoked for unknown)",
        "model paused: hems/acme/hub firmware 1.0 (suspended v2)",
        "took over the trust record of x (level 4, dormant)",
    ] {
        let change = DeviceChange::parse(text);
        assert_eq!(change, DeviceChange::Recorded(text.to_owned()));
        assert_eq!(change.to_string(), text);
        assert!(!change.level_from_evidence() && !change.sets_level() && !change.by_registry());
    }
    for text in [
        "registered",
        "evaluation iso:CAL3 (x) withdrawn later",
        "re-assessed: level 5 -> 3 (certified -> dormant)",
        "self-assessment en:pass (x) withdrawn",
    ] {
        assert_eq!(
            ModelChange::parse(text),
            ModelChange::Recorded(text.to_owned())
        );
    }
    // A copied entry keeps whatever its predecessor's said.
    let copied = DeviceChange::parse("[from a v1] an older build's words");
    assert_eq!(
        copied,
        DeviceChange::Copied {
            from: "a".into(),
            version: 1,
            change: Box::new(DeviceChange::Recorded("an older build's words".into())),
        }
    );
}

/// The rules that read history: who set the level last, and whether the
/// evidence or a decision did.
#[test]
fn the_history_rules_read_the_variants() {
    let forms: Vec<DeviceChange> = device_forms().into_iter().map(|(c, _)| c).collect();
    let evidence: Vec<&str> = forms
        .iter()
        .filter(|c| c.level_from_evidence())
        .map(|c| match c {
            DeviceChange::Enrolled { .. } => "enrolled",
            DeviceChange::Renewed { .. } => "renewed",
            _ => "other",
        })
        .collect();
    // The renewal that kept a decision is not the evidence's level.
    assert_eq!(evidence, ["enrolled", "renewed"]);
    let registry: Vec<&DeviceChange> = forms.iter().filter(|c| c.by_registry()).collect();
    assert_eq!(registry.len(), 2);
    assert!(registry[0].sets_level() && !registry[1].sets_level());
    assert!(registry[1].model_suspension() && !registry[0].model_suspension());
    for c in &forms {
        let level_words = matches!(
            c,
            DeviceChange::Suspended
                | DeviceChange::Restored
                | DeviceChange::Retired
                | DeviceChange::AnomalySuspended { .. }
                | DeviceChange::AnomalyRevoked { .. }
                | DeviceChange::CertificatesRevoked { .. }
                | DeviceChange::TookOver { .. }
                | DeviceChange::ReplacedBy { .. }
        );
        let registry_status = matches!(c, DeviceChange::ModelMoved { levels: None, .. });
        assert_eq!(c.sets_level(), !level_words && !registry_status, "{c}");
    }
}

fn anomaly() -> impl Strategy<Value = AnomalyKind> {
    prop::sample::select(AnomalyKind::ALL.to_vec())
}

fn model_status() -> impl Strategy<Value = ModelStatus> {
    prop::sample::select(ModelStatus::ALL.to_vec())
}

/// Device changes as the engines make them: firmware versions, identity
/// keys and model keys in the shapes trustca validates.
fn device_change() -> impl Strategy<Value = DeviceChange> {
    let firmware = "[A-Za-z0-9.+_-]{1,32}";
    let key = "[a-z0-9-]{1,8}/[a-z0-9-]{1,8}/[a-z0-9-]{1,8}/[a-z0-9-]{1,8}";
    let leaf = prop_oneof![
        any::<u8>().prop_map(|level| DeviceChange::Enrolled { level }),
        (
            any::<bool>(),
            firmware,
            any::<u8>(),
            any::<u8>(),
            any::<Option<u8>>()
        )
            .prop_map(|(reenrolled, firmware, from, to, decision_kept)| {
                DeviceChange::Renewed {
                    reenrolled,
                    firmware,
                    from,
                    to,
                    decision_kept,
                }
            }),
        (any::<u8>(), any::<u8>()).prop_map(|(from, to)| DeviceChange::LevelSet { from, to }),
        Just(DeviceChange::Suspended),
        Just(DeviceChange::Restored),
        Just(DeviceChange::Retired),
        (any::<u8>(), any::<u8>(), firmware).prop_map(|(from, to, firmware)| {
            DeviceChange::BulkDowngrade { from, to, firmware }
        }),
        (any::<u8>(), any::<u8>(), anomaly())
            .prop_map(|(from, to, anomaly)| DeviceChange::AnomalyLowered { from, to, anomaly }),
        anomaly().prop_map(|anomaly| DeviceChange::AnomalySuspended { anomaly }),
        anomaly().prop_map(|anomaly| DeviceChange::AnomalyRevoked { anomaly }),
        prop::sample::select(crate::revocation::REASONS.to_vec())
            .prop_map(|(_, reason)| DeviceChange::CertificatesRevoked { reason }),
        (
            key,
            any::<u8>(),
            prop::sample::select(TrustStatus::ALL.to_vec())
        )
            .prop_map(|(from, level, status)| DeviceChange::TookOver {
                from,
                level,
                status,
            }),
        key.prop_map(|successor| DeviceChange::ReplacedBy { successor }),
        (
            prop::sample::select(FleetEvent::ALL.to_vec()),
            "[a-z0-9-]{1,8}/[a-z0-9-]{1,8}/[a-z0-9-]{1,8} firmware [A-Za-z0-9.+_-]{1,12}",
            any::<Option<(u8, u8)>>(),
            model_status(),
            any::<u64>(),
        )
            .prop_map(|(event, model, levels, model_status, model_version)| {
                DeviceChange::ModelMoved {
                    event,
                    model,
                    levels,
                    model_status,
                    model_version,
                }
            }),
    ];
    leaf.prop_recursive(2, 4, 1, move |inner| {
        (key, any::<u64>(), inner).prop_map(|(from, version, change)| DeviceChange::Copied {
            from,
            version,
            change: Box::new(change),
        })
    })
}

fn model_change() -> impl Strategy<Value = ModelChange> {
    let word = "[A-Za-z0-9.-]{1,16}";
    prop_oneof![
        (any::<u8>(), model_status())
            .prop_map(|(level, status)| ModelChange::Registered { level, status }),
        (any::<bool>(), word, word, word).prop_map(
            |(self_assessed, scheme, result, certificate_number)| ModelChange::EvaluationAdded {
                self_assessed,
                scheme,
                result,
                certificate_number,
            }
        ),
        (word, word, word).prop_map(|(scheme, result, certificate_number)| {
            ModelChange::EvaluationWithdrawn {
                scheme,
                result,
                certificate_number,
            }
        }),
        Just(ModelChange::Suspended),
        Just(ModelChange::SuspensionLifted),
        (any::<u8>(), any::<u8>(), model_status(), model_status()).prop_map(
            |(from, to, status_from, status_to)| ModelChange::Reassessed {
                from,
                to,
                status_from,
                status_to,
            }
        ),
    ]
}

proptest! {
    /// Any stored text reads back as a value written as that very text:
    /// nothing panics, nothing is lost, nothing is refused.
    #[test]
    fn any_text_round_trips(text in "\\PC{0,60}") {
        prop_assert_eq!(DeviceChange::parse(&text).to_string(), text.clone());
        prop_assert_eq!(ModelChange::parse(&text).to_string(), text);
    }

    /// Texts near the forms (a form's pieces in any order) round trip too.
    #[test]
    fn near_forms_round_trip(
        pieces in prop::collection::vec(
            prop::sample::select(vec![
                "level ", " -> ", "4", "(anomaly ", "silence", ")", "[from ", " v", "] ",
                "renewed", " firmware=", "model level", ": ", " (", "certified", "evaluation ",
                ":", ") registered", "; the level set by an operator or anomaly stands)",
            ]),
            0..10,
        )
    ) {
        let text: String = pieces.concat();
        prop_assert_eq!(DeviceChange::parse(&text).to_string(), text.clone());
        prop_assert_eq!(ModelChange::parse(&text).to_string(), text);
    }

    /// Every change the engines make reads back as itself.
    #[test]
    fn typed_changes_round_trip(device in device_change(), model in model_change()) {
        prop_assert_eq!(DeviceChange::parse(&device.to_string()), device);
        prop_assert_eq!(ModelChange::parse(&model.to_string()), model);
    }
}
