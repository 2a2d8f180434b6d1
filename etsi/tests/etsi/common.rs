//! Test kit: a TS 103 097 hierarchy made with fresh keys, and the
//! independent checkers (rasn-its; Python asn1tools + cryptography).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use trustca_etsi::profile;
use trustca_scms::TicketProfile;
use trustca_v2x::{
    Certificate, Duration, PublicKeyP256, SubjectAssurance, Time32, ValidityPeriod,
    encryption_public_key,
};

/// The shipped EU ticket profile.
pub fn etsi_tickets() -> TicketProfile {
    TicketProfile::from_toml(include_str!("../../../policies/v2x-tickets-etsi.toml")).unwrap()
}

pub fn signing_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let alg = &ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    KEYS.with(|k| {
        k.borrow_mut()
            .insert(key.public_key().as_ref().to_vec(), pkcs8.as_ref().to_vec())
    });
    key
}

pub fn public(key: &EcdsaKeyPair) -> PublicKeyP256 {
    PublicKeyP256::from_sec1(key.public_key().as_ref()).unwrap()
}

/// A fresh P-256 encryption secret and its public key.
pub fn encryption_key() -> ([u8; 32], PublicKeyP256) {
    loop {
        let mut s = [0u8; 32];
        SystemRandom::new().fill(&mut s).unwrap();
        if let Ok(p) = encryption_public_key(&s) {
            return (s, p);
        }
    }
}

/// Root, EA and AA with their keys.
pub struct Hierarchy {
    pub root: Certificate,
    pub root_key: EcdsaKeyPair,
    pub ea: Certificate,
    pub ea_key: EcdsaKeyPair,
    pub ea_enc: [u8; 32],
    pub aa: Certificate,
    pub aa_key: EcdsaKeyPair,
    pub aa_enc: [u8; 32],
    pub tickets: TicketProfile,
}

/// From 2026-01-01 for five years.
pub fn ca_validity() -> ValidityPeriod {
    ValidityPeriod {
        start: Time32::from_datetime(time::macros::datetime!(2026-01-01 0:00 UTC)).unwrap(),
        duration: Duration::Years(5),
    }
}

impl Hierarchy {
    pub fn new() -> Self {
        let tickets = etsi_tickets();
        let level4 = SubjectAssurance::from_trust_level(4).unwrap();
        let root_key = signing_key();
        let root = Certificate::sign_root(
            profile::root_ca("root.etsi.test", public(&root_key), ca_validity(), level4),
            &root_key,
        )
        .unwrap();
        let ea_key = signing_key();
        let (ea_enc, ea_enc_pub) = encryption_key();
        let ea = Certificate::issue(
            profile::enrolment_authority(
                "ea.etsi.test",
                public(&ea_key),
                ea_enc_pub,
                ca_validity(),
                level4,
            ),
            &root,
            &root_key,
        )
        .unwrap();
        let aa_key = signing_key();
        let (aa_enc, aa_enc_pub) = encryption_key();
        let aa = Certificate::issue(
            profile::authorization_authority(
                "aa.etsi.test",
                public(&aa_key),
                aa_enc_pub,
                ca_validity(),
                level4,
                &tickets,
            ),
            &root,
            &root_key,
        )
        .unwrap();
        Self {
            root,
            root_key,
            ea,
            ea_key,
            ea_enc,
            aa,
            aa_key,
            aa_enc,
            tickets,
        }
    }
}

// ------------------------------------------------ independent checkers

pub use trustca_testkit::asn1_dir;

/// Whether the asn1tools checks of the TS 102 941 messages can run (the
/// kit's one rule: skipped loudly, required under TRUSTCA_REQUIRE_INTEROP=1).
pub fn python_can_run() -> bool {
    trustca_testkit::asn1tools_ready(&["TS102941v131-MessagesCa.asn"], &[])
}

/// Runs the v2x crate's independent certificate checker
/// (`v2x/tests/independent.py`) on `files` (all in the ETSI profile);
/// returns its output.
pub fn independent_certificate_check(files: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../v2x/tests/independent.py"
        ))
        .args(files)
        .env("V2X_ASN1_DIR", asn1_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "independent check failed:\n{text}");
    text
}

/// Decodes `bytes` with rasn-its as an IEEE 1609.2 certificate, checks the
/// ETSI TS 103 097 constraints with rasn-its's own
/// `EtsiTs103097Certificate` and that rasn-its re-encodes the same bytes.
pub fn rasn_its_certificate(bytes: &[u8]) -> rasn_its::ts103097::EtsiTs103097Certificate {
    let (cert, rest) =
        rasn::coer::decode_with_remainder::<rasn_its::ieee1609dot2::Certificate>(bytes).unwrap();
    assert!(rest.is_empty(), "{} octets left", rest.len());
    assert_eq!(
        rasn::coer::encode(&cert).unwrap(),
        bytes,
        "rasn-its re-encoding"
    );
    rasn_its::ts103097::EtsiTs103097Certificate::try_from(cert)
        .expect("rasn-its rejects the TS 103 097 profile")
}

// ------------------------------------------------ authorities

use std::sync::{Arc, Mutex};

use trustca_etsi::EtsiError;
use trustca_etsi::aa::{AuthorizationAuthority, EaLink, KnownEa};
use trustca_etsi::ea::{EnrolmentAuthority, Station};
use trustca_etsi::memory::{MemoryCredentials, MemoryStations};

/// The canonical identifier the tests' manufacturer registers.
pub const ITS_ID: &[u8] = b"urn:trustca:automotive:acme:roadster:0001";

/// An EA link that calls the EA in-process and keeps every message the EA
/// received and answered (for the privacy tests).
pub struct InProcessEa {
    pub ea: Arc<EnrolmentAuthority>,
    pub now: i64,
    pub seen: Mutex<Vec<Vec<u8>>>,
}

impl EaLink for InProcessEa {
    fn validate(&self, message: &[u8]) -> Result<Vec<u8>, EtsiError> {
        self.seen.lock().unwrap().push(message.to_vec());
        self.ea
            .answer_validation(message, self.now)
            .map(|a| a.message)
            .map_err(|u| EtsiError::Profile(u.0.into()))
    }
}

/// A running EU deployment in memory: the hierarchy, one registered
/// station (canonical key, level 4), the EA and the AA linked in-process.
pub struct Deployment {
    pub h: Hierarchy,
    pub canonical_key: EcdsaKeyPair,
    pub stations: Arc<MemoryStations>,
    pub credentials: Arc<MemoryCredentials>,
    pub ea: Arc<EnrolmentAuthority>,
    pub link: Arc<InProcessEa>,
    pub aa: AuthorizationAuthority,
    pub now: i64,
}

/// 2026-06-01T00:00:00Z, inside the hierarchy's validity.
pub const NOW: i64 = 1_780_272_000;

impl Deployment {
    pub fn new() -> Self {
        let h = Hierarchy::new();
        let canonical_key = signing_key();
        let stations = Arc::new(MemoryStations::default());
        stations.register(
            ITS_ID,
            Station {
                canonical_key: public(&canonical_key),
                trust_level: 4,
                active: true,
            },
        );
        let credentials = Arc::new(MemoryCredentials::default());
        let ea = Arc::new(EnrolmentAuthority::new(
            h.ea.clone(),
            Arc::new(clone_key(&h.ea_key)),
            h.ea_enc,
            h.root.clone(),
            stations.clone(),
            credentials.clone(),
        ));
        let link = Arc::new(InProcessEa {
            ea: ea.clone(),
            now: NOW,
            seen: Mutex::new(Vec::new()),
        });
        let aa = AuthorizationAuthority::new(
            h.aa.clone(),
            Arc::new(clone_key(&h.aa_key)),
            h.aa_enc,
            h.tickets.clone(),
            vec![KnownEa {
                certificate: h.ea.clone(),
                link: link.clone(),
            }],
        )
        .unwrap();
        Self {
            h,
            canonical_key,
            stations,
            credentials,
            ea,
            link,
            aa,
            now: NOW,
        }
    }
}

/// A second handle on a key made by [`signing_key`] (ring keys cannot be
/// cloned; this re-reads the PKCS#8 it kept).
pub fn clone_key(key: &EcdsaKeyPair) -> EcdsaKeyPair {
    KEYS.with(|k| {
        let pk = key.public_key().as_ref().to_vec();
        let map = k.borrow();
        let pkcs8 = map.get(&pk).expect("a key made by signing_key");
        EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8,
            &SystemRandom::new(),
        )
        .unwrap()
    })
}

thread_local! {
    static KEYS: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Vec<u8>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The CAM permission a station asks for.
pub fn cam() -> Vec<trustca_v2x::PsidSsp> {
    vec![trustca_v2x::PsidSsp {
        psid: 36,
        ssp: Some(trustca_v2x::Ssp::Bitmap(vec![1, 0, 0])),
    }]
}

/// Enrols `d`'s station with its canonical key; the credential and its key.
pub fn enrol(d: &Deployment) -> (Certificate, EcdsaKeyPair) {
    use trustca_etsi::station::{EnrolAs, enrolment_request, enrolment_response};
    use trustca_v2x::ts102941::EnrolmentResponseCode as Ec;
    let ec_key = signing_key();
    let who = EnrolAs::Canonical {
        its_id: ITS_ID,
        key: &d.canonical_key,
    };
    let pending = enrolment_request(who, &ec_key, cam(), &d.h.ea, d.now).unwrap();
    let answer = d.ea.answer_enrolment(&pending.message, d.now).unwrap();
    assert_eq!(answer.code, Ec::Ok);
    let response = enrolment_response(&pending, &answer.message, &d.h.ea).unwrap();
    assert_eq!(response.response_code, Ec::Ok);
    (response.certificate.unwrap(), ec_key)
}

/// A trust list manager with a fresh key.
pub fn tlm() -> (Certificate, EcdsaKeyPair) {
    let key = signing_key();
    let level4 = SubjectAssurance::from_trust_level(4).unwrap();
    let tbs = profile::trust_list_manager("tlm.etsi.test", public(&key), ca_validity(), level4);
    (Certificate::sign_root(tbs, &key).unwrap(), key)
}

/// An ECTL's entries recognising the roots of `a` and `b`, and a DC.
pub fn ectl_entries(a: &Hierarchy, b: &Hierarchy) -> Vec<trustca_v2x::trust_lists::CtlEntry> {
    use trustca_v2x::trust_lists::CtlEntry;
    vec![
        CtlEntry::Rca {
            certificate: a.root.clone(),
            link: None,
        },
        CtlEntry::Rca {
            certificate: b.root.clone(),
            link: None,
        },
        CtlEntry::Dc {
            url: "http://dc.example/etsi/dc/".into(),
            roots: vec![a.root.hashed_id8(), b.root.hashed_id8()],
        },
    ]
}
