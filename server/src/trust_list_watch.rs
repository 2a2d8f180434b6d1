//! Puts the trust list of the data directory (`ca/trust-list.der`, from
//! `trustca sector import --trust-list`) in force in the trust engine, and
//! re-reads it every few seconds: a newer list imported while the server
//! runs takes effect, and a list past its `nextUpdate` stops recognising
//! foreign roots. The CRLs of foreign sector CAs in `DATA/crl/foreign/`
//! (copied there from where each foreign sector publishes its CRL) are
//! re-read with it, so a foreign device its own operator revoked is
//! refused within seconds of the CRL arriving. The same list decides which
//! foreign instances may connect as callers (`transport.rs`, `auth.rs`),
//! so importing or lapsing a list changes that too, without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use trustca_db::TrustEngine;
use trustca_model::snapshot_trust_list::{MAX_FOREIGN_CRL_BYTES, MAX_FOREIGN_CRLS};

/// Loads the list in force into `trust` (logging why, when it cannot) and
/// keeps it current, checking `every`, while `trust` lives.
pub(crate) fn install(data: &Path, trust: &Arc<TrustEngine>, every: Duration) {
    let data: PathBuf = data.to_path_buf();
    load(&data, trust);
    let weak = Arc::downgrade(trust);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(t) = weak.upgrade() else {
                return;
            };
            load(&data, &t);
        }
    });
}

/// The `*.crl` files of `DATA/crl/foreign/` (sorted by name; missing
/// directory: none). Each is checked where it is used, against the
/// issuing CA of a foreign peer's chain.
fn foreign_crls(data: &Path) -> Vec<Vec<u8>> {
    let dir = data.join(trustca_db::FOREIGN_CRL_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("crl"))
        .collect();
    paths.sort();
    if paths.len() > MAX_FOREIGN_CRLS {
        tracing::warn!(dir = %dir.display(), "more than {MAX_FOREIGN_CRLS} foreign CRLs; the rest are not read");
        paths.truncate(MAX_FOREIGN_CRLS);
    }
    paths
        .iter()
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() <= MAX_FOREIGN_CRL_BYTES as u64))
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn load(data: &Path, trust: &TrustEngine) {
    trust.set_foreign_crls(foreign_crls(data));
    let now = OffsetDateTime::now_utc();
    // Set through the shared handle: the engine, the TLS acceptor and the
    // per-request check of foreign callers all read this one list.
    let in_force = trust.trust_list_in_force();
    match trustca_ca::trust_list::in_force(data, now) {
        Ok(list) => in_force.set(list, None, now),
        Err(e) => {
            tracing::error!(error = %e, "trust list not in force: no foreign root is recognised");
            in_force.set(
                None,
                Some(format!("the trust list held cannot be used ({e})")),
                now,
            );
        }
    }
}
