//! CRL generation time and size for a sector CA with many revoked
//! certificates: `trustca_ca::build_crl` called directly with the real
//! automotive sector CA of a fresh CA, on entries made before the clock
//! starts (16-byte random serials, revocation times within the last year,
//! reason codes mixed: unspecified, key compromise, superseded, cessation).
//!
//! Beside each time stands its floor: SHA-256 over as many bytes as the CRL
//! has (signing hashes the whole to-be-signed list), on the same thread. The
//! smallest CRL is checked once with `openssl crl -verify` against the
//! sector CA's certificate.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ring::rand::SecureRandom;
use time::OffsetDateTime;
use trustca_ca::{CaHierarchy, RevokedEntry, build_crl};
use trustca_model::SectorName;

use crate::fixture;
use crate::report::{Figure, Group, Row};

/// Times each size is built (the median is reported).
const REPEATS: usize = 3;

fn entries(n: usize, now: OffsetDateTime) -> Result<Vec<RevokedEntry>> {
    let rng = ring::rand::SystemRandom::new();
    let mut bytes = vec![0u8; 20 * n];
    rng.fill(&mut bytes)
        .map_err(|_| anyhow!("no random bytes"))?;
    const REASONS: [u8; 4] = [0, 1, 4, 5];
    Ok(bytes
        .chunks_exact(20)
        .map(|c| {
            let mut serial = c[..16].to_vec();
            serial[0] = (serial[0] & 0x7f).max(1);
            let age = u32::from_be_bytes([c[16], c[17], c[18], c[19]]) % (365 * 86_400);
            RevokedEntry {
                serial,
                at: now - time::Duration::seconds(i64::from(age)),
                reason: REASONS[usize::from(c[16]) % REASONS.len()],
            }
        })
        .collect())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// `openssl crl -verify` of `der` against the sector CA's PEM; the
/// output, or why it could not run.
fn openssl_verify(dir: &Path, der: &[u8], ca_pem: &Path) -> Result<(bool, String)> {
    let crl = dir.join("bench.crl");
    std::fs::write(&crl, der)?;
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-in"])
        .arg(&crl)
        .arg("-CAfile")
        .arg(ca_pem)
        .args(["-noout", "-verify"])
        .output()
        .context("cannot run openssl (apt-get install openssl)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        out.status.success() && text.contains("verify OK"),
        text.trim().to_owned(),
    ))
}

/// Builds a CRL of each size; rows (CRLs per second, with the time and
/// size) and figures (time against the aim at the largest size).
pub fn measure(sizes: &[usize], aim_seconds: f64) -> Result<(Vec<Row>, Vec<Figure>)> {
    let data = tempfile::tempdir()?;
    fixture::init_ca(data.path())?;
    let pass = fixture::passphrase()?;
    let (_, set) = trustca_server::policies::resolve(None, Some(data.path()))?;
    let hierarchy = CaHierarchy::open(data.path(), &set, &pass)?;
    let sector = SectorName::new(fixture::SECTOR)?;
    let ca = hierarchy.sector(&sector)?;
    let ca_pem = data
        .path()
        .join("ca")
        .join(format!("{}.pem", fixture::SECTOR));
    let now = OffsetDateTime::now_utc();
    let next = now + time::Duration::days(7);
    let (mut rows, mut figures) = (Vec::new(), Vec::new());
    let mut verified = false;
    for (i, &n) in sizes.iter().enumerate() {
        crate::progress(&format!("crl: {n} revoked entries"));
        let list = entries(n, now)?;
        let mut times = Vec::with_capacity(REPEATS);
        let mut der = Vec::new();
        for _ in 0..REPEATS {
            let t = Instant::now();
            der = build_crl(ca, 1 + i as u64, now, next, &list)?;
            times.push(t.elapsed());
        }
        let build = median(times);
        drop(list);
        let t = Instant::now();
        std::hint::black_box(ring::digest::digest(&ring::digest::SHA256, &der));
        let hash = t.elapsed();
        let mut note = format!(
            "median of {REPEATS}; {:.1} MB, {:.1} bytes/entry; SHA-256 of as many bytes {:.1} ms ({:.0}x less)",
            der.len() as f64 / 1e6,
            der.len() as f64 / n.max(1) as f64,
            hash.as_secs_f64() * 1e3,
            build.as_secs_f64() / hash.as_secs_f64().max(1e-9)
        );
        if !verified {
            verified = true;
            match openssl_verify(data.path(), &der, &ca_pem) {
                Ok((ok, text)) => {
                    note.push_str(&format!("; openssl crl -verify: {text}"));
                    figures.push(
                        Figure::new(
                            "crl_openssl_verify",
                            format!("openssl crl -verify of the {n}-entry CRL"),
                            if ok { 1.0 } else { 0.0 },
                            "ok",
                        )
                        .aim(false, 1.0)
                        .note(text),
                    );
                }
                Err(e) => note.push_str(&format!("; openssl not run: {e:#}")),
            }
        }
        rows.push(Row {
            key: "crl_build",
            label: format!("build_crl, {n} revoked entries"),
            group: Group::Breakdown,
            ops: 1,
            errors: 0,
            elapsed: build,
            latency: None,
            note,
        });
        let mut f = Figure::new(
            "crl_seconds",
            format!("CRL generation, {n} entries"),
            build.as_secs_f64(),
            "s",
        )
        .note(format!("{} bytes", der.len()));
        if i + 1 == sizes.len() {
            f = f.aim(true, aim_seconds);
        }
        figures.push(f);
        figures.push(Figure::new(
            "crl_bytes",
            format!("CRL size, {n} entries"),
            der.len() as f64,
            "bytes",
        ));
    }
    Ok((rows, figures))
}
