//! The model registry: evidence per (sector, manufacturer, model, firmware
//! range), registered by the people entitled to state it: manufacturers
//! register models and firmware releases and may self-assess; certification
//! bodies register and withdraw evaluations under the schemes their
//! certificate names; operators suspend models.
//!
//! Every change re-assesses the record under the sector's criteria and, in
//! the same transaction ([`Storage::commit_model_change`]), moves the live
//! trust of every enrolled device of that model and firmware range: the
//! fleet response driven by evidence rather than by hand. A device's live
//! level is the model's level but never above its certificate's
//! ([`trustca_model::registry::device_level`]); a suspended model suspends
//! its active devices, and lifting the suspension restores exactly the
//! devices the suspension suspended.

use std::sync::{Arc, Mutex};

use crate::msg;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use trustca_model::registry::{Assessment, check_evaluation_fields, device_level};
use trustca_model::{
    CertificateKind, Credential, DeviceChange, Evidence, FirmwareRange, FleetEvent, ModelChange,
    ModelEvaluation, ModelKey, ModelRecord, ModelStatus, PolicySet, SectorName, SectorPolicy,
    TrustLevel, TrustStatus,
};
use trustca_store::registry::{MODEL_SPACE, model_ranges, models_with_prefix};
use trustca_store::{BlobAudit, Storage, TrustChange};

use crate::TrustDbError;

mod fleet;
#[cfg(test)]
mod tests;

/// At most this many models are listed in one answer.
pub const MAX_LIST: usize = 10_000;
const MAX_REASON: usize = 512;
/// Whether the newest history entry that set the device's level came from
/// the registry (enrollment, renewal, operators, bulk downgrades and
/// anomaly templates set it too).
fn last_level_set_by_registry(history: &[DeviceChange]) -> bool {
    history
        .iter()
        .rev()
        .find(|c| c.sets_level())
        .is_some_and(DeviceChange::by_registry)
}

/// The model registry over a store and the sector policies.
pub struct ModelRegistry {
    storage: Arc<dyn Storage>,
    /// The sector criteria in force, read per call (`with_policy_source`).
    policies: Arc<dyn trustca_model::PolicySource>,
    /// Serialises read-modify-write of records within this process.
    writing: Mutex<()>,
}

impl std::fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRegistry").finish_non_exhaustive()
    }
}

/// What a change did to the fleet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetMove {
    /// Enrolled devices of the model in the range.
    pub matched: u64,
    /// Devices whose live level or status moved.
    pub changed: u64,
}

fn invalid(m: impl Into<String>) -> TrustDbError {
    TrustDbError::InvalidRequest(m.into())
}

fn actor(c: &Credential) -> String {
    format!("{}:{}", c.kind.as_str(), c.name)
}

/// Who applies what time changed (see [`ModelRegistry::reassess_all`]).
const EXPIRY_ACTOR: &str = "registry:expiry";

fn check_reason(reason: &str) -> Result<(), TrustDbError> {
    if reason.trim().is_empty() {
        return Err(invalid("a reason is required (it goes into the audit log)"));
    }
    if reason.len() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(invalid(format!(
            "the reason must be at most {MAX_REASON} bytes of printable text"
        )));
    }
    Ok(())
}

fn parse_time(field: &str, s: &str) -> Result<i64, TrustDbError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| {
            invalid(format!(
                "{field} {s:?} is not a date (YYYY-MM-DD) or RFC 3339 time"
            ))
        })
}

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// The registry's view of a record for gRPC.
pub fn model_view(m: &ModelRecord) -> msg::ModelView {
    msg::ModelView {
        model: Some(msg::ModelSelector {
            sector: m.key.sector.to_string(),
            manufacturer: m.key.manufacturer.clone(),
            model: m.key.model.clone(),
            firmware: m.key.firmware.to_string(),
        }),
        level: m.level as u32,
        status: m.status,
        policy_version: m.policy_version.clone(),
        version: m.version,
        hardware_root_of_trust: m
            .hardware_root_of_trust
            .map(|h| h.as_str().to_owned())
            .unwrap_or_default(),
        secure_update: m.secure_update.map(|b| b.to_string()).unwrap_or_default(),
        supported_until: m.supported_until.clone().unwrap_or_default(),
        evaluations: m
            .evaluations
            .iter()
            .map(|e| msg::ModelEvaluationView {
                scheme: e.scheme.clone(),
                result: e.result.clone(),
                certificate_number: e.certificate_number.clone(),
                evaluated_at: e.evaluated_at,
                valid_until: e.valid_until,
                registered_by: e.registered_by.clone(),
                self_assessed: e.self_assessed,
                withdrawn_at: e.withdrawn_at.unwrap_or(0),
            })
            .collect(),
        history: m
            .history
            .iter()
            .map(|h| msg::ModelHistoryView {
                version: h.version,
                at: h.at,
                actor: h.actor.clone(),
                change: h.change.clone(),
                reason: h.reason.clone(),
            })
            .collect(),
        registered_at: m.registered_at,
        updated_at: m.updated_at,
        suspension_reason: m
            .suspended
            .as_ref()
            .map(|s| s.1.clone())
            .unwrap_or_default(),
    }
}

impl ModelRegistry {
    /// A registry over `storage`, assessing with `policies`' sector criteria.
    pub fn new(storage: Arc<dyn Storage>, policies: Arc<PolicySet>) -> Self {
        Self {
            storage,
            policies: Arc::new(policies),
            writing: Mutex::new(()),
        }
    }

    /// Assesses with the sector criteria `source` holds at each call, so a
    /// policy reload applies to the next registration or evaluation.
    pub fn with_policy_source(mut self, source: Arc<dyn trustca_model::PolicySource>) -> Self {
        self.policies = source;
        self
    }

    /// `sector`'s policy in force now (a copy: the set may be replaced
    /// while the call runs).
    fn sector_policy(&self, sector: &str) -> Result<SectorPolicy, TrustDbError> {
        Ok(self.policies.current().sector(sector)?.clone())
    }

    fn key_of(&self, sel: Option<&msg::ModelSelector>) -> Result<ModelKey, TrustDbError> {
        let sel = sel.ok_or_else(|| invalid("model is required"))?;
        let policy = &self.sector_policy(&sel.sector)?;
        if sel.firmware.is_empty() {
            return Err(invalid(
                "firmware is required: a version or a range such as 1.0..1.4.9",
            ));
        }
        let firmware = FirmwareRange::parse(&sel.firmware)?;
        Ok(ModelKey::new(
            policy.sector.clone(),
            &sel.manufacturer,
            &sel.model,
            firmware,
        )?)
    }

    /// The stored record of exactly this key.
    fn load(&self, key: &ModelKey) -> Result<ModelRecord, TrustDbError> {
        model_ranges(
            self.storage.as_ref(),
            key.sector.as_str(),
            &key.manufacturer,
            &key.model,
        )?
        .into_iter()
        .find(|m| m.key.firmware == key.firmware)
        .ok_or_else(|| {
            TrustDbError::NotFound(format!(
                "{key} is not registered (list the model's ranges with `trustca model list`)"
            ))
        })
    }

    fn for_sector(
        caller: &Credential,
        sector: &SectorName,
        what: &str,
    ) -> Result<(), TrustDbError> {
        if caller.may_act_for(sector) {
            Ok(())
        } else {
            Err(TrustDbError::PermissionDenied(format!(
                "{what} for sector {sector} needs a credential authorized for it"
            )))
        }
    }

    fn evaluation_of(
        &self,
        input: &msg::ModelEvaluationInput,
        policy: &SectorPolicy,
        registered_by: &str,
        self_assessed: bool,
        now: OffsetDateTime,
    ) -> Result<ModelEvaluation, TrustDbError> {
        check_evaluation_fields(&input.scheme, &input.result, &input.certificate_number)?;
        if !policy.evidence.schemes.contains(&input.scheme) {
            return Err(invalid(format!(
                "scheme {:?} is not an evaluation scheme of sector {} (known: {})",
                input.scheme,
                policy.sector,
                policy.evidence.schemes.join(", ")
            )));
        }
        let evaluated_at = parse_time("evaluated_at", &input.evaluated_at)?;
        let valid_until = parse_time("valid_until", &input.valid_until)?;
        if evaluated_at > (now + trustca_model::policy::MAX_CLOCK_SKEW).unix_timestamp() {
            return Err(invalid(format!(
                "evaluated_at {} is in the future",
                input.evaluated_at
            )));
        }
        if valid_until <= evaluated_at {
            return Err(invalid("valid_until must be after evaluated_at"));
        }
        Ok(ModelEvaluation {
            scheme: input.scheme.clone(),
            result: input.result.clone(),
            certificate_number: input.certificate_number.clone(),
            evaluated_at,
            valid_until,
            registered_by: registered_by.to_owned(),
            self_assessed,
            withdrawn_at: None,
        })
    }

    /// Manufacturer: registers a model over a firmware range.
    pub fn register(
        &self,
        caller: &Credential,
        req: &msg::RegisterModelRequest,
    ) -> Result<msg::ModelChangeResponse, TrustDbError> {
        let key = self.key_of(req.model.as_ref())?;
        check_reason(&req.reason)?;
        if caller.kind != CertificateKind::Manufacturer {
            return Err(TrustDbError::PermissionDenied(format!(
                "models are registered by their manufacturer; the caller holds {} certificate",
                caller.kind.with_article()
            )));
        }
        Self::for_sector(caller, &key.sector, "registering a model")?;
        if !key.manufacturer.eq_ignore_ascii_case(&caller.name) {
            return Err(TrustDbError::PermissionDenied(format!(
                "manufacturer {} may only register its own models, not models of {}",
                caller.name, key.manufacturer
            )));
        }
        let declared = Evidence::parse(&req.declared)?;
        if !declared.evaluations.is_empty() {
            return Err(invalid(
                "evaluations are registered by certification bodies (AddEvaluation) or declared as self-assessed, not as declared evidence",
            ));
        }
        let policy = &self.sector_policy(key.sector.as_str())?;
        let now = OffsetDateTime::now_utc();
        let at = now.unix_timestamp();
        let mut record = ModelRecord {
            key: key.clone(),
            hardware_root_of_trust: declared.hardware_root_of_trust,
            secure_update: declared.secure_update,
            supported_until: declared.supported_until.map(|d| d.to_string()),
            evaluations: vec![],
            suspended: None,
            level: TrustLevel::MIN.get(),
            status: ModelStatus::Provisional,
            policy_version: policy.version.clone(),
            version: 0,
            registered_at: at,
            updated_at: at,
            history: vec![],
        };
        for e in &req.self_assessed {
            record.add_evaluation(self.evaluation_of(e, policy, &caller.name, true, now)?)?;
        }
        let _guard = self.write_lock()?;
        let existing = model_ranges(
            self.storage.as_ref(),
            key.sector.as_str(),
            &key.manufacturer,
            &key.model,
        )?;
        if let Some(other) = existing
            .iter()
            .find(|m| m.key.firmware.overlaps(&key.firmware))
        {
            return Err(TrustDbError::FailedPrecondition(format!(
                "firmware {} overlaps the registered range {} of this model; register a new release as a range that does not overlap",
                key.firmware, other.key.firmware
            )));
        }
        let assessment = record.assess(policy, now)?;
        let text = ModelChange::Registered {
            level: assessment.level.get(),
            status: assessment.status,
        };
        self.commit(
            record,
            assessment,
            &actor(caller),
            "model.registered",
            text,
            &req.reason,
            now,
        )
    }

    /// Certification body (or the manufacturer, self-assessed): adds an
    /// evaluation.
    pub fn add_evaluation(
        &self,
        caller: &Credential,
        req: &msg::AddEvaluationRequest,
    ) -> Result<msg::ModelChangeResponse, TrustDbError> {
        let key = self.key_of(req.model.as_ref())?;
        check_reason(&req.reason)?;
        let input = req
            .evaluation
            .as_ref()
            .ok_or_else(|| invalid("evaluation is required"))?;
        let self_assessed = match caller.kind {
            CertificateKind::CertificationBody => {
                if !caller.extension.permitted_schemes.contains(&input.scheme) {
                    return Err(TrustDbError::PermissionDenied(format!(
                        "certification body {} may register evaluations under {} only, not {:?}",
                        caller.name,
                        caller.extension.permitted_schemes.join(", "),
                        input.scheme
                    )));
                }
                false
            }
            CertificateKind::Manufacturer
                if key.manufacturer.eq_ignore_ascii_case(&caller.name) =>
            {
                true
            }
            _ => {
                return Err(TrustDbError::PermissionDenied(format!(
                    "evaluations are registered by certification bodies (or self-assessed by the model's manufacturer); the caller holds {} certificate",
                    caller.kind.with_article()
                )));
            }
        };
        Self::for_sector(caller, &key.sector, "registering an evaluation")?;
        let policy = &self.sector_policy(key.sector.as_str())?;
        let now = OffsetDateTime::now_utc();
        let evaluation = self.evaluation_of(input, policy, &caller.name, self_assessed, now)?;
        self.change_model(caller, &key, policy, &req.reason, now, |record| {
            let text = ModelChange::EvaluationAdded {
                self_assessed,
                scheme: evaluation.scheme.clone(),
                result: evaluation.result.clone(),
                certificate_number: evaluation.certificate_number.clone(),
            };
            record.add_evaluation(evaluation)?;
            let kind = if self_assessed {
                "model.self-assessed"
            } else {
                "model.evaluated"
            };
            Ok((kind, text))
        })
    }

    /// Certification body (its own evaluations) or manufacturer (its own
    /// self-assessments): withdraws an evaluation.
    pub fn withdraw_evaluation(
        &self,
        caller: &Credential,
        req: &msg::WithdrawEvaluationRequest,
    ) -> Result<msg::ModelChangeResponse, TrustDbError> {
        let key = self.key_of(req.model.as_ref())?;
        check_reason(&req.reason)?;
        if !matches!(
            caller.kind,
            CertificateKind::CertificationBody | CertificateKind::Manufacturer
        ) {
            return Err(TrustDbError::PermissionDenied(format!(
                "evaluations are withdrawn by the certification body that registered them; the caller holds {} certificate",
                caller.kind.with_article()
            )));
        }
        Self::for_sector(caller, &key.sector, "withdrawing an evaluation")?;
        let policy = &self.sector_policy(key.sector.as_str())?;
        let now = OffsetDateTime::now_utc();
        self.change_model(caller, &key, policy, &req.reason, now, |record| {
            let e = record
                .evaluations
                .iter_mut()
                .find(|e| e.certificate_number == req.certificate_number)
                .ok_or_else(|| {
                    TrustDbError::NotFound(format!(
                        "no evaluation {:?} is registered for {key}",
                        req.certificate_number
                    ))
                })?;
            let own = e.registered_by.eq_ignore_ascii_case(&caller.name)
                && e.self_assessed == (caller.kind == CertificateKind::Manufacturer);
            if !own {
                return Err(TrustDbError::PermissionDenied(format!(
                    "evaluation {} was registered by {}; only they may withdraw it",
                    e.certificate_number, e.registered_by
                )));
            }
            if e.withdrawn_at.is_some() {
                return Err(TrustDbError::FailedPrecondition(format!(
                    "evaluation {} is already withdrawn",
                    e.certificate_number
                )));
            }
            e.withdrawn_at = Some(now.unix_timestamp());
            let text = ModelChange::EvaluationWithdrawn {
                scheme: e.scheme.clone(),
                result: e.result.clone(),
                certificate_number: e.certificate_number.clone(),
            };
            Ok(("model.withdrawn", text))
        })
    }

    /// Operator: suspends a model or lifts its suspension.
    pub fn suspend(
        &self,
        caller: &Credential,
        req: &msg::SuspendModelRequest,
    ) -> Result<msg::ModelChangeResponse, TrustDbError> {
        let key = self.key_of(req.model.as_ref())?;
        check_reason(&req.reason)?;
        if caller.kind != CertificateKind::Operator {
            return Err(TrustDbError::PermissionDenied(format!(
                "models are suspended by operators; the caller holds {} certificate",
                caller.kind.with_article()
            )));
        }
        Self::for_sector(caller, &key.sector, "suspending a model")?;
        let policy = &self.sector_policy(key.sector.as_str())?;
        let now = OffsetDateTime::now_utc();
        self.change_model(caller, &key, policy, &req.reason, now, |record| {
            match (req.lift, record.suspended.is_some()) {
                (false, true) => Err(TrustDbError::FailedPrecondition(format!(
                    "{key} is already suspended"
                ))),
                (true, false) => Err(TrustDbError::FailedPrecondition(format!(
                    "{key} is not suspended"
                ))),
                (false, false) => {
                    record.suspended = Some((now.unix_timestamp(), req.reason.clone()));
                    Ok(("model.suspended", ModelChange::Suspended))
                }
                (true, true) => {
                    record.suspended = None;
                    Ok(("model.reinstated", ModelChange::SuspensionLifted))
                }
            }
        })
    }

    /// One change of a registered model, under the write lock: `edit`
    /// changes the record as stored and names the change (audit kind and
    /// history text); the record is then re-assessed and committed with
    /// its fleet's move, as every change is.
    fn change_model(
        &self,
        caller: &Credential,
        key: &ModelKey,
        policy: &SectorPolicy,
        reason: &str,
        now: OffsetDateTime,
        edit: impl FnOnce(&mut ModelRecord) -> Result<(&'static str, ModelChange), TrustDbError>,
    ) -> Result<msg::ModelChangeResponse, TrustDbError> {
        let _guard = self.write_lock()?;
        let mut record = self.load(key)?;
        let (kind, text) = edit(&mut record)?;
        let assessment = record.assess(policy, now)?;
        self.commit(record, assessment, &actor(caller), kind, text, reason, now)
    }

    /// Serialises read-modify-write of records within this process.
    fn write_lock(&self) -> Result<std::sync::MutexGuard<'_, ()>, TrustDbError> {
        self.writing
            .lock()
            .map_err(|_| invalid("registry lock poisoned"))
    }

    /// Any authenticated caller: one record.
    pub fn get(&self, req: &msg::GetModelRequest) -> Result<msg::ModelView, TrustDbError> {
        let key = self.key_of(req.model.as_ref())?;
        Ok(model_view(&self.load(&key)?))
    }

    /// Any authenticated caller: a sector's records (or one manufacturer's).
    pub fn list(
        &self,
        req: &msg::ListModelsRequest,
    ) -> Result<msg::ListModelsResponse, TrustDbError> {
        let policy = &self.sector_policy(&req.sector)?;
        let prefix = if req.manufacturer.is_empty() {
            format!("{}/", policy.sector)
        } else {
            trustca_model::DeviceIdentity::new(policy.sector.clone(), &req.manufacturer, "m", "s")?;
            format!("{}/{}/", policy.sector, req.manufacturer)
        };
        let models = models_with_prefix(self.storage.as_ref(), &prefix)?;
        if models.len() > MAX_LIST {
            return Err(TrustDbError::FailedPrecondition(format!(
                "{} models match; list at most {MAX_LIST} at once (name a manufacturer)",
                models.len()
            )));
        }
        Ok(msg::ListModelsResponse {
            models: models.iter().map(model_view).collect(),
        })
    }

    /// Re-assesses every record at `now` and applies what time changed
    /// (an evaluation past its valid-until, a support period that ran
    /// out): such a record gets a history entry and its fleet moves, as
    /// for any other change, with the actor `registry:expiry`. Returns how
    /// many records changed. Run periodically by the server on one replica.
    pub fn reassess_all(&self, now: OffsetDateTime) -> Result<usize, TrustDbError> {
        let mut changed = 0;
        for stale in models_with_prefix(self.storage.as_ref(), "")? {
            let policy = match self.sector_policy(stale.key.sector.as_str()) {
                Ok(p) => p,
                Err(_) => continue,
            };
            let _guard = self.write_lock()?;
            // Read again under the lock: a change may have landed since.
            let record = self.load(&stale.key)?;
            let assessment = record.assess(&policy, now)?;
            if assessment.level.get() == record.level && assessment.status == record.status {
                continue;
            }
            let text = ModelChange::Reassessed {
                from: record.level,
                to: assessment.level.get(),
                status_from: record.status,
                status_to: assessment.status,
            };
            self.commit(
                record,
                assessment,
                EXPIRY_ACTOR,
                "model.reassessed",
                text,
                "an evaluation or the support period expired",
                now,
            )?;
            changed += 1;
        }
        Ok(changed)
    }
}
