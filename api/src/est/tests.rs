//! EST routes, codecs and refusals, in process.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use cms::signed_data::SignedData;

fn cert(name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.self_signed(&key).unwrap().der().to_vec()
}

#[test]
fn certs_only_round_trips_through_the_cms_decoder() {
    let (a, b) = (cert("a"), cert("b"));
    let der = certs_only(&[a.clone(), b.clone()]).unwrap();
    let info = cms::content_info::ContentInfo::from_der(&der).unwrap();
    assert_eq!(info.content_type.to_string(), "1.2.840.113549.1.7.2");
    let signed: SignedData = info.content.decode_as().unwrap();
    assert!(
        signed.signer_infos.0.is_empty(),
        "certs-only has no signers"
    );
    assert!(signed.encap_content_info.econtent.is_none());
    let mut got: Vec<Vec<u8>> = signed
        .certificates
        .unwrap()
        .0
        .iter()
        .map(|c| match c {
            cms::cert::CertificateChoices::Certificate(c) => c.to_der().unwrap(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    got.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn the_certificate_set_is_in_der_order() {
    let mut certs: Vec<Vec<u8>> = (0..6).map(|i| cert(&format!("ca {i}"))).collect();
    // Given in descending order: the encoding must sort them.
    certs.sort();
    certs.reverse();
    let der = certs_only(&certs).unwrap();
    // The order in the bytes (a decoder may sort what it reads).
    let at = |c: &Vec<u8>| {
        der.windows(c.len())
            .position(|w| w == c.as_slice())
            .unwrap()
    };
    let mut got = certs.clone();
    got.sort_by_key(|c| at(c));
    let mut want = certs.clone();
    want.sort_by(|a, b| der_set_order(a, b));
    assert!(got == want, "SET OF elements out of DER order");
    // Still a certs-only SignedData holding them all.
    let info = cms::content_info::ContentInfo::from_der(&der).unwrap();
    let signed: SignedData = info.content.decode_as().unwrap();
    assert_eq!(signed.certificates.unwrap().0.len(), certs.len());
}

#[test]
fn csr_attrs_name_the_key_signature_and_subject() {
    let der = csr_attrs(&[KeyAlgorithm::EcdsaP256]).unwrap();
    let items = Vec::<Any>::from_der(&der).unwrap();
    let attribute: x509_cert::attr::Attribute = items[0].decode_as().unwrap();
    assert_eq!(attribute.oid, ID_EC_PUBLIC_KEY);
    let curve: ObjectIdentifier = attribute.values.as_slice()[0].decode_as().unwrap();
    assert_eq!(curve, PRIME256V1);
    let oids: Vec<ObjectIdentifier> = items[1..].iter().map(|a| a.decode_as().unwrap()).collect();
    assert_eq!(
        oids,
        vec![
            ECDSA_WITH_SHA256,
            AT_ORGANIZATION,
            AT_COMMON_NAME,
            AT_SERIAL_NUMBER,
            AT_FIRMWARE_VERSION,
            attestation::AT_TPM_ATTESTATION
        ]
    );
    let both = csr_attrs(&[KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519]).unwrap();
    assert_eq!(Vec::<Any>::from_der(&both).unwrap().len(), 8);
}

#[test]
fn base64_tolerates_line_breaks_and_missing_padding() {
    let text = base64_lines(&[7u8; 100]);
    assert!(text.split(|b| *b == b'\n').all(|l| l.len() <= 64));
    assert_eq!(decode_base64(&text).unwrap(), vec![7u8; 100]);
    assert_eq!(decode_base64(b" AQI\r\n").unwrap(), vec![1, 2]);
    assert!(decode_base64(b"not base64 at all!").is_err());
    assert!(decode_base64(b"  \n").is_err());
}

#[test]
fn routes_with_and_without_label() {
    assert_eq!(
        route("/.well-known/est/hems/simpleenroll").unwrap(),
        (Some("hems"), Operation::SimpleEnroll)
    );
    assert_eq!(
        route("/.well-known/est/cacerts").unwrap(),
        (None, Operation::CaCerts)
    );
    for bad in [
        "/.well-known/est/",
        "/.well-known/est/hems/serverkeygen",
        "/.well-known/est//cacerts",
        "/.well-known/est/a/b/cacerts",
        "/est/cacerts",
    ] {
        assert_eq!(
            route(bad).unwrap_err().status(),
            StatusCode::NOT_FOUND,
            "{bad}"
        );
    }
}

#[test]
fn engine_refusals_map_to_http_statuses() {
    let status = |e: CaError| EstError::Ca(e).status();
    assert_eq!(
        status(CaError::InvalidCsr("x".into())),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(CaError::PermissionDenied("x".into())),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(CaError::Store(trustca_store::StoreError::AlreadyEnrolled(
            "x".into()
        ))),
        StatusCode::CONFLICT
    );
    assert_eq!(
        status(CaError::Store(trustca_store::StoreError::Backend(
            "x".into()
        ))),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let r = refusal(EstError::Caller {
        status: StatusCode::SERVICE_UNAVAILABLE,
        reason: "store".into(),
    });
    assert_eq!(r.headers()[header::RETRY_AFTER], "5");
}

#[test]
fn the_firmware_attribute_is_read_from_the_csr() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Acme");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "EV-200");
    let csr = params.serialize_request(&key).unwrap().der().to_vec();
    let s = CsrSubject::read(&csr).unwrap();
    assert_eq!(s.organization.as_deref(), Some("Acme"));
    assert_eq!(s.common_name.as_deref(), Some("EV-200"));
    assert!(s.serial_number.is_none() && s.firmware_version.is_none());
    let value = Any::encode_from(&der::asn1::Utf8StringRef::new("1.2.3").unwrap()).unwrap();
    assert_eq!(
        firmware_value(std::slice::from_ref(&value)).as_deref(),
        Some("1.2.3")
    );
    assert!(firmware_value(&[value.clone(), value]).is_none());
    assert!(firmware_value(&[Any::encode_from(&AT_ORGANIZATION).unwrap()]).is_none());
    assert!(CsrSubject::read(b"\x30\x03\x02\x01\x00").is_err());
}
