//! EST (RFC 7030, Enrollment over Secure Transport) for factory lines and
//! devices: `trustca serve --est-listen ADDR` serves
//! `/.well-known/est/<label>/{cacerts,simpleenroll,simplereenroll,csrattrs}`
//! over HTTPS (HTTP/1.1 and HTTP/2) with the gRPC port's TLS identity,
//! root and client-certificate check. This module is the front end's wire
//! (routes, handlers, bodies, statuses); the server binds the socket,
//! runs TLS and the connection table, and lends it its caller check
//! ([`CallerCheck`]) and request counters ([`HttpCounters`]).
//!
//! - A **label** names a sector (`automotive`, `hems`, ...). Without a label,
//!   `cacerts` answers every sector CA, `csrattrs` what every sector
//!   accepts, `simplereenroll` the client certificate's own sector and
//!   `simpleenroll` the manufacturer's sector if its credential names only
//!   one. An unknown label is `404`.
//! - **`simpleenroll`**: a manufacturer credential as TLS client certificate;
//!   the CSR subject names the device: `O` = manufacturer (must be the
//!   credential's), `CN` = model, `serialNumber` = device serial, and the
//!   firmware version is the CSR attribute [`FIRMWARE_VERSION_OID`] (a
//!   UTF8String; `unknown` when absent).
//! - **`simplereenroll`**: the device's current certificate as TLS client
//!   certificate, a new key in the CSR, the same identity; the level is
//!   evaluated again under the current policy from the evidence recorded in
//!   that certificate.
//! - Issuance goes through [`EnrollmentEngine::enroll_many`], the engine of
//!   gRPC `Enroll`: the same checks, audit entries and group commit; the
//!   certificate is answered only once it is durable.
//!
//! Wire format: the request body is a base64 DER PKCS#10
//! (`application/pkcs10`, whitespace and line breaks tolerated); answers are
//! base64 DER certs-only CMS SignedData (`application/pkcs7-mime;
//! smime-type=certs-only`) or CsrAttrs (`application/csrattrs`), with
//! `Content-Transfer-Encoding: base64`. Refusals are plain-text sentences;
//! [`EstError::status`] is the one place that maps a refusal to its HTTP
//! status. HTTP Basic bootstrap is not offered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use der::asn1::{ObjectIdentifier, SetOfVec};
use der::{Any, Decode, Encode, Tagged};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use tonic::Status;
use trustca_ca::attestation::TpmKeyAttestation;
use trustca_ca::{CaError, DeviceAttributes, EnrollmentEngine, EnrollmentRequest};
use trustca_model::extension::EvaluationBasis;
use trustca_model::policy::KeyAlgorithm;
use trustca_model::{
    AuthenticatedPeer, CertificateKind, Credential, EvidenceItem, ModelError, SectorName,
};
use trustca_store::Storage;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

use crate::ApiError;

pub mod attestation;
#[cfg(test)]
mod tests;
mod wire;

use wire::*;
pub use wire::{certs_only, csr_attrs, media_type, read_body, refusal};

/// The largest request body accepted (a base64 CSR is about 1 KiB).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// How long a client may take to send a request's headers, and then its body.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// What `Retry-After` says when the store cannot be reached.
pub const RETRY_AFTER_SECONDS: u32 = 5;
/// The PKCS#10 attribute carrying the device's firmware version (one
/// UTF8String, PrintableString or IA5String value): trustca's
/// `firmwareVersion`, a UUID OID (`86b7f9ec-5954-464a-aa26-19dca811907c`)
/// under Microsoft's GUID-derived arc, like the trust-level extension.
pub const FIRMWARE_VERSION_OID: &str =
    "1.2.840.113556.1.8000.2554.34487.63980.22868.17994.43558.1694888.1151100";
/// The firmware version recorded when a `simpleenroll` CSR names none.
pub const FIRMWARE_UNKNOWN: &str = "unknown";

const WELL_KNOWN: &str = "/.well-known/est/";
const PKCS7: &str = "application/pkcs7-mime; smime-type=certs-only";
const CSRATTRS: &str = "application/csrattrs";

const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const AT_ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const AT_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const AT_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
const AT_FIRMWARE_VERSION: ObjectIdentifier = ObjectIdentifier::new_unwrap(FIRMWARE_VERSION_OID);

/// Why an EST request is refused; [`EstError::status`] gives its HTTP status
/// and the `Display` text is the plain-text body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EstError {
    /// The path is not an EST operation this server offers (404).
    #[error("{0}")]
    NotFound(String),
    /// The label names no sector of the policies (404).
    #[error("unknown EST label {label}: the labels are the sectors ({known})")]
    UnknownLabel {
        /// The label as given (printable ASCII, truncated).
        label: String,
        /// The sectors.
        known: String,
    },
    /// The operation exists but not with this method (405).
    #[error("{operation} takes {allowed} only")]
    MethodNotAllowed {
        /// The operation.
        operation: &'static str,
        /// The method it takes.
        allowed: &'static str,
    },
    /// The request is malformed: content type, base64, PKCS#10 or subject (400).
    #[error("{0}")]
    BadRequest(String),
    /// The body exceeds [`MAX_BODY_BYTES`] (413).
    #[error("the request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    /// The client did not send its request within [`REQUEST_READ_TIMEOUT`] (408).
    #[error("the request body did not arrive within {} s", REQUEST_READ_TIMEOUT.as_secs())]
    Timeout,
    /// The TLS client certificate is missing, untrusted, revoked, of the
    /// wrong role or sector, or the store cannot tell (401, 403 or 503).
    #[error("{reason}")]
    Caller {
        /// 401 (no usable credential), 403 (wrong role or sector) or 503.
        status: StatusCode,
        /// The sentence.
        reason: String,
    },
    /// The enrollment engine refused or failed (status by its gRPC code).
    #[error(transparent)]
    Ca(#[from] CaError),
    /// A response could not be encoded (500).
    #[error("the response could not be encoded: {0}")]
    Encoding(String),
}

impl EstError {
    /// The HTTP status of a refusal: the one mapping for EST. Engine errors
    /// go through their gRPC code, so EST and gRPC refuse alike.
    pub fn status(&self) -> StatusCode {
        match self {
            EstError::NotFound(_) | EstError::UnknownLabel { .. } => StatusCode::NOT_FOUND,
            EstError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            EstError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EstError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            EstError::Timeout => StatusCode::REQUEST_TIMEOUT,
            EstError::Caller { status, .. } => *status,
            EstError::Ca(e) => crate::http_status(e.class()),
            EstError::Encoding(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The EST operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    CaCerts,
    SimpleEnroll,
    SimpleReenroll,
    CsrAttrs,
    AttestChallenge,
}

impl Operation {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cacerts" => Self::CaCerts,
            "simpleenroll" => Self::SimpleEnroll,
            "simplereenroll" => Self::SimpleReenroll,
            "csrattrs" => Self::CsrAttrs,
            "attestchallenge" => Self::AttestChallenge,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::CaCerts => "cacerts",
            Self::SimpleEnroll => "simpleenroll",
            Self::SimpleReenroll => "simplereenroll",
            Self::CsrAttrs => "csrattrs",
            Self::AttestChallenge => "attestchallenge",
        }
    }

    fn method(self) -> Method {
        match self {
            Self::CaCerts | Self::CsrAttrs => Method::GET,
            Self::SimpleEnroll | Self::SimpleReenroll | Self::AttestChallenge => Method::POST,
        }
    }
}

/// What the log line of a request says.
#[derive(Debug, Default)]
struct RequestLog {
    operation: &'static str,
    label: String,
    caller: String,
}

/// An HTTP answer of the front ends.
pub type Answer = Response<Full<Bytes>>;

/// What an HTTPS listener of the server answers with: EST (with the
/// IEEE 1609.2.1 resources beside it) in the CA's process, the 1609.2.1
/// resources alone in a registration authority's (`serve --role`).
#[tonic::async_trait]
pub trait HttpsService: Send + Sync + 'static {
    /// Answers one request (and logs it).
    async fn answer(&self, peer: &AuthenticatedPeer, request: Request<Incoming>) -> Answer;
}

/// The server's caller check, which the HTTPS front ends share with its
/// gRPC authentication layer: verified chain, role, client certificate
/// not revoked (nor its sector CA).
pub trait CallerCheck: Send + Sync + 'static {
    /// The credential `peer` connected with, if it is of one of `roles`
    /// and not revoked; `path` names the operation in refusals. `Ok(None)`:
    /// no client certificate was shown.
    fn check(
        &self,
        path: &str,
        roles: &'static [CertificateKind],
        peer: &AuthenticatedPeer,
    ) -> Result<Option<Arc<Credential>>, Status>;
}

/// Where the server counts the HTTPS front ends' requests (its metrics).
pub trait HttpCounters: Send + Sync + 'static {
    /// One EST request of `operation` answered with `status`.
    fn est_request(&self, operation: &str, status: u16);
    /// One IEEE 1609.2.1 request of `resource` answered with `status`.
    fn v2x_http_request(&self, resource: &str, status: u16);
    /// One ETSI TS 102 941 request of `resource` answered with `status`.
    fn etsi_http_request(&self, resource: &str, status: u16);
}

#[tonic::async_trait]
impl HttpsService for Est {
    async fn answer(&self, peer: &AuthenticatedPeer, request: Request<Incoming>) -> Answer {
        Est::answer(self, peer, request).await
    }
}

/// The EST endpoint's state: the enrollment engine, the store (for caller
/// revocation and the device's record) and the answers that never change
/// while the server runs (CA certificates and CSR attributes, encoded once).
pub struct Est {
    engine: Arc<EnrollmentEngine>,
    storage: Arc<dyn Storage>,
    callers: Arc<dyn CallerCheck>,
    counters: Arc<dyn HttpCounters>,
    sectors: Vec<SectorName>,
    cacerts: BTreeMap<SectorName, Bytes>,
    all_cacerts: Bytes,
    csrattrs: BTreeMap<SectorName, Bytes>,
    all_csrattrs: Bytes,
    /// The IEEE 1609.2.1 resources under `/v2x/`, when this process runs
    /// the V2X authorities.
    v2x: Option<Arc<crate::v2x_http::V2xHttp>>,
}

impl std::fmt::Debug for Est {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Est")
            .field("sectors", &self.sectors)
            .finish_non_exhaustive()
    }
}

impl Est {
    /// Encodes the fixed answers from the engine's hierarchy and policies;
    /// callers are checked by `callers` against `storage`'s records, and
    /// requests counted in `counters`.
    pub fn new(
        engine: Arc<EnrollmentEngine>,
        storage: Arc<dyn Storage>,
        callers: Arc<dyn CallerCheck>,
        counters: Arc<dyn HttpCounters>,
    ) -> Result<Self, ApiError> {
        let bad = |e: &dyn std::fmt::Display| ApiError::Setup(format!("EST: {e}"));
        let hierarchy = engine.hierarchy();
        let root = hierarchy.root_der.clone();
        let mut cacerts = BTreeMap::new();
        let mut csrattrs = BTreeMap::new();
        let mut every_ca = Vec::new();
        let mut every_algorithm = Vec::new();
        for (sector, ca) in &hierarchy.sectors {
            let der = certs_only(&[ca.cert_der.clone(), root.clone()]).map_err(|e| bad(&e))?;
            cacerts.insert(sector.clone(), Bytes::from(base64_lines(&der)));
            every_ca.push(ca.cert_der.clone());
            let policies = engine.policies();
            let algorithms = &policies
                .sector(sector.as_str())
                .map_err(|e| bad(&e))?
                .certificate
                .device_key_algorithms;
            for a in algorithms {
                if !every_algorithm.contains(a) {
                    every_algorithm.push(*a);
                }
            }
            let attrs = csr_attrs(algorithms).map_err(|e| bad(&e))?;
            csrattrs.insert(sector.clone(), Bytes::from(base64_lines(&attrs)));
        }
        every_ca.push(root);
        let all_cacerts = Bytes::from(base64_lines(&certs_only(&every_ca).map_err(|e| bad(&e))?));
        let all_csrattrs = Bytes::from(base64_lines(
            &csr_attrs(&every_algorithm).map_err(|e| bad(&e))?,
        ));
        let sectors = hierarchy.sectors.keys().cloned().collect();
        Ok(Self {
            engine,
            storage,
            callers,
            counters,
            sectors,
            cacerts,
            all_cacerts,
            csrattrs,
            all_csrattrs,
            v2x: None,
        })
    }

    /// Serves the IEEE 1609.2.1 resources beside EST.
    pub fn with_v2x(mut self, v2x: Arc<crate::v2x_http::V2xHttp>) -> Self {
        self.v2x = Some(v2x);
        self
    }

    /// Answers one request and logs one line about it.
    async fn answer(&self, peer: &AuthenticatedPeer, request: Request<Incoming>) -> Answer {
        if let Some(v2x) = &self.v2x
            && request.uri().path().starts_with(crate::v2x_http::PREFIX)
        {
            return HttpsService::answer(v2x.as_ref(), peer, request).await;
        }
        let started = Instant::now();
        let mut log = RequestLog::default();
        // The body (at most MAX_BODY_BYTES) is read before anything is
        // decided, so that a refusal never leaves a request half-read (an
        // HTTP/2 stream reset that some clients report as an error).
        let (parts, body) = request.into_parts();
        let body = if parts.method == Method::POST {
            read_body(&parts.headers, body).await
        } else {
            Ok(Bytes::new())
        };
        let result = self.dispatch(peer, &parts, body, &mut log).await;
        let response = result.unwrap_or_else(refusal);
        let status = response.status();
        self.counters.est_request(log.operation, status.as_u16());
        let outcome = if status.is_success() { "ok" } else { "refused" };
        tracing::info!(
            est = log.operation,
            label = %log.label,
            caller = %log.caller,
            remote = %peer.remote.map(|r| r.to_string()).unwrap_or_default(),
            status = status.as_u16(),
            outcome,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "EST request"
        );
        response
    }

    async fn dispatch(
        &self,
        peer: &AuthenticatedPeer,
        request: &Parts,
        body: Result<Bytes, EstError>,
        log: &mut RequestLog,
    ) -> Result<Answer, EstError> {
        let (label, operation) = route(request.uri.path())?;
        log.operation = operation.as_str();
        log.label = label.map(printable).unwrap_or_default();
        let sector = label.map(|l| self.sector(l)).transpose()?;
        if request.method != operation.method() {
            return Err(EstError::MethodNotAllowed {
                operation: operation.as_str(),
                allowed: if operation.method() == Method::GET {
                    "GET"
                } else {
                    "POST"
                },
            });
        }
        match operation {
            Operation::CaCerts => Ok(base64_answer(
                PKCS7,
                match &sector {
                    Some(s) => self.cacerts.get(s).cloned().unwrap_or_default(),
                    None => self.all_cacerts.clone(),
                },
            )),
            Operation::CsrAttrs => {
                let attrs = match &sector {
                    Some(s) => self.csrattrs.get(s).cloned().unwrap_or_default(),
                    None => self.all_csrattrs.clone(),
                };
                if attrs.is_empty() {
                    return Ok(empty(StatusCode::NO_CONTENT));
                }
                Ok(base64_answer(CSRATTRS, attrs))
            }
            Operation::SimpleEnroll => self.simple_enroll(sector, peer, request, body, log).await,
            Operation::SimpleReenroll => {
                self.simple_reenroll(sector, peer, request, body, log).await
            }
            Operation::AttestChallenge => {
                let caller = self.authenticate(
                    Operation::AttestChallenge,
                    &[CertificateKind::Manufacturer],
                    peer,
                )?;
                log.caller = caller.name.clone();
                let sector = sector.ok_or_else(|| {
                    EstError::NotFound(
                        "name the sector: /.well-known/est/<sector>/attestchallenge".into(),
                    )
                })?;
                attestation::challenge(&self.engine, caller, sector, request, body).await
            }
        }
    }

    /// The sector a label names.
    fn sector(&self, label: &str) -> Result<SectorName, EstError> {
        self.sectors
            .iter()
            .find(|s| s.as_str() == label)
            .cloned()
            .ok_or_else(|| EstError::UnknownLabel {
                label: printable(label),
                known: self.known_labels(),
            })
    }

    fn known_labels(&self) -> String {
        self.sectors
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The caller's credential, by the gRPC authentication's own check:
    /// verified chain, role, client certificate not revoked.
    fn authenticate(
        &self,
        operation: Operation,
        roles: &'static [CertificateKind],
        peer: &AuthenticatedPeer,
    ) -> Result<Arc<Credential>, EstError> {
        let path = format!("{WELL_KNOWN}{}", operation.as_str());
        match self.callers.check(&path, roles, peer) {
            Ok(Some(credential)) => Ok(credential),
            Ok(None) => Err(EstError::Caller {
                status: StatusCode::UNAUTHORIZED,
                reason: "no client certificate: connect with a TLS client certificate".into(),
            }),
            Err(status) => Err(EstError::Caller {
                status: crate::http_status(trustca_proto::class_of(status.code())),
                reason: status.message().to_owned(),
            }),
        }
    }

    async fn simple_enroll(
        &self,
        sector: Option<SectorName>,
        peer: &AuthenticatedPeer,
        request: &Parts,
        body: Result<Bytes, EstError>,
        log: &mut RequestLog,
    ) -> Result<Answer, EstError> {
        let caller = self.authenticate(
            Operation::SimpleEnroll,
            &[CertificateKind::Manufacturer],
            peer,
        )?;
        log.caller = caller.name.clone();
        let sector = match sector {
            Some(s) => s,
            None => match caller.sectors.as_slice() {
                [only] => only.clone(),
                _ => {
                    return Err(EstError::NotFound(format!(
                        "name the sector: /.well-known/est/<sector>/simpleenroll (this credential is for {})",
                        caller
                            .sectors
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            },
        };
        if log.label.is_empty() {
            log.label = sector.to_string();
        }
        let csr_der = pkcs10(request, body)?;
        let subject = CsrSubject::read(&csr_der)?;
        let need = |v: Option<String>, what: &str| {
            v.ok_or_else(|| EstError::BadRequest(format!("the CSR subject has no {what}")))
        };
        let manufacturer = need(
            subject.organization,
            "O (organizationName: the manufacturer)",
        )?;
        let model = need(subject.common_name, "CN (commonName: the model)")?;
        let firmware_version = match subject.firmware_version {
            Some(v) => v,
            // An unregistered model is refused by the engine, after the
            // caller's rights (so another manufacturer's O is 403, not 409).
            None => self
                .current_release(&sector, &manufacturer, &model)?
                .unwrap_or_else(|| FIRMWARE_UNKNOWN.to_owned()),
        };
        let device = DeviceAttributes {
            sector: sector.to_string(),
            manufacturer,
            model,
            serial: need(subject.serial_number, "serialNumber (the device serial)")?,
            firmware_version,
        };
        let request = EnrollmentRequest {
            csr_der,
            device,
            evidence: Vec::new(),
            renewal: false,
            // EST carries no declared evidence: the level comes from the
            // registry, and a TPM attestation is recorded beside it.
            require_registered_model: true,
            tpm_attestation: subject.tpm_attestation,
        };
        self.enroll(&caller, request).await
    }

    /// The firmware of a device whose CSR names none: the model's current
    /// release, i.e. the lowest version of its newest registered range;
    /// `None` for a model not registered.
    fn current_release(
        &self,
        sector: &SectorName,
        manufacturer: &str,
        model: &str,
    ) -> Result<Option<String>, EstError> {
        let ranges = trustca_store::registry::model_ranges(
            self.storage.as_ref(),
            sector.as_str(),
            manufacturer,
            model,
        )
        .map_err(CaError::from)?;
        let release = |r: &trustca_model::FirmwareRange| {
            if r.min.is_empty() {
                r.max.clone()
            } else {
                r.min.clone()
            }
        };
        Ok(ranges
            .iter()
            .map(|m| release(&m.key.firmware))
            .max_by(|a, b| trustca_model::firmware::compare(a, b)))
    }

    async fn simple_reenroll(
        &self,
        sector: Option<SectorName>,
        peer: &AuthenticatedPeer,
        request: &Parts,
        body: Result<Bytes, EstError>,
        log: &mut RequestLog,
    ) -> Result<Answer, EstError> {
        let caller = self.authenticate(
            Operation::SimpleReenroll,
            &[CertificateKind::LongTerm],
            peer,
        )?;
        let identity = caller.identity.clone().ok_or_else(|| EstError::Caller {
            status: StatusCode::FORBIDDEN,
            reason: "the client certificate names no device identity".into(),
        })?;
        log.caller = identity.urn();
        if let Some(label) = &sector
            && *label != identity.sector
        {
            return Err(EstError::Caller {
                status: StatusCode::FORBIDDEN,
                reason: format!(
                    "the client certificate is a {} device's; re-enroll at /.well-known/est/{}/simplereenroll",
                    identity.sector, identity.sector
                ),
            });
        }
        if log.label.is_empty() {
            log.label = identity.sector.to_string();
        }
        let csr_der = pkcs10(request, body)?;
        let subject = CsrSubject::read(&csr_der)?;
        if subject.tpm_attestation.is_some() {
            return Err(EstError::BadRequest(
                "simplereenroll takes no TPM attestation: the challenge is a manufacturer's (attestchallenge, then simpleenroll)".into(),
            ));
        }
        // RFC 7030 4.2.2: the subject is that of the certificate renewed.
        for (given, expected, what) in [
            (&subject.organization, &identity.manufacturer, "O"),
            (&subject.serial_number, &identity.serial, "serialNumber"),
        ] {
            if let Some(given) = given
                && given != expected
            {
                return Err(EstError::BadRequest(format!(
                    "the CSR subject's {what} differs from the certificate being renewed ({expected})"
                )));
            }
        }
        let firmware_version = match subject.firmware_version {
            Some(v) => v,
            None => self
                .storage
                .device(&identity.key())
                .map_err(CaError::from)?
                .map(|d| d.firmware_version)
                .unwrap_or_else(|| FIRMWARE_UNKNOWN.to_owned()),
        };
        let request = EnrollmentRequest {
            csr_der,
            device: DeviceAttributes {
                sector: identity.sector.to_string(),
                manufacturer: identity.manufacturer.clone(),
                model: identity.model.clone(),
                serial: identity.serial.clone(),
                firmware_version,
            },
            // The level is evaluated again, under the policy in force: from
            // the model registry for a registered model, else from the
            // evidence the current certificate records.
            evidence: if caller
                .extension
                .basis
                .iter()
                .any(|b| b.evidence == "registered-model")
            {
                Vec::new()
            } else {
                evidence_of(&caller.extension.basis).map_err(CaError::from)?
            },
            renewal: true,
            require_registered_model: true,
            tpm_attestation: None,
        };
        self.enroll(&caller, request).await
    }

    /// Issues through the engine and answers the leaf as certs-only CMS.
    async fn enroll(
        &self,
        caller: &Credential,
        request: EnrollmentRequest,
    ) -> Result<Answer, EstError> {
        let outcome = self
            .engine
            .enroll_many(caller, vec![request])
            .await
            .pop()
            .unwrap_or_else(|| Err(CaError::Signing("no result".into())))?;
        let leaf = outcome
            .chain_der
            .first()
            .ok_or_else(|| EstError::Encoding("the engine returned no certificate".into()))?;
        let der = certs_only(std::slice::from_ref(leaf))
            .map_err(|e| EstError::Encoding(e.to_string()))?;
        tracing::debug!(identity = %outcome.identity, serial = %outcome.serial, level = outcome.level, "EST issued");
        Ok(base64_answer(PKCS7, Bytes::from(base64_lines(&der))))
    }
}

/// Splits `/.well-known/est/[<label>/]<operation>`.
fn route(path: &str) -> Result<(Option<&str>, Operation), EstError> {
    let rest = path.strip_prefix(WELL_KNOWN).ok_or_else(|| {
        EstError::NotFound("not an EST path: EST is served under /.well-known/est/".into())
    })?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (label, op) = match parts.as_slice() {
        [op] => (None, *op),
        [label, op] if !label.is_empty() => (Some(*label), *op),
        _ => {
            return Err(EstError::NotFound(
                "not an EST path: use /.well-known/est/[<label>/]<operation>".into(),
            ));
        }
    };
    let operation = Operation::parse(op).ok_or_else(|| {
        EstError::NotFound(format!(
            "unknown EST operation {}: offered are cacerts, simpleenroll, simplereenroll, csrattrs and attestchallenge",
            printable(op)
        ))
    })?;
    Ok((label, operation))
}

/// Client text fit to echo: printable ASCII, at most 64 characters.
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}
