//! Enrollment end to end: a real server on loopback, real mutual-TLS
//! clients, real CSRs; certificates checked with openssl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use tonic::Code;
use trustca_model::{CertificateKind, trust_extension};
use trustca_proto::v1 as pb;
use x509_parser::prelude::{FromDer, X509Certificate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolls_all_three_sectors_and_openssl_verifies_the_chains() {
    let ca = TestCa::start().await;
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "hems", "healthcare"],
    );
    let mut client = ca.client(&acme).await;
    for (i, sector) in ["automotive", "hems", "healthcare"].iter().enumerate() {
        let (_key, csr) = csr();
        let resp = client
            .enroll(request(sector, "Acme", &format!("SN{i}"), csr, vec![]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(resp.chain_der.len(), 2);
        assert_eq!(resp.level, 1, "no evidence gives the baseline level");
        assert_eq!(resp.identity, format!("urn:trustca:{sector}:Acme:M1:SN{i}"));

        // Independent check: openssl accepts the chain to the root.
        let (ok, out) = openssl_verify(
            ca.data(),
            &ca.root_pem(),
            &resp.chain_der,
            &["-purpose", "sslclient"],
        );
        assert!(ok, "openssl verify failed for {sector}: {out}");

        let (_, cert) = X509Certificate::from_der(&resp.chain_der[0]).unwrap();
        let ext = trust_extension(&cert, &Default::default())
            .unwrap()
            .expect("trust-level extension");
        assert_eq!(ext.sector.as_str(), *sector);
        assert_eq!(ext.kind, CertificateKind::LongTerm);
        assert_eq!(ext.level.unwrap().get(), 1);
        // Subject and SAN come from validated attributes, never from the CSR.
        let text = format!(
            "{:?}",
            cert.subject_alternative_name().unwrap().unwrap().value
        );
        assert!(
            !text.contains("attacker"),
            "CSR content leaked into the certificate: {text}"
        );
        assert!(!cert.subject().to_string().contains("attacker"));
        assert_eq!(cert.raw_serial().len(), 16);
        assert!(cert.raw_serial()[0] < 0x80, "serial must be positive");
        assert!(!ext.policy_version.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level_comes_from_evidence_and_is_recorded_in_the_certificate() {
    let ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let mut client = ca.client(&acme).await;
    let (_k, csr1) = csr();
    let top = client
        .enroll(request("automotive", "Acme", "TOP", csr1, automotive_lv5()))
        .await
        .unwrap()
        .into_inner();
    // The evaluation and secure update count; the declared secure element
    // does not lift automotive above Lv.3 (`declared_hardware_max_level`).
    assert_eq!(top.level, DECLARED_AUTOMOTIVE_LEVEL);
    let (_, cert) = X509Certificate::from_der(&top.chain_der[0]).unwrap();
    let ext = trust_extension(&cert, &Default::default())
        .unwrap()
        .unwrap();
    assert_eq!(ext.level.unwrap().get(), 3);
    let schemes: Vec<&str> = ext.basis.iter().map(|b| b.scheme.as_str()).collect();
    assert!(schemes.contains(&"iso-sae-21434"), "{schemes:?}");
    assert!(
        ext.basis
            .iter()
            .all(|b| b.evidence != "hardware-root-of-trust"),
        "{:?}",
        ext.basis
    );
    // The same evidence in HEMS, which sets no cap, earns its top level.
    let (_k, csr_hems) = csr();
    let acme_hems = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let top_hems = ca
        .client(&acme_hems)
        .await
        .enroll(request("hems", "Acme", "TOP", csr_hems, hems_lv5()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(top_hems.level, 5);

    // Secure update alone earns Lv.2 in the automotive policy.
    let (_k, csr2) = csr();
    let mid = client
        .enroll(request(
            "automotive",
            "Acme",
            "MID",
            csr2,
            vec![evidence("secure-update", "", "true", "")],
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mid.level, 2);

    // openssl sees the extension under its OID and prints it non-critical.
    let pem_path = ca.data().join("top.pem");
    std::fs::write(&pem_path, pem_of(&top.chain_der[0])).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&pem_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let oid = trustca_model::extension::DEFAULT_OID;
    assert!(text.contains(&format!("{oid}:")), "{text}");
    assert!(!text.contains(&format!("{oid}: critical")));
    assert!(text.contains("Subject Key Identifier") && text.contains("Authority Key Identifier"));
}

/// [`expect_code`] for a request with a fresh key for the device named by
/// its sector, manufacturer and serial.
async fn expect_refused(
    client: &mut pb::enrollment_client::EnrollmentClient<tonic::transport::Channel>,
    (sector, manufacturer, serial): (&str, &str, &str),
    evidence: Vec<pb::EvidenceItem>,
    code: Code,
    needle: &str,
) {
    let (_key, csr) = csr();
    let req = request(sector, manufacturer, serial, csr, evidence);
    expect_code(client, req, code, needle).await;
}

async fn expect_code(
    client: &mut pb::enrollment_client::EnrollmentClient<tonic::transport::Channel>,
    req: pb::EnrollRequest,
    code: Code,
    needle: &str,
) {
    let err = client.enroll(req).await.expect_err("must be refused");
    assert_eq!(err.code(), code, "message: {}", err.message());
    assert!(
        err.message().contains(needle),
        "{:?} does not mention {needle:?}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_precise_status_and_stores_nothing() {
    let mut ca = TestCa::start().await;
    let acme = ca.credential(
        CertificateKind::Manufacturer,
        "Acme",
        &["automotive", "healthcare"],
    );
    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut client = ca.client(&acme).await;

    expect_code(
        &mut client,
        request("automotive", "Acme", "X1", b"garbage".to_vec(), vec![]),
        Code::InvalidArgument,
        "CSR",
    )
    .await;
    let (_k, mut tampered) = csr();
    let pos = tampered.windows(8).position(|w| w == b"attacker").unwrap();
    tampered[pos] ^= 1;
    expect_code(
        &mut client,
        request("automotive", "Acme", "X1", tampered, vec![]),
        Code::InvalidArgument,
        "does not verify",
    )
    .await;
    // Healthcare's profile does not allow Ed25519 device keys.
    let (_k, ed) = csr_for(&rcgen::PKCS_ED25519);
    expect_code(
        &mut client,
        request("healthcare", "Acme", "X1", ed, vec![]),
        Code::InvalidArgument,
        "ed25519",
    )
    .await;
    // Each refused for one reason, each with a fresh key.
    let self_assessed = evidence("evaluation", "self-assessment", "A+", "2026-01-01");
    let refusals = [
        (
            ("aviation", "Acme", "X1"),
            vec![],
            Code::InvalidArgument,
            "unknown sector",
        ),
        (
            ("automotive", "Acme", "X1"),
            vec![evidence("marketing-claim", "", "very secure", "")],
            Code::InvalidArgument,
            "unknown evidence type",
        ),
        (
            ("automotive", "Acme", "X1"),
            vec![self_assessed],
            Code::InvalidArgument,
            "unknown evaluation scheme",
        ),
        (
            ("hems", "Acme", "X1"),
            vec![],
            Code::PermissionDenied,
            "not authorized for sector hems",
        ),
        (
            ("automotive", "Globex", "X1"),
            vec![],
            Code::PermissionDenied,
            "own devices",
        ),
        (
            ("automotive", "Acme", "bad:serial"),
            vec![],
            Code::InvalidArgument,
            "serial",
        ),
    ];
    for (device, evidence, code, needle) in refusals {
        expect_refused(&mut client, device, evidence, code, needle).await;
    }
    let (_k, c) = csr();
    let mut no_device = request("automotive", "Acme", "X1", c, vec![]);
    no_device.device = None;
    expect_code(&mut client, no_device, Code::InvalidArgument, "sector").await;
    let (_k, c) = csr();
    let mut huge = request("automotive", "Acme", "X1", c, vec![]);
    huge.csr_der = vec![0x30; 200 * 1024];
    let err = client.enroll(huge).await.unwrap_err();
    // gRPC names RESOURCE_EXHAUSTED for a message over a size limit (tonic
    // says OUT_OF_RANGE), and the message is a sentence.
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message().contains("larger than this server accepts"),
        "{}",
        err.message()
    );

    // Evidence dated in the future is refused, not silently ignored.
    let (_k, c) = csr();
    let mut future = automotive_lv5();
    future[0].evaluated_at = date_from_today(2);
    expect_code(
        &mut client,
        request("automotive", "Acme", "FUT1", c, future),
        Code::InvalidArgument,
        "in the future",
    )
    .await;

    // An operator credential is authenticated but may not enroll.
    let mut op_client = ca.client(&operator).await;
    expect_refused(
        &mut op_client,
        ("automotive", "Acme", "X1"),
        vec![],
        Code::PermissionDenied,
        "the caller holds an operator certificate",
    )
    .await;

    // Duplicate identity: the first succeeds, the second (even with its
    // serial in other case) is refused. The manufacturer's name is exact.
    let (_k, c) = csr();
    client
        .enroll(request("automotive", "Acme", "DUP1", c, vec![]))
        .await
        .unwrap();
    expect_refused(
        &mut client,
        ("automotive", "ACME", "dup2"),
        vec![],
        Code::PermissionDenied,
        "names are case-sensitive",
    )
    .await;
    expect_refused(
        &mut client,
        ("automotive", "Acme", "dup1"),
        vec![],
        Code::AlreadyExists,
        "already enrolled",
    )
    .await;

    // Nothing refused consumed the identity X1: it still enrolls.
    let (_k, c) = csr();
    client
        .enroll(request("automotive", "Acme", "X1", c, vec![]))
        .await
        .unwrap();

    drop((client, op_client));
    // And nothing refused was stored: exactly 2 device certificates, plus
    // the two credentials recorded at start-up.
    ca.stop().await;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    use trustca_store::Storage;
    let (certs, devices) = store.counts().unwrap();
    assert_eq!(devices, 2);
    assert_eq!(
        certs, 2,
        "credentials issued after start are recorded on the next start"
    );
    assert_eq!(store.audit_entries(0, 1000).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_trusted_certificate_are_unauthenticated() {
    let ca = TestCa::start().await;
    // No client certificate at all.
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca.root_pem()))
        .domain_name("127.0.0.1");
    let channel = tonic::transport::Channel::from_shared(ca.url())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut anon = pb::enrollment_client::EnrollmentClient::new(channel.clone());
    let (_k, c) = csr();
    let err = anon
        .enroll(request("automotive", "Acme", "A", c, vec![]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // Health probes work without credentials.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "trustca.v1.Enrollment".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resp.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // A certificate from a foreign CA is refused.
    let foreign_key = rcgen::KeyPair::generate().unwrap();
    let mut foreign_params = rcgen::CertificateParams::new(vec![]).unwrap();
    foreign_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let foreign_ca = foreign_params.self_signed(&foreign_key).unwrap();
    let issuer = rcgen::Issuer::new(foreign_params, foreign_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["mallory".to_string()]).unwrap();
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let creds = trustca_api::client::ClientCredentials {
        cert_pem: format!("{}{}", leaf.pem(), foreign_ca.pem()),
        key_pem: leaf_key.serialize_pem(),
        root_pem: ca.root_pem(),
    };
    match trustca_api::client::connect(&ca.url(), &creds).await {
        Err(_) => {} // refused during the handshake: also acceptable
        Ok(ch) => {
            let mut c = pb::enrollment_client::EnrollmentClient::new(ch);
            let (_k, csr) = csr();
            let err = c
                .enroll(request("automotive", "Acme", "A", csr, vec![]))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
            assert!(err.message().contains("not trusted"), "{}", err.message());
            assert!(
                !err.message().contains("UnknownIssuer"),
                "{}",
                err.message()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_gives_per_item_results_and_one_bad_item_fails_alone() {
    let mut ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let mut client = ca.client(&acme).await;
    let n = 600u64;
    let mut items = Vec::new();
    for i in 0..n {
        let csr = if i % 100 == 7 {
            b"not a csr".to_vec()
        } else {
            csr().1
        };
        // Item 50 repeats item 49's identity.
        let serial = if i == 50 {
            "B49".to_string()
        } else {
            format!("B{i}")
        };
        items.push(pb::EnrollBatchItem {
            id: i,
            request: Some(request("hems", "Acme", &serial, csr, vec![])),
        });
    }
    items.push(pb::EnrollBatchItem {
        id: n,
        request: None,
    });
    let mut stream = client
        .enroll_batch(tokio_stream::iter(items))
        .await
        .unwrap()
        .into_inner();
    let mut ok = std::collections::BTreeMap::new();
    let mut failed = std::collections::BTreeMap::new();
    while let Some(r) = stream.message().await.unwrap() {
        match r.outcome.unwrap() {
            pb::enroll_batch_result::Outcome::Certificate(c) => {
                ok.insert(r.id, c);
            }
            pb::enroll_batch_result::Outcome::Error(f) => {
                failed.insert(r.id, f);
            }
        }
    }
    assert_eq!(
        ok.len() + failed.len(),
        n as usize + 1,
        "one result per item"
    );
    for i in (0..n).filter(|i| i % 100 == 7) {
        assert_eq!(failed[&i].code, Code::InvalidArgument as i32);
    }
    assert_eq!(failed[&n].code, Code::InvalidArgument as i32);
    // Exactly one of 49 and 50 won the identity; the other is AlreadyExists.
    let dup: Vec<_> = [49u64, 50].iter().filter_map(|i| failed.get(i)).collect();
    assert_eq!(dup.len(), 1);
    assert_eq!(dup[0].code, Code::AlreadyExists as i32);
    assert_eq!(ok.len(), n as usize - 6 - 1);
    let serials: std::collections::BTreeSet<_> = ok.values().map(|c| c.serial.clone()).collect();
    assert_eq!(serials.len(), ok.len(), "serials are unique");

    drop((stream, client));
    ca.stop().await;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    use trustca_store::Storage;
    assert_eq!(store.counts().unwrap().1, ok.len() as u64);
    for c in ok.values() {
        let serial: Vec<u8> = (0..16)
            .map(|i| u8::from_str_radix(&c.serial[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        let rec = store
            .certificate(&serial)
            .unwrap()
            .expect("every returned certificate is stored");
        assert_eq!(rec.der, c.chain_der[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_reevaluates_the_level_and_keeps_the_identity() {
    let mut ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let mut client = ca.client(&acme).await;
    let (_k, c) = csr();
    let first = client
        .enroll(request("automotive", "Acme", "R1", c, vec![]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.level, 1);
    let (_k, c) = csr();
    let mut renew = request("automotive", "Acme", "R1", c, automotive_lv5());
    renew.renewal = true;
    renew.device.as_mut().unwrap().firmware_version = "2.0.0".into();
    let second = client.enroll(renew).await.unwrap().into_inner();
    assert_eq!(second.level, DECLARED_AUTOMOTIVE_LEVEL);
    assert_eq!(second.identity, first.identity);
    assert_ne!(second.serial, first.serial);
    let (_k, c) = csr();
    let mut ghost = request("automotive", "Acme", "NEVER", c, vec![]);
    ghost.renewal = true;
    let err = client.enroll(ghost).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    drop(client);
    ca.stop().await;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    use trustca_store::Storage;
    let key = "automotive/acme/m1/r1";
    let device = store.device(key).unwrap().unwrap();
    assert_eq!(
        device.certificates,
        vec![first.serial.clone(), second.serial.clone()]
    );
    assert_eq!(device.firmware_version, "2.0.0");
    let trust = store.trust_record(key).unwrap().unwrap();
    assert_eq!((trust.level, trust.version), (3, 2));
    assert_eq!(store.history(key).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_constraints_and_sector_checks_reject_a_wrong_sector_chain() {
    let ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let mut client = ca.client(&acme).await;
    let (_k, c) = csr();
    let resp = client
        .enroll(request("hems", "Acme", "W1", c, vec![]))
        .await
        .unwrap()
        .into_inner();
    // Present the HEMS device with the automotive sub-CA as its chain.
    let automotive = std::fs::read_to_string(ca.data().join("ca/automotive.pem")).unwrap();
    let auto_der = pem::parse(automotive).unwrap().into_contents();
    let wrong = vec![resp.chain_der[0].clone(), auto_der];
    let (ok, out) = openssl_verify(ca.data(), &ca.root_pem(), &wrong, &[]);
    assert!(!ok, "openssl accepted a wrong chain: {out}");
    let root_der = pem::parse(ca.root_pem()).unwrap().into_contents();
    let err = trustca_model::verify_chain(
        &wrong,
        &[],
        &root_der,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
    )
    .unwrap_err();
    assert!(format!("{err:#}").contains("unknown issuer"), "{err:#}");
    // The right chain verifies, and expires when its time comes.
    trustca_model::verify_chain(
        &resp.chain_der,
        &[],
        &root_der,
        time::OffsetDateTime::now_utc(),
        &Default::default(),
    )
    .unwrap();
    let later = time::OffsetDateTime::now_utc() + time::Duration::days(365 * 11);
    let err =
        trustca_model::verify_chain(&resp.chain_der, &[], &root_der, later, &Default::default())
            .unwrap_err();
    assert!(format!("{err:#}").contains("expired"), "{err:#}");
}
