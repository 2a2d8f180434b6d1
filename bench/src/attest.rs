//! `attest` (issue 25): TPM-attested enrollments per second beside plain
//! ones, through one real server in one run.
//!
//! A real software TPM (swtpm with an EK certificate from its own
//! swtpm-localca, driven by tpm2-tools — the end-to-end tests' kit) makes
//! one device key and its CSR. Before the clock starts, the bench asks the
//! server for `--attest-requests` fresh challenges over gRPC
//! (`GetEnrollmentChallenge`: the EK chain checked against the registered
//! root, `TPM2_MakeCredential` to the EK), has the TPM activate each one
//! and certify the key with its secret (`tpm2_activatecredential`,
//! `tpm2_certifycreation`). A TPM needs tens of milliseconds per command,
//! so the answers are made ahead; each is answered once, within the
//! challenge's 5 minutes, so the server's side is the real one: the
//! challenge consumed, the AK's signature verified, the certified name,
//! key and attributes checked, then the usual enrollment.
//!
//! Timed, alternating in rounds so that drift hits both alike: unary
//! `Enroll` of plain devices (fresh P-256 keys, no evidence) and of the
//! attested ones (the same key with a new serial each; the attestation
//! makes the difference), `--concurrency` in flight. Also timed: the
//! challenge step alone (`GetEnrollmentChallenge` calls per second).

use trustca_testkit::swtpm as kit;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_proto::v1::attestation_client::AttestationClient;

use crate::fixture::{self, Device};
use crate::grpc::{self, join_notes};
use crate::load::closed_loop;
use crate::report::{Figure, Group, Latency, Row, skipped};

const KEY_ATTRS: &str = "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign";

/// What the stage measures.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Attested enrollments (and as many plain ones).
    pub requests: usize,
    /// Unary calls in flight.
    pub concurrency: usize,
    /// Alternating plain/attested rounds.
    pub rounds: usize,
    /// Unanswered challenges asked for in the challenge measurement.
    pub challenges: usize,
}

fn row(key: &'static str, label: &str, rows: &[Row]) -> Row {
    let mut all = Vec::new();
    let (mut ops, mut errors, mut elapsed) = (0, 0, std::time::Duration::ZERO);
    for r in rows {
        ops += r.ops;
        errors += r.errors;
        elapsed += r.elapsed;
        all.push(r.note.clone());
    }
    all.dedup();
    Row {
        key,
        label: label.into(),
        group: Group::Enrollment,
        ops,
        errors,
        elapsed,
        latency: None,
        note: join_notes(&all),
    }
}

/// Runs the stage; skipped with a note when swtpm or tpm2-tools are absent.
pub async fn measure(plan: Plan, threads: usize) -> Result<(Vec<Row>, Vec<Figure>)> {
    if !kit::available() {
        return Ok((
            vec![skipped(
                "enroll_attested",
                "trustca unary Enroll, TPM-attested",
                Group::Enrollment,
                "swtpm and tpm2-tools are not installed".into(),
            )],
            Vec::new(),
        ));
    }
    let work = tempfile::tempdir()?;
    let vendor = kit::LocalCa::new(&work.path().join("vendor-ca"));
    let tpm = kit::SwTpm::new(&work.path().join("tpm"), &vendor);
    tpm.create_key("dev", KEY_ATTRS);
    let csr = tpm.csr("dev");

    let data = tempfile::tempdir()?;
    let manufacturer = fixture::init_ca(data.path())?;
    let ops = fixture::credential(
        data.path(),
        CertificateKind::Operator,
        "ops",
        &[fixture::SECTOR],
    )?;
    let server = grpc::start(data.path()).await.context("start the server")?;
    let url = format!("https://{}", server.addr);
    let root_pem = std::fs::read(vendor.root_pem_path())?;
    AttestationClient::new(trustca_api::client::connect(&url, &ops).await?)
        .add_attestation_root(pb::AttestationRootRequest {
            sector: fixture::SECTOR.into(),
            certificate_der: pem::parse(root_pem)?.into_contents(),
            sha256: String::new(),
        })
        .await?;
    let channels = grpc::connect(server.addr, &manufacturer.client, 1).await?;
    let mut att = AttestationClient::new(channels[0].clone());
    let ask = pb::EnrollmentChallengeRequest {
        sector: fixture::SECTOR.into(),
        ek_certificate_chain: tpm.ek_chain(&vendor),
        ak_public: tpm.read("ak.pub"),
    };

    crate::progress(&format!(
        "attest: {} challenges answered by swtpm (untimed)",
        plan.requests
    ));
    let started = Instant::now();
    let mut attested = Vec::with_capacity(plan.requests);
    for i in 0..plan.requests {
        let c = att
            .get_enrollment_challenge(ask.clone())
            .await?
            .into_inner();
        let secret = tpm
            .activate(&c.credential_blob, &c.encrypted_secret)
            .map_err(anyhow::Error::msg)?;
        let (attest, signature) = tpm.certify_creation("dev", &secret);
        let mut r = Device {
            csr_der: csr.clone(),
            csr_pem: String::new(),
            serial: format!("TPM{i:08}"),
        }
        .request();
        r.tpm_attestation = Some(pb::TpmKeyAttestation {
            challenge_id: c.challenge_id,
            key_public: tpm.read("dev.pub"),
            attest,
            signature,
        });
        attested.push(r);
    }
    let answering = started.elapsed();
    if answering.as_secs() > 200 {
        bail!(
            "answering took {} s: challenges would expire; use fewer --attest-requests",
            answering.as_secs()
        );
    }
    let plain = fixture::devices(1_000_000, plan.requests, threads)?;

    let rounds = plan.rounds.clamp(1, plan.requests.max(1));
    let per = plan.requests.div_ceil(rounds);
    let (mut plain_rows, mut attested_rows) = (Vec::new(), Vec::new());
    for (p, a) in plain.chunks(per).zip(attested.chunks(per)) {
        crate::progress(&format!(
            "attest: {} plain, then {} attested",
            p.len(),
            a.len()
        ));
        plain_rows.push(grpc::unary(&channels, Arc::new(p.to_vec()), plan.concurrency).await?);
        attested_rows.push(
            grpc::unary_requests(
                &channels,
                Arc::new(a.to_vec()),
                plan.concurrency,
                ("enroll_attested", "attested"),
            )
            .await?,
        );
    }
    let plain_row = row(
        "enroll_plain_beside_attested",
        "trustca unary Enroll, plain (beside attested)",
        &plain_rows,
    );
    let attested_row = row(
        "enroll_attested",
        "trustca unary Enroll, TPM-attested",
        &attested_rows,
    );

    crate::progress(&format!("attest: {} challenges (timed)", plan.challenges));
    let client = Arc::new(att);
    let ask = Arc::new(ask);
    let out = closed_loop(plan.concurrency, plan.challenges, move |_| {
        let mut c = (*client).clone();
        let ask = (*ask).clone();
        async move {
            c.get_enrollment_challenge(ask).await?;
            Ok(())
        }
    })
    .await?;
    let mut lat = out.latencies.clone();
    let challenge_row = Row {
        key: "attestation_challenge",
        label: "GetEnrollmentChallenge (EK chain + MakeCredential)".into(),
        group: Group::Enrollment,
        ops: out.ok,
        errors: out.errors,
        elapsed: out.elapsed,
        latency: Latency::of(&mut lat),
        note: join_notes(&[format!("{} in flight", plan.concurrency), out.error_note()]),
    };
    server.shutdown().await?;

    let ratio = if plain_row.rate() > 0.0 {
        100.0 * attested_row.rate() / plain_row.rate()
    } else {
        0.0
    };
    let figure = Figure::new(
        "attested_vs_plain_enroll",
        "TPM-attested Enroll throughput / plain Enroll throughput",
        ratio,
        "%",
    )
    .aim(false, 50.0)
    .note(format!(
        "{:.0}/s vs {:.0}/s, same server and run, {rounds} alternating rounds; answers made by swtpm in {:.0} s before the clock",
        attested_row.rate(),
        plain_row.rate(),
        answering.as_secs_f64()
    ));
    Ok((vec![plain_row, attested_row, challenge_row], vec![figure]))
}
