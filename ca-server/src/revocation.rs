//! Revocation and CRL publication: operators revoke a certificate or every
//! certificate of a device; each sector CA's CRL is reissued at once, on a
//! schedule (half its validity), kept in memory for `GetCrl`, and written
//! atomically to `DIR/crl/<ca>.crl` for static HTTP publication. While a
//! sector runs two CA generations (`rollover.rs`), each signs its own CRL
//! (`crl/automotive.crl`, `crl/automotive.2.crl`), listing only the
//! certificates it issued; lists and numbers are kept by CA name.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use trustca_datadir::CaFiles;

use time::OffsetDateTime;
use trustca_model::{PolicySet, SectorName};
use trustca_store::Storage;
use x509_parser::prelude::FromDer;

use crate::CaError;
use crate::crl::{RevokedEntry, build_crl};
use crate::hierarchy::CaHierarchy;

/// The latest CRL of a sector.
#[derive(Debug, Clone)]
pub struct PublishedCrl {
    /// DER.
    pub der: Arc<Vec<u8>>,
    /// Its CRL number.
    pub number: u64,
}

/// Revoked serials whose issuing CA is remembered: a CRL of a million
/// entries must not keep a million map entries for the server's life.
pub const MAX_KNOWN_ISSUERS: usize = 65_536;

/// Issues and keeps every sector's CRL.
pub struct CrlPublisher {
    hierarchy: Arc<CaHierarchy>,
    /// The policies in force, read per publication
    /// (`with_policy_source`).
    policies: Arc<dyn trustca_model::PolicySource>,
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    latest: RwLock<HashMap<String, PublishedCrl>>,
    /// Which CA issued each revoked certificate (serial → CA name), read
    /// from the store once per serial while a sector has several CAs. At
    /// most [`MAX_KNOWN_ISSUERS`] serials (about 100 bytes each); full, it
    /// is emptied.
    issuers: std::sync::Mutex<HashMap<Vec<u8>, Option<String>>>,
    observer: Arc<dyn trustca_model::observe::Observer>,
}

impl std::fmt::Debug for CrlPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlPublisher")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl CrlPublisher {
    /// A publisher writing to `dir` (created if missing).
    pub fn new(
        hierarchy: Arc<CaHierarchy>,
        policies: Arc<PolicySet>,
        storage: Arc<dyn Storage>,
        dir: PathBuf,
    ) -> Self {
        Self {
            hierarchy,
            policies: Arc::new(policies),
            storage,
            dir,
            latest: RwLock::new(HashMap::new()),
            issuers: std::sync::Mutex::new(HashMap::new()),
            observer: Arc::new(trustca_model::observe::NoObserver),
        }
    }

    /// Reads the policies from `source` on every publication instead of
    /// the set given to [`CrlPublisher::new`] (a reloaded CRL validity
    /// applies to the next CRL).
    pub fn with_policy_source(mut self, source: Arc<dyn trustca_model::PolicySource>) -> Self {
        self.policies = source;
        self
    }

    /// The policies in force now.
    pub(crate) fn policies(&self) -> Arc<PolicySet> {
        self.policies.current()
    }

    /// Reports every publication's time and size to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn trustca_model::observe::Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Reissues the CRL of each CA of `sector` whose key is here (two
    /// during a rollover); returns the newest CA's.
    pub fn publish(&self, sector: &SectorName) -> Result<PublishedCrl, CaError> {
        self.publish_listing(sector, None)
    }

    /// [`CrlPublisher::publish`], answering with the CRL of the CA
    /// generation that issued `serial` (the CRL that lists it, what a
    /// revocation reports), not the newest generation's.
    pub fn publish_listing(
        &self,
        sector: &SectorName,
        serial: Option<&[u8]>,
    ) -> Result<PublishedCrl, CaError> {
        // The sector's own error (not ours, unknown) when no key is here.
        self.hierarchy.sector(sector)?;
        let signers = self.hierarchy.crl_signers(sector);
        let generations: Vec<(String, Vec<u8>)> = self
            .hierarchy
            .ca_generations
            .iter()
            .filter(|g| &g.sector == sector)
            .filter_map(|g| Some((g.name.clone(), subject_of(&g.der)?)))
            .collect();
        let issuer = match serial {
            Some(serial) if generations.len() > 1 => self.issuer_of(serial, &generations)?,
            _ => None,
        };
        let (mut newest, mut listing) = (None, None);
        for (name, ca) in signers {
            let started = std::time::Instant::now();
            let result = self.publish_unobserved(sector, &name, ca, &generations);
            match &result {
                Ok(p) => self
                    .observer
                    .published("crl", &name, started.elapsed(), p.der.len()),
                Err(CaError::Store(e)) if e.is_backend() => self.observer.store_error("crl"),
                Err(_) => {}
            }
            let published = result?;
            if issuer.as_deref() == Some(name.as_str()) {
                listing = Some(published.clone());
            }
            newest = Some(published);
        }
        listing
            .or(newest)
            .ok_or_else(|| CaError::Signing(format!("no {sector} CA key to sign its CRL")))
    }

    /// Which of `generations` (name, subject DER) issued `serial`, read
    /// from its certificate record; `None` when the store holds none.
    fn issuer_of(
        &self,
        serial: &[u8],
        generations: &[(String, Vec<u8>)],
    ) -> Result<Option<String>, CaError> {
        let mut cache = self.issuers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = cache.get(serial) {
            return Ok(known.clone());
        }
        let issuer = self.storage.certificate(serial)?.and_then(|rec| {
            let (_, cert) = x509_parser::parse_x509_certificate(&rec.der).ok()?;
            let raw = cert.issuer().as_raw();
            generations
                .iter()
                .find(|(_, subject)| subject.as_slice() == raw)
                .map(|(name, _)| name.clone())
        });
        if cache.len() >= MAX_KNOWN_ISSUERS {
            cache.clear();
        }
        cache.insert(serial.to_vec(), issuer.clone());
        Ok(issuer)
    }

    fn publish_unobserved(
        &self,
        sector: &SectorName,
        name: &str,
        ca: &crate::SigningCa,
        generations: &[(String, Vec<u8>)],
    ) -> Result<PublishedCrl, CaError> {
        let hours = self
            .policies()
            .sector(sector.as_str())?
            .certificate
            .crl_validity_hours;
        // The number first, the revocations after: with several replicas a
        // higher number is then always read later, so it lists at least
        // every revocation a lower-numbered CRL lists.
        let number = self.storage.next_crl_number(name)?;
        let mut revoked: Vec<RevokedEntry> = Vec::new();
        // A page at a time: the CRL lists them all, but the store's answer
        // is not held beside it (a sector can revoke a million).
        for item in trustca_store::revoked_pages(
            self.storage.as_ref(),
            sector.as_str(),
            trustca_store::STORE_PAGE,
        ) {
            let (serial, at, reason) = item?;
            // With one CA every revocation of the sector is its own. With
            // several, each lists what it issued (a serial whose record is
            // gone is listed by all: a foreign serial harms no one).
            if generations.len() > 1
                && self
                    .issuer_of(&serial, generations)?
                    .is_some_and(|issuer| issuer != name)
            {
                continue;
            }
            revoked.push(RevokedEntry {
                serial,
                at: OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                reason,
            });
        }
        let now = OffsetDateTime::now_utc();
        let der = build_crl(
            ca,
            number,
            now,
            now + time::Duration::hours(hours as i64),
            &revoked,
        )?;
        let published = PublishedCrl {
            der: Arc::new(der),
            number,
        };
        self.write_file(name, &published)?;
        // Shared with the other replicas through the store, unless one of
        // them already shared a newer one.
        if self.shared(name)?.is_none_or(|s| s.number < number) {
            let mut value = number.to_be_bytes().to_vec();
            value.extend_from_slice(&published.der);
            self.storage.blob_put(
                LATEST_CRL_SPACE,
                &[(name.as_bytes().to_vec(), value)],
                false,
                None,
            )?;
        }
        if let Ok(mut latest) = self.latest.write() {
            latest.insert(name.to_owned(), published.clone());
        }
        tracing::info!(ca = %name, crl_number = number, entries = revoked.len(), "CRL published");
        Ok(published)
    }

    fn write_file(&self, sector: &str, crl: &PublishedCrl) -> Result<(), CaError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| CaError::io(&self.dir, e))?;
        let path = self.dir.crl(sector);
        let tmp = self.dir.join(format!(".{sector}.crl.tmp"));
        std::fs::write(&tmp, crl.der.as_slice()).map_err(|e| CaError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| CaError::io(&path, e))
    }

    /// The newest CRL any replica shared through the store.
    fn shared(&self, name: &str) -> Result<Option<PublishedCrl>, CaError> {
        let Some(value) = self.storage.blob_get(LATEST_CRL_SPACE, name.as_bytes())? else {
            return Ok(None);
        };
        if value.len() < 8 {
            return Ok(None);
        }
        let (number, der) = value.split_at(8);
        Ok(Some(PublishedCrl {
            der: Arc::new(der.to_vec()),
            number: u64::from_be_bytes(number.try_into().unwrap_or([0; 8])),
        }))
    }

    /// Reissues the CRL of every sector whose CA key this directory holds;
    /// another sector's CRL is published by that sector's own instance.
    pub fn publish_all(&self) -> Result<(), CaError> {
        for sector in self.hierarchy.sectors.keys() {
            self.publish(sector)?;
        }
        Ok(())
    }

    /// The shortest CRL validity, for scheduling reissues.
    pub fn shortest_validity(&self) -> std::time::Duration {
        let hours = self
            .policies()
            .sectors
            .values()
            .map(|p| p.certificate.crl_validity_hours)
            .min()
            .unwrap_or(24);
        std::time::Duration::from_secs(hours as u64 * 3600)
    }

    /// The latest CRL of the CA `name` (a sector's first CA by the
    /// sector's name, a later generation as `automotive.2`): the newer of
    /// this replica's and the one shared through the store (so a
    /// revocation made on another replica shows here at once), issuing the
    /// sector's CRLs if none is held.
    pub fn latest(&self, name: &str) -> Result<PublishedCrl, CaError> {
        let (sector, _) = crate::rollover::parse_ca_name(name).ok_or_else(|| {
            CaError::InvalidRequest(format!(
                "{:?} names no CA: give a sector (automotive) or a CA generation (automotive.2)",
                name.chars().take(64).collect::<String>()
            ))
        })?;
        let own = self
            .latest
            .read()
            .ok()
            .and_then(|latest| latest.get(name).cloned());
        let shared = self.shared(name)?;
        match (own, shared) {
            (Some(own), Some(shared)) if shared.number > own.number => {
                self.adopt(name, &shared);
                Ok(shared)
            }
            (Some(own), _) => Ok(own),
            (None, Some(shared)) => {
                self.adopt(name, &shared);
                Ok(shared)
            }
            (None, None) => {
                self.publish(&sector)?;
                self.latest
                    .read()
                    .ok()
                    .and_then(|latest| latest.get(name).cloned())
                    .ok_or_else(|| {
                        CaError::InvalidRequest(format!(
                            "this instance holds no {name} CA key (or it expired): its CRL comes from elsewhere"
                        ))
                    })
            }
        }
    }

    /// The root's CRL as published on disk (the root signs it offline or
    /// at start, never per request).
    pub fn root_crl(&self) -> Result<PublishedCrl, CaError> {
        let path = self.dir.crl(crate::root_crl::ROOT_CRL_NAME);
        let der = std::fs::read(&path).map_err(|e| CaError::io(&path, e))?;
        let crl_number = x509_parser::revocation_list::CertificateRevocationList::from_der(&der)
            .ok()
            .and_then(|(_, c)| c.crl_number().and_then(|n| u64::try_from(n).ok()))
            .unwrap_or(0);
        Ok(PublishedCrl {
            der: Arc::new(der),
            number: crl_number,
        })
    }

    /// Takes another replica's newer CRL as this one's (memory and file).
    fn adopt(&self, sector: &str, crl: &PublishedCrl) {
        if let Err(e) = self.write_file(sector, crl) {
            tracing::warn!(%sector, error = %e, "cannot write the shared CRL to the data directory");
        }
        if let Ok(mut latest) = self.latest.write() {
            latest.insert(sector.to_owned(), crl.clone());
        }
    }
}

/// The subject of the certificate `der`, DER (to match issuers by).
fn subject_of(der: &[u8]) -> Option<Vec<u8>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, c)| c.subject().as_raw().to_vec())
}

/// Store space holding each sector's newest CRL (number, then DER).
const LATEST_CRL_SPACE: &str = "crl.latest";
