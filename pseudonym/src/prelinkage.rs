//! IEEE 1609.2 / US SCMS linkage values made by two linkage authorities.
//!
//! In the SCMS no single party can link a holder's pseudonym certificates:
//! two linkage authorities (LA1 and LA2) each keep their own one-way seed
//! chain for the holder and hand the pseudonym CA only *pre-linkage values*
//! (encrypted to the CA through the RA in the full system). The CA puts
//! `lv = plv1 XOR plv2` into the certificate. Neither LA alone knows `lv`,
//! and the CA sees only values that look random. To revoke the holder from
//! period `p` on, both LAs release their seed of period `p`
//! ([`SeedRelease`]); with both seeds anyone can recompute `lv(i, j)` for
//! every `i >= p`, and nothing before `p` because the chains only run
//! forward.
//!
//! The byte layout is fixed by the standard and must interoperate, not be
//! redesigned. trustca's separated V2X authorities (`trustca-scms`) use it
//! for every authorization ticket.
//!
//! # Construction
//!
//! The linkage-value scheme of IEEE 1609.2 (2016, §5.1.3.4) as refined by
//! CAMP's "Modifications to Crypto Primitives" v0.2 for the SCMS. For each LA with 16-bit identifier `la_id` and one holder:
//!
//! ```text
//! ls(0)    <- 16 random bytes
//! ls(i)     = SHA-256(BE16(la_id) || ls(i-1) || 0^14 bytes)[0..16]   for i > 0
//! P(j)      = BE16(la_id) || BE32(j) || 0^10 bytes                   (one AES block)
//! plv(i, j) = (AES-128_{ls(i)}(P(j)) XOR P(j))[0..9]
//! lv(i, j)  = plv1(i, j) XOR plv2(i, j)                              (9 bytes)
//! ```
//!
//! The byte conventions — zero padding of the hash input to 32 bytes,
//! keeping the *first* 16 digest bytes, `la_id || j` big-endian and
//! left-aligned in the AES block, keeping the first 9 bytes of the result —
//! are taken from the CAMP/SCMS published test vectors
//! (`pseudonym/testdata/prelinkage-vectors.json`), which the tests
//! reproduce; they were not checked against the text of the standard.
//!
//! Periods are absolute `u64` indices; a chain's `ls(0)` is the seed of the
//! period the chain was created for. The period number itself does not
//! enter the value (the standard does not put it there); it only selects
//! how far the chain has been hashed.

use std::collections::HashMap;
use std::fmt;

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit};
use ring::digest::{Context, SHA256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{PseudonymError, Result};
use crate::keys::{random_array, to_hex};

/// Most hash steps any chain walk may take (about a second of SHA-256);
/// asking for a period further ahead fails with
/// [`PseudonymError::ChainTooLong`].
pub const MAX_CHAIN_STEPS: u64 = 1 << 20;
/// Upper bound on the certificates per period of one holder
/// (`pre_linkage_values`, revocation matching and indexes).
pub const MAX_CERTIFICATES_PER_PERIOD: u32 = 4096;
/// Length of a linkage seed `ls(i)` (an AES-128 key).
pub const LA_SEED_LEN: usize = 16;
/// Length of a pre-linkage value and of a certificate linkage value.
pub const PRE_LINKAGE_VALUE_LEN: usize = 9;
/// Length of [`SeedRelease::to_bytes`]: `BE16(la_id) || BE64(period) || seed`.
pub const SEED_RELEASE_LEN: usize = 2 + 8 + LA_SEED_LEN;
/// Length of [`LaChain::to_bytes`] (same layout as a seed release).
pub const LA_CHAIN_LEN: usize = 2 + 8 + LA_SEED_LEN;
/// Most linkage values a [`LinkageRevocationIndex`] may hold, counted as
/// `revocations × periods × certificates_per_period` before any work is
/// done. At the cap building takes 10^8 AES block encryptions and roughly
/// 1–2 GB of memory; anything larger should be split by period.
pub const MAX_INDEX_VALUES: u64 = 50_000_000;

/// Zero bytes appended to `la_id || ls(i-1)` so that the hash input is 32
/// bytes, as in the CAMP test vectors.
const HASH_PADDING: [u8; 14] = [0u8; 14];

/// A linkage authority's 16-bit identifier (`LaId` in IEEE 1609.2, an
/// `OCTET STRING (SIZE(2))`; here its big-endian value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LaId(pub u16);

impl LaId {
    /// The two bytes as they appear in the hash and AES inputs.
    pub fn to_be_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }
}

/// A secret 16-byte linkage seed `ls(i)`: one link of one LA's chain, and
/// the AES-128 key for that period's pre-linkage values.
///
/// Wiped on drop; `Debug` prints `<redacted>`. Equality does not stop at the
/// first differing byte.
#[derive(Clone)]
pub struct LaSeed([u8; LA_SEED_LEN]);

impl LaSeed {
    /// A fresh random `ls(0)` from the system random number generator.
    pub fn generate() -> Result<Self> {
        Ok(Self(random_array()?))
    }

    /// Wraps existing seed bytes.
    pub fn from_bytes(bytes: [u8; LA_SEED_LEN]) -> Self {
        Self(bytes)
    }

    /// The seed bytes.
    pub fn as_bytes(&self) -> &[u8; LA_SEED_LEN] {
        &self.0
    }

    /// The next seed of `la_id`'s chain:
    /// `SHA-256(BE16(la_id) || self || 0^14)[0..16]`.
    pub fn next(&self, la_id: LaId) -> LaSeed {
        let mut ctx = Context::new(&SHA256);
        ctx.update(&la_id.to_be_bytes());
        ctx.update(&self.0);
        ctx.update(&HASH_PADDING);
        let digest = ctx.finish();
        let mut out = [0u8; LA_SEED_LEN];
        out.copy_from_slice(&digest.as_ref()[..LA_SEED_LEN]);
        LaSeed(out)
    }

    /// The pre-linkage value of certificate `j`, treating `self` as the seed
    /// of the certificate's period.
    pub fn pre_linkage_value(&self, la_id: LaId, j: u32) -> PreLinkageValue {
        pre_linkage_value_with(&self.cipher(), la_id, j)
    }

    /// The AES-128 key schedule for this seed. Built once per period and
    /// reused for every `j`, since the key schedule costs about as much as a
    /// block encryption. The schedule is wiped on drop (the `aes` crate's
    /// `zeroize` feature).
    fn cipher(&self) -> Aes128 {
        Aes128::new((&self.0).into())
    }

    /// Steps the seed forward by `steps` links.
    fn advance(&mut self, la_id: LaId, steps: u64) {
        for _ in 0..steps {
            *self = self.next(la_id);
        }
    }
}

impl Zeroize for LaSeed {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for LaSeed {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for LaSeed {}

impl PartialEq for LaSeed {
    fn eq(&self, other: &Self) -> bool {
        // No early exit: comparing a guessed seed must not reveal how many
        // leading bytes were right.
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for LaSeed {}

impl fmt::Debug for LaSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LaSeed(<redacted>)")
    }
}

fn pre_linkage_value_with(cipher: &Aes128, la_id: LaId, j: u32) -> PreLinkageValue {
    // la_id || j left-aligned in the block, zeros after: the CAMP layout.
    let mut input = [0u8; 16];
    input[..2].copy_from_slice(&la_id.to_be_bytes());
    input[2..6].copy_from_slice(&j.to_be_bytes());
    let mut block = input.into();
    cipher.encrypt_block(&mut block);
    // Davies–Meyer-style feed-forward (output XOR input) makes the map from
    // seed to value one-way even for someone who chooses j.
    let mut out = [0u8; PRE_LINKAGE_VALUE_LEN];
    for (o, (c, p)) in out.iter_mut().zip(block.iter().zip(input.iter())) {
        *o = c ^ p;
    }
    PreLinkageValue(out)
}

/// One LA's 9-byte contribution to a certificate's linkage value.
///
/// Not secret in the cryptographic sense, but an LA must not let the other
/// LA see it: with both halves, or one half and the certificate, the split
/// of trust is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PreLinkageValue(pub [u8; PRE_LINKAGE_VALUE_LEN]);

/// The 9-byte linkage value carried in the certificate (`LinkageValue` in
/// IEEE 1609.2): `plv1 XOR plv2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertLinkageValue(pub [u8; PRE_LINKAGE_VALUE_LEN]);

impl CertLinkageValue {
    /// `a XOR b`. The order does not matter.
    pub fn combine(a: &PreLinkageValue, b: &PreLinkageValue) -> Self {
        let mut out = [0u8; PRE_LINKAGE_VALUE_LEN];
        for (o, (x, y)) in out.iter_mut().zip(a.0.iter().zip(b.0.iter())) {
            *o = x ^ y;
        }
        Self(out)
    }

    /// Parses exactly 9 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; PRE_LINKAGE_VALUE_LEN] =
            bytes
                .try_into()
                .map_err(|_| PseudonymError::InvalidLength {
                    what: "certificate linkage value",
                    expected: PRE_LINKAGE_VALUE_LEN,
                    actual: bytes.len(),
                })?;
        Ok(Self(arr))
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8; PRE_LINKAGE_VALUE_LEN] {
        &self.0
    }

    /// Lowercase hex, for logs.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

/// Number of chain steps from `start` to `to`, refusing backward walks
/// (the chain is one-way) and walks longer than [`MAX_CHAIN_STEPS`].
fn chain_steps(start: u64, to: u64) -> Result<u64> {
    if to < start {
        return Err(PseudonymError::PeriodBeforeChainStart {
            requested: to,
            start,
        });
    }
    let steps = to - start;
    if steps > MAX_CHAIN_STEPS {
        return Err(PseudonymError::ChainTooLong {
            from: start,
            to,
            max: MAX_CHAIN_STEPS,
        });
    }
    Ok(steps)
}

/// Bounds every `count` / `certificates_per_period` argument, because the
/// work and the returned vectors grow with it.
fn check_count(count: u32) -> Result<()> {
    if count > MAX_CERTIFICATES_PER_PERIOD {
        return Err(PseudonymError::TooManyCertificatesPerPeriod {
            requested: count,
            max: MAX_CERTIFICATES_PER_PERIOD,
        });
    }
    Ok(())
}

/// `BE16(la_id) || BE64(period) || seed`, shared by chains and releases.
fn encode(la_id: LaId, period: u64, seed: &LaSeed) -> Zeroizing<[u8; LA_CHAIN_LEN]> {
    let mut out = Zeroizing::new([0u8; LA_CHAIN_LEN]);
    out[..2].copy_from_slice(&la_id.to_be_bytes());
    out[2..10].copy_from_slice(&period.to_be_bytes());
    out[10..].copy_from_slice(seed.as_bytes());
    out
}

fn decode(bytes: &[u8], what: &'static str) -> Result<(LaId, u64, LaSeed)> {
    if bytes.len() != LA_CHAIN_LEN {
        return Err(PseudonymError::InvalidLength {
            what,
            expected: LA_CHAIN_LEN,
            actual: bytes.len(),
        });
    }
    let mut la_id = [0u8; 2];
    la_id.copy_from_slice(&bytes[..2]);
    let mut period = [0u8; 8];
    period.copy_from_slice(&bytes[2..10]);
    let mut seed = [0u8; LA_SEED_LEN];
    seed.copy_from_slice(&bytes[10..]);
    Ok((
        LaId(u16::from_be_bytes(la_id)),
        u64::from_be_bytes(period),
        LaSeed::from_bytes(seed),
    ))
}

/// The seed of `period` given the seed of `start`, or the walk's error.
fn walk(la_id: LaId, start: u64, seed: &LaSeed, period: u64) -> Result<LaSeed> {
    let steps = chain_steps(start, period)?;
    let mut out = seed.clone();
    out.advance(la_id, steps);
    Ok(out)
}

/// One LA's chain for one certificate holder: its seed for `period`.
///
/// The LA creates it with [`LaChain::generate`] when the holder enrolls,
/// computes pre-linkage values from it, and may move it forward with
/// [`LaChain::advance_to`] to forget seeds it no longer needs. Secret:
/// `Debug` shows only the LA and the period.
#[derive(Clone)]
pub struct LaChain {
    la_id: LaId,
    period: u64,
    seed: LaSeed,
}

impl LaChain {
    /// A new chain for `la_id` whose random `ls(0)` is the seed of `period`.
    pub fn generate(la_id: LaId, period: u64) -> Result<Self> {
        Ok(Self::new(la_id, period, LaSeed::generate()?))
    }

    /// A chain of `la_id` whose seed for `period` is `seed`.
    pub fn new(la_id: LaId, period: u64, seed: LaSeed) -> Self {
        Self {
            la_id,
            period,
            seed,
        }
    }

    /// The LA this chain belongs to.
    pub fn la_id(&self) -> LaId {
        self.la_id
    }

    /// The period of the seed held (the earliest derivable period).
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The seed of a period at or after [`LaChain::period`], at most
    /// [`MAX_CHAIN_STEPS`] ahead.
    pub fn seed_for_period(&self, period: u64) -> Result<LaSeed> {
        walk(self.la_id, self.period, &self.seed, period)
    }

    /// Moves the chain forward to `period`, forgetting the earlier seeds, so
    /// that a later compromise of the LA cannot link certificates of the
    /// periods already passed.
    pub fn advance_to(&mut self, period: u64) -> Result<()> {
        self.seed = self.seed_for_period(period)?;
        self.period = period;
        Ok(())
    }

    /// The pre-linkage values of certificates `j = 0..count` in `period`
    /// (one chain walk, one AES key schedule). `count` is at most
    /// [`MAX_CERTIFICATES_PER_PERIOD`].
    pub fn pre_linkage_values(&self, period: u64, count: u32) -> Result<Vec<PreLinkageValue>> {
        check_count(count)?;
        let cipher = self.seed_for_period(period)?.cipher();
        Ok((0..count)
            .map(|j| pre_linkage_value_with(&cipher, self.la_id, j))
            .collect())
    }

    /// What this LA publishes to revoke the holder from `from_period` on:
    /// its seed of `from_period`.
    pub fn release(&self, from_period: u64) -> Result<SeedRelease> {
        Ok(SeedRelease {
            la_id: self.la_id,
            period: from_period,
            seed: self.seed_for_period(from_period)?,
        })
    }

    /// `BE16(la_id) || BE64(period) || seed`, 26 bytes, for storage or
    /// escrow (secret; wiped when dropped).
    pub fn to_bytes(&self) -> Zeroizing<[u8; LA_CHAIN_LEN]> {
        encode(self.la_id, self.period, &self.seed)
    }

    /// Parses [`LaChain::to_bytes`] (exactly 26 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (la_id, period, seed) = decode(bytes, "linkage authority chain")?;
        Ok(Self::new(la_id, period, seed))
    }
}

impl fmt::Debug for LaChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaChain")
            .field("la_id", &self.la_id)
            .field("period", &self.period)
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// A linkage seed an LA publishes to revoke a chain from `period` on.
///
/// Public once published, but `Debug` still redacts the seed so that a
/// release being prepared does not leak into logs before the list is out.
#[derive(Clone, PartialEq, Eq)]
pub struct SeedRelease {
    /// The LA whose chain this is.
    pub la_id: LaId,
    /// The first period whose certificates the release (with its partner)
    /// links.
    pub period: u64,
    /// The LA's seed of `period`.
    pub seed: LaSeed,
}

impl SeedRelease {
    /// The seed of a period at or after [`SeedRelease::period`], at most
    /// [`MAX_CHAIN_STEPS`] ahead.
    pub fn seed_for_period(&self, period: u64) -> Result<LaSeed> {
        walk(self.la_id, self.period, &self.seed, period)
    }

    /// `BE16(la_id) || BE64(period) || seed`, 26 bytes.
    pub fn to_bytes(&self) -> [u8; SEED_RELEASE_LEN] {
        *encode(self.la_id, self.period, &self.seed)
    }

    /// Parses [`SeedRelease::to_bytes`] (exactly 26 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (la_id, period, seed) = decode(bytes, "linkage seed release")?;
        Ok(Self {
            la_id,
            period,
            seed,
        })
    }
}

impl fmt::Debug for SeedRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedRelease")
            .field("la_id", &self.la_id)
            .field("period", &self.period)
            .field("seed", &"<redacted>")
            .finish()
    }
}

/// A revoked holder: both LAs' releases for the same period.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LinkageRevocation {
    /// One LA's release (conventionally LA1).
    pub first: SeedRelease,
    /// The other LA's release.
    pub second: SeedRelease,
}

impl LinkageRevocation {
    /// Pairs two releases. Fails if their periods differ (the pair would
    /// describe no single period's values) or both come from the same LA
    /// (the XOR of a chain with itself is not a linkage value).
    pub fn new(first: SeedRelease, second: SeedRelease) -> Result<Self> {
        if first.period != second.period {
            return Err(PseudonymError::ReleasePeriodMismatch {
                first: first.period,
                second: second.period,
            });
        }
        if first.la_id == second.la_id {
            return Err(PseudonymError::DuplicateLaId {
                la_id: first.la_id.0,
            });
        }
        Ok(Self { first, second })
    }

    /// The first period this revocation covers.
    pub fn period(&self) -> u64 {
        self.first.period
    }

    /// Both AES key schedules for `period`, or `None` before the release
    /// period.
    fn ciphers(&self, period: u64) -> Result<Option<(Aes128, Aes128)>> {
        if period < self.period() {
            return Ok(None);
        }
        let a = self.first.seed_for_period(period)?.cipher();
        let b = self.second.seed_for_period(period)?.cipher();
        Ok(Some((a, b)))
    }

    fn value_with(&self, ciphers: &(Aes128, Aes128), j: u32) -> CertLinkageValue {
        CertLinkageValue::combine(
            &pre_linkage_value_with(&ciphers.0, self.first.la_id, j),
            &pre_linkage_value_with(&ciphers.1, self.second.la_id, j),
        )
    }

    /// The holder's linkage values `lv(period, j)` for `j = 0..count`;
    /// empty for periods before the release period. Fails for `count` above
    /// [`MAX_CERTIFICATES_PER_PERIOD`] and periods more than
    /// [`MAX_CHAIN_STEPS`] ahead.
    pub fn linkage_values(&self, period: u64, count: u32) -> Result<Vec<CertLinkageValue>> {
        check_count(count)?;
        let Some(ciphers) = self.ciphers(period)? else {
            return Ok(Vec::new());
        };
        Ok((0..count).map(|j| self.value_with(&ciphers, j)).collect())
    }

    /// The `j < certificates_per_period` whose value in `period` is `lv`, if
    /// any; `None` for periods before the release period. Cost: one chain
    /// walk per LA and `2 × certificates_per_period` AES blocks; for many
    /// revocations use [`LinkageRevocationIndex`].
    pub fn matches(
        &self,
        period: u64,
        lv: &CertLinkageValue,
        certificates_per_period: u32,
    ) -> Result<Option<u32>> {
        check_count(certificates_per_period)?;
        let Some(ciphers) = self.ciphers(period)? else {
            return Ok(None);
        };
        Ok((0..certificates_per_period).find(|&j| self.value_with(&ciphers, j) == *lv))
    }
}

/// Precomputed lookup over many revocations for the periods
/// `from_period..=to_period`: every revoked linkage value of those periods
/// in a hash map, so each certificate check is O(1).
///
/// Building is bounded: `revocations × periods × certificates_per_period`
/// must not exceed [`MAX_INDEX_VALUES`] (checked before any work), and each
/// revocation's chain walk is bounded by [`MAX_CHAIN_STEPS`]. Immutable once
/// built, so threads can share it.
#[derive(Clone)]
pub struct LinkageRevocationIndex {
    from_period: u64,
    to_period: u64,
    certificates_per_period: u32,
    /// Per period (offset from `from_period`), value → revocation index.
    /// Indices fit in `u32` because the value cap is far below `u32::MAX`.
    periods: Vec<HashMap<CertLinkageValue, u32>>,
}

impl LinkageRevocationIndex {
    /// Builds the index of `revocations` for periods `from_period..=to_period`.
    ///
    /// If two revocations produce the same value (probability about
    /// `n² / 2^73`), the earlier one in `revocations` wins, as a linear scan
    /// with [`LinkageRevocation::matches`] would find.
    pub fn build(
        revocations: &[LinkageRevocation],
        from_period: u64,
        to_period: u64,
        certificates_per_period: u32,
    ) -> Result<Self> {
        if to_period < from_period {
            return Err(PseudonymError::InvalidPeriodRange {
                from: from_period,
                to: to_period,
            });
        }
        check_count(certificates_per_period)?;
        // One map per period is allocated up front, so the range itself is
        // bounded like any chain walk.
        let span = to_period - from_period;
        if span > MAX_CHAIN_STEPS {
            return Err(PseudonymError::ChainTooLong {
                from: from_period,
                to: to_period,
                max: MAX_CHAIN_STEPS,
            });
        }
        // Saturating: a product that overflows u128 is over the cap anyway.
        let values = (revocations.len() as u128)
            .saturating_mul(u128::from(span) + 1)
            .saturating_mul(u128::from(certificates_per_period));
        if values > u128::from(MAX_INDEX_VALUES) {
            return Err(PseudonymError::RevocationIndexTooLarge {
                values,
                max: MAX_INDEX_VALUES,
            });
        }
        // span <= MAX_CHAIN_STEPS = 2^20, so these conversions are lossless.
        let period_count = span as usize + 1;
        let per_period = revocations
            .len()
            .saturating_mul(certificates_per_period as usize);
        // Nothing to index: keep no maps at all rather than up to 2^20 empty
        // ones (`lookup` treats a missing map as "not revoked").
        let period_count = if per_period == 0 { 0 } else { period_count };
        let mut periods: Vec<HashMap<CertLinkageValue, u32>> = (0..period_count)
            .map(|_| HashMap::with_capacity(per_period))
            .collect();

        // With no certificates there is nothing to index (and the revocation
        // count is then not bounded by the cap, so skip the u32 conversion).
        let revocations = if certificates_per_period == 0 {
            &[]
        } else {
            revocations
        };
        for (index, revocation) in revocations.iter().enumerate() {
            // At most MAX_INDEX_VALUES revocations reach here (each adds at
            // least one value), which fits in u32.
            let index =
                u32::try_from(index).map_err(|_| PseudonymError::RevocationIndexTooLarge {
                    values,
                    max: MAX_INDEX_VALUES,
                })?;
            let start = revocation.period().max(from_period);
            if start > to_period {
                continue;
            }
            // One walk to the first covered period, then one step per period.
            let mut seeds = (
                revocation.first.seed_for_period(start)?,
                revocation.second.seed_for_period(start)?,
            );
            let mut period = start;
            loop {
                let ciphers = (seeds.0.cipher(), seeds.1.cipher());
                // `period - from_period < period_count`, which fits in usize.
                let slot = &mut periods[(period - from_period) as usize];
                for j in 0..certificates_per_period {
                    slot.entry(revocation.value_with(&ciphers, j))
                        .or_insert(index);
                }
                if period == to_period {
                    break;
                }
                period += 1;
                seeds = (
                    seeds.0.next(revocation.first.la_id),
                    seeds.1.next(revocation.second.la_id),
                );
            }
        }
        Ok(Self {
            from_period,
            to_period,
            certificates_per_period,
            periods,
        })
    }

    /// The index into the `revocations` given to [`LinkageRevocationIndex::build`]
    /// of the revocation that `lv` in `period` belongs to; `None` if it is
    /// not revoked or `period` lies outside the index's range.
    pub fn lookup(&self, period: u64, lv: &CertLinkageValue) -> Option<usize> {
        if period < self.from_period || period > self.to_period {
            return None;
        }
        let slot = self
            .periods
            .get(usize::try_from(period - self.from_period).ok()?)?;
        slot.get(lv).map(|&i| i as usize)
    }

    /// The first period covered.
    pub fn from_period(&self) -> u64 {
        self.from_period
    }

    /// The last period covered.
    pub fn to_period(&self) -> u64 {
        self.to_period
    }

    /// The `certificates_per_period` the index was built with.
    pub fn certificates_per_period(&self) -> u32 {
        self.certificates_per_period
    }

    /// How many linkage values it holds.
    pub fn len(&self) -> usize {
        self.periods.iter().map(HashMap::len).sum()
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.periods.iter().all(HashMap::is_empty)
    }
}

impl fmt::Debug for LinkageRevocationIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkageRevocationIndex")
            .field("from_period", &self.from_period)
            .field("to_period", &self.to_period)
            .field("certificates_per_period", &self.certificates_per_period)
            .field("values", &self.len())
            .finish()
    }
}

#[cfg(test)]
#[path = "prelinkage_tests.rs"]
mod tests;
