//! Round trips, published vectors and refusals of the extension codec.

use super::*;
use proptest::prelude::*;

fn device_ext() -> TrustLevelExtension {
    TrustLevelExtension {
        kind: CertificateKind::LongTerm,
        sector: SectorName::new("automotive").unwrap(),
        level: Some(TrustLevel::new(4).unwrap()),
        policy_version: "2026.11-1".to_owned(),
        basis: vec![EvaluationBasis {
            evidence: "evaluation".to_owned(),
            scheme: "iso-sae-21434".to_owned(),
            result: "CAL3".to_owned(),
            evaluated_at: Some(time::macros::datetime!(2026-03-01 0:00 UTC)),
            attestation: None,
        }],
        authorized_sectors: vec![],
        permitted_schemes: vec![],
    }
}

#[test]
fn default_oid_is_the_uuid_on_the_microsoft_arc() {
    let oid = ExtensionOid::default();
    assert_eq!(oid.to_string(), DEFAULT_OID);
    // The same UUID as the former 2.25 arc, split 16/16/16/16/16/24/24.
    let uuid: u128 = 304917911047948023692104962459481245009;
    let mut shift = 128;
    let mut arcs = vec![1u64, 2, 840, 113556, 1, 8000, 2554];
    for width in [16, 16, 16, 16, 16, 24, 24] {
        shift -= width;
        arcs.push(((uuid >> shift) & ((1u128 << width) - 1)) as u64);
    }
    assert_eq!(oid.arcs(), &arcs[..]);
    assert!(oid.arcs().iter().all(|a| *a <= MAX_ARC));
    // The published DER (docs/trust-level-extension.asn1).
    let vector = include_str!("../../testdata/trust-level-extension/oid.hex");
    let tlv = hex::decode(vector.trim()).unwrap();
    assert_eq!(tlv[0], 0x06);
    assert_eq!(tlv[1] as usize, tlv.len() - 2);
    assert_eq!(oid.der_content(), &tlv[2..]);
}

#[test]
fn oid_encoding_matches_known_oids() {
    // id-kp-OCSPSigning and an arc needing five base-128 groups.
    let ocsp = ExtensionOid::parse("1.3.6.1.5.5.7.3.9").unwrap();
    assert_eq!(
        ocsp.der_content(),
        &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09]
    );
    let big = ExtensionOid::parse("1.3.6.1.4.1.2147483647").unwrap();
    assert_eq!(&big.der_content()[5..], &[0x87, 0xff, 0xff, 0xff, 0x7f]);
    let two = ExtensionOid::parse("2.999.3").unwrap();
    assert_eq!(two.der_content(), &[0x88, 0x37, 0x03]);
}

#[test]
fn oid_validation_refuses_what_verifiers_cannot_parse() {
    for (bad, why) in [
        ("2.25.304917911047948023692104962459481245009", "2^31"),
        ("1.3.6.1.4.1.2147483648", "2^31"),
        ("1.3.6.1.4.1.4294967296", "2^31"),
        ("", "dotted"),
        ("1..3", "dotted"),
        ("1.3.6.1.4.1.01", "leading zeros"),
        ("1.3.x", "dotted"),
        (" 1.3.6", "dotted"),
        ("1.3", "three arcs"),
        ("3.1.1", "first arc"),
        ("1.40.1", "first arc"),
        ("2.2147483600.1", "31 bits"),
        ("2.5.29.99", "standard"),
        ("1.3.6.1.5.5.7.1.99", "standard"),
    ] {
        let err = ExtensionOid::parse(bad).unwrap_err().to_string();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn round_trip_device() {
    let ext = device_ext();
    let der = ext.to_der().unwrap();
    assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
}

/// Issue 25: an attested basis item carries its format in `[0]`; an
/// item without it encodes exactly as before, so certificates issued
/// before decode unchanged and unattested ones keep their bytes.
#[test]
fn attested_basis_round_trips_and_old_encodings_are_unchanged() {
    let before = device_ext().to_der().unwrap();
    let mut ext = device_ext();
    ext.basis.push(EvaluationBasis {
        evidence: "hardware-root-of-trust".to_owned(),
        scheme: String::new(),
        result: "tpm2".to_owned(),
        evaluated_at: None,
        attestation: Some("tpm2-certify-creation".to_owned()),
    });
    let der = ext.to_der().unwrap();
    let back = TrustLevelExtension::from_der(&der).unwrap();
    assert_eq!(back, ext);
    assert_eq!(back.basis[1].basis_kind(), "attested");
    assert_eq!(back.basis[0].basis_kind(), "declared");
    // The attested item ends with 80 15 "tpm2-certify-creation".
    let tail = [&[0x80u8, 21][..], b"tpm2-certify-creation"].concat();
    assert!(der.windows(tail.len()).any(|w| w == tail));
    // Without attestation: the very encoding of the old codec.
    ext.basis.pop();
    assert_eq!(ext.to_der().unwrap(), before);
    // The published device vector (issued before the field) decodes.
    let vector = include_str!("../../testdata/trust-level-extension/long-term-lv4.hex");
    let v = TrustLevelExtension::from_der(&hex::decode(vector.trim()).unwrap()).unwrap();
    assert!(v.basis.iter().all(|b| b.attestation.is_none()));
    // An empty format is refused on encoding and on decoding.
    ext.basis[0].attestation = Some(String::new());
    assert!(ext.to_der().is_err());
    // (The decoder ends with the same validation, so an empty [0]
    // does not decode either.)
}

#[test]
fn round_trip_credential() {
    let ext = TrustLevelExtension {
        kind: CertificateKind::Manufacturer,
        sector: SectorName::new("hems").unwrap(),
        level: None,
        policy_version: "p1".to_owned(),
        basis: vec![],
        authorized_sectors: vec![
            SectorName::new("hems").unwrap(),
            SectorName::new("automotive").unwrap(),
        ],
        permitted_schemes: vec![],
    };
    let der = ext.to_der().unwrap();
    assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
}

fn certification_body_ext() -> TrustLevelExtension {
    TrustLevelExtension {
        kind: CertificateKind::CertificationBody,
        sector: SectorName::new("automotive").unwrap(),
        level: None,
        policy_version: "2026.11-1".to_owned(),
        basis: vec![],
        authorized_sectors: vec![SectorName::new("automotive").unwrap()],
        permitted_schemes: vec!["iso-sae-21434".to_owned(), "unece-r155".to_owned()],
    }
}

#[test]
fn certification_body_round_trips_and_matches_the_published_vector() {
    let ext = certification_body_ext();
    let der = ext.to_der().unwrap();
    assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
    let hex_text = include_str!("../../testdata/trust-level-extension/certification-body.hex");
    assert_eq!(hex::encode(&der), hex_text.trim());
}

#[test]
fn permitted_schemes_belong_to_certification_bodies_only() {
    let mut no_schemes = certification_body_ext();
    no_schemes.permitted_schemes.clear();
    let err = no_schemes.to_der().unwrap_err().to_string();
    assert!(err.contains("permittedSchemes is required"), "{err}");
    let mut device = device_ext();
    device.permitted_schemes = vec!["common-criteria".to_owned()];
    assert!(device.to_der().is_err());
    // Hand-assembled: a device extension with a [1] list appended.
    let mut der = device_ext().to_der().unwrap();
    der.extend_from_slice(&[0xa1, 0x05, 0x0c, 0x03, b'a', b'b', b'c']);
    der[1] += 7;
    let err = TrustLevelExtension::from_der(&der).unwrap_err().to_string();
    assert!(err.contains("not allowed"), "{err}");
    // An empty [1] list is not canonical.
    let mut der = certification_body_ext().to_der().unwrap();
    let at = der.iter().rposition(|b| *b == 0xa1).unwrap();
    der.truncate(at);
    der.extend_from_slice(&[0xa1, 0x00]);
    der[1] = (der.len() - 2) as u8;
    let err = TrustLevelExtension::from_der(&der).unwrap_err().to_string();
    assert!(err.contains("present but empty"), "{err}");
}

#[test]
fn published_vector_decodes() {
    // testdata/trust-level-extension/long-term-lv4.hex is the published vector.
    let hex_text = include_str!("../../testdata/trust-level-extension/long-term-lv4.hex");
    let der = hex::decode(hex_text.trim()).unwrap();
    assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), device_ext());
    assert_eq!(device_ext().to_der().unwrap(), der);
}

#[test]
fn rejects_truncated() {
    let der = device_ext().to_der().unwrap();
    for cut in 0..der.len() {
        assert!(
            TrustLevelExtension::from_der(&der[..cut]).is_err(),
            "accepted {cut} bytes"
        );
    }
}

#[test]
fn rejects_trailing_bytes() {
    let mut der = device_ext().to_der().unwrap();
    der.push(0);
    let err = TrustLevelExtension::from_der(&der).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
}

#[test]
fn rejects_wrong_tag() {
    let mut der = device_ext().to_der().unwrap();
    der[0] = 0x31; // SET instead of SEQUENCE
    assert!(
        TrustLevelExtension::from_der(&der)
            .unwrap_err()
            .to_string()
            .contains("wrong tag")
    );
}

fn with_level_byte(level: u8) -> Vec<u8> {
    let der = device_ext().to_der().unwrap();
    // version(3) + kind(3) + sector(2+10) precede the level INTEGER 02 01 04.
    let pos = 2 + 3 + 3 + 12;
    assert_eq!(&der[pos..pos + 3], &[0x02, 0x01, 0x04]);
    let mut der = der;
    der[pos + 2] = level;
    der
}

#[test]
fn rejects_level_0_and_6() {
    for level in [0u8, 6] {
        let err = TrustLevelExtension::from_der(&with_level_byte(level)).unwrap_err();
        assert!(err.to_string().contains("out of range"), "{err}");
    }
    assert!(TrustLevelExtension::from_der(&with_level_byte(5)).is_ok());
}

#[test]
fn rejects_device_without_level_and_credential_with_level() {
    let mut ext = device_ext();
    ext.level = None;
    assert!(ext.to_der().is_err());
    let mut ext = device_ext();
    ext.kind = CertificateKind::Operator;
    assert!(ext.to_der().is_err());
}

#[test]
fn rejects_unknown_kind_and_version() {
    let der = device_ext().to_der().unwrap();
    let mut bad_kind = der.clone();
    assert_eq!(&bad_kind[5..8], &[0x0a, 0x01, 0x00]);
    bad_kind[7] = 99;
    assert!(
        TrustLevelExtension::from_der(&bad_kind)
            .unwrap_err()
            .to_string()
            .contains("kind")
    );
    let mut bad_version = der;
    bad_version[4] = 2;
    assert!(
        TrustLevelExtension::from_der(&bad_version)
            .unwrap_err()
            .to_string()
            .contains("version")
    );
}

proptest! {
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = TrustLevelExtension::from_der(&bytes);
    }

    #[test]
    fn round_trips(level in 1i64..=5, version in "[a-z0-9.-]{1,20}", result in "[A-Z0-9+]{0,10}", format in proptest::option::of("[a-z0-9-]{1,64}")) {
        let mut ext = device_ext();
        ext.basis[0].attestation = format;
        ext.level = Some(TrustLevel::new(level).unwrap());
        ext.policy_version = version;
        ext.basis[0].result = result;
        let der = ext.to_der().unwrap();
        prop_assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
    }
}
