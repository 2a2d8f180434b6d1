//! Hash-based CRLs (`scms/src/hash_crl.rs`): the CRL generator's register
//! lists a revoked vehicle's enrolment certificates and revoked CA
//! certificates on the series each names, drops expired entries, numbers
//! its lists; a list from a signer whose `CrlSsp` does not permit the
//! series is rejected; and the registration authority's IEEE 1609.2.1
//! interface refuses a request signed by a listed enrolment certificate
//! although the RA's own record of the vehicle is clean.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::{NOW, key};
use ring::signature::{EcdsaKeyPair, KeyPair};
use trustca_pseudonym::{Caterpillar, P256PrivateKey};
use trustca_scms::{
    EeInterface, EeRefusal, HashCrl, HashCrlRegister, HashCrlSet, LocalDeployment, RaIdentity,
    TicketProfile,
};
use trustca_store::{SledStorage, Storage};
use trustca_v2x::{
    CRL_PSID, CertProfile, Certificate, CertificateId, CracaType, CrlBody, CrlContents, CrlSsp,
    Duration, HashIdCrl, PsidGroupPermissions, PsidSsp, PublicKeyP256, Ssp, SubjectAssurance,
    Time32, ToBeSigned, ValidityPeriod,
};

const CA_SERIES: u16 = 2;
const EC_SERIES: u16 = 3;

fn public(k: &EcdsaKeyPair) -> PublicKeyP256 {
    PublicKeyP256::from_sec1(k.public_key().as_ref()).unwrap()
}

fn validity(from: i64, hours: u16) -> ValidityPeriod {
    ValidityPeriod {
        start: Time32::from_unix(from).unwrap(),
        duration: Duration::Hours(hours),
    }
}

/// A root (the CRACA), an ECA under it, and the keys.
struct Pki {
    root: Certificate,
    root_key: EcdsaKeyPair,
    eca: Certificate,
    eca_key: EcdsaKeyPair,
}

fn pki() -> Pki {
    let (root_key, eca_key) = (key(), key());
    let root = Certificate::sign_root(
        ToBeSigned::ca(
            "root.v2x.test",
            public(&root_key),
            validity(NOW - 86_400, 60_000),
            vec![PsidGroupPermissions::all(
                2,
                PsidGroupPermissions::EE_APP | PsidGroupPermissions::EE_ENROL,
            )],
        ),
        &root_key,
    )
    .unwrap();
    let mut tbs = ToBeSigned::ca(
        "eca.v2x.test",
        public(&eca_key),
        validity(NOW - 86_400, 50_000),
        vec![PsidGroupPermissions::all(1, PsidGroupPermissions::EE_ENROL)],
    );
    tbs.craca_id = root.hashed_id3();
    tbs.crl_series = CA_SERIES;
    let eca = Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs, &root, &root_key).unwrap();
    Pki {
        root,
        root_key,
        eca,
        eca_key,
    }
}

/// A CRL signer under the root permitted `series` (`issuerIsCraca`).
fn crl_signer(p: &Pki, series: &[u16]) -> (Certificate, EcdsaKeyPair) {
    let k = key();
    let ssp = CrlSsp {
        associated_craca: CracaType::IssuerIsCraca,
        crls: series.to_vec(),
    };
    let mut tbs = ToBeSigned::new(
        CertificateId::Name("crl.v2x.test".into()),
        validity(NOW - 86_400, 40_000),
        public(&k),
    );
    tbs.craca_id = p.root.hashed_id3();
    tbs.crl_series = CA_SERIES;
    tbs.app_permissions = Some(vec![PsidSsp {
        psid: CRL_PSID,
        ssp: Some(Ssp::Opaque(ssp.to_coer())),
    }]);
    let c = Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs, &p.root, &p.root_key).unwrap();
    (c, k)
}

/// An enrolment certificate of `vehicle` valid for `hours` from a day ago.
fn ec(p: &Pki, vehicle: &str, hours: u16) -> (Certificate, EcdsaKeyPair) {
    let k = key();
    let mut tbs = ToBeSigned::new(
        CertificateId::Name(vehicle.into()),
        validity(NOW - 86_400, hours),
        public(&k),
    );
    tbs.craca_id = p.root.hashed_id3();
    tbs.crl_series = EC_SERIES;
    tbs.assurance_level = Some(SubjectAssurance::from_trust_level(4).unwrap());
    tbs.cert_request_permissions = Some(vec![PsidGroupPermissions::all(
        1,
        PsidGroupPermissions::EE_APP,
    )]);
    let c = Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs, &p.eca, &p.eca_key).unwrap();
    (c, k)
}

/// A list of `series` naming `certificates`, signed now for a day.
fn listing(
    certificates: &[&Certificate],
    series: u16,
    serial: u32,
    signer: (&Certificate, &EcdsaKeyPair),
) -> HashCrl {
    let entries = certificates
        .iter()
        .map(|c| trustca_v2x::HashRevocation::of(c).unwrap())
        .collect();
    HashCrl::sign(
        series,
        serial,
        entries,
        signer.0,
        signer.1,
        (NOW, NOW + 86_400),
    )
    .unwrap()
}

fn store(dir: &std::path::Path) -> Arc<dyn Storage> {
    Arc::new(SledStorage::open(dir).unwrap())
}

#[test]
fn a_revoked_vehicle_s_enrolment_certificates_are_listed_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let (signer, signer_key) = crl_signer(&p, &[CA_SERIES, EC_SERIES]);
    let register = HashCrlRegister::new(store(dir.path()));
    let (short, _) = ec(&p, "V-1", 48); // expires a day from NOW
    let (long, _) = ec(&p, "V-1", 30_000);
    let (other, _) = ec(&p, "V-2", 30_000);
    for (v, c) in [("V-1", &short), ("V-1", &long), ("V-2", &other)] {
        register.record_issued(v, c, NOW).unwrap();
    }
    let empty = register
        .sign(EC_SERIES, &signer, &signer_key, NOW, 7 * 86_400)
        .unwrap();
    assert!(empty.entries.is_empty());
    assert_eq!(empty.crl_serial, 1);

    assert_eq!(register.revoke_vehicle("V-1", "ops", NOW).unwrap(), 2);
    let crl = register
        .sign(EC_SERIES, &signer, &signer_key, NOW, 7 * 86_400)
        .unwrap();
    assert_eq!(crl.crl_serial, 2, "every list of a series has a new serial");
    assert_eq!(crl.entries.len(), 2);
    crl.verify(&p.root).unwrap();
    assert!(crl.lists(&short) && crl.lists(&long));
    assert!(!crl.lists(&other), "another vehicle's certificate");
    assert_eq!(crl.crl_craca, p.root.hashed_id8(), "the root is the CRACA");
    // The list names the certificate's expiry, and the COER round trips.
    let again = HashCrl::from_bytes(crl.as_bytes()).unwrap();
    assert_eq!(again, crl);
    assert!(
        crl.entries
            .contains(&trustca_v2x::HashRevocation::of(&short).unwrap())
    );
    // Nothing of series 3 on the CA certificate list.
    let ca_list = register
        .sign(CA_SERIES, &signer, &signer_key, NOW, 7 * 86_400)
        .unwrap();
    assert!(ca_list.entries.is_empty());
    assert!(!ca_list.lists(&long), "a list covers only its own series");

    // Two days on, the short one has expired and drops off.
    let later = register
        .sign(
            EC_SERIES,
            &signer,
            &signer_key,
            NOW + 2 * 86_400,
            7 * 86_400,
        )
        .unwrap();
    assert_eq!(later.entries.len(), 1);
    assert!(later.lists(&long) && !later.lists(&short));
    // Revoking again lists nothing new twice; an unknown vehicle nothing.
    assert_eq!(register.revoke_vehicle("V-1", "ops", NOW).unwrap(), 2);
    assert_eq!(register.revoke_vehicle("V-9", "ops", NOW).unwrap(), 0);
    // Both revoked vehicles may not enrol again; the other one may.
    assert!(register.vehicle_revoked("V-1").unwrap());
    assert!(register.vehicle_revoked("V-9").unwrap());
    assert!(!register.vehicle_revoked("V-2").unwrap());
    assert_eq!(register.entries(EC_SERIES, NOW).unwrap().len(), 2);
}

#[test]
fn a_revoked_ca_certificate_is_on_the_ca_certificate_list() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let (signer, signer_key) = crl_signer(&p, &[CA_SERIES, EC_SERIES]);
    let s = store(dir.path());
    let register = HashCrlRegister::new(Arc::clone(&s));
    register
        .revoke_certificate(&p.eca, "key compromise", "ops", NOW)
        .unwrap();
    let crl = register
        .sign(CA_SERIES, &signer, &signer_key, NOW, 86_400)
        .unwrap();
    crl.verify(&p.root).unwrap();
    assert!(crl.lists(&p.eca));
    // Audited with who and why.
    let audit = s.audit_entries(0, 100).unwrap();
    let entry = audit
        .iter()
        .find(|a| a.kind == "v2x.ca-certificate.revoked")
        .expect("audited");
    assert_eq!(entry.actor, "ops");
    assert!(entry.detail.contains("key compromise"), "{}", entry.detail);
    // An expired CA certificate is on no list.
    assert!(
        register
            .revoke_certificate(&p.eca, "late", "ops", NOW + 400 * 86_400 * 10)
            .is_err()
    );
}

#[test]
fn a_list_from_a_signer_not_permitted_its_series_is_rejected() {
    let p = pki();
    let (signer, signer_key) = crl_signer(&p, &[1]);
    let contents = CrlContents {
        crl_series: EC_SERIES,
        crl_craca: p.root.hashed_id8(),
        issue_date: Time32::from_unix(NOW).unwrap(),
        next_crl: Time32::from_unix(NOW + 86_400).unwrap(),
        priority: None,
        body: CrlBody::FullHash(HashIdCrl {
            crl_serial: 7,
            entries: vec![],
        }),
    };
    // Our signer refuses to sign it ...
    assert!(HashCrl::sign(EC_SERIES, 7, vec![], &signer, &signer_key, (NOW, NOW + 60)).is_err());
    // ... and a list someone else signed that way is not accepted.
    let forged = trustca_v2x::SignedSpdu::sign(
        &contents.to_coer().unwrap(),
        CRL_PSID,
        None,
        &signer,
        &signer_key,
    )
    .unwrap();
    let crl = HashCrl::from_bytes(forged.as_coer()).unwrap();
    let e = crl.verify(&p.root).unwrap_err();
    assert!(
        e.to_string().contains("may not sign this CRL series"),
        "{e}"
    );
    let set = HashCrlSet::new(p.root.clone());
    assert!(set.accept(crl).is_err());

    // A permitted list is accepted; an older serial of it is not.
    let (good, good_key) = crl_signer(&p, &[EC_SERIES]);
    let (listed, _) = ec(&p, "V-1", 30_000);
    let newer = listing(&[&listed], EC_SERIES, 8, (&good, &good_key));
    let older = HashCrl::sign(EC_SERIES, 7, vec![], &good, &good_key, (NOW, NOW + 60)).unwrap();
    assert!(set.accept(newer).unwrap());
    assert!(
        set.accept(older).is_err(),
        "an older list un-revokes nothing"
    );
    assert_eq!(set.revoking(&listed).unwrap(), Some((EC_SERIES, 8)));
}

#[test]
fn the_ra_refuses_a_request_signed_by_a_listed_enrolment_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let h = common::hierarchy_with_crl_signer();
    let profile = TicketProfile::default();
    let d = LocalDeployment::open_with_crl_signer(
        dir.path(),
        profile.clone(),
        trustca_scms::BatchPolicy {
            min_vehicles: 1,
            max_wait_secs: 0,
            max_requests_per_batch: 10_000,
        },
        Arc::new(h.pca_key),
        h.pca.clone(),
        (Arc::new(h.crl_key), h.crl),
    )
    .unwrap();
    // The RA's 1609.2 identity under the same root as the ECA.
    let (ra_key, ra_enc) = (key(), P256PrivateKey::generate().unwrap());
    let mut tbs = ToBeSigned::new(
        CertificateId::Name("ra.v2x.test".into()),
        validity(NOW - 86_400, 40_000),
        public(&ra_key),
    );
    tbs.craca_id = p.root.hashed_id3();
    tbs.app_permissions = Some(vec![PsidSsp {
        psid: trustca_v2x::SECURITY_MGMT_PSID,
        ssp: Some(Ssp::Opaque(trustca_v2x::RA_SSP.to_vec())),
    }]);
    tbs.encryption_key =
        Some(PublicKeyP256::from_sec1(&ra_enc.public_key().to_sec1_uncompressed()).unwrap());
    let ra_cert =
        Certificate::issue_in(CertProfile::Ieee1609Dot2, tbs, &p.root, &p.root_key).unwrap();
    let ee = EeInterface::new(
        Arc::clone(&d.ra),
        RaIdentity {
            certificate: ra_cert.clone(),
            signer: Arc::new(ra_key),
            decryption_key: ra_enc.to_bytes(),
        },
        p.eca.clone(),
        &[p.root.clone(), p.eca.clone(), ra_cert.clone()],
        0,
    );
    let psids: Vec<u64> = profile
        .permissions_for(4)
        .unwrap()
        .iter()
        .map(|x| x.psid)
        .collect();
    let request = |ec: &(Certificate, EcdsaKeyPair), hours_ahead: i64| {
        let c = Caterpillar::generate().unwrap();
        trustca_scms::ee_requests::ticket_request(
            &c.request(),
            &psids,
            validity(NOW + hours_ahead * 3600, 1),
            (&ec.0, &ec.1),
            &ra_cert,
            NOW,
        )
        .unwrap()
        .0
    };
    let (listed, clean) = (ec(&p, "V-1", 30_000), ec(&p, "V-2", 30_000));
    ee.certificate_request(&request(&listed, 0), NOW)
        .expect("not listed yet: accepted");

    let signer = crl_signer(&p, &[EC_SERIES]);
    let crl = listing(&[&listed.0], EC_SERIES, 1, (&signer.0, &signer.1));
    assert!(ee.accept_hash_crl(crl).unwrap());
    // V-1 is not revoked at the RA: the refusal is the CRL's.
    match ee.certificate_request(&request(&listed, 200), NOW) {
        Err(EeRefusal::Forbidden(m)) => {
            assert!(m.contains("hash CRL of crlSeries 3"), "{m}")
        }
        other => panic!("a listed enrolment certificate got {other:?}"),
    }
    ee.certificate_request(&request(&clean, 0), NOW)
        .expect("an unlisted vehicle is still served");

    // The ECA itself on the CA certificate list: every EC under it is refused.
    let signer = crl_signer(&p, &[CA_SERIES]);
    let crl = listing(&[&p.eca], CA_SERIES, 1, (&signer.0, &signer.1));
    assert!(ee.accept_hash_crl(crl).unwrap());
    match ee.certificate_request(&request(&clean, 400), NOW) {
        Err(EeRefusal::Forbidden(m)) => assert!(m.contains("enrolment CA"), "{m}"),
        other => panic!("an EC under a revoked ECA got {other:?}"),
    }
}

/// The register is one of the store's vouched spaces: a revocation deleted
/// from it behind the CA's back (here from the stopped store's sled tree)
/// is refused when the list is built, never left off a signed list.
#[test]
fn a_revocation_deleted_from_the_register_is_refused_not_signed() {
    assert!(trustca_store::VOUCHED_SPACES.contains(&trustca_scms::hash_crl::SPACE));
    let dir = tempfile::tempdir().unwrap();
    let p = pki();
    let sealed = |dir: &std::path::Path| {
        let s = store(dir);
        let seal = trustca_store::RecordSeal::new(&[9; 32]);
        seal.learn_floors(s.as_ref()).unwrap();
        s.set_record_seal(Arc::new(seal));
        s
    };
    {
        let register = HashCrlRegister::new(sealed(dir.path()));
        let (c, _) = ec(&p, "V-1", 30_000);
        register.record_issued("V-1", &c, NOW).unwrap();
        assert_eq!(register.revoke_vehicle("V-1", "ops", NOW).unwrap(), 1);
        assert_eq!(register.entries(EC_SERIES, NOW).unwrap().len(), 1);
    }
    {
        let db = trustca_store::raw_sled_config(dir.path()).open().unwrap();
        let blobs = db.open_tree("blobs").unwrap();
        let prefix = [trustca_scms::hash_crl::SPACE.as_bytes(), b"\0r/"].concat();
        let (key, _) = blobs.scan_prefix(&prefix).next().unwrap().unwrap();
        blobs.remove(key).unwrap();
        db.flush().unwrap();
    }
    let register = HashCrlRegister::new(sealed(dir.path()));
    let err = register.entries(EC_SERIES, NOW).unwrap_err().to_string();
    assert!(
        err.contains("v2x.hash-crl") && err.contains("deleted"),
        "{err}"
    );
}
