//! Publishing signed trust snapshots (`trustca_model::snapshot`): the
//! trust database's state for offline decisions, per sector and for all,
//! built from the store, signed by the trust responder (a root-issued
//! service certificate) and kept until the state changes.
//!
//! A snapshot lists every device whose live state differs from what its
//! certificate says: any status but active, a live level other than its
//! newest certificate's, or more than one certificate (an older one may
//! state another level). Every other device is active at its certificate's
//! level, which is what an offline verifier assumes. Revoked certificates
//! and keys blocked for compromise come from the revocation records; the
//! cooperation and recognition texts are the engine's own, so an offline
//! decision applies exactly the rules an online one does. Systems of linked
//! devices come with their composition policy, and every member is listed
//! whatever its state (a member's cap depends on the others' levels); a
//! snapshot with systems is version 2 (`docs/trust-snapshot.asn1`). The
//! trust list in force (foreign roots this root recognises) is carried as
//! the root signed it, which makes the snapshot version 3.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use trustca_model::snapshot::{DeviceState, EmbeddedPolicy, SnapshotModel};
use trustca_model::snapshot_trust_list::{MAX_FOREIGN_CRLS, is_carriable_crl};
use trustca_model::{
    SectorName, SignedSnapshot, TrustLevel, TrustSnapshot, TrustStatus, certificate_key_fingerprint,
};
use trustca_store::registry::models_with_prefix;

use crate::{TrustDbError, TrustEngine};

/// How long a snapshot may be relied on after it was issued.
pub const SNAPSHOT_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// A cached snapshot is rebuilt when the store changed and it is at least
/// this old (so a stream of fetches during a burst of changes costs one
/// build a second, not one per fetch), or when a quarter of its validity
/// has passed.
const REBUILD_AFTER: Duration = Duration::from_secs(1);
/// Revocation reason keyCompromise (RFC 5280): its keys are blocked.
const KEY_COMPROMISE: u8 = 1;
/// Device records a build reads at a time: a build holds one page, never
/// the whole fleet (a million device records would be about 500 MiB), and
/// can stop between pages.
const DEVICE_PAGE: usize = 1_024;

struct Cached {
    audit_size: u64,
    /// The trust list carried (its sequence): a newer list imported, or the
    /// list dropped, is a change the store's audit size does not show.
    trust_list: Option<u64>,
    /// The foreign CRLs' generation carried.
    foreign_crls: u64,
    built: std::time::Instant,
    der: Arc<Vec<u8>>,
    /// What callers read of the snapshot beside its DER: the parsed
    /// snapshot itself (a string or more per listed device) is not kept,
    /// so a sector's snapshot is held once, signed.
    stamp: SnapshotStamp,
}

/// A published snapshot's serial and the end of its validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStamp {
    /// The snapshot's serial in its scope.
    pub serial: u64,
    /// Until when it may be relied on.
    pub next_update: OffsetDateTime,
}

/// Builds, signs and caches snapshots.
pub struct SnapshotPublisher {
    engine: Arc<TrustEngine>,
    validity: Duration,
    cache: Mutex<HashMap<Option<SectorName>, Cached>>,
    /// One build at a time: builds read the whole store.
    building: Mutex<()>,
    /// Cancelled when the server stops: a build running then gives up at
    /// its next page instead of holding the store open.
    stop: CancellationToken,
}

impl std::fmt::Debug for SnapshotPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotPublisher")
            .field("validity", &self.validity)
            .finish_non_exhaustive()
    }
}

fn io_err(e: impl std::fmt::Display) -> TrustDbError {
    TrustDbError::Signing(e.to_string())
}

impl SnapshotPublisher {
    /// A publisher signing with `engine`'s responder.
    pub fn new(engine: Arc<TrustEngine>) -> Self {
        Self::with_validity(engine, SNAPSHOT_VALIDITY)
    }

    /// A publisher whose snapshots are valid for `validity`.
    pub fn with_validity(engine: Arc<TrustEngine>, validity: Duration) -> Self {
        Self {
            engine,
            validity,
            cache: Mutex::new(HashMap::new()),
            building: Mutex::new(()),
            stop: CancellationToken::new(),
        }
    }

    /// Stops builds (between pages of records) once `stop` is cancelled:
    /// the server's token for its background work, so shutdown does not
    /// wait for a build over a large store.
    pub fn stopped_by(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    fn check_stop(&self) -> Result<(), TrustDbError> {
        if self.stop.is_cancelled() {
            return Err(TrustDbError::FailedPrecondition(
                "the server is shutting down; snapshot build stopped".into(),
            ));
        }
        Ok(())
    }

    /// The sectors a scope covers: the engine's authoritative ones (all
    /// known sectors when it serves all), or the one asked for.
    fn sectors_of(&self, scope: Option<&SectorName>) -> Result<Vec<SectorName>, TrustDbError> {
        let policy = self.engine.policy();
        let known = policy.sectors().to_vec();
        let served: Vec<SectorName> = if self.engine.authoritative().is_empty() {
            known
        } else {
            self.engine.authoritative().to_vec()
        };
        match scope {
            None => Ok(served),
            Some(s) if served.contains(s) => Ok(vec![s.clone()]),
            // A name no policy knows is a bad argument, as GetCrl says;
            // a known sector held by another database is a precondition.
            Some(s) if !policy.sectors().contains(s) => Err(TrustDbError::InvalidRequest(format!(
                "unknown sector {s}; known sectors: {}",
                policy
                    .sectors()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            Some(s) => Err(TrustDbError::FailedPrecondition(format!(
                "this database does not hold sector {s}; ask the {s} database for its snapshot"
            ))),
        }
    }

    /// The newest snapshot of `scope` (None: every sector served), DER of
    /// the signed snapshot. Built anew when the store changed since the
    /// cached one (at most every few seconds) or a quarter of its validity
    /// has passed.
    pub fn current(
        &self,
        scope: Option<&SectorName>,
    ) -> Result<(Arc<Vec<u8>>, SnapshotStamp), TrustDbError> {
        let key = scope.cloned();
        let audit_size = self.engine.storage().audit_head()?.0;
        let trust_list = self.engine.trust_list().map(|l| l.list.sequence);
        let foreign_crls = self.engine.foreign_crls_generation();
        let fresh = |c: &Cached| {
            let age = c.built.elapsed();
            age < self.validity / 4
                && c.trust_list == trust_list
                && c.foreign_crls == foreign_crls
                && (c.audit_size == audit_size || age < REBUILD_AFTER)
        };
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.get(&key)
            && fresh(c)
        {
            return Ok((Arc::clone(&c.der), c.stamp));
        }
        // While another request builds, answer with the cached snapshot if
        // it is still within its validity rather than queueing behind the
        // build: a flood of fetches then costs one build, not a pile of
        // blocked threads.
        let _one = match self.building.try_lock() {
            Ok(guard) => guard,
            Err(_) => {
                if let Ok(cache) = self.cache.lock()
                    && let Some(c) = cache.get(&key)
                    && c.built.elapsed() < self.validity
                {
                    return Ok((Arc::clone(&c.der), c.stamp));
                }
                self.building.lock().map_err(io_err)?
            }
        };
        if let Ok(cache) = self.cache.lock()
            && let Some(c) = cache.get(&key)
            && fresh(c)
        {
            return Ok((Arc::clone(&c.der), c.stamp));
        }
        let snapshot = self.build(scope, OffsetDateTime::now_utc())?;
        let (key_pair, chain) = self.engine.responder();
        let signed = SignedSnapshot::sign(&snapshot, key_pair, chain.to_vecs())?;
        let der = Arc::new(signed.to_der());
        let stamp = SnapshotStamp {
            serial: snapshot.serial,
            next_update: snapshot.next_update,
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                key,
                Cached {
                    audit_size,
                    trust_list,
                    foreign_crls,
                    built: std::time::Instant::now(),
                    der: Arc::clone(&der),
                    stamp,
                },
            );
        }
        tracing::info!(
            scope = scope.map(|s| s.as_str()).unwrap_or("all"),
            serial = snapshot.serial,
            models = snapshot.models.len(),
            devices = snapshot.devices.len(),
            bytes = der.len(),
            "trust snapshot built"
        );
        Ok((der, stamp))
    }

    /// Builds (unsigned) the snapshot of `scope` at `now`, taking the next
    /// serial of that scope from the store (durable, never reused).
    pub fn build(
        &self,
        scope: Option<&SectorName>,
        now: OffsetDateTime,
    ) -> Result<TrustSnapshot, TrustDbError> {
        self.check_stop()?;
        let storage = self.engine.storage();
        let sectors = self.sectors_of(scope)?;
        let policy = self.engine.policy();
        let (cooperation, recognition) = policy.sources();
        let counter = format!("snapshot:{}", scope.map(|s| s.as_str()).unwrap_or("all"));
        let serial = storage.next_crl_number(&counter)?;
        let mut models = Vec::new();
        let mut devices = Vec::new();
        let mut revoked_certificates = Vec::new();
        let mut blocked_keys = Vec::new();
        for sector in &sectors {
            for m in models_with_prefix(storage, &format!("{sector}/"))? {
                models.push(SnapshotModel {
                    sector: m.key.sector.clone(),
                    manufacturer: m.key.manufacturer.clone(),
                    model: m.key.model.clone(),
                    firmware: m.key.firmware.clone(),
                    level: TrustLevel::new(m.level as i64)?,
                    status: m.status,
                    record_version: m.version,
                    policy_version: m.policy_version.clone(),
                });
            }
            self.differing_devices(sector, &mut devices)?;
            // A page at a time (a sector can revoke a million).
            for item in
                trustca_store::revoked_pages(storage, sector.as_str(), trustca_store::STORE_PAGE)
            {
                let (serial, _, reason) = item?;
                if reason == KEY_COMPROMISE
                    && let Some(cert) = storage.certificate(&serial)?
                    && let Ok(fp) = certificate_key_fingerprint(&cert.der)
                    && !blocked_keys.contains(&fp)
                {
                    blocked_keys.push(fp);
                }
                revoked_certificates.push((sector.clone(), serial));
            }
        }
        // Systems of linked devices, so an offline decision about a member
        // is capped as online (crate::systems).
        // The trust list in force, and the foreign CRLs beside it (a CRL
        // that could not be carried is left out, not the snapshot).
        let trust_list = self.engine.trust_list();
        let mut foreign_crls: Vec<Vec<u8>> = match &trust_list {
            Some(_) => self
                .engine
                .foreign_crls()
                .iter()
                .filter(|c| is_carriable_crl(c))
                .take(MAX_FOREIGN_CRLS)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        foreign_crls.sort();
        foreign_crls.dedup();
        let systems = match self.engine.systems() {
            Some(registry) => registry.snapshot_part(&self.engine, &sectors, &mut devices)?,
            None => None,
        };
        let mut snapshot = TrustSnapshot {
            serial,
            scope: scope.cloned(),
            issued_at: now,
            next_update: now + self.validity,
            sectors: policy.sectors().to_vec(),
            cooperation_policy: EmbeddedPolicy {
                version: policy.cooperation_version.clone(),
                text: cooperation.to_owned(),
            },
            recognition_policy: EmbeddedPolicy {
                version: policy.recognition_version.clone(),
                text: recognition.to_owned(),
            },
            models,
            devices,
            revoked_certificates,
            blocked_keys,
            systems,
            trust_list: trust_list.as_ref().map(|l| l.der.clone()),
            foreign_crls,
        };
        snapshot.sort();
        snapshot.validate()?;
        Ok(snapshot)
    }

    /// Adds every device of `sector` whose live state differs from its
    /// certificate's to `out`, reading the fleet a page at a time.
    fn differing_devices(
        &self,
        sector: &SectorName,
        out: &mut Vec<DeviceState>,
    ) -> Result<(), TrustDbError> {
        let storage = self.engine.storage();
        let prefix = format!("{sector}/");
        let mut after: Option<String> = None;
        loop {
            self.check_stop()?;
            let page = storage.devices_page(&prefix, after.as_deref(), DEVICE_PAGE)?;
            for d in &page {
                let Some(record) = storage.trust_record(&d.identity_key)? else {
                    continue;
                };
                let differs = record.status != TrustStatus::Active
                    || record.level != d.certificate_level
                    || d.certificates.len() > 1;
                if differs {
                    out.push(DeviceState {
                        identity: d.urn.clone(),
                        level: TrustLevel::new(record.level as i64)?,
                        status: record.status,
                        record_version: record.version,
                    });
                }
            }
            if page.len() < DEVICE_PAGE {
                return Ok(());
            }
            after = page.last().map(|d| d.identity_key.clone());
        }
    }

    /// Writes the current snapshot of every served sector and of all of
    /// them as `DIR/<sector>.snapshot` and `DIR/all.snapshot` (DER,
    /// replaced atomically), for any web server to publish.
    pub fn write_files(&self, dir: &std::path::Path) -> Result<usize, TrustDbError> {
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let mut scopes: Vec<Option<SectorName>> = vec![None];
        scopes.extend(self.sectors_of(None)?.into_iter().map(Some));
        for scope in &scopes {
            let (der, _) = self.current(scope.as_ref())?;
            let name = scope.as_ref().map(|s| s.as_str()).unwrap_or("all");
            let path = dir.join(format!("{name}.snapshot"));
            let tmp = dir.join(format!(".{name}.snapshot.tmp"));
            std::fs::write(&tmp, der.as_slice()).map_err(io_err)?;
            std::fs::rename(&tmp, &path).map_err(io_err)?;
        }
        Ok(scopes.len())
    }
}
