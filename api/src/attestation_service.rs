//! The `trustca.v1.Attestation` gRPC service: enrollment challenges for
//! manufacturers, TPM manufacturer roots for operators. Roles come from the
//! server's authentication layer (`server/src/auth.rs`); sector rights are
//! checked by the CA's `AttestationBook`.

use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use tonic::{Request, Response, Status};
use trustca_model::SectorName;
use trustca_proto::v1 as pb;
use trustca_proto::v1::attestation_server::Attestation;

use trustca_ca::attestation::{AttestationBook, AttestationRoot};
use trustca_ca::{CaError, EnrollmentEngine};

use crate::status::{caller, code, status};

/// The attestation service.
#[derive(Debug, Clone)]
pub struct AttestationService {
    engine: Arc<EnrollmentEngine>,
}

impl AttestationService {
    /// Serves the engine's attestation book.
    pub fn new(engine: Arc<EnrollmentEngine>) -> Self {
        Self { engine }
    }

    fn book(&self) -> &AttestationBook {
        self.engine.attestation()
    }

    /// Adds or removes a root: the caller, the sector, the change, a log
    /// line.
    fn change_root(
        &self,
        rpc: &str,
        request: Request<pb::AttestationRootRequest>,
        change: impl FnOnce(
            &AttestationBook,
            &trustca_model::Credential,
            &SectorName,
            &pb::AttestationRootRequest,
        ) -> Result<AttestationRoot, CaError>,
    ) -> Result<Response<pb::AttestationRoot>, Status> {
        let caller = caller(&request)?;
        let msg = request.into_inner();
        let s = sector(&msg.sector)?;
        let r = change(self.book(), &caller, &s, &msg);
        log(rpc, s.as_str(), &r.as_ref().map(|_| ()));
        Ok(Response::new(to_pb(r.map_err(status)?)))
    }
}

fn sector(name: &str) -> Result<SectorName, Status> {
    SectorName::new(name).map_err(|e| Status::invalid_argument(format!("sector: {e}")))
}

fn to_pb(r: AttestationRoot) -> pb::AttestationRoot {
    pb::AttestationRoot {
        sector: r.sector,
        sha256: r.sha256,
        subject: r.subject,
        not_after: r.not_after,
        added_by: r.added_by,
        added_at: time::OffsetDateTime::from_unix_timestamp(r.added_at)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default(),
        certificate_der: r.der,
    }
}

fn log(rpc: &str, sector: &str, result: &Result<(), &CaError>) {
    match result {
        Ok(()) => tracing::info!(rpc, sector, outcome = "ok"),
        Err(e) => {
            tracing::info!(rpc, sector, outcome = "refused", code = ?code(*e), reason = %e)
        }
    }
}

#[tonic::async_trait]
impl Attestation for AttestationService {
    async fn get_enrollment_challenge(
        &self,
        request: Request<pb::EnrollmentChallengeRequest>,
    ) -> Result<Response<pb::EnrollmentChallenge>, Status> {
        let caller = caller(&request)?;
        let msg = request.into_inner();
        let s = sector(&msg.sector)?;
        let name = s.to_string();
        let book = self.engine.clone();
        let c = tokio::task::spawn_blocking(move || {
            book.attestation()
                .challenge(&caller, &s, &msg.ek_certificate_chain, &msg.ak_public)
        })
        .await
        .map_err(|e| Status::internal(format!("worker failed: {e}")))?;
        log("GetEnrollmentChallenge", &name, &c.as_ref().map(|_| ()));
        let c = c.map_err(status)?;
        Ok(Response::new(pb::EnrollmentChallenge {
            challenge_id: c.id.to_vec(),
            credential_blob: c.credential_blob,
            encrypted_secret: c.encrypted_secret,
            expires_at: c.expires_at.format(&Rfc3339).unwrap_or_default(),
        }))
    }

    async fn add_attestation_root(
        &self,
        request: Request<pb::AttestationRootRequest>,
    ) -> Result<Response<pb::AttestationRoot>, Status> {
        self.change_root("AddAttestationRoot", request, |book, caller, s, msg| {
            book.add_root(caller, s, &msg.certificate_der)
        })
    }

    async fn remove_attestation_root(
        &self,
        request: Request<pb::AttestationRootRequest>,
    ) -> Result<Response<pb::AttestationRoot>, Status> {
        self.change_root("RemoveAttestationRoot", request, |book, caller, s, msg| {
            book.remove_root(caller, s, &msg.sha256)
        })
    }

    async fn list_attestation_roots(
        &self,
        request: Request<pb::ListAttestationRootsRequest>,
    ) -> Result<Response<pb::ListAttestationRootsResponse>, Status> {
        let caller = caller(&request)?;
        let msg = request.into_inner();
        let s = if msg.sector.is_empty() {
            None
        } else {
            Some(sector(&msg.sector)?)
        };
        let roots = self
            .book()
            .list_roots(&caller, s.as_ref())
            .map_err(status)?;
        Ok(Response::new(pb::ListAttestationRootsResponse {
            roots: roots.into_iter().map(to_pb).collect(),
        }))
    }
}
