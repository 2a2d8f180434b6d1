//! `hsm`: EnrollBatch throughput with the CA keys in a SoftHSM2 token,
//! beside the same measurement with file keys, in one run, reported as a
//! ratio. SoftHSM2 is software: the ratio is the cost of trustca's PKCS#11
//! signing path (hash here, `C_Sign` through cryptoki, session pool, `r ‖ s`
//! to DER), not the speed of a real HSM.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once, when the module is initialised, and
//! setting an environment variable inside this process would need `unsafe`.
//! So [`reexec_with_token`] creates a token in a temporary directory first
//! and runs this same command again with the variable set.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use trustca_api::client::ClientCredentials;
use trustca_ca::CaHierarchy;
use trustca_model::{CertificateKind, SectorName};
use trustca_server::Pkcs11Options;
use trustca_server::ServeOptions;
use trustca_testkit::softhsm::SoftHsmToken;

use crate::fixture::{self, Device};
use crate::report::{Figure, Group, Row, skipped};
use crate::{grpc, progress};

/// Set in the re-executed child: the module path of its token.
const CHILD_ENV: &str = "TRUSTCA_BENCH_SOFTHSM_MODULE";
const TOKEN: &str = "trustca-bench";
const PIN: &str = "246810";
const SO_PIN: &str = "13579135";

fn module() -> Option<PathBuf> {
    trustca_testkit::softhsm::module()
}

/// When the `hsm` stage runs and this process is not the re-executed child:
/// makes a fresh SoftHSM2 token and runs this command again with
/// `SOFTHSM2_CONF` (and the PIN) set. `None`: carry on in this process
/// (already the child, or no SoftHSM2, in which case the stage is skipped).
pub fn reexec_with_token() -> Result<Option<ExitStatus>> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return Ok(None);
    }
    let Some(module) = module() else {
        return Ok(None);
    };
    let Some(token) = SoftHsmToken::create(TOKEN, PIN, SO_PIN).map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    let (dir, conf) = (&token.dir, &token.conf);
    progress(&format!(
        "SoftHSM2 token {TOKEN:?} in {}; running again with SOFTHSM2_CONF set",
        dir.path().display()
    ));
    let status = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env("SOFTHSM2_CONF", conf)
        .env(CHILD_ENV, &module)
        .env("TRUSTCA_PKCS11_PIN", PIN)
        .status()
        .context("re-running the benchmark")?;
    Ok(Some(status))
}

fn options(module: &Path) -> Pkcs11Options {
    Pkcs11Options {
        pkcs11_module: Some(module.to_path_buf()),
        pkcs11_token: Some(TOKEN.into()),
        pkcs11_pin_file: None,
    }
}

/// A CA whose keys are in the token, and the Acme credential of it.
fn init_hsm_ca(data: &Path, module: &Path) -> Result<ClientCredentials> {
    let pass = fixture::passphrase()?;
    let opts = options(module);
    trustca_server::init_with(data, None, &pass, &[], &opts).context("CA init in the token")?;
    let (_, set) = trustca_server::policies::resolve(None, Some(data))?;
    let token = trustca_server::open_token(data, &set.pki, &opts)?.map(|t| t.token);
    let hierarchy = CaHierarchy::open_with_token(data, &set, &pass, token)?;
    let reference = data.join("ca").join(format!("{}.pkcs11", fixture::SECTOR));
    if !reference.exists() {
        bail!("the {} CA key is not in the token", fixture::SECTOR);
    }
    let issued = hierarchy.issue_credential(
        &set,
        CertificateKind::Manufacturer,
        fixture::MANUFACTURER,
        &[SectorName::new(fixture::SECTOR)?],
        &[],
    )?;
    Ok(ClientCredentials {
        cert_pem: issued.chain_pem,
        key_pem: issued.key_pem,
        root_pem: fixture::root_pem(data)?,
    })
}

struct Totals {
    ops: u64,
    errors: u64,
    elapsed: std::time::Duration,
    note: String,
}

impl Totals {
    fn add(&mut self, row: &Row) {
        self.ops += row.ops;
        self.errors += row.errors;
        self.elapsed += row.elapsed;
        if self.note.is_empty() {
            self.note = row.note.clone();
        }
    }
}

/// Enrolls `devices` through EnrollBatch at a CA with file keys and at a CA
/// with every key in the token, alternating in `rounds` slices so both see
/// the same machine state; returns both rows and their ratio.
pub async fn measure(
    devices: &[Device],
    streams: usize,
    rounds: usize,
) -> Result<(Vec<Row>, Vec<Figure>)> {
    const FILE: &str = "EnrollBatch, CA keys in files";
    const HSM: &str = "EnrollBatch, CA keys in SoftHSM2 (PKCS#11)";
    let Some(module) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        let why = "skipped: SoftHSM2 not installed (apt-get install softhsm2)".to_owned();
        progress(&why);
        return Ok((
            vec![
                skipped(
                    "enroll_batch_file_keys",
                    FILE,
                    Group::Enrollment,
                    why.clone(),
                ),
                skipped("enroll_batch_softhsm_keys", HSM, Group::Enrollment, why),
            ],
            vec![],
        ));
    };
    let file_dir = tempfile::tempdir()?;
    let file_client = fixture::init_ca(file_dir.path())?.client;
    let hsm_dir = tempfile::tempdir()?;
    let hsm_client = init_hsm_ca(hsm_dir.path(), &module)?;
    let file_server = grpc::start(file_dir.path()).await?;
    let mut opts = ServeOptions::new(
        hsm_dir.path().to_path_buf(),
        "127.0.0.1:0".parse()?,
        fixture::passphrase()?,
    );
    opts.pkcs11 = options(&module);
    let hsm_server = trustca_server::start(opts)
        .await
        .context("start the server with keys in the token")?;
    let file_channels = grpc::connect(file_server.addr, &file_client, streams).await?;
    let hsm_channels = grpc::connect(hsm_server.addr, &hsm_client, streams).await?;

    let rounds = rounds.max(1);
    let per = devices.len().div_ceil(rounds).max(1);
    let new_totals = || Totals {
        ops: 0,
        errors: 0,
        elapsed: std::time::Duration::ZERO,
        note: String::new(),
    };
    let (mut file, mut hsm) = (new_totals(), new_totals());
    for (i, slice) in devices.chunks(per).enumerate() {
        let slice = Arc::new(slice.to_vec());
        // Alternate which goes first, so neither always runs on a warmer
        // (or busier) machine.
        let order = if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for in_token in order {
            progress(&format!(
                "hsm: round {}/{rounds}, {} devices, keys in {}",
                i + 1,
                slice.len(),
                if in_token { "SoftHSM2" } else { "files" }
            ));
            if in_token {
                hsm.add(&grpc::batch(&hsm_channels, Arc::clone(&slice)).await?);
            } else {
                file.add(&grpc::batch(&file_channels, Arc::clone(&slice)).await?);
            }
        }
    }
    drop((file_channels, hsm_channels));
    file_server.shutdown().await?;
    hsm_server.shutdown().await?;
    let row = |key, label: &str, t: Totals| Row {
        key,
        label: label.into(),
        group: Group::Enrollment,
        ops: t.ops,
        errors: t.errors,
        elapsed: t.elapsed,
        latency: None,
        note: grpc::join_notes(&[t.note, format!("{rounds} alternating rounds")]),
    };
    let file_row = row("enroll_batch_file_keys", FILE, file);
    let hsm_row = row("enroll_batch_softhsm_keys", HSM, hsm);
    let ratio = if file_row.rate() > 0.0 {
        hsm_row.rate() / file_row.rate()
    } else {
        0.0
    };
    let figure = Figure::new(
        "enroll_batch_softhsm_over_file",
        "EnrollBatch rate with SoftHSM2 keys / with file keys",
        ratio,
        "x",
    )
    .note("same run, same devices and streams; SoftHSM2 is software, so this is the PKCS#11 signing path's overhead, not an HSM's speed");
    Ok((vec![file_row, hsm_row], vec![figure]))
}
