//! A separated V2X deployment as operators set it up: each authority's
//! directory made by `init --role` with its own passphrase, certified by
//! the CA from its request, the peers' signed bundles imported, then one
//! `serve --role` per authority on loopback.

use std::path::Path;

use trustca_ca::Passphrase;
use trustca_scms::BatchPolicy;
use trustca_server::v2x::{RemoteAuthorities, V2xRole};
use trustca_server::v2x_role;
use trustca_server::{RunningServer, ServeOptions};

use super::{PASSPHRASE, TestCa};

/// One authority: its own directory and passphrase, and its server.
pub struct Authority {
    pub role: V2xRole,
    dir: std::path::PathBuf,
    pub server: Option<RunningServer>,
}

impl Authority {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.server.as_ref().unwrap().addr)
    }

    /// The registration authority's IEEE 1609.2.1 base URL.
    pub fn https_url(&self) -> String {
        format!(
            "https://{}",
            self.server.as_ref().unwrap().est_addr.unwrap()
        )
    }

    pub fn passphrase(&self) -> Passphrase {
        role_passphrase(self.role)
    }

    /// Its TLS credential as a client would hold it (only the RA's is
    /// accepted as a client by the others).
    pub fn client_credentials(&self) -> trustca_api::client::ClientCredentials {
        let keys =
            trustca_ca::Keystore::open(&self.path().join("keys"), &self.passphrase()).unwrap();
        let key_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", keys.load("tls").unwrap()));
        trustca_api::client::ClientCredentials {
            cert_pem: std::fs::read_to_string(self.path().join("tls/chain.pem")).unwrap(),
            key_pem,
            root_pem: std::fs::read_to_string(self.path().join("trust/root.pem")).unwrap(),
        }
    }
}

/// Each authority's own passphrase (none is the CA's).
pub fn role_passphrase(role: V2xRole) -> Passphrase {
    super::creating_passphrase(role_passphrase_text(role).as_bytes())
}

/// [`role_passphrase`] as an operator types it (`TRUSTCA_PASSPHRASE` of a
/// `serve --role` process).
pub fn role_passphrase_text(role: V2xRole) -> String {
    format!("{}-only-passphrase", role.as_str())
}

/// The four authorities, in the order registration, pseudonym CA,
/// linkage 1, linkage 2, each in its own directory under one temporary
/// base.
pub struct Separated {
    _base: tempfile::TempDir,
    pub authorities: Vec<Authority>,
}

impl Separated {
    pub fn get(&self, role: V2xRole) -> &Authority {
        self.authorities.iter().find(|a| a.role == role).unwrap()
    }

    /// Makes and certifies the four directories as operators do (before
    /// the CA server starts, so it records the new TLS certificates and
    /// can revoke them).
    pub fn provision(ca: &TestCa) -> Self {
        let base = tempfile::tempdir().unwrap();
        let dirs = v2x_role::provision_on_one_machine(
            ca.data(),
            &Passphrase::new(PASSPHRASE.to_vec()).unwrap(),
            base.path(),
            &role_passphrase,
            &["127.0.0.1".to_owned()],
        )
        .unwrap();
        let authorities = dirs
            .into_iter()
            .map(|d| Authority {
                role: d.role(),
                dir: d.path().to_path_buf(),
                server: None,
            })
            .collect();
        Self {
            _base: base,
            authorities,
        }
    }

    /// Copies the CA's CRLs into every authority's `crl/` (as an operator's
    /// sync job would).
    pub fn sync_crls(&self, ca: &TestCa) {
        for a in &self.authorities {
            let dst = a.path().join("crl");
            std::fs::create_dir_all(&dst).unwrap();
            for e in std::fs::read_dir(ca.data().join("crl")).unwrap().flatten() {
                std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
            }
        }
    }

    /// Starts the pseudonym CA and linkage authorities, then the RA
    /// pointing at them.
    pub async fn start(&mut self, batch: BatchPolicy) {
        for a in self.authorities.iter_mut() {
            if a.role != V2xRole::Registration {
                a.server = Some(role_server(a.path(), a.role, None, batch).await);
            }
        }
        let remote = RemoteAuthorities {
            pseudonym_ca: self.get(V2xRole::PseudonymCa).url(),
            linkage: [
                self.get(V2xRole::Linkage1).url(),
                self.get(V2xRole::Linkage2).url(),
            ],
        };
        let ra = self
            .authorities
            .iter_mut()
            .find(|a| a.role == V2xRole::Registration)
            .unwrap();
        ra.server = Some(role_server(ra.path(), ra.role, Some(remote), batch).await);
    }

    pub async fn stop(&mut self) {
        for a in self.authorities.iter_mut() {
            if let Some(s) = a.server.take() {
                s.shutdown().await.unwrap();
            }
        }
    }
}

/// Options of one `serve --role` process.
pub fn role_options(
    data: &Path,
    role: V2xRole,
    remote: Option<RemoteAuthorities>,
    batch: BatchPolicy,
) -> ServeOptions {
    let mut opts = ServeOptions::new(
        data.to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
        role_passphrase(role),
    );
    opts.role = Some(role);
    opts.metrics = Some("127.0.0.1:0".parse().unwrap());
    if role == V2xRole::Registration {
        // Vehicles' IEEE 1609.2.1 interface.
        opts.est_listen = Some("127.0.0.1:0".parse().unwrap());
    }
    opts.v2x_remote = remote;
    opts.v2x_batch = batch;
    opts.crl_refresh = std::time::Duration::from_millis(200);
    opts
}

pub async fn role_server(
    data: &Path,
    role: V2xRole,
    remote: Option<RemoteAuthorities>,
    batch: BatchPolicy,
) -> RunningServer {
    trustca_server::start(role_options(data, role, remote, batch))
        .await
        .unwrap()
}

/// Why `serve --role` refuses to start from `data` (it must refuse).
pub async fn role_start_error(data: &Path, role: V2xRole) -> String {
    trustca_server::start(role_options(data, role, None, BatchPolicy::default()))
        .await
        .expect_err("serve --role must refuse this directory")
        .to_string()
}

/// A vehicle enrolled at the CA with its butterfly key material.
pub struct Car {
    pub device: super::Device,
    pub caterpillar: trustca_pseudonym::Caterpillar,
}

/// Enrolls `n` Lv.5 cars of Acme at the CA (serials `V2X-0`, ...).
pub async fn enroll_cars(ca: &TestCa, n: usize) -> Vec<Car> {
    let acme = ca.credential(
        trustca_model::CertificateKind::Manufacturer,
        "Acme",
        &["automotive"],
    );
    let mut enroll = ca.client(&acme).await;
    // Lv.5 from the registered model (declared hardware counts up to Lv.3
    // in automotive): the tickets' permissions follow the level.
    super::register_automotive_lv5(ca, &acme, "Acme", "EV-200").await;
    let mut cars = Vec::new();
    for i in 0..n {
        let device = super::enroll_device(
            &mut enroll,
            &ca.root_pem(),
            "automotive",
            "Acme",
            "EV-200",
            &format!("V2X-{i}"),
            "2.1.0",
            vec![],
        )
        .await;
        cars.push(Car {
            device,
            caterpillar: trustca_pseudonym::Caterpillar::generate().unwrap(),
        });
    }
    cars
}

/// A registration authority's ticket request of the vehicle `cat` for
/// `periods` periods from `first` (none: from the current period).
pub fn ticket_request(
    cat: &trustca_pseudonym::Caterpillar,
    first: Option<u64>,
    periods: u32,
) -> trustca_proto::v1::RequestTicketsRequest {
    trustca_proto::v1::RequestTicketsRequest {
        butterfly_request: cat.request().to_bytes().to_vec(),
        first_period: first.unwrap_or(0),
        has_first_period: first.is_some(),
        periods,
    }
}
