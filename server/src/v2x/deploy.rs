//! Which V2X authorities one process runs, built once: all four in the
//! CA's process (`trustca serve`, no separation of secrets) or one from
//! its own directory (`serve --role`), and the gRPC services around them.

use std::path::Path;
use std::sync::Arc;

use trustca_ca::{CaHierarchy, Passphrase};
use trustca_datadir::{CaFiles, DataDir};
use trustca_proto::v1 as pb;
use trustca_pseudonym::LaId;
use trustca_scms::{
    BatchPolicy, LinkageAuthority, ProfileSlot, PseudonymCa, RegistrationAuthority,
};
use trustca_store::{SledStorage, Storage};
use trustca_v2x::{CertProfile, Certificate};

use super::hash_crls::HashCrlPublisher;
use super::{
    EnrollmentCredentialService, FLUSH_INTERVAL, LinkageService, MAX_RESPONSE_BYTES,
    PseudonymCaService, RegistrationService, RemoteLinkage, RemotePseudonymCa, RemoteTls, V2xRole,
    init_authorities, linkage_authority, linkage_authority_with, load_key, now, open_store,
    pseudonym_ca, pseudonym_ca_with, registration_authority,
};
use crate::error::{Result, ServerError, io};
use crate::loaded_policies::Policies;
use crate::ticket_files::SCMS_TICKETS;

/// Flushes the registration authority's queue when its batch is due.
pub(crate) fn spawn_flush(ra: &Arc<RegistrationAuthority>) {
    let weak = Arc::downgrade(ra);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        loop {
            tick.tick().await;
            let Some(ra) = weak.upgrade() else { return };
            let result = tokio::task::spawn_blocking(move || ra.flush(now(), false)).await;
            match result {
                Ok(Ok(n)) if n > 0 => tracing::info!(tickets = n, "V2X batch issued"),
                Ok(Err(e)) => tracing::warn!(error = %e, "V2X batch not issued; retrying"),
                _ => {}
            }
        }
    });
}

/// Where `--role registration` reaches the others.
#[derive(Debug, Clone)]
pub struct RemoteAuthorities {
    /// `https://host:port` of the pseudonym CA.
    pub pseudonym_ca: String,
    /// ... of linkage authority 1 and 2.
    pub linkage: [String; 2],
}

/// The gRPC services of the authorities one process runs.
#[derive(Debug)]
pub(crate) struct V2xServices {
    /// The store the auth layer checks callers against (a role's own).
    pub auth_store: Arc<dyn Storage>,
    pub enrollment:
        Option<pb::v2x_enrollment_server::V2xEnrollmentServer<EnrollmentCredentialService>>,
    pub registration:
        Option<pb::v2x_registration_server::V2xRegistrationServer<RegistrationService>>,
    pub pseudonym_ca: Option<pb::v2x_pseudonym_ca_server::V2xPseudonymCaServer<PseudonymCaService>>,
    pub linkage: Option<pb::v2x_linkage_server::V2xLinkageServer<LinkageService>>,
    /// The IEEE 1609.2.1 resources (HTTPS, beside EST).
    pub http: Option<Arc<trustca_api::v2x_http::V2xHttp>>,
}

fn wrap_pca(
    pca: Arc<PseudonymCa>,
) -> pb::v2x_pseudonym_ca_server::V2xPseudonymCaServer<PseudonymCaService> {
    pb::v2x_pseudonym_ca_server::V2xPseudonymCaServer::new(PseudonymCaService::new(pca))
        .max_decoding_message_size(MAX_RESPONSE_BYTES)
        .max_encoding_message_size(MAX_RESPONSE_BYTES)
}

fn wrap_la(
    las: Vec<Arc<LinkageAuthority>>,
) -> pb::v2x_linkage_server::V2xLinkageServer<LinkageService> {
    pb::v2x_linkage_server::V2xLinkageServer::new(LinkageService::new(las))
        .max_encoding_message_size(MAX_RESPONSE_BYTES)
}

fn wrap_ra(
    service: RegistrationService,
    ra: &Arc<RegistrationAuthority>,
) -> pb::v2x_registration_server::V2xRegistrationServer<RegistrationService> {
    spawn_flush(ra);
    pb::v2x_registration_server::V2xRegistrationServer::new(service)
        .max_encoding_message_size(MAX_RESPONSE_BYTES)
}

/// The CA process's `V2xEnrollment` service (with or without the
/// in-process authorities): the EA of `data`'s V2X hierarchy, for vehicles
/// of `sector`; the credentials it issues are recorded in, and revoked
/// through, `hash_crls`.
pub(crate) fn enrollment_service(
    data: &Path,
    hierarchy: &CaHierarchy,
    sector: &str,
    hash_crls: Arc<HashCrlPublisher>,
) -> Result<pb::v2x_enrollment_server::V2xEnrollmentServer<EnrollmentCredentialService>> {
    let ea = trustca_ca::v2x_ca::enrolment_authority(data, hierarchy)?;
    let root_path = DataDir::new(data).ca().oer("v2x-root");
    let root = std::fs::read(&root_path)
        .map_err(|e| io(format_args!("cannot read {}", root_path.display()), e))?;
    Ok(pb::v2x_enrollment_server::V2xEnrollmentServer::new(
        EnrollmentCredentialService::new(Arc::new(ea), root, sector, hash_crls),
    ))
}

/// Builds the four authorities in the CA's process (`trustca serve`
/// without `--role`), each over its own store under `DATA/v2x/`. Their
/// keys share the CA's directory and passphrase: this mode separates the
/// stores, not the secrets (see `init`'s and `serve`'s warning).
pub(crate) fn in_process_services(
    data: &Path,
    policies: &Policies,
    hierarchy: &CaHierarchy,
    passphrase: &Passphrase,
    policy: BatchPolicy,
    ca_storage: Arc<dyn Storage>,
    pki: &trustca_model::policy::PkiPolicy,
) -> Result<V2xServices> {
    init_authorities(data, passphrase)?;
    // One profile for the RA and the pseudonym CA, following reloads.
    let profile = ProfileSlot::from(SCMS_TICKETS.of(&policies.current().files)?);
    let ra_sector = profile.current().sector.clone();
    let la1 = Arc::new(linkage_authority(data, V2xRole::Linkage1, passphrase)?);
    let la2 = Arc::new(linkage_authority(data, V2xRole::Linkage2, passphrase)?);
    let pca = Arc::new(pseudonym_ca(data, hierarchy, passphrase, profile.clone())?);
    SCMS_TICKETS.follow(policies, &profile, Some(pca.certificate().clone()));
    let pca_cert = pca.certificate().as_coer().to_vec();
    let ra = Arc::new(registration_authority(
        &load_key(data, V2xRole::Registration, passphrase)?,
        open_store(data, V2xRole::Registration)?,
        [la1.clone(), la2.clone()],
        pca.clone(),
        profile,
        policy,
    )?);
    let hash_crls = HashCrlPublisher::open(data, hierarchy, Arc::clone(&ca_storage))?;
    let http = super::ee_http::in_process_http(
        data,
        hierarchy,
        passphrase,
        pki,
        Arc::clone(&ra),
        Arc::clone(&pca),
        policy,
        ca_storage,
        Arc::clone(&hash_crls),
    )?;
    Ok(V2xServices {
        auth_store: ra.store(),
        http: Some(Arc::new(http)),
        registration: Some(wrap_ra(
            RegistrationService::new(Arc::clone(&ra), pca_cert).with_hash_crls(hash_crls.clone()),
            &ra,
        )),
        pseudonym_ca: Some(wrap_pca(pca)),
        enrollment: Some(enrollment_service(data, hierarchy, &ra_sector, hash_crls)?),
        linkage: Some(wrap_la(vec![la1, la2])),
    })
}

/// Builds the one authority of a `--role` process from its own directory:
/// its own keys, its peers' public bundles, its own store.
pub(crate) fn role_services(
    dir: &crate::v2x_role::RoleDir,
    secrets: &crate::v2x_role::RoleSecrets,
    policies: &Policies,
    remote: Option<&RemoteAuthorities>,
    policy: BatchPolicy,
) -> Result<V2xServices> {
    let profile = ProfileSlot::from(SCMS_TICKETS.of(&policies.current().files)?);
    let store: Arc<dyn Storage> = Arc::new(SledStorage::open(&dir.store_dir())?);
    let read_v2x = |path: &Path| -> Result<Certificate> {
        Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &dir.imported(path)?)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))
    };
    let read_aa = || read_v2x(&dir.trust("aa.oer"));
    let mut services = V2xServices {
        auth_store: Arc::clone(&store),
        enrollment: None,
        registration: None,
        pseudonym_ca: None,
        linkage: None,
        http: None,
    };
    match dir.role() {
        V2xRole::PseudonymCa => {
            let (Some(signer), Some(crl_key)) = (secrets.aa.clone(), secrets.crl.clone()) else {
                return Err(ServerError::Config(
                    "the pseudonym CA's keystore lacks its AA or CRL signer key".into(),
                ));
            };
            let crl_certificate = read_v2x(&dir.trust("crl-signer.oer"))?;
            let pca = pseudonym_ca_with(
                signer,
                read_aa()?,
                (crl_key, crl_certificate),
                &secrets.authority,
                [
                    dir.peer_key(V2xRole::Linkage1)?,
                    dir.peer_key(V2xRole::Linkage2)?,
                ],
                store,
                profile.clone(),
            )?;
            SCMS_TICKETS.follow(policies, &profile, Some(pca.certificate().clone()));
            services.pseudonym_ca = Some(wrap_pca(Arc::new(pca)));
        }
        r @ (V2xRole::Linkage1 | V2xRole::Linkage2) => {
            let la = linkage_authority_with(
                r,
                &secrets.authority,
                &dir.peer_key(V2xRole::PseudonymCa)?,
                store,
            )?;
            services.linkage = Some(wrap_la(vec![Arc::new(la)]));
        }
        V2xRole::Registration => {
            let remote = remote.ok_or_else(|| {
                ServerError::Config(
                    "--role registration needs --pseudonym-ca, --linkage-1 and --linkage-2".into(),
                )
            })?;
            let key_der = secrets
                .tls
                .pkcs8()
                .ok_or_else(|| ServerError::Config("the TLS key is not a file key".into()))?;
            let tls = RemoteTls {
                root_pem: dir.imported(&dir.trust("root.pem"))?,
                cert_pem: dir.imported(&dir.tls_chain())?,
                key_pem: pem::encode(&pem::Pem::new("PRIVATE KEY", key_der.to_vec())).into_bytes(),
            };
            // The pseudonym CA's public bundle (checked at import) is what
            // gave trust/aa.oer; require it so a stale copy is not used.
            dir.peer_bundle(V2xRole::PseudonymCa)?;
            let la1 = Arc::new(RemoteLinkage::new(LaId(1), &remote.linkage[0], &tls)?);
            let la2 = Arc::new(RemoteLinkage::new(LaId(2), &remote.linkage[1], &tls)?);
            let pca = Arc::new(RemotePseudonymCa::new(&remote.pseudonym_ca, &tls)?);
            let ra = Arc::new(registration_authority(
                &secrets.authority,
                store,
                [la1, la2],
                pca.clone(),
                profile.clone(),
                policy,
            )?);
            SCMS_TICKETS.follow(policies, &profile, None);
            services.http = Some(Arc::new(super::ee_http::role_http(
                dir,
                secrets,
                Arc::clone(&ra),
                pca,
                policy,
            )?));
            services.registration = Some(wrap_ra(
                RegistrationService::new(Arc::clone(&ra), read_aa()?.as_coer().to_vec()),
                &ra,
            ));
        }
    }
    Ok(services)
}
