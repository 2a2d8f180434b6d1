//! Revocation as a verifier sees it: RFC 5280 reason codes by name, and
//! the check of a certificate against a CRL of its issuer (signature,
//! issuer name, freshness, entry). No I/O: callers fetch the CRL.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::ModelError;

/// CRLReason keyCompromise: the one reason that also blocks the key.
pub const KEY_COMPROMISE: u8 = 1;

/// RFC 5280 reason codes by trustca's (kebab-case) name: the one table
/// the CA's `--reason` parser and every display of a reason read.
pub const REASONS: [(&str, u8); 10] = [
    ("unspecified", 0),
    ("key-compromise", 1),
    ("ca-compromise", 2),
    ("affiliation-changed", 3),
    ("superseded", 4),
    ("cessation-of-operation", 5),
    ("certificate-hold", 6),
    ("privilege-withdrawn", 9),
    ("aa-compromise", 10),
    ("remove-from-crl", 8),
];

/// The kebab-case name of an RFC 5280 reason code (`key-compromise`), or
/// `unknown` for a code RFC 5280 does not define.
pub fn reason_name(code: u8) -> &'static str {
    REASONS
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("unknown", |(n, _)| n)
}

/// Clock skew tolerated on a CRL's `thisUpdate`.
const SKEW: time::Duration = time::Duration::minutes(5);

/// A certificate's standing in a CRL that verified and is fresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlCheck {
    /// The CRL number, when the CRL carries one that fits in 64 bits.
    pub crl_number: Option<u64>,
    /// The CRL's issuer, as text.
    pub issuer: String,
    /// `thisUpdate`.
    pub this_update: OffsetDateTime,
    /// `nextUpdate`: the CRL is not relied on after it.
    pub next_update: OffsetDateTime,
    /// `Some((reason code, revocation time))` when the certificate is listed.
    pub revoked: Option<(u8, OffsetDateTime)>,
}

fn crl_err(msg: impl Into<String>) -> ModelError {
    ModelError::InvalidCrl(msg.into())
}

fn text(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The serial without leading zero bytes, so that DER encodings of one
/// number compare equal.
fn normalised(serial: &[u8]) -> &[u8] {
    let skip = serial.iter().take_while(|b| **b == 0).count();
    &serial[skip.min(serial.len().saturating_sub(1))..]
}

/// The ring algorithm for a CRL signature algorithm and issuer key.
fn verification_algorithm(
    signature_oid: &str,
    issuer: &X509Certificate<'_>,
) -> Result<&'static dyn ring::signature::VerificationAlgorithm, ModelError> {
    let curve = issuer
        .public_key()
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|o| o.to_id_string());
    match (signature_oid, curve.as_deref()) {
        ("1.2.840.10045.4.3.2", Some("1.2.840.10045.3.1.7")) => {
            Ok(&ring::signature::ECDSA_P256_SHA256_ASN1)
        }
        ("1.2.840.10045.4.3.3", Some("1.3.132.0.34")) => {
            Ok(&ring::signature::ECDSA_P384_SHA384_ASN1)
        }
        ("1.2.840.10045.4.3.3", Some("1.2.840.10045.3.1.7")) => {
            Ok(&ring::signature::ECDSA_P256_SHA384_ASN1)
        }
        ("1.2.840.10045.4.3.2", Some("1.3.132.0.34")) => {
            Ok(&ring::signature::ECDSA_P384_SHA256_ASN1)
        }
        ("1.3.101.112", _) => Ok(&ring::signature::ED25519),
        (other, _) => Err(crl_err(format!(
            "signature algorithm {other} is not supported"
        ))),
    }
}

/// Whether `crl_der` is a CRL issued by `issuer_der` (by name).
pub fn crl_is_from(crl_der: &[u8], issuer_der: &[u8]) -> bool {
    let Ok((_, crl)) = CertificateRevocationList::from_der(crl_der) else {
        return false;
    };
    let Ok((_, issuer)) = X509Certificate::from_der(issuer_der) else {
        return false;
    };
    crl.issuer().as_raw() == issuer.subject().as_raw()
}

/// Checks the certificate with `serial` against `crl_der`: the CRL must
/// parse, name `issuer_der`'s subject as its issuer, carry a signature
/// that verifies under the issuer's key, and be fresh at `now`
/// (`thisUpdate` not in the future, `nextUpdate` present and not passed).
pub fn check_crl(
    crl_der: &[u8],
    issuer_der: &[u8],
    serial: &[u8],
    now: OffsetDateTime,
) -> Result<CrlCheck, ModelError> {
    let (rest, crl) =
        CertificateRevocationList::from_der(crl_der).map_err(|_| crl_err("not a DER X.509 CRL"))?;
    if !rest.is_empty() {
        return Err(crl_err("trailing bytes after the CRL"));
    }
    let (_, issuer) = X509Certificate::from_der(issuer_der)
        .map_err(|_| crl_err("issuer certificate does not parse"))?;
    if crl.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(crl_err(format!(
            "issued by {}, not by the certificate's issuer {}",
            crl.issuer(),
            issuer.subject()
        )));
    }
    let oid = crl.signature_algorithm.algorithm.to_id_string();
    let alg = verification_algorithm(&oid, &issuer)?;
    let key =
        ring::signature::UnparsedPublicKey::new(alg, &issuer.public_key().subject_public_key.data);
    key.verify(crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
        .map_err(|_| {
            crl_err(format!(
                "signature does not verify under {}",
                issuer.subject()
            ))
        })?;
    let this_update = crl.last_update().to_datetime();
    let next_update = crl
        .next_update()
        .map(|t| t.to_datetime())
        .ok_or_else(|| crl_err("no nextUpdate, so its freshness cannot be judged"))?;
    if this_update > now + SKEW {
        return Err(crl_err(format!(
            "thisUpdate {} is in the future",
            text(this_update)
        )));
    }
    if next_update <= now {
        return Err(crl_err(format!(
            "stale: its nextUpdate {} has passed; fetch a current CRL",
            text(next_update)
        )));
    }
    let wanted = normalised(serial);
    let revoked = crl
        .iter_revoked_certificates()
        .find(|r| normalised(r.raw_serial()) == wanted)
        .map(|r| {
            let reason = r.reason_code().map(|(_, c)| c.0).unwrap_or(0);
            (reason, r.revocation_date.to_datetime())
        });
    Ok(CrlCheck {
        crl_number: crl.crl_number().and_then(|n| u64::try_from(n).ok()),
        issuer: crl.issuer().to_string(),
        this_update,
        next_update,
        revoked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_5280_codes() {
        assert_eq!(reason_name(KEY_COMPROMISE), "key-compromise");
        assert_eq!(reason_name(9), "privilege-withdrawn");
        assert_eq!(reason_name(7), "unknown");
    }
}
