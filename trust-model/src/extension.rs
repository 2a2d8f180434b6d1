//! The trust-level X.509 extension: its OID, its value type and the one
//! DER encoder/decoder for it. The ASN.1 module is published in
//! `docs/trust-level-extension.asn1`; test vectors in `testdata/`.
//!
//! The default OID is [`DEFAULT_OID`],
//! `1.2.840.113556.1.8000.2554.58725.3509.15607.16446.39834.7259910.13731153`:
//! Microsoft's GUID-derived arc (`1.2.840.113556.1.8000.2554`, unique
//! without registration) followed by the UUID
//! `e5650db5-3cf7-403e-9b9a-6ec706d18551` split into 16/16/16/16/16/24/24-bit
//! arcs, as Microsoft's published generator does. Every arc is below 2^31,
//! so every X.509 stack (Go's `crypto/x509`, pkilint, Java, .NET) parses it.
//! An operator with its own IANA Private Enterprise Number can choose
//! another one in `pki.toml` (`[extensions] trust_level_oid`); components
//! then match on the [`ExtensionOid`] they are configured with.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::der::{self, Reader};
use crate::{ModelError, SectorName, TrustLevel};

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

/// What a certificate is for. Carried in every certificate trustca issues,
/// so a relying party (and our own servers) can tell a device certificate
/// from a credential of a manufacturer or an operator without guessing from
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CertificateKind {
    /// A device's long-term (enrollment) certificate.
    LongTerm,
    /// A V2X pseudonym certificate: no identity, rotates.
    Pseudonym,
    /// A manufacturer's credential for enrolling devices.
    Manufacturer,
    /// A trustca service (TLS server, trust responder, audit signer).
    Service,
    /// An operator's credential: changes trust, revokes.
    Operator,
    /// An auditor's credential: read-only.
    Auditor,
    /// A gateway or SOC credential: reports anomalies.
    Gateway,
    /// A sector sub-CA certificate.
    SectorCa,
    /// A certification body's credential: registers and withdraws model
    /// evaluations under the schemes named in the certificate.
    CertificationBody,
    /// A V2X registration authority's credential: the only caller the
    /// separated pseudonym CA and linkage authorities serve.
    RegistrationAuthority,
    /// The TLS certificate of a separated V2X authority that only serves
    /// (pseudonym CA, linkage authority): it calls no trustca RPC.
    V2xAuthority,
}

impl CertificateKind {
    const ALL: [CertificateKind; 11] = [
        Self::LongTerm,
        Self::Pseudonym,
        Self::Manufacturer,
        Self::Service,
        Self::Operator,
        Self::Auditor,
        Self::Gateway,
        Self::SectorCa,
        Self::CertificationBody,
        Self::RegistrationAuthority,
        Self::V2xAuthority,
    ];

    fn code(self) -> u64 {
        match self {
            Self::LongTerm => 0,
            Self::Pseudonym => 1,
            Self::Manufacturer => 2,
            Self::Service => 3,
            Self::Operator => 4,
            Self::Auditor => 5,
            Self::Gateway => 6,
            Self::SectorCa => 7,
            Self::CertificationBody => 8,
            Self::RegistrationAuthority => 9,
            Self::V2xAuthority => 10,
        }
    }

    fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Kinds that describe a device and so must carry a level.
    pub fn is_device(self) -> bool {
        matches!(self, Self::LongTerm | Self::Pseudonym)
    }

    /// The kebab-case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LongTerm => "long-term",
            Self::Pseudonym => "pseudonym",
            Self::Manufacturer => "manufacturer",
            Self::Service => "service",
            Self::Operator => "operator",
            Self::Auditor => "auditor",
            Self::Gateway => "gateway",
            Self::SectorCa => "sector-ca",
            Self::CertificationBody => "certification-body",
            Self::RegistrationAuthority => "registration-authority",
            Self::V2xAuthority => "v2x-authority",
        }
    }

    /// The name with its indefinite article, for sentences: "an operator",
    /// "a gateway".
    pub fn with_article(self) -> String {
        let name = self.as_str();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }
}

/// Which evidence gave a device its level, as recorded in the certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EvaluationBasis {
    /// The evidence type, e.g. `evaluation`, `hardware-root-of-trust`.
    pub evidence: String,
    /// The scheme for evaluations (e.g. `common-criteria`), else empty.
    pub scheme: String,
    /// The result or value, e.g. `EAL4+`, `tpm2`.
    pub result: String,
    /// When the evaluation was made, if the evidence is dated.
    #[serde(with = "time::serde::rfc3339::option")]
    pub evaluated_at: Option<OffsetDateTime>,
    /// Set when the CA verified this evidence itself rather than taking it
    /// as declared or registered: the attestation format, e.g.
    /// `tpm2-certify-creation` (DER `[0] IMPLICIT UTF8String`, added
    /// 2026-12; absent in every older certificate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
}

impl EvaluationBasis {
    /// `attested`, or `declared` for evidence the CA did not verify itself
    /// (a certification body's registration is named by `evidence`).
    pub fn basis_kind(&self) -> &'static str {
        if self.attestation.is_some() {
            "attested"
        } else {
            "declared"
        }
    }
}

/// The decoded value of the trust-level extension.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TrustLevelExtension {
    /// What the certificate is for.
    pub kind: CertificateKind,
    /// The sector of the certificate (the issuing sub-CA's sector).
    pub sector: SectorName,
    /// The device's level; present exactly for device kinds.
    pub level: Option<TrustLevel>,
    /// The version of the sector policy that was applied.
    pub policy_version: String,
    /// The evidence that gave the level (empty for non-device kinds).
    pub basis: Vec<EvaluationBasis>,
    /// For credentials: the sectors the holder may act for.
    pub authorized_sectors: Vec<SectorName>,
    /// For certification bodies (only, and then at least one): the
    /// evaluation schemes the holder may register evaluations under.
    pub permitted_schemes: Vec<String>,
}

const VERSION: u64 = 1;
const MAX_TEXT: usize = 128;
const MAX_LIST: usize = 16;
const MAX_ATTESTATION: usize = 64;
/// `attestation [0] IMPLICIT UTF8String` in an `EvaluationBasis`.
const TAG_ATTESTATION: u8 = 0x80;

impl TrustLevelExtension {
    /// Checks the invariants the decoder enforces, so nothing is encoded
    /// that would not decode.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |m: String| Err(ModelError::MalformedExtension(m));
        if self.kind.is_device() != self.level.is_some() {
            return bad(format!(
                "kind {} {} a level",
                self.kind.as_str(),
                if self.kind.is_device() {
                    "requires"
                } else {
                    "must not carry"
                }
            ));
        }
        if self.policy_version.is_empty() || self.policy_version.len() > MAX_TEXT {
            return bad("policy version must be 1-128 bytes".to_owned());
        }
        if (self.kind == CertificateKind::CertificationBody) == self.permitted_schemes.is_empty() {
            return bad(format!(
                "permittedSchemes is {} for kind {}",
                if self.permitted_schemes.is_empty() {
                    "required"
                } else {
                    "not allowed"
                },
                self.kind.as_str()
            ));
        }
        if self
            .permitted_schemes
            .iter()
            .any(|s| s.is_empty() || s.len() > 64)
        {
            return bad("permitted schemes must be 1-64 bytes".to_owned());
        }
        if self.basis.len() > MAX_LIST
            || self.authorized_sectors.len() > MAX_LIST
            || self.permitted_schemes.len() > MAX_LIST
        {
            return bad(format!("lists are limited to {MAX_LIST} entries"));
        }
        for b in &self.basis {
            if b.evidence.is_empty()
                || b.evidence.len() > MAX_TEXT
                || b.scheme.len() > MAX_TEXT
                || b.result.len() > MAX_TEXT
                || b.attestation
                    .as_ref()
                    .is_some_and(|a| a.is_empty() || a.len() > MAX_ATTESTATION)
            {
                return bad(
                    "basis text fields must be 1-128 bytes (scheme may be empty), an attestation format 1-64"
                        .to_owned(),
                );
            }
        }
        Ok(())
    }

    /// DER encoding of the extension value (the OCTET STRING's contents).
    pub fn to_der(&self) -> Result<Vec<u8>, ModelError> {
        self.validate()?;
        let mut body = Vec::with_capacity(128);
        der::write_small_uint(&mut body, der::TAG_INTEGER, VERSION);
        der::write_small_uint(&mut body, der::TAG_ENUMERATED, self.kind.code());
        der::write_tlv(&mut body, der::TAG_UTF8, self.sector.as_str().as_bytes());
        if let Some(level) = self.level {
            der::write_small_uint(&mut body, der::TAG_INTEGER, level.get() as u64);
        }
        der::write_tlv(&mut body, der::TAG_UTF8, self.policy_version.as_bytes());
        let mut basis = Vec::new();
        for b in &self.basis {
            let mut item = Vec::new();
            der::write_tlv(&mut item, der::TAG_UTF8, b.evidence.as_bytes());
            der::write_tlv(&mut item, der::TAG_UTF8, b.scheme.as_bytes());
            der::write_tlv(&mut item, der::TAG_UTF8, b.result.as_bytes());
            if let Some(at) = b.evaluated_at {
                der::write_tlv(
                    &mut item,
                    der::TAG_GENERALIZED_TIME,
                    &der::generalized_time(at)?,
                );
            }
            if let Some(format) = &b.attestation {
                der::write_tlv(&mut item, TAG_ATTESTATION, format.as_bytes());
            }
            der::write_tlv(&mut basis, der::TAG_SEQUENCE, &item);
        }
        der::write_tlv(&mut body, der::TAG_SEQUENCE, &basis);
        if !self.authorized_sectors.is_empty() {
            let mut list = Vec::new();
            for s in &self.authorized_sectors {
                der::write_tlv(&mut list, der::TAG_UTF8, s.as_str().as_bytes());
            }
            der::write_tlv(&mut body, der::TAG_CONTEXT_0_CONSTRUCTED, &list);
        }
        if !self.permitted_schemes.is_empty() {
            let mut list = Vec::new();
            for s in &self.permitted_schemes {
                der::write_tlv(&mut list, der::TAG_UTF8, s.as_bytes());
            }
            der::write_tlv(&mut body, der::TAG_CONTEXT_1_CONSTRUCTED, &list);
        }
        let mut out = Vec::with_capacity(body.len() + 4);
        der::write_tlv(&mut out, der::TAG_SEQUENCE, &body);
        Ok(out)
    }

    /// Decodes an extension value, refusing anything that is not the
    /// canonical encoding of a valid value (trailing bytes included).
    pub fn from_der(input: &[u8]) -> Result<Self, ModelError> {
        decode(input).map_err(ModelError::MalformedExtension)
    }
}

fn decode(input: &[u8]) -> Result<TrustLevelExtension, String> {
    let mut outer = Reader::new(input);
    let body = outer.read(der::TAG_SEQUENCE)?;
    if !outer.is_empty() {
        return Err("trailing bytes after the extension".to_owned());
    }
    let mut r = Reader::new(body);
    let version = r.read_small_uint(der::TAG_INTEGER)?;
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    let code = r.read_small_uint(der::TAG_ENUMERATED)?;
    let kind =
        CertificateKind::from_code(code).ok_or(format!("unknown certificate kind {code}"))?;
    let sector = SectorName::new(r.read_utf8()?).map_err(|e| e.to_string())?;
    let level = if r.peek_tag() == Some(der::TAG_INTEGER) {
        let v = r.read_small_uint(der::TAG_INTEGER)?;
        Some(TrustLevel::new(v.min(i64::MAX as u64) as i64).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let policy_version = r.read_utf8()?.to_owned();
    let mut basis_reader = Reader::new(r.read(der::TAG_SEQUENCE)?);
    let mut basis = Vec::new();
    while !basis_reader.is_empty() {
        let mut item = Reader::new(basis_reader.read(der::TAG_SEQUENCE)?);
        let evidence = item.read_utf8()?.to_owned();
        let scheme = item.read_utf8()?.to_owned();
        let result = item.read_utf8()?.to_owned();
        let evaluated_at = if item.peek_tag() == Some(der::TAG_GENERALIZED_TIME) {
            Some(der::parse_generalized_time(
                item.read(der::TAG_GENERALIZED_TIME)?,
            )?)
        } else {
            None
        };
        let attestation = if item.peek_tag() == Some(TAG_ATTESTATION) {
            let raw = item.read(TAG_ATTESTATION)?;
            Some(
                std::str::from_utf8(raw)
                    .map_err(|_| "attestation format is not UTF-8".to_owned())?
                    .to_owned(),
            )
        } else {
            None
        };
        if !item.is_empty() {
            return Err("trailing bytes in an evaluation basis".to_owned());
        }
        basis.push(EvaluationBasis {
            evidence,
            scheme,
            result,
            evaluated_at,
            attestation,
        });
    }
    let mut authorized_sectors = Vec::new();
    if r.peek_tag() == Some(der::TAG_CONTEXT_0_CONSTRUCTED) {
        let mut list = Reader::new(r.read(der::TAG_CONTEXT_0_CONSTRUCTED)?);
        while !list.is_empty() {
            authorized_sectors.push(SectorName::new(list.read_utf8()?).map_err(|e| e.to_string())?);
        }
        if authorized_sectors.is_empty() {
            return Err("authorizedSectors present but empty".to_owned());
        }
    }
    let mut permitted_schemes = Vec::new();
    if r.peek_tag() == Some(der::TAG_CONTEXT_1_CONSTRUCTED) {
        let mut list = Reader::new(r.read(der::TAG_CONTEXT_1_CONSTRUCTED)?);
        while !list.is_empty() {
            permitted_schemes.push(list.read_utf8()?.to_owned());
        }
        if permitted_schemes.is_empty() {
            return Err("permittedSchemes present but empty".to_owned());
        }
    }
    if !r.is_empty() {
        return Err("trailing bytes inside the extension".to_owned());
    }
    let ext = TrustLevelExtension {
        kind,
        sector,
        level,
        policy_version,
        basis,
        authorized_sectors,
        permitted_schemes,
    };
    ext.validate().map_err(|e| match e {
        ModelError::MalformedExtension(m) => m,
        other => other.to_string(),
    })?;
    Ok(ext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn device_ext() -> TrustLevelExtension {
        TrustLevelExtension {
            kind: CertificateKind::LongTerm,
            sector: SectorName::new("automotive").unwrap(),
            level: Some(TrustLevel::new(4).unwrap()),
            policy_version: "2026.11-1".to_owned(),
            basis: vec![EvaluationBasis {
                evidence: "evaluation".to_owned(),
                scheme: "iso-sae-21434".to_owned(),
                result: "CAL3".to_owned(),
                evaluated_at: Some(time::macros::datetime!(2026-03-01 0:00 UTC)),
                attestation: None,
            }],
            authorized_sectors: vec![],
            permitted_schemes: vec![],
        }
    }

    #[test]
    fn default_oid_is_the_uuid_on_the_microsoft_arc() {
        let oid = ExtensionOid::default();
        assert_eq!(oid.to_string(), DEFAULT_OID);
        // The same UUID as the former 2.25 arc, split 16/16/16/16/16/24/24.
        let uuid: u128 = 304917911047948023692104962459481245009;
        let mut shift = 128;
        let mut arcs = vec![1u64, 2, 840, 113556, 1, 8000, 2554];
        for width in [16, 16, 16, 16, 16, 24, 24] {
            shift -= width;
            arcs.push(((uuid >> shift) & ((1u128 << width) - 1)) as u64);
        }
        assert_eq!(oid.arcs(), &arcs[..]);
        assert!(oid.arcs().iter().all(|a| *a <= MAX_ARC));
        // The published DER (docs/trust-level-extension.asn1).
        let vector = include_str!("../testdata/trust-level-extension/oid.hex");
        let tlv = hex::decode(vector.trim()).unwrap();
        assert_eq!(tlv[0], 0x06);
        assert_eq!(tlv[1] as usize, tlv.len() - 2);
        assert_eq!(oid.der_content(), &tlv[2..]);
    }

    #[test]
    fn oid_encoding_matches_known_oids() {
        // id-kp-OCSPSigning and an arc needing five base-128 groups.
        let ocsp = ExtensionOid::parse("1.3.6.1.5.5.7.3.9").unwrap();
        assert_eq!(
            ocsp.der_content(),
            &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09]
        );
        let big = ExtensionOid::parse("1.3.6.1.4.1.2147483647").unwrap();
        assert_eq!(&big.der_content()[5..], &[0x87, 0xff, 0xff, 0xff, 0x7f]);
        let two = ExtensionOid::parse("2.999.3").unwrap();
        assert_eq!(two.der_content(), &[0x88, 0x37, 0x03]);
    }

    #[test]
    fn oid_validation_refuses_what_verifiers_cannot_parse() {
        for (bad, why) in [
            ("2.25.304917911047948023692104962459481245009", "2^31"),
            ("1.3.6.1.4.1.2147483648", "2^31"),
            ("1.3.6.1.4.1.4294967296", "2^31"),
            ("", "dotted"),
            ("1..3", "dotted"),
            ("1.3.6.1.4.1.01", "leading zeros"),
            ("1.3.x", "dotted"),
            (" 1.3.6", "dotted"),
            ("1.3", "three arcs"),
            ("3.1.1", "first arc"),
            ("1.40.1", "first arc"),
            ("2.2147483600.1", "31 bits"),
            ("2.5.29.99", "standard"),
            ("1.3.6.1.5.5.7.1.99", "standard"),
        ] {
            let err = ExtensionOid::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn round_trip_device() {
        let ext = device_ext();
        let der = ext.to_der().unwrap();
        assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
    }

    /// Issue 25: an attested basis item carries its format in `[0]`; an
    /// item without it encodes exactly as before, so certificates issued
    /// before decode unchanged and unattested ones keep their bytes.
    #[test]
    fn attested_basis_round_trips_and_old_encodings_are_unchanged() {
        let before = device_ext().to_der().unwrap();
        let mut ext = device_ext();
        ext.basis.push(EvaluationBasis {
            evidence: "hardware-root-of-trust".to_owned(),
            scheme: String::new(),
            result: "tpm2".to_owned(),
            evaluated_at: None,
            attestation: Some("tpm2-certify-creation".to_owned()),
        });
        let der = ext.to_der().unwrap();
        let back = TrustLevelExtension::from_der(&der).unwrap();
        assert_eq!(back, ext);
        assert_eq!(back.basis[1].basis_kind(), "attested");
        assert_eq!(back.basis[0].basis_kind(), "declared");
        // The attested item ends with 80 15 "tpm2-certify-creation".
        let tail = [&[0x80u8, 21][..], b"tpm2-certify-creation"].concat();
        assert!(der.windows(tail.len()).any(|w| w == tail));
        // Without attestation: the very encoding of the old codec.
        ext.basis.pop();
        assert_eq!(ext.to_der().unwrap(), before);
        // The published device vector (issued before the field) decodes.
        let vector = include_str!("../testdata/trust-level-extension/long-term-lv4.hex");
        let v = TrustLevelExtension::from_der(&hex::decode(vector.trim()).unwrap()).unwrap();
        assert!(v.basis.iter().all(|b| b.attestation.is_none()));
        // An empty format is refused on encoding and on decoding.
        ext.basis[0].attestation = Some(String::new());
        assert!(ext.to_der().is_err());
        // (The decoder ends with the same validation, so an empty [0]
        // does not decode either.)
    }

    #[test]
    fn round_trip_credential() {
        let ext = TrustLevelExtension {
            kind: CertificateKind::Manufacturer,
            sector: SectorName::new("hems").unwrap(),
            level: None,
            policy_version: "p1".to_owned(),
            basis: vec![],
            authorized_sectors: vec![
                SectorName::new("hems").unwrap(),
                SectorName::new("automotive").unwrap(),
            ],
            permitted_schemes: vec![],
        };
        let der = ext.to_der().unwrap();
        assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
    }

    fn certification_body_ext() -> TrustLevelExtension {
        TrustLevelExtension {
            kind: CertificateKind::CertificationBody,
            sector: SectorName::new("automotive").unwrap(),
            level: None,
            policy_version: "2026.11-1".to_owned(),
            basis: vec![],
            authorized_sectors: vec![SectorName::new("automotive").unwrap()],
            permitted_schemes: vec!["iso-sae-21434".to_owned(), "unece-r155".to_owned()],
        }
    }

    #[test]
    fn certification_body_round_trips_and_matches_the_published_vector() {
        let ext = certification_body_ext();
        let der = ext.to_der().unwrap();
        assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
        let hex_text = include_str!("../testdata/trust-level-extension/certification-body.hex");
        assert_eq!(hex::encode(&der), hex_text.trim());
    }

    #[test]
    fn permitted_schemes_belong_to_certification_bodies_only() {
        let mut no_schemes = certification_body_ext();
        no_schemes.permitted_schemes.clear();
        let err = no_schemes.to_der().unwrap_err().to_string();
        assert!(err.contains("permittedSchemes is required"), "{err}");
        let mut device = device_ext();
        device.permitted_schemes = vec!["common-criteria".to_owned()];
        assert!(device.to_der().is_err());
        // Hand-assembled: a device extension with a [1] list appended.
        let mut der = device_ext().to_der().unwrap();
        der.extend_from_slice(&[0xa1, 0x05, 0x0c, 0x03, b'a', b'b', b'c']);
        der[1] += 7;
        let err = TrustLevelExtension::from_der(&der).unwrap_err().to_string();
        assert!(err.contains("not allowed"), "{err}");
        // An empty [1] list is not canonical.
        let mut der = certification_body_ext().to_der().unwrap();
        let at = der.iter().rposition(|b| *b == 0xa1).unwrap();
        der.truncate(at);
        der.extend_from_slice(&[0xa1, 0x00]);
        der[1] = (der.len() - 2) as u8;
        let err = TrustLevelExtension::from_der(&der).unwrap_err().to_string();
        assert!(err.contains("present but empty"), "{err}");
    }

    #[test]
    fn published_vector_decodes() {
        // testdata/trust-level-extension/long-term-lv4.hex is the published vector.
        let hex_text = include_str!("../testdata/trust-level-extension/long-term-lv4.hex");
        let der = hex::decode(hex_text.trim()).unwrap();
        assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), device_ext());
        assert_eq!(device_ext().to_der().unwrap(), der);
    }

    #[test]
    fn rejects_truncated() {
        let der = device_ext().to_der().unwrap();
        for cut in 0..der.len() {
            assert!(
                TrustLevelExtension::from_der(&der[..cut]).is_err(),
                "accepted {cut} bytes"
            );
        }
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut der = device_ext().to_der().unwrap();
        der.push(0);
        let err = TrustLevelExtension::from_der(&der).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }

    #[test]
    fn rejects_wrong_tag() {
        let mut der = device_ext().to_der().unwrap();
        der[0] = 0x31; // SET instead of SEQUENCE
        assert!(
            TrustLevelExtension::from_der(&der)
                .unwrap_err()
                .to_string()
                .contains("wrong tag")
        );
    }

    fn with_level_byte(level: u8) -> Vec<u8> {
        let der = device_ext().to_der().unwrap();
        // version(3) + kind(3) + sector(2+10) precede the level INTEGER 02 01 04.
        let pos = 2 + 3 + 3 + 12;
        assert_eq!(&der[pos..pos + 3], &[0x02, 0x01, 0x04]);
        let mut der = der;
        der[pos + 2] = level;
        der
    }

    #[test]
    fn rejects_level_0_and_6() {
        for level in [0u8, 6] {
            let err = TrustLevelExtension::from_der(&with_level_byte(level)).unwrap_err();
            assert!(err.to_string().contains("out of range"), "{err}");
        }
        assert!(TrustLevelExtension::from_der(&with_level_byte(5)).is_ok());
    }

    #[test]
    fn rejects_device_without_level_and_credential_with_level() {
        let mut ext = device_ext();
        ext.level = None;
        assert!(ext.to_der().is_err());
        let mut ext = device_ext();
        ext.kind = CertificateKind::Operator;
        assert!(ext.to_der().is_err());
    }

    #[test]
    fn rejects_unknown_kind_and_version() {
        let der = device_ext().to_der().unwrap();
        let mut bad_kind = der.clone();
        assert_eq!(&bad_kind[5..8], &[0x0a, 0x01, 0x00]);
        bad_kind[7] = 99;
        assert!(
            TrustLevelExtension::from_der(&bad_kind)
                .unwrap_err()
                .to_string()
                .contains("kind")
        );
        let mut bad_version = der;
        bad_version[4] = 2;
        assert!(
            TrustLevelExtension::from_der(&bad_version)
                .unwrap_err()
                .to_string()
                .contains("version")
        );
    }

    proptest! {
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = TrustLevelExtension::from_der(&bytes);
        }

        #[test]
        fn round_trips(level in 1i64..=5, version in "[a-z0-9.-]{1,20}", result in "[A-Z0-9+]{0,10}", format in proptest::option::of("[a-z0-9-]{1,64}")) {
            let mut ext = device_ext();
            ext.basis[0].attestation = format;
            ext.level = Some(TrustLevel::new(level).unwrap());
            ext.policy_version = version;
            ext.basis[0].result = result;
            let der = ext.to_der().unwrap();
            prop_assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
        }
    }
}
