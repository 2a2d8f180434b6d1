//! Puts the trust list of the data directory (`ca/trust-list.der`, from
//! `trustca sector import --trust-list`) in force in the trust engine, and
//! re-reads it every few seconds: a newer list imported while the server
//! runs takes effect, and a list past its `nextUpdate` stops recognising
//! foreign roots.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use trustca_db::TrustEngine;

/// How often the list is checked again.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Loads the list in force into `trust` (logging why, when it cannot) and
/// keeps it current while `trust` lives.
pub(crate) fn install(data: &Path, trust: &Arc<TrustEngine>) {
    let data: PathBuf = data.to_path_buf();
    load(&data, trust);
    let weak = Arc::downgrade(trust);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let Some(t) = weak.upgrade() else {
                return;
            };
            load(&data, &t);
        }
    });
}

fn load(data: &Path, trust: &TrustEngine) {
    match trustca_ca::trust_list::in_force(data, OffsetDateTime::now_utc()) {
        Ok(list) => trust.set_trust_list(list),
        Err(e) => {
            tracing::error!(error = %e, "trust list not in force: no foreign root is recognised");
            trust.set_trust_list(None);
        }
    }
}
