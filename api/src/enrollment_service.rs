//! The `trustca.v1.Enrollment` gRPC service: authenticates the caller from
//! the connection's client certificate, converts messages, and logs one line
//! per request (role, sector, outcome; never key material).

use std::sync::Arc;

use tonic::{Request, Response, Status, Streaming};
use trustca_ca::attestation::TpmKeyAttestation;
use trustca_ca::{
    CaError, DeviceAttributes, EnrollmentEngine, EnrollmentOutcome, EnrollmentRequest,
};
use trustca_model::limits::StreamLimits;
use trustca_model::{Credential, EvidenceItem};
use trustca_proto::v1 as pb;
use trustca_proto::v1::enrollment_server::Enrollment;

use crate::status::{blocking, caller, code, status};
use crate::trust_convert::ConvertChecked;

pub use crate::enroll_batch::MAX_BATCH_ITEMS;

/// The enrollment service.
#[derive(Debug, Clone)]
pub struct EnrollmentService {
    engine: Arc<EnrollmentEngine>,
    limits: StreamLimits,
}

impl EnrollmentService {
    /// Wraps an engine, with the default stream limits.
    pub fn new(engine: Arc<EnrollmentEngine>) -> Self {
        Self {
            engine,
            limits: StreamLimits::default(),
        }
    }

    /// Ends `EnrollBatch` streams by `limits` instead of the defaults.
    pub fn with_stream_limits(mut self, limits: StreamLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// The engine's request from the wire; an evidence type outside the
/// vocabulary names itself and the known ones.
pub(crate) fn to_request(msg: pb::EnrollRequest) -> Result<EnrollmentRequest, CaError> {
    let d = msg.device.unwrap_or_default();
    Ok(EnrollmentRequest {
        csr_der: msg.csr_der,
        device: DeviceAttributes {
            sector: d.sector,
            manufacturer: d.manufacturer,
            model: d.model,
            serial: d.serial,
            firmware_version: d.firmware_version,
        },
        evidence: msg
            .evidence
            .into_iter()
            .map(ConvertChecked::<EvidenceItem>::convert_checked)
            .collect::<Result<_, _>>()?,
        renewal: msg.renewal,
        require_registered_model: false,
        tpm_attestation: msg.tpm_attestation.map(|a| TpmKeyAttestation {
            challenge_id: a.challenge_id,
            key_public: a.key_public,
            attest: a.attest,
            signature: a.signature,
        }),
    })
}

pub(crate) fn to_response(o: EnrollmentOutcome) -> pb::EnrollResponse {
    pb::EnrollResponse {
        chain_der: o.chain_der,
        serial: o.serial,
        level: o.level as u32,
        identity: o.identity,
        not_after: o
            .not_after
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        policy_version: o.policy_version,
    }
}

fn log_outcome(caller: &Credential, sector: &str, result: &Result<EnrollmentOutcome, CaError>) {
    match result {
        Ok(o) => tracing::info!(
            rpc = "Enroll",
            role = caller.kind.as_str(),
            caller = %caller.name,
            sector,
            outcome = "issued",
            serial = %o.serial,
            level = o.level
        ),
        Err(e) => tracing::info!(
            rpc = "Enroll",
            role = caller.kind.as_str(),
            caller = %caller.name,
            sector,
            outcome = "refused",
            code = ?code(e),
            reason = %e
        ),
    }
}

#[tonic::async_trait]
impl Enrollment for EnrollmentService {
    async fn enroll(
        &self,
        request: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::EnrollResponse>, Status> {
        let caller = caller(&request)?;
        let req = to_request(request.into_inner()).map_err(status)?;
        let sector = req.device.sector.clone();
        let result = self.engine.enroll_one(Arc::clone(&caller), req).await;
        log_outcome(&caller, &sector, &result);
        result
            .map(|o| Response::new(to_response(o)))
            .map_err(status)
    }

    type EnrollBatchStream =
        tokio_stream::wrappers::ReceiverStream<Result<pb::EnrollBatchResult, Status>>;

    async fn enroll_batch(
        &self,
        request: Request<Streaming<pb::EnrollBatchItem>>,
    ) -> Result<Response<Self::EnrollBatchStream>, Status> {
        let caller = caller(&request)?;
        // One more than the queue: the last message's reserved slot.
        let (tx, rx) = tokio::sync::mpsc::channel(crate::enroll_batch::QUEUE + 1);
        tokio::spawn(crate::enroll_batch::run(
            Arc::clone(&self.engine),
            caller,
            request.into_inner(),
            tx,
            self.limits,
        ));
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn register_canonical_key(
        &self,
        request: Request<pb::RegisterCanonicalKeyRequest>,
    ) -> Result<Response<pb::RegisterCanonicalKeyResponse>, Status> {
        let caller = caller(&request)?;
        let msg = request.into_inner();
        let engine = Arc::clone(&self.engine);
        let who = Arc::clone(&caller);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let done = blocking("canonical key registration", move || {
            engine.register_canonical_key(&who, &msg.device_urn, &msg.canonical_key, now)
        })
        .await;
        match &done {
            Ok(r) => {
                tracing::info!(rpc = "RegisterCanonicalKey", caller = %caller.name, device = %r.urn, outcome = "registered")
            }
            Err(s) => {
                tracing::info!(rpc = "RegisterCanonicalKey", caller = %caller.name, outcome = "refused", code = ?s.code(), reason = %s.message())
            }
        }
        let r = done?;
        Ok(Response::new(pb::RegisterCanonicalKeyResponse {
            device_urn: r.urn,
            canonical_key: r.key.compressed().to_vec(),
            trust_level: u32::from(r.trust_level),
        }))
    }

    async fn get_ca_certificates(
        &self,
        _request: Request<pb::GetCaCertificatesRequest>,
    ) -> Result<Response<pb::GetCaCertificatesResponse>, Status> {
        let h = self.engine.hierarchy();
        Ok(Response::new(pb::GetCaCertificatesResponse {
            root_der: h.root_der.clone(),
            sector_ca_der: h
                .sectors
                .iter()
                .map(|(s, ca)| (s.to_string(), ca.cert_der.clone()))
                .collect(),
        }))
    }
}

pub(crate) fn failure(id: u64, code: tonic::Code, message: String) -> pb::EnrollBatchResult {
    pb::EnrollBatchResult {
        id,
        outcome: Some(pb::enroll_batch_result::Outcome::Error(pb::Failure {
            code: code as i32,
            message,
        })),
    }
}
