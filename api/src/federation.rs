//! Federation between sector trust databases, the transport: a query about
//! a device of a sector this instance is not authoritative for is
//! forwarded, over mutual TLS with this instance's service certificate, to
//! that sector's database (the engine's `PeerDatabases`). A sector under a
//! foreign root (recognised through the trust list) is reached the same
//! way, but its TLS certificate is verified against the root the list names
//! for it, not ours. The engine verifies the signed answer against the
//! root; it is cached here for a short time, bounded in entries and in
//! bytes, with each responder chain held once however many answers carry
//! it. Every remote call has a deadline, so a dead peer database gives a
//! clear "unreachable" answer instead of a hang.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use trustca_db::{PeerAnswer, PeerDatabases, TrustDbError, msg};
use trustca_model::{ResponderChain, SectorName};
use trustca_proto::v1::trust_database_client::TrustDatabaseClient;

use crate::trust_convert::{Convert, ConvertChecked};

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
    cache: Mutex<AnswerCache>,
}

/// Most answers cached.
const MAX_CACHE: usize = 100_000;
/// Most bytes of cached answers (keys, fields, assertion bodies and
/// signatures, and each distinct responder chain once): about 50,000
/// answers of one responder (`docs/operations.md`, "Bounded memory").
const MAX_CACHE_BYTES: usize = 32 << 20;
/// What a cached answer costs beyond the bytes it holds (map slot,
/// vectors' headers): a guess that keeps tiny answers from looking free.
const ENTRY_OVERHEAD: usize = 160;

/// A cached answer, its responder chain shared with every cached answer of
/// the same responder.
#[derive(Debug)]
struct Cached {
    expires: Instant,
    answer: msg::TrustAnswer,
    /// Bytes counted for this entry (its chain not included).
    bytes: usize,
}

/// Foreign answers by cache key, bounded in entries and bytes, emptied when
/// either bound would be passed (no eviction order to keep, like the other
/// caches of `docs/operations.md`). A peer answers every query with the
/// same responder chain (about 2 KB), but each answer off the wire brings
/// its own copy: the cache keeps one value per distinct chain (`chains`),
/// puts it into every answer it holds and counts it once.
#[derive(Debug)]
struct AnswerCache {
    entries: HashMap<Vec<u8>, Cached>,
    chains: HashSet<ResponderChain>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

fn chain_bytes(chain: &ResponderChain) -> usize {
    chain.iter().map(|c| c.len() + 24).sum()
}

/// The bytes an answer holds outside its responder chain.
fn answer_bytes(answer: &msg::TrustAnswer) -> usize {
    let assertion = answer
        .assertion
        .as_ref()
        .map_or(0, |a| a.body.len() + a.signature.len());
    // The status is a word held inline.
    answer.identity.len()
        + answer.sector.len()
        + answer.reasons.iter().map(|r| r.len() + 24).sum::<usize>()
        + assertion
}

impl AnswerCache {
    fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            entries: HashMap::new(),
            chains: HashSet::new(),
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// The answer cached under `key` if it has not expired at `now`.
    fn get(&self, key: &[u8], now: Instant) -> Option<msg::TrustAnswer> {
        let cached = self.entries.get(key).filter(|c| c.expires > now)?;
        Some(cached.answer.clone())
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.chains.clear();
        self.bytes = 0;
    }

    /// Caches `answer` under `key` until `expires`. A cache that would
    /// pass either bound is emptied first; an answer larger than the whole
    /// byte bound is not cached.
    fn insert(&mut self, key: Vec<u8>, mut answer: msg::TrustAnswer, expires: Instant) {
        let bytes = key.len() + answer_bytes(&answer) + ENTRY_OVERHEAD;
        let new_chain = answer
            .assertion
            .as_ref()
            .map(|a| &a.responder_chain)
            .filter(|c| !self.chains.contains(*c))
            .map_or(0, chain_bytes);
        if bytes + new_chain > self.max_bytes {
            return;
        }
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= old.bytes;
        }
        if self.entries.len() >= self.max_entries || self.bytes + bytes + new_chain > self.max_bytes
        {
            self.clear();
        }
        if let Some(assertion) = answer.assertion.as_mut() {
            match self.chains.get(&assertion.responder_chain) {
                Some(held) => assertion.responder_chain = held.clone(),
                None => {
                    self.bytes += chain_bytes(&assertion.responder_chain);
                    self.chains.insert(assertion.responder_chain.clone());
                }
            }
        }
        self.bytes += bytes;
        self.entries.insert(
            key,
            Cached {
                expires,
                answer,
                bytes,
            },
        );
    }
}

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
            cache: Mutex::new(AnswerCache::new(MAX_CACHE, MAX_CACHE_BYTES)),
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
            && let Some(answer) = cache.get(&cache_key, Instant::now())
        {
            return Ok(answer);
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
            Ok(Ok(r)) => {
                r.into_inner()
                    .convert_checked()
                    .map_err(|e| TrustDbError::Unreachable {
                        sector: sector.to_string(),
                        reason: format!("bad answer: {e}"),
                    })?
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(
                cache_key,
                answer.clone(),
                Instant::now() + self.config.cache_ttl,
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

#[cfg(test)]
mod tests {
    use super::*;
    use trustca_model::SignedTrustAssertion;

    fn answer(n: u8, responder: u8) -> msg::TrustAnswer {
        msg::TrustAnswer {
            identity: format!("urn:trustca:automotive:acme:ev-200:{n}"),
            sector: "automotive".into(),
            status: trustca_model::TrustStatus::Active,
            assertion: Some(SignedTrustAssertion {
                body: vec![n; 300].into(),
                signature: vec![n; 72].into(),
                responder_chain: vec![vec![responder; 700], vec![responder; 900]].into(),
            }),
            certificate_level: 0,
            live_level: 0,
            record_version: 0,
            reasons: Vec::new(),
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[test]
    fn an_answer_comes_back_whole_and_its_chain_is_held_once() {
        let mut cache = AnswerCache::new(100, 1 << 20);
        for n in 0..10 {
            cache.insert(vec![n], answer(n, 1), later());
        }
        assert_eq!(cache.get(&[3], Instant::now()), Some(answer(3, 1)));
        assert_eq!(cache.chains.len(), 1, "one responder, one chain");
        let chain_of = |key: u8| {
            let answer = cache.get(&[key], Instant::now()).and_then(|a| a.assertion);
            answer.map(|a| a.responder_chain[0].as_ptr())
        };
        assert_eq!(chain_of(3), chain_of(7), "the answers share one chain");
        let one = cache.bytes / 10;
        assert!(
            one < 1_600,
            "ten answers of one responder cost {} bytes: the chain is counted per answer",
            cache.bytes
        );
        cache.insert(vec![10], answer(10, 2), later());
        assert_eq!(cache.chains.len(), 2);
        assert_eq!(cache.get(&[10], Instant::now()), Some(answer(10, 2)));
    }

    #[test]
    fn inserting_past_the_byte_bound_evicts() {
        // Room for the chain and about three answers, far below the entry bound.
        let mut cache = AnswerCache::new(1_000, 2_000 + 3 * 700);
        cache.insert(b"first".to_vec(), answer(0, 1), later());
        for n in 1..10 {
            cache.insert(vec![n], answer(n, 1), later());
            assert!(cache.bytes <= cache.max_bytes, "{} bytes held", cache.bytes);
        }
        assert_eq!(cache.get(b"first", Instant::now()), None, "not evicted");
        assert!(cache.entries.len() < 10);
        assert_eq!(cache.get(&[9], Instant::now()), Some(answer(9, 1)));
    }

    #[test]
    fn an_expired_or_oversized_answer_is_not_served() {
        let mut cache = AnswerCache::new(10, 1_000);
        cache.insert(vec![1], answer(1, 1), later());
        assert!(cache.entries.is_empty(), "larger than the bound, cached");
        let mut cache = AnswerCache::new(10, 1 << 20);
        cache.insert(vec![1], answer(1, 1), Instant::now());
        assert_eq!(
            cache.get(&[1], Instant::now() + Duration::from_millis(1)),
            None
        );
    }

    #[test]
    fn the_entry_bound_still_holds() {
        let mut cache = AnswerCache::new(4, 1 << 20);
        for n in 0..9 {
            cache.insert(vec![n], answer(n, 1), later());
            assert!(cache.entries.len() <= 4);
        }
        assert_eq!(cache.get(&[8], Instant::now()), Some(answer(8, 1)));
    }
}
