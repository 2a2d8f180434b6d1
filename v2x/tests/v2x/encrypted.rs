//! IEEE 1609.2 `EncryptedData`: sealing, opening, tampering, strict
//! decoding, and the fixed vectors of `testdata/encrypted-data.json`
//! (produced by the independent Python implementation
//! `tests/ecies_vectors.py`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::common;

use common::*;
use ring::rand::{SecureRandom, SystemRandom};
use trustca_v2x::{
    Certificate, EncryptedData, MAX_ENCRYPTED_DATA_LEN, P1_EMPTY, PublicKeyP256, RecipientKind,
    V2xError, encryption_public_key, hashed_id8, response_key_id, sha256,
};

pub fn secret() -> ([u8; 32], PublicKeyP256) {
    loop {
        let mut s = [0u8; 32];
        SystemRandom::new().fill(&mut s).unwrap();
        if let Ok(k) = encryption_public_key(&s) {
            return (s, k);
        }
    }
}

/// A ticket whose `encryptionKey` is `enc`, issued by the chain's CA.
fn ticket_with_encryption_key(c: &Chain, enc: PublicKeyP256) -> Certificate {
    let mut tbs = ticket_tbs(&c.ticket_key);
    tbs.encryption_key = Some(enc);
    Certificate::issue(tbs, &c.ca, &c.ca_key).unwrap()
}

#[test]
fn round_trips_for_every_recipient_kind() {
    let (s, k) = secret();
    for (len, kind) in [
        (0usize, RecipientKind::Certificate),
        (1, RecipientKind::SignedData),
        (1000, RecipientKind::ResponseEncryptionKey),
    ] {
        let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let id = [9u8; 8];
        // P1: the hash of the certificate / the signed data (stand-ins),
        // the empty string's for a response encryption key.
        let p1 = match kind {
            RecipientKind::Certificate => sha256(b"certificate"),
            RecipientKind::SignedData => sha256(b"signed data"),
            RecipientKind::ResponseEncryptionKey => P1_EMPTY,
        };
        let e = EncryptedData::seal(&k, id, kind, &p1, &pt).unwrap();
        assert_eq!(e.recipients().len(), 1);
        assert_eq!(e.recipients()[0].kind, kind);
        assert_eq!(e.recipients()[0].recipient_id, id);
        assert_eq!(e.ccm_ciphertext().len(), len + 16);
        let bytes = e.to_coer();
        let d = EncryptedData::from_coer(&bytes).unwrap();
        assert_eq!(d, e);
        assert_eq!(d.open(&s, id, &p1).unwrap(), pt);
        if kind != RecipientKind::ResponseEncryptionKey {
            assert_eq!(d.open(&s, id, &P1_EMPTY), Err(V2xError::Decryption));
        }
    }
}

#[test]
fn seal_to_certificate_and_response_key() {
    let c = chain();
    let (s, k) = secret();
    let ticket = ticket_with_encryption_key(&c, k);
    let e = EncryptedData::seal_to_certificate(&ticket, b"to the ticket holder").unwrap();
    assert_eq!(e.recipients()[0].kind, RecipientKind::Certificate);
    assert_eq!(e.recipients()[0].recipient_id, ticket.hashed_id8());
    assert_eq!(
        e.open_as_certificate(&s, &ticket).unwrap(),
        b"to the ticket holder"
    );
    assert_eq!(
        e.open(&s, ticket.hashed_id8(), &sha256(ticket.as_coer()))
            .unwrap(),
        b"to the ticket holder"
    );
    // P1 is the certificate hash: the empty-string P1 fails.
    assert_eq!(
        e.open(&s, ticket.hashed_id8(), &P1_EMPTY),
        Err(V2xError::Decryption)
    );
    // A certificate without an encryption key.
    assert_eq!(
        EncryptedData::seal_to_certificate(&c.root, b"x"),
        Err(V2xError::NoEncryptionKey)
    );

    let e = EncryptedData::seal_to_response_key(&k, b"response").unwrap();
    assert_eq!(e.recipients()[0].kind, RecipientKind::ResponseEncryptionKey);
    assert_eq!(e.recipients()[0].recipient_id, response_key_id(&k));
    assert_eq!(e.open_with_response_key(&s, &k).unwrap(), b"response");
    // response_key_id hashes the COER PublicEncryptionKey 00 80 8x x.
    let mut pek = vec![0x00, 0x80, if k.y_is_odd() { 0x83 } else { 0x82 }];
    pek.extend_from_slice(&k.x());
    assert_eq!(response_key_id(&k), hashed_id8(&pek));
}

#[test]
fn tampering_and_wrong_keys_fail() {
    let (s, k) = secret();
    let (other, _) = secret();
    let id = [1, 2, 3, 4, 5, 6, 7, 8];
    let pt = b"pseudonym certificate batch".to_vec();
    let e =
        EncryptedData::seal(&k, id, RecipientKind::ResponseEncryptionKey, &P1_EMPTY, &pt).unwrap();
    let bytes = e.to_coer();
    assert_eq!(e.open(&s, id, &P1_EMPTY).unwrap(), pt);
    // Wrong key, wrong P1, wrong id, P1 of the wrong length.
    assert_eq!(e.open(&other, id, &P1_EMPTY), Err(V2xError::Decryption));
    assert_eq!(e.open(&s, id, &[0u8; 32]), Err(V2xError::Decryption));
    assert_eq!(e.open(&s, [0; 8], &P1_EMPTY), Err(V2xError::NoRecipient));
    assert!(matches!(e.open(&s, id, b""), Err(V2xError::OutOfRange(_))));
    assert_eq!(e.open(&[0u8; 32], id, &P1_EMPTY), Err(V2xError::InvalidKey));
    // Layout: quantity (01 01), tag 84, id (8), tag 80, v (33), c (16),
    // t (16), tag 80, nonce (12), length, ccmCiphertext.
    let (c_at, t_at, nonce_at) = (2 + 1 + 8 + 1 + 33, 2 + 1 + 8 + 1 + 33 + 16, 2 + 75 + 1);
    let ct_at = nonce_at + 12 + 1;
    assert_eq!(bytes.len(), ct_at + pt.len() + 16);
    for (what, at) in [
        ("c", c_at),
        ("t", t_at),
        ("nonce", nonce_at),
        ("ciphertext", ct_at),
        ("ccm tag", bytes.len() - 1),
    ] {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[at] ^= bit;
            let d = EncryptedData::from_coer(&b).unwrap();
            assert_eq!(
                d.open(&s, id, &P1_EMPTY),
                Err(V2xError::Decryption),
                "{what}"
            );
        }
    }
    // A flipped recipient id: no such recipient.
    let mut b = bytes.clone();
    b[3] ^= 1;
    assert_eq!(
        EncryptedData::from_coer(&b)
            .unwrap()
            .open(&s, id, &P1_EMPTY),
        Err(V2xError::NoRecipient)
    );
    // A changed ephemeral key: another valid point or none at all.
    let mut b = bytes.clone();
    b[14] ^= 1;
    match EncryptedData::from_coer(&b) {
        Ok(d) => assert_eq!(d.open(&s, id, &P1_EMPTY), Err(V2xError::Decryption)),
        Err(e) => assert_eq!(e, V2xError::InvalidKey),
    }
}

#[test]
fn several_recipients() {
    let (s1, k1) = secret();
    let (s2, _) = secret();
    let e = EncryptedData::seal(&k1, [7; 8], RecipientKind::Certificate, &P1_EMPTY, b"hi").unwrap();
    let bytes = e.to_coer();
    // Prepend a second recipient (a copy with another id and kind) by hand.
    let rec = &bytes[2..2 + 75];
    let mut other = rec.to_vec();
    other[0] = 0x83;
    other[1..9].copy_from_slice(&[8; 8]);
    let mut b = vec![0x01, 0x02];
    b.extend_from_slice(&other);
    b.extend_from_slice(&bytes[2..]);
    let d = EncryptedData::from_coer(&b).unwrap();
    assert_eq!(d.recipients().len(), 2);
    assert_eq!(d.recipients()[0].kind, RecipientKind::SignedData);
    assert_eq!(d.open(&s1, [7; 8], &P1_EMPTY).unwrap(), b"hi");
    assert_eq!(d.open(&s1, [8; 8], &P1_EMPTY).unwrap(), b"hi");
    assert_eq!(d.open(&s2, [7; 8], &P1_EMPTY), Err(V2xError::Decryption));
    assert_eq!(d.to_coer(), b);
}

#[test]
fn strict_decoding() {
    let (_, k) = secret();
    let e = EncryptedData::seal(&k, [1; 8], RecipientKind::Certificate, &P1_EMPTY, b"abc").unwrap();
    let bytes = e.to_coer();
    for n in 0..bytes.len() {
        assert!(EncryptedData::from_coer(&bytes[..n]).is_err(), "{n}");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        EncryptedData::from_coer(&long),
        Err(V2xError::TrailingBytes(1))
    );
    let with = |i: usize, v: u8| {
        let mut b = bytes.clone();
        b[i] = v;
        EncryptedData::from_coer(&b)
    };
    // No recipients; the quantity's length octet non-canonical.
    assert!(matches!(
        with(1, 0),
        Err(V2xError::Invalid { .. }) | Err(V2xError::TrailingBytes(_))
    ));
    let mut b = bytes.clone();
    b[1] = 0;
    b.truncate(2);
    assert!(matches!(
        EncryptedData::from_coer(&b),
        Err(V2xError::Invalid { .. })
    ));
    assert!(with(0, 2).is_err());
    // RecipientInfo alternatives.
    // pskRecipInfo is read (TS 102 941 answers), but here its HashedId8
    // is followed by the ECIES key's octets where the ciphertext belongs.
    assert!(with(2, 0x80).is_err());
    assert!(matches!(with(2, 0x81), Err(V2xError::Unsupported(_)))); // symm
    assert!(matches!(with(2, 0x85), Err(V2xError::Invalid { .. })));
    assert!(matches!(with(2, 0x02), Err(V2xError::Invalid { .. })));
    // EncryptedDataEncryptionKey: Brainpool, extension.
    assert!(matches!(with(11, 0x81), Err(V2xError::Unsupported(_))));
    assert!(matches!(with(11, 0x82), Err(V2xError::Unsupported(_))));
    // v: x-only, fill, uncompressed, unknown.
    assert!(matches!(with(12, 0x80), Err(V2xError::Invalid { .. })));
    assert!(matches!(with(12, 0x81), Err(V2xError::Invalid { .. })));
    assert!(matches!(with(12, 0x84), Err(V2xError::Unsupported(_))));
    assert!(matches!(with(12, 0x85), Err(V2xError::Invalid { .. })));
    // SymmetricCiphertext extension.
    assert!(matches!(with(77, 0x81), Err(V2xError::Unsupported(_))));
    // ccmCiphertext: long-form length below 128, shorter than the tag.
    let mut b = bytes[..90].to_vec();
    b.extend_from_slice(&[0x81, 19]);
    b.extend_from_slice(&bytes[91..]);
    assert!(matches!(
        EncryptedData::from_coer(&b),
        Err(V2xError::NonCanonical { .. })
    ));
    let mut b = bytes[..90].to_vec();
    b.push(15);
    b.extend_from_slice(&[0; 15]);
    assert!(matches!(
        EncryptedData::from_coer(&b),
        Err(V2xError::Invalid { .. })
    ));
    // An x with no point on the curve (found by search).
    let bad_x = (0u8..=255)
        .map(|i| [i; 32])
        .find(|x| PublicKeyP256::from_x(x, false).is_err())
        .unwrap();
    let mut b = bytes.clone();
    b[13..45].copy_from_slice(&bad_x);
    assert_eq!(EncryptedData::from_coer(&b), Err(V2xError::InvalidKey));
    // Too many recipients, too long.
    let rec = &bytes[2..77];
    let mut b = vec![0x01, 17];
    for _ in 0..17 {
        b.extend_from_slice(rec);
    }
    b.extend_from_slice(&bytes[77..]);
    assert!(matches!(
        EncryptedData::from_coer(&b),
        Err(V2xError::Limit(_))
    ));
    assert!(matches!(
        EncryptedData::from_coer(&vec![0; MAX_ENCRYPTED_DATA_LEN + 1]),
        Err(V2xError::Limit(_))
    ));
    assert!(matches!(
        EncryptedData::seal(
            &k,
            [0; 8],
            RecipientKind::Certificate,
            &P1_EMPTY,
            &vec![0; MAX_ENCRYPTED_DATA_LEN]
        ),
        Err(V2xError::Limit(_))
    ));
}

fn hex32(v: &serde_json::Value, k: &str) -> [u8; 32] {
    hex::decode(v[k].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hexv(v: &serde_json::Value, k: &str) -> Vec<u8> {
    hex::decode(v[k].as_str().unwrap()).unwrap()
}

/// Vectors made by the independent Python implementation
/// (`tests/ecies_vectors.py`); `open` must decrypt them and the codec must
/// read every field as Python wrote it.
#[test]
fn python_vectors_decrypt() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../testdata/encrypted-data.json")).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 3);
    let root = hex::decode(include_str!("../../testdata/root.coer.hex").trim()).unwrap();
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let bytes = hexv(v, "encrypted_data");
        let e = EncryptedData::from_coer(&bytes).unwrap();
        assert_eq!(e.to_coer(), bytes, "{name}");
        let secret = hex32(v, "recipient_secret");
        let public = encryption_public_key(&secret).unwrap();
        assert_eq!(public.compressed().to_vec(), hexv(v, "recipient_public"));
        let id: [u8; 8] = hexv(v, "recipient_id").try_into().unwrap();
        let p1 = hexv(v, "p1");
        let r = &e.recipients()[0];
        assert_eq!(r.recipient_id, id);
        assert_eq!(r.enc_key.v.compressed().to_vec(), hexv(v, "v"));
        assert_eq!(r.enc_key.c.to_vec(), hexv(v, "c"));
        assert_eq!(r.enc_key.t.to_vec(), hexv(v, "t"));
        assert_eq!(
            encryption_public_key(&hex32(v, "eph_secret")).unwrap(),
            r.enc_key.v
        );
        assert_eq!(e.nonce().to_vec(), hexv(v, "nonce"));
        let pt = hexv(v, "plaintext");
        assert_eq!(e.open(&secret, id, &p1).unwrap(), pt, "{name}");
        match v["kind"].as_str().unwrap() {
            "rekRecipInfo" => {
                assert_eq!(r.kind, RecipientKind::ResponseEncryptionKey);
                assert_eq!(response_key_id(&public), id);
                assert_eq!(p1, P1_EMPTY);
                assert_eq!(e.open_with_response_key(&secret, &public).unwrap(), pt);
            }
            "certRecipInfo" => {
                assert_eq!(r.kind, RecipientKind::Certificate);
                let cert = Certificate::from_coer(&root).unwrap();
                assert_eq!(cert.hashed_id8(), id);
                assert_eq!(sha256(&root).to_vec(), p1);
                assert_eq!(e.open_as_certificate(&secret, &cert).unwrap(), pt);
            }
            "signedDataRecipInfo" => assert_eq!(r.kind, RecipientKind::SignedData),
            k => panic!("unknown kind {k}"),
        }
        // Tampering with the vector fails too.
        let mut b = bytes.clone();
        let n = b.len();
        b[n - 1] ^= 1;
        assert_eq!(
            EncryptedData::from_coer(&b).unwrap().open(&secret, id, &p1),
            Err(V2xError::Decryption)
        );
    }
}

#[test]
fn pre_shared_key_recipients_round_trip_and_open_only_under_their_key() {
    let k = [0x42u8; 16];
    let sealed = EncryptedData::seal_with_psk(&k, b"answer").unwrap();
    assert_eq!(sealed.psk_recipient(), Some(trustca_v2x::psk_id(&k)));
    assert!(sealed.recipients().is_empty());
    let bytes = sealed.to_coer();
    // One recipient, pskRecipInfo (80H), then the HashedId8.
    assert_eq!(&bytes[..2], &[0x01, 0x01]);
    assert_eq!(bytes[2], 0x80);
    let decoded = EncryptedData::from_coer(&bytes).unwrap();
    assert_eq!(decoded, sealed);
    assert_eq!(decoded.open_with_psk(&k).unwrap(), b"answer");
    assert!(matches!(
        decoded.open_with_psk(&[0x43; 16]),
        Err(V2xError::NoRecipient)
    ));
    // The public-key opener finds no recipient in it.
    assert!(matches!(
        decoded.open(&[7; 32], trustca_v2x::psk_id(&k), &P1_EMPTY),
        Err(V2xError::NoRecipient)
    ));
    // A flipped ciphertext bit fails the CCM tag.
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        EncryptedData::from_coer(&flipped)
            .unwrap()
            .open_with_psk(&k),
        Err(V2xError::Decryption)
    ));
    // A psk recipient beside another one is refused.
    let mut two = vec![0x01, 0x02, 0x80];
    two.extend_from_slice(&trustca_v2x::psk_id(&k));
    two.push(0x80);
    two.extend_from_slice(&trustca_v2x::psk_id(&k));
    two.extend_from_slice(&bytes[11..]);
    assert!(matches!(
        EncryptedData::from_coer(&two),
        Err(V2xError::Unsupported(_))
    ));
}

#[test]
fn a_request_key_chosen_by_the_sender_opens_the_answer() {
    let (secret, public) = loop {
        let mut s = [0u8; 32];
        SystemRandom::new().fill(&mut s).unwrap();
        if let Ok(p) = encryption_public_key(&s) {
            break (s, p);
        }
    };
    let k = [9u8; 16];
    let e = EncryptedData::seal_with_key(
        &public,
        [1; 8],
        RecipientKind::ResponseEncryptionKey,
        &P1_EMPTY,
        &k,
        b"request",
    )
    .unwrap();
    let (key, plain) = e.open_keeping_key(&secret, [1; 8], &P1_EMPTY).unwrap();
    assert_eq!((*key, plain.as_slice()), (k, &b"request"[..]));
}
