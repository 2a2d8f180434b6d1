//! The signature ceiling: raw ring ECDSA P-256 sign-then-verify pairs per
//! second, the cryptographic work of one enrollment (verify the CSR's proof
//! of possession, sign the certificate), with nothing else around it; and
//! sign-only (fixed-length `r || s`, as IEEE 1609.2 signs), the ceiling of
//! a V2X pseudonym CA's ticket rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};

use crate::report::{Group, Row};

/// A to-be-signed blob about the size of a device certificate's TBS.
const MESSAGE_BYTES: usize = 480;

/// What IEEE 1609.2 signs: SHA-256(tbs) || SHA-256(signer).
const V2X_MESSAGE_BYTES: usize = 64;

struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    message: Vec<u8>,
}

impl Signer {
    fn new() -> Result<Self> {
        Self::with(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, MESSAGE_BYTES)
    }

    fn with(alg: &'static signature::EcdsaSigningAlgorithm, bytes: usize) -> Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|_| anyhow!("cannot generate a P-256 key"))?;
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow!("cannot load the P-256 key"))?;
        let message = (0..bytes).map(|i| (i % 251) as u8).collect();
        Ok(Self { key, rng, message })
    }

    /// Signs until `deadline`; returns the signatures made.
    fn sign_until(&self, deadline: Instant) -> Result<u64> {
        let mut n = 0u64;
        while Instant::now() < deadline {
            for _ in 0..16 {
                self.key
                    .sign(&self.rng, &self.message)
                    .map_err(|_| anyhow!("signing failed"))?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Signs and verifies until `deadline`; returns the pairs done.
    fn run_until(&self, deadline: Instant) -> Result<u64> {
        let public = UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_ASN1,
            self.key.public_key().as_ref(),
        );
        let mut n = 0u64;
        while Instant::now() < deadline {
            // A small batch between clock reads.
            for _ in 0..16 {
                let sig = self
                    .key
                    .sign(&self.rng, &self.message)
                    .map_err(|_| anyhow!("signing failed"))?;
                public
                    .verify(&self.message, sig.as_ref())
                    .map_err(|_| anyhow!("verification failed"))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Runs `threads` sign+verify loops for `duration`.
pub fn measure(key: &'static str, label: &str, threads: usize, duration: Duration) -> Result<Row> {
    let signer = Arc::new(Signer::new()?);
    run_threads(key, label, threads, duration, "", move |deadline| {
        signer.run_until(deadline)
    })
}

/// Runs `threads` sign-only loops for `duration` (ring ECDSA P-256 with
/// fixed-length signatures over a 64-byte IEEE 1609.2 signing input).
pub fn measure_sign_only(
    key: &'static str,
    label: &str,
    threads: usize,
    duration: Duration,
) -> Result<Row> {
    let signer = Arc::new(Signer::with(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        V2X_MESSAGE_BYTES,
    )?);
    run_threads(
        key,
        label,
        threads,
        duration,
        ", sign only",
        move |deadline| signer.sign_until(deadline),
    )
}

/// A 200 ms warm-up of `work`, then `threads` copies of it until
/// `duration` has passed; the row counts the operations they report.
fn run_threads(
    key: &'static str,
    label: &str,
    threads: usize,
    duration: Duration,
    what: &str,
    work: impl Fn(Instant) -> Result<u64> + Send + Sync + 'static,
) -> Result<Row> {
    let work = Arc::new(work);
    work(Instant::now() + Duration::from_millis(200))?;
    let start = Instant::now();
    let deadline = start + duration;
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let w = Arc::clone(&work);
            std::thread::spawn(move || w(deadline))
        })
        .collect();
    let mut ops = 0;
    for h in handles {
        ops += h
            .join()
            .map_err(|_| anyhow!("signing thread panicked"))?
            .context("signing thread")?;
    }
    Ok(Row {
        key,
        label: label.to_owned(),
        group: Group::Ceiling,
        ops,
        errors: 0,
        elapsed: start.elapsed(),
        latency: None,
        note: format!("{threads} thread(s), ring ECDSA P-256 SHA-256{what}"),
    })
}
