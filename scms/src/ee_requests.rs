//! The vehicle's side of the IEEE 1609.2.1 interfaces, without transport:
//! the requests a vehicle sends to the enrolment CA and the registration
//! authority, and the checks of their answers. The tickets themselves are
//! opened by [`crate::TicketOpener`]. `docs/v2x-1609dot2dot1.md` is the
//! protocol; the independent Python client (`scms/tests/dot1_client.py`)
//! speaks the same, and the benchmark's vehicle uses this module.

use ring::signature::{EcdsaKeyPair, KeyPair};
use trustca_pseudonym::ButterflyRequest;
use trustca_v2x::{
    AdditionalParams, Certificate, CertificateId, CertificateType, EeEcaCertRequest,
    EeRaCertRequest, EeRaDownloadRequest, EncryptedData, Ieee1609Dot2Content, PsidGroupPermissions,
    PsidSsp, PsidSspRange, PublicKeyP256, RaEeCertAck, SECURITY_MGMT_PSID, ScmsPdu,
    SignedCertificateRequest, SignedSpdu, Signer, SubjectPermissions, Time32, ToBeSigned,
    ValidityPeriod, decode_data, encrypted_data, hashed_id8, signed_certificate_request_data,
};

use crate::error::{Result, ScmsError};

fn refused(what: &str) -> ScmsError {
    ScmsError::Response(what.to_owned())
}

fn time(now: i64) -> Result<Time32> {
    Ok(Time32::from_unix(now)?)
}

/// `EeEcaCertRequestSpdu` for `key` (self-signed: the proof of possession),
/// asking for the right to request tickets of `psids`.
pub fn enrolment_request(
    key: &EcdsaKeyPair,
    psids: &[u64],
    validity: ValidityPeriod,
    now: i64,
) -> Result<Vec<u8>> {
    let public = PublicKeyP256::from_sec1(key.public_key().as_ref())?;
    let mut tbs = ToBeSigned::new(CertificateId::None, validity, public);
    tbs.cert_request_permissions = Some(vec![PsidGroupPermissions {
        subject_permissions: SubjectPermissions::Explicit(
            psids
                .iter()
                .map(|&psid| PsidSspRange {
                    psid,
                    ssp_range: None,
                })
                .collect(),
        ),
        min_chain_length: 1,
        chain_length_range: 0,
        ee_type: PsidGroupPermissions::EE_APP,
    }]);
    let pdu = ScmsPdu::EeEcaCertRequest(EeEcaCertRequest {
        generation_time: time(now)?,
        cert_type: CertificateType::Explicit,
        tbs_cert: tbs,
        canonical_id: None,
    });
    let signed = SignedCertificateRequest::sign(&pdu.to_coer(), Signer::SelfSigned, key)?;
    Ok(signed_certificate_request_data(signed.as_coer()))
}

/// The enrolment certificate in an `EcaEeCertResponseSpdu`, checked: signed
/// by `eca` (itself under `root`), answering `request`, for `key`.
pub fn open_enrolment_response(
    response: &[u8],
    request: &[u8],
    key: &EcdsaKeyPair,
    eca: &Certificate,
    root: &Certificate,
) -> Result<Certificate> {
    eca.verify_signed_by(Some(root))?;
    let signed = signed_by(response, eca)?;
    let ScmsPdu::EcaEeCertResponse(r) = ScmsPdu::from_coer(signed.payload())? else {
        return Err(refused("not an EcaEeCertResponse"));
    };
    if r.request_hash != hashed_id8(request) {
        return Err(refused("the response answers another request"));
    }
    r.certificate.verify_signed_by(Some(eca))?;
    if r.certificate.tbs().verification_key != PublicKeyP256::from_sec1(key.public_key().as_ref())?
    {
        return Err(refused("the enrolment certificate certifies another key"));
    }
    Ok(r.certificate)
}

/// `EeRaCertRequestSpdu` for tickets of `psids` over `span`, with unified
/// butterfly keys `butterfly`, signed by the enrolment certificate and
/// encrypted to the RA. Returns the request and its hash (the
/// acknowledgement's `requestHash`, the download file's name).
pub fn ticket_request(
    butterfly: &ButterflyRequest,
    psids: &[u64],
    span: ValidityPeriod,
    enrolment: (&Certificate, &EcdsaKeyPair),
    ra: &Certificate,
    now: i64,
) -> Result<(Vec<u8>, [u8; 8])> {
    let caterpillar =
        PublicKeyP256::from_sec1(&butterfly.caterpillar_public_key().to_sec1_uncompressed())?;
    let mut tbs = ToBeSigned::new(CertificateId::None, span, caterpillar);
    tbs.app_permissions = Some(
        psids
            .iter()
            .map(|&psid| PsidSsp { psid, ssp: None })
            .collect(),
    );
    let pdu = ScmsPdu::EeRaCertRequest(EeRaCertRequest {
        generation_time: time(now)?,
        cert_type: CertificateType::Explicit,
        tbs_cert: tbs,
        additional_params: Some(AdditionalParams::Unified(
            *butterfly.expansion_key().as_bytes(),
        )),
    });
    let signed = SignedCertificateRequest::sign(
        &pdu.to_coer(),
        Signer::Certificate(Box::new(enrolment.0.clone())),
        enrolment.1,
    )?;
    let plain = signed_certificate_request_data(signed.as_coer());
    let body = encrypted_data(&EncryptedData::seal_to_certificate(ra, &plain)?);
    let hash = hashed_id8(&body);
    Ok((body, hash))
}

/// The RA's acknowledgement, checked: signed by `ra`, for `request_hash`.
pub fn open_ack(response: &[u8], ra: &Certificate, request_hash: [u8; 8]) -> Result<RaEeCertAck> {
    let signed = signed_by(response, ra)?;
    let ScmsPdu::RaEeCertAck(ack) = ScmsPdu::from_coer(signed.payload())? else {
        return Err(refused("not a RaEeCertAck"));
    };
    if ack.request_hash != request_hash {
        return Err(refused("the acknowledgement is for another request"));
    }
    Ok(ack)
}

/// The `Download-Req` content (before Base64) for period `i` of the
/// request `request_hash`: signed by the enrolment certificate, encrypted
/// to the RA.
pub fn download_request(
    request_hash: [u8; 8],
    i: u64,
    enrolment: (&Certificate, &EcdsaKeyPair),
    ra: &Certificate,
    now: i64,
) -> Result<Vec<u8>> {
    let t = time(now)?;
    let filename = format!("{}_{i:x}.zip", hex::encode(request_hash));
    let pdu = ScmsPdu::EeRaDownloadRequest(EeRaDownloadRequest {
        generation_time: t,
        filename,
    });
    let signed = SignedSpdu::sign(
        &pdu.to_coer(),
        SECURITY_MGMT_PSID,
        Some(u64::from(t.0) * 1_000_000),
        enrolment.0,
        enrolment.1,
    )?;
    Ok(encrypted_data(&EncryptedData::seal_to_certificate(
        ra,
        signed.as_coer(),
    )?))
}

/// A signed SPDU of psid 35 by `signer`, signature checked.
fn signed_by(bytes: &[u8], signer: &Certificate) -> Result<SignedSpdu> {
    if !matches!(decode_data(bytes)?, Ieee1609Dot2Content::Signed) {
        return Err(refused("not signed data"));
    }
    let signed = SignedSpdu::from_coer(bytes)?;
    if signed.signer().as_coer() != signer.as_coer() || signed.psid() != SECURITY_MGMT_PSID {
        return Err(refused("signed by another certificate or for another psid"));
    }
    signed.verify()?;
    Ok(signed)
}
