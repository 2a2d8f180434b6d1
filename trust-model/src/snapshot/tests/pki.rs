//! A tiny trustca hierarchy: root, hems sector CA, root-issued service
//! certificate (the signer), and device certificates.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::extension::ExtensionOid;
use crate::{CertificateKind, SectorName, TrustLevel, TrustLevelExtension};

pub struct Pki {
    pub oid: ExtensionOid,
    sector: &'static str,
    pub root_der: Vec<u8>,
    root: Issuer<'static, KeyPair>,
    pub sector_ca_der: Vec<u8>,
    sector_ca: Issuer<'static, KeyPair>,
}

fn ext(
    oid: &ExtensionOid,
    sector: &str,
    kind: CertificateKind,
    level: Option<u8>,
) -> CustomExtension {
    let e = TrustLevelExtension {
        kind,
        sector: SectorName::new(sector).unwrap(),
        level: level.map(|l| TrustLevel::new(l as i64).unwrap()),
        policy_version: "t1".into(),
        basis: vec![],
        authorized_sectors: vec![],
        permitted_schemes: vec![],
    };
    CustomExtension::from_oid_content(oid.arcs(), e.to_der().unwrap())
}

fn named(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.not_before = time::macros::datetime!(2026-01-01 0:00 UTC);
    p.not_after = time::macros::datetime!(2028-01-01 0:00 UTC);
    p
}

impl Pki {
    pub fn new() -> Self {
        Self::for_sector("hems")
    }

    /// A root of its own with one sector CA, of `sector`.
    pub fn for_sector(sector: &'static str) -> Self {
        let oid = ExtensionOid::default();
        let key = KeyPair::generate().unwrap();
        let mut p = named(&format!("test root of {sector}"));
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_der = p.self_signed(&key).unwrap().der().to_vec();
        let root = Issuer::new(p, key);
        let key = KeyPair::generate().unwrap();
        let mut p = named(&format!("{sector} sector CA"));
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.custom_extensions
            .push(ext(&oid, sector, CertificateKind::SectorCa, None));
        let sector_ca_der = p.signed_by(&key, &root).unwrap().der().to_vec();
        let sector_ca = Issuer::new(p, key);
        Self {
            oid,
            sector,
            root_der,
            root,
            sector_ca_der,
            sector_ca,
        }
    }

    /// A root-issued service certificate and its key as a
    /// statement signer.
    pub fn service(&self) -> (Vec<Vec<u8>>, ring::signature::EcdsaKeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut p = named("trust responder");
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        p.custom_extensions
            .push(ext(&self.oid, self.sector, CertificateKind::Service, None));
        let der = p.signed_by(&key, &self.root).unwrap().der().to_vec();
        (vec![der, self.root_der.clone()], signer(&key))
    }

    /// A hems long-term device certificate at `level`; returns the
    /// chain (leaf, sector CA) and the device's key as a signer.
    pub fn device(
        &self,
        serial_label: &str,
        cert_serial: &[u8],
        level: u8,
    ) -> (Vec<Vec<u8>>, ring::signature::EcdsaKeyPair) {
        let key = KeyPair::generate().unwrap();
        let mut p = named(serial_label);
        p.is_ca = IsCa::ExplicitNoCa;
        p.serial_number = Some(SerialNumber::from_slice(cert_serial));
        p.subject_alt_names = vec![SanType::URI(
            format!("urn:trustca:{}:Acme:HB-1:{serial_label}", self.sector)
                .try_into()
                .unwrap(),
        )];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        p.custom_extensions.push(ext(
            &self.oid,
            self.sector,
            CertificateKind::LongTerm,
            Some(level),
        ));
        let der = p.signed_by(&key, &self.sector_ca).unwrap().der().to_vec();
        (vec![der, self.sector_ca_der.clone()], signer(&key))
    }
}

impl Pki {
    /// Signs `msg` with the root's key (ECDSA P-256, DER), as the
    /// root signs a trust list.
    pub fn root_sign(&self, msg: &[u8]) -> Vec<u8> {
        use rcgen::SigningKey;
        self.root.key().sign(msg).unwrap()
    }

    /// A CRL of the sector CA, valid around `now`, listing `serials`
    /// as revoked for key compromise.
    pub fn crl(&self, now: time::OffsetDateTime, serials: &[&[u8]]) -> Vec<u8> {
        rcgen::CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(1),
            crl_number: SerialNumber::from_slice(&[7]),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: now - time::Duration::minutes(30),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.sector_ca)
        .unwrap()
        .der()
        .to_vec()
    }
}

fn signer(key: &KeyPair) -> ring::signature::EcdsaKeyPair {
    ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &key.serialize_der(),
        &ring::rand::SystemRandom::new(),
    )
    .unwrap()
}
