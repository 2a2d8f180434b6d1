//! X.509 v2 certificate revocation lists (RFC 5280 §5), one per sector CA.
//!
//! Written directly in DER rather than through a general builder: a sector
//! may hold a million revoked entries, and a CRL must be cheap enough to
//! regenerate on every revocation. Entries carry their reason code (omitted
//! for `unspecified`); the list carries the CRL number and the issuer's
//! authority key identifier.

use rcgen::SigningKey;
use time::OffsetDateTime;
use x509_parser::prelude::ParsedExtension;

use crate::CaError;
use crate::issuer::SigningCa;

const OID_REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
const OID_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
const OID_AKI: &[u8] = &[0x55, 0x1d, 0x23];
const ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
const ECDSA_SHA384: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
];
const ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

pub use trustca_model::revocation::REASONS;

/// Whether `name` spells the reason `kebab` (trustca's spelling, e.g.
/// `key-compromise`) either that way or as RFC 5280 / openssl write it
/// (`keyCompromise`, `cACompromise`), in any case.
fn spells(name: &str, kebab: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == kebab || name == kebab.replace('-', "")
}

/// CRLReason removeFromCRL: RFC 5280 §5.3.1 reserves it for delta CRLs.
const REMOVE_FROM_CRL: u8 = 8;

/// The reasons a certificate may be revoked for, as a list for messages.
fn allowed_reasons() -> String {
    REASONS
        .iter()
        .filter(|(_, c)| *c != REMOVE_FROM_CRL)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The reason code to revoke for, by name, or an error listing the names.
/// Accepts trustca's spellings and the RFC 5280 / openssl ones, in any
/// case. `removeFromCRL` is refused: in a full CRL it tells verifiers the
/// certificate is *not* revoked (openssl then accepts it), and trustca
/// builds no delta CRLs where it would mean something.
pub fn reason_code(name: &str) -> Result<u8, CaError> {
    match REASONS.iter().find(|(n, _)| spells(name, n)) {
        Some((_, REMOVE_FROM_CRL)) => Err(CaError::InvalidRequest(format!(
            "{name:?} is not a revocation reason: RFC 5280 reserves it for delta CRLs, which trustca does not publish; use one of {}",
            allowed_reasons()
        ))),
        Some((_, c)) => Ok(*c),
        None => Err(CaError::InvalidRequest(format!(
            "unknown revocation reason {name:?}; use one of {}",
            allowed_reasons()
        ))),
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    push_len(out, contents.len());
    out.extend_from_slice(contents);
}

fn integer(out: &mut Vec<u8>, bytes: &[u8]) {
    let start = bytes
        .iter()
        .take_while(|b| **b == 0)
        .count()
        .min(bytes.len().saturating_sub(1));
    let b = &bytes[start..];
    out.push(0x02);
    if b.first().is_some_and(|x| x & 0x80 != 0) {
        push_len(out, b.len() + 1);
        out.push(0);
    } else {
        push_len(out, b.len());
    }
    out.extend_from_slice(b);
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
fn time(out: &mut Vec<u8>, t: OffsetDateTime) {
    let t = t.to_offset(time::UtcOffset::UTC);
    let (y, mo, d, h, mi, s) = (
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    );
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        tlv(out, 0x17, text.as_bytes());
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        tlv(out, 0x18, text.as_bytes());
    }
}

fn extension(out: &mut Vec<u8>, oid: &[u8], value: &[u8]) {
    let mut e = Vec::with_capacity(oid.len() + value.len() + 8);
    tlv(&mut e, 0x06, oid);
    tlv(&mut e, 0x04, value);
    tlv(out, 0x30, &e);
}

/// One revoked certificate.
#[derive(Debug, Clone)]
pub struct RevokedEntry {
    /// Serial bytes.
    pub serial: Vec<u8>,
    /// Revocation time.
    pub at: OffsetDateTime,
    /// RFC 5280 reason code.
    pub reason: u8,
}

/// Builds and signs a CRL of `ca`.
pub fn build_crl(
    ca: &SigningCa,
    crl_number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    revoked: &[RevokedEntry],
) -> Result<Vec<u8>, CaError> {
    let (_, cert) = x509_parser::parse_x509_certificate(&ca.cert_der)
        .map_err(|_| CaError::Signing("CA certificate does not parse".into()))?;
    let ski = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .ok_or_else(|| CaError::Signing("CA certificate has no subject key identifier".into()))?;
    let key = ca.issuer.key();
    let alg = if key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256 {
        ECDSA_SHA256
    } else if key.algorithm() == &rcgen::PKCS_ECDSA_P384_SHA384 {
        ECDSA_SHA384
    } else if key.algorithm() == &rcgen::PKCS_ED25519 {
        ED25519
    } else {
        return Err(CaError::Signing(
            "unsupported CA key algorithm for CRLs".into(),
        ));
    };

    let mut entries = Vec::with_capacity(revoked.len() * 56);
    let mut entry = Vec::with_capacity(64);
    for r in revoked {
        entry.clear();
        integer(&mut entry, &r.serial);
        time(&mut entry, r.at);
        if r.reason != 0 {
            let mut value = Vec::with_capacity(3);
            tlv(&mut value, 0x0a, &[r.reason]);
            let mut exts = Vec::with_capacity(16);
            extension(&mut exts, OID_REASON_CODE, &value);
            tlv(&mut entry, 0x30, &exts);
        }
        tlv(&mut entries, 0x30, &entry);
    }

    let mut tbs_body = Vec::with_capacity(entries.len() + 512);
    integer(&mut tbs_body, &[1]);
    tbs_body.extend_from_slice(alg);
    tbs_body.extend_from_slice(cert.subject().as_raw());
    time(&mut tbs_body, this_update);
    time(&mut tbs_body, next_update);
    if !revoked.is_empty() {
        tlv(&mut tbs_body, 0x30, &entries);
    }
    drop(entries);
    let mut exts = Vec::new();
    let mut aki = Vec::new();
    tlv(&mut aki, 0x80, &ski);
    let mut aki_seq = Vec::new();
    tlv(&mut aki_seq, 0x30, &aki);
    extension(&mut exts, OID_AKI, &aki_seq);
    let mut number = Vec::new();
    integer(&mut number, &crl_number.to_be_bytes());
    extension(&mut exts, OID_CRL_NUMBER, &number);
    let mut exts_seq = Vec::new();
    tlv(&mut exts_seq, 0x30, &exts);
    tlv(&mut tbs_body, 0xa0, &exts_seq);
    let mut tbs = Vec::with_capacity(tbs_body.len() + 8);
    tlv(&mut tbs, 0x30, &tbs_body);
    drop(tbs_body);

    let signature = key.sign(&tbs)?;
    let mut sig_bits = Vec::with_capacity(signature.len() + 1);
    sig_bits.push(0);
    sig_bits.extend_from_slice(&signature);
    let mut body = tbs;
    body.extend_from_slice(alg);
    tlv(&mut body, 0x03, &sig_bits);
    let mut out = Vec::with_capacity(body.len() + 8);
    tlv(&mut out, 0x30, &body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        let mut v = Vec::new();
        integer(&mut v, &[0, 0, 0x80]);
        assert_eq!(v, [0x02, 0x02, 0x00, 0x80]);
        v.clear();
        integer(&mut v, &[0, 0, 0]);
        assert_eq!(v, [0x02, 0x01, 0x00]);
        v.clear();
        integer(&mut v, &7u64.to_be_bytes());
        assert_eq!(v, [0x02, 0x01, 0x07]);
    }

    fn test_root(name: &str) -> SigningCa {
        let now = OffsetDateTime::now_utc();
        let key = crate::issuer::generate_key(trustca_model::KeyAlgorithm::EcdsaP256).unwrap();
        let params = crate::issuer::root_params(name, "Test", 30, now).unwrap();
        let cert = params.self_signed(&key).unwrap();
        SigningCa::new(cert.der().to_vec(), crate::ca_keys::CaKey::File(key)).unwrap()
    }

    #[test]
    fn a_verifier_accepts_fresh_crls_of_the_issuer_only() {
        use trustca_model::revocation::check_crl;
        let ca = test_root("CRL test CA");
        let other = test_root("Other CA");
        let now = OffsetDateTime::now_utc();
        let listed = RevokedEntry {
            serial: vec![0x00, 0x42],
            at: now - time::Duration::hours(1),
            reason: 1,
        };
        let der = build_crl(&ca, 7, now, now + time::Duration::days(1), &[listed]).unwrap();
        let c = check_crl(&der, &ca.cert_der, &[0x42], now).unwrap();
        assert_eq!(c.crl_number, Some(7));
        assert_eq!(c.revoked.map(|(r, _)| r), Some(1));
        assert!(
            check_crl(&der, &ca.cert_der, &[0x43], now)
                .unwrap()
                .revoked
                .is_none()
        );
        // Another CA's key, a stale list and a flipped signature bit fail.
        let e = check_crl(&der, &other.cert_der, &[0x42], now).unwrap_err();
        assert!(
            e.to_string().contains("not by the certificate's issuer"),
            "{e}"
        );
        let stale = build_crl(
            &ca,
            8,
            now - time::Duration::days(2),
            now - time::Duration::days(1),
            &[],
        )
        .unwrap();
        let e = check_crl(&stale, &ca.cert_der, &[0x42], now).unwrap_err();
        assert!(e.to_string().contains("stale"), "{e}");
        let mut forged = der.clone();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        let e = check_crl(&forged, &ca.cert_der, &[0x42], now).unwrap_err();
        assert!(e.to_string().contains("signature does not verify"), "{e}");
    }

    #[test]
    fn reasons_by_name() {
        assert_eq!(reason_code("key-compromise").unwrap(), 1);
        assert!(reason_code("bored").is_err());
    }

    #[test]
    fn rfc5280_and_openssl_spellings_are_accepted_in_any_case() {
        for (name, code) in [
            ("keyCompromise", 1),
            ("cACompromise", 2),
            ("affiliationChanged", 3),
            ("superseded", 4),
            ("cessationOfOperation", 5),
            ("certificateHold", 6),
            ("privilegeWithdrawn", 9),
            ("aACompromise", 10),
            ("KEYCOMPROMISE", 1),
            ("Key-Compromise", 1),
            ("unspecified", 0),
        ] {
            assert_eq!(reason_code(name).unwrap(), code, "{name}");
        }
        for bad in ["key_compromise", "keycompromised", "key compromise", ""] {
            assert!(reason_code(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn remove_from_crl_is_refused_and_the_allowed_reasons_are_named() {
        for name in ["removeFromCRL", "remove-from-crl", "REMOVEFROMCRL"] {
            let e = reason_code(name).unwrap_err().to_string();
            assert!(e.contains("delta CRLs"), "{e}");
            assert!(
                e.contains("key-compromise") && e.contains("cessation-of-operation"),
                "{e}"
            );
            let allowed = e.split("use one of").nth(1).unwrap_or_default();
            assert!(!allowed.contains("remove"), "{e}");
        }
        let unknown = reason_code("bored").unwrap_err().to_string();
        assert!(!unknown.contains("remove-from-crl"), "{unknown}");
    }
}
