//! Every TS 102 941 response code that applies to a refused enrolment or
//! authorization (`EnrolmentResponseCode`, `AuthorizationResponseCode` and
//! `AuthorizationValidationResponseCode` of the v1.3.1 modules), each from
//! a request made wrong in exactly one way; every refusal records nothing
//! (the EA's credential register is counted before and after; the AA keeps
//! nothing at all). Also the root's CRL at both authorities: the EA refuses
//! a revoked AA and stops issuing when it is revoked itself, the AA refuses
//! a revoked or outdated EA, and both take a new list without a restart.
//! And `wrongea`: a validation request that reaches one EA naming another.
//!
//! Codes covered elsewhere: `unknownits`, `invalidsignature` (canonical
//! key), `baditsstatus`, `deniedrequest` (clock) and messages that cannot
//! be decrypted (`decryptionfailed`, `imnottherecipient`: no key to answer
//! under, so no answer) in `flows.rs`, as are `its-aa-unknownea`,
//! `its-aa-deniedpermissions`, `unknownits`, `invalidsignature` and
//! `deniedpermissions` of authorization.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::Arc;

use common::*;
use ring::signature::EcdsaKeyPair;
use trustca_etsi::EtsiError;
use trustca_etsi::aa::{EaLink, KnownEa};
use trustca_etsi::envelope::{encrypted, open_answer, sign_and_encrypt, time64};
use trustca_etsi::station::{EnrolAs, authorization_request, enrolment_request};
use trustca_etsi::trust_lists::crl;
use trustca_v2x::ts102941::{
    AuthorizationResponseCode as At, CERTIFICATE_FORMAT, EcSignature, EnrolmentResponseCode as Ec,
    EtsiTs102941Data, InnerAtRequest, InnerEcRequest, PublicKeys, SubjectAttributes,
};
use trustca_v2x::{
    Certificate, Duration, EncryptedData, EtsiSignedData, Ieee1609Dot2Content, SignAs,
    SignedPayload, Time32, V2xSigner, ValidityPeriod, decode_data, encrypted_data, sha256,
    unsecured_data,
};

const AES: [u8; 16] = [7; 16];

/// Sends `data` (COER `EtsiTs102941Data`) signed as `signer` by `key` and
/// encrypted to `d`'s EA; the code of the refusal (the register unchanged).
fn enrolment_code(d: &Deployment, data: &[u8], signer: SignAs<'_>, key: &dyn V2xSigner) -> Ec {
    let before = d.credentials.len();
    let message = sign_and_encrypt(data, signer, key, Some(&d.h.ea), &AES, d.now).unwrap();
    let answer = d.ea.answer_enrolment(&message, d.now).unwrap();
    let plain = open_answer(&answer.message, &AES, &d.h.ea).unwrap();
    let EtsiTs102941Data::EnrolmentResponse(r) = EtsiTs102941Data::from_coer(&plain).unwrap()
    else {
        panic!("not an enrolment response")
    };
    assert_eq!(r.response_code, answer.code);
    assert!(
        r.certificate.is_none(),
        "{:?} with a credential",
        r.response_code
    );
    assert_eq!(
        d.credentials.len(),
        before,
        "a refusal recorded a credential"
    );
    answer.code
}

/// An `EnrolmentRequest` whose proof of possession signs `inner` with `pop`.
fn enrolment_data(inner: &[u8], pop: &EcdsaKeyPair, now: i64) -> Vec<u8> {
    let signed = EtsiSignedData::sign(
        SignedPayload::Data(inner),
        623,
        time64(now).unwrap(),
        SignAs::SelfSigned,
        pop,
    )
    .unwrap();
    EtsiTs102941Data::EnrolmentRequest(signed).to_coer()
}

/// A well-formed `EnrolmentRequest` for a fresh key at `now`.
fn good_enrolment(now: i64) -> Vec<u8> {
    let new_key = signing_key();
    enrolment_data(&inner_request(&new_key, CERTIFICATE_FORMAT), &new_key, now)
}

fn inner_request(key: &EcdsaKeyPair, format: u8) -> Vec<u8> {
    InnerEcRequest {
        its_id: ITS_ID.to_vec(),
        certificate_format: format,
        public_keys: PublicKeys {
            verification_key: public(key),
            encryption_key: None,
        },
        requested: SubjectAttributes::default(),
    }
    .to_coer()
}

#[test]
fn malformed_enrolment_requests_get_their_codes() {
    let d = Deployment::new();
    let canonical = SignAs::SelfSigned;
    let ck = &d.canonical_key;
    // Not EtsiTs102941Data at all.
    assert_eq!(
        enrolment_code(&d, b"\x00\x01junk", canonical, ck),
        Ec::BadContentType
    );
    // Signed by a certificate: enrolment is signed by the canonical key or
    // an enrolment credential only.
    let by_cert = SignAs::Certificate(&d.h.aa);
    let good = good_enrolment(d.now);
    let new_key = signing_key();
    assert_eq!(
        enrolment_code(&d, &good, by_cert, &d.h.aa_key),
        Ec::BadContentType
    );
    // The proof of possession carries no InnerEcRequest.
    let junk = enrolment_data(b"\x05\x06", &new_key, d.now);
    assert_eq!(enrolment_code(&d, &junk, canonical, ck), Ec::CantParse);
    // The proof of possession signed by another key than the new one.
    let liar = enrolment_data(
        &inner_request(&new_key, CERTIFICATE_FORMAT),
        &signing_key(),
        d.now,
    );
    assert_eq!(
        enrolment_code(&d, &liar, canonical, ck),
        Ec::InvalidSignature
    );
    // Another certificate format than TS 103 097's.
    let format = enrolment_data(&inner_request(&new_key, 2), &new_key, d.now);
    assert_eq!(
        enrolment_code(&d, &format, canonical, ck),
        Ec::IncompleteRequest
    );
    // The same request, well formed, is issued: only the one fault differed.
    assert_eq!(enrolment_code_ok(&d, &good), Ec::Ok);
}

fn enrolment_code_ok(d: &Deployment, data: &[u8]) -> Ec {
    let message = sign_and_encrypt(
        data,
        SignAs::SelfSigned,
        &d.canonical_key,
        Some(&d.h.ea),
        &AES,
        d.now,
    )
    .unwrap();
    d.ea.answer_enrolment(&message, d.now).unwrap().code
}

/// An enrolment credential of `d`'s EA with `validity`, recorded in the
/// register as if the EA had issued it.
fn recorded_credential(d: &Deployment, validity: ValidityPeriod) -> (Certificate, EcdsaKeyPair) {
    use trustca_etsi::ea::CredentialRegister;
    let key = signing_key();
    let tbs = trustca_etsi::profile::enrolment_credential(public(&key), validity, 4).unwrap();
    let ec = Certificate::issue(tbs, &d.h.ea, &d.h.ea_key).unwrap();
    d.credentials.record(&ec, ITS_ID).unwrap();
    (ec, key)
}

fn expired() -> ValidityPeriod {
    ValidityPeriod {
        start: Time32::from_unix(NOW - 10 * 86_400).unwrap(),
        duration: Duration::Hours(24),
    }
}

#[test]
fn re_enrolment_with_an_expired_credential_is_baditsstatus() {
    let d = Deployment::new();
    let (ec, key) = recorded_credential(&d, expired());
    let before = d.credentials.len();
    let who = EnrolAs::Credential { ec: &ec, key: &key };
    let pending = enrolment_request(who, &signing_key(), cam(), &d.h.ea, d.now).unwrap();
    let answer = d.ea.answer_enrolment(&pending.message, d.now).unwrap();
    assert_eq!(answer.code, Ec::BadItsStatus);
    assert_eq!(d.credentials.len(), before);
}

/// The root's CRL revoking `revoked`, issued at `now`.
fn root_crl(h: &Hierarchy, revoked: Vec<[u8; 8]>, now: i64) -> Vec<u8> {
    let this = Time32::from_unix(now).unwrap();
    let next = Time32::from_unix(now + 7 * 86_400).unwrap();
    crl(&h.root, &h.root_key, revoked, this, next, now).unwrap()
}

#[test]
fn the_ea_refuses_a_revoked_aa_and_stops_issuing_when_revoked_itself() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    assert_eq!(d.ea.install_crl(&root_crl(&d.h, vec![], NOW)).unwrap(), 0);
    assert_eq!(authorization_code(&d, &ec, &ec_key, &d.h.ea), At::Ok);
    // The AA revoked: the EA refuses to validate for it.
    let aa_revoked = root_crl(&d.h, vec![d.h.aa.hashed_id8()], NOW + 1);
    assert_eq!(d.ea.install_crl(&aa_revoked).unwrap(), 1);
    assert_eq!(authorization_code(&d, &ec, &ec_key, &d.h.ea), At::InvalidAa);
    // An older list cannot undo it; one signed by another root is refused.
    assert!(d.ea.install_crl(&root_crl(&d.h, vec![], NOW)).is_err());
    let other = Hierarchy::new();
    assert!(
        d.ea.install_crl(&root_crl(&other, vec![], NOW + 2))
            .is_err()
    );
    assert_eq!(authorization_code(&d, &ec, &ec_key, &d.h.ea), At::InvalidAa);
    // A newer list without the AA: it is served again.
    d.ea.install_crl(&root_crl(&d.h, vec![], NOW + 2)).unwrap();
    assert_eq!(authorization_code(&d, &ec, &ec_key, &d.h.ea), At::Ok);
    // The EA revoked: no credential, no validation.
    d.ea.install_crl(&root_crl(&d.h, vec![d.h.ea.hashed_id8()], NOW + 3))
        .unwrap();
    assert!(d.ea.is_revoked());
    let good = good_enrolment(d.now);
    assert_eq!(
        enrolment_code(&d, &good, SignAs::SelfSigned, &d.canonical_key),
        Ec::DeniedRequest
    );
    assert_eq!(
        authorization_code(&d, &ec, &ec_key, &d.h.ea),
        At::DeniedPermissions
    );
}

#[test]
fn an_outdated_ea_issues_nothing() {
    let d = Deployment::new();
    let later = NOW + 6 * 365 * 86_400; // past the EA's five years
    let new_key = signing_key();
    let data = enrolment_data(
        &inner_request(&new_key, CERTIFICATE_FORMAT),
        &new_key,
        later,
    );
    let message = sign_and_encrypt(
        &data,
        SignAs::SelfSigned,
        &d.canonical_key,
        Some(&d.h.ea),
        &AES,
        later,
    )
    .unwrap();
    let answer = d.ea.answer_enrolment(&message, later).unwrap();
    assert_eq!(answer.code, Ec::DeniedRequest);
    assert_eq!(d.credentials.len(), 0);
}

/// Asks `d`'s AA for a CAM ticket with `ec`, naming `ea`; the code (the
/// EA's register unchanged).
fn authorization_code(
    d: &Deployment,
    ec: &Certificate,
    key: &EcdsaKeyPair,
    ea: &Certificate,
) -> At {
    let pending =
        authorization_request(public(&signing_key()), cam(), ec, key, ea, &d.h.aa, d.now).unwrap();
    send(d, &pending.message, None)
}

/// Sends `message` to `d`'s AA; with `aes`, opens the answer too. The code.
fn send(d: &Deployment, message: &[u8], aes: Option<&[u8; 16]>) -> At {
    let before = d.credentials.len();
    let answer = d.aa.answer(message, d.now).unwrap();
    if let Some(aes) = aes {
        let plain = open_answer(&answer.message, aes, &d.h.aa).unwrap();
        let EtsiTs102941Data::AuthorizationResponse(r) =
            EtsiTs102941Data::from_coer(&plain).unwrap()
        else {
            panic!("not an authorization response")
        };
        assert_eq!(r.response_code, answer.code);
        assert_eq!(r.certificate.is_some(), answer.code == At::Ok);
    }
    assert_eq!(
        d.credentials.len(),
        before,
        "a refusal recorded a credential"
    );
    answer.code
}

/// `plain` encrypted to `d`'s AA under [`AES`].
fn to_aa(d: &Deployment, plain: &[u8]) -> Vec<u8> {
    let sealed = EncryptedData::seal_to_certificate_with_key(&d.h.aa, &AES, plain).unwrap();
    encrypted_data(&sealed)
}

/// A station's well-formed request, opened as the AA would, changed by
/// `change`, and sent again; the code.
fn changed(
    d: &Deployment,
    ec: &Certificate,
    key: &EcdsaKeyPair,
    change: impl FnOnce(&mut InnerAtRequest),
) -> At {
    let pending = authorization_request(
        public(&signing_key()),
        cam(),
        ec,
        key,
        &d.h.ea,
        &d.h.aa,
        d.now,
    )
    .unwrap();
    let mut request = opened_by_the_aa(d, &pending.message);
    change(&mut request);
    let data = EtsiTs102941Data::AuthorizationRequest(request).to_coer();
    send(d, &to_aa(d, &unsecured_data(&data)), Some(&AES))
}

/// A station's `AuthorizationRequestMessage` opened as `d`'s AA would.
fn opened_by_the_aa(d: &Deployment, message: &[u8]) -> InnerAtRequest {
    let plain = encrypted(message)
        .unwrap()
        .open_as_certificate(&d.h.aa_enc, &d.h.aa)
        .unwrap();
    let Ok(Ieee1609Dot2Content::Unsecured(data)) = decode_data(&plain) else {
        panic!("not unsecured")
    };
    let Ok(EtsiTs102941Data::AuthorizationRequest(request)) = EtsiTs102941Data::from_coer(data)
    else {
        panic!("not an authorization request")
    };
    request
}

/// The station's `ecSignature` opened with the EA's key.
fn opened_ec_signature(d: &Deployment, request: &InnerAtRequest) -> Vec<u8> {
    let EcSignature::Encrypted(e) = &request.ec_signature else {
        panic!("the station encrypts its ecSignature")
    };
    e.open(&d.h.ea_enc, d.h.ea.hashed_id8(), &sha256(d.h.ea.as_coer()))
        .unwrap()
}

#[test]
fn malformed_authorization_requests_get_their_codes() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    // Signed instead of unsecured data.
    let signed = sign_and_encrypt(
        b"\x01",
        SignAs::SelfSigned,
        &signing_key(),
        Some(&d.h.aa),
        &AES,
        d.now,
    )
    .unwrap();
    assert_eq!(send(&d, &signed, Some(&AES)), At::ItsAaBadContentType);
    // Unsecured, but no EtsiTs102941Data.
    let junk = to_aa(&d, &unsecured_data(b"\x00\x07junk"));
    assert_eq!(send(&d, &junk, Some(&AES)), At::ItsAaCantParse);
    // The keyTag does not match the ticket's keys.
    let code = changed(&d, &ec, &ec_key, |r| r.shared.key_tag[0] ^= 1);
    assert_eq!(code, At::ItsAaKeysDontMatch);
    // The ecSignature in the clear: it would tell the AA who asked.
    let code = changed(&d, &ec, &ec_key, |r| {
        let clear = EtsiSignedData::from_coer(&opened_ec_signature(&d, r)).unwrap();
        r.ec_signature = EcSignature::Signed(clear);
    });
    assert_eq!(code, At::ItsAaIncompleteRequest);
    // The ecSignature encrypted to the AA, not the EA: the EA cannot open it.
    let code = changed(&d, &ec, &ec_key, |r| {
        let inner = opened_ec_signature(&d, r);
        r.ec_signature =
            EcSignature::Encrypted(EncryptedData::seal_to_certificate(&d.h.aa, &inner).unwrap());
    });
    assert_eq!(code, At::EaAaDecryptionFailed);
    // The same request unchanged is answered with a ticket.
    assert_eq!(changed(&d, &ec, &ec_key, |_| {}), At::Ok);
}

#[test]
fn an_expired_credential_gets_no_ticket() {
    let d = Deployment::new();
    let (ec, key) = recorded_credential(&d, expired());
    assert_eq!(
        authorization_code(&d, &ec, &key, &d.h.ea),
        At::DeniedPermissions
    );
}

/// An EA link that never answers.
struct Unreachable;

impl EaLink for Unreachable {
    fn validate(&self, _: &[u8]) -> Result<Vec<u8>, EtsiError> {
        Err(EtsiError::Profile("connection refused".into()))
    }
}

#[test]
fn the_aa_refuses_revoked_outdated_and_unreachable_eas_and_takes_new_lists() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    let known = |certificate: &Certificate| KnownEa {
        certificate: certificate.clone(),
        link: d.link.clone(),
    };
    // The installed CRL revokes the EA: its stations get no ticket, and the
    // EA is never asked.
    d.aa.replace_trust(vec![known(&d.h.ea)], vec![d.h.ea.hashed_id8()]);
    let asked = d.link.seen.lock().unwrap().len();
    assert_eq!(
        authorization_code(&d, &ec, &ec_key, &d.h.ea),
        At::ItsAaInvalidEa
    );
    assert_eq!(d.link.seen.lock().unwrap().len(), asked);
    // A new CTL without the EA: unknown.
    d.aa.replace_trust(vec![], vec![]);
    assert_eq!(
        authorization_code(&d, &ec, &ec_key, &d.h.ea),
        At::ItsAaUnknownEa
    );
    // An outdated EA certificate (expired before now) for the same keys.
    let (_, ea_enc_pub) = encryption_key();
    let old = Certificate::issue(
        trustca_etsi::profile::enrolment_authority(
            "old-ea.etsi.test",
            public(&d.h.ea_key),
            ea_enc_pub,
            expired(),
            d.h.ea.tbs().assurance_level.unwrap(),
        ),
        &d.h.root,
        &d.h.root_key,
    )
    .unwrap();
    d.aa.replace_trust(vec![known(&old)], vec![]);
    assert_eq!(
        authorization_code(&d, &ec, &ec_key, &old),
        At::ItsAaInvalidEa
    );
    // An EA that cannot be reached.
    d.aa.replace_trust(
        vec![KnownEa {
            certificate: d.h.ea.clone(),
            link: Arc::new(Unreachable),
        }],
        vec![],
    );
    assert_eq!(
        authorization_code(&d, &ec, &ec_key, &d.h.ea),
        At::AaEaCantReachEa
    );
    // The lists as they were: served again, without a new AA.
    d.aa.replace_trust(vec![known(&d.h.ea)], vec![]);
    assert_eq!(authorization_code(&d, &ec, &ec_key, &d.h.ea), At::Ok);
}

/// An EA certificate of `d`'s root other than `d`'s EA (its own keys).
fn other_ea(d: &Deployment) -> Certificate {
    let (_, enc) = encryption_key();
    let tbs = trustca_etsi::profile::enrolment_authority(
        "other-ea.etsi.test",
        public(&signing_key()),
        enc,
        ca_validity(),
        d.h.ea.tbs().assurance_level.unwrap(),
    );
    Certificate::issue(tbs, &d.h.root, &d.h.root_key).unwrap()
}

#[test]
fn a_validation_request_naming_another_ea_is_wrongea_and_records_nothing() {
    use trustca_v2x::ts102941::{ValidationRequest, ValidationResponseCode as Av};
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    let other = other_ea(&d);
    // The station names the other EA (and encrypts its ecSignature to it);
    // its AA request is opened as the AA would.
    let pending = authorization_request(
        public(&signing_key()),
        cam(),
        &ec,
        &ec_key,
        &other,
        &d.h.aa,
        d.now,
    )
    .unwrap();
    let request = opened_by_the_aa(&d, &pending.message);
    assert_eq!(request.shared.ea_id, other.hashed_id8());
    // The AA's validation request, signed by the AA and encrypted to `d`'s
    // EA, which is not the EA the request names.
    let validation = EtsiTs102941Data::ValidationRequest(ValidationRequest {
        shared: request.shared,
        ec_signature: request.ec_signature,
    })
    .to_coer();
    let aa_key = clone_key(&d.h.aa_key);
    let message = sign_and_encrypt(
        &validation,
        SignAs::Certificate(&d.h.aa),
        &aa_key,
        Some(&d.h.ea),
        &AES,
        d.now,
    )
    .unwrap();
    let credentials = d.credentials.len();
    let answer = d.ea.answer_validation(&message, d.now).unwrap();
    assert_eq!(answer.code, Av::WrongEa);
    let plain = open_answer(&answer.message, &AES, &d.h.ea).unwrap();
    let EtsiTs102941Data::ValidationResponse(r) = EtsiTs102941Data::from_coer(&plain).unwrap()
    else {
        panic!("not a validation response")
    };
    assert_eq!(r.response_code, Av::WrongEa);
    assert!(r.confirmed.is_none(), "wrongea confirmed attributes");
    assert_eq!(
        d.credentials.len(),
        credentials,
        "a refusal recorded a credential"
    );
    // The same station naming `d`'s EA is answered with a ticket.
    assert_eq!(authorization_code(&d, &ec, &ec_key, &d.h.ea), At::Ok);
}

/// A store that has failed (a full disk): every read and write refused.
struct FailedStore;

fn disk_full() -> EtsiError {
    EtsiError::Profile("store: disk full".into())
}

impl trustca_etsi::ea::CredentialRegister for FailedStore {
    fn record(&self, _: &Certificate, _: &[u8]) -> Result<(), EtsiError> {
        Err(disk_full())
    }

    fn find(&self, _: [u8; 8]) -> Result<Option<(Certificate, Vec<u8>)>, EtsiError> {
        Err(disk_full())
    }
}

impl trustca_etsi::ea::StationDirectory for FailedStore {
    fn station(&self, _: &[u8]) -> Result<Option<trustca_etsi::ea::Station>, EtsiError> {
        Err(disk_full())
    }
}

/// A store failure is answered inside the signed, encrypted answer
/// (`deniedrequest`), never as a transport failure: the HTTP front end
/// answers it 200 like any other response code (`api/src/wire_status.rs`).
#[test]
fn a_store_failure_is_answered_deniedrequest() {
    use trustca_etsi::ea::EnrolmentAuthority;
    use trustca_etsi::station::enrolment_response;
    let d = Deployment::new();
    let failed = Arc::new(FailedStore);
    let eas = [
        // The credential cannot be recorded.
        EnrolmentAuthority::new(
            d.h.ea.clone(),
            Arc::new(clone_key(&d.h.ea_key)),
            d.h.ea_enc,
            d.h.root.clone(),
            d.stations.clone(),
            failed.clone(),
        ),
        // The station cannot be looked up.
        EnrolmentAuthority::new(
            d.h.ea.clone(),
            Arc::new(clone_key(&d.h.ea_key)),
            d.h.ea_enc,
            d.h.root.clone(),
            failed,
            d.credentials.clone(),
        ),
    ];
    for ea in eas {
        let who = EnrolAs::Canonical {
            its_id: ITS_ID,
            key: &d.canonical_key,
        };
        let pending = enrolment_request(who, &signing_key(), cam(), &d.h.ea, d.now).unwrap();
        let answer = ea.answer_enrolment(&pending.message, d.now).unwrap();
        assert_eq!(answer.code, Ec::DeniedRequest);
        let response = enrolment_response(&pending, &answer.message, &d.h.ea).unwrap();
        assert_eq!(response.response_code, Ec::DeniedRequest);
        assert!(response.certificate.is_none());
        assert_eq!(d.credentials.len(), 0);
    }
}
