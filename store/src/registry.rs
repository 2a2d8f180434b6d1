//! Where the model registry's records live: opaque records of the space
//! [`MODEL_SPACE`], keyed by [`ModelKey::store_key`], JSON-encoded
//! [`ModelRecord`]s. The trust database writes them (with the move of every
//! affected device, [`crate::Storage::commit_model_change`]); enrollment
//! and the snapshot builder read them through these functions, so every
//! backend keeps them the same way.

use trustca_model::{ModelKey, ModelRecord};

use crate::{Storage, StoreError};

/// The record space of model records.
pub const MODEL_SPACE: &str = "registry.models";

fn decode(key: &[u8], value: &[u8]) -> Result<ModelRecord, StoreError> {
    ModelRecord::from_bytes(value).map_err(|e| StoreError::Corrupt {
        key: format!("{MODEL_SPACE}/{}", String::from_utf8_lossy(key)),
        reason: e.to_string(),
    })
}

/// Every firmware range registered for one model, in key order.
pub fn model_ranges(
    storage: &dyn Storage,
    sector: &str,
    manufacturer: &str,
    model: &str,
) -> Result<Vec<ModelRecord>, StoreError> {
    let prefix = ModelKey::model_prefix(sector, manufacturer, model);
    // One model's firmware records: a few by construction.
    storage
        .blob_scan(MODEL_SPACE, prefix.as_bytes())?
        .iter()
        .map(|(k, v)| decode(k, v))
        .collect()
}

/// The record whose firmware range holds `firmware_version`, if any.
pub fn model_for_firmware(
    storage: &dyn Storage,
    sector: &str,
    manufacturer: &str,
    model: &str,
    firmware_version: &str,
) -> Result<Option<ModelRecord>, StoreError> {
    let ranges = model_ranges(storage, sector, manufacturer, model)?;
    Ok(range_for_firmware(&ranges, firmware_version).cloned())
}

/// Of one model's records, the one whose firmware range holds
/// `firmware_version`, if any.
pub fn range_for_firmware<'a>(
    ranges: &'a [ModelRecord],
    firmware_version: &str,
) -> Option<&'a ModelRecord> {
    ranges
        .iter()
        .find(|m| m.key.firmware.contains(firmware_version))
}

/// Every model record whose key starts with `prefix` (`""` for all,
/// `"<sector>/"` for one sector's), in key order.
pub fn models_with_prefix(
    storage: &dyn Storage,
    prefix: &str,
) -> Result<Vec<ModelRecord>, StoreError> {
    // Model records grow with the models registered, not with devices.
    storage
        .blob_scan(MODEL_SPACE, prefix.to_ascii_lowercase().as_bytes())?
        .iter()
        .map(|(k, v)| decode(k, v))
        .collect()
}
