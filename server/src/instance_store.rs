//! The store of a sector's instance, made by `trustca sector install`
//! rather than by the first `serve`: the directory an operator takes
//! online is then complete, and its store was opened, sealed under the
//! directory's record-seal key and checked before anything serves it.
//! Its first audit entry (`instance.installed`) names the sector and the
//! CA certificate installed, so the log starts with what the instance is.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use trustca_datadir::DataDir;

use trustca_ca::{CaHierarchy, Passphrase};
use trustca_model::SectorName;
use trustca_store::{BlobAudit, Storage};

use crate::error::{Result, ServerError};
use crate::store::StoreConfig;

/// The record space of what the instance was installed as.
const SPACE: &str = "instance";
/// The one key in [`SPACE`].
const INSTALLED: &[u8] = b"installed";
/// How long to wait for an embedded store to close after it is made.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// What [`create_instance_store`] made.
#[derive(Debug, Clone)]
pub struct InstanceStore {
    /// The store, as logs name it.
    pub store: String,
    /// Audit entries in its log after the check (one: `instance.installed`).
    pub entries: u64,
}

/// Refuses a store that already exists before `sector install` writes
/// anything: an embedded store directory that holds files. (A PostgreSQL
/// database is checked when it is opened: it must hold no audit entry.)
pub fn check_new_store(data: &Path, store: Option<&StoreConfig>) -> Result<()> {
    let config = StoreConfig::or_data_dir(store, data);
    if let Some(dir) = config.embedded_dir()
        && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
    {
        return Err(ServerError::StoreConfig(format!(
            "{} already holds a store; a sector is installed into a new directory (`trustca sector init`)",
            dir.display()
        )));
    }
    Ok(())
}

/// Makes the instance's store (`DATA/db`, or the database `store` names),
/// seals it under the directory's record-seal key, writes the
/// `instance.installed` audit entry (sector, CA certificate's SHA-256),
/// checks the audit log and closes the store again. Refuses a store that
/// already holds audit entries (another instance's, or a second install).
pub fn create_instance_store(
    data: &Path,
    store: Option<&StoreConfig>,
    passphrase: &Passphrase,
    sector: &SectorName,
    ca_der: &[u8],
) -> Result<InstanceStore> {
    check_new_store(data, store)?;
    let config = StoreConfig::or_data_dir(store, data);
    let key = CaHierarchy::read_record_seal_key(data, passphrase)?.ok_or_else(|| {
        ServerError::StoreConfig(format!(
            "{} holds no record-seal key; install the sector CA first",
            DataDir::new(data).ca().display()
        ))
    })?;
    let (guarded, closed) = config.open_guarded()?;
    let before = trustca_store::check_audit_log(guarded.as_ref())?;
    if before.entries > 0 {
        return Err(ServerError::StoreConfig(format!(
            "the store {} already holds {} audit entries; an instance is installed into an empty store",
            config.describe(),
            before.entries
        )));
    }
    let seal = trustca_store::RecordSeal::new(&key);
    seal.learn_floors(guarded.as_ref())?;
    guarded.set_record_seal(Arc::new(seal));
    let ca_sha256 = trustca_model::hexfmt::encode(&trustca_model::fingerprint(ca_der));
    let detail =
        serde_json::json!({ "sector": sector.as_str(), "ca_sha256": ca_sha256 }).to_string();
    guarded.blob_put(
        SPACE,
        &[(INSTALLED.to_vec(), detail.clone().into_bytes())],
        true,
        Some(&BlobAudit {
            actor: "operator:sector-install".into(),
            kind: "instance.installed".into(),
            subject: sector.to_string(),
            detail,
            at: time::OffsetDateTime::now_utc().unix_timestamp(),
        }),
    )?;
    let after = trustca_store::check_audit_log(guarded.as_ref())?;
    if let Some(first) = after.damaged.first() {
        return Err(ServerError::DamagedStore(format!(
            "the new store {} does not verify: {} {}: {}",
            config.describe(),
            first.kind,
            first.key,
            first.reason
        )));
    }
    drop(guarded);
    if config.embedded_dir().is_some() && !closed.wait(CLOSE_WAIT) {
        tracing::warn!(store = %config.describe(), "the new store did not close within 10 s");
    }
    Ok(InstanceStore {
        store: config.describe(),
        entries: after.entries,
    })
}

/// What `sector install` recorded in the store, if anything: the sector and
/// the CA certificate's SHA-256 (tests and `store info` read it).
pub fn installed_as(storage: &dyn Storage) -> Result<Option<serde_json::Value>> {
    Ok(storage
        .blob_get(SPACE, INSTALLED)?
        .and_then(|v| serde_json::from_slice(&v).ok()))
}
