//! Every socket `trustca serve` listens on, bound before anything changes
//! state: a port already taken must leave the data directory, the store,
//! the CRLs and the audit log untouched.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::error::{Result, ServerError};
use crate::serve::{ServeOptions, bind_error};

/// The bound listeners of one process.
pub(crate) struct Listeners {
    /// The mutual-TLS gRPC port.
    pub(crate) grpc: TcpListener,
    /// Everything beside it.
    pub(crate) fronts: FrontListeners,
}

/// The listeners beside the gRPC port.
pub(crate) struct FrontListeners {
    /// Prometheus metrics (`--metrics`).
    pub(crate) metrics: Option<TcpListener>,
    /// EST and the IEEE 1609.2.1 resources (`--est-listen`).
    pub(crate) est: Option<TcpListener>,
    /// The web front end (`--web-listen`).
    pub(crate) web: Option<TcpListener>,
    /// The ETSI TS 102 941 authorities (`--etsi-listen`).
    pub(crate) etsi: Option<TcpListener>,
}

impl Listeners {
    /// Binds every address `opts` names, refusing the combinations a
    /// separated V2X authority (`--role`) does not serve.
    pub(crate) async fn bind(opts: &ServeOptions) -> Result<Self> {
        if opts.etsi_listen.is_some()
            && opts.role.is_none()
            && opts.etsi_dir.is_none()
            && !opts.etsi_demo_root_online
        {
            return Err(crate::etsi::deploy::root_online_refused());
        }
        let grpc = bind(opts.listen).await?;
        let metrics = match opts.metrics {
            Some(addr) => Some(crate::metrics::bind(addr).await?),
            None => None,
        };
        let est = bind_optional(opts.est_listen).await?;
        let web = bind_optional(opts.web_listen).await?;
        if opts.role.is_some() && opts.etsi_listen.is_some() {
            return Err(ServerError::Config(
                "--etsi-listen runs with the CA, not with a --role process".into(),
            ));
        }
        let etsi = bind_optional(opts.etsi_listen).await?;
        if opts.role.is_some() && opts.web_listen.is_some() {
            return Err(ServerError::Config(
                "--web-listen is served by the CA's process, not by a separated V2X authority (--role)".into(),
            ));
        }
        Ok(Self {
            grpc,
            fronts: FrontListeners {
                metrics,
                est,
                web,
                etsi,
            },
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(addr, &e))
}

async fn bind_optional(addr: Option<SocketAddr>) -> Result<Option<TcpListener>> {
    match addr {
        Some(addr) => Ok(Some(bind(addr).await?)),
        None => Ok(None),
    }
}
