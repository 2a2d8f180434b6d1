//! What every enrollment measurement needs, made before any clock starts: a
//! CA in a temporary data directory, a manufacturer credential ("Acme",
//! automotive), and one fresh P-256 key and PKCS#10 request per device.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use trustca_api::client::ClientCredentials;
use trustca_ca::{CaHierarchy, Passphrase};
use trustca_model::{CertificateKind, Credential, SectorName, credential_from_chain};
use trustca_proto::v1 as pb;

/// The sector every benchmark device belongs to.
pub const SECTOR: &str = "automotive";
/// The manufacturer named in the credential and in every request.
pub const MANUFACTURER: &str = "Acme";
/// The model of every benchmark device.
pub const MODEL: &str = "EV-200";
/// The firmware of every benchmark device.
pub const FIRMWARE: &str = "1.0.0";

/// The CA key passphrase of benchmark data directories.
pub fn passphrase() -> Result<Passphrase> {
    Ok(Passphrase::new(b"bench-passphrase".to_vec())?)
}

/// A manufacturer's credential as the client and the engine see it.
#[derive(Debug, Clone)]
pub struct Manufacturer {
    /// For the mutual-TLS client.
    pub client: ClientCredentials,
    /// As the server derives it from the certificate (for in-process runs).
    pub credential: Credential,
}

/// Creates a CA in `data` and issues the Acme manufacturer credential
/// (recorded by the server when it starts).
pub fn init_ca(data: &Path) -> Result<Manufacturer> {
    init_ca_for(data, &[SECTOR])
}

/// Creates a CA in `data` and issues the Acme manufacturer credential for
/// `sectors`.
pub fn init_ca_for(data: &Path, sectors: &[&str]) -> Result<Manufacturer> {
    let pass = passphrase()?;
    trustca_server::init(data, None, &pass, &[]).context("CA init")?;
    let client = credential(data, CertificateKind::Manufacturer, MANUFACTURER, sectors)?;
    let chain: Vec<Vec<u8>> = pem::parse_many(&client.cert_pem)
        .context("credential chain is not PEM")?
        .into_iter()
        .map(pem::Pem::into_contents)
        .collect();
    let [leaf, issuer, ..] = chain.as_slice() else {
        bail!("credential chain has fewer than two certificates")
    };
    let credential = credential_from_chain(leaf, issuer, &Default::default())?;
    Ok(Manufacturer { client, credential })
}

/// Issues a role credential from the CA in `data` (as `trustca manufacturer
/// add` does); the server records it when it starts.
pub fn credential(
    data: &Path,
    kind: CertificateKind,
    name: &str,
    sectors: &[&str],
) -> Result<ClientCredentials> {
    let pass = passphrase()?;
    let (_, policy_set) = trustca_server::policies::resolve(None, Some(data))?;
    let hierarchy = CaHierarchy::open(data, &policy_set, &pass).context("open the CA")?;
    let sectors = sectors
        .iter()
        .map(|s| SectorName::new(s))
        .collect::<Result<Vec<_>, _>>()?;
    let issued = hierarchy
        .issue_credential(&policy_set, kind, name, &sectors, &[])
        .context("issue a credential")?;
    Ok(ClientCredentials {
        cert_pem: issued.chain_pem,
        key_pem: issued.key_pem,
        root_pem: root_pem(data)?,
    })
}

/// The root certificate of the CA in `data`, PEM.
pub fn root_pem(data: &Path) -> Result<String> {
    let path = data.join("ca").join("root.pem");
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// One device to enroll: its request in both encodings and its serial.
#[derive(Debug, Clone)]
pub struct Device {
    /// PKCS#10, DER (for trustca).
    pub csr_der: Vec<u8>,
    /// PKCS#10, PEM (for cfssl).
    pub csr_pem: String,
    /// Device serial, unique in a run.
    pub serial: String,
}

impl Device {
    /// The gRPC enrollment request of this device (no evidence: level 1).
    pub fn request(&self) -> pb::EnrollRequest {
        pb::EnrollRequest {
            csr_der: self.csr_der.clone(),
            device: Some(pb::DeviceAttributes {
                sector: SECTOR.into(),
                manufacturer: MANUFACTURER.into(),
                model: MODEL.into(),
                serial: self.serial.clone(),
                firmware_version: FIRMWARE.into(),
            }),
            evidence: vec![],
            renewal: false,
            tpm_attestation: None,
        }
    }

    /// The same request for the in-process engine.
    pub fn engine_request(&self) -> trustca_ca::EnrollmentRequest {
        trustca_ca::EnrollmentRequest {
            csr_der: self.csr_der.clone(),
            device: trustca_ca::DeviceAttributes {
                sector: SECTOR.into(),
                manufacturer: MANUFACTURER.into(),
                model: MODEL.into(),
                serial: self.serial.clone(),
                firmware_version: FIRMWARE.into(),
            },
            evidence: vec![],
            renewal: false,
            require_registered_model: false,
            tpm_attestation: None,
        }
    }
}

fn make_device(n: usize) -> Result<Device> {
    let key = KeyPair::generate()?;
    let serial = format!("SN{n}");
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, serial.as_str());
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key)?;
    Ok(Device {
        csr_der: csr.der().to_vec(),
        csr_pem: csr.pem()?,
        serial,
    })
}

/// `count` devices with serials `SN<first>`.., generated on `threads` threads.
pub fn devices(first: usize, count: usize, threads: usize) -> Result<Vec<Device>> {
    let threads = threads.max(1);
    let per = count.div_ceil(threads).max(1);
    let handles: Vec<_> = (0..count)
        .step_by(per)
        .map(|start| {
            let end = (start + per).min(count);
            std::thread::spawn(move || {
                (start..end)
                    .map(|i| make_device(first + i))
                    .collect::<Result<Vec<_>>>()
            })
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    for h in handles {
        out.extend(h.join().map_err(|_| anyhow!("CSR generator panicked"))??);
    }
    Ok(out)
}

/// Splits `devices` into consecutive parts of the given sizes.
pub fn split(devices: Vec<Device>, sizes: &[usize]) -> Result<Vec<Arc<Vec<Device>>>> {
    let mut rest = devices.into_iter();
    let mut parts = Vec::new();
    for &n in sizes {
        let part: Vec<Device> = rest.by_ref().take(n).collect();
        if part.len() != n {
            bail!("not enough devices generated");
        }
        parts.push(Arc::new(part));
    }
    Ok(parts)
}

/// A certification body for ISO/SAE 21434 in automotive, issued from the
/// CA in `data` (certification bodies carry their schemes).
pub fn certification_body(data: &Path) -> Result<ClientCredentials> {
    let (_, set) = trustca_server::policies::resolve(None, Some(data))?;
    let hierarchy = CaHierarchy::open(data, &set, &passphrase()?).context("open the CA")?;
    let issued = hierarchy.issue_credential(
        &set,
        CertificateKind::CertificationBody,
        "TUV",
        &[SectorName::new(SECTOR)?],
        &["iso-sae-21434".to_owned()],
    )?;
    Ok(ClientCredentials {
        cert_pem: issued.chain_pem,
        key_pem: issued.key_pem,
        root_pem: root_pem(data)?,
    })
}

/// Registers the automotive `model` of [`MANUFACTURER`] (firmware
/// [`FIRMWARE`] on) with a declared secure element, secure update and ten
/// years of support, and has `body` add an ISO/SAE 21434 `result`
/// evaluation numbered `number` (CAL3: Lv.4, CAL4: Lv.5). A declared
/// hardware root of trust counts up to Lv.3 only in automotive; a
/// registered, evaluated model is what earns more without attestation.
pub async fn register_certified_model(
    url: &str,
    manufacturer: &ClientCredentials,
    body: &ClientCredentials,
    model: &str,
    result: &str,
    number: &str,
) -> Result<Option<pb::ModelSelector>> {
    let registry = |creds: &ClientCredentials| {
        let creds = creds.clone();
        let url = url.to_owned();
        async move {
            anyhow::Ok(pb::model_registry_client::ModelRegistryClient::new(
                trustca_api::client::connect(&url, &creds).await?,
            ))
        }
    };
    let selector = Some(pb::ModelSelector {
        sector: SECTOR.into(),
        manufacturer: MANUFACTURER.into(),
        model: model.into(),
        firmware: format!("{FIRMWARE}.."),
    });
    let declared = |kind: &str, value: &str| pb::EvidenceItem {
        r#type: kind.into(),
        value: value.into(),
        ..Default::default()
    };
    let today = time::OffsetDateTime::now_utc().date();
    let soon = today + time::Duration::days(3650);
    registry(manufacturer)
        .await?
        .register_model(pb::RegisterModelRequest {
            model: selector.clone(),
            declared: vec![
                declared("hardware-root-of-trust", "secure-element"),
                declared("secure-update", "true"),
                declared("supported-until", &soon.to_string()),
            ],
            self_assessed: vec![],
            reason: "bench".into(),
        })
        .await
        .context("register the model")?;
    registry(body)
        .await?
        .add_evaluation(pb::AddEvaluationRequest {
            model: selector.clone(),
            evaluation: Some(pb::ModelEvaluationInput {
                scheme: "iso-sae-21434".into(),
                result: result.into(),
                certificate_number: number.into(),
                evaluated_at: (today - time::Duration::days(1)).to_string(),
                valid_until: (today + time::Duration::days(700)).to_string(),
            }),
            reason: "bench".into(),
        })
        .await
        .context("evaluate the model")?;
    Ok(selector)
}
