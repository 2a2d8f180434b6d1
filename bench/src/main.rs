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
//!   real store, the CSR check alone and the store alone; with the
//!   `store-probe` feature also the engine's time per store call, and the
//!   engine without the store read before signing and over a no-op store;
//! * the all-core sign+verify ceiling once more at the end.
//!
//! Every CSR (fresh P-256 key per device) is generated before any clock
//! starts. Results print as a table with each rate's ratio to the all-core
//! sign+verify ceiling (the mean of its first and last measurement) and to
//! the echo ceiling of the same run; `--json` writes them as JSON too.
#![forbid(unsafe_code)]

mod breakdown;
mod cfssl;
mod fixture;
mod grpc;
mod load;
#[cfg(feature = "store-probe")]
mod probe;
mod report;
mod sign;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use serde_json::json;

use crate::report::{Group, Row, skipped};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stage {
    /// Everything below, in this order.
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
    /// In-process engine, CSR check and store, without the transport.
    Breakdown,
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
    /// Also write the results as JSON to this file ("-": standard output).
    #[arg(long)]
    json: Option<PathBuf>,
}

impl Opts {
    fn wants(&self, s: Stage) -> bool {
        self.stages.contains(&Stage::All) || self.stages.contains(&s)
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

fn progress(what: &str) {
    eprintln!("trustca-bench: {what}");
}

async fn run(opts: &Opts) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
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

    let grpc_stages = [Stage::Echo, Stage::Batch, Stage::Unary];
    let wants_grpc = grpc_stages.iter().any(|s| opts.wants(*s));
    let wants_cfssl = opts.wants(Stage::Cfssl);
    let wants_breakdown = opts.wants(Stage::Breakdown);
    let sizes = [
        if opts.wants(Stage::Batch) {
            opts.devices
        } else {
            0
        },
        if opts.wants(Stage::Unary) {
            opts.unary_requests
        } else {
            0
        },
    ];
    // The breakdown and cfssl reuse the batch devices (own stores, no clash).
    let extra = [
        if wants_breakdown {
            opts.breakdown_devices
        } else {
            0
        },
        if wants_cfssl { opts.cfssl_requests } else { 0 },
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
    .saturating_sub(sizes[0]);
    let total = sizes.iter().sum::<usize>() + extra;
    progress(&format!("generating {total} device keys and CSRs"));
    let parts = fixture::split(fixture::devices(0, total, n)?, &[sizes[0], sizes[1], extra])?;
    let (batch_devices, unary_devices) = (&parts[0], &parts[1]);
    let reusable: Vec<fixture::Device> = parts[0].iter().chain(parts[2].iter()).cloned().collect();

    if wants_grpc {
        let data = tempfile::tempdir()?;
        let manufacturer = fixture::init_ca(data.path())?;
        let server = grpc::start(data.path()).await.context("start the server")?;
        progress(&format!("server on {}", server.addr));
        let shared = grpc::connect(server.addr, &manufacturer.client, opts.connections).await?;
        if opts.wants(Stage::Echo) {
            progress("echo ceiling");
            rows.push(grpc::echo(&shared, opts.concurrency, opts.echo_requests).await?);
        }
        let mut issued = 0;
        if opts.wants(Stage::Batch) {
            progress(&format!(
                "EnrollBatch: {} devices over {} streams",
                opts.devices, opts.streams
            ));
            let channels = grpc::connect(server.addr, &manufacturer.client, opts.streams).await?;
            let row = grpc::batch(&channels, std::sync::Arc::clone(batch_devices)).await?;
            issued += row.ops;
            rows.push(row);
        }
        if opts.wants(Stage::Unary) {
            progress(&format!(
                "unary Enroll: {} devices, {} in flight",
                opts.unary_requests, opts.concurrency
            ));
            let row = grpc::unary(
                &shared,
                std::sync::Arc::clone(unary_devices),
                opts.concurrency,
            )
            .await?;
            issued += row.ops;
            rows.push(row);
        }
        drop(shared);
        server.shutdown().await?;
        // Every answered certificate must be in the store (plus the credential).
        if issued > 0 {
            match grpc::stored_certificates(data.path()) {
                Ok(stored) => {
                    let note = format!(
                        "store holds {stored} certificates after shutdown ({issued} enrolled + 1 credential)"
                    );
                    progress(&note);
                    if stored < issued + 1 {
                        anyhow::bail!("durability check failed: {note}");
                    }
                    if let Some(r) = rows.iter_mut().find(|r| r.key == "enroll_batch") {
                        r.note = grpc::join_notes(&[
                            r.note.clone(),
                            "all found in store after shutdown".into(),
                        ]);
                    }
                }
                Err(e) => progress(&format!("store not checked after shutdown: {e:#}")),
            }
        }
    }

    if wants_cfssl {
        const LABEL: &str = "cfssl serve /api/v1/cfssl/sign";
        match cfssl::find(opts.cfssl_bin.as_deref()) {
            None => {
                let why = match &opts.cfssl_bin {
                    Some(p) => format!("skipped: {} not found", p.display()),
                    None => {
                        "skipped: cfssl not on PATH (apt-get install golang-cfssl, or --cfssl-bin)"
                            .into()
                    }
                };
                progress(&why);
                rows.push(skipped("cfssl_sign", LABEL, Group::Peer, why));
            }
            Some(bin) => {
                let m = opts.cfssl_requests.min(reusable.len());
                progress(&format!(
                    "cfssl ({}): {m} CSRs, {} in flight",
                    bin.display(),
                    opts.concurrency
                ));
                let devices = std::sync::Arc::new(reusable[..m].to_vec());
                match cfssl::measure(&bin, devices, opts.concurrency).await {
                    Ok(row) => rows.push(row),
                    Err(e) => {
                        let why = format!("failed: {e:#}");
                        progress(&why);
                        rows.push(skipped("cfssl_sign", LABEL, Group::Peer, why));
                    }
                }
            }
        }
    }
    if wants_breakdown {
        let m = opts.breakdown_devices.min(reusable.len());
        progress(&format!("breakdown: engine in-process, {m} devices"));
        let data = tempfile::tempdir()?;
        let run =
            breakdown::engine(data.path(), &reusable[..m], breakdown::StoreKind::Sled).await?;
        rows.push(run.row);
        for (kind, what) in [
            (
                breakdown::StoreKind::SledNoPrecheck,
                "no sled read before signing",
            ),
            (breakdown::StoreKind::Null, "over a no-op store"),
        ] {
            if !cfg!(feature = "store-probe") {
                progress(&format!(
                    "breakdown: engine {what}: skipped (needs --features store-probe)"
                ));
                continue;
            }
            progress(&format!(
                "breakdown: engine in-process, {what}, {m} devices"
            ));
            let dir = tempfile::tempdir()?;
            rows.push(
                breakdown::engine(dir.path(), &reusable[..m], kind)
                    .await?
                    .row,
            );
        }
        progress("breakdown: CSR check alone");
        rows.push(breakdown::csr_check(&reusable[..m])?);
        progress("breakdown: store alone");
        let scratch = tempfile::tempdir()?;
        rows.push(breakdown::store(&scratch.path().join("db"), run.issued)?);
    }

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
    Ok(rows)
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = Opts::parse();
    let context = json!({
        "machine": machine(),
        "args": std::env::args().skip(1).collect::<Vec<_>>(),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    });
    let rows = run(&opts).await?;
    println!("machine: {}", context["machine"]);
    print!("{}", report::table(&rows));
    if let Some(path) = &opts.json {
        let text = serde_json::to_string_pretty(&report::to_json(&rows, context))?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}
