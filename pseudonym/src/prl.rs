//! The pseudonym revocation list (PRL): its canonical, signed-over byte
//! encoding and a strict decoder. The signature is made by the caller with
//! the pseudonym CA's key over [`PseudonymRevocationList::to_signed_bytes`].
//!
//! # Encoding
//!
//! All integers are unsigned big-endian.
//!
//! ```text
//! offset  size      field
//! 0       14        "trustca-prl-v1" (ASCII domain string, no terminator)
//! 14      1         sector length L, 1..=32
//! 15      L         sector name: [a-z0-9-], no leading or trailing '-'
//! 15+L    8         issue number
//! 23+L    8         this_update, Unix seconds
//! 31+L    8         next_update, Unix seconds, > this_update
//! 39+L    4         entry count N, <= MAX_PRL_ENTRIES (2^20)
//! 43+L    40 * N    entries: period (8) || seed (32)
//! ```
//!
//! Entries are in strictly ascending order of their 40-byte encodings, that
//! is by period, then seed; no seed appears twice (not even under two
//! periods). The decoder rejects anything else, including truncation and
//! trailing bytes, so every list has exactly one encoding and a signature
//! over it is unambiguous.

use std::collections::HashSet;

use crate::error::{PseudonymError, Result};
use crate::linkage::{LINKAGE_SEED_LEN, RevocationEntry, RevocationIndex, RevocationMatcher};

/// Domain string that starts every encoded PRL.
pub const PRL_DOMAIN: &[u8] = b"trustca-prl-v1";
/// Most entries a PRL may hold (40 MiB of entries).
pub const MAX_PRL_ENTRIES: u32 = 1 << 20;
/// Encoded length of one entry.
pub const PRL_ENTRY_LEN: usize = 8 + LINKAGE_SEED_LEN;
/// Longest sector name (same rule as trust-model's sector names).
pub const MAX_SECTOR_LEN: usize = 32;

/// The content of a pseudonym revocation list. Construct with
/// [`PseudonymRevocationList::new`] (which sorts and validates) or decode with
/// [`PseudonymRevocationList::from_signed_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PseudonymRevocationList {
    sector: String,
    issue_number: u64,
    this_update: u64,
    next_update: u64,
    entries: Vec<RevocationEntry>,
}

fn valid_sector(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SECTOR_LEN
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks sorted order and seed uniqueness of already-ordered entries.
fn check_entries(entries: &[RevocationEntry]) -> Result<()> {
    let mut seeds = HashSet::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            let prev = &entries[index - 1];
            if prev == entry {
                return Err(PseudonymError::PrlDuplicate { index });
            }
            if prev > entry {
                return Err(PseudonymError::PrlUnsorted { index });
            }
        }
        if !seeds.insert(entry.seed) {
            return Err(PseudonymError::PrlDuplicate { index });
        }
    }
    Ok(())
}

impl PseudonymRevocationList {
    /// Builds a list, sorting `entries` into canonical order. Fails on an
    /// invalid sector name, `next_update <= this_update`, more than
    /// [`MAX_PRL_ENTRIES`] entries, or a repeated entry or seed.
    pub fn new(
        sector: &str,
        issue_number: u64,
        this_update: u64,
        next_update: u64,
        mut entries: Vec<RevocationEntry>,
    ) -> Result<Self> {
        if !valid_sector(sector) {
            return Err(PseudonymError::PrlInvalidSector);
        }
        if next_update <= this_update {
            return Err(PseudonymError::PrlInvalidValidity {
                this_update,
                next_update,
            });
        }
        if entries.len() > MAX_PRL_ENTRIES as usize {
            return Err(PseudonymError::PrlTooManyEntries {
                count: entries.len() as u64,
                max: MAX_PRL_ENTRIES,
            });
        }
        entries.sort_unstable();
        check_entries(&entries)?;
        Ok(Self {
            sector: sector.to_owned(),
            issue_number,
            this_update,
            next_update,
            entries,
        })
    }

    /// The sector the list applies to.
    pub fn sector(&self) -> &str {
        &self.sector
    }

    /// The issue number (monotonic per sector, chosen by the issuer).
    pub fn issue_number(&self) -> u64 {
        self.issue_number
    }

    /// Issue time, Unix seconds.
    pub fn this_update(&self) -> u64 {
        self.this_update
    }

    /// Time by which the next list will be issued, Unix seconds.
    pub fn next_update(&self) -> u64 {
        self.next_update
    }

    /// The entries in canonical order.
    pub fn entries(&self) -> &[RevocationEntry] {
        &self.entries
    }

    /// The canonical encoding the pseudonym CA signs (see the module
    /// documentation).
    pub fn to_signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            PRL_DOMAIN.len() + 1 + self.sector.len() + 28 + PRL_ENTRY_LEN * self.entries.len(),
        );
        out.extend_from_slice(PRL_DOMAIN);
        // Both bounds are enforced by `new` and the decoder.
        out.push(self.sector.len() as u8);
        out.extend_from_slice(self.sector.as_bytes());
        out.extend_from_slice(&self.issue_number.to_be_bytes());
        out.extend_from_slice(&self.this_update.to_be_bytes());
        out.extend_from_slice(&self.next_update.to_be_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.period.to_be_bytes());
            out.extend_from_slice(&e.seed);
        }
        out
    }

    /// Strictly decodes [`PseudonymRevocationList::to_signed_bytes`]. Verify
    /// the signature over `bytes` before trusting the result.
    pub fn from_signed_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, offset: 0 };
        if r.take(PRL_DOMAIN.len(), "domain string")? != PRL_DOMAIN {
            return Err(PseudonymError::PrlBadDomain);
        }
        let sector_len = usize::from(r.take(1, "sector length")?[0]);
        if sector_len == 0 || sector_len > MAX_SECTOR_LEN {
            return Err(PseudonymError::PrlInvalidSector);
        }
        let sector = std::str::from_utf8(r.take(sector_len, "sector")?)
            .map_err(|_| PseudonymError::PrlInvalidSector)?;
        if !valid_sector(sector) {
            return Err(PseudonymError::PrlInvalidSector);
        }
        let issue_number = r.u64("issue number")?;
        let this_update = r.u64("this_update")?;
        let next_update = r.u64("next_update")?;
        if next_update <= this_update {
            return Err(PseudonymError::PrlInvalidValidity {
                this_update,
                next_update,
            });
        }
        let count = r.u32("entry count")?;
        if count > MAX_PRL_ENTRIES {
            return Err(PseudonymError::PrlTooManyEntries {
                count: u64::from(count),
                max: MAX_PRL_ENTRIES,
            });
        }
        let count = count as usize;
        let remaining = bytes.len() - r.offset;
        let needed = count * PRL_ENTRY_LEN;
        if remaining < needed {
            return Err(PseudonymError::PrlTruncated {
                field: "entries",
                offset: r.offset + (remaining / PRL_ENTRY_LEN) * PRL_ENTRY_LEN,
            });
        }
        if remaining > needed {
            return Err(PseudonymError::PrlTrailingBytes {
                count: remaining - needed,
            });
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let period = r.u64("entry period")?;
            let mut seed = [0u8; LINKAGE_SEED_LEN];
            seed.copy_from_slice(r.take(LINKAGE_SEED_LEN, "entry seed")?);
            entries.push(RevocationEntry { period, seed });
        }
        check_entries(&entries)?;
        Ok(Self {
            sector: sector.to_owned(),
            issue_number,
            this_update,
            next_update,
            entries,
        })
    }

    /// A lazily indexing matcher over this list's entries (entry indices
    /// refer to [`PseudonymRevocationList::entries`]).
    pub fn matcher(&self, certificates_per_period: u32) -> Result<RevocationMatcher> {
        RevocationMatcher::new(self.entries.clone(), certificates_per_period)
    }

    /// The revoked linkage values of `period`, for O(1) lookups.
    pub fn index(&self, period: u64, certificates_per_period: u32) -> Result<RevocationIndex> {
        RevocationIndex::build(&self.entries, period, certificates_per_period)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        let end = self
            .offset
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(PseudonymError::PrlTruncated {
                field,
                offset: self.offset,
            })?;
        let out = &self.bytes[self.offset..end];
        self.offset = end;
        Ok(out)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, field)?);
        Ok(u64::from_be_bytes(b))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4, field)?);
        Ok(u32::from_be_bytes(b))
    }
}
