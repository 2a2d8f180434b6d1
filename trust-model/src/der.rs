//! A deliberately small, strict DER reader and writer: only the types the
//! trust-level extension uses, definite minimal lengths only, no
//! indefinite forms, so that every value has exactly one encoding.

pub(crate) const TAG_INTEGER: u8 = 0x02;
pub(crate) const TAG_UTF8: u8 = 0x0c;
pub(crate) const TAG_ENUMERATED: u8 = 0x0a;
pub(crate) const TAG_GENERALIZED_TIME: u8 = 0x18;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
/// `[0] IMPLICIT SEQUENCE OF`: context-specific, constructed, number 0.
pub(crate) const TAG_CONTEXT_0_CONSTRUCTED: u8 = 0xa0;
pub(crate) const TAG_CONTEXT_1_CONSTRUCTED: u8 = 0xa1;

/// Appends tag, length and contents to `out`.
pub(crate) fn write_tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(contents);
}

/// Appends a non-negative INTEGER or ENUMERATED in minimal two's complement.
pub(crate) fn write_small_uint(out: &mut Vec<u8>, tag: u8, value: u64) {
    let bytes = value.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut contents = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        contents.push(0);
    }
    contents.extend_from_slice(&bytes[skip..]);
    write_tlv(out, tag, &contents);
}

/// A cursor over DER input that refuses anything non-canonical.
pub(crate) struct Reader<'a> {
    input: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Self { input }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.input.first().copied()
    }

    /// Reads one TLV with the expected tag and returns its contents.
    pub(crate) fn read(&mut self, tag: u8) -> Result<&'a [u8], String> {
        let (&got, rest) = self
            .input
            .split_first()
            .ok_or_else(|| format!("truncated: expected tag 0x{tag:02x}"))?;
        if got != tag {
            return Err(format!("wrong tag 0x{got:02x}, expected 0x{tag:02x}"));
        }
        let (&first, mut rest) = rest
            .split_first()
            .ok_or_else(|| "truncated length".to_owned())?;
        let len = if first < 0x80 {
            first as usize
        } else if first == 0x80 {
            return Err("indefinite length is not DER".to_owned());
        } else {
            let n = (first & 0x7f) as usize;
            if n > 4 || rest.len() < n {
                return Err("truncated or oversized length".to_owned());
            }
            let (len_bytes, after) = rest.split_at(n);
            if len_bytes[0] == 0 {
                return Err("non-minimal length encoding".to_owned());
            }
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            if len < 0x80 {
                return Err("non-minimal length encoding".to_owned());
            }
            rest = after;
            len
        };
        if rest.len() < len {
            return Err(format!(
                "truncated: tag 0x{tag:02x} declares {len} bytes, {} remain",
                rest.len()
            ));
        }
        let (contents, after) = rest.split_at(len);
        self.input = after;
        Ok(contents)
    }

    /// Reads a non-negative INTEGER/ENUMERATED that fits in a u64.
    pub(crate) fn read_small_uint(&mut self, tag: u8) -> Result<u64, String> {
        let c = self.read(tag)?;
        match c {
            [] => Err("empty integer".to_owned()),
            [b, ..] if b & 0x80 != 0 => Err("negative integer".to_owned()),
            [0, b, ..] if b & 0x80 == 0 => Err("non-minimal integer encoding".to_owned()),
            _ if c.len() > 9 || (c.len() == 9 && c[0] != 0) => Err("integer too large".to_owned()),
            _ => Ok(c.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64)),
        }
    }

    /// Reads one TLV with the expected tag and returns it whole.
    pub(crate) fn read_tlv(&mut self, tag: u8) -> Result<&'a [u8], String> {
        let before = self.input;
        let contents = self.read(tag)?;
        let consumed = before.len() - self.input.len();
        let _ = contents;
        Ok(&before[..consumed])
    }

    pub(crate) fn read_utf8(&mut self) -> Result<&'a str, String> {
        let c = self.read(TAG_UTF8)?;
        std::str::from_utf8(c).map_err(|_| "UTF8String is not valid UTF-8".to_owned())
    }
}

/// `YYYYMMDDHHMMSSZ`, the DER form of GeneralizedTime (UTC, no fraction).
pub(crate) fn generalized_time(t: time::OffsetDateTime) -> Result<Vec<u8>, crate::ModelError> {
    let t = t.to_offset(time::UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(crate::ModelError::MalformedExtension(
            "evaluation year out of range".to_owned(),
        ));
    }
    Ok(format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
    .into_bytes())
}

pub(crate) fn parse_generalized_time(c: &[u8]) -> Result<time::OffsetDateTime, String> {
    let s = std::str::from_utf8(c).map_err(|_| "GeneralizedTime is not ASCII".to_owned())?;
    if s.len() != 15 || !s.ends_with('Z') || !s[..14].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "GeneralizedTime {:?} is not YYYYMMDDHHMMSSZ",
            crate::sector::truncate(s)
        ));
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[8..10],
        &s[10..12],
        &s[12..14]
    );
    time::OffsetDateTime::parse(&rfc, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("GeneralizedTime {s:?} is not a valid time"))
}

/// The one envelope of a signed statement (trust assertions and trust
/// snapshots): `SEQUENCE { body, signature OCTET STRING, SEQUENCE OF
/// Certificate }`, with the body kept byte for byte as signed.
#[derive(Debug)]
pub(crate) struct SignedEnvelope {
    pub(crate) body: Vec<u8>,
    pub(crate) signature: Vec<u8>,
    pub(crate) chain: Vec<Vec<u8>>,
}

/// At most this many certificates in a signer chain (leaf, issuers, root).
pub(crate) const MAX_SIGNER_CHAIN: usize = 8;
const TAG_OCTET_STRING: u8 = 0x04;

impl SignedEnvelope {
    pub(crate) fn to_der(body: &[u8], signature: &[u8], chain: &[impl AsRef<[u8]>]) -> Vec<u8> {
        let mut inner = Vec::with_capacity(body.len() + 2048);
        inner.extend_from_slice(body);
        write_tlv(&mut inner, TAG_OCTET_STRING, signature);
        let mut certs = Vec::with_capacity(chain.iter().map(|c| c.as_ref().len()).sum());
        for c in chain {
            certs.extend_from_slice(c.as_ref());
        }
        write_tlv(&mut inner, TAG_SEQUENCE, &certs);
        let mut out = Vec::with_capacity(inner.len() + 6);
        write_tlv(&mut out, TAG_SEQUENCE, &inner);
        out
    }

    /// Strict decoding; errors name `what` ("signed snapshot", ...).
    pub(crate) fn from_der(input: &[u8], what: &str) -> Result<Self, String> {
        let mut outer = Reader::new(input);
        let inner = outer.read(TAG_SEQUENCE)?;
        if !outer.is_empty() {
            return Err(format!("trailing bytes after the {what}"));
        }
        let mut r = Reader::new(inner);
        let body = r.read_tlv(TAG_SEQUENCE)?.to_vec();
        let signature = r.read(TAG_OCTET_STRING)?.to_vec();
        let mut certs = Reader::new(r.read(TAG_SEQUENCE)?);
        let mut chain = Vec::new();
        while !certs.is_empty() {
            if chain.len() >= MAX_SIGNER_CHAIN {
                return Err(format!(
                    "signer chain longer than {MAX_SIGNER_CHAIN} certificates"
                ));
            }
            chain.push(certs.read_tlv(TAG_SEQUENCE)?.to_vec());
        }
        if !r.is_empty() {
            return Err(format!("trailing bytes inside the {what}"));
        }
        Ok(Self {
            body,
            signature,
            chain,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let mut out = Vec::new();
            write_tlv(&mut out, TAG_UTF8, &vec![b'a'; len]);
            let mut r = Reader::new(&out);
            assert_eq!(r.read(TAG_UTF8).unwrap().len(), len);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn integers_are_minimal() {
        for v in [0u64, 1, 127, 128, 255, 256, u64::MAX] {
            let mut out = Vec::new();
            write_small_uint(&mut out, TAG_INTEGER, v);
            assert_eq!(Reader::new(&out).read_small_uint(TAG_INTEGER).unwrap(), v);
        }
        assert!(
            Reader::new(&[2, 2, 0, 1])
                .read_small_uint(TAG_INTEGER)
                .is_err()
        );
        assert!(
            Reader::new(&[2, 1, 0xff])
                .read_small_uint(TAG_INTEGER)
                .is_err()
        );
        assert!(Reader::new(&[2, 0]).read_small_uint(TAG_INTEGER).is_err());
        assert!(
            Reader::new(&[0x0c, 0x81, 0x05, 0, 0, 0, 0, 0])
                .read(TAG_UTF8)
                .is_err()
        );
        assert!(Reader::new(&[0x0c, 0x80]).read(TAG_UTF8).is_err());
    }
}
