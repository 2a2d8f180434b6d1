//! `trustca v2x ...`: the operator's side of the separated V2X authorities
//! over gRPC. `revoke` revokes a vehicle's authorization tickets from a
//! period on (both linkage authorities release their seeds; the pseudonym
//! CA signs a new linkage CRL); `resolve` names the vehicle behind a ticket
//! with all four authorities, each step audited under the case reference.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Subcommand;
use serde_json::json;
use trustca_proto::v1 as pb;
use trustca_proto::v1::v2x_linkage_client::V2xLinkageClient;
use trustca_proto::v1::v2x_pseudonym_ca_client::V2xPseudonymCaClient;
use trustca_proto::v1::v2x_registration_client::V2xRegistrationClient;
use trustca_scms::LinkageCrl;

use crate::cli::{ClientArgs, print_json};
use crate::client::{ClientCredentials, connect};

#[derive(Debug, Subcommand)]
pub enum V2xAction {
    /// Operator: revoke a vehicle's authorization tickets from a period on.
    /// Its tickets of that period and later match the new linkage CRL;
    /// earlier ones stay unlinkable. `--server` is the registration
    /// authority.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        /// The vehicle (its identity, urn:trustca:...).
        #[arg(long)]
        vehicle: String,
        /// The first revoked period (`pseudonym status` and the ticket
        /// profile show the current one).
        #[arg(long)]
        from_period: u64,
        /// Also write the new linkage CRL here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Misbehaviour authority (operator credential): name the vehicle behind
    /// an authorization ticket. Asks the pseudonym CA for the ticket's two
    /// chain envelopes, each linkage authority to open its own, and the
    /// registration authority (`--server`) for the vehicle owning both
    /// chains; every step is audited with `--case`.
    Resolve {
        #[command(flatten)]
        client: ClientArgs,
        /// The ticket (IEEE 1609.2, COER), e.g. from a misbehaviour report.
        ticket: PathBuf,
        /// The case reference written in each authority's audit log.
        #[arg(long)]
        case: String,
        /// The pseudonym CA (default: --server, for one-process deployments).
        #[arg(long = "pseudonym-ca")]
        pseudonym_ca: Option<String>,
        /// Linkage authority 1 (default: --server).
        #[arg(long = "linkage-1")]
        linkage_1: Option<String>,
        /// Linkage authority 2 (default: --server).
        #[arg(long = "linkage-2")]
        linkage_2: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn creds(c: &ClientArgs) -> Result<ClientCredentials> {
    ClientCredentials::load(&c.identity, &c.key, &c.ca)
}

fn refused(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow!("{what} refused ({:?}): {}", s.code(), s.message())
}

/// Runs a `v2x` subcommand.
pub async fn run(action: V2xAction) -> Result<ExitCode> {
    match action {
        V2xAction::Revoke {
            client,
            vehicle,
            from_period,
            out,
            json,
        } => {
            let mut ra = V2xRegistrationClient::new(client.channel().await?);
            let bytes = ra
                .revoke_vehicle(pb::RevokeVehicleRequest {
                    vehicle: vehicle.clone(),
                    from_period,
                })
                .await
                .map_err(|s| refused("the registration authority", s))?
                .into_inner()
                .crl;
            let crl = LinkageCrl::from_bytes(&bytes).context("the linkage CRL returned")?;
            if let Some(path) = &out {
                std::fs::write(path, &bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            if json {
                print_json(&json!({
                    "vehicle": vehicle,
                    "from_period": from_period,
                    "crl_number": crl.crl_number,
                    "entries": crl.entries.len(),
                    "out": out,
                }));
            } else {
                println!(
                    "revoked {vehicle} from period {from_period}: linkage CRL number {} now lists {} vehicle(s)",
                    crl.crl_number,
                    crl.entries.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        V2xAction::Resolve {
            client,
            ticket,
            case,
            pseudonym_ca,
            linkage_1,
            linkage_2,
            json,
        } => {
            let bytes = std::fs::read(&ticket)
                .with_context(|| format!("cannot read {}", ticket.display()))?;
            let creds = creds(&client)?;
            let url = |o: &Option<String>| o.clone().unwrap_or_else(|| client.server.clone());
            let mut pca = V2xPseudonymCaClient::new(connect(&url(&pseudonym_ca), &creds).await?);
            let env = pca
                .resolution_envelopes(pb::ResolutionEnvelopesRequest {
                    ticket: bytes,
                    case_reference: case.clone(),
                })
                .await
                .map_err(|s| refused("the pseudonym CA", s))?
                .into_inner();
            let mut chains = Vec::with_capacity(2);
            for (la_id, (envelope, server)) in [(env.first, &linkage_1), (env.second, &linkage_2)]
                .into_iter()
                .enumerate()
            {
                let mut la = V2xLinkageClient::new(connect(&url(server), &creds).await?);
                chains.push(
                    la.open_envelope(pb::OpenEnvelopeRequest {
                        envelope,
                        case_reference: case.clone(),
                        la_id: la_id as u32 + 1,
                    })
                    .await
                    .map_err(|s| refused(&format!("linkage authority {}", la_id + 1), s))?
                    .into_inner()
                    .chain_id,
                );
            }
            let mut ra = V2xRegistrationClient::new(connect(&client.server, &creds).await?);
            let second = chains.pop().unwrap_or_default();
            let first = chains.pop().unwrap_or_default();
            let vehicle = ra
                .identify_vehicle(pb::IdentifyVehicleRequest {
                    first_chain: first,
                    second_chain: second,
                    case_reference: case.clone(),
                })
                .await
                .map_err(|s| refused("the registration authority", s))?
                .into_inner()
                .vehicle;
            if json {
                print_json(&json!({ "ticket": ticket, "case": case, "vehicle": vehicle }));
            } else {
                println!("{vehicle}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
