//! The registration authority (RA): the only authority that knows vehicles.
//!
//! It authenticates a vehicle by its enrollment credential (the caller
//! passes the identity and live level it verified), keeps per vehicle its
//! two linkage chain ids (one at each linkage authority), expands the
//! vehicle's butterfly request into cocoon keys, fetches pre-linkage values
//! it cannot read, and queues one [`TicketRequest`] per ticket with a fresh
//! random id. Requests wait until at least [`BatchPolicy::min_vehicles`]
//! vehicles are queued (or [`BatchPolicy::max_wait_secs`] passed), are then
//! shuffled together and sent to the pseudonym CA, so the pseudonym CA
//! cannot tell which requests came from one vehicle. The responses are
//! encrypted to cocoon keys: the RA stores them for the vehicle to
//! download but cannot read or link them.
//!
//! Store (space [`SPACE`]): `v/` ‖ handle (32) → vehicle record sealed
//! under the RA's key (fixed length); `x/` ‖ LA1 chain id → handle (for
//! resolution); `d/` ‖ handle ‖ BE64(period) ‖ BE32(j) ‖ request id →
//! the response, padded to [`STORED_RESPONSE_LEN`]. A vehicle gets one
//! set of tickets per period: a period with stored or queued tickets is
//! refused (download them instead).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ring::hmac;
use trustca_pseudonym::{ButterflyRequest, LaId, LinkageRevocation, SeedRelease};
use trustca_store::{BlobAudit, KeyValue, Storage};

use crate::crl::LinkageCrl;
use crate::envelope::{LinkKey, random_bytes};
use crate::error::{Result, ScmsError};
use crate::linkage_authority::{ChainId, EncryptedPlv, LinkageAuthority};
use crate::profile::{MAX_PERIOD, TicketProfile};
use crate::profile_slot::ProfileSlot;
use crate::pseudonym_ca::{PseudonymCa, TicketRequest, TicketResponse};

/// Store space of the registration authority.
pub const SPACE: &str = "v2x.ra";
const VEHICLE_PREFIX: &[u8] = b"v/";
const CHAIN_PREFIX: &[u8] = b"x/";
const DELIVERY_PREFIX: &[u8] = b"d/";
const VEHICLE_AAD: &[u8] = b"trustca-ra-vehicle-v1";
/// Longest vehicle identity (padded to this length when stored).
pub const MAX_VEHICLE_ID_LEN: usize = 128;
/// Who the registration authority is in its own and the linkage
/// authorities' audit logs (remote linkage authorities name the caller
/// from its certificate instead).
const RA_ACTOR: &str = "registration-authority";
const RECORD_PLAIN_LEN: usize = 16 + 16 + 8 + 1 + MAX_VEHICLE_ID_LEN;

mod authorities;
mod stored;

pub use authorities::{LinkageAuthorityApi, PseudonymCaApi};
pub use stored::STORED_RESPONSE_LEN;
use stored::{delivery_prefix, pad_response, shuffle, unpad_response, vehicle_key};

/// When queued requests go to the pseudonym CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Send once requests of at least this many distinct vehicles wait.
    pub min_vehicles: usize,
    /// ... or once the oldest request waited this long (seconds). Below
    /// `min_vehicles` the batch gives less cover; small deployments trade
    /// that for latency here.
    pub max_wait_secs: i64,
    /// Requests per call to the pseudonym CA.
    pub max_requests_per_batch: usize,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        Self {
            min_vehicles: 16,
            max_wait_secs: 300,
            max_requests_per_batch: 20_000,
        }
    }
}

/// A vehicle as the RA authenticated it from its enrollment credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleCredential {
    /// Its identity (e.g. the enrollment credential's HashedId8 or URN).
    pub id: String,
    /// Its live trust level.
    pub level: u8,
}

/// The RA's handle of a vehicle: HMAC of its identity under the RA's key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VehicleHandle(pub [u8; 32]);

impl std::fmt::Debug for VehicleHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VehicleHandle({})", hex(&self.0[..6]))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct VehicleRecord {
    chains: [ChainId; 2],
    revoked_from: u64,
    id: String,
}

struct Pending {
    handle: VehicleHandle,
    /// The ticket's index in its period: the RA keeps it (IEEE 1609.2.1
    /// ee-ra NOTE 1) so that the vehicle is told which cocoon key opens
    /// each response.
    j: u32,
    request: TicketRequest,
    queued_at: i64,
}

/// The registration authority.
pub struct RegistrationAuthority {
    store: Arc<dyn Storage>,
    index_key: hmac::Key,
    storage_key: LinkKey,
    linkage: [Arc<dyn LinkageAuthorityApi>; 2],
    pca: Arc<dyn PseudonymCaApi>,
    /// The ticket profile in force (a policy reload replaces it).
    profile: ProfileSlot,
    policy: BatchPolicy,
    queue: Mutex<Vec<Pending>>,
    submit_lock: Mutex<()>,
}

impl std::fmt::Debug for RegistrationAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationAuthority")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl RegistrationAuthority {
    /// An RA with its own store and key (32 secret bytes; the HMAC index
    /// key and the record key are derived from it), the two linkage
    /// authorities and the pseudonym CA.
    pub fn new(
        store: Arc<dyn Storage>,
        secret: &[u8; 32],
        linkage: [Arc<dyn LinkageAuthorityApi>; 2],
        pca: Arc<dyn PseudonymCaApi>,
        profile: impl Into<ProfileSlot>,
        policy: BatchPolicy,
    ) -> Result<Self> {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret);
        let index = hmac::sign(&root, b"trustca-ra-index-v1");
        let record = hmac::sign(&root, b"trustca-ra-record-v1");
        let mut record_key = zeroize::Zeroizing::new([0u8; 32]);
        record_key.copy_from_slice(record.as_ref());
        if linkage[0].la_id() == linkage[1].la_id() {
            return Err(ScmsError::Config(
                "the two linkage authorities need distinct ids".into(),
            ));
        }
        Ok(Self {
            store,
            index_key: hmac::Key::new(hmac::HMAC_SHA256, index.as_ref()),
            storage_key: LinkKey::from_bytes(&record_key)?,
            linkage,
            pca,
            profile: profile.into(),
            policy,
            queue: Mutex::new(Vec::new()),
            submit_lock: Mutex::new(()),
        })
    }

    /// This authority's own store.
    pub fn store(&self) -> Arc<dyn Storage> {
        Arc::clone(&self.store)
    }

    /// The handle of a vehicle identity.
    pub fn handle(&self, vehicle_id: &str) -> VehicleHandle {
        let tag = hmac::sign(&self.index_key, vehicle_id.as_bytes());
        let mut h = [0u8; 32];
        h.copy_from_slice(tag.as_ref());
        VehicleHandle(h)
    }

    /// Queues tickets for `periods` periods from `first_period` (`None`:
    /// the current period) for an authenticated vehicle. Returns how many
    /// tickets were queued; they reach the vehicle after the next
    /// [`RegistrationAuthority::flush`] that sends its batch.
    pub fn submit(
        &self,
        vehicle: &VehicleCredential,
        butterfly: &ButterflyRequest,
        first_period: Option<u64>,
        periods: u32,
        now: i64,
    ) -> Result<u32> {
        // One version of the profile for the whole request.
        let profile = self.profile.current();
        profile.permissions_for(vehicle.level)?;
        if vehicle.id.is_empty() || vehicle.id.len() > MAX_VEHICLE_ID_LEN {
            return Err(ScmsError::Profile(format!(
                "vehicle identity must be 1..={MAX_VEHICLE_ID_LEN} bytes"
            )));
        }
        let current = profile
            .period_at(now)
            .ok_or_else(|| ScmsError::Profile("the clock is before the profile's epoch".into()))?;
        let first = first_period.unwrap_or(current);
        if periods == 0 || periods > profile.max_periods_per_request {
            return Err(ScmsError::Profile(format!(
                "1..={} periods per request",
                profile.max_periods_per_request
            )));
        }
        let last = first + u64::from(periods) - 1;
        if first < current {
            return Err(ScmsError::Profile(format!(
                "period {first} is over (current {current})"
            )));
        }
        if last >= current + u64::from(profile.max_periods_ahead) || last > MAX_PERIOD {
            return Err(ScmsError::Profile(format!(
                "period {last} is more than {} periods ahead",
                profile.max_periods_ahead
            )));
        }
        let handle = self.handle(&vehicle.id);
        // One set of tickets per vehicle and period (a vehicle with more
        // could pose as several on the road). The check and the queueing
        // happen under one lock; what counts is what is stored or queued,
        // so a crash before the batch went out lets the vehicle ask again.
        let _one_at_a_time = self
            .submit_lock
            .lock()
            .map_err(|_| ScmsError::Config("submit lock poisoned".into()))?;
        let record = match self.load_vehicle(&handle)? {
            Some(r) => r,
            None => self.register_vehicle(&handle, &vehicle.id, current, now)?,
        };
        if record.revoked_from != u64::MAX {
            return Err(ScmsError::Revoked {
                from_period: record.revoked_from,
            });
        }
        for period in first..=last {
            if self.period_taken(&handle, period)? {
                return Err(ScmsError::Profile(format!(
                    "tickets of period {period} were already issued to this vehicle or are \
                     waiting for the next batch; download them instead"
                )));
            }
        }
        let cpp = profile.certificates_per_period;
        let total = (periods * cpp) as usize;
        // One call per linkage authority for the whole request: each hands
        // out its values with one audit entry.
        let values = |la: usize| {
            self.linkage[la].pre_linkage_values(
                &record.chains[la],
                first,
                periods,
                cpp,
                RA_ACTOR,
                now,
            )
        };
        let (plv1, plv2) = (values(0)?, values(1)?);
        if plv1.len() != total || plv2.len() != total {
            return Err(ScmsError::Malformed {
                what: "linkage authority answer",
                reason: "wrong number of pre-linkage values".into(),
            });
        }
        let mut slots = Vec::with_capacity(total);
        for (k, (a, b)) in plv1.into_iter().zip(plv2).enumerate() {
            let (p, j) = (k as u64 / u64::from(cpp), k as u32 % cpp);
            slots.push((first + p, j, [a, b]));
        }
        // The butterfly expansion (one point multiplication per ticket) on
        // every core.
        let cocoons = crate::parallel::map(
            &slots,
            |(period, j, _)| butterfly.cocoon_public_key(*period, *j),
            || {
                Err(trustca_pseudonym::PseudonymError::DegenerateKey {
                    what: "worker thread",
                })
            },
        );
        let mut pending = Vec::with_capacity(slots.len());
        for ((period, j, plv), cocoon) in slots.into_iter().zip(cocoons) {
            pending.push(Pending {
                handle,
                j,
                request: TicketRequest {
                    request_id: random_bytes()?,
                    cocoon: cocoon?,
                    period,
                    level: vehicle.level,
                    plv,
                },
                queued_at: now,
            });
        }
        let queued = pending.len() as u32;
        self.queue
            .lock()
            .map_err(|_| ScmsError::Config("request queue poisoned".into()))?
            .extend(pending);
        Ok(queued)
    }

    fn period_taken(&self, handle: &VehicleHandle, period: u64) -> Result<bool> {
        let queued = self
            .queue
            .lock()
            .map_err(|_| ScmsError::Config("request queue poisoned".into()))?
            .iter()
            .any(|p| p.handle == *handle && p.request.period == period);
        if queued {
            return Ok(true);
        }
        // One vehicle's deliveries of one period: a few by construction.
        Ok(!self
            .store
            .blob_scan(SPACE, &delivery_prefix(handle, Some(period)))?
            .is_empty())
    }

    /// Distinct vehicles and requests waiting.
    pub fn queued(&self) -> (usize, usize) {
        match self.queue.lock() {
            Ok(q) => (
                q.iter().map(|p| p.handle).collect::<HashSet<_>>().len(),
                q.len(),
            ),
            Err(_) => (0, 0),
        }
    }

    /// Sends the queue to the pseudonym CA, shuffled, if the batch policy
    /// allows (or `force`), and stores the encrypted responses for their
    /// vehicles. Returns how many tickets were stored.
    pub fn flush(&self, now: i64, force: bool) -> Result<usize> {
        let taken = {
            let mut q = self
                .queue
                .lock()
                .map_err(|_| ScmsError::Config("request queue poisoned".into()))?;
            let vehicles = q.iter().map(|p| p.handle).collect::<HashSet<_>>().len();
            let oldest = q.iter().map(|p| p.queued_at).min();
            let due = vehicles >= self.policy.min_vehicles
                || oldest.is_some_and(|t| now - t >= self.policy.max_wait_secs);
            if q.is_empty() || !(due || force) {
                return Ok(0);
            }
            std::mem::take(&mut *q)
        };
        let mut taken = taken;
        shuffle(&mut taken)?;
        let mut stored = 0;
        let mut rest = taken.as_slice();
        while !rest.is_empty() {
            let n = rest.len().min(self.policy.max_requests_per_batch.max(1));
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            match self.send(chunk, now) {
                Ok(k) => stored += k,
                Err(e) => {
                    // Put back what was not delivered so a later flush retries.
                    if let Ok(mut q) = self.queue.lock() {
                        q.extend(chunk.iter().chain(rest).map(|p| Pending {
                            handle: p.handle,
                            j: p.j,
                            request: p.request.clone(),
                            queued_at: p.queued_at,
                        }));
                    }
                    return Err(e);
                }
            }
        }
        Ok(stored)
    }

    fn send(&self, chunk: &[Pending], now: i64) -> Result<usize> {
        let requests: Vec<TicketRequest> = chunk.iter().map(|p| p.request.clone()).collect();
        let owner: HashMap<[u8; 16], (VehicleHandle, u64, u32)> = chunk
            .iter()
            .map(|p| (p.request.request_id, (p.handle, p.request.period, p.j)))
            .collect();
        let responses = self.pca.issue_batch(&requests, now)?;
        let mut records: Vec<KeyValue> = Vec::with_capacity(responses.len());
        let mut refused = 0usize;
        for r in responses {
            let Some((handle, period, j)) = owner.get(&r.request_id) else {
                return Err(ScmsError::Response(
                    "the pseudonym CA answered an unknown request".into(),
                ));
            };
            match r.outcome {
                Ok(response) => {
                    let mut key = delivery_prefix(handle, Some(*period));
                    key.extend_from_slice(&j.to_be_bytes());
                    key.extend_from_slice(&r.request_id);
                    records.push((key, pad_response(&response)?));
                }
                Err(reason) => {
                    refused += 1;
                    tracing::warn!(%reason, "pseudonym CA refused a ticket request");
                }
            }
        }
        let audit = BlobAudit {
            actor: "registration-authority".into(),
            kind: "v2x.responses.stored".into(),
            subject: self.profile.current().sector.clone(),
            detail: serde_json::json!({ "stored": records.len(), "refused": refused }).to_string(),
            at: now,
        };
        let n = records.len();
        self.store.blob_put(SPACE, &records, false, Some(&audit))?;
        Ok(n)
    }

    /// The responses (`AcaEeCertResponsePrivateSpdu`s) waiting for an
    /// authenticated vehicle.
    pub fn download(&self, vehicle: &VehicleCredential) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .stored_responses(&delivery_prefix(&self.handle(&vehicle.id), None))?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    /// The responses of one period waiting for an authenticated vehicle,
    /// each with its index `j` in the period (the IEEE 1609.2.1 download
    /// of `<requestHash>_<i>.zip`).
    pub fn download_period(
        &self,
        vehicle: &VehicleCredential,
        period: u64,
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        self.stored_responses(&delivery_prefix(&self.handle(&vehicle.id), Some(period)))
    }

    fn stored_responses(&self, prefix: &[u8]) -> Result<Vec<(u32, Vec<u8>)>> {
        let j_at = DELIVERY_PREFIX.len() + 32 + 8;
        // One vehicle's deliveries: its periods' batches, few by construction.
        self.store
            .blob_scan(SPACE, prefix)?
            .into_iter()
            .map(|(k, v)| {
                let j = k
                    .get(j_at..j_at + 4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| {
                        ScmsError::Response("a stored response key is damaged".into())
                    })?;
                Ok((j, unpad_response(&v)?))
            })
            .collect()
    }

    /// Resolution step 3: the vehicle that owns both chains (opened by the
    /// linkage authorities from a ticket's envelopes). Audited.
    pub fn vehicle_for_chains(
        &self,
        chains: [ChainId; 2],
        actor: &str,
        case: &str,
        now: i64,
    ) -> Result<(VehicleHandle, String)> {
        let mut key = CHAIN_PREFIX.to_vec();
        key.extend_from_slice(&chains[0].0);
        let handle = self
            .store
            .blob_get(SPACE, &key)?
            .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .map(VehicleHandle)
            .ok_or(ScmsError::NotFound("vehicle of this linkage chain"))?;
        let record = self
            .load_vehicle(&handle)?
            .ok_or(ScmsError::NotFound("vehicle record"))?;
        if record.chains != chains {
            return Err(ScmsError::NotFound("vehicle owning both linkage chains"));
        }
        let audit = BlobAudit {
            actor: actor.into(),
            kind: "v2x.resolution.identified".into(),
            subject: hex(&handle.0),
            detail: serde_json::json!({ "case": case }).to_string(),
            at: now,
        };
        self.store.blob_put(SPACE, &[], false, Some(&audit))?;
        Ok((handle, record.id))
    }

    /// Revokes a vehicle from `from_period`: asks both linkage authorities
    /// for their seeds of that period, records the revocation (no further
    /// tickets), and returns the entry for the pseudonym CA's linkage CRL.
    pub fn revoke(
        &self,
        vehicle_id: &str,
        from_period: u64,
        include_past: bool,
        actor: &str,
        now: i64,
    ) -> Result<LinkageRevocation> {
        let current =
            self.profile.current().period_at(now).ok_or_else(|| {
                ScmsError::Profile("the clock is before the profile's epoch".into())
            })?;
        let past = from_period < current;
        if past && !include_past {
            return Err(ScmsError::PastRevocation {
                from_period,
                current,
            });
        }
        if past {
            tracing::warn!(
                from_period,
                current,
                actor,
                "revocation links past tickets too"
            );
        }
        let handle = self.handle(vehicle_id);
        let mut record = self
            .load_vehicle(&handle)?
            .ok_or(ScmsError::NotFound("vehicle"))?;
        let first = self.linkage[0].release(&record.chains[0], from_period, actor, now)?;
        let second = self.linkage[1].release(&record.chains[1], from_period, actor, now)?;
        let revocation = LinkageRevocation::new(first, second)?;
        record.revoked_from = record.revoked_from.min(from_period);
        let audit = BlobAudit {
            actor: actor.into(),
            kind: "v2x.vehicle.revoked".into(),
            subject: hex(&handle.0),
            detail: serde_json::json!({ "from_period": from_period, "current_period": current, "include_past": past })
                .to_string(),
            at: now,
        };
        let value = self.seal_vehicle(&handle, &record)?;
        self.store
            .blob_put(SPACE, &[(vehicle_key(&handle), value)], false, Some(&audit))?;
        Ok(revocation)
    }

    /// [`RegistrationAuthority::revoke`], then the pseudonym CA adds the
    /// entry to its linkage CRL: the operator's one step.
    pub fn revoke_vehicle(
        &self,
        vehicle_id: &str,
        from_period: u64,
        include_past: bool,
        actor: &str,
        now: i64,
    ) -> Result<LinkageCrl> {
        let revocation = self.revoke(vehicle_id, from_period, include_past, actor, now)?;
        self.pca.add_revocation(revocation, actor, now)
    }

    /// The profile in force now.
    pub fn profile(&self) -> Arc<TicketProfile> {
        self.profile.current()
    }

    /// Where a policy reload puts a new profile for this authority.
    pub fn profile_slot(&self) -> &ProfileSlot {
        &self.profile
    }

    fn register_vehicle(
        &self,
        handle: &VehicleHandle,
        id: &str,
        current: u64,
        now: i64,
    ) -> Result<VehicleRecord> {
        let c1 = first_chain(self.linkage[0].create_chains(current, 1, RA_ACTOR, now)?)?;
        let c2 = first_chain(self.linkage[1].create_chains(current, 1, RA_ACTOR, now)?)?;
        let record = VehicleRecord {
            chains: [c1, c2],
            revoked_from: u64::MAX,
            id: id.to_owned(),
        };
        let mut chain_key = CHAIN_PREFIX.to_vec();
        chain_key.extend_from_slice(&c1.0);
        let audit = BlobAudit {
            actor: RA_ACTOR.into(),
            kind: "v2x.vehicle.registered".into(),
            subject: hex(&handle.0),
            detail: "{}".into(),
            at: now,
        };
        self.store.blob_put(
            SPACE,
            &[
                (vehicle_key(handle), self.seal_vehicle(handle, &record)?),
                (chain_key, handle.0.to_vec()),
            ],
            true,
            Some(&audit),
        )?;
        Ok(record)
    }

    fn seal_vehicle(&self, handle: &VehicleHandle, r: &VehicleRecord) -> Result<Vec<u8>> {
        let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(RECORD_PLAIN_LEN));
        plain.extend_from_slice(&r.chains[0].0);
        plain.extend_from_slice(&r.chains[1].0);
        plain.extend_from_slice(&r.revoked_from.to_be_bytes());
        plain.push(r.id.len() as u8);
        plain.extend_from_slice(r.id.as_bytes());
        plain.resize(RECORD_PLAIN_LEN, 0);
        let mut aad = VEHICLE_AAD.to_vec();
        aad.extend_from_slice(&handle.0);
        self.storage_key.seal(&aad, &plain)
    }

    fn load_vehicle(&self, handle: &VehicleHandle) -> Result<Option<VehicleRecord>> {
        let Some(sealed) = self.store.blob_get(SPACE, &vehicle_key(handle))? else {
            return Ok(None);
        };
        let mut aad = VEHICLE_AAD.to_vec();
        aad.extend_from_slice(&handle.0);
        let p = self.storage_key.open(&aad, &sealed, "vehicle record")?;
        if p.len() != RECORD_PLAIN_LEN {
            return Err(ScmsError::Malformed {
                what: "vehicle record",
                reason: format!("{} bytes", p.len()),
            });
        }
        let mut c1 = [0u8; 16];
        let mut c2 = [0u8; 16];
        let mut rev = [0u8; 8];
        c1.copy_from_slice(&p[..16]);
        c2.copy_from_slice(&p[16..32]);
        rev.copy_from_slice(&p[32..40]);
        let len = usize::from(p[40]).min(MAX_VEHICLE_ID_LEN);
        let id = String::from_utf8(p[41..41 + len].to_vec()).map_err(|_| ScmsError::Malformed {
            what: "vehicle record",
            reason: "identity is not UTF-8".into(),
        })?;
        Ok(Some(VehicleRecord {
            chains: [ChainId(c1), ChainId(c2)],
            revoked_from: u64::from_be_bytes(rev),
            id,
        }))
    }
}

fn first_chain(v: Vec<ChainId>) -> Result<ChainId> {
    v.into_iter().next().ok_or(ScmsError::Malformed {
        what: "linkage authority answer",
        reason: "no chain".into(),
    })
}
