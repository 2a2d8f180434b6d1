//! Trust-database commands: `query` (a device asks about a peer),
//! `trust ...` (operators change live trust; operators and auditors read
//! history) and `verify-answer` (check a saved signed answer offline).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use trustca_model::SignedTrustAssertion;
use trustca_proto::v1 as pb;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;

use crate::certinfo::read_certs;
use crate::cli::{ClientArgs, print_json};

/// Exit code of `query` when the decision is deny.
pub const EXIT_DENIED: u8 = 3;

/// `trustca query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The peer's certificate (PEM; may hold its chain, leaf first).
    #[arg(long)]
    peer: PathBuf,
    /// The operation to ask about (see policies/cooperation.toml).
    #[arg(long, default_value = "read-telemetry")]
    operation: String,
    /// Write the peer's signed trust assertion here (for `verify-answer`).
    #[arg(long)]
    save_answer: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The device, urn:trustca:<sector>:<manufacturer>:<model>:<serial>.
    device: String,
    /// Why (kept in the history and the audit log).
    #[arg(long)]
    reason: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `trustca revoke`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["cert", "device", "manufacturer"])))]
pub struct RevokeArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The certificate to revoke (PEM or DER; the first certificate).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Revoke every certificate of this device (urn:trustca:...).
    #[arg(long)]
    device: Option<String>,
    /// Bulk: revoke every device of this manufacturer (with --sector, --model).
    #[arg(long, requires_all = ["sector", "model"])]
    manufacturer: Option<String>,
    /// Bulk: the sector.
    #[arg(long)]
    sector: Option<String>,
    /// Bulk: the model.
    #[arg(long)]
    model: Option<String>,
    /// Bulk: lowest affected firmware (inclusive; default any).
    #[arg(long, default_value = "")]
    firmware_min: String,
    /// Bulk: highest affected firmware (inclusive; default any).
    #[arg(long, default_value = "")]
    firmware_max: String,
    /// RFC 5280 reason: unspecified, key-compromise, affiliation-changed,
    /// superseded, cessation-of-operation, certificate-hold, privilege-withdrawn
    /// (or the RFC 5280 / openssl spelling, e.g. keyCompromise; any case).
    #[arg(long, default_value = "unspecified")]
    reason: String,
    /// Free text for the audit log.
    #[arg(long, default_value = "")]
    note: String,
    #[arg(long)]
    json: bool,
}

/// `trustca anomaly`.
#[derive(Debug, Args)]
pub struct AnomalyArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The device's certificate (PEM; may hold its chain).
    #[arg(long)]
    device: PathBuf,
    /// The anomaly kind (see policies/detection/*.toml), e.g. firmware-downgrade.
    #[arg(long)]
    anomaly: String,
    /// What was seen, KEY=VALUE (repeatable).
    #[arg(long = "evidence", value_parser = parse_kv)]
    evidence: Vec<(String, String)>,
    /// When it was observed (unix seconds; default now).
    #[arg(long, default_value_t = 0)]
    observed_at: i64,
    #[arg(long)]
    json: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| "expected KEY=VALUE".to_owned())
}

/// Runs `trustca anomaly`.
pub async fn anomaly(a: AnomalyArgs) -> Result<ExitCode> {
    let chain = read_certs(&a.device)?;
    let mut c = pb::anomalies_client::AnomaliesClient::new(a.client.channel().await?);
    let o = c
        .report(pb::AnomalyReport {
            device: Some(pb::CertificateChain {
                certificates: chain,
            }),
            anomaly: a.anomaly.clone(),
            observed_at: a.observed_at,
            evidence: a.evidence.into_iter().collect(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    if a.json {
        print_json(&json!({
            "identity": o.identity, "action": o.action, "severity": o.severity,
            "count_in_window": o.count_in_window, "threshold": o.threshold,
            "record": o.record.as_ref().map(record_json), "reasons": o.reasons,
        }));
    } else {
        println!(
            "{}: {} -> {} ({} of {} in window, severity {})",
            o.identity, a.anomaly, o.action, o.count_in_window, o.threshold, o.severity
        );
        for r in &o.reasons {
            println!("  - {r}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `trustca restrict`.
#[derive(Debug, Args)]
pub struct RestrictArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The device (urn:trustca:...).
    #[arg(long)]
    device: String,
    /// Capability to withdraw: server-auth or client-auth.
    #[arg(long, required = true)]
    withdraw: Vec<String>,
    /// Why (kept in the audit log).
    #[arg(long)]
    note: String,
    /// Where to write the narrower certificate chain (PEM), for the device.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `trustca restrict`.
pub async fn restrict(a: RestrictArgs) -> Result<ExitCode> {
    if a.out.exists() {
        bail!("{} exists; refusing to overwrite it", a.out.display());
    }
    let mut c = pb::revocation_client::RevocationClient::new(a.client.channel().await?);
    let r = c
        .restrict(pb::RestrictRequest {
            identity: a.device.clone(),
            withdraw: a.withdraw.clone(),
            note: a.note,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let chain: Vec<&[u8]> = r.chain_der.iter().map(|d| d.as_slice()).collect();
    std::fs::write(&a.out, trustca_ca::certs_to_pem(&chain))
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "withdrew {} from {}: narrower certificate in {}, {} revoked (CRL #{})",
        a.withdraw.join(", "),
        a.device,
        a.out.display(),
        r.revoked_serial,
        r.crl_number
    );
    Ok(ExitCode::SUCCESS)
}

/// `trustca crl`.
#[derive(Debug, Args)]
pub struct CrlArgs {
    /// Server address, e.g. https://127.0.0.1:7443. `GetCrl` is public:
    /// no client credential is needed.
    #[arg(long, env = "TRUSTCA_SERVER")]
    server: String,
    /// The trustca root certificate (PEM), to authenticate the server.
    #[arg(long, env = "TRUSTCA_CA")]
    ca: PathBuf,
    /// Accepted for older scripts and ignored: `GetCrl` needs no credential.
    #[arg(long, hide = true)]
    identity: Option<PathBuf>,
    /// Accepted for older scripts and ignored.
    #[arg(long, hide = true)]
    key: Option<PathBuf>,
    /// Sector whose CRL to fetch (`root` for the root's CRL of revoked CAs;
    /// after a rollover, `<sector>.<n>` for the CRL of generation n).
    #[arg(long)]
    sector: String,
    /// Where to write the CRL (DER).
    #[arg(long)]
    out: PathBuf,
}

/// Runs `trustca revoke`.
pub async fn revoke(a: RevokeArgs) -> Result<ExitCode> {
    if let Some(manufacturer) = &a.manufacturer {
        let mut c = pb::revocation_client::RevocationClient::new(a.client.channel().await?);
        let r = c
            .bulk_revoke(pb::BulkRevokeRequest {
                sector: a.sector.clone().unwrap_or_default(),
                manufacturer: manufacturer.clone(),
                model: a.model.clone().unwrap_or_default(),
                firmware_min: a.firmware_min.clone(),
                firmware_max: a.firmware_max.clone(),
                reason: a.reason.clone(),
                note: a.note.clone(),
            })
            .await
            .map_err(refused)?
            .into_inner();
        if a.json {
            print_json(
                &json!({"devices": r.devices, "certificates": r.certificates, "crl_number": r.crl_number}),
            );
        } else {
            println!(
                "revoked {} certificate(s) of {} device(s); CRL #{} published",
                r.certificates, r.devices, r.crl_number
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let subject = match (&a.cert, &a.device) {
        (Some(p), _) => pb::revoke_request::Subject::Certificate(read_certs(p)?.remove(0)),
        (None, Some(d)) => pb::revoke_request::Subject::Identity(d.clone()),
        (None, None) => bail!("give --cert FILE or --device URN"),
    };
    let mut c = pb::revocation_client::RevocationClient::new(a.client.channel().await?);
    let r = c
        .revoke(pb::RevokeRequest {
            subject: Some(subject),
            reason: a.reason.clone(),
            note: a.note,
        })
        .await
        .map_err(refused)?
        .into_inner();
    if a.json {
        print_json(
            &json!({"revoked": r.revoked, "sector": r.sector, "crl_number": r.crl_number, "reason": a.reason}),
        );
    } else {
        println!(
            "revoked {} certificate(s) in {} ({}); CRL #{} published",
            r.revoked.len(),
            r.sector,
            a.reason,
            r.crl_number
        );
        for s in &r.revoked {
            println!("  {s}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `trustca crl`.
pub async fn crl(a: CrlArgs) -> Result<ExitCode> {
    if a.identity.is_some() || a.key.is_some() {
        eprintln!("note: --identity and --key are not needed: the CRL is public");
    }
    let root = std::fs::read_to_string(&a.ca)
        .with_context(|| format!("cannot read root certificate {}", a.ca.display()))?;
    let mut c = pb::revocation_client::RevocationClient::new(
        crate::client::connect_public(&a.server, &root).await?,
    );
    let r = c
        .get_crl(pb::GetCrlRequest {
            sector: a.sector.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    std::fs::write(&a.out, &r.crl_der)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "CRL #{} of {} written to {} ({} bytes)",
        r.crl_number,
        a.sector,
        a.out.display(),
        r.crl_der.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `trustca trust ...`.
#[derive(Debug, Subcommand)]
pub enum TrustAction {
    /// Set a device's live level (at most what its evidence earned).
    Set {
        #[command(flatten)]
        change: ChangeArgs,
        /// The new level, 1-5.
        #[arg(long)]
        level: u32,
    },
    /// Suspend a device: peers are told it may not be trusted for now.
    Suspend(ChangeArgs),
    /// Restore a suspended device.
    Restore(ChangeArgs),
    /// Retire a device (disposal); the record is kept.
    Retire(ChangeArgs),
    /// Move a device's trust record and history to its successor.
    Transfer {
        #[command(flatten)]
        change: ChangeArgs,
        /// The successor's identity (must be enrolled).
        #[arg(long)]
        to: String,
    },
    /// Lower every device of a manufacturer/model/firmware range at once.
    Downgrade {
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long)]
        sector: String,
        #[arg(long)]
        manufacturer: String,
        #[arg(long)]
        model: String,
        /// Lowest affected firmware (inclusive; default: any).
        #[arg(long, default_value = "")]
        firmware_min: String,
        /// Highest affected firmware (inclusive; default: any).
        #[arg(long, default_value = "")]
        firmware_max: String,
        /// Lower matching devices to at most this level.
        #[arg(long)]
        max_level: u32,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a device's record and change history.
    History {
        #[command(flatten)]
        client: ClientArgs,
        /// The device identity URN.
        device: String,
        #[arg(long)]
        json: bool,
    },
    /// Show a device's live trust.
    Get {
        #[command(flatten)]
        client: ClientArgs,
        /// The device identity URN.
        device: String,
        #[arg(long)]
        json: bool,
    },
    /// Re-read the policy files on the server (a bad file is refused).
    Reload {
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn refused(s: tonic::Status) -> anyhow::Error {
    crate::client::refused("refused", &s).into()
}

fn assertion_pem(a: &pb::SignedAssertion) -> String {
    let signed = SignedTrustAssertion {
        body: a.body.clone(),
        signature: a.signature.clone(),
        responder_chain: a.responder_chain.clone().into(),
    };
    pem::encode(&pem::Pem::new(
        trustca_model::assertion::PEM_LABEL,
        signed.to_der(),
    ))
}

/// `ALLOW op (depth D, needs R)`; the depths only when a rule was
/// reached (a peer that is not known has none, and `(depth none, needs )`
/// says nothing).
fn headline(d: &pb::Decision, operation: &str) -> String {
    let verdict = if d.allow { "ALLOW" } else { "DENY" };
    if d.required_depth.is_empty() {
        format!("{verdict} {operation}")
    } else {
        format!(
            "{verdict} {operation} (depth {}, needs {})",
            d.depth, d.required_depth
        )
    }
}

/// Runs `trustca query`.
pub async fn query(a: QueryArgs) -> Result<ExitCode> {
    let chain = read_certs(&a.peer)?;
    let mut client = TrustDatabaseClient::new(a.client.channel().await?);
    let d = client
        .decide(pb::DecideRequest {
            peer: Some(pb::CertificateChain {
                certificates: chain,
            }),
            operation: a.operation.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    if let (Some(path), Some(assertion)) = (&a.save_answer, &d.peer_assertion) {
        std::fs::write(path, assertion_pem(assertion))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if a.json {
        print_json(&json!({
            "decision": if d.allow { "allow" } else { "deny" },
            "operation": a.operation,
            "depth": d.depth,
            "required_depth": d.required_depth,
            "caller_level": d.caller_level,
            "peer_level": d.peer_level,
            "peer_sector": d.peer_sector,
            "peer_identity": d.peer_identity,
            "rule": d.rule,
            "reasons": d.reasons,
            "valid_until": crate::show::unix(d.valid_until),
            "policy_version": d.policy_version,
            "peer_own_level": d.peer_own_level,
            "peer_system_cap": d.peer_system_cap.as_ref().map(crate::system_cmd::cap_json),
        }));
    } else {
        println!("{}", headline(&d, &a.operation));
        if d.peer_identity.is_empty() {
            println!("  peer      not known to the trust database");
        } else {
            println!(
                "  peer      {} ({}) {}",
                d.peer_identity,
                d.peer_sector,
                peer_standing(&d)
            );
        }
        if let Some(c) = &d.peer_system_cap {
            println!(
                "  system    {}: Lv.{} there (own Lv.{}), capped by {}",
                c.system, c.effective_level, d.peer_own_level, c.source
            );
        }
        println!("  you       Lv.{}", d.caller_level);
        if !d.rule.is_empty() {
            println!("  rule      {}", d.rule);
        }
        for r in &d.reasons {
            println!("  - {r}");
        }
        println!("  valid to  {}", crate::show::unix(d.valid_until));
    }
    Ok(if d.allow {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
}

/// The peer's level and status as `trust get` shows them (`Lv.4
/// suspended`), read from its signed assertion, and what it counts as here
/// when that differs (recognition across sectors, a suspension, a system).
fn peer_standing(d: &pb::Decision) -> String {
    let own = d
        .peer_assertion
        .as_ref()
        .and_then(|a| trustca_model::TrustAssertion::from_der(&a.body).ok());
    match own {
        Some(a) if u32::from(a.level.get()) != d.peer_level || a.status.as_str() != "active" => {
            format!(
                "Lv.{} {}, counted as Lv.{} here",
                a.level.get(),
                a.status.as_str(),
                d.peer_level
            )
        }
        _ => format!("Lv.{}", d.peer_level),
    }
}

fn record_json(r: &pb::TrustRecordView) -> serde_json::Value {
    json!({
        "identity": r.identity, "sector": r.sector, "level": r.level,
        "status": r.status, "version": r.version, "updated_at": crate::show::unix(r.updated_at),
    })
}

fn print_record(r: &pb::TrustRecordView, json: bool) {
    if json {
        print_json(&record_json(r));
    } else {
        println!(
            "{}  Lv.{}  {}  (version {}, {})",
            r.identity,
            r.level,
            r.status,
            r.version,
            crate::show::unix(r.updated_at)
        );
    }
}

async fn change(c: ChangeArgs, what: pb::change_trust_request::Change) -> Result<ExitCode> {
    let mut client = TrustDatabaseClient::new(c.client.channel().await?);
    let r = client
        .change_trust(pb::ChangeTrustRequest {
            identity: c.device,
            change: Some(what),
            reason: c.reason,
        })
        .await
        .map_err(refused)?
        .into_inner();
    let record = r.record.context("server sent no record")?;
    print_record(&record, c.json);
    Ok(ExitCode::SUCCESS)
}

/// Runs `trustca trust ...`.
pub async fn trust(action: TrustAction) -> Result<ExitCode> {
    use pb::change_trust_request::Change;
    match action {
        TrustAction::Set { change: c, level } => change(c, Change::SetLevel(level)).await,
        TrustAction::Suspend(c) => change(c, Change::Suspend(true)).await,
        TrustAction::Restore(c) => change(c, Change::Restore(true)).await,
        TrustAction::Retire(c) => change(c, Change::Retire(true)).await,
        TrustAction::Transfer { change: c, to } => change(c, Change::TransferTo(to)).await,
        TrustAction::Downgrade {
            client,
            sector,
            manufacturer,
            model,
            firmware_min,
            firmware_max,
            max_level,
            reason,
            json,
        } => {
            let mut c = TrustDatabaseClient::new(client.channel().await?);
            let r = c
                .bulk_downgrade(pb::BulkDowngradeRequest {
                    sector,
                    manufacturer,
                    model,
                    firmware_min,
                    firmware_max,
                    max_level,
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json {
                print_json(&json!({"matched": r.matched, "changed": r.changed}));
            } else {
                println!(
                    "{} device(s) matched, {} downgraded to at most Lv.{max_level}",
                    r.matched, r.changed
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TrustAction::History {
            client,
            device,
            json,
        } => {
            let mut c = TrustDatabaseClient::new(client.channel().await?);
            let h = c
                .get_history(pb::GetHistoryRequest { identity: device })
                .await
                .map_err(refused)?
                .into_inner();
            let record = h.record.context("server sent no record")?;
            if json {
                print_json(&json!({
                    "record": record_json(&record),
                    "history": h.entries.iter().map(|e| json!({
                        "version": e.version, "at": crate::show::unix(e.at), "actor": e.actor,
                        "change": e.change, "reason": e.reason,
                    })).collect::<Vec<_>>(),
                }));
            } else {
                print_record(&record, false);
                let mut table = comfy_table::Table::new();
                table.set_header(["version", "when", "who", "change", "reason"]);
                for e in &h.entries {
                    table.add_row([
                        e.version.to_string(),
                        crate::show::unix(e.at),
                        e.actor.clone(),
                        e.change.clone(),
                        e.reason.clone(),
                    ]);
                }
                println!("{table}");
            }
            Ok(ExitCode::SUCCESS)
        }
        TrustAction::Get {
            client,
            device,
            json,
        } => {
            let mut c = TrustDatabaseClient::new(client.channel().await?);
            let a = c
                .get_trust(pb::GetTrustRequest {
                    subject: Some(pb::get_trust_request::Subject::Identity(device)),
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json {
                print_json(&json!({
                    "identity": a.identity, "sector": a.sector, "live_level": a.live_level,
                    "status": a.status, "record_version": a.record_version, "reasons": a.reasons,
                }));
            } else {
                println!(
                    "{}  Lv.{}  {}  (version {})",
                    a.identity, a.live_level, a.status, a.record_version
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TrustAction::Reload { client } => {
            let mut c = TrustDatabaseClient::new(client.channel().await?);
            let r = c
                .reload_policy(pb::ReloadPolicyRequest {})
                .await
                .map_err(refused)?
                .into_inner();
            println!(
                "policy reloaded: cooperation {}, recognition {}",
                r.cooperation_version, r.recognition_version
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs `trustca verify-answer`.
pub fn verify_answer(file: &Path, root: &Path, json: bool) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let p = pem::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: {}",
            file.display(),
            crate::certinfo::pem_error_words(&e)
        )
    })?;
    if p.tag() != trustca_model::assertion::PEM_LABEL {
        bail!(
            "{}: expected a {} PEM block, found {}",
            file.display(),
            trustca_model::assertion::PEM_LABEL,
            p.tag()
        );
    }
    let root_der = read_certs(root)?.remove(0);
    let outcome = SignedTrustAssertion::from_der(p.contents()).and_then(|s| {
        s.verify(
            &root_der,
            time::OffsetDateTime::now_utc(),
            &crate::cli::extension_oid(),
        )
    });
    match outcome {
        Ok(a) => {
            if json {
                let mut v = serde_json::to_value(&a).unwrap_or_default();
                v["valid"] = json!(true);
                print_json(&v);
            } else {
                println!(
                    "OK: {} ({}) Lv.{} {} (record version {}), signed {}, valid until {}",
                    a.identity,
                    a.sector,
                    a.level.get(),
                    a.status.as_str(),
                    a.record_version,
                    crate::show::rfc3339(a.produced_at),
                    crate::show::rfc3339(a.next_update)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if json {
                print_json(&json!({"valid": false, "reason": e.to_string()}));
            } else {
                eprintln!("invalid: {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_peer_gets_no_empty_depths() {
        let unknown = pb::Decision {
            allow: false,
            depth: "none".into(),
            ..Default::default()
        };
        assert_eq!(headline(&unknown, "read"), "DENY read");
        let known = pb::Decision {
            allow: true,
            depth: "full".into(),
            required_depth: "read".into(),
            ..Default::default()
        };
        assert_eq!(
            headline(&known, "read"),
            "ALLOW read (depth full, needs read)"
        );
    }
}
