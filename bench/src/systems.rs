//! Systems of linked devices (issue 22 §1): evaluating a system of 1,000
//! devices and 5,000 links in-process, and `Decide` on a system member
//! beside plain `Decide` through one real server in the same run.
//!
//! The in-process part builds a random acyclic system (a fixed seed, so
//! every run evaluates the same one) of devices of the three sectors at
//! random levels, times adding its links (each checked for a cycle), the
//! whole evaluation, and the part `Decide` evaluates for one member (the
//! members that reach it within `max_hops`).
//!
//! The gRPC part enrolls cars and registers them into systems through the
//! `Systems` service: 25 "garages" of 4 cars with 3 links each, and one
//! system of 1,000 cars with 5,000 links (registered, then linked in
//! batches within the message limit). Rounds of unary `Decide` by the HEMS
//! device about cars in no system, cars in a garage and cars in the large
//! system alternate on one connection, so a neighbour's load falls on all
//! alike; each figure is its best round. Every car is Lv.5 and every
//! decision allowed: a cap that lowered a car would deny it, and the work
//! of the evaluation is the same either way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use trustca_db::composition::{CompositionPolicy, Link, LiveLevel, System, evaluate};
use trustca_model::{SectorName, TrustLevel, TrustStatus};
use trustca_proto::v1 as pb;
use trustca_proto::v1::systems_client::SystemsClient;

use crate::decide::{self, World};
use crate::report::Figure;

/// How the measurement is run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Devices of the large system.
    pub devices: usize,
    /// Links of the large system.
    pub links: usize,
    /// Whole evaluations timed in-process.
    pub evaluations: usize,
    /// Unary `Decide` calls per kind and round.
    pub decisions: usize,
    /// Calls in flight.
    pub concurrency: usize,
    /// Rounds.
    pub rounds: usize,
    /// Signing threads of the enrollment fixture.
    pub threads: usize,
}

/// A small, fixed pseudo-random sequence (the system is the same every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % below.max(1) as u64) as usize
    }
}

const OPERATIONS: [&str; 4] = [
    "read-telemetry",
    "exchange-data",
    "demand-response",
    "remote-control",
];

/// `links` distinct links `a → b` with `a < b` among `devices` (so no
/// cycle), with random operations.
fn random_links(devices: usize, links: usize, seed: u64) -> Vec<(usize, usize, &'static str)> {
    let mut rng = Lcg(seed);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(links);
    while out.len() < links.min(devices * devices.saturating_sub(1) / 2) {
        let (a, b) = (rng.next(devices), rng.next(devices));
        if a == b || !seen.insert((a.min(b), a.max(b))) {
            continue;
        }
        out.push((a.min(b), a.max(b), OPERATIONS[rng.next(OPERATIONS.len())]));
    }
    out
}

fn composition_policy() -> Result<CompositionPolicy> {
    let files = trustca_server::policies::embedded();
    let set = trustca_server::policies::parse(&files, "policies/")?;
    let (name, text) = trustca_server::policies::composition_text(&files);
    Ok(CompositionPolicy::parse(name, &text, Arc::new(set.trust))?)
}

/// The in-process figures: building, evaluating, and the part for one member.
fn in_process(plan: &Plan) -> Result<Vec<Figure>> {
    let policy = composition_policy()?;
    let sectors = ["automotive", "hems", "healthcare"];
    let mut rng = Lcg(22);
    let mut system = System::new("bench", SectorName::new("hems")?)?;
    let mut levels = BTreeMap::new();
    let mut keys = Vec::with_capacity(plan.devices);
    for i in 0..plan.devices {
        let sector = sectors[i % sectors.len()];
        let urn = format!("urn:trustca:{sector}:Acme:M{}:S{i:05}", i % 7);
        system.add_member(&urn, &policy)?;
        let key = trustca_model::DeviceIdentity::from_urn(&urn)?.key();
        levels.insert(
            key.clone(),
            LiveLevel {
                level: TrustLevel::new(1 + rng.next(5) as i64)?,
                status: TrustStatus::Active,
            },
        );
        keys.push(key);
    }
    let links = random_links(plan.devices, plan.links, 5000);
    let started = Instant::now();
    for (a, b, op) in &links {
        system.add_link(
            Link {
                from: keys[*a].clone(),
                to: keys[*b].clone(),
                operation: (*op).to_owned(),
            },
            &policy,
        )?;
    }
    let build = started.elapsed().as_secs_f64();
    let mut best = f64::MAX;
    let mut capped = 0;
    for _ in 0..plan.evaluations.max(1) {
        let started = Instant::now();
        let e = evaluate(&system, &levels, &policy)?;
        best = best.min(started.elapsed().as_secs_f64());
        capped = e.members.values().filter(|m| m.cap.is_some()).count();
    }
    // The member with the most upstream devices: the last one.
    let last = keys.last().cloned().unwrap_or_default();
    let started = Instant::now();
    let part = system.upstream_of(&last, policy.max_hops);
    let e = evaluate(&part, &levels, &policy)?;
    let member = started.elapsed().as_secs_f64();
    if !e.members.contains_key(&last) {
        bail!("the member is not in its own upstream part");
    }
    let shape = format!(
        "{} devices (3 sectors, random Lv.1-5), {} random links a->b (a<b), seed fixed; {capped} members capped",
        plan.devices,
        links.len()
    );
    Ok(vec![
        Figure::new(
            "system_build",
            format!(
                "system of {} devices: add {} links, each checked for a cycle",
                plan.devices,
                links.len()
            ),
            build * 1e3,
            "ms",
        )
        .note(shape.clone()),
        Figure::new(
            "system_evaluate",
            format!(
                "evaluate a system of {} devices and {} links (every member's effective level and cap path, combined level)",
                plan.devices,
                links.len()
            ),
            best * 1e3,
            "ms",
        )
        .note(format!("best of {} evaluations in-process", plan.evaluations.max(1)))
        .aim(true, 100.0),
        Figure::new(
            "system_evaluate_member",
            format!(
                "one member's part: {} upstream devices within {} hops, extracted and evaluated",
                part.members().len(),
                policy.max_hops
            ),
            member * 1e3,
            "ms",
        ),
    ])
}

fn car_urn(n: usize) -> String {
    format!(
        "urn:trustca:{}:{}:{}:{}",
        crate::fixture::SECTOR,
        crate::fixture::MANUFACTURER,
        decide::CAR_MODEL,
        decide::car_serial(n)
    )
}

fn link(a: usize, b: usize, op: &str) -> pb::SystemLink {
    pb::SystemLink {
        from: car_urn(a),
        to: car_urn(b),
        operation: op.to_owned(),
    }
}

/// Registers the garages (cars `first..first + 4 * garages`) and the large
/// system (the `devices` cars after them) through the `Systems` service.
async fn register(
    world: &World,
    first: usize,
    garages: usize,
    plan: &Plan,
) -> Result<SystemsClient<tonic::transport::Channel>> {
    let ops = crate::fixture::credential(
        world.data.path(),
        trustca_model::CertificateKind::Operator,
        "ops",
        &[crate::fixture::SECTOR, "hems"],
    )?;
    let channel = trustca_api::client::connect(&world.addr.to_string(), &ops).await?;
    let mut systems = SystemsClient::new(channel);
    for g in 0..garages {
        let c = first + 4 * g;
        systems
            .register(pb::RegisterSystemRequest {
                name: format!("garage-{g}"),
                sector: "hems".into(),
                members: (c..c + 4).map(car_urn).collect(),
                links: vec![
                    link(c, c + 1, "exchange-data"),
                    link(c + 1, c + 2, "remote-control"),
                    link(c, c + 3, "read-telemetry"),
                ],
                reason: "bench".into(),
            })
            .await
            .context("register a garage")?;
    }
    let big = first + 4 * garages;
    systems
        .register(pb::RegisterSystemRequest {
            name: "large".into(),
            sector: "hems".into(),
            members: (big..big + plan.devices).map(car_urn).collect(),
            links: Vec::new(),
            reason: "bench".into(),
        })
        .await
        .context("register the large system")?;
    let links = random_links(plan.devices, plan.links, 5000);
    for chunk in links.chunks(400) {
        systems
            .link(pb::LinkRequest {
                system: "large".into(),
                links: chunk
                    .iter()
                    .map(|(a, b, op)| link(big + a, big + b, op))
                    .collect(),
                reason: "bench".into(),
            })
            .await
            .context("link the large system")?;
    }
    Ok(systems)
}

/// Best calls/s of each kind: plain, garage member, large-system member.
async fn decide_rounds(plan: &Plan) -> Result<Vec<Figure>> {
    let (plain, garages) = (100usize, 25usize);
    let cars = plain + 4 * garages + plan.devices;
    crate::progress(&format!(
        "systems: enrolling {cars} cars, registering {garages} garages and a system of {} cars with {} links",
        plan.devices, plan.links
    ));
    let mut world = World::start(cars, plan.threads).await?;
    let systems = register(&world, plain, garages, plan).await?;
    let reqs = |range: std::ops::Range<usize>| Arc::new(decide::requests(&world.cars[range]));
    let kinds = [
        ("plain", reqs(0..plain)),
        ("garage", reqs(plain..plain + 4 * garages)),
        ("large", reqs(plain + 4 * garages..cars)),
    ];
    let channel = world
        .house_channels(1)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no channel"))?;
    let mut best = [0f64; 3];
    for (_, r) in &kinds {
        decide::decide_calls(&channel, r, plan.concurrency, r.len(), 0).await?;
    }
    for round in 1..=plan.rounds.max(1) {
        for (i, (name, r)) in kinds.iter().enumerate() {
            crate::progress(&format!(
                "systems: round {round}, {} Decide calls on {name} peers",
                plan.decisions
            ));
            let out =
                decide::decide_calls(&channel, r, plan.concurrency, plan.decisions, 0).await?;
            if out.errors > 0 {
                bail!("Decide failed: {}", out.error_note());
            }
            best[i] = best[i].max(out.ok as f64 / out.elapsed.as_secs_f64());
        }
    }
    drop((channel, systems));
    world.stop().await?;
    let note = format!(
        "best of {} rounds alternating, {} calls each with {} in flight, one connection; HEMS asks about Lv.5 cars ({})",
        plan.rounds.max(1),
        plan.decisions,
        plan.concurrency,
        decide::OPERATION
    );
    Ok(vec![
        Figure::new(
            "system_decide_plain",
            "unary Decide, peer in no system",
            best[0],
            "calls/s",
        )
        .note(note),
        Figure::new(
            "system_decide_member",
            "unary Decide, peer in a garage of 4 cars and 3 links",
            best[1],
            "calls/s",
        ),
        Figure::new(
            "system_decide_member_share",
            "Decide on a garage member as a share of plain Decide",
            100.0 * best[1] / best[0].max(f64::MIN_POSITIVE),
            "%",
        )
        .aim(false, 50.0),
        Figure::new(
            "system_decide_large",
            format!(
                "unary Decide, peer in the system of {} cars and {} links",
                plan.devices, plan.links
            ),
            best[2],
            "calls/s",
        ),
        Figure::new(
            "system_decide_large_share",
            "Decide on a large-system member as a share of plain Decide",
            100.0 * best[2] / best[0].max(f64::MIN_POSITIVE),
            "%",
        ),
    ])
}

/// Runs both parts.
pub async fn measure(plan: &Plan) -> Result<Vec<Figure>> {
    crate::progress(&format!(
        "systems: evaluating {} devices and {} links in-process",
        plan.devices, plan.links
    ));
    let mut figures = in_process(plan)?;
    figures.extend(decide_rounds(plan).await?);
    Ok(figures)
}
