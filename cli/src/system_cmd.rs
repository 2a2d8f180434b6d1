//! `trustca system ...`: systems of linked devices over gRPC. Operators
//! register a system with its devices and links; operators and the devices
//! linked add and remove links; members, operators and auditors show a
//! system and evaluate it (each member's effective level with the path that
//! set its cap, and the system's combined level; policies/composition.toml).

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use trustca_proto::v1 as pb;
use trustca_proto::v1::systems_client::SystemsClient;

use crate::cli::{ClientArgs, print_json};

/// Connection and output.
#[derive(Debug, Args)]
pub struct SystemClientArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Print JSON (for scripts) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum SystemAction {
    /// Operator: register a system with its devices and links. Every device
    /// must be enrolled, not revoked, and of a sector your credential is
    /// authorized for; links may not form a cycle.
    Register {
        #[command(flatten)]
        out: SystemClientArgs,
        /// The system's name (A-Z a-z 0-9 . _ -, up to 64).
        #[arg(long)]
        name: String,
        /// The sector whose terms the combined level is given in.
        #[arg(long)]
        sector: String,
        /// A member device's URN (repeatable).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// A link FROM=OPERATION=>TO: FROM may invoke OPERATION (a name of
        /// cooperation.toml) on TO; both URNs (repeatable).
        #[arg(long = "link")]
        links: Vec<String>,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Operator or a device taking part: add a link. An operator's link may
    /// bring a new device into the system.
    Link {
        #[command(flatten)]
        out: SystemClientArgs,
        #[command(flatten)]
        link: LinkArgs,
    },
    /// Operator or a device taking part: remove a link.
    Unlink {
        #[command(flatten)]
        out: SystemClientArgs,
        #[command(flatten)]
        link: LinkArgs,
    },
    /// A system's devices and links.
    Show {
        #[command(flatten)]
        out: SystemClientArgs,
        /// The system's name.
        #[arg(long)]
        name: String,
    },
    /// Every member's effective level from the live trust records now, the
    /// path that set each cap, and the system's combined level.
    Evaluate {
        #[command(flatten)]
        out: SystemClientArgs,
        /// The system's name.
        #[arg(long)]
        name: String,
    },
}

/// One link to add or remove.
#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The system's name.
    #[arg(long)]
    system: String,
    /// The invoking device's URN.
    #[arg(long)]
    from: String,
    /// The device acted on (URN).
    #[arg(long)]
    to: String,
    /// The operation FROM may invoke on TO (a name of cooperation.toml).
    #[arg(long)]
    operation: String,
    /// Why (kept in the audit log).
    #[arg(long)]
    reason: String,
}

impl LinkArgs {
    fn request(self) -> pb::LinkRequest {
        pb::LinkRequest {
            system: self.system,
            links: vec![pb::SystemLink {
                from: self.from,
                to: self.to,
                operation: self.operation,
            }],
            reason: self.reason,
        }
    }
}

/// Parses `FROM=OPERATION=>TO`.
fn parse_link(text: &str) -> Result<pb::SystemLink> {
    let Some((from, rest)) = text.split_once('=') else {
        bail!("--link {text:?}: expected FROM=OPERATION=>TO");
    };
    let Some((operation, to)) = rest.split_once("=>") else {
        bail!("--link {text:?}: expected FROM=OPERATION=>TO");
    };
    if from.is_empty() || operation.is_empty() || to.is_empty() {
        bail!("--link {text:?}: expected FROM=OPERATION=>TO");
    }
    Ok(pb::SystemLink {
        from: from.to_owned(),
        to: to.to_owned(),
        operation: operation.to_owned(),
    })
}

fn refused(s: tonic::Status) -> anyhow::Error {
    crate::client::refused("refused", &s).into()
}

fn view_json(v: &pb::SystemView) -> Value {
    json!({
        "name": v.name,
        "sector": v.sector,
        "version": v.version,
        "members": v.members,
        "links": v.links.iter().map(|l| json!({"from": l.from, "to": l.to, "operation": l.operation})).collect::<Vec<_>>(),
    })
}

fn print_view(v: &pb::SystemView, as_json: bool) -> ExitCode {
    if as_json {
        print_json(&view_json(v));
        return ExitCode::SUCCESS;
    }
    println!(
        "system {} (sector {}, version {}): {} device(s), {} link(s)",
        v.name,
        v.sector,
        v.version,
        v.members.len(),
        v.links.len()
    );
    let mut t = comfy_table::Table::new();
    t.set_header(["from", "operation", "to"]);
    for l in &v.links {
        t.add_row([l.from.as_str(), l.operation.as_str(), l.to.as_str()]);
    }
    println!("{t}");
    ExitCode::SUCCESS
}

/// The JSON of a cap (also used by `trustca query --json`).
pub fn cap_json(c: &pb::SystemCap) -> Value {
    json!({
        "system": c.system,
        "effective_level": c.effective_level,
        "source": c.source,
        "path": c.path.iter().map(|h| json!({
            "from": h.from, "to": h.to, "operation": h.operation,
            "depth": h.depth, "counted_level": h.counted_level,
        })).collect::<Vec<_>>(),
        "reason": c.reason,
    })
}

fn evaluation_json(e: &pb::SystemEvaluation) -> Value {
    json!({
        "system": e.system,
        "system_version": e.system_version,
        "policy_version": e.policy_version,
        "combined_level": e.combined_level,
        "combined_set_by": e.combined_set_by,
        "combined_reason": e.combined_reason,
        "evaluated_at": e.evaluated_at,
        "members": e.members.iter().map(|m| json!({
            "identity": m.identity,
            "sector": m.sector,
            "own_level": m.own_level,
            "status": m.status,
            "effective_level": m.effective_level,
            "cap": m.cap.as_ref().map(cap_json),
        })).collect::<Vec<_>>(),
    })
}

fn print_evaluation(e: &pb::SystemEvaluation, as_json: bool) -> ExitCode {
    if as_json {
        print_json(&evaluation_json(e));
        return ExitCode::SUCCESS;
    }
    println!(
        "system {} (version {}): combined Lv.{} — {}",
        e.system, e.system_version, e.combined_level, e.combined_reason
    );
    println!("policy {}", e.policy_version);
    let mut t = comfy_table::Table::new();
    t.set_header(["device", "status", "own", "effective", "capped by (path)"]);
    for m in &e.members {
        let path = m
            .cap
            .as_ref()
            .map(|c| {
                if c.path.is_empty() {
                    c.reason.clone()
                } else {
                    let mut p: Vec<String> = c
                        .path
                        .iter()
                        .map(|h| format!("{} -{}->", h.from, h.operation))
                        .collect();
                    p.push(c.path.last().map(|h| h.to.clone()).unwrap_or_default());
                    p.join(" ")
                }
            })
            .unwrap_or_default();
        t.add_row([
            m.identity.clone(),
            m.status.clone(),
            format!("Lv.{}", m.own_level),
            format!("Lv.{}", m.effective_level),
            path,
        ]);
    }
    println!("{t}");
    ExitCode::SUCCESS
}

/// Runs `trustca system ...`.
pub async fn system(action: SystemAction) -> Result<ExitCode> {
    match action {
        SystemAction::Register {
            out,
            name,
            sector,
            members,
            links,
            reason,
        } => {
            let links = links
                .iter()
                .map(|l| parse_link(l))
                .collect::<Result<Vec<_>>>()?;
            let mut c = SystemsClient::new(out.client.channel().await?);
            let v = c
                .register(pb::RegisterSystemRequest {
                    name,
                    sector,
                    members,
                    links,
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            Ok(print_view(&v, out.json))
        }
        SystemAction::Link { out, link } => {
            let mut c = SystemsClient::new(out.client.channel().await?);
            let v = c.link(link.request()).await.map_err(refused)?.into_inner();
            Ok(print_view(&v, out.json))
        }
        SystemAction::Unlink { out, link } => {
            let mut c = SystemsClient::new(out.client.channel().await?);
            let v = c
                .unlink(link.request())
                .await
                .map_err(refused)?
                .into_inner();
            Ok(print_view(&v, out.json))
        }
        SystemAction::Show { out, name } => {
            let mut c = SystemsClient::new(out.client.channel().await?);
            let v = c
                .show(pb::ShowSystemRequest { system: name })
                .await
                .map_err(refused)?
                .into_inner();
            Ok(print_view(&v, out.json))
        }
        SystemAction::Evaluate { out, name } => {
            let mut c = SystemsClient::new(out.client.channel().await?);
            let e = c
                .evaluate(pb::ShowSystemRequest { system: name })
                .await
                .map_err(refused)?
                .into_inner();
            Ok(print_evaluation(&e, out.json))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_parse_from_the_command_line() {
        let l = parse_link("urn:trustca:hems:A:P:1=remote-control=>urn:trustca:hems:A:H:1")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.from, "urn:trustca:hems:A:P:1");
        assert_eq!(l.operation, "remote-control");
        assert_eq!(l.to, "urn:trustca:hems:A:H:1");
        assert!(parse_link("a=b").is_err());
        assert!(parse_link("=op=>b").is_err());
    }
}
