//! The world every `Decide` measurement runs in: a CA with a running
//! server, a HEMS device as the caller and enrolled cars as the peers.

use super::*;

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
