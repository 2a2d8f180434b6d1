//! `trustca enroll`: enrolls one device with a manufacturer credential.
//! Nothing is sent before the files can be written: the certificate's
//! place is reserved (a temporary file beside `--out`) and a generated key
//! is on disk first, so an enrolled device never loses its key or
//! certificate to a bad path (a retry would be refused as a duplicate).
//! The certificate is written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::json;
use trustca_proto::v1 as pb;

use crate::cli::{ClientArgs, generate_key_and_csr, print_json, read_evidence, write_private};
use crate::client::{ClientCredentials, connect};

#[derive(Debug, Args)]
pub struct EnrollArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Device sector.
    #[arg(long)]
    sector: String,
    /// Manufacturer (must match your credential).
    #[arg(long)]
    manufacturer: String,
    /// Model.
    #[arg(long)]
    model: String,
    /// Serial number.
    #[arg(long)]
    serial: String,
    /// Firmware version.
    #[arg(long)]
    firmware: String,
    /// Evidence file (TOML or JSON list of {type, scheme, value, evaluated_at}).
    #[arg(long)]
    evidence: Option<PathBuf>,
    /// Use this CSR (PEM or DER); the key stays where it is.
    #[arg(
        long,
        conflicts_with = "generate_key",
        required_unless_present = "generate_key"
    )]
    csr: Option<PathBuf>,
    /// Generate the device key here (PEM, mode 0600) and a CSR for it.
    #[arg(long, value_name = "KEYOUT")]
    generate_key: Option<PathBuf>,
    /// Key algorithm for --generate-key.
    #[arg(long, default_value = "ecdsa-p256", value_parser = ["ecdsa-p256", "ecdsa-p384", "ed25519"])]
    key_algorithm: String,
    /// Renew an already enrolled identity (e.g. after a firmware update).
    #[arg(long)]
    renew: bool,
    /// Where to write the certificate chain (PEM, leaf first).
    #[arg(long)]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Reads a CSR, PEM or DER.
fn read_csr(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.first() == Some(&0x30) {
        return Ok(bytes);
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: neither PEM nor DER", path.display()))?;
    let p = pem::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            path.display(),
            crate::certinfo::pem_error_words(&e)
        )
    })?;
    if p.tag() != "CERTIFICATE REQUEST" && p.tag() != "NEW CERTIFICATE REQUEST" {
        bail!(
            "{}: expected a CERTIFICATE REQUEST, found {}",
            path.display(),
            p.tag()
        );
    }
    Ok(p.into_contents())
}

/// The certificate's reserved place: a temporary file beside `out`,
/// created before anything is sent, renamed over `out` at the end.
struct Reserved {
    tmp: PathBuf,
    out: PathBuf,
    file: std::fs::File,
}

impl Reserved {
    fn new(out: &Path) -> Result<Self> {
        if out.exists() {
            bail!("{} exists; refusing to overwrite it", out.display());
        }
        let name = out
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("--out {} names no file", out.display()))?;
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let tmp = dir.join(format!(".{name}.partial"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| {
                format!(
                    "cannot write the certificate to {} (cannot create {}); nothing was enrolled",
                    out.display(),
                    tmp.display()
                )
            })?;
        Ok(Self {
            tmp,
            out: out.to_path_buf(),
            file,
        })
    }

    /// Writes, syncs and renames into place.
    fn commit(mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .and_then(|()| self.file.sync_all())
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.out).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.out.display()
            )
        })
    }

    fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Whether a failed call may still have enrolled the device (the answer
/// was lost): then a generated key must be kept.
fn maybe_enrolled(s: &tonic::Status) -> bool {
    use tonic::Code as K;
    matches!(
        s.code(),
        K::Unknown | K::Cancelled | K::DeadlineExceeded | K::Unavailable | K::Internal
    )
}

/// Runs `trustca enroll`.
pub async fn run(a: EnrollArgs) -> Result<ExitCode> {
    let creds = ClientCredentials::load(&a.client.identity, &a.client.key, &a.client.ca)?;
    let evidence = match &a.evidence {
        Some(p) => read_evidence(p)?,
        None => vec![],
    };
    let csr_der = match &a.csr {
        Some(p) => Some(read_csr(p)?),
        None => None,
    };
    let reserved = Reserved::new(&a.out)?;
    let (csr_der, new_key) = match (csr_der, &a.generate_key) {
        (Some(csr), _) => (csr, None),
        (None, Some(keyout)) => {
            let (key_pem, csr) = generate_key_and_csr(&a.key_algorithm, &a.serial)?;
            if let Err(e) = write_private(keyout, key_pem.as_bytes()) {
                reserved.abandon();
                return Err(e.context("nothing was enrolled"));
            }
            (csr, Some(keyout.clone()))
        }
        (None, None) => {
            reserved.abandon();
            bail!("give --csr FILE or --generate-key KEYOUT")
        }
    };
    // Undoes what was written for a device the server did not enroll.
    let undo = |reserved: Reserved, keep_key: bool| {
        reserved.abandon();
        if let Some(k) = &new_key {
            if keep_key {
                eprintln!(
                    "the device may have been enrolled: its key is kept in {}",
                    k.display()
                );
            } else {
                let _ = std::fs::remove_file(k);
            }
        }
    };
    let channel = match connect(&a.client.server, &creds).await {
        Ok(c) => c,
        Err(e) => {
            undo(reserved, false);
            return Err(e.into());
        }
    };
    let mut client = pb::enrollment_client::EnrollmentClient::new(channel);
    let request = pb::EnrollRequest {
        csr_der,
        device: Some(pb::DeviceAttributes {
            sector: a.sector.clone(),
            manufacturer: a.manufacturer.clone(),
            model: a.model.clone(),
            serial: a.serial.clone(),
            firmware_version: a.firmware.clone(),
        }),
        evidence: evidence
            .into_iter()
            .map(|e| pb::EvidenceItem {
                r#type: e.kind.as_str().to_owned(),
                scheme: e.scheme,
                value: e.value,
                evaluated_at: e.evaluated_at,
            })
            .collect(),
        renewal: a.renew,
        tpm_attestation: None,
    };
    let resp = match client.enroll(request).await {
        Ok(r) => r.into_inner(),
        Err(s) => {
            undo(reserved, maybe_enrolled(&s));
            return Err(crate::client::refused("enrollment refused", &s).into());
        }
    };
    let chain: Vec<&[u8]> = resp.chain_der.iter().map(|d| d.as_slice()).collect();
    reserved.commit(trustca_ca::certs_to_pem(&chain).as_bytes())?;
    if a.json {
        print_json(&json!({
            "identity": resp.identity,
            "serial": resp.serial,
            "level": resp.level,
            "not_after": resp.not_after,
            "policy_version": resp.policy_version,
            "certificate": a.out,
        }));
    } else {
        println!(
            "enrolled {} at Lv.{} (policy {})",
            resp.identity, resp.level, resp.policy_version
        );
        println!("  serial    {}", resp.serial);
        println!("  valid to  {}", resp.not_after);
        println!("  chain     {}", a.out.display());
    }
    Ok(ExitCode::SUCCESS)
}
