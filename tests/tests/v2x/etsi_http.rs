//! The EU C-ITS authorities over HTTP, end to end: a real CA server
//! enrols a car (its X.509 device credential and trust record); its
//! manufacturer registers the car's canonical key; the enrolment authority
//! and the authorization authority listen on 127.0.0.1 port 0 each, with
//! their own keys, the AA reaching the EA only over HTTP; and an ITS
//! station written in Python from the ASN.1 modules alone
//! (`etsi_station.py`: asn1tools + cryptography, no trustca code) enrols,
//! obtains an authorization ticket and checks every signature. The
//! station's credential and ticket carry the car's trust level from the
//! CA's store; rasn-its then reads both as `EtsiTs103097Certificate`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use tokio_util::sync::CancellationToken;
use trustca_etsi::aa::{AuthorizationAuthority, KnownEa};
use trustca_etsi::ea::EnrolmentAuthority;
use trustca_etsi::profile;
use trustca_etsi::trust_lists;
use trustca_model::CertificateKind;
use trustca_scms::TicketProfile;
use trustca_server::etsi::http::{
    AUTHORIZATION_PATH, CTL_PREFIX, ENROLMENT_PATH, EtsiHttp, HttpEaLink, PublishedLists,
    REQUEST_TYPE, VALIDATION_PATH, spawn,
};
use trustca_server::etsi::{StoreCredentials, StoreStations, register_canonical_key};
use trustca_store::Storage;
use trustca_v2x::trust_lists::CtlEntry;
use trustca_v2x::{
    Certificate, Duration, PublicKeyP256, SubjectAssurance, Time32, ValidityPeriod,
    encryption_public_key,
};

fn key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap()
}

fn public(k: &EcdsaKeyPair) -> PublicKeyP256 {
    PublicKeyP256::from_sec1(k.public_key().as_ref()).unwrap()
}

fn secret() -> ([u8; 32], PublicKeyP256) {
    loop {
        let mut s = [0u8; 32];
        SystemRandom::new().fill(&mut s).unwrap();
        if let Ok(p) = encryption_public_key(&s) {
            return (s, p);
        }
    }
}

/// Enrols the automotive device `serial` of Acme with the real CA and
/// returns its URN and the CA's store (the server stopped, so the test
/// opens it).
pub(crate) async fn enrolled_car(serial: &str) -> (TestCa, String, Arc<dyn Storage>) {
    let mut ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let mut client = ca.client(&acme).await;
    // Lv.5 from the registered model (declared hardware counts up to Lv.3
    // in automotive).
    register_automotive_lv5(&ca, &acme, "Acme", "Roadster").await;
    let car = enroll_device(
        &mut client,
        &ca.root_pem(),
        "automotive",
        "Acme",
        "Roadster",
        serial,
        "1.0.0",
        vec![],
    )
    .await;
    drop(client);
    ca.stop().await;
    let store: Arc<dyn Storage> =
        Arc::new(trustca_store::SledStorage::open(&ca.data().join("db")).unwrap());
    (ca, car.identity, store)
}

pub(crate) fn run_station(args: &[String]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/v2x/etsi_station.py"
        ))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "station failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

pub(crate) fn python_ready() -> bool {
    common::python_ready(&["asn1tools", "cryptography"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_station_enrols_and_obtains_a_ticket_over_http() {
    if !python_ready() {
        return;
    }
    let (ca, urn, store) = enrolled_car("VIN0001").await;
    assert!(urn.starts_with("urn:trustca:automotive:"), "{urn}");
    let identity = trustca_model::DeviceIdentity::from_urn(&urn).unwrap().key();
    let level = store.trust_record(&identity).unwrap().unwrap().level;

    // The hierarchy: root, EA and AA each with their own keys.
    let tickets =
        TicketProfile::from_toml(include_str!("../../../policies/v2x-tickets-etsi.toml")).unwrap();
    // A ticket of the current period starts at the period's start minus
    // the overlap, up to 169 hours ago; the hierarchy must already be
    // valid then, or the AA rightly cuts the ticket to its own start (and
    // the duration below would depend on the day of the week).
    let validity = ValidityPeriod {
        start: Time32::from_unix(time::OffsetDateTime::now_utc().unix_timestamp() - 10 * 86_400)
            .unwrap(),
        duration: Duration::Years(3),
    };
    let l4 = SubjectAssurance::from_trust_level(4).unwrap();
    let root_key = key();
    let root = Certificate::sign_root(
        profile::root_ca("root.eu.test", public(&root_key), validity, l4),
        &root_key,
    )
    .unwrap();
    let (ea_key, (ea_secret, ea_enc)) = (key(), secret());
    let ea = Certificate::issue(
        profile::enrolment_authority("ea.eu.test", public(&ea_key), ea_enc, validity, l4),
        &root,
        &root_key,
    )
    .unwrap();
    let (aa_key, (aa_secret, aa_enc)) = (key(), secret());
    let aa = Certificate::issue(
        profile::authorization_authority(
            "aa.eu.test",
            public(&aa_key),
            aa_enc,
            validity,
            l4,
            &tickets,
        ),
        &root,
        &root_key,
    )
    .unwrap();

    // The manufacturer registers the car's canonical key; a second
    // registration and another manufacturer's are refused.
    let (canonical_secret, canonical) = secret();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    register_canonical_key(store.as_ref(), "Acme", &urn, &canonical, now).unwrap();
    let again = register_canonical_key(store.as_ref(), "Acme", &urn, &canonical, now);
    assert!(
        again
            .unwrap_err()
            .to_string()
            .contains("already has a canonical key")
    );
    let other = register_canonical_key(store.as_ref(), "Globex", &urn, &canonical, now);
    assert!(
        other
            .unwrap_err()
            .to_string()
            .contains("not a device of manufacturer Globex")
    );

    // EA and AA on their own listeners; the AA knows the EA only by URL.
    let stop = CancellationToken::new();
    let ea_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ea_addr = ea_listener.local_addr().unwrap();
    let aa_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let aa_addr = aa_listener.local_addr().unwrap();
    // The root's CTL names both and where to reach them; its CRL revokes
    // some other CA. A distribution centre serves both.
    let entries = vec![
        CtlEntry::Ea {
            certificate: ea.clone(),
            aa_access_point: format!("http://{ea_addr}{VALIDATION_PATH}"),
            its_access_point: Some(format!("http://{ea_addr}{ENROLMENT_PATH}")),
        },
        CtlEntry::Aa {
            certificate: aa.clone(),
            access_point: format!("http://{aa_addr}{AUTHORIZATION_PATH}"),
        },
    ];
    let next = Time32::from_unix(now + 86_400).unwrap();
    let ctl = trust_lists::rca_ctl(&root, &root_key, entries, 1, next, now).unwrap();
    let this = Time32::from_unix(now).unwrap();
    let crl = trust_lists::crl(&root, &root_key, vec![[7; 8]], this, next, now).unwrap();
    let dc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dc_addr = dc_listener.local_addr().unwrap();
    let root_id = hex::encode(root.hashed_id8());
    spawn(
        dc_listener,
        Arc::new(EtsiHttp {
            lists: Some(std::sync::RwLock::new(PublishedLists {
                root: root_id.clone(),
                ctl: ctl.clone().into(),
                crl: crl.into(),
            })),
            ..EtsiHttp::default()
        }),
        stop.clone(),
    );
    let ea_authority = EnrolmentAuthority::new(
        ea.clone(),
        Arc::new(ea_key),
        ea_secret,
        root.clone(),
        Arc::new(StoreStations(store.clone())),
        Arc::new(StoreCredentials(store.clone())),
    );
    spawn(
        ea_listener,
        Arc::new(EtsiHttp {
            ea: Some(Arc::new(ea_authority)),
            ..EtsiHttp::default()
        }),
        stop.clone(),
    );
    let aa_authority = AuthorizationAuthority::new(
        aa.clone(),
        Arc::new(aa_key),
        aa_secret,
        tickets,
        vec![KnownEa {
            certificate: ea.clone(),
            link: Arc::new(HttpEaLink::local(ea_addr)),
        }],
    )
    .unwrap();
    spawn(
        aa_listener,
        Arc::new(EtsiHttp {
            aa: Some(Arc::new(aa_authority)),
            ..EtsiHttp::default()
        }),
        stop.clone(),
    );

    let dir = tempfile::tempdir().unwrap();
    // The station holds only the root; everything else comes from the CTL.
    std::fs::write(dir.path().join("root.oer"), root.as_coer()).unwrap();
    let ctl_url = format!("http://{dc_addr}{CTL_PREFIX}{root_id}");
    let args = |its_id: &str| -> Vec<String> {
        vec![
            ctl_url.clone(),
            dir.path().join("root.oer").display().to_string(),
            hex::encode(canonical_secret),
            its_id.to_owned(),
            dir.path().display().to_string(),
        ]
    };
    let station = args(&urn);
    let result = tokio::task::spawn_blocking(move || run_station(&station))
        .await
        .unwrap();
    assert_eq!(result["enrolment"], "ok", "{result}");
    assert_eq!(result["crl_entries"], 1, "{result}");
    assert_eq!(result["ec_level"], u64::from(level), "{result}");
    assert_eq!(result["ec_id"], "none");
    assert_eq!(result["authorization"], "ok", "{result}");
    assert_eq!(result["at_level"], u64::from(level));
    assert_eq!(result["at_id"], "none");
    assert_eq!(result["at_craca"], "000000");
    assert_eq!(result["at_crl_series"], 0);
    assert_eq!(result["at_hours"], 170);
    assert_eq!(
        result["at_psids"],
        serde_json::json!([36]),
        "what the station asked for"
    );
    // Our own decoder and rasn-its agree with what Python checked.
    for file in ["ec.oer", "at.oer"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let cert = Certificate::from_coer(&bytes).unwrap();
        let issuer = if file == "ec.oer" { &ea } else { &aa };
        cert.verify_signed_by(Some(issuer)).unwrap();
        let (decoded, rest) =
            rasn::coer::decode_with_remainder::<rasn_its::ieee1609dot2::Certificate>(&bytes)
                .unwrap();
        assert!(rest.is_empty());
        assert_eq!(rasn::coer::encode(&decoded).unwrap(), bytes);
        rasn_its::ts103097::EtsiTs103097Certificate::try_from(decoded).unwrap();
    }

    // A station nobody registered gets a signed refusal, not a credential.
    let stranger = args("urn:trustca:automotive:Acme:Roadster:VIN9999");
    let result = tokio::task::spawn_blocking(move || run_station(&stranger))
        .await
        .unwrap();
    assert_eq!(result["enrolment"], "unknownits", "{result}");

    // HTTP refusals: method, media type, undecryptable body, unknown path.
    let client = move |path: &str, method: &str, media: &str, body: &[u8]| {
        let mut s = std::net::TcpStream::connect(ea_addr).unwrap();
        use std::io::{Read, Write};
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {media}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let (a, b, c, d) = tokio::task::spawn_blocking(move || {
        (
            client(ENROLMENT_PATH, "GET", REQUEST_TYPE, b""),
            client(ENROLMENT_PATH, "POST", "application/octet-stream", b"x"),
            client(ENROLMENT_PATH, "POST", REQUEST_TYPE, b"\x03\x82\x01"),
            client(AUTHORIZATION_PATH, "POST", REQUEST_TYPE, b"x"),
        )
    })
    .await
    .unwrap();
    assert!(a.starts_with("HTTP/1.1 405"), "{a}");
    assert!(b.starts_with("HTTP/1.1 415"), "{b}");
    assert!(c.starts_with("HTTP/1.1 400"), "{c}");
    assert!(
        d.starts_with("HTTP/1.1 404"),
        "the EA does not serve the AA's resource: {d}"
    );
    // The distribution centre serves the lists of its root only.
    let get = move |path: String| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(dc_addr).unwrap();
        let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    };
    let (ours, other) = tokio::task::spawn_blocking(move || {
        (
            get(format!("{CTL_PREFIX}{root_id}")),
            get(format!("{CTL_PREFIX}0000000000000000")),
        )
    })
    .await
    .unwrap();
    assert!(ours.starts_with(b"HTTP/1.1 200"));
    assert!(ours.ends_with(&ctl), "the CTL as signed");
    assert!(other.starts_with(b"HTTP/1.1 404"));
    assert_eq!(
        trust_lists::read_rca_ctl(&ctl, &root)
            .unwrap()
            .commands
            .len(),
        2
    );
    stop.cancel();
    drop(ca);
}
