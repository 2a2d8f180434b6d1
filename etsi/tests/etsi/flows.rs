//! ETSI TS 102 941 enrolment and authorization end to end in one process:
//! a station enrols with its canonical key, re-enrols with its credential,
//! obtains tickets through the AA, which has the EA validate; every
//! refusal gets its response code and records nothing; and the privacy
//! properties: the AA never holds which credential asked, the EA never
//! holds the ticket's key or the ticket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use ring::signature::KeyPair;
use trustca_etsi::ea::Station;
use trustca_etsi::station::{
    EnrolAs, authorization_request, authorization_response, enrolment_request, enrolment_response,
};
use trustca_v2x::ts102941::{AuthorizationResponseCode as At, EnrolmentResponseCode as Ec};
use trustca_v2x::{Certificate, CertificateId, PsidSsp, Ssp};

#[test]
fn a_station_enrols_with_its_canonical_key_and_gets_its_level() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    ec.verify_signed_by(Some(&d.h.ea)).unwrap();
    assert_eq!(ec.tbs().id, CertificateId::None);
    assert_eq!(ec.tbs().verification_key, public(&ec_key));
    assert_eq!(ec.tbs().assurance_level.unwrap().trust_level(), Some(4));
    assert_eq!(d.credentials.len(), 1);
    rasn_its_certificate(ec.as_coer());
    // Re-enrolment: signed by the current credential, itsId its HashedId8.
    let next_key = signing_key();
    let who = EnrolAs::Credential {
        ec: &ec,
        key: &ec_key,
    };
    let pending = enrolment_request(who, &next_key, cam(), &d.h.ea, d.now).unwrap();
    let answer = d.ea.answer_enrolment(&pending.message, d.now).unwrap();
    let response = enrolment_response(&pending, &answer.message, &d.h.ea).unwrap();
    assert_eq!(response.response_code, Ec::Ok);
    let next = response.certificate.unwrap();
    assert_eq!(next.tbs().verification_key, public(&next_key));
    assert_eq!(d.credentials.len(), 2);
}

/// Sends an enrolment request and returns the code; the register must not
/// grow on a refusal.
fn refused_enrolment(d: &Deployment, who: EnrolAs<'_>, now: i64) -> Ec {
    let before = d.credentials.len();
    let pending = enrolment_request(who, &signing_key(), cam(), &d.h.ea, now).unwrap();
    let answer = d.ea.answer_enrolment(&pending.message, d.now).unwrap();
    let response = enrolment_response(&pending, &answer.message, &d.h.ea).unwrap();
    assert_eq!(response.response_code, answer.code);
    assert!(response.certificate.is_none());
    assert_eq!(d.credentials.len(), before, "a refusal recorded something");
    answer.code
}

#[test]
fn refused_enrolments_carry_the_standard_codes_and_record_nothing() {
    let d = Deployment::new();
    let canonical = |its_id| EnrolAs::Canonical {
        its_id,
        key: &d.canonical_key,
    };
    assert_eq!(
        refused_enrolment(&d, canonical(b"urn:unknown"), d.now),
        Ec::UnknownIts
    );
    let impostor = signing_key();
    let who = EnrolAs::Canonical {
        its_id: ITS_ID,
        key: &impostor,
    };
    assert_eq!(refused_enrolment(&d, who, d.now), Ec::InvalidSignature);
    assert_eq!(
        refused_enrolment(&d, canonical(ITS_ID), d.now - 3600),
        Ec::DeniedRequest
    );
    d.stations.register(
        ITS_ID,
        Station {
            canonical_key: public(&d.canonical_key),
            trust_level: 4,
            active: false,
        },
    );
    assert_eq!(
        refused_enrolment(&d, canonical(ITS_ID), d.now),
        Ec::BadItsStatus
    );
    // A credential the EA never issued.
    let stranger = signing_key();
    let fake = Certificate::issue(
        trustca_etsi::profile::enrolment_credential(public(&stranger), ca_validity(), 3).unwrap(),
        &d.h.aa,
        &d.h.aa_key,
    )
    .unwrap();
    let who = EnrolAs::Credential {
        ec: &fake,
        key: &stranger,
    };
    assert_eq!(refused_enrolment(&d, who, d.now), Ec::UnknownIts);
}

#[test]
fn messages_the_ea_cannot_open_get_no_answer() {
    let d = Deployment::new();
    let who = EnrolAs::Canonical {
        its_id: ITS_ID,
        key: &d.canonical_key,
    };
    // Encrypted to the AA, not the EA.
    let pending = enrolment_request(who, &signing_key(), cam(), &d.h.aa, d.now).unwrap();
    let err = d.ea.answer_enrolment(&pending.message, d.now).unwrap_err();
    assert!(err.0.contains("not the recipient"), "{err:?}");
    assert!(d.ea.answer_enrolment(b"\x03\x80\x00", d.now).is_err());
    assert!(d.ea.answer_enrolment(&[], d.now).is_err());
    let mut flipped = enrolment_request(who, &signing_key(), cam(), &d.h.ea, d.now)
        .unwrap()
        .message;
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let err = d.ea.answer_enrolment(&flipped, d.now).unwrap_err();
    assert!(err.0.contains("does not decrypt"), "{err:?}");
    assert_eq!(d.credentials.len(), 0);
}

/// Asks `d`'s AA for a ticket for `at_key` with the credential `ec`,
/// requesting `wanted`: the response code and the ticket.
fn ask(
    d: &Deployment,
    ec: &Certificate,
    ec_key: &ring::signature::EcdsaKeyPair,
    at_key: &ring::signature::EcdsaKeyPair,
    wanted: Vec<PsidSsp>,
) -> (At, Option<Certificate>) {
    let pending =
        authorization_request(public(at_key), wanted, ec, ec_key, &d.h.ea, &d.h.aa, d.now).unwrap();
    let answer = d.aa.answer(&pending.message, d.now).unwrap();
    let response = authorization_response(&pending, &answer.message, &d.h.aa).unwrap();
    assert_eq!(response.response_code, answer.code);
    (answer.code, response.certificate)
}

/// A CAM ticket for `at_key`; the answer must be `ok`.
fn ticket(
    d: &Deployment,
    ec: &Certificate,
    ec_key: &ring::signature::EcdsaKeyPair,
    at_key: &ring::signature::EcdsaKeyPair,
) -> Certificate {
    let (code, at) = ask(d, ec, ec_key, at_key, cam());
    assert_eq!(code, At::Ok);
    at.unwrap()
}

#[test]
fn tickets_carry_what_was_asked_within_the_table() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    let psids = |wanted: Vec<PsidSsp>| {
        let (code, at) = ask(&d, &ec, &ec_key, &signing_key(), wanted);
        let at = at.unwrap_or_else(|| panic!("refused: {code:?}"));
        let v: Vec<u64> = at
            .tbs()
            .app_permissions
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.psid)
            .collect();
        v
    };
    // Nothing asked: all the table grants the level (4).
    assert_eq!(psids(vec![]), vec![36, 37, 639]);
    let plain = |psid| PsidSsp { psid, ssp: None };
    assert_eq!(psids(vec![plain(639), plain(37)]), vec![37, 639]);
    // A PSID the table does not grant, or another SSP: refused.
    for wanted in [
        vec![plain(999)],
        vec![PsidSsp {
            psid: 36,
            ssp: Some(Ssp::Bitmap(vec![1, 0xff, 0xff])),
        }],
    ] {
        let (code, at) = ask(&d, &ec, &ec_key, &signing_key(), wanted);
        assert_eq!(code, At::ItsAaDeniedPermissions);
        assert!(at.is_none());
    }
}

/// The AA reads its ticket profile once per request: a profile put in
/// force in its slot (a policy reload) applies to the next ticket, and one
/// that moves the period clock is refused with the profile kept.
#[test]
fn a_replaced_ticket_profile_applies_to_the_next_ticket() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    let psids = |d: &Deployment| {
        let (code, at) = ask(d, &ec, &ec_key, &signing_key(), vec![]);
        let at = at.unwrap_or_else(|| panic!("refused: {code:?}"));
        let v: Vec<u64> = at
            .tbs()
            .app_permissions
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|p| p.psid)
            .collect();
        v
    };
    assert_eq!(psids(&d), vec![36, 37, 639]);
    let slot = d.aa.profile_slot();
    let mut without_cpm = (*slot.current()).clone();
    without_cpm.permissions.retain(|p| p.psid != 639);
    slot.replace(without_cpm.clone()).unwrap();
    assert_eq!(psids(&d), vec![36, 37]);
    let moved = trustca_scms::TicketProfile {
        period_hours: 24,
        ..without_cpm
    };
    let err = slot.replace(moved).unwrap_err().to_string();
    assert!(err.contains("period_hours cannot change"), "{err}");
    assert_eq!(psids(&d), vec![36, 37]);
}

#[test]
fn a_station_obtains_tickets_at_its_live_level() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    let mut tickets = Vec::new();
    for _ in 0..3 {
        let at_key = signing_key();
        let at = ticket(&d, &ec, &ec_key, &at_key);
        at.verify_signed_by(Some(&d.h.aa)).unwrap();
        assert_eq!(at.tbs().verification_key, public(&at_key));
        assert_eq!(at.tbs().id, CertificateId::None);
        assert_eq!(at.tbs().assurance_level.unwrap().trust_level(), Some(4));
        let psids: Vec<u64> = at
            .tbs()
            .app_permissions
            .as_ref()
            .unwrap()
            .iter()
            .map(|p| p.psid)
            .collect();
        assert_eq!(psids, vec![36], "narrowed to what was asked");
        rasn_its_certificate(at.as_coer());
        tickets.push(at);
    }
    // Unlinkable: no two tickets share a key or a HashedId8.
    assert_ne!(tickets[0].hashed_id8(), tickets[1].hashed_id8());
    // A downgrade since enrolment reaches the next ticket (the EA confirms
    // the live level, not the credential's).
    d.stations.register(
        ITS_ID,
        Station {
            canonical_key: public(&d.canonical_key),
            trust_level: 2,
            active: true,
        },
    );
    let at = ticket(&d, &ec, &ec_key, &signing_key());
    assert_eq!(at.tbs().assurance_level.unwrap().trust_level(), Some(2));
    assert_eq!(at.tbs().app_permissions.as_ref().unwrap().len(), 1);
}

#[test]
fn refused_authorizations_carry_the_standard_codes() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    let ask = |ec: &Certificate, key: &ring::signature::EcdsaKeyPair, ea: &Certificate| {
        let pending =
            authorization_request(public(&signing_key()), cam(), ec, key, ea, &d.h.aa, d.now)
                .unwrap();
        let answer = d.aa.answer(&pending.message, d.now).unwrap();
        let response = authorization_response(&pending, &answer.message, &d.h.aa).unwrap();
        assert!(response.certificate.is_none() || answer.code == At::Ok);
        answer.code
    };
    // The EC signature by another key: the EA says invalidsignature.
    assert_eq!(ask(&ec, &signing_key(), &d.h.ea), At::InvalidSignature);
    // An EA the AA does not know (the AA's own certificate as "EA").
    assert_eq!(ask(&ec, &ec_key, &d.h.aa), At::ItsAaUnknownEa);
    // A credential the EA never issued.
    let stranger = signing_key();
    let fake = Certificate::issue(
        trustca_etsi::profile::enrolment_credential(public(&stranger), ca_validity(), 3).unwrap(),
        &d.h.aa,
        &d.h.aa_key,
    )
    .unwrap();
    assert_eq!(ask(&fake, &stranger, &d.h.ea), At::UnknownIts);
    // A revoked station: the EA denies.
    d.stations.register(
        ITS_ID,
        Station {
            canonical_key: public(&d.canonical_key),
            trust_level: 4,
            active: false,
        },
    );
    assert_eq!(ask(&ec, &ec_key, &d.h.ea), At::DeniedPermissions);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn neither_authority_learns_what_the_other_may_not() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    let at_key = signing_key();
    let pending = authorization_request(
        public(&at_key),
        cam(),
        &ec,
        &ec_key,
        &d.h.ea,
        &d.h.aa,
        d.now,
    )
    .unwrap();
    // What the AA can read: the request decrypted with the AA's key.
    let aa_plain = trustca_etsi::envelope::encrypted(&pending.message)
        .unwrap()
        .open_as_certificate(&d.h.aa_enc, &d.h.aa)
        .unwrap();
    let answer = d.aa.answer(&pending.message, d.now).unwrap();
    let at = authorization_response(&pending, &answer.message, &d.h.aa)
        .unwrap()
        .certificate
        .unwrap();
    // The AA holds the ticket key (it certifies it) but nothing naming the
    // station: not the credential, its HashedId8, its key, the canonical id.
    let x = public(&at_key).x();
    assert!(contains(&aa_plain, &x));
    for secret in [
        &ec.hashed_id8()[..],
        ec.as_coer(),
        &public(&ec_key).x()[..],
        ITS_ID,
        &public(&d.canonical_key).x()[..],
    ] {
        assert!(
            !contains(&aa_plain, secret),
            "the AA can read a station identifier"
        );
    }
    // What the EA received (each validation message, decrypted with the
    // EA's key, and the encrypted ecSignature inside opened too): never the
    // ticket's key nor the ticket or its HashedId8.
    let seen = d.link.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let ea_plain = trustca_etsi::envelope::encrypted(&seen[0])
        .unwrap()
        .open_as_certificate(&d.h.ea_enc, &d.h.ea)
        .unwrap();
    assert!(contains(&ea_plain, &d.h.aa.hashed_id8()) || contains(&ea_plain, d.h.aa.as_coer()));
    for secret in [
        &x[..],
        &at.hashed_id8()[..],
        at.as_coer(),
        at_key.public_key().as_ref(),
    ] {
        assert!(!contains(&ea_plain, secret), "the EA can read the ticket");
        assert!(!contains(&seen[0], secret));
    }
}
