//! `trustca-bench`: how many durable long-term device certificates trustca
//! issues per second over mutual-TLS gRPC, beside the ceilings that bound it
//! and the peer it is compared with, all measured in one run on one machine:
//!
//! * `sign`: raw ring ECDSA P-256 sign+verify pairs per second, on one
//!   thread and on every core (the crypto of one enrollment);
//! * `echo`: the bare-RPC ceiling of the same transport (unary
//!   `GetCaCertificates` on the real server: no signing, no storage);
//! * `batch` / `unary`: enrollment through the real server (`EnrollBatch`
//!   streams, unary `Enroll`), every certificate fsynced before it returns;
//! * `cfssl`: `cfssl serve` signing the same kind of CSR at the same
//!   concurrency (skipped with a note when cfssl is not installed), right
//!   after trustca's own enrollment runs;
//! * `breakdown`: the engine in-process without the transport over the
//!   real store, the CSR check alone and the store alone; the engine's
//!   time per store call (the probe), and the engine without the store
//!   read before signing and over a no-op store;
//! * the all-core sign+verify ceiling once more at the end.
//!
//! `v2x` (on its own) measures SCMS-style authorization tickets through the
//! separated authorities of `trustca-scms`: a vehicle-year end to end,
//! sustained tickets per second at the pseudonym CA beside the raw
//! sign-only ceiling, and one ticket's cost by part ([`v2x`]).
//!
//! The `trust` group measures the trust database and the records behind it:
//!
//! * `decide`: `Decide` over mutual TLS (a HEMS device asking about cars):
//!   unary at a fixed concurrency beside the echo ceiling measured on the
//!   same connection before and after, unary at fixed offered rates (open
//!   loop, p50/p99), `DecideBatch` streams, message sizes, and an in-process
//!   breakdown ([`decide`]);
//! * `store-size`: bytes on disk per device and the memory of a server over
//!   a store filled with a million devices ([`storesize`]);
//! * `crl`: CRL generation time and size with 10k..1M entries ([`crlgen`]);
//! * `audit`: the audit log's share of the per-issuance store cost
//!   ([`auditcost`]).
//!
//! Every CSR (fresh P-256 key per device) is generated before any clock
//! starts. Results print as a table with each rate's ratio to the all-core
//! sign+verify ceiling (the mean of its first and last measurement) and to
//! the echo ceiling of the same run, then the figures that are not rates
//! (with their aims); `--json` writes them as JSON too.
#![forbid(unsafe_code)]

mod attest;
mod auditcost;
mod breakdown;
mod cfssl;
mod cpu;
mod crlgen;
mod decide;
mod enrollment;
mod est;
mod etsi;
mod fixture;
mod fjallsize;
mod grpc;
mod hsm;
mod integrity;
mod load;
mod peer;
mod pgmode;
mod probe;
mod report;
mod seal;
mod sign;
mod snapshot;
mod stepca;
mod stores;
mod storesize;
mod systems;
mod trust_stages;
mod v2x;
mod v2x_dot1;
mod web;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::report::{Figure, Row};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stage {
    /// The enrollment stages: sign, echo, batch, unary, cfssl, stepca,
    /// breakdown.
    All,
    /// Raw ECDSA P-256 sign+verify ceiling.
    Sign,
    /// Bare gRPC echo ceiling (GetCaCertificates).
    Echo,
    /// Bulk enrollment over EnrollBatch streams.
    Batch,
    /// Unary Enroll.
    Unary,
    /// cfssl serve, for comparison.
    Cfssl,
    /// step-ca with a JWK provisioner (durable, badger), for comparison;
    /// built from Debian's source by bench/stepca-setup.sh.
    Stepca,
    /// In-process engine, CSR check and store, without the transport.
    Breakdown,
    /// EnrollBatch with CA keys in SoftHSM2 (PKCS#11) beside file keys.
    Hsm,
    /// The trust database stages: decide, store-size, crl, audit.
    Trust,
    /// Decide / DecideBatch over mTLS beside their echo ceiling.
    Decide,
    /// Store bytes per device and server memory with many devices.
    StoreSize,
    /// CRL generation time and size.
    Crl,
    /// The audit log's share of the per-issuance store cost.
    Audit,
    /// sled beside fjall and PostgreSQL: commit groups and Decide's
    /// reads (PostgreSQL from TRUSTCA_BENCH_POSTGRES).
    Stores,
    /// The integrity checks (`store check`, start-up check) beside a raw
    /// read of the same records.
    Integrity,
    /// EST simpleenroll over --est-connections connections beside unary
    /// gRPC Enroll at as many in flight, on one server.
    Est,
    /// Signed trust snapshots of 10k and 100k models (build, verify, size)
    /// beside a raw read of the model records, and one model withdrawal
    /// moving --fleet-devices devices.
    Snapshot,
    /// V2X authorization tickets (issue 8): a vehicle-year through RA, PCA
    /// and LAs, PCA tickets/s beside ECDSA sign-only, per-part costs.
    V2x,
    /// EnrollBatch and Decide with the record seal check on beside off
    /// (issue 19), in one run.
    Seal,
    /// Systems of linked devices (issue 22): evaluating 1,000 devices and
    /// 5,000 links in-process; Decide on a system member beside plain
    /// Decide through one server.
    Systems,
    /// ETSI TS 102 941 (issue 24): enrolments and authorizations per
    /// second, server time in process and round trips over loopback HTTP,
    /// beside ECDSA sign-only and ECIES in the same run.
    Etsi,
    /// Public device label pages over HTTPS (first render and from the
    /// page cache) beside unary Decide on one server (issue 22 §2).
    Web,
    /// TPM-attested Enroll beside plain Enroll on one server (issue 25;
    /// needs swtpm and tpm2-tools), and GetEnrollmentChallenge alone.
    Attest,
}

impl Stage {
    fn in_trust_group(self) -> bool {
        matches!(
            self,
            Stage::Decide
                | Stage::StoreSize
                | Stage::Crl
                | Stage::Audit
                | Stage::Stores
                | Stage::Integrity
        )
    }

    fn in_all_group(self) -> bool {
        matches!(
            self,
            Stage::Sign
                | Stage::Echo
                | Stage::Batch
                | Stage::Unary
                | Stage::Cfssl
                | Stage::Stepca
                | Stage::Breakdown
        )
    }
}

/// Benchmark harness for trustca enrollment.
#[derive(Debug, Parser)]
#[command(name = "trustca-bench", version, about, long_about = None)]
struct Opts {
    /// Stages to run.
    #[arg(value_enum, default_values_t = [Stage::All])]
    stages: Vec<Stage>,
    /// Devices enrolled through EnrollBatch.
    #[arg(long, default_value_t = 20_000)]
    devices: usize,
    /// Devices committed per backend in the stores stage.
    #[arg(long, default_value_t = 50_000)]
    backend_devices: u64,
    /// Devices in the store the integrity stage checks.
    #[arg(long, default_value_t = 100_000)]
    integrity_devices: u64,
    /// Cars per EnrollBatch stream in the seal stage (each round, each variant).
    #[arg(long, default_value_t = 8_000)]
    seal_cars: usize,
    /// Unary Decide calls in the seal stage (each round, each variant).
    #[arg(long, default_value_t = 30_000)]
    seal_decisions: usize,
    /// Rounds of the seal stage (off, then on, in each).
    #[arg(long, default_value_t = 3)]
    seal_rounds: usize,
    /// Devices of the large system in the systems stage.
    #[arg(long, default_value_t = 1_000)]
    system_devices: usize,
    /// Links of the large system in the systems stage.
    #[arg(long, default_value_t = 5_000)]
    system_links: usize,
    /// Page requests (and Decide calls) per round in the web stage.
    #[arg(long, default_value_t = 20_000)]
    web_requests: usize,
    /// Unary Decide calls per kind and round in the systems stage.
    #[arg(long, default_value_t = 20_000)]
    system_decisions: usize,
    /// Concurrent EnrollBatch streams (one connection each).
    #[arg(long, default_value_t = 4)]
    streams: usize,
    /// Requests in flight for unary Enroll, echo and cfssl.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Connections the unary Enroll and echo calls are spread over.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Devices enrolled through unary Enroll.
    #[arg(long, default_value_t = 5_000)]
    unary_requests: usize,
    /// Calls of the echo ceiling.
    #[arg(long, default_value_t = 40_000)]
    echo_requests: usize,
    /// Devices enrolled by the in-process engine (breakdown).
    #[arg(long, default_value_t = 10_000)]
    breakdown_devices: usize,
    /// CSRs signed by cfssl.
    #[arg(long, default_value_t = 10_000)]
    cfssl_requests: usize,
    /// Seconds per sign+verify ceiling measurement.
    #[arg(long, default_value_t = 3.0)]
    sign_seconds: f64,
    /// The cfssl binary (default: `cfssl` on PATH; skipped when absent).
    #[arg(long)]
    cfssl_bin: Option<PathBuf>,
    /// CSRs signed by step-ca.
    #[arg(long, default_value_t = 5_000)]
    stepca_requests: usize,
    /// The step-ca binary (default: built by bench/stepca-setup.sh from
    /// Debian's golang-github-smallstep-certificates-dev; skipped when that
    /// fails).
    #[arg(long)]
    stepca_bin: Option<PathBuf>,
    /// Cars enrolled for the Decide stage (the peers asked about).
    #[arg(long, default_value_t = 1_000)]
    decide_cars: usize,
    /// Unary Decide calls, and calls of the echo beside them.
    #[arg(long, default_value_t = 40_000)]
    decide_requests: usize,
    /// Slices the unary Decide calls and their echo calls are interleaved in.
    #[arg(long, default_value_t = 8)]
    decide_slices: usize,
    /// Offered rates (per second) of the open-loop Decide measurement, tried
    /// in order until one has p99 within --p99-target-ms.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000.0, 8_000.0, 6_000.0, 5_000.0, 4_000.0, 3_000.0, 2_000.0, 1_500.0, 1_000.0, 500.0])]
    decide_rates: Vec<f64>,
    /// Seconds per offered rate.
    #[arg(long, default_value_t = 3.0)]
    rate_seconds: f64,
    /// The p99 latency target of the open-loop measurement, ms.
    #[arg(long, default_value_t = 2.0)]
    p99_target_ms: f64,
    /// Concurrent DecideBatch streams (one connection each).
    #[arg(long, default_value_t = 4)]
    decide_streams: usize,
    /// Decisions over all DecideBatch streams.
    #[arg(long, default_value_t = 200_000)]
    decide_batch: usize,
    /// Calls of each in-process Decide breakdown measurement.
    #[arg(long, default_value_t = 20_000)]
    decide_breakdown: usize,
    /// Devices the store is filled with (store-size).
    #[arg(long, default_value_t = 1_000_000)]
    store_devices: usize,
    /// Device counts at which the store is also measured while filling.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000, 250_000, 500_000])]
    store_checkpoints: Vec<usize>,
    /// Issuances per commit group when filling the store.
    #[arg(long, default_value_t = 1_000)]
    store_group: usize,
    /// GetTrust reads of random devices before the server's memory is read.
    #[arg(long, default_value_t = 10_000)]
    rss_reads: usize,
    /// Revoked entries of each CRL built.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000, 1_000_000])]
    crl_sizes: Vec<usize>,
    /// Issuances per store in the audit measurement.
    #[arg(long, default_value_t = 51_200)]
    audit_issuances: usize,
    /// Rounds of the audit measurement (each on 4 fresh stores: the real
    /// one and the replica with, without and with grouped audit entries).
    #[arg(long, default_value_t = 1)]
    audit_rounds: usize,
    /// Devices enrolled in the est stage over EST (and as many over gRPC).
    #[arg(long, default_value_t = 4_000)]
    est_requests: usize,
    /// Concurrent EST connections (one request in flight on each); also the
    /// gRPC Enroll calls in flight beside them.
    #[arg(long, default_value_t = 64)]
    est_connections: usize,
    /// Devices of one model the snapshot stage's withdrawal moves.
    #[arg(long, default_value_t = 10_000)]
    fleet_devices: usize,
    /// Timed vehicle-years of the v2x stage (median reported).
    #[arg(long, default_value_t = 5)]
    v2x_repeats: usize,
    /// Rounds of 16 vehicles × 4 periods × 20 requests issued by the v2x
    /// stage's pseudonym CA per thread count.
    #[arg(long, default_value_t = 4)]
    v2x_rounds: usize,
    /// Iterations of each per-operation measurement of the v2x stage.
    #[arg(long, default_value_t = 2_000)]
    v2x_op_iterations: usize,
    /// Enrolments and authorizations of the etsi stage (each, in process
    /// and over loopback).
    #[arg(long, default_value_t = 2_000)]
    etsi_requests: usize,
    /// Alternating gRPC/EST rounds the est stage's devices are split in.
    #[arg(long, default_value_t = 4)]
    est_rounds: usize,
    /// Devices enrolled in the hsm stage (each at both CAs).
    #[arg(long, default_value_t = 4_000)]
    hsm_devices: usize,
    /// Alternating file/SoftHSM2 rounds the hsm stage's devices are split in.
    #[arg(long, default_value_t = 4)]
    hsm_rounds: usize,
    /// Attested enrollments of the attest stage (and as many plain ones);
    /// each answer is made by swtpm before the clock starts.
    #[arg(long, default_value_t = 300)]
    attest_requests: usize,
    /// Alternating plain/attested rounds of the attest stage.
    #[arg(long, default_value_t = 4)]
    attest_rounds: usize,
    /// GetEnrollmentChallenge calls timed by the attest stage.
    #[arg(long, default_value_t = 2_000)]
    attest_challenges: usize,
    /// Also write the results as JSON to this file ("-": standard output).
    #[arg(long)]
    json: Option<PathBuf>,
    /// The store of every server the harness starts: `sled` (the
    /// default, the data directory's `db`), `fjall` (an embedded fjall
    /// store, `DATA/fjall`; the store-size fill writes into it too) or a
    /// PostgreSQL server (`postgres://user@host:port`: a fresh database
    /// there per data directory). Stages that fill or read a sled store
    /// directly (breakdowns, snapshot, integrity) still use sled.
    #[arg(long, value_name = "sled|fjall|URL")]
    store: Option<String>,
    /// Internal (store-size): serve the data directory DIR in this process
    /// until standard input closes.
    #[arg(long, hide = true)]
    serve_data: Option<PathBuf>,
    /// Internal (store-size on PostgreSQL): the database the server of
    /// `--serve-data` uses, the one the parent filled.
    #[arg(long, hide = true)]
    serve_database: Option<String>,
}

impl Opts {
    fn wants(&self, s: Stage) -> bool {
        self.stages.contains(&s)
            || (s.in_all_group() && self.stages.contains(&Stage::All))
            || (s.in_trust_group() && self.stages.contains(&Stage::Trust))
    }
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// What machine this is, from /proc.
fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let field = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    json!({
        "cores": cores(),
        "cpu": field(&cpuinfo, "model name"),
        "memory": field(&meminfo, "MemTotal"),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
    })
}

/// One line of progress on standard error.
pub fn progress(what: &str) {
    eprintln!("trustca-bench: {what}");
}

async fn run(opts: &Opts) -> Result<(Vec<Row>, Vec<Figure>)> {
    let mut rows = Vec::new();
    let mut figures = Vec::new();
    let n = cores();

    if opts.wants(Stage::Sign) {
        let d = Duration::from_secs_f64(opts.sign_seconds.max(0.1));
        progress("sign+verify ceiling, 1 thread");
        rows.push(sign::measure(
            "sign_verify_1_thread",
            "ECDSA P-256 sign+verify, 1 thread",
            1,
            d,
        )?);
        progress("sign+verify ceiling, all cores");
        rows.push(sign::measure(
            report::SIGN_ALL,
            "ECDSA P-256 sign+verify, all cores",
            n,
            d,
        )?);
    }

    enrollment::stages(opts, &mut rows, &mut figures).await?;

    if opts.wants(Stage::Snapshot) {
        figures.extend(snapshot::measure(opts.fleet_devices, n).await?);
    }

    if opts.wants(Stage::V2x) {
        let (r, f) = v2x::measure(&v2x::Plan {
            repeats: opts.v2x_repeats,
            rounds: opts.v2x_rounds,
            op_iterations: opts.v2x_op_iterations,
            sign_seconds: opts.sign_seconds,
            threads: n,
        })?;
        rows.extend(r);
        figures.extend(f);
        progress("v2x: vehicle-year over mTLS through a real server");
        figures.extend(v2x::year_over_mtls(opts.v2x_repeats).await?);
        progress("v2x: vehicle-year through IEEE 1609.2.1 over HTTPS");
        figures.extend(v2x_dot1::year_over_dot1(opts.v2x_repeats).await?);
    }

    if opts.wants(Stage::Etsi) {
        let (r, f) = etsi::measure(&etsi::Plan {
            requests: opts.etsi_requests,
            sign_seconds: opts.sign_seconds,
            threads: n,
        })
        .await?;
        rows.extend(r);
        figures.extend(f);
    }

    if opts.wants(Stage::Attest) {
        let plan = attest::Plan {
            requests: opts.attest_requests,
            concurrency: opts.concurrency,
            rounds: opts.attest_rounds,
            challenges: opts.attest_challenges,
        };
        let (r, f) = attest::measure(plan, n).await?;
        rows.extend(r);
        figures.extend(f);
    }

    if opts.wants(Stage::Est) {
        let (r, f) = est::measure(
            opts.est_requests,
            opts.est_connections,
            opts.connections,
            opts.est_rounds,
            n,
        )
        .await?;
        rows.extend(r);
        figures.extend(f);
    }

    if opts.wants(Stage::Hsm) {
        progress(&format!(
            "hsm: generating {} device keys and CSRs",
            opts.hsm_devices
        ));
        let devices = fixture::devices(0, opts.hsm_devices, n)?;
        let (r, f) = hsm::measure(&devices, opts.streams, opts.hsm_rounds).await?;
        rows.extend(r);
        figures.extend(f);
    }

    trust_stages::stages(opts, &mut rows, &mut figures).await?;

    if opts.wants(Stage::Sign) && rows.len() > 2 {
        // The machine may be shared: measure the ceiling again at the end;
        // ratios use the mean of both all-core measurements.
        progress("sign+verify ceiling, all cores, again");
        let d = Duration::from_secs_f64(opts.sign_seconds.max(0.1));
        let row = sign::measure(
            report::SIGN_ALL_END,
            "ECDSA P-256 sign+verify, all cores (at end)",
            n,
            d,
        )?;
        let at = rows
            .iter()
            .position(|r| r.key == report::SIGN_ALL)
            .map_or(rows.len(), |i| i + 1);
        rows.insert(at, row);
    }
    Ok((rows, figures))
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = Opts::parse();
    if let Some(store) = &opts.store {
        pgmode::use_store(store)?;
    }
    if let Some(dir) = &opts.serve_data {
        if let Some(url) = &opts.serve_database {
            pgmode::adopt_database(dir, url);
        }
        return storesize::serve_child(dir).await;
    }
    if opts.wants(Stage::Hsm)
        && let Some(status) = hsm::reexec_with_token()?
    {
        std::process::exit(status.code().unwrap_or(1));
    }
    let context = json!({
        "machine": machine(),
        "args": std::env::args().skip(1).collect::<Vec<_>>(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    });
    let (rows, figures) = run(&opts).await?;
    println!("machine: {}", context["machine"]);
    print!("{}", report::table(&rows));
    if !figures.is_empty() {
        println!();
        print!("{}", report::figures_table(&figures));
    }
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report::to_json(&rows, &figures, context))?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}
