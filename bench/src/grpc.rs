//! Measurements against a real `trustca serve` started in-process on
//! loopback: bulk enrollment over `EnrollBatch` streams, unary `Enroll`, and
//! the bare-RPC ceiling of the same transport (`GetCaCertificates`: mutual
//! TLS, HTTP/2, protobuf and the service's routing, with no signing and no
//! storage).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tonic::transport::Channel;
use trustca_api::client::ClientCredentials;
use trustca_proto::v1 as pb;
use trustca_proto::v1::enrollment_client::EnrollmentClient;
use trustca_server::{RunningServer, ServeOptions};

use crate::fixture::{self, Device};
use crate::load::closed_loop;
use crate::report::{Group, Latency, Row};

/// Starts the server on a free loopback port over `data` (already holding
/// the CA and credential).
pub async fn start(data: &Path) -> Result<RunningServer> {
    start_sealed(data, true).await
}

/// Like [`start`], with the record seal check on or off (its cost).
pub async fn start_sealed(data: &Path, seal: bool) -> Result<RunningServer> {
    start_with(data, |opts| opts.seal_records = seal).await
}

/// Like [`start`], with the options `configure` sets.
pub async fn start_with(
    data: &Path,
    configure: impl FnOnce(&mut ServeOptions),
) -> Result<RunningServer> {
    let mut opts = ServeOptions::new(
        data.to_path_buf(),
        "127.0.0.1:0".parse()?,
        fixture::passphrase()?,
    );
    opts.store = crate::pgmode::store_for(data)?;
    configure(&mut opts);
    Ok(trustca_server::start(opts).await?)
}

/// `n` mutual-TLS connections to `addr`, without a client-side deadline per
/// call (the harness bounds its runs itself; see
/// [`trustca_api::client::connect_for_load`]).
pub async fn connect(
    addr: SocketAddr,
    creds: &ClientCredentials,
    n: usize,
) -> Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        out.push(trustca_api::client::connect_for_load(&addr.to_string(), creds).await?);
    }
    Ok(out)
}

fn client(channel: Channel) -> EnrollmentClient<Channel> {
    // Responses carry two certificates; the default limits are ample, but
    // say so explicitly to match the server's own limit.
    EnrollmentClient::new(channel).max_decoding_message_size(4 * trustca_server::MAX_MESSAGE_BYTES)
}

/// The bare-RPC ceiling: `total` `GetCaCertificates` calls, `concurrency`
/// in flight, spread over `channels`.
pub async fn echo(channels: &[Channel], concurrency: usize, total: usize) -> Result<Row> {
    let clients: Arc<Vec<EnrollmentClient<Channel>>> =
        Arc::new(channels.iter().cloned().map(client).collect());
    // Warm-up.
    for c in clients.iter() {
        c.clone()
            .get_ca_certificates(pb::GetCaCertificatesRequest {})
            .await?;
    }
    let out = closed_loop(concurrency, total, move |i| {
        let mut c = clients[i % clients.len()].clone();
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
    .await?;
    let mut lat = out.latencies.clone();
    Ok(Row {
        key: crate::report::ECHO,
        label: "gRPC echo ceiling (unary GetCaCertificates)".into(),
        group: Group::Ceiling,
        ops: out.ok,
        errors: out.errors,
        elapsed: out.elapsed,
        latency: Latency::of(&mut lat),
        note: join_notes(&[
            format!("{concurrency} in flight, {} conn", channels.len()),
            out.error_note(),
        ]),
    })
}

/// Unary `Enroll` of every device, `concurrency` in flight over `channels`.
pub async fn unary(
    channels: &[Channel],
    devices: Arc<Vec<Device>>,
    concurrency: usize,
) -> Result<Row> {
    let requests = Arc::new(devices.iter().map(Device::request).collect());
    unary_requests(
        channels,
        requests,
        concurrency,
        ("enroll_unary", "trustca unary Enroll (durable)"),
    )
    .await
}

/// Unary `Enroll` of `requests` (built before the clock starts),
/// `concurrency` in flight, as the row `(key, label)`.
pub async fn unary_requests(
    channels: &[Channel],
    requests: Arc<Vec<pb::EnrollRequest>>,
    concurrency: usize,
    (key, label): (&'static str, &str),
) -> Result<Row> {
    let clients: Arc<Vec<EnrollmentClient<Channel>>> =
        Arc::new(channels.iter().cloned().map(client).collect());
    let total = requests.len();
    let out = closed_loop(concurrency, total, move |i| {
        let mut c = clients[i % clients.len()].clone();
        let req = requests[i].clone();
        async move {
            let r = c.enroll(req).await?.into_inner();
            if r.chain_der.is_empty() {
                bail!("no certificate returned");
            }
            Ok(())
        }
    })
    .await?;
    let mut lat = out.latencies.clone();
    Ok(Row {
        key,
        label: label.into(),
        group: Group::Enrollment,
        ops: out.ok,
        errors: out.errors,
        elapsed: out.elapsed,
        latency: Latency::of(&mut lat),
        note: join_notes(&[
            format!("{concurrency} in flight, {} conn", channels.len()),
            out.error_note(),
        ]),
    })
}

/// Bulk enrollment: the devices split evenly over one `EnrollBatch` stream
/// per channel; the clock runs from the first item sent to the last result
/// received.
pub async fn batch(channels: &[Channel], devices: Arc<Vec<Device>>) -> Result<Row> {
    let streams = channels.len().max(1);
    let per = devices.len().div_ceil(streams).max(1);
    // Build every message before the clock starts.
    let mut plans = Vec::new();
    for (s, channel) in channels.iter().enumerate() {
        let lo = (s * per).min(devices.len());
        let hi = ((s + 1) * per).min(devices.len());
        let items: Vec<pb::EnrollBatchItem> = (lo..hi)
            .map(|i| pb::EnrollBatchItem {
                id: i as u64,
                request: Some(devices[i].request()),
            })
            .collect();
        plans.push((client(channel.clone()), items));
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (mut c, items) in plans {
        tasks.spawn(async move {
            let sent = items.len();
            let mut results = c
                .enroll_batch(tokio_stream::iter(items))
                .await?
                .into_inner();
            let (mut ok, mut err, mut first_error) = (0u64, 0u64, None::<String>);
            while let Some(r) = results.message().await? {
                match r.outcome {
                    Some(pb::enroll_batch_result::Outcome::Certificate(_)) => ok += 1,
                    Some(pb::enroll_batch_result::Outcome::Error(f)) => {
                        err += 1;
                        first_error.get_or_insert(format!("code {}: {}", f.code, f.message));
                    }
                    None => {
                        err += 1;
                        first_error.get_or_insert("result without outcome".into());
                    }
                }
            }
            if (ok + err) as usize != sent {
                first_error.get_or_insert(format!("{sent} sent, {} results", ok + err));
            }
            anyhow::Ok((ok, err, first_error))
        });
    }
    let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
    while let Some(r) = tasks.join_next().await {
        let (o, e, f) = r
            .context("stream task failed")?
            .context("EnrollBatch stream")?;
        ok += o;
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let elapsed = start.elapsed();
    Ok(Row {
        key: "enroll_batch",
        label: "trustca EnrollBatch (durable)".into(),
        group: Group::Enrollment,
        ops: ok,
        errors,
        elapsed,
        latency: None,
        note: join_notes(&[
            format!("{streams} streams, 1 conn each"),
            first_error
                .map(|e| format!("first error: {e}"))
                .unwrap_or_default(),
        ]),
    })
}

/// After the server stopped: how many certificates its store holds.
pub fn stored_certificates(data: &Path) -> Result<u64> {
    Ok(crate::pgmode::reopen(data)?.counts()?.0)
}

/// Non-empty notes joined with "; ".
pub fn join_notes(notes: &[String]) -> String {
    notes
        .iter()
        .filter(|n| !n.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("; ")
}
