//! The peer to beat: CloudFlare's cfssl (`cfssl serve`) with a P-256 CA on
//! loopback, signing the same kind of PKCS#10 requests through
//! `POST /api/v1/cfssl/sign` at the same concurrency. cfssl runs without a
//! certificate database here, so nothing it issues is made durable.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hyper::body::Bytes;
use serde_json::{Value, json};

use crate::est::{Sender, connect_plain, post_each, post_once};
use crate::fixture::Device;
use crate::peer;
use crate::report::{Group, Row};

/// The cfssl binary: `explicit`, else `cfssl` found on `PATH`.
pub fn find(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("cfssl"))
        .find(|p| p.is_file())
}

/// Makes a P-256 CA with `cfssl gencert -initca` in `dir`; returns the
/// certificate and key paths.
fn init_ca(bin: &Path, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let csr = json!({
        "CN": "bench cfssl CA",
        "key": { "algo": "ecdsa", "size": 256 },
        "names": [{ "O": "bench" }]
    });
    let csr_path = dir.join("ca-csr.json");
    std::fs::write(&csr_path, serde_json::to_vec(&csr)?)?;
    let out = Command::new(bin)
        .arg("gencert")
        .arg("-initca")
        .arg(&csr_path)
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "cfssl gencert -initca failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: Value =
        serde_json::from_slice(&out.stdout).context("cfssl gencert output is not JSON")?;
    let (Some(cert), Some(key)) = (v["cert"].as_str(), v["key"].as_str()) else {
        bail!("cfssl gencert output lacks cert/key");
    };
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    std::fs::write(&cert_path, cert)?;
    std::fs::write(&key_path, key)?;
    Ok((cert_path, key_path))
}

fn start(bin: &Path, dir: &Path) -> Result<peer::Process> {
    let (cert, key) = init_ca(bin, dir)?;
    let addr = peer::free_addr()?;
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .args(["-address", "127.0.0.1", "-port", &addr.port().to_string()])
        .arg("-ca")
        .arg(&cert)
        .arg("-ca-key")
        .arg(&key)
        // Warnings and errors only: no log line per request (trustca's
        // in-process server runs without a log subscriber, too).
        .args(["-loglevel", "2"]);
    peer::start(
        command,
        addr,
        &dir.join("cfssl-serve.log"),
        Duration::from_secs(15),
    )
}

/// One signing request whose answer must say `success` with a certificate.
async fn sign(sender: &mut Sender, uri: &hyper::Uri, body: &Value) -> Result<()> {
    let body = Bytes::from(serde_json::to_vec(body)?);
    let (status, answer) = post_once(sender, uri, "application/json", body).await?;
    let v: Value = serde_json::from_slice(&answer)
        .with_context(|| format!("HTTP {status}: answer is not JSON"))?;
    if v["success"].as_bool() != Some(true)
        || v["result"]["certificate"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        bail!("HTTP {status}: {}", v["errors"]);
    }
    Ok(())
}

/// Signs every device's CSR through `cfssl serve`, `concurrency` at a time.
pub async fn measure(bin: &Path, devices: Arc<Vec<Device>>, concurrency: usize) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let server = start(bin, dir.path())?;
    let url = format!("http://{}/api/v1/cfssl/sign", server.addr);
    let uri: hyper::Uri = url.parse()?;
    let bodies: Vec<Value> = devices
        .iter()
        .map(|d| json!({ "certificate_request": d.csr_pem }))
        .collect();
    // Warm-up, and a clear error if cfssl refuses the request shape: the
    // answer must say success and hold a certificate.
    let mut warm = connect_plain(server.addr).await?;
    sign(&mut warm, &uri, bodies.first().unwrap_or(&Value::Null))
        .await
        .context("cfssl warm-up request")?;
    let bodies: Vec<Bytes> = bodies
        .iter()
        .map(|b| serde_json::to_vec(b).map(Bytes::from))
        .collect::<Result<_, _>>()?;
    let mut senders = Vec::with_capacity(concurrency.max(1));
    for _ in 0..concurrency.max(1) {
        senders.push(connect_plain(server.addr).await?);
    }
    // cfssl answers 200 only with a signed certificate (400 otherwise).
    let how = ("application/json", hyper::StatusCode::OK);
    let out = post_each(&url, senders, Arc::new(bodies), how).await?;
    drop(server);
    Ok(out.into_row(
        ("cfssl_sign", "cfssl serve /api/v1/cfssl/sign"),
        Group::Peer,
        format!("{concurrency} in flight, HTTP/1.1 keep-alive, no cert DB (not durable)"),
    ))
}
