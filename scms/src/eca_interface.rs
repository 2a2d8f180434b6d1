//! The enrolment CA's IEEE 1609.2.1 interface, without transport: an
//! `EeEcaCertRequestSpdu` (self-signed by the new enrolment key, which is
//! the proof of possession) in, an `EcaEeCertResponseSpdu` (signed by the
//! ECA) out. Who the vehicle is and its trust level come from the caller
//! (the front end authenticated it, e.g. by its X.509 device credential in
//! mutual TLS); the certificate itself is issued by the `issue` callback,
//! so that the CA's key handling stays in the CA.

use trustca_v2x::{
    Certificate, CertificateType, EcaEeCertResponse, Ieee1609Dot2Content, PublicKeyP256,
    SECURITY_MGMT_PSID, ScmsPdu, SignedCertificateRequest, SignedSpdu, Signer, Time32, V2xSigner,
    decode_data, hashed_id8,
};

use crate::ee_interface::{EeRefusal, MAX_CLOCK_SKEW_SECS};
use crate::error::ScmsError;
use crate::registration::VehicleCredential;

/// The ECA's certificate chain and signing key.
pub struct EcaIdentity<'a> {
    /// The ECA certificate (PSID 35 with `EcaSsp`).
    pub certificate: &'a Certificate,
    /// Its issuer, the V2X root.
    pub root: &'a Certificate,
    /// The ECA's key.
    pub signer: &'a dyn V2xSigner,
}

impl std::fmt::Debug for EcaIdentity<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcaIdentity")
            .field("certificate", &self.certificate.hashed_id8())
            .finish_non_exhaustive()
    }
}

/// Answers one `EeEcaCertRequestSpdu` from `vehicle`: checks the request
/// (canonical, version 2, explicit, fresh, self-signed by the key it asks
/// to certify), has `issue` make the enrolment certificate for that key,
/// and returns the signed `EcaEeCertResponseSpdu`.
pub fn answer_enrolment_request(
    body: &[u8],
    vehicle: &VehicleCredential,
    eca: &EcaIdentity<'_>,
    issue: impl FnOnce(PublicKeyP256) -> Result<Certificate, ScmsError>,
    now: i64,
) -> Result<Vec<u8>, EeRefusal> {
    let bad = |what: &str, e: &dyn std::fmt::Display| EeRefusal::Malformed(format!("{what}: {e}"));
    let Ieee1609Dot2Content::SignedCertificateRequest(inner) =
        decode_data(body).map_err(|e| bad("the request", &e))?
    else {
        return Err(EeRefusal::Malformed(
            "the request is not a signedCertificateRequest".into(),
        ));
    };
    let signed = SignedCertificateRequest::from_coer(inner, |b| Ok(ScmsPdu::decode_prefix(b)?.1))
        .map_err(|e| bad("SignedCertificateRequest", &e))?;
    let ScmsPdu::EeEcaCertRequest(request) =
        ScmsPdu::from_coer(signed.tbs_request()).map_err(|e| bad("tbsRequest", &e))?
    else {
        return Err(EeRefusal::Malformed(
            "tbsRequest is not an eeEcaCertRequest".into(),
        ));
    };
    if signed.signer() != &Signer::SelfSigned {
        // Re-enrolment signed by the current enrolment certificate is the
        // RA's eeRaSuccessorEnrollmentCertRequest, not supported here.
        return Err(EeRefusal::Malformed(
            "an initial enrolment request is signed by the new key itself (signer self)".into(),
        ));
    }
    if request.cert_type != CertificateType::Explicit {
        return Err(EeRefusal::Malformed(
            "only explicit enrolment certificates are issued".into(),
        ));
    }
    if (request.generation_time.to_unix() - now).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(EeRefusal::Malformed(format!(
            "generationTime is more than {MAX_CLOCK_SKEW_SECS} s from the ECA's clock"
        )));
    }
    let tbs = &request.tbs_cert;
    if tbs.app_permissions.is_some() || tbs.cert_request_permissions.is_none() {
        return Err(EeRefusal::Malformed(
            "an enrolment request carries certRequestPermissions and no appPermissions".into(),
        ));
    }
    let key = tbs.verification_key;
    signed.verify(&key).map_err(|_| {
        EeRefusal::NotAuthenticated(
            "the request is not signed by the key it asks to certify (no proof of possession)"
                .into(),
        )
    })?;
    let certificate = issue(key)?;
    tracing::info!(vehicle = %vehicle.id, level = vehicle.level, "IEEE 1609.2.1 enrolment certificate issued");
    let response = ScmsPdu::EcaEeCertResponse(EcaEeCertResponse {
        request_hash: hashed_id8(body),
        eca_cert_chain: vec![eca.certificate.clone(), eca.root.clone()],
        certificate,
        private_key_info: None,
    });
    let t = Time32::from_unix(now).map_err(ScmsError::from)?;
    Ok(SignedSpdu::sign(
        &response.to_coer(),
        SECURITY_MGMT_PSID,
        Some(u64::from(t.0) * 1_000_000),
        eca.certificate,
        eca.signer,
    )
    .map_err(ScmsError::from)?
    .as_coer()
    .to_vec())
}
