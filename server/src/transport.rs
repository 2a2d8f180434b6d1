//! The server side of mutual TLS: a rustls acceptor that completes the
//! handshake off the accept loop (with a deadline), verifies the client's
//! chain to the root, reads its role once per connection and attaches it to
//! every request as [`AuthenticatedPeer`].
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
use trustca_model::{AuthenticatedPeer, credential_from_chain};
use x509_parser::prelude::FromDer;

use crate::error::ServerError;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A TLS connection and who is on the other end.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    peer: AuthenticatedPeer,
    /// Fires when the shutdown grace period is over: every read and write
    /// then fails, so hyper drops the connection whatever its client does.
    closing: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
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
                "server shutting down: grace period over",
            )
        })
    }
}

impl Connected for TlsConnection {
    type ConnectInfo = AuthenticatedPeer;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer.clone()
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
        Pin::new(&mut self.stream).poll_read(cx, buf)
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
}

struct PeerCheck {
    verifier: Arc<dyn ClientCertVerifier>,
    /// The sector CAs and the root: every certificate that may issue a client.
    issuers: Vec<Vec<u8>>,
    /// The trust-level extension's OID.
    oid: trustca_model::extension::ExtensionOid,
}

impl PeerCheck {
    fn check(
        &self,
        certs: Option<&[CertificateDer<'static>]>,
    ) -> Result<Arc<trustca_model::Credential>, String> {
        let certs = certs
            .filter(|c| !c.is_empty())
            .ok_or("no client certificate: connect with mutual TLS")?;
        self.verifier
            .verify_client_cert(&certs[0], &certs[1..], UnixTime::now())
            .map_err(|e| format!("client certificate not trusted: {e}"))?;
        let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(&certs[0])
            .map_err(|_| "client certificate does not parse".to_owned())?;
        let issuer = self
            .issuers
            .iter()
            .find(|ca| {
                x509_parser::certificate::X509Certificate::from_der(ca)
                    .map(|(_, c)| c.subject().as_raw() == leaf.issuer().as_raw())
                    .unwrap_or(false)
            })
            .ok_or("client certificate is not issued by the trustca root or a sector CA")?;
        credential_from_chain(&certs[0], issuer, &self.oid)
            .map(Arc::new)
            .map_err(|e| e.to_string())
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
/// yields authenticated connections to the gRPC server.
pub fn incoming(
    listener: TcpListener,
    id: &TransportIdentity,
    closing: tokio_util::sync::CancellationToken,
) -> Result<tokio_stream::wrappers::ReceiverStream<Result<TlsConnection, io::Error>>, ServerError> {
    let (cfg, verifier) = server_config(id)?;
    let acceptor = TlsAcceptor::from(cfg);
    let mut issuers = id.sector_cas.clone();
    issuers.push(id.root_der.clone());
    let check = Arc::new(PeerCheck {
        verifier,
        issuers,
        oid: id.extension_oid.clone(),
    });
    let (tx, rx) = tokio::sync::mpsc::channel(128);
    tokio::spawn(async move {
        loop {
            let (tcp, remote) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                break;
            }
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let check = Arc::clone(&check);
            let tx = tx.clone();
            let closing = closing.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let credential = check.check(stream.get_ref().1.peer_certificates());
                        if let Err(reason) = &credential {
                            tracing::info!(%remote, %reason, "connection without a trusted credential");
                        }
                        let peer = AuthenticatedPeer {
                            credential,
                            remote: Some(remote),
                        };
                        let _ = tx
                            .send(Ok(TlsConnection {
                                stream,
                                peer,
                                closing: Box::pin(closing.cancelled_owned()),
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
