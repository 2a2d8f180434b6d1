//! The client side: a mutual-TLS gRPC channel from a credential (certificate
//! chain + key) and the root.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

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
        let read = |p: &Path, what: &str| {
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {what} {}", p.display()))
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
        bail!("server {server:?}: only https:// (mutual TLS) is supported");
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
        bail!("server {server:?}: no host");
    }
    Ok((url, host))
}

/// Connects with mutual TLS, failing within `connect_timeout`.
pub async fn connect(server: &str, creds: &ClientCredentials) -> Result<Channel> {
    let (url, host) = server_url(server)?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&creds.root_pem))
        .identity(Identity::from_pem(&creds.cert_pem, &creds.key_pem))
        .domain_name(host);
    let channel = Channel::from_shared(url.clone())
        .with_context(|| format!("invalid server URL {url}"))?
        .tls_config(tls)
        .context("TLS configuration")?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    Ok(channel)
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
