//! Where the authorities' time goes: one enrolment (EA) and one
//! authorization (AA with its EA in process), and beside them each part
//! on its own (ECDH on either side, the ECIES KDF and MAC, AES-CCM, ECDSA
//! signing and verification, point decompression, COER decoding), in
//! microseconds per operation on one thread. Ignored: it measures, it does
//! not check. Run it alone in a release build, where the figures mean
//! something:
//!
//! ```sh
//! nice -n 19 cargo test --release -p trustca-etsi --test etsi -- timing:: --ignored --nocapture
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use crate::common;

use std::hint::black_box;
use std::time::Instant;

use common::*;
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use ring::agreement;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use trustca_etsi::station::{authorization_request, enrolment_request};
use trustca_v2x::ts102941::EtsiTs102941Data;
use trustca_v2x::{
    Certificate, EncryptedData, EtsiSignedData, Ieee1609Dot2Content, V2xSigner, decode_data,
};

/// Operations per measured part.
const N: usize = 400;

/// The median microseconds of one run of `f` over `n` runs (after one
/// warm-up run), each timed alone: on a shared machine a run preempted
/// by another process is an outlier the median ignores, where a mean
/// would take it in.
fn micros(n: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut runs: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[n / 2]
}

fn row(what: &str, us: f64) {
    println!("| {what} | {us:.1} |");
}

#[test]
#[ignore = "timing, not a check: run in a release build with --ignored --nocapture"]
fn where_the_authorities_time_goes() {
    let d = Deployment::new();
    let (ec, ec_key) = enrol(&d);
    println!("| part (µs per operation, one thread) | µs |");
    println!("|---|---:|");

    // Whole requests, built beforehand (the station's work is not timed).
    let enrolments: Vec<Vec<u8>> = (0..=N)
        .map(|_| {
            let who = trustca_etsi::station::EnrolAs::Credential {
                ec: &ec,
                key: &ec_key,
            };
            enrolment_request(who, &signing_key(), cam(), &d.h.ea, d.now)
                .unwrap()
                .message
        })
        .collect();
    let mut next = enrolments.iter();
    row(
        "enrolment, EA server time",
        micros(N, || {
            black_box(d.ea.answer_enrolment(next.next().unwrap(), d.now).unwrap());
        }),
    );
    let authorizations: Vec<Vec<u8>> = (0..=N)
        .map(|_| {
            authorization_request(
                public(&signing_key()),
                cam(),
                &ec,
                &ec_key,
                &d.h.ea,
                &d.h.aa,
                d.now,
            )
            .unwrap()
            .message
        })
        .collect();
    let mut next = authorizations.iter();
    row(
        "authorization, AA + EA server time",
        micros(N, || {
            black_box(d.aa.answer(next.next().unwrap(), d.now).unwrap());
        }),
    );

    crypto_parts(&d);
    codec_parts(&d, &authorizations[0]);
}

/// The primitives on their own.
fn crypto_parts(d: &Deployment) {
    let rng = SystemRandom::new();
    let ea_key = d.h.ea.tbs().encryption_key.unwrap();
    let ea_point = ea_key.uncompressed().unwrap();
    row(
        "ECDH, sender (ring: ephemeral key, V, Z)",
        micros(N, || {
            let eph =
                agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
            black_box(eph.compute_public_key().unwrap());
            let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &ea_point);
            agreement::agree_ephemeral(eph, &peer, |z| black_box(z[0])).unwrap();
        }),
    );
    // The recipient's half: its static secret times the sender's V.
    let secret = p256::SecretKey::from_slice(&d.h.ea_enc).unwrap();
    let v = encryption_key().1;
    row(
        "ECDH, recipient (p256: decompress V, static secret × V, Z)",
        micros(N, || {
            let ep = p256::EncodedPoint::from_bytes(v.compressed()).unwrap();
            let point = p256::AffinePoint::from_encoded_point(&ep).unwrap();
            let z = (p256::ProjectivePoint::from(point) * *secret.to_nonzero_scalar()).to_affine();
            black_box(z.to_encoded_point(false));
        }),
    );
    row(
        "point decompression (PublicKeyP256::uncompressed)",
        micros(N, || {
            black_box(v.uncompressed().unwrap());
        }),
    );
    row(
        "ECIES KDF2 + MAC1 (ring SHA-256, HMAC)",
        micros(N, || {
            for counter in [1u32, 2] {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
                ctx.update(&[7; 32]);
                ctx.update(&counter.to_be_bytes());
                ctx.update(&[9; 32]);
                black_box(ctx.finish());
            }
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[3; 32]);
            black_box(ring::hmac::sign(&key, &[5; 16]));
        }),
    );
    let plain = vec![0x5a; 400];
    let aes = [7u8; 16];
    let sealed = EncryptedData::seal_with_psk(&aes, &plain).unwrap();
    row(
        "AES-128-CCM seal + open, 400 octets",
        micros(N, || {
            black_box(EncryptedData::seal_with_psk(&aes, &plain).unwrap());
            black_box(sealed.open_with_psk(&aes).unwrap());
        }),
    );
    let key = clone_key(&d.h.aa_key);
    row(
        "ECDSA P-256 sign (ring)",
        micros(N, || {
            black_box(key.sign_digest_input(&[1; 64]).unwrap());
        }),
    );
    let signature = key.sign_digest_input(&[1; 64]).unwrap();
    let public = public(&key).uncompressed().unwrap();
    row(
        "ECDSA P-256 verify (ring, uncompressed key)",
        micros(N, || {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
                .verify(&[1; 64], &signature)
                .unwrap();
        }),
    );
}

/// Decoding what an authorization carries.
fn codec_parts(d: &Deployment, authorization: &[u8]) {
    let cert = d.h.aa.as_coer().to_vec();
    row(
        "decode a CA certificate (two keys)",
        micros(N, || {
            black_box(Certificate::from_coer(&cert).unwrap());
        }),
    );
    row(
        "decode the request's EncryptedData",
        micros(N, || {
            black_box(trustca_etsi::envelope::encrypted(authorization).unwrap());
        }),
    );
    let plain = trustca_etsi::envelope::encrypted(authorization)
        .unwrap()
        .open_as_certificate(&d.h.aa_enc, &d.h.aa)
        .unwrap();
    row(
        "decode the InnerAtRequest (with the encrypted ecSignature)",
        micros(N, || {
            let Ok(Ieee1609Dot2Content::Unsecured(data)) = decode_data(&plain) else {
                panic!("not unsecured")
            };
            black_box(EtsiTs102941Data::from_coer(data).unwrap());
        }),
    );
    let signed = EtsiSignedData::sign(
        trustca_v2x::SignedPayload::Data(&[0; 200]),
        623,
        0,
        trustca_v2x::SignAs::Certificate(&d.h.aa),
        &clone_key(&d.h.aa_key),
    )
    .unwrap();
    let bytes = signed.as_coer().to_vec();
    row(
        "decode signed data carrying the AA certificate",
        micros(N, || {
            black_box(EtsiSignedData::from_coer(&bytes).unwrap());
        }),
    );
}
