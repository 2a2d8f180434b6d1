//! Systems of linked devices in the trust database: who may register and
//! change them, where they are stored, and the live evaluation that both
//! `Systems/Evaluate` and `Decide` use.
//!
//! Systems are opaque records of the store's `systems` space: a header
//! per system (`s/<name>`: sector and version), one record per member
//! (`m/<name>\0<key>`: its URN) and per link (`l/<name>\0<from>\0<to>\0
//! <operation>`: `1`, or `0` once unlinked, since records are never
//! deleted), and a generation token (random, new with every change). A
//! change writes only the records it
//! touches, the header and the counter, with its audit entry, in one
//! durable commit before the answer. Effective levels are never stored: they are computed from the
//! live trust records whenever asked, so a downgrade, suspension or
//! revocation anywhere is reflected at once, without a second write.
//!
//! An in-memory index (system by name, systems by member) serves `Decide`
//! without a store scan. Changes through this process update it at once;
//! another replica's changes are seen when the generation token is next
//! checked, at most [`RECHECK`] later. A stored system that no longer holds
//! together (a cycle made by two replicas at once, records changed behind
//! trustca's back) is kept in the index as damaged: its members' `Decide`
//! and the system's own calls answer `DATA_LOSS` (never a decision without
//! its cap), every other device is unaffected.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::msg;
use serde_json::json;
use time::OffsetDateTime;
use trustca_composition::{
    CompositionError, CompositionPolicy, Evaluation, Link, System, SystemRecord, evaluate,
};
use trustca_model::{CertificateKind, Credential, DeviceIdentity, SectorName, TrustStatus};
use trustca_store::{BlobAudit, STORE_PAGE, Storage};

use crate::TrustDbError;
use crate::engine::{TrustEngine, actor, check_reason};

mod decide;
mod listing;
mod repair;
mod snapshot;
mod views;
mod watch;

use decide::{SignedCap, live_levels};
pub use listing::ListedSystem;
pub use views::{cap_view, evaluation_view};
pub use watch::SystemWatch;

/// The store's record space for systems.
pub const SPACE: &str = "systems";
const GENERATION: &[u8] = b"generation";
const HEADER: &str = "s/";
const MEMBER: &str = "m/";
const LINK: &str = "l/";
const PRESENT: &[u8] = b"1";
const REMOVED: &[u8] = b"0";
/// How often `Decide` asks the store whether another replica changed a
/// system.
pub const RECHECK: Duration = Duration::from_secs(1);

fn header_key(name: &str) -> Vec<u8> {
    format!("{HEADER}{name}").into_bytes()
}

fn member_key(name: &str, key: &str) -> Vec<u8> {
    format!("{MEMBER}{name}\0{key}").into_bytes()
}

fn link_key(name: &str, l: &Link) -> Vec<u8> {
    format!("{LINK}{name}\0{}\0{}\0{}", l.from, l.to, l.operation).into_bytes()
}

/// A system's header record: `{"sector": .., "version": ..}`.
fn header_of(v: &[u8]) -> Option<(String, u64)> {
    let h: serde_json::Value = serde_json::from_slice(v).ok()?;
    Some((h["sector"].as_str()?.to_owned(), h["version"].as_u64()?))
}

fn damaged(what: &str) -> TrustDbError {
    TrustDbError::Composition(CompositionError::Inconsistent {
        system: "?".into(),
        reason: format!("a stored {what} record does not decode"),
    })
}

/// Every system of the space, assembled from its records, read a page at a
/// time (members and links grow with the devices in systems).
fn read_records(storage: &dyn Storage) -> Result<Vec<SystemRecord>, TrustDbError> {
    let mut systems: BTreeMap<String, SystemRecord> = BTreeMap::new();
    for item in trustca_store::blob_pages(storage, SPACE, HEADER.as_bytes(), STORE_PAGE) {
        let (k, v) = item?;
        let name = String::from_utf8(k[HEADER.len()..].to_vec()).map_err(|_| damaged("header"))?;
        let (sector, version) = header_of(&v).ok_or_else(|| damaged("header"))?;
        systems.insert(
            name.clone(),
            SystemRecord {
                name,
                sector,
                members: Vec::new(),
                links: Vec::new(),
                version,
            },
        );
    }
    for item in trustca_store::blob_pages(storage, SPACE, MEMBER.as_bytes(), STORE_PAGE) {
        let (k, v) = item?;
        let text = std::str::from_utf8(&k[MEMBER.len()..]).map_err(|_| damaged("member"))?;
        let (name, _) = text.split_once('\0').ok_or_else(|| damaged("member"))?;
        let urn = String::from_utf8(v).map_err(|_| damaged("member"))?;
        systems
            .get_mut(name)
            .ok_or_else(|| damaged("member"))?
            .members
            .push(urn);
    }
    for item in trustca_store::blob_pages(storage, SPACE, LINK.as_bytes(), STORE_PAGE) {
        let (k, v) = item?;
        if v != PRESENT {
            continue;
        }
        let text = std::str::from_utf8(&k[LINK.len()..]).map_err(|_| damaged("link"))?;
        let parts: Vec<&str> = text.split('\0').collect();
        let [name, from, to, operation] = parts.as_slice() else {
            return Err(damaged("link"));
        };
        systems
            .get_mut(*name)
            .ok_or_else(|| damaged("link"))?
            .links
            .push(Link {
                from: (*from).to_owned(),
                to: (*to).to_owned(),
                operation: (*operation).to_owned(),
            });
    }
    Ok(systems.into_values().collect())
}

/// A stored system with what `Decide` needs of it precomputed.
#[derive(Debug)]
struct Indexed {
    system: System,
    /// The part of the system that can affect each member, built on first
    /// use: a member's evaluation reads only those members' records.
    upstream: Mutex<HashMap<String, Arc<Upstream>>>,
    /// Each member's last evaluation (see [`Evaluated`]).
    evaluated: Mutex<HashMap<String, Evaluated>>,
}

/// The members that can reach one member, and their sectors.
#[derive(Debug)]
struct Upstream {
    part: System,
    sectors: Vec<SectorName>,
}

/// A member's last evaluation, reused while the store's audit log has the
/// same size and the policy is the same: every change to a trust record,
/// certificate or key block appends to the log in the same transaction, so
/// an unchanged size means unchanged live levels (what `CachedStorage`
/// relies on too). A revoked sector CA is not in the log: a part with such
/// a sector is never taken from here.
#[derive(Debug, Clone)]
struct Evaluated {
    audit_size: u64,
    policy: Arc<CompositionPolicy>,
    cap: Option<(trustca_model::TrustLevel, trustca_composition::Cap)>,
}

#[derive(Debug, Default, Clone)]
struct Index {
    generation: u64,
    systems: BTreeMap<String, Arc<Indexed>>,
    by_member: HashMap<String, Vec<String>>,
    /// Stored systems that do not hold together, with why.
    damaged: BTreeMap<String, (String, Arc<SystemRecord>)>,
}

impl Index {
    fn build(generation: u64, systems: Vec<System>) -> Self {
        let mut index = Index {
            generation,
            ..Default::default()
        };
        for s in systems {
            index.put(s);
        }
        index
    }

    /// Records a stored system that cannot be used, so that its members
    /// are answered `DATA_LOSS` rather than without its cap.
    fn put_damaged(&mut self, record: &SystemRecord, reason: String) {
        for urn in &record.members {
            if let Ok(identity) = DeviceIdentity::from_urn(urn) {
                self.by_member
                    .entry(identity.key())
                    .or_default()
                    .push(record.name.clone());
            }
        }
        self.damaged
            .insert(record.name.clone(), (reason, Arc::new(record.clone())));
    }

    /// The system, or why it cannot be used.
    fn get(&self, name: &str) -> Result<Option<&Arc<Indexed>>, TrustDbError> {
        if let Some((reason, _)) = self.damaged.get(name) {
            return Err(TrustDbError::Composition(CompositionError::Inconsistent {
                system: name.to_owned(),
                reason: reason.clone(),
            }));
        }
        Ok(self.systems.get(name))
    }

    fn put(&mut self, system: System) {
        let name = system.name().to_owned();
        self.remove(&name);
        for key in system.members().keys() {
            self.by_member
                .entry(key.clone())
                .or_default()
                .push(name.clone());
        }
        self.systems.insert(
            name,
            Arc::new(Indexed {
                system,
                upstream: Mutex::new(HashMap::new()),
                evaluated: Mutex::new(HashMap::new()),
            }),
        );
    }

    fn remove(&mut self, name: &str) {
        if let Some(old) = self.systems.remove(name) {
            for key in old.system.members().keys() {
                if let Some(names) = self.by_member.get_mut(key) {
                    names.retain(|n| n != name);
                    if names.is_empty() {
                        self.by_member.remove(key);
                    }
                }
            }
        }
    }
}

/// The cap a system puts on one device, for `Decide`.
#[derive(Debug, Clone)]
pub struct MemberCap {
    /// The system.
    pub system: String,
    /// The device's effective level there.
    pub effective: trustca_model::TrustLevel,
    /// The evaluation's cap (path and reason).
    pub cap: trustca_composition::Cap,
}

/// Systems: storage, roles and evaluation.
pub struct SystemRegistry {
    storage: Arc<dyn Storage>,
    policy: RwLock<Arc<CompositionPolicy>>,
    index: RwLock<Arc<Index>>,
    /// Milliseconds since `started` of the last generation check.
    checked_at: AtomicU64,
    started: Instant,
    /// One change at a time: a change reads, checks and rewrites a system.
    writing: Mutex<()>,
    /// Signed cap assertions by the peer's lower-case URN.
    signed: Mutex<HashMap<String, SignedCap>>,
}

impl std::fmt::Debug for SystemRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemRegistry").finish_non_exhaustive()
    }
}

fn poisoned<T>(r: Result<T, std::sync::PoisonError<T>>) -> T {
    r.unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl SystemRegistry {
    /// Opens the systems of `storage` under `policy`. A stored system that
    /// no longer holds together is logged and kept as damaged (see the
    /// module's documentation); a store that cannot be read is an error.
    pub fn open(
        storage: Arc<dyn Storage>,
        policy: CompositionPolicy,
    ) -> Result<Self, TrustDbError> {
        let registry = Self {
            storage,
            policy: RwLock::new(Arc::new(policy)),
            index: RwLock::new(Arc::new(Index::default())),
            checked_at: AtomicU64::new(0),
            started: Instant::now(),
            writing: Mutex::new(()),
            signed: Mutex::new(HashMap::new()),
        };
        registry.reload()?;
        Ok(registry)
    }

    /// The composition policy in force, kept in step with the engine's
    /// trust policy (its depths, operations and recognition tables).
    pub fn policy(&self, engine: &TrustEngine) -> Result<Arc<CompositionPolicy>, TrustDbError> {
        let current = Arc::clone(&*poisoned(self.policy.read()));
        let trust = engine.policy();
        if Arc::ptr_eq(current.trust(), &trust) {
            return Ok(current);
        }
        let fresh = Arc::new(current.with_trust(trust)?);
        *poisoned(self.policy.write()) = Arc::clone(&fresh);
        Ok(fresh)
    }

    /// Replaces the composition policy (`composition.toml` read again):
    /// checked against the engine's trust policy first, so a bad file
    /// leaves the running policy in force. Stored systems are read again
    /// under the new limits.
    pub fn replace_policy(
        &self,
        engine: &TrustEngine,
        parse: impl FnOnce(
            Arc<trustca_model::TrustPolicy>,
        ) -> Result<CompositionPolicy, CompositionError>,
    ) -> Result<(), TrustDbError> {
        let fresh = parse(engine.policy())?;
        *poisoned(self.policy.write()) = Arc::new(fresh);
        self.reload()
    }

    /// A new generation token: random, so that two replicas writing at
    /// once never write the same one (a counter could repeat and hide the
    /// second change from a third replica).
    fn fresh_generation() -> u64 {
        let mut bytes = [0u8; 8];
        if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
            return OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
        }
        u64::from_be_bytes(bytes)
    }

    fn generation(&self) -> Result<u64, TrustDbError> {
        Ok(self
            .storage
            .blob_get(SPACE, GENERATION)?
            .and_then(|v| v.try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0))
    }

    /// Reads every system from the store into the index.
    fn reload(&self) -> Result<(), TrustDbError> {
        let policy = Arc::clone(&*poisoned(self.policy.read()));
        let generation = self.generation()?;
        let mut index = Index::build(generation, Vec::new());
        for record in read_records(self.storage.as_ref())? {
            match System::from_record(&record, &policy) {
                Ok(system) => index.put(system),
                Err(e) => {
                    tracing::error!(system = %record.name, error = %e, "stored system of linked devices is damaged: its members are answered DATA_LOSS");
                    index.put_damaged(&record, e.to_string());
                }
            }
        }
        *poisoned(self.index.write()) = Arc::new(index);
        Ok(())
    }

    /// The index, reloaded first when another replica changed systems
    /// (checked at most every [`RECHECK`]).
    fn index(&self) -> Result<Arc<Index>, TrustDbError> {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.checked_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= RECHECK.as_millis() as u64
            && self
                .checked_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let stored = self.generation()?;
            if stored != poisoned(self.index.read()).generation {
                self.reload()?;
            }
        }
        Ok(Arc::clone(&*poisoned(self.index.read())))
    }

    fn system(&self, name: &str) -> Result<Arc<Indexed>, TrustDbError> {
        self.index()?
            .get(name)?
            .cloned()
            .ok_or_else(|| TrustDbError::NotFound(format!("no system named {name:?}")))
    }

    /// Writes `records` of the space with their audit entry in one durable
    /// commit.
    fn commit(
        &self,
        records: &[trustca_store::KeyValue],
        caller: &Credential,
        kind: &str,
        system: &str,
        detail: &serde_json::Value,
    ) -> Result<(), TrustDbError> {
        self.storage.blob_put(
            SPACE,
            records,
            false,
            Some(&BlobAudit {
                actor: actor(caller),
                kind: kind.to_owned(),
                subject: system.to_owned(),
                detail: detail.to_string(),
                at: OffsetDateTime::now_utc().unix_timestamp(),
            }),
        )?;
        Ok(())
    }

    /// Writes what changed from `before` (None: a new system) to `system`
    /// and the audit entry in one durable commit, then updates the index.
    fn store(
        &self,
        before: Option<&System>,
        mut system: System,
        caller: &Credential,
        kind: &str,
        detail: serde_json::Value,
    ) -> Result<System, TrustDbError> {
        let generation = Self::fresh_generation();
        system.set_version(system.version() + 1);
        let name = system.name().to_owned();
        let header = json!({"sector": system.sector().as_str(), "version": system.version()})
            .to_string()
            .into_bytes();
        let mut records = vec![
            (header_key(&name), header),
            (GENERATION.to_vec(), generation.to_be_bytes().to_vec()),
        ];
        for (key, m) in system.members() {
            if !before.is_some_and(|b| b.is_member(key)) {
                records.push((member_key(&name, key), m.urn.clone().into_bytes()));
            }
        }
        for l in system.links() {
            if !before.is_some_and(|b| b.links().contains(l)) {
                records.push((link_key(&name, l), PRESENT.to_vec()));
            }
        }
        for l in before.map(|b| b.links().iter()).into_iter().flatten() {
            if !system.links().contains(l) {
                records.push((link_key(&name, l), REMOVED.to_vec()));
            }
        }
        let mut detail = detail;
        detail["version"] = json!(system.version());
        self.commit(&records, caller, kind, &name, &detail)?;
        let mut index = poisoned(self.index.write());
        let mut fresh = Index::clone(&index);
        fresh.generation = generation;
        fresh.put(system.clone());
        *index = Arc::new(fresh);
        Ok(system)
    }
}

/// A device named in a request: its identity, checked to be enrolled here
/// and not revoked or retired (a link to such a device is refused; one
/// revoked later only caps what it reaches).
fn linkable(storage: &dyn Storage, urn: &str) -> Result<DeviceIdentity, TrustDbError> {
    let identity = DeviceIdentity::from_urn(urn)?;
    let record = storage.trust_record(&identity.key())?.ok_or_else(|| {
        TrustDbError::NotFound(format!("{urn} is not enrolled in this trust database"))
    })?;
    if matches!(record.status, TrustStatus::Revoked | TrustStatus::Retired) {
        return Err(TrustDbError::FailedPrecondition(format!(
            "{urn} is {}: it cannot be linked into a system",
            record.status.as_str()
        )));
    }
    Ok(identity)
}

/// The URN as enrolled (original case), for answers.
fn enrolled_urn(storage: &dyn Storage, identity: &DeviceIdentity) -> Result<String, TrustDbError> {
    Ok(storage
        .device(&identity.key())?
        .map(|d| d.urn)
        .unwrap_or_else(|| identity.urn()))
}

fn operator_of(caller: &Credential, sector: &SectorName, what: &str) -> Result<(), TrustDbError> {
    if caller.kind == CertificateKind::Operator && caller.may_act_for(sector) {
        Ok(())
    } else {
        Err(TrustDbError::PermissionDenied(format!(
            "{what} needs an operator of sector {sector}; the caller is {} {}",
            caller.kind.with_article(),
            caller.name
        )))
    }
}

/// A link of a request: both ends' identities and the link by keys.
fn link_of(l: &msg::SystemLink) -> Result<(DeviceIdentity, DeviceIdentity, Link), TrustDbError> {
    let from = DeviceIdentity::from_urn(&l.from)?;
    let to = DeviceIdentity::from_urn(&l.to)?;
    let link = Link {
        from: from.key(),
        to: to.key(),
        operation: l.operation.clone(),
    };
    Ok((from, to, link))
}

/// The links of a `Link`/`Unlink` request: at least one, at most the
/// policy's link limit.
fn links_of(
    req: &msg::LinkRequest,
    policy: &CompositionPolicy,
) -> Result<Vec<(DeviceIdentity, DeviceIdentity, Link)>, TrustDbError> {
    if req.links.is_empty() {
        return Err(TrustDbError::InvalidRequest("no link given".into()));
    }
    if req.links.len() > policy.max_links {
        return Err(CompositionError::TooLarge {
            what: "links",
            limit: policy.max_links,
        }
        .into());
    }
    req.links.iter().map(link_of).collect()
}

fn describe(links: &[(DeviceIdentity, DeviceIdentity, Link)]) -> serde_json::Value {
    json!(
        links
            .iter()
            .map(|(_, _, l)| l.to_string())
            .collect::<Vec<_>>()
    )
}

/// The proto view of a system.
pub fn system_view(s: &System) -> msg::SystemView {
    let urn = |key: &str| {
        s.members()
            .get(key)
            .map(|m| m.urn.clone())
            .unwrap_or_else(|| key.to_owned())
    };
    msg::SystemView {
        name: s.name().to_owned(),
        sector: s.sector().to_string(),
        version: s.version(),
        members: s.members().values().map(|m| m.urn.clone()).collect(),
        links: s
            .links()
            .iter()
            .map(|l| msg::SystemLink {
                from: urn(&l.from),
                to: urn(&l.to),
                operation: l.operation.clone(),
            })
            .collect(),
    }
}

impl SystemRegistry {
    /// `Register`: a new system with its members and links, by an operator
    /// of every member's sector. All checked before anything is stored.
    pub fn register(
        &self,
        engine: &TrustEngine,
        caller: &Credential,
        req: &msg::RegisterSystemRequest,
    ) -> Result<msg::SystemView, TrustDbError> {
        check_reason(&req.reason)?;
        let policy = self.policy(engine)?;
        let sector = SectorName::new(&req.sector)?;
        if !policy.trust().sectors().contains(&sector) {
            return Err(TrustDbError::InvalidRequest(format!(
                "unknown sector {sector}"
            )));
        }
        if req.members.is_empty() {
            return Err(TrustDbError::InvalidRequest(
                "a system needs at least one member".into(),
            ));
        }
        if req.members.len() > policy.max_devices {
            return Err(CompositionError::TooLarge {
                what: "devices",
                limit: policy.max_devices,
            }
            .into());
        }
        let mut system = System::new(&req.name, sector)?;
        for urn in &req.members {
            let identity = linkable(self.storage.as_ref(), urn)?;
            operator_of(
                caller,
                &identity.sector,
                "registering a system with its devices",
            )?;
            system.add_member(&enrolled_urn(self.storage.as_ref(), &identity)?, &policy)?;
        }
        for l in &req.links {
            let (_, _, link) = link_of(l)?;
            system.add_link(link, &policy)?;
        }
        let _one = poisoned(self.writing.lock());
        let index = self.index()?;
        if index.systems.contains_key(system.name())
            || index.damaged.contains_key(system.name())
            || self
                .storage
                .blob_get(SPACE, &header_key(system.name()))?
                .is_some()
        {
            return Err(TrustDbError::AlreadyExists(format!(
                "a system named {:?} exists",
                system.name()
            )));
        }
        let detail = json!({
            "sector": system.sector().as_str(),
            "members": system.members().len(),
            "links": system.links().len(),
            "reason": req.reason,
        });
        let system = self.store(None, system, caller, "system.registered", detail)?;
        tracing::info!(rpc = "Systems/Register", caller = %caller.name, system = system.name(), members = system.members().len(), links = system.links().len(), outcome = "registered");
        Ok(system_view(&system))
    }

    /// Who may change a link: an operator of both ends' sectors, or a
    /// device that is one end and a member of the system.
    fn may_change_link(
        caller: &Credential,
        system: &System,
        from: &DeviceIdentity,
        to: &DeviceIdentity,
    ) -> Result<(), TrustDbError> {
        match caller.kind {
            CertificateKind::Operator => {
                operator_of(caller, &from.sector, "linking devices")?;
                operator_of(caller, &to.sector, "linking devices")
            }
            CertificateKind::LongTerm => {
                let me = caller.identity.as_ref().map(DeviceIdentity::key);
                let Some(me) = me else {
                    return Err(TrustDbError::PermissionDenied(
                        "the caller's certificate names no device".into(),
                    ));
                };
                if !system.is_member(&me) {
                    return Err(TrustDbError::PermissionDenied(format!(
                        "the caller is not a member of system {}",
                        system.name()
                    )));
                }
                if me != from.key() && me != to.key() {
                    return Err(TrustDbError::PermissionDenied(
                        "a device may only change links it takes part in".into(),
                    ));
                }
                Ok(())
            }
            _ => Err(TrustDbError::PermissionDenied(format!(
                "links are changed by operators and by the devices linked; the caller holds {} certificate",
                caller.kind.with_article()
            ))),
        }
    }

    /// `Link`: adds links, all or none. An operator's link may bring a new
    /// member in; a device's links must be between members.
    pub fn link(
        &self,
        engine: &TrustEngine,
        caller: &Credential,
        req: &msg::LinkRequest,
    ) -> Result<msg::SystemView, TrustDbError> {
        self.change_links(engine, caller, req, true)
    }

    /// `Unlink`: removes links, all or none (members stay).
    pub fn unlink(
        &self,
        engine: &TrustEngine,
        caller: &Credential,
        req: &msg::LinkRequest,
    ) -> Result<msg::SystemView, TrustDbError> {
        self.change_links(engine, caller, req, false)
    }

    /// Adds (`add`) or removes the request's links, checked one by one on a
    /// copy; stored only when every one is accepted.
    fn change_links(
        &self,
        engine: &TrustEngine,
        caller: &Credential,
        req: &msg::LinkRequest,
        add: bool,
    ) -> Result<msg::SystemView, TrustDbError> {
        check_reason(&req.reason)?;
        let policy = self.policy(engine)?;
        let links = links_of(req, &policy)?;
        let _one = poisoned(self.writing.lock());
        if !add && let Some(view) = self.unlink_damaged(caller, req, &links)? {
            return Ok(view);
        }
        let before = Arc::clone(&self.system(&req.system)?);
        let mut system = before.system.clone();
        let mut checked = std::collections::HashSet::new();
        for (from, to, link) in &links {
            Self::may_change_link(caller, &system, from, to)?;
            if !add {
                system.remove_link(link)?;
                continue;
            }
            for end in [from, to] {
                if checked.insert(end.key()) {
                    linkable(self.storage.as_ref(), &end.urn())?;
                }
                if caller.kind == CertificateKind::Operator {
                    system.add_member(&enrolled_urn(self.storage.as_ref(), end)?, &policy)?;
                }
            }
            system.add_link(link.clone(), &policy)?;
        }
        let (kind, outcome) = if add {
            ("system.linked", "linked")
        } else {
            ("system.unlinked", "unlinked")
        };
        let detail = json!({"links": describe(&links), "reason": req.reason});
        let system = self.store(Some(&before.system), system, caller, kind, detail)?;
        tracing::info!(rpc = if add { "Systems/Link" } else { "Systems/Unlink" }, caller = %caller.name, system = system.name(), links = links.len(), outcome);
        Ok(system_view(&system))
    }

    /// Who may see a system: operators and auditors of its sector or of a
    /// member's sector, and its member devices.
    fn may_see(caller: &Credential, system: &System) -> Result<(), TrustDbError> {
        let allowed = match caller.kind {
            CertificateKind::Operator | CertificateKind::Auditor => {
                caller.may_act_for(system.sector())
                    || system
                        .members()
                        .values()
                        .any(|m| caller.may_act_for(&m.sector))
            }
            CertificateKind::LongTerm => caller
                .identity
                .as_ref()
                .is_some_and(|i| system.is_member(&i.key())),
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(TrustDbError::PermissionDenied(format!(
                "system {} is shown to its member devices and to operators and auditors of its sectors",
                system.name()
            )))
        }
    }

    /// `Show`.
    pub fn show(&self, caller: &Credential, name: &str) -> Result<msg::SystemView, TrustDbError> {
        let indexed = self.system(name)?;
        Self::may_see(caller, &indexed.system)?;
        Ok(system_view(&indexed.system))
    }

    /// `Evaluate`: every member from its live record now.
    pub fn evaluate(
        &self,
        engine: &TrustEngine,
        caller: &Credential,
        name: &str,
    ) -> Result<(Evaluation, Arc<CompositionPolicy>), TrustDbError> {
        let indexed = self.system(name)?;
        Self::may_see(caller, &indexed.system)?;
        let policy = self.policy(engine)?;
        let levels = live_levels(engine, &indexed.system)?;
        Ok((evaluate(&indexed.system, &levels, &policy)?, policy))
    }
}
