//! The vehicle-year over mutual TLS through real servers: the V2X
//! authorities in the CA's process, or separated as operators run them;
//! and the vehicle's enrollment and model registration the 1609.2.1
//! stage reuses.

use super::*;

/// The vehicle-year over mutual TLS through a real server (`trustca serve`
/// with its four V2X authorities in-process, each on its own sled store):
/// `GetTicketProfile` + `RequestTickets` (RA: linkage authorities,
/// expansion, then the batch to the pseudonym CA at once, as
/// `--v2x-min-vehicles 1`) + `DownloadTickets` + opening all 1,040 on the
/// vehicle. Median of `repeats`, each with a fresh vehicle.
pub async fn year_over_mtls(repeats: usize) -> Result<Vec<Figure>> {
    let mut figures = year_over(repeats, false).await?;
    figures.extend(year_over(repeats, true).await?);
    Ok(figures)
}

/// The V2X authorities of [`year_over`]: in the CA's process, or four
/// `serve --role` servers set up as operators do (`init --role`,
/// `certify`, `import`, `export`), the RA reaching the others over mTLS.
struct YearServers {
    ca: trustca_server::RunningServer,
    roles: Vec<trustca_server::RunningServer>,
    ra_url: String,
}

async fn year_servers(data: &std::path::Path, separated: bool) -> Result<YearServers> {
    use trustca_server::v2x::{RemoteAuthorities, V2xRole};
    let batch = BatchPolicy {
        min_vehicles: 1,
        max_wait_secs: 0,
        max_requests_per_batch: 20_000,
    };
    let serve = |dir: &std::path::Path,
                 pass: trustca_ca::Passphrase|
     -> Result<trustca_server::ServeOptions> {
        let mut opts =
            trustca_server::ServeOptions::new(dir.to_path_buf(), "127.0.0.1:0".parse()?, pass);
        opts.v2x_batch = batch;
        Ok(opts)
    };
    if !separated {
        let ca = trustca_server::start(serve(data, crate::fixture::passphrase()?)?).await?;
        let ra_url = format!("https://{}", ca.addr);
        return Ok(YearServers {
            ca,
            roles: Vec::new(),
            ra_url,
        });
    }
    let role_pass = |r: V2xRole| {
        trustca_ca::Passphrase::new(format!("bench-{}-passphrase", r.as_str()).into_bytes())
            .unwrap_or_else(|_| unreachable!("a passphrase of more than 8 bytes"))
    };
    let dirs = trustca_server::v2x_role::provision_on_one_machine(
        data,
        &crate::fixture::passphrase()?,
        &data.join("authorities"),
        &role_pass,
        &["127.0.0.1".to_owned()],
    )?;
    let mut ca_opts = serve(data, crate::fixture::passphrase()?)?;
    ca_opts.v2x_in_process = false;
    let ca = trustca_server::start(ca_opts).await?;
    let mut roles = Vec::new();
    let mut urls = std::collections::HashMap::new();
    for dir in dirs.iter().filter(|d| d.role() != V2xRole::Registration) {
        let mut opts = serve(dir.path(), role_pass(dir.role()))?;
        opts.role = Some(dir.role());
        let server = trustca_server::start(opts).await?;
        urls.insert(dir.role().as_str(), format!("https://{}", server.addr));
        roles.push(server);
    }
    let url = |r: V2xRole| urls.get(r.as_str()).cloned().unwrap_or_default();
    let ra_dir = dirs
        .iter()
        .find(|d| d.role() == V2xRole::Registration)
        .ok_or_else(|| anyhow!("no registration authority"))?;
    let mut opts = serve(ra_dir.path(), role_pass(V2xRole::Registration))?;
    opts.role = Some(V2xRole::Registration);
    opts.v2x_remote = Some(RemoteAuthorities {
        pseudonym_ca: url(V2xRole::PseudonymCa),
        linkage: [url(V2xRole::Linkage1), url(V2xRole::Linkage2)],
    });
    let ra = trustca_server::start(opts).await?;
    let ra_url = format!("https://{}", ra.addr);
    roles.push(ra);
    Ok(YearServers { ca, roles, ra_url })
}

/// One deployment's vehicle-year (see [`year_over_mtls`]).
async fn year_over(repeats: usize, separated: bool) -> Result<Vec<Figure>> {
    use trustca_proto::v1 as pb;
    let dir = tempfile::tempdir()?;
    let data = dir.path();
    let manufacturer = crate::fixture::init_ca_for(data, &["automotive"])?;
    let tuv = crate::fixture::certification_body(data)?;
    let servers = year_servers(data, separated).await?;
    let url = format!("https://{}", servers.ca.addr);
    register_vehicle_model(&url, &manufacturer.client, &tuv).await?;
    let mut enroll = pb::enrollment_client::EnrollmentClient::new(
        trustca_api::client::connect(&url, &manufacturer.client).await?,
    );
    let mut totals = Vec::new();
    for run in 0..=repeats.max(1) {
        // A vehicle of the registered Lv.5 model (run 0 is a warm-up).
        let creds = enroll_vehicle(&mut enroll, data, &format!("V2X-YEAR-{run}")).await?;
        let cat = Caterpillar::generate()?;
        let started = Instant::now();
        let mut ra = pb::v2x_registration_client::V2xRegistrationClient::new(
            trustca_api::client::connect(&servers.ra_url, &creds).await?,
        )
        .max_decoding_message_size(64 * 1024 * 1024);
        let profile = ra
            .get_ticket_profile(pb::GetTicketProfileRequest {})
            .await?
            .into_inner();
        let queued = ra
            .request_tickets(pb::RequestTicketsRequest {
                butterfly_request: cat.request().to_bytes().to_vec(),
                first_period: 0,
                has_first_period: false,
                periods: YEAR_PERIODS,
            })
            .await;
        let queued = match queued {
            Ok(q) => q.into_inner(),
            Err(s) => return Err(anyhow!("RequestTickets refused: {s}")),
        };
        let responses = ra
            .download_tickets(pb::DownloadTicketsRequest {})
            .await?
            .into_inner()
            .responses;
        ensure!(
            responses.len() as u32 == queued.queued,
            "{} of {} downloaded",
            responses.len(),
            queued.queued
        );
        let pca = Certificate::from_coer_in(
            CertProfile::Ieee1609Dot2,
            &profile.pseudonym_ca_certificate,
        )?;
        let opener = TicketOpener::new(
            &cat,
            &pca,
            profile.current_period,
            YEAR_PERIODS,
            profile.certificates_per_period,
        )?;
        let pool = opener
            .open_all(&responses)
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let took = started.elapsed().as_secs_f64();
        ensure!(pool.len() == responses.len(), "opened {}", pool.len());
        if run > 0 {
            totals.push(took);
        }
    }
    for role in servers.roles {
        role.shutdown().await?;
    }
    servers.ca.shutdown().await?;
    let n = totals.len();
    let total = median(totals.clone());
    let (key, what, how) = if separated {
        (
            "v2x_year_separated_ms",
            "vehicle-year, separated authorities (RA, PCA, LA1, LA2 as four serve --role servers over mTLS)",
            "four serve --role servers on loopback, each from its own directory and keys, the RA calling the PCA and LAs over mTLS",
        )
    } else {
        (
            "v2x_year_mtls_ms",
            "vehicle-year over mTLS (serve, RA → PCA → RA → vehicle, 52 × 20)",
            "a real server with its V2X authorities in-process on separate sled stores",
        )
    };
    Ok(vec![
        Figure::new(key, what, total * 1e3, "ms")
            .aim(true, 150.0)
            .note(format!(
                "median of {n}; min {:.1}, max {:.1} ms; {how}",
                totals.iter().copied().fold(f64::INFINITY, f64::min) * 1e3,
                totals.iter().copied().fold(0.0, f64::max) * 1e3
            )),
    ])
}

/// Enrolls one car (serial `serial`) at the CA with a fresh key; its
/// X.509 credentials.
pub(crate) async fn enroll_vehicle(
    enroll: &mut trustca_proto::v1::enrollment_client::EnrollmentClient<tonic::transport::Channel>,
    data: &std::path::Path,
    serial: &str,
) -> Result<trustca_api::client::ClientCredentials> {
    use trustca_proto::v1 as pb;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())?
        .serialize_request(&key)?
        .der()
        .to_vec();
    let resp = enroll
        .enroll(pb::EnrollRequest {
            csr_der: csr,
            device: Some(pb::DeviceAttributes {
                sector: "automotive".into(),
                manufacturer: crate::fixture::MANUFACTURER.into(),
                model: crate::fixture::MODEL.into(),
                serial: serial.into(),
                firmware_version: crate::fixture::FIRMWARE.into(),
            }),
            evidence: vec![],
            renewal: false,
            tpm_attestation: None,
        })
        .await?
        .into_inner();
    Ok(trustca_api::client::ClientCredentials {
        cert_pem: resp
            .chain_der
            .iter()
            .map(|d| pem::encode(&pem::Pem::new("CERTIFICATE", d.clone())))
            .collect(),
        key_pem: key.serialize_pem(),
        root_pem: crate::fixture::root_pem(data)?,
    })
}

/// Registers the vehicles' model with a certification body's evaluation:
/// Lv.5 (a secure element declared per device counts up to Lv.3 in
/// automotive; the tickets' permissions follow the level).
pub(crate) async fn register_vehicle_model(
    url: &str,
    manufacturer: &trustca_api::client::ClientCredentials,
    body: &trustca_api::client::ClientCredentials,
) -> Result<()> {
    crate::fixture::register_certified_model(
        url,
        manufacturer,
        body,
        crate::fixture::MODEL,
        "CAL4",
        "B-V2X",
    )
    .await?;
    Ok(())
}
