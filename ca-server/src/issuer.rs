//! Building and signing certificates: the profiles for the root, sector
//! sub-CAs, devices, credentials and services, and the signer that puts the
//! trust-level extension's 128-bit-arc OID into them.
//!
//! rcgen only writes OIDs with u64 arcs, so every certificate is built with
//! a same-length placeholder OID ([`PLACEHOLDER_OID_ARCS`]); [`OidPatchingKey`]
//! swaps the real OID bytes into the to-be-signed bytes before signing and
//! [`patch_oid`] swaps them into the emitted certificate, so the signature
//! covers exactly the bytes that are published. One signature per
//! certificate, as without the patch.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm, SigningKey,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};
use trustca_model::extension::{OID_DER_CONTENT, PLACEHOLDER_OID_ARCS, placeholder_oid_content};
use trustca_model::policy::KeyAlgorithm;
use trustca_model::{DeviceIdentity, TrustLevelExtension};

use crate::CaError;
use crate::ca_keys::CaKey;

/// The placeholder OID as it appears in DER: tag, length, content.
fn placeholder_tlv() -> Vec<u8> {
    let content = placeholder_oid_content();
    let mut v = vec![0x06, content.len() as u8];
    v.extend_from_slice(&content);
    v
}

/// Replaces every placeholder OID in `der` with the real one, in place.
/// Lengths are equal, so no enclosing length changes.
pub(crate) fn patch_oid(der: &mut [u8]) {
    let needle = placeholder_tlv();
    let mut i = 0;
    while i + needle.len() <= der.len() {
        if der[i..i + needle.len()] == needle[..] {
            der[i + 2..i + needle.len()].copy_from_slice(&OID_DER_CONTENT);
            i += needle.len();
        } else {
            i += 1;
        }
    }
}

/// A CA key whose signatures cover the patched (real-OID) TBS bytes.
#[derive(Debug)]
pub struct OidPatchingKey(pub(crate) CaKey);

impl PublicKeyData for OidPatchingKey {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.0.algorithm()
    }
}

impl SigningKey for OidPatchingKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let mut tbs = msg.to_vec();
        patch_oid(&mut tbs);
        self.0.sign(&tbs)
    }
}

/// A signing CA: its certificate and an rcgen issuer built once.
pub struct SigningCa {
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
    pub(crate) issuer: Issuer<'static, OidPatchingKey>,
    pub(crate) not_after: OffsetDateTime,
}

impl std::fmt::Debug for SigningCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl SigningCa {
    /// Builds a signing CA from its certificate and key.
    pub fn new(cert_der: Vec<u8>, key: CaKey) -> Result<Self, CaError> {
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), OidPatchingKey(key))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|_| CaError::Signing("CA certificate does not parse".into()))?;
        let not_after = parsed.validity().not_after.to_datetime();
        Ok(Self {
            cert_der,
            issuer,
            not_after,
        })
    }

    /// Signs `params` for `subject_key`, returning the final DER.
    pub(crate) fn sign(
        &self,
        params: &CertificateParams,
        subject_key: &impl PublicKeyData,
    ) -> Result<Vec<u8>, CaError> {
        let cert = params.signed_by(subject_key, &self.issuer)?;
        let mut der = cert.der().to_vec();
        patch_oid(&mut der);
        Ok(der)
    }
}

/// The rcgen algorithm for a profile's key algorithm.
pub fn rcgen_algorithm(alg: KeyAlgorithm) -> &'static SignatureAlgorithm {
    match alg {
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        _ => &rcgen::PKCS_ECDSA_P256_SHA256,
    }
}

/// Generates a key pair for `alg`.
pub fn generate_key(alg: KeyAlgorithm) -> Result<KeyPair, CaError> {
    Ok(KeyPair::generate_for(rcgen_algorithm(alg))?)
}

/// A random positive 128-bit serial: 16 bytes, top bit clear (positive)
/// and the next bit set (so the DER INTEGER is always exactly 16 bytes),
/// leaving 126 random bits.
pub fn random_serial() -> Result<[u8; 16], CaError> {
    let mut s = [0u8; 16];
    SystemRandom::new()
        .fill(&mut s)
        .map_err(|_| CaError::Signing("no randomness".into()))?;
    s[0] = (s[0] & 0x7f) | 0x40;
    Ok(s)
}

fn trust_extension(ext: &TrustLevelExtension) -> Result<CustomExtension, CaError> {
    Ok(CustomExtension::from_oid_content(
        &PLACEHOLDER_OID_ARCS,
        ext.to_der()?,
    ))
}

fn base_params(
    dn: DistinguishedName,
    serial: &[u8; 16],
    now: OffsetDateTime,
    validity_days: u32,
    cap: Option<OffsetDateTime>,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn;
    p.serial_number = Some(SerialNumber::from_slice(serial));
    // Back-date a little for devices whose clocks run behind.
    p.not_before = now - Duration::minutes(5);
    let mut not_after = now + Duration::days(validity_days as i64);
    if let Some(cap) = cap {
        not_after = not_after.min(cap);
    }
    p.not_after = not_after;
    p.use_authority_key_identifier_extension = true;
    // Explicit CA:FALSE also makes rcgen write the subject key identifier.
    p.is_ca = IsCa::ExplicitNoCa;
    p
}

/// Parameters of the self-signed root.
pub fn root_params(
    common_name: &str,
    organization: &str,
    validity_days: u32,
    now: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, common_name);
    let mut p = base_params(dn, &random_serial()?, now, validity_days, None);
    p.use_authority_key_identifier_extension = false;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(p)
}

/// Parameters of a sector sub-CA, confined by name constraint to
/// `<sector>.<trust_domain>` and marked with its sector.
pub fn sector_ca_params(
    organization: &str,
    ext: &TrustLevelExtension,
    trust_domain: &str,
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::OrganizationalUnitName, ext.sector.as_str());
    dn.push(
        DnType::CommonName,
        format!("trustca {} Sector CA", ext.sector),
    );
    let mut p = base_params(dn, &random_serial()?, now, validity_days, Some(cap));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName(format!(
            "{}.{}",
            ext.sector, trust_domain
        ))],
        excluded_subtrees: vec![],
    });
    p.custom_extensions.push(trust_extension(ext)?);
    Ok(p)
}

/// Parameters of a long-term device certificate. Subject and SAN are built
/// from validated attributes only.
pub fn device_params(
    identity: &DeviceIdentity,
    ext: &TrustLevelExtension,
    trust_domain: &str,
    serial: &[u8; 16],
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, identity.manufacturer.as_str());
    dn.push(DnType::OrganizationalUnitName, identity.sector.as_str());
    dn.push(
        DnType::CommonName,
        format!("{} {}", identity.model, identity.serial),
    );
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        identity.serial.as_str(),
    );
    let mut p = base_params(dn, serial, now, validity_days, Some(cap));
    p.subject_alt_names = vec![
        SanType::URI(identity.urn().try_into()?),
        SanType::DnsName(identity.dns_name(trust_domain).try_into()?),
    ];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    p.custom_extensions.push(trust_extension(ext)?);
    Ok(p)
}

/// Parameters of a role credential (manufacturer, operator, auditor,
/// gateway). The DNS name keeps it inside its sector CA's name constraint.
pub fn credential_params(
    name: &str,
    ext: &TrustLevelExtension,
    trust_domain: &str,
    serial: &[u8; 16],
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let role = ext.kind.as_str();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, name);
    dn.push(DnType::OrganizationalUnitName, role);
    dn.push(DnType::CommonName, format!("{role} {name}"));
    let mut p = base_params(dn, serial, now, validity_days, Some(cap));
    p.subject_alt_names = vec![
        SanType::URI(format!("urn:trustca:{role}:{name}").try_into()?),
        SanType::DnsName(
            format!(
                "{}.{role}.{}.{trust_domain}",
                name.to_ascii_lowercase(),
                ext.sector
            )
            .try_into()?,
        ),
    ];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.custom_extensions.push(trust_extension(ext)?);
    Ok(p)
}

/// Parameters of a service certificate issued by the root (TLS server,
/// trust responder).
/// What a root-issued service certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServicePurpose {
    /// The TLS endpoint of `serve` (server and federation client).
    Tls,
    /// The trust responder that signs trust assertions.
    TrustResponder,
    /// The signer of the audit log's tree heads.
    AuditLog,
}

// Each argument is one independent fact of the profile; grouping them
// would only move the list into a struct built once at the one call site.
#[allow(clippy::too_many_arguments)]
pub fn service_params(
    common_name: &str,
    purpose: ServicePurpose,
    ext: &TrustLevelExtension,
    dns_names: &[String],
    ips: &[IpAddr],
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "trustca");
    dn.push(DnType::CommonName, common_name);
    let mut p = base_params(dn, &random_serial()?, now, validity_days, Some(cap));
    for d in dns_names {
        p.subject_alt_names
            .push(SanType::DnsName(d.clone().try_into()?));
    }
    for ip in ips {
        p.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = match purpose {
        // The TLS server is also a client of federated trust databases.
        ServicePurpose::Tls => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        // The responder only signs trust assertions, like an OCSP responder.
        // The responder and the audit signer only sign statements (trust
        // assertions, tree heads), like an OCSP responder.
        ServicePurpose::TrustResponder | ServicePurpose::AuditLog => {
            vec![ExtendedKeyUsagePurpose::OcspSigning]
        }
    };
    p.custom_extensions.push(trust_extension(ext)?);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_and_16_bytes() {
        for _ in 0..100 {
            let s = random_serial().unwrap();
            assert_eq!(s[0] & 0xc0, 0x40);
        }
        assert_ne!(random_serial().unwrap(), random_serial().unwrap());
    }

    #[test]
    fn patch_replaces_only_the_placeholder() {
        let mut bytes = vec![1, 2, 3];
        bytes.extend(placeholder_tlv());
        bytes.extend([9, 9]);
        patch_oid(&mut bytes);
        assert_eq!(&bytes[..3], &[1, 2, 3]);
        assert_eq!(&bytes[5..25], &OID_DER_CONTENT);
        assert_eq!(&bytes[25..], &[9, 9]);
    }
}
