//! An opened pool: creating and opening it, saving it durably, recording
//! tickets and requests, rotation and top-up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ring::aead::LessSafeKey;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::error::{PoolError, Result};
use crate::records::{PoolFormat, PoolMeta, PoolState};
use crate::sealed::{
    CHECK_AAD, CHECK_PLAINTEXT, FORMAT, PBKDF2_ITERATIONS, STATE_AAD, STATE_MAGIC, open,
    random_u64, seal,
};
use crate::status::{CurrentTicket, PoolStatus};
use crate::{
    Current, EtsiStation, POOL_META, POOL_STATE, PoolEntry, PoolProfile, PoolSecret, Rotation,
    Settings, TicketKind, TicketRequestRecord, write_atomic,
};

/// An opened pool.
pub struct Pool {
    dir: PathBuf,
    key: LessSafeKey,
    state: PoolState,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("dir", &self.dir)
            .field("certificates", &self.state.entries.len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Whether `dir` holds a pool.
    pub fn exists(dir: &Path) -> bool {
        dir.join(POOL_META).exists()
    }

    /// Creates an empty pool in `dir` (which must not hold one).
    pub fn create(dir: &Path, secret: &PoolSecret) -> Result<Self> {
        if Self::exists(dir) {
            return Err(PoolError::AlreadyExists(dir.to_path_buf()));
        }
        std::fs::create_dir_all(dir).map_err(|e| PoolError::io("create", dir, &e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| PoolError::Crypto("the system random generator failed"))?;
        let key = secret.derive(secret.kdf_name(), PBKDF2_ITERATIONS, &salt)?;
        let meta = PoolMeta {
            format: FORMAT.into(),
            kdf: secret.kdf_name().into(),
            iterations: PBKDF2_ITERATIONS,
            salt: hex::encode(salt),
            check: hex::encode(seal(&key, CHECK_AAD, CHECK_PLAINTEXT)?),
        };
        let pool = Self {
            dir: dir.to_path_buf(),
            key,
            state: PoolState {
                format: PoolFormat::Ieee1609,
                ..PoolState::default()
            },
        };
        pool.save_state()?;
        write_atomic(
            &dir.join(POOL_META),
            toml::to_string(&meta)
                .map_err(|_| PoolError::Crypto("encoding pool.toml failed"))?
                .as_bytes(),
        )?;
        Ok(pool)
    }

    /// Opens the pool in `dir`; a wrong secret is a clear error, and so is
    /// a pool of X.509 pseudonyms ([`X509_POOL_REFUSED`]), which is left
    /// as it is.
    pub fn open(dir: &Path, secret: &PoolSecret) -> Result<Self> {
        let meta_path = dir.join(POOL_META);
        let text = std::fs::read_to_string(&meta_path)
            .map_err(|_| PoolError::NoPool(dir.to_path_buf()))?;
        let meta: PoolMeta = toml::from_str(&text).map_err(|e| PoolError::Corrupt {
            path: meta_path.clone(),
            reason: e.message().to_owned(),
        })?;
        if meta.format != FORMAT {
            return Err(PoolError::Corrupt {
                path: meta_path,
                reason: format!("unsupported format {}", meta.format),
            });
        }
        let bad = |what: &str| PoolError::Corrupt {
            path: dir.join(POOL_META),
            reason: format!("bad {what}"),
        };
        let salt = hex::decode(&meta.salt).map_err(|_| bad("salt"))?;
        let key = secret.derive(&meta.kdf, meta.iterations, &salt)?;
        let check = hex::decode(&meta.check).map_err(|_| bad("check value"))?;
        match open(&key, CHECK_AAD, &check) {
            Some(p) if p.as_slice() == CHECK_PLAINTEXT => {}
            _ => return Err(PoolError::WrongSecret(dir.to_path_buf())),
        }
        let state_path = dir.join(POOL_STATE);
        let sealed =
            std::fs::read(&state_path).map_err(|e| PoolError::io("read", &state_path, &e))?;
        if sealed.len() < 4 || &sealed[..4] != STATE_MAGIC {
            return Err(PoolError::Corrupt {
                path: state_path,
                reason: "not a trustca pool state".into(),
            });
        }
        let plain = open(&key, STATE_AAD, &sealed[4..]).ok_or_else(|| PoolError::Corrupt {
            path: state_path.clone(),
            reason: "does not decrypt".into(),
        })?;
        let mut state: PoolState =
            serde_json::from_slice(&plain).map_err(|e| PoolError::Corrupt {
                path: state_path.clone(),
                reason: e.to_string(),
            })?;
        if state.format == PoolFormat::X509 {
            if state.profile.is_some() || !state.entries.is_empty() {
                return Err(PoolError::X509Pool(dir.to_path_buf()));
            }
            // Empty: nothing of the old format to keep.
            state.format = PoolFormat::Ieee1609;
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            key,
            state,
        })
    }

    /// Opens the pool in `dir`, creating it when there is none.
    pub fn open_or_create(dir: &Path, secret: &PoolSecret) -> Result<Self> {
        if Self::exists(dir) {
            Self::open(dir, secret)
        } else {
            Self::create(dir, secret)
        }
    }

    fn save_state(&self) -> Result<()> {
        let plain = Zeroizing::new(
            serde_json::to_vec(&self.state)
                .map_err(|_| PoolError::Crypto("encoding the pool failed"))?,
        );
        let mut out = STATE_MAGIC.to_vec();
        out.extend(seal(&self.key, STATE_AAD, &plain)?);
        write_atomic(&self.dir.join(POOL_STATE), &out)
    }

    /// Drops expired certificates and writes the pool durably.
    pub fn save(&mut self, now: i64) -> Result<()> {
        self.drop_expired(now);
        self.save_state()
    }

    /// Ticket requests whose tickets have not all arrived.
    pub fn ticket_requests(&self) -> &[TicketRequestRecord] {
        &self.state.ticket_requests
    }

    /// Records a sent ticket request (its caterpillar stays sealed here
    /// until its tickets have arrived).
    pub fn add_ticket_request(&mut self, record: TicketRequestRecord) {
        self.state.ticket_requests.push(record);
    }

    /// Forgets the request with this caterpillar (hex), e.g. when the
    /// registration authority refused it.
    pub fn remove_ticket_request(&mut self, caterpillar: &str) {
        self.state
            .ticket_requests
            .retain(|r| r.caterpillar != caterpillar);
    }

    /// Tickets still expected from the pending requests.
    pub fn tickets_awaited(&self) -> usize {
        // Per period: a request sent again covers the same periods.
        let mut per: std::collections::BTreeMap<u64, u32> = Default::default();
        for r in &self.state.ticket_requests {
            for p in r.period_range() {
                let n = per.entry(p).or_default();
                *n = (*n).max(r.per_period);
            }
        }
        per.into_iter()
            .map(|(p, n)| {
                let held = self.state.entries.iter().filter(|e| e.period == p).count();
                (n as usize).saturating_sub(held)
            })
            .sum()
    }

    /// Tickets still expected from one pending request.
    pub fn awaited_in(&self, r: &TicketRequestRecord) -> usize {
        let range = r.period_range();
        let held = self
            .state
            .entries
            .iter()
            .filter(|e| range.contains(&e.period))
            .count();
        r.tickets().saturating_sub(held)
    }

    /// Forgets the requests (and their caterpillar keys) whose tickets have
    /// all arrived or whose last period is over; returns how many.
    pub fn prune_ticket_requests(&mut self, now: i64) -> usize {
        let before = self.state.ticket_requests.len();
        let profile = self.state.profile.clone();
        let entries = &self.state.entries;
        self.state.ticket_requests.retain(|r| {
            let range = r.period_range();
            let held = entries.iter().filter(|e| range.contains(&e.period)).count();
            let over = profile.as_ref().is_some_and(|p| {
                p.period_start(range.end)
                    .saturating_add(i64::try_from(p.overlap_seconds).unwrap_or(i64::MAX))
                    < now
            });
            held < r.tickets() && !over
        });
        before - self.state.ticket_requests.len()
    }

    /// The pool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The profile, once the pool has talked to a registration authority.
    pub fn profile(&self) -> Option<&PoolProfile> {
        self.state.profile.as_ref()
    }

    /// Records the ticket profile, the pseudonym CA (COER) and the root. A
    /// pool belongs to one sector.
    pub fn set_profile(
        &mut self,
        profile: PoolProfile,
        ca_der: &[u8],
        root_der: &[u8],
    ) -> Result<()> {
        if let Some(p) = &self.state.profile
            && p.sector != profile.sector
        {
            return Err(PoolError::Refused(format!(
                "this pool holds pseudonyms of sector {}, not {}",
                p.sector, profile.sector
            )));
        }
        self.check_kind(profile.kind)?;
        self.state.profile = Some(profile);
        if !ca_der.is_empty() {
            self.state.pseudonym_ca = hex::encode(ca_der);
        }
        if !root_der.is_empty() {
            self.state.root = hex::encode(root_der);
        }
        Ok(())
    }

    /// Refuses to mix ticket kinds: a pool holding (or awaiting) tickets
    /// of one profile takes no tickets of the other.
    pub fn check_kind(&self, kind: TicketKind) -> Result<()> {
        let held = self
            .state
            .profile
            .as_ref()
            .map(|p| p.kind)
            .filter(|_| !self.state.entries.is_empty() || !self.state.ticket_requests.is_empty())
            .or_else(|| self.state.etsi.as_ref().map(|_| TicketKind::Etsi));
        match held {
            Some(k) if k != kind => Err(PoolError::Refused(format!(
                "this pool holds {} tickets, not {}; use another --pool directory",
                k.as_str(),
                kind.as_str()
            ))),
            _ => Ok(()),
        }
    }

    /// The EU C-ITS station's keys and credentials, if this pool has them.
    pub fn etsi_station(&self) -> Option<&EtsiStation> {
        self.state.etsi.as_ref()
    }

    /// Records the EU C-ITS station (its canonical key, credential and
    /// trust anchors); a pool of SCMS tickets takes none.
    pub fn set_etsi_station(&mut self, station: EtsiStation) -> Result<()> {
        self.check_kind(TicketKind::Etsi)?;
        self.state.etsi = Some(station);
        Ok(())
    }

    /// Records that tickets up to period `through` were issued to this
    /// vehicle (remembered after they expire).
    pub fn set_issued_through(&mut self, through: Option<u64>) {
        if through > self.state.issued_through {
            self.state.issued_through = through;
        }
    }

    /// The pseudonym CA certificate, COER (empty before the first request).
    pub fn pseudonym_ca_der(&self) -> Vec<u8> {
        hex::decode(&self.state.pseudonym_ca).unwrap_or_default()
    }

    /// The rotation settings.
    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    /// Changes the rotation interval (`None`: the profile's default).
    pub fn set_rotation(&mut self, seconds: Option<u64>) {
        self.state.settings.rotation_seconds = seconds.filter(|s| *s > 0);
    }

    /// Changes the top-up margin (at least 1 period).
    pub fn set_topup_margin(&mut self, periods: u32) {
        self.state.settings.topup_margin_periods = periods.max(1);
    }

    /// Every certificate held.
    pub fn entries(&self) -> &[PoolEntry] {
        &self.state.entries
    }

    /// Whether the pool holds the certificate with this serial (for
    /// tickets: this HashedId8), hex.
    pub fn holds_serial(&self, serial: &str) -> bool {
        self.state.entries.iter().any(|e| e.serial == serial)
    }

    /// Adds certificates (a repeated period and index, or a repeated
    /// serial, replaces nothing).
    pub fn add(&mut self, entries: Vec<PoolEntry>) -> usize {
        let mut have: BTreeSet<(u64, u32)> = self
            .state
            .entries
            .iter()
            .map(|e| (e.period, e.index))
            .collect();
        let mut serials: BTreeSet<String> = self
            .state
            .entries
            .iter()
            .map(|e| e.serial.clone())
            .collect();
        let mut added = 0;
        for e in entries {
            if !have.contains(&(e.period, e.index)) && !serials.contains(&e.serial) {
                have.insert((e.period, e.index));
                serials.insert(e.serial.clone());
                self.state.entries.push(e);
                added += 1;
            }
        }
        self.state.entries.sort_by_key(|e| (e.period, e.index));
        if let Some(last) = self.state.entries.last().map(|e| e.period) {
            self.set_issued_through(Some(last));
        }
        added
    }

    /// Drops certificates whose validity has ended; returns how many.
    pub fn drop_expired(&mut self, now: i64) -> usize {
        let before = self.state.entries.len();
        self.state.entries.retain(|e| e.not_after >= now);
        if let Some(c) = &self.state.current
            && !self
                .state
                .entries
                .iter()
                .any(|e| e.period == c.period && e.index == c.index)
        {
            self.state.current = None;
        }
        before - self.state.entries.len()
    }

    /// The last period covered by a certificate held or issued, or by a
    /// ticket request still pending.
    pub fn covered_through(&self) -> Option<u64> {
        let held = self.state.entries.iter().map(|e| e.period).max();
        let pending = self
            .state
            .ticket_requests
            .iter()
            .map(|r| r.period_range().end.saturating_sub(1))
            .max();
        held.max(self.state.issued_through).max(pending)
    }

    /// The rotation interval in seconds.
    pub fn rotation_seconds(&self) -> u64 {
        self.state.settings.rotation_seconds.unwrap_or_else(|| {
            self.state
                .profile
                .as_ref()
                .map(|p| p.period_seconds / p.certificates_per_period.max(1) as u64)
                .unwrap_or(300)
                .max(1)
        })
    }

    fn jittered(&self) -> Result<i64> {
        let base = self.rotation_seconds();
        let spread = base * self.state.settings.jitter_percent.min(90) as u64 / 100;
        if spread == 0 {
            return Ok(base as i64);
        }
        let offset = random_u64()? % (2 * spread + 1);
        Ok((base - spread + offset).max(1) as i64)
    }

    /// The certificate in use.
    pub fn current(&self) -> Option<&Current> {
        self.state.current.as_ref()
    }

    /// The entry of the certificate in use.
    pub fn current_entry(&self) -> Option<&PoolEntry> {
        let c = self.state.current.as_ref()?;
        self.state
            .entries
            .iter()
            .find(|e| e.period == c.period && e.index == c.index)
    }

    /// Picks the certificate to use at `now`: keeps the current one until
    /// its change is due (or `force`), changes at once when a new period
    /// begins, and picks uniformly among the period's certificates not yet
    /// used. Does not save.
    pub fn rotate(&mut self, now: i64, force: bool) -> Result<Rotation> {
        self.drop_expired(now);
        let Some(profile) = self.state.profile.clone() else {
            return Ok(Rotation::Empty);
        };
        let period = profile.period_at(now);
        let current_ok = self
            .current_entry()
            .is_some_and(|e| e.valid_at(now) && e.period == period);
        if current_ok
            && !force
            && self
                .state
                .current
                .as_ref()
                .is_some_and(|c| now < c.next_change)
        {
            return Ok(Rotation::Kept);
        }
        let mut candidates: Vec<usize> = self
            .state
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.period == period && !e.used && e.valid_at(now))
            .map(|(i, _)| i)
            .collect();
        if candidates.is_empty() && !current_ok {
            // During the overlap at a period edge, a certificate of the
            // neighbouring period is still (or already) valid.
            candidates = self
                .state
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| !e.used && e.valid_at(now))
                .map(|(i, _)| i)
                .collect();
        }
        if candidates.is_empty() {
            if current_ok {
                // Never go back to a certificate already used this period.
                if let Some(c) = self.state.current.as_mut() {
                    c.next_change = profile.period_start(period + 1);
                }
                return Ok(Rotation::Exhausted);
            }
            self.state.current = None;
            return Ok(Rotation::Empty);
        }
        let pick = candidates[(random_u64()? % candidates.len() as u64) as usize];
        let next_change = now + self.jittered()?;
        let entry = &mut self.state.entries[pick];
        entry.used = true;
        let period_end = profile.period_start(entry.period + 1);
        self.state.current = Some(Current {
            period: entry.period,
            index: entry.index,
            serial: entry.serial.clone(),
            since: now,
            next_change: next_change.min(period_end.max(now + 1)),
        });
        Ok(Rotation::Changed)
    }

    /// When a top-up is due: when fewer than the margin's periods
    /// (counting the current one) remain covered. Tickets requested and
    /// not yet downloaded count as covering their periods: right after a
    /// request, the next top-up is not due.
    pub fn next_topup(&self, now: i64) -> i64 {
        let Some(profile) = &self.state.profile else {
            return now;
        };
        let Some(through) = self.covered_through() else {
            return now;
        };
        let margin = self.state.settings.topup_margin_periods.max(1) as u64;
        // Due in the first period q with through - q + 1 < margin.
        let due_period = (through + 2).saturating_sub(margin);
        profile.period_start(due_period)
    }

    /// The periods from `now`'s on that hold certificates.
    pub fn periods_covered(&self, now: i64) -> Vec<u64> {
        let Some(profile) = &self.state.profile else {
            return vec![];
        };
        let p = profile.period_at(now);
        let set: BTreeSet<u64> = self
            .state
            .entries
            .iter()
            .filter(|e| e.period >= p)
            .map(|e| e.period)
            .collect();
        set.into_iter().collect()
    }

    /// The pool's state (no secrets).
    pub fn status(&self, now: i64) -> PoolStatus {
        let profile = self.state.profile.as_ref();
        let period_now = profile.map(|p| p.period_at(now));
        let covered_periods = self.periods_covered(now);
        let unused_in_current_period = self
            .state
            .entries
            .iter()
            .filter(|e| Some(e.period) == period_now && !e.used)
            .count();
        let current = self
            .current_entry()
            .zip(self.state.current.as_ref())
            .map(|(e, c)| CurrentTicket {
                serial: c.serial.clone(),
                period: c.period,
                index: c.index,
                since: c.since,
                next_change: c.next_change,
                not_after: e.not_after,
            });
        let next_topup = self.next_topup(now);
        PoolStatus {
            pool: self.dir.clone(),
            pending_requests: self.state.ticket_requests.len(),
            tickets_awaited: self.tickets_awaited(),
            sector: profile.map(|p| p.sector.clone()),
            period_now,
            covered_periods,
            covered_through: self.covered_through(),
            certificates: self.state.entries.len(),
            unused_in_current_period,
            current,
            rotation_seconds: self.rotation_seconds(),
            next_topup,
            topup_due: next_topup <= now,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::X509_POOL_REFUSED;

    fn profile() -> PoolProfile {
        PoolProfile {
            kind: TicketKind::Scms,
            sector: "automotive".into(),
            policy_version: "1".into(),
            epoch: 0,
            period_seconds: 3600,
            certificates_per_period: 2,
            overlap_seconds: 0,
            max_periods_ahead: 3,
            max_periods_per_request: 3,
            permissions: vec![],
        }
    }

    fn secret() -> PoolSecret {
        PoolSecret::KeyFile(Zeroizing::new(vec![7u8; 32]))
    }

    #[test]
    fn a_new_pool_holds_tickets_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut pool = Pool::create(&dir.path().join("p"), &secret()).unwrap();
        pool.set_profile(profile(), b"pca", b"root").unwrap();
        pool.save(0).unwrap();
        let reopened = Pool::open(&dir.path().join("p"), &secret()).unwrap();
        assert_eq!(reopened.state.format, PoolFormat::Ieee1609);
        assert_eq!(reopened.status(0).sector.as_deref(), Some("automotive"));
    }

    #[test]
    fn one_pool_holds_one_kind_of_ticket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let mut pool = Pool::create(&path, &secret()).unwrap();
        let station = EtsiStation::generate("urn:trustca:automotive:Acme:R:1").unwrap();
        pool.set_etsi_station(station).unwrap();
        let refused = pool.set_profile(profile(), b"pca", b"root").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("holds etsi-ts-103-097 tickets")
        );
        let etsi = PoolProfile {
            kind: TicketKind::Etsi,
            ..profile()
        };
        pool.set_profile(etsi, b"aa", b"").unwrap();
        pool.save(0).unwrap();
        let reopened = Pool::open(&path, &secret()).unwrap();
        let kept = reopened.etsi_station().unwrap();
        assert_eq!(kept.its_id, "urn:trustca:automotive:Acme:R:1");
        assert_eq!(reopened.profile().unwrap().kind, TicketKind::Etsi);
        // The canonical key is sealed: not in the clear on disk.
        let spki = kept.canonical_public_spki().unwrap();
        let on_disk = std::fs::read(path.join(POOL_STATE)).unwrap();
        assert!(!on_disk.windows(20).any(|w| w == &spki[spki.len() - 20..]));

        let scms = Pool::create(&dir.path().join("s"), &secret());
        let mut scms = scms.unwrap();
        scms.set_profile(profile(), b"pca", b"root").unwrap();
        scms.add_ticket_request(TicketRequestRecord {
            first_period: 0,
            periods: 1,
            per_period: 1,
            caterpillar: String::new(),
            issuer: String::new(),
            sent: 0,
        });
        let station = EtsiStation::generate("urn:trustca:automotive:Acme:R:2").unwrap();
        let refused = scms.set_etsi_station(station).unwrap_err();
        assert!(refused.to_string().contains("holds ieee1609 tickets"));
    }

    #[test]
    fn a_pending_request_moves_the_next_top_up_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut pool = Pool::create(&dir.path().join("p"), &secret()).unwrap();
        pool.set_profile(profile(), b"pca", b"root").unwrap();
        let now = 10 * 3600 + 60;
        assert!(pool.next_topup(now) <= now, "an empty pool needs tickets");
        pool.add_ticket_request(TicketRequestRecord {
            first_period: 10,
            periods: 3,
            per_period: 2,
            caterpillar: String::new(),
            issuer: String::new(),
            sent: now,
        });
        let next = pool.next_topup(now);
        assert!(next > now, "due at {next}, before now {now}");
        assert!(!pool.status(now).topup_due);
    }

    #[test]
    fn a_pool_of_x509_pseudonyms_is_refused_and_left_as_it_is() {
        for (old, holds) in [
            // Written before tickets existed: no format recorded.
            (
                r#"{"profile":{"sector":"automotive","policy_version":"1","epoch":0,
                "period_seconds":3600,"certificates_per_period":2,"overlap_seconds":0,
                "max_periods_ahead":3,"max_periods_per_request":3,"permissions":["cam"]},
                "pseudonym_ca":"","root":"","entries":[],"current":null,
                "settings":{"rotation_seconds":null,"jitter_percent":20,
                "topup_margin_periods":2},"issued_through":null}"#,
                true,
            ),
            // Written with the format recorded.
            (
                r#"{"format":"x509","ticket_requests":[],"profile":null,"pseudonym_ca":"",
                "root":"","entries":[{"period":1,"index":0,"certificate":"00","key":"11",
                "serial":"ab","not_before":0,"not_after":10,"used":false}],"current":null,
                "settings":{"rotation_seconds":null,"jitter_percent":20,
                "topup_margin_periods":2},"issued_through":1}"#,
                true,
            ),
            // Made by an old `request` that got nothing: nothing to keep.
            (
                r#"{"format":"x509","profile":null,"pseudonym_ca":"","root":"","entries":[],
                "current":null,"settings":{"rotation_seconds":null,"jitter_percent":20,
                "topup_margin_periods":2},"issued_through":null}"#,
                false,
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p");
            let mut pool = Pool::create(&path, &secret()).unwrap();
            pool.state = serde_json::from_str(old).unwrap();
            pool.save_state().unwrap();
            let before = std::fs::read(path.join(POOL_STATE)).unwrap();
            match Pool::open(&path, &secret()) {
                Err(e) => {
                    assert!(holds);
                    let text = format!("{e:#}");
                    assert!(text.ends_with(X509_POOL_REFUSED), "{text}");
                    assert_eq!(text.lines().count(), 1);
                }
                Ok(p) => {
                    assert!(!holds);
                    assert_eq!(p.state.format, PoolFormat::Ieee1609);
                }
            }
            assert_eq!(std::fs::read(path.join(POOL_STATE)).unwrap(), before);
        }
    }
}
