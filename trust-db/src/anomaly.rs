//! Anomaly reports → trust levels. A gateway (or SOC) reports what it saw
//! about a device; the report is stored and audited; the sector's detection
//! template counts reports of that kind in its window and, at its
//! threshold, acts through the same trust-record path as an operator
//! (history, audit, immediate effect on decisions). Known false positives
//! (a burst after a silence) are tolerated and only notified.

use crate::msg;
use serde_json::json;
use time::OffsetDateTime;
use trustca_model::{
    AnomalyKind, CertificateKind, Credential, DetectionAction, DeviceChange, TrustStatus,
};
use trustca_store::{BlobAudit, TrustChange};

use crate::TrustDbError;
use crate::engine::TrustEngine;

const SPACE: &str = "anomaly";
const MAX_EVIDENCE: usize = 16;
const MAX_EVIDENCE_TEXT: usize = 256;

fn key_prefix(identity_key: &str, kind: AnomalyKind) -> Vec<u8> {
    let mut k = identity_key.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(kind.as_str().as_bytes());
    k.push(0);
    k
}

impl TrustEngine {
    /// Handles one report; returns the outcome and, when the provider must
    /// hear of it, the notification (JSON).
    pub fn report_anomaly(
        &self,
        caller: &Credential,
        req: msg::AnomalyReport,
    ) -> Result<(msg::AnomalyOutcome, Option<String>), TrustDbError> {
        if caller.kind != CertificateKind::Gateway {
            return Err(TrustDbError::PermissionDenied(format!(
                "anomaly reports need a gateway credential; the caller holds {} certificate",
                caller.kind.with_article()
            )));
        }
        if req.evidence.len() > MAX_EVIDENCE
            || req
                .evidence
                .iter()
                .any(|(k, v)| k.len() > MAX_EVIDENCE_TEXT || v.len() > MAX_EVIDENCE_TEXT)
        {
            return Err(TrustDbError::InvalidRequest(format!(
                "evidence is limited to {MAX_EVIDENCE} entries of {MAX_EVIDENCE_TEXT} bytes"
            )));
        }
        let now = OffsetDateTime::now_utc();
        let chain = req.device.map(|c| c.certificates).unwrap_or_default();
        if chain.is_empty() || chain.len() > crate::MAX_CHAIN {
            return Err(TrustDbError::InvalidRequest(
                "the device's certificate chain is required".into(),
            ));
        }
        let verified = self
            .verify_peer(&chain, now)
            .map_err(TrustDbError::InvalidRequest)?;
        if verified
            .extension
            .as_ref()
            .is_some_and(|e| e.kind == CertificateKind::Pseudonym)
        {
            return Err(TrustDbError::FailedPrecondition(
                "pseudonym subjects go to the misbehaviour authority, which alone can resolve them"
                    .into(),
            ));
        }
        let identity = verified
            .identity
            .clone()
            .ok_or_else(|| TrustDbError::InvalidRequest("certificate names no device".into()))?;
        if !caller.may_act_for(&identity.sector) {
            return Err(TrustDbError::PermissionDenied(format!(
                "gateway {} is not authorized for sector {}",
                caller.name, identity.sector
            )));
        }
        if !self.is_local(&identity.sector) {
            return Err(TrustDbError::FailedPrecondition(format!(
                "report anomalies of {} devices to the {} database",
                identity.sector, identity.sector
            )));
        }
        let key = identity.key();
        let record = self
            .storage()
            .trust_record(&key)?
            .ok_or_else(|| TrustDbError::NotFound(format!("{} is not enrolled", identity.urn())))?;
        let observed_at = if req.observed_at == 0 {
            now.unix_timestamp()
        } else {
            req.observed_at
        };
        if (observed_at - now.unix_timestamp()).abs() > 7 * 24 * 3600 {
            return Err(TrustDbError::InvalidRequest(
                "observed_at is more than a week from now".into(),
            ));
        }
        let actor = format!("gateway:{}", caller.name);
        let evidence = json!(req.evidence);
        let mut record_key = key_prefix(&key, req.anomaly);
        record_key.extend_from_slice(&observed_at.to_be_bytes());
        record_key.extend_from_slice(&now.unix_timestamp_nanos().to_be_bytes()[8..]);
        let stored = json!({"gateway": caller.name, "evidence": evidence}).to_string();
        self.storage().blob_put(
            SPACE,
            &[(record_key, stored.into_bytes())],
            false,
            Some(&BlobAudit {
                actor: actor.clone(),
                kind: "anomaly.reported".into(),
                subject: identity.urn(),
                detail: json!({"anomaly": req.anomaly, "observed_at": observed_at, "evidence": evidence}).to_string(),
                at: now.unix_timestamp(),
            }),
        )?;

        let detection = self.detection();
        let mut outcome = msg::AnomalyOutcome {
            identity: identity.urn(),
            action: msg::AnomalyAction::None,
            severity: None,
            count_in_window: 0,
            threshold: 0,
            record: None,
            reasons: Vec::new(),
        };
        let Some(t) = detection.template(&identity.sector, req.anomaly) else {
            outcome.reasons.push(format!(
                "no {} template for {}: recorded only",
                identity.sector, req.anomaly
            ));
            return Ok((outcome, None));
        };
        let count_since = |kind: AnomalyKind, minutes: u32| -> Result<u32, TrustDbError> {
            let from = observed_at - minutes as i64 * 60;
            let prefix = key_prefix(&key, kind);
            // One device's reports of one kind: few by construction.
            Ok(self
                .storage()
                .blob_scan(SPACE, &prefix)?
                .iter()
                .filter_map(|(k, _)| k.get(prefix.len()..prefix.len() + 8))
                .filter_map(|b| b.try_into().ok().map(i64::from_be_bytes))
                .filter(|at| *at >= from && *at <= observed_at)
                .count() as u32)
        };
        let count = count_since(req.anomaly, t.window_minutes)?;
        outcome.severity = Some(t.severity);
        outcome.count_in_window = count;
        outcome.threshold = t.threshold;
        let tolerated = match &t.tolerate_after {
            Some((kind, minutes)) => count_since(*kind, *minutes)? > 0,
            None => false,
        };
        if count < t.threshold {
            outcome.reasons.push(format!(
                "{count} of {} {} reports within {} min: below threshold",
                t.threshold, t.anomaly, t.window_minutes
            ));
            return Ok((outcome, None));
        }
        let why = format!(
            "anomaly {} x{count} within {} min (severity {}){}",
            t.anomaly,
            t.window_minutes,
            t.severity,
            if t.note.is_empty() {
                String::new()
            } else {
                format!(": {}", t.note)
            }
        );
        let mut action = t.action;
        if tolerated {
            action = DetectionAction::Notify;
            outcome.action = msg::AnomalyAction::Tolerated;
            outcome.reasons.push(format!(
                "tolerated: follows a {} report (known false positive, e.g. reconnect after an underground car park)",
                t.tolerate_after.map(|(k, _)| k.as_str()).unwrap_or("")
            ));
        } else {
            outcome.action = action.into();
        }
        let at = now.unix_timestamp();
        let change = |level: Option<u8>, status: Option<TrustStatus>, what| TrustChange {
            identity_key: key.clone(),
            level,
            status,
            actor: actor.clone(),
            change: what,
            reason: why.clone(),
            audit_kind: "anomaly.action".into(),
        };
        let updated = match action {
            DetectionAction::Notify => None,
            DetectionAction::Lower => {
                let to = record.level.saturating_sub(t.lower_by).max(1);
                (to < record.level
                    && matches!(record.status, TrustStatus::Active | TrustStatus::Suspended))
                .then(|| {
                    change(
                        Some(to),
                        None,
                        DeviceChange::AnomalyLowered {
                            from: record.level,
                            to,
                            anomaly: t.anomaly,
                        },
                    )
                })
            }
            DetectionAction::Suspend => (record.status == TrustStatus::Active).then(|| {
                change(
                    None,
                    Some(TrustStatus::Suspended),
                    DeviceChange::AnomalySuspended { anomaly: t.anomaly },
                )
            }),
            DetectionAction::Revoke => {
                let serials: Vec<Vec<u8>> = self
                    .storage()
                    .device(&key)?
                    .map(|d| {
                        d.certificates
                            .iter()
                            .filter_map(|h| trustca_model::hexfmt::decode(h))
                            .collect()
                    })
                    .unwrap_or_default();
                self.storage().revoke(&serials, 1, &actor, &why, at)?;
                self.after_revocation(&identity.sector);
                // Revoking the device's last valid certificate moves its trust
                // record to `revoked` in the same store transaction; a second,
                // separate trust change would open a window in which the
                // certificates are revoked but the record still says active.
                // Only a device without certificates needs the change here.
                let now_revoked = self
                    .storage()
                    .trust_record(&key)?
                    .is_some_and(|r| r.status == TrustStatus::Revoked);
                (!now_revoked).then(|| {
                    change(
                        None,
                        Some(TrustStatus::Revoked),
                        DeviceChange::AnomalyRevoked { anomaly: t.anomaly },
                    )
                })
            }
        };
        let after = match updated {
            Some(c) => self.storage().apply_trust_changes(&[c], at)?.pop(),
            None => self.storage().trust_record(&key)?,
        };
        if let Some(r) = &after {
            outcome.record = Some(msg::TrustRecordView {
                identity: identity.urn(),
                sector: r.sector.clone(),
                level: r.level as u32,
                status: r.status,
                version: r.version,
                updated_at: r.updated_at,
            });
        }
        outcome.reasons.push(why);
        let notification = json!({
            "event": "anomaly",
            "device": identity.urn(),
            "sector": identity.sector.as_str(),
            "anomaly": t.anomaly,
            "threat_level": t.severity.as_str(),
            "count_in_window": count,
            "threshold": t.threshold,
            "window_minutes": t.window_minutes,
            "action": outcome.action.as_str(),
            "level": after.as_ref().map(|r| r.level),
            "status": after.as_ref().map(|r| r.status.as_str()),
            "reported_by": caller.name,
            "observed_at": observed_at,
            "evidence": evidence,
            "template_note": t.note,
            "detection_version": detection.version(&identity.sector),
        })
        .to_string();
        tracing::info!(rpc = "ReportAnomaly", gateway = %caller.name, device = %identity, anomaly = %t.anomaly, action = %outcome.action, count);
        Ok((outcome, Some(notification)))
    }
}
