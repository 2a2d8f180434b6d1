//! Policy files: the PKI layout (`pki.toml`) and one file per sector
//! (`sectors/<name>.toml`) holding the certificate profile and the criteria
//! that turn a device's evidence into a trust level.
//!
//! Policies are validated once, when loaded: a bad file is refused with its
//! name, the line and the reason, and nothing here is parsed per request.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use time::{Date, OffsetDateTime};
use toml::Spanned;

use crate::evidence::{Evidence, HardwareRootOfTrust};
use crate::extension::EvaluationBasis;
use crate::{ModelError, SectorName, TrustLevel};

/// Key algorithms a profile may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 (the default).
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Ed25519 => "ed25519",
        }
    }
}

fn default_key_algorithm() -> KeyAlgorithm {
    KeyAlgorithm::EcdsaP256
}

/// `pki.toml`: names and lifetimes of the CA hierarchy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiPolicy {
    /// DNS suffix under which device names live (`<sector>.<trust_domain>`).
    pub trust_domain: String,
    /// The root CA.
    pub root: RootProfile,
    /// Every sector sub-CA.
    pub sector_ca: ValidityProfile,
    /// Manufacturer, operator, auditor and gateway credentials.
    pub credentials: ValidityProfile,
    /// Service certificates (the TLS server, the trust responder).
    pub service: ValidityProfile,
    /// Where CRLs are published (`<base><sector>.crl` goes into each issued
    /// certificate's CRL distribution point); none if absent.
    #[serde(default)]
    pub crl_base_url: Option<String>,
    /// The PKCS#11 token that holds CA keys (`[pkcs11]`); when present,
    /// every CA key `init` creates goes there unless `[keys.<role>]` says
    /// `backend = "file"`.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Location>,
    /// Where each kind of CA key is created (`[keys.root] backend = ...`).
    #[serde(default)]
    pub keys: BTreeMap<KeyRole, KeyPlacement>,
    /// OIDs of trustca's private extensions.
    #[serde(default)]
    pub extensions: ExtensionsProfile,
}

/// `[pkcs11]` in `pki.toml`: the module and token (never the PIN, which
/// comes from `TRUSTCA_PKCS11_PIN` or a PIN file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Location {
    /// Path of the PKCS#11 module (shared library).
    pub module: String,
    /// Label of the token.
    pub token: String,
}

/// The kinds of CA key, each placed in a file or a token as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRole {
    /// The root CA key.
    Root,
    /// Every sector CA key.
    Sector,
    /// The V2X authorization authority key (the pseudonym CA's, which
    /// signs IEEE 1609.2 tickets and the linkage CRL).
    Pseudonym,
    /// The trust responder key (signs trust assertions).
    Responder,
    /// The audit log signer key (signs tree heads).
    Audit,
    /// The TLS server key of `serve`.
    Server,
}

impl KeyRole {
    /// The name used in `pki.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Root => "root",
            KeyRole::Sector => "sector",
            KeyRole::Pseudonym => "pseudonym",
            KeyRole::Responder => "responder",
            KeyRole::Audit => "audit",
            KeyRole::Server => "server",
        }
    }
}

/// `[keys.<role>]`: where keys of that role are created.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPlacement {
    /// `file` (encrypted key file in `ca/`) or `pkcs11` (the token).
    pub backend: KeyBackend,
}

/// Where a CA key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyBackend {
    /// An encrypted key file in `ca/` (the default).
    File,
    /// A non-extractable key in the PKCS#11 token.
    Pkcs11,
}

/// `[extensions]` in `pki.toml`: the OIDs trustca writes and reads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtensionsProfile {
    /// The OID of the trust-level extension (default
    /// [`crate::extension::DEFAULT_OID`]). Every arc must be below 2^31.
    /// Change it only before `init`: certificates already issued carry the
    /// old one, and components only recognise the configured OID.
    #[serde(default)]
    pub trust_level_oid: crate::extension::ExtensionOid,
}

/// The root CA's profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootProfile {
    /// Subject common name.
    pub common_name: String,
    /// Subject organization.
    pub organization: String,
    /// Lifetime in days.
    pub validity_days: u32,
    /// Root key algorithm.
    #[serde(default = "default_key_algorithm")]
    pub key_algorithm: KeyAlgorithm,
}

/// A lifetime.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidityProfile {
    /// Lifetime in days.
    pub validity_days: u32,
}

/// A sector's certificate profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateProfile {
    /// Lifetime of long-term device certificates, in days.
    pub validity_days: u32,
    /// Key algorithms accepted in device CSRs.
    pub device_key_algorithms: Vec<KeyAlgorithm>,
    /// The sub-CA's own key algorithm.
    #[serde(default = "default_key_algorithm")]
    pub ca_key_algorithm: KeyAlgorithm,
    /// Hours between a CRL's thisUpdate and nextUpdate (it is reissued at
    /// half that, and on every revocation).
    #[serde(default = "default_crl_validity_hours")]
    pub crl_validity_hours: u32,
}

fn default_crl_validity_hours() -> u32 {
    24
}

/// The evaluation schemes a sector recognises.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceProfile {
    /// Scheme names, e.g. `common-criteria`; evaluations under any other
    /// scheme are refused as unknown evidence.
    pub schemes: Vec<String>,
    /// The highest level a hardware root of trust that is only declared
    /// (not attested, `docs/attestation.md`) can help reach: a level above
    /// it that requires a hardware root of trust needs a verified
    /// attestation. Absent: declared evidence counts at every level.
    #[serde(default)]
    pub declared_hardware_max_level: Option<TrustLevel>,
}

/// What a device must show to earn one level. Every stated requirement must
/// hold; an absent requirement is not checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelCriteria {
    /// The level granted.
    pub level: TrustLevel,
    /// Accepted evaluations as `scheme:result`; one of them must be declared.
    #[serde(default)]
    pub evaluation: Vec<String>,
    /// Evaluations older than this many days do not count.
    #[serde(default)]
    pub max_evaluation_age_days: Option<u32>,
    /// The weakest acceptable hardware root of trust.
    #[serde(default)]
    pub min_hardware_root_of_trust: Option<HardwareRootOfTrust>,
    /// Whether secure update must be declared as supported.
    #[serde(default)]
    pub secure_update: Option<bool>,
    /// Support must last at least this many years from evaluation time.
    #[serde(default)]
    pub min_support_years: Option<u32>,
}

/// How the model registry treats a sector's models (`[registry]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryProfile {
    /// The highest level self-assessed evaluations (declared by the
    /// manufacturer, not a certification body) can earn a model.
    #[serde(default = "default_self_assessed_max_level")]
    pub self_assessed_max_level: TrustLevel,
    /// Whether enrollment requires the device's model and firmware to be
    /// registered (else unregistered models enroll on per-device evidence).
    #[serde(default)]
    pub require_registered_model: bool,
}

fn default_self_assessed_max_level() -> TrustLevel {
    TrustLevel::new(2).unwrap_or(TrustLevel::MIN)
}

impl Default for RegistryProfile {
    fn default() -> Self {
        Self {
            self_assessed_max_level: default_self_assessed_max_level(),
            require_registered_model: false,
        }
    }
}

mod sector;
mod set;
#[cfg(test)]
mod tests;

pub use sector::{LevelDecision, MAX_CLOCK_SKEW, SectorPolicy, add_years};
pub use set::PolicySet;

fn line_of(text: &str, span: Option<Range<usize>>) -> usize {
    span.map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
        .unwrap_or(0)
}

fn policy_error(file: &str, line: usize, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidPolicy {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, ModelError> {
    toml::from_str(text).map_err(|e| {
        let line = line_of(text, e.span());
        policy_error(file, line, e.message().to_owned())
    })
}

impl PkiPolicy {
    /// Parses and validates `pki.toml`.
    pub fn parse(file: &str, text: &str) -> Result<Self, ModelError> {
        let p: PkiPolicy = parse_toml(file, text)?;
        let labels_ok = !p.trust_domain.is_empty()
            && p.trust_domain.len() <= 100
            && p.trust_domain.split('.').all(|l| {
                !l.is_empty()
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        if !labels_ok {
            return Err(policy_error(
                file,
                0,
                "trust_domain must be a lower-case DNS name",
            ));
        }
        for (what, days) in [
            ("root", p.root.validity_days),
            ("sector_ca", p.sector_ca.validity_days),
            ("credentials", p.credentials.validity_days),
            ("service", p.service.validity_days),
        ] {
            if days == 0 || days > 36_500 {
                return Err(policy_error(
                    file,
                    0,
                    format!("{what}.validity_days must be 1..=36500"),
                ));
            }
        }
        if let Some(t) = &p.pkcs11
            && (t.module.trim().is_empty() || t.token.trim().is_empty())
        {
            return Err(policy_error(
                file,
                0,
                "[pkcs11] needs a module path and a token label",
            ));
        }
        // X.520 upper bounds: ub-common-name and ub-organization-name are 64.
        for (what, value) in [
            ("root.common_name", &p.root.common_name),
            ("root.organization", &p.root.organization),
        ] {
            let n = value.chars().count();
            if n == 0 || n > 64 {
                return Err(policy_error(
                    file,
                    0,
                    format!("{what} must be 1-64 characters (X.520 upper bound)"),
                ));
            }
        }
        if p.sector_ca.validity_days > p.root.validity_days {
            return Err(policy_error(
                file,
                0,
                "sector_ca.validity_days exceeds the root's lifetime",
            ));
        }
        Ok(p)
    }
}
