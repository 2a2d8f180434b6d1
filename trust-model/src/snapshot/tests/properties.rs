//! Random snapshots round-trip; random and mutated bytes never panic the
//! decoder and decode only to canonical bodies.

use super::*;
use proptest::prelude::*;

fn arb_snapshot() -> impl Strategy<Value = TrustSnapshot> {
    let sectors = ["automotive", "healthcare", "hems"];
    let model = (
        0..3usize,
        "[A-Za-z][A-Za-z0-9]{0,6}",
        "[A-Za-z][A-Za-z0-9-]{0,6}[A-Za-z0-9]",
        prop::sample::select(vec!["1.0", "1.0..2.0", "2.1..", "..0.9", "3.0-rc1"]),
        1..=5i64,
        0..4u64,
        any::<u64>(),
    );
    let device = (
        0..3usize,
        "[A-Za-z0-9]{1,8}",
        1..=5i64,
        0..4u64,
        any::<u64>(),
    );
    let revoked = (0..3usize, prop::collection::vec(any::<u8>(), 1..20));
    (
        any::<u64>(),
        prop::option::of(0..3usize),
        0..4_000_000_000i64,
        0..10_000_000i64,
        prop::collection::vec(model, 0..8),
        prop::collection::vec(device, 0..8),
        prop::collection::vec(revoked, 0..8),
        prop::collection::vec(any::<[u8; 32]>(), 0..4),
    )
        .prop_map(
            move |(serial, scope, issued, ttl, models, devices, revoked, blocked)| {
                let scope = scope.map(|i| sn(sectors[i]));
                let pick = |i: usize| scope.clone().unwrap_or_else(|| sn(sectors[i]));
                let mut s = TrustSnapshot {
                    serial,
                    scope: scope.clone(),
                    issued_at: OffsetDateTime::from_unix_timestamp(issued).unwrap(),
                    next_update: OffsetDateTime::from_unix_timestamp(issued + ttl).unwrap(),
                    sectors: sectors.iter().map(|s| sn(s)).collect(),
                    cooperation_policy: policies().0,
                    recognition_policy: policies().1,
                    models: models
                        .into_iter()
                        .map(|(i, mf, md, fw, level, status, rv)| SnapshotModel {
                            sector: pick(i),
                            manufacturer: mf,
                            model: md,
                            firmware: FirmwareRange::parse(fw).unwrap(),
                            level: lv(level),
                            status: model_status_from_code(status).unwrap(),
                            record_version: rv,
                            policy_version: "p1".into(),
                        })
                        .collect(),
                    devices: devices
                        .into_iter()
                        .map(|(i, serial, level, status, rv)| DeviceState {
                            identity: format!("urn:trustca:{}:Acme:HB-1:{serial}", pick(i)),
                            level: lv(level),
                            status: TrustStatus::from_code(status).unwrap(),
                            record_version: rv,
                        })
                        .collect(),
                    revoked_certificates: revoked
                        .into_iter()
                        .map(|(i, bytes)| {
                            let skip = bytes.iter().take_while(|b| **b == 0).count();
                            let mut n = bytes[skip.min(bytes.len() - 1)..].to_vec();
                            if n[0] & 0x80 != 0 {
                                n.insert(0, 0);
                            }
                            (pick(i), n)
                        })
                        .collect(),
                    blocked_keys: blocked,
                    systems: None,
                    trust_list: None,
                    foreign_crls: Vec::new(),
                };
                s.sort();
                s.models.dedup_by(|a, b| a.order(b) == Ordering::Equal);
                s.devices
                    .dedup_by(|a, b| cmp_ci(&a.identity, &b.identity) == Ordering::Equal);
                s.revoked_certificates.dedup();
                s.blocked_keys.dedup();
                s
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_snapshots_round_trip(s in arb_snapshot()) {
        let der = s.to_der().unwrap();
        let back = TrustSnapshot::from_der(&der).unwrap();
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.to_der().unwrap(), der);
    }

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = TrustSnapshot::from_der(&bytes);
        let _ = SignedSnapshot::from_der(&bytes);
    }

    /// Any change to a valid body either fails to decode or decodes to
    /// something that re-encodes to exactly the changed bytes.
    #[test]
    fn mutated_bodies_are_rejected_or_canonical(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
    ) {
        let mut der = sample().to_der().unwrap();
        for (i, b) in edits {
            let i = i.index(der.len());
            der[i] = b;
        }
        if let Ok(s) = TrustSnapshot::from_der(&der) {
            prop_assert_eq!(s.to_der().unwrap(), der);
        }
    }
}
