//! The ETSI authorities separated (`docs/v2x-etsi.md`, "Separated
//! authorities"), end to end with the `trustca` binary: an offline root
//! made by `trustca etsi root init`; an EA, an AA and a distribution centre
//! each made in its own directory (`etsi ea|aa|dc init`); the root
//! certifies the EA's and AA's requests and signs the CTL and CRL offline,
//! installed with `etsi install`. Then three processes: the CA with its EA
//! (`serve --etsi-role ea`, this process), the AA and the distribution
//! centre (`serve --etsi-role aa|dc`, child processes). The Python station
//! (`etsi_station.py`) holds only the root: it fetches the lists from the
//! DC, enrols at the EA and gets a ticket from the AA, which validates with
//! the EA over HTTP. No directory holds another's private key. Revoking
//! the AA at the root and installing the new CRL in the running DC makes
//! the station refuse it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::etsi_http::{enrolled_car, python_ready, run_station};
use crate::etsi_serve::{openssl_key, register};
use crate::v2x_separation::dir_contains;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::ceremony::{loopback_port, private_keys, trustca_cli, trustca_refused};
use common::*;
use trustca_ca::{Keystore, Passphrase};
use trustca_pseudonym::P256PrivateKey;
use trustca_server::ServeOptions;
use trustca_v2x::{CertProfile, Certificate};

/// A `trustca serve --etsi-role` child process, killed when dropped.
pub(crate) struct Authority {
    pub(crate) child: Child,
    log: PathBuf,
}

impl Drop for Authority {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Authority {
    /// Starts `role` from `dir` on `listen`; returns once it listens.
    pub(crate) fn start(role: &str, dir: &Path, listen: SocketAddr, log: PathBuf) -> Self {
        let mut child = Command::new(trustca_bin())
            .args(["serve", "--etsi-role", role, "--etsi-dir"])
            .arg(dir)
            .args(["--etsi-listen", &listen.to_string()])
            .env(
                "TRUSTCA_PASSPHRASE",
                String::from_utf8_lossy(PASSPHRASE).as_ref(),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            line.contains(&format!("http://{listen}/etsi/")),
            "{role}: {line}{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Self { child, log }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

/// Python that writes the body of a GET of `argv[1]` to stdout.
pub(crate) const FETCH: &str = "import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Every 32-octet secret in `dir`'s keystore: the P-256 scalars of its
/// signing keys and its encryption secrets.
fn secrets(dir: &Path) -> Vec<Vec<u8>> {
    let pass = Passphrase::new(PASSPHRASE.to_vec()).unwrap();
    let keys = Keystore::open(&dir.join("keys"), &pass).unwrap();
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir.join("keys")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".key") else {
            continue;
        };
        let raw = keys.load(stem).unwrap();
        out.push(if raw.len() == 32 {
            raw
        } else {
            P256PrivateKey::from_pkcs8_der(&raw)
                .unwrap()
                .to_bytes()
                .to_vec()
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separated_etsi_authorities_serve_a_python_station() {
    if !python_ready() || !available("openssl", &["version"], "apt-get install openssl") {
        return;
    }
    let (mut ca, urn, store) = enrolled_car("VIN0077").await;
    let identity = trustca_model::DeviceIdentity::from_urn(&urn).unwrap().key();
    let level = u64::from(store.trust_record(&identity).unwrap().unwrap().level);
    drop(store);
    let work = tempfile::tempdir().unwrap();
    let (secret_hex, public) = openssl_key(work.path());
    assert!(register(ca.data(), &urn, "Acme", &public).status.success());

    // The ceremony: four directories, files handed over through `x`.
    let x = work.path();
    let ceremony = EtsiCeremony::run(x);
    let EtsiCeremony {
        root,
        ea,
        aa,
        dc,
        aa_at,
        dc_at,
        root_oer,
        ..
    } = &ceremony;
    let (aa_at, dc_at) = (*aa_at, *dc_at);
    // A name is certified once; a certificate for other keys is refused.
    trustca_refused(
        &[
            "etsi",
            "root",
            "sign",
            "--dir",
            s(root.path()),
            "--request",
            s(&ea.path().join("request.toml")),
            "--out",
            s(&x.join("again.oer")),
        ],
        "already certified",
    );
    trustca_refused(
        &[
            "etsi",
            "install",
            "--dir",
            s(aa.path()),
            "--cert",
            s(&x.join("ea.oer")),
        ],
        "certifies other keys",
    );
    let dc_url = ceremony.dc_url();
    let sign_lists = |days: &str| ceremony.sign_lists(x, days);
    // Keys made at init, each where it is used; no directory holds another's.
    assert_eq!(private_keys(root.path()), ["root.key"]);
    assert_eq!(private_keys(ea.path()), ["ea-encryption.key", "ea.key"]);
    assert_eq!(private_keys(aa.path()), ["aa-encryption.key", "aa.key"]);
    assert!(private_keys(dc.path()).is_empty());
    let dirs = [root.path(), ea.path(), aa.path(), dc.path(), ca.data()];
    for owner in [root.path(), ea.path(), aa.path()] {
        let own = secrets(owner);
        assert_eq!(own.len(), if owner == root.path() { 1 } else { 2 });
        for other in dirs.iter().filter(|d| **d != owner) {
            for secret in &own {
                assert!(
                    !dir_contains(other, secret),
                    "{} holds a key of {}",
                    other.display(),
                    owner.display()
                );
                assert!(!dir_contains(other, hex::encode(secret).as_bytes()));
            }
        }
    }
    // A directory holding a key not its own is refused (the root's above all).
    let tainted = tempfile::tempdir().unwrap();
    copy_dir(aa.path(), tainted.path());
    std::fs::copy(
        root.path().join("keys/root.key"),
        tainted.path().join("keys/root.key"),
    )
    .unwrap();
    trustca_refused(
        &[
            "serve",
            "--etsi-role",
            "aa",
            "--etsi-dir",
            s(tainted.path()),
            "--etsi-listen",
            "127.0.0.1:0",
        ],
        "the root key belongs offline",
    );

    // Three processes: the CA with its EA here, the AA and the DC alone.
    ceremony.start_ca_with_ea(&mut ca).await;
    assert!(
        !ca.data().join("etsi").exists(),
        "the CA made no ETSI keys of its own"
    );
    let aa_process = Authority::start("aa", aa.path(), aa_at, x.join("aa.log"));
    let dc_process = Authority::start("dc", dc.path(), dc_at, x.join("dc.log"));

    let root_cert =
        Certificate::from_coer_in(CertProfile::EtsiTs103097, &std::fs::read(root_oer).unwrap())
            .unwrap();
    let ctl_url = format!(
        "{dc_url}/etsi/dc/getctl/{}",
        hex::encode(root_cert.hashed_id8())
    );
    let station = |out: &Path| {
        let args = vec![
            ctl_url.clone(),
            s(root_oer).to_owned(),
            secret_hex.clone(),
            urn.clone(),
            s(out).to_owned(),
        ];
        tokio::task::spawn_blocking(move || run_station(&args))
    };
    let result = station(x).await.unwrap();
    assert_eq!(result["enrolment"], "ok", "{result}");
    assert_eq!(result["authorization"], "ok", "{result}");
    assert_eq!(result["at_level"], level, "{result}");
    assert_eq!(result["crl_entries"], 0, "{result}");
    let mut args = vec![
        ctl_url.clone(),
        "-".to_owned(),
        secret_hex.clone(),
        urn.clone(),
        s(x).to_owned(),
    ];
    ectl_through_dc(
        dc.path(),
        root_oer,
        &dc_url,
        &dc_ectl_base(dc_at),
        &mut args,
    )
    .await;

    // Revocation: the root revokes the AA offline; the new CRL (valid one
    // day: the DC warns of its nextUpdate) is installed in the running DC.
    trustca_cli(&[
        "etsi",
        "root",
        "revoke",
        "--dir",
        s(root.path()),
        "--name",
        "aa-1",
    ]);
    let (new_ctl, new_crl) = sign_lists("1");
    trustca_cli(&[
        "etsi",
        "install",
        "--dir",
        s(dc.path()),
        "--crl",
        s(&new_crl),
    ]);
    let crl_url = ctl_url.replace("/getctl/", "/getcrl/");
    assert!(
        dc_serves(&crl_url, &new_crl).await,
        "the DC serves the newly installed CRL: {}",
        dc_process.log()
    );
    let refused = station(x).await.unwrap();
    assert_eq!(refused["refused"], "aa revoked", "{refused}");
    authorities_read_new_crls(&RevocationSteps {
        root: root.path(),
        ea: ea.path(),
        aa: aa.path(),
        x,
        crl: &new_crl,
        station: &station_ignoring_crl(&ctl_url, root_oer, &secret_hex, &urn),
    })
    .await;
    trustca_cli(&[
        "etsi",
        "install",
        "--dir",
        s(dc.path()),
        "--ctl",
        s(&new_ctl),
    ]);
    // The station reads the CTL from the DC: once the DC serves the new
    // one, the station must find no AA in it.
    assert!(
        dc_serves(&ctl_url, &new_ctl).await,
        "the DC serves the newly installed CTL: {}",
        dc_process.log()
    );
    let left_out = station(x).await.unwrap();
    assert_eq!(
        left_out["refused"], "no aa",
        "the new CTL leaves the AA out: {left_out}"
    );
    assert!(
        dc_process.log().contains("nextUpdate soon"),
        "{}",
        dc_process.log()
    );
    assert!(!aa_process.log().contains("ERROR"), "{}", aa_process.log());
    drop((aa_process, dc_process));
    ca.stop().await;
}

/// Whether the distribution centre serves the list file `list` at `url`
/// within 10 s (it reads newly installed lists every `RELOAD_EVERY`).
async fn dc_serves(url: &str, list: &Path) -> bool {
    let wanted = std::fs::read(list).unwrap();
    for _ in 0..50 {
        let got = Command::new("python3")
            .args(["-c", FETCH, url])
            .output()
            .unwrap()
            .stdout;
        if got == wanted {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    false
}

/// The Python station's arguments, as a station that does not read the
/// CRL (`--ignore-crl`): it asks revoked authorities anyway, so their own
/// refusals show.
fn station_ignoring_crl(ctl_url: &str, root_oer: &Path, secret: &str, urn: &str) -> Vec<String> {
    let out = tempfile::tempdir().unwrap().keep();
    [ctl_url, s(root_oer), secret, urn, s(&out), "--ignore-crl"]
        .map(str::to_owned)
        .to_vec()
}

/// What [`authorities_read_new_crls`] works on.
struct RevocationSteps<'a> {
    root: &'a Path,
    ea: &'a Path,
    aa: &'a Path,
    /// Where files are handed over.
    x: &'a Path,
    /// The root's CRL revoking the AA.
    crl: &'a Path,
    station: &'a [String],
}

/// Runs the station until its result's `key` is `wanted` (the authorities
/// read newly installed lists within `RELOAD_EVERY`, without a restart).
async fn station_until(args: &[String], key: &str, wanted: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..10 {
        let a = args.to_vec();
        last = tokio::task::spawn_blocking(move || run_station(&a))
            .await
            .unwrap();
        if last[key] == wanted {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    }
    panic!("{key} never became {wanted}: {last}");
}

/// The running EA and AA take newly installed CRLs: the EA refuses to
/// validate for the revoked AA (`invalidaa`); once the root revokes the EA
/// too, the AA refuses its stations (`its-aa-invalidea`) and the EA, given
/// that CRL, issues no more credentials (`deniedrequest`).
async fn authorities_read_new_crls(t: &RevocationSteps<'_>) {
    let (ea, aa) = (s(t.ea), s(t.aa));
    // Before: the EA runs without a CRL and validates for the AA.
    let before = station_until(t.station, "authorization", "ok").await;
    assert_eq!(before["enrolment"], "ok", "{before}");
    trustca_cli(&["etsi", "install", "--dir", ea, "--crl", s(t.crl)]);
    trustca_cli(&["etsi", "install", "--dir", aa, "--crl", s(t.crl)]);
    let r = station_until(t.station, "authorization", "invalidaa").await;
    assert_eq!(r["enrolment"], "ok", "{r}");
    trustca_cli(&[
        "etsi",
        "root",
        "revoke",
        "--dir",
        s(t.root),
        "--name",
        "ea-1",
    ]);
    let both = t.x.join("crl-ea-aa.oer");
    trustca_cli(&[
        "etsi",
        "root",
        "sign-crl",
        "--dir",
        s(t.root),
        "--out",
        s(&both),
        "--days",
        "7",
    ]);
    trustca_cli(&["etsi", "install", "--dir", aa, "--crl", s(&both)]);
    let r = station_until(t.station, "authorization", "its-aa-invalidea").await;
    assert_eq!(r["enrolment"], "ok", "the EA has not read it yet: {r}");
    trustca_cli(&["etsi", "install", "--dir", ea, "--crl", s(&both)]);
    let r = station_until(t.station, "enrolment", "deniedrequest").await;
    assert!(r.get("authorization").is_none(), "{r}");
}

fn dc_ectl_base(dc: SocketAddr) -> String {
    format!("http://{dc}{}", trustca_server::etsi::http::ECTL_PREFIX)
}

/// A trust list manager recognising this root and a second one signs an
/// ECTL offline; installed in the running DC (refused first under another
/// TLM), it is served, and the Python station holding only the TLM's
/// certificate takes the root from it and enrols (`station` are its
/// arguments without the ECTL ones).
async fn ectl_through_dc(
    dc: &Path,
    root_oer: &Path,
    dc_url: &str,
    ectl_base: &str,
    station: &mut Vec<String>,
) {
    let work = tempfile::tempdir().unwrap();
    let (tlm, other) = (work.path().join("tlm"), work.path().join("other-root"));
    trustca_cli(&["etsi", "tlm", "init", "--dir", s(&tlm)]);
    trustca_cli(&[
        "etsi",
        "root",
        "init",
        "--dir",
        s(&other),
        "--name",
        "other-root",
    ]);
    let ectl = work.path().join("ectl.oer");
    let other_root = other.join("root.oer");
    trustca_cli(&[
        "etsi",
        "tlm",
        "sign-ectl",
        "--dir",
        s(&tlm),
        "--root",
        s(root_oer),
        "--root",
        s(&other_root),
        "--dc-url",
        dc_url,
        "--out",
        s(&ectl),
    ]);
    assert_eq!(private_keys(&tlm), ["tlm.key"]);
    // Under another "TLM" (a root certificate) the ECTL does not verify.
    trustca_refused(
        &[
            "etsi",
            "install",
            "--dir",
            s(dc),
            "--tlm",
            s(root_oer),
            "--ectl",
            s(&ectl),
        ],
        "--ectl",
    );
    let tlm_oer = tlm.join("tlm.oer");
    trustca_cli(&[
        "etsi",
        "install",
        "--dir",
        s(dc),
        "--tlm",
        s(&tlm_oer),
        "--ectl",
        s(&ectl),
    ]);
    let tlm_cert =
        Certificate::from_coer_in(CertProfile::EtsiTs103097, &std::fs::read(&tlm_oer).unwrap())
            .unwrap();
    let url = format!("{ectl_base}{}", hex::encode(tlm_cert.hashed_id8()));
    let wanted = std::fs::read(&ectl).unwrap();
    let mut served = false;
    for _ in 0..50 {
        let got = Command::new("python3")
            .args(["-c", FETCH, &url])
            .output()
            .unwrap();
        if got.stdout == wanted {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(served, "the DC serves the installed ECTL");
    station.extend(["--ectl".to_owned(), url, s(&tlm_oer).to_owned()]);
    let result = station_until(station, "enrolment", "ok").await;
    assert_eq!(result["ectl_roots"], 2, "{result}");
    assert_eq!(result["authorization"], "ok", "{result}");
}

/// The ceremony of `docs/v2x-etsi.md`, "Separated authorities", with the
/// `trustca` binary: an offline root, an EA, an AA and a distribution
/// centre, each in its own directory and each on its own loopback port;
/// the root certifies the EA's and AA's requests, and signs the CTL (which
/// names the DC) and the CRL offline, installed in the AA and the DC.
pub(crate) struct EtsiCeremony {
    pub(crate) root: tempfile::TempDir,
    pub(crate) ea: tempfile::TempDir,
    pub(crate) aa: tempfile::TempDir,
    pub(crate) dc: tempfile::TempDir,
    pub(crate) ea_at: SocketAddr,
    pub(crate) aa_at: SocketAddr,
    pub(crate) dc_at: SocketAddr,
    /// The root's certificate, as the stations hold it.
    pub(crate) root_oer: PathBuf,
}

impl EtsiCeremony {
    /// Runs the ceremony; files are handed over through `x`.
    pub(crate) fn run(x: &Path) -> Self {
        let [root, ea, aa, dc] = std::array::from_fn(|_| tempfile::tempdir().unwrap());
        let (ea_at, aa_at, dc_at) = (loopback_port(), loopback_port(), loopback_port());
        trustca_cli(&["etsi", "root", "init", "--dir", s(root.path())]);
        for (role, dir, name, at) in [("ea", &ea, "ea-1", ea_at), ("aa", &aa, "aa-1", aa_at)] {
            let url = format!("http://{at}");
            let dir = s(dir.path());
            trustca_cli(&[
                "etsi", role, "init", "--dir", dir, "--name", name, "--url", &url,
            ]);
        }
        trustca_cli(&["etsi", "dc", "init", "--dir", s(dc.path())]);
        let root_oer = root.path().join("root.oer");
        for (dir, cert) in [(ea.path(), "ea.oer"), (aa.path(), "aa.oer")] {
            let request = dir.join("request.toml");
            let out = x.join(cert);
            let (r, request, out) = (s(root.path()), s(&request), s(&out));
            trustca_cli(&[
                "etsi",
                "root",
                "sign",
                "--dir",
                r,
                "--request",
                request,
                "--out",
                out,
            ]);
            let root_cert = s(&root_oer);
            trustca_cli(&[
                "etsi",
                "install",
                "--dir",
                s(dir),
                "--root",
                root_cert,
                "--cert",
                out,
            ]);
        }
        let ceremony = Self {
            root,
            ea,
            aa,
            dc,
            ea_at,
            aa_at,
            dc_at,
            root_oer,
        };
        let (ctl, crl) = ceremony.sign_lists(x, "7");
        for dir in [ceremony.aa.path(), ceremony.dc.path()] {
            let mut args = vec!["etsi", "install", "--dir", s(dir), "--ctl", s(&ctl)];
            args.extend(["--crl", s(&crl)]);
            if dir == ceremony.dc.path() {
                args.extend(["--root", s(&ceremony.root_oer)]);
            }
            trustca_cli(&args);
        }
        ceremony
    }

    /// The distribution centre's URL, as the CTL names it.
    pub(crate) fn dc_url(&self) -> String {
        format!("http://{}", self.dc_at)
    }

    /// The root signs a CTL and a CRL valid `days` into `x`.
    pub(crate) fn sign_lists(&self, x: &Path, days: &str) -> (PathBuf, PathBuf) {
        let (ctl, crl) = (x.join("ctl.oer"), x.join("crl.oer"));
        let r = s(self.root.path());
        let dc_url = self.dc_url();
        let mut sign_ctl = vec!["etsi", "root", "sign-ctl", "--dir", r, "--out", s(&ctl)];
        sign_ctl.extend(["--dc-url", &dc_url, "--days", days]);
        trustca_cli(&sign_ctl);
        trustca_cli(&[
            "etsi",
            "root",
            "sign-crl",
            "--dir",
            r,
            "--out",
            s(&crl),
            "--days",
            days,
        ]);
        (ctl, crl)
    }

    /// The CA, in this process, with the ceremony's EA on its port.
    pub(crate) async fn start_ca_with_ea(&self, ca: &mut TestCa) {
        let mut opts = ServeOptions::new(
            ca.data().to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
            Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
        );
        opts.etsi_listen = Some(self.ea_at);
        opts.etsi_dir = Some(self.ea.path().to_path_buf());
        ca.server = Some(trustca_server::start(opts).await.unwrap());
    }
}
