//! Strict canonical OER (ITU-T X.696 clause 11, "COER") primitives for the
//! subset of ASN.1 that IEEE 1609.2 certificates use.
//!
//! Only what this crate issues is implemented: fixed-size integers and octet
//! strings, length determinants (short and minimal long form, at most four
//! length octets), SEQUENCE preambles of at most eight bits, SEQUENCE OF
//! quantity fields, CHOICE tags with context-specific class and tag numbers
//! below 63 (one octet), enumerations with values 0..=127, unconstrained and
//! lower-bounded integers up to eight content octets, and open types for
//! extension alternatives. The reader rejects every encoding that COER does
//! not allow (long-form lengths that fit the short form, leading zero or sign
//! octets, set padding bits) and never reads beyond its input.

use crate::V2xError;

/// Largest length determinant value accepted (well above any certificate).
pub(crate) const MAX_LENGTH: usize = 64 * 1024;
/// Largest SEQUENCE OF element count accepted.
pub(crate) const MAX_COUNT: usize = 1024;

/// Appends COER encodings to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A fixed-size OCTET STRING: the octets, no length.
    pub(crate) fn fixed(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    /// A length determinant (X.696 8.6): short form below 128, otherwise the
    /// minimal long form.
    pub(crate) fn length(&mut self, len: usize) {
        if len < 0x80 {
            // Fits in seven bits.
            self.buf.push(len as u8);
        } else {
            let bytes = (len as u64).to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            let n = bytes.len() - skip;
            self.buf.push(0x80 | n as u8);
            self.buf.extend_from_slice(&bytes[skip..]);
        }
    }

    /// A variable-size OCTET STRING (or UTF8String): length and octets.
    pub(crate) fn octets(&mut self, v: &[u8]) {
        self.length(v.len());
        self.buf.extend_from_slice(v);
    }

    /// The quantity field of a SEQUENCE OF (X.696 20.6): the element count
    /// as a length-prefixed minimal unsigned integer.
    pub(crate) fn quantity(&mut self, n: usize) {
        self.uint(n as u64);
    }

    /// An integer with lower bound 0 and no upper bound: length-prefixed
    /// minimal unsigned octets (at least one).
    pub(crate) fn uint(&mut self, v: u64) {
        let bytes = v.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
        self.octets(&bytes[skip..]);
    }

    /// An unconstrained INTEGER: length-prefixed minimal two's complement.
    pub(crate) fn int(&mut self, v: i64) {
        let bytes = v.to_be_bytes();
        let mut skip = 0;
        while skip < 7 {
            let (b, next) = (bytes[skip], bytes[skip + 1]);
            if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                skip += 1;
            } else {
                break;
            }
        }
        self.octets(&bytes[skip..]);
    }

    /// A CHOICE tag, context-specific class, tag number below 63.
    pub(crate) fn tag(&mut self, n: u8) {
        debug_assert!(n < 0x3f);
        self.buf.push(0x80 | n);
    }

    /// An open type (extension alternative): the inner encoding with a
    /// length determinant.
    pub(crate) fn open(&mut self, inner: impl FnOnce(&mut Writer)) {
        let mut w = Writer::new();
        inner(&mut w);
        self.octets(&w.buf);
    }
}

/// Reads COER encodings from a byte slice, strictly.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    max_length: usize,
    max_count: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self::with_limits(data, MAX_LENGTH, MAX_COUNT)
    }

    /// A reader with other limits for length determinants and SEQUENCE OF
    /// counts (CRLs are longer than certificates).
    pub(crate) fn with_limits(data: &'a [u8], max_length: usize, max_count: usize) -> Self {
        Self {
            data,
            pos: 0,
            max_length,
            max_count,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The octets read since position `start`.
    pub(crate) fn consumed_since(&self, start: usize) -> &'a [u8] {
        &self.data[start.min(self.pos)..self.pos]
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn non_canonical(&self, at: usize, what: &'static str) -> V2xError {
        V2xError::NonCanonical { offset: at, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], V2xError> {
        if n > self.remaining() {
            return Err(V2xError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, V2xError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, V2xError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, V2xError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], V2xError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A length determinant, canonical form only, at most [`MAX_LENGTH`].
    pub(crate) fn length(&mut self) -> Result<usize, V2xError> {
        let at = self.pos;
        let first = self.u8()?;
        if first < 0x80 {
            return Ok(usize::from(first));
        }
        let n = usize::from(first & 0x7f);
        if n == 0 {
            return Err(V2xError::Invalid {
                offset: at,
                what: "indefinite length form is not OER",
            });
        }
        if n > 4 {
            return Err(V2xError::Limit("length determinant longer than 4 octets"));
        }
        let bytes = self.take(n)?;
        if bytes[0] == 0 {
            return Err(self.non_canonical(at, "length with leading zero octet"));
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return Err(self.non_canonical(at, "long-form length below 128"));
        }
        if len > self.max_length {
            return Err(V2xError::Limit(
                "length determinant above this decoder's limit",
            ));
        }
        Ok(len)
    }

    /// A variable-size OCTET STRING.
    pub(crate) fn octets(&mut self) -> Result<&'a [u8], V2xError> {
        let len = self.length()?;
        self.take(len)
    }

    /// An integer with lower bound 0 and no upper bound (at most 8 octets).
    pub(crate) fn uint(&mut self) -> Result<u64, V2xError> {
        let at = self.pos;
        let bytes = self.octets()?;
        match bytes {
            [] => Err(V2xError::Invalid {
                offset: at,
                what: "integer with no content octets",
            }),
            [0, ..] if bytes.len() > 1 => Err(self.non_canonical(at, "integer with leading zero")),
            _ if bytes.len() > 8 => Err(V2xError::Limit("integer longer than 8 octets")),
            _ => Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))),
        }
    }

    /// An unconstrained INTEGER (two's complement, at most 8 octets).
    pub(crate) fn int(&mut self) -> Result<i64, V2xError> {
        let at = self.pos;
        let bytes = self.octets()?;
        if bytes.is_empty() {
            return Err(V2xError::Invalid {
                offset: at,
                what: "integer with no content octets",
            });
        }
        if bytes.len() > 8 {
            return Err(V2xError::Limit("integer longer than 8 octets"));
        }
        if bytes.len() > 1 {
            let (b, next) = (bytes[0], bytes[1]);
            if (b == 0x00 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
                return Err(self.non_canonical(at, "integer not in minimal octets"));
            }
        }
        let init: i64 = if bytes[0] & 0x80 != 0 { -1 } else { 0 };
        Ok(bytes.iter().fold(init, |acc, b| (acc << 8) | i64::from(*b)))
    }

    /// The quantity field of a SEQUENCE OF, at most [`MAX_COUNT`].
    pub(crate) fn quantity(&mut self) -> Result<usize, V2xError> {
        let n = self.uint()?;
        if n > self.max_count as u64 {
            return Err(V2xError::Limit(
                "SEQUENCE OF with more elements than this decoder's limit",
            ));
        }
        // Every element takes at least one octet in this crate's subset.
        let n = n as usize;
        if n > self.remaining() {
            return Err(V2xError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        Ok(n)
    }

    /// A CHOICE tag: context-specific class, single-octet tag number.
    pub(crate) fn tag(&mut self) -> Result<u8, V2xError> {
        let at = self.pos;
        let b = self.u8()?;
        if b & 0xc0 != 0x80 {
            return Err(V2xError::Invalid {
                offset: at,
                what: "CHOICE tag is not context-specific",
            });
        }
        let n = b & 0x3f;
        if n == 0x3f {
            return Err(V2xError::Unsupported("multi-octet CHOICE tag"));
        }
        Ok(n)
    }

    /// A SEQUENCE preamble of `bits` bits (1..=8) in one octet; the unused
    /// low-order bits must be zero. Returns the octet.
    pub(crate) fn preamble(&mut self, bits: u32) -> Result<u8, V2xError> {
        debug_assert!((1..=8).contains(&bits));
        let at = self.pos;
        let b = self.u8()?;
        let unused_mask = (1u16 << (8 - bits)) as u8 - 1;
        if b & unused_mask != 0 {
            return Err(self.non_canonical(at, "preamble padding bits set"));
        }
        Ok(b)
    }

    /// An ENUMERATED value in the single-octet form (0..=127).
    pub(crate) fn enumerated(&mut self) -> Result<u8, V2xError> {
        let at = self.pos;
        let b = self.u8()?;
        if b & 0x80 != 0 {
            return Err(V2xError::Invalid {
                offset: at,
                what: "enumerated value outside 0..=127",
            });
        }
        Ok(b)
    }

    /// An open type: a length-prefixed encoding that `inner` must consume
    /// exactly.
    pub(crate) fn open<T>(
        &mut self,
        inner: impl FnOnce(&mut Reader<'a>) -> Result<T, V2xError>,
    ) -> Result<T, V2xError> {
        let start = self.pos;
        let len = self.length()?;
        let body_start = self.pos;
        let body = self.take(len)?;
        let mut r = Reader {
            data: &self.data[..body_start + body.len()],
            pos: body_start,
            max_length: self.max_length,
            max_count: self.max_count,
        };
        let v = inner(&mut r)?;
        if r.remaining() != 0 {
            return Err(V2xError::Invalid {
                offset: start,
                what: "open type longer than its content",
            });
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
        let mut w = Writer::new();
        f(&mut w);
        w.buf
    }

    #[test]
    fn lengths() {
        assert_eq!(enc(|w| w.length(0)), [0]);
        assert_eq!(enc(|w| w.length(127)), [0x7f]);
        assert_eq!(enc(|w| w.length(128)), [0x81, 0x80]);
        assert_eq!(enc(|w| w.length(300)), [0x82, 0x01, 0x2c]);
        for len in [0usize, 1, 127, 128, 255, 256, 1000] {
            let mut bytes = enc(|w| w.length(len));
            bytes.extend(std::iter::repeat_n(0, len));
            assert_eq!(Reader::new(&bytes).length(), Ok(len));
        }
        assert!(matches!(
            Reader::new(&[0x81, 0x05]).length(),
            Err(V2xError::NonCanonical { .. })
        ));
        assert!(matches!(
            Reader::new(&[0x82, 0x00, 0x85]).length(),
            Err(V2xError::NonCanonical { .. })
        ));
        assert!(matches!(
            Reader::new(&[0x80]).length(),
            Err(V2xError::Invalid { .. })
        ));
    }

    #[test]
    fn integers() {
        assert_eq!(enc(|w| w.uint(0)), [1, 0]);
        assert_eq!(enc(|w| w.uint(36)), [1, 36]);
        assert_eq!(enc(|w| w.uint(0x2040)), [2, 0x20, 0x40]);
        assert_eq!(enc(|w| w.int(1)), [1, 1]);
        assert_eq!(enc(|w| w.int(128)), [2, 0, 128]);
        assert_eq!(enc(|w| w.int(-1)), [1, 0xff]);
        assert_eq!(enc(|w| w.int(-129)), [2, 0xff, 0x7f]);
        for v in [0i64, 1, -1, 127, 128, -128, -129, 65535, i64::MAX, i64::MIN] {
            assert_eq!(Reader::new(&enc(|w| w.int(v))).int(), Ok(v));
        }
        for v in [0u64, 1, 255, 256, u64::MAX] {
            assert_eq!(Reader::new(&enc(|w| w.uint(v))).uint(), Ok(v));
        }
        assert!(Reader::new(&[2, 0, 5]).uint().is_err());
        assert!(Reader::new(&[2, 0, 5]).int().is_err());
        assert!(Reader::new(&[2, 0xff, 0x80]).int().is_err());
        assert!(Reader::new(&[0]).int().is_err());
    }

    #[test]
    fn preamble_padding() {
        assert_eq!(Reader::new(&[0x80]).preamble(1), Ok(0x80));
        assert!(Reader::new(&[0x40]).preamble(1).is_err());
        assert_eq!(Reader::new(&[0xff]).preamble(8), Ok(0xff));
    }
}
