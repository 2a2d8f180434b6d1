//! A device's TPM for the attestation tests: a real swtpm with an EK
//! certificate from its own swtpm-localca, driven with tpm2-tools. Without
//! swtpm the tests print a note and pass, unless `TRUSTCA_REQUIRE_INTEROP=1`
//! (set in CI), where they fail.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A local CA that certifies EKs (swtpm-localca with its own state).
pub struct LocalCa {
    pub dir: PathBuf,
    conf: PathBuf,
}

impl LocalCa {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("swtpm-localca.conf");
        std::fs::write(
            &conf,
            format!(
                "statedir = {d}\nsigningkey = {d}/signkey.pem\nissuercert = {d}/issuercert.pem\ncertserial = {d}/certserial\n",
                d = dir.display()
            ),
        )
        .unwrap();
        Self {
            dir: dir.to_path_buf(),
            conf,
        }
    }

    /// The root (DER), created with the first EK certificate.
    pub fn root_pem_path(&self) -> PathBuf {
        self.dir.join("swtpm-localca-rootca-cert.pem")
    }

    /// The intermediate that signs EK certificates (DER).
    pub fn issuer_der(&self) -> Vec<u8> {
        pem::parse(std::fs::read(self.dir.join("issuercert.pem")).unwrap())
            .unwrap()
            .into_contents()
    }
}

/// A running swtpm, killed on drop.
pub struct SwTpm {
    pub dir: PathBuf,
    port: u16,
    child: Child,
}

impl Drop for SwTpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether swtpm and tpm2-tools are here (fails under
/// `TRUSTCA_REQUIRE_INTEROP=1` when not).
pub fn available() -> bool {
    // (`swtpm_setup --version` exits 1: it only has to start.)
    let ok = ["swtpm", "tpm2_certifycreation"].iter().all(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) && Command::new("swtpm_setup")
        .arg("--version")
        .output()
        .is_ok();
    if !ok {
        let note = "swtpm and tpm2-tools are not installed (Debian: apt-get install swtpm swtpm-tools tpm2-tools)";
        crate::skip_or_fail(note);
    }
    ok
}

/// A free port whose successor is free too: the swtpm TCTI finds the
/// control channel at port + 1.
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn run(cmd: &mut Command) -> Result<Vec<u8>, String> {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl SwTpm {
    /// Manufactures a TPM (EK certificate from `ca`) in `dir` and starts it.
    pub fn new(dir: &Path, ca: &LocalCa) -> Self {
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let setup = dir.join("swtpm_setup.conf");
        std::fs::write(
            &setup,
            format!(
                "create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = {}\ncreate_certs_tool_options = /etc/swtpm-localca.options\n",
                ca.conf.display()
            ),
        )
        .unwrap();
        run(Command::new("swtpm_setup")
            .args([
                "--tpm2",
                "--create-ek-cert",
                "--create-platform-cert",
                "--overwrite",
            ])
            .arg("--tpmstate")
            .arg(dir.join("state"))
            .arg("--config")
            .arg(&setup)
            .arg("--write-ek-cert-files")
            .arg(dir))
        .unwrap();
        let port = free_port_pair();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--flags", "not-need-init,startup-clear"])
            .arg("--tpmstate")
            .arg(format!("dir={}", dir.join("state").display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port}"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={}", port + 1))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "swtpm did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let tpm = Self {
            dir: dir.to_path_buf(),
            port,
            child,
        };
        tpm.tool(&["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"]);
        tpm.tool(&[
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "ecc",
            "-g",
            "sha256",
            "-s",
            "ecdsa",
            "-u",
            "ak.pub",
            "-n",
            "ak.name",
        ]);
        tpm.tool(&[
            "tpm2_createprimary",
            "-C",
            "o",
            "-g",
            "sha256",
            "-G",
            "ecc",
            "-c",
            "srk.ctx",
        ]);
        tpm
    }

    /// Runs a tpm2-tools command in the TPM's directory, then flushes the
    /// transient objects it left (there is no resource manager).
    pub fn try_tool(&self, args: &[&str]) -> Result<Vec<u8>, String> {
        let out = run(Command::new(args[0])
            .args(&args[1..])
            .current_dir(&self.dir)
            .env("TPM2TOOLS_TCTI", format!("swtpm:port={}", self.port)));
        let _ = run(Command::new("tpm2_flushcontext")
            .arg("-t")
            .current_dir(&self.dir)
            .env("TPM2TOOLS_TCTI", format!("swtpm:port={}", self.port)));
        out
    }

    pub fn tool(&self, args: &[&str]) -> Vec<u8> {
        self.try_tool(args).unwrap()
    }

    pub fn read(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(file)).unwrap()
    }

    /// The EK certificate chain as the device sends it: EK, then its CA.
    pub fn ek_chain(&self, ca: &LocalCa) -> Vec<Vec<u8>> {
        vec![self.read("ek-rsa2048.crt"), ca.issuer_der()]
    }

    /// Creates a signing key `name` (`.pub`, `.priv`, `.ctx`, creation
    /// data and ticket) with `attributes`.
    pub fn create_key(&self, name: &str, attributes: &str) {
        self.tool(&[
            "tpm2_create",
            "-C",
            "srk.ctx",
            "-G",
            "ecc256",
            "-a",
            attributes,
            "-u",
            &format!("{name}.pub"),
            "-r",
            &format!("{name}.priv"),
            "--creation-data",
            &format!("{name}.cdata"),
            "-t",
            &format!("{name}.ticket"),
            "-d",
            &format!("{name}.chash"),
        ]);
    }

    /// Loads key `name` (contexts do not survive a flush of transients).
    fn load(&self, name: &str) {
        self.tool(&[
            "tpm2_load",
            "-C",
            "srk.ctx",
            "-u",
            &format!("{name}.pub"),
            "-r",
            &format!("{name}.priv"),
            "-c",
            &format!("{name}.ctx"),
        ]);
    }

    /// ActivateCredential with the EK (policy session) on the blob.
    pub fn activate(&self, id_object: &[u8], encrypted_secret: &[u8]) -> Result<Vec<u8>, String> {
        let mut blob = vec![0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1];
        blob.extend_from_slice(id_object);
        blob.extend_from_slice(encrypted_secret);
        std::fs::write(self.dir.join("cred.bin"), blob).unwrap();
        let _ = std::fs::remove_file(self.dir.join("secret.out"));
        run(Command::new("sh")
            .arg("-c")
            .arg(
                "tpm2_startauthsession --policy-session -S session.ctx && \
                 tpm2_policysecret -S session.ctx -c e >/dev/null && \
                 tpm2_activatecredential -c ak.ctx -C ek.ctx -i cred.bin -o secret.out -P session:session.ctx >/dev/null; \
                 r=$?; tpm2_flushcontext session.ctx; tpm2_flushcontext -t; exit $r",
            )
            .current_dir(&self.dir)
            .env("TPM2TOOLS_TCTI", format!("swtpm:port={}", self.port)))?;
        Ok(self.read("secret.out"))
    }

    /// TPM2_CertifyCreation of key `name` by the AK with `nonce` as
    /// qualifying data: (TPMS_ATTEST, TPMT_SIGNATURE).
    pub fn certify_creation(&self, name: &str, nonce: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.load(name);
        self.tool(&[
            "tpm2_certifycreation",
            "-C",
            "ak.ctx",
            "-c",
            &format!("{name}.ctx"),
            "-d",
            &format!("{name}.chash"),
            "-t",
            &format!("{name}.ticket"),
            "-g",
            "sha256",
            "-q",
            &hex::encode(nonce),
            "-o",
            "att.sig",
            "--attestation",
            "att.bin",
        ]);
        (self.read("att.bin"), self.read("att.sig"))
    }

    /// A CSR for key `name`, signed inside the TPM (tpm2_sign).
    pub fn csr(&self, name: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tpm device");
        self.csr_with(name, &params, Vec::new())
    }

    /// A CSR for key `name` with `params`' subject and `attributes`,
    /// signed inside the TPM.
    pub fn csr_with(
        &self,
        name: &str,
        params: &rcgen::CertificateParams,
        attributes: Vec<rcgen::Attribute>,
    ) -> Vec<u8> {
        self.load(name);
        self.tool(&[
            "tpm2_readpublic",
            "-c",
            &format!("{name}.ctx"),
            "-f",
            "der",
            "-o",
            &format!("{name}.spki"),
        ]);
        let spki = self.read(&format!("{name}.spki"));
        let key = TpmKey {
            tpm: self,
            name: name.to_owned(),
            point: x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki)
                .unwrap()
                .1
                .subject_public_key
                .data
                .to_vec(),
        };
        params
            .serialize_request_with_attributes(&key, attributes)
            .unwrap()
            .der()
            .to_vec()
    }
}

use x509_parser::prelude::FromDer;

/// A key inside the TPM, as rcgen's signer.
struct TpmKey<'a> {
    tpm: &'a SwTpm,
    name: String,
    point: Vec<u8>,
}

impl rcgen::PublicKeyData for TpmKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for TpmKey<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        std::fs::write(self.tpm.dir.join("tbs.bin"), msg).unwrap();
        self.tpm.load(&self.name);
        self.tpm.tool(&[
            "tpm2_sign",
            "-c",
            &format!("{}.ctx", self.name),
            "-g",
            "sha256",
            "-f",
            "plain",
            "-o",
            "tbs.sig",
            "tbs.bin",
        ]);
        Ok(self.tpm.read("tbs.sig"))
    }
}
