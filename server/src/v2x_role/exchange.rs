//! What separated V2X authorities and the CA hand each other, as small
//! TOML files that carry public material only:
//!
//! * [`AuthorityRequest`] (`request.toml`, made by `init --role`): the TLS
//!   CSR and, for the pseudonym CA, its AA key with a proof of possession;
//! * [`AuthorityCredential`] (`trustca v2x certify` on the CA): the TLS
//!   chain, the roots and sub-CAs, and the pseudonym CA's AA certificate;
//! * [`PeerBundle`] (`trustca v2x export`): an authority's public key for
//!   its peers, signed with its certified TLS key, so an importer checks it
//!   came from the authority the CA certified in that role.

use std::net::IpAddr;
use std::path::Path;
use trustca_datadir::{CaFiles, DataDir};

use ring::signature::{self, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use trustca_ca::{AuthorityTlsRequest, CaHierarchy, Passphrase, certs_to_pem};
use trustca_model::{CertificateKind, StatementSigner};
use trustca_pseudonym::P256PublicKey;
use trustca_v2x::{CertProfile, Certificate};

use super::{RoleDir, read_file, sha256_hex, write_file};
use crate::error::{Result, ServerError};
use crate::pkcs11::Pkcs11Options;
use crate::v2x::V2xRole;

const REQUEST_FORMAT: &str = "trustca-v2x-request-1";
const CREDENTIAL_FORMAT: &str = "trustca-v2x-credential-1";
const PEER_FORMAT: &str = "trustca-v2x-peer-1";
/// Domains of the AA and CRL signer keys' proofs of possession (then the
/// CSR's DER, which binds them to this request).
const AA_POP_DOMAIN: &[u8] = b"trustca-v2x-aa-request-v1";
const CRL_POP_DOMAIN: &[u8] = b"trustca-v2x-crl-request-v1";
/// Domains of the registration authority's IEEE 1609.2 keys' proofs.
const RA_POP_DOMAIN: &[u8] = b"trustca-v2x-ra-request-v1";
const RA_ENCRYPTION_POP_DOMAIN: &[u8] = b"trustca-v2x-ra-encryption-request-v1";
/// Domain of a peer bundle's signature.
const PEER_DOMAIN: &[u8] = b"trustca-v2x-peer-bundle-v1";
/// Largest file accepted by `certify` and `import`.
const MAX_EXCHANGE_BYTES: usize = 256 * 1024;

fn bad(what: impl std::fmt::Display) -> ServerError {
    ServerError::Config(what.to_string())
}

fn unhex(field: &str, text: &str) -> Result<Vec<u8>> {
    hex::decode(text).map_err(|_| bad(format!("{field} is not hex")))
}

fn pem_ders(field: &str, text: &str) -> Result<Vec<Vec<u8>>> {
    let items = pem::parse_many(text).map_err(|_| bad(format!("{field} is not PEM")))?;
    let ders: Vec<Vec<u8>> = items
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
        .collect();
    if ders.is_empty() {
        return Err(bad(format!("{field} holds no certificate")));
    }
    Ok(ders)
}

fn parse_toml<T: serde::de::DeserializeOwned>(what: &str, text: &str, format: &str) -> Result<T> {
    if text.len() > MAX_EXCHANGE_BYTES {
        return Err(bad(format!(
            "{what}: {} bytes, at most {MAX_EXCHANGE_BYTES}",
            text.len()
        )));
    }
    let table: toml::Table =
        toml::from_str(text).map_err(|e| bad(format!("{what}: {}", e.message())))?;
    match table.get("format").and_then(toml::Value::as_str) {
        Some(f) if f == format => {}
        Some(f) => return Err(bad(format!("{what}: format {f:?}, expected {format:?}"))),
        None => return Err(bad(format!("{what}: no format line"))),
    }
    toml::from_str(text).map_err(|e| bad(format!("{what}: {}", e.message())))
}

fn to_toml(value: &impl Serialize) -> Result<String> {
    toml::to_string(value).map_err(|e| bad(e.to_string()))
}

/// The kind of TLS certificate a role holds.
fn tls_kind(role: V2xRole) -> CertificateKind {
    match role {
        V2xRole::Registration => CertificateKind::RegistrationAuthority,
        _ => CertificateKind::V2xAuthority,
    }
}

/// Which peers' bundles a role uses.
pub(crate) fn peers_of(role: V2xRole) -> &'static [V2xRole] {
    match role {
        V2xRole::Registration => &[V2xRole::PseudonymCa],
        V2xRole::PseudonymCa => &[V2xRole::Linkage1, V2xRole::Linkage2],
        V2xRole::Linkage1 | V2xRole::Linkage2 => &[V2xRole::PseudonymCa],
    }
}

/// `request.toml`: what an authority asks the CA to certify.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorityRequest {
    format: String,
    /// The role.
    pub role: String,
    /// The authority's name.
    pub name: String,
    /// DNS names the TLS certificate names.
    pub dns_names: Vec<String>,
    /// IP addresses the TLS certificate names.
    pub ips: Vec<String>,
    /// PKCS#10, PEM, signed by the TLS key.
    pub tls_csr: String,
    /// The pseudonym CA's AA key (SEC 1 uncompressed, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aa_key: Option<String>,
    /// ECDSA P-256 `r ‖ s` by the AA key over the domain and the CSR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aa_proof: Option<String>,
    /// The pseudonym CA's linkage-CRL signing key (SEC 1 uncompressed, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_key: Option<String>,
    /// Its proof of possession, like `aa_proof`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_proof: Option<String>,
    /// The registration authority's IEEE 1609.2 signing key (SEC 1, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ra_key: Option<String>,
    /// Its proof of possession.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ra_proof: Option<String>,
    /// The registration authority's encryption key (SEC 1, hex): vehicles
    /// encrypt their requests to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ra_encryption_key: Option<String>,
    /// Its proof of possession (an ECDSA signature with the same key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ra_encryption_proof: Option<String>,
}

/// A signing key's public half and its proof of possession over `domain`
/// and the CSR, both hex.
fn prove(
    key: &signature::EcdsaKeyPair,
    domain: &[u8],
    csr_der: &[u8],
) -> Result<(Option<String>, Option<String>)> {
    let mut msg = domain.to_vec();
    msg.extend_from_slice(csr_der);
    let sig = key
        .sign(&ring::rand::SystemRandom::new(), &msg)
        .map_err(|_| bad("a signing key did not sign its proof of possession"))?;
    Ok((
        Some(hex::encode(signature::KeyPair::public_key(key).as_ref())),
        Some(hex::encode(sig.as_ref())),
    ))
}

/// The key of `field` after checking its proof of possession.
fn proven_key(
    field: &str,
    key: Option<&String>,
    proof: Option<&String>,
    domain: &[u8],
    csr_der: &[u8],
) -> Result<trustca_v2x::PublicKeyP256> {
    let (Some(key), Some(proof)) = (key, proof) else {
        return Err(bad(format!(
            "the request carries no {field}_key with its proof of possession"
        )));
    };
    let key = unhex(&format!("{field}_key"), key)?;
    let mut msg = domain.to_vec();
    msg.extend_from_slice(csr_der);
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &key)
        .verify(&msg, &unhex(&format!("{field}_proof"), proof)?)
        .map_err(|_| {
            bad(format!(
                "{field}_proof does not verify with {field}_key: the key is not proven"
            ))
        })?;
    trustca_v2x::PublicKeyP256::from_sec1(&key).map_err(|e| bad(format!("{field}_key: {e}")))
}

impl AuthorityRequest {
    pub(super) fn new(
        role: V2xRole,
        name: &str,
        server_names: &[String],
        tls: &rcgen::KeyPair,
        signing: Option<&(signature::EcdsaKeyPair, signature::EcdsaKeyPair)>,
    ) -> Result<Self> {
        let (ips, dns_names): (Vec<_>, Vec<_>) = server_names
            .iter()
            .cloned()
            .partition(|n| n.parse::<IpAddr>().is_ok());
        let csr = rcgen::CertificateParams::default()
            .serialize_request(tls)
            .map_err(|e| ServerError::Tls(e.to_string()))?;
        let csr_der = csr.der().to_vec();
        let none = || ((None, None), (None, None));
        let ((aa_key, aa_proof), (crl_key, crl_proof)) = match (role, signing) {
            (V2xRole::PseudonymCa, Some((aa, crl))) => (
                prove(aa, AA_POP_DOMAIN, &csr_der)?,
                prove(crl, CRL_POP_DOMAIN, &csr_der)?,
            ),
            _ => none(),
        };
        let ((ra_key, ra_proof), (ra_encryption_key, ra_encryption_proof)) = match (role, signing) {
            (V2xRole::Registration, Some((sign, encrypt))) => (
                prove(sign, RA_POP_DOMAIN, &csr_der)?,
                prove(encrypt, RA_ENCRYPTION_POP_DOMAIN, &csr_der)?,
            ),
            _ => none(),
        };
        Ok(Self {
            format: REQUEST_FORMAT.into(),
            role: role.as_str().into(),
            name: name.into(),
            dns_names,
            ips,
            tls_csr: pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr_der)),
            aa_key,
            aa_proof,
            crl_key,
            crl_proof,
            ra_key,
            ra_proof,
            ra_encryption_key,
            ra_encryption_proof,
        })
    }

    pub(super) fn to_toml(&self) -> Result<String> {
        to_toml(self)
    }
}

/// The CA's answer to a request: public material only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorityCredential {
    format: String,
    /// The role certified.
    pub role: String,
    /// The authority's name.
    pub name: String,
    /// Its TLS chain (leaf, sector sub-CA), PEM.
    pub tls_chain: String,
    /// The trustca root, PEM.
    pub root: String,
    /// Every sector sub-CA, PEM (to read callers' credentials).
    pub issuers: String,
    /// The IEEE 1609.2 root, COER hex.
    pub v2x_root: String,
    /// The pseudonym CA's AA certificate, COER hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aa_certificate: Option<String>,
    /// The pseudonym CA's CRL signer certificate, COER hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_certificate: Option<String>,
    /// The registration authority's IEEE 1609.2 certificate, COER hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ra_certificate: Option<String>,
    /// The enrolment CA's certificate (for the RA to check vehicles'
    /// enrolment certificates), COER hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ea_certificate: Option<String>,
}

impl AuthorityCredential {
    /// The TOML text.
    pub fn to_toml(&self) -> Result<String> {
        to_toml(self)
    }
}

/// The CA side: certifies `request_text` with the CA in `data` (opened
/// with `passphrase`): the TLS certificate from the sector sub-CA of the
/// ticket profile, and for the pseudonym CA its AA certificate from the
/// V2X root. Writes nothing but the credential record the CA keeps.
pub fn certify(
    data: &Path,
    passphrase: &Passphrase,
    pkcs11: &Pkcs11Options,
    request_text: &str,
) -> Result<AuthorityCredential> {
    let request: AuthorityRequest = parse_toml("request", request_text, REQUEST_FORMAT)?;
    let role = V2xRole::parse(&request.role)?;
    let (files, set) = crate::policies::resolve(None, Some(data))?;
    let profile = crate::ticket_files::SCMS_TICKETS.of(&files)?;
    let sector = set
        .sector(&profile.sector)
        .map_err(|e| ServerError::Policy(e.to_string()))?
        .sector
        .clone();
    let token = crate::pkcs11::open_token(data, &set.pki, pkcs11)?;
    let hierarchy = CaHierarchy::open_with_token(data, &set, passphrase, token.map(|t| t.token))?;
    let csr_der = pem::parse(&request.tls_csr)
        .map_err(|_| bad("tls_csr is not PEM"))?
        .into_contents();
    let ips = request
        .ips
        .iter()
        .map(|s| {
            s.parse::<IpAddr>()
                .map_err(|_| bad(format!("{s:?} is not an IP address")))
        })
        .collect::<Result<Vec<_>>>()?;
    let pca_keys = match role {
        V2xRole::PseudonymCa => Some((
            proven_key(
                "aa",
                request.aa_key.as_ref(),
                request.aa_proof.as_ref(),
                AA_POP_DOMAIN,
                &csr_der,
            )?,
            proven_key(
                "crl",
                request.crl_key.as_ref(),
                request.crl_proof.as_ref(),
                CRL_POP_DOMAIN,
                &csr_der,
            )?,
        )),
        _ => None,
    };
    let ra_keys = match role {
        V2xRole::Registration => Some((
            proven_key(
                "ra",
                request.ra_key.as_ref(),
                request.ra_proof.as_ref(),
                RA_POP_DOMAIN,
                &csr_der,
            )?,
            proven_key(
                "ra_encryption",
                request.ra_encryption_key.as_ref(),
                request.ra_encryption_proof.as_ref(),
                RA_ENCRYPTION_POP_DOMAIN,
                &csr_der,
            )?,
        )),
        _ => None,
    };
    let issued = hierarchy.certify_authority_tls(
        &set,
        &AuthorityTlsRequest {
            kind: tls_kind(role),
            name: &request.name,
            role: role.as_str(),
            sector: &sector,
            csr_der: &csr_der,
            dns_names: &request.dns_names,
            ips: &ips,
        },
    )?;
    let (aa_certificate, crl_certificate) = match pca_keys {
        Some((aa_key, crl_key)) => {
            let (aa, crl) = trustca_ca::v2x_ca::certify_pseudonym_ca(
                data,
                &hierarchy,
                &set.pki,
                aa_key,
                crl_key,
                OffsetDateTime::now_utc(),
            )?;
            (
                Some(hex::encode(aa.as_coer())),
                Some(hex::encode(crl.as_coer())),
            )
        }
        None => (None, None),
    };
    let (ra_certificate, ea_certificate) = match ra_keys {
        Some((signing, encryption)) => {
            let ra = trustca_ca::v2x_ca::certify_registration_authority(
                data,
                &hierarchy,
                &set.pki,
                signing,
                encryption,
                OffsetDateTime::now_utc(),
            )?;
            let ea = read_file(&DataDir::new(data).ca().oer("v2x-ea"))?;
            (Some(hex::encode(ra.as_coer())), Some(hex::encode(ea)))
        }
        None => (None, None),
    };
    let issuers: Vec<&[u8]> = hierarchy
        .sectors
        .values()
        .map(|c| c.cert_der.as_slice())
        .collect();
    tracing::info!(role = role.as_str(), name = %request.name, serial = %issued.serial, "V2X authority certified");
    Ok(AuthorityCredential {
        format: CREDENTIAL_FORMAT.into(),
        role: request.role,
        name: request.name,
        tls_chain: issued.chain_pem,
        root: certs_to_pem(&[&hierarchy.root_der]),
        issuers: certs_to_pem(&issuers),
        v2x_root: hex::encode(read_file(&DataDir::new(data).ca().oer("v2x-root"))?),
        aa_certificate,
        crl_certificate,
        ra_certificate,
        ea_certificate,
    })
}

/// An authority's public bundle for its peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerBundle {
    format: String,
    /// The role.
    pub role: String,
    /// The authority's name.
    pub name: String,
    /// Its authority key (SEC 1 uncompressed, hex).
    pub authority_key: String,
    /// The pseudonym CA's AA certificate (COER hex), for the RA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aa_certificate: Option<String>,
    /// The pseudonym CA's CRL signer certificate (COER hex), for the RA's
    /// certificate download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl_certificate: Option<String>,
    /// Its TLS chain, PEM: the key that signs this bundle.
    pub tls_chain: String,
    /// DER ECDSA signature by the TLS key over the fields above.
    pub signature: String,
}

impl PeerBundle {
    pub(super) fn from_toml(text: &str) -> Result<Self> {
        parse_toml("peer bundle", text, PEER_FORMAT)
    }

    /// The TOML text.
    pub fn to_toml(&self) -> Result<String> {
        to_toml(self)
    }

    pub(super) fn authority_key(&self) -> Result<P256PublicKey> {
        P256PublicKey::from_sec1_uncompressed(&unhex("authority_key", &self.authority_key)?)
            .map_err(|e| bad(format!("{} bundle: authority_key: {e}", self.role)))
    }

    /// What the signature covers: every field, length-prefixed.
    fn signed_bytes(&self) -> Result<Vec<u8>> {
        let mut out = PEER_DOMAIN.to_vec();
        let optional = |field: &str, v: &Option<String>| -> Result<Vec<u8>> {
            v.as_ref().map_or(Ok(Vec::new()), |h| unhex(field, h))
        };
        let aa = optional("aa_certificate", &self.aa_certificate)?;
        let crl = optional("crl_certificate", &self.crl_certificate)?;
        for field in [
            self.role.as_bytes(),
            self.name.as_bytes(),
            &unhex("authority_key", &self.authority_key)?,
            &aa,
            &crl,
        ] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        Ok(out)
    }
}

/// What [`import`] took in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// This authority's own credential from the CA; the root's SHA-256
    /// fingerprint (hex) to compare with the CA's out of band.
    Credential { root_fingerprint: String },
    /// A peer's public bundle.
    Peer { role: V2xRole, name: String },
}

/// The root and sub-CAs this authority imported with its credential.
fn imported_trust(dir: &RoleDir) -> Result<(Vec<u8>, Vec<Vec<u8>>)> {
    let root = pem_ders(
        "root",
        &String::from_utf8_lossy(&dir.imported(&dir.trust("root.pem"))?),
    )?;
    let issuers = pem_ders(
        "issuers",
        &String::from_utf8_lossy(&dir.imported(&dir.trust("issuers.pem"))?),
    )?;
    Ok((root.into_iter().next().unwrap_or_default(), issuers))
}

/// Verifies `chain_pem` to `root` (through `issuers`) as `role`'s TLS
/// certificate; the leaf's DER.
fn verify_tls_chain(
    dir: &RoleDir,
    chain_pem: &str,
    (root, issuers): &(Vec<u8>, Vec<Vec<u8>>),
    role: V2xRole,
) -> Result<Vec<u8>> {
    let chain = pem_ders("tls_chain", chain_pem)?;
    let (_, set) = crate::policies::resolve(None, Some(dir.path()))?;
    let verified = trustca_model::verify_chain(
        &chain,
        issuers,
        root,
        OffsetDateTime::now_utc(),
        &set.pki.extensions.trust_level_oid,
    )
    .map_err(|e| bad(format!("the {} TLS chain: {e}", role.as_str())))?;
    let kind = verified.extension.map(|e| e.kind);
    if kind != Some(tls_kind(role)) {
        return Err(bad(format!(
            "the {} TLS certificate is not a {} certificate",
            role.as_str(),
            tls_kind(role).as_str()
        )));
    }
    let leaf = chain.into_iter().next().unwrap_or_default();
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|_| bad("the TLS certificate does not parse"))?;
    let ou = parsed
        .subject()
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok());
    if ou != Some(role.as_str()) {
        return Err(bad(format!(
            "the TLS certificate was issued for {:?}, not for the {}",
            ou.unwrap_or(""),
            role.as_str()
        )));
    }
    Ok(leaf)
}

fn spki_point(leaf_der: &[u8]) -> Result<Vec<u8>> {
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf_der)
        .map_err(|_| bad("certificate does not parse"))?;
    Ok(parsed.public_key().subject_public_key.data.to_vec())
}

fn v2x_cert(field: &str, text: &str) -> Result<Certificate> {
    v2x_cert_bytes(field, &unhex(field, text)?)
}

/// Everything below the V2X root is in the IEEE 1609.2 profile (a
/// non-zero `cracaId`).
fn v2x_cert_bytes(field: &str, bytes: &[u8]) -> Result<Certificate> {
    Certificate::from_coer_in(CertProfile::Ieee1609Dot2, bytes)
        .map_err(|e| bad(format!("{field}: {e}")))
}

/// `hex`'s certificate, issued by `issuer`, for `key` (a key of ours).
fn own_certificate(
    field: &str,
    hex: &str,
    issuer: &Certificate,
    key: &signature::EcdsaKeyPair,
) -> Result<Certificate> {
    let cert = v2x_cert(field, hex)?;
    cert.verify_signed_by(Some(issuer))
        .map_err(|e| bad(format!("{field}: {e}")))?;
    if cert
        .tbs()
        .verification_key
        .uncompressed()
        .ok()
        .as_ref()
        .map(|k| &k[..])
        != Some(signature::KeyPair::public_key(key).as_ref())
    {
        return Err(bad(format!(
            "{field} certifies another key than this pseudonym CA's"
        )));
    }
    Ok(cert)
}

/// Takes in a file on an authority's machine: its own credential from the
/// CA, or a peer's bundle. Checks everything against its own keys and the
/// imported roots; replaces an earlier import of the same thing.
pub fn import(dir: &RoleDir, passphrase: &Passphrase, text: &str) -> Result<Imported> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| bad(format!("import: {}", e.message())))?;
    match table.get("format").and_then(toml::Value::as_str) {
        Some(CREDENTIAL_FORMAT) => import_credential(dir, passphrase, text),
        Some(PEER_FORMAT) => import_peer(dir, text),
        _ => Err(bad(
            "import takes the CA's answer (`trustca v2x certify`) or a peer's bundle (`trustca v2x export`)",
        )),
    }
}

fn import_credential(dir: &RoleDir, passphrase: &Passphrase, text: &str) -> Result<Imported> {
    let c: AuthorityCredential = parse_toml("credential", text, CREDENTIAL_FORMAT)?;
    if c.role != dir.role().as_str() || c.name != dir.name() {
        return Err(bad(format!(
            "this credential is for the {} {:?}; {} is the {} {:?}",
            c.role,
            c.name,
            dir.path().display(),
            dir.role().as_str(),
            dir.name()
        )));
    }
    let secrets = dir.secrets(passphrase)?;
    let root = pem_ders("root", &c.root)?;
    let trust = (root[0].clone(), pem_ders("issuers", &c.issuers)?);
    let v2x_root = v2x_cert("v2x_root", &c.v2x_root)?;
    v2x_root
        .verify_signed_by(None)
        .map_err(|e| bad(format!("v2x_root: {e}")))?;
    let pca = match (
        (&c.aa_certificate, &secrets.aa),
        (&c.crl_certificate, &secrets.crl),
    ) {
        ((Some(aa_hex), Some(aa_key)), (Some(crl_hex), Some(crl_key))) => Some((
            own_certificate("aa_certificate", aa_hex, &v2x_root, aa_key)?,
            own_certificate("crl_certificate", crl_hex, &v2x_root, crl_key)?,
        )),
        ((None, None), (None, None)) => None,
        _ => {
            return Err(bad(
                "the pseudonym CA's credential must carry its AA and CRL signer certificates (and only its)",
            ));
        }
    };
    let ra = match (&c.ra_certificate, &c.ea_certificate, &secrets.ra) {
        (Some(ra_hex), Some(ea_hex), Some((signing, encryption))) => {
            let ea = v2x_cert("ea_certificate", ea_hex)?;
            ea.verify_signed_by(Some(&v2x_root))
                .map_err(|e| bad(format!("ea_certificate: {e}")))?;
            let ra = v2x_cert("ra_certificate", ra_hex)?;
            ra.verify_signed_by(Some(&v2x_root))
                .map_err(|e| bad(format!("ra_certificate: {e}")))?;
            let (sign_pub, enc_pub) = crate::v2x::ee_http::ra_public_keys(signing, encryption)?;
            if ra.tbs().verification_key != sign_pub || ra.tbs().encryption_key != Some(enc_pub) {
                return Err(bad(
                    "ra_certificate certifies other keys than this registration authority's",
                ));
            }
            Some((ra, ea))
        }
        (None, None, None) => None,
        _ => {
            return Err(bad(
                "the registration authority's credential must carry its IEEE 1609.2 certificate and the enrolment CA's (and only its)",
            ));
        }
    };
    let leaf = verify_tls_chain(dir, &c.tls_chain, &trust, dir.role())?;
    if spki_point(&leaf)? != StatementSigner::public_key(secrets.tls.as_ref()) {
        return Err(bad(
            "tls_chain certifies another key than this authority's TLS key",
        ));
    }
    // Everything checked: only now is anything written.
    write_file(&dir.trust("root.pem"), c.root.as_bytes())?;
    write_file(&dir.trust("issuers.pem"), c.issuers.as_bytes())?;
    write_file(&dir.tls_chain(), c.tls_chain.as_bytes())?;
    write_file(&dir.trust("v2x-root.oer"), v2x_root.as_coer())?;
    if let Some((aa, crl)) = pca {
        write_file(&dir.trust("aa.oer"), aa.as_coer())?;
        write_file(&dir.trust("crl-signer.oer"), crl.as_coer())?;
    }
    if let Some((ra, ea)) = ra {
        write_file(&dir.trust("ra.oer"), ra.as_coer())?;
        write_file(&dir.trust("ea.oer"), ea.as_coer())?;
    }
    Ok(Imported::Credential {
        root_fingerprint: sha256_hex(&root[0]),
    })
}

fn import_peer(dir: &RoleDir, text: &str) -> Result<Imported> {
    let b = PeerBundle::from_toml(text)?;
    let role = V2xRole::parse(&b.role)?;
    if !peers_of(dir.role()).contains(&role) {
        return Err(bad(format!(
            "the {} does not use the {}'s bundle (it needs {})",
            dir.role().as_str(),
            role.as_str(),
            peers_of(dir.role())
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        )));
    }
    let leaf = verify_tls_chain(dir, &b.tls_chain, &imported_trust(dir)?, role)?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|_| bad("certificate does not parse"))?;
    let holder = parsed
        .subject()
        .iter_organization()
        .next()
        .and_then(|a| a.as_str().ok());
    if holder != Some(b.name.as_str()) {
        return Err(bad(format!(
            "the bundle names {:?} but its certificate {holder:?}",
            b.name
        )));
    }
    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, spki_point(&leaf)?)
        .verify(&b.signed_bytes()?, &unhex("signature", &b.signature)?)
        .map_err(|_| {
            bad(format!(
                "the {} bundle's signature does not verify",
                role.as_str()
            ))
        })?;
    b.authority_key()?;
    if dir.role() == V2xRole::Registration {
        let v2x_root = v2x_cert_bytes("v2x-root.oer", &dir.imported(&dir.trust("v2x-root.oer"))?)?;
        let aa = v2x_cert(
            "aa_certificate",
            b.aa_certificate
                .as_deref()
                .ok_or_else(|| bad("the pseudonym CA's bundle carries no AA certificate"))?,
        )?;
        aa.verify_signed_by(Some(&v2x_root))
            .map_err(|e| bad(format!("aa_certificate: {e}")))?;
        let crl = b
            .crl_certificate
            .as_deref()
            .map(|h| -> Result<Certificate> {
                let c = v2x_cert("crl_certificate", h)?;
                c.verify_signed_by(Some(&v2x_root))
                    .map_err(|e| bad(format!("crl_certificate: {e}")))?;
                Ok(c)
            })
            .transpose()?;
        write_file(&dir.trust("aa.oer"), aa.as_coer())?;
        if let Some(crl) = crl {
            write_file(&dir.trust("crl-signer.oer"), crl.as_coer())?;
        }
    }
    write_file(&dir.peer(role), text.as_bytes())?;
    Ok(Imported::Peer { role, name: b.name })
}

/// This authority's public bundle for its peers, signed with its TLS key.
pub fn export(dir: &RoleDir, passphrase: &Passphrase) -> Result<PeerBundle> {
    let secrets = dir.secrets(passphrase)?;
    let tls_chain = String::from_utf8_lossy(&dir.imported(&dir.tls_chain())?).into_owned();
    let pca_certificate = |file: &str| -> Result<Option<String>> {
        match dir.role() {
            V2xRole::PseudonymCa => Ok(Some(hex::encode(dir.imported(&dir.trust(file))?))),
            _ => Ok(None),
        }
    };
    let aa_certificate = pca_certificate("aa.oer")?;
    let crl_certificate = pca_certificate("crl-signer.oer")?;
    let mut bundle = PeerBundle {
        format: PEER_FORMAT.into(),
        role: dir.role().as_str().into(),
        name: dir.name().into(),
        authority_key: hex::encode(secrets.authority.public_key().to_sec1_uncompressed()),
        aa_certificate,
        crl_certificate,
        tls_chain,
        signature: String::new(),
    };
    let sig = StatementSigner::sign(secrets.tls.as_ref(), &bundle.signed_bytes()?)
        .map_err(|e| bad(format!("the TLS key did not sign: {e}")))?;
    bundle.signature = hex::encode(sig);
    Ok(bundle)
}
