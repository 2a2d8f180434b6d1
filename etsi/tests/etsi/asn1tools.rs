//! Every TS 102 941 message trustca emits, and every layer inside it,
//! decoded by Python asn1tools from the published ETSI TS 102 941 / TS 103
//! 097 / IEEE 1609.2 modules and re-encoded to the same bytes
//! (`tests/ts102941_asn1.py`). Skipped loudly without python3 + asn1tools
//! (fails then under TRUSTCA_REQUIRE_INTEROP=1).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;

use common::*;
use serde_json::{Value, json};
use trustca_etsi::station::{
    EnrolAs, authorization_request, authorization_response, enrolment_request, enrolment_response,
};
use trustca_etsi::trust_lists::{crl, rca_ctl};
use trustca_v2x::trust_lists::CtlEntry;
use trustca_v2x::ts102941::{EcSignature, EtsiTs102941Data};
use trustca_v2x::{EtsiSignedData, Ieee1609Dot2Content, PsidSsp, Time32, decode_data};

struct Jobs {
    dir: tempfile::TempDir,
    jobs: Vec<Value>,
}

impl Jobs {
    fn add(&mut self, name: &str, bytes: &[u8], asn1_type: &str, expect: Value) {
        let path = self
            .dir
            .path()
            .join(format!("{}-{name}.oer", self.jobs.len()));
        std::fs::write(&path, bytes).unwrap();
        self.jobs
            .push(json!({"path": path, "type": asn1_type, "expect": expect}));
    }
}

/// The data signed inside a signed `Ieee1609Dot2Data`.
fn signed_data(bytes: &[u8]) -> Vec<u8> {
    EtsiSignedData::from_coer(bytes)
        .unwrap()
        .data()
        .unwrap()
        .to_vec()
}

#[test]
fn asn1tools_decodes_every_message_and_layer() {
    if !python_can_run() {
        return;
    }
    let d = Deployment::new();
    let mut j = Jobs {
        dir: tempfile::tempdir().unwrap(),
        jobs: Vec::new(),
    };
    let cam = vec![PsidSsp {
        psid: 36,
        ssp: None,
    }];
    // Enrolment: request, every layer, response.
    let ec_key = signing_key();
    let who = EnrolAs::Canonical {
        its_id: ITS_ID,
        key: &d.canonical_key,
    };
    let pending = enrolment_request(who, &ec_key, cam.clone(), &d.h.ea, d.now).unwrap();
    j.add(
        "ec-request",
        &pending.message,
        "EnrolmentRequestMessage",
        json!({"protocolVersion": 3}),
    );
    let outer = trustca_etsi::envelope::encrypted(&pending.message)
        .unwrap()
        .open_as_certificate(&d.h.ea_enc, &d.h.ea)
        .unwrap();
    j.add(
        "ec-request-signed",
        &outer,
        "EtsiTs103097Data",
        json!({"content.signedData.signer.self": null}),
    );
    let data = signed_data(&outer);
    j.add(
        "ec-request-data",
        &data,
        "EtsiTs102941Data",
        json!({"version": 1}),
    );
    let EtsiTs102941Data::EnrolmentRequest(pop) = EtsiTs102941Data::from_coer(&data).unwrap()
    else {
        panic!("not an enrolment request")
    };
    j.add(
        "ec-request-pop",
        pop.as_coer(),
        "InnerEcRequestSignedForPop",
        json!({}),
    );
    j.add(
        "inner-ec-request",
        pop.data().unwrap(),
        "InnerEcRequest",
        json!({"itsId": hex::encode(ITS_ID), "certificateFormat": 1}),
    );
    let answer = d.ea.answer_enrolment(&pending.message, d.now).unwrap();
    j.add(
        "ec-response",
        &answer.message,
        "EnrolmentResponseMessage",
        json!({"protocolVersion": 3}),
    );
    let signed = pending.answer_plaintext(&answer.message).unwrap();
    j.add(
        "ec-response-signed",
        &signed,
        "EtsiTs103097Data",
        json!({"content.signedData.signer.digest": hex::encode(d.h.ea.hashed_id8())}),
    );
    j.add(
        "ec-response-data",
        &signed_data(&signed),
        "EtsiTs102941Data",
        json!({"content.enrolmentResponse.responseCode": "ok"}),
    );
    let ec = enrolment_response(&pending, &answer.message, &d.h.ea)
        .unwrap()
        .certificate
        .unwrap();
    j.add(
        "ec",
        ec.as_coer(),
        "EtsiTs103097Certificate",
        json!({"toBeSigned.id.none": null}),
    );
    // A refusal (unknown station) is a response without a certificate.
    let who = EnrolAs::Canonical {
        its_id: b"urn:nobody",
        key: &d.canonical_key,
    };
    let refused = enrolment_request(who, &signing_key(), cam.clone(), &d.h.ea, d.now).unwrap();
    let answer = d.ea.answer_enrolment(&refused.message, d.now).unwrap();
    let signed = refused.answer_plaintext(&answer.message).unwrap();
    j.add(
        "ec-refusal-data",
        &signed_data(&signed),
        "EtsiTs102941Data",
        json!({"content.enrolmentResponse.responseCode": "unknownits"}),
    );
    // Authorization: request, layers, the AA-EA validation, response.
    let at_key = signing_key();
    let pending =
        authorization_request(public(&at_key), cam, &ec, &ec_key, &d.h.ea, &d.h.aa, d.now).unwrap();
    j.add(
        "at-request",
        &pending.message,
        "AuthorizationRequestMessage",
        json!({"protocolVersion": 3}),
    );
    let plain = trustca_etsi::envelope::encrypted(&pending.message)
        .unwrap()
        .open_as_certificate(&d.h.aa_enc, &d.h.aa)
        .unwrap();
    j.add(
        "at-request-unsecured",
        &plain,
        "Ieee1609Dot2Data",
        json!({}),
    );
    let Ieee1609Dot2Content::Unsecured(data) = decode_data(&plain).unwrap() else {
        panic!("not unsecured")
    };
    j.add(
        "at-request-data",
        data,
        "EtsiTs102941Data",
        json!({"content.authorizationRequest.sharedAtRequest.eaId": hex::encode(d.h.ea.hashed_id8())}),
    );
    let EtsiTs102941Data::AuthorizationRequest(inner) = EtsiTs102941Data::from_coer(data).unwrap()
    else {
        panic!("not an authorization request")
    };
    j.add(
        "shared-at-request",
        &inner.shared.to_coer(),
        "SharedAtRequest",
        json!({"certificateFormat": 1}),
    );
    let EcSignature::Encrypted(e) = &inner.ec_signature else {
        panic!("ecSignature in clear")
    };
    let ec_sig = e.open_as_certificate(&d.h.ea_enc, &d.h.ea).unwrap();
    j.add(
        "ec-signature",
        &ec_sig,
        "EtsiTs103097Data-SignedExternalPayload",
        json!({"content.signedData.signer.digest": hex::encode(ec.hashed_id8())}),
    );
    let answer = d.aa.answer(&pending.message, d.now).unwrap();
    j.add(
        "at-response",
        &answer.message,
        "AuthorizationResponseMessage",
        json!({"protocolVersion": 3}),
    );
    let signed = pending.answer_plaintext(&answer.message).unwrap();
    j.add(
        "at-response-data",
        &signed_data(&signed),
        "EtsiTs102941Data",
        json!({"content.authorizationResponse.responseCode": "ok"}),
    );
    let at = authorization_response(&pending, &answer.message, &d.h.aa)
        .unwrap()
        .certificate
        .unwrap();
    j.add(
        "at",
        at.as_coer(),
        "EtsiTs103097Certificate",
        json!({"toBeSigned.id.none": null, "toBeSigned.crlSeries": 0}),
    );
    let seen = d.link.seen.lock().unwrap();
    j.add(
        "validation-request",
        &seen[0],
        "AuthorizationValidationRequestMessage",
        json!({"protocolVersion": 3}),
    );
    let signed = trustca_etsi::envelope::encrypted(&seen[0])
        .unwrap()
        .open_as_certificate(&d.h.ea_enc, &d.h.ea)
        .unwrap();
    j.add(
        "validation-request-data",
        &signed_data(&signed),
        "EtsiTs102941Data",
        json!({"content.authorizationValidationRequest.sharedAtRequest.keyTag": hex::encode(inner.shared.key_tag)}),
    );
    drop(seen);
    // The validation response, made again here with the same request.
    let validation =
        d.ea.answer_validation(&d.link.seen.lock().unwrap()[0], d.now)
            .unwrap();
    j.add(
        "validation-response",
        &validation.message,
        "AuthorizationValidationResponseMessage",
        json!({"protocolVersion": 3}),
    );

    run(&j);
}

/// Runs the checker on every job; each must decode, re-encode the same and
/// meet its expectations.
fn run(j: &Jobs) {
    let jobs = j.dir.path().join("jobs.json");
    std::fs::write(&jobs, serde_json::to_vec(&j.jobs).unwrap()).unwrap();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/ts102941_asn1.py"
        ))
        .arg(&jobs)
        .env("V2X_ASN1_DIR", asn1_dir())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "asn1tools:\n{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok ")).count(),
        j.jobs.len(),
        "{text}"
    );
}

#[test]
fn asn1tools_decodes_the_root_ctl_and_crl() {
    if !python_can_run() {
        return;
    }
    let h = Hierarchy::new();
    let mut j = Jobs {
        dir: tempfile::tempdir().unwrap(),
        jobs: Vec::new(),
    };
    let next = Time32::from_unix(NOW + 86_400).unwrap();
    let entries = vec![
        CtlEntry::Ea {
            certificate: h.ea.clone(),
            aa_access_point: "http://ea.example/v".into(),
            its_access_point: Some("http://ea.example/e".into()),
        },
        CtlEntry::Aa {
            certificate: h.aa.clone(),
            access_point: "http://aa.example/a".into(),
        },
        CtlEntry::Dc {
            url: "http://dc.example/".into(),
            roots: vec![h.root.hashed_id8()],
        },
    ];
    let ctl = rca_ctl(&h.root, &h.root_key, entries, 7, next, NOW).unwrap();
    j.add(
        "rca-ctl",
        &ctl,
        "RcaCertificateTrustListMessage",
        json!({"content.signedData.tbsData.headerInfo.psid": 624}),
    );
    j.add(
        "rca-ctl-data",
        &signed_data(&ctl),
        "EtsiTs102941Data",
        json!({"content.certificateTrustListRca.ctlSequence": 7,
               "content.certificateTrustListRca.isFullCtl": true}),
    );
    let this = Time32::from_unix(NOW).unwrap();
    let list = crl(&h.root, &h.root_key, vec![[5; 8]], this, next, NOW).unwrap();
    j.add(
        "crl",
        &list,
        "CertificateRevocationListMessage",
        json!({"content.signedData.tbsData.headerInfo.psid": 622}),
    );
    j.add(
        "crl-data",
        &signed_data(&list),
        "EtsiTs102941Data",
        json!({"content.certificateRevocationList.nextUpdate": next.0}),
    );
    run(&j);
}

#[test]
fn asn1tools_decodes_a_trust_list_managers_ectl() {
    if !python_can_run() {
        return;
    }
    let (a, b) = (Hierarchy::new(), Hierarchy::new());
    let (tlm, key) = tlm();
    let mut j = Jobs {
        dir: tempfile::tempdir().unwrap(),
        jobs: Vec::new(),
    };
    let next = Time32::from_unix(NOW + 86_400).unwrap();
    let entries = ectl_entries(&a, &b);
    let ectl = trustca_etsi::trust_lists::tlm_ectl(&tlm, &key, entries, 3, next, NOW).unwrap();
    j.add(
        "tlm",
        tlm.as_coer(),
        "EtsiTs103097Certificate",
        json!({"toBeSigned.id.name": "tlm.etsi.test"}),
    );
    j.add(
        "ectl",
        &ectl,
        "TlmCertificateTrustListMessage",
        json!({"content.signedData.tbsData.headerInfo.psid": 624}),
    );
    j.add(
        "ectl-data",
        &signed_data(&ectl),
        "EtsiTs102941Data",
        json!({"content.certificateTrustListTlm.ctlSequence": 3,
               "content.certificateTrustListTlm.isFullCtl": true}),
    );
    run(&j);
}
