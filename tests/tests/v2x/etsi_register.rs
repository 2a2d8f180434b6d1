//! A manufacturer registers an ITS station's ETSI canonical key over the
//! network (`Enrollment/RegisterCanonicalKey`, mutual TLS: the manufacturer
//! and its sectors come from its client certificate), linked to the device
//! record it enrolled; every bad request is refused with its status and
//! stores nothing (the device's one registration still succeeds after
//! them and the store holds exactly that key); then the Python station
//! enrols with that key at the EA and its enrolment credential carries the
//! car's trust level.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::etsi_http::{python_ready, run_station};
use crate::etsi_serve::start_with_etsi;

use common::*;
use ring::rand::{SecureRandom, SystemRandom};
use tonic::Code;
use trustca_api::client::ClientCredentials;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_server::etsi::http::CTL_PREFIX;
use trustca_v2x::{CertProfile, Certificate, PublicKeyP256, encryption_public_key};

/// A P-256 scalar and its public key, uncompressed SEC1.
fn canonical_pair() -> ([u8; 32], Vec<u8>) {
    loop {
        let mut s = [0u8; 32];
        SystemRandom::new().fill(&mut s).unwrap();
        if let Ok(p) = encryption_public_key(&s) {
            // Uncompressed: the wire takes either form.
            return (s, p.uncompressed().unwrap().to_vec());
        }
    }
}

async fn register(
    ca: &TestCa,
    who: &ClientCredentials,
    urn: &str,
    key: &[u8],
) -> Result<pb::RegisterCanonicalKeyResponse, tonic::Status> {
    ca.client(who)
        .await
        .register_canonical_key(pb::RegisterCanonicalKeyRequest {
            device_urn: urn.to_owned(),
            canonical_key: key.to_vec(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn refused(r: Result<pb::RegisterCanonicalKeyResponse, tonic::Status>, code: Code, text: &str) {
    let s = r.expect_err("refused");
    assert_eq!(s.code(), code, "{}", s.message());
    assert!(s.message().contains(text), "{}", s.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manufacturer_registers_a_canonical_key_over_mutual_tls() {
    let mut ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    register_automotive_lv5(&ca, &acme, "Acme", "Roadster").await;
    let car = enroll_device(
        &mut ca.client(&acme).await,
        &ca.root_pem(),
        "automotive",
        "Acme",
        "Roadster",
        "VIN0300",
        "1.0.0",
        vec![],
    )
    .await;
    let urn = car.identity.clone();
    let (secret, key) = canonical_pair();

    // Refusals, each with its status; none stores anything.
    let globex = ca.credential(CertificateKind::Manufacturer, "Globex", &["automotive"]);
    refused(
        register(&ca, &globex, &urn, &key).await,
        Code::PermissionDenied,
        "not a device of manufacturer Globex",
    );
    let elsewhere = ca.credential(CertificateKind::Manufacturer, "Acme", &["healthcare"]);
    refused(
        register(&ca, &elsewhere, &urn, &key).await,
        Code::PermissionDenied,
        "not authorized for sector automotive",
    );
    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let s = register(&ca, &operator, &urn, &key).await.err().unwrap();
    assert_eq!(s.code(), Code::PermissionDenied, "{}", s.message());
    refused(
        register(&ca, &acme, "urn:isbn:0451450523", &key).await,
        Code::InvalidArgument,
        "is not a device URN",
    );
    refused(
        register(&ca, &acme, &"x".repeat(4096), &key).await,
        Code::InvalidArgument,
        "at most 512",
    );
    refused(
        register(&ca, &acme, &urn, &key[..10]).await,
        Code::InvalidArgument,
        "has 10 octets",
    );
    let mut off_curve = key.clone();
    off_curve[64] ^= 1;
    refused(
        register(&ca, &acme, &urn, &off_curve).await,
        Code::InvalidArgument,
        "not a P-256 point",
    );
    refused(
        register(
            &ca,
            &acme,
            "urn:trustca:automotive:Acme:Roadster:VIN0999",
            &key,
        )
        .await,
        Code::NotFound,
        "is not enrolled",
    );

    // The device's manufacturer: registered, linked to the device record.
    let done = register(&ca, &acme, &urn, &key).await.unwrap();
    assert_eq!(done.device_urn, urn);
    let compressed = PublicKeyP256::from_sec1(&key).unwrap().compressed();
    assert_eq!(done.canonical_key, compressed.to_vec());
    refused(
        register(&ca, &acme, &urn, &canonical_pair().1).await,
        Code::AlreadyExists,
        "never replaced",
    );
    ca.stop().await;
    {
        let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
        let identity = trustca_model::DeviceIdentity::from_urn(&urn).unwrap().key();
        use trustca_store::Storage;
        let held = store
            .blob_get(
                trustca_ca::canonical_keys::CANONICAL_SPACE,
                identity.as_bytes(),
            )
            .unwrap();
        assert_eq!(held, Some(compressed.to_vec()), "exactly the one key");
        let level = store.trust_record(&identity).unwrap().unwrap().level;
        assert_eq!(done.trust_level, u32::from(level), "the device's level");
    }

    // The EU enrolment credential carries the car's level.
    if !python_ready() {
        return;
    }
    let etsi = start_with_etsi(&mut ca, "127.0.0.1:0".parse().unwrap(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let root_bytes = std::fs::read(ca.data().join("etsi/root.oer")).unwrap();
    let root = Certificate::from_coer_in(CertProfile::EtsiTs103097, &root_bytes).unwrap();
    std::fs::write(dir.path().join("root.oer"), &root_bytes).unwrap();
    let args = vec![
        format!(
            "http://{etsi}{CTL_PREFIX}{}",
            hex::encode(root.hashed_id8())
        ),
        dir.path().join("root.oer").display().to_string(),
        hex::encode(secret),
        urn.clone(),
        dir.path().display().to_string(),
    ];
    let result = tokio::task::spawn_blocking(move || run_station(&args))
        .await
        .unwrap();
    assert_eq!(result["enrolment"], "ok", "{result}");
    assert_eq!(result["ec_level"], u64::from(done.trust_level), "{result}");
    ca.stop().await;
}
