//! Certificate codec, signing and verification tests.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::common;

use common::*;
use trustca_v2x::{
    Certificate, CertificateId, IssuerIdentifier, SubjectAssurance, V2xError, hashed_id8, sha256,
    signing_message,
};

/// The root vector's toBeSigned, encoded by hand from the ASN.1 modules.
const ROOT_TBS_HEX: &str = concat!(
    "38", // preamble: assuranceLevel, appPermissions, certIssuePermissions
    "81",
    "15",
    "747275737463612d7632782d746573742d726f6f74", // id name "trustca-v2x-test-root"
    "000000",                                     // cracaId
    "0000",                                       // crlSeries 0
    "29625605",                                   // start: 2026-01-01 00:00:00 UTC + 5 leap seconds
    "86",
    "000a", // duration years 10
    "a0",   // assuranceLevel: trust level 5
    "0101",
    "00",
    "02026e", // appPermissions: { psid 622 }
    "0101",
    "a0",
    "81",
    "0102",
    "c0", // certIssuePermissions: { all, minChainLength 2, eeType app|enrol }
    "80",
    "80",
    "83", // verificationKey ecdsaNistP256 compressed-y-1
    "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
);

#[test]
fn root_tbs_matches_hand_encoding() {
    let tbs = root_tbs(&key_one());
    assert_eq!(hex::encode(tbs.to_coer().unwrap()), ROOT_TBS_HEX);
    assert_eq!(
        hex::encode(tbs.to_coer().unwrap()),
        include_str!("../../testdata/root.tbs.hex").trim()
    );
}

#[test]
fn published_root_vector() {
    let bytes = hex::decode(include_str!("../../testdata/root.coer.hex").trim()).unwrap();
    let root = Certificate::from_coer(&bytes).unwrap();
    root.verify_signed_by(None).unwrap();
    assert_eq!(hex::encode(root.tbs_coer()), ROOT_TBS_HEX);
    assert_eq!(root.tbs(), &root_tbs(&key_one()));
    assert_eq!(root.as_coer(), &bytes[..]);
    assert_eq!(
        hex::encode(root.hashed_id8()),
        include_str!("../../testdata/root.hashedid8.hex").trim()
    );
    assert_eq!(&bytes[..5], [0x80, 0x03, 0x00, 0x81, 0x00]);
}

/// Regenerates the vector files when V2X_WRITE_VECTORS=1 (run once; the
/// signature is randomized, so the bytes change every time).
#[test]
fn write_vectors() {
    if std::env::var("V2X_WRITE_VECTORS").as_deref() != Ok("1") {
        return;
    }
    let k = key_one();
    let root = Certificate::sign_root(root_tbs(&k), &k).unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata");
    std::fs::write(
        format!("{dir}/root.tbs.hex"),
        hex::encode(root.tbs_coer()) + "\n",
    )
    .unwrap();
    std::fs::write(
        format!("{dir}/root.coer.hex"),
        hex::encode(root.as_coer()) + "\n",
    )
    .unwrap();
    std::fs::write(
        format!("{dir}/root.hashedid8.hex"),
        hex::encode(root.hashed_id8()) + "\n",
    )
    .unwrap();
}

#[test]
fn hashed_id8_is_low_order_sha256() {
    let c = chain();
    for cert in [&c.root, &c.ca, &c.ticket] {
        let h = sha256(cert.as_coer());
        assert_eq!(cert.hashed_id8(), h[24..]);
        assert_eq!(cert.hashed_id8(), hashed_id8(&cert.to_coer()));
    }
    assert_eq!(
        c.ca.issuer(),
        IssuerIdentifier::Sha256AndDigest(c.root.hashed_id8())
    );
    assert_eq!(
        c.ticket.issuer(),
        IssuerIdentifier::Sha256AndDigest(c.ca.hashed_id8())
    );
    assert_eq!(c.root.issuer(), IssuerIdentifier::SelfSigned);
}

#[test]
fn round_trip() {
    let c = chain();
    for cert in [&c.root, &c.ca, &c.ticket] {
        let again = Certificate::from_coer(&cert.to_coer()).unwrap();
        assert_eq!(&again, cert);
        assert_eq!(again.tbs().to_coer().unwrap(), cert.tbs_coer());
    }
    assert_eq!(c.ticket.tbs().id, CertificateId::None);
    assert_eq!(
        c.ticket.tbs().assurance_level.unwrap().trust_level(),
        Some(3)
    );
    assert!(c.ca.tbs().encryption_key.is_some());
    // An explicit authorization ticket is about 140 bytes.
    assert!(
        (120..=160).contains(&c.ticket.as_coer().len()),
        "{}",
        c.ticket.as_coer().len()
    );
}

#[test]
fn kitchen_sink_round_trips() {
    let c = chain();
    let k = key();
    let tbs = kitchen_sink_tbs(&k, &key());
    let cert = Certificate::issue(tbs.clone(), &c.root, &c.root_key).unwrap();
    assert_eq!(cert.tbs(), &tbs);
    assert_eq!(Certificate::from_coer(cert.as_coer()).unwrap(), cert);
    cert.verify_signed_by(Some(&c.root)).unwrap();
    // Long-form length for the 200-octet name.
    assert_eq!(&cert.as_coer()[13..16], [0x81, 0x81, 200]);
    for n in 0..cert.as_coer().len() {
        assert!(Certificate::from_coer(&cert.as_coer()[..n]).is_err());
    }
}

#[test]
fn encoded_default_is_rejected() {
    let c = chain();
    // The CA's group `all(1, app)` is 01 01 | 00 | 81 (quantity, empty
    // preamble: minChainLength 1, chainLengthRange 0 and eeType {app} are
    // all DEFAULT in IEEE 1609.2-2022). Encode minChainLength 1 too.
    let b = c.ca.to_coer();
    let pos = b
        .windows(4)
        .position(|w| w == [0x01, 0x01, 0x00, 0x81])
        .unwrap();
    let mut m = b[..pos + 2].to_vec();
    m.extend_from_slice(&[0x80, 0x81, 0x01, 0x01]);
    m.extend_from_slice(&b[pos + 4..]);
    assert!(matches!(
        Certificate::from_coer(&m),
        Err(V2xError::NonCanonical { .. })
    ));
    // With minChainLength 2 instead, it decodes (only the signature breaks).
    m[pos + 5] = 0x02;
    let t = Certificate::from_coer(&m).unwrap();
    assert_eq!(
        t.verify_signed_by(Some(&c.root)),
        Err(V2xError::BadSignature)
    );
    // eeType 00H (no end-entity type) is not a valid EndEntityType.
    let mut z = b[..pos + 2].to_vec();
    z.extend_from_slice(&[0x20, 0x81, 0x00]);
    z.extend_from_slice(&b[pos + 4..]);
    assert!(matches!(
        Certificate::from_coer(&z),
        Err(V2xError::Invalid { .. })
    ));
}

/// A certificate as an older trustca issued it: `eeType` {app} written out
/// (canonical under the 2016 module, DEFAULT '00'H), signed over those
/// bytes. It is read, its signature verifies over the bytes received, its
/// HashedId8 is over them, and it is flagged; ours never write it.
#[test]
fn legacy_explicit_app_ee_type_is_read_and_verified_as_received() {
    let c = chain();
    assert!(!c.ca.legacy_ee_type_encoding());
    let tbs = c.ca.tbs_coer();
    let pos = tbs
        .windows(4)
        .position(|w| w == [0x01, 0x01, 0x00, 0x81])
        .unwrap();
    let mut legacy_tbs = tbs[..pos + 2].to_vec();
    legacy_tbs.extend_from_slice(&[0x20, 0x81, 0x80]);
    legacy_tbs.extend_from_slice(&tbs[pos + 4..]);
    let msg = signing_message(&legacy_tbs, c.root.as_coer());
    let sig = c
        .root_key
        .sign(&ring::rand::SystemRandom::new(), &msg)
        .unwrap();
    let mut bytes = vec![0x80, 0x03, 0x00, 0x80];
    bytes.extend_from_slice(&c.root.hashed_id8());
    bytes.extend_from_slice(&legacy_tbs);
    bytes.extend_from_slice(&[0x80, 0x80]);
    bytes.extend_from_slice(sig.as_ref());
    let legacy = Certificate::from_coer(&bytes).unwrap();
    assert!(legacy.legacy_ee_type_encoding());
    assert_eq!(legacy.tbs(), c.ca.tbs());
    assert_eq!(legacy.as_coer(), &bytes[..]);
    assert_eq!(legacy.tbs_coer(), &legacy_tbs[..]);
    legacy.verify_signed_by(Some(&c.root)).unwrap();
    assert_eq!(legacy.hashed_id8(), hashed_id8(&bytes));
    assert_ne!(legacy.hashed_id8(), c.ca.hashed_id8());
    // What this crate encodes from the same fields is the 2022 form.
    assert_eq!(legacy.tbs().to_coer().unwrap(), c.ca.tbs_coer());
    // A ticket issued by the legacy certificate chains to it.
    let t = Certificate::issue(ticket_tbs(&key()), &legacy, &c.ca_key).unwrap();
    t.verify_signed_by(Some(&legacy)).unwrap();
}

#[test]
fn chain_verifies() {
    let c = chain();
    c.root.verify_signed_by(None).unwrap();
    c.ca.verify_signed_by(Some(&c.root)).unwrap();
    c.ticket.verify_signed_by(Some(&c.ca)).unwrap();
    // Wrong links.
    assert!(matches!(
        c.ticket.verify_signed_by(Some(&c.root)),
        Err(V2xError::IssuerMismatch(_))
    ));
    assert!(matches!(
        c.ticket.verify_signed_by(None),
        Err(V2xError::IssuerMismatch(_))
    ));
    assert!(matches!(
        c.root.verify_signed_by(Some(&c.ca)),
        Err(V2xError::IssuerMismatch(_))
    ));
}

#[test]
fn signing_checks_keys() {
    let c = chain();
    // Root key must match the root's verification key.
    assert!(matches!(
        Certificate::sign_root(root_tbs(&c.root_key), &c.ca_key),
        Err(V2xError::Signing(_))
    ));
    // Issuer key must match the issuer certificate.
    assert!(matches!(
        Certificate::issue(ticket_tbs(&key()), &c.ca, &c.root_key),
        Err(V2xError::Signing(_))
    ));
    // An authorization ticket cannot issue.
    assert!(matches!(
        Certificate::issue(ticket_tbs(&key()), &c.ticket, &c.ticket_key),
        Err(V2xError::IssuerMismatch(_))
    ));
    // A wrong cracaId or no permissions is refused before signing.
    let mut t = ticket_tbs(&key());
    t.craca_id = [0, 0, 1];
    assert!(matches!(
        Certificate::issue(t, &c.ca, &c.ca_key),
        Err(V2xError::Profile(_))
    ));
    let mut t = ticket_tbs(&key());
    t.app_permissions = None;
    assert!(matches!(
        Certificate::issue(t, &c.ca, &c.ca_key),
        Err(V2xError::Profile(_))
    ));
    assert!(SubjectAssurance::from_trust_level(0).is_err());
    assert!(SubjectAssurance::from_trust_level(6).is_err());
}

#[test]
fn every_truncation_is_rejected() {
    let c = chain();
    for cert in [&c.root, &c.ca, &c.ticket] {
        let b = cert.as_coer();
        for n in 0..b.len() {
            assert!(
                Certificate::from_coer(&b[..n]).is_err(),
                "prefix {n} accepted"
            );
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let c = chain();
    let mut b = c.ticket.to_coer();
    b.push(0);
    assert_eq!(Certificate::from_coer(&b), Err(V2xError::TrailingBytes(1)));
}

#[test]
fn non_canonical_encodings_are_rejected() {
    let c = chain();
    // Hostname length 0x1c in long form (81 1c) instead of the short form.
    let b = c.ca.to_coer();
    let name = b"pseudonym-ca.trustca.example";
    let pos = b.windows(name.len()).position(|w| w == name).unwrap();
    assert_eq!(b[pos - 1] as usize, name.len());
    let mut long = b[..pos - 1].to_vec();
    long.extend_from_slice(&[0x81, name.len() as u8]);
    long.extend_from_slice(&b[pos..]);
    assert!(matches!(
        Certificate::from_coer(&long),
        Err(V2xError::NonCanonical { .. })
    ));
    // Padding bit set in the CertificateBase preamble.
    let mut p = c.ca.to_coer();
    p[0] |= 0x01;
    assert!(matches!(
        Certificate::from_coer(&p),
        Err(V2xError::NonCanonical { .. })
    ));
    // psid 36 with a leading zero octet (02 00 24 instead of 01 24).
    let t = c.ticket.to_coer();
    let pos = t.windows(3).position(|w| w == [0x80, 0x01, 0x24]).unwrap();
    let mut z = t[..pos + 1].to_vec();
    z.extend_from_slice(&[0x02, 0x00, 0x24]);
    z.extend_from_slice(&t[pos + 3..]);
    assert!(matches!(
        Certificate::from_coer(&z),
        Err(V2xError::NonCanonical { .. })
    ));
}

#[test]
fn profile_violations_are_rejected() {
    let c = chain();
    let t = c.ticket.to_coer();
    // Offsets for an issued certificate: preamble, version, type, issuer
    // (tag + 8), then toBeSigned: preamble at 12, id tag at 13.
    assert_eq!(t[13], 0x83);
    let with = |i: usize, v: u8| {
        let mut b = t.clone();
        b[i] = v;
        Certificate::from_coer(&b)
    };
    assert!(matches!(with(0, 0x00), Err(V2xError::Profile(_)))); // no signature
    assert!(with(1, 2).is_err()); // version 2
    assert!(matches!(with(2, 1), Err(V2xError::Profile(_)))); // implicit
    assert!(matches!(with(12, t[12] | 0x04), Err(V2xError::Profile(_)))); // certRequestPermissions
    assert!(matches!(with(12, t[12] | 0x02), Err(V2xError::Profile(_)))); // canRequestRollover
    assert!(matches!(
        with(12, t[12] | 0x40),
        Err(V2xError::Unsupported(_))
    )); // region
    assert!(matches!(
        with(12, t[12] | 0x80),
        Err(V2xError::Unsupported(_))
    )); // extension
    assert!(matches!(with(13, 0x80), Err(V2xError::Profile(_)))); // linkageData
    assert!(matches!(with(13, 0x82), Err(V2xError::Profile(_)))); // binaryId
    assert!(matches!(with(14, 0x01), Err(V2xError::Profile(_)))); // cracaId
    // Self-signed with sha384.
    let mut r = c.root.to_coer();
    r[4] = 1;
    assert!(matches!(
        Certificate::from_coer(&r),
        Err(V2xError::Unsupported(_))
    ));
}

#[test]
fn tampering_breaks_verification() {
    let c = chain();
    let cases: [(&Certificate, Option<&Certificate>); 3] = [
        (&c.root, None),
        (&c.ca, Some(&c.root)),
        (&c.ticket, Some(&c.ca)),
    ];
    for (cert, issuer) in cases {
        let b = cert.as_coer();
        let header = if issuer.is_none() { 5 } else { 12 };
        let mut decoded = 0;
        // Every single-bit change of toBeSigned or the signature either
        // fails to decode or fails to verify, except in the rSig tag:
        // x-only (80) and compressed-y-0 (82) carry the same r, so that
        // change still verifies (ECDSA signatures are malleable anyway, and
        // the signature never covers itself).
        let r_tag = b.len() - 65;
        assert_eq!(b[r_tag], 0x80);
        for i in (header..b.len()).filter(|i| *i != r_tag) {
            for bit in 0..8 {
                let mut m = b.to_vec();
                m[i] ^= 1 << bit;
                if let Ok(t) = Certificate::from_coer(&m) {
                    decoded += 1;
                    assert!(t.verify_signed_by(issuer).is_err(), "byte {i} bit {bit}");
                }
            }
        }
        assert!(decoded > 100);
    }
    let mut m = c.ticket.to_coer();
    let r_tag = m.len() - 65;
    m[r_tag] = 0x82;
    let other = Certificate::from_coer(&m).unwrap();
    other.verify_signed_by(Some(&c.ca)).unwrap();
    assert_ne!(other.hashed_id8(), c.ticket.hashed_id8());
    // A certificate verified against a tampered issuer fails too.
    let mut ca = c.ca.to_coer();
    let n = ca.len();
    ca[n - 1] ^= 1;
    let ca = Certificate::from_coer(&ca).unwrap();
    assert!(c.ticket.verify_signed_by(Some(&ca)).is_err());
}

/// Deterministic xorshift for the mutation test (no extra dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic_and_never_verify() {
    let c = chain();
    let sink = Certificate::issue(kitchen_sink_tbs(&key(), &key()), &c.root, &c.root_key).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for (cert, issuer) in [(&c.ticket, &c.ca), (&c.ca, &c.root), (&sink, &c.root)] {
        let orig = cert.to_coer();
        for _ in 0..3000 {
            let mut m = orig.clone();
            for _ in 0..=rng.below(3) {
                if m.is_empty() {
                    break;
                }
                match rng.below(4) {
                    0 => {
                        let i = rng.below(m.len());
                        m[i] = rng.next() as u8;
                    }
                    1 => {
                        let i = rng.below(m.len() + 1);
                        m.insert(i, rng.next() as u8);
                    }
                    2 if m.len() > 1 => {
                        let i = rng.below(m.len());
                        m.remove(i);
                    }
                    _ => {
                        let i = rng.below(m.len());
                        m.truncate(i);
                    }
                }
            }
            if m == orig {
                continue;
            }
            if let Ok(t) = Certificate::from_coer(&m) {
                decoded += 1;
                assert_eq!(t.as_coer(), &m[..]);
                // Only a changed rSig form (x-only/compressed) keeps r.
                if t.verify_signed_by(Some(issuer)).is_ok() {
                    assert_eq!(t.tbs_coer(), cert.tbs_coer());
                    assert_eq!(t.signature().r, cert.signature().r);
                    assert_eq!(t.signature().s, cert.signature().s);
                }
            }
        }
    }
    assert!(decoded > 0);
    // Random garbage.
    for len in 0..400 {
        let g: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = Certificate::from_coer(&g);
    }
}

/// A signer outside ring's `EcdsaKeyPair` impl, as a keystore or PKCS#11
/// token would be; `corrupt` makes it return a signature over other bytes.
struct External {
    key: ring::signature::EcdsaKeyPair,
    corrupt: bool,
}

impl trustca_v2x::V2xSigner for External {
    fn public_key_sec1(&self) -> Vec<u8> {
        ring::signature::KeyPair::public_key(&self.key)
            .as_ref()
            .to_vec()
    }
    fn sign_digest_input(&self, msg: &[u8]) -> Result<[u8; 64], V2xError> {
        let mut m = msg.to_vec();
        if self.corrupt {
            m[0] ^= 1;
        }
        trustca_v2x::V2xSigner::sign_digest_input(&self.key, &m)
    }
}

#[test]
fn external_signers_sign_roots_and_issue() {
    let root_key = External {
        key: key(),
        corrupt: false,
    };
    let root = Certificate::sign_root_with(root_tbs(&root_key.key), &root_key).unwrap();
    root.verify_signed_by(None).unwrap();
    let ca_key = key();
    let ca = Certificate::issue_with(ca_tbs(&ca_key, &key()), &root, &root_key).unwrap();
    ca.verify_signed_by(Some(&root)).unwrap();
    // The same bytes decode again and the issuer link holds.
    let again = Certificate::from_coer(ca.as_coer()).unwrap();
    again.verify_signed_by(Some(&root)).unwrap();
    // A signer whose signature does not verify is caught before anything
    // is returned.
    let bad = External {
        key: key(),
        corrupt: true,
    };
    assert!(matches!(
        Certificate::sign_root_with(root_tbs(&bad.key), &bad),
        Err(V2xError::Signing(_))
    ));
    let bad_root = External {
        key: root_key.key,
        corrupt: true,
    };
    assert!(matches!(
        Certificate::issue_with(ca_tbs(&ca_key, &key()), &root, &bad_root),
        Err(V2xError::Signing(_))
    ));
    // The key must still match.
    assert!(matches!(
        Certificate::issue_with(ca_tbs(&ca_key, &key()), &root, &bad),
        Err(V2xError::Signing(_))
    ));
}
