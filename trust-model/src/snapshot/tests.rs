//! Unit and property tests of the snapshot codec, signature and offline decisions.

use super::*;
use proptest::prelude::*;
use time::macros::datetime;

pub(crate) const COOP: &str = r#"version = "c1"
depths = ["none", "observe", "exchange", "control"]
[operations]
read-telemetry = "observe"
remote-control = "control"
[[rule]]
name = "hems-local"
caller = "hems"
peer = "hems"
min_levels = { observe = [2, 2], exchange = [3, 3], control = [4, 4] }
"#;
const RECOG: &str = "version = \"r1\"\n";

fn sn(s: &str) -> SectorName {
    SectorName::new(s).unwrap()
}

fn lv(n: i64) -> TrustLevel {
    TrustLevel::new(n).unwrap()
}

/// The snapshot of the published vector (testdata/trust-snapshot).
pub(crate) fn sample() -> TrustSnapshot {
    TrustSnapshot {
        serial: 7,
        scope: Some(sn("hems")),
        issued_at: datetime!(2026-11-23 10:00 UTC),
        next_update: datetime!(2026-11-24 10:00 UTC),
        sectors: vec![sn("automotive"), sn("hems")],
        cooperation_policy: EmbeddedPolicy {
            version: "c1".into(),
            text: COOP.into(),
        },
        recognition_policy: EmbeddedPolicy {
            version: "r1".into(),
            text: RECOG.into(),
        },
        models: vec![
            SnapshotModel {
                sector: sn("hems"),
                manufacturer: "Acme".into(),
                model: "HB-1".into(),
                firmware: FirmwareRange::parse("1.0..1.4.9").unwrap(),
                level: lv(4),
                status: ModelStatus::Certified,
                record_version: 2,
                policy_version: "2026.11-1".into(),
            },
            SnapshotModel {
                sector: sn("hems"),
                manufacturer: "Acme".into(),
                model: "HB-1".into(),
                firmware: FirmwareRange::parse("1.5..").unwrap(),
                level: lv(3),
                status: ModelStatus::Provisional,
                record_version: 1,
                policy_version: "2026.11-1".into(),
            },
        ],
        devices: vec![DeviceState {
            identity: "urn:trustca:hems:Acme:HB-1:SN7".into(),
            level: lv(4),
            status: TrustStatus::Suspended,
            record_version: 3,
        }],
        revoked_certificates: vec![(sn("hems"), vec![0x00, 0x80, 0x01])],
        blocked_keys: vec![[0xab; 32]],
        systems: None,
        trust_list: None,
        foreign_crls: Vec::new(),
    }
}

#[test]
fn round_trip_and_published_vector() {
    let der = sample().to_der().unwrap();
    assert_eq!(TrustSnapshot::from_der(&der).unwrap(), sample());
    let vector = include_str!("../../testdata/trust-snapshot/hems-serial7.hex");
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
                    cooperation_policy: EmbeddedPolicy {
                        version: "c1".into(),
                        text: COOP.into(),
                    },
                    recognition_policy: EmbeddedPolicy {
                        version: "r1".into(),
                        text: RECOG.into(),
                    },
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

/// A tiny trustca hierarchy: root, hems sector CA, root-issued service
/// certificate (the signer), and device certificates.
pub(crate) mod pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    };

    use crate::extension::ExtensionOid;
    use crate::{CertificateKind, SectorName, TrustLevel, TrustLevelExtension};

    pub struct Pki {
        pub oid: ExtensionOid,
        sector: &'static str,
        pub root_der: Vec<u8>,
        root: Issuer<'static, KeyPair>,
        pub sector_ca_der: Vec<u8>,
        sector_ca: Issuer<'static, KeyPair>,
    }

    fn ext(
        oid: &ExtensionOid,
        sector: &str,
        kind: CertificateKind,
        level: Option<u8>,
    ) -> CustomExtension {
        let e = TrustLevelExtension {
            kind,
            sector: SectorName::new(sector).unwrap(),
            level: level.map(|l| TrustLevel::new(l as i64).unwrap()),
            policy_version: "t1".into(),
            basis: vec![],
            authorized_sectors: vec![],
            permitted_schemes: vec![],
        };
        CustomExtension::from_oid_content(oid.arcs(), e.to_der().unwrap())
    }

    fn named(cn: &str) -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        p.distinguished_name = dn;
        p.not_before = time::macros::datetime!(2026-01-01 0:00 UTC);
        p.not_after = time::macros::datetime!(2028-01-01 0:00 UTC);
        p
    }

    impl Pki {
        pub fn new() -> Self {
            Self::for_sector("hems")
        }

        /// A root of its own with one sector CA, of `sector`.
        pub fn for_sector(sector: &'static str) -> Self {
            let oid = ExtensionOid::default();
            let key = KeyPair::generate().unwrap();
            let mut p = named(&format!("test root of {sector}"));
            p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let root_der = p.self_signed(&key).unwrap().der().to_vec();
            let root = Issuer::new(p, key);
            let key = KeyPair::generate().unwrap();
            let mut p = named(&format!("{sector} sector CA"));
            p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            p.custom_extensions
                .push(ext(&oid, sector, CertificateKind::SectorCa, None));
            let sector_ca_der = p.signed_by(&key, &root).unwrap().der().to_vec();
            let sector_ca = Issuer::new(p, key);
            Self {
                oid,
                sector,
                root_der,
                root,
                sector_ca_der,
                sector_ca,
            }
        }

        /// A root-issued service certificate and its key as a
        /// statement signer.
        pub fn service(&self) -> (Vec<Vec<u8>>, ring::signature::EcdsaKeyPair) {
            let key = KeyPair::generate().unwrap();
            let mut p = named("trust responder");
            p.is_ca = IsCa::ExplicitNoCa;
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
            p.custom_extensions
                .push(ext(&self.oid, self.sector, CertificateKind::Service, None));
            let der = p.signed_by(&key, &self.root).unwrap().der().to_vec();
            (vec![der, self.root_der.clone()], signer(&key))
        }

        /// A hems long-term device certificate at `level`; returns the
        /// chain (leaf, sector CA) and the device's key as a signer.
        pub fn device(
            &self,
            serial_label: &str,
            cert_serial: &[u8],
            level: u8,
        ) -> (Vec<Vec<u8>>, ring::signature::EcdsaKeyPair) {
            let key = KeyPair::generate().unwrap();
            let mut p = named(serial_label);
            p.is_ca = IsCa::ExplicitNoCa;
            p.serial_number = Some(SerialNumber::from_slice(cert_serial));
            p.subject_alt_names = vec![SanType::URI(
                format!("urn:trustca:{}:Acme:HB-1:{serial_label}", self.sector)
                    .try_into()
                    .unwrap(),
            )];
            p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            p.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ];
            p.custom_extensions.push(ext(
                &self.oid,
                self.sector,
                CertificateKind::LongTerm,
                Some(level),
            ));
            let der = p.signed_by(&key, &self.sector_ca).unwrap().der().to_vec();
            (vec![der, self.sector_ca_der.clone()], signer(&key))
        }
    }

    impl Pki {
        /// Signs `msg` with the root's key (ECDSA P-256, DER), as the
        /// root signs a trust list.
        pub fn root_sign(&self, msg: &[u8]) -> Vec<u8> {
            use rcgen::SigningKey;
            self.root.key().sign(msg).unwrap()
        }

        /// A CRL of the sector CA, valid around `now`, listing `serials`
        /// as revoked for key compromise.
        pub fn crl(&self, now: time::OffsetDateTime, serials: &[&[u8]]) -> Vec<u8> {
            rcgen::CertificateRevocationListParams {
                this_update: now - time::Duration::hours(1),
                next_update: now + time::Duration::days(1),
                crl_number: SerialNumber::from_slice(&[7]),
                issuing_distribution_point: None,
                revoked_certs: serials
                    .iter()
                    .map(|s| rcgen::RevokedCertParams {
                        serial_number: SerialNumber::from_slice(s),
                        revocation_time: now - time::Duration::minutes(30),
                        reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                        invalidity_date: None,
                    })
                    .collect(),
                key_identifier_method: rcgen::KeyIdMethod::Sha256,
            }
            .signed_by(&self.sector_ca)
            .unwrap()
            .der()
            .to_vec()
        }
    }

    fn signer(key: &KeyPair) -> ring::signature::EcdsaKeyPair {
        ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &key.serialize_der(),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap()
    }
}

const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

#[test]
fn signed_snapshot_verifies_and_detects_tampering() {
    let pki = pki::Pki::new();
    let (chain, key) = pki.service();
    let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
    let der = signed.to_der();
    let back = SignedSnapshot::from_der(&der).unwrap();
    assert_eq!(back, signed);
    assert_eq!(
        back.verify(&pki.root_der, NOW, &pki.oid, false).unwrap(),
        sample()
    );
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(SignedSnapshot::from_der(&trailing).is_err());
    for cut in [0, 1, der.len() / 2, der.len() - 1] {
        assert!(SignedSnapshot::from_der(&der[..cut]).is_err());
    }
    // One bit of the body, anywhere in the level of the listed device.
    let mut tampered = signed.clone();
    let n = tampered.body.len();
    tampered.body[n - 40] ^= 1;
    let e = tampered
        .verify(&pki.root_der, NOW, &pki.oid, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("signature does not verify"), "{e}");
    // Another root: the chain does not verify.
    let other = pki::Pki::new();
    let e = signed
        .verify(&other.root_der, NOW, &other.oid, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("signer certificate"), "{e}");
}

#[test]
fn p384_signer_is_refused() {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let e = SignedSnapshot::sign(&sample(), &key, vec![])
        .unwrap_err()
        .to_string();
    assert!(e.contains("P-256"), "{e}");
}

#[test]
fn wrong_signer_kind_is_refused() {
    let pki = pki::Pki::new();
    let (chain, key) = pki.device("SN1", &[0x11], 4);
    let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
    let e = signed
        .verify(&pki.root_der, NOW, &pki.oid, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("service certificate"), "{e}");
}

#[test]
fn stale_refused_unless_allowed_and_future_refused() {
    let pki = pki::Pki::new();
    let (chain, key) = pki.service();
    let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
    let late = datetime!(2026-11-25 10:00 UTC);
    let e = signed
        .verify(&pki.root_der, late, &pki.oid, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("stale") && e.contains("2026-11-24T10:00:00Z"),
        "{e}"
    );
    assert_eq!(
        signed.verify(&pki.root_der, late, &pki.oid, true).unwrap(),
        sample()
    );
    let early = datetime!(2026-11-23 09:54 UTC);
    let e = signed
        .verify(&pki.root_der, early, &pki.oid, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("future"), "{e}");
    assert!(
        signed
            .verify(
                &pki.root_der,
                datetime!(2026-11-23 09:56 UTC),
                &pki.oid,
                false
            )
            .is_ok()
    );
}

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
