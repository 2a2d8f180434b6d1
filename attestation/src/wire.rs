//! The TPM's big-endian wire format: a bounded reader that refuses short
//! input, and the matching writers. Every `TPM2B_*` read is checked against
//! the structure's own maximum so no length is trusted.

use crate::AttestationError;

/// Reads one TPM structure; every read names the structure in its error.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    structure: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8], structure: &'static str) -> Self {
        Self { input, structure }
    }

    pub(crate) fn err(&self, reason: impl Into<String>) -> AttestationError {
        AttestationError::malformed(self.structure, reason)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], AttestationError> {
        if self.input.len() < n {
            return Err(self.err(format!("input ends inside {what}")));
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, AttestationError> {
        Ok(self.bytes(1, what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, AttestationError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, AttestationError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, AttestationError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A `TPM2B_*`: a 16-bit size, then at most `max` bytes.
    pub(crate) fn tpm2b(&mut self, what: &str, max: usize) -> Result<&'a [u8], AttestationError> {
        let n = self.u16(what)? as usize;
        if n > max {
            return Err(self.err(format!("{what} is {n} bytes, at most {max} allowed")));
        }
        self.bytes(n, what)
    }

    /// Refuses anything left over.
    pub(crate) fn finish(self) -> Result<(), AttestationError> {
        if self.input.is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("{} trailing bytes", self.input.len())))
        }
    }
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Writes a `TPM2B_*`. Callers hold only values a parse accepted or that
/// they built within the maximum, so the length fits in 16 bits.
pub(crate) fn put_tpm2b(out: &mut Vec<u8>, v: &[u8]) {
    put_u16(out, u16::try_from(v.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(v);
}

/// Hash algorithms (`TPMI_ALG_HASH`) this crate computes names with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashAlg {
    /// `TPM_ALG_SHA256` (0x000B).
    Sha256,
    /// `TPM_ALG_SHA384` (0x000C).
    Sha384,
}

impl HashAlg {
    pub(crate) fn from_id(id: u16) -> Option<Self> {
        match id {
            0x000B => Some(Self::Sha256),
            0x000C => Some(Self::Sha384),
            _ => None,
        }
    }

    /// The TPM algorithm identifier.
    pub fn id(self) -> u16 {
        match self {
            Self::Sha256 => 0x000B,
            Self::Sha384 => 0x000C,
        }
    }

    pub(crate) fn digest(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
        }
    }
}

/// `TPM_ALG_NULL`.
pub(crate) const ALG_NULL: u16 = 0x0010;
/// The largest `TPM2B_NAME`: a 2-byte algorithm and a SHA-512 digest.
pub(crate) const MAX_NAME: usize = 2 + 64;
/// The largest `TPM2B_DIGEST` / `TPM2B_DATA` (`sizeof(TPMT_HA)`).
pub(crate) const MAX_DIGEST: usize = 64;
pub(crate) const MAX_DATA: usize = 2 + 64;
