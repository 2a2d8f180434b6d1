//! `trustca model ...`: the model registry over gRPC. Manufacturers
//! register models and firmware releases (and may self-assess),
//! certification bodies register and withdraw evaluations, operators
//! suspend models; anyone authenticated shows and lists them.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use trustca_proto::v1 as pb;
use trustca_proto::v1::model_registry_client::ModelRegistryClient;

use crate::cli::{ClientArgs, print_json};

/// Which model record: sector, manufacturer, model and firmware range.
#[derive(Debug, Args)]
pub struct ModelArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// The sector, e.g. automotive.
    #[arg(long)]
    sector: String,
    /// The manufacturer (for `register`, your credential's name).
    #[arg(long)]
    manufacturer: String,
    /// The model.
    #[arg(long)]
    model: String,
    /// A firmware version or an inclusive range: 1.4.2, 1.0..1.4.9, 2.0..
    /// or ..1.9. A new release is registered as a new range.
    #[arg(long)]
    firmware: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

impl ModelArgs {
    fn selector(&self) -> pb::ModelSelector {
        pb::ModelSelector {
            sector: self.sector.clone(),
            manufacturer: self.manufacturer.clone(),
            model: self.model.clone(),
            firmware: self.firmware.clone(),
        }
    }
}

/// An evaluation as given on the command line.
#[derive(Debug, Args)]
pub struct EvaluationArgs {
    /// The evaluation scheme (one of the sector's, e.g. iso-sae-21434).
    #[arg(long)]
    scheme: String,
    /// The result, e.g. CAL3.
    #[arg(long)]
    result: String,
    /// The evaluation certificate's number.
    #[arg(long)]
    certificate: String,
    /// When it was evaluated (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    evaluated_at: String,
    /// When it stops counting (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    valid_until: String,
}

impl EvaluationArgs {
    fn input(&self) -> pb::ModelEvaluationInput {
        pb::ModelEvaluationInput {
            scheme: self.scheme.clone(),
            result: self.result.clone(),
            certificate_number: self.certificate.clone(),
            evaluated_at: self.evaluated_at.clone(),
            valid_until: self.valid_until.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ModelAction {
    /// Manufacturer: register a model over a firmware range with what you
    /// declare for it. Devices enrolled with a firmware in the range take
    /// the level the registry gives the model.
    Register {
        #[command(flatten)]
        model: ModelArgs,
        /// Where the model keeps its keys: none, tee, secure-element, tpm2.
        #[arg(long)]
        hardware_root_of_trust: Option<String>,
        /// Whether the model supports authenticated updates.
        #[arg(long)]
        secure_update: Option<bool>,
        /// Support end date (YYYY-MM-DD).
        #[arg(long)]
        supported_until: Option<String>,
        /// A self-assessed evaluation as SCHEME:RESULT:NUMBER:EVALUATED_AT:VALID_UNTIL
        /// (repeatable); the sector caps what self-assessment can earn.
        #[arg(long = "self-assessed")]
        self_assessed: Vec<String>,
        /// Why (kept in the record's history and the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Certification body: register an evaluation of the model (or, as its
    /// manufacturer, a self-assessment). Moves the live level of every
    /// enrolled device of the model and range.
    Evaluate {
        #[command(flatten)]
        model: ModelArgs,
        #[command(flatten)]
        evaluation: EvaluationArgs,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Certification body: withdraw an evaluation you registered. Moves the
    /// live level of every enrolled device of the model and range.
    Withdraw {
        #[command(flatten)]
        model: ModelArgs,
        /// The evaluation certificate's number.
        #[arg(long)]
        certificate: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Operator: suspend a model (its active devices are suspended and no
    /// certificates are issued for it), or lift the suspension with --lift.
    Suspend {
        #[command(flatten)]
        model: ModelArgs,
        /// Lift the suspension instead: restores the devices it suspended.
        #[arg(long)]
        lift: bool,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Show one model record with its evaluations and history.
    Show {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// List a sector's models (optionally one manufacturer's).
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// The sector.
        #[arg(long)]
        sector: String,
        /// Only this manufacturer's models.
        #[arg(long, default_value = "")]
        manufacturer: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn refused(s: tonic::Status) -> anyhow::Error {
    crate::client::refused("refused", &s).into()
}

fn selector_text(s: Option<&pb::ModelSelector>) -> String {
    s.map(|s| {
        format!(
            "{}/{}/{} firmware {}",
            s.sector, s.manufacturer, s.model, s.firmware
        )
    })
    .unwrap_or_default()
}

fn model_json(m: &pb::ModelView) -> Value {
    let sel = m.model.clone().unwrap_or_default();
    json!({
        "sector": sel.sector,
        "manufacturer": sel.manufacturer,
        "model": sel.model,
        "firmware": sel.firmware,
        "level": m.level,
        "status": m.status,
        "policy_version": m.policy_version,
        "version": m.version,
        "hardware_root_of_trust": m.hardware_root_of_trust,
        "secure_update": m.secure_update,
        "supported_until": m.supported_until,
        "suspension_reason": m.suspension_reason,
        "registered_at": crate::show::unix(m.registered_at),
        "updated_at": crate::show::unix(m.updated_at),
        "evaluations": m.evaluations.iter().map(|e| json!({
            "scheme": e.scheme,
            "result": e.result,
            "certificate": e.certificate_number,
            "evaluated_at": crate::show::unix(e.evaluated_at),
            "valid_until": crate::show::unix(e.valid_until),
            "registered_by": e.registered_by,
            "self_assessed": e.self_assessed,
            "withdrawn_at": (e.withdrawn_at != 0).then(|| crate::show::unix(e.withdrawn_at)),
        })).collect::<Vec<_>>(),
        "history": m.history.iter().map(|h| json!({
            "version": h.version,
            "at": crate::show::unix(h.at),
            "actor": h.actor,
            "change": h.change,
            "reason": h.reason,
        })).collect::<Vec<_>>(),
    })
}

fn print_model(m: &pb::ModelView) {
    println!("{}", selector_text(m.model.as_ref()));
    println!(
        "  Lv.{} {} (policy {}, record v{})",
        m.level, m.status, m.policy_version, m.version
    );
    if !m.suspension_reason.is_empty() {
        println!("  suspended: {}", m.suspension_reason);
    }
    let declared: Vec<String> = [
        ("hardware root of trust", &m.hardware_root_of_trust),
        ("secure update", &m.secure_update),
        ("supported until", &m.supported_until),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k} {v}"))
    .collect();
    if !declared.is_empty() {
        println!("  declared: {}", declared.join(", "));
    }
    if !m.evaluations.is_empty() {
        let mut t = comfy_table::Table::new();
        t.set_header([
            "scheme",
            "result",
            "certificate",
            "by",
            "valid until",
            "state",
        ]);
        for e in &m.evaluations {
            let state = if e.withdrawn_at != 0 {
                format!("withdrawn {}", crate::show::unix(e.withdrawn_at))
            } else if e.self_assessed {
                "self-assessed".to_owned()
            } else {
                "live".to_owned()
            };
            t.add_row([
                e.scheme.clone(),
                e.result.clone(),
                e.certificate_number.clone(),
                e.registered_by.clone(),
                crate::show::unix(e.valid_until),
                state,
            ]);
        }
        println!("{t}");
    }
    for h in &m.history {
        println!(
            "  v{} {} {}: {} ({})",
            h.version,
            crate::show::unix(h.at),
            h.actor,
            h.change,
            h.reason
        );
    }
}

fn print_change(r: &pb::ModelChangeResponse, json_out: bool) -> Result<ExitCode> {
    let m = r.model.as_ref().context("server sent no model record")?;
    if json_out {
        let mut v = model_json(m);
        v["devices_matched"] = json!(r.devices_matched);
        v["devices_changed"] = json!(r.devices_changed);
        print_json(&v);
    } else {
        print_model(m);
        println!(
            "{} enrolled device(s) of this model and range; {} moved with this change",
            r.devices_matched, r.devices_changed
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `SCHEME:RESULT:NUMBER:EVALUATED_AT:VALID_UNTIL`. Dates may be
/// RFC 3339 times, which contain ':', so the last two fields are split
/// from a date-only form or taken as the remainder.
fn self_assessed(text: &str) -> Result<pb::ModelEvaluationInput> {
    let parts: Vec<&str> = text.splitn(4, ':').collect();
    let [scheme, result, number, dates] = parts[..] else {
        anyhow::bail!(
            "--self-assessed {text:?}: expected SCHEME:RESULT:NUMBER:EVALUATED_AT:VALID_UNTIL (dates as YYYY-MM-DD)"
        );
    };
    let (evaluated_at, valid_until) = dates.split_once(':').with_context(|| {
        format!("--self-assessed {text:?}: expected EVALUATED_AT:VALID_UNTIL at the end")
    })?;
    Ok(pb::ModelEvaluationInput {
        scheme: scheme.to_owned(),
        result: result.to_owned(),
        certificate_number: number.to_owned(),
        evaluated_at: evaluated_at.to_owned(),
        valid_until: valid_until.to_owned(),
    })
}

/// Runs `trustca model ...`.
pub async fn model(action: ModelAction) -> Result<ExitCode> {
    match action {
        ModelAction::Register {
            model,
            hardware_root_of_trust,
            secure_update,
            supported_until,
            self_assessed: assessed,
            reason,
        } => {
            let mut declared = Vec::new();
            let item = |kind: &str, value: String| pb::EvidenceItem {
                r#type: kind.to_owned(),
                value,
                ..Default::default()
            };
            if let Some(h) = hardware_root_of_trust {
                declared.push(item("hardware-root-of-trust", h));
            }
            if let Some(s) = secure_update {
                declared.push(item("secure-update", s.to_string()));
            }
            if let Some(d) = supported_until {
                declared.push(item("supported-until", d));
            }
            let self_assessed = assessed
                .iter()
                .map(|s| self_assessed(s))
                .collect::<Result<Vec<_>>>()?;
            let mut c = ModelRegistryClient::new(model.client.channel().await?);
            let r = c
                .register_model(pb::RegisterModelRequest {
                    model: Some(model.selector()),
                    declared,
                    self_assessed,
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_change(&r, model.json)
        }
        ModelAction::Evaluate {
            model,
            evaluation,
            reason,
        } => {
            let mut c = ModelRegistryClient::new(model.client.channel().await?);
            let r = c
                .add_evaluation(pb::AddEvaluationRequest {
                    model: Some(model.selector()),
                    evaluation: Some(evaluation.input()),
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_change(&r, model.json)
        }
        ModelAction::Withdraw {
            model,
            certificate,
            reason,
        } => {
            let mut c = ModelRegistryClient::new(model.client.channel().await?);
            let r = c
                .withdraw_evaluation(pb::WithdrawEvaluationRequest {
                    model: Some(model.selector()),
                    certificate_number: certificate,
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_change(&r, model.json)
        }
        ModelAction::Suspend {
            model,
            lift,
            reason,
        } => {
            let mut c = ModelRegistryClient::new(model.client.channel().await?);
            let r = c
                .suspend_model(pb::SuspendModelRequest {
                    model: Some(model.selector()),
                    lift,
                    reason,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print_change(&r, model.json)
        }
        ModelAction::Show { model } => {
            let mut c = ModelRegistryClient::new(model.client.channel().await?);
            let m = c
                .get_model(pb::GetModelRequest {
                    model: Some(model.selector()),
                })
                .await
                .map_err(refused)?
                .into_inner();
            if model.json {
                print_json(&model_json(&m));
            } else {
                print_model(&m);
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelAction::List {
            client,
            sector,
            manufacturer,
            json: json_out,
        } => {
            let mut c = ModelRegistryClient::new(client.channel().await?);
            let r = c
                .list_models(pb::ListModelsRequest {
                    sector,
                    manufacturer,
                })
                .await
                .map_err(refused)?
                .into_inner();
            if json_out {
                print_json(&json!(r.models.iter().map(model_json).collect::<Vec<_>>()));
            } else {
                let mut t = comfy_table::Table::new();
                t.set_header([
                    "manufacturer",
                    "model",
                    "firmware",
                    "level",
                    "status",
                    "evaluations",
                    "updated",
                ]);
                for m in &r.models {
                    let sel = m.model.clone().unwrap_or_default();
                    t.add_row([
                        sel.manufacturer,
                        sel.model,
                        sel.firmware,
                        format!("Lv.{}", m.level),
                        m.status.clone(),
                        m.evaluations
                            .iter()
                            .filter(|e| e.withdrawn_at == 0)
                            .count()
                            .to_string(),
                        crate::show::unix(m.updated_at),
                    ]);
                }
                println!("{t}");
                println!("{} model record(s)", r.models.len());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_assessed_takes_five_fields() {
        let e = self_assessed("iso-sae-21434:CAL2:SELF-7:2026-01-01:2028-01-01").unwrap();
        assert_eq!(
            (
                e.scheme.as_str(),
                e.result.as_str(),
                e.certificate_number.as_str(),
                e.evaluated_at.as_str(),
                e.valid_until.as_str()
            ),
            (
                "iso-sae-21434",
                "CAL2",
                "SELF-7",
                "2026-01-01",
                "2028-01-01"
            )
        );
        assert!(self_assessed("iso-sae-21434:CAL2").is_err());
        assert!(self_assessed("a:b:c:2026-01-01").is_err());
    }
}
