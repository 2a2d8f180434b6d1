//! Who may call what: the one place where a request's caller is
//! authenticated. The transport attaches the connection's verified
//! credential (or why there is none) as [`AuthenticatedPeer`]; this tower
//! layer looks the RPC up in [`RULES`], refuses a missing credential, a role
//! the RPC is not for, and a client certificate the store marks revoked,
//! and puts the caller in the request as [`AuthenticatedCaller`], where the
//! services read it. The services and engines still check what depends on
//! the request (sectors, names, the device asked about).
//!
//! A caller under a foreign root (accepted by the transport through the
//! trust list, [`crate::transport::ForeignCaller`]) is checked again on
//! every request against the list in force (`UNAUTHENTICATED` naming why
//! once it lapsed or no longer lists the caller's root for its sector) and
//! may only ask: [`FOREIGN_MAY_ASK`] and the public RPCs; anything else is
//! `PERMISSION_DENIED` ("foreign callers may only ask").

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::codegen::Service;
use tonic::codegen::http;
use trustca_ca::root_crl::RevokedCas;
use trustca_model::observe::Observer;
use trustca_model::{AuthenticatedCaller, AuthenticatedPeer, CertificateKind, Credential};
use trustca_store::{CertificateStatus, Storage, StoreError};

/// What a caller whose client certificate is revoked gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revoked {
    /// Refused with `UNAUTHENTICATED`.
    Refuse,
    /// Accepted; the string is the documented reason.
    #[allow(dead_code)]
    Accept(&'static str),
}

/// Who may call one RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone, without a client certificate (public data: CA certificates,
    /// CRLs, the linkage CRL, trust snapshots).
    Public,
    /// A verified credential of one of `roles` (empty: any role).
    Caller {
        /// The roles the RPC is for; empty means every role.
        roles: &'static [CertificateKind],
        /// What happens when the credential's certificate is revoked.
        revoked: Revoked,
    },
}

use CertificateKind::{
    Auditor, CertificationBody, Gateway, LongTerm, Manufacturer, Operator, RegistrationAuthority,
};

pub(crate) const fn caller(roles: &'static [CertificateKind]) -> Access {
    Access::Caller {
        roles,
        revoked: Revoked::Refuse,
    }
}

/// Every trustca RPC by gRPC path. A revoked client certificate is refused
/// everywhere: no RPC has a reason to serve a revoked caller (a revoked
/// device asking `Decide` is refused here rather than answered "deny").
pub(crate) const RULES: &[(&str, Access)] = &[
    ("/trustca.v1.Enrollment/Enroll", caller(&[Manufacturer])),
    (
        "/trustca.v1.Enrollment/EnrollBatch",
        caller(&[Manufacturer]),
    ),
    ("/trustca.v1.Enrollment/GetCaCertificates", Access::Public),
    (
        "/trustca.v1.Enrollment/RegisterCanonicalKey",
        caller(&[Manufacturer]),
    ),
    (
        "/trustca.v1.Attestation/GetEnrollmentChallenge",
        caller(&[Manufacturer]),
    ),
    (
        "/trustca.v1.Attestation/AddAttestationRoot",
        caller(&[Operator]),
    ),
    (
        "/trustca.v1.Attestation/RemoveAttestationRoot",
        caller(&[Operator]),
    ),
    (
        "/trustca.v1.Attestation/ListAttestationRoots",
        caller(&[Operator, Auditor]),
    ),
    ("/trustca.v1.TrustDatabase/GetTrust", caller(&[])),
    ("/trustca.v1.TrustDatabase/Decide", caller(&[LongTerm])),
    ("/trustca.v1.TrustDatabase/DecideBatch", caller(&[LongTerm])),
    ("/trustca.v1.TrustDatabase/ChangeTrust", caller(&[Operator])),
    (
        "/trustca.v1.TrustDatabase/BulkDowngrade",
        caller(&[Operator]),
    ),
    (
        "/trustca.v1.TrustDatabase/GetHistory",
        caller(&[Operator, Auditor]),
    ),
    (
        "/trustca.v1.TrustDatabase/ReloadPolicy",
        caller(&[Operator]),
    ),
    ("/trustca.v1.Revocation/Revoke", caller(&[Operator])),
    ("/trustca.v1.Revocation/BulkRevoke", caller(&[Operator])),
    ("/trustca.v1.Revocation/Restrict", caller(&[Operator])),
    ("/trustca.v1.Revocation/GetCrl", Access::Public),
    ("/trustca.v1.Anomalies/Report", caller(&[Gateway])),
    (
        "/trustca.v1.ModelRegistry/RegisterModel",
        caller(&[Manufacturer]),
    ),
    (
        "/trustca.v1.ModelRegistry/AddEvaluation",
        caller(&[CertificationBody, Manufacturer]),
    ),
    (
        "/trustca.v1.ModelRegistry/WithdrawEvaluation",
        caller(&[CertificationBody, Manufacturer]),
    ),
    (
        "/trustca.v1.ModelRegistry/SuspendModel",
        caller(&[Operator]),
    ),
    ("/trustca.v1.ModelRegistry/GetModel", caller(&[])),
    ("/trustca.v1.ModelRegistry/ListModels", caller(&[])),
    ("/trustca.v1.TrustSnapshots/GetSnapshot", Access::Public),
    // Systems of linked devices (issue 22): operators register; operators
    // and the devices linked change links; members, operators and auditors
    // see them. The registry checks sectors and membership.
    ("/trustca.v1.Systems/Register", caller(&[Operator])),
    ("/trustca.v1.Systems/Link", caller(&[Operator, LongTerm])),
    ("/trustca.v1.Systems/Unlink", caller(&[Operator, LongTerm])),
    (
        "/trustca.v1.Systems/Show",
        caller(&[Operator, Auditor, LongTerm]),
    ),
    (
        "/trustca.v1.Systems/Evaluate",
        caller(&[Operator, Auditor, LongTerm]),
    ),
    // The separated V2X authorities (issue 8): vehicles talk to the
    // registration authority only; the pseudonym CA and the linkage
    // authorities serve the registration authority's credential for
    // issuance and operators for resolution.
    (
        "/trustca.v1.V2xRegistration/GetTicketProfile",
        caller(&[LongTerm]),
    ),
    (
        "/trustca.v1.V2xRegistration/RequestTickets",
        caller(&[LongTerm]),
    ),
    (
        "/trustca.v1.V2xRegistration/DownloadTickets",
        caller(&[LongTerm]),
    ),
    (
        "/trustca.v1.V2xRegistration/RevokeVehicle",
        caller(&[Operator]),
    ),
    (
        "/trustca.v1.V2xRegistration/IdentifyVehicle",
        caller(&[Operator]),
    ),
    (
        "/trustca.v1.V2xPseudonymCa/IssueTickets",
        caller(&[RegistrationAuthority]),
    ),
    (
        "/trustca.v1.V2xPseudonymCa/AddRevocation",
        caller(&[RegistrationAuthority]),
    ),
    (
        "/trustca.v1.V2xPseudonymCa/ResolutionEnvelopes",
        caller(&[Operator]),
    ),
    ("/trustca.v1.V2xPseudonymCa/GetLinkageCrl", Access::Public),
    (
        "/trustca.v1.V2xLinkage/CreateChains",
        caller(&[RegistrationAuthority]),
    ),
    (
        "/trustca.v1.V2xLinkage/PreLinkageValues",
        caller(&[RegistrationAuthority]),
    ),
    (
        "/trustca.v1.V2xLinkage/ReleaseSeed",
        caller(&[RegistrationAuthority]),
    ),
    ("/trustca.v1.V2xLinkage/OpenEnvelope", caller(&[Operator])),
    (
        "/trustca.v1.V2xEnrollment/IssueEnrollmentCredential",
        caller(&[LongTerm]),
    ),
    ("/trustca.v1.V2xEnrollment/GetHashCrl", Access::Public),
    (
        "/trustca.v1.V2xEnrollment/RevokeEnrolment",
        caller(&[Operator]),
    ),
    (
        "/trustca.v1.V2xEnrollment/RevokeCaCertificate",
        caller(&[Operator]),
    ),
];

/// What a caller under a foreign root may reach besides the public RPCs:
/// the questions one sector's database asks another's.
pub(crate) const FOREIGN_MAY_ASK: &[&str] = &[
    "/trustca.v1.TrustDatabase/GetTrust",
    "/trustca.v1.TrustDatabase/Decide",
    "/trustca.v1.TrustDatabase/DecideBatch",
    "/trustca.v1.TrustSnapshots/GetSnapshot",
];

/// Refuses a foreign caller whose list no longer holds it, or that reaches
/// beyond [`FOREIGN_MAY_ASK`]; lets every other caller through.
pub(crate) fn check_foreign(
    path: &str,
    access: Access,
    foreign: Option<&crate::transport::ForeignCaller>,
    now: time::OffsetDateTime,
) -> Result<(), Status> {
    let Some(foreign) = foreign else {
        return Ok(());
    };
    if access == Access::Public {
        return Ok(());
    }
    foreign.still_listed(now).map_err(Status::unauthenticated)?;
    if !FOREIGN_MAY_ASK.contains(&path) {
        let names: Vec<&str> = FOREIGN_MAY_ASK.iter().map(|p| rpc_name(p)).collect();
        return Err(Status::permission_denied(format!(
            "foreign callers may only ask ({}): {} is not for a caller under a foreign root (recognised for sector {})",
            names.join(", "),
            rpc_name(path),
            foreign.sector
        )));
    }
    Ok(())
}

/// The rule of a path. Health and reflection are public; a trustca path
/// missing from the table (a new RPC nobody classified) gets the strictest
/// rule that still lets it be reached: any role, revoked refused.
pub(crate) fn rule(path: &str) -> Access {
    if let Some((_, access)) = RULES.iter().find(|(p, _)| *p == path) {
        return *access;
    }
    if path.starts_with("/trustca.") {
        caller(&[])
    } else {
        Access::Public
    }
}

/// The RPC's short name for messages (`Enroll` of `/trustca.v1.Enrollment/Enroll`).
fn rpc_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn roles_text(roles: &[CertificateKind]) -> String {
    let names: Vec<&str> = roles.iter().map(|k| k.as_str()).collect();
    names.join(" or ")
}

/// Whether client certificates are revoked in the store, remembered while
/// the store is unchanged ([`Storage::change_marker`]): a caller's every
/// RPC would otherwise read and check its certificate record again. At
/// most [`KnownRevocations::MAX`] serials; full, it is emptied.
#[derive(Debug, Default)]
pub(crate) struct KnownRevocations {
    known: std::sync::Mutex<(u64, std::collections::HashMap<Vec<u8>, bool>)>,
}

impl KnownRevocations {
    const MAX: usize = 4096;

    /// Whether the store holds the certificate `serial` as revoked.
    fn revoked(&self, storage: &dyn Storage, serial: &[u8]) -> Result<bool, StoreError> {
        let read = || {
            storage
                .certificate(serial)
                .map(|r| r.is_some_and(|r| matches!(r.status, CertificateStatus::Revoked { .. })))
        };
        // Read before the record: a write after this point changes it.
        let Some(marker) = storage.change_marker() else {
            return read();
        };
        if let Ok(known) = self.known.lock()
            && known.0 == marker
            && let Some(revoked) = known.1.get(serial)
        {
            return Ok(*revoked);
        }
        let revoked = read()?;
        if let Ok(mut known) = self.known.lock() {
            if known.0 != marker || known.1.len() >= Self::MAX {
                known.1.clear();
                known.0 = marker;
            }
            known.1.insert(serial.to_vec(), revoked);
        }
        Ok(revoked)
    }
}

/// Applies `access` to what the transport knew about the connection.
pub(crate) fn check(
    path: &str,
    access: Access,
    peer: Option<&AuthenticatedPeer>,
    storage: &dyn Storage,
    revoked_cas: Option<&RevokedCas>,
) -> Result<Option<Arc<Credential>>, Status> {
    check_known(
        path,
        access,
        peer,
        storage,
        revoked_cas,
        &KnownRevocations::default(),
    )
}

/// [`check`], with revocations known from earlier calls.
fn check_known(
    path: &str,
    access: Access,
    peer: Option<&AuthenticatedPeer>,
    storage: &dyn Storage,
    revoked_cas: Option<&RevokedCas>,
    known: &KnownRevocations,
) -> Result<Option<Arc<Credential>>, Status> {
    let Access::Caller { roles, revoked } = access else {
        return Ok(None);
    };
    let peer = peer
        .ok_or_else(|| Status::unauthenticated("no client certificate: connect with mutual TLS"))?;
    let cred = peer.credential.clone().map_err(Status::unauthenticated)?;
    if !roles.is_empty() && !roles.contains(&cred.kind) {
        return Err(Status::permission_denied(format!(
            "{} is for {} credentials; the caller holds {} certificate",
            rpc_name(path),
            roles_text(roles),
            cred.kind.with_article()
        )));
    }
    if revoked == Revoked::Refuse {
        // A sector CA the root revoked takes every certificate under it
        // along, including credentials issued offline that the store has
        // not recorded yet, and the service certificates of that sector's
        // own instance (a peer database). The root's own service
        // certificates name the sector `trustca`, which no CA is called.
        if let Some(ca) = revoked_cas.and_then(|c| c.revoked(cred.sector.as_str())) {
            return Err(Status::unauthenticated(format!(
                "client certificate's issuing CA ({}) was revoked by the root on {} ({})",
                ca.name,
                ca.date(),
                trustca_model::revocation::reason_name(ca.reason)
            )));
        }
        match known.revoked(storage, &cred.serial_octets) {
            Ok(true) => {
                return Err(Status::unauthenticated("client certificate is revoked"));
            }
            Ok(false) => {}
            // Damaged, or changed outside trustca (an unrevoked record):
            // not a passing failure to retry, and never served.
            Err(e) if e.class() == trustca_store::FailureClass::DataLoss => {
                return Err(Status::data_loss(format!(
                    "the client certificate's record cannot be trusted: {e}"
                )));
            }
            Err(e) => {
                tracing::warn!(error = %e, "credential lookup failed");
                return Err(Status::unavailable(
                    "the store cannot be read to check the client certificate; try again",
                ));
            }
        }
    }
    Ok(Some(cred))
}

/// The layer for `Server::builder().layer(...)`.
#[derive(Debug, Clone)]
pub(crate) struct AuthLayer {
    storage: Arc<dyn Storage>,
    observer: Arc<dyn Observer>,
    crls: Option<Arc<crate::crl_watch::CrlRevocations>>,
    revoked_cas: Option<Arc<RevokedCas>>,
    known: Arc<KnownRevocations>,
}

impl AuthLayer {
    /// Checks revocation against `storage`; store failures go to `observer`.
    pub(crate) fn new(storage: Arc<dyn Storage>, observer: Arc<dyn Observer>) -> Self {
        Self {
            storage,
            observer,
            crls: None,
            revoked_cas: None,
            known: Arc::default(),
        }
    }

    /// Also refuses callers whose sector CA the root revoked.
    pub(crate) fn with_revoked_cas(mut self, cas: Arc<RevokedCas>) -> Self {
        self.revoked_cas = Some(cas);
        self
    }

    /// Also refuses callers whose certificate is on one of these CRLs (for
    /// processes whose store holds no certificates).
    pub(crate) fn with_crls(mut self, crls: Arc<crate::crl_watch::CrlRevocations>) -> Self {
        self.crls = Some(crls);
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            storage: Arc::clone(&self.storage),
            observer: Arc::clone(&self.observer),
            crls: self.crls.clone(),
            revoked_cas: self.revoked_cas.clone(),
            known: Arc::clone(&self.known),
        }
    }
}

/// A service that runs only for authenticated, permitted callers.
#[derive(Debug, Clone)]
pub(crate) struct Authenticate<S> {
    inner: S,
    storage: Arc<dyn Storage>,
    observer: Arc<dyn Observer>,
    crls: Option<Arc<crate::crl_watch::CrlRevocations>>,
    revoked_cas: Option<Arc<RevokedCas>>,
    known: Arc<KnownRevocations>,
}

impl<S, B, ResBody> Service<http::Request<B>> for Authenticate<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let access = rule(path);
        let info = request
            .extensions()
            .get::<crate::transport::ConnectionInfo>();
        let peer = info.map(|c| &c.peer);
        let foreign = info.and_then(|c| c.foreign.as_ref());
        if let Err(status) = check_foreign(path, access, foreign, time::OffsetDateTime::now_utc()) {
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let on_crl = |cred: &Credential| {
            self.crls
                .as_ref()
                .is_some_and(|c| c.is_revoked(&cred.serial_octets))
        };
        let checked = match check_known(
            path,
            access,
            peer,
            self.storage.as_ref(),
            self.revoked_cas.as_deref(),
            &self.known,
        ) {
            Ok(Some(cred)) if on_crl(&cred) => Err(Status::unauthenticated(
                "client certificate is revoked (on a CRL)",
            )),
            other => other,
        };
        match checked {
            Ok(Some(cred)) => {
                request.extensions_mut().insert(AuthenticatedCaller(cred));
            }
            Ok(None) => {}
            Err(status) => {
                if status.code() == tonic::Code::Unavailable {
                    self.observer.store_error("credential");
                }
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every RPC of the published contract has a row, and no row names an
    /// RPC that does not exist.
    #[test]
    fn the_table_covers_every_rpc_exactly() {
        let set =
            prost_types::FileDescriptorSet::decode(trustca_proto::FILE_DESCRIPTOR_SET).unwrap();
        let mut paths = Vec::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    paths.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        paths.sort();
        let mut rows: Vec<String> = RULES.iter().map(|(p, _)| (*p).to_owned()).collect();
        rows.sort();
        let before = rows.len();
        rows.dedup();
        assert_eq!(rows.len(), before, "a path is listed twice");
        assert_eq!(rows, paths);
    }

    #[test]
    fn revoked_callers_are_refused_everywhere_and_public_data_is_public() {
        for (path, access) in RULES {
            match access {
                Access::Public => assert!(
                    path.ends_with("/GetCaCertificates")
                        || path.ends_with("/GetCrl")
                        || path.ends_with("/GetSnapshot")
                        || path.ends_with("/GetLinkageCrl")
                        || path.ends_with("/GetHashCrl"),
                    "{path} is public"
                ),
                Access::Caller { revoked, .. } => {
                    assert_eq!(*revoked, Revoked::Refuse, "{path} accepts revoked callers")
                }
            }
        }
        assert_eq!(rule("/grpc.health.v1.Health/Check"), Access::Public);
        assert_eq!(rule("/trustca.v1.Enrollment/NotYetClassified"), caller(&[]));
    }

    #[test]
    fn roles_follow_the_table() {
        let role = |p: &str| match rule(p) {
            Access::Caller { roles, .. } => roles.to_vec(),
            Access::Public => vec![],
        };
        assert_eq!(role("/trustca.v1.Enrollment/Enroll"), vec![Manufacturer]);
        // Only the registration authority's credential issues V2X tickets.
        assert_eq!(
            role("/trustca.v1.V2xPseudonymCa/IssueTickets"),
            vec![RegistrationAuthority]
        );
        assert_eq!(
            role("/trustca.v1.V2xLinkage/PreLinkageValues"),
            vec![RegistrationAuthority]
        );
        assert_eq!(role("/trustca.v1.TrustDatabase/Decide"), vec![LongTerm]);
        assert_eq!(
            role("/trustca.v1.TrustDatabase/GetHistory"),
            vec![Operator, Auditor]
        );
        assert!(role("/trustca.v1.TrustDatabase/GetTrust").is_empty());
        assert_eq!(role("/trustca.v1.Anomalies/Report"), vec![Gateway]);
    }

    /// A foreign caller whose list is gone is refused on every RPC but the
    /// public ones, naming why; only asking RPCs are open to foreign callers.
    #[test]
    fn a_foreign_caller_without_a_list_in_force_is_unauthenticated() {
        let foreign = crate::transport::ForeignCaller {
            root: vec![0x30],
            sector: trustca_model::SectorName::new("railway").unwrap(),
            list: Default::default(),
        };
        let now = time::OffsetDateTime::now_utc();
        let ask = "/trustca.v1.TrustDatabase/GetTrust";
        let err = check_foreign(ask, rule(ask), Some(&foreign), now).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.message().contains("no trust list"), "{}", err.message());
        let public = "/trustca.v1.Revocation/GetCrl";
        check_foreign(public, rule(public), Some(&foreign), now).unwrap();
        check_foreign(ask, rule(ask), None, now).unwrap();
        for path in FOREIGN_MAY_ASK {
            assert!(RULES.iter().any(|(p, _)| p == path), "{path}");
        }
    }

    #[test]
    fn a_missing_credential_is_unauthenticated_with_the_transport_reason() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::StoreConfig::in_data_dir(dir.path()).open().unwrap();
        let path = "/trustca.v1.Enrollment/Enroll";
        let err = check(path, rule(path), None, store.as_ref(), None).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let peer = AuthenticatedPeer {
            credential: Err("client certificate not trusted".into()),
            remote: None,
        };
        let err = check(path, rule(path), Some(&peer), store.as_ref(), None).unwrap_err();
        assert_eq!(err.message(), "client certificate not trusted");
        let public = "/trustca.v1.Revocation/GetCrl";
        assert!(
            check(public, rule(public), None, store.as_ref(), None)
                .unwrap()
                .is_none()
        );
    }
}
