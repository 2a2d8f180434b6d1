//! Separately made directories, as the key ceremony makes them: an offline
//! root and one directory per sector, each made with the `trustca` binary
//! (`root init`, `sector init`, `root sign-sector`, `sector install`,
//! `sector import`), so that every sector directory holds its own keys
//! only. For federation tests; the servers run in this process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use trustca_api::client::ClientCredentials;
use trustca_ca::{CaHierarchy, Passphrase};
use trustca_model::{CertificateKind, SectorName};
use trustca_proto::v1 as pb;
use trustca_server::ServeOptions;

use super::{PASSPHRASE, trustca_bin};

/// How often the ceremony's servers read their trust list and foreign
/// CRLs again.
pub const TRUST_LIST_REFRESH: std::time::Duration = std::time::Duration::from_millis(200);

/// The root's directory and one directory per sector.
pub struct Ceremony {
    /// Where the root certificates and ARLs are handed over (outside every
    /// directory, as they would travel between machines).
    pub exchange: tempfile::TempDir,
    pub root: tempfile::TempDir,
    pub sectors: BTreeMap<String, tempfile::TempDir>,
}

/// Runs `trustca ARGS` with the test passphrase; panics with its output
/// unless it succeeds. Returns stdout.
pub fn trustca_cli(args: &[&str]) -> String {
    let out = trustca_output(args);
    assert!(
        out.status.success(),
        "trustca {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `trustca ARGS` with the test passphrase, whatever the outcome.
pub fn trustca_output(args: &[&str]) -> std::process::Output {
    Command::new(trustca_bin())
        .args(args)
        .env(
            "TRUSTCA_PASSPHRASE",
            String::from_utf8_lossy(PASSPHRASE).as_ref(),
        )
        .env_remove("TRUSTCA_DATA")
        .env(
            "TRUSTCA_TEST_ONLY_KDF_ITERATIONS",
            super::TEST_KDF_ITERATIONS.to_string(),
        )
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

/// Runs `trustca ARGS`, which must fail with one line on stderr, an
/// `error:` containing `needle`.
pub fn trustca_refused(args: &[&str], needle: &str) {
    let out = trustca_output(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "trustca {args:?} succeeded: {err}");
    // Logs below error level are off (`trustca_output`): what is left is
    // what an operator reads.
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(
        lines[0].starts_with("error:") && lines[0].contains(needle),
        "{err}"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

impl Ceremony {
    /// Runs the ceremony for `sectors` (every sector of the policies must
    /// be among them: a directory opens only with every sector's
    /// certificate): each directory is made separately, the requests are
    /// signed at the root, and each directory imports the others' CA
    /// certificates and the root's ARL.
    pub fn run(sectors: &[&str]) -> Self {
        Self::run_with(sectors, None)
    }

    /// [`Ceremony::run`] with the policy directory `policies` (root and
    /// sectors alike) instead of the built-in policies.
    pub fn run_with(sectors: &[&str], policies: Option<&Path>) -> Self {
        let exchange = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let with = |mut args: Vec<&'static str>, extra: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = args.drain(..).map(str::to_owned).collect();
            v.extend(extra.iter().map(|a| a.to_string()));
            if let Some(p) = policies {
                v.extend(["--policies".to_owned(), s(p).to_owned()]);
            }
            v
        };
        // Each root its own name (`root init` requires one): the temporary
        // directory's, unique on this machine.
        let name = format!("Test Root {}", s(root.path()));
        let args = with(
            vec!["root", "init", "--data"],
            &[s(root.path()), "--name", &name],
        );
        trustca_cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut dirs = BTreeMap::new();
        for sector in sectors {
            let dir = tempfile::tempdir().unwrap();
            let args = with(
                vec!["sector", "init", "--sector"],
                &[sector, "--data", s(dir.path())],
            );
            trustca_cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let csr = dir.path().join(format!("ca/{sector}.csr"));
            let cert = exchange.path().join(format!("{sector}.pem"));
            trustca_cli(&[
                "root",
                "sign-sector",
                s(&csr),
                "--data",
                s(root.path()),
                "--out",
                s(&cert),
            ]);
            trustca_cli(&[
                "sector",
                "install",
                s(&cert),
                "--root",
                s(&root.path().join("ca/root.pem")),
                "--data",
                s(dir.path()),
            ]);
            dirs.insert(sector.to_string(), dir);
        }
        let this = Self {
            exchange,
            root,
            sectors: dirs,
        };
        for sector in sectors {
            let mut files: Vec<PathBuf> = sectors
                .iter()
                .filter(|o| *o != sector)
                .map(|o| this.exchange.path().join(format!("{o}.pem")))
                .collect();
            files.push(this.root.path().join("crl/root.crl"));
            this.import(sector, &files);
        }
        this
    }

    /// `trustca sector import` into `sector`'s directory.
    pub fn import(&self, sector: &str, files: &[PathBuf]) -> String {
        let mut args = vec!["sector", "import", "--data", s(self.data(sector))];
        args.extend(files.iter().map(|f| s(f)));
        trustca_cli(&args)
    }

    pub fn data(&self, sector: &str) -> &Path {
        self.sectors[sector].path()
    }

    pub fn root_pem(&self) -> String {
        std::fs::read_to_string(self.root.path().join("ca/root.pem")).unwrap()
    }

    /// The serve options of `sector`'s instance: authoritative for it,
    /// forwarding to `peers`.
    pub fn options(
        &self,
        sector: &str,
        listen: SocketAddr,
        peers: &[(&str, String)],
    ) -> ServeOptions {
        let mut opts = ServeOptions::new(
            self.data(sector).to_path_buf(),
            listen,
            Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
        );
        opts.authoritative = vec![sector.to_owned()];
        opts.peers = peers
            .iter()
            .map(|(s, u)| (s.to_string(), u.clone()))
            .collect();
        // A newly imported trust list or foreign CRL takes effect within
        // 200 ms instead of 5 s: the tests wait for it.
        opts.trust_list_refresh = TRUST_LIST_REFRESH;
        opts
    }

    /// A role credential issued by `issuer`'s sector CA, in its directory
    /// (as `trustca manufacturer add --data <that directory>` does); a
    /// certification body's is for ISO/SAE 21434.
    pub fn credential(
        &self,
        issuer: &str,
        kind: CertificateKind,
        name: &str,
        sectors: &[&str],
    ) -> ClientCredentials {
        let data = self.data(issuer);
        let (_, set) = trustca_server::policies::resolve(None, Some(data)).unwrap();
        let h =
            CaHierarchy::open(data, &set, &Passphrase::new(PASSPHRASE.to_vec()).unwrap()).unwrap();
        let sectors: Vec<SectorName> = sectors
            .iter()
            .map(|s| SectorName::new(s).unwrap())
            .collect();
        let schemes: Vec<String> = if kind == CertificateKind::CertificationBody {
            vec!["iso-sae-21434".to_owned()]
        } else {
            Vec::new()
        };
        let issued = h
            .issue_credential(&set, kind, name, &sectors, &schemes)
            .unwrap();
        ClientCredentials {
            cert_pem: issued.chain_pem,
            key_pem: issued.key_pem,
            root_pem: self.root_pem(),
        }
    }
}

/// A new directory made by `trustca sector init --sector SECTOR` alone:
/// its key and request, nothing installed.
pub fn fresh_sector_dir(sector: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    trustca_cli(&[
        "sector",
        "init",
        "--sector",
        sector,
        "--data",
        s(dir.path()),
    ]);
    dir
}

/// A free loopback address for an instance that must be told another's
/// URL before either starts (the URL goes into a signed list first).
///
/// The port is chosen below the kernel's ephemeral range
/// (`ip_local_port_range`), not by binding port 0: a port the OS handed out
/// and took back is the next one it hands to any other test's `127.0.0.1:0`
/// listener or outgoing connection, which took it more than once while a
/// long ceremony ran before the instance bound it. Below the range only
/// another caller of this function could take it; each process walks its
/// own sequence (from its pid) and skips ports that are in use.
pub fn loopback_port() -> SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let first = 10_000u32;
    let span = low.saturating_sub(first).max(1);
    let base = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = first + (base + n.wrapping_mul(131)) % span;
        let addr = SocketAddr::from(([127, 0, 0, 1], u16::try_from(port).unwrap()));
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
    panic!("no free loopback port below the ephemeral range");
}

/// The names of the private keys in `dir` (`ca/<name>.key` files and
/// `ca/<name>.pkcs11` token references), and every other file anywhere
/// under `dir` that holds a PEM private key.
pub fn private_keys(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let keyish = name.ends_with(".key") || name.ends_with(".pkcs11");
            let pem_key = std::fs::read(&p)
                .map(|b| String::from_utf8_lossy(&b).contains("PRIVATE KEY-----"))
                .unwrap_or(false);
            if keyish || pem_key {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// A sector database that answers every `GetTrust` with one fixed, validly
/// signed answer — whatever it was asked about, and whoever signed it.
pub struct FixedAnswer(pub pb::TrustAnswer);

#[tonic::async_trait]
impl pb::trust_database_server::TrustDatabase for FixedAnswer {
    async fn get_trust(
        &self,
        _: tonic::Request<pb::GetTrustRequest>,
    ) -> Result<tonic::Response<pb::TrustAnswer>, tonic::Status> {
        Ok(tonic::Response::new(self.0.clone()))
    }
    async fn decide(
        &self,
        _: tonic::Request<pb::DecideRequest>,
    ) -> Result<tonic::Response<pb::Decision>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
    type DecideBatchStream = tokio_stream::Empty<Result<pb::Decision, tonic::Status>>;
    async fn decide_batch(
        &self,
        _: tonic::Request<tonic::Streaming<pb::DecideRequest>>,
    ) -> Result<tonic::Response<Self::DecideBatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
    async fn change_trust(
        &self,
        _: tonic::Request<pb::ChangeTrustRequest>,
    ) -> Result<tonic::Response<pb::ChangeTrustResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
    async fn bulk_downgrade(
        &self,
        _: tonic::Request<pb::BulkDowngradeRequest>,
    ) -> Result<tonic::Response<pb::BulkDowngradeResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
    async fn get_history(
        &self,
        _: tonic::Request<pb::GetHistoryRequest>,
    ) -> Result<tonic::Response<pb::GetHistoryResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
    async fn reload_policy(
        &self,
        _: tonic::Request<pb::ReloadPolicyRequest>,
    ) -> Result<tonic::Response<pb::ReloadPolicyResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("not in this test"))
    }
}

/// Serves `answer` as a `TrustDatabase` over mutual TLS with `sector`'s
/// own TLS identity (an impostor that holds that instance's TLS key);
/// returns its URL.
pub async fn serve_fixed_answer(
    ceremony: &Ceremony,
    sector: &str,
    answer: pb::TrustAnswer,
) -> String {
    let data = ceremony.data(sector);
    let (_, set) = trustca_server::policies::resolve(None, Some(data)).unwrap();
    let h = CaHierarchy::open(data, &set, &Passphrase::new(PASSPHRASE.to_vec()).unwrap()).unwrap();
    let identity = trustca_server::transport::TransportIdentity {
        root_der: h.root_der.clone(),
        sector_cas: h.sector_certs.values().cloned().collect(),
        server_chain: h.server_chain.clone(),
        server_key: h.server_key(),
        extension_oid: set.pki.extensions.trust_level_oid.clone(),
        foreign: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let incoming = trustca_server::transport::incoming(
        listener,
        &identity,
        tokio_util::sync::CancellationToken::new(),
    )
    .unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(pb::trust_database_server::TrustDatabaseServer::new(
                FixedAnswer(answer),
            ))
            .serve_with_incoming(incoming),
    );
    url
}
