//! The Go checker (`tests/interop/go`, Go's standard library only: an
//! independent path validator, CRL parser and TLS client) run on what a
//! key ceremony made: service and device chains with the usage each is
//! for, the root's ARL and each sector's CRL under its issuer, and mutual
//! TLS to running instances.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use trustca_api::client::ClientCredentials;

use super::ceremony::Ceremony;
use super::{available, build_go_checker, run_output};

/// One running instance to check: its sector, a device of that sector
/// (the TLS client) and where it listens.
pub struct Instance<'a> {
    pub sector: &'a str,
    pub device: &'a ClientCredentials,
    pub addr: SocketAddr,
}

/// The built checker.
pub struct GoChecker {
    bin: PathBuf,
}

impl GoChecker {
    /// Builds the checker; None (saying how to install Go) when `go` is
    /// not on this machine.
    pub fn new() -> Option<Self> {
        available("go", &["version"], "apt-get install golang-go").then(|| Self {
            bin: build_go_checker(),
        })
    }

    fn run(&self, args: &[&OsStr]) -> (bool, String) {
        run_output(std::process::Command::new(&self.bin).args(args))
    }

    fn must(&self, args: &[&OsStr]) {
        let (ok, out) = self.run(args);
        assert!(ok, "Go {args:?}:\n{out}");
    }

    /// `chain` (PEM, leaf first) verifies to `root` for `eku`
    /// (`client`, `server`, `ocsp`, `any`).
    pub fn verify(&self, root: &Path, chain: &Path, eku: &str) {
        self.must(&[
            "verify".as_ref(),
            root.as_ref(),
            chain.as_ref(),
            eku.as_ref(),
        ]);
    }

    /// `chain` does not verify to `root`; returns Go's reason.
    pub fn verify_fails(&self, root: &Path, chain: &Path, eku: &str) -> String {
        let (ok, out) = self.run(&[
            "verify".as_ref(),
            root.as_ref(),
            chain.as_ref(),
            eku.as_ref(),
        ]);
        assert!(
            !ok,
            "Go verified {} under {}:\n{out}",
            chain.display(),
            root.display()
        );
        out
    }

    /// `crl` (DER or PEM) parses and is signed by `issuer` (PEM).
    pub fn crl(&self, crl: &Path, issuer: &Path) {
        let arg = format!("{}={}", crl.display(), issuer.display());
        self.must(&["crl".as_ref(), arg.as_ref()]);
    }

    /// Mutual TLS to `addr`: the server's chain verifies to `root`, and
    /// the client presents `chain` with `key`.
    pub fn tls(&self, addr: SocketAddr, root: &Path, chain: &Path, key: &Path) {
        let addr = addr.to_string();
        self.must(&[
            "tls".as_ref(),
            addr.as_ref(),
            root.as_ref(),
            chain.as_ref(),
            key.as_ref(),
        ]);
    }

    /// Everything a ceremony made for the running `instances`: each
    /// instance's TLS (server and client), responder and audit chains, its
    /// device's chain, its sector's CRL under its CA and mutual TLS with
    /// its device; and the root's ARL. Device files go into `work`.
    pub fn ceremony(&self, c: &Ceremony, instances: &[Instance<'_>], work: &Path) {
        let root = c.root.path().join("ca/root.pem");
        for i in instances {
            let ca = |f: &str| c.data(i.sector).join("ca").join(f);
            for (file, eku) in [
                ("server.pem", "server"),
                ("server.pem", "client"),
                ("responder.pem", "ocsp"),
                ("audit.pem", "ocsp"),
            ] {
                self.verify(&root, &ca(file), eku);
            }
            let (chain, key) = device_files(work, i.sector, i.device);
            self.verify(&root, &chain, "client");
            self.crl(
                &c.data(i.sector).join(format!("crl/{}.crl", i.sector)),
                &ca(&format!("{}.pem", i.sector)),
            );
            self.tls(i.addr, &root, &chain, &key);
        }
        self.crl(&c.root.path().join("crl/root.crl"), &root);
    }
}

/// Writes a device's chain and key as `<name>-device.pem|key` in `dir`.
pub fn device_files(dir: &Path, name: &str, device: &ClientCredentials) -> (PathBuf, PathBuf) {
    let chain = dir.join(format!("{name}-device.pem"));
    let key = dir.join(format!("{name}-device.key"));
    std::fs::write(&chain, &device.cert_pem).unwrap();
    std::fs::write(&key, &device.key_pem).unwrap();
    (chain, key)
}
