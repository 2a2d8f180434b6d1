//! The TS 103 097 certificate profiles: what each certificate carries,
//! checked from our decoder, from rasn-its (an independent codec with its
//! own `EtsiTs103097Certificate` constraint check) and from Python
//! asn1tools + cryptography (`v2x/tests/independent.py`: decodes every file
//! as `EtsiTs103097Certificate` from the published modules, re-encodes it
//! byte for byte, checks the profile and verifies each signature).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use rasn_its::ieee1609dot2::base_types::ServiceSpecificPermissions;
use rasn_its::ieee1609dot2::{CertificateId as RasnId, IssuerIdentifier as RasnIssuer};
use trustca_etsi::{EtsiError, profile};
use trustca_scms::TicketProfile;
use trustca_v2x::{
    CertProfile, Certificate, CertificateId, PsidGroupPermissions, Ssp, SubjectAssurance,
};

fn ticket(h: &Hierarchy, level: u8, period: u64) -> Result<Certificate, EtsiError> {
    let key = signing_key();
    let tbs = profile::authorization_ticket(&h.tickets, public(&key), level, period)?;
    Ok(Certificate::issue(tbs, &h.aa, &h.aa_key)?)
}

#[test]
fn tickets_have_no_id_no_craca_no_crl_series_and_the_level_as_assurance() {
    let h = Hierarchy::new();
    let period = h.tickets.period_at(1_780_000_000).unwrap();
    for level in 2..=5u8 {
        let at = ticket(&h, level, period).unwrap();
        let tbs = at.tbs();
        assert_eq!(tbs.id, CertificateId::None);
        assert_eq!(tbs.craca_id, [0; 3]);
        assert_eq!(tbs.crl_series, 0);
        assert_eq!(tbs.assurance_level.unwrap().trust_level(), Some(level));
        assert!(tbs.encryption_key.is_none() && tbs.cert_issue_permissions.is_none());
        // Short-lived: one period plus the overlap on both sides.
        assert_eq!(tbs.validity, h.tickets.validity(period).unwrap());
        assert_eq!(
            tbs.validity.duration.as_seconds(),
            (168 + 2) * 3600,
            "a week and two hours"
        );
        assert_eq!(
            tbs.app_permissions.as_ref().unwrap(),
            &h.tickets.permissions_for(level).unwrap()
        );
        at.verify_signed_by(Some(&h.aa)).unwrap();
        assert!(at.conforms_to(CertProfile::EtsiTs103097));
    }
    // The table grades: Lv.2 gets CAM only, Lv.4 also DENM and CPM.
    let psids = |level| {
        let at = ticket(&h, level, period).unwrap();
        let v: Vec<u64> = at
            .tbs()
            .app_permissions
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.psid)
            .collect();
        v
    };
    assert_eq!(psids(2), vec![36]);
    assert_eq!(psids(4), vec![36, 37, 639]);
}

#[test]
fn refused_tickets_name_the_reason() {
    let h = Hierarchy::new();
    // Lv.1 gets no tickets.
    let err = ticket(&h, 1, 100).unwrap_err().to_string();
    assert!(err.contains("below the minimum"), "{err}");
    // An SCMS profile cannot make TS 103 097 tickets.
    let scms = TicketProfile::default();
    let err = profile::authorization_ticket(&scms, public(&signing_key()), 3, 100)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not \"etsi-ts-103-097\""), "{err}");
    // A period past iCert's range.
    assert!(ticket(&h, 3, 70_000).is_err());
}

#[test]
fn root_may_sign_ctls_and_crls_and_the_authorities_carry_encryption_keys() {
    let h = Hierarchy::new();
    let root = h.root.tbs();
    let apps = root.app_permissions.as_ref().unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0].psid, 622);
    assert_eq!(apps[0].ssp, Some(Ssp::Opaque(vec![1])));
    assert_eq!(apps[1].psid, 624);
    assert_eq!(apps[1].ssp, Some(Ssp::Opaque(vec![1, 0x38])));
    assert!(root.encryption_key.is_none());
    assert_eq!(root.id, CertificateId::Name("root.etsi.test".into()));
    for (ca, ee) in [
        (&h.ea, PsidGroupPermissions::EE_ENROL),
        (&h.aa, PsidGroupPermissions::EE_APP),
    ] {
        let tbs = ca.tbs();
        assert!(tbs.encryption_key.is_some());
        assert_eq!(tbs.craca_id, [0; 3]);
        assert_eq!(tbs.crl_series, 0);
        assert_eq!(tbs.cert_issue_permissions.as_ref().unwrap()[0].ee_type, ee);
        assert_eq!(tbs.app_permissions.as_ref().unwrap()[0].psid, 623);
        ca.verify_signed_by(Some(&h.root)).unwrap();
    }
    // The AA may issue exactly what the ticket table grants.
    h.tickets.check_issuable(&h.aa).unwrap();
}

#[test]
fn enrolment_credentials_carry_the_level_and_may_only_request() {
    let h = Hierarchy::new();
    let key = signing_key();
    let ec = Certificate::issue(
        profile::enrolment_credential(public(&key), ca_validity(), 3).unwrap(),
        &h.ea,
        &h.ea_key,
    )
    .unwrap();
    assert_eq!(ec.tbs().id, CertificateId::None);
    assert_eq!(
        ec.tbs().assurance_level,
        Some(SubjectAssurance::from_trust_level(3).unwrap())
    );
    let apps = ec.tbs().app_permissions.as_ref().unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].psid, 623);
    assert!(profile::enrolment_credential(public(&key), ca_validity(), 6).is_err());
}

#[test]
fn rasn_its_reads_every_certificate_as_etsi_ts_103_097() {
    let h = Hierarchy::new();
    let at = ticket(&h, 4, 150).unwrap();
    let ec_key = signing_key();
    let ec = Certificate::issue(
        profile::enrolment_credential(public(&ec_key), ca_validity(), 4).unwrap(),
        &h.ea,
        &h.ea_key,
    )
    .unwrap();
    for cert in [&h.root, &h.ea, &h.aa, &ec, &at] {
        let r = rasn_its_certificate(cert.as_coer());
        assert_eq!(r.to_be_signed.craca_id.0.as_slice(), &[0, 0, 0]);
        assert_eq!(r.to_be_signed.crl_series.0, 0);
    }
    let r = rasn_its_certificate(at.as_coer());
    assert!(matches!(r.to_be_signed.id, RasnId::None(_)));
    assert!(
        matches!(r.issuer, RasnIssuer::Sha256AndDigest(ref d) if d.0.as_slice() == h.aa.hashed_id8())
    );
    assert_eq!(
        r.to_be_signed
            .assurance_level
            .as_ref()
            .unwrap()
            .0
            .as_slice(),
        &[0x80]
    );
    let root = rasn_its_certificate(h.root.as_coer());
    let perms = root.to_be_signed.app_permissions.as_ref().unwrap();
    let ctl = perms.0.iter().find(|p| p.psid.0 == 624u32.into()).unwrap();
    assert!(
        matches!(&ctl.ssp, Some(ServiceSpecificPermissions::Opaque(o)) if o.as_ref() == [1, 0x38])
    );
    for ca in [&h.ea, &h.aa] {
        assert!(
            rasn_its_certificate(ca.as_coer())
                .to_be_signed
                .encryption_key
                .is_some()
        );
    }
}

#[test]
fn asn1tools_decodes_and_verifies_every_certificate() {
    if !python_can_run() {
        return;
    }
    let h = Hierarchy::new();
    let dir = tempfile::tempdir().unwrap();
    let ec_key = signing_key();
    let ec = Certificate::issue(
        profile::enrolment_credential(public(&ec_key), ca_validity(), 2).unwrap(),
        &h.ea,
        &h.ea_key,
    )
    .unwrap();
    let mut files = Vec::new();
    let mut named = vec![
        ("root", h.root.clone()),
        ("ea", h.ea.clone()),
        ("aa", h.aa.clone()),
    ];
    named.push(("ec", ec));
    for level in 2..=5 {
        named.push(("at", ticket(&h, level, 120).unwrap()));
    }
    for (i, (name, cert)) in named.iter().enumerate() {
        let path = dir.path().join(format!("{i}-{name}.coer"));
        std::fs::write(&path, cert.as_coer()).unwrap();
        files.push(path);
    }
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let out = independent_certificate_check(&refs);
    // One line per file, each with its signature checked.
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(out.contains(&name), "{name} not reported:\n{out}");
    }
}
