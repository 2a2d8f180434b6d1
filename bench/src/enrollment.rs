//! The enrollment group's stages after the sign ceiling: trustca's own
//! enrollment over gRPC (echo, `EnrollBatch`, unary `Enroll`) with the
//! durability check after shutdown, the peers beside it (cfssl, not
//! durable; step-ca, durable) and the in-process breakdown.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::report::{Figure, Group, Row, skipped};
use crate::{Opts, Stage, breakdown, cfssl, cores, fixture, grpc, pgmode, progress, stepca};

/// trustca's enrollment rates over step-ca's, all from this run.
fn stepca_ratios(rows: &[Row]) -> Vec<Figure> {
    let rate = |key: &str| {
        rows.iter()
            .find(|r| r.key == key && r.ops > 0)
            .map(Row::rate)
    };
    let Some(peer) = rate("stepca_sign") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(unary) = rate("enroll_unary") {
        out.push(
            Figure::new(
                "enroll_unary_vs_stepca",
                "unary Enroll / step-ca (both durable, same in flight)",
                unary / peer,
                "x",
            )
            .aim(false, 3.0)
            .note(format!("{unary:.0}/s against {peer:.0}/s")),
        );
    }
    if let Some(batch) = rate("enroll_batch") {
        out.push(
            Figure::new(
                "enroll_batch_vs_stepca",
                "EnrollBatch / step-ca (both durable)",
                batch / peer,
                "x",
            )
            .note(format!("{batch:.0}/s against {peer:.0}/s")),
        );
    }
    out
}

/// Starts the server again over the store the stages filled and stops it
/// while its start-up work (snapshot builds over every device) still runs:
/// background work must stop at once instead of holding the store.
async fn restart_then_stop(data: &std::path::Path, devices: u64) -> Result<Figure> {
    let server = grpc::start(data).await.context("restart the server")?;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stopping = Instant::now();
    server.shutdown().await?;
    let secs = stopping.elapsed().as_secs_f64();
    let store = pgmode::backend_name();
    progress(&format!(
        "restarted over {devices} devices, shut down 0.2 s after start in {secs:.2} s ({store} store)"
    ));
    Ok(Figure::new(
        "shutdown_after_restart",
        format!("shutdown 0.2 s after a restart over {devices} devices ({store})"),
        secs,
        "s",
    )
    .aim(true, 1.0)
    .note("start-up snapshot builds still running when asked to stop"))
}

/// Runs the enrollment stages `opts` asks for, adding their rows and the
/// peer ratios.
pub(crate) async fn stages(
    opts: &Opts,
    rows: &mut Vec<Row>,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let n = cores();
    let grpc_stages = [Stage::Echo, Stage::Batch, Stage::Unary];
    let wants_grpc = grpc_stages.iter().any(|s| opts.wants(*s));
    let wants_cfssl = opts.wants(Stage::Cfssl);
    let wants_stepca = opts.wants(Stage::Stepca);
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
    // The breakdown, cfssl and step-ca reuse the batch devices (own stores, no clash).
    let extra = [
        if wants_breakdown {
            opts.breakdown_devices
        } else {
            0
        },
        if wants_cfssl { opts.cfssl_requests } else { 0 },
        if wants_stepca {
            opts.stepca_requests
        } else {
            0
        },
    ]
    .into_iter()
    .max()
    .unwrap_or(0)
    .saturating_sub(sizes[0]);
    let total = sizes.iter().sum::<usize>() + extra;
    if total > 0 {
        progress(&format!("generating {total} device keys and CSRs"));
    }
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
            let row = grpc::batch(&channels, Arc::clone(batch_devices)).await?;
            issued += row.ops;
            rows.push(row);
        }
        if opts.wants(Stage::Unary) {
            progress(&format!(
                "unary Enroll: {} devices, {} in flight",
                opts.unary_requests, opts.concurrency
            ));
            let row = grpc::unary(&shared, Arc::clone(unary_devices), opts.concurrency).await?;
            issued += row.ops;
            rows.push(row);
        }
        drop(shared);
        let stopping = Instant::now();
        server.shutdown().await?;
        let stopped_in = stopping.elapsed();
        progress(&format!(
            "server shut down in {:.2} s ({} store)",
            stopped_in.as_secs_f64(),
            pgmode::backend_name()
        ));
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
                            format!(
                                "all found in store after shutdown ({:.2} s)",
                                stopped_in.as_secs_f64()
                            ),
                        ]);
                    }
                }
                Err(e) => progress(&format!("store not checked after shutdown: {e:#}")),
            }
            figures.push(restart_then_stop(data.path(), issued).await?);
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
                let devices = Arc::new(reusable[..m].to_vec());
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
    if wants_stepca {
        const LABEL: &str = "step-ca /1.0/sign, JWK one-time tokens (durable)";
        let m = opts.stepca_requests.min(reusable.len());
        let outcome = match stepca::find_or_build(opts.stepca_bin.as_deref()) {
            Ok(bin) => {
                progress(&format!(
                    "step-ca ({}): {m} CSRs, {} in flight",
                    bin.display(),
                    opts.concurrency
                ));
                let devices = Arc::new(reusable[..m].to_vec());
                stepca::measure(&bin, devices, opts.concurrency).await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(row) => rows.push(row),
            Err(e) => {
                let why = format!("skipped: {e:#}");
                progress(&why);
                rows.push(skipped("stepca_sign", LABEL, Group::Peer, why));
            }
        }
        figures.extend(stepca_ratios(rows));
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
    Ok(())
}
