//! `trustca store ...`: moving a deployment between stores (sled to
//! PostgreSQL or fjall, and back) and looking at what a store holds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;
use trustca_server::StoreConfig;

use crate::cli::{PassphraseArgs, parse_store, print_json};

/// `trustca store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreAction {
    /// Copy every record of a stopped deployment's store into an empty one
    /// (e.g. sled to PostgreSQL or to fjall), the audit log with its sequence numbers
    /// and leaf hashes, so `trustca audit verify` passes on the target.
    Copy {
        /// The source: a sled directory (e.g. DATA/db), fjall:DIR or a
        /// postgres:// URL.
        #[arg(long, value_parser = parse_store)]
        from: StoreConfig,
        /// The target (must be empty): a postgres:// URL, fjall:DIR or a sled directory.
        #[arg(long, value_parser = parse_store)]
        to: StoreConfig,
        /// Records per target transaction.
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        chunk: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a stopped (or running PostgreSQL) store against what it
    /// committed: recompute every audit entry's leaf and the log's Merkle
    /// root (against the stored frontier and every kept tree head), then
    /// check every certificate, device, trust record and history entry
    /// (certificates against the SHA-256 their issuance entry committed).
    /// Damaged records are named by serial, identity or sequence number.
    /// Exits 0 when intact, 1 when anything is damaged.
    Check {
        /// Data directory whose store to check (its sled store DATA/db),
        /// as for `audit` and `store seal`.
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The store, if not the data directory's: a sled directory,
        /// fjall:DIR or a postgres:// URL.
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: Option<StoreConfig>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Seal a store written by a trustca from before record seals (once,
    /// on upgrade, with every server of the store stopped): each
    /// certificate, device and trust record still in the old format is
    /// rewritten bound to a new audit entry (`store.records-sealed`) under
    /// the CA's record-seal key, so it needs the passphrase. The store must
    /// pass `trustca store check` first; an interrupted run is finished by
    /// running it again.
    Seal {
        /// Data directory of the CA (its keystore holds the seal key).
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The store (default: the data directory's sled store).
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: Option<StoreConfig>,
        /// Who seals, for the audit log.
        #[arg(long, default_value = "operator:store-seal")]
        actor: String,
        /// Records per audit entry and transaction.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        chunk: u32,
        #[command(flatten)]
        pass: PassphraseArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what a store holds: certificates, devices, audit log size.
    Info {
        /// The store: a sled directory, fjall:DIR or a postgres:// URL.
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: StoreConfig,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `trustca store` command.
pub fn run(action: StoreAction) -> Result<ExitCode> {
    match action {
        StoreAction::Copy {
            from,
            to,
            chunk,
            json,
        } => copy(&from, &to, chunk as usize, json),
        StoreAction::Info { store, json } => info(&store, json),
        StoreAction::Check { data, store, json } => {
            check(&StoreConfig::or_data_dir(store.as_ref(), &data), json)
        }
        StoreAction::Seal {
            data,
            store,
            actor,
            chunk,
            pass,
            json,
        } => {
            let store = StoreConfig::or_data_dir(store.as_ref(), &data);
            seal(&data, &store, &actor, chunk as usize, &pass, json)
        }
    }
}

fn seal(
    data: &Path,
    store: &StoreConfig,
    actor: &str,
    chunk: usize,
    pass: &PassphraseArgs,
    json: bool,
) -> Result<ExitCode> {
    let passphrase = pass.load()?;
    let Some(key) = trustca_ca::CaHierarchy::read_record_seal_key(data, &passphrase)? else {
        bail!(
            "{}/ca has no record-seal key (it predates record seals): run `trustca init --data {}` first to add it, then copy ca/ to every replica",
            data.display(),
            data.display()
        );
    };
    let s = store
        .open()
        .with_context(|| format!("cannot open the store {}", store.describe()))?;
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    let started = std::time::Instant::now();
    let report = trustca_store::seal_legacy_records(
        s.as_ref(),
        &trustca_store::RecordSeal::new(&key),
        actor,
        at,
        chunk,
        &mut |r| {
            if !json {
                eprintln!("sealed {} records so far", r.records());
            }
        },
    )
    .with_context(|| format!("cannot seal the store {}", store.describe()))?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        print_json(&json!({
            "store": store.describe(),
            "sealed": report.records(),
            "certificates": report.certificates,
            "devices": report.devices,
            "trust_records": report.trust_records,
            "audit_entries": report.audit_entries,
            "seconds": seconds,
        }));
    } else if report.records() == 0 {
        println!(
            "{}: every record is sealed already; nothing to do",
            store.describe()
        );
    } else {
        println!(
            "sealed {} records of {} in {seconds:.1} s ({} certificates, {} devices, {} trust records) to {} new audit entries ({})",
            report.records(),
            store.describe(),
            report.certificates,
            report.devices,
            report.trust_records,
            report.audit_entries,
            trustca_store::SEALED_KIND
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn copy(from: &StoreConfig, to: &StoreConfig, chunk: usize, json: bool) -> Result<ExitCode> {
    if from == to
        || from
            .embedded_dir()
            .is_some_and(|d| to.embedded_dir() == Some(d))
    {
        bail!("--from and --to are the same store");
    }
    let source = from
        .open()
        .with_context(|| format!("cannot open the source store {}", from.describe()))?;
    let target = to
        .open()
        .with_context(|| format!("cannot open the target store {}", to.describe()))?;
    let (certificates, _) = source.counts()?;
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    };
    let started = std::time::Instant::now();
    let report = trustca_store::copy_store(source.as_ref(), target.as_ref(), chunk, &mut |r| {
        bar.set_message(format!(
            "{} records copied ({} audit entries; source holds {certificates} certificates)",
            r.records, r.audit_entries
        ));
        bar.tick();
    })
    .with_context(|| format!("copy into {} failed", to.describe()))?;
    bar.finish_and_clear();
    // Same log, same head: the copy is the source's log.
    let (size, root) = source.audit_head()?;
    let (copied_size, copied_root) = target.audit_head()?;
    if (size, root) != (copied_size, copied_root) {
        bail!(
            "the copied audit log differs from the source's (size {copied_size} vs {size}); do not use the target"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    if json {
        print_json(&json!({
            "from": from.describe(),
            "to": to.describe(),
            "records": report.records,
            "audit_entries": report.audit_entries,
            "audit_root": hex::encode(root),
            "seconds": seconds,
        }));
    } else {
        println!(
            "copied {} records ({} audit entries, root {}) from {} to {} in {seconds:.1} s",
            report.records,
            report.audit_entries,
            hex::encode(root),
            from.describe(),
            to.describe()
        );
        println!(
            "next: trustca audit verify --data DATA --store {}",
            to.describe()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn info(store: &StoreConfig, json: bool) -> Result<ExitCode> {
    // Reading changes nothing: no migration. The error names the store.
    let s = store.open_existing()?;
    let (certificates, devices) = s.counts()?;
    let (size, root) = s.audit_head()?;
    let bytes = s.size_on_disk()?;
    if json {
        print_json(&json!({
            "store": store.describe(),
            "certificates": certificates,
            "devices": devices,
            "audit_entries": size,
            "audit_root": hex::encode(root),
            "bytes": bytes,
        }));
    } else {
        println!("store          {}", store.describe());
        println!("certificates   {certificates}");
        println!("devices        {devices}");
        println!("audit entries  {size} (root {})", hex::encode(root));
        println!("size           {bytes} bytes");
    }
    Ok(ExitCode::SUCCESS)
}

fn check(store: &StoreConfig, json: bool) -> Result<ExitCode> {
    // Reading changes nothing: no migration. The error names the store.
    let s = store.open_existing()?;
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} checking {msg} [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar
    };
    let started = std::time::Instant::now();
    let report = trustca_store::check_store(s.as_ref(), &mut |phase, n| {
        bar.set_message(format!("{phase}: {n} records"));
        bar.tick();
    })
    .with_context(|| format!("cannot check the store {}", store.describe()))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if json {
        print_json(&json!({
            "store": store.describe(),
            "intact": report.damaged.is_empty(),
            "problems": report.damaged.len(),
            "audit_entries": report.audit_entries,
            "tree_heads": report.tree_heads,
            "certificates": report.certificates,
            "devices": report.devices,
            "trust_records": report.trust_records,
            "history_entries": report.history_entries,
            "damaged": report.damaged,
            "unsealed": report.unsealed,
            "seconds": seconds,
        }));
    } else {
        println!(
            "checked {} records of {} in {seconds:.1} s: {} audit entries ({} tree heads), {} certificates, {} devices, {} trust records, {} history entries",
            report.records(),
            store.describe(),
            report.audit_entries,
            report.tree_heads,
            report.certificates,
            report.devices,
            report.trust_records,
            report.history_entries
        );
        if report.unsealed > 0 {
            println!(
                "{} record(s) not sealed yet: written by a trustca from before record seals; run `trustca store seal --data DATA --store {}` (not damage, but no server serves them until then)",
                report.unsealed,
                store.describe()
            );
        }
        if report.damaged.is_empty() {
            println!("intact: every record agrees with the audit log");
        } else {
            // The count first: a long list must not hide how long it is.
            println!("{} problem(s) found", report.damaged.len());
            println!("{:<12} {:<40} PROBLEM", "KIND", "RECORD");
            for d in &report.damaged {
                println!("{:<12} {:<40} {}", d.kind, d.key, d.reason);
            }
        }
    }
    Ok(if report.damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
