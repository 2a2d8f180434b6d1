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
    CertificateKind, Credential, Evidence, EvidenceItem, FirmwareRange, ModelEvaluation, ModelKey,
    ModelRecord, ModelStatus, PolicySet, SectorName, SectorPolicy, TrustLevel, TrustStatus,
};
use trustca_store::registry::{MODEL_SPACE, model_ranges, models_with_prefix};
use trustca_store::{BlobAudit, Storage, TrustChange};

use crate::TrustDbError;

/// At most this many models are listed in one answer.
pub const MAX_LIST: usize = 10_000;
const MAX_REASON: usize = 512;
/// History text of a suspension by the registry; lifting the model's
/// suspension restores only devices whose last change starts with it.
const MODEL_SUSPENDED: &str = "model suspended";
/// History text of every change the registry makes.
const MODEL_CHANGE: &str = "model ";
/// History text of a level change by the registry.
const MODEL_LEVEL: &str = "model level";

/// Whether the newest history entry that set the device's level came from
/// the registry. Level changes say "level a -> b" (registry, operator,
/// bulk downgrade); enrollment and renewal set it too.
fn last_level_set_by_registry(history: &[String]) -> bool {
    history
        .iter()
        .rev()
        .find(|c| c.contains(" -> ") || c.starts_with("enrolled") || c.starts_with("renew"))
        .is_some_and(|c| c.starts_with(MODEL_CHANGE))
}

/// The model registry over a store and the sector policies.
pub struct ModelRegistry {
    storage: Arc<dyn Storage>,
    policies: Arc<PolicySet>,
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
        status: m.status.as_str().to_owned(),
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
            policies,
            writing: Mutex::new(()),
        }
    }

    fn sector_policy(&self, sector: &str) -> Result<&SectorPolicy, TrustDbError> {
        Ok(self.policies.sector(sector)?)
    }

    fn key_of(&self, sel: Option<&msg::ModelSelector>) -> Result<ModelKey, TrustDbError> {
        let sel = sel.ok_or_else(|| invalid("model is required"))?;
        let policy = self.sector_policy(&sel.sector)?;
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
        let declared: Vec<EvidenceItem> = req
            .declared
            .iter()
            .map(|e| EvidenceItem {
                kind: e.r#type.clone(),
                scheme: e.scheme.clone(),
                value: e.value.clone(),
                evaluated_at: e.evaluated_at.clone(),
            })
            .collect();
        let declared = Evidence::parse(&declared)?;
        if !declared.evaluations.is_empty() {
            return Err(invalid(
                "evaluations are registered by certification bodies (AddEvaluation) or declared as self-assessed, not as declared evidence",
            ));
        }
        let policy = self.sector_policy(key.sector.as_str())?;
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
        let _guard = self
            .writing
            .lock()
            .map_err(|_| invalid("registry lock poisoned"))?;
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
        let text = format!(
            "registered level {} ({})",
            assessment.level.get(),
            assessment.status.as_str()
        );
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
        let policy = self.sector_policy(key.sector.as_str())?;
        let now = OffsetDateTime::now_utc();
        let evaluation = self.evaluation_of(input, policy, &caller.name, self_assessed, now)?;
        let _guard = self
            .writing
            .lock()
            .map_err(|_| invalid("registry lock poisoned"))?;
        let mut record = self.load(&key)?;
        let text = format!(
            "{} {}:{} ({}) registered",
            if self_assessed {
                "self-assessment"
            } else {
                "evaluation"
            },
            evaluation.scheme,
            evaluation.result,
            evaluation.certificate_number
        );
        record.add_evaluation(evaluation)?;
        let assessment = record.assess(policy, now)?;
        let kind = if self_assessed {
            "model.self-assessed"
        } else {
            "model.evaluated"
        };
        self.commit(
            record,
            assessment,
            &actor(caller),
            kind,
            text,
            &req.reason,
            now,
        )
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
        let policy = self.sector_policy(key.sector.as_str())?;
        let now = OffsetDateTime::now_utc();
        let _guard = self
            .writing
            .lock()
            .map_err(|_| invalid("registry lock poisoned"))?;
        let mut record = self.load(&key)?;
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
        let text = format!(
            "evaluation {}:{} ({}) withdrawn",
            e.scheme, e.result, e.certificate_number
        );
        let assessment = record.assess(policy, now)?;
        self.commit(
            record,
            assessment,
            &actor(caller),
            "model.withdrawn",
            text,
            &req.reason,
            now,
        )
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
        let policy = self.sector_policy(key.sector.as_str())?;
        let now = OffsetDateTime::now_utc();
        let _guard = self
            .writing
            .lock()
            .map_err(|_| invalid("registry lock poisoned"))?;
        let mut record = self.load(&key)?;
        let (kind, text) = match (req.lift, record.suspended.is_some()) {
            (false, true) => {
                return Err(TrustDbError::FailedPrecondition(format!(
                    "{key} is already suspended"
                )));
            }
            (true, false) => {
                return Err(TrustDbError::FailedPrecondition(format!(
                    "{key} is not suspended"
                )));
            }
            (false, false) => {
                record.suspended = Some((now.unix_timestamp(), req.reason.clone()));
                ("model.suspended", "suspended".to_owned())
            }
            (true, true) => {
                record.suspended = None;
                ("model.reinstated", "suspension lifted".to_owned())
            }
        };
        let assessment = record.assess(policy, now)?;
        self.commit(
            record,
            assessment,
            &actor(caller),
            kind,
            text,
            &req.reason,
            now,
        )
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
        let policy = self.sector_policy(&req.sector)?;
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
            let _guard = self
                .writing
                .lock()
                .map_err(|_| invalid("registry lock poisoned"))?;
            // Read again under the lock: a change may have landed since.
            let record = self.load(&stale.key)?;
            let assessment = record.assess(policy, now)?;
            if assessment.level.get() == record.level && assessment.status == record.status {
                continue;
            }
            let text = format!(
                "re-assessed: level {} -> {} ({} -> {})",
                record.level,
                assessment.level.get(),
                record.status.as_str(),
                assessment.status.as_str()
            );
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

    /// The trust changes that bring every enrolled device of `record`'s
    /// model and range in line with it.
    fn fleet_changes(
        &self,
        record: &ModelRecord,
        who: &str,
        reason: &str,
    ) -> Result<(u64, Vec<TrustChange>), TrustDbError> {
        let model_level = TrustLevel::new(record.level as i64)?;
        let suspended = record.status == ModelStatus::Suspended;
        let mut matched = 0;
        let mut changes = Vec::new();
        for d in self
            .storage
            .devices_with_prefix(&record.key.device_prefix())?
        {
            if !record.key.firmware.contains(&d.firmware_version) {
                continue;
            }
            matched += 1;
            let Some(trust) = self.storage.trust_record(&d.identity_key)? else {
                continue;
            };
            if matches!(trust.status, TrustStatus::Revoked | TrustStatus::Retired) {
                continue;
            }
            let certificate_level =
                TrustLevel::new(d.certificate_level as i64).unwrap_or(TrustLevel::MIN);
            let target = device_level(model_level, certificate_level).get();
            let mut history = None;
            let mut history_of = || -> Result<Vec<String>, TrustDbError> {
                if history.is_none() {
                    history = Some(
                        self.storage
                            .history(&d.identity_key)?
                            .into_iter()
                            .map(|h| h.change)
                            .collect::<Vec<_>>(),
                    );
                }
                Ok(history.clone().unwrap_or_default())
            };
            // Lower at once; raise only what the registry itself lowered
            // (an operator's lowering stands until the operator lifts it).
            let level = if target < trust.level
                || (target > trust.level && last_level_set_by_registry(&history_of()?))
            {
                Some(target)
            } else {
                None
            };
            let status = if suspended && trust.status == TrustStatus::Active {
                Some(TrustStatus::Suspended)
            } else if !suspended
                && trust.status == TrustStatus::Suspended
                && history_of()?
                    .last()
                    .is_some_and(|c| c.starts_with(MODEL_SUSPENDED))
            {
                Some(TrustStatus::Active)
            } else {
                None
            };
            if level.is_none() && status.is_none() {
                continue;
            }
            let what = match status {
                Some(TrustStatus::Suspended) => MODEL_SUSPENDED,
                Some(_) => "model reinstated",
                None => MODEL_LEVEL,
            };
            // Only a level change says "level a -> b", so the history tells
            // who set the level last (see `last_level_set_by_registry`).
            let moved = match level {
                Some(l) => format!(" level {} -> {l}", trust.level),
                None => String::new(),
            };
            changes.push(TrustChange {
                identity_key: d.identity_key.clone(),
                level,
                status,
                actor: who.to_owned(),
                change: format!(
                    "{what}: {}{moved} ({} v{})",
                    record.key,
                    record.status.as_str(),
                    record.version
                ),
                reason: reason.to_owned(),
                audit_kind: "trust.model-changed".to_owned(),
            });
        }
        Ok((matched, changes))
    }

    /// Stores the record with its history entry and moves its fleet, in
    /// one transaction; then sweeps once more for devices enrolled while
    /// the change was being prepared.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        mut record: ModelRecord,
        assessment: Assessment,
        who: &str,
        audit_kind: &str,
        text: String,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<msg::ModelChangeResponse, TrustDbError> {
        let at = now.unix_timestamp();
        let who = who.to_owned();
        let before = (record.level, record.status);
        record.record_change(&assessment, at, &who, text.clone(), reason);
        let (matched, changes) = self.fleet_changes(&record, &who, reason)?;
        let detail = format!(
            "{{\"change\":{},\"reason\":{},\"level\":{},\"status\":\"{}\",\"version\":{},\"previous_level\":{},\"previous_status\":\"{}\",\"devices_changed\":{}}}",
            json_str(&text),
            json_str(reason),
            record.level,
            record.status.as_str(),
            record.version,
            before.0,
            before.1.as_str(),
            changes.len()
        );
        let audit = BlobAudit {
            actor: who.clone(),
            kind: audit_kind.to_owned(),
            subject: record.key.store_key(),
            detail,
            at,
        };
        let mut changed = changes.len() as u64;
        self.storage.commit_model_change(
            MODEL_SPACE,
            &[(record.key.store_key().into_bytes(), record.to_bytes())],
            &audit,
            &changes,
        )?;
        let (_, stragglers) = self.fleet_changes(&record, &who, reason)?;
        if !stragglers.is_empty() {
            changed += stragglers.len() as u64;
            self.storage.apply_trust_changes(&stragglers, at)?;
        }
        tracing::info!(
            rpc = "ModelRegistry",
            caller = %who,
            model = %record.key,
            event = audit_kind,
            level = record.level,
            status = record.status.as_str(),
            devices_matched = matched,
            devices_changed = changed,
            "model registry change"
        );
        Ok(msg::ModelChangeResponse {
            model: Some(model_view(&record)),
            devices_matched: matched,
            devices_changed: changed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trustca_store::{
        CertificateRecord, CertificateStatus, DeviceRecord, Issuance, SledStorage,
    };

    fn policies() -> PolicySet {
        let sector = |name: &str, text: &str| (format!("sectors/{name}.toml"), text.to_owned());
        let detection =
            |name: &str, text: &str| (format!("detection/{name}.toml"), text.to_owned());
        PolicySet::parse(
            ("pki.toml", include_str!("../../policies/pki.toml")),
            &[
                sector(
                    "automotive",
                    include_str!("../../policies/sectors/automotive.toml"),
                ),
                sector("hems", include_str!("../../policies/sectors/hems.toml")),
                sector(
                    "healthcare",
                    include_str!("../../policies/sectors/healthcare.toml"),
                ),
            ],
            (
                "cooperation.toml",
                include_str!("../../policies/cooperation.toml"),
            ),
            (
                "recognition.toml",
                include_str!("../../policies/recognition.toml"),
            ),
            &[
                detection(
                    "automotive",
                    include_str!("../../policies/detection/automotive.toml"),
                ),
                detection("hems", include_str!("../../policies/detection/hems.toml")),
                detection(
                    "healthcare",
                    include_str!("../../policies/detection/healthcare.toml"),
                ),
            ],
        )
        .unwrap()
    }

    fn caller(kind: CertificateKind, name: &str, schemes: &[&str]) -> Credential {
        let sector = SectorName::new("automotive").unwrap();
        Credential {
            kind,
            sector: sector.clone(),
            sectors: vec![sector.clone()],
            name: name.into(),
            serial: "01".into(),
            extension: trustca_model::TrustLevelExtension {
                kind,
                sector: sector.clone(),
                level: None,
                policy_version: "t".into(),
                basis: vec![],
                authorized_sectors: vec![sector],
                permitted_schemes: schemes.iter().map(|s| s.to_string()).collect(),
            },
            identity: None,
            key_fingerprint: [0; 32],
        }
    }

    fn device(n: u8, firmware: &str, level: u8) -> Issuance {
        let key = format!("automotive/acme/ev-9/sn{n}");
        Issuance {
            certificate: CertificateRecord {
                serial: vec![n; 16],
                der: vec![0x30, 0x01, n],
                sector: "automotive".into(),
                kind: "long-term".into(),
                identity_key: Some(key.clone()),
                issued_at: 1,
                not_after: 4_000_000_000,
                status: CertificateStatus::Active,
            },
            device: Some(DeviceRecord {
                identity_key: key,
                urn: format!("urn:trustca:automotive:Acme:EV-9:SN{n}"),
                sector: "automotive".into(),
                manufacturer: "Acme".into(),
                model: "EV-9".into(),
                serial: format!("SN{n}"),
                firmware_version: firmware.into(),
                certificate_level: level,
                policy_version: "t".into(),
                enrolled_at: 1,
                certificates: vec![],
            }),
            renewal: false,
            actor: "manufacturer:Acme".into(),
            audit_kind: "certificate.issued".into(),
            audit_detail: "{}".into(),
        }
    }

    fn selector(firmware: &str) -> Option<msg::ModelSelector> {
        Some(msg::ModelSelector {
            sector: "automotive".into(),
            manufacturer: "Acme".into(),
            model: "EV-9".into(),
            firmware: firmware.into(),
        })
    }

    fn day(offset: i64) -> String {
        (OffsetDateTime::now_utc() + time::Duration::days(offset))
            .date()
            .to_string()
    }

    fn registry() -> (tempfile::TempDir, Arc<dyn Storage>, ModelRegistry) {
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> =
            Arc::new(SledStorage::open(&dir.path().join("db")).unwrap());
        let registry = ModelRegistry::new(Arc::clone(&storage), Arc::new(policies()));
        (dir, storage, registry)
    }

    #[test]
    fn the_level_is_raised_back_only_when_the_registry_set_it() {
        let h = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(last_level_set_by_registry(&h(&[
            "enrolled level=4",
            "model level: x level 4 -> 2 (withdrawn v3)",
            "model suspended: x (suspended v4)",
        ])));
        assert!(!last_level_set_by_registry(&h(&[
            "enrolled level=4",
            "model level: x level 4 -> 2 (withdrawn v3)",
            "level 2 -> 1",
        ])));
        assert!(!last_level_set_by_registry(&h(&["enrolled level=4"])));
        assert!(!last_level_set_by_registry(&h(&[])));
    }

    #[test]
    fn a_withdrawal_moves_only_devices_in_the_range() {
        let (_dir, storage, registry) = registry();
        let acme = caller(CertificateKind::Manufacturer, "Acme", &[]);
        let tuv = caller(
            CertificateKind::CertificationBody,
            "TUV",
            &["iso-sae-21434"],
        );
        registry
            .register(
                &acme,
                &msg::RegisterModelRequest {
                    model: selector("1.0..1.9"),
                    declared: vec![
                        msg::EvidenceItem {
                            r#type: "hardware-root-of-trust".into(),
                            value: "secure-element".into(),
                            ..Default::default()
                        },
                        msg::EvidenceItem {
                            r#type: "secure-update".into(),
                            value: "true".into(),
                            ..Default::default()
                        },
                        msg::EvidenceItem {
                            r#type: "supported-until".into(),
                            value: day(3650),
                            ..Default::default()
                        },
                    ],
                    self_assessed: vec![],
                    reason: "r".into(),
                },
            )
            .unwrap();
        let r = registry
            .add_evaluation(
                &tuv,
                &msg::AddEvaluationRequest {
                    model: selector("1.0..1.9"),
                    evaluation: Some(msg::ModelEvaluationInput {
                        scheme: "iso-sae-21434".into(),
                        result: "CAL3".into(),
                        certificate_number: "T-1".into(),
                        evaluated_at: day(-1),
                        valid_until: day(300),
                    }),
                    reason: "r".into(),
                },
            )
            .unwrap();
        assert_eq!(r.model.unwrap().level, 4);
        let batch = [
            device(1, "1.2", 4),
            device(2, "1.9", 4),
            device(3, "2.0", 4),
        ];
        assert!(storage.commit_issuances(&batch).iter().all(|r| r.is_ok()));
        let r = registry
            .withdraw_evaluation(
                &tuv,
                &msg::WithdrawEvaluationRequest {
                    model: selector("1.0..1.9"),
                    certificate_number: "T-1".into(),
                    reason: "r".into(),
                },
            )
            .unwrap();
        assert_eq!((r.devices_matched, r.devices_changed), (2, 2));
        let level = |n: u8| {
            storage
                .trust_record(&format!("automotive/acme/ev-9/sn{n}"))
                .unwrap()
                .unwrap()
                .level
        };
        assert_eq!((level(1), level(2), level(3)), (2, 2, 4));
        // A scheme the body may not use, and a withdrawal of a withdrawn
        // evaluation, change nothing.
        let before = storage.audit_head().unwrap().0;
        let err = registry
            .add_evaluation(
                &tuv,
                &msg::AddEvaluationRequest {
                    model: selector("1.0..1.9"),
                    evaluation: Some(msg::ModelEvaluationInput {
                        scheme: "common-criteria".into(),
                        result: "EAL4+".into(),
                        certificate_number: "T-2".into(),
                        evaluated_at: day(-1),
                        valid_until: day(300),
                    }),
                    reason: "r".into(),
                },
            )
            .unwrap_err();
        assert!(matches!(err, TrustDbError::PermissionDenied(_)), "{err}");
        let err = registry
            .withdraw_evaluation(
                &tuv,
                &msg::WithdrawEvaluationRequest {
                    model: selector("1.0..1.9"),
                    certificate_number: "T-1".into(),
                    reason: "again".into(),
                },
            )
            .unwrap_err();
        assert!(matches!(err, TrustDbError::FailedPrecondition(_)), "{err}");
        assert_eq!(storage.audit_head().unwrap().0, before);
    }

    #[test]
    fn an_expired_evaluation_moves_the_fleet_at_the_next_sweep() {
        let (_dir, storage, registry) = registry();
        let acme = caller(CertificateKind::Manufacturer, "Acme", &[]);
        let tuv = caller(
            CertificateKind::CertificationBody,
            "TUV",
            &["iso-sae-21434"],
        );
        registry
            .register(
                &acme,
                &msg::RegisterModelRequest {
                    model: selector("1.0.."),
                    declared: vec![msg::EvidenceItem {
                        r#type: "secure-update".into(),
                        value: "true".into(),
                        ..Default::default()
                    }],
                    self_assessed: vec![],
                    reason: "r".into(),
                },
            )
            .unwrap();
        registry
            .add_evaluation(
                &tuv,
                &msg::AddEvaluationRequest {
                    model: selector("1.0.."),
                    evaluation: Some(msg::ModelEvaluationInput {
                        scheme: "iso-sae-21434".into(),
                        result: "CAL2".into(),
                        certificate_number: "T-9".into(),
                        evaluated_at: day(-1),
                        valid_until: day(30),
                    }),
                    reason: "r".into(),
                },
            )
            .unwrap();
        assert!(
            storage
                .commit_issuances(&[device(7, "1.3", 3)])
                .iter()
                .all(|r| r.is_ok())
        );
        assert_eq!(registry.reassess_all(OffsetDateTime::now_utc()).unwrap(), 0);
        let later = OffsetDateTime::now_utc() + time::Duration::days(31);
        assert_eq!(registry.reassess_all(later).unwrap(), 1);
        let record = storage
            .trust_record("automotive/acme/ev-9/sn7")
            .unwrap()
            .unwrap();
        assert_eq!(record.level, 2);
        let history = storage.history("automotive/acme/ev-9/sn7").unwrap();
        assert_eq!(history.last().unwrap().actor, "registry:expiry");
        assert_eq!(
            registry.reassess_all(later).unwrap(),
            0,
            "nothing left to move"
        );
    }

    #[test]
    fn bad_input_is_refused_precisely() {
        let (_dir, _storage, registry) = registry();
        let acme = caller(CertificateKind::Manufacturer, "Acme", &[]);
        let register = |firmware: &str, reason: &str| {
            registry.register(
                &acme,
                &msg::RegisterModelRequest {
                    model: selector(firmware),
                    declared: vec![],
                    self_assessed: vec![],
                    reason: reason.into(),
                },
            )
        };
        assert!(matches!(
            register("", "r"),
            Err(TrustDbError::InvalidRequest(_))
        ));
        assert!(matches!(
            register("2.0..1.0", "r"),
            Err(TrustDbError::Model(_))
        ));
        assert!(matches!(
            register("1.0", ""),
            Err(TrustDbError::InvalidRequest(_))
        ));
        assert!(matches!(
            register("1.0", "bad\nreason"),
            Err(TrustDbError::InvalidRequest(_))
        ));
        register("1.0", "r").unwrap();
        assert!(matches!(
            register("..1.0", "r"),
            Err(TrustDbError::FailedPrecondition(_))
        ));
        let err = registry
            .get(&msg::GetModelRequest {
                model: selector("1.1"),
            })
            .unwrap_err();
        assert!(matches!(err, TrustDbError::NotFound(_)), "{err}");
    }
}
