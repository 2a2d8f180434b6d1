//! `V2xEnrollment`, the CA process's V2X enrolment authority over gRPC:
//! enrolment credentials for vehicles (each recorded for the hash CRL),
//! and the hash-based CRLs of enrolment and CA certificates with the
//! operator's revocations (`hash_crls.rs`).

use std::path::Path;
use std::sync::Arc;
use trustca_datadir::{CaFiles, DataDir};

use tonic::{Request, Response, Status};
use trustca_api::caller;
use trustca_ca::CaHierarchy;
use trustca_proto::v1 as pb;
use trustca_v2x::{CertProfile, Certificate};

use super::hash_crls::{EnrolmentRefused, HashCrlPublisher};
use super::{blocking, vehicle_of};
use crate::error::{Result, io};

/// Domain of the proof of possession in `IssueEnrollmentCredential`.
pub const ENROLMENT_POP_DOMAIN: &[u8] = b"trustca-v2x-enrolment-v1";

/// `V2xEnrollment`: enrolment credentials from the V2X enrolment authority.
pub struct EnrollmentCredentialService {
    ea: Arc<(trustca_ca::v2x_ca::OwnedV2xSigner, Certificate)>,
    root: Vec<u8>,
    sector: String,
    hash_crls: Arc<HashCrlPublisher>,
}

impl std::fmt::Debug for EnrollmentCredentialService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentCredentialService")
            .field("sector", &self.sector)
            .finish_non_exhaustive()
    }
}

impl EnrollmentCredentialService {
    /// The EA of `data`'s V2X hierarchy, for vehicles of `sector`; the
    /// credentials it issues are recorded in, and revoked through,
    /// `hash_crls`.
    pub(crate) fn open(
        data: &Path,
        hierarchy: &CaHierarchy,
        sector: &str,
        hash_crls: Arc<HashCrlPublisher>,
    ) -> Result<Self> {
        let ea = trustca_ca::v2x_ca::enrolment_authority(data, hierarchy)?;
        let root_path = DataDir::new(data).ca().oer("v2x-root");
        let root = std::fs::read(&root_path)
            .map_err(|e| io(format_args!("cannot read {}", root_path.display()), e))?;
        Ok(Self {
            ea: Arc::new(ea),
            root,
            sector: sector.to_owned(),
            hash_crls,
        })
    }
}

#[tonic::async_trait]
impl pb::v2x_enrollment_server::V2xEnrollment for EnrollmentCredentialService {
    async fn issue_enrollment_credential(
        &self,
        request: Request<pb::IssueEnrollmentCredentialRequest>,
    ) -> std::result::Result<Response<pb::EnrollmentCredentialResponse>, Status> {
        let credential = caller(&request)?;
        let vehicle = vehicle_of(&credential, &self.sector)?;
        let msg = request.into_inner();
        let key = trustca_v2x::PublicKeyP256::from_sec1(&msg.verification_key)
            .map_err(|e| Status::invalid_argument(format!("verification_key: {e}")))?;
        let mut signed = ENROLMENT_POP_DOMAIN.to_vec();
        signed.extend_from_slice(&key.compressed());
        signed.extend_from_slice(&credential.key_fingerprint);
        let uncompressed = key
            .uncompressed()
            .map_err(|e| Status::invalid_argument(format!("verification_key: {e}")))?;
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            uncompressed,
        )
        .verify(&signed, &msg.proof_of_possession)
        .map_err(|_| {
            Status::invalid_argument(
                "proof_of_possession does not verify with verification_key for this caller",
            )
        })?;
        let ea = Arc::clone(&self.ea);
        let id = vehicle.id.clone();
        let hash_crls = Arc::clone(&self.hash_crls);
        match self.hash_crls.refuse_revoked(&vehicle.id) {
            Ok(()) => {}
            Err(EnrolmentRefused::Revoked) => {
                return Err(Status::permission_denied(EnrolmentRefused::REVOKED));
            }
            Err(EnrolmentRefused::Failed(e)) => return Err(super::status(e)),
        }
        let cert = blocking(move || {
            let cert = trustca_ca::v2x_ca::issue_enrolment_credential(
                &ea,
                &id,
                key,
                vehicle.level,
                time::OffsetDateTime::now_utc(),
            )
            .map_err(|e| trustca_scms::ScmsError::Config(e.to_string()))?;
            // Recorded before it is handed out, so that revoking the
            // vehicle always finds it.
            hash_crls.record_issued(&id, &cert)?;
            Ok(cert)
        })
        .await?;
        tracing::info!(vehicle = %vehicle.id, level = vehicle.level, "V2X enrolment credential issued");
        Ok(Response::new(pb::EnrollmentCredentialResponse {
            credential: cert.as_coer().to_vec(),
            enrolment_authority: self.ea.1.as_coer().to_vec(),
            root: self.root.clone(),
        }))
    }

    async fn get_hash_crl(
        &self,
        request: Request<pb::GetHashCrlRequest>,
    ) -> std::result::Result<Response<pb::HashCrlResponse>, Status> {
        let series = u16::try_from(request.into_inner().crl_series)
            .map_err(|_| Status::invalid_argument("crl_series is a Uint16"))?;
        let hash_crls = Arc::clone(&self.hash_crls);
        let crl = blocking(move || hash_crls.current(series)).await?;
        Ok(Response::new(pb::HashCrlResponse {
            crl: crl.as_bytes().to_vec(),
        }))
    }

    async fn revoke_enrolment(
        &self,
        request: Request<pb::RevokeEnrolmentRequest>,
    ) -> std::result::Result<Response<pb::RevokeEnrolmentResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let vehicle = request.into_inner().vehicle;
        if vehicle.is_empty() || vehicle.len() > 256 {
            return Err(Status::invalid_argument("vehicle must be 1..=256 bytes"));
        }
        let hash_crls = Arc::clone(&self.hash_crls);
        let (n, crl) = blocking(move || {
            let n = hash_crls.revoke_vehicle(&vehicle, &actor)?;
            Ok((
                n,
                hash_crls.current(trustca_ca::v2x_ca::ENROLMENT_CRL_SERIES)?,
            ))
        })
        .await?;
        Ok(Response::new(pb::RevokeEnrolmentResponse {
            certificates: u32::try_from(n).unwrap_or(u32::MAX),
            crl: crl.as_bytes().to_vec(),
        }))
    }

    async fn revoke_ca_certificate(
        &self,
        request: Request<pb::RevokeCaCertificateRequest>,
    ) -> std::result::Result<Response<pb::HashCrlResponse>, Status> {
        let actor = caller(&request)?.name.clone();
        let msg = request.into_inner();
        if msg.reason.is_empty()
            || msg.reason.len() > 256
            || msg.reason.chars().any(char::is_control)
        {
            return Err(Status::invalid_argument(
                "reason must be 1..=256 printable characters",
            ));
        }
        let certificate = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &msg.certificate)
            .map_err(|e| Status::invalid_argument(format!("certificate: {e}")))?;
        let root = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &self.root)
            .map_err(|e| Status::internal(format!("the V2X root: {e}")))?;
        // Only this hierarchy's CA certificates (EA, AA, RA, CRL signers:
        // everything the V2X root issues); a vehicle's credential is
        // revoked with its vehicle (`RevokeEnrolment`).
        certificate.verify_signed_by(Some(&root)).map_err(|_| {
            Status::invalid_argument("the certificate is not issued by this CA's V2X root")
        })?;
        let hash_crls = Arc::clone(&self.hash_crls);
        let crl =
            blocking(move || hash_crls.revoke_ca_certificate(&certificate, &msg.reason, &actor))
                .await?;
        Ok(Response::new(pb::HashCrlResponse {
            crl: crl.as_bytes().to_vec(),
        }))
    }
}
