//! Linkage values: a per-vehicle one-way hash chain of seeds, one seed per
//! period, and per certificate a short linkage value derived from the
//! period's seed. Publishing one seed (in a [`RevocationEntry`]) lets anyone
//! recognise the vehicle's certificates from that period on, and never
//! before it.
//!
//! # Construction
//!
//! Periods are **absolute** indices (for example weeks since an epoch the
//! pseudonym CA fixes); the same index is used by every vehicle. A vehicle's
//! chain starts at its enrollment period `e` with a random 32-byte seed
//! `s_e`, and for every later period
//!
//! ```text
//! s_i = SHA-256("trustca-linkage-chain-v1" || s_{i-1})          for i > e
//! lv(i, j) = HMAC-SHA256(key = s_i,
//!                        msg = "trustca-linkage-value-v1" || BE64(i) || BE32(j))[0..16]
//! ```
//!
//! where `j` is the certificate's index within period `i`
//! (`0 <= j < certificates_per_period`). Domain strings are ASCII without a
//! terminator. Because the absolute period is hashed into every linkage
//! value, two vehicles' chains never produce values for the same period from
//! the same seed position, and a seed revealed for period `p` cannot be
//! replayed as a seed "for" another period.
//!
//! # Matching cost
//!
//! [`RevocationEntry::matches`] walks the chain from the entry's period to the
//! certificate's period (at most [`MAX_LOOKAHEAD_PERIODS`] SHA-256 calls) and
//! computes up to `certificates_per_period` HMACs: cheap for one entry,
//! linear in the list for many. To check many certificates against a list of
//! many entries build a [`RevocationIndex`] for the period (one walk plus
//! `certificates_per_period` HMACs per entry, then an O(1) hash lookup per
//! certificate), or keep a [`RevocationMatcher`], which builds the index
//! lazily for the period asked for and, when the period moves forward, steps
//! each entry's cached chain state instead of re-walking from the start.

use std::collections::HashMap;
use std::fmt;

use ring::digest::{Context, SHA256};
use ring::hmac;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{PseudonymError, Result};
use crate::keys::{random_array, to_hex};

/// Domain string hashed before the previous seed in each chain step.
pub const LINKAGE_CHAIN_DOMAIN: &[u8] = b"trustca-linkage-chain-v1";
/// Domain string at the start of the HMAC message for a linkage value.
pub const LINKAGE_VALUE_DOMAIN: &[u8] = b"trustca-linkage-value-v1";
/// Length of a linkage seed.
pub const LINKAGE_SEED_LEN: usize = 32;
/// Length of a linkage value (the truncated HMAC).
pub const LINKAGE_VALUE_LEN: usize = 16;
/// Length of [`LinkageChain::to_bytes`]: `BE64(period) || seed`.
pub const LINKAGE_CHAIN_LEN: usize = 8 + LINKAGE_SEED_LEN;
/// Most hash steps any chain walk may take (about a second of SHA-256);
/// asking for a period further ahead fails with
/// [`PseudonymError::ChainTooLong`].
pub const MAX_CHAIN_STEPS: u64 = 1 << 20;
/// How many periods past a [`RevocationEntry`]'s own period the matchers
/// follow the chain. A PRL issuer should re-base entries
/// ([`RevocationEntry::advance_to`]) so that entries stay within this window
/// for as long as the revoked vehicle could hold valid certificates.
pub const MAX_LOOKAHEAD_PERIODS: u64 = 160;
/// Upper bound on `certificates_per_period` accepted by [`RevocationIndex`]
/// and [`RevocationMatcher`] (memory is entries × certificates_per_period).
pub const MAX_CERTIFICATES_PER_PERIOD: u32 = 4096;

/// A secret 32-byte linkage seed (one link of a vehicle's chain).
///
/// Wiped on drop; `Debug` prints `<redacted>`.
#[derive(Clone)]
pub struct LinkageSeed([u8; LINKAGE_SEED_LEN]);

impl LinkageSeed {
    /// A fresh random seed from the system random number generator.
    pub fn generate() -> Result<Self> {
        Ok(Self(random_array()?))
    }

    /// Wraps existing seed bytes.
    pub fn from_bytes(bytes: [u8; LINKAGE_SEED_LEN]) -> Self {
        Self(bytes)
    }

    /// The seed bytes.
    pub fn as_bytes(&self) -> &[u8; LINKAGE_SEED_LEN] {
        &self.0
    }

    /// The next seed of the chain:
    /// `SHA-256("trustca-linkage-chain-v1" || self)`.
    pub fn next(&self) -> Self {
        let mut ctx = Context::new(&SHA256);
        ctx.update(LINKAGE_CHAIN_DOMAIN);
        ctx.update(&self.0);
        let digest = ctx.finish();
        let mut out = [0u8; LINKAGE_SEED_LEN];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// The linkage value of certificate `j` in `period`, treating `self` as
    /// the seed of that period.
    pub fn linkage_value(&self, period: u64, j: u32) -> LinkageValue {
        linkage_value_with_key(&hmac::Key::new(hmac::HMAC_SHA256, &self.0), period, j)
    }

    /// Steps this seed forward by `steps` links.
    fn advance(&mut self, steps: u64) {
        for _ in 0..steps {
            *self = self.next();
        }
    }
}

impl Drop for LinkageSeed {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for LinkageSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkageSeed(<redacted>)")
    }
}

fn linkage_value_with_key(key: &hmac::Key, period: u64, j: u32) -> LinkageValue {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(LINKAGE_VALUE_DOMAIN);
    ctx.update(&period.to_be_bytes());
    ctx.update(&j.to_be_bytes());
    let tag = ctx.sign();
    let mut out = [0u8; LINKAGE_VALUE_LEN];
    out.copy_from_slice(&tag.as_ref()[..LINKAGE_VALUE_LEN]);
    LinkageValue(out)
}

/// The 16-byte linkage value carried in a pseudonym certificate. Public.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkageValue(pub [u8; LINKAGE_VALUE_LEN]);

impl LinkageValue {
    /// Parses exactly 16 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; LINKAGE_VALUE_LEN] =
            bytes
                .try_into()
                .map_err(|_| PseudonymError::InvalidLength {
                    what: "linkage value",
                    expected: LINKAGE_VALUE_LEN,
                    actual: bytes.len(),
                })?;
        Ok(Self(arr))
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8; LINKAGE_VALUE_LEN] {
        &self.0
    }
}

impl fmt::Debug for LinkageValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LinkageValue")
            .field(&to_hex(&self.0))
            .finish()
    }
}

/// The seed of `period`, given the seed `start_seed` of `start_period`.
///
/// Fails for `period < start_period` (the chain is one-way) and for walks
/// longer than [`MAX_CHAIN_STEPS`].
pub fn derive_seed(
    start_period: u64,
    start_seed: &LinkageSeed,
    period: u64,
) -> Result<LinkageSeed> {
    let steps = chain_steps(start_period, period, MAX_CHAIN_STEPS)?;
    let mut seed = start_seed.clone();
    seed.advance(steps);
    Ok(seed)
}

/// The linkage value of certificate `j` in `period`, from that period's seed.
pub fn linkage_value(period_seed: &LinkageSeed, period: u64, j: u32) -> LinkageValue {
    period_seed.linkage_value(period, j)
}

fn chain_steps(start: u64, to: u64, max: u64) -> Result<u64> {
    if to < start {
        return Err(PseudonymError::PeriodBeforeChainStart {
            requested: to,
            start,
        });
    }
    let steps = to - start;
    if steps > max {
        return Err(PseudonymError::ChainTooLong {
            from: start,
            to,
            max,
        });
    }
    Ok(steps)
}

/// A vehicle's linkage chain state: the seed of one (absolute) period.
///
/// Created at enrollment with [`LinkageChain::generate`]; whoever issues
/// certificates keeps it (see the crate docs on escrow) and may move it
/// forward with [`LinkageChain::advance_to`] to forget older seeds. Secret:
/// `Debug` shows only the period.
#[derive(Clone)]
pub struct LinkageChain {
    period: u64,
    seed: LinkageSeed,
}

impl LinkageChain {
    /// A new chain starting at `enrollment_period` with a random seed.
    pub fn generate(enrollment_period: u64) -> Result<Self> {
        Ok(Self::new(enrollment_period, LinkageSeed::generate()?))
    }

    /// A chain whose seed for `period` is `seed`.
    pub fn new(period: u64, seed: LinkageSeed) -> Self {
        Self { period, seed }
    }

    /// The period of the seed this state holds (earliest derivable period).
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The seed of [`LinkageChain::period`].
    pub fn seed(&self) -> &LinkageSeed {
        &self.seed
    }

    /// The seed of a period at or after [`LinkageChain::period`].
    pub fn seed_for_period(&self, period: u64) -> Result<LinkageSeed> {
        derive_seed(self.period, &self.seed, period)
    }

    /// Moves the state forward to `period`, forgetting the earlier seeds.
    pub fn advance_to(&mut self, period: u64) -> Result<()> {
        let steps = chain_steps(self.period, period, MAX_CHAIN_STEPS)?;
        self.seed.advance(steps);
        self.period = period;
        Ok(())
    }

    /// The linkage value of certificate `j` in `period`.
    pub fn linkage_value(&self, period: u64, j: u32) -> Result<LinkageValue> {
        Ok(self.seed_for_period(period)?.linkage_value(period, j))
    }

    /// The linkage values of certificates `0..count` in `period` (one chain
    /// walk, one HMAC key schedule).
    pub fn linkage_values(&self, period: u64, count: u32) -> Result<Vec<LinkageValue>> {
        let seed = self.seed_for_period(period)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, seed.as_bytes());
        Ok((0..count)
            .map(|j| linkage_value_with_key(&key, period, j))
            .collect())
    }

    /// The entry to publish in a PRL to revoke this vehicle from
    /// `from_period` on: the seed of `from_period`.
    pub fn revocation_entry(&self, from_period: u64) -> Result<RevocationEntry> {
        let seed = self.seed_for_period(from_period)?;
        Ok(RevocationEntry {
            period: from_period,
            seed: *seed.as_bytes(),
        })
    }

    /// `BE64(period) || seed`, 40 bytes: the plaintext to escrow (secret;
    /// wiped when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; LINKAGE_CHAIN_LEN]> {
        let mut out = Zeroizing::new([0u8; LINKAGE_CHAIN_LEN]);
        out[..8].copy_from_slice(&self.period.to_be_bytes());
        out[8..].copy_from_slice(self.seed.as_bytes());
        out
    }

    /// Parses [`LinkageChain::to_bytes`] (exactly 40 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != LINKAGE_CHAIN_LEN {
            return Err(PseudonymError::InvalidLength {
                what: "linkage chain state",
                expected: LINKAGE_CHAIN_LEN,
                actual: bytes.len(),
            });
        }
        let mut period = [0u8; 8];
        period.copy_from_slice(&bytes[..8]);
        let mut seed = [0u8; LINKAGE_SEED_LEN];
        seed.copy_from_slice(&bytes[8..]);
        Ok(Self::new(
            u64::from_be_bytes(period),
            LinkageSeed::from_bytes(seed),
        ))
    }
}

impl fmt::Debug for LinkageChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkageChain")
            .field("period", &self.period)
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// One entry of a pseudonym revocation list: the seed of a revoked vehicle's
/// chain at `period`. It matches the vehicle's linkage values for `period`
/// and the following [`MAX_LOOKAHEAD_PERIODS`] periods, and none before.
///
/// The seed is public once the entry is published, but `Debug` still
/// redacts it so that entries prepared for a PRL do not leak into logs early.
/// Ordering is by `(period, seed)`, the order of the PRL encoding.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevocationEntry {
    /// The first period whose certificates this entry revokes.
    pub period: u64,
    /// The chain seed of `period`.
    pub seed: [u8; LINKAGE_SEED_LEN],
}

impl RevocationEntry {
    /// The seed of `period`, if `period` lies in
    /// `self.period ..= self.period + MAX_LOOKAHEAD_PERIODS`.
    pub fn seed_for_period(&self, period: u64) -> Option<LinkageSeed> {
        let steps = chain_steps(self.period, period, MAX_LOOKAHEAD_PERIODS).ok()?;
        let mut seed = LinkageSeed::from_bytes(self.seed);
        seed.advance(steps);
        Some(seed)
    }

    /// Whether `linkage_value` is the vehicle's value for some
    /// `j < certificates_per_period` in `period`. Always `false` for periods
    /// before `self.period` or more than [`MAX_LOOKAHEAD_PERIODS`] after it.
    ///
    /// Cost: up to `MAX_LOOKAHEAD_PERIODS` SHA-256 calls plus
    /// `certificates_per_period` HMAC-SHA256 calls. For many entries or many
    /// certificates use [`RevocationIndex`] or [`RevocationMatcher`].
    pub fn matches(
        &self,
        period: u64,
        certificates_per_period: u32,
        linkage_value: &LinkageValue,
    ) -> bool {
        let Some(seed) = self.seed_for_period(period) else {
            return false;
        };
        let key = hmac::Key::new(hmac::HMAC_SHA256, seed.as_bytes());
        (0..certificates_per_period)
            .any(|j| linkage_value_with_key(&key, period, j) == *linkage_value)
    }

    /// The equivalent entry for a later period (the chain walked forward),
    /// so a PRL issuer can keep old entries inside the look-ahead window.
    /// Fails for earlier periods and walks longer than [`MAX_CHAIN_STEPS`].
    pub fn advance_to(&self, period: u64) -> Result<RevocationEntry> {
        let seed = derive_seed(self.period, &LinkageSeed::from_bytes(self.seed), period)?;
        Ok(RevocationEntry {
            period,
            seed: *seed.as_bytes(),
        })
    }
}

impl fmt::Debug for RevocationEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationEntry")
            .field("period", &self.period)
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// `matches(entry, period, certificates_per_period, lv)`: free-function form
/// of [`RevocationEntry::matches`].
pub fn matches(
    entry: &RevocationEntry,
    period: u64,
    certificates_per_period: u32,
    linkage_value: &LinkageValue,
) -> bool {
    entry.matches(period, certificates_per_period, linkage_value)
}

/// Which entry (by index in the list given to the index or matcher) and
/// which certificate index `j` a linkage value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevocationMatch {
    /// Index of the matching entry.
    pub entry_index: usize,
    /// The certificate index within the period.
    pub j: u32,
}

fn check_certificates_per_period(certificates_per_period: u32) -> Result<()> {
    if certificates_per_period > MAX_CERTIFICATES_PER_PERIOD {
        return Err(PseudonymError::TooManyCertificatesPerPeriod {
            requested: certificates_per_period,
            max: MAX_CERTIFICATES_PER_PERIOD,
        });
    }
    Ok(())
}

/// All revoked linkage values of one period, for O(1) lookups.
///
/// Building costs, per entry whose window covers the period, one chain walk
/// (at most [`MAX_LOOKAHEAD_PERIODS`] SHA-256) and `certificates_per_period`
/// HMACs, and holds `entries × certificates_per_period` values (about 50
/// bytes each in the map). Immutable once built, so it can be shared between
/// threads for the period it covers.
#[derive(Clone)]
pub struct RevocationIndex {
    period: u64,
    certificates_per_period: u32,
    values: HashMap<LinkageValue, RevocationMatch>,
}

impl RevocationIndex {
    /// Builds the index of `period` for `entries`.
    pub fn build(
        entries: &[RevocationEntry],
        period: u64,
        certificates_per_period: u32,
    ) -> Result<Self> {
        check_certificates_per_period(certificates_per_period)?;
        let seeds = entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.seed_for_period(period).map(|s| (i, s)));
        Ok(Self::from_seeds(seeds, period, certificates_per_period))
    }

    fn from_seeds(
        seeds: impl Iterator<Item = (usize, LinkageSeed)>,
        period: u64,
        certificates_per_period: u32,
    ) -> Self {
        let mut values = HashMap::new();
        for (entry_index, seed) in seeds {
            let key = hmac::Key::new(hmac::HMAC_SHA256, seed.as_bytes());
            for j in 0..certificates_per_period {
                values
                    .entry(linkage_value_with_key(&key, period, j))
                    .or_insert(RevocationMatch { entry_index, j });
            }
        }
        Self {
            period,
            certificates_per_period,
            values,
        }
    }

    /// The period this index covers.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The `certificates_per_period` it was built with.
    pub fn certificates_per_period(&self) -> u32 {
        self.certificates_per_period
    }

    /// How many linkage values it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it holds no values (no entry covers the period).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The entry and `j` that `linkage_value` belongs to, if revoked.
    pub fn lookup(&self, linkage_value: &LinkageValue) -> Option<RevocationMatch> {
        self.values.get(linkage_value).copied()
    }
}

impl fmt::Debug for RevocationIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationIndex")
            .field("period", &self.period)
            .field("certificates_per_period", &self.certificates_per_period)
            .field("values", &self.values.len())
            .finish()
    }
}

/// A revocation list held for checking certificates as they arrive: builds a
/// [`RevocationIndex`] lazily for the period asked for and keeps it until a
/// different period is asked for. Moving forward steps each entry's cached
/// chain state by the difference; moving backward re-walks from the entries.
#[derive(Clone)]
pub struct RevocationMatcher {
    entries: Vec<RevocationEntry>,
    certificates_per_period: u32,
    /// Per entry, the period and seed of the furthest chain position computed.
    states: Vec<(u64, LinkageSeed)>,
    index: Option<RevocationIndex>,
}

impl RevocationMatcher {
    /// A matcher over `entries` for vehicles issued `certificates_per_period`
    /// certificates per period (at most [`MAX_CERTIFICATES_PER_PERIOD`]).
    pub fn new(entries: Vec<RevocationEntry>, certificates_per_period: u32) -> Result<Self> {
        check_certificates_per_period(certificates_per_period)?;
        let states = entries
            .iter()
            .map(|e| (e.period, LinkageSeed::from_bytes(e.seed)))
            .collect();
        Ok(Self {
            entries,
            certificates_per_period,
            states,
            index: None,
        })
    }

    /// The entries, in the order entry indices refer to.
    pub fn entries(&self) -> &[RevocationEntry] {
        &self.entries
    }

    /// The index for `period`, building (or moving) it if needed.
    pub fn index_for(&mut self, period: u64) -> &RevocationIndex {
        match self.index.take() {
            Some(ix) if ix.period == period => self.index.insert(ix),
            _ => {
                let ix = self.build_index(period);
                self.index.insert(ix)
            }
        }
    }

    fn build_index(&mut self, period: u64) -> RevocationIndex {
        let mut seeds = Vec::new();
        for (i, (entry, state)) in self.entries.iter().zip(self.states.iter_mut()).enumerate() {
            if chain_steps(entry.period, period, MAX_LOOKAHEAD_PERIODS).is_err() {
                continue;
            }
            if period < state.0 {
                *state = (entry.period, LinkageSeed::from_bytes(entry.seed));
            }
            state.1.advance(period - state.0);
            state.0 = period;
            seeds.push((i, state.1.clone()));
        }
        RevocationIndex::from_seeds(seeds.into_iter(), period, self.certificates_per_period)
    }

    /// The entry and `j` that `linkage_value` in `period` belongs to, if
    /// revoked.
    pub fn check(&mut self, period: u64, linkage_value: &LinkageValue) -> Option<RevocationMatch> {
        self.index_for(period).lookup(linkage_value)
    }

    /// Whether `linkage_value` in `period` is revoked.
    pub fn is_revoked(&mut self, period: u64, linkage_value: &LinkageValue) -> bool {
        self.check(period, linkage_value).is_some()
    }
}

impl fmt::Debug for RevocationMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationMatcher")
            .field("entries", &self.entries.len())
            .field("certificates_per_period", &self.certificates_per_period)
            .field("index", &self.index)
            .finish()
    }
}
