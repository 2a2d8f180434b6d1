//! The peer to beat: CloudFlare's cfssl (`cfssl serve`) with a P-256 CA on
//! loopback, signing the same kind of PKCS#10 requests through
//! `POST /api/v1/cfssl/sign` at the same concurrency. cfssl runs without a
//! certificate database here, so nothing it issues is made durable.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::fixture::Device;
use crate::load::closed_loop;
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

async fn sign(http: &reqwest::Client, url: &str, body: Value) -> Result<()> {
    let resp = http.post(url).json(&body).send().await?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
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
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let bodies: Arc<Vec<Value>> = Arc::new(
        devices
            .iter()
            .map(|d| json!({ "certificate_request": d.csr_pem }))
            .collect(),
    );
    // Warm-up, and a clear error if cfssl refuses the request shape.
    sign(&http, &url, bodies.first().cloned().unwrap_or_default())
        .await
        .context("cfssl warm-up request")?;
    let total = bodies.len();
    let (h, u) = (http.clone(), url.clone());
    let out = closed_loop(concurrency, total, move |i| {
        let (http, url, body) = (h.clone(), u.clone(), bodies[i].clone());
        async move { sign(&http, &url, body).await }
    })
    .await?;
    drop(server);
    Ok(out.into_row(
        ("cfssl_sign", "cfssl serve /api/v1/cfssl/sign"),
        Group::Peer,
        format!("{concurrency} in flight, HTTP/1.1 keep-alive, no cert DB (not durable)"),
    ))
}
