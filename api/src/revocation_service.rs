//! The `trustca.v1.Revocation` gRPC service: message conversion around the
//! CA's [`RevocationEngine`] (who may revoke, what a request names, the
//! store's revocation and the CRL after it) and its CRL publisher.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use trustca_ca::{
    BulkRevokeCommand, CrlPublisher, EnrollmentEngine, RestrictCommand, RevocationEngine,
    RevocationSubject, RevokeCommand,
};
use trustca_proto::v1 as pb;
use trustca_proto::v1::revocation_server::Revocation;
use trustca_store::Storage;

use crate::status::{blocking, caller as authenticated_caller, status};

/// The `trustca.v1.Revocation` service: message conversion around the
/// [`RevocationEngine`].
#[derive(Debug, Clone)]
pub struct RevocationService {
    engine: Arc<RevocationEngine>,
}

impl RevocationService {
    /// Builds the service.
    pub fn new(
        publisher: Arc<CrlPublisher>,
        storage: Arc<dyn Storage>,
        engine: Arc<EnrollmentEngine>,
    ) -> Self {
        Self {
            engine: Arc::new(RevocationEngine::new(publisher, storage, engine)),
        }
    }
}

#[tonic::async_trait]
impl Revocation for RevocationService {
    async fn restrict(
        &self,
        request: Request<pb::RestrictRequest>,
    ) -> Result<Response<pb::RestrictResponse>, Status> {
        let caller = authenticated_caller(&request)?;
        let req = request.into_inner();
        let cmd = RestrictCommand {
            identity: req.identity,
            withdraw: req.withdraw,
            note: req.note,
        };
        let withdrawn = cmd.withdraw.clone();
        let done = self.engine.restrict(&caller, cmd).await.map_err(status)?;
        tracing::info!(rpc = "Restrict", operator = %caller.name, device = %done.identity, withdrawn = ?withdrawn, outcome = "reissued");
        Ok(Response::new(pb::RestrictResponse {
            chain_der: done.chain_der,
            revoked_serial: trustca_model::hexfmt::encode(&done.revoked_serial),
            crl_number: done.crl_number,
        }))
    }

    async fn bulk_revoke(
        &self,
        request: Request<pb::BulkRevokeRequest>,
    ) -> Result<Response<pb::BulkRevokeResponse>, Status> {
        let caller = authenticated_caller(&request)?;
        let req = request.into_inner();
        let cmd = BulkRevokeCommand {
            sector: req.sector,
            manufacturer: req.manufacturer,
            model: req.model,
            firmware_min: req.firmware_min,
            firmware_max: req.firmware_max,
            reason: req.reason,
            note: req.note,
        };
        let engine = Arc::clone(&self.engine);
        let done = blocking("revocation", move || engine.bulk_revoke(&caller, cmd)).await?;
        Ok(Response::new(pb::BulkRevokeResponse {
            devices: done.devices as u64,
            certificates: done.serials.len() as u64,
            crl_number: done.crl_number,
        }))
    }

    async fn revoke(
        &self,
        request: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let caller = authenticated_caller(&request)?;
        let req = request.into_inner();
        let subject = match req.subject {
            Some(pb::revoke_request::Subject::Certificate(der)) => {
                RevocationSubject::Certificate(der)
            }
            Some(pb::revoke_request::Subject::Identity(urn)) => RevocationSubject::Identity(urn),
            None => {
                return Err(Status::invalid_argument(
                    "invalid request: give a certificate or a device identity",
                ));
            }
        };
        let cmd = RevokeCommand {
            subject,
            reason: req.reason,
            note: req.note,
        };
        let engine = Arc::clone(&self.engine);
        let done = blocking("revocation", move || engine.revoke(&caller, cmd)).await?;
        Ok(Response::new(pb::RevokeResponse {
            revoked: done
                .serials
                .iter()
                .map(|s| trustca_model::hexfmt::encode(s))
                .collect(),
            sector: done.sector.to_string(),
            crl_number: done.crl_number,
        }))
    }

    async fn get_crl(
        &self,
        request: Request<pb::GetCrlRequest>,
    ) -> Result<Response<pb::GetCrlResponse>, Status> {
        let name = request.into_inner().sector;
        let publisher = Arc::clone(self.engine.publisher());
        let crl = if name == trustca_ca::root_crl::ROOT_CRL_NAME {
            publisher.root_crl().map_err(status)?
        } else {
            // A sector (its first CA) or a CA generation (`automotive.2`);
            // the publisher refuses other names as invalid.
            blocking("CRL", move || publisher.latest(&name)).await?
        };
        Ok(Response::new(pb::GetCrlResponse {
            crl_der: crl.der.to_vec(),
            crl_number: crl.number,
        }))
    }
}
