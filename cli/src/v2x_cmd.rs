//! `trustca v2x ...`: the operator's side of the separated V2X authorities
//! over gRPC. `revoke` revokes a vehicle's authorization tickets from a
//! period on (both linkage authorities release their seeds; the pseudonym
//! CA signs a new linkage CRL; with `--eca`, the CA lists its enrolment
//! certificates); the hash CRL commands are in `v2x_crl_cmd.rs`; `resolve` names the vehicle behind a ticket
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

use crate::cli::{ClientArgs, PassphraseArgs, print_json};
use crate::client::{ClientCredentials, connect};
use crate::pkcs11::Pkcs11Args;

#[derive(Debug, Subcommand)]
pub enum V2xAction {
    /// At the CA: certify a separated authority's request (from its `init
    /// --role`): its TLS certificate from its CSR and, for the pseudonym
    /// CA, its AA certificate. The answer holds public material only.
    Certify {
        /// The CA's data directory.
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The authority's request.toml.
        request: PathBuf,
        /// Write the answer here (else standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        pass: PassphraseArgs,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// On an authority's machine: import its credential (the CA's answer)
    /// or its peers' public bundles; each is checked against its own keys
    /// and the trustca root.
    Import {
        /// The authority's directory (from `init --role`).
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        pass: PassphraseArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// On an authority's machine: its public bundle for its peers (its
    /// public key, signed with its certified TLS key).
    Export {
        /// The authority's directory.
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// Write it here (else standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        pass: PassphraseArgs,
    },
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
        /// profile show the current one). Earlier than the current period
        /// is refused unless --include-past is given.
        #[arg(long)]
        from_period: u64,
        /// Also link tickets of periods already begun (they were used on
        /// the road: this makes them traceable to one vehicle). Audited.
        #[arg(long)]
        include_past: bool,
        /// Also write the new linkage CRL here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The CA (enrolment CA) whose hash CRL is to list the vehicle's
        /// enrolment certificates, for separated authorities (with the
        /// authorities in the CA's process the registration authority
        /// lists them itself).
        #[arg(long)]
        eca: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Operator, at the CA (`--server`): put every enrolment certificate
    /// issued to a vehicle on the enrolment certificate CRL (crlSeries 3);
    /// registration authorities then refuse them. Audited at the CA.
    RevokeEnrolment {
        #[command(flatten)]
        client: ClientArgs,
        /// The vehicle (its identity, urn:trustca:...).
        #[arg(long)]
        vehicle: String,
        /// Also write the new CRL here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Operator, at the CA (`--server`): put a V2X CA certificate (EA, AA,
    /// RA or CRL signer, COER) on the CA certificate CRL (crlSeries 2).
    /// Audited at the CA with the reason.
    RevokeCaCertificate {
        #[command(flatten)]
        client: ClientArgs,
        /// The certificate (IEEE 1609.2, COER).
        certificate: PathBuf,
        /// Why (kept in the CA's audit log).
        #[arg(long)]
        reason: String,
        /// Also write the new CRL here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download the CA's hash CRL of a series (2 CA certificates, 3
    /// enrolment certificates) from the CA (`--server`).
    HashCrl {
        #[command(flatten)]
        client: ClientArgs,
        /// The crlSeries.
        #[arg(long)]
        series: u16,
        /// Write it here.
        #[arg(long)]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Offline: is an IEEE 1609.2 certificate (COER) on one of these hash
    /// CRLs? Each list is verified under the V2X root first. Exit 0 not
    /// listed, 3 listed.
    CheckRevoked {
        /// The certificate.
        certificate: PathBuf,
        /// A hash CRL (`SecuredCrl`, COER); repeatable.
        #[arg(long = "crl", required = true)]
        crls: Vec<PathBuf>,
        /// The V2X root certificate (COER), the lists' CRACA.
        #[arg(long)]
        root: PathBuf,
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
    Ok(ClientCredentials::load(&c.identity, &c.key, &c.ca)?)
}

fn refused(what: &str, s: tonic::Status) -> anyhow::Error {
    anyhow!("{what} refused ({:?}): {}", s.code(), s.message())
}

/// Runs a `v2x` subcommand.
pub async fn run(action: V2xAction) -> Result<ExitCode> {
    match action {
        V2xAction::Certify {
            data,
            request,
            out,
            pass,
            pkcs11,
            json,
        } => crate::v2x_role_cmd::certify(
            &data,
            &pass.load()?,
            &pkcs11.options(),
            &request,
            out.as_deref(),
            json,
        ),
        V2xAction::Import {
            data,
            files,
            pass,
            json,
        } => crate::v2x_role_cmd::import(&data, &pass.load()?, &files, json),
        V2xAction::Export { data, out, pass } => {
            crate::v2x_role_cmd::export(&data, &pass.load()?, out.as_deref())
        }
        V2xAction::Revoke {
            client,
            vehicle,
            from_period,
            include_past,
            out,
            eca,
            json,
        } => {
            if include_past {
                eprintln!(
                    "warning: --include-past links tickets this vehicle already used on the road"
                );
            }
            let mut ra = V2xRegistrationClient::new(client.channel().await?);
            let bytes = ra
                .revoke_vehicle(pb::RevokeVehicleRequest {
                    vehicle: vehicle.clone(),
                    from_period,
                    include_past,
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
            let enrolment = match eca {
                Some(server) => {
                    let at_ca = ClientArgs { server, ..client };
                    Some(crate::v2x_crl_cmd::revoke_enrolment(&at_ca, &vehicle, None).await?)
                }
                None => None,
            };
            if json {
                print_json(&json!({
                    "vehicle": vehicle,
                    "from_period": from_period,
                    "crl_number": crl.crl_number,
                    "entries": crl.entries.len(),
                    "out": out,
                    "enrolment_certificates": enrolment.as_ref().map(|e| e.0),
                }));
            } else {
                println!(
                    "revoked {vehicle} from period {from_period}: linkage CRL number {} now lists {} vehicle(s)",
                    crl.crl_number,
                    crl.entries.len()
                );
                if let Some((n, h)) = &enrolment {
                    println!(
                        "{n} enrolment certificate(s) listed; {}",
                        crate::v2x_crl_cmd::describe(h)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        V2xAction::RevokeEnrolment {
            client,
            vehicle,
            out,
            json,
        } => {
            crate::v2x_crl_cmd::revoke_enrolment_cmd(&client, &vehicle, out.as_deref(), json).await
        }
        V2xAction::RevokeCaCertificate {
            client,
            certificate,
            reason,
            out,
            json,
        } => {
            crate::v2x_crl_cmd::revoke_ca_certificate(
                &client,
                &certificate,
                &reason,
                out.as_deref(),
                json,
            )
            .await
        }
        V2xAction::HashCrl {
            client,
            series,
            out,
            json,
        } => crate::v2x_crl_cmd::download(&client, series, &out, json).await,
        V2xAction::CheckRevoked {
            certificate,
            crls,
            root,
            json,
        } => crate::v2x_crl_cmd::check(&certificate, &crls, &root, json),
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
