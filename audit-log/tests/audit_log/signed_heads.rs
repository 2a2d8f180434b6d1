//! Signed tree heads: sign/verify round trips, strict decoding, rejection of
//! bad signatures, wrong keys and keys of the wrong algorithm.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair,
};
use trustca_audit::{
    AuditError, MAX_SIGNATURE_LEN, MerkleFrontier, STH_DOMAIN, STH_DOMAIN_V2, SignedTreeHead,
    TREE_HEAD_LEN, TREE_HEAD_V2_LEN, TreeHead, signer_key_id,
};

fn key(alg: &'static EcdsaSigningAlgorithm) -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
}

fn head() -> TreeHead {
    let mut f = MerkleFrontier::new();
    for i in 0..11u32 {
        f.push_entry(&i.to_be_bytes()).unwrap();
    }
    f.tree_head(1_700_000_000_000)
}

#[test]
fn sign_verify_and_bytes_round_trip() {
    let k = key(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let sth = head().sign(&k, &SystemRandom::new()).unwrap();
    assert_eq!(sth.head, head());
    assert!(sth.signature.len() <= MAX_SIGNATURE_LEN);
    let pk = k.public_key().as_ref();
    assert_eq!(pk.len(), 65);
    sth.verify(pk).unwrap();

    let bytes = sth.to_bytes();
    // Version 2: the signed bytes name the signer's key.
    assert_eq!(bytes.len(), TREE_HEAD_V2_LEN + 2 + sth.signature.len());
    assert_eq!(&bytes[..STH_DOMAIN_V2.len()], STH_DOMAIN_V2.as_slice());
    assert_eq!(
        &bytes[TREE_HEAD_LEN..TREE_HEAD_V2_LEN],
        signer_key_id(pk).as_slice()
    );
    assert_eq!(
        &bytes[STH_DOMAIN_V2.len()..TREE_HEAD_LEN],
        &head().to_bytes()[STH_DOMAIN.len()..]
    );
    let back = SignedTreeHead::from_bytes(&bytes).unwrap();
    assert_eq!(back, sth);
    back.verify(pk).unwrap();
}

#[test]
fn empty_tree_head_signs() {
    let k = key(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let sth = MerkleFrontier::new()
        .tree_head(0)
        .sign(&k, &SystemRandom::new())
        .unwrap();
    sth.verify(k.public_key().as_ref()).unwrap();
}

#[test]
fn wrong_key_and_altered_fields_are_rejected() {
    let k = key(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let other = key(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let sth = head().sign(&k, &SystemRandom::new()).unwrap();
    let bad = Err(AuditError::BadSignature {
        size: 11,
        timestamp_ms: 1_700_000_000_000,
    });
    assert_eq!(sth.verify(other.public_key().as_ref()), bad);
    assert!(sth.verify(&[]).is_err());
    assert!(sth.verify(&k.public_key().as_ref()[..64]).is_err());

    let mut s = sth.clone();
    s.head.size += 1;
    assert!(matches!(
        s.verify(k.public_key().as_ref()),
        Err(AuditError::BadSignature { size: 12, .. })
    ));
    let mut s = sth.clone();
    s.head.timestamp_ms -= 1;
    assert!(s.verify(k.public_key().as_ref()).is_err());
    let mut s = sth.clone();
    s.head.root[31] ^= 1;
    assert_eq!(s.verify(k.public_key().as_ref()), bad);
    for i in 0..sth.signature.len() {
        let mut s = sth.clone();
        s.signature[i] ^= 0x40;
        assert_eq!(s.verify(k.public_key().as_ref()), bad, "byte {i}");
    }
    // Flipping any byte of the encoding either fails to decode or fails to verify.
    let bytes = sth.to_bytes();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        if let Ok(s) = SignedTreeHead::from_bytes(&b) {
            assert!(s.verify(k.public_key().as_ref()).is_err(), "byte {i}");
        }
    }
}

#[test]
fn keys_of_the_wrong_algorithm_cannot_sign() {
    for alg in [
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &ECDSA_P384_SHA384_ASN1_SIGNING,
    ] {
        let k = key(alg);
        assert!(matches!(
            head().sign(&k, &SystemRandom::new()),
            Err(AuditError::Signing { size: 11, .. })
        ));
    }
}

#[test]
fn strict_decoding() {
    let k = key(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let bytes = head().sign(&k, &SystemRandom::new()).unwrap().to_bytes();
    // Every truncation is rejected.
    for cut in 0..bytes.len() {
        let err = SignedTreeHead::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(
                err,
                AuditError::Truncated { .. } | AuditError::BadPrefix { .. }
            ),
            "cut {cut}: {err:?}"
        );
    }
    assert!(matches!(
        SignedTreeHead::from_bytes(&bytes[..bytes.len() - 1]),
        Err(AuditError::Truncated { .. })
    ));
    // Trailing bytes are rejected.
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        SignedTreeHead::from_bytes(&longer),
        Err(AuditError::TrailingBytes {
            what: "signed tree head",
            expected: bytes.len(),
            got: bytes.len() + 1
        })
    );
    // Wrong domain separator.
    let mut b = bytes.clone();
    b[13] = b'3';
    assert!(matches!(
        SignedTreeHead::from_bytes(&b),
        Err(AuditError::BadPrefix { .. })
    ));
    // Signature length 0 or > 72.
    for len in [0u16, 73, u16::MAX] {
        let mut b = bytes[..TREE_HEAD_V2_LEN].to_vec();
        b.extend_from_slice(&len.to_be_bytes());
        b.extend(std::iter::repeat_n(0x30, usize::from(len)));
        assert!(matches!(
            SignedTreeHead::from_bytes(&b),
            Err(AuditError::InvalidEncoding { .. })
        ));
    }
    // The bare tree head encoding is strict too.
    let hb = head().to_bytes();
    assert!(TreeHead::from_bytes(&hb[..TREE_HEAD_LEN - 1]).is_err());
    let mut hl = hb.to_vec();
    hl.push(0);
    assert!(matches!(
        TreeHead::from_bytes(&hl),
        Err(AuditError::TrailingBytes { .. })
    ));
}

#[test]
fn tree_head_layout() {
    let head = TreeHead {
        size: 0x0102_0304_0506_0708,
        root: [0xAB; 32],
        timestamp_ms: 0x1112_1314_1516_1718,
    };
    let b = head.to_bytes();
    assert_eq!(&b[..15], b"trustca-sth-v1\0");
    assert_eq!(&b[15..23], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        &b[23..31],
        &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
    );
    assert_eq!(&b[31..], &[0xAB; 32]);
}

/// An external signer (a PKCS#11 token) that forgot to convert its raw
/// `r ‖ s` into DER is caught when signing, not later at verification; a
/// DER signature from it is accepted.
#[test]
fn external_signers_must_return_der() {
    let rng = SystemRandom::new();
    let fixed = key(&ECDSA_P256_SHA256_FIXED_SIGNING);
    let public = fixed.public_key().as_ref().to_vec();
    let raw = SignedTreeHead::sign_with(head(), &public, |m| {
        fixed.sign(&rng, m).ok().map(|s| s.as_ref().to_vec())
    });
    assert!(matches!(raw, Err(AuditError::Signing { size: 11, .. })));
    let failed = SignedTreeHead::sign_with(head(), &public, |_| None);
    assert!(matches!(failed, Err(AuditError::Signing { size: 11, .. })));

    let der_key = key(&ECDSA_P256_SHA256_ASN1_SIGNING);
    let sth = SignedTreeHead::sign_with(head(), der_key.public_key().as_ref(), |m| {
        der_key.sign(&rng, m).ok().map(|s| s.as_ref().to_vec())
    })
    .unwrap();
    sth.verify(der_key.public_key().as_ref()).unwrap();
}
