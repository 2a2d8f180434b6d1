//! Starting what one process runs besides the gRPC port: the ETSI
//! authorities, and a separated V2X authority (`serve --role`) with its
//! own TLS identity and listeners.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use trustca_datadir::DataDir;

use trustca_model::PolicySet;
use trustca_store::Storage;

use crate::auth::AuthLayer;
use crate::connections::{ConnectionLimits, ConnectionTable};
use crate::error::{Result, ServerError};
use crate::metrics::Metrics;
use crate::transport::{self, TransportIdentity};
use trustca_model::observe::Observer;

use crate::serve::*;

/// Starts the ETSI authorities on `listener`, their connections in the
/// server's `table` and their requests counted in `metrics`; they stop
/// with EST.
pub(crate) fn serve_etsi(
    listener: tokio::net::TcpListener,
    opts: &ServeOptions,
    policies: &crate::loaded_policies::Policies,
    storage: &Arc<dyn Storage>,
    (table, metrics): (&Arc<ConnectionTable>, &Arc<Metrics>),
    stop: &tokio_util::sync::CancellationToken,
) -> Result<SocketAddr> {
    let bound = listener
        .local_addr()
        .map_err(|e| ServerError::Listen(format!("cannot read the ETSI address: {e}")))?;
    let http = match &opts.etsi_dir {
        Some(dir) => crate::etsi::roles::ea_service(
            dir,
            &opts.passphrase,
            Arc::clone(storage),
            stop.clone(),
        )?,
        None => crate::etsi::deploy::service(
            crate::etsi::deploy::AllInOne {
                data: &opts.data,
                policies,
                passphrase: &opts.passphrase,
                public_url: opts.etsi_public_url.as_deref(),
            },
            Arc::clone(storage),
            bound,
            stop.clone(),
        )?,
    };
    let _ = http.metrics.set(metrics.clone());
    crate::etsi::http::spawn_in(listener, http, Arc::clone(table), stop.clone());
    let what = if opts.etsi_dir.is_some() {
        "EA"
    } else {
        "EA, AA and DC"
    };
    tracing::info!(addr = %bound, "ETSI TS 102 941 {what} on http://{bound}/etsi/");
    Ok(bound)
}

/// The TLS identity of a `--role` process: its own key and the chain the
/// CA issued from its CSR, and the root and sub-CAs it imported.
pub(crate) fn role_identity(
    dir: &crate::v2x_role::RoleDir,
    secrets: &crate::v2x_role::RoleSecrets,
    policy_set: &PolicySet,
) -> Result<TransportIdentity> {
    let ders = |path: &Path| -> Result<Vec<Vec<u8>>> {
        let text = dir.imported(path)?;
        Ok(pem::parse_many(&text)
            .map_err(|_| ServerError::Config(format!("{} is not PEM", path.display())))?
            .into_iter()
            .map(pem::Pem::into_contents)
            .collect())
    };
    Ok(TransportIdentity {
        root_der: ders(&dir.trust("root.pem"))?
            .into_iter()
            .next()
            .unwrap_or_default(),
        sector_cas: ders(&dir.trust("issuers.pem"))?,
        server_chain: ders(&dir.tls_chain())?,
        server_key: Arc::clone(&secrets.tls),
        extension_oid: policy_set.pki.extensions.trust_level_oid.clone(),
        foreign: Default::default(),
    })
}

/// The accepted mutual-TLS connections of a listener.
pub(crate) type Incoming = tokio_stream::wrappers::ReceiverStream<
    std::result::Result<transport::TlsConnection, std::io::Error>,
>;

/// A bound listener made ready for mutual TLS: its address, the connection
/// table (limit from the descriptors available) and the accepted
/// connections.
pub(crate) struct Accepting {
    pub(crate) addr: SocketAddr,
    pub(crate) closing: tokio_util::sync::CancellationToken,
    pub(crate) table: Arc<ConnectionTable>,
    pub(crate) incoming: Incoming,
    pub(crate) max_connections: usize,
    pub(crate) descriptors: Option<u64>,
}

pub(crate) fn accept_on(
    listener: tokio::net::TcpListener,
    identity: &TransportIdentity,
    limits: ConnectionLimits,
) -> Result<Accepting> {
    let addr = transport::local_addr(&listener)
        .map_err(|e| ServerError::Listen(format!("cannot read the bound address: {e}")))?;
    let closing = tokio_util::sync::CancellationToken::new();
    let descriptors = crate::connections::raise_descriptor_limit();
    let max_connections = limits.resolve(descriptors);
    let table = Arc::new(ConnectionTable::new(
        max_connections,
        limits,
        closing.clone(),
    ));
    let incoming = transport::incoming_with(listener, identity, Arc::clone(&table))?;
    Ok(Accepting {
        addr,
        closing,
        table,
        incoming,
        max_connections,
        descriptors,
    })
}

/// `serve --role`: one separated V2X authority in this process, with its
/// own store (`DATA/v2x/<role>/store`) and nothing else of the CA: no
/// enrollment, no trust database, no CA store.
pub(crate) async fn start_role(
    opts: ServeOptions,
    role: crate::v2x::V2xRole,
    listeners: crate::listeners::Listeners,
    metrics: Arc<Metrics>,
    stop: tokio_util::sync::CancellationToken,
) -> Result<RunningServer> {
    let (listener, metrics_listener, https_listener) = (
        listeners.grpc,
        listeners.fronts.metrics,
        listeners.fronts.est,
    );
    let observer: Arc<dyn Observer> = metrics.clone();
    let dir = crate::v2x_role::RoleDir::open(&opts.data, Some(role))?;
    dir.check_own_secrets_only()?;
    let policies = crate::loaded_policies::Policies::load(opts.policies.as_deref(), &opts.data)?;
    let current = policies.current();
    let secrets = dir.secrets(&opts.passphrase)?;
    let identity = role_identity(&dir, &secrets, &current.set)?;
    let v2x = crate::v2x::role_services(
        &dir,
        &secrets,
        &policies,
        opts.v2x_remote.as_ref(),
        opts.v2x_batch,
    )?;
    // SIGHUP reloads the policies (the ticket profile follows them); a
    // refused reload is logged and the profile in force stays.
    crate::schedules::on_hangup(&stop, move || {
        if let Err(e) = policies.reload() {
            tracing::error!(error = %e, "policy reload on SIGHUP refused");
        }
        true
    });
    // A separated registration authority refuses what the CA's hash CRLs
    // list, from the copies the operator syncs to DATA/crl.
    if let Some(ee) = v2x.http.as_ref().and_then(|h| h.ra.as_ref()) {
        crate::v2x::hash_crls::watch_files(
            ee,
            DataDir::new(&opts.data).crl_dir(),
            opts.crl_refresh,
        );
    }
    let metrics_addr = serve_metrics(metrics_listener, &metrics)?;
    let Accepting {
        addr,
        closing,
        incoming,
        max_connections,
        table,
        ..
    } = accept_on(listener, &identity, opts.connections)?;
    // The registration authority's IEEE 1609.2.1 resources for vehicles.
    let est_addr = match (https_listener, v2x.http.clone()) {
        (Some(listener), Some(http)) => {
            let _ = http.metrics.set(metrics.clone());
            let bound = listener
                .local_addr()
                .map_err(|e| ServerError::Listen(format!("cannot read the HTTPS address: {e}")))?;
            crate::est::spawn(listener, &identity, Arc::clone(&table), http, stop.clone())?;
            tracing::info!(addr = %bound, "IEEE 1609.2.1 on https://{bound}/v2x/");
            Some(bound)
        }
        (Some(_), None) => {
            return Err(ServerError::Config(format!(
                "--est-listen: the {} serves no HTTPS resources (only the registration authority does)",
                role.as_str()
            )));
        }
        _ => None,
    };
    let (_health, health_service) = tonic_health::server::health_reporter();
    // The role's callers' certificates are not in this process's store:
    // revoked callers are refused by the CRLs in DATA/crl, re-read every
    // `crl_refresh`.
    let auth_store = v2x.auth_store.clone();
    let crls = crate::crl_watch::CrlRevocations::load(&DataDir::new(&opts.data).crl_dir());
    crls.spawn_refresh(opts.crl_refresh);
    let router = tonic::transport::Server::builder()
        .layer(crate::message_limit::OversizeLayer(
            crate::v2x::MAX_RESPONSE_BYTES,
        ))
        .layer(crate::connections::ActivityLayer)
        .layer(AuthLayer::new(auth_store, Arc::clone(&observer)).with_crls(crls))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(256))
        .add_service(health_service)
        .add_optional_service(v2x.registration)
        .add_optional_service(v2x.pseudonym_ca)
        .add_optional_service(v2x.linkage);
    let shutdown = stop.clone().cancelled_owned();
    let handle = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
    });
    tracing::info!(%addr, role = role.as_str(), data = %opts.data.display(), max_connections, "trustca V2X authority listening (mutual TLS)");
    Ok(RunningServer {
        addr,
        metrics_addr,
        est_addr,
        web_addr: None,
        etsi_addr: None,
        stop,
        metrics,
        handle,
        closing,
        grace: opts.shutdown_grace,
        store_closed: None,
        heads: None,
    })
}
