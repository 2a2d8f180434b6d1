//! Who a certificate speaks for: the role and sectors of a client, read from
//! the trust-level extension of its certificate (never from request fields).

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::extension::ExtensionOid;
use crate::{CertificateKind, ModelError, SectorName, TrustLevelExtension};

/// A verified client's role, as its certificate states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The role (manufacturer, operator, device, ...).
    pub kind: CertificateKind,
    /// The issuing sub-CA's sector.
    pub sector: SectorName,
    /// Sectors the holder may act for: the authorized list for credentials,
    /// the own sector for devices.
    pub sectors: Vec<SectorName>,
    /// The holder's name (the manufacturer's name for manufacturers).
    pub name: String,
    /// The certificate serial, lower-case hex.
    pub serial: String,
    /// The same serial's octets, as the store keys certificates: decoded
    /// once per connection, not on every request that looks it up.
    pub serial_octets: Vec<u8>,
    /// The full decoded extension.
    pub extension: TrustLevelExtension,
    /// For device certificates: the device identity from the URN SAN.
    pub identity: Option<crate::DeviceIdentity>,
    /// The identity's key ([`crate::DeviceIdentity::key`]), made once per
    /// connection: every `Decide` looks its caller up by it.
    pub identity_key: Option<String>,
    /// SHA-256 of the certificate's SubjectPublicKeyInfo, to refuse keys
    /// revoked for compromise.
    pub key_fingerprint: [u8; 32],
}

impl Credential {
    /// Whether the holder may act for `sector`.
    pub fn may_act_for(&self, sector: &SectorName) -> bool {
        self.sectors.iter().any(|s| s == sector)
    }
}

/// Finds and decodes the trust-level extension (under `oid`, the OID
/// configured in `pki.toml`) of a parsed certificate. `Ok(None)` when
/// absent; an error when present twice or malformed.
pub fn trust_extension(
    cert: &X509Certificate<'_>,
    oid: &ExtensionOid,
) -> Result<Option<TrustLevelExtension>, ModelError> {
    let mut found = None;
    for ext in cert.extensions() {
        if oid.matches(ext.oid.as_bytes()) {
            if found.is_some() {
                return Err(ModelError::MalformedExtension(
                    "extension appears twice".to_owned(),
                ));
            }
            found = Some(TrustLevelExtension::from_der(ext.value)?);
        }
    }
    Ok(found)
}

/// The holder's name: trustca writes it as the subject organization of
/// credentials (the common name adds the role for people reading it).
fn holder_name(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_organization()
        .next()
        .or_else(|| cert.subject().iter_common_name().next())
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Reads the role of a client from its leaf certificate and the sub-CA that
/// issued it. The chain's signatures must already have been verified (the
/// TLS layer does that); this checks that the certificate is one of ours and
/// that its sector is its issuer's sector.
pub fn credential_from_chain(
    leaf_der: &[u8],
    issuer_der: &[u8],
    oid: &ExtensionOid,
) -> Result<Credential, ModelError> {
    let bad = |m: &str| ModelError::InvalidCredential(m.to_owned());
    let (_, leaf) = X509Certificate::from_der(leaf_der)
        .map_err(|_| bad("client certificate does not parse"))?;
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|_| bad("issuer certificate does not parse"))?;
    let ext = trust_extension(&leaf, oid)?
        .ok_or_else(|| bad("client certificate has no trustca trust-level extension"))?;
    let issuer_is_root = issuer.subject().as_raw() == issuer.issuer().as_raw();
    if issuer_is_root {
        // Only trustca services (e.g. a federated trust database) are
        // issued by the root itself.
        if ext.kind != CertificateKind::Service {
            return Err(bad("only service certificates are issued by the root"));
        }
    } else {
        let issuer_ext = trust_extension(&issuer, oid)?
            .ok_or_else(|| bad("issuer is not a trustca sector CA"))?;
        if issuer_ext.kind != CertificateKind::SectorCa {
            return Err(bad("issuer is not a trustca sector CA"));
        }
        if issuer_ext.sector != ext.sector {
            return Err(ModelError::InvalidCredential(format!(
                "certificate claims sector {} but was issued by the {} CA",
                ext.sector, issuer_ext.sector
            )));
        }
    }
    let sectors = if ext.authorized_sectors.is_empty() {
        vec![ext.sector.clone()]
    } else {
        ext.authorized_sectors.clone()
    };
    let identity = if ext.kind == CertificateKind::LongTerm {
        crate::chain::identity_of(&leaf)
    } else {
        None
    };
    Ok(Credential {
        kind: ext.kind,
        sector: ext.sector.clone(),
        sectors,
        name: holder_name(&leaf),
        serial: crate::hexfmt::encode(leaf.raw_serial()),
        serial_octets: leaf.raw_serial().to_vec(),
        key_fingerprint: crate::key_fingerprint(leaf.public_key().raw),
        identity_key: identity.as_ref().map(crate::DeviceIdentity::key),
        identity,
        extension: ext,
    })
}

/// The caller of one request as the server's authentication layer
/// established it (credential verified, role and revocation rule of the
/// RPC applied), put in the request's extensions. Services read the caller
/// only from here, never from a request field.
#[derive(Debug, Clone)]
pub struct AuthenticatedCaller(pub std::sync::Arc<Credential>);

/// What the transport learnt about the client of a connection, attached to
/// every request on it: the verified credential, or why there is none.
#[derive(Debug, Clone)]
pub struct AuthenticatedPeer {
    /// The client's credential, or the reason it is not authenticated.
    pub credential: Result<std::sync::Arc<Credential>, String>,
    /// The client's address.
    pub remote: Option<std::net::SocketAddr>,
}
