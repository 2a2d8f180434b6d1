//! What one instance serves and whom it federates with. A directory made
//! by the key ceremony (`trustca sector init` / `sector install`) holds one
//! sector's CA key and the other sectors' certificates only; `init`'s
//! directory holds every sector's key (and the root's). From the
//! directory: the sectors this instance is authoritative for, its own TLS
//! identity, the federation client (its own TLS certificate towards the
//! peers, the root to verify them), and a warning when the root key is
//! online.

use std::path::Path;
use std::time::Duration;
use trustca_datadir::DataDir;

use trustca_api::{Federation, FederationConfig};
use trustca_ca::CaHierarchy;
use trustca_model::{PolicySet, SectorName};

use crate::error::{Result, ServerError};
use crate::serve::ServeOptions;
use crate::transport::TransportIdentity;

/// The sectors this instance answers for and enrolls devices of: those of
/// `--authoritative`, each of which must have its CA key here; by default
/// every sector whose key this directory holds (all of them for `init`'s
/// directory, which the engines read as "every sector").
pub(crate) fn authoritative_sectors(
    opts: &ServeOptions,
    policy_set: &PolicySet,
    hierarchy: &CaHierarchy,
) -> Result<Vec<SectorName>> {
    let listed = opts
        .authoritative
        .iter()
        .map(|s| policy_set.sector(s).map(|p| p.sector.clone()))
        .collect::<std::result::Result<Vec<SectorName>, _>>()
        .map_err(|e| ServerError::Config(e.to_string()))?;
    let held: Vec<&str> = hierarchy.sectors.keys().map(SectorName::as_str).collect();
    for sector in &listed {
        if !hierarchy.sectors.contains_key(sector) {
            return Err(ServerError::Config(format!(
                "--authoritative {sector}: {} holds no {sector} CA key (it stays with the {sector} operator); this directory can serve {}",
                DataDir::new(&opts.data).ca().display(),
                held.join(", ")
            )));
        }
    }
    if listed.is_empty() && hierarchy.sectors.len() < hierarchy.sector_certs.len() {
        return Ok(hierarchy.sectors.keys().cloned().collect());
    }
    Ok(listed)
}

/// One line at start when the root key is in this (online) directory:
/// nothing a server does needs it once the ceremony has run.
pub(crate) fn warn_if_root_key_online(hierarchy: &CaHierarchy, data: &Path) {
    if hierarchy.holds_root_key() {
        tracing::warn!(
            dir = %DataDir::new(data).ca().display(),
            "the root CA key is in this online directory; nothing online needs it: keep the root offline (`trustca root init`, docs/operations.md \"Key ceremony\")"
        );
    }
}

/// One line at start when this directory depends on the offline root for
/// its ARL (it does not hold the root key) and the ARL it has is missing,
/// past its `nextUpdate`, or within a week of it: relying parties that
/// check ARLs then refuse every chain, and only the root can re-issue it.
pub(crate) fn warn_if_arl_stale(hierarchy: &CaHierarchy, data: &Path) {
    if hierarchy.holds_root_key() {
        return;
    }
    let now = time::OffsetDateTime::now_utc();
    let path = trustca_ca::root_crl::root_crl_path(data);
    match trustca_ca::root_crl::published(data) {
        None => tracing::warn!(
            arl = %path.display(),
            "no readable ARL from the root: import it (`trustca sector import --data {} root.crl`)",
            data.display()
        ),
        Some((number, next_update)) if next_update - now < time::Duration::days(7) => {
            tracing::warn!(
                arl = %path.display(),
                number,
                next_update = %next_update,
                "the root's ARL is past or near its nextUpdate: have the root re-issue it (`trustca root arl`) and import it"
            )
        }
        Some(_) => {}
    }
}

/// Whether the in-process V2X authorities (whose CAs the root's
/// directory holds) can run here: not in one sector's directory.
pub(crate) fn hosts_v2x(hierarchy: &CaHierarchy) -> bool {
    let here = hierarchy.own_sector().is_none();
    if !here {
        tracing::info!(
            "the V2X authorities do not run in a sector's own directory; run them separated (`trustca init --role`)"
        );
    }
    here
}

/// The server's TLS identity as the transport needs it: its own chain and
/// key, every sector's CA certificate to verify clients against, and the
/// trust list in force (`foreign`) for callers under a listed foreign root.
pub(crate) fn transport_identity(
    hierarchy: &CaHierarchy,
    policy_set: &PolicySet,
    foreign: trustca_model::trust_list::ListInForce,
) -> TransportIdentity {
    TransportIdentity {
        root_der: hierarchy.root_der.clone(),
        sector_cas: hierarchy.all_sector_cas(),
        server_chain: hierarchy.server_chain.clone(),
        server_key: hierarchy.server_key(),
        extension_oid: policy_set.pki.extensions.trust_level_oid.clone(),
        foreign,
    }
}

fn to_pem(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

/// The sector of a `--peer`: one of ours, or a foreign sector
/// `recognition.toml` declares (recognised through the trust list; its
/// peer's certificate is verified against the root the list names for it).
fn peer_sector(policy_set: &PolicySet, name: &str) -> Result<SectorName> {
    if let Some(foreign) = policy_set
        .trust
        .foreign_sectors()
        .iter()
        .find(|s| s.as_str() == name)
    {
        return Ok(foreign.clone());
    }
    policy_set
        .sector(name)
        .map(|p| p.sector.clone())
        .map_err(|e| {
            ServerError::Config(format!(
                "--peer {name}: {e} (nor is it a foreign sector recognition.toml declares)"
            ))
        })
}

/// The federation client of `--peer`: this instance's own TLS certificate
/// as its client identity, the root to verify the peers' certificates (for
/// a foreign sector, the root the trust list in force names for it).
pub(crate) fn federation(
    opts: &ServeOptions,
    policy_set: &PolicySet,
    hierarchy: &CaHierarchy,
) -> Result<Option<Federation>> {
    if opts.peers.is_empty() {
        return Ok(None);
    }
    let server_key = hierarchy.server_key();
    let Some(server_key_pkcs8) = server_key.pkcs8() else {
        return Err(ServerError::Config(
            "federation (--peer) needs the TLS server key in a file, but it is in the PKCS#11 token; set [keys.server] backend = \"file\" in pki.toml before init".into(),
        ));
    };
    let mut peers = std::collections::HashMap::new();
    for (sector, url) in &opts.peers {
        peers.insert(peer_sector(policy_set, sector)?, url.clone());
    }
    Ok(Some(Federation::new(FederationConfig {
        peers,
        client_cert_pem: hierarchy
            .server_chain
            .iter()
            .map(|d| to_pem("CERTIFICATE", d))
            .collect(),
        client_key_pem: to_pem("PRIVATE KEY", server_key_pkcs8),
        root_pem: to_pem("CERTIFICATE", &hierarchy.root_der),
        timeout: Duration::from_secs(2),
        cache_ttl: opts.federation_cache_ttl,
    })))
}
