//! The CA's role on the gRPC port: enrollment, attestation, the trust
//! database, revocation, the model registry, snapshots, anomalies and
//! systems over the engines built once (`crate::engines`), with health and
//! reflection, behind the oversize, activity and caller-authentication
//! layers; and the V2X services this process hosts beside them (the four
//! authorities in-process, or only the enrolment CA and the hash CRLs when
//! they run separated).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::RoutesBuilder;
use tonic_health::server::HealthReporter;
use trustca_api::{AnomalyService, EnrollmentService, RevocationService, TrustService};
use trustca_datadir::DataDir;
use trustca_db::Notifier;
use trustca_model::observe::Observer;
use trustca_proto::v1::anomalies_server::AnomaliesServer;
use trustca_proto::v1::attestation_server::AttestationServer;
use trustca_proto::v1::enrollment_server::EnrollmentServer;
use trustca_proto::v1::model_registry_server::ModelRegistryServer;
use trustca_proto::v1::revocation_server::RevocationServer;
use trustca_proto::v1::trust_database_server::TrustDatabaseServer;
use trustca_proto::v1::trust_snapshots_server::TrustSnapshotsServer;

use crate::auth::AuthLayer;
use crate::engines::Engines;
use crate::error::{Result, ServerError};
use crate::serve::{MAX_MESSAGE_BYTES, ServeOptions};
use crate::v2x::V2xServices;
use trustca_api::v2x_http::V2xHttp;

/// The gRPC server task and what the front ends and schedules need of it.
pub(crate) struct CaRole {
    pub(crate) handle: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    pub(crate) health: HealthReporter,
    /// The IEEE 1609.2.1 resources, served beside EST.
    pub(crate) v2x_http: Option<Arc<V2xHttp>>,
}

/// Where the anomaly and systems notifications go.
pub(crate) fn notifier(opts: &ServeOptions) -> Notifier {
    Notifier {
        sink: Some(DataDir::new(&opts.data).notifications()),
        webhook: opts.notify_webhook.clone(),
    }
}

/// Serves the CA's gRPC services on `incoming` until `stop`.
pub(crate) async fn start(
    opts: &ServeOptions,
    engines: &Engines,
    observer: Arc<dyn Observer>,
    incoming: crate::role_start::Incoming,
    stop: &CancellationToken,
) -> Result<CaRole> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<EnrollmentServer<EnrollmentService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(trustca_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Config(format!("reflection service: {e}")))?;
    let mut routes = RoutesBuilder::default();
    routes.add_service(health_service).add_service(reflection);
    add_ca_services(&mut routes, opts, engines, &observer);
    let v2x = v2x_services(opts, engines)?;
    if let Some(s) = v2x.registration {
        routes.add_service(s);
    }
    if let Some(s) = v2x.pseudonym_ca {
        routes.add_service(s);
    }
    if let Some(s) = v2x.linkage {
        routes.add_service(s);
    }
    if let Some(s) = v2x.enrollment {
        routes.add_service(s);
    }
    let router = tonic::transport::Server::builder()
        .layer(crate::message_limit::OversizeLayer(MAX_MESSAGE_BYTES))
        .layer(crate::connections::ActivityLayer)
        .layer(
            AuthLayer::new(Arc::clone(&engines.store.storage), observer)
                .with_revoked_cas(Arc::clone(engines.hierarchy.revoked_cas())),
        )
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(256))
        .add_routes(routes.routes());
    let shutdown = stop.clone().cancelled_owned();
    let handle = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    });
    Ok(CaRole {
        handle,
        health,
        v2x_http: v2x.http,
    })
}

/// The CA's own services over the engines, with their message limits.
fn add_ca_services(
    routes: &mut RoutesBuilder,
    opts: &ServeOptions,
    e: &Engines,
    observer: &Arc<dyn Observer>,
) {
    routes
        .add_service(
            EnrollmentServer::new(
                EnrollmentService::new(Arc::clone(&e.enrollment)).with_stream_limits(opts.streams),
            )
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(4 * MAX_MESSAGE_BYTES),
        )
        .add_service(
            AttestationServer::new(trustca_api::AttestationService::new(Arc::clone(
                &e.enrollment,
            )))
            .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            TrustDatabaseServer::new(
                TrustService::new(Arc::clone(&e.trust))
                    .with_observer(Arc::clone(observer))
                    .with_stream_limits(opts.streams),
            )
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(4 * MAX_MESSAGE_BYTES),
        )
        .add_service(
            RevocationServer::new(RevocationService::new(
                Arc::clone(&e.crls),
                Arc::clone(&e.store.storage),
                Arc::clone(&e.enrollment),
            ))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(256 * 1024 * 1024),
        )
        .add_service(
            ModelRegistryServer::new(trustca_api::ModelRegistryService::new(Arc::clone(
                &e.registry,
            )))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(64 * MAX_MESSAGE_BYTES),
        )
        .add_service(
            TrustSnapshotsServer::new(trustca_api::SnapshotService::new(Arc::clone(&e.snapshots)))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            AnomaliesServer::new(AnomalyService::new(Arc::clone(&e.trust), notifier(opts)))
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(crate::systems::service(&e.trust, &e.systems));
}

/// The V2X services of the CA's process (empty in a sector's own
/// directory, which holds no V2X CA).
fn v2x_services(opts: &ServeOptions, e: &Engines) -> Result<V2xServices> {
    let here = crate::instance::hosts_v2x(&e.hierarchy);
    let files = &e.policies.current().files;
    if opts.v2x_in_process && here {
        tracing::warn!(
            "the four V2X authorities run in this process with their keys under one data directory and passphrase: \
             no separation against whoever holds them (see `trustca init --role` for separated authorities)"
        );
        return crate::v2x::in_process_services(
            &opts.data,
            &e.policies,
            &e.hierarchy,
            &opts.passphrase,
            opts.v2x_batch,
            Arc::clone(&e.store.storage),
            &e.policies.set().pki,
        );
    }
    let none = V2xServices {
        auth_store: Arc::clone(&e.store.storage),
        enrollment: None,
        registration: None,
        pseudonym_ca: None,
        linkage: None,
        http: None,
    };
    if !(opts.est_listen.is_some() && here) {
        return Ok(none);
    }
    // Separated authorities: this process is still the enrolment CA and
    // the CRL generator of the hash CRLs.
    let sector = crate::ticket_files::SCMS_TICKETS.of(files)?.sector;
    let storage = &e.store.storage;
    let hash_crls = crate::v2x::hash_crls::HashCrlPublisher::open(
        &opts.data,
        &e.hierarchy,
        Arc::clone(storage),
    )?;
    let eca = crate::v2x::ee_http::eca_route(
        &opts.data,
        &e.hierarchy,
        sector.clone(),
        Arc::clone(storage),
        Arc::clone(&hash_crls),
    )?;
    let enrollment =
        crate::v2x::enrollment_service(&opts.data, &e.hierarchy, &sector, Arc::clone(&hash_crls))?;
    let http = V2xHttp {
        eca: Some(eca),
        hash_crls: Some(hash_crls),
        ..Default::default()
    };
    Ok(V2xServices {
        enrollment: Some(enrollment),
        http: Some(Arc::new(http)),
        ..none
    })
}
