//! The trust-level extension's OBJECT IDENTIFIER: the default, the
//! operator's choice from `pki.toml`, and the rules every arc must meet.

use super::*;

/// The default OID of the trust-level extension, dotted.
pub const DEFAULT_OID: &str =
    "1.2.840.113556.1.8000.2554.58725.3509.15607.16446.39834.7259910.13731153";

/// The largest arc any trust-level OID may have: 2^31 - 1. Go's
/// `crypto/x509` and pkilint refuse certificates with larger arcs.
pub const MAX_ARC: u64 = (1 << 31) - 1;

/// Standard extension arcs an operator must not reuse for ours: id-ce
/// (2.5.29) and id-pe (1.3.6.1.5.5.7.1).
const RESERVED_PREFIXES: [&[u64]; 2] = [&[2, 5, 29], &[1, 3, 6, 1, 5, 5, 7, 1]];

/// A validated OBJECT IDENTIFIER for the trust-level extension: at least
/// three arcs, each below 2^31 (so is `40 * first + second`), outside the
/// standard extension arcs. Parsed from its dotted form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionOid {
    arcs: Vec<u64>,
    content: Vec<u8>,
}

impl ExtensionOid {
    /// Parses and validates a dotted OID such as `1.3.6.1.4.1.99999.1`.
    pub fn parse(dotted: &str) -> Result<Self, ModelError> {
        let bad = |reason: String| ModelError::InvalidOid {
            value: crate::sector::truncate(dotted),
            reason,
        };
        let mut arcs = Vec::new();
        for part in dotted.split('.') {
            if part.is_empty()
                || !part.bytes().all(|b| b.is_ascii_digit())
                || (part.len() > 1 && part.starts_with('0'))
            {
                return Err(bad(
                    "write it in dotted decimal, e.g. 1.3.6.1.4.1.99999.1 (no empty arcs, no leading zeros)"
                        .to_owned(),
                ));
            }
            let arc: u64 = part
                .parse()
                .ok()
                .filter(|a| *a <= MAX_ARC)
                .ok_or_else(|| {
                    bad(format!(
                        "arc {part} is larger than 2^31-1; Go's crypto/x509 and pkilint reject such certificates"
                    ))
                })?;
            arcs.push(arc);
        }
        if arcs.len() < 3 {
            return Err(bad("an extension OID needs at least three arcs".to_owned()));
        }
        if arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) {
            return Err(bad(
                "the first arc must be 0, 1 or 2, and the second below 40 unless the first is 2"
                    .to_owned(),
            ));
        }
        if arcs[0] * 40 + arcs[1] > MAX_ARC {
            return Err(bad(
                "the second arc is too large to encode in 31 bits".to_owned()
            ));
        }
        if RESERVED_PREFIXES.iter().any(|p| arcs.starts_with(p)) {
            return Err(bad(
                "it lies under a standard X.509 extension arc (2.5.29 or 1.3.6.1.5.5.7.1)"
                    .to_owned(),
            ));
        }
        let content = encode_oid_content(&arcs);
        Ok(Self { arcs, content })
    }

    /// The arcs, for rcgen's `CustomExtension::from_oid_content`.
    pub fn arcs(&self) -> &[u64] {
        &self.arcs
    }

    /// The DER content octets (what follows tag 0x06 and the length), as
    /// x509-parser's `Oid::as_bytes` returns them.
    pub fn der_content(&self) -> &[u8] {
        &self.content
    }

    /// Whether `content` (an OID's DER content octets) is this OID.
    pub fn matches(&self, content: &[u8]) -> bool {
        self.content == content
    }
}

impl Default for ExtensionOid {
    fn default() -> Self {
        #[allow(clippy::expect_used)] // a constant, checked by a unit test
        Self::parse(DEFAULT_OID).expect("the default OID is valid")
    }
}

impl fmt::Display for ExtensionOid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arc) in self.arcs.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
        }
        Ok(())
    }
}

impl FromStr for ExtensionOid {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ExtensionOid {
    type Error = ModelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl<'de> serde::Deserialize<'de> for ExtensionOid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for ExtensionOid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// DER content octets of an OID with valid arcs (base-128, big-endian).
fn encode_oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(arcs.len() * 3);
    let mut push = |v: u64| {
        let mut groups = [0u8; 10];
        let mut n = 0;
        let mut v = v;
        loop {
            groups[n] = (v & 0x7f) as u8 | if n > 0 { 0x80 } else { 0 };
            n += 1;
            v >>= 7;
            if v == 0 {
                break;
            }
        }
        out.extend(groups[..n].iter().rev());
    };
    push(arcs[0] * 40 + arcs[1]);
    for arc in &arcs[2..] {
        push(*arc);
    }
    out
}
