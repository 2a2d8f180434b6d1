//! Parsing, validation and level assessment of the policy files.

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
        kind: kind.parse().unwrap(),
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
