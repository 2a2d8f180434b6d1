//! The durable peer: smallstep's step-ca 0.19 (Debian's source package,
//! built by `bench/stepca-setup.sh`) with a JWK provisioner, signing the
//! same kind of PKCS#10 requests through `POST /1.0/sign` at the same
//! concurrency, over HTTPS keep-alive connections. Each request carries its
//! own one-time token (a JWT the provisioner's key signs, as `step ca
//! token` makes them), made before the clock starts. step-ca keeps every
//! certificate and every used token in its badger database with
//! synchronous writes, so what it answers is durable, as trustca's answers
//! are; cfssl keeps nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use hyper::body::Bytes;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyUsagePurpose};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use serde_json::json;

use crate::fixture::Device;
use crate::peer;
use crate::report::{Group, Row};

/// The provisioner's name and key id, as the tokens name them.
const PROVISIONER: &str = "bench";
const KID: &str = "bench-jwk";
/// The audience step-ca expects of a sign token (its `dnsNames`, no port).
const AUDIENCE: &str = "https://127.0.0.1/1.0/sign";

/// The step-ca binary: `explicit`, else the one `bench/stepca-setup.sh`
/// builds (or has built) from Debian's source.
pub fn find_or_build(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("{} not found", p.display());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("stepca-setup.sh");
    let out = Command::new("sh")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(PathBuf::from)
        .unwrap_or_default();
    if !path.is_file() {
        bail!("{} printed no binary", script.display());
    }
    Ok(path)
}

/// A P-256 root and intermediate (step-ca signs with the intermediate),
/// written to `dir`; the root's PEM.
fn make_ca(dir: &Path) -> Result<String> {
    let ca_params = |name: &str, path_len: Option<u8>| -> Result<CertificateParams> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(match path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(p)
    };
    let root_key = rcgen::KeyPair::generate()?;
    let root = CertifiedIssuer::self_signed(ca_params("bench step-ca root", None)?, root_key)?;
    let int_key = rcgen::KeyPair::generate()?;
    let int_pem = int_key.serialize_pem();
    let int = CertifiedIssuer::signed_by(
        ca_params("bench step-ca intermediate", Some(0))?,
        int_key,
        &root,
    )?;
    std::fs::write(dir.join("root.pem"), root.pem())?;
    std::fs::write(dir.join("intermediate.pem"), int.pem())?;
    std::fs::write(dir.join("intermediate.key"), int_pem)?;
    Ok(root.pem())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The JWK provisioner's key: signs the tokens; its public half goes into
/// `ca.json`.
struct Provisioner {
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl Provisioner {
    fn new() -> Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("cannot generate the provisioner key"))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("cannot load the provisioner key"))?;
        Ok(Self { key, rng })
    }

    /// The public key as a JWK (uncompressed point: 0x04, x, y).
    fn public_jwk(&self) -> serde_json::Value {
        let point = self.key.public_key().as_ref();
        json!({
            "use": "sig", "kty": "EC", "kid": KID, "crv": "P-256", "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        })
    }

    /// A one-time sign token for a certificate whose common name is `subject`.
    fn token(&self, subject: &str, now: i64) -> Result<String> {
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let header = json!({ "alg": "ES256", "kid": KID, "typ": "JWT" });
        let claims = json!({
            "iss": PROVISIONER, "aud": AUDIENCE, "sub": subject,
            "iat": now, "nbf": now - 5, "exp": now + 3600, "jti": hex::encode(jti),
        });
        let signing_input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header)?),
            b64(&serde_json::to_vec(&claims)?)
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| anyhow::anyhow!("cannot sign a token"))?;
        Ok(format!("{signing_input}.{}", b64(signature.as_ref())))
    }
}

/// Writes `ca.json` (badger database in `dir/db`, JWK provisioner) and
/// starts step-ca on a free loopback port.
fn start(bin: &Path, dir: &Path, provisioner: &Provisioner) -> Result<peer::Process> {
    let addr = peer::free_addr()?;
    let config = json!({
        "root": dir.join("root.pem"),
        "crt": dir.join("intermediate.pem"),
        "key": dir.join("intermediate.key"),
        "address": addr.to_string(),
        "dnsNames": ["127.0.0.1"],
        "logger": { "format": "text" },
        "db": { "type": "badgerv2", "dataSource": dir.join("db") },
        "authority": {
            "provisioners": [{ "type": "JWK", "name": PROVISIONER, "key": provisioner.public_jwk() }]
        },
    });
    let config_path = dir.join("ca.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)?;
    // step-ca logs one line per request (it has no level setting); to a
    // file, as cfssl's warnings go.
    let mut command = Command::new(bin);
    command.arg(&config_path).current_dir(dir);
    peer::start(
        command,
        addr,
        &dir.join("step-ca.log"),
        Duration::from_secs(30),
    )
}

/// Signs every device's CSR through step-ca, `concurrency` connections
/// with one request in flight on each; every certificate is in step-ca's
/// database when it answers.
pub async fn measure(bin: &Path, devices: Arc<Vec<Device>>, concurrency: usize) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let root_pem = make_ca(dir.path())?;
    let provisioner = Provisioner::new()?;
    let server = start(bin, dir.path(), &provisioner)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // One request more than the devices: the first warms up and proves
    // the request shape (its token is spent, so it is not reused).
    let mut bodies = Vec::with_capacity(devices.len() + 1);
    for d in devices.iter().take(1).chain(devices.iter()) {
        let body = json!({ "csr": d.csr_pem, "ott": provisioner.token(&d.serial, now)? });
        bodies.push(Bytes::from(serde_json::to_vec(&body)?));
    }
    let tls = crate::web::public_connector(&root_pem)?;
    let url = format!("https://{}/1.0/sign", server.addr);
    let how = ("application/json", hyper::StatusCode::CREATED);
    let warm = vec![crate::est::connect(server.addr, &tls).await?];
    let first = Arc::new(bodies.drain(..1).collect::<Vec<_>>());
    let out = crate::est::post_each(&url, warm, first, how).await?;
    if out.ok != 1 {
        bail!("step-ca warm-up request: {}", out.error_note());
    }
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        senders.push(crate::est::connect(server.addr, &tls).await?);
    }
    let out = crate::est::post_each(&url, senders, Arc::new(bodies), how).await?;
    drop(server);
    Ok(out.into_row(
        ("stepca_sign", "step-ca /1.0/sign, JWK one-time tokens (durable)"),
        Group::Peer,
        format!(
            "{concurrency} in flight, HTTPS/1.1 keep-alive, badger DB (synced writes), tokens made before the clock"
        ),
    ))
}
