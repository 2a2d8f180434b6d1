//! `trustca audit ...`: the auditor's tools, run offline on a data
//! directory (or a copy of it): recompute the Merkle tree over every entry
//! and check every signed tree head, prove inclusion and consistency, list
//! entries and report what the CA did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use trustca_datadir::DataDir;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;
use trustca_audit::{Hash, LogVerifier, SignedTreeHead};
use trustca_server::StoreConfig;
use trustca_store::{AuditEntry, Storage};

use crate::certinfo::read_certs;
use crate::cli::{parse_store, print_json};

/// `trustca audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Recompute the whole log and check every signed tree head; on
    /// tampering, name the first bad entry and exit 1.
    Verify {
        /// Data directory (or a copy of it; the server must not be running on it).
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The store, when it is not DATA/db: a postgres:// URL, fjall:DIR or a sled directory.
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: Option<StoreConfig>,
        #[arg(long)]
        json: bool,
    },
    /// Prove that entry ENTRY is in the log (inclusion proof against the latest signed head).
    Prove {
        /// Entry index.
        entry: u64,
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The store, when it is not DATA/db: a postgres:// URL, fjall:DIR or a sled directory.
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: Option<StoreConfig>,
        #[arg(long)]
        json: bool,
    },
    /// Prove that the log of size NEW extends the log of size OLD (both signed heads).
    Consistency {
        /// Older tree size.
        old: u64,
        /// Newer tree size.
        new: u64,
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The store, when it is not DATA/db: a postgres:// URL, fjall:DIR or a sled directory.
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: Option<StoreConfig>,
        #[arg(long)]
        json: bool,
    },
    /// List entries.
    List {
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The store, when it is not DATA/db: a postgres:// URL, fjall:DIR or a sled directory.
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: Option<StoreConfig>,
        /// Only entries at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only entries whose kind starts with this (e.g. `certificate.`, `trust.`).
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Summarise: certificates issued per sector/manufacturer/level,
    /// revocations, level changes.
    Report {
        #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
        data: PathBuf,
        /// The store, when it is not DATA/db: a postgres:// URL, fjall:DIR or a sled directory.
        #[arg(long, env = "TRUSTCA_STORE", value_parser = parse_store)]
        store: Option<StoreConfig>,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// Comma-separated values for spreadsheets.
        #[arg(long)]
        csv: bool,
    },
}

fn open_store(data: &Path, store: Option<&StoreConfig>) -> Result<Arc<dyn Storage>> {
    let config = StoreConfig::or_data_dir(store, data);
    if let Some(db) = config.embedded_dir()
        && !db.exists()
    {
        bail!("{} holds no store", db.display());
    }
    config.open().map_err(|e| {
        if let Some(db) = config.embedded_dir()
            && e.to_string().contains("in use")
        {
            anyhow::anyhow!(
                "{} is in use by a running server; audit a copy (cp -a {} {}.copy)",
                db.display(),
                data.display(),
                data.display()
            )
        } else {
            e.into()
        }
    })
}

/// Every audit signer's public key: the current one (`ca/audit.pem`) and
/// those its renewals replaced (`ca/audit-signers/`), each after checking
/// that its certificate chains to the root. An earlier signer is checked as
/// of its own `notBefore`, since it may well have expired by now.
fn audit_public_keys(data: &Path) -> Result<Vec<Vec<u8>>> {
    let root = read_certs(&DataDir::new(data).root_cert())?.remove(0);
    let mut files = vec![DataDir::new(data).ca().join("audit.pem")];
    let archive = DataDir::new(data).ca().join(trustca_ca::AUDIT_SIGNERS_DIR);
    if let Ok(dir) = std::fs::read_dir(&archive) {
        let mut earlier: Vec<_> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        earlier.sort();
        files.extend(earlier);
    }
    let oid = crate::cli::extension_oid_for(data)?;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for file in files {
        let chain = read_certs(&file)?;
        let (_, cert) = x509_parser::parse_x509_certificate(&chain[0])
            .map_err(|_| anyhow::anyhow!("{} does not parse", file.display()))?;
        let issued = cert.validity().not_before.to_datetime();
        trustca_model::verify_chain(&chain[..1], &[], &root, issued, &oid)
            .with_context(|| format!("audit signer certificate {}", file.display()))?;
        let key = cert.public_key().subject_public_key.data.to_vec();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(keys)
}

fn heads(store: &dyn Storage, keys: &[Vec<u8>]) -> Result<Vec<SignedTreeHead>> {
    let mut out = Vec::new();
    for bytes in store.tree_heads()? {
        let h = SignedTreeHead::from_bytes(&bytes)
            .map_err(|e| anyhow::anyhow!("stored tree head: {e}"))?;
        h.verify_any(keys)
            .map_err(|e| anyhow::anyhow!("tree head of size {}: {e}", h.head.size))?;
        out.push(h);
    }
    Ok(out)
}

fn entries(store: &dyn Storage) -> Result<Vec<AuditEntry>> {
    let mut out = Vec::new();
    for (i, raw) in store.audit_entries_raw(0, usize::MAX)? {
        out.push(AuditEntry::decode(&raw).with_context(|| format!("audit entry {i}"))?);
    }
    Ok(out)
}

fn hex(h: &Hash) -> String {
    trustca_model::hexfmt::encode(h)
}

/// Runs `trustca audit ...`.
pub fn run(action: AuditAction) -> Result<ExitCode> {
    match action {
        AuditAction::Verify { data, store, json } => verify(&data, store.as_ref(), json),
        AuditAction::Prove {
            entry,
            data,
            store,
            json,
        } => {
            let store = open_store(&data, store.as_ref())?;
            let keys = audit_public_keys(&data)?;
            let heads = heads(store.as_ref(), &keys)?;
            let head = heads.last().context(
                "no signed tree head yet (the server signs one every 10 s and at shutdown)",
            )?;
            let hashes: Vec<Hash> = entries(store.as_ref())?
                .iter()
                .map(|e| e.leaf_hash)
                .collect();
            if entry >= head.head.size {
                bail!(
                    "entry {entry} is not covered by the latest signed head (size {})",
                    head.head.size
                );
            }
            let proof = trustca_audit::inclusion_proof(&hashes, entry, head.head.size)?;
            let leaf = hashes[entry as usize];
            trustca_audit::verify_inclusion(&leaf, entry, head.head.size, &proof, &head.head.root)?;
            if json {
                print_json(&json!({
                    "entry": entry, "leaf_hash": hex(&leaf), "tree_size": head.head.size,
                    "root": hex(&head.head.root), "proof": proof.iter().map(hex).collect::<Vec<_>>(), "verified": true,
                }));
            } else {
                println!(
                    "entry {entry} is in the log of size {} (root {})",
                    head.head.size,
                    hex(&head.head.root)
                );
                for (i, p) in proof.iter().enumerate() {
                    println!("  proof[{i}] {}", hex(p));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Consistency {
            old,
            new,
            data,
            store,
            json,
        } => {
            let store = open_store(&data, store.as_ref())?;
            let keys = audit_public_keys(&data)?;
            let heads = heads(store.as_ref(), &keys)?;
            let find = |size: u64| {
                heads.iter().find(|h| h.head.size == size).with_context(|| {
                    format!(
                        "no signed tree head of size {size}; signed sizes: {}",
                        heads
                            .iter()
                            .map(|h| h.head.size.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
            };
            let (a, b) = (find(old)?, find(new)?);
            let hashes: Vec<Hash> = entries(store.as_ref())?
                .iter()
                .map(|e| e.leaf_hash)
                .collect();
            let proof = trustca_audit::consistency_proof(&hashes, old, new)?;
            trustca_audit::verify_consistency(old, new, &a.head.root, &b.head.root, &proof)?;
            if json {
                print_json(&json!({
                    "old": old, "new": new, "old_root": hex(&a.head.root), "new_root": hex(&b.head.root),
                    "proof": proof.iter().map(hex).collect::<Vec<_>>(), "verified": true,
                }));
            } else {
                println!(
                    "the log of size {new} extends the log of size {old}: consistent ({} proof hashes)",
                    proof.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::List {
            data,
            store,
            since,
            kind,
            json,
        } => {
            let store = open_store(&data, store.as_ref())?;
            let since = match since {
                None => i64::MIN,
                Some(s) => {
                    time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                        .with_context(|| format!("--since {s:?} is not an RFC 3339 time"))?
                        .unix_timestamp()
                }
            };
            let list: Vec<AuditEntry> = entries(store.as_ref())?
                .into_iter()
                .filter(|e| e.at >= since && kind.as_deref().is_none_or(|k| e.kind.starts_with(k)))
                .collect();
            if json {
                print_json(&json!(list.iter().map(|e| json!({
                    "seq": e.seq, "at": crate::show::unix(e.at), "kind": e.kind, "actor": e.actor,
                    "subject": e.subject, "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or(json!(e.detail)),
                    "leaf_hash": hex(&e.leaf_hash),
                })).collect::<Vec<_>>()));
            } else {
                let mut t = comfy_table::Table::new();
                t.set_header(["seq", "time", "kind", "actor", "subject"]);
                for e in &list {
                    t.add_row([
                        e.seq.to_string(),
                        crate::show::unix(e.at),
                        e.kind.clone(),
                        e.actor.clone(),
                        e.subject.clone(),
                    ]);
                }
                println!("{t}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditAction::Report {
            data,
            store,
            json,
            csv,
        } => report(&data, store.as_ref(), json, csv),
    }
}

fn verify(data: &Path, store: Option<&StoreConfig>, json: bool) -> Result<ExitCode> {
    let store = open_store(data, store)?;
    let keys = audit_public_keys(data)?;
    let mut signed = Vec::new();
    for bytes in store.tree_heads()? {
        signed.push(
            SignedTreeHead::from_bytes(&bytes)
                .map_err(|e| anyhow::anyhow!("stored tree head: {e}"))?,
        );
    }
    let mut verifier = LogVerifier::with_keys(keys, signed);
    let mut failure = None;
    for (index, raw) in store.audit_entries_raw(0, usize::MAX)? {
        let entry = match AuditEntry::decode(&raw) {
            Ok(e) if e.seq == index => e,
            Ok(e) => {
                failure = Some((index, format!("entry {index} claims position {}", e.seq)));
                break;
            }
            Err(e) => {
                failure = Some((index, format!("entry {index} does not decode: {e}")));
                break;
            }
        };
        if let Err(e) = verifier.push(index, &entry.leaf_bytes(), &entry.leaf_hash) {
            failure = Some((e.first_bad_index().unwrap_or(index), e.to_string()));
            break;
        }
    }
    let outcome = match failure {
        Some(f) => Err(f),
        None => verifier
            .finish()
            .map_err(|e| (e.first_bad_index().unwrap_or(0), e.to_string())),
    };
    match outcome {
        Ok(report) => {
            if json {
                print_json(&json!({
                    "valid": true, "entries": report.entries, "root": hex(&report.root),
                    "signed_heads_verified": report.heads_verified, "unsigned_entries": report.unsigned_entries,
                }));
            } else {
                println!(
                    "OK: {} entries, {} signed tree heads verified, root {}",
                    report.entries,
                    report.heads_verified,
                    hex(&report.root)
                );
                if report.unsigned_entries > 0 {
                    println!(
                        "note: the last {} entries are not yet covered by a signed head",
                        report.unsigned_entries
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err((index, reason)) => {
            if json {
                print_json(&json!({"valid": false, "first_bad_entry": index, "reason": reason}));
            } else {
                eprintln!("TAMPERED: first bad entry {index}: {reason}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

fn report(data: &Path, store: Option<&StoreConfig>, json: bool, csv: bool) -> Result<ExitCode> {
    let store = open_store(data, store)?;
    // (category, key) -> count
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut bump = |cat: &str, key: String| *counts.entry((cat.to_owned(), key)).or_default() += 1;
    for e in entries(store.as_ref())? {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        match e.kind.as_str() {
            "certificate.issued" | "certificate.renewed" => {
                let urn = detail["identity"].as_str().unwrap_or_default();
                let parts: Vec<&str> = urn.split(':').collect();
                let (sector, manufacturer) = (
                    parts.get(2).copied().unwrap_or("?"),
                    parts.get(3).copied().unwrap_or("?"),
                );
                bump("issued by sector", sector.to_owned());
                bump("issued by manufacturer", format!("{sector}/{manufacturer}"));
                bump(
                    "issued by level",
                    format!("Lv.{}", detail["level"].as_u64().unwrap_or(0)),
                );
            }
            "certificate.revoked" => {
                bump(
                    "revoked by sector",
                    detail["sector"].as_str().unwrap_or("?").to_owned(),
                );
                // The RFC 5280 reason's name, as `revoke --reason` takes
                // it, with the code for scripts that knew the numbers.
                let code = detail["reason_code"].as_u64().unwrap_or(0);
                let name = u8::try_from(code)
                    .map(trustca_model::revocation::reason_name)
                    .unwrap_or("unknown");
                bump("revoked by reason", format!("{name} ({code})"));
            }
            k if k.starts_with("trust.") => {
                bump("trust changes", k.trim_start_matches("trust.").to_owned())
            }
            k => bump("other", k.to_owned()),
        }
    }
    if json {
        let mut v = serde_json::Map::new();
        for ((cat, key), n) in &counts {
            v.entry(cat.clone()).or_insert_with(|| json!({}))[key] = json!(n);
        }
        print_json(&serde_json::Value::Object(v));
    } else if csv {
        println!("category,key,count");
        for ((cat, key), n) in &counts {
            println!("{cat},{key},{n}");
        }
    } else {
        let mut t = comfy_table::Table::new();
        t.set_header(["category", "key", "count"]);
        for ((cat, key), n) in &counts {
            t.add_row([cat.clone(), key.clone(), n.to_string()]);
        }
        println!("{t}");
    }
    Ok(ExitCode::SUCCESS)
}
