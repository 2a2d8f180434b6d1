//! The registry against a real sled store: who may change what, fleet moves
//! by range, expiry sweeps and precise refusals.

use super::*;
use trustca_model::EvidenceKind;
use trustca_store::{CertificateRecord, CertificateStatus, DeviceRecord, Issuance, SledStorage};

/// A declared evidence item of the model registry's requests.
fn declared(kind: EvidenceKind, value: impl Into<String>) -> msg::EvidenceItem {
    msg::EvidenceItem {
        kind,
        scheme: String::new(),
        value: value.into(),
        evaluated_at: String::new(),
    }
}

fn policies() -> PolicySet {
    let sector = |name: &str, text: &str| (format!("sectors/{name}.toml"), text.to_owned());
    let detection = |name: &str, text: &str| (format!("detection/{name}.toml"), text.to_owned());
    PolicySet::parse(
        ("pki.toml", include_str!("../../../policies/pki.toml")),
        &[
            sector(
                "automotive",
                include_str!("../../../policies/sectors/automotive.toml"),
            ),
            sector("hems", include_str!("../../../policies/sectors/hems.toml")),
            sector(
                "healthcare",
                include_str!("../../../policies/sectors/healthcare.toml"),
            ),
        ],
        (
            "cooperation.toml",
            include_str!("../../../policies/cooperation.toml"),
        ),
        (
            "recognition.toml",
            include_str!("../../../policies/recognition.toml"),
        ),
        &[
            detection(
                "automotive",
                include_str!("../../../policies/detection/automotive.toml"),
            ),
            detection(
                "hems",
                include_str!("../../../policies/detection/hems.toml"),
            ),
            detection(
                "healthcare",
                include_str!("../../../policies/detection/healthcare.toml"),
            ),
        ],
    )
    .unwrap()
}

fn caller(kind: CertificateKind, name: &str, schemes: &[&str]) -> Credential {
    let sector = SectorName::new("automotive").unwrap();
    Credential {
        kind,
        sector: sector.clone(),
        sectors: vec![sector.clone()],
        name: name.into(),
        serial: "01".into(),
        serial_octets: vec![1],
        extension: trustca_model::TrustLevelExtension {
            kind,
            sector: sector.clone(),
            level: None,
            policy_version: "t".into(),
            basis: vec![],
            authorized_sectors: vec![sector],
            permitted_schemes: schemes.iter().map(|s| s.to_string()).collect(),
        },
        identity: None,
        identity_key: None,
        key_fingerprint: [0; 32],
    }
}

fn device(n: u8, firmware: &str, level: u8) -> Issuance {
    let key = format!("automotive/acme/ev-9/sn{n}");
    Issuance {
        certificate: CertificateRecord {
            serial: vec![n; 16],
            der: vec![0x30, 0x01, n],
            sector: "automotive".into(),
            kind: "long-term".into(),
            identity_key: Some(key.clone()),
            issued_at: 1,
            not_after: 4_000_000_000,
            status: CertificateStatus::Active,
        },
        device: Some(DeviceRecord {
            identity_key: key,
            urn: format!("urn:trustca:automotive:Acme:EV-9:SN{n}"),
            sector: "automotive".into(),
            manufacturer: "Acme".into(),
            model: "EV-9".into(),
            serial: format!("SN{n}"),
            firmware_version: firmware.into(),
            certificate_level: level,
            policy_version: "t".into(),
            enrolled_at: 1,
            certificates: vec![],
        }),
        renewal: false,
        actor: "manufacturer:Acme".into(),
        audit_kind: "certificate.issued".into(),
        audit_detail: "{}".into(),
    }
}

fn selector(firmware: &str) -> Option<msg::ModelSelector> {
    Some(msg::ModelSelector {
        sector: "automotive".into(),
        manufacturer: "Acme".into(),
        model: "EV-9".into(),
        firmware: firmware.into(),
    })
}

fn day(offset: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::days(offset))
        .date()
        .to_string()
}

fn registry() -> (tempfile::TempDir, Arc<dyn Storage>, ModelRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&dir.path().join("db")).unwrap());
    let registry = ModelRegistry::new(Arc::clone(&storage), Arc::new(policies()));
    (dir, storage, registry)
}

#[test]
fn the_level_is_raised_back_only_when_the_registry_set_it() {
    let h = |c: &[&str]| c.iter().map(|s| DeviceChange::parse(s)).collect::<Vec<_>>();
    assert!(last_level_set_by_registry(&h(&[
        "enrolled level=4",
        "model level: x level 4 -> 2 (withdrawn v3)",
        "model suspended: x (suspended v4)",
    ])));
    assert!(!last_level_set_by_registry(&h(&[
        "enrolled level=4",
        "model level: x level 4 -> 2 (withdrawn v3)",
        "level 2 -> 1",
    ])));
    assert!(!last_level_set_by_registry(&h(&["enrolled level=4"])));
    assert!(!last_level_set_by_registry(&h(&[])));
}

#[test]
fn a_withdrawal_moves_only_devices_in_the_range() {
    let (_dir, storage, registry) = registry();
    let acme = caller(CertificateKind::Manufacturer, "Acme", &[]);
    let tuv = caller(
        CertificateKind::CertificationBody,
        "TUV",
        &["iso-sae-21434"],
    );
    registry
        .register(
            &acme,
            &msg::RegisterModelRequest {
                model: selector("1.0..1.9"),
                declared: vec![
                    declared(EvidenceKind::HardwareRootOfTrust, "secure-element"),
                    declared(EvidenceKind::SecureUpdate, "true"),
                    declared(EvidenceKind::SupportedUntil, day(3650)),
                ],
                self_assessed: vec![],
                reason: "r".into(),
            },
        )
        .unwrap();
    let r = registry
        .add_evaluation(
            &tuv,
            &msg::AddEvaluationRequest {
                model: selector("1.0..1.9"),
                evaluation: Some(msg::ModelEvaluationInput {
                    scheme: "iso-sae-21434".into(),
                    result: "CAL3".into(),
                    certificate_number: "T-1".into(),
                    evaluated_at: day(-1),
                    valid_until: day(300),
                }),
                reason: "r".into(),
            },
        )
        .unwrap();
    assert_eq!(r.model.unwrap().level, 4);
    let batch = [
        device(1, "1.2", 4),
        device(2, "1.9", 4),
        device(3, "2.0", 4),
    ];
    assert!(storage.commit_issuances(&batch).iter().all(|r| r.is_ok()));
    let r = registry
        .withdraw_evaluation(
            &tuv,
            &msg::WithdrawEvaluationRequest {
                model: selector("1.0..1.9"),
                certificate_number: "T-1".into(),
                reason: "r".into(),
            },
        )
        .unwrap();
    assert_eq!((r.devices_matched, r.devices_changed), (2, 2));
    let level = |n: u8| {
        storage
            .trust_record(&format!("automotive/acme/ev-9/sn{n}"))
            .unwrap()
            .unwrap()
            .level
    };
    assert_eq!((level(1), level(2), level(3)), (2, 2, 4));
    // A scheme the body may not use, and a withdrawal of a withdrawn
    // evaluation, change nothing.
    let before = storage.audit_head().unwrap().0;
    let err = registry
        .add_evaluation(
            &tuv,
            &msg::AddEvaluationRequest {
                model: selector("1.0..1.9"),
                evaluation: Some(msg::ModelEvaluationInput {
                    scheme: "common-criteria".into(),
                    result: "EAL4+".into(),
                    certificate_number: "T-2".into(),
                    evaluated_at: day(-1),
                    valid_until: day(300),
                }),
                reason: "r".into(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, TrustDbError::PermissionDenied(_)), "{err}");
    let err = registry
        .withdraw_evaluation(
            &tuv,
            &msg::WithdrawEvaluationRequest {
                model: selector("1.0..1.9"),
                certificate_number: "T-1".into(),
                reason: "again".into(),
            },
        )
        .unwrap_err();
    assert!(matches!(err, TrustDbError::FailedPrecondition(_)), "{err}");
    assert_eq!(storage.audit_head().unwrap().0, before);
}

#[test]
fn an_expired_evaluation_moves_the_fleet_at_the_next_sweep() {
    let (_dir, storage, registry) = registry();
    let acme = caller(CertificateKind::Manufacturer, "Acme", &[]);
    let tuv = caller(
        CertificateKind::CertificationBody,
        "TUV",
        &["iso-sae-21434"],
    );
    registry
        .register(
            &acme,
            &msg::RegisterModelRequest {
                model: selector("1.0.."),
                declared: vec![declared(EvidenceKind::SecureUpdate, "true")],
                self_assessed: vec![],
                reason: "r".into(),
            },
        )
        .unwrap();
    registry
        .add_evaluation(
            &tuv,
            &msg::AddEvaluationRequest {
                model: selector("1.0.."),
                evaluation: Some(msg::ModelEvaluationInput {
                    scheme: "iso-sae-21434".into(),
                    result: "CAL2".into(),
                    certificate_number: "T-9".into(),
                    evaluated_at: day(-1),
                    valid_until: day(30),
                }),
                reason: "r".into(),
            },
        )
        .unwrap();
    assert!(
        storage
            .commit_issuances(&[device(7, "1.3", 3)])
            .iter()
            .all(|r| r.is_ok())
    );
    assert_eq!(registry.reassess_all(OffsetDateTime::now_utc()).unwrap(), 0);
    let later = OffsetDateTime::now_utc() + time::Duration::days(31);
    assert_eq!(registry.reassess_all(later).unwrap(), 1);
    let record = storage
        .trust_record("automotive/acme/ev-9/sn7")
        .unwrap()
        .unwrap();
    assert_eq!(record.level, 2);
    let history = storage.history("automotive/acme/ev-9/sn7").unwrap();
    assert_eq!(history.last().unwrap().actor, "registry:expiry");
    assert_eq!(
        registry.reassess_all(later).unwrap(),
        0,
        "nothing left to move"
    );
}

#[test]
fn bad_input_is_refused_precisely() {
    let (_dir, _storage, registry) = registry();
    let acme = caller(CertificateKind::Manufacturer, "Acme", &[]);
    let register = |firmware: &str, reason: &str| {
        registry.register(
            &acme,
            &msg::RegisterModelRequest {
                model: selector(firmware),
                declared: vec![],
                self_assessed: vec![],
                reason: reason.into(),
            },
        )
    };
    assert!(matches!(
        register("", "r"),
        Err(TrustDbError::InvalidRequest(_))
    ));
    assert!(matches!(
        register("2.0..1.0", "r"),
        Err(TrustDbError::Model(_))
    ));
    assert!(matches!(
        register("1.0", ""),
        Err(TrustDbError::InvalidRequest(_))
    ));
    assert!(matches!(
        register("1.0", "bad\nreason"),
        Err(TrustDbError::InvalidRequest(_))
    ));
    register("1.0", "r").unwrap();
    assert!(matches!(
        register("..1.0", "r"),
        Err(TrustDbError::FailedPrecondition(_))
    ));
    let err = registry
        .get(&msg::GetModelRequest {
            model: selector("1.1"),
        })
        .unwrap_err();
    assert!(matches!(err, TrustDbError::NotFound(_)), "{err}");
}

/// Device `n` of a fleet larger than a byte counts: as [`device`], with a
/// serial, certificate and identity of its own.
fn fleet_device(n: u16, firmware: &str, level: u8) -> Issuance {
    let mut i = device(0, firmware, level);
    let [hi, lo] = n.to_be_bytes();
    let key = format!("automotive/acme/ev-9/f{n:05}");
    i.certificate.serial = [vec![0x5a; 14], vec![hi, lo]].concat();
    i.certificate.der = vec![0x30, 0x02, hi, lo];
    i.certificate.identity_key = Some(key.clone());
    if let Some(d) = i.device.as_mut() {
        d.identity_key = key;
        d.urn = format!("urn:trustca:automotive:Acme:EV-9:F{n:05}");
        d.serial = format!("F{n:05}");
    }
    i
}

#[test]
fn the_sweep_moves_a_fleet_of_more_than_one_page() {
    let (_dir, storage, registry) = registry();
    let acme = caller(CertificateKind::Manufacturer, "Acme", &[]);
    let tuv = caller(
        CertificateKind::CertificationBody,
        "TUV",
        &["iso-sae-21434"],
    );
    registry
        .register(
            &acme,
            &msg::RegisterModelRequest {
                model: selector("1.0.."),
                declared: vec![declared(EvidenceKind::SecureUpdate, "true")],
                self_assessed: vec![],
                reason: "r".into(),
            },
        )
        .unwrap();
    registry
        .add_evaluation(
            &tuv,
            &msg::AddEvaluationRequest {
                model: selector("1.0.."),
                evaluation: Some(msg::ModelEvaluationInput {
                    scheme: "iso-sae-21434".into(),
                    result: "CAL2".into(),
                    certificate_number: "T-9".into(),
                    evaluated_at: day(-1),
                    valid_until: day(30),
                }),
                reason: "r".into(),
            },
        )
        .unwrap();
    // More devices than a page of the walk, plus one outside the range.
    let n = (trustca_store::DEVICE_PAGE + 5) as u16;
    let fleet: Vec<Issuance> = (0..n).map(|i| fleet_device(i, "1.3", 3)).collect();
    assert!(storage.commit_issuances(&fleet).iter().all(|r| r.is_ok()));
    let outside = [fleet_device(n, "0.9", 3)];
    assert!(storage.commit_issuances(&outside).iter().all(|r| r.is_ok()));
    let later = OffsetDateTime::now_utc() + time::Duration::days(31);
    assert_eq!(registry.reassess_all(later).unwrap(), 1);
    let level = |i: u16| {
        storage
            .trust_record(&format!("automotive/acme/ev-9/f{i:05}"))
            .unwrap()
            .unwrap()
            .level
    };
    // The first, the last of the first page, the first of the second, the
    // last of the fleet: all moved; the one outside the range did not.
    for i in [0, 1023, 1024, n - 1] {
        assert_eq!(level(i), 2, "device {i}");
    }
    let moved = (0..n).filter(|&i| level(i) == 2).count();
    assert_eq!(moved, usize::from(n));
    assert_eq!(level(n), 3);
}
