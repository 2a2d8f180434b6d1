//! Certificate path validation with trustca's own rules on top of webpki:
//! a certificate must chain to the trustca root, be within its validity,
//! and — for everything but root-issued services — be issued by the sector
//! CA of the sector it claims. Used by the CLI's `verify`, the trust
//! database for peers' chains, and assertion checks.

use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::credential::trust_extension;
use crate::extension::ExtensionOid;
use crate::{CertificateKind, DeviceIdentity, ModelError, TrustLevelExtension};

/// A chain that verified.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// Subject of the leaf, as text.
    pub subject: String,
    /// The leaf's trust-level extension, if any.
    pub extension: Option<TrustLevelExtension>,
    /// The device identity from the leaf's URN SAN, for long-term certificates.
    pub identity: Option<DeviceIdentity>,
    /// Leaf expiry.
    pub not_after: OffsetDateTime,
    /// Leaf serial.
    pub serial: Vec<u8>,
    /// SHA-256 of the leaf DER.
    pub fingerprint: [u8; 32],
    /// SHA-256 of the leaf's SubjectPublicKeyInfo ([`key_fingerprint`]).
    pub key_fingerprint: [u8; 32],
}

/// id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9), DER content octets.
const OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];

fn bad(msg: impl Into<String>) -> ModelError {
    ModelError::InvalidChain(msg.into())
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// SHA-256 of a certificate.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
    out
}

/// SHA-256 of a SubjectPublicKeyInfo (DER). A key revoked for compromise
/// is blocked under this name, so the block holds whatever certificate,
/// CSR or identity the key turns up in again.
pub fn key_fingerprint(spki_der: &[u8]) -> [u8; 32] {
    fingerprint(spki_der)
}

/// The [`key_fingerprint`] of a certificate's public key.
pub fn certificate_key_fingerprint(cert_der: &[u8]) -> Result<[u8; 32], ModelError> {
    let cert = parse(cert_der)?;
    Ok(key_fingerprint(cert.public_key().raw))
}

/// The device identity named by a certificate's `urn:trustca:` URI SAN.
pub fn identity_of(cert: &X509Certificate<'_>) -> Option<DeviceIdentity> {
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|n| match n {
        GeneralName::URI(u) => DeviceIdentity::from_urn(u).ok(),
        _ => None,
    })
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, ModelError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|_| bad("not an X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the certificate"));
    }
    Ok(cert)
}

/// A plain sentence for a chain-verification failure. webpki's own
/// `Display` is its `Debug` form (`NameConstraintViolation`), which must
/// not reach a client or a command line.
pub fn describe_webpki_error(e: &webpki::Error) -> String {
    use webpki::Error as E;
    match e {
        E::UnknownIssuer => {
            "unknown issuer (no path to this root; wrong CA or missing sub-CA certificate)".into()
        }
        E::NameConstraintViolation => {
            "name constraint violated (the sub-CA may not issue this name)".into()
        }
        E::CertExpired { .. } => "a certificate in the chain has expired".into(),
        E::CertNotValidYet { .. } => "a certificate in the chain is not valid yet".into(),
        E::CertRevoked => "a certificate in the chain is revoked".into(),
        E::InvalidSignatureForPublicKey => "a signature in the chain does not verify".into(),
        E::CaUsedAsEndEntity => {
            "this is a CA certificate; give a device or credential certificate".into()
        }
        E::EndEntityUsedAsCa => "a leaf certificate is used as a CA".into(),
        E::CertNotValidForName(_) => "the certificate is not valid for this name".into(),
        E::RequiredEkuNotFoundContext(_) => {
            "the certificate is not allowed for this purpose (extended key usage)".into()
        }
        E::PathLenConstraintViolated | E::MaximumPathDepthExceeded => {
            "the chain is longer than its CAs allow".into()
        }
        E::BadDer | E::BadDerTime | E::TrailingData(_) | E::MalformedExtensions => {
            "a certificate in the chain is not well-formed DER".into()
        }
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => {
            "a certificate in the chain uses an unsupported signature algorithm".into()
        }
        E::UnsupportedCriticalExtension => {
            "a certificate in the chain has an unsupported critical extension".into()
        }
        _ => "the certificate chain does not verify".into(),
    }
}

/// Why `chain` cannot lead to `root`, when it visibly cannot: it carries
/// another self-signed root, or nothing in it names `root` as issuer.
fn foreign_root(chain: &[Vec<u8>], extra: &[Vec<u8>], root: &[u8]) -> Option<String> {
    let (_, anchor) = X509Certificate::from_der(root).ok()?;
    let mut names_root = false;
    for der in chain.iter().chain(extra) {
        let Ok((_, c)) = X509Certificate::from_der(der) else {
            continue;
        };
        if c.subject().as_raw() == c.issuer().as_raw() && der.as_slice() != root {
            return Some(if c.subject().as_raw() == anchor.subject().as_raw() {
                format!(
                    "it ends in another root certificate, not the one given (both are named {}; another deployment's root?)",
                    anchor.subject()
                )
            } else {
                format!(
                    "it ends in another root certificate ({}), not the one given ({})",
                    c.subject(),
                    anchor.subject()
                )
            });
        }
        names_root |= c.issuer().as_raw() == anchor.subject().as_raw();
    }
    (!names_root).then(|| {
        format!(
            "it was not issued under the given root certificate ({})",
            anchor.subject()
        )
    })
}

/// Verifies `chain[0]` up to `root` through `chain[1..]` (and `extra`
/// intermediates, e.g. the known sector CAs) at `now`; the trust-level
/// extension is read under `oid`.
pub fn verify_chain(
    chain: &[Vec<u8>],
    extra: &[Vec<u8>],
    root: &[u8],
    now: OffsetDateTime,
    oid: &ExtensionOid,
) -> Result<VerifiedChain, ModelError> {
    let leaf_der = chain.first().ok_or_else(|| bad("no certificate given"))?;
    let leaf = parse(leaf_der)?;
    let validity = leaf.validity();
    let not_after = validity.not_after.to_datetime();
    if now > not_after {
        return Err(bad(format!(
            "certificate expired on {}",
            rfc3339(not_after)
        )));
    }
    if now < validity.not_before.to_datetime() {
        return Err(bad(format!(
            "certificate is not valid before {}",
            rfc3339(validity.not_before.to_datetime())
        )));
    }
    let root_cd = CertificateDer::from(root.to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&root_cd).map_err(|e| {
        bad(format!(
            "root certificate unusable: {}",
            describe_webpki_error(&e)
        ))
    })?;
    let intermediates: Vec<CertificateDer<'static>> = chain[1..]
        .iter()
        .chain(extra.iter())
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let leaf_cd = CertificateDer::from(leaf_der.clone());
    let ee = webpki::EndEntityCert::try_from(&leaf_cd).map_err(|e| {
        bad(format!(
            "certificate unusable: {}",
            describe_webpki_error(&e)
        ))
    })?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        now.unix_timestamp().max(0) as u64,
    ));
    let usage = match leaf.extended_key_usage() {
        // "If present": webpki applies the usage to every certificate of the
        // path, and a sector CA (which issues a sector instance's responder
        // and audit signer) has no EKU at all. The leaf is known to carry
        // OCSPSigning here, so nothing is relaxed for it.
        Ok(Some(eku)) if !eku.value.client_auth && eku.value.ocsp_signing => {
            webpki::KeyUsage::required_if_present(OCSP_SIGNING)
        }
        Ok(Some(eku)) if !eku.value.client_auth => webpki::KeyUsage::server_auth(),
        _ => webpki::KeyUsage::client_auth(),
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &intermediates,
        time,
        usage,
        None,
        None,
    )
    .map_err(|e| {
        // webpki reports the last check of the last path it tried; with a
        // foreign root that can be an intermediate's extended key usage,
        // which blames the wrong thing. Name the root first.
        let why = foreign_root(chain, extra, root).unwrap_or_else(|| describe_webpki_error(&e));
        bad(format!("chain does not verify to the root: {why}"))
    })?;
    let extension = trust_extension(&leaf, oid)?;
    if let Some(ext) = &extension {
        let issuer_der = std::iter::once(root)
            .chain(chain[1..].iter().map(|v| v.as_slice()))
            .chain(extra.iter().map(|v| v.as_slice()))
            .find(|d| {
                parse(d)
                    .map(|c| c.subject().as_raw() == leaf.issuer().as_raw())
                    .unwrap_or(false)
            })
            .ok_or_else(|| bad("issuer not found in the chain"))?;
        let issuer = parse(issuer_der)?;
        let issuer_is_root = issuer.subject().as_raw() == issuer.issuer().as_raw();
        if issuer_is_root {
            if ext.kind != CertificateKind::Service {
                return Err(bad(format!(
                    "wrong-sector chain: {} certificate must be issued by a sector CA, not the root",
                    ext.kind.with_article()
                )));
            }
        } else {
            let issuer_ext = trust_extension(&issuer, oid)?
                .ok_or_else(|| bad("issuer is not a trustca sector CA"))?;
            if issuer_ext.kind != CertificateKind::SectorCa {
                return Err(bad("issuer is not a trustca sector CA"));
            }
            if issuer_ext.sector != ext.sector {
                return Err(bad(format!(
                    "wrong-sector chain: certificate claims sector {} but was issued by the {} sector CA",
                    ext.sector, issuer_ext.sector
                )));
            }
        }
    }
    let identity = if extension
        .as_ref()
        .is_some_and(|e| e.kind == CertificateKind::LongTerm)
    {
        identity_of(&leaf)
    } else {
        None
    };
    Ok(VerifiedChain {
        subject: leaf.subject().to_string(),
        extension,
        identity,
        not_after,
        serial: leaf.raw_serial().to_vec(),
        fingerprint: fingerprint(leaf_der),
        key_fingerprint: key_fingerprint(leaf.public_key().raw),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webpki_failures_read_as_sentences() {
        let text = describe_webpki_error(&webpki::Error::NameConstraintViolation);
        assert!(text.contains("name constraint violated"), "{text}");
        for e in [
            webpki::Error::NameConstraintViolation,
            webpki::Error::UnknownIssuer,
            webpki::Error::CertRevoked,
            webpki::Error::MaximumSignatureChecksExceeded,
            webpki::Error::UnsupportedIndirectCrl,
        ] {
            let text = describe_webpki_error(&e);
            let debug = format!("{e:?}");
            assert!(!text.contains(&debug), "{text} is a Debug dump");
            assert!(text.contains(' '), "{text} is not a sentence");
        }
    }
}
