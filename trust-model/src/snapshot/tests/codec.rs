//! The snapshot body: the published vector, canonical order, every
//! truncation and a hostile publisher's unchecked encoding refused.

use super::*;

#[test]
fn round_trip_and_published_vector() {
    let der = sample().to_der().unwrap();
    assert_eq!(TrustSnapshot::from_der(&der).unwrap(), sample());
    let vector = include_str!("../../../testdata/trust-snapshot/hems-serial7.hex");
    assert_eq!(hex::encode(&der), vector.trim());
    let decoded = TrustSnapshot::from_der(&hex::decode(vector.trim()).unwrap()).unwrap();
    assert_eq!(decoded, sample());
    assert!(sample().policy().is_ok());
}

#[test]
fn rejects_every_truncation_and_trailing_bytes() {
    let der = sample().to_der().unwrap();
    for cut in 0..der.len() {
        assert!(TrustSnapshot::from_der(&der[..cut]).is_err(), "cut {cut}");
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(
        TrustSnapshot::from_der(&trailing)
            .unwrap_err()
            .to_string()
            .contains("trailing")
    );
    let mut bad_version = der.clone();
    // The version INTEGER follows the outer SEQUENCE header.
    let header = if der[1] & 0x80 != 0 {
        2 + (der[1] & 0x7f) as usize
    } else {
        2
    };
    assert_eq!(&der[header..header + 3], &[0x02, 0x01, 0x01]);
    // Version 3 carries a trust list (snapshot_trust_list.rs): this
    // body has none, so it is not version 3.
    bad_version[header + 2] = 3;
    assert!(TrustSnapshot::from_der(&bad_version).is_err());
    // Version 2 carries systems (snapshot_systems.rs); 4 is unknown.
    bad_version[header + 2] = 4;
    assert!(
        TrustSnapshot::from_der(&bad_version)
            .unwrap_err()
            .to_string()
            .contains("unsupported version")
    );
}

fn rejected(s: &TrustSnapshot, needle: &str) {
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains(needle), "{e}");
    assert!(s.to_der().is_err());
}

/// Encodes without the encoder's checks, as a hostile publisher would,
/// to prove the decoder refuses it too.
fn encode_unchecked(s: &TrustSnapshot) -> Vec<u8> {
    let mut body = Vec::new();
    der::write_small_uint(&mut body, der::TAG_INTEGER, VERSION);
    der::write_small_uint(&mut body, der::TAG_INTEGER, s.serial);
    if let Some(scope) = &s.scope {
        der::write_tlv(&mut body, TAG_SCOPE, scope.as_str().as_bytes());
    }
    for t in [s.issued_at, s.next_update] {
        der::write_tlv(
            &mut body,
            der::TAG_GENERALIZED_TIME,
            &der::generalized_time(t).unwrap(),
        );
    }
    let mut list = Vec::new();
    for x in &s.sectors {
        der::write_tlv(&mut list, der::TAG_UTF8, x.as_str().as_bytes());
    }
    der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
    for p in [&s.cooperation_policy, &s.recognition_policy] {
        let mut inner = Vec::new();
        der::write_tlv(&mut inner, der::TAG_UTF8, p.version.as_bytes());
        der::write_tlv(&mut inner, der::TAG_UTF8, p.text.as_bytes());
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &inner);
    }
    let mut list = Vec::new();
    for m in &s.models {
        let mut e = Vec::new();
        der::write_tlv(&mut e, der::TAG_UTF8, m.sector.as_str().as_bytes());
        der::write_tlv(&mut e, der::TAG_UTF8, m.manufacturer.as_bytes());
        der::write_tlv(&mut e, der::TAG_UTF8, m.model.as_bytes());
        der::write_tlv(&mut e, der::TAG_UTF8, m.firmware.to_string().as_bytes());
        der::write_small_uint(&mut e, der::TAG_INTEGER, m.level.get() as u64);
        der::write_small_uint(&mut e, der::TAG_ENUMERATED, model_status_code(m.status));
        der::write_small_uint(&mut e, der::TAG_INTEGER, m.record_version);
        der::write_tlv(&mut e, der::TAG_UTF8, m.policy_version.as_bytes());
        der::write_tlv(&mut list, der::TAG_SEQUENCE, &e);
    }
    der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
    let mut list = Vec::new();
    for d in &s.devices {
        let mut e = Vec::new();
        der::write_tlv(&mut e, der::TAG_UTF8, d.identity.as_bytes());
        der::write_small_uint(&mut e, der::TAG_INTEGER, d.level.get() as u64);
        der::write_small_uint(&mut e, der::TAG_ENUMERATED, d.status.code());
        der::write_small_uint(&mut e, der::TAG_INTEGER, d.record_version);
        der::write_tlv(&mut list, der::TAG_SEQUENCE, &e);
    }
    der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
    let mut list = Vec::new();
    for (sector, serial) in &s.revoked_certificates {
        let mut e = Vec::new();
        der::write_tlv(&mut e, der::TAG_UTF8, sector.as_str().as_bytes());
        der::write_tlv(&mut e, der::TAG_INTEGER, serial);
        der::write_tlv(&mut list, der::TAG_SEQUENCE, &e);
    }
    der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
    let mut list = Vec::new();
    for k in &s.blocked_keys {
        der::write_tlv(&mut list, TAG_OCTET_STRING, k);
    }
    der::write_tlv(&mut body, der::TAG_SEQUENCE, &list);
    let mut out = Vec::new();
    der::write_tlv(&mut out, der::TAG_SEQUENCE, &body);
    out
}

#[test]
fn unchecked_encoder_matches_the_real_one() {
    assert_eq!(encode_unchecked(&sample()), sample().to_der().unwrap());
}

#[test]
fn rejects_out_of_order_and_duplicate_lists() {
    let mut cases: Vec<(TrustSnapshot, &str)> = Vec::new();
    let mut s = sample();
    s.models.swap(0, 1);
    cases.push((s, "models: entry 1 is out of order"));
    let mut s = sample();
    s.models[1] = s.models[0].clone();
    s.models[1].manufacturer = "ACME".into();
    cases.push((s, "models: entries 0 and 1 are duplicates"));
    let mut s = sample();
    let mut d = s.devices[0].clone();
    d.identity = "urn:trustca:hems:ACME:HB-1:SN7".into();
    s.devices.push(d);
    cases.push((s, "devices: entries 0 and 1 are duplicates"));
    let mut s = sample();
    let mut d = s.devices[0].clone();
    d.identity = "urn:trustca:hems:Acme:HB-1:SN1".into();
    s.devices.push(d);
    cases.push((s, "devices: entry 1 is out of order"));
    let mut s = sample();
    s.revoked_certificates.insert(0, (sn("hems"), vec![0x7f]));
    cases.push((s, "revoked certificates: entry 1 is out of order"));
    let mut s = sample();
    s.blocked_keys.push([0xab; 32]);
    cases.push((s, "blocked keys: entries 0 and 1 are duplicates"));
    let mut s = sample();
    s.blocked_keys.push([0x01; 32]);
    cases.push((s, "blocked keys: entry 1 is out of order"));
    let mut s = sample();
    s.sectors.reverse();
    cases.push((s, "sectors: entry 1 is out of order"));
    let mut s = sample();
    s.revoked_certificates[0].1 = vec![0x00, 0x01];
    cases.push((s, "minimal non-negative INTEGER"));
    let mut s = sample();
    s.devices[0].identity = "urn:trustca:automotive:Acme:HB-1:SN7".into();
    cases.push((s, "not covered by this snapshot"));
    let mut s = sample();
    s.models[0].firmware = FirmwareRange {
        min: "1.0".into(),
        max: "1.0".into(),
    };
    s.models[0].firmware.max = "0.9".into();
    cases.push((s, "firmware range"));
    let mut s = sample();
    s.next_update = s.issued_at - time::Duration::SECOND;
    cases.push((s, "next_update is before issued_at"));
    for (s, needle) in cases {
        rejected(&s, needle);
        let e = TrustSnapshot::from_der(&encode_unchecked(&s))
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "decoder: {e}, wanted {needle}");
    }
    // sort() repairs order (not duplicates).
    let mut s = sample();
    s.models.swap(0, 1);
    s.blocked_keys.insert(0, [0xff; 32]);
    s.sort();
    assert!(s.to_der().is_ok());
}

#[test]
fn lookups() {
    let s = sample();
    let m = s.model_for(&sn("hems"), "acme", "hb-1", "1.4.2").unwrap();
    assert_eq!(m.level, lv(4));
    let m = s.model_for(&sn("hems"), "Acme", "HB-1", "2.0").unwrap();
    assert_eq!(m.status, ModelStatus::Provisional);
    assert!(s.model_for(&sn("hems"), "Acme", "HB-1", "0.9").is_none());
    assert!(s.model_for(&sn("hems"), "Acme", "HB-2", "1.0").is_none());
    assert!(s.device("urn:trustca:hems:acme:hb-1:sn7").is_some());
    assert!(s.device("urn:trustca:hems:acme:hb-1:sn8").is_none());
    assert!(s.is_certificate_revoked(&sn("hems"), &[0x00, 0x80, 0x01]));
    assert!(!s.is_certificate_revoked(&sn("hems"), &[0x01]));
    assert!(s.is_key_blocked(&[0xab; 32]));
    assert!(!s.is_key_blocked(&[0xac; 32]));
}

#[test]
fn policy_versions_must_match_the_texts() {
    let mut s = sample();
    s.cooperation_policy.version = "c2".into();
    let e = s.policy().unwrap_err().to_string();
    assert!(e.contains("\"c1\"") && e.contains("\"c2\""), "{e}");
}
