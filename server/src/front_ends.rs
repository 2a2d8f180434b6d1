//! The HTTP front ends beside the gRPC port, over the same engines and
//! TLS identity: EST (RFC 7030) with the IEEE 1609.2.1 resources, the web
//! front end, the ETSI TS 102 941 authorities and the metrics endpoint.
//! They stop accepting when the server's token is cancelled.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use trustca_model::StatementSigner;

use crate::connections::ConnectionTable;
use crate::engines::Engines;
use crate::error::{Result, ServerError};
use crate::listeners::FrontListeners;
use crate::metrics::Metrics;
use crate::role_start::serve_etsi;
use crate::serve::{ServeOptions, serve_metrics};
use trustca_api::v2x_http::V2xHttp;

/// The bound addresses of the front ends that are served.
#[derive(Default)]
pub(crate) struct FrontEnds {
    pub(crate) est: Option<SocketAddr>,
    pub(crate) web: Option<SocketAddr>,
    pub(crate) etsi: Option<SocketAddr>,
    pub(crate) metrics: Option<SocketAddr>,
}

/// Starts the front ends whose listeners were bound.
pub(crate) fn start(
    opts: &ServeOptions,
    listeners: FrontListeners,
    engines: &Engines,
    v2x_http: Option<Arc<V2xHttp>>,
    table: &Arc<ConnectionTable>,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> Result<FrontEnds> {
    let est = match listeners.est {
        Some(listener) => Some(start_est(
            listener, engines, v2x_http, table, metrics, stop,
        )?),
        None => None,
    };
    let web = match listeners.web {
        Some(listener) => {
            let e = engines;
            let policies = e.policies.current();
            Some(crate::web::spawn(
                listener,
                crate::web::WebParts {
                    files: &policies.files,
                    data: &opts.data,
                    policy_set: &policies.set,
                    storage: &e.store.storage,
                    revoked_cas: e.hierarchy.revoked_cas(),
                    audit_key: e.hierarchy.audit_key().public_key(),
                    identity: &e.identity,
                    table,
                    hierarchy: &e.hierarchy,
                    trust: &e.trust,
                    policies: &e.policies,
                },
                stop.clone(),
            )?)
        }
        None => None,
    };
    let etsi = match listeners.etsi {
        Some(listener) => Some(serve_etsi(
            listener,
            opts,
            &engines.policies,
            &engines.store.storage,
            (table, metrics),
            stop,
        )?),
        None => None,
    };
    Ok(FrontEnds {
        est,
        web,
        etsi,
        metrics: serve_metrics(listeners.metrics, metrics)?,
    })
}

/// EST over the enrollment engine, with the IEEE 1609.2.1 resources.
fn start_est(
    listener: tokio::net::TcpListener,
    engines: &Engines,
    v2x_http: Option<Arc<V2xHttp>>,
    table: &Arc<ConnectionTable>,
    metrics: &Arc<Metrics>,
    stop: &CancellationToken,
) -> Result<SocketAddr> {
    let bound = listener
        .local_addr()
        .map_err(|e| ServerError::Listen(format!("cannot read the EST address: {e}")))?;
    let est = crate::est::Est::new(
        Arc::clone(&engines.enrollment),
        Arc::clone(&engines.store.storage),
        Arc::new(crate::est::AuthCheck {
            storage: Arc::clone(&engines.store.storage),
            revoked_cas: Arc::clone(engines.enrollment.hierarchy().revoked_cas()),
        }),
        metrics.clone(),
    )?;
    let est = Arc::new(match v2x_http {
        Some(http) => {
            let _ = http.metrics.set(metrics.clone());
            est.with_v2x(http)
        }
        None => est,
    });
    crate::est::spawn(
        listener,
        &engines.identity,
        Arc::clone(table),
        est,
        stop.clone(),
    )?;
    tracing::info!(addr = %bound, "EST (RFC 7030) on https://{bound}/.well-known/est/");
    Ok(bound)
}
