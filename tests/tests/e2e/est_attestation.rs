//! End to end: TPM key attestation over EST (issue 25). A real swtpm makes
//! the device's key, AK and certification (tpm2-tools); `curl` asks the
//! real server's `attestchallenge` for the credential and posts the CSR,
//! which the TPM key signed and which carries the attestation attribute,
//! to `simpleenroll`; `openssl` reads the answer and verifies the chain.
//! A certification of another key, a replayed answer and an EK from
//! another vendor's CA are refused with their HTTP status and a sentence,
//! and nothing is stored for the refused identities.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::swtpm::{self as attestation_kit, LocalCa, SwTpm};
use crate::common::*;
use crate::est::{Work, get_trust, register_model, start_with_est, trust_client};

use base64::Engine as _;
use trustca_api::client::connect;
use trustca_api::est::attestation::{TPM_ATTESTATION_ARCS, encode_attribute};
use trustca_ca::attestation::TpmKeyAttestation;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

const KEY_ATTRS: &str = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign";
const MODEL: &str = "TPM-EV";

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(v)
}

fn unb64(v: &serde_json::Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

/// `attestchallenge` with curl: (HTTP status, JSON or refusal text).
fn ask_challenge(w: &Work, est: &str, chain: &[Vec<u8>], ak: &[u8]) -> (u16, String) {
    let body = serde_json::json!({
        "ek_certificate_chain": chain.iter().map(|c| b64(c)).collect::<Vec<_>>(),
        "ak_public": b64(ak),
    });
    let file = w.path("challenge.json");
    std::fs::write(&file, body.to_string()).unwrap();
    let (code, _, answer) = w.curl(
        &format!("{est}/automotive/attestchallenge"),
        Some("acme"),
        Some((&file, "application/json")),
    );
    (code, String::from_utf8(answer).unwrap())
}

/// A challenge answered by `tpm`: (challenge id, recovered secret). The
/// `credential` field is the file tpm2_activatecredential reads.
fn challenge(w: &Work, est: &str, tpm: &SwTpm, vendor: &LocalCa) -> (Vec<u8>, Vec<u8>) {
    let (code, text) = ask_challenge(w, est, &tpm.ek_chain(vendor), &tpm.read("ak.pub"));
    assert_eq!(code, 200, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let blob = unb64(&json["credential_blob"]);
    let seed = unb64(&json["encrypted_secret"]);
    let mut file = vec![0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1];
    file.extend_from_slice(&blob);
    file.extend_from_slice(&seed);
    assert_eq!(unb64(&json["credential"]), file);
    let id = unb64(&json["challenge_id"]);
    assert_eq!(id.len(), 16);
    (id, tpm.activate(&blob, &seed).unwrap())
}

/// The base64 CSR of key `key` for device `serial`, carrying the TPM's
/// certification of `certified` with `nonce` under challenge `id`.
fn attested_csr(
    w: &Work,
    tpm: &SwTpm,
    key: &str,
    serial: &str,
    certified: &str,
    id: &[u8],
    nonce: &[u8],
) -> std::path::PathBuf {
    let (attest, signature) = tpm.certify_creation(certified, nonce);
    let att = TpmKeyAttestation {
        challenge_id: id.to_vec(),
        key_public: tpm.read(&format!("{certified}.pub")),
        attest,
        signature,
    };
    let value = encode_attribute(&att).unwrap();
    // The attribute's values: a SET holding the one value.
    let mut set = vec![0x31];
    set.extend(der_length(value.len()));
    set.extend(value);
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    let dn = &mut params.distinguished_name;
    dn.push(rcgen::DnType::OrganizationName, "Acme");
    dn.push(rcgen::DnType::CommonName, MODEL);
    dn.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
        rcgen::DnValue::PrintableString(serial.try_into().unwrap()),
    );
    let der = tpm.csr_with(
        key,
        &params,
        vec![rcgen::Attribute {
            oid: &TPM_ATTESTATION_ARCS,
            values: set,
        }],
    );
    let path = w.path(&format!("{serial}.csr.b64"));
    std::fs::write(&path, b64(&der)).unwrap();
    path
}

fn der_length(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

/// `simpleenroll` with curl: (HTTP status, body).
fn enroll(w: &Work, est: &str, csr: &std::path::Path) -> (u16, Vec<u8>) {
    let (code, body) = w.post_csr(&format!("{est}/automotive/simpleenroll"), "acme", csr);
    (code, body)
}

fn refused(answer: (u16, Vec<u8>), status: u16, text: &str) {
    let body = String::from_utf8_lossy(&answer.1);
    assert_eq!(answer.0, status, "{body}");
    assert!(body.contains(text), "{text:?} not in {body:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn est_enrollment_with_tpm_attestation_and_its_refusals() {
    if !attestation_kit::available() || !available("curl", &["--version"], "apt-get install curl") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let vendor = LocalCa::new(&work.path().join("vendor-ca"));
    let other_vendor = LocalCa::new(&work.path().join("other-ca"));
    let tpm = SwTpm::new(&work.path().join("tpm-a"), &vendor);
    let foreign = SwTpm::new(&work.path().join("tpm-c"), &other_vendor);

    let (ca, est) = start_with_est().await;
    let w = Work::new(&ca);
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let ops = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    w.write_creds("acme", &acme);
    register_model(&ca, &acme, "automotive", MODEL, "1.0.0..1.9.9").await;
    pb::attestation_client::AttestationClient::new(connect(&ca.url(), &ops).await.unwrap())
        .add_attestation_root(pb::AttestationRootRequest {
            sector: "automotive".into(),
            certificate_der: pem::parse(std::fs::read(vendor.root_pem_path()).unwrap())
                .unwrap()
                .into_contents(),
            sha256: String::new(),
        })
        .await
        .unwrap();
    tpm.create_key("dev", KEY_ATTRS);
    tpm.create_key("other", KEY_ATTRS);

    // An EK from another vendor's CA: 403 at the challenge.
    let (code, text) = ask_challenge(
        &w,
        &est,
        &foreign.ek_chain(&other_vendor),
        &foreign.read("ak.pub"),
    );
    assert_eq!(code, 403, "{text}");
    assert!(
        text.contains("does not chain to a TPM manufacturer root registered"),
        "{text}"
    );
    // Not JSON: 400.
    let junk = w.path("junk.json");
    std::fs::write(&junk, "ek").unwrap();
    let (code, _, body) = w.curl(
        &format!("{est}/automotive/attestchallenge"),
        Some("acme"),
        Some((&junk, "application/json")),
    );
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));

    // A certification of another key of the same TPM: 403.
    let (id, secret) = challenge(&w, &est, &tpm, &vendor);
    let csr = attested_csr(&w, &tpm, "dev", "TPM-E2", "other", &id, &secret);
    refused(enroll(&w, &est, &csr), 403, "certifies another key");

    // The real thing: 200, the attested basis in the certificate.
    let (id, secret) = challenge(&w, &est, &tpm, &vendor);
    let good = attested_csr(&w, &tpm, "dev", "TPM-E1", "dev", &id, &secret);
    let (code, body) = enroll(&w, &est, &good);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let leaf = w.pkcs7_certs("attested", &body);
    assert_eq!(leaf.len(), 1);
    let leaf_der = pem::parse(&leaf[0]).unwrap().into_contents();
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    assert_eq!(cert.public_key().raw, &tpm.read("dev.spki")[..]);
    let ext = trustca_model::trust_extension(&cert, &Default::default())
        .unwrap()
        .unwrap();
    let attested: Vec<_> = ext
        .basis
        .iter()
        .filter(|b| b.attestation.is_some())
        .collect();
    assert_eq!(attested.len(), 1, "{:?}", ext.basis);
    assert_eq!(attested[0].result, "tpm2");
    assert_eq!(
        attested[0].attestation.as_deref(),
        Some("tpm2-certify-creation")
    );
    let (_, _, body) = w.curl(&format!("{est}/automotive/cacerts"), None, None);
    let root_der = pem::parse(ca.root_pem()).unwrap().into_contents();
    let sector_ca = w
        .pkcs7_certs("cacerts", &body)
        .iter()
        .map(|p| pem::parse(p).unwrap().into_contents())
        .find(|d| *d != root_der)
        .unwrap();
    let chain = vec![leaf_der.clone(), sector_ca];
    let (ok, text) = openssl_verify(work.path(), &ca.root_pem(), &chain, &[]);
    assert!(ok, "{text}");

    // Replaying the very request, and the answer under another serial
    // (signed by the TPM key again): 409, the challenge is spent.
    refused(enroll(&w, &est, &good), 409, "already answered");
    let replay = attested_csr(&w, &tpm, "dev", "TPM-E3", "dev", &id, &secret);
    refused(enroll(&w, &est, &replay), 409, "already answered");

    // Nothing was stored for the refused identities; TPM-E2 enrolls now.
    let mut trust = trust_client(&ca, &acme).await;
    for serial in ["TPM-E2", "TPM-E3"] {
        let urn = format!("urn:trustca:automotive:Acme:{MODEL}:{serial}");
        let e = get_trust(&mut trust, &urn).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    }
    let (id, secret) = challenge(&w, &est, &tpm, &vendor);
    let csr = attested_csr(&w, &tpm, "dev", "TPM-E2", "dev", &id, &secret);
    let (code, body) = enroll(&w, &est, &csr);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
}
