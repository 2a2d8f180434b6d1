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

mod oid;
#[cfg(test)]
mod tests;

pub use oid::{DEFAULT_OID, ExtensionOid, MAX_ARC};

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
