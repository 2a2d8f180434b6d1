//! Revocation for `serve --role` processes. A separated V2X authority holds
//! no certificate records, so the store check of the auth layer cannot see
//! a revoked caller; instead it refuses callers whose certificate serial is
//! on a CRL in `DATA/crl/` (the sector and root CRLs the CA writes there,
//! which the operator syncs to the role's machine like any CRL
//! distribution point), re-read every interval.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

/// The serials on the CRLs of one directory.
#[derive(Debug)]
pub(crate) struct CrlRevocations {
    dir: PathBuf,
    serials: RwLock<HashSet<Vec<u8>>>,
}

impl CrlRevocations {
    /// Reads every `*.crl` (DER) in `dir` now.
    pub(crate) fn load(dir: &Path) -> Arc<Self> {
        let this = Arc::new(Self {
            dir: dir.to_path_buf(),
            serials: RwLock::new(HashSet::new()),
        });
        this.reload();
        this
    }

    /// Re-reads the directory; a file that does not parse is skipped with a
    /// warning (the previous set of its serials is dropped with it only when
    /// the file is gone). Returns how many serials are listed.
    pub(crate) fn reload(&self) -> usize {
        let mut serials = HashSet::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().and_then(|x| x.to_str()) != Some("crl") {
                    continue;
                }
                let Ok(der) = std::fs::read(&path) else {
                    continue;
                };
                match CertificateRevocationList::from_der(&der) {
                    Ok((_, crl)) => {
                        for r in crl.iter_revoked_certificates() {
                            serials.insert(r.raw_serial().to_vec());
                        }
                    }
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "CRL not readable; skipped")
                    }
                }
            }
        }
        let n = serials.len();
        if let Ok(mut s) = self.serials.write() {
            *s = serials;
        }
        n
    }

    /// Whether the certificate with this serial (raw bytes) is revoked.
    pub(crate) fn is_revoked(&self, serial: &[u8]) -> bool {
        self.serials
            .read()
            .map(|s| s.contains(serial))
            .unwrap_or(true)
    }

    /// Re-reads the directory every `every`.
    pub(crate) fn spawn_refresh(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || this.reload()).await;
            }
        });
    }
}
