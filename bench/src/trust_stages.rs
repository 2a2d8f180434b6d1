//! The trust database stages (group `trust`): Decide, store size and
//! memory, audit cost, CRLs, backends, integrity, seal, systems, web.

use std::time::Duration;

use anyhow::Result;

use crate::report::{Figure, Row};
use crate::{
    Opts, Stage, auditcost, cores, crlgen, decide, fjallsize, integrity, pgmode, progress, seal,
    stores, storesize, systems, web,
};

/// The trust database stages (group `trust`).
pub(crate) async fn stages(
    opts: &Opts,
    rows: &mut Vec<Row>,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let n = cores();
    if opts.wants(Stage::Decide) {
        progress(&format!(
            "decide: enrolling a HEMS device and {} cars",
            opts.decide_cars
        ));
        let mut world = decide::World::start(opts.decide_cars.max(1), n).await?;
        let plan = decide::Plan {
            concurrency: opts.concurrency,
            requests: opts.decide_requests,
            slices: opts.decide_slices,
            rates: opts.decide_rates.clone(),
            rate_seconds: opts.rate_seconds,
            p99_target: Duration::from_secs_f64(opts.p99_target_ms / 1e3),
            streams: opts.decide_streams,
            batch_total: opts.decide_batch,
        };
        let out = decide::measure(&world, &plan).await?;
        rows.extend(out.rows);
        figures.extend(out.figures);
        world.stop().await?;
        // The breakdown reads the stopped server's sled store in-process.
        if !pgmode::on_postgres() && !pgmode::on_fjall() {
            progress("decide: in-process breakdown");
            rows.extend(decide::breakdown(&world, opts.decide_breakdown).await?);
        }
    }
    let wants_store = opts.wants(Stage::StoreSize);
    let wants_audit = opts.wants(Stage::Audit);
    if wants_store || wants_audit {
        progress("records: enrolling one car as the template of synthetic devices");
        let mut world = decide::World::start(1, n).await?;
        world.stop().await?;
        let template = storesize::Template::from_world(&world)?;
        if wants_audit {
            let (r, f) =
                auditcost::measure(&template, opts.audit_issuances, opts.audit_rounds, 10.0)?;
            rows.extend(r);
            figures.extend(f);
        }
        if wants_store {
            progress(&format!(
                "store: filling with {} devices in groups of {}",
                opts.store_devices, opts.store_group
            ));
            let (row, points, payload) = storesize::fill(
                world.data.path(),
                &template,
                opts.store_devices,
                opts.store_group,
                &opts.store_checkpoints,
            )?;
            rows.push(row);
            progress(&format!(
                "store: server over the store, {} GetTrust reads",
                opts.rss_reads
            ));
            let probe = match storesize::server_rss(
                world.data.path(),
                &world.manufacturer.client,
                opts.store_devices,
                opts.rss_reads,
                opts.concurrency,
            )
            .await
            {
                Ok((probe, row)) => {
                    rows.push(row);
                    Some(probe)
                }
                Err(e) => {
                    progress(&format!("store: server memory not measured: {e:#}"));
                    None
                }
            };
            figures.extend(storesize::figures(
                &template,
                &payload,
                &points,
                probe.as_ref(),
                1536.0,
            )?);
            if probe.is_some() {
                let store = pgmode::reopen(world.data.path())?;
                let (blocks, _) = pgmode::store_bytes(world.data.path(), store.as_ref())?;
                drop(store);
                figures.push(
                    Figure::new(
                        "store_bytes_per_device_reopened",
                        "store bytes/device after the server opened and closed it (du)",
                        blocks as f64 / opts.store_devices.max(1) as f64,
                        "bytes",
                    )
                    .note("sled may clean segments on open and on close; fjall compacts in the background"),
                );
            }
            // The same records in an LSM store, beside sled (fjallsize.rs):
            // a copy of the filled sled store, so only when it is sled's.
            if !pgmode::on_fjall() && !pgmode::on_postgres() {
                let fjall = fjallsize::compare(
                    &world.data.path().join("db"),
                    opts.store_devices,
                    opts.store_group,
                )?;
                rows.extend(fjall.rows);
                figures.extend(fjall.figures);
            }
        }
    }
    if opts.wants(Stage::Crl) {
        let (r, f) = crlgen::measure(&opts.crl_sizes, 2.0)?;
        rows.extend(r);
        figures.extend(f);
    }
    if opts.wants(Stage::Stores) {
        let (r, f) = stores::measure(opts.backend_devices, 5.0)?;
        rows.extend(r);
        figures.extend(f);
    }
    if opts.wants(Stage::Integrity) {
        figures.extend(integrity::measure(opts.integrity_devices)?);
    }
    if opts.wants(Stage::Seal) {
        let plan = seal::Plan {
            cars: opts.seal_cars,
            decisions: opts.seal_decisions,
            concurrency: opts.concurrency,
            rounds: opts.seal_rounds,
            threads: cores(),
        };
        figures.extend(seal::measure(&plan).await?);
    }
    if opts.wants(Stage::Systems) {
        let plan = systems::Plan {
            devices: opts.system_devices,
            links: opts.system_links,
            evaluations: 20,
            decisions: opts.system_decisions,
            concurrency: opts.concurrency,
            rounds: 3,
            threads: cores(),
        };
        figures.extend(systems::measure(&plan).await?);
    }
    if opts.wants(Stage::Web) {
        let plan = web::Plan {
            cars: 1000,
            requests: opts.web_requests,
            concurrency: opts.concurrency,
            rounds: 3,
            threads: cores(),
        };
        figures.extend(web::measure(&plan).await?);
    }
    Ok(())
}
