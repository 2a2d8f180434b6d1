//! Round trip and refusals of the trust list codec.

use rcgen::{CertificateParams, DnType, KeyPair, SigningKey};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

fn root(cn: &str) -> (KeyPair, Vec<u8>) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).expect("cert");
    (key, cert.der().to_vec())
}

fn subject(cert: &[u8]) -> Vec<u8> {
    let (_, c) = X509Certificate::from_der(cert).expect("parse");
    c.subject().as_raw().to_vec()
}

fn list(issuer: &[u8], foreign: &[u8], now: OffsetDateTime, sequence: u64) -> TrustList {
    TrustList {
        issuer: subject(issuer),
        sequence,
        this_update: now,
        next_update: now + Duration::days(30),
        entries: vec![TrustListEntry {
            certificate: foreign.to_vec(),
            sectors: vec![SectorName::new("railway").expect("name")],
        }],
    }
}

fn signed(l: &TrustList, key: &KeyPair) -> Vec<u8> {
    let tbs = l.tbs_der().expect("tbs");
    let sig = key.sign(&tbs).expect("sign");
    TrustList::assemble(&tbs, ListSignatureAlgorithm::EcdsaSha256, &sig).expect("assemble")
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp()).expect("now")
}

#[test]
fn round_trip() {
    let (key, ours) = root("R1");
    let (_, theirs) = root("R2");
    let l = list(&ours, &theirs, now(), 7);
    let der = signed(&l, &key);
    let back = TrustList::verify(&der, &ours, now()).expect("verifies");
    assert_eq!(back, l);
    assert!(back.entry_for(&theirs).is_some());
    assert!(back.entry_for(&ours).is_none());
}

#[test]
fn signed_by_another_key_is_refused() {
    let (_, ours) = root("R1");
    let (other_key, _) = root("R1");
    let (_, theirs) = root("R2");
    let der = signed(&list(&ours, &theirs, now(), 1), &other_key);
    let e = TrustList::verify(&der, &ours, now()).expect_err("refused");
    assert!(e.to_string().contains("unknown key"), "{e}");
}

#[test]
fn issued_by_another_root_is_refused() {
    let (_, ours) = root("R1");
    let (their_key, theirs) = root("R2");
    let der = signed(&list(&theirs, &ours, now(), 1), &their_key);
    let e = TrustList::verify(&der, &ours, now()).expect_err("refused");
    assert!(e.to_string().contains("another authority"), "{e}");
}

#[test]
fn stale_list_is_refused() {
    let (key, ours) = root("R1");
    let (_, theirs) = root("R2");
    let der = signed(&list(&ours, &theirs, now(), 1), &key);
    let e = TrustList::verify(&der, &ours, now() + Duration::days(31)).expect_err("stale");
    assert!(e.to_string().contains("nextUpdate"), "{e}");
}

#[test]
fn tampering_and_garbage_are_refused() {
    let (key, ours) = root("R1");
    let (_, theirs) = root("R2");
    let mut der = signed(&list(&ours, &theirs, now(), 1), &key);
    // The sector name's last byte: "railway" becomes "railwaz".
    let at = der
        .windows(7)
        .position(|w| w == b"railway")
        .expect("sector in list");
    der[at + 6] = b'z';
    let e = TrustList::verify(&der, &ours, now()).expect_err("tampered");
    assert!(e.to_string().contains("does not verify"), "{e}");
    for garbage in [
        &b""[..],
        b"\x30\x00",
        b"\x30\x03\x02\x01\x00",
        &der[..der.len() - 1],
    ] {
        assert!(TrustList::verify(garbage, &ours, now()).is_err());
    }
    let mut trailing = signed(&list(&ours, &theirs, now(), 1), &key);
    trailing.push(0);
    assert!(TrustList::verify(&trailing, &ours, now()).is_err());
}

#[test]
fn the_list_in_force_names_root_for_sector_and_says_when_it_lapsed() {
    let (key, ours) = root("R1");
    let (_, theirs) = root("R2");
    let l = list(&ours, &theirs, now(), 3);
    let der = signed(&l, &key);
    let railway = SectorName::new("railway").expect("name");
    let tram = SectorName::new("tram").expect("name");
    assert_eq!(l.root_for(&railway), Some(theirs.as_slice()));
    assert_eq!(l.root_for(&tram), None);

    let in_force = ListInForce::default();
    let e = in_force
        .still_lists(&theirs, &railway, now())
        .expect_err("none");
    assert!(e.contains("no trust list"), "{e}");
    let next_update = l.next_update;
    in_force.set(Some(CheckedTrustList { list: l, der }), None, now());
    in_force
        .still_lists(&theirs, &railway, now())
        .expect("listed");
    let e = in_force
        .still_lists(&theirs, &tram, now())
        .expect_err("sector");
    assert!(
        e.contains("no longer lets its root vouch for sector tram"),
        "{e}"
    );
    let e = in_force
        .still_lists(&ours, &railway, now())
        .expect_err("root");
    assert!(e.contains("not on the trust list"), "{e}");
    // Past nextUpdate, the held list refuses by itself; replaced by none,
    // the handle remembers that it lapsed, not merely that none is held.
    let later = next_update + Duration::seconds(1);
    let e = in_force
        .still_lists(&theirs, &railway, later)
        .expect_err("lapsed");
    assert!(e.contains("lapsed on"), "{e}");
    in_force.set(
        None,
        Some("the trust list held cannot be used (stale)".into()),
        later,
    );
    assert!(in_force.get().is_none());
    let e = in_force
        .still_lists(&theirs, &railway, later)
        .expect_err("lapsed");
    assert!(e.contains("(#3) lapsed on"), "{e}");
    // A chain under no listed root is refused naming the list and lapse.
    let e = in_force
        .accepts(
            std::slice::from_ref(&theirs),
            later,
            &ExtensionOid::default(),
        )
        .expect_err("no list");
    assert!(e.contains("lapsed on"), "{e}");
}
