//! End to end: hardware key attestation at enrollment (issue 25) with a
//! real software TPM (swtpm, EK certificates from swtpm-localca) driven by
//! tpm2-tools, against a real server on 127.0.0.1 and real gRPC clients.
//! The device's key is created in the TPM, its CSR signed by the TPM, the
//! AK bound to the EK by the server's credential (tpm2_activatecredential
//! recovers it), the key certified with tpm2_certifycreation. Each bad
//! input is refused with its status, and nothing is stored: the same
//! identity enrolls afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::swtpm as attestation_kit;

use attestation_kit::{LocalCa, SwTpm};
use common::*;
use tonic::Code;
use tonic::transport::Channel;
use trustca_api::client::{ClientCredentials, connect};
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

const KEY_ATTRS: &str = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign";

type Attestation = pb::attestation_client::AttestationClient<Channel>;

async fn attestation_client(ca: &TestCa, creds: &ClientCredentials) -> Attestation {
    pb::attestation_client::AttestationClient::new(connect(&ca.url(), creds).await.unwrap())
}

fn tpm_request(
    serial: &str,
    csr: Vec<u8>,
    att: Option<pb::TpmKeyAttestation>,
) -> pb::EnrollRequest {
    let mut r = request("automotive", "Acme", serial, csr, automotive_lv5());
    r.tpm_attestation = att;
    r
}

/// Steps 1 and 2: a challenge for `tpm`'s AK with `ek_chain`, activated
/// by `tpm`; returns the challenge and the recovered secret.
async fn challenge(
    att: &mut Attestation,
    tpm: &SwTpm,
    ek_chain: Vec<Vec<u8>>,
) -> Result<(pb::EnrollmentChallenge, Result<Vec<u8>, String>), tonic::Status> {
    let c = att
        .get_enrollment_challenge(pb::EnrollmentChallengeRequest {
            sector: "automotive".into(),
            ek_certificate_chain: ek_chain,
            ak_public: tpm.read("ak.pub"),
        })
        .await?
        .into_inner();
    let secret = tpm.activate(&c.credential_blob, &c.encrypted_secret);
    Ok((c, secret))
}

fn attestation(tpm: &SwTpm, key: &str, id: &[u8], nonce: &[u8]) -> pb::TpmKeyAttestation {
    let (attest, signature) = tpm.certify_creation(key, nonce);
    pb::TpmKeyAttestation {
        challenge_id: id.to_vec(),
        key_public: tpm.read(&format!("{key}.pub")),
        attest,
        signature,
    }
}

/// Runs the `trustca` binary; its stdout, after asserting success.
fn cli(args: &[&str], client: &[String]) -> Vec<u8> {
    let out = std::process::Command::new(trustca_bin())
        .args(args)
        .args(client)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn refused(r: Result<tonic::Response<pb::EnrollResponse>, tonic::Status>, code: Code, text: &str) {
    let e = r.expect_err("must be refused");
    assert_eq!(e.code(), code, "{e:?}");
    assert!(
        e.message().contains(text),
        "{text:?} not in {:?}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_attested_enrollment_and_every_refusal() {
    if !attestation_kit::available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let vendor = LocalCa::new(&work.path().join("vendor-ca"));
    let other_vendor = LocalCa::new(&work.path().join("other-ca"));
    let tpm = SwTpm::new(&work.path().join("tpm-a"), &vendor);
    let second = SwTpm::new(&work.path().join("tpm-b"), &vendor);
    let foreign = SwTpm::new(&work.path().join("tpm-c"), &other_vendor);

    let ca = TestCa::start().await;
    let maker = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut enroll = ca.client(&maker).await;
    let mut att = attestation_client(&ca, &maker).await;

    // No root registered yet: FAILED_PRECONDITION, saying what to do.
    let e = challenge(&mut att, &tpm, tpm.ek_chain(&vendor))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains("attestation-root add"), "{e:?}");

    // The operator registers the vendor's root with the binary.
    let args = client_args(&ca, work.path(), "ops", &operator);
    let root = vendor.root_pem_path().display().to_string();
    let out = cli(
        &[
            "attestation-root",
            "add",
            "--sector",
            "automotive",
            "--json",
            "--cert",
            &root,
        ],
        &args,
    );
    let added: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert!(
        added["subject"]
            .as_str()
            .unwrap()
            .contains("swtpm-localca-rootca"),
        "{added}"
    );
    // A manufacturer may not register roots.
    let e = attestation_client(&ca, &maker)
        .await
        .add_attestation_root(pb::AttestationRootRequest {
            sector: "automotive".into(),
            certificate_der: vec![0x30, 0],
            sha256: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The device's key, made in the TPM; its CSR signed by the TPM.
    tpm.create_key("dev", KEY_ATTRS);
    let csr = tpm.csr("dev");

    // An EK from another vendor's CA: PERMISSION_DENIED at the challenge.
    let e = challenge(&mut att, &foreign, foreign.ek_chain(&other_vendor))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("registered"), "{e:?}");

    // An AK of another TPM presented with this TPM's EK: the credential is
    // made to this EK, so the other TPM cannot activate it, and whatever it
    // certifies with is not the challenge.
    let c = att
        .get_enrollment_challenge(pb::EnrollmentChallengeRequest {
            sector: "automotive".into(),
            ek_certificate_chain: tpm.ek_chain(&vendor),
            ak_public: second.read("ak.pub"),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        second
            .activate(&c.credential_blob, &c.encrypted_secret)
            .is_err()
    );
    assert!(
        tpm.activate(&c.credential_blob, &c.encrypted_secret)
            .is_err()
    );
    second.create_key("dev", KEY_ATTRS);
    let other_csr = second.csr("dev");
    let guess = attestation(&second, "dev", &c.challenge_id, &[0u8; 32]);
    refused(
        enroll
            .enroll(tpm_request("TPM-1", other_csr, Some(guess)))
            .await,
        Code::PermissionDenied,
        "not over this server's challenge",
    );

    // A certification of another key of the same TPM.
    tpm.create_key("other", KEY_ATTRS);
    let (c, secret) = challenge(&mut att, &tpm, tpm.ek_chain(&vendor))
        .await
        .unwrap();
    let over_other = attestation(&tpm, "other", &c.challenge_id, &secret.unwrap());
    refused(
        enroll
            .enroll(tpm_request("TPM-1", csr.clone(), Some(over_other)))
            .await,
        Code::PermissionDenied,
        "another key",
    );

    // An exportable key (fixedTPM and fixedParent clear).
    tpm.create_key("soft", "sensitivedataorigin|userwithauth|sign");
    let soft_csr = tpm.csr("soft");
    let (c, secret) = challenge(&mut att, &tpm, tpm.ek_chain(&vendor))
        .await
        .unwrap();
    let soft = attestation(&tpm, "soft", &c.challenge_id, &secret.unwrap());
    refused(
        enroll
            .enroll(tpm_request("TPM-1", soft_csr, Some(soft)))
            .await,
        Code::PermissionDenied,
        "lacks fixedTPM, fixedParent",
    );

    // Malformed TPM structures: INVALID_ARGUMENT.
    let (c, secret) = challenge(&mut att, &tpm, tpm.ek_chain(&vendor))
        .await
        .unwrap();
    let mut broken = attestation(&tpm, "dev", &c.challenge_id, &secret.unwrap());
    broken.attest.truncate(30);
    refused(
        enroll
            .enroll(tpm_request("TPM-1", csr.clone(), Some(broken)))
            .await,
        Code::InvalidArgument,
        "malformed TPMS_ATTEST",
    );
    let e = att
        .get_enrollment_challenge(pb::EnrollmentChallengeRequest {
            sector: "automotive".into(),
            ek_certificate_chain: tpm.ek_chain(&vendor),
            ak_public: vec![0, 4, 0, 0x23, 0],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // The real thing.
    let (c, secret) = challenge(&mut att, &tpm, tpm.ek_chain(&vendor))
        .await
        .unwrap();
    let secret = secret.unwrap();
    let good = attestation(&tpm, "dev", &c.challenge_id, &secret);
    let issued = enroll
        .enroll(tpm_request("TPM-1", csr.clone(), Some(good.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.level, 5);
    let (_, cert) = x509_parser::parse_x509_certificate(&issued.chain_der[0]).unwrap();
    let ext = trustca_model::trust_extension(&cert, &Default::default())
        .unwrap()
        .unwrap();
    let hw: Vec<_> = ext
        .basis
        .iter()
        .filter(|b| b.evidence == "hardware-root-of-trust")
        .collect();
    assert_eq!(hw.len(), 1, "{:?}", ext.basis);
    assert_eq!(hw[0].result, "tpm2");
    assert_eq!(hw[0].attestation.as_deref(), Some("tpm2-certify-creation"));
    // The certificate is for the TPM's key, and openssl accepts the chain.
    let tpm_spki = tpm.read("dev.spki");
    assert_eq!(cert.public_key().raw, &tpm_spki[..]);
    let (ok, text) = openssl_verify(work.path(), &ca.root_pem(), &issued.chain_der, &[]);
    assert!(ok, "{text}");
    // `trustca inspect` shows the basis, for people and for scripts.
    let leaf = work.path().join("tpm-1.pem");
    std::fs::write(&leaf, pem_of(&issued.chain_der[0])).unwrap();
    let leaf = leaf.display().to_string();
    let shown = String::from_utf8(cli(&["inspect", &leaf], &[])).unwrap();
    assert!(
        shown.contains("hardware-root-of-trust  tpm2  (attested: tpm2-certify-creation)"),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&cli(&["inspect", "--json", &leaf], &[])).unwrap();
    let text = json.to_string();
    assert!(text.contains("\"basis\":\"attested\""), "{text}");

    // Replaying the same answer (another serial): the challenge is spent.
    refused(
        enroll
            .enroll(tpm_request("TPM-2", csr.clone(), Some(good)))
            .await,
        Code::FailedPrecondition,
        "already answered",
    );

    // EnrollBatch carries attestation the same way.
    tpm.create_key("line", KEY_ATTRS);
    let line_csr = tpm.csr("line");
    let (c, secret) = challenge(&mut att, &tpm, tpm.ek_chain(&vendor))
        .await
        .unwrap();
    let proof = attestation(&tpm, "line", &c.challenge_id, &secret.unwrap());
    let item = pb::EnrollBatchItem {
        id: 7,
        request: Some(tpm_request("TPM-3", line_csr, Some(proof))),
    };
    let mut results = enroll
        .enroll_batch(tokio_stream::iter(vec![item]))
        .await
        .unwrap()
        .into_inner();
    let result = results.message().await.unwrap().unwrap();
    match result.outcome {
        Some(pb::enroll_batch_result::Outcome::Certificate(c)) => {
            let (_, cert) = x509_parser::parse_x509_certificate(&c.chain_der[0]).unwrap();
            let ext = trustca_model::trust_extension(&cert, &Default::default())
                .unwrap()
                .unwrap();
            assert!(
                ext.basis.iter().any(|b| b.attestation.is_some()),
                "{:?}",
                ext.basis
            );
        }
        other => panic!("{other:?}"),
    }

    // Refused requests stored nothing: TPM-1 enrolled only now, TPM-2 not
    // at all, so it enrolls (without attestation: declared evidence, which
    // the shipped automotive policy caps at Lv.3).
    let (_, plain_csr) = common::csr();
    let plain = enroll
        .enroll(request(
            "automotive",
            "Acme",
            "TPM-2",
            plain_csr,
            automotive_lv5(),
        ))
        .await
        .unwrap()
        .into_inner();
    let (_, cert) = x509_parser::parse_x509_certificate(&plain.chain_der[0]).unwrap();
    let ext = trustca_model::trust_extension(&cert, &Default::default())
        .unwrap()
        .unwrap();
    assert!(
        ext.basis.iter().all(|b| b.attestation.is_none()),
        "{:?}",
        ext.basis
    );
    assert_eq!(plain.level, DECLARED_AUTOMOTIVE_LEVEL);
    assert_eq!(ext.level.map(|l| l.get()), Some(3));

    // `list` shows the root; `remove` takes it away and challenges stop.
    let out = cli(&["attestation-root", "list", "--json"], &args);
    let listed: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let sha = listed[0]["sha256"].as_str().unwrap().to_owned();
    cli(
        &[
            "attestation-root",
            "remove",
            "--sector",
            "automotive",
            "--sha256",
            &sha,
        ],
        &args,
    );
    let e = challenge(&mut att, &tpm, tpm.ek_chain(&vendor))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // The audit entry of the declared-only enrollment says why it got
    // Lv.3, not the Lv.5 its evidence names; the attested one has none.
    drop((enroll, att));
    let mut ca = ca;
    ca.stop().await;
    use trustca_store::Storage;
    let store = trustca_store::SledStorage::open(&ca.data().join("db")).unwrap();
    let entries: Vec<String> = store
        .audit_entries_raw(0, 1000)
        .unwrap()
        .into_iter()
        .map(|(_, e)| String::from_utf8_lossy(&e).into_owned())
        .collect();
    let issued = |serial: &str| {
        entries
            .iter()
            .find(|e| e.contains(&format!(":{serial}")) && e.contains("level"))
            .unwrap_or_else(|| panic!("no issuance of {serial}"))
            .clone()
    };
    let capped = issued("TPM-2");
    assert!(
        capped.contains("counts up to level 3 in automotive")
            && capped.contains("level 5 needs an attested key"),
        "{capped}"
    );
    assert!(!issued("TPM-1").contains("capped"));
}

/// Open challenges are kept in the store: a server restarted between the
/// challenge and the enrollment takes the answer, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_survives_a_server_restart() {
    if !attestation_kit::available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let vendor = LocalCa::new(&work.path().join("vendor-ca"));
    let tpm = SwTpm::new(&work.path().join("tpm"), &vendor);
    let mut ca = TestCa::start().await;
    let maker = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    attestation_client(&ca, &operator)
        .await
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
    let csr = tpm.csr("dev");
    let (c, secret) = challenge(
        &mut attestation_client(&ca, &maker).await,
        &tpm,
        tpm.ek_chain(&vendor),
    )
    .await
    .unwrap();
    let proof = attestation(&tpm, "dev", &c.challenge_id, &secret.unwrap());

    ca.restart().await;
    let mut enroll = ca.client(&maker).await;
    let issued = enroll
        .enroll(tpm_request("RESTART-1", csr.clone(), Some(proof.clone())))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(issued.level, 5);
    refused(
        enroll
            .enroll(tpm_request("RESTART-2", csr, Some(proof)))
            .await,
        Code::FailedPrecondition,
        "already answered",
    );
}
