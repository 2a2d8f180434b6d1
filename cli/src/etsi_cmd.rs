//! `trustca etsi ...`: the EU C-ITS authorities' offline tools
//! (`docs/v2x-etsi.md`): the key ceremony of the root, EA, AA and
//! distribution centre (`etsi_ceremony_cmd.rs`) and registering a
//! station's canonical key in the CA's store, on the data directory of a
//! stopped server (the operator's path; manufacturers register over the
//! network with their credential: `trustca etsi register-key`, which calls
//! `Enrollment/RegisterCanonicalKey` over mutual TLS).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;
use trustca_server::StoreConfig;
use trustca_v2x::PublicKeyP256;

use crate::cli::{ClientArgs, parse_store, print_json};
use trustca_proto::v1 as pb;

/// The DER prefix of a P-256 `SubjectPublicKeyInfo` with an uncompressed
/// point (id-ecPublicKey, prime256v1, BIT STRING of 66 octets).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// `trustca etsi ...`.
#[derive(Debug, Subcommand)]
pub enum EtsiAction {
    /// The offline ETSI root: init, sign (EA/AA certificates), sign-ctl,
    /// sign-crl, revoke.
    Root {
        #[command(subcommand)]
        action: crate::etsi_ceremony_cmd::RootAction,
    },
    /// An enrolment authority's own directory: init (keys and request).
    Ea {
        #[command(subcommand)]
        action: crate::etsi_ceremony_cmd::AuthorityAction,
    },
    /// An authorization authority's own directory: init (keys and request).
    Aa {
        #[command(subcommand)]
        action: crate::etsi_ceremony_cmd::AuthorityAction,
    },
    /// A distribution centre's directory: init.
    Dc {
        #[command(subcommand)]
        action: crate::etsi_ceremony_cmd::DcAction,
    },
    /// The offline trust list manager: init, sign-ectl (the European CTL
    /// of the root CAs it recognises).
    Tlm {
        #[command(subcommand)]
        action: crate::etsi_tlm_cmd::TlmAction,
    },
    /// Install the root certificate, an authority's certificate, or the
    /// root's CTL and CRL into an EA's, AA's or distribution centre's
    /// directory (each checked against the root first).
    Install(crate::etsi_ceremony_cmd::InstallArgs),
    /// Register an ITS station's canonical public key for a device its
    /// manufacturer enrolled (offline, on a stopped server's data
    /// directory): the enrolment authority then accepts the station's
    /// first enrolment signed with that key. The device must exist and be
    /// the manufacturer's; a key is never replaced; the registration is
    /// audited.
    RegisterCanonicalKey {
        /// Data directory of the CA (its store DATA/db).
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The store, if not the data directory's: a sled directory,
        /// fjall:DIR or a postgres:// URL.
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: Option<StoreConfig>,
        /// The device's URN (its canonical identifier, the `itsId` of its
        /// first enrolment).
        #[arg(long)]
        device: String,
        /// The manufacturer registering it (must be the device's).
        #[arg(long)]
        manufacturer: String,
        /// The canonical public key: a PEM P-256 public key
        /// (`openssl ec -pubout`).
        #[arg(long)]
        key: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manufacturer, over the network: register an ITS station's canonical
    /// public key for a device it enrolled (`Enrollment/RegisterCanonicalKey`,
    /// mutual TLS with the manufacturer's credential, which decides who may
    /// register: the device must be this manufacturer's, in a sector its
    /// credential names). A key is never replaced. The station makes the
    /// key itself (`trustca pseudonym canonical-key`); only the public key
    /// leaves it.
    RegisterKey(Box<RegisterKeyArgs>),
}

/// `trustca etsi register-key`.
#[derive(Debug, clap::Args)]
pub struct RegisterKeyArgs {
    /// The manufacturer's credential (--identity, --key), the CA server
    /// (--server) and the trustca root (--ca).
    #[command(flatten)]
    pub client: ClientArgs,
    /// The device's URN (its canonical identifier, the `itsId` of its
    /// first enrolment).
    #[arg(long)]
    pub device: String,
    /// The canonical public key: a PEM P-256 public key (`trustca
    /// pseudonym canonical-key --out`, or `openssl ec -pubout`).
    #[arg(long = "canonical-key", value_name = "PEM")]
    pub canonical_key: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `trustca etsi ...`.
pub async fn run(action: EtsiAction) -> Result<ExitCode> {
    use trustca_server::etsi::ceremony::EtsiRole;
    match action {
        EtsiAction::Root { action } => crate::etsi_ceremony_cmd::run_root(action),
        EtsiAction::Ea { action } => crate::etsi_ceremony_cmd::run_authority(EtsiRole::Ea, action),
        EtsiAction::Aa { action } => crate::etsi_ceremony_cmd::run_authority(EtsiRole::Aa, action),
        EtsiAction::Dc { action } => crate::etsi_ceremony_cmd::run_dc(action),
        EtsiAction::Tlm { action } => crate::etsi_tlm_cmd::run_tlm(action),
        EtsiAction::Install(args) => crate::etsi_ceremony_cmd::run_install(args),
        EtsiAction::RegisterKey(args) => register_key(*args).await,
        EtsiAction::RegisterCanonicalKey {
            data,
            store,
            device,
            manufacturer,
            key,
            json,
        } => {
            let public = read_public_key(&key)?;
            let storage = StoreConfig::or_data_dir(store.as_ref(), &data).open_existing()?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            trustca_server::etsi::register_canonical_key(
                storage.as_ref(),
                &manufacturer,
                &device,
                &public,
                now,
            )?;
            let compressed = hex::encode(public.compressed());
            if json {
                print_json(&json!({"device": device, "canonical_key": compressed}));
            } else {
                println!("registered the canonical key {compressed} of {device}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `trustca etsi register-key`: one gRPC call, its refusal one line with
/// the status in words.
async fn register_key(a: RegisterKeyArgs) -> Result<ExitCode> {
    let public = read_public_key(&a.canonical_key)?;
    let mut client = pb::enrollment_client::EnrollmentClient::new(a.client.channel().await?);
    let done = client
        .register_canonical_key(pb::RegisterCanonicalKeyRequest {
            device_urn: a.device.clone(),
            canonical_key: public.compressed().to_vec(),
        })
        .await
        .map_err(|s| crate::client::refused("registering the canonical key", &s))?
        .into_inner();
    let key = hex::encode(&done.canonical_key);
    if a.json {
        print_json(&json!({
            "device": done.device_urn,
            "canonical_key": key,
            "trust_level": done.trust_level,
        }));
    } else {
        println!(
            "registered the canonical key {key} of {} (trust level {}; its EU enrolment credential will carry it)",
            done.device_urn, done.trust_level
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A P-256 public key from a PEM `PUBLIC KEY` file.
pub(crate) fn read_public_key(path: &std::path::Path) -> Result<PublicKeyP256> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let parsed = pem::parse(&text).with_context(|| format!("{} is not PEM", path.display()))?;
    if parsed.tag() != "PUBLIC KEY" {
        bail!("{} is a {}, not a PUBLIC KEY", path.display(), parsed.tag());
    }
    let Some(point) = parsed.contents().strip_prefix(P256_SPKI_PREFIX.as_slice()) else {
        bail!("{} is not an uncompressed P-256 public key", path.display());
    };
    PublicKeyP256::from_sec1(point)
        .map_err(|e| anyhow::anyhow!("{}: not a P-256 point: {e}", path.display()))
}
