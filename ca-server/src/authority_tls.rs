//! TLS certificates of the separated V2X authorities (registration
//! authority, pseudonym CA, linkage authorities), issued from a CSR made on
//! the authority's own machine: the CA never sees their keys, and the
//! authority's directory never holds a CA key.

use std::net::IpAddr;
use trustca_datadir::CaFiles;

use time::OffsetDateTime;
use trustca_model::{CertificateKind, PolicySet, SectorName};

use crate::CaError;
use crate::hierarchy::{CaHierarchy, certs_to_pem, sector_ext, validate_name};
use crate::issuer;
use crate::keystore::write_new;

/// What a separated V2X authority asks the CA to certify.
#[derive(Debug, Clone)]
pub struct AuthorityTlsRequest<'a> {
    /// `registration-authority` (serves vehicles, calls the others) or
    /// `v2x-authority` (serves only).
    pub kind: CertificateKind,
    /// The authority's name (a DNS label, e.g. `pca-1`).
    pub name: &'a str,
    /// Its V2X role as written in the OU (`pseudonym-ca`, `linkage-1`, ...).
    pub role: &'a str,
    /// The sector whose sub-CA issues it (the ticket profile's sector).
    pub sector: &'a SectorName,
    /// The PKCS#10 request, DER, self-signed by the authority's TLS key.
    pub csr_der: &'a [u8],
    /// DNS names it is reached at.
    pub dns_names: &'a [String],
    /// IP addresses it is reached at.
    pub ips: &'a [IpAddr],
}

/// A certificate just issued over someone else's key.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// Leaf then issuing sub-CA, PEM.
    pub chain_pem: String,
    /// Serial, hex.
    pub serial: String,
}

impl CaHierarchy {
    /// Issues the TLS certificate of a separated V2X authority from its
    /// CSR (proof of possession checked), recorded under
    /// `ca/credentials/` like every credential so the CA can revoke it.
    pub fn certify_authority_tls(
        &self,
        policies: &PolicySet,
        request: &AuthorityTlsRequest<'_>,
    ) -> Result<IssuedCertificate, CaError> {
        if !matches!(
            request.kind,
            CertificateKind::RegistrationAuthority | CertificateKind::V2xAuthority
        ) {
            return Err(CaError::InvalidRequest(format!(
                "{} is not a V2X authority's certificate",
                request.kind.as_str()
            )));
        }
        validate_name(request.name)?;
        if request.dns_names.is_empty() && request.ips.is_empty() {
            return Err(CaError::InvalidRequest(
                "a V2X authority needs at least one DNS name or IP address to be reached at".into(),
            ));
        }
        // The sub-CA's name constraints permit only its own DNS subtree.
        let subtree = format!("{}.{}", request.sector, policies.pki.trust_domain);
        if let Some(bad) = request
            .dns_names
            .iter()
            .find(|d| !(d.as_str() == subtree || d.ends_with(&format!(".{subtree}"))))
        {
            return Err(CaError::InvalidRequest(format!(
                "DNS name {bad:?} is outside the {} sub-CA's names: use NAME.{subtree} or an IP address",
                request.sector
            )));
        }
        let csr = crate::verify_csr(request.csr_der)?;
        let spki = Self::spki_of(&csr.spki_der)?;
        let ca = self.issuing_sector(request.sector)?;
        let version = &policies.sector(request.sector.as_str())?.version;
        let ext = sector_ext(
            request.sector,
            request.kind,
            version,
            vec![request.sector.clone()],
            vec![],
        );
        let params = issuer::authority_tls_params(
            request.name,
            request.role,
            &ext,
            &policies.pki.extensions.trust_level_oid,
            request.dns_names,
            request.ips,
            policies.pki.credentials.validity_days,
            OffsetDateTime::now_utc(),
            ca.not_after,
        )?;
        let der = ca.sign(&params, &spki)?;
        let serial = x509_parser::parse_x509_certificate(&der)
            .map_err(|_| CaError::Signing("issued certificate does not parse".into()))?
            .1
            .raw_serial_as_string()
            .replace(':', "");
        write_new(
            &self.ca_dir().join("credentials").cert(&serial),
            certs_to_pem(&[&der]).as_bytes(),
        )?;
        Ok(IssuedCertificate {
            chain_pem: certs_to_pem(&[&der, &ca.cert_der]),
            serial,
        })
    }
}
