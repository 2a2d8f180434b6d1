//! Building and signing certificates: the profiles for the root, sector
//! sub-CAs, devices, credentials and services. The trust-level extension is
//! written under the OID configured in `pki.toml` (`[extensions]
//! trust_level_oid`); its arcs fit in 31 bits, so rcgen encodes it directly
//! and the CA signs through rcgen's normal path.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::{Duration, OffsetDateTime};
use trustca_model::extension::ExtensionOid;
use trustca_model::policy::{KeyAlgorithm, PkiPolicy};
use trustca_model::{CertificateKind, DeviceIdentity, TrustLevelExtension};

use crate::CaError;
use crate::ca_keys::CaKey;

/// A signing CA: its certificate and an rcgen issuer built once.
pub struct SigningCa {
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
    pub(crate) issuer: Issuer<'static, CaKey>,
    pub(crate) not_after: OffsetDateTime,
    /// Its generation, for a sector CA (`rollover.rs`); 1 otherwise.
    pub(crate) generation: u32,
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
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|_| CaError::Signing("CA certificate does not parse".into()))?;
        let not_after = parsed.validity().not_after.to_datetime();
        let generation = crate::rollover::generation_of_subject(parsed.subject());
        Ok(Self {
            cert_der,
            issuer,
            not_after,
            generation,
        })
    }

    /// Signs `params` for `subject_key`, returning the DER.
    pub(crate) fn sign(
        &self,
        params: &CertificateParams,
        subject_key: &impl PublicKeyData,
    ) -> Result<Vec<u8>, CaError> {
        Ok(params.signed_by(subject_key, &self.issuer)?.der().to_vec())
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

/// X.520's upper bound for commonName (ub-common-name), in characters.
const UB_COMMON_NAME: usize = 64;

/// A common name `"<head> <tail>"` within [`UB_COMMON_NAME`]: the tail
/// (the distinguishing part: a serial, a holder's name) is kept whole and
/// the head shortened, or dropped, to fit. The CN is only for people; the
/// identity is in the SAN and, for devices, the serialNumber attribute.
fn bounded_common_name(head: &str, tail: &str) -> String {
    let tail: String = tail.chars().take(UB_COMMON_NAME).collect();
    let room = UB_COMMON_NAME.saturating_sub(tail.chars().count() + 1);
    let head: String = head.chars().take(room).collect();
    if head.is_empty() {
        tail
    } else {
        format!("{head} {tail}")
    }
}

/// The trust-level extension (non-critical) under `oid`.
pub(crate) fn trust_extension(
    ext: &TrustLevelExtension,
    oid: &ExtensionOid,
) -> Result<CustomExtension, CaError> {
    Ok(CustomExtension::from_oid_content(oid.arcs(), ext.to_der()?))
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
    pki: &PkiPolicy,
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
    generation: u32,
) -> Result<CertificateParams, CaError> {
    let (trust_domain, oid) = (pki.trust_domain.as_str(), &pki.extensions.trust_level_oid);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::OrganizationalUnitName, ext.sector.as_str());
    dn.push(
        DnType::CommonName,
        crate::rollover::common_name(&ext.sector, generation),
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
    p.custom_extensions.push(trust_extension(ext, oid)?);
    Ok(p)
}

/// Parameters of a long-term device certificate. Subject and SAN are built
/// from validated attributes only.
pub fn device_params(
    identity: &DeviceIdentity,
    ext: &TrustLevelExtension,
    pki: &PkiPolicy,
    serial: &[u8; 16],
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let (trust_domain, oid) = (pki.trust_domain.as_str(), &pki.extensions.trust_level_oid);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, identity.manufacturer.as_str());
    dn.push(DnType::OrganizationalUnitName, identity.sector.as_str());
    dn.push(
        DnType::CommonName,
        bounded_common_name(&identity.model, &identity.serial),
    );
    // X.520 serialNumber (2.5.4.5) is a PrintableString. The identity's
    // serial is already limited to A-Z, a-z, 0-9 and '-' (a DNS label), a
    // subset of PrintableString, so this conversion cannot fail for a
    // validated identity.
    dn.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        DnValue::PrintableString(identity.serial.as_str().try_into()?),
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
    p.custom_extensions.push(trust_extension(ext, oid)?);
    Ok(p)
}

/// Parameters of a role credential (manufacturer, operator, auditor,
/// gateway). The DNS name keeps it inside its sector CA's name constraint.
pub fn credential_params(
    name: &str,
    ext: &TrustLevelExtension,
    pki: &PkiPolicy,
    serial: &[u8; 16],
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let (trust_domain, oid) = (pki.trust_domain.as_str(), &pki.extensions.trust_level_oid);
    let role = ext.kind.as_str();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, name);
    dn.push(DnType::OrganizationalUnitName, role);
    dn.push(DnType::CommonName, bounded_common_name(role, name));
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
    p.custom_extensions.push(trust_extension(ext, oid)?);
    Ok(p)
}

/// Adds the DNS names and IP addresses a server is reached at as SANs.
fn push_host_names(
    p: &mut CertificateParams,
    dns_names: &[String],
    ips: &[IpAddr],
) -> Result<(), CaError> {
    for d in dns_names {
        p.subject_alt_names
            .push(SanType::DnsName(d.clone().try_into()?));
    }
    p.subject_alt_names
        .extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    Ok(())
}

/// Parameters of a separated V2X authority's TLS certificate (issued by a
/// sector sub-CA from the authority's own CSR): O = its name, OU = its V2X
/// role, SANs the names it is reached at; serverAuth, plus clientAuth for
/// the registration authority, which calls the others.
// Each argument is one independent fact of the profile.
#[allow(clippy::too_many_arguments)]
pub(crate) fn authority_tls_params(
    name: &str,
    role: &str,
    ext: &TrustLevelExtension,
    oid: &ExtensionOid,
    dns_names: &[String],
    ips: &[IpAddr],
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, name);
    dn.push(DnType::OrganizationalUnitName, role);
    dn.push(DnType::CommonName, bounded_common_name(role, name));
    let mut p = base_params(dn, &random_serial()?, now, validity_days, Some(cap));
    p.subject_alt_names = vec![SanType::URI(
        format!("urn:trustca:{role}:{name}").try_into()?,
    )];
    push_host_names(&mut p, dns_names, ips)?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if ext.kind == CertificateKind::RegistrationAuthority {
        p.extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    p.custom_extensions.push(trust_extension(ext, oid)?);
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
    oid: &ExtensionOid,
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
    push_host_names(&mut p, dns_names, ips)?;
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
    p.custom_extensions.push(trust_extension(ext, oid)?);
    Ok(p)
}

/// Parameters of the X.509 certificate the root issues for the V2X
/// (IEEE 1609.2) root's P-256 key, so that trusting the X.509 root also
/// covers the V2X hierarchy (`ca/v2x-root.pem`). Not a CA in X.509 terms
/// (it signs 1609.2 certificates only); kind `service`, EKU OCSPSigning as
/// for the other root-issued statement signers (never TLS), and the
/// 1609.2 root's `id` name as its DNS SAN.
pub fn v2x_root_params(
    organization: &str,
    v2x_name: &str,
    ext: &TrustLevelExtension,
    oid: &ExtensionOid,
    validity_days: u32,
    now: OffsetDateTime,
    cap: OffsetDateTime,
) -> Result<CertificateParams, CaError> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, "trustca V2X root (IEEE 1609.2)");
    let mut p = base_params(dn, &random_serial()?, now, validity_days, Some(cap));
    p.subject_alt_names
        .push(SanType::DnsName(v2x_name.to_owned().try_into()?));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    p.custom_extensions.push(trust_extension(ext, oid)?);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_stay_within_x520_bounds() {
        assert_eq!(bounded_common_name("EV-200", "SN0001"), "EV-200 SN0001");
        let m = "M".repeat(63);
        let s = "S".repeat(63);
        let cn = bounded_common_name(&m, &s);
        assert_eq!(cn, s, "a 63-character serial leaves no room for the model");
        let cn = bounded_common_name(&m, "SN1");
        assert_eq!(cn.chars().count(), 64);
        assert!(cn.ends_with(" SN1"));
        assert_eq!(
            bounded_common_name("gateway", &"N".repeat(63)),
            "N".repeat(63)
        );
    }

    #[test]
    fn serials_are_positive_and_16_bytes() {
        for _ in 0..100 {
            let s = random_serial().unwrap();
            assert_eq!(s[0] & 0xc0, 0x40);
        }
        assert_ne!(random_serial().unwrap(), random_serial().unwrap());
    }

    #[test]
    fn device_certificates_carry_the_configured_oid_and_a_printable_serial() {
        let pki = PkiPolicy::parse("pki.toml", include_str!("../../policies/pki.toml")).unwrap();
        let now = OffsetDateTime::now_utc();
        let root_key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        let root_params = root_params("R", "O", 100, now).unwrap();
        let root_cert = root_params.self_signed(&root_key).unwrap();
        let root = SigningCa::new(
            root_cert.der().to_vec(),
            CaKey::File(KeyPair::try_from(root_key.serialize_der().as_slice()).unwrap()),
        )
        .unwrap();
        let sector = trustca_model::SectorName::new("automotive").unwrap();
        let identity = DeviceIdentity::new(sector.clone(), "Acme", "EV-200", "SN-0001").unwrap();
        let ext = TrustLevelExtension {
            kind: CertificateKind::LongTerm,
            sector,
            level: Some(trustca_model::TrustLevel::new(4).unwrap()),
            policy_version: "2026.11-1".to_owned(),
            basis: vec![trustca_model::EvaluationBasis {
                evidence: "evaluation".to_owned(),
                scheme: "iso-sae-21434".to_owned(),
                result: "CAL3".to_owned(),
                evaluated_at: Some(time::macros::datetime!(2026-03-01 0:00 UTC)),
                attestation: None,
            }],
            authorized_sectors: vec![],
            permitted_schemes: vec![],
        };
        let params = device_params(
            &identity,
            &ext,
            &pki,
            &random_serial().unwrap(),
            10,
            now,
            root.not_after,
        )
        .unwrap();
        let key = generate_key(KeyAlgorithm::EcdsaP256).unwrap();
        let der = root.sign(&params, &key).unwrap();
        // The whole Extension, byte for byte as the independent generator
        // wrote it (trust-model/testdata/trust-level-extension).
        let vector = trustca_model::hexfmt::decode(
            include_str!(
                "../../trust-model/testdata/trust-level-extension/extension-long-term-lv4.hex"
            )
            .trim(),
        )
        .unwrap();
        assert!(der.windows(vector.len()).any(|w| w == vector));
        // serialNumber: OID 2.5.4.5 then PrintableString (tag 0x13).
        let serial_attr = [0x06, 0x03, 0x55, 0x04, 0x05, 0x13, 0x07];
        let pos = der
            .windows(serial_attr.len())
            .position(|w| w == serial_attr)
            .expect("serialNumber as PrintableString");
        assert_eq!(&der[pos + 7..pos + 14], b"SN-0001");
        // A custom OID from pki.toml is what gets written.
        let mut own = pki.clone();
        own.extensions.trust_level_oid = ExtensionOid::parse("1.3.6.1.4.1.99999.7").unwrap();
        let params = device_params(
            &identity,
            &ext,
            &own,
            &random_serial().unwrap(),
            10,
            now,
            root.not_after,
        )
        .unwrap();
        let der = root.sign(&params, &key).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            trustca_model::trust_extension(&cert, &own.extensions.trust_level_oid).unwrap(),
            Some(ext)
        );
    }
}
