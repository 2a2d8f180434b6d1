//! What binding records to the audit log costs (issue 19 §1): `EnrollBatch`
//! and unary `Decide` through a real server with the record seal check on,
//! beside the same server with it off, in one run. Rounds alternate off and
//! on, so a neighbour's load on the machine falls on both alike; each
//! variant's figure is its best round.

use std::sync::Arc;

use anyhow::{Result, bail};

use crate::decide::{self, World};
use crate::report::Figure;

/// How the comparison is run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Cars enrolled by one `EnrollBatch` stream per round and variant.
    pub cars: usize,
    /// Unary `Decide` calls per round and variant.
    pub decisions: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Rounds (each runs off, then on).
    pub rounds: usize,
    /// Signing threads of the enrollment fixture.
    pub threads: usize,
}

/// Best rates of one variant: EnrollBatch devices/s and Decide calls/s.
#[derive(Debug, Default, Clone, Copy)]
struct Best {
    enroll: f64,
    decide: f64,
}

async fn one_round(plan: &Plan, seal: bool) -> Result<(f64, f64)> {
    let mut world = World::start_sealed(plan.cars, plan.threads, seal).await?;
    let enroll = plan.cars as f64 / world.batch_time.as_secs_f64();
    let reqs = Arc::new(decide::requests(&world.cars));
    let channel = world
        .house_channels(1)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no channel"))?;
    // Warm-up: every chain verified and assertion signed once.
    decide::decide_calls(&channel, &reqs, plan.concurrency, reqs.len(), 0).await?;
    let out = decide::decide_calls(&channel, &reqs, plan.concurrency, plan.decisions, 0).await?;
    if out.errors > 0 {
        bail!("Decide failed: {}", out.error_note());
    }
    let decide = out.ok as f64 / out.elapsed.as_secs_f64();
    drop(channel);
    world.stop().await?;
    Ok((enroll, decide))
}

/// Runs the rounds and returns the figures: each rate off and on, and the
/// slowdown the check costs (aim: at most 10 %).
pub async fn measure(plan: &Plan) -> Result<Vec<Figure>> {
    let (mut off, mut on) = (Best::default(), Best::default());
    for round in 1..=plan.rounds.max(1) {
        for seal in [false, true] {
            crate::progress(&format!(
                "seal: round {round}, check {}: EnrollBatch of {} cars, {} Decide calls",
                if seal { "on" } else { "off" },
                plan.cars,
                plan.decisions
            ));
            let (enroll, decide) = one_round(plan, seal).await?;
            let best = if seal { &mut on } else { &mut off };
            best.enroll = best.enroll.max(enroll);
            best.decide = best.decide.max(decide);
        }
    }
    let slowdown = |off: f64, on: f64| 100.0 * (off - on) / off;
    let note = format!(
        "best of {} rounds, off and on alternating; {} cars per EnrollBatch stream, {} Decide calls with {} in flight",
        plan.rounds, plan.cars, plan.decisions, plan.concurrency
    );
    Ok(vec![
        Figure::new(
            "seal_enroll_off",
            "EnrollBatch, seal check off",
            off.enroll,
            "devices/s",
        )
        .note(note.clone()),
        Figure::new(
            "seal_enroll_on",
            "EnrollBatch, seal check on",
            on.enroll,
            "devices/s",
        ),
        Figure::new(
            "seal_enroll_slowdown",
            "EnrollBatch slower with the seal check",
            slowdown(off.enroll, on.enroll),
            "%",
        )
        .aim(true, 10.0),
        Figure::new(
            "seal_decide_off",
            "unary Decide, seal check off",
            off.decide,
            "calls/s",
        ),
        Figure::new(
            "seal_decide_on",
            "unary Decide, seal check on",
            on.decide,
            "calls/s",
        ),
        Figure::new(
            "seal_decide_slowdown",
            "Decide slower with the seal check",
            slowdown(off.decide, on.decide),
            "%",
        )
        .aim(true, 10.0),
    ])
}
