//! Wiring of the web front end (issue 22 §2, crate `trustca-web`) on its
//! own HTTPS port (`--web-listen`): the policy from `web.toml`, the label
//! id key in `DATA/web/`, and the caller check the gRPC port uses
//! (verified chain, certificate and issuing CA not revoked) before a
//! request reaches the web crate. Kept out of `serve.rs`, which calls
//! [`spawn`] once.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use trustca_datadir::DataDir;

use hyper::Request;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use trustca_ca::CaHierarchy;
use trustca_ca::root_crl::RevokedCas;
use trustca_db::{SystemRegistry, TrustEngine};
use trustca_model::{AuthenticatedPeer, PolicySet, SectorName};
use trustca_store::Storage;
use trustca_web::console::systems::{SystemRow, SystemSource};
use trustca_web::label_id::LabelIds;
use trustca_web::policy::WebPolicy;
use trustca_web::{WebApp, WebSetup};

use crate::auth;
use crate::connections::ConnectionTable;
use crate::error::{Result, ServerError};
use crate::est::{Answer, HttpsService};
use crate::loaded_policies::Policies;
use crate::policies::{self, PolicyFiles};
use crate::transport::TransportIdentity;

/// The web front end behind the server's caller check.
struct WebHttps {
    app: WebApp,
    storage: Arc<dyn Storage>,
    revoked_cas: Arc<RevokedCas>,
}

#[tonic::async_trait]
impl HttpsService for WebHttps {
    async fn answer(&self, peer: &AuthenticatedPeer, request: Request<Incoming>) -> Answer {
        // A client certificate that is revoked (or under a revoked CA)
        // counts as none: the web crate sees the reason instead.
        let checked = match peer.credential {
            Ok(_) => match auth::check(
                "web",
                auth::caller(&[]),
                Some(peer),
                self.storage.as_ref(),
                Some(&self.revoked_cas),
            ) {
                Ok(Some(c)) => Ok(c),
                Ok(None) => Err("no client certificate".to_owned()),
                Err(status) => Err(status.message().to_owned()),
            },
            Err(ref e) => Err(e.clone()),
        };
        let peer = AuthenticatedPeer {
            credential: checked,
            remote: peer.remote,
        };
        self.app.answer(&peer, request).await
    }
}

/// The console's systems: the trust database's live evaluations.
#[derive(Debug)]
struct ConsoleSystems {
    trust: Arc<TrustEngine>,
    registry: Arc<SystemRegistry>,
}

impl SystemSource for ConsoleSystems {
    fn evaluations(
        &self,
        sectors: &[String],
        skip: usize,
        take: usize,
    ) -> std::result::Result<(Vec<SystemRow>, bool), String> {
        let sectors: Vec<SectorName> = sectors
            .iter()
            .filter_map(|s| SectorName::new(s).ok())
            .collect();
        self.registry
            .list_evaluations(&self.trust, &sectors, skip, take)
            .map_err(|e| e.to_string())
    }
}

/// What [`spawn`] needs from the server.
pub(crate) struct WebParts<'a> {
    /// The policy files in force (for `web.toml`).
    pub files: &'a PolicyFiles,
    pub data: &'a Path,
    pub policy_set: &'a PolicySet,
    pub storage: &'a Arc<dyn Storage>,
    pub revoked_cas: &'a Arc<RevokedCas>,
    /// The audit key's public key (tree head signatures on the console).
    pub audit_key: &'a [u8],
    pub identity: &'a TransportIdentity,
    pub table: &'a Arc<ConnectionTable>,
    /// The trust database (systems of linked devices for the console).
    pub trust: &'a Arc<TrustEngine>,
    /// The CA, whose encrypted keystore holds the label id key.
    pub hierarchy: &'a CaHierarchy,
    /// The loaded policies, whose reloads replace the `web.toml` served.
    pub policies: &'a Policies,
}

/// The keystore entry of the label id key (`DATA/ca/web-label-id.key`).
const LABEL_ID_KEY: &str = "web-label-id";

/// The label id key from the CA's encrypted keystore, made on first start.
/// A plaintext `web/label-id.key` an earlier version wrote is moved into
/// the keystore (same key: printed labels keep working) and then removed;
/// if the keystore already holds a different key, start is refused.
fn label_ids(hierarchy: &CaHierarchy, web_dir: &Path) -> Result<LabelIds> {
    let legacy = LabelIds::legacy_key(web_dir).map_err(|e| ServerError::Config(e.to_string()))?;
    let secret = hierarchy
        .keystore_secret(LABEL_ID_KEY, legacy.as_ref())
        .map_err(|e| {
            ServerError::Config(format!(
                "the web label id key: {e} (the plaintext file is {})",
                web_dir.join(trustca_web::label_id::LEGACY_FILE).display()
            ))
        })?;
    if legacy.is_some() {
        trustca_web::label_id::remove_legacy_key(web_dir)
            .map_err(|e| ServerError::Config(e.to_string()))?;
        tracing::warn!(
            "moved the plaintext web/label-id.key into the encrypted keystore (ca/{LABEL_ID_KEY}.key) and removed it"
        );
    }
    Ok(LabelIds::from_secret(&secret))
}

/// Serves the `web.toml` of every reloaded policy version: what sectors
/// show, the rate limits and the session lengths follow it. A reload whose
/// `web.toml` does not parse, or moves `base_url` (printed labels carry
/// it; `started_with` is the one in force), is refused whole.
fn follow_reloads(policies: &Policies, app: &WebApp, started_with: String) {
    policies.check_before(Box::new(move |version| {
        let (fresh, _) = web_policy(&version.files, &version.set).map_err(|e| e.to_string())?;
        if fresh.base_url != started_with {
            return Err(format!(
                "web.toml: base_url cannot change while the server runs ({started_with:?} is in force; printed labels carry it); restart to change it"
            ));
        }
        Ok(())
    }));
    let slot = app.policy_slot();
    policies.follow(Box::new(move |version| {
        let (policy, _) = web_policy(&version.files, &version.set).map_err(|e| e.to_string())?;
        slot.replace(policy);
        Ok(())
    }));
}

/// `web.toml` of `files`, checked against the sectors of `set` (which it
/// returns, for the daily level sampling).
fn web_policy(files: &PolicyFiles, set: &PolicySet) -> Result<(WebPolicy, Vec<String>)> {
    let (name, text) = policies::web_text(files);
    let sectors: Vec<String> = set.sectors.keys().map(|s| s.as_str().to_owned()).collect();
    let policy =
        WebPolicy::parse(name, &text, &sectors).map_err(|e| ServerError::Policy(e.to_string()))?;
    Ok((policy, sectors))
}

/// Serves the web front end on `listener` until `stop`; returns the bound address.
pub(crate) fn spawn(
    listener: TcpListener,
    parts: WebParts<'_>,
    stop: CancellationToken,
) -> Result<SocketAddr> {
    let bound = listener
        .local_addr()
        .map_err(|e| ServerError::Listen(format!("cannot read the web address: {e}")))?;
    let (policy, sectors) = web_policy(parts.files, parts.policy_set)?;
    let base_url = policy.base_url.clone();
    let ids = label_ids(parts.hierarchy, &DataDir::new(parts.data).web())?;
    let mut setup = WebSetup::new(
        Arc::clone(parts.storage),
        policy,
        ids,
        &format!("https://{bound}"),
        parts.data.to_path_buf(),
    )
    .with_audit_key(parts.audit_key.to_vec())
    .with_sectors(sectors.clone());
    if let Some(registry) = parts.trust.systems() {
        setup = setup.with_systems(Arc::new(ConsoleSystems {
            trust: Arc::clone(parts.trust),
            registry: Arc::clone(registry),
        }));
    }
    let app = WebApp::new(setup);
    app.spawn_history_sampler();
    follow_reloads(parts.policies, &app, base_url);
    tracing::info!(addr = %bound, base_url = %app.base_url(), "web front end on https://{bound}/");
    let web = Arc::new(WebHttps {
        app,
        storage: Arc::clone(parts.storage),
        revoked_cas: Arc::clone(parts.revoked_cas),
    });
    crate::est::spawn(listener, parts.identity, Arc::clone(parts.table), web, stop)?;
    Ok(bound)
}
