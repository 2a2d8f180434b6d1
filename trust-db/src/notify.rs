//! Notifications to the provider when a detection template fires (one JSON
//! object per event with the device, the anomaly, the threat level, the
//! action taken and the evidence) and when a change moves the levels of a
//! system of linked devices (`system.reevaluated`) — appended to a log sink file and, if
//! configured, POSTed to a webhook (plain `http://`, bounded time, fire and
//! forget so a slow webhook never slows reports).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where notifications go.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    /// JSON-lines file (appended).
    pub sink: Option<PathBuf>,
    /// `http://host:port/path` to POST each notification to.
    pub webhook: Option<String>,
}

impl Notifier {
    /// Delivers one notification (JSON text).
    pub fn send(&self, json: String) {
        tracing::warn!(notification = %json, "notification");
        if let Some(path) = &self.sink {
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| writeln!(f, "{json}"));
            if let Err(e) = written {
                tracing::error!(error = %e, path = %path.display(), "notification sink write failed");
            }
        }
        if let Some(url) = self.webhook.clone() {
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(3), post(&url, &json)).await {
                    Ok(Ok(status)) if (200..300).contains(&status) => {}
                    Ok(Ok(status)) => {
                        tracing::error!(%url, status, "webhook refused the notification")
                    }
                    Ok(Err(e)) => tracing::error!(%url, error = %e, "webhook delivery failed"),
                    Err(_) => tracing::error!(%url, "webhook delivery timed out"),
                }
            });
        }
    }
}

/// A minimal HTTP/1.1 POST; returns the status code.
async fn post(url: &str, body: &str) -> std::io::Result<u16> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_owned());
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("webhook must be http://host:port/path"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).await?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("no HTTP status in reply"))
}
