//! The trust database's hot path over mutual-TLS gRPC on loopback. A HEMS
//! device, with its own enrolled certificate chain and key as the client
//! identity, asks `trustca.v1.TrustDatabase/Decide` whether it may let a car
//! discharge its battery (`battery-discharge`), cycling over the enrolled
//! cars (each an automotive Lv.5 device), against the real server started
//! in-process:
//!
//! * unary `Decide`, a fixed number in flight on one connection, beside the
//!   echo ceiling (unary `GetCaCertificates` on the same connection), the
//!   two interleaved in slices;
//! * unary `Decide` at fixed offered rates (open loop), with p50/p99 from
//!   each call's scheduled send time;
//! * `DecideBatch`: several bidirectional streams, one connection each;
//! * the encoded size of the messages;
//! * after the server stopped, in-process and on one task: the engine's
//!   `decide` without the transport, the store reads it makes, and the
//!   protobuf encoding and decoding of a `Decision`.
//!
//! Every car's chain is verified and its assertion signed during a warm-up
//! pass before any clock starts, as in a server that has been up for a
//! while; every measured answer must be an allow.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use prost::Message;
use tonic::transport::Channel;
use trustca_api::client::ClientCredentials;
use trustca_api::trust_convert::Convert;
use trustca_model::{CertificateKind, credential_from_chain};
use trustca_proto::v1 as pb;
use trustca_proto::v1::enrollment_client::EnrollmentClient;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;
use trustca_server::RunningServer;
use trustca_store::{SledStorage, Storage};

use crate::cpu::CpuClock;
use crate::fixture::{self, Manufacturer};
use crate::grpc::{self, join_notes};
use crate::load::{closed_loop, open_loop};
use crate::report::{self, Figure, Group, Latency, Row};

mod breakdown;
mod mirror;

mod world;

pub(crate) use breakdown::breakdown;
pub use world::{World, car_serial};

/// The operation asked about: a house drawing on an EV battery (UC1).
pub const OPERATION: &str = "battery-discharge";
/// The car model; car serials are `C` and 7 digits (fixed width).
pub const CAR_MODEL: &str = "EV-200";
const HOUSE_MODEL: &str = "HB-1";
const FIRMWARE: &str = "1.0.0";

/// One `DecideRequest` per car.
pub(crate) fn requests(cars: &[Vec<Vec<u8>>]) -> Vec<pb::DecideRequest> {
    cars.iter()
        .map(|chain| pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: chain.clone(),
            }),
            operation: OPERATION.into(),
        })
        .collect()
}

fn check(d: &pb::Decision) -> Result<()> {
    if !d.allow {
        bail!("denied: {}", d.reasons.join("; "));
    }
    Ok(())
}

/// How the gRPC measurements are run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Unary calls in flight (closed loop), for Decide and its echo.
    pub concurrency: usize,
    /// Unary calls per closed-loop measurement.
    pub requests: usize,
    /// Slices the unary Decide and echo calls are interleaved in.
    pub slices: usize,
    /// Offered rates of the open-loop measurement, tried in order until one
    /// meets the latency target (the first is always run).
    pub rates: Vec<f64>,
    /// Seconds per offered rate.
    pub rate_seconds: f64,
    /// The p99 latency target of the open-loop measurement.
    pub p99_target: Duration,
    /// Concurrent `DecideBatch` streams (one connection each).
    pub streams: usize,
    /// Decisions over all `DecideBatch` streams.
    pub batch_total: usize,
}

/// What the trust measurements produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rates.
    pub rows: Vec<Row>,
    /// Sizes and aims.
    pub figures: Vec<Figure>,
}

fn cpu_note(cpu: &CpuClock, ops: u64) -> String {
    cpu.note(ops)
}

/// Calls of one kind over several slices, with the CPU they used.
#[derive(Debug, Default)]
struct Slices {
    calls: crate::load::Outcome,
    cpu_seconds: f64,
}

impl Slices {
    fn add(&mut self, o: crate::load::Outcome, cpu_seconds: f64) {
        self.calls.ok += o.ok;
        self.calls.errors += o.errors;
        self.calls.elapsed += o.elapsed;
        self.calls.latencies.extend(o.latencies);
        if self.calls.first_error.is_none() {
            self.calls.first_error = o.first_error;
        }
        self.cpu_seconds += cpu_seconds;
    }

    fn rate(&self) -> f64 {
        self.calls.ok as f64 / self.calls.elapsed.as_secs_f64().max(1e-9)
    }

    fn cpu_per_call_us(&self) -> f64 {
        1e6 * self.cpu_seconds / self.calls.ok.max(1) as f64
    }

    fn row(self, key: &'static str, label: &str, group: Group, note: String) -> Row {
        let mut lat = self.calls.latencies.clone();
        Row {
            key,
            label: label.into(),
            group,
            ops: self.calls.ok,
            errors: self.calls.errors,
            elapsed: self.calls.elapsed,
            latency: Latency::of(&mut lat),
            note: join_notes(&[
                note,
                crate::cpu::note(
                    self.cpu_seconds,
                    self.calls.elapsed.as_secs_f64(),
                    self.calls.ok,
                ),
                self.calls.error_note(),
            ]),
        }
    }
}

/// `total` unary `GetCaCertificates` calls, `concurrency` in flight.
async fn echo_calls(
    channel: &Channel,
    concurrency: usize,
    total: usize,
) -> Result<crate::load::Outcome> {
    let client = EnrollmentClient::new(channel.clone());
    closed_loop(concurrency, total, move |_| {
        let mut c = client.clone();
        async move {
            let r = c
                .get_ca_certificates(pb::GetCaCertificatesRequest {})
                .await?
                .into_inner();
            if r.root_der.is_empty() {
                bail!("empty root certificate");
            }
            Ok(())
        }
    })
    .await
}

/// `total` unary `Decide` calls from car `first` on, `concurrency` in
/// flight.
pub(crate) async fn decide_calls(
    channel: &Channel,
    reqs: &Arc<Vec<pb::DecideRequest>>,
    concurrency: usize,
    total: usize,
    first: usize,
) -> Result<crate::load::Outcome> {
    let client = TrustDatabaseClient::new(channel.clone());
    let reqs = Arc::clone(reqs);
    closed_loop(concurrency, total, move |i| {
        let mut c = client.clone();
        let req = reqs[(first + i) % reqs.len()].clone();
        async move { check(&c.decide(req).await?.into_inner()) }
    })
    .await
}

/// Unary `Decide` beside its echo ceilings: `slices` rounds of an echo
/// slice, a sized-echo slice ([`mirror`], on `mirror`'s own connection) and
/// a Decide slice (the order rotating), each a closed loop of
/// `requests / slices` calls, so that a change of the machine's speed
/// during the run hits all alike. Returns the rows and the ratio figures.
async fn unary_beside_echo(
    channel: &Channel,
    mirror: &Channel,
    reqs: &Arc<Vec<pb::DecideRequest>>,
    plan: &Plan,
) -> Result<(Vec<Row>, Vec<Figure>)> {
    let slices = plan.slices.max(1);
    let per = (plan.requests / slices).max(1);
    let mut kinds: [Slices; 3] = Default::default();
    let mut ratios = [Vec::with_capacity(slices), Vec::with_capacity(slices)];
    for k in 0..slices {
        let mut rates = [0.0f64; 3];
        for j in 0..3 {
            let which = (k + j) % 3;
            let cpu = CpuClock::start();
            let out = match which {
                0 => echo_calls(channel, plan.concurrency, per).await?,
                1 => decide_calls(mirror, reqs, plan.concurrency, per, k * per).await?,
                _ => decide_calls(channel, reqs, plan.concurrency, per, k * per).await?,
            };
            rates[which] = out.ok as f64 / out.elapsed.as_secs_f64().max(1e-9);
            let used = cpu.cpu_seconds();
            kinds[which].add(out, used);
        }
        ratios[0].push(rates[2] / rates[0].max(1e-9));
        ratios[1].push(rates[2] / rates[1].max(1e-9));
    }
    let [echo, sized, decide] = kinds;
    let figure = |key, label, ceiling: &Slices, ratios: &mut Vec<f64>, aim| {
        ratios.sort_by(f64::total_cmp);
        let pick = |i: usize| 100.0 * ratios.get(i).copied().unwrap_or(0.0);
        Figure::new(key, label, 100.0 * decide.rate() / ceiling.rate().max(1e-9), "%")
            .aim(false, aim)
            .note(format!(
                "{:.0}/s against {:.0}/s; CPU per call {:.0} us against {:.0} us; per slice min {:.0}%, median {:.0}%, max {:.0}%",
                decide.rate(),
                ceiling.rate(),
                decide.cpu_per_call_us(),
                ceiling.cpu_per_call_us(),
                pick(0),
                pick(ratios.len() / 2),
                pick(ratios.len().saturating_sub(1))
            ))
    };
    let [mut to_echo, mut to_sized] = ratios;
    let figures = vec![
        figure(
            "decide_unary_vs_echo",
            "unary Decide / echo ceiling (same connection, interleaved)",
            &echo,
            &mut to_echo,
            70.0,
        ),
        figure(
            "decide_unary_vs_sized_echo",
            "unary Decide / sized echo (Decide's own messages, no engine)",
            &sized,
            &mut to_sized,
            85.0,
        ),
    ];
    let how = format!(
        "{} in flight, 1 conn (the HEMS device's); {slices} slices of {per} interleaved",
        plan.concurrency
    );
    let rows = vec![
        echo.row(
            report::TRUST_ECHO,
            "gRPC echo ceiling (unary GetCaCertificates)",
            Group::Ceiling,
            how.clone(),
        ),
        sized.row(
            "trust_echo_sized",
            "gRPC sized echo (Decide's messages, mirror server)",
            Group::Ceiling,
            how.clone(),
        ),
        decide.row(
            "decide_unary",
            "unary Decide (battery-discharge, HEMS -> car)",
            Group::Trust,
            how,
        ),
    ];
    Ok((rows, figures))
}

async fn at_rate(
    channel: &Channel,
    reqs: &Arc<Vec<pb::DecideRequest>>,
    rate: f64,
    seconds: f64,
) -> Result<Row> {
    let client = TrustDatabaseClient::new(channel.clone());
    let reqs = Arc::clone(reqs);
    let total = ((rate * seconds).round() as usize).max(1);
    let cpu = CpuClock::start();
    let out = open_loop(rate, total, move |i| {
        let mut c = client.clone();
        let req = reqs[i % reqs.len()].clone();
        async move { check(&c.decide(req).await?.into_inner()) }
    })
    .await?;
    let mut lat = out.calls.latencies.clone();
    let mut lag = out.send_lag.clone();
    let lag = Latency::of(&mut lag);
    let mut service = out.service.clone();
    let service = Latency::of(&mut service);
    let row = Row {
        key: "decide_open_loop",
        label: format!("unary Decide at {rate:.0}/s offered (open loop)"),
        group: Group::Trust,
        ops: out.calls.ok,
        errors: out.calls.errors,
        elapsed: out.calls.elapsed,
        latency: Latency::of(&mut lat),
        note: String::new(),
    };
    let achieved = row.rate();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(Row {
        note: join_notes(&[
            format!("offered {rate:.0}/s for {seconds:.0} s, achieved {achieved:.0}/s, 1 conn"),
            service
                .map(|l| {
                    format!(
                        "from actual send p50 {:.2} ms p99 {:.2} ms",
                        ms(l.p50),
                        ms(l.p99)
                    )
                })
                .unwrap_or_default(),
            lag.map(|l| format!("send lag p50 {:.2} ms p99 {:.2} ms", ms(l.p50), ms(l.p99)))
                .unwrap_or_default(),
            cpu_note(&cpu, out.calls.ok),
            out.calls.error_note(),
        ]),
        ..row
    })
}

async fn batch(
    channels: &[Channel],
    reqs: &Arc<Vec<pb::DecideRequest>>,
    total: usize,
) -> Result<Row> {
    let streams = channels.len().max(1);
    let per = total.div_ceil(streams).max(1);
    let cpu = CpuClock::start();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (s, channel) in channels.iter().enumerate() {
        let lo = (s * per).min(total);
        let hi = ((s + 1) * per).min(total);
        let reqs = Arc::clone(reqs);
        let mut client = TrustDatabaseClient::new(channel.clone());
        tasks.spawn(async move {
            let outbound = tokio_stream::iter((lo..hi).map(move |i| reqs[i % reqs.len()].clone()));
            let mut inbound = client.decide_batch(outbound).await?.into_inner();
            let (mut ok, mut denied, mut first) = (0u64, 0u64, None::<String>);
            while let Some(d) = inbound.message().await? {
                match check(&d) {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        denied += 1;
                        first.get_or_insert(e.to_string());
                    }
                }
            }
            if (ok + denied) as usize != hi - lo {
                first.get_or_insert(format!("{} sent, {} answered", hi - lo, ok + denied));
            }
            anyhow::Ok((ok, denied, first))
        });
    }
    let (mut ok, mut errors, mut first) = (0u64, 0u64, None);
    while let Some(r) = tasks.join_next().await {
        let (o, e, f) = r.context("stream task failed")?.context("DecideBatch")?;
        ok += o;
        errors += e;
        if first.is_none() {
            first = f;
        }
    }
    Ok(Row {
        key: "decide_batch",
        label: "DecideBatch decisions".into(),
        group: Group::Trust,
        ops: ok,
        errors,
        elapsed: start.elapsed(),
        latency: None,
        note: join_notes(&[
            format!("{streams} streams, 1 conn each"),
            cpu_note(&cpu, ok),
            first
                .map(|e| format!("first error: {e}"))
                .unwrap_or_default(),
        ]),
    })
}

/// Sizes of the messages on the wire (protobuf, before HTTP/2 and TLS).
async fn sizes(channel: &Channel, req: &pb::DecideRequest) -> Result<Vec<Figure>> {
    let d = TrustDatabaseClient::new(channel.clone())
        .decide(req.clone())
        .await?
        .into_inner();
    let echo = EnrollmentClient::new(channel.clone())
        .get_ca_certificates(pb::GetCaCertificatesRequest {})
        .await?
        .into_inner();
    let assertion = d.peer_assertion.clone().unwrap_or_default();
    let responder: usize = assertion.responder_chain.iter().map(|c| c.len()).sum();
    let without_assertion = pb::Decision {
        peer_assertion: None,
        ..d.clone()
    };
    let peer: usize = req
        .peer
        .as_ref()
        .map(|c| c.certificates.iter().map(Vec::len).sum())
        .unwrap_or(0);
    Ok(vec![
        Figure::new(
            "decision_bytes",
            "Decision message",
            d.encoded_len() as f64,
            "bytes",
        )
        .note(format!(
            "of which peer_assertion {} (body {}, signature {}, responder chain {} in {} certs); the rest {}",
            assertion.encoded_len(),
            assertion.body.len(),
            assertion.signature.len(),
            responder,
            assertion.responder_chain.len(),
            without_assertion.encoded_len()
        )),
        Figure::new(
            "decide_request_bytes",
            "DecideRequest message",
            req.encoded_len() as f64,
            "bytes",
        )
        .note(format!(
            "peer chain {peer} bytes in {} certs (leaf + automotive CA)",
            req.peer.as_ref().map_or(0, |c| c.certificates.len())
        )),
        Figure::new(
            "echo_response_bytes",
            "GetCaCertificatesResponse (echo) message",
            echo.encoded_len() as f64,
            "bytes",
        )
        .note(format!(
            "root + {} sector CAs; its request is empty",
            echo.sector_ca_der.len()
        )),
    ])
}

/// Every gRPC measurement, in order: unary Decide interleaved with the
/// echo, the open-loop rates, DecideBatch; then the sizes.
pub async fn measure(world: &World, plan: &Plan) -> Result<Outcome> {
    let mut out = Outcome::default();
    let reqs = Arc::new(requests(&world.cars));
    let channel = world.house_channels(1).await?.pop().context("no channel")?;
    // Warm-up: every car's chain verified and assertion signed once; the
    // caller's own assertion too.
    crate::progress(&format!("decide: warm-up over {} cars", reqs.len()));
    let warm = closed_loop(plan.concurrency, reqs.len(), {
        let client = TrustDatabaseClient::new(channel.clone());
        let reqs = Arc::clone(&reqs);
        move |i| {
            let mut c = client.clone();
            let req = reqs[i].clone();
            async move { check(&c.decide(req).await?.into_inner()) }
        }
    })
    .await?;
    if warm.errors > 0 {
        bail!("warm-up Decide failed: {}", warm.error_note());
    }
    echo_calls(&channel, plan.concurrency, 2_000).await?;

    crate::progress(&format!(
        "decide: unary Decide beside the echo ceilings (plain and sized), {} calls each, {} in flight",
        plan.requests, plan.concurrency
    ));
    let recorded = TrustDatabaseClient::new(channel.clone())
        .decide(reqs.first().context("no car to ask about")?.clone())
        .await?
        .into_inner();
    let mirror = mirror::start(world, recorded).await?;
    let mirror_channel = grpc::connect(mirror.addr, &world.house, 1)
        .await?
        .pop()
        .context("no mirror channel")?;
    decide_calls(&mirror_channel, &reqs, plan.concurrency, 2_000, 0).await?;
    let (rows, figures) = unary_beside_echo(&channel, &mirror_channel, &reqs, plan).await?;
    drop(mirror_channel);
    drop(mirror);
    out.rows.extend(rows);
    out.figures.extend(figures);

    for (n, &rate) in plan.rates.iter().enumerate() {
        crate::progress(&format!(
            "decide: open loop at {rate:.0}/s for {:.0} s",
            plan.rate_seconds
        ));
        let row = at_rate(&channel, &reqs, rate, plan.rate_seconds).await?;
        let p99 = row.latency.map(|l| l.p99);
        let sustained = row.rate() >= 0.97 * rate;
        let meets = sustained && p99.is_some_and(|p| p <= plan.p99_target);
        out.rows.push(row);
        if n == 0 {
            out.figures.push(
                Figure::new(
                    "decide_open_loop_first_achieved",
                    format!("open loop: achieved rate at {rate:.0}/s offered"),
                    out.rows.last().map_or(0.0, Row::rate),
                    "1/s",
                )
                .aim(false, rate * 0.97)
                .note("sustained when >= 97% of the offered rate"),
            );
        }
        if meets {
            out.figures.push(
                Figure::new(
                    "decide_rate_p99_target",
                    format!(
                        "highest offered rate tried with p99 <= {:.0} ms",
                        plan.p99_target.as_secs_f64() * 1e3
                    ),
                    rate,
                    "1/s",
                )
                .aim(false, plan.rates.first().copied().unwrap_or(rate))
                .note(format!(
                    "p99 {:.2} ms; rates tried in the order {:?}",
                    p99.map_or(0.0, |p| p.as_secs_f64() * 1e3),
                    plan.rates
                )),
            );
            break;
        }
    }

    crate::progress(&format!(
        "decide: DecideBatch, {} decisions over {} streams",
        plan.batch_total, plan.streams
    ));
    let channels = world.house_channels(plan.streams).await?;
    let row = batch(&channels, &reqs, plan.batch_total).await?;
    out.figures.push(
        Figure::new(
            "decide_batch_rate",
            "DecideBatch decisions/s",
            row.rate(),
            "1/s",
        )
        .aim(false, 100_000.0)
        .note(format!("{} streams", plan.streams)),
    );
    out.rows.push(row);
    drop(channels);

    if let Some(req) = reqs.first() {
        out.figures.extend(sizes(&channel, req).await?);
    }
    Ok(out)
}
