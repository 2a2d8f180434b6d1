//! The vehicle's pseudonym pool: its IEEE 1609.2 authorization tickets and
//! the private keys it derived for them, encrypted at rest, and the policy
//! for using them.
//!
//! * **At rest.** `DIR/pool.toml` holds the key derivation parameters and a
//!   check value; `DIR/pool.bin` holds the whole state (tickets, keys,
//!   rotation state) sealed with AES-256-GCM. The key comes from a
//!   passphrase (PBKDF2-HMAC-SHA256) or a key file of at least 32 random
//!   bytes (HKDF-SHA256). Tickets are encrypted too: which tickets belong
//!   to one vehicle is exactly what must not leak from a stolen disk.
//!   Every save writes a temporary file, syncs it and renames it over the
//!   old one, so a crash leaves the previous or the new state.
//! * **Rotation.** The pool uses one certificate at a time and changes it
//!   after an interval with ±20 % jitter (default: the period length divided
//!   by the certificates per period), and at once when a period begins. It
//!   never goes back to a certificate already used in the same period:
//!   when all are used, it keeps the current one until the period ends.
//! * **Top-up.** The pool reports when fewer than `topup_margin_periods`
//!   periods (counting the current one) remain covered; `request` fills it.
//! * **Expiry.** Certificates whose validity has ended are dropped on every
//!   save.
//!
//! * **Tickets.** The pool holds IEEE 1609.2 authorization tickets (COER)
//!   from the V2X registration authority, and keeps, sealed, the
//!   caterpillar key of every request whose tickets have not all arrived
//!   (the registration authority delivers them after its next batch); it
//!   drops that key once they have or once the request's last period is
//!   over. For an entry, `serial` is the ticket's HashedId8 and `index` its
//!   `j`.
//! * **Old pools.** Pools written before trustca retired its X.509
//!   pseudonym certificates record the format `x509` (or none, before
//!   tickets existed). Opening one that holds anything fails with
//!   [`X509_POOL_REFUSED`] and changes nothing; an empty one becomes a
//!   ticket pool.
//!
//! One process should use a pool directory at a time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::{Zeroize, Zeroizing};

/// The key derivation and check file.
pub const POOL_META: &str = "pool.toml";
/// The encrypted state.
pub const POOL_STATE: &str = "pool.bin";
const FORMAT: &str = "trustca-pool-v1";
const STATE_MAGIC: &[u8; 4] = b"TCP1";
const STATE_AAD: &[u8] = b"trustca-pool-state-v1";
const CHECK_AAD: &[u8] = b"trustca-pool-check-v1";
const CHECK_PLAINTEXT: &[u8] = b"trustca pool check v1";
const PBKDF2_ITERATIONS: u32 = 200_000;
const MIN_KEY_FILE: usize = 32;
const MIN_PASSPHRASE: usize = 8;
/// Default jitter of the rotation interval, percent either way.
pub const DEFAULT_JITTER_PERCENT: u32 = 20;
/// Default number of covered periods below which a top-up is due.
pub const DEFAULT_TOPUP_MARGIN: u32 = 2;
/// Why a pool holding X.509 pseudonym certificates is not opened.
pub const X509_POOL_REFUSED: &str = "this pool holds X.509 pseudonyms, which trustca no longer issues; request IEEE 1609.2 tickets with `trustca pseudonym request` (into a new --pool directory)";

/// What protects a pool.
pub enum PoolSecret {
    /// A passphrase (at least 8 bytes).
    Passphrase(Zeroizing<Vec<u8>>),
    /// The contents of a key file (at least 32 bytes of randomness).
    KeyFile(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for PoolSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("PoolSecret::Passphrase(<redacted>)"),
            Self::KeyFile(_) => f.write_str("PoolSecret::KeyFile(<redacted>)"),
        }
    }
}

impl PoolSecret {
    /// Reads a key file.
    pub fn key_file(path: &Path) -> Result<Self> {
        let bytes = Zeroizing::new(
            std::fs::read(path)
                .with_context(|| format!("cannot read pool key file {}", path.display()))?,
        );
        if bytes.len() < MIN_KEY_FILE {
            bail!(
                "pool key file {} must hold at least {MIN_KEY_FILE} random bytes",
                path.display()
            );
        }
        Ok(Self::KeyFile(bytes))
    }

    /// A passphrase, trailing newlines removed.
    pub fn passphrase(mut bytes: Vec<u8>) -> Result<Self> {
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_PASSPHRASE {
            bail!("the pool passphrase must be at least {MIN_PASSPHRASE} bytes");
        }
        Ok(Self::Passphrase(bytes))
    }

    fn kdf_name(&self) -> &'static str {
        match self {
            Self::Passphrase(_) => "pbkdf2-hmac-sha256",
            Self::KeyFile(_) => "hkdf-sha256-key-file",
        }
    }

    fn derive(&self, kdf: &str, iterations: u32, salt: &[u8]) -> Result<LessSafeKey> {
        if kdf != self.kdf_name() {
            bail!(
                "this pool is protected by {} ({}); give the matching secret",
                kdf,
                if kdf == "pbkdf2-hmac-sha256" {
                    "a passphrase: $TRUSTCA_POOL_PASSPHRASE"
                } else {
                    "a key file: --pool-key"
                }
            );
        }
        let mut key = Zeroizing::new([0u8; 32]);
        match self {
            Self::Passphrase(p) => {
                let iterations =
                    std::num::NonZeroU32::new(iterations).context("pool.toml: zero iterations")?;
                ring::pbkdf2::derive(
                    ring::pbkdf2::PBKDF2_HMAC_SHA256,
                    iterations,
                    salt,
                    p,
                    key.as_mut(),
                );
            }
            Self::KeyFile(k) => {
                let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt).extract(k);
                let info = [b"trustca-pool-key-file-v1".as_slice()];
                let okm = prk
                    .expand(&info, ring::hkdf::HKDF_SHA256)
                    .map_err(|_| anyhow::anyhow!("HKDF failed"))?;
                okm.fill(key.as_mut())
                    .map_err(|_| anyhow::anyhow!("HKDF failed"))?;
            }
        }
        let unbound = UnboundKey::new(&AES_256_GCM, key.as_ref())
            .map_err(|_| anyhow::anyhow!("bad pool key"))?;
        Ok(LessSafeKey::new(unbound))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PoolMeta {
    format: String,
    kdf: String,
    iterations: u32,
    salt: String,
    check: String,
}

/// The sector's ticket profile as the pool keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolProfile {
    /// Sector.
    pub sector: String,
    /// Version of the ticket profile.
    pub policy_version: String,
    /// Unix time at which period 0 starts.
    pub epoch: i64,
    /// Period length.
    pub period_seconds: u64,
    /// Tickets per period.
    pub certificates_per_period: u32,
    /// Validity overlap at period edges.
    pub overlap_seconds: u64,
    /// How many periods may be held ahead.
    pub max_periods_ahead: u32,
    /// Periods per request.
    pub max_periods_per_request: u32,
    /// Permissions in the tickets (PSIDs).
    pub permissions: Vec<String>,
}

impl PoolProfile {
    /// The period containing unix time `t` (0 before the epoch).
    pub fn period_at(&self, t: i64) -> u64 {
        if t < self.epoch {
            0
        } else {
            (t - self.epoch) as u64 / self.period_seconds
        }
    }

    /// Unix time at which `period` starts (saturating).
    pub fn period_start(&self, period: u64) -> i64 {
        let offset = period.saturating_mul(self.period_seconds);
        self.epoch
            .saturating_add(i64::try_from(offset).unwrap_or(i64::MAX))
    }
}

/// One ticket of the pool with its private key.
#[derive(Clone, Serialize, Deserialize)]
pub struct PoolEntry {
    /// Period.
    pub period: u64,
    /// Index within the period.
    pub index: u32,
    /// The ticket, COER, hex.
    pub certificate: String,
    /// The private key scalar, hex (secret).
    pub key: String,
    /// The ticket's HashedId8, hex.
    pub serial: String,
    /// Validity, unix seconds.
    pub not_before: i64,
    /// Validity, unix seconds.
    pub not_after: i64,
    /// Whether it has been the current certificate.
    pub used: bool,
}

impl Drop for PoolEntry {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl std::fmt::Debug for PoolEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolEntry")
            .field("period", &self.period)
            .field("index", &self.index)
            .field("serial", &self.serial)
            .field("key", &"<redacted>")
            .field("used", &self.used)
            .finish()
    }
}

impl PoolEntry {
    /// The ticket, COER.
    pub fn certificate_der(&self) -> Result<Vec<u8>> {
        hex::decode(&self.certificate).context("pool: corrupt ticket")
    }

    /// The private key as PKCS#8 DER (secret).
    pub fn private_key_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        let raw = Zeroizing::new(hex::decode(&self.key).context("pool: corrupt key")?);
        let scalar: Zeroizing<[u8; 32]> = Zeroizing::new(
            raw.as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("pool: corrupt key"))?,
        );
        let key = trustca_pseudonym::P256PrivateKey::from_bytes(&scalar)
            .map_err(|e| anyhow::anyhow!("pool: corrupt key: {e}"))?;
        Ok(key.to_pkcs8_der())
    }

    fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }
}

/// The certificate in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    /// Its period.
    pub period: u64,
    /// Its index.
    pub index: u32,
    /// Its serial, hex.
    pub serial: String,
    /// When it became current, unix seconds.
    pub since: i64,
    /// When the next change is due, unix seconds.
    pub next_change: i64,
}

/// How the pool rotates and tops up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Rotation interval; `None`: period length / certificates per period.
    pub rotation_seconds: Option<u64>,
    /// Jitter, percent either way.
    pub jitter_percent: u32,
    /// A top-up is due when fewer periods than this remain covered.
    pub topup_margin_periods: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            rotation_seconds: None,
            jitter_percent: DEFAULT_JITTER_PERCENT,
            topup_margin_periods: DEFAULT_TOPUP_MARGIN,
        }
    }
}

/// What a pool's sealed state says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PoolFormat {
    /// X.509 pseudonym certificates, no longer issued: such a pool is not
    /// opened (and pools written before tickets existed record no format).
    #[default]
    X509,
    /// IEEE 1609.2 authorization tickets (the `V2xRegistration` service).
    Ieee1609,
}

/// The format name `status` reports.
pub const POOL_FORMAT: &str = "ieee1609";

/// A ticket request whose tickets have not all arrived: what is needed to
/// open the registration authority's responses to it.
#[derive(Clone, Serialize, Deserialize)]
pub struct TicketRequestRecord {
    /// First period requested.
    pub first_period: u64,
    /// Number of periods.
    pub periods: u32,
    /// Tickets per period.
    pub per_period: u32,
    /// The caterpillar key (private key and expansion key), hex (secret).
    pub caterpillar: String,
    /// The pseudonym CA certificate the tickets must verify with, COER hex.
    pub issuer: String,
    /// When it was sent, unix seconds.
    pub sent: i64,
}

impl Drop for TicketRequestRecord {
    fn drop(&mut self) {
        self.caterpillar.zeroize();
    }
}

impl std::fmt::Debug for TicketRequestRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketRequestRecord")
            .field("first_period", &self.first_period)
            .field("periods", &self.periods)
            .field("per_period", &self.per_period)
            .field("caterpillar", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl TicketRequestRecord {
    /// The periods it covers.
    pub fn period_range(&self) -> std::ops::Range<u64> {
        self.first_period..self.first_period.saturating_add(u64::from(self.periods))
    }

    /// How many tickets it asked for.
    pub fn tickets(&self) -> usize {
        self.periods as usize * self.per_period as usize
    }
}

#[derive(Serialize, Deserialize, Default)]
struct PoolState {
    /// What the pool holds (absent in pools written before tickets: X.509).
    #[serde(default)]
    format: PoolFormat,
    /// Ticket requests still waiting for responses.
    #[serde(default)]
    ticket_requests: Vec<TicketRequestRecord>,
    profile: Option<PoolProfile>,
    /// The pseudonym CA, COER hex.
    pseudonym_ca: String,
    /// The trustca root, DER hex.
    root: String,
    entries: Vec<PoolEntry>,
    current: Option<Current>,
    settings: Settings,
    /// The last period the CA reported as issued to this vehicle.
    issued_through: Option<u64>,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The current certificate stays.
    Kept,
    /// A new certificate became current.
    Changed,
    /// Every certificate of the period was used; the current one stays.
    Exhausted,
    /// No certificate is valid now: request more.
    Empty,
}

impl Rotation {
    /// Lower-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Kept => "kept",
            Self::Changed => "changed",
            Self::Exhausted => "exhausted",
            Self::Empty => "empty",
        }
    }
}

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

fn seal(key: &LessSafeKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    let mut buf = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| anyhow::anyhow!("pool encryption failed"))?;
    buf.splice(0..0, nonce);
    Ok(buf)
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN + 16 {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&sealed[..NONCE_LEN]).ok()?;
    let mut buf = Zeroizing::new(sealed[NONCE_LEN..].to_vec());
    let n = key
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

/// Writes `bytes` to `path` atomically (temporary file, sync, rename),
/// readable by the owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn random_u64() -> Result<u64> {
    let mut b = [0u8; 8];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(u64::from_be_bytes(b))
}

impl Pool {
    /// Whether `dir` holds a pool.
    pub fn exists(dir: &Path) -> bool {
        dir.join(POOL_META).exists()
    }

    /// Creates an empty pool in `dir` (which must not hold one).
    pub fn create(dir: &Path, secret: &PoolSecret) -> Result<Self> {
        if Self::exists(dir) {
            bail!("{} already holds a pseudonym pool", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
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
                .context("encoding pool.toml")?
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
            .with_context(|| format!("no pseudonym pool in {}", dir.display()))?;
        let meta: PoolMeta = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", meta_path.display(), e.message()))?;
        if meta.format != FORMAT {
            bail!(
                "{}: unsupported format {}",
                meta_path.display(),
                meta.format
            );
        }
        let salt = hex::decode(&meta.salt).context("pool.toml: bad salt")?;
        let key = secret.derive(&meta.kdf, meta.iterations, &salt)?;
        let check = hex::decode(&meta.check).context("pool.toml: bad check value")?;
        match open(&key, CHECK_AAD, &check) {
            Some(p) if p.as_slice() == CHECK_PLAINTEXT => {}
            _ => bail!("wrong pool key or passphrase for {}", dir.display()),
        }
        let state_path = dir.join(POOL_STATE);
        let sealed = std::fs::read(&state_path)
            .with_context(|| format!("cannot read {}", state_path.display()))?;
        if sealed.len() < 4 || &sealed[..4] != STATE_MAGIC {
            bail!("{} is not a trustca pool state", state_path.display());
        }
        let plain = open(&key, STATE_AAD, &sealed[4..]).ok_or_else(|| {
            anyhow::anyhow!("{} does not decrypt (corrupt)", state_path.display())
        })?;
        let mut state: PoolState = serde_json::from_slice(&plain)
            .with_context(|| format!("{} is corrupt", state_path.display()))?;
        if state.format == PoolFormat::X509 {
            if state.profile.is_some() || !state.entries.is_empty() {
                bail!("{}: {X509_POOL_REFUSED}", dir.display());
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
        let plain = Zeroizing::new(serde_json::to_vec(&self.state).context("encoding the pool")?);
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
            bail!(
                "this pool holds pseudonyms of sector {}, not {}",
                p.sector,
                profile.sector
            );
        }
        self.state.profile = Some(profile);
        if !ca_der.is_empty() {
            self.state.pseudonym_ca = hex::encode(ca_der);
        }
        if !root_der.is_empty() {
            self.state.root = hex::encode(root_der);
        }
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

    /// The pool's state as JSON (no secrets).
    pub fn status(&self, now: i64) -> serde_json::Value {
        let profile = self.state.profile.as_ref();
        let period_now = profile.map(|p| p.period_at(now));
        let covered = self.periods_covered(now);
        let unused_now = self
            .state
            .entries
            .iter()
            .filter(|e| Some(e.period) == period_now && !e.used)
            .count();
        let current = self
            .current_entry()
            .zip(self.state.current.as_ref())
            .map(|(e, c)| {
                json!({
                    "serial": c.serial,
                    "period": c.period,
                    "index": c.index,
                    "since": crate::show::unix(c.since),
                    "next_change": crate::show::unix(c.next_change),
                    "not_after": crate::show::unix(e.not_after),
                })
            });
        let next_topup = self.next_topup(now);
        json!({
            "pool": self.dir,
            "format": POOL_FORMAT,
            "pending_requests": self.state.ticket_requests.len(),
            "tickets_awaited": self.tickets_awaited(),
            "sector": profile.map(|p| p.sector.clone()),
            "period_now": period_now,
            "periods_covered": covered.len(),
            "covered_periods": covered,
            "covered_through": self.covered_through(),
            "certificates": self.state.entries.len(),
            "unused_in_current_period": unused_now,
            "current": current,
            "rotation_seconds": self.rotation_seconds(),
            "next_topup": crate::show::unix(next_topup),
            "next_topup_unix": next_topup,
            "topup_due": next_topup <= now,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn profile() -> PoolProfile {
        PoolProfile {
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
        assert_eq!(reopened.status(0)["format"], "ieee1609");
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
        assert_eq!(pool.status(now)["topup_due"], false);
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
