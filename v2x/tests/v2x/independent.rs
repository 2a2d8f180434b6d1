//! Cross-check with an independent implementation: `tests/independent.py`
//! decodes the certificates with Python asn1tools (compiled from the
//! published ASN.1 modules) and verifies the signatures with Python
//! cryptography; it also decrypts `EncryptedData` sealed here, with its own
//! ECIES + AES-CCM (`tests/ecies_vectors.py`). Skipped, loudly, when python3, asn1tools, cryptography or
//! the ASN.1 modules are missing, unless TRUSTCA_REQUIRE_INTEROP=1.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::common;

use std::process::Command;

use common::*;
use ring::rand::{SecureRandom, SystemRandom};
use trustca_testkit::{asn1_dir, asn1tools_ready};
use trustca_v2x::{
    Certificate, EncryptedData, P1_EMPTY, RecipientKind, encryption_public_key, response_key_id,
    sha256,
};

#[test]
fn asn1tools_and_cryptography_decrypt_our_encrypted_data() {
    if !asn1tools_ready(&["TS103097v131.asn"], &[]) {
        return;
    }
    let secret = loop {
        let mut s = [0u8; 32];
        SystemRandom::new().fill(&mut s).unwrap();
        if encryption_public_key(&s).is_ok() {
            break s;
        }
    };
    let public = encryption_public_key(&secret).unwrap();
    let c = chain();
    let mut tbs = ticket_tbs(&c.ticket_key);
    tbs.encryption_key = Some(public);
    let ticket = Certificate::issue(tbs, &c.ca, &c.ca_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let long: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    // (file name, sealed data, recipient id, P1, kind, plaintext, must fail)
    type Case<'a> = (
        &'a str,
        EncryptedData,
        [u8; 8],
        Vec<u8>,
        &'a str,
        Vec<u8>,
        bool,
    );
    let cases: Vec<Case> = vec![
        (
            "rek",
            EncryptedData::seal_to_response_key(&public, b"response to the vehicle").unwrap(),
            response_key_id(&public),
            P1_EMPTY.to_vec(),
            "rekRecipInfo",
            b"response to the vehicle".to_vec(),
            false,
        ),
        (
            "cert",
            EncryptedData::seal_to_certificate(&ticket, &long).unwrap(),
            ticket.hashed_id8(),
            sha256(ticket.as_coer()).to_vec(),
            "certRecipInfo",
            long.clone(),
            false,
        ),
        (
            // P1 = SHA-256 of the signed Ieee1609Dot2Data that carried the
            // key; a stand-in octet string here.
            "signed-data-empty",
            EncryptedData::seal(
                &public,
                [5; 8],
                RecipientKind::SignedData,
                &sha256(b"stand-in for a signed Ieee1609Dot2Data"),
                b"",
            )
            .unwrap(),
            [5; 8],
            sha256(b"stand-in for a signed Ieee1609Dot2Data").to_vec(),
            "signedDataRecipInfo",
            Vec::new(),
            false,
        ),
        (
            // P1 must be the certificate hash for certRecipInfo: the
            // empty-string P1 must fail in Python too.
            "cert-wrong-p1",
            EncryptedData::seal_to_certificate(&ticket, b"x").unwrap(),
            ticket.hashed_id8(),
            P1_EMPTY.to_vec(),
            "certRecipInfo",
            Vec::new(),
            true,
        ),
    ];
    let mut jobs = Vec::new();
    let mut expected = Vec::new();
    for (name, e, id, p1, kind, pt, must_fail) in &cases {
        let path = dir.path().join(format!("{name}.coer"));
        std::fs::write(&path, e.to_coer()).unwrap();
        let path = path.to_str().unwrap().to_owned();
        jobs.push(format!(
            r#"{{"path": "{path}", "recipient_secret": "{}", "recipient_id": "{}", "p1": "{}", "kind": "{kind}", "must_fail": {must_fail}}}"#,
            hex::encode(secret),
            hex::encode(id),
            hex::encode(p1),
        ));
        expected.push(if *must_fail {
            format!("OK refused {path} ")
        } else {
            format!(
                "OK decrypted {path} kind={kind} plaintext-sha256={}",
                hex::encode(sha256(pt))
            )
        });
    }
    let job_file = dir.path().join("jobs.json");
    std::fs::write(&job_file, format!("[{}]", jobs.join(",\n"))).unwrap();
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/independent.py"))
        .arg("--decrypt")
        .arg(&job_file)
        .env("V2X_ASN1_DIR", asn1_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "independent decryption failed");
    for line in expected {
        assert!(
            stdout.lines().any(|l| l.starts_with(&line)),
            "missing: {line}"
        );
    }
}

#[test]
fn asn1tools_and_cryptography_accept_the_chain() {
    if !asn1tools_ready(&["TS103097v131.asn"], &[]) {
        return;
    }
    let c = chain();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let root = write("root.coer", c.root.as_coer());
    let ca = write("ca.coer", c.ca.as_coer());
    let ticket = write("ticket.coer", c.ticket.as_coer());
    let vector = hex::decode(include_str!("../../testdata/root.coer.hex").trim()).unwrap();
    let published = write("published-root.coer", &vector);
    let sink = Certificate::issue(kitchen_sink_tbs(&key(), &key()), &c.root, &c.root_key).unwrap();
    let sink_path = write("kitchen-sink.coer", sink.as_coer());
    // Must be rejected: a changed sSig, a changed validity start (decodes
    // with both codecs, signature breaks), and a ticket whose issuer is
    // not among the files.
    let mut bad_sig = c.ticket.to_coer();
    let n = bad_sig.len();
    bad_sig[n - 1] ^= 0x01;
    let mut bad_tbs = c.ca.to_coer();
    let start = c.ca.tbs().validity.start.0.to_be_bytes();
    let pos = bad_tbs.windows(4).position(|w| w == start).unwrap();
    bad_tbs[pos + 3] ^= 0x01;
    assert!(Certificate::from_coer(&bad_tbs).is_ok());
    let other = chain();
    let orphan = write("orphan-ticket.coer", other.ticket.as_coer());
    let bad_sig = write("bad-signature.coer", &bad_sig);
    let bad_tbs = write("bad-tbs.coer", &bad_tbs);
    // SCMS-style tickets with id linkageData (IEEE 1609.2 profile), with
    // and without a group linkage value, issued by the chain's CA.
    let linked = linked_ticket(&c, true);
    let linked_path = write("linked-ticket.coer", linked.as_coer());
    let linked_plain = linked_ticket(&c, false);
    let linked_plain_path = write("linked-ticket-no-group.coer", linked_plain.as_coer());

    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/independent.py"))
        .args([&root, &ca, &ticket, &published, &sink_path])
        .args([
            "--must-fail",
            &bad_sig,
            "--must-fail",
            &bad_tbs,
            "--must-fail",
            &orphan,
            "--ieee",
            &linked_path,
            "--ieee",
            &linked_plain_path,
        ])
        .env("V2X_ASN1_DIR", asn1_dir())
        .env("V2X_DUMP", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "independent check failed");
    // The independent HashedId8s agree with ours.
    for (path, cert) in [
        (&root, &c.root),
        (&ca, &c.ca),
        (&ticket, &c.ticket),
        (&sink_path, &sink),
        (&linked_path, &linked),
        (&linked_plain_path, &linked_plain),
    ] {
        let line = format!(
            "OK verified {path} hashedid8={}",
            hex::encode(cert.hashed_id8())
        );
        assert!(stdout.lines().any(|l| l == line), "missing: {line}");
    }
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("OK rejected"))
            .count(),
        3
    );
    // Neither linked ticket passes as an EtsiTs103097Certificate.
    for path in [&linked_path, &linked_plain_path] {
        let prefix = format!("OK etsi-rejected {path} ");
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains("linkageData")),
            "missing: {prefix}"
        );
    }
    // asn1tools read the linkage data as we meant it.
    let dump = |path: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("decoded {path}:")))
            .unwrap()
            .to_owned()
    };
    let linked_dump = dump(&linked_path);
    for expected in [
        "'id': ('linkageData', {'iCert': 4660, 'linkage-value': b'\\x11\"3DUfw\\x88\\x99', \
         'group-linkage-value': {'jValue': b'\\xde\\xad\\xbe\\xef', \
         'value': b'\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\t'}})",
        "'cracaId': b'\\x00\\x00\\x00', 'crlSeries': 258",
        "'assuranceLevel': b'@'",
        "'appPermissions': [{'psid': 32, 'ssp': ('opaque', b'\\x01')}]",
    ] {
        assert!(
            linked_dump.contains(expected),
            "asn1tools decoded the linked ticket differently: {expected}\n{linked_dump}"
        );
    }
    assert!(dump(&linked_plain_path).contains(
        "'id': ('linkageData', {'iCert': 4660, 'linkage-value': b'\\x11\"3DUfw\\x88\\x99'}),"
    ));
    // asn1tools read the kitchen sink's fields as we meant them.
    let dump = stdout
        .lines()
        .find(|l| l.starts_with(&format!("decoded {sink_path}:")))
        .unwrap();
    let sink_start = format!(
        "'start': {}, 'duration': ('sixtyHours', 7)",
        common::start().0 + 0x0102_0304
    );
    for expected in [
        "'crlSeries': 48879",
        sink_start.as_str(),
        "'assuranceLevel': b'b'",
        "{'psid': 0}",
        "{'psid': 4294967295, 'ssp': ('opaque', b'')}",
        "{'psid': 300, 'ssp': ('bitmapSsp', b'\\xa5",
        "{'psid': 36, 'sspRange': ('bitmapSspRange', {'sspValue': b'\\x01\\x02', 'sspBitmask': b'\\xff\\x00'})}",
        "{'psid': 37, 'sspRange': ('all', None)}",
        "{'psid': 38, 'sspRange': ('opaque', [b'', b'\\x01\\x02\\x03'])}",
        "{'psid': 39}",
        "'minChainLength': 3, 'chainLengthRange': -1, 'eeType': (b'@', 8)",
        "{'subjectPermissions': ('all', None), 'minChainLength': 1, 'chainLengthRange': 0",
        "'encryptionKey': {'supportedSymmAlg': 'aes128Ccm', 'publicKey': ('eciesNistP256',",
    ] {
        assert!(
            dump.contains(expected),
            "asn1tools decoded differently: {expected}"
        );
    }
}

/// `testdata/encrypted-data.json` is what the independent Python
/// implementation produces (it is deterministic): regenerating it gives
/// the same bytes.
#[test]
fn encrypted_data_vectors_are_reproducible() {
    if !asn1tools_ready(&["TS103097v131.asn"], &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("encrypted-data.json");
    let status = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/ecies_vectors.py"
        ))
        .arg(&out)
        .env("V2X_ASN1_DIR", asn1_dir())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        include_str!("../../testdata/encrypted-data.json"),
        "regenerate with: python3 v2x/tests/ecies_vectors.py v2x/testdata/encrypted-data.json"
    );
}
