//! Evidence a manufacturer declares about a device: third-party evaluations,
//! the hardware root of trust, secure-update support and the end of support.
//! Parsing is strict: an unknown evidence type, an unknown value or a
//! duplicate is an error, never silently ignored.

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::{EvidenceKind, ModelError};

/// One evidence item as it arrives on the wire or from an evidence file
/// (an unknown type is refused where it is read, naming the known ones).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceItem {
    /// What the item declares.
    #[serde(rename = "type")]
    pub kind: EvidenceKind,
    /// Evaluation scheme (evaluations only).
    #[serde(default)]
    pub scheme: String,
    /// Result or value.
    #[serde(default)]
    pub value: String,
    /// RFC 3339 date or date-time of the evaluation (evaluations only).
    #[serde(default)]
    pub evaluated_at: String,
}

/// A third-party security evaluation of the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Scheme, e.g. `common-criteria`.
    pub scheme: String,
    /// Result, e.g. `EAL4+`.
    pub result: String,
    /// When it was evaluated.
    pub evaluated_at: OffsetDateTime,
}

/// Where the device keeps its keys, weakest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum HardwareRootOfTrust {
    /// Keys in ordinary storage.
    None,
    /// A trusted execution environment.
    Tee,
    /// A secure element.
    SecureElement,
    /// A TPM 2.0.
    Tpm2,
}

impl HardwareRootOfTrust {
    /// Parses the kebab-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "tee" => Self::Tee,
            "secure-element" => Self::SecureElement,
            "tpm2" => Self::Tpm2,
            _ => return None,
        })
    }

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Tee => "tee",
            Self::SecureElement => "secure-element",
            Self::Tpm2 => "tpm2",
        }
    }
}

/// A format of hardware attestation the CA verifies itself. TPM 2.0 key
/// attestation comes first (issue 25); the formats planned next are in
/// `docs/attestation.md`: Android Key Attestation (a certificate chain to
/// Google's roots with the KeyDescription extension), a secure element's
/// attestation certificate (a per-chip certificate from the vendor's CA,
/// over the device key or vouching for it) and IETF RATS EAT tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestationFormat {
    /// `TPM2_Certify` of the key by an AK bound to a certified EK.
    Tpm2Certify,
    /// `TPM2_CertifyCreation`: as above, and the TPM created the key.
    Tpm2CertifyCreation,
}

impl AttestationFormat {
    /// The name recorded in the certificate's basis.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tpm2Certify => "tpm2-certify",
            Self::Tpm2CertifyCreation => "tpm2-certify-creation",
        }
    }

    /// Parses [`AttestationFormat::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tpm2-certify" => Some(Self::Tpm2Certify),
            "tpm2-certify-creation" => Some(Self::Tpm2CertifyCreation),
            _ => None,
        }
    }

    /// The hardware root of trust a verified attestation of this format
    /// proves the key lives in.
    pub fn hardware_root_of_trust(self) -> HardwareRootOfTrust {
        match self {
            Self::Tpm2Certify | Self::Tpm2CertifyCreation => HardwareRootOfTrust::Tpm2,
        }
    }
}

/// A hardware attestation the CA verified for this request's key: the
/// device's hardware root of trust with basis `attested`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    /// How it was proved.
    pub format: AttestationFormat,
}

impl VerifiedAttestation {
    /// The basis item the certificate records for it.
    pub fn basis(&self) -> crate::EvaluationBasis {
        crate::EvaluationBasis {
            evidence: "hardware-root-of-trust".to_owned(),
            scheme: String::new(),
            result: self.format.hardware_root_of_trust().as_str().to_owned(),
            evaluated_at: None,
            attestation: Some(self.format.as_str().to_owned()),
        }
    }
}

/// A device's evidence after parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// Third-party evaluations.
    pub evaluations: Vec<Evaluation>,
    /// The hardware root of trust, if declared.
    pub hardware_root_of_trust: Option<HardwareRootOfTrust>,
    /// Whether the device supports authenticated (secure) updates.
    pub secure_update: Option<bool>,
    /// The date until which the manufacturer supports the device.
    pub supported_until: Option<Date>,
    /// A hardware attestation the CA verified; it takes the place of a
    /// declared hardware root of trust.
    pub attestation: Option<VerifiedAttestation>,
    /// The hardware root of trust is a registered model's: the level rests
    /// on the model's evaluations by certification bodies, so the
    /// sector's cap on declared hardware
    /// (`evidence.declared_hardware_max_level`) does not apply.
    pub hardware_registered: bool,
}

/// At most this many evidence items per device.
pub const MAX_EVIDENCE_ITEMS: usize = 16;

fn invalid(msg: String) -> ModelError {
    ModelError::InvalidEvidence(msg)
}

fn parse_date_or_datetime(field: &str, s: &str) -> Result<OffsetDateTime, ModelError> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    let date = parse_date(field, s)?;
    Ok(date.midnight().assume_utc())
}

fn parse_date(field: &str, s: &str) -> Result<Date, ModelError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt).map_err(|_| {
        invalid(format!(
            "{field} {s:?} is not a date (YYYY-MM-DD) or RFC 3339 time"
        ))
    })
}

impl Evidence {
    /// Parses wire items. Unknown types and values are errors.
    pub fn parse(items: &[EvidenceItem]) -> Result<Self, ModelError> {
        if items.len() > MAX_EVIDENCE_ITEMS {
            return Err(invalid(format!(
                "{} items given, at most {MAX_EVIDENCE_ITEMS} allowed",
                items.len()
            )));
        }
        let mut ev = Evidence::default();
        for item in items {
            let only_value = |name: &str| {
                if !item.scheme.is_empty() || !item.evaluated_at.is_empty() {
                    Err(invalid(format!(
                        "{name} takes only a value, not a scheme or evaluated_at"
                    )))
                } else {
                    Ok(())
                }
            };
            match item.kind {
                EvidenceKind::Evaluation => {
                    if item.scheme.is_empty()
                        || item.value.is_empty()
                        || item.evaluated_at.is_empty()
                    {
                        return Err(invalid(
                            "evaluation needs scheme, value (the result) and evaluated_at"
                                .to_owned(),
                        ));
                    }
                    if item.scheme.len() > 64 || item.value.len() > 64 {
                        return Err(invalid(
                            "evaluation scheme and result are limited to 64 bytes".to_owned(),
                        ));
                    }
                    ev.evaluations.push(Evaluation {
                        scheme: item.scheme.clone(),
                        result: item.value.clone(),
                        evaluated_at: parse_date_or_datetime("evaluated_at", &item.evaluated_at)?,
                    });
                }
                EvidenceKind::HardwareRootOfTrust => {
                    only_value("hardware-root-of-trust")?;
                    let v = HardwareRootOfTrust::parse(&item.value).ok_or_else(|| {
                        invalid(format!(
                            "unknown hardware-root-of-trust {:?}: expected none, tee, secure-element or tpm2",
                            crate::sector::truncate(&item.value)
                        ))
                    })?;
                    if ev.hardware_root_of_trust.replace(v).is_some() {
                        return Err(invalid("hardware-root-of-trust given twice".to_owned()));
                    }
                }
                EvidenceKind::SecureUpdate => {
                    only_value("secure-update")?;
                    let v = match item.value.as_str() {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(invalid(format!(
                                "secure-update must be true or false, not {:?}",
                                crate::sector::truncate(other)
                            )));
                        }
                    };
                    if ev.secure_update.replace(v).is_some() {
                        return Err(invalid("secure-update given twice".to_owned()));
                    }
                }
                EvidenceKind::SupportedUntil => {
                    only_value("supported-until")?;
                    let d = parse_date("supported-until", &item.value)?;
                    if ev.supported_until.replace(d).is_some() {
                        return Err(invalid("supported-until given twice".to_owned()));
                    }
                }
            }
        }
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &str, scheme: &str, value: &str, at: &str) -> EvidenceItem {
        EvidenceItem {
            kind: kind.parse().unwrap(),
            scheme: scheme.into(),
            value: value.into(),
            evaluated_at: at.into(),
        }
    }

    #[test]
    fn parses_all_types() {
        let ev = Evidence::parse(&[
            item("evaluation", "common-criteria", "EAL4+", "2026-01-02"),
            item("hardware-root-of-trust", "", "tpm2", ""),
            item("secure-update", "", "true", ""),
            item("supported-until", "", "2034-12-31", ""),
        ])
        .unwrap();
        assert_eq!(ev.evaluations.len(), 1);
        assert_eq!(ev.hardware_root_of_trust, Some(HardwareRootOfTrust::Tpm2));
        assert_eq!(ev.secure_update, Some(true));
        assert_eq!(ev.supported_until.unwrap().year(), 2034);
    }

    #[test]
    fn rejects_unknown_and_duplicates() {
        // An unknown type is refused where an item is read, from a file or
        // the wire.
        let err = "marketing-claim".parse::<EvidenceKind>().unwrap_err();
        assert!(err.to_string().contains("unknown evidence type"), "{err}");
        let file = r#"{"type": "marketing-claim", "value": "secure"}"#;
        let err = serde_json::from_str::<EvidenceItem>(file).unwrap_err();
        assert!(err.to_string().contains("unknown evidence type"), "{err}");
        assert!(Evidence::parse(&[item("hardware-root-of-trust", "", "magic", "")]).is_err());
        assert!(Evidence::parse(&[item("secure-update", "", "yes", "")]).is_err());
        assert!(
            Evidence::parse(&[
                item("secure-update", "", "true", ""),
                item("secure-update", "", "true", "")
            ])
            .is_err()
        );
        assert!(Evidence::parse(&[item("evaluation", "cc", "EAL4", "")]).is_err());
        assert!(Evidence::parse(&[item("supported-until", "", "2030-13-01", "")]).is_err());
        assert!(Evidence::parse(&vec![item("secure-update", "", "true", ""); 17]).is_err());
    }
}
