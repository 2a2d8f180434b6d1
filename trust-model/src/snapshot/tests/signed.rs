//! The signed snapshot: signature, signer kind and key, staleness.

use super::*;

#[test]
fn signed_snapshot_verifies_and_detects_tampering() {
    let pki = pki::Pki::new();
    let (chain, key) = pki.service();
    let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
    let der = signed.to_der();
    let back = SignedSnapshot::from_der(&der).unwrap();
    assert_eq!(back, signed);
    assert_eq!(
        back.verify(&pki.root_der, NOW, &pki.oid, false).unwrap(),
        sample()
    );
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(SignedSnapshot::from_der(&trailing).is_err());
    for cut in [0, 1, der.len() / 2, der.len() - 1] {
        assert!(SignedSnapshot::from_der(&der[..cut]).is_err());
    }
    // One bit of the body, anywhere in the level of the listed device.
    let mut tampered = signed.clone();
    let n = tampered.body.len();
    tampered.body[n - 40] ^= 1;
    let e = tampered
        .verify(&pki.root_der, NOW, &pki.oid, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("signature does not verify"), "{e}");
    // Another root: the chain does not verify.
    let other = pki::Pki::new();
    let e = signed
        .verify(&other.root_der, NOW, &other.oid, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("signer certificate"), "{e}");
}

#[test]
fn p384_signer_is_refused() {
    let rng = ring::rand::SystemRandom::new();
    let alg = &ring::signature::ECDSA_P384_SHA384_ASN1_SIGNING;
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    let key = ring::signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
    let e = SignedSnapshot::sign(&sample(), &key, vec![])
        .unwrap_err()
        .to_string();
    assert!(e.contains("P-256"), "{e}");
}

#[test]
fn wrong_signer_kind_is_refused() {
    let pki = pki::Pki::new();
    let (chain, key) = pki.device("SN1", &[0x11], 4);
    let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
    let e = signed
        .verify(&pki.root_der, NOW, &pki.oid, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("service certificate"), "{e}");
}

#[test]
fn stale_refused_unless_allowed_and_future_refused() {
    let pki = pki::Pki::new();
    let (chain, key) = pki.service();
    let signed = SignedSnapshot::sign(&sample(), &key, chain).unwrap();
    let late = datetime!(2026-11-25 10:00 UTC);
    let e = signed
        .verify(&pki.root_der, late, &pki.oid, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("stale") && e.contains("2026-11-24T10:00:00Z"),
        "{e}"
    );
    assert_eq!(
        signed.verify(&pki.root_der, late, &pki.oid, true).unwrap(),
        sample()
    );
    let early = datetime!(2026-11-23 09:54 UTC);
    let e = signed
        .verify(&pki.root_der, early, &pki.oid, false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("future"), "{e}");
    assert!(
        signed
            .verify(
                &pki.root_der,
                datetime!(2026-11-23 09:56 UTC),
                &pki.oid,
                false
            )
            .is_ok()
    );
}
