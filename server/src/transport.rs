//! The server side of mutual TLS: a rustls acceptor that completes the
//! handshake off the accept loop (with a deadline), verifies the client's
//! chain to the root, reads its role once per connection and attaches it to
//! every request as [`ConnectionInfo`]. A client whose chain does not lead
//! to our root may still be a *foreign caller*: an instance (or device, or
//! operator) under a root the trust list in force names, for a sector its
//! entry names ([`ListInForce::accepts`]). The list is read at every
//! handshake, so one imported or lapsed while the server runs takes effect
//! without a restart; the authentication layer checks it again on every
//! request of a longer connection and limits what a foreign caller may ask.
//! Each connection holds a place in the server's connection table and
//! closes itself when idle past its deadline (see `connections`).
//!
//! Client authentication is offered but not mandatory at the TLS layer, so
//! that a client without a (trusted) certificate gets a gRPC
//! `UNAUTHENTICATED` status it can read instead of a bare TLS alert, and
//! health probes work without credentials. Every trustca RPC refuses a
//! connection whose credential is missing.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;
use trustca_model::trust_list::ListInForce;
use trustca_model::{AuthenticatedPeer, SectorName, credential_from_chain};
use x509_parser::prelude::FromDer;

use crate::connections::{ConnectionActivity, ConnectionLimits, ConnectionTable, Registration};
use crate::error::ServerError;

/// Accepts any client certificate during the handshake (the handshake
/// signature is still checked by the inner verifier, proving key
/// possession); the chain is verified right after the handshake.
#[derive(Debug)]
struct DeferredClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for DeferredClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What every request on a connection carries in its extensions: who is on
/// the other end, and the connection's activity record (for idle timeouts).
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The verified credential, or why there is none.
    pub peer: AuthenticatedPeer,
    /// Set when the credential chains to a foreign root on the trust list.
    pub foreign: Option<ForeignCaller>,
    pub(crate) activity: Arc<ConnectionActivity>,
}

/// A caller accepted through the trust list: its credential chains to
/// `root`, a foreign root the list in force names for `sector`.
#[derive(Debug, Clone)]
pub struct ForeignCaller {
    /// The listed root its chain verified to, DER.
    pub root: Vec<u8>,
    /// The foreign sector its certificate names, which the entry names.
    pub sector: SectorName,
    /// The list in force, read again on every request.
    pub(crate) list: ListInForce,
}

impl ForeignCaller {
    /// Why the caller is no longer accepted at `now` (the list lapsed or
    /// was replaced by one without its root or sector), if it is not.
    pub(crate) fn still_listed(&self, now: time::OffsetDateTime) -> Result<(), String> {
        self.list
            .still_lists(&self.root, &self.sector, now)
            .map_err(|why| format!("client certificate not trusted any more: {why}"))
    }
}

/// A TLS connection and who is on the other end.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    peer: AuthenticatedPeer,
    foreign: Option<ForeignCaller>,
    /// The connection's place in the table (freed on drop).
    registration: Registration,
    limits: ConnectionLimits,
    /// Fires when the connection is to be closed (shutdown's grace period
    /// is over, or the table evicted it): every read and write then fails,
    /// so hyper drops the connection whatever its client does.
    closing: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    /// The next time the idle deadline is looked at.
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl std::fmt::Debug for TlsConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl TlsConnection {
    fn closed(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        self.closing.as_mut().poll(cx).is_ready().then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection closed by the server (shutdown or connection limit)",
            )
        })
    }

    /// Whether the connection has been idle past its deadline. Arms the
    /// timer otherwise, so an idle connection is woken and closed even if
    /// its client sends nothing at all.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = tokio::time::Instant::now();
            let next = match self.registration.activity.idle_deadline(&self.limits) {
                Some(deadline) if deadline <= now => return true,
                Some(deadline) => deadline,
                // Busy: look again later (the deadline starts when the last
                // request ends, so this only bounds how late the close is).
                None => now + self.limits.idle_timeout / 4,
            };
            self.idle.as_mut().reset(next);
        }
    }
}

impl Connected for TlsConnection {
    type ConnectInfo = ConnectionInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        ConnectionInfo {
            peer: self.peer.clone(),
            foreign: self.foreign.clone(),
            activity: Arc::clone(&self.registration.activity),
        }
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.closed(cx) {
            return Poll::Ready(Err(e));
        }
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Pending if self.idle_expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connection idle past its timeout",
            ))),
            other => other,
        }
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.closed(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Everything the acceptor needs to know about the PKI.
#[derive(Debug, Clone)]
pub struct TransportIdentity {
    /// The root, DER.
    pub root_der: Vec<u8>,
    /// Every sector sub-CA, DER (to find a client's issuer).
    pub sector_cas: Vec<Vec<u8>>,
    /// The server chain, DER, leaf first.
    pub server_chain: Vec<Vec<u8>>,
    /// The server key, in a file or a PKCS#11 token.
    pub server_key: Arc<trustca_ca::CaKey>,
    /// The trust-level extension's OID (`pki.toml`).
    pub extension_oid: trustca_model::extension::ExtensionOid,
    /// The trust list in force (foreign roots a caller may chain to); the
    /// default lists none.
    pub foreign: ListInForce,
}

/// A connection's verified credential, and whether it is a foreign caller.
type Checked = (Arc<trustca_model::Credential>, Option<ForeignCaller>);

struct PeerCheck {
    verifier: Arc<dyn ClientCertVerifier>,
    /// The sector CAs and the root: every certificate that may issue a client.
    issuers: Vec<Vec<u8>>,
    /// The trust-level extension's OID.
    oid: trustca_model::extension::ExtensionOid,
    /// The trust list in force.
    foreign: ListInForce,
}

impl PeerCheck {
    fn check(&self, certs: Option<&[CertificateDer<'static>]>) -> Result<Checked, String> {
        let certs = certs
            .filter(|c| !c.is_empty())
            .ok_or("no client certificate: connect with mutual TLS")?;
        let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&certs[0])
            .map_err(|_| "client certificate does not parse".to_owned())?;
        let Some(issuer) = self.issuers.iter().find(|ca| {
            x509_parser::certificate::X509Certificate::from_der(ca)
                .map(|(_, c)| c.subject().as_raw() == leaf.issuer().as_raw())
                .unwrap_or(false)
        }) else {
            return self.check_foreign(certs);
        };
        // A client may send its leaf alone: the server holds every sector
        // CA, so the path is completed with the one that issued it (the
        // signature check below still decides).
        let mut intermediates = certs[1..].to_vec();
        if !intermediates
            .iter()
            .any(|c| c.as_ref() == issuer.as_slice())
        {
            intermediates.push(CertificateDer::from(issuer.clone()));
        }
        self.verifier
            .verify_client_cert(&certs[0], &intermediates, UnixTime::now())
            .map_err(|e| format!("client certificate not trusted: {}", tls_error_words(&e)))?;
        credential_from_chain(&certs[0], issuer, &self.oid)
            .map(|c| (Arc::new(c), None))
            .map_err(|e| e.to_string())
    }

    /// A client whose issuer is none of ours: accepted only through the
    /// trust list in force, with the chain it sent (its CA at least).
    fn check_foreign(&self, certs: &[CertificateDer<'static>]) -> Result<Checked, String> {
        let chain: Vec<Vec<u8>> = certs.iter().map(|c| c.as_ref().to_vec()).collect();
        let now = time::OffsetDateTime::now_utc();
        let (root, sector) = self
            .foreign
            .accepts(&chain, now, &self.oid)
            .map_err(|why| format!("client certificate not trusted: {why}"))?;
        let issuer = chain
            .get(1)
            .ok_or("client certificate not trusted: a foreign caller must send its CA certificate with its own")?;
        let credential =
            credential_from_chain(&chain[0], issuer, &self.oid).map_err(|e| e.to_string())?;
        Ok((
            Arc::new(credential),
            Some(ForeignCaller {
                root,
                sector,
                list: self.foreign.clone(),
            }),
        ))
    }
}

/// A certificate verification failure in words, without rustls' or
/// webpki's enum names.
fn tls_error_words(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "its issuer is not the trustca root or one of its sector CAs".into()
            }
            C::BadSignature => "its signature does not verify under its issuer's key".into(),
            C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
            C::Revoked => "it is revoked".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "its extended key usage does not allow TLS client authentication".into()
            }
            C::BadEncoding => "it is not a well-formed X.509 certificate".into(),
            _ => "its chain does not verify to the trustca root".into(),
        },
        _ => "its chain does not verify to the trustca root".into(),
    }
}

/// Builds the rustls server configuration.
pub fn server_config(
    id: &TransportIdentity,
) -> Result<(Arc<rustls::ServerConfig>, Arc<dyn ClientCertVerifier>), ServerError> {
    let tls = |e: &dyn std::fmt::Display| ServerError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(id.root_der.clone()))
        .map_err(|e| tls(&e))?;
    let inner = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .map_err(|e| tls(&e))?;
    let verifier = Arc::new(DeferredClientVerifier {
        inner: Arc::clone(&inner),
    });
    let chain: Vec<CertificateDer<'static>> = id
        .server_chain
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(verifier);
    let mut cfg = match id.server_key.pkcs8() {
        Some(pkcs8) => builder
            .with_single_cert(
                chain,
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8.to_vec())),
            )
            .map_err(|e| tls(&e))?,
        // A key in a token cannot be handed to rustls as bytes; rustls
        // asks it to sign each handshake instead.
        None => {
            let key = crate::pkcs11::TokenTlsKey::new(Arc::clone(&id.server_key));
            let certified = rustls::sign::CertifiedKey::new(chain, Arc::new(key));
            builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)))
        }
    };
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok((Arc::new(cfg), inner))
}

/// Accepts TCP connections, completes TLS handshakes concurrently and
/// yields authenticated connections to the gRPC server, with the default
/// [`ConnectionLimits`]. `closing` closes every connection when cancelled.
pub fn incoming(
    listener: TcpListener,
    id: &TransportIdentity,
    closing: tokio_util::sync::CancellationToken,
) -> Result<tokio_stream::wrappers::ReceiverStream<Result<TlsConnection, io::Error>>, ServerError> {
    let limits = ConnectionLimits::default();
    let table = Arc::new(ConnectionTable::new(limits.resolve(None), limits, closing));
    incoming_with(listener, id, table)
}

/// [`incoming`] with the server's connection table.
pub(crate) fn incoming_with(
    listener: TcpListener,
    id: &TransportIdentity,
    table: Arc<ConnectionTable>,
) -> Result<tokio_stream::wrappers::ReceiverStream<Result<TlsConnection, io::Error>>, ServerError> {
    incoming_offering(listener, id, table, None)
}

/// [`incoming_with`] offering the ALPN protocols `alpn` instead of `h2`
/// only (the EST listener offers HTTP/1.1 too).
pub(crate) fn incoming_offering(
    listener: TcpListener,
    id: &TransportIdentity,
    table: Arc<ConnectionTable>,
    alpn: Option<Vec<Vec<u8>>>,
) -> Result<tokio_stream::wrappers::ReceiverStream<Result<TlsConnection, io::Error>>, ServerError> {
    let (cfg, verifier) = server_config(id)?;
    let cfg = match alpn {
        Some(protocols) => {
            let mut cfg = (*cfg).clone();
            cfg.alpn_protocols = protocols;
            Arc::new(cfg)
        }
        None => cfg,
    };
    let acceptor = TlsAcceptor::from(cfg);
    let mut issuers = id.sector_cas.clone();
    issuers.push(id.root_der.clone());
    let check = Arc::new(PeerCheck {
        verifier,
        issuers,
        oid: id.extension_oid.clone(),
        foreign: id.foreign.clone(),
    });
    let (tx, rx) = tokio::sync::mpsc::channel(128);
    tokio::spawn(async move {
        // Logged once per kind of failure until an accept succeeds, not
        // once per attempt (out of descriptors, it fails 20 times a second).
        let mut last_accept_error: Option<io::ErrorKind> = None;
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(c) => {
                    last_accept_error = None;
                    c
                }
                Err(e) => {
                    if last_accept_error != Some(e.kind()) {
                        tracing::warn!(error = %e, connections = table.len(), "accept failed");
                        last_accept_error = Some(e.kind());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                break;
            }
            let Some(registration) = table.admit() else {
                // Every held connection is busy: refuse this one (closing
                // the socket) rather than queue it without a bound.
                drop(tcp);
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let check = Arc::clone(&check);
            let tx = tx.clone();
            let limits = *table.limits();
            tokio::spawn(async move {
                let close = registration.activity.close_token().clone();
                let handshake =
                    tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp));
                let result = tokio::select! {
                    r = handshake => r,
                    () = close.cancelled() => {
                        tracing::debug!(%remote, "connection closed during its handshake to make room");
                        return;
                    }
                };
                match result {
                    Ok(Ok(stream)) => {
                        let checked = check.check(stream.get_ref().1.peer_certificates());
                        if let Err(reason) = &checked {
                            tracing::info!(%remote, %reason, "connection without a trusted credential");
                        }
                        registration.activity.handshake_done(checked.is_ok());
                        let (credential, foreign) = match checked {
                            Ok((c, f)) => (Ok(c), f),
                            Err(e) => (Err(e), None),
                        };
                        if let Some(f) = &foreign {
                            tracing::info!(%remote, sector = %f.sector, "foreign caller accepted through the trust list");
                        }
                        let peer = AuthenticatedPeer {
                            credential,
                            remote: Some(remote),
                        };
                        let first_deadline =
                            tokio::time::Instant::now() + limits.first_request_timeout;
                        let _ = tx
                            .send(Ok(TlsConnection {
                                stream,
                                peer,
                                foreign,
                                registration,
                                limits,
                                closing: Box::pin(close.cancelled_owned()),
                                idle: Box::pin(tokio::time::sleep_until(first_deadline)),
                            }))
                            .await;
                    }
                    Ok(Err(e)) => tracing::info!(%remote, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::info!(%remote, "TLS handshake timed out"),
                }
            });
        }
    });
    Ok(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// The address a listener is bound to.
pub fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
    listener.local_addr()
}
