//! EST refusals and edge clients: every refusal has its status, a plain-text
//! reason and stores nothing; leaf-only clients, HTTP/1.0, HTTP/2, oversized
//! bodies and exact names.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_have_their_status_and_plain_reason_and_store_nothing() {
    if !available("curl", &["--version"], "apt-get install curl") {
        return;
    }
    let mut ca = TestCa::init();
    let w = Work::new(&ca);
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let operator = ca.credential(CertificateKind::Operator, "Ops", &["hems"]);
    w.write_creds("acme", &acme);
    w.write_creds("ops", &operator);
    // Credentials issued offline are recorded (audited) at the next start:
    // count the audit log after one.
    serve_est(&mut ca).await;
    ca.stop().await;
    let before = audit_size(&ca);
    let est = serve_est(&mut ca).await;
    let enroll = format!("{est}/hems/simpleenroll");
    let good = w.device_csr("good", ("Acme", "HB-1", "GOOD1"), None);
    std::fs::write(w.path("garbage.b64"), "this is not base64 !!!\n").unwrap();
    std::fs::write(
        w.path("notcsr.b64"),
        trustca_server_base64(b"\x30\x03\x02\x01\x00 definitely not a CSR"),
    )
    .unwrap();
    let other = w.device_csr("other", ("Globex", "HB-1", "OTHER1"), None);
    let no_serial = w.csr("noserial", &[("O", "Acme"), ("CN", "HB-1")], None);
    type Case<'a> = (
        &'a str,
        String,
        Option<&'a str>,
        Option<(PathBuf, &'a str)>,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            "garbage base64",
            enroll.clone(),
            Some("acme"),
            Some((w.path("garbage.b64"), "application/pkcs10")),
            400,
        ),
        (
            "not a CSR",
            enroll.clone(),
            Some("acme"),
            Some((w.path("notcsr.b64"), "application/pkcs10")),
            400,
        ),
        (
            "wrong content type",
            enroll.clone(),
            Some("acme"),
            Some((good.clone(), "application/json")),
            400,
        ),
        (
            "unknown label",
            format!("{est}/nowhere/simpleenroll"),
            Some("acme"),
            Some((good.clone(), "application/pkcs10")),
            404,
        ),
        (
            "no client certificate",
            enroll.clone(),
            None,
            Some((good.clone(), "application/pkcs10")),
            401,
        ),
        (
            "O names another manufacturer",
            enroll.clone(),
            Some("acme"),
            Some((other.clone(), "application/pkcs10")),
            403,
        ),
        (
            "operator credential",
            enroll.clone(),
            Some("ops"),
            Some((good.clone(), "application/pkcs10")),
            403,
        ),
        (
            "sector not authorized",
            format!("{est}/automotive/simpleenroll"),
            Some("acme"),
            Some((good.clone(), "application/pkcs10")),
            403,
        ),
        (
            "no serialNumber",
            enroll.clone(),
            Some("acme"),
            Some((no_serial.clone(), "application/pkcs10")),
            400,
        ),
        (
            "model not registered",
            enroll.clone(),
            Some("acme"),
            Some((good.clone(), "application/pkcs10")),
            409,
        ),
        (
            "GET on simpleenroll",
            enroll.clone(),
            Some("acme"),
            None,
            405,
        ),
        (
            "unknown operation",
            format!("{est}/hems/serverkeygen"),
            Some("acme"),
            Some((good.clone(), "application/pkcs10")),
            404,
        ),
    ];
    for (what, url, client, body, want) in &cases {
        let (code, headers, text) =
            w.curl(url, *client, body.as_ref().map(|(p, t)| (p.as_path(), *t)));
        let text = String::from_utf8_lossy(&text).into_owned();
        assert_eq!(code, *want, "{what}: {text}");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; charset=utf-8"),
            "{what}"
        );
        assert!(
            !text.trim().is_empty()
                && text.is_ascii()
                && !text.contains("{ ")
                && !text.contains("Error("),
            "{what}: the reason is a plain sentence, not Debug text: {text:?}"
        );
        eprintln!("{what}: {code} {}", text.trim());
    }
    let mut trust = trust_client(&ca, &acme).await;
    for urn in [
        "urn:trustca:hems:Acme:HB-1:GOOD1",
        "urn:trustca:hems:Globex:HB-1:OTHER1",
        "urn:trustca:automotive:Acme:HB-1:GOOD1",
    ] {
        let e = get_trust(&mut trust, urn).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{urn} was stored: {e:?}");
    }
    drop(trust);
    ca.stop().await;
    assert_eq!(before, audit_size(&ca), "a refusal wrote to the audit log");
}

fn trustca_server_base64(bytes: &[u8]) -> String {
    // openssl is the independent encoder here too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in"), bytes).unwrap();
    run(Command::new("openssl")
        .args(["base64", "-in"])
        .arg(dir.path().join("in")))
}

/// Issue 19, section 4: a client sending only its leaf certificate is
/// accepted on EST and gRPC (the server holds every sector CA); `curl
/// --http1.0` is served; an HTTP/2 body over the limit is a 413 every
/// time; `O=acme` is not the credential `Acme`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_only_clients_http_1_0_h2_oversize_and_exact_names() {
    if !available("curl", &["--version"], "apt-get install curl") {
        return;
    }
    let (ca, est) = start_with_est().await;
    let w = Work::new(&ca);
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let leaf_only = ClientCredentials {
        cert_pem: pem_of(&der_of(&acme.cert_pem)),
        ..acme.clone()
    };
    assert_eq!(pem::parse_many(&leaf_only.cert_pem).unwrap().len(), 1);
    w.write_creds("leaf", &leaf_only);
    register_model(&ca, &acme, "hems", "HB-1", "1.0.0..1.9.9").await;

    // EST with the leaf alone.
    let csr = w.device_csr("one", ("Acme", "HB-1", "LEAF1"), Some("1.0.0"));
    let (code, body) = w.post_csr(&format!("{est}/hems/simpleenroll"), "leaf", &csr);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    // gRPC with the leaf alone.
    let mut enroll =
        pb::enrollment_client::EnrollmentClient::new(connect(&ca.url(), &leaf_only).await.unwrap());
    let (_, grpc_csr) = csr_for(&rcgen::PKCS_ECDSA_P256_SHA256);
    enroll
        .enroll(request("hems", "Acme", "LEAF2", grpc_csr, vec![]))
        .await
        .unwrap();

    // The manufacturer's name is exact: `acme` is someone else.
    let lower = w.device_csr("lower", ("acme", "HB-1", "LOW1"), Some("1.0.0"));
    let (code, body) = w.post_csr(&format!("{est}/hems/simpleenroll"), "leaf", &lower);
    assert_eq!(code, 403, "{}", String::from_utf8_lossy(&body));

    // HTTP/1.0 (curl offers ALPN http/1.0 only).
    let (code, _, body) = w.curl_with(&["--http1.0"], &format!("{est}/cacerts"), None, None);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));

    // HTTP/2, a body just over 16 KiB: 413 each of 20 times.
    let big = w.path("big.b64");
    std::fs::write(&big, vec![b'A'; 20 * 1024]).unwrap();
    for attempt in 0..20 {
        let (code, _, body) = w.curl_with(
            &["--http2"],
            &format!("{est}/hems/simpleenroll"),
            Some("leaf"),
            Some((&big, "application/pkcs10")),
        );
        assert_eq!(
            code,
            413,
            "attempt {attempt}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}
