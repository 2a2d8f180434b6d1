//! The endorsement key's certificate chain: verified (webpki) to one of the
//! TPM manufacturer roots registered for the sector, with the TCG EK
//! certificate purpose (`tcg-kp-EKCertificate`, 2.23.133.8.1) where the
//! certificate states a purpose. Yields the EK's RSA public key, to which
//! the credential is made.

use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::public_key::PublicKey as X509Key;

use crate::AttestationError;

/// `tcg-kp-EKCertificate` (2.23.133.8.1), DER content octets.
const TCG_KP_EK_CERTIFICATE: &[u8] = &[0x67, 0x81, 0x05, 0x08, 0x01];
/// At most this many certificates in a chain a device sends.
pub const MAX_CHAIN: usize = 5;
/// At most this many bytes per certificate.
pub const MAX_CERT_BYTES: usize = 8192;

/// The EK's public key from a verified certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkKey {
    /// RSA modulus, big-endian.
    pub modulus: Vec<u8>,
    /// RSA public exponent, big-endian.
    pub exponent: Vec<u8>,
    /// SHA-256 of the EK certificate (DER), for logs and audit.
    pub certificate_sha256: [u8; 32],
}

/// Verifies `chain` (EK certificate first, then intermediates, DER) to
/// one of `roots` (DER) at `now` (Unix seconds).
pub fn verify_ek_chain(
    chain: &[Vec<u8>],
    roots: &[Vec<u8>],
    now: u64,
) -> Result<EkKey, AttestationError> {
    let bad = |m: String| AttestationError::EkChain(m);
    let Some(ek) = chain.first() else {
        return Err(bad("no EK certificate given".into()));
    };
    if chain.len() > MAX_CHAIN || chain.iter().any(|c| c.len() > MAX_CERT_BYTES) {
        return Err(bad(format!(
            "at most {MAX_CHAIN} certificates of at most {MAX_CERT_BYTES} bytes"
        )));
    }
    if roots.is_empty() {
        return Err(bad(
            "no TPM manufacturer root is registered for the sector".into()
        ));
    }
    let root_ders: Vec<CertificateDer<'_>> =
        roots.iter().map(|r| CertificateDer::from(&r[..])).collect();
    let anchors = root_ders
        .iter()
        .filter_map(|r| webpki::anchor_from_trusted_cert(r).ok())
        .collect::<Vec<_>>();
    let ek_der = CertificateDer::from(&ek[..]);
    let ee = webpki::EndEntityCert::try_from(&ek_der)
        .map_err(|e| bad(format!("the EK certificate does not parse: {e}")))?;
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(&c[..]))
        .collect();
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
        webpki::KeyUsage::required_if_present(TCG_KP_EK_CERTIFICATE),
        None,
        None,
    )
    // Local CAs often share names (every swtpm-localca is
    // "swtpm-localca"), so a foreign chain shows as a bad signature as
    // often as an unknown issuer: both mean no registered root vouches.
    .map_err(|e| {
        bad(format!(
            "it does not chain to a TPM manufacturer root registered for the sector ({e:?})"
        ))
    })?;
    let (_, cert) = x509_parser::parse_x509_certificate(ek)
        .map_err(|_| bad("the EK certificate does not parse".into()))?;
    let (modulus, exponent) = match cert.public_key().parsed() {
        // DER INTEGERs carry a leading zero when the top bit is set.
        Ok(X509Key::RSA(rsa)) => (
            unsigned(rsa.modulus).to_vec(),
            unsigned(rsa.exponent).to_vec(),
        ),
        _ => {
            return Err(AttestationError::Unsupported(
                "EK key type: only RSA EK certificates (NV index 0x01c00002) are supported".into(),
            ));
        }
    };
    let mut certificate_sha256 = [0u8; 32];
    certificate_sha256.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, ek).as_ref());
    Ok(EkKey {
        modulus,
        exponent,
        certificate_sha256,
    })
}

fn unsigned(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    &v[start..]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const EK: &[u8] = include_bytes!("../testdata/swtpm/ek-rsa2048.der");
    const CA: &[u8] = include_bytes!("../testdata/swtpm/localca.der");
    const ROOT: &[u8] = include_bytes!("../testdata/swtpm/localca-root.der");
    const NOW: u64 = 1_900_000_000;

    pub(crate) fn swtpm_ek_rsa() -> (Vec<u8>, Vec<u8>) {
        let k = verify_ek_chain(&[EK.to_vec(), CA.to_vec()], &[ROOT.to_vec()], NOW).unwrap();
        (k.modulus, k.exponent)
    }

    #[test]
    fn swtpm_ek_chain_verifies_to_its_local_ca() {
        let (n, e) = swtpm_ek_rsa();
        let pubarea =
            crate::public::TpmPublic::from_tpm2b(include_bytes!("../testdata/swtpm/ek.pub"))
                .unwrap();
        // The certificate's key is the EK tpm2_createek made.
        match pubarea.key {
            crate::public::PublicKey::Rsa { modulus, .. } => assert_eq!(modulus, n),
            _ => panic!("RSA EK expected"),
        }
        assert_eq!(e, vec![1, 0, 1]);
    }

    #[test]
    fn refuses_other_roots_missing_links_and_junk() {
        let chain = [EK.to_vec(), CA.to_vec()];
        // The intermediate is not a root for the EK's chain.
        let err = verify_ek_chain(&[EK.to_vec()], &[ROOT.to_vec()], NOW).unwrap_err();
        assert!(err.to_string().contains("registered"), "{err}");
        let err = verify_ek_chain(&chain, &[], NOW).unwrap_err();
        assert!(
            err.to_string().contains("no TPM manufacturer root"),
            "{err}"
        );
        assert!(verify_ek_chain(&[], &[ROOT.to_vec()], NOW).is_err());
        assert!(verify_ek_chain(&[vec![0x30, 0]], &[ROOT.to_vec()], NOW).is_err());
        // The EK certificate itself as a "root" does not make it valid.
        assert!(verify_ek_chain(&chain, &[EK.to_vec()], NOW).is_err());
    }
}
