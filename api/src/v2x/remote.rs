//! The registration authority's side of `--role`: the linkage authorities
//! and the pseudonym CA in other processes, reached over gRPC with mutual
//! TLS under the RA's own TLS certificate. Their calls block: the
//! registration authority runs on blocking threads.

use tonic::Status;
use tonic::transport::{Channel, ClientTlsConfig};
use trustca_proto::v1 as pb;
use trustca_proto::v1::v2x_linkage_client::V2xLinkageClient;
use trustca_proto::v1::v2x_pseudonym_ca_client::V2xPseudonymCaClient;
use trustca_pseudonym::{LaId, LinkageRevocation, SeedRelease};
use trustca_scms::{
    ChainId, EncryptedPlv, LinkageAuthorityApi, LinkageCrl, PseudonymCaApi, ScmsError,
    TicketRequest, TicketResponse,
};

use super::{MAX_RESPONSE_BYTES, REMOTE_TIMEOUT};
use crate::ApiError;

type Result<T> = std::result::Result<T, ApiError>;

/// TLS material of the registration authority's client connections.
#[derive(Clone)]
pub struct RemoteTls {
    /// The trustca root (PEM).
    pub root_pem: Vec<u8>,
    /// The registration-authority credential chain (PEM).
    pub cert_pem: Vec<u8>,
    /// Its key (PEM).
    pub key_pem: Vec<u8>,
}

// Written by hand so that no debug print or log line carries the key.
impl std::fmt::Debug for RemoteTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteTls")
            .field("root_pem", &format_args!("{} bytes", self.root_pem.len()))
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

fn channel(url: &str, tls: &RemoteTls) -> Result<Channel> {
    let host = url
        .trim_start_matches("https://")
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let config = ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&tls.root_pem))
        .identity(tonic::transport::Identity::from_pem(
            &tls.cert_pem,
            &tls.key_pem,
        ))
        .domain_name(host);
    Ok(Channel::from_shared(url.to_owned())
        .map_err(|e| ApiError::Setup(format!("bad URL {url}: {e}")))?
        .tls_config(config)
        .map_err(|e| ApiError::Setup(format!("TLS setup: {e}")))?
        .connect_timeout(REMOTE_TIMEOUT)
        .timeout(REMOTE_TIMEOUT)
        .connect_lazy())
}

fn remote(authority: &'static str) -> impl Fn(Status) -> ScmsError {
    move |s: Status| ScmsError::Remote {
        authority,
        code: format!("{:?}", s.code()),
        message: s.message().to_owned(),
    }
}

/// A linkage authority in another process. Its calls block: the
/// registration authority runs on blocking threads.
#[derive(Debug, Clone)]
pub struct RemoteLinkage {
    la_id: LaId,
    client: V2xLinkageClient<Channel>,
    runtime: tokio::runtime::Handle,
}

impl RemoteLinkage {
    /// Linkage authority `la_id` at `url`.
    pub fn new(la_id: LaId, url: &str, tls: &RemoteTls) -> Result<Self> {
        Ok(Self {
            la_id,
            client: V2xLinkageClient::new(channel(url, tls)?),
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

impl LinkageAuthorityApi for RemoteLinkage {
    fn la_id(&self) -> LaId {
        self.la_id
    }

    fn create_chains(
        &self,
        first_period: u64,
        count: usize,
        _actor: &str,
        _now: i64,
    ) -> trustca_scms::error::Result<Vec<ChainId>> {
        let mut c = self.client.clone();
        let answer = self
            .runtime
            .block_on(c.create_chains(pb::CreateChainsRequest {
                first_period,
                count: count as u32,
                la_id: u32::from(self.la_id.0),
            }))
            .map_err(remote("linkage authority"))?
            .into_inner();
        answer
            .chain_ids
            .iter()
            .map(|b| {
                <[u8; 16]>::try_from(b.as_slice())
                    .map(ChainId)
                    .map_err(|_| ScmsError::Malformed {
                        what: "chain id",
                        reason: format!("{} bytes", b.len()),
                    })
            })
            .collect()
    }

    fn pre_linkage_values(
        &self,
        chain: &ChainId,
        first_period: u64,
        periods: u32,
        count: u32,
        _actor: &str,
        _now: i64,
    ) -> trustca_scms::error::Result<Vec<EncryptedPlv>> {
        let mut c = self.client.clone();
        let answer = self
            .runtime
            .block_on(c.pre_linkage_values(pb::PreLinkageValuesRequest {
                chain_id: chain.0.to_vec(),
                period: first_period,
                count,
                la_id: u32::from(self.la_id.0),
                periods,
            }))
            .map_err(remote("linkage authority"))?
            .into_inner();
        answer
            .values
            .iter()
            .map(|v| EncryptedPlv::from_slice(v))
            .collect()
    }

    fn release(
        &self,
        chain: &ChainId,
        from_period: u64,
        _actor: &str,
        _now: i64,
    ) -> trustca_scms::error::Result<SeedRelease> {
        let mut c = self.client.clone();
        let answer = self
            .runtime
            .block_on(c.release_seed(pb::ReleaseSeedRequest {
                chain_id: chain.0.to_vec(),
                from_period,
                la_id: u32::from(self.la_id.0),
            }))
            .map_err(remote("linkage authority"))?
            .into_inner();
        Ok(SeedRelease::from_bytes(&answer.release)?)
    }
}

/// The pseudonym CA in another process.
#[derive(Debug, Clone)]
pub struct RemotePseudonymCa {
    client: V2xPseudonymCaClient<Channel>,
    runtime: tokio::runtime::Handle,
}

impl RemotePseudonymCa {
    /// The pseudonym CA at `url`.
    pub fn new(url: &str, tls: &RemoteTls) -> Result<Self> {
        Ok(Self {
            client: V2xPseudonymCaClient::new(channel(url, tls)?)
                .max_decoding_message_size(MAX_RESPONSE_BYTES)
                .max_encoding_message_size(MAX_RESPONSE_BYTES),
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

impl PseudonymCaApi for RemotePseudonymCa {
    fn issue_batch(
        &self,
        batch: &[TicketRequest],
        _now: i64,
    ) -> trustca_scms::error::Result<Vec<TicketResponse>> {
        let mut c = self.client.clone();
        let answer = self
            .runtime
            .block_on(c.issue_tickets(pb::IssueTicketsRequest {
                requests: batch.iter().map(TicketRequest::to_bytes).collect(),
            }))
            .map_err(remote("pseudonym CA"))?
            .into_inner();
        answer
            .outcomes
            .into_iter()
            .map(|o| {
                let request_id = <[u8; 16]>::try_from(o.request_id.as_slice()).map_err(|_| {
                    ScmsError::Malformed {
                        what: "request id",
                        reason: format!("{} bytes", o.request_id.len()),
                    }
                })?;
                Ok(TicketResponse {
                    request_id,
                    outcome: if o.error.is_empty() {
                        Ok(o.encrypted_response)
                    } else {
                        Err(o.error)
                    },
                })
            })
            .collect()
    }

    fn add_revocation(
        &self,
        revocation: LinkageRevocation,
        _actor: &str,
        _now: i64,
    ) -> trustca_scms::error::Result<LinkageCrl> {
        let mut c = self.client.clone();
        let answer = self
            .runtime
            .block_on(c.add_revocation(pb::AddRevocationRequest {
                first: revocation.first.to_bytes().to_vec(),
                second: revocation.second.to_bytes().to_vec(),
            }))
            .map_err(remote("pseudonym CA"))?
            .into_inner();
        LinkageCrl::from_bytes(&answer.crl)
    }

    fn current_crl(&self, _now: i64) -> trustca_scms::error::Result<LinkageCrl> {
        let mut c = self.client.clone();
        let answer = self
            .runtime
            .block_on(c.get_linkage_crl(pb::GetLinkageCrlRequest {}))
            .map_err(remote("pseudonym CA"))?
            .into_inner();
        LinkageCrl::from_bytes(&answer.crl)
    }
}
