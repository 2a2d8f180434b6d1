//! Federation between sector trust databases, the transport: a query about
//! a device of a sector this instance is not authoritative for is
//! forwarded, over mutual TLS with this instance's service certificate, to
//! that sector's database (the engine's `PeerDatabases`). A sector under a
//! foreign root (recognised through the trust list) is reached the same
//! way, but its TLS certificate is verified against the root the list names
//! for it, not ours. The engine verifies the signed answer against the
//! root; it is cached here for a short time. Every remote call has a deadline, so a dead peer database
//! gives a clear "unreachable" answer instead of a hang.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use trustca_db::{PeerAnswer, PeerDatabases, TrustDbError, msg};
use trustca_model::SectorName;
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;

use crate::trust_convert::Convert;

/// How this instance reaches the databases of other sectors.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    /// Sector -> URL of its trust database (https://host:port).
    pub peers: HashMap<SectorName, String>,
    /// This instance's client chain (PEM) and key (PEM), and the root (PEM).
    pub client_cert_pem: String,
    /// Private key of the client certificate, PEM.
    pub client_key_pem: String,
    /// The root, PEM.
    pub root_pem: String,
    /// Deadline of one forwarded call (connect included).
    pub timeout: Duration,
    /// How long a forwarded answer is reused.
    pub cache_ttl: Duration,
}

/// Forwarding client with a short answer cache.
#[derive(Debug)]
pub struct Federation {
    config: FederationConfig,
    /// One channel per sector and the root its peer's certificate is
    /// verified against (a new list may name another root for it).
    channels: Mutex<HashMap<(SectorName, [u8; 32]), Channel>>,
    cache: Mutex<HashMap<Vec<u8>, (Instant, msg::TrustAnswer)>>,
}

const MAX_CACHE: usize = 100_000;

fn host_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default().to_owned();
    }
    authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
        .to_owned()
}

/// Why a forwarded call failed, as a sentence. A peer whose TLS
/// certificate this instance refused (rustls names the check in its Debug
/// form, e.g. `invalid peer certificate: BadSignature`) is most often an
/// instance under another root, or one given the wrong URL.
/// A sector under a foreign root (`foreign`) is verified against the root
/// the trust list names for it instead.
fn describe_failure(status: &tonic::Status, foreign: bool) -> String {
    if status.message().contains("invalid peer certificate") {
        return if foreign {
            "its TLS certificate does not verify against the foreign root the trust list names for this sector (an instance under another root, or the wrong URL?)".into()
        } else {
            "its TLS certificate does not verify against this deployment's root (an instance under another root, or the wrong URL?)".into()
        };
    }
    format!("{} ({})", status.message(), status.code().description())
}

impl Federation {
    /// Builds the client; connections are opened lazily.
    pub fn new(config: FederationConfig) -> Self {
        Self {
            config,
            channels: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The channel to `sector`'s database, whose TLS certificate must
    /// chain to `foreign_root` (DER) when given, to our root otherwise.
    fn channel(
        &self,
        sector: &SectorName,
        foreign_root: Option<&[u8]>,
    ) -> Result<Channel, TrustDbError> {
        let unreachable = |reason: String| TrustDbError::Unreachable {
            sector: sector.to_string(),
            reason,
        };
        let root_pem = match foreign_root {
            Some(der) => trustca_ca::certs_to_pem(&[der]),
            None => self.config.root_pem.clone(),
        };
        let key = (
            sector.clone(),
            trustca_model::fingerprint(root_pem.as_bytes()),
        );
        if let Some(c) = self
            .channels
            .lock()
            .map_err(|_| unreachable("lock poisoned".into()))?
            .get(&key)
        {
            return Ok(c.clone());
        }
        let url = self
            .config
            .peers
            .get(sector)
            .ok_or_else(|| unreachable("no database configured for this sector".into()))?;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&root_pem))
            .identity(Identity::from_pem(
                &self.config.client_cert_pem,
                &self.config.client_key_pem,
            ))
            .domain_name(host_of(url));
        let channel = Channel::from_shared(url.clone())
            .map_err(|e| unreachable(format!("bad URL {url}: {e}")))?
            .tls_config(tls)
            .map_err(|e| unreachable(format!("TLS: {e}")))?
            .connect_timeout(self.config.timeout)
            .timeout(self.config.timeout)
            .connect_lazy();
        self.channels
            .lock()
            .map_err(|_| unreachable("lock poisoned".into()))?
            .insert(key, channel.clone());
        Ok(channel)
    }

    /// Asks `sector`'s database about `request`; `cache_key` identifies the
    /// subject (e.g. the certificate fingerprint).
    async fn ask(
        &self,
        sector: &SectorName,
        foreign_root: Option<&[u8]>,
        cache_key: Vec<u8>,
        request: msg::GetTrustRequest,
    ) -> Result<msg::TrustAnswer, TrustDbError> {
        if let Ok(cache) = self.cache.lock()
            && let Some((expires, answer)) = cache.get(&cache_key)
            && *expires > Instant::now()
        {
            return Ok(answer.clone());
        }
        let mut client = TrustDatabaseClient::new(self.channel(sector, foreign_root)?);
        let call = client.get_trust(Convert::<trustca_proto::v1::GetTrustRequest>::convert(
            request,
        ));
        let answer: msg::TrustAnswer = match tokio::time::timeout(self.config.timeout, call).await {
            Err(_) => {
                return Err(TrustDbError::Unreachable {
                    sector: sector.to_string(),
                    reason: format!("no answer within {} ms", self.config.timeout.as_millis()),
                });
            }
            Ok(Err(status))
                if matches!(
                    status.code(),
                    tonic::Code::NotFound | tonic::Code::InvalidArgument
                ) =>
            {
                return Err(TrustDbError::NotFound(status.message().to_owned()));
            }
            Ok(Err(status)) => {
                return Err(TrustDbError::Unreachable {
                    sector: sector.to_string(),
                    reason: describe_failure(&status, foreign_root.is_some()),
                });
            }
            Ok(Ok(r)) => r.into_inner().convert(),
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHE {
                cache.clear();
            }
            cache.insert(
                cache_key,
                (Instant::now() + self.config.cache_ttl, answer.clone()),
            );
        }
        Ok(answer)
    }
}

impl PeerDatabases for Federation {
    fn serves(&self, sector: &SectorName) -> bool {
        self.config.peers.contains_key(sector)
    }

    fn get_trust<'a>(
        &'a self,
        sector: &'a SectorName,
        foreign_root: Option<&'a [u8]>,
        cache_key: Vec<u8>,
        request: msg::GetTrustRequest,
    ) -> PeerAnswer<'a> {
        Box::pin(self.ask(sector, foreign_root, cache_key, request))
    }
}
