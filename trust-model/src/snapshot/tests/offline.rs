//! Offline decisions follow the snapshot as the online ones follow the
//! store.

use super::*;

/// A snapshot for the decision tests: `peer` may be listed.
fn decision_snapshot() -> TrustSnapshot {
    let mut s = sample();
    s.devices.clear();
    s.revoked_certificates.clear();
    s.blocked_keys.clear();
    s
}

#[test]
fn decide_offline_follows_the_snapshot() {
    let pki = pki::Pki::new();
    let cas = vec![pki.sector_ca_der.clone()];
    let (caller, _) = pki.device("CALLER1", &[0x21], 4);
    let (peer, _) = pki.device("PEER1", &[0x22], 4);
    let decide = |s: &TrustSnapshot, op: &str| {
        decide_offline(s, &caller, &peer, &cas, op, &pki.root_der, NOW, &pki.oid)
    };

    // Not listed: active at the certificate's level.
    let s = decision_snapshot();
    let d = decide(&s, "remote-control").unwrap();
    assert!(d.outcome.allow, "{:?}", d.outcome.reasons);
    assert_eq!(d.outcome.depth, "control");
    assert_eq!(d.outcome.rule.as_deref(), Some("hems-local"));
    assert_eq!(d.snapshot_serial, 7);
    assert_eq!(d.policy_version, "cooperation@c1+recognition@r1");
    assert_eq!(d.peer_sector, "hems");
    assert_eq!(d.peer_identity, "urn:trustca:hems:Acme:HB-1:PEER1");
    assert!(!d.stale);

    // Listed with a lower live level: observe only.
    let mut s = decision_snapshot();
    s.devices.push(DeviceState {
        identity: "urn:trustca:hems:acme:hb-1:peer1".into(),
        level: lv(2),
        status: TrustStatus::Active,
        record_version: 4,
    });
    let d = decide(&s, "remote-control").unwrap();
    assert!(!d.outcome.allow);
    assert_eq!(d.outcome.depth, "observe");
    assert_eq!(d.peer_identity, "urn:trustca:hems:acme:hb-1:peer1");

    // Listed as suspended.
    s.devices[0].level = lv(4);
    s.devices[0].status = TrustStatus::Suspended;
    let d = decide(&s, "read-telemetry").unwrap();
    assert!(!d.outcome.allow);
    assert_eq!(d.outcome.peer_level, None);
    assert_eq!(d.outcome.reasons[0], "peer is suspended");
    assert!(
        d.outcome
            .reasons
            .contains(&"peer is not in good standing".to_owned())
    );

    // The caller itself suspended.
    let mut s = decision_snapshot();
    s.devices.push(DeviceState {
        identity: "urn:trustca:hems:Acme:HB-1:CALLER1".into(),
        level: lv(4),
        status: TrustStatus::Suspended,
        record_version: 2,
    });
    let d = decide(&s, "read-telemetry").unwrap();
    assert!(!d.outcome.allow);
    assert_eq!(d.outcome.caller_level, None);
    assert_eq!(d.outcome.reasons[0], "caller is suspended");

    // The peer's certificate serial is revoked.
    let mut s = decision_snapshot();
    s.revoked_certificates.push((sn("hems"), vec![0x22]));
    let d = decide(&s, "read-telemetry").unwrap();
    assert!(!d.outcome.allow);
    assert_eq!(
        d.outcome.reasons[..2],
        [
            "peer is revoked".to_owned(),
            "certificate revoked".to_owned()
        ]
    );
    // ... in another sector it does not count.
    let mut s = decision_snapshot();
    s.scope = None;
    s.revoked_certificates.push((sn("automotive"), vec![0x22]));
    assert!(decide(&s, "read-telemetry").unwrap().outcome.allow);

    // The peer's key is blocked.
    let mut s = decision_snapshot();
    s.blocked_keys
        .push(crate::certificate_key_fingerprint(&peer[0]).unwrap());
    let d = decide(&s, "read-telemetry").unwrap();
    assert!(!d.outcome.allow);
    assert!(
        d.outcome
            .reasons
            .contains(&"key was revoked for compromise".to_owned())
    );

    // A snapshot of another sector does not speak for hems devices.
    let mut s = decision_snapshot();
    s.scope = Some(sn("automotive"));
    s.models.clear();
    let d = decide(&s, "read-telemetry").unwrap();
    assert!(!d.outcome.allow);
    assert!(d.outcome.reasons[0].starts_with("caller: snapshot 7 covers sector automotive only"));

    // Errors, as online: unknown operation, caller not a device.
    let s = decision_snapshot();
    assert!(matches!(
        decide(&s, "fly"),
        Err(ModelError::UnknownOperation(_))
    ));
    let (service, _) = pki.service();
    let e = decide_offline(
        &s,
        &service,
        &peer,
        &cas,
        "read-telemetry",
        &pki.root_der,
        NOW,
        &pki.oid,
    )
    .unwrap_err();
    assert!(matches!(e, ModelError::InvalidCredential(_)), "{e}");

    // A peer chain that does not verify is a deny.
    let other = pki::Pki::new();
    let (stranger, _) = other.device("X1", &[0x33], 5);
    let d = decide_offline(
        &s,
        &caller,
        &stranger,
        &cas,
        "read-telemetry",
        &pki.root_der,
        NOW,
        &pki.oid,
    )
    .unwrap();
    assert!(!d.outcome.allow);
    assert!(d.outcome.reasons[0].starts_with("peer certificate rejected:"));

    // Stale snapshots still decide, and say so.
    let late = datetime!(2026-11-25 10:00 UTC);
    let d = decide_offline(
        &s,
        &caller,
        &peer,
        &cas,
        "read-telemetry",
        &pki.root_der,
        late,
        &pki.oid,
    )
    .unwrap();
    assert!(d.stale);
}
