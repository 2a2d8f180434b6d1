//! What a pool holds: the ticket profile, tickets with their keys, the
//! ticket in use, the rotation settings and the requests still awaited.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{PoolError, Result};
use crate::{DEFAULT_JITTER_PERCENT, DEFAULT_TOPUP_MARGIN};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PoolMeta {
    pub(crate) format: String,
    pub(crate) kdf: String,
    pub(crate) iterations: u32,
    pub(crate) salt: String,
    pub(crate) check: String,
}

/// Which certificate profile a ticket (and the pool holding it) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TicketKind {
    /// IEEE 1609.2 tickets with `linkageData` from the SCMS-style V2X
    /// registration authority (what pools held before the EU profile).
    #[default]
    #[serde(rename = "ieee1609")]
    Scms,
    /// ETSI TS 103 097 authorization tickets (`id` none) from an EU C-ITS
    /// authorization authority (TS 102 941 enrolment and authorization).
    #[serde(rename = "etsi-ts-103-097")]
    Etsi,
}

impl TicketKind {
    /// The name `status` and `--json` show.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scms => "ieee1609",
            Self::Etsi => "etsi-ts-103-097",
        }
    }
}

/// The sector's ticket profile as the pool keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolProfile {
    /// Which tickets the pool holds (absent in pools written before the
    /// EU profile: SCMS).
    #[serde(default)]
    pub kind: TicketKind,
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
    /// The profile's periods (`trustca_v2x::PeriodClock`, as the
    /// authorities count them).
    pub fn clock(&self) -> trustca_v2x::PeriodClock {
        trustca_v2x::PeriodClock::new(self.epoch, self.period_seconds)
    }

    /// The period containing unix time `t`. Before the epoch no ticket is
    /// valid yet, and the vehicle plans from period 0, the first.
    pub fn period_at(&self, t: i64) -> u64 {
        self.clock().period_at(t).unwrap_or(0)
    }

    /// Unix time at which `period` starts (saturating).
    pub fn period_start(&self, period: u64) -> i64 {
        self.clock().start_of(period)
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
    /// Which profile the ticket is (absent before the EU profile: SCMS).
    #[serde(default)]
    pub kind: TicketKind,
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
        hex::decode(&self.certificate).map_err(|_| PoolError::corrupt_state("a ticket"))
    }

    /// The private key as PKCS#8 DER (secret).
    pub fn private_key_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>> {
        scalar_pkcs8(&self.key)
    }

    pub(crate) fn valid_at(&self, t: i64) -> bool {
        self.not_before <= t && t <= self.not_after
    }
}

/// A P-256 private key scalar kept as hex in the sealed state, as PKCS#8
/// DER (secret).
pub(crate) fn scalar_pkcs8(hex_scalar: &str) -> Result<Zeroizing<Vec<u8>>> {
    let raw =
        Zeroizing::new(hex::decode(hex_scalar).map_err(|_| PoolError::corrupt_state("a key"))?);
    let scalar: Zeroizing<[u8; 32]> = Zeroizing::new(
        raw.as_slice()
            .try_into()
            .map_err(|_| PoolError::corrupt_state("a key"))?,
    );
    let key = trustca_pseudonym::P256PrivateKey::from_bytes(&scalar)
        .map_err(|_| PoolError::corrupt_state("a key"))?;
    Ok(key.to_pkcs8_der())
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
pub(crate) enum PoolFormat {
    /// X.509 pseudonym certificates, no longer issued: such a pool is not
    /// opened (and pools written before tickets existed record no format).
    #[default]
    X509,
    /// IEEE 1609.2 authorization tickets (the `V2xRegistration` service).
    Ieee1609,
}

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
pub(crate) struct PoolState {
    /// What the pool holds (absent in pools written before tickets: X.509).
    #[serde(default)]
    pub(crate) format: PoolFormat,
    /// Ticket requests still waiting for responses.
    #[serde(default)]
    pub(crate) ticket_requests: Vec<TicketRequestRecord>,
    pub(crate) profile: Option<PoolProfile>,
    /// The pseudonym CA, COER hex.
    pub(crate) pseudonym_ca: String,
    /// The trustca root, DER hex.
    pub(crate) root: String,
    pub(crate) entries: Vec<PoolEntry>,
    pub(crate) current: Option<Current>,
    pub(crate) settings: Settings,
    /// The last period the CA reported as issued to this vehicle.
    pub(crate) issued_through: Option<u64>,
    /// The EU C-ITS station's keys and credentials (ETSI pools only).
    #[serde(default)]
    pub(crate) etsi: Option<crate::station::EtsiStation>,
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
