//! `trustca web`: the CLI side of the web front end (docs/web.md), over
//! HTTPS with the caller's credential as TLS client certificate.
//! - `login`: asks the web port for a one-time console login link (an
//!   operator's or auditor's credential) and prints it for the browser;
//! - `label`: the label id, page URL and QR code (PNG) of a device, for its
//!   manufacturer's label printer (or an operator of its sector).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cli::ClientArgs;
use crate::client::{ClientCredentials, server_url};

/// Largest answer read.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum WebAction {
    /// Print a one-time link that signs a browser into the console (an
    /// operator's or auditor's credential; --server is the web address).
    Login(WebArgs),
    /// Fetch a device's label: its page URL and QR code for printing.
    Label {
        #[command(flatten)]
        args: WebArgs,
        /// The device, urn:trustca:<sector>:<manufacturer>:<model>:<serial>.
        #[arg(long)]
        urn: String,
        /// Write the QR code (PNG) here.
        #[arg(long)]
        qr: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct WebArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// Print JSON instead of words.
    #[arg(long)]
    pub json: bool,
}

/// Runs one `trustca web` command.
pub async fn run(action: WebAction) -> Result<std::process::ExitCode> {
    match action {
        WebAction::Login(args) => {
            let answer = request(&args.client, "POST", "/console/login-link").await?;
            let v: serde_json::Value =
                serde_json::from_slice(&answer).context("the answer is not JSON")?;
            if args.json {
                println!("{v}");
            } else {
                println!("{}", v["url"].as_str().unwrap_or_default());
                eprintln!(
                    "open it in a browser within {} s; it works once",
                    v["expires_in_seconds"]
                );
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        WebAction::Label { args, urn, qr } => {
            let path = format!("/labels/device?urn={}", urn.replace(':', "%3A"));
            let answer = request(&args.client, "GET", &path).await?;
            let v: serde_json::Value =
                serde_json::from_slice(&answer).context("the answer is not JSON")?;
            if let Some(out) = qr {
                let png = request(
                    &args.client,
                    "GET",
                    v["qr_png"].as_str().unwrap_or_default(),
                )
                .await?;
                std::fs::write(&out, png)
                    .with_context(|| format!("cannot write {}", out.display()))?;
            }
            if args.json {
                println!("{v}");
            } else {
                println!("{}", v["url"].as_str().unwrap_or_default());
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn tls_config(creds: &ClientCredentials) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for p in pem::parse_many(&creds.root_pem).context("the root certificate is not PEM")? {
        roots
            .add(CertificateDer::from(p.into_contents()))
            .context("the root certificate does not parse")?;
    }
    let chain: Vec<CertificateDer<'static>> = pem::parse_many(&creds.cert_pem)
        .context("the identity certificate is not PEM")?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    let key = pem::parse_many(&creds.key_pem)
        .context("the identity key is not PEM")?
        .into_iter()
        .find_map(|p| match p.tag() {
            "PRIVATE KEY" => Some(PrivateKeyDer::Pkcs8(p.into_contents().into())),
            "EC PRIVATE KEY" => Some(PrivateKeyDer::Sec1(p.into_contents().into())),
            _ => None,
        })
        .context("the identity key file holds no PRIVATE KEY")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .context("the identity certificate and key do not go together")
}

/// One HTTP/1.1 request over mutual TLS; the body of a 2xx answer.
async fn request(client: &ClientArgs, method: &str, path: &str) -> Result<Vec<u8>> {
    let creds = ClientCredentials::load(&client.identity, &client.key, &client.ca)?;
    let (url, host) = server_url(&client.server)?;
    let authority = url
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config(&creds)?));
    let name = ServerName::try_from(host.clone())
        .with_context(|| format!("{host} is not a server name"))?;
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(&authority)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        let mut tls = connector
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS with {url} failed"))?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        tls.write_all(head.as_bytes()).await?;
        let mut raw = Vec::new();
        tls.take(MAX_ANSWER_BYTES).read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .with_context(|| format!("{url} did not answer within 30 s"))??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("the answer is not HTTP")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if !status.starts_with('2') {
        let text = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned());
        bail!("{url}{path} answered {status}: {text}");
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("{url} answered in chunks, which this client does not read");
    }
    Ok(body)
}
