//! The CA's hash-based IEEE 1609.2 CRLs (the SCMS "CRL generator"): the
//! CA certificate CRL (`crlSeries` [`CA_CRL_SERIES`]) and the enrolment
//! certificate CRL ([`ENROLMENT_CRL_SERIES`]), signed by the CA-held CRL
//! signer `v2x-crl` (never the pseudonym CA's), from the register in the
//! CA's store (`trustca_scms::hash_crl`).
//!
//! A list is signed when it is first asked for, again as soon as a
//! revocation here changes it or (checked at most every [`CHECK_SECS`])
//! the store's entries differ from it, and otherwise every
//! [`REISSUE_SECS`]; between those it is served from memory, so polling
//! vehicles never cause a signature. Each new list is written to `DATA/crl/v2x-crl-<series>.oer`
//! (for the operator to sync to separated registration authorities, as
//! with the X.509 CRLs there) and handed to the in-process registration
//! authority at once. A separated one reads those files from its own
//! `DATA/crl/` ([`watch_files`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use trustca_datadir::DataDir;

use trustca_api::v2x::{EnrolmentRefused, HashCrls};
use trustca_ca::CaHierarchy;
use trustca_ca::v2x_ca::{CA_CRL_SERIES, ENROLMENT_CRL_SERIES, OwnedV2xSigner};
use trustca_scms::{EeInterface, HashCrl, HashCrlRegister, ScmsError};
use trustca_store::Storage;
use trustca_v2x::Certificate;

use crate::error::Result;

/// The hash CRL series the CA publishes.
pub const HASH_CRL_SERIES: [u16; 2] = [CA_CRL_SERIES, ENROLMENT_CRL_SERIES];
/// A published list is re-signed after this long even if nothing changed.
pub const REISSUE_SECS: i64 = 24 * 3600;
/// How long a list is served before the store is read again for changes
/// another replica made (as the linkage CRL download's cache).
pub const CHECK_SECS: i64 = 60;
/// `nextCrl` − `issueDate` of every list: a week, so a missed re-issue or
/// sync leaves relying parties days of margin.
pub const VALIDITY_SECS: i64 = 7 * 86_400;

/// The file a list of `series` is written to under `DATA/crl/`.
pub fn file_name(series: u16) -> String {
    format!("v2x-crl-{series}.oer")
}

/// One signed list and when it was signed.
struct Signed {
    at: i64,
    /// When its entries were last found to be the store's.
    checked: i64,
    /// The register's change count it was signed from.
    changes: u64,
    crl: HashCrl,
}

/// The CA's hash CRLs.
pub struct HashCrlPublisher {
    register: HashCrlRegister,
    signer: (OwnedV2xSigner, Certificate),
    crl_dir: PathBuf,
    /// Revocations made through this publisher (lists signed before the
    /// latest one are stale).
    changes: Mutex<u64>,
    signed: Mutex<HashMap<u16, Signed>>,
    /// In-process registration authorities that refuse listed certificates.
    relying: Mutex<Vec<Weak<EeInterface>>>,
}

impl std::fmt::Debug for HashCrlPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashCrlPublisher")
            .field("signer", &hex::encode(self.signer.1.hashed_id8()))
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::result::Result<std::sync::MutexGuard<'_, T>, ScmsError> {
    m.lock()
        .map_err(|_| ScmsError::Response("a hash CRL lock is poisoned".into()))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl HashCrlPublisher {
    /// The publisher of `data`'s V2X hierarchy over the CA's store.
    pub(crate) fn open(
        data: &Path,
        hierarchy: &CaHierarchy,
        storage: Arc<dyn Storage>,
    ) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            register: HashCrlRegister::new(storage),
            signer: trustca_ca::v2x_ca::crl_signer_for_hash_crls(data, hierarchy)?,
            crl_dir: DataDir::new(data).crl_dir(),
            changes: Mutex::new(0),
            signed: Mutex::new(HashMap::new()),
            relying: Mutex::new(Vec::new()),
        }))
    }

    /// Has `ee` refuse what the lists name, from now on: it gets each
    /// list now, after every revocation here, and otherwise within
    /// [`CHECK_SECS`] of a change in the store (another replica's
    /// revocation, an expired entry, the daily re-issue).
    pub(crate) fn attach(self: &Arc<Self>, ee: &Arc<EeInterface>) {
        if let Ok(mut r) = self.relying.lock() {
            r.push(Arc::downgrade(ee));
        }
        self.refresh();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(CHECK_SECS.unsigned_abs()));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || this.refresh()).await;
            }
        });
    }

    /// [`HashCrlPublisher::current`] of every series, failures logged.
    fn refresh(&self) {
        for series in HASH_CRL_SERIES {
            if let Err(e) = self.current(series) {
                tracing::warn!(series, error = %e, "hash CRL not signed");
            }
        }
    }

    /// A revocation happened: re-sign and hand out every list now.
    fn changed(&self) -> std::result::Result<(), ScmsError> {
        *lock(&self.changes)? += 1;
        for series in HASH_CRL_SERIES {
            self.current(series)?;
        }
        Ok(())
    }

    fn hand_out(&self, crl: &HashCrl) {
        let Ok(relying) = self.relying.lock() else {
            return;
        };
        for ee in relying.iter().filter_map(Weak::upgrade) {
            if let Err(e) = ee.accept_hash_crl(crl.clone()) {
                tracing::warn!(error = %e, "the registration authority refused a hash CRL");
            }
        }
    }

    /// Writes the list for distribution; a failure is logged (the list is
    /// still served and handed out in this process).
    fn write_file(&self, crl: &HashCrl) {
        let path = self.crl_dir.join(file_name(crl.crl_series));
        let tmp = path.with_extension("oer.new");
        let written = std::fs::create_dir_all(&self.crl_dir)
            .and_then(|()| std::fs::write(&tmp, crl.as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(file = %path.display(), error = %e, "hash CRL not written");
        }
    }
}

impl HashCrls for HashCrlPublisher {
    /// The current list of `series` (one of [`HASH_CRL_SERIES`]), signed
    /// now if none is held, a revocation here changed it, the store's
    /// entries differ from it (checked at most every [`CHECK_SECS`]: a
    /// revocation by another replica, an entry expired), or it is older
    /// than [`REISSUE_SECS`].
    fn current(&self, series: u16) -> std::result::Result<HashCrl, ScmsError> {
        if !HASH_CRL_SERIES.contains(&series) {
            return Err(ScmsError::NotFound("hash CRL series"));
        }
        let t = now();
        let changes = *lock(&self.changes)?;
        let mut signed = lock(&self.signed)?;
        if let Some(s) = signed.get_mut(&series)
            && s.changes == changes
            && t - s.at < REISSUE_SECS
        {
            if t - s.checked < CHECK_SECS {
                return Ok(s.crl.clone());
            }
            if self.register.entries(series, t)? == s.crl.entries {
                s.checked = t;
                return Ok(s.crl.clone());
            }
        }
        let crl = self
            .register
            .sign(series, &self.signer.1, &self.signer.0, t, VALIDITY_SECS)?;
        self.write_file(&crl);
        // Handed out under the lock, so that relying parties get the lists
        // in serial order.
        self.hand_out(&crl);
        signed.insert(
            series,
            Signed {
                at: t,
                checked: t,
                changes,
                crl: crl.clone(),
            },
        );
        Ok(crl)
    }

    /// Records an enrolment certificate issued to `vehicle`.
    fn record_issued(
        &self,
        vehicle: &str,
        certificate: &Certificate,
    ) -> std::result::Result<(), ScmsError> {
        self.register.record_issued(vehicle, certificate, now())
    }

    /// Refuses a revoked vehicle's enrolment: a new enrolment certificate
    /// would be on no list.
    fn refuse_revoked(&self, vehicle: &str) -> std::result::Result<(), EnrolmentRefused> {
        match self.register.vehicle_revoked(vehicle) {
            Ok(false) => Ok(()),
            Ok(true) => Err(EnrolmentRefused::Revoked),
            Err(e) => Err(EnrolmentRefused::Failed(e)),
        }
    }

    /// Lists every enrolment certificate of `vehicle` (audited as
    /// `actor`) and publishes the new lists. Returns how many are listed.
    fn revoke_vehicle(&self, vehicle: &str, actor: &str) -> std::result::Result<usize, ScmsError> {
        let n = self.register.revoke_vehicle(vehicle, actor, now())?;
        self.changed()?;
        tracing::info!(
            vehicle,
            actor,
            certificates = n,
            "V2X enrolment certificates revoked (hash CRL)"
        );
        Ok(n)
    }

    /// Lists a V2X CA certificate (audited with `reason` as `actor`) and
    /// returns the new list of its series.
    fn revoke_ca_certificate(
        &self,
        certificate: &Certificate,
        reason: &str,
        actor: &str,
    ) -> std::result::Result<HashCrl, ScmsError> {
        let series = certificate.tbs().crl_series;
        if !HASH_CRL_SERIES.contains(&series) {
            return Err(ScmsError::Profile(format!(
                "the certificate names crlSeries {series}, which no hash CRL of this CA covers"
            )));
        }
        let entry = self
            .register
            .revoke_certificate(certificate, reason, actor, now())?;
        tracing::warn!(
            hashed_id8 = %hex::encode(certificate.hashed_id8()),
            hashed_id10 = %hex::encode(entry.id),
            reason,
            actor,
            "V2X CA certificate revoked (hash CRL)"
        );
        self.changed()?;
        self.current(series)
    }
}

/// Feeds a separated registration authority the hash CRLs the operator
/// synced to `dir` (`v2x-crl-<series>.oer`), now and every `every`. A
/// list that does not verify against the V2X root, or is older than the
/// one held, is skipped with a warning.
pub(crate) fn watch_files(ee: &Arc<EeInterface>, dir: PathBuf, every: Duration) {
    let read = move |ee: &EeInterface| {
        for series in HASH_CRL_SERIES {
            let path = dir.join(file_name(series));
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let taken = HashCrl::from_bytes(&bytes).and_then(|crl| ee.accept_hash_crl(crl));
            match taken {
                Ok(true) => tracing::info!(file = %path.display(), "hash CRL taken"),
                Ok(false) => {}
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "hash CRL skipped"),
            }
            // Still refused by the held list, but the operator should know
            // that the sync from the CA has stopped.
            if let Ok(Some(held)) = ee.hash_crl(series)
                && held.next_update.to_unix() < now()
            {
                tracing::warn!(
                    series,
                    crl_serial = held.crl_serial,
                    "the hash CRL held is past its nextCrl: sync DATA/crl from the CA"
                );
            }
        }
    };
    read(ee);
    let weak = Arc::downgrade(ee);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(ee) = weak.upgrade() else { return };
            let read = read.clone();
            let _ = tokio::task::spawn_blocking(move || read(&ee)).await;
        }
    });
}
