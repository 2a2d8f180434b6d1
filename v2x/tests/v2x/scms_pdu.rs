//! IEEE 1609.2.1 messages (`ScmsPdu`) and their `Ieee1609Dot2Data` frames:
//! round trips, the signing rule, rejections, and the independent
//! OpenSCMS request vectors (`shared/spec/v2x-vectors/openscms/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use proptest::prelude::*;
use trustca_v2x::*;

fn request_tbs(k: &ring::signature::EcdsaKeyPair) -> ToBeSigned {
    let mut t = ToBeSigned::new(
        CertificateId::None,
        ValidityPeriod {
            start: start(),
            duration: Duration::Hours(168),
        },
        public(k),
    );
    t.app_permissions = Some(vec![PsidSsp {
        psid: 32,
        ssp: None,
    }]);
    t
}

fn every_message() -> Vec<ScmsPdu> {
    let c = chain();
    let k = key();
    let mut ec_tbs = request_tbs(&k);
    ec_tbs.app_permissions = None;
    ec_tbs.cert_request_permissions = Some(vec![PsidGroupPermissions::all(
        1,
        PsidGroupPermissions::EE_APP,
    )]);
    vec![
        ScmsPdu::EeRaCertRequest(EeRaCertRequest {
            generation_time: start(),
            cert_type: CertificateType::Explicit,
            tbs_cert: request_tbs(&k),
            additional_params: Some(AdditionalParams::Unified([7; 16])),
        }),
        ScmsPdu::EeRaCertRequest(EeRaCertRequest {
            generation_time: start(),
            cert_type: CertificateType::Explicit,
            tbs_cert: request_tbs(&k),
            additional_params: Some(AdditionalParams::Original {
                signing_expansion: [1; 16],
                encryption_key: public(&key()),
                encryption_expansion: [2; 16],
            }),
        }),
        ScmsPdu::RaEeCertAck(RaEeCertAck {
            generation_time: start(),
            request_hash: [9; 8],
            first_i: Some(1040),
            next_dl_time: start(),
        }),
        ScmsPdu::EeRaDownloadRequest(EeRaDownloadRequest {
            generation_time: start(),
            filename: "0909090909090909_410.zip".into(),
        }),
        ScmsPdu::EeEcaCertRequest(EeEcaCertRequest {
            generation_time: start(),
            cert_type: CertificateType::Explicit,
            tbs_cert: ec_tbs,
            canonical_id: Some("vin-1".into()),
        }),
        ScmsPdu::EcaEeCertResponse(EcaEeCertResponse {
            request_hash: [3; 8],
            eca_cert_chain: vec![c.ca.clone(), c.root.clone()],
            certificate: c.ticket.clone(),
            private_key_info: None,
        }),
        ScmsPdu::AcaEeCertResponse(AcaEeCertResponse {
            generation_time: start(),
            certificate: c.ticket,
            private_key_info: Some([5; 32]),
        }),
    ]
}

#[test]
fn every_message_round_trips() {
    for pdu in every_message() {
        let bytes = pdu.to_coer();
        assert_eq!(ScmsPdu::from_coer(&bytes).unwrap(), pdu);
        // Cut anywhere: an error, never a panic or a shorter message.
        for cut in 0..bytes.len() {
            assert!(ScmsPdu::from_coer(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            ScmsPdu::from_coer(&longer),
            Err(V2xError::TrailingBytes(1))
        ));
    }
}

#[test]
fn wrong_versions_and_extensions_are_refused() {
    let ack = every_message().remove(2).to_coer();
    let mut v = ack.clone();
    v[0] = 3; // ScmsPdu.version
    assert!(ScmsPdu::from_coer(&v).is_err());
    let mut v = ack.clone();
    v[3] |= 0x80; // extension bit of RaEeCertAck
    assert!(matches!(
        ScmsPdu::from_coer(&v),
        Err(V2xError::Unsupported(_))
    ));
    let mut v = ack;
    v[4] = 1; // RaEeCertAck.version
    assert!(ScmsPdu::from_coer(&v).is_err());
}

#[test]
fn a_long_form_length_is_not_canonical() {
    let dl = ScmsPdu::EeRaDownloadRequest(EeRaDownloadRequest {
        generation_time: start(),
        filename: "a.zip".into(),
    })
    .to_coer();
    // 02 87 83 00 t t t t 05 'a.zip' -> length as 81 05.
    let mut long = dl[..8].to_vec();
    long.extend_from_slice(&[0x81, 0x05]);
    long.extend_from_slice(&dl[9..]);
    assert!(ScmsPdu::from_coer(&long).is_err());
}

#[test]
fn signed_spdus_verify_and_tampering_is_caught() {
    let c = chain();
    let payload = every_message().remove(2).to_coer();
    let t = 1_000_000u64;
    let spdu = SignedSpdu::sign(&payload, SECURITY_MGMT_PSID, Some(t), &c.ca, &c.ca_key).unwrap();
    let back = SignedSpdu::from_coer(spdu.as_coer()).unwrap();
    back.verify().unwrap();
    assert_eq!(back.payload(), payload.as_slice());
    assert_eq!(back.psid(), SECURITY_MGMT_PSID);
    assert_eq!(back.generation_time(), Some(t));
    assert_eq!(back.signer(), &c.ca);
    assert!(matches!(
        decode_data(spdu.as_coer()).unwrap(),
        Ieee1609Dot2Content::Signed
    ));
    // One bit of the payload, then one of the signature.
    let at = spdu
        .as_coer()
        .windows(payload.len())
        .position(|w| w == payload)
        .unwrap();
    let mut bad = spdu.as_coer().to_vec();
    bad[at + 5] ^= 1;
    assert!(matches!(
        SignedSpdu::from_coer(&bad).unwrap().verify(),
        Err(V2xError::BadSignature)
    ));
    let mut bad = spdu.as_coer().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(SignedSpdu::from_coer(&bad).unwrap().verify().is_err());
}

#[test]
fn signed_certificate_requests_verify_by_self_or_by_certificate() {
    let c = chain();
    let new_key = key();
    let tbs_request = every_message().remove(4).to_coer();
    let own = SignedCertificateRequest::sign(&tbs_request, Signer::SelfSigned, &new_key).unwrap();
    let decoded =
        SignedCertificateRequest::from_coer(own.as_coer(), |b| Ok(ScmsPdu::decode_prefix(b)?.1))
            .unwrap();
    assert_eq!(decoded.tbs_request(), tbs_request.as_slice());
    decoded.verify(&public(&new_key)).unwrap();
    assert!(matches!(
        decoded.verify(&public(&key())),
        Err(V2xError::BadSignature)
    ));

    let by_cert = SignedCertificateRequest::sign(
        &tbs_request,
        Signer::Certificate(Box::new(c.ticket.clone())),
        &c.ticket_key,
    )
    .unwrap();
    let framed = signed_certificate_request_data(by_cert.as_coer());
    let Ieee1609Dot2Content::SignedCertificateRequest(inner) = decode_data(&framed).unwrap() else {
        panic!("not a signed certificate request");
    };
    let decoded =
        SignedCertificateRequest::from_coer(inner, |b| Ok(ScmsPdu::decode_prefix(b)?.1)).unwrap();
    assert_eq!(decoded.signer(), &Signer::Certificate(Box::new(c.ticket)));
    // The requested key plays no part when a certificate signed.
    decoded.verify(&public(&key())).unwrap();
}

#[test]
fn unsecured_and_encrypted_frames_round_trip() {
    let inner = b"scms pdu".to_vec();
    let framed = unsecured_data(&inner);
    assert!(
        matches!(decode_data(&framed).unwrap(), Ieee1609Dot2Content::Unsecured(b) if b == inner)
    );
    let recipient = key();
    let sealed = EncryptedData::seal_to_response_key(&public(&recipient), &inner).unwrap();
    let framed = encrypted_data(&sealed);
    let Ieee1609Dot2Content::Encrypted(back) = decode_data(&framed).unwrap() else {
        panic!("not encrypted");
    };
    assert_eq!(back, sealed);
    let mut v4 = framed.clone();
    v4[0] = 4;
    assert!(decode_data(&v4).is_err());
}

fn openscms(name: &str) -> Option<Vec<u8>> {
    let path = format!(
        "{}/../../shared/spec/v2x-vectors/openscms/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(_) => {
            trustca_testkit::skip_or_fail(&format!("{path} not found"));
            None
        }
    }
}

/// OpenSCMS's encrypted `EeRaCertRequestSpdu` and its decrypted inner
/// request: our codec reads the frame, the encryption and the whole
/// `EeRaCertRequest`. The signer is an implicit enrolment certificate,
/// outside what trustca accepts (explicit only), and is refused as such.
#[test]
fn openscms_ee_ra_cert_request_vectors() {
    let Some(outer) = openscms("EeRaCertRequest.dat") else {
        return;
    };
    let Ieee1609Dot2Content::Encrypted(e) = decode_data(&outer).unwrap() else {
        panic!("EeRaCertRequest.dat is not encryptedData");
    };
    assert_eq!(e.recipients().len(), 1);
    assert_eq!(encrypted_data(&e), outer, "re-encodes byte for byte");

    let Some(inner) = openscms("DecryptedEeRaCertRequestSpdu.dat") else {
        return;
    };
    let Ieee1609Dot2Content::SignedCertificateRequest(scr) = decode_data(&inner).unwrap() else {
        panic!("not a signedCertificateRequest");
    };
    let (pdu, used) = ScmsPdu::decode_prefix(&scr[1..]).unwrap();
    assert_eq!(pdu.to_coer(), scr[1..1 + used]);
    let ScmsPdu::EeRaCertRequest(req) = pdu else {
        panic!("not an eeRaCertRequest");
    };
    assert_eq!(req.cert_type, CertificateType::Explicit);
    assert_eq!(
        req.tbs_cert.id,
        CertificateId::Name("application.client.name".into())
    );
    assert_eq!(req.tbs_cert.validity.duration, Duration::Hours(169));
    let psids: Vec<u64> = req
        .tbs_cert
        .app_permissions
        .iter()
        .flatten()
        .map(|p| p.psid)
        .collect();
    assert_eq!(psids, [35, 135, 35, 135]);
    assert!(matches!(
        req.additional_params,
        Some(AdditionalParams::EncryptionKey(_))
    ));
    let refused =
        SignedCertificateRequest::from_coer(scr, |b| Ok(ScmsPdu::decode_prefix(b)?.1)).unwrap_err();
    assert!(
        refused.to_string().contains("implicit"),
        "implicit signer refused as such: {refused}"
    );
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = ScmsPdu::from_coer(&bytes);
        let _ = SignedSpdu::from_coer(&bytes);
        let _ = decode_data(&bytes);
        let _ = SignedCertificateRequest::from_coer(&bytes, |b| Ok(ScmsPdu::decode_prefix(b)?.1));
    }

    #[test]
    fn acks_and_download_requests_round_trip(
        t in any::<u32>(), hash in any::<[u8; 8]>(), i in proptest::option::of(any::<u16>()),
        name in "[a-z0-9_.]{0,255}",
    ) {
        for pdu in [
            ScmsPdu::RaEeCertAck(RaEeCertAck { generation_time: Time32(t), request_hash: hash, first_i: i, next_dl_time: Time32(t / 2) }),
            ScmsPdu::EeRaDownloadRequest(EeRaDownloadRequest { generation_time: Time32(t), filename: name.clone() }),
        ] {
            prop_assert_eq!(ScmsPdu::from_coer(&pdu.to_coer()).unwrap(), pdu);
        }
    }
}
