//! A real trustca server on a loopback port with a fresh data directory,
//! and what tests do with it: credentials, CSRs, enrollment, gRPC clients,
//! the binary, PostgreSQL databases, openssl runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use tonic::transport::Channel;
use trustca_api::client::{ClientCredentials, connect};
use trustca_ca::{CaHierarchy, Passphrase};
use trustca_model::{CertificateKind, SectorName};
use trustca_proto::v1 as pb;
use trustca_server::{RunningServer, ServeOptions};

pub const PASSPHRASE: &[u8] = b"e2e-test-passphrase";

/// PBKDF2 iterations of the keystores the kit creates. Every server start
/// and every credential opens the CA's keystores: at the product's 600,000
/// rounds that was most of the CPU time of the end-to-end tests. The
/// strong setting stays covered where the product makes its own keystores
/// (`trustca init` run as a process, the keystore's unit tests).
pub const TEST_KDF_ITERATIONS: std::num::NonZeroU32 = std::num::NonZeroU32::new(1_000).unwrap();

/// `text` as the passphrase of keystores the kit creates (cheap to open,
/// see [`TEST_KDF_ITERATIONS`]); opening any keystore works with it too.
pub fn creating_passphrase(text: &[u8]) -> Passphrase {
    Passphrase::new(text.to_vec())
        .unwrap()
        .with_test_only_kdf_iterations(TEST_KDF_ITERATIONS)
}

pub struct TestCa {
    pub dir: tempfile::TempDir,
    pub server: Option<RunningServer>,
}

impl TestCa {
    pub fn data(&self) -> &Path {
        self.dir.path()
    }

    pub fn root_pem(&self) -> String {
        std::fs::read_to_string(self.data().join("ca/root.pem")).unwrap()
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.server.as_ref().unwrap().addr)
    }

    /// A CA as `init` leaves it (without a server): a copy of the one
    /// this test process initialised ([`crate::ca_template`]), so every
    /// such CA of a process has the same root and keys.
    pub fn init() -> Self {
        let dir = tempfile::tempdir().unwrap();
        crate::ca_template::copy_into(dir.path());
        Self { dir, server: None }
    }

    /// Initialises a CA of its own (without a server): a root no other
    /// `TestCa` of the process shares, for tests about another deployment.
    pub fn init_fresh() -> Self {
        let dir = tempfile::tempdir().unwrap();
        trustca_server::init(dir.path(), None, &creating_passphrase(PASSPHRASE), &[]).unwrap();
        Self { dir, server: None }
    }

    /// Initialises a CA and starts a server on 127.0.0.1:0.
    pub async fn start() -> Self {
        let mut ca = Self::init();
        ca.restart().await;
        ca
    }

    /// Initialises a CA and starts a server whose options `configure`
    /// changes first (shorter time limits, for one).
    pub async fn start_with(configure: impl FnOnce(&mut ServeOptions)) -> Self {
        let mut ca = Self::init();
        ca.restart_with(configure).await;
        ca
    }

    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Stops the server if it runs and starts it with `configure`'s options.
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut ServeOptions)) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
        let mut opts = ServeOptions::new(
            self.data().to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
            Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
        );
        configure(&mut opts);
        self.server = Some(trustca_server::start(opts).await.unwrap());
    }

    /// Starts the CA without in-process V2X authorities (they run as
    /// separated `serve --role` servers).
    pub async fn start_without_v2x(&mut self) {
        let mut opts = ServeOptions::new(
            self.data().to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
            Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
        );
        opts.v2x_in_process = false;
        self.server = Some(trustca_server::start(opts).await.unwrap());
    }

    /// Certificates the running server has issued, from its metrics.
    pub fn issued(&self) -> u64 {
        let metrics = self.server.as_ref().unwrap().metrics.encode();
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("trustca_enrollments_total{") && l.contains("outcome=\"issued\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// When issuance last moved, once it has not moved for a second (at
    /// most a minute after the call): a stream whose reader stopped has
    /// then filled what the server queues ahead of it.
    pub async fn issuance_stopped(&self) -> std::time::Instant {
        use std::time::{Duration, Instant};
        let give_up = Instant::now() + Duration::from_secs(60);
        let (mut last, mut moved) = (self.issued(), Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = self.issued();
            if now != last {
                (last, moved) = (now, Instant::now());
            } else if last > 0 && moved.elapsed() >= Duration::from_secs(1) {
                return moved;
            }
            assert!(Instant::now() < give_up, "issuance never stopped ({last})");
        }
    }

    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
    }

    /// Issues a role credential with the library (as `trustca manufacturer add` does).
    pub fn credential(
        &self,
        kind: CertificateKind,
        name: &str,
        sectors: &[&str],
    ) -> ClientCredentials {
        self.issue(kind, name, sectors, &[])
    }

    /// Issues a certification body's credential for `schemes`.
    pub fn certification_body(
        &self,
        name: &str,
        sectors: &[&str],
        schemes: &[&str],
    ) -> ClientCredentials {
        self.issue(CertificateKind::CertificationBody, name, sectors, schemes)
    }

    fn issue(
        &self,
        kind: CertificateKind,
        name: &str,
        sectors: &[&str],
        schemes: &[&str],
    ) -> ClientCredentials {
        let (_, set) = trustca_server::policies::resolve(None, Some(self.data())).unwrap();
        let pass = Passphrase::new(PASSPHRASE.to_vec()).unwrap();
        let h = CaHierarchy::open(self.data(), &set, &pass).unwrap();
        let sectors: Vec<SectorName> = sectors
            .iter()
            .map(|s| SectorName::new(s).unwrap())
            .collect();
        let schemes: Vec<String> = schemes.iter().map(|s| s.to_string()).collect();
        let issued = h
            .issue_credential(&set, kind, name, &sectors, &schemes)
            .unwrap();
        ClientCredentials {
            cert_pem: issued.chain_pem,
            key_pem: issued.key_pem,
            root_pem: self.root_pem(),
        }
    }

    pub async fn client(
        &self,
        creds: &ClientCredentials,
    ) -> pb::enrollment_client::EnrollmentClient<Channel> {
        pb::enrollment_client::EnrollmentClient::new(connect(&self.url(), creds).await.unwrap())
    }
}

/// A trust-database client over mutual TLS with `creds`.
pub async fn trust_client(
    url: &str,
    creds: &ClientCredentials,
) -> pb::trust_database_client::TrustDatabaseClient<Channel> {
    pb::trust_database_client::TrustDatabaseClient::new(connect(url, creds).await.unwrap())
}

/// Asks for a policy reload that must be refused, with an error naming
/// `why`.
pub async fn reload_refused(
    c: &mut pb::trust_database_client::TrustDatabaseClient<Channel>,
    why: &str,
) {
    let refused = c
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .expect_err("the reload is refused");
    assert!(refused.message().contains(why), "{refused:?}");
}

/// Asks whether to cooperate with `peer` for `op`.
pub async fn decide(
    c: &mut pb::trust_database_client::TrustDatabaseClient<Channel>,
    peer: &Device,
    op: &str,
) -> pb::Decision {
    c.decide(pb::DecideRequest {
        peer: Some(pb::CertificateChain {
            certificates: peer.chain.clone(),
        }),
        operation: op.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

/// A fresh P-256 key and a CSR for it.
pub fn csr() -> (rcgen::KeyPair, Vec<u8>) {
    csr_for(&rcgen::PKCS_ECDSA_P256_SHA256)
}

pub fn csr_for(alg: &'static rcgen::SignatureAlgorithm) -> (rcgen::KeyPair, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["attacker-chosen.example".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "attacker chosen CN");
    let der = params.serialize_request(&key).unwrap().der().to_vec();
    (key, der)
}

pub fn evidence(kind: &str, scheme: &str, value: &str, at: &str) -> pb::EvidenceItem {
    pb::EvidenceItem {
        r#type: kind.into(),
        scheme: scheme.into(),
        value: value.into(),
        evaluated_at: at.into(),
    }
}

/// A date `days` from today (negative: in the past), YYYY-MM-DD, so
/// evidence stays within the policies' age limits whenever tests run.
pub fn date_from_today(days: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .date()
        .to_string()
}

/// Evidence that would earn automotive Lv.5 if its hardware root of trust
/// were proved: declared per device, the shipped policy counts the secure
/// element up to Lv.3 only (`declared_hardware_max_level`, issue 25), so
/// it earns Lv.3. Lv.5 takes a registered model
/// ([`register_automotive_lv5`]) or an attested key.
pub fn automotive_lv5() -> Vec<pb::EvidenceItem> {
    vec![
        evidence("evaluation", "iso-sae-21434", "CAL4", &date_from_today(-30)),
        evidence("hardware-root-of-trust", "", "secure-element", ""),
        evidence("secure-update", "", "true", ""),
        evidence("supported-until", "", &date_from_today(365 * 10), ""),
    ]
}

/// The level [`automotive_lv5`] earns under the shipped policy.
pub const DECLARED_AUTOMOTIVE_LEVEL: u32 = 3;

/// Registers `maker`'s automotive model `model` (firmware 1.0.0 on) with
/// what earns Lv.5 from the registry: the manufacturer declares a secure
/// element, secure update and ten years of support, a certification body
/// adds an ISO/SAE 21434 CAL4 evaluation. Its devices then enroll at Lv.5
/// with no per-device evidence (`vec![]`). A model already registered is
/// left as it is.
pub async fn register_automotive_lv5(
    ca: &TestCa,
    maker: &ClientCredentials,
    manufacturer: &str,
    model: &str,
) {
    register_automotive_lv5_at(ca, &ca.url(), maker, manufacturer, model).await;
}

/// [`register_automotive_lv5`] through the server at `url` (one started
/// with its own options).
pub async fn register_automotive_lv5_at(
    ca: &TestCa,
    url: &str,
    maker: &ClientCredentials,
    manufacturer: &str,
    model: &str,
) {
    let body = ca.certification_body("TUV", &["automotive"], &["iso-sae-21434"]);
    register_automotive_lv5_with(url, maker, &body, manufacturer, model).await;
}

/// [`register_automotive_lv5`] with the certification body `body`
/// (ISO/SAE 21434 in automotive) given.
pub async fn register_automotive_lv5_with(
    url: &str,
    maker: &ClientCredentials,
    body: &ClientCredentials,
    manufacturer: &str,
    model: &str,
) {
    let selector = Some(pb::ModelSelector {
        sector: "automotive".into(),
        manufacturer: manufacturer.into(),
        model: model.into(),
        firmware: "1.0.0..".into(),
    });
    let registry = |creds: &ClientCredentials| {
        let creds = creds.clone();
        let url = url.to_owned();
        async move {
            pb::model_registry_client::ModelRegistryClient::new(
                connect(&url, &creds).await.unwrap(),
            )
        }
    };
    let registered = registry(maker)
        .await
        .register_model(pb::RegisterModelRequest {
            model: selector.clone(),
            declared: vec![
                evidence("hardware-root-of-trust", "", "secure-element", ""),
                evidence("secure-update", "", "true", ""),
                evidence("supported-until", "", &date_from_today(365 * 10), ""),
            ],
            self_assessed: vec![],
            reason: "test fleet".into(),
        })
        .await;
    match registered {
        Ok(_) => {}
        // Registered by an earlier call of the same test: nothing to do.
        Err(e) if e.message().contains("overlaps") => return,
        Err(e) => panic!("{e:?}"),
    }
    let r = registry(body)
        .await
        .add_evaluation(pb::AddEvaluationRequest {
            model: selector,
            evaluation: Some(pb::ModelEvaluationInput {
                scheme: "iso-sae-21434".into(),
                result: "CAL4".into(),
                certificate_number: format!("TUV-{model}"),
                evaluated_at: date_from_today(-30),
                valid_until: date_from_today(700),
            }),
            reason: "evaluation report".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.model.unwrap().level, 5);
}

pub fn request(
    sector: &str,
    manufacturer: &str,
    serial: &str,
    csr: Vec<u8>,
    evidence: Vec<pb::EvidenceItem>,
) -> pb::EnrollRequest {
    pb::EnrollRequest {
        csr_der: csr,
        device: Some(pb::DeviceAttributes {
            sector: sector.into(),
            manufacturer: manufacturer.into(),
            model: "M1".into(),
            serial: serial.into(),
            firmware_version: "1.0.0".into(),
        }),
        evidence,
        renewal: false,
        tpm_attestation: None,
    }
}

pub fn pem_of(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Runs `openssl verify` on a leaf with its chain; returns (success, output).
pub fn openssl_verify(
    dir: &Path,
    root_pem: &str,
    chain_der: &[Vec<u8>],
    extra: &[&str],
) -> (bool, String) {
    let root = dir.join("openssl-root.pem");
    let untrusted = dir.join("openssl-untrusted.pem");
    let leaf = dir.join("openssl-leaf.pem");
    std::fs::write(&root, root_pem).unwrap();
    std::fs::write(
        &untrusted,
        chain_der[1..].iter().map(|d| pem_of(d)).collect::<String>(),
    )
    .unwrap();
    std::fs::write(&leaf, pem_of(&chain_der[0])).unwrap();
    let out = Command::new("openssl")
        .arg("verify")
        .args(extra)
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(&untrusted)
        .arg(&leaf)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The target directory's scratch space (`target/tmp`, what cargo gives
/// integration tests as `CARGO_TARGET_TMPDIR`), found from the running
/// test binary (`target/<profile>/deps/<test>`).
pub fn target_tmpdir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.parent().unwrap().parent().unwrap().parent().unwrap();
    target.join("tmp")
}

/// The `trustca` binary built by this cargo invocation.
pub fn trustca_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join(format!("trustca{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not built: run `cargo test --workspace` (or `cargo build -p trustca`) first",
        bin.display()
    );
    bin
}

/// Sends SIGHUP to a server process, as an operator's `kill -HUP` does.
pub fn hangup(child: &std::process::Child) {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    assert!(sent.success(), "kill -HUP {pid}");
}

/// Starts `trustca serve --listen 127.0.0.1:0 ARGS` with `passphrase` and
/// the product's default log filter, its log in `log`: the process and the
/// address it prints once listening, or its exit status and log when it
/// refuses to start.
pub fn spawn_serve(
    args: &[&std::ffi::OsStr],
    passphrase: &str,
    log: &Path,
) -> Result<(std::process::Child, String), (std::process::ExitStatus, String)> {
    use std::io::BufRead;
    let mut child = Command::new(trustca_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("TRUSTCA_PASSPHRASE", passphrase)
        // The product's default log filter, as operators get it.
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.trim().strip_prefix("listening on ") {
        Some(addr) => Ok((child, addr.to_owned())),
        None => {
            let status = child.wait().unwrap();
            Err((status, std::fs::read_to_string(log).unwrap_or_default()))
        }
    }
}

/// Evidence that earns HEMS Lv.5 under the shipped policy.
pub fn hems_lv5() -> Vec<pb::EvidenceItem> {
    vec![
        evidence("evaluation", "iec-62443-4-2", "SL3", &date_from_today(-30)),
        evidence("hardware-root-of-trust", "", "secure-element", ""),
        evidence("secure-update", "", "true", ""),
        evidence("supported-until", "", &date_from_today(365 * 10), ""),
    ]
}

/// Evidence that earns health-care Lv.5 under the shipped policy.
pub fn healthcare_lv5() -> Vec<pb::EvidenceItem> {
    vec![
        evidence(
            "evaluation",
            "iec-81001-5-1",
            "conformant",
            &date_from_today(-30),
        ),
        evidence("hardware-root-of-trust", "", "secure-element", ""),
        evidence("secure-update", "", "true", ""),
        evidence("supported-until", "", &date_from_today(365 * 10), ""),
    ]
}

/// A device enrolled with its own key: its chain and mTLS credentials.
pub struct Device {
    pub chain: Vec<Vec<u8>>,
    pub identity: String,
    pub creds: ClientCredentials,
}

impl Device {
    pub fn pem(&self) -> String {
        self.chain.iter().map(|d| pem_of(d)).collect()
    }
}

/// Enrolls one device through `client` and returns it with its key.
pub async fn enroll_device(
    client: &mut pb::enrollment_client::EnrollmentClient<Channel>,
    root_pem: &str,
    sector: &str,
    manufacturer: &str,
    model: &str,
    serial: &str,
    firmware: &str,
    evidence: Vec<pb::EvidenceItem>,
) -> Device {
    let (key, csr) = csr();
    let mut req = request(sector, manufacturer, serial, csr, evidence);
    let d = req.device.as_mut().unwrap();
    d.model = model.into();
    d.firmware_version = firmware.into();
    let resp = client.enroll(req).await.unwrap().into_inner();
    let creds = ClientCredentials {
        cert_pem: resp.chain_der.iter().map(|c| pem_of(c)).collect(),
        key_pem: key.serialize_pem(),
        root_pem: root_pem.to_owned(),
    };
    Device {
        chain: resp.chain_der,
        identity: resp.identity,
        creds,
    }
}

/// Acme's home battery `HB-1` (hems, firmware 1.0.0) with serial `serial`
/// and the evidence of Lv.5 ([`hems_lv5`]): the device the trust,
/// revocation and replica tests ask about.
pub async fn enroll_acme_battery(
    client: &mut pb::enrollment_client::EnrollmentClient<Channel>,
    root_pem: &str,
    serial: &str,
) -> Device {
    enroll_device(
        client,
        root_pem,
        "hems",
        "Acme",
        "HB-1",
        serial,
        "1.0.0",
        hems_lv5(),
    )
    .await
}

/// Acme's car `EV-200` (automotive, firmware 1.0.0) with serial `serial`
/// and no evidence of its own: its level is its model's, once registered
/// ([`register_automotive_lv5`]).
pub async fn enroll_acme_car(
    client: &mut pb::enrollment_client::EnrollmentClient<Channel>,
    root_pem: &str,
    serial: &str,
) -> Device {
    enroll_device(
        client,
        root_pem,
        "automotive",
        "Acme",
        "EV-200",
        serial,
        "1.0.0",
        vec![],
    )
    .await
}

/// Copies a directory tree (for instances sharing one CA).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A plain HTTP/1.1 GET (for `/metrics`): the status line and the body.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

/// A fresh database on the test PostgreSQL server, or `None` (skipped).
pub fn postgres_database(test: &str) -> Option<String> {
    let server = postgres_server(test)?;
    Some(
        trustca_store::postgres_admin::create_database(&server, &unique_database_name(test))
            .unwrap(),
    )
}

/// The test PostgreSQL server (`TRUSTCA_TEST_POSTGRES`, a URL without a
/// database). Without it the test fails, saying how to start one, unless
/// skipping was asked for (`TRUSTCA_SKIP_POSTGRES=1`): a test that did not
/// run must not show as passed by accident.
pub fn postgres_server(test: &str) -> Option<String> {
    let Ok(server) = std::env::var("TRUSTCA_TEST_POSTGRES") else {
        assert!(
            std::env::var("TRUSTCA_SKIP_POSTGRES").as_deref() == Ok("1"),
            "{test} needs PostgreSQL: run `eval \"$(bash .ci/postgres.sh start)\"` first (a throwaway cluster), or set TRUSTCA_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
        );
        eprintln!("*** SKIPPED {test} (TRUSTCA_SKIP_POSTGRES=1) ***");
        return None;
    };
    Some(server)
}

/// A database name no other test run uses: `prefix`, the process and the
/// clock, at most 63 characters.
pub fn unique_database_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let name = format!("e2e_{}_{nanos}_{prefix}", std::process::id());
    name[..name.len().min(63)].to_owned()
}

/// `total` HEMS enrollment items of Acme for one batch stream, serials
/// `<prefix>0`, `<prefix>1`, ... (one CSR shared: the server checks each).
pub fn hems_batch_items(prefix: &str, total: u64) -> Vec<pb::EnrollBatchItem> {
    let (_, csr_der) = csr();
    (0..total)
        .map(|i| pb::EnrollBatchItem {
            id: i,
            request: Some(request(
                "hems",
                "Acme",
                &format!("{prefix}{i}"),
                csr_der.clone(),
                vec![],
            )),
        })
        .collect()
}

/// Runs `cmd`: whether it succeeded, and its stdout then stderr.
pub fn run_output(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Builds the Go checker with the standard library only: no module
/// downloads (`GOPROXY=off`, a go.mod without requirements), caches in the
/// target directory's scratch space. Once per test process: the tests that
/// use it run side by side and would otherwise each build (and write) the
/// same binary.
pub fn build_go_checker() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(go_build).clone()
}

fn go_build() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/go");
    let scratch = target_tmpdir().join("go-interop");
    std::fs::create_dir_all(&scratch).unwrap();
    let bin = scratch.join("interop");
    let (ok, out) = run_output(
        Command::new("go")
            .current_dir(&src)
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .env("GOPATH", scratch.join("gopath"))
            .env("GOCACHE", scratch.join("cache"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GO111MODULE", "on")
            .env("CGO_ENABLED", "0"),
    );
    assert!(ok, "go build failed:\n{out}");
    bin
}

/// The `--server --identity --key --ca` arguments that run the `trustca`
/// binary as `creds` against `ca`'s server; the files go into `dir` as
/// `<name>.pem`, `<name>.key` and `root.pem`.
pub fn client_args(ca: &TestCa, dir: &Path, name: &str, creds: &ClientCredentials) -> Vec<String> {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let root = dir.join("root.pem");
    std::fs::write(&cert, &creds.cert_pem).unwrap();
    std::fs::write(&key, &creds.key_pem).unwrap();
    std::fs::write(&root, &creds.root_pem).unwrap();
    let mut args = Vec::new();
    for (flag, path) in [("--identity", &cert), ("--key", &key), ("--ca", &root)] {
        args.push(flag.to_owned());
        args.push(path.display().to_string());
    }
    args.push("--server".to_owned());
    args.push(ca.url());
    args
}
