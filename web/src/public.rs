//! The public label pages: what one registered model and one device show
//! people, read live from the store, as a view that renders to HTML (see
//! [`crate::render`]) or JSON. What each sector shows is the web policy's
//! [`SectorExposure`]; nothing here decides a level, it only reads the
//! trust database's records.

use serde::Serialize;
use trustca_model::{DeviceChange, ModelEvaluation, ModelRecord, TrustStatus};
use trustca_store::Storage;
use trustca_store::registry::{model_for_firmware, model_ranges};

use crate::WebError;
use crate::policy::SectorExposure;

/// One evaluation of a model, as shown.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationView {
    /// Scheme, e.g. `iso-sae-21434`.
    pub scheme: String,
    /// Result, e.g. `CAL3`.
    pub result: String,
    /// The evaluation certificate's number.
    pub certificate_number: String,
    /// `third-party` or `self-assessed`.
    pub kind: &'static str,
    /// `live`, `expired` or `withdrawn`.
    pub state: &'static str,
    /// Unix time it stops counting.
    pub valid_until: i64,
}

/// One registered firmware range of a model.
#[derive(Debug, Clone, Serialize)]
pub struct RangeView {
    /// The range, e.g. `1.0-1.9`.
    pub firmware: String,
    /// The model's level over this range.
    pub level: u8,
    /// `certified`, `provisional`, `suspended` or `withdrawn`.
    pub status: &'static str,
    /// Unix time of the last change.
    pub since: i64,
    /// Why it is suspended, when it is and the policy shows reasons.
    pub reason: Option<String>,
    /// Declared end of support (YYYY-MM-DD).
    pub supported_until: Option<String>,
    /// Its evaluations.
    pub evaluations: Vec<EvaluationView>,
}

/// The label page of a registered model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelLabel {
    /// Sector.
    pub sector: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Every registered firmware range.
    pub ranges: Vec<RangeView>,
    /// Unix time the records were read.
    pub checked_at: i64,
}

/// The label page of one device.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceLabel {
    /// Sector.
    pub sector: String,
    /// Manufacturer.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Serial, when the sector shows it.
    pub serial: Option<String>,
    /// Firmware version at the last enrollment.
    pub firmware: String,
    /// The registered range holding that version, if registered.
    pub firmware_range: Option<String>,
    /// The live level.
    pub level: u8,
    /// The level its certificate states.
    pub certificate_level: u8,
    /// `active`, `restricted` (active below its certificate's level),
    /// `suspended`, `revoked` or `retired`.
    pub status: &'static str,
    /// Unix time of the last change of the trust record.
    pub since: i64,
    /// The class of the last change's reason.
    pub reason_class: &'static str,
    /// The last change's reason, when the policy shows reasons.
    pub reason: Option<String>,
    /// Declared end of support of its model.
    pub supported_until: Option<String>,
    /// Its model's evaluations.
    pub evaluations: Vec<EvaluationView>,
    /// Unix time the records were read.
    pub checked_at: i64,
}

impl DeviceLabel {
    /// Whether it may be trusted at all now.
    pub fn trusted(&self) -> bool {
        matches!(self.status, "active" | "restricted")
    }
}

fn evaluation_view(e: &ModelEvaluation, now: i64) -> EvaluationView {
    EvaluationView {
        scheme: e.scheme.clone(),
        result: e.result.clone(),
        certificate_number: e.certificate_number.clone(),
        kind: if e.self_assessed {
            "self-assessed"
        } else {
            "third-party"
        },
        state: if e.withdrawn_at.is_some() {
            "withdrawn"
        } else if e.is_live(now) {
            "live"
        } else {
            "expired"
        },
        valid_until: e.valid_until,
    }
}

fn range_view(r: &ModelRecord, exposure: SectorExposure, now: i64) -> RangeView {
    RangeView {
        firmware: r.key.firmware.to_string(),
        level: r.level,
        status: r.status.as_str(),
        since: r.updated_at,
        reason: r
            .suspended
            .as_ref()
            .filter(|_| exposure.show_reasons)
            .map(|(_, why)| why.clone()),
        supported_until: r.supported_until.clone(),
        evaluations: r
            .evaluations
            .iter()
            .map(|e| evaluation_view(e, now))
            .collect(),
    }
}

/// The label of the model `sector/manufacturer/model`, or `None` when it is
/// not registered or its sector shows no model pages.
pub fn model_label(
    storage: &dyn Storage,
    exposure: SectorExposure,
    (sector, manufacturer, model): (&str, &str, &str),
    now: i64,
) -> Result<Option<ModelLabel>, WebError> {
    if !exposure.model_pages {
        return Ok(None);
    }
    let ranges = model_ranges(storage, sector, manufacturer, model)?;
    let Some(first) = ranges.first() else {
        return Ok(None);
    };
    Ok(Some(ModelLabel {
        sector: first.key.sector.as_str().to_owned(),
        manufacturer: first.key.manufacturer.clone(),
        model: first.key.model.clone(),
        ranges: ranges
            .iter()
            .map(|r| range_view(r, exposure, now))
            .collect(),
        checked_at: now,
    }))
}

/// The class of a trust-record change: the public sees this rather than an
/// operator's free text.
pub fn reason_class(change: &DeviceChange) -> &'static str {
    match change {
        DeviceChange::Enrolled { .. } | DeviceChange::Renewed { .. } => "enrollment",
        DeviceChange::CertificatesRevoked { .. }
        | DeviceChange::AnomalyRevoked { .. }
        | DeviceChange::Retired => "revocation",
        DeviceChange::AnomalyLowered { .. } | DeviceChange::AnomalySuspended { .. } => "anomaly",
        DeviceChange::BulkDowngrade { .. } => "downgrade",
        DeviceChange::ModelMoved { .. } => "model registry",
        DeviceChange::TookOver { .. } | DeviceChange::ReplacedBy { .. } => "transfer",
        DeviceChange::Copied { change, .. } => reason_class(change),
        DeviceChange::Recorded(text) => recorded_class(text),
        _ => "operator change",
    }
}

/// The class of a change whose text is in no form of this build's (an
/// older build's words), from the words in it.
fn recorded_class(text: &str) -> &'static str {
    let c = text.to_ascii_lowercase();
    if c.starts_with("enrolled") || c.starts_with("renewed") || c.starts_with("re-enrolled") {
        "enrollment"
    } else if c.contains("revok") {
        "revocation"
    } else if c.contains("anomal") {
        "anomaly"
    } else if c.contains("downgrade") {
        "downgrade"
    } else if c.contains("firmware") {
        // The registry writes "<what>: <model key> firmware <range> ...".
        "model registry"
    } else if c.contains("took over") || c.contains("successor") {
        "transfer"
    } else {
        "operator change"
    }
}

/// The label of the device with `identity_key`, or `None` when it is not
/// enrolled or its sector shows no device pages.
pub fn device_label(
    storage: &dyn Storage,
    exposure: SectorExposure,
    identity_key: &str,
    now: i64,
) -> Result<Option<DeviceLabel>, WebError> {
    if !exposure.device_pages {
        return Ok(None);
    }
    let (Some(device), Some(trust)) = (
        storage.device(identity_key)?,
        storage.trust_record(identity_key)?,
    ) else {
        return Ok(None);
    };
    let model = model_for_firmware(
        storage,
        &device.sector,
        &device.manufacturer,
        &device.model,
        &device.firmware_version,
    )?;
    let last = storage.history(identity_key)?.pop();
    let status = match trust.status {
        TrustStatus::Active if trust.level < device.certificate_level => "restricted",
        other => other.as_str(),
    };
    Ok(Some(DeviceLabel {
        sector: device.sector,
        manufacturer: device.manufacturer,
        model: device.model,
        serial: exposure.show_serial.then_some(device.serial),
        firmware: device.firmware_version,
        firmware_range: model.as_ref().map(|m| m.key.firmware.to_string()),
        level: trust.level,
        certificate_level: device.certificate_level,
        status,
        since: trust.updated_at,
        reason_class: last
            .as_ref()
            .map_or("enrollment", |h| reason_class(&h.change)),
        reason: last
            .filter(|_| exposure.show_reasons)
            .map(|h| h.reason)
            .filter(|r| !r.is_empty()),
        supported_until: model.as_ref().and_then(|m| m.supported_until.clone()),
        evaluations: model
            .map(|m| {
                m.evaluations
                    .iter()
                    .map(|e| evaluation_view(e, now))
                    .collect()
            })
            .unwrap_or_default(),
        checked_at: now,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_class(text: &str) -> &'static str {
        super::reason_class(&DeviceChange::parse(text))
    }

    #[test]
    fn reason_classes_follow_the_trust_databases_words() {
        assert_eq!(reason_class("enrolled level=4"), "enrollment");
        assert_eq!(reason_class("revoked (keyCompromise)"), "revocation");
        assert_eq!(
            reason_class("bulk downgrade level 4 -> 2 (firmware 1.0)"),
            "downgrade"
        );
        assert_eq!(
            reason_class("suspended: hems/acme/hub firmware 1.0-2.0 (suspended v3)"),
            "model registry"
        );
        assert_eq!(reason_class("took over the trust record of x"), "transfer");
        assert_eq!(reason_class("level 4 -> 3"), "operator change");
        // Typed forms keep the classes their words had.
        assert_eq!(
            reason_class("renewed firmware=2.0 level 3->4"),
            "enrollment"
        );
        assert_eq!(
            reason_class("retired (disposal): every certificate revoked"),
            "revocation"
        );
        assert_eq!(reason_class("revoked (anomaly silence)"), "revocation");
        assert_eq!(reason_class("suspended (anomaly silence)"), "anomaly");
        assert_eq!(
            reason_class("model level: hems/acme/hub firmware 1.0 level 4 -> 2 (withdrawn v2)"),
            "model registry"
        );
        assert_eq!(
            reason_class("retired: replaced by successor hems/acme/hub/s2"),
            "transfer"
        );
        assert_eq!(reason_class("[from a v1] level 4 -> 3"), "operator change");
    }
}
