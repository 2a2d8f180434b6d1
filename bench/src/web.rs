//! The web front end's public label pages (issue 22 §2) beside `Decide`,
//! on one server in the same run: `trustca serve --web-listen` with the
//! cars of the Decide world enrolled, the label id of each car fetched
//! once as the label printer does (`/labels/device`, the manufacturer's
//! credential), then:
//!
//! * every car's device page requested once (the first render: uncached);
//! * rounds alternating the same pages again (from the page cache) and
//!   unary `Decide` by the HEMS device about the same cars, best round of
//!   each.
//!
//! Pages go over HTTPS (HTTP/1.1 keep-alive, `--concurrency` connections,
//! one request in flight on each, no client certificate, as a phone has
//! none); every answer must be `200` with a body. The public rate limit
//! is raised to its maximum (100,000 a minute per address, with a burst of
//! as many) in the run's `web.toml`, since every request comes from
//! 127.0.0.1; the run stays under the burst.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use tokio_rustls::TlsConnector;

use crate::decide::{self, World};
use crate::est::{self, Sender};
use crate::report::Figure;

/// How the measurement is run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Cars enrolled (one device page each).
    pub cars: usize,
    /// Page requests (and Decide calls) per round.
    pub requests: usize,
    /// Connections (and Decide calls in flight).
    pub concurrency: usize,
    /// Rounds.
    pub rounds: usize,
    /// Signing threads of the enrollment fixture.
    pub threads: usize,
}

/// A TLS client without a client certificate (a phone scanning a label).
pub(crate) fn public_connector(root_pem: &str) -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from(
        pem::parse(root_pem)?.into_contents(),
    ))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// One GET on `sender`; the body's length.
async fn get(sender: &mut Sender, path: &str) -> Result<usize> {
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Full::new(Bytes::new()))?;
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != hyper::StatusCode::OK || body.is_empty() {
        bail!(
            "{path}: {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok(body.len())
}

/// Each car's device page path, from `/labels/device` as the manufacturer.
async fn label_paths(world: &World, web: SocketAddr, cars: usize) -> Result<Vec<String>> {
    let tls = est::tls_connector(&world.manufacturer.client)?;
    let mut sender = est::connect(web, &tls).await?;
    let mut out = Vec::with_capacity(cars);
    for n in 0..cars {
        let urn = format!(
            "urn%3Atrustca%3A{}%3A{}%3A{}%3A{}",
            crate::fixture::SECTOR,
            crate::fixture::MANUFACTURER,
            decide::CAR_MODEL,
            decide::car_serial(n)
        );
        let request = hyper::Request::get(format!("/labels/device?urn={urn}"))
            .header(hyper::header::HOST, "127.0.0.1")
            .body(Full::new(Bytes::new()))?;
        sender.ready().await?;
        let body = sender
            .send_request(request)
            .await?
            .into_body()
            .collect()
            .await?
            .to_bytes();
        let label: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("label of car {n}: {}", String::from_utf8_lossy(&body)))?;
        let url = label["url"]
            .as_str()
            .ok_or_else(|| anyhow!("label of car {n} without url: {label}"))?;
        let path = url
            .find("/device/")
            .map(|i| url[i..].to_owned())
            .ok_or_else(|| anyhow!("unexpected label url {url}"))?;
        out.push(path);
    }
    Ok(out)
}

/// `total` page requests cycling over `paths` on `connections`
/// connections: requests per second and the mean body size.
async fn pages(
    web: SocketAddr,
    tls: &TlsConnector,
    paths: &Arc<Vec<String>>,
    connections: usize,
    total: usize,
) -> Result<(f64, usize)> {
    let mut senders = Vec::with_capacity(connections);
    for _ in 0..connections.max(1) {
        senders.push(est::connect(web, tls).await?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for mut sender in senders {
        let (next, paths) = (Arc::clone(&next), Arc::clone(paths));
        workers.spawn(async move {
            let (mut n, mut bytes) = (0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                bytes += get(&mut sender, &paths[i % paths.len()]).await?;
                n += 1;
            }
            anyhow::Ok((n, bytes))
        });
    }
    let (mut n, mut bytes) = (0usize, 0usize);
    while let Some(r) = workers.join_next().await {
        let (a, b) = r.context("page worker failed")??;
        n += a;
        bytes += b;
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    Ok((n as f64 / elapsed.as_secs_f64(), bytes / n.max(1)))
}

/// Raises the public rate limit of the run's `web.toml` to its maximum.
fn unlimited(data: &std::path::Path) -> Result<()> {
    let file = data.join("policies/web.toml");
    let text = std::fs::read_to_string(&file).context("the run's web.toml")?;
    let raised = text.replace("requests_per_minute = 120", "requests_per_minute = 100000");
    if raised == text {
        bail!(
            "{}: no public requests_per_minute = 120 to raise",
            file.display()
        );
    }
    Ok(std::fs::write(&file, raised)?)
}

/// The figures: device pages uncached and cached beside plain Decide.
pub async fn measure(plan: &Plan) -> Result<Vec<Figure>> {
    crate::progress(&format!(
        "web: enrolling {} cars, serving the web front end",
        plan.cars
    ));
    let mut world = World::start_with(
        plan.cars,
        plan.threads,
        |opts| opts.web_listen = "127.0.0.1:0".parse().ok(),
        unlimited,
    )
    .await?;
    let web = world
        .web_addr()
        .ok_or_else(|| anyhow!("the web front end is not served"))?;
    let paths = Arc::new(label_paths(&world, web, plan.cars).await?);
    let tls = public_connector(&crate::fixture::root_pem(world.data.path())?)?;
    crate::progress(&format!("web: {} device pages, first render", paths.len()));
    let (uncached, size) = pages(web, &tls, &paths, plan.concurrency, paths.len()).await?;
    let decide_requests = Arc::new(decide::requests(&world.cars));
    let channel = world
        .house_channels(1)
        .await?
        .pop()
        .ok_or_else(|| anyhow!("no channel"))?;
    decide::decide_calls(
        &channel,
        &decide_requests,
        plan.concurrency,
        decide_requests.len(),
        0,
    )
    .await?;
    let (mut cached, mut decided) = (0f64, 0f64);
    for round in 1..=plan.rounds.max(1) {
        crate::progress(&format!(
            "web: round {round}, {} cached page requests and as many Decide calls",
            plan.requests
        ));
        let (rate, _) = pages(web, &tls, &paths, plan.concurrency, plan.requests).await?;
        cached = cached.max(rate);
        let out = decide::decide_calls(
            &channel,
            &decide_requests,
            plan.concurrency,
            plan.requests,
            0,
        )
        .await?;
        if out.errors > 0 {
            bail!("Decide failed: {}", out.error_note());
        }
        decided = decided.max(out.ok as f64 / out.elapsed.as_secs_f64());
    }
    drop(channel);
    world.stop().await?;
    let note = format!(
        "best of {} rounds alternating, {} requests each, {} connections / calls in flight; {} car device pages of ~{size} bytes",
        plan.rounds.max(1),
        plan.requests,
        plan.concurrency,
        paths.len()
    );
    Ok(vec![
        Figure::new(
            "web_device_page_uncached",
            "public device page, first render of each (HTTPS, HTTP/1.1)",
            uncached,
            "requests/s",
        )
        .note(format!(
            "{} distinct pages once each, {} connections",
            paths.len(),
            plan.concurrency
        )),
        Figure::new(
            "web_device_page_cached",
            "public device page from the page cache (HTTPS, HTTP/1.1)",
            cached,
            "requests/s",
        )
        .note(note),
        Figure::new(
            "web_decide_plain",
            "unary Decide in the same run (HEMS about the same cars)",
            decided,
            "calls/s",
        ),
        Figure::new(
            "web_page_share_of_decide",
            "cached device page requests/s as a share of Decide calls/s",
            100.0 * cached / decided.max(f64::MIN_POSITIVE),
            "%",
        ),
    ])
}
