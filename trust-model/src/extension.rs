//! The trust-level X.509 extension: its OID, its value type and the one
//! DER encoder/decoder for it. The ASN.1 module is published in
//! `docs/trust-level-extension.asn1`; test vectors in `testdata/`.
//!
//! The OID is `2.25.304917911047948023692104962459481245009` (a UUID OID,
//! RFC 4122 §/ITU-T X.667, so no registration is needed). Its last arc is 128
//! bits wide, which neither rcgen (u64 arcs) nor x509-parser's default OID
//! printing handle, so this module works with the OID's encoded bytes:
//! decoders match extensions on [`OID_DER_CONTENT`], and the issuer writes
//! a same-length placeholder OID through rcgen and swaps in the real bytes
//! before the certificate is signed (see [`PLACEHOLDER_OID_ARCS`]).

use time::OffsetDateTime;

use crate::der::{self, Reader};
use crate::{ModelError, SectorName, TrustLevel};

/// The OID in dotted form, for documentation and display.
pub const OID_DOTTED: &str = "2.25.304917911047948023692104962459481245009";

/// The content octets of the OID (what follows tag 0x06 and the length).
pub const OID_DER_CONTENT: [u8; 20] = [
    0x69, 0x83, 0xca, 0xe5, 0x86, 0xed, 0xa7, 0xcf, 0xba, 0x80, 0xfd, 0x9b, 0xcd, 0x9b, 0xd8, 0xf0,
    0xb6, 0xc6, 0x8a, 0x51,
];

/// u64 arcs of a placeholder OID whose encoding has exactly the length of
/// the real one (`2.25` + a 9-byte arc + a 10-byte arc = 20 bytes). An
/// issuer using rcgen writes these, then replaces the placeholder's content
/// with [`OID_DER_CONTENT`] in the to-be-signed bytes and in the output.
pub const PLACEHOLDER_OID_ARCS: [u64; 4] = [2, 25, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];

/// The DER content octets of [`PLACEHOLDER_OID_ARCS`].
pub fn placeholder_oid_content() -> Vec<u8> {
    let mut out = vec![(PLACEHOLDER_OID_ARCS[0] * 40 + PLACEHOLDER_OID_ARCS[1]) as u8];
    for arc in &PLACEHOLDER_OID_ARCS[2..] {
        let mut groups = Vec::new();
        let mut v = *arc;
        groups.push((v & 0x7f) as u8);
        v >>= 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        groups.reverse();
        out.extend_from_slice(&groups);
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
}

impl CertificateKind {
    const ALL: [CertificateKind; 8] = [
        Self::LongTerm,
        Self::Pseudonym,
        Self::Manufacturer,
        Self::Service,
        Self::Operator,
        Self::Auditor,
        Self::Gateway,
        Self::SectorCa,
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
}

const VERSION: u64 = 1;
const MAX_TEXT: usize = 128;
const MAX_LIST: usize = 16;

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
        if self.basis.len() > MAX_LIST || self.authorized_sectors.len() > MAX_LIST {
            return bad(format!("lists are limited to {MAX_LIST} entries"));
        }
        for b in &self.basis {
            if b.evidence.is_empty()
                || b.evidence.len() > MAX_TEXT
                || b.scheme.len() > MAX_TEXT
                || b.result.len() > MAX_TEXT
            {
                return bad(
                    "basis text fields must be 1-128 bytes (scheme may be empty)".to_owned(),
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
        let evaluated_at = if item.is_empty() {
            None
        } else {
            Some(der::parse_generalized_time(
                item.read(der::TAG_GENERALIZED_TIME)?,
            )?)
        };
        if !item.is_empty() {
            return Err("trailing bytes in an evaluation basis".to_owned());
        }
        basis.push(EvaluationBasis {
            evidence,
            scheme,
            result,
            evaluated_at,
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
            }],
            authorized_sectors: vec![],
        }
    }

    #[test]
    fn placeholder_has_the_real_oid_length() {
        assert_eq!(placeholder_oid_content().len(), OID_DER_CONTENT.len());
        assert_ne!(placeholder_oid_content(), OID_DER_CONTENT.to_vec());
    }

    #[test]
    fn oid_bytes_match_the_dotted_form() {
        // Re-derive the content octets from the decimal arc independently.
        let arc: u128 = OID_DOTTED.rsplit('.').next().unwrap().parse().unwrap();
        let mut groups = vec![(arc & 0x7f) as u8];
        let mut v = arc >> 7;
        while v > 0 {
            groups.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        groups.push(2 * 40 + 25);
        groups.reverse();
        assert_eq!(groups, OID_DER_CONTENT.to_vec());
    }

    #[test]
    fn round_trip_device() {
        let ext = device_ext();
        let der = ext.to_der().unwrap();
        assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
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
        };
        let der = ext.to_der().unwrap();
        assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
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
        fn round_trips(level in 1i64..=5, version in "[a-z0-9.-]{1,20}", result in "[A-Z0-9+]{0,10}") {
            let mut ext = device_ext();
            ext.level = Some(TrustLevel::new(level).unwrap());
            ext.policy_version = version;
            ext.basis[0].result = result;
            let der = ext.to_der().unwrap();
            prop_assert_eq!(TrustLevelExtension::from_der(&der).unwrap(), ext);
        }
    }
}
