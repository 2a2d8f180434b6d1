//! `trustca attestation-root add|list|remove`: the TPM manufacturer roots a
//! sector accepts EK certificates from (operator role; auditors list).
//! Each change is durable and audited by the server
//! (`attestation-root.added`, `attestation-root.removed`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::json;
use trustca_proto::v1 as pb;
use trustca_proto::v1::attestation_client::AttestationClient;

use crate::cli::{ClientArgs, print_json};

/// `trustca attestation-root ...`.
#[derive(Debug, Subcommand)]
pub enum AttestationRootAction {
    /// Register a TPM manufacturer root (PEM or DER) for a sector: EK
    /// certificates chaining to it are accepted at attested enrollment.
    Add {
        #[command(flatten)]
        client: ClientArgs,
        /// The sector, e.g. automotive.
        #[arg(long)]
        sector: String,
        /// The root CA certificate, PEM or DER.
        #[arg(long)]
        cert: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The roots registered for a sector (all your sectors without --sector).
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// The sector.
        #[arg(long)]
        sector: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a root by its SHA-256 fingerprint (from `list`).
    Remove {
        #[command(flatten)]
        client: ClientArgs,
        /// The sector.
        #[arg(long)]
        sector: String,
        /// The root's SHA-256 fingerprint, lower-case hex.
        #[arg(long)]
        sha256: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn root_json(r: &pb::AttestationRoot) -> serde_json::Value {
    json!({
        "sector": r.sector,
        "sha256": r.sha256,
        "subject": r.subject,
        "not_after": r.not_after,
        "added_by": r.added_by,
        "added_at": r.added_at,
    })
}

/// One changed root: JSON for scripts, a sentence for people.
fn print_change(r: &pb::AttestationRoot, json: bool, sentence: &str) {
    if json {
        print_json(&root_json(r));
    } else {
        println!("{sentence}");
    }
}

/// Reads a certificate file: PEM (`CERTIFICATE`) or DER.
fn read_cert(path: &PathBuf) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"-----BEGIN") {
        let p = pem::parse(&bytes).with_context(|| format!("{} is not PEM", path.display()))?;
        anyhow::ensure!(
            p.tag() == "CERTIFICATE",
            "{} holds a {}, not a CERTIFICATE",
            path.display(),
            p.tag()
        );
        Ok(p.into_contents())
    } else {
        Ok(bytes)
    }
}

fn refused(s: tonic::Status) -> anyhow::Error {
    crate::client::refused("refused", &s).into()
}

/// Runs `trustca attestation-root ...`.
pub async fn run(action: AttestationRootAction) -> Result<ExitCode> {
    match action {
        AttestationRootAction::Add {
            client,
            sector,
            cert,
            json,
        } => {
            let der = read_cert(&cert)?;
            let mut c = AttestationClient::new(client.channel().await?);
            let r = c
                .add_attestation_root(pb::AttestationRootRequest {
                    sector,
                    certificate_der: der,
                    sha256: String::new(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json {
                print_json(&root_json(&r));
            } else {
                println!(
                    "added attestation root {} to {}: {}",
                    r.sha256, r.sector, r.subject
                );
            }
        }
        AttestationRootAction::Remove {
            client,
            sector,
            sha256,
            json,
        } => {
            let mut c = AttestationClient::new(client.channel().await?);
            let r = c
                .remove_attestation_root(pb::AttestationRootRequest {
                    sector,
                    certificate_der: vec![],
                    sha256,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_change(
                &r,
                json,
                &format!("removed attestation root {} from {}", r.sha256, r.sector),
            );
        }
        AttestationRootAction::List {
            client,
            sector,
            json,
        } => {
            let mut c = AttestationClient::new(client.channel().await?);
            let r = c
                .list_attestation_roots(pb::ListAttestationRootsRequest {
                    sector: sector.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json {
                print_json(&json!(r.roots.iter().map(root_json).collect::<Vec<_>>()));
            } else {
                let mut t = comfy_table::Table::new();
                t.set_header(["sector", "sha256", "subject", "not after", "added by"]);
                for root in &r.roots {
                    t.add_row([
                        root.sector.as_str(),
                        root.sha256.as_str(),
                        root.subject.as_str(),
                        root.not_after.as_str(),
                        root.added_by.as_str(),
                    ]);
                }
                println!("{t}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
