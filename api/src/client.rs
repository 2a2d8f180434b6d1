//! The client side, for the command line, the tests and the benchmarks: a
//! mutual-TLS gRPC channel from a credential (certificate chain + key) and
//! the root, and failures (TLS, refusals) described in words.

use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::ApiError;

type Result<T> = std::result::Result<T, ApiError>;

/// Files a client authenticates with.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// PEM chain of the client (leaf first).
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: String,
    /// PEM root certificate.
    pub root_pem: String,
}

impl ClientCredentials {
    /// Reads the three files.
    pub fn load(cert: &Path, key: &Path, root: &Path) -> Result<Self> {
        let read = |p: &Path, what: &'static str| {
            std::fs::read_to_string(p).map_err(|source| ApiError::Read {
                what,
                path: p.to_owned(),
                source,
            })
        };
        Ok(Self {
            cert_pem: read(cert, "identity certificate")?,
            key_pem: read(key, "identity key")?,
            root_pem: read(root, "root certificate")?,
        })
    }
}

/// Normalises `host:port` or a URL to an `https://` URL and its host.
pub fn server_url(server: &str) -> Result<(String, String)> {
    let url = if server.contains("://") {
        server.to_owned()
    } else {
        format!("https://{server}")
    };
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(ApiError::Setup(format!(
            "server {server:?}: only https:// (mutual TLS) is supported"
        )));
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default().to_owned()
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority)
            .to_owned()
    };
    if host.is_empty() {
        return Err(ApiError::Setup(format!("server {server:?}: no host")));
    }
    Ok((url, host))
}

/// Checks the credential before TLS sees it: PEM that parses, a
/// certificate, a private key, and the key belonging to the certificate.
/// rustls and the PEM reader would otherwise report these by their enum
/// names (`KeyMismatch`, `malformedframing`).
fn check_identity(creds: &ClientCredentials) -> Result<()> {
    use rustls_pki_types::PrivateKeyDer;
    let bad = |what: &str, e: &pem::PemError| {
        ApiError::Credential(format!("the {what} is {}", pem_error_words(e)))
    };
    let missing = |what: &str| ApiError::Credential(what.to_owned());
    let certs = pem::parse_many(&creds.cert_pem).map_err(|e| bad("identity certificate", &e))?;
    let leaf = certs
        .iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .ok_or_else(|| missing("the identity certificate file holds no CERTIFICATE"))?;
    let keys = pem::parse_many(&creds.key_pem).map_err(|e| bad("identity key", &e))?;
    let key = keys
        .into_iter()
        .find_map(|p| match p.tag() {
            "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(p.into_contents().into())),
            "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(p.into_contents().into())),
            "RSA PRIVATE KEY" => Some(PrivateKeyDer::Pkcs1(p.into_contents().into())),
            _ => None,
        })
        .ok_or_else(|| missing("the identity key file holds no PRIVATE KEY"))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| missing("the identity key is not a supported private key"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.contents())
        .map_err(|_| missing("the identity certificate does not parse"))?;
    if let Some(spki) = signing.public_key()
        && spki.as_ref() != cert.public_key().raw
    {
        return Err(missing(
            "the identity key does not belong to the identity certificate (--key and --identity do not match)",
        ));
    }
    Ok(())
}

/// Connects with mutual TLS, failing within 5 s; each call then has 120 s.
pub async fn connect(server: &str, creds: &ClientCredentials) -> Result<Channel> {
    connect_mutual(server, creds, Some(CALL_TIMEOUT)).await
}

/// Like [`connect`], without a deadline per call: for a load generator that
/// bounds its runs itself. A deadline is a timer per call, and arming it takes
/// the runtime's timer-wheel lock; at tens of thousands of calls a second on
/// the server's own cores that client cost showed in the server's figures.
pub async fn connect_for_load(server: &str, creds: &ClientCredentials) -> Result<Channel> {
    connect_mutual(server, creds, None).await
}

async fn connect_mutual(
    server: &str,
    creds: &ClientCredentials,
    call_timeout: Option<Duration>,
) -> Result<Channel> {
    check_identity(creds)?;
    let (url, host) = server_url(server)?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&creds.root_pem))
        .identity(Identity::from_pem(&creds.cert_pem, &creds.key_pem))
        .domain_name(host);
    dial(url, tls, call_timeout).await
}

/// Why a connection failed, as a sentence. The error chain of a failed TLS
/// handshake ends in a rustls error whose `Display` embeds `Debug` dumps
/// (`invalid peer certificate: Other(OtherError(NameConstraintViolation))`),
/// so the chain is searched for it and it is described here instead.
pub fn connect_failure(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut last = e.to_string();
    while let Some(err) = cause {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return tls_failure(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            // io::Error::source skips the error it wraps, so look inside.
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return tls_failure(tls);
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return "the connection was refused (is the server running on that port?)"
                        .into();
                }
                std::io::ErrorKind::TimedOut => return "the connection timed out".into(),
                _ => {}
            }
        }
        last = err.to_string();
        cause = err.source();
    }
    last
}

fn tls_failure(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C};
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let why = match c {
                C::UnknownIssuer => "it was not issued under the given root certificate".into(),
                C::Expired | C::ExpiredContext { .. } => "it has expired".into(),
                C::NotValidYet | C::NotValidYetContext { .. } => "it is not valid yet".into(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    "it is not valid for the server's host name".into()
                }
                C::BadSignature => "a signature in its chain does not verify".into(),
                C::Revoked => "it is revoked".into(),
                C::Other(other) => {
                    let inner: &(dyn std::error::Error + 'static) = &*other.0;
                    inner.downcast_ref::<webpki::Error>().map_or_else(
                        || "it does not verify".to_owned(),
                        trustca_model::describe_webpki_error,
                    )
                }
                _ => "it does not verify".into(),
            };
            format!("the server's certificate is not accepted: {why}")
        }
        rustls::Error::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateRequired
            | A::CertificateExpired
            | A::CertificateRevoked
            | A::CertificateUnknown
            | A::UnsupportedCertificate
            | A::AccessDenied,
        ) => "the server did not accept our certificate".into(),
        rustls::Error::AlertReceived(_) => "the server ended the TLS handshake".into(),
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".into(),
        _ => "the TLS handshake failed".into(),
    }
}

/// A gRPC refusal for the command line: the status code in words, then the
/// server's message.
pub fn refused(what: &str, s: &tonic::Status) -> ApiError {
    ApiError::Refused {
        what: what.to_owned(),
        words: code_words(s.code()),
        message: s.message().to_owned(),
    }
}

/// What is wrong with a PEM file, in words (the PEM reader's own errors
/// are enum names such as `malformedframing`).
pub fn pem_error_words(e: &pem::PemError) -> String {
    match e {
        pem::PemError::MalformedFraming => {
            "not valid PEM (the -----BEGIN/-----END lines are malformed)".into()
        }
        pem::PemError::InvalidData(_) => "not valid PEM (the base64 body does not decode)".into(),
        other => format!("not valid PEM ({other})"),
    }
}

/// A gRPC status code in lower-case words ("permission denied").
pub fn code_words(code: tonic::Code) -> &'static str {
    use tonic::Code as K;
    match code {
        K::Ok => "ok",
        K::Cancelled => "cancelled",
        K::Unknown => "unknown error",
        K::InvalidArgument => "invalid argument",
        K::DeadlineExceeded => "deadline exceeded",
        K::NotFound => "not found",
        K::AlreadyExists => "already exists",
        K::PermissionDenied => "permission denied",
        K::ResourceExhausted => "resource exhausted",
        K::FailedPrecondition => "failed precondition",
        K::Aborted => "aborted",
        K::OutOfRange => "out of range",
        K::Unimplemented => "not implemented",
        K::Internal => "internal error",
        K::Unavailable => "unavailable",
        K::DataLoss => "data loss",
        K::Unauthenticated => "unauthenticated",
    }
}

/// Connects with server-authenticated TLS only, for the public calls
/// (`GetCrl`, `GetCaCertificates`): no client certificate, so
/// anyone holding the root can fetch revocation lists.
pub async fn connect_public(server: &str, root_pem: &str) -> Result<Channel> {
    let (url, host) = server_url(server)?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(root_pem))
        .domain_name(host);
    dial(url, tls, Some(CALL_TIMEOUT)).await
}

/// How long one call of the command line's client may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Opens the channel to `url` with `tls`, failing within 5 s; each call
/// then has `call_timeout`.
async fn dial(
    url: String,
    tls: ClientTlsConfig,
    call_timeout: Option<Duration>,
) -> Result<Channel> {
    let endpoint = Channel::from_shared(url.clone())
        .map_err(|e| ApiError::Setup(format!("invalid server URL {url}: {e}")))?
        .tls_config(tls)
        .map_err(|e| ApiError::Setup(format!("TLS configuration: {e}")))?
        .connect_timeout(Duration::from_secs(5));
    let endpoint = match call_timeout {
        Some(limit) => endpoint.timeout(limit),
        None => endpoint,
    };
    endpoint.connect().await.map_err(|e| ApiError::Connect {
        reason: connect_failure(&e),
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            server_url("127.0.0.1:7443").unwrap(),
            ("https://127.0.0.1:7443".into(), "127.0.0.1".into())
        );
        assert_eq!(server_url("https://ca.example:1").unwrap().1, "ca.example");
        assert_eq!(server_url("[::1]:7443").unwrap().1, "::1");
        assert!(server_url("http://x:1").is_err());
    }
}
