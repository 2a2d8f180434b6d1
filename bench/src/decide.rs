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

/// The operation asked about: a house drawing on an EV battery (UC1).
pub const OPERATION: &str = "battery-discharge";
/// The car model; car serials are `C` and 7 digits (fixed width).
pub const CAR_MODEL: &str = "EV-200";
const HOUSE_MODEL: &str = "HB-1";
const FIRMWARE: &str = "1.0.0";

fn evidence(kind: &str, scheme: &str, value: &str, at: &str) -> pb::EvidenceItem {
    pb::EvidenceItem {
        r#type: kind.into(),
        scheme: scheme.into(),
        value: value.into(),
        evaluated_at: at.into(),
    }
}

/// Evidence that earns HEMS Lv.5 under the shipped policy.
pub fn hems_lv5() -> Vec<pb::EvidenceItem> {
    vec![
        evidence("evaluation", "iec-62443-4-2", "SL3", "2026-05-01"),
        evidence("hardware-root-of-trust", "", "secure-element", ""),
        evidence("secure-update", "", "true", ""),
        evidence("supported-until", "", "2036-12-31", ""),
    ]
}

/// The serial of car `n`: fixed width, so a certificate's bytes can be
/// patched from one car to another without changing its length.
pub fn car_serial(n: usize) -> String {
    format!("C{n:07}")
}

fn enroll_request(
    csr_der: Vec<u8>,
    sector: &str,
    model: &str,
    serial: String,
    evidence: Vec<pb::EvidenceItem>,
) -> pb::EnrollRequest {
    pb::EnrollRequest {
        csr_der,
        device: Some(pb::DeviceAttributes {
            sector: sector.into(),
            manufacturer: fixture::MANUFACTURER.into(),
            model: model.into(),
            serial,
            firmware_version: FIRMWARE.into(),
        }),
        evidence,
        renewal: false,
        tpm_attestation: None,
    }
}

fn pem_chain(chain: &[Vec<u8>]) -> String {
    chain
        .iter()
        .map(|d| pem::encode(&pem::Pem::new("CERTIFICATE", d.clone())))
        .collect()
}

/// A CA with a running server, a HEMS device and enrolled cars.
#[derive(Debug)]
pub struct World {
    /// The data directory (removed on drop).
    pub data: tempfile::TempDir,
    server: Option<RunningServer>,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The Acme manufacturer (automotive and hems).
    pub manufacturer: Manufacturer,
    /// The HEMS device as a client: its chain (leaf, hems CA) and key.
    pub house: ClientCredentials,
    /// The HEMS device's chain, DER.
    pub house_chain: Vec<Vec<u8>>,
    /// Every car's chain (leaf, automotive CA), DER, by car number.
    pub cars: Vec<Vec<Vec<u8>>>,
    /// How long the cars' EnrollBatch stream took, first item to last result.
    pub batch_time: Duration,
}

impl World {
    /// Initialises a CA, starts the server and enrolls the HEMS device
    /// (unary `Enroll`) and `cars` cars (one `EnrollBatch` stream).
    pub async fn start(cars: usize, threads: usize) -> Result<Self> {
        Self::start_sealed(cars, threads, true).await
    }

    /// Like [`World::start`], with the record seal check on or off.
    pub async fn start_sealed(cars: usize, threads: usize, seal: bool) -> Result<Self> {
        Self::start_with(cars, threads, |opts| opts.seal_records = seal, |_| Ok(())).await
    }

    /// Like [`World::start`], with the server options `configure` sets,
    /// after `prepare` saw the initialised data directory.
    pub async fn start_with(
        cars: usize,
        threads: usize,
        configure: impl FnOnce(&mut trustca_server::ServeOptions),
        prepare: impl FnOnce(&std::path::Path) -> Result<()>,
    ) -> Result<Self> {
        let data = tempfile::tempdir()?;
        let manufacturer = fixture::init_ca_for(data.path(), &[fixture::SECTOR, "hems"])?;
        let tuv = fixture::certification_body(data.path())?;
        prepare(data.path())?;
        let server = grpc::start_with(data.path(), configure)
            .await
            .context("start the server")?;
        let addr = server.addr;
        // The cars' Lv.5 comes from their registered, evaluated model: a
        // secure element declared per device counts up to Lv.3 only.
        fixture::register_certified_model(
            &format!("https://{addr}"),
            &manufacturer.client,
            &tuv,
            CAR_MODEL,
            "CAL4",
            "B-CARS",
        )
        .await?;
        let channel = trustca_api::client::connect(&addr.to_string(), &manufacturer.client).await?;
        let mut enroll = EnrollmentClient::new(channel);

        let key = rcgen::KeyPair::generate()?;
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)?
            .der()
            .to_vec();
        let house = enroll
            .enroll(enroll_request(
                csr,
                "hems",
                HOUSE_MODEL,
                "H0000001".into(),
                hems_lv5(),
            ))
            .await
            .context("enroll the HEMS device")?
            .into_inner();
        let house_chain = house.chain_der;
        let house_creds = ClientCredentials {
            cert_pem: pem_chain(&house_chain),
            key_pem: key.serialize_pem(),
            root_pem: fixture::root_pem(data.path())?,
        };

        let devices = fixture::devices(0, cars, threads)?;
        let items: Vec<pb::EnrollBatchItem> = devices
            .into_iter()
            .enumerate()
            .map(|(n, d)| pb::EnrollBatchItem {
                id: n as u64,
                request: Some(enroll_request(
                    d.csr_der,
                    fixture::SECTOR,
                    CAR_MODEL,
                    car_serial(n),
                    vec![],
                )),
            })
            .collect();
        let batch_started = Instant::now();
        let mut results = enroll
            .enroll_batch(tokio_stream::iter(items))
            .await
            .context("EnrollBatch of the cars")?
            .into_inner();
        let mut chains = vec![Vec::new(); cars];
        while let Some(r) = results.message().await? {
            match r.outcome {
                Some(pb::enroll_batch_result::Outcome::Certificate(c)) => {
                    if let Some(slot) = chains.get_mut(r.id as usize) {
                        *slot = c.chain_der;
                    }
                }
                Some(pb::enroll_batch_result::Outcome::Error(f)) => {
                    bail!("car {} not enrolled: {}", r.id, f.message)
                }
                None => bail!("car {}: result without outcome", r.id),
            }
        }
        if chains.iter().any(Vec::is_empty) {
            bail!("not every car was enrolled");
        }
        let batch_time = batch_started.elapsed();
        Ok(Self {
            batch_time,
            data,
            server: Some(server),
            addr,
            manufacturer,
            house: house_creds,
            house_chain,
            cars: chains,
        })
    }

    /// Where the web front end listens, if it was asked for.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().and_then(|s| s.web_addr)
    }

    /// `n` connections of the HEMS device.
    pub async fn house_channels(&self, n: usize) -> Result<Vec<Channel>> {
        grpc::connect(self.addr, &self.house, n).await
    }

    /// Stops the server (every channel to it should be dropped first).
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(s) = self.server.take() {
            let stopping = Instant::now();
            s.shutdown().await?;
            crate::progress(&format!(
                "server shut down in {:.2} s",
                stopping.elapsed().as_secs_f64()
            ));
        }
        Ok(())
    }
}

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

/// Unary `Decide` beside its echo ceiling: `slices` pairs of an echo slice
/// and a Decide slice (the order alternating), each a closed loop of
/// `requests / slices` calls on the same connection, so that a change of
/// the machine's speed during the run hits both alike. Returns the echo
/// and Decide rows and the ratio figure.
async fn unary_beside_echo(
    channel: &Channel,
    reqs: &Arc<Vec<pb::DecideRequest>>,
    plan: &Plan,
) -> Result<(Row, Row, Figure)> {
    let slices = plan.slices.max(1);
    let per = (plan.requests / slices).max(1);
    let (mut echo, mut decide) = (Slices::default(), Slices::default());
    let mut ratios = Vec::with_capacity(slices);
    for k in 0..slices {
        let mut pair = [0.0f64; 2];
        for which in [k % 2, 1 - k % 2] {
            let cpu = CpuClock::start();
            let out = if which == 0 {
                echo_calls(channel, plan.concurrency, per).await?
            } else {
                decide_calls(channel, reqs, plan.concurrency, per, k * per).await?
            };
            pair[which] = out.ok as f64 / out.elapsed.as_secs_f64().max(1e-9);
            let used = cpu.cpu_seconds();
            if which == 0 {
                echo.add(out, used);
            } else {
                decide.add(out, used);
            }
        }
        ratios.push(pair[1] / pair[0].max(1e-9));
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = 100.0 * decide.rate() / echo.rate().max(1e-9);
    let figure = Figure::new(
        "decide_unary_vs_echo",
        "unary Decide / echo ceiling (same connection, interleaved)",
        ratio,
        "%",
    )
    .aim(false, 70.0)
    .note(format!(
        "{:.0}/s against {:.0}/s; per slice pair min {:.0}%, median {:.0}%, max {:.0}%",
        decide.rate(),
        echo.rate(),
        100.0 * ratios.first().copied().unwrap_or(0.0),
        100.0 * ratios.get(ratios.len() / 2).copied().unwrap_or(0.0),
        100.0 * ratios.last().copied().unwrap_or(0.0)
    ));
    let how = format!(
        "{} in flight, 1 conn (the HEMS device's); {slices} slices of {per} interleaved",
        plan.concurrency
    );
    Ok((
        echo.row(
            report::TRUST_ECHO,
            "gRPC echo ceiling (unary GetCaCertificates)",
            Group::Ceiling,
            how.clone(),
        ),
        decide.row(
            "decide_unary",
            "unary Decide (battery-discharge, HEMS -> car)",
            Group::Trust,
            how,
        ),
        figure,
    ))
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
    let responder: usize = assertion.responder_chain.iter().map(Vec::len).sum();
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
        "decide: unary Decide beside the echo ceiling, {} calls each, {} in flight",
        plan.requests, plan.concurrency
    ));
    let (echo_row, unary_row, ratio) = unary_beside_echo(&channel, &reqs, plan).await?;
    out.rows.push(echo_row);
    out.rows.push(unary_row);
    out.figures.push(ratio);

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

/// In-process, after the server stopped: the engine's `decide` without the
/// transport on one task, the store reads it makes, and the encoding of a
/// `Decision`; every rate is per single thread.
pub async fn breakdown(world: &World, calls: usize) -> Result<Vec<Row>> {
    let data = world.data.path();
    let pass = fixture::passphrase()?;
    let (_, set) = trustca_server::policies::resolve(None, Some(data))?;
    let h = trustca_ca::CaHierarchy::open(data, &set, &pass)?;
    let cfg = trustca_db::TrustEngineConfig {
        root_der: h.root_der.clone(),
        sector_cas: h.sectors.values().map(|c| c.cert_der.clone()).collect(),
        responder_chain: h.responder_chain.clone(),
        responder_key: h.responder_key(),
        authoritative: Vec::new(),
        assertion_ttl: Duration::from_secs(3600),
        decision_ttl: Duration::from_secs(300),
        extension_oid: set.pki.extensions.trust_level_oid.clone(),
    };
    let sled = SledStorage::open(&data.join("db")).context("reopen the store")?;
    let storage: Arc<dyn Storage> = Arc::new(sled.clone());
    let engine = trustca_db::TrustEngine::new(
        cfg,
        Arc::clone(&storage),
        set.trust.clone(),
        set.detection.clone(),
        None,
        None,
    )?;
    let [leaf, issuer, ..] = world.house_chain.as_slice() else {
        bail!("the HEMS chain has fewer than two certificates")
    };
    let caller = credential_from_chain(leaf, issuer, &Default::default())?;
    if caller.kind != CertificateKind::LongTerm {
        bail!("the HEMS credential is not a device certificate");
    }
    let cars = &world.cars;
    for chain in cars {
        check(&engine.decide(&caller, chain, OPERATION).await?.convert())?;
    }
    let mut rows = Vec::new();

    let start = Instant::now();
    let mut last = None;
    for i in 0..calls {
        let d = engine
            .decide(&caller, &cars[i % cars.len()], OPERATION)
            .await?;
        last = Some(d);
    }
    let elapsed = start.elapsed();
    let decision: pb::Decision = last.context("no decision")?.convert();
    check(&decision)?;
    rows.push(breakdown_row(
        "decide_engine",
        "engine.decide in-process (no gRPC/TLS)",
        calls,
        elapsed,
        "1 task; store reads, cached chain and assertion, policy, Decision built",
    ));

    // The store reads of one decision: caller and peer each get their trust
    // record, the presented certificate and the device record.
    let keys: Vec<(String, Vec<u8>)> = std::iter::once(&world.house_chain)
        .chain(cars.iter())
        .map(|chain| {
            let [leaf, issuer, ..] = chain.as_slice() else {
                bail!("a chain has fewer than two certificates")
            };
            let c = credential_from_chain(leaf, issuer, &Default::default())?;
            let key = c.identity.context("not a device certificate")?.key();
            let serial = trustca_model::hexfmt::decode(&c.serial).context("serial")?;
            Ok((key, serial))
        })
        .collect::<Result<_>>()?;
    let start = Instant::now();
    for i in 0..calls {
        for (key, serial) in [&keys[0], &keys[1 + i % cars.len()]] {
            storage.trust_record(key)?.context("trust record")?;
            storage.certificate(serial)?.context("certificate")?;
            storage.device(key)?.context("device")?;
        }
    }
    rows.push(breakdown_row(
        "decide_store_reads",
        "store reads of one Decide (6 sled gets + decode)",
        calls,
        start.elapsed(),
        "1 thread; caller and peer: trust record, certificate record (with DER), device record",
    ));
    type Read<'a> = Box<dyn Fn(&(String, Vec<u8>)) -> Result<bool> + 'a>;
    let reads: [(&'static str, &str, Read<'_>); 3] = [
        (
            "decide_read_trust",
            "  of which trust_record, x2",
            Box::new(|(k, _)| Ok(storage.trust_record(k)?.is_some())),
        ),
        (
            "decide_read_certificate",
            "  of which certificate (record with DER), x2",
            Box::new(|(_, s)| Ok(storage.certificate(s)?.is_some())),
        ),
        (
            "decide_read_device",
            "  of which device, x2",
            Box::new(|(k, _)| Ok(storage.device(k)?.is_some())),
        ),
    ];
    for (key, label, read) in reads {
        let start = Instant::now();
        for i in 0..calls {
            for k in [&keys[0], &keys[1 + i % cars.len()]] {
                if !read(k)? {
                    bail!("{label}: a record is missing");
                }
            }
        }
        rows.push(breakdown_row(
            key,
            label,
            calls,
            start.elapsed(),
            "1 thread",
        ));
    }

    let start = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..calls {
        let copy = std::hint::black_box(decision.clone());
        bytes += copy.encode_to_vec().len();
    }
    rows.push(breakdown_row(
        "decision_encode",
        "Decision clone + protobuf encode",
        calls,
        start.elapsed(),
        &format!("1 thread; {} bytes each", bytes / calls.max(1)),
    ));
    let encoded = decision.encode_to_vec();
    let start = Instant::now();
    for _ in 0..calls {
        std::hint::black_box(pb::Decision::decode(encoded.as_slice())?);
    }
    rows.push(breakdown_row(
        "decision_decode",
        "Decision protobuf decode (client side)",
        calls,
        start.elapsed(),
        "1 thread",
    ));
    drop(engine);
    drop(storage);
    drop(sled);
    Ok(rows)
}

fn breakdown_row(key: &'static str, label: &str, ops: usize, elapsed: Duration, note: &str) -> Row {
    Row {
        key,
        label: label.into(),
        group: Group::Trust,
        ops: ops as u64,
        errors: 0,
        elapsed,
        latency: None,
        note: format!(
            "{:.1} us/op; {note}",
            elapsed.as_secs_f64() * 1e6 / ops.max(1) as f64
        ),
    }
}
