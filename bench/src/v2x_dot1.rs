//! A vehicle-year through the IEEE 1609.2.1 HTTPS interface: a real server
//! on loopback with its V2X authorities in-process, a car enrolled at the
//! CA (X.509) and at the ECA (`POST /v2x/eca/enrolment-certificate`, not
//! timed: once per vehicle), then, timed: the certificate chain, one
//! `EeRaCertRequestSpdu` for 52 weekly periods, 52 downloads (one
//! `Download-Req` each) and every response opened (ACA signature checked,
//! decrypted, key derived and checked): the same work as the gRPC
//! vehicle-year plus the standard's signatures and encryptions.

use std::time::Instant;

use anyhow::{Context, Result, anyhow, ensure};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use trustca_pseudonym::Caterpillar;
use trustca_scms::{BatchPolicy, TicketOpener, ee_requests};
use trustca_v2x::{CertProfile, Certificate, Duration as V2xDuration, Time32, ValidityPeriod};

use crate::report::Figure;

/// The PSIDs a car asks tickets for (CAM, DENM in the shipped profile).
const TICKET_PSIDS: [u64; 2] = [36, 37];
const YEAR_PERIODS: u64 = 52;
const PERIOD_HOURS: u16 = 168;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn send(
    sender: &mut crate::est::Sender,
    request: hyper::Request<Full<Bytes>>,
) -> Result<Bytes> {
    let what = format!("{} {}", request.method(), request.uri());
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    ensure!(
        status.is_success(),
        "{what}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

fn post(path: &str, body: Vec<u8>) -> Result<hyper::Request<Full<Bytes>>> {
    Ok(hyper::Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/octet-stream")
        .body(Full::new(Bytes::from(body)))?)
}

fn get(path: &str) -> Result<hyper::Request<Full<Bytes>>> {
    Ok(hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))?)
}

/// The certificates of `GET /v2x/certificates`: root, ECA, ACA, RA, CRL signer.
fn chain(bytes: &[u8]) -> Result<Vec<Certificate>> {
    let certs = trustca_v2x::certificates_from_coer(bytes)?;
    ensure!(certs.len() == 5, "a chain of {}", certs.len());
    Ok(certs)
}

/// Vehicle-years through the 1609.2.1 interface (median of `repeats`).
pub async fn year_over_dot1(repeats: usize) -> Result<Vec<Figure>> {
    use trustca_proto::v1 as pb;
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let manufacturer = crate::fixture::init_ca_for(data, &["automotive"])?;
    let tuv = crate::fixture::certification_body(data)?;
    let mut opts = trustca_server::ServeOptions::new(
        data.to_path_buf(),
        "127.0.0.1:0".parse()?,
        crate::fixture::passphrase()?,
    );
    opts.v2x_batch = BatchPolicy {
        min_vehicles: 1,
        max_wait_secs: 0,
        max_requests_per_batch: 20_000,
    };
    opts.est_listen = Some("127.0.0.1:0".parse()?);
    let server = trustca_server::start(opts).await?;
    let https = server.est_addr.ok_or_else(|| anyhow!("no HTTPS port"))?;
    let url = format!("https://{}", server.addr);
    crate::v2x::register_vehicle_model(&url, &manufacturer.client, &tuv).await?;
    let mut enroll = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(&url, &manufacturer.client).await?,
    );
    let root = Certificate::from_coer_in(
        CertProfile::Ieee1609Dot2,
        &std::fs::read(data.join("ca/v2x-root.oer"))?,
    )?;
    let mut totals = Vec::new();
    for run in 0..=repeats.max(1) {
        let creds =
            crate::v2x::enroll_vehicle(&mut enroll, data, &format!("V2X-DOT1-{run}")).await?;
        let mut sender = crate::est::connect(https, &crate::est::tls_connector(&creds)?).await?;
        // Enrolment at the ECA (once per vehicle: not timed).
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("key generation"))?;
        let ec_key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .map_err(|_| anyhow!("key"))?;
        let validity = ValidityPeriod {
            start: Time32::from_unix(now())?,
            duration: V2xDuration::Years(1),
        };
        let request = ee_requests::enrolment_request(&ec_key, &TICKET_PSIDS, validity, now())?;
        let answer = send(
            &mut sender,
            post("/v2x/eca/enrolment-certificate", request.clone())?,
        )
        .await?;
        let certs = chain(&send(&mut sender, get("/v2x/certificates")?).await?)?;
        let (eca, aca, ra) = (&certs[1], &certs[2], &certs[3]);
        let ec = ee_requests::open_enrolment_response(&answer, &request, &ec_key, eca, &root)?;

        let started = Instant::now();
        let certs = chain(&send(&mut sender, get("/v2x/certificates")?).await?)?;
        ensure!(certs[3] == *ra, "the RA certificate changed");
        let cat = Caterpillar::generate()?;
        // From now over 51 periods and an hour: the current period and 51
        // more (the RA counts every period the span touches).
        let span = ValidityPeriod {
            start: Time32::from_unix(now())?,
            duration: V2xDuration::Hours(PERIOD_HOURS * (YEAR_PERIODS as u16 - 1) + 1),
        };
        let (body, hash) = ee_requests::ticket_request(
            &cat.request(),
            &TICKET_PSIDS,
            span,
            (&ec, &ec_key),
            ra,
            now(),
        )?;
        let ack = send(
            &mut sender,
            post("/v2x/provision-pseudonym-certificate-batch", body)?,
        )
        .await?;
        let ack = ee_requests::open_ack(&ack, ra, hash)?;
        let first = u64::from(ack.first_i.context("no firstI")?);
        let mut responses = Vec::new();
        for i in first..first + YEAR_PERIODS {
            let dl = ee_requests::download_request(hash, i, (&ec, &ec_key), ra, now())?;
            let header = base64::engine::general_purpose::STANDARD.encode(dl);
            let request = hyper::Request::get("/v2x/download")
                .header("host", "127.0.0.1")
                .header("download-req", header)
                .body(Full::new(Bytes::new()))?;
            let zip = send(&mut sender, request).await?;
            responses.extend(
                trustca_api::v2x_http::stored_zip::entries(&zip)?
                    .into_iter()
                    .map(|(_, r)| r),
            );
        }
        let per_period = responses.len() as u32 / YEAR_PERIODS as u32;
        let opener = TicketOpener::new(&cat, aca, first, YEAR_PERIODS as u32, per_period)?;
        let pool = opener
            .open_all(&responses)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let took = started.elapsed().as_secs_f64();
        ensure!(
            pool.len() == responses.len() && pool.len() == 1040,
            "opened {} of {}",
            pool.len(),
            responses.len()
        );
        if run > 0 {
            totals.push(took);
        }
    }
    server.shutdown().await?;
    let n = totals.len();
    let mut sorted = totals.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[n / 2];
    Ok(vec![
        Figure::new(
            "v2x_year_dot1_ms",
            "vehicle-year through IEEE 1609.2.1 over HTTPS (certificates, 1 request of 52 periods, 52 downloads, 1 040 responses opened)",
            median * 1e3,
            "ms",
        )
        .aim(true, 150.0)
        .note(format!(
            "median of {n}; min {:.1}, max {:.1} ms; a real server with the authorities in-process, one keep-alive HTTP/1.1 connection",
            sorted[0] * 1e3,
            sorted[n - 1] * 1e3
        )),
    ])
}
