//! The `est` stage: EST `simpleenroll` (RFC 7030: base64 PKCS#10 in,
//! certs-only PKCS#7 out, HTTP/1.1 over mutual TLS) at a fixed number of
//! concurrent connections, one request in flight on each, beside unary gRPC
//! `Enroll` at the same number in flight, on one server in one run. The two
//! alternate in rounds (gRPC, EST, gRPC, EST, ...) so that a machine whose
//! speed drifts affects both alike; each certificate is durable before it
//! is answered on either path (one engine, one group committer).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio_rustls::TlsConnector;
use trustca_api::client::ClientCredentials;
use trustca_server::{RunningServer, ServeOptions};

use crate::fixture::{self, Device};
use crate::load::Outcome;
use crate::report::{Figure, Group, Latency, Row};

const MODEL: &str = "EST-1";

/// One EST request body (base64 DER PKCS#10 naming the device in its subject).
fn est_body(n: usize) -> Result<Bytes> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, fixture::MANUFACTURER);
    dn.push(DnType::CommonName, MODEL);
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        rcgen::DnValue::PrintableString(format!("EST{n}").try_into()?),
    );
    params.distinguished_name = dn;
    let der = params.serialize_request(&key)?.der().to_vec();
    Ok(Bytes::from(
        base64::engine::general_purpose::STANDARD.encode(der),
    ))
}

/// `count` EST bodies, generated on `threads` threads before any clock runs.
fn est_bodies(count: usize, threads: usize) -> Result<Vec<Bytes>> {
    let per = count.div_ceil(threads.max(1)).max(1);
    let handles: Vec<_> = (0..count)
        .step_by(per)
        .map(|start| {
            let end = (start + per).min(count);
            std::thread::spawn(move || (start..end).map(est_body).collect::<Result<Vec<_>>>())
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for h in handles {
        out.extend(h.join().map_err(|_| anyhow!("CSR generator panicked"))??);
    }
    Ok(out)
}

/// Starts the server with EST on a free loopback port too.
async fn start(data: &Path) -> Result<RunningServer> {
    let mut opts = ServeOptions::new(
        data.to_path_buf(),
        "127.0.0.1:0".parse()?,
        fixture::passphrase()?,
    );
    opts.est_listen = Some("127.0.0.1:0".parse()?);
    Ok(trustca_server::start(opts).await?)
}

/// The TLS client of the EST connections: the manufacturer credential,
/// the trustca root, ALPN `http/1.1`, ring.
pub(crate) fn tls_connector(creds: &ClientCredentials) -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(
        pem::parse(&creds.root_pem)?.into_contents(),
    ))?;
    let chain: Vec<CertificateDer<'static>> = pem::parse_many(&creds.cert_pem)?
        .into_iter()
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        pem::parse(&creds.key_pem)?.into_contents(),
    ));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

pub(crate) type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One keep-alive HTTP/1.1 connection over TLS (mutual when `tls` holds a
/// client certificate).
pub(crate) async fn connect(addr: SocketAddr, tls: &TlsConnector) -> Result<Sender> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let stream = tls
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// One keep-alive HTTP/1.1 connection without TLS (cfssl, the ETSI
/// front ends on loopback).
pub(crate) async fn connect_plain(addr: SocketAddr) -> Result<Sender> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// POSTs `body` as `content_type` on `sender`; the answer's status and body.
pub(crate) async fn post_once(
    sender: &mut Sender,
    uri: &hyper::Uri,
    content_type: &str,
    body: Bytes,
) -> Result<(hyper::StatusCode, Bytes)> {
    let request = hyper::Request::post(uri.clone())
        .header(hyper::header::HOST, "127.0.0.1")
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

/// Posts every body to `url` over `senders` (one worker per connection,
/// one request in flight on each) as `content_type`; an answer counts when
/// it has status `expect` and a body. Also the step-ca stage's client.
pub(crate) async fn post_each(
    url: &str,
    senders: Vec<Sender>,
    bodies: Arc<Vec<Bytes>>,
    (content_type, expect): (&'static str, hyper::StatusCode),
) -> Result<Outcome> {
    let next = Arc::new(AtomicUsize::new(0));
    let uri: hyper::Uri = url.parse()?;
    let start = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for mut sender in senders {
        let (next, bodies, uri) = (Arc::clone(&next), Arc::clone(&bodies), uri.clone());
        workers.spawn(async move {
            let mut run = Outcome::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let outcome: Result<()> = async {
                    let (status, answer) =
                        post_once(&mut sender, &uri, content_type, body.clone()).await?;
                    if status != expect {
                        bail!("{status}: {}", String::from_utf8_lossy(&answer).trim());
                    }
                    if answer.is_empty() {
                        bail!("empty answer");
                    }
                    Ok(())
                }
                .await;
                match outcome {
                    Ok(()) => {
                        run.ok += 1;
                        run.latencies.push(t.elapsed());
                    }
                    Err(e) => {
                        run.errors += 1;
                        run.first_error.get_or_insert(format!("{e:#}"));
                        if sender.is_closed() {
                            break;
                        }
                    }
                }
            }
            anyhow::Ok(run)
        });
    }
    let mut total = Outcome::default();
    while let Some(r) = workers.join_next().await {
        let r = r.context("HTTP worker failed")??;
        total.ok += r.ok;
        total.errors += r.errors;
        total.latencies.extend(r.latencies);
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// The `est` stage: `requests` devices each way, over `rounds` alternating
/// rounds, `connections` EST connections and as many gRPC calls in flight
/// (over `grpc_connections` HTTP/2 connections).
pub async fn measure(
    requests: usize,
    connections: usize,
    grpc_connections: usize,
    rounds: usize,
    threads: usize,
) -> Result<(Vec<Row>, Vec<Figure>)> {
    let rounds = rounds.max(1);
    crate::progress(&format!(
        "est: generating {requests} EST and {requests} gRPC device keys and CSRs"
    ));
    let bodies = est_bodies(requests, threads)?;
    // Serials SN<n> for gRPC, EST<n> for EST: no identity is enrolled twice.
    let devices = fixture::devices(0, requests, threads)?;
    let data = tempfile::tempdir()?;
    let manufacturer = fixture::init_ca(data.path())?;
    let server = start(data.path()).await.context("start the server")?;
    let est_addr = server
        .est_addr
        .ok_or_else(|| anyhow!("the server serves no EST"))?;
    let url = format!(
        "https://{est_addr}/.well-known/est/{}/simpleenroll",
        fixture::SECTOR
    );
    crate::progress(&format!(
        "est: server on {}, EST on {est_addr}",
        server.addr
    ));
    let tls = tls_connector(&manufacturer.client)?;
    let channels =
        crate::grpc::connect(server.addr, &manufacturer.client, grpc_connections).await?;

    // EST enrolls registered models only (it has no evidence channel).
    trustca_proto::v1::model_registry_client::ModelRegistryClient::new(
        channels
            .first()
            .cloned()
            .ok_or_else(|| anyhow!("no gRPC channel"))?,
    )
    .register_model(trustca_proto::v1::RegisterModelRequest {
        model: Some(trustca_proto::v1::ModelSelector {
            sector: fixture::SECTOR.into(),
            manufacturer: fixture::MANUFACTURER.into(),
            model: MODEL.into(),
            firmware: "1.0.0..".into(),
        }),
        declared: vec![],
        self_assessed: vec![],
        reason: "benchmark".into(),
    })
    .await
    .context("register the EST model")?;
    let per = requests.div_ceil(rounds).max(1);
    let (mut est_run, mut grpc_rows) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (lo, hi) = (
            (round * per).min(requests),
            ((round + 1) * per).min(requests),
        );
        if lo == hi {
            break;
        }
        crate::progress(&format!(
            "est round {}/{rounds}: unary Enroll, {} devices, {connections} in flight",
            round + 1,
            hi - lo
        ));
        let part: Arc<Vec<Device>> = Arc::new(devices[lo..hi].to_vec());
        grpc_rows.push(crate::grpc::unary(&channels, part, connections).await?);
        crate::progress(&format!(
            "est round {}/{rounds}: EST simpleenroll, {} devices, {connections} connections",
            round + 1,
            hi - lo
        ));
        // Connected (TLS handshakes done) before the clock starts, as the
        // gRPC channels are.
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            senders.push(connect(est_addr, &tls).await?);
        }
        let part = Arc::new(bodies[lo..hi].to_vec());
        let how = ("application/pkcs10", hyper::StatusCode::OK);
        est_run.push(post_each(&url, senders, part, how).await?);
    }
    drop(channels);
    server.shutdown().await?;

    let grpc_ok: u64 = grpc_rows.iter().map(|r| r.ops).sum();
    let grpc_errors: u64 = grpc_rows.iter().map(|r| r.errors).sum();
    let grpc_elapsed: Duration = grpc_rows.iter().map(|r| r.elapsed).sum();
    let est_ok: u64 = est_run.iter().map(|r| r.ok).sum();
    let est_errors: u64 = est_run.iter().map(|r| r.errors).sum();
    let est_elapsed: Duration = est_run.iter().map(|r| r.elapsed).sum();
    let mut est_latencies: Vec<Duration> = est_run
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    let first_error = est_run.iter().find_map(|r| r.first_error.clone());
    let stored = crate::grpc::stored_certificates(data.path())?;
    let expected = grpc_ok + est_ok + 1;
    if stored < expected {
        bail!("durability check failed: {stored} certificates stored, {expected} answered");
    }
    let grpc_row = Row {
        key: "est_run_enroll_unary",
        label: "trustca unary Enroll (durable), beside EST".into(),
        group: Group::Enrollment,
        ops: grpc_ok,
        errors: grpc_errors,
        elapsed: grpc_elapsed,
        latency: None,
        note: format!(
            "{connections} in flight, {grpc_connections} conn; {rounds} rounds alternating with EST"
        ),
    };
    let est_row = Row {
        key: "est_simpleenroll",
        label: "trustca EST simpleenroll (durable)".into(),
        group: Group::Enrollment,
        ops: est_ok,
        errors: est_errors,
        elapsed: est_elapsed,
        latency: Latency::of(&mut est_latencies),
        note: crate::grpc::join_notes(&[
            format!(
                "{connections} HTTP/1.1 mTLS connections, 1 in flight each; all {stored} in store after shutdown"
            ),
            first_error
                .map(|e| format!("first error: {e}"))
                .unwrap_or_default(),
        ]),
    };
    let ratio = if grpc_row.rate() > 0.0 {
        100.0 * est_row.rate() / grpc_row.rate()
    } else {
        0.0
    };
    let figure = Figure::new(
        "est_vs_grpc_enroll",
        "EST simpleenroll throughput / unary gRPC Enroll throughput",
        ratio,
        "%",
    )
    .aim(false, 70.0)
    .note(format!(
        "{:.0}/s vs {:.0}/s, same server and run",
        est_row.rate(),
        grpc_row.rate()
    ));
    Ok((vec![grpc_row, est_row], vec![figure]))
}
