//! `trustca snapshot fetch|verify|decide`: signed trust snapshots for
//! offline decisions. `fetch` downloads one from a server's public
//! `GetSnapshot`; `verify` checks it against the root; `decide` makes the
//! cooperation decision `Decide` would make, from the snapshot alone, so a
//! gateway or device without a connection still decides by the current
//! rules and states.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;
use std::sync::Arc;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use trustca_model::{SignedSnapshot, TrustSnapshot, decide_offline_with_policy};
use trustca_proto::v1 as pb;
use trustca_proto::v1::trust_snapshots_client::TrustSnapshotsClient;

use crate::certinfo::read_certs;
use crate::cli::print_json;
use crate::show;

#[derive(Debug, Subcommand)]
pub enum SnapshotAction {
    /// Download the current signed snapshot (no client certificate needed)
    /// and check it against the root before writing it.
    Fetch {
        /// Server address, e.g. https://127.0.0.1:7443.
        #[arg(long, env = "TRUSTCA_SERVER")]
        server: String,
        /// The trustca root certificate (PEM); `--root` works too, as for
        /// `snapshot verify` and `decide`.
        #[arg(long, env = "TRUSTCA_CA", alias = "root")]
        ca: PathBuf,
        /// One sector's snapshot (default: every sector the server holds).
        #[arg(long)]
        sector: Option<String>,
        /// Where to write it (DER).
        #[arg(long)]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a snapshot file against the root: signature by a root-issued
    /// trust responder, canonical encoding, not past next_update (exit 0
    /// valid, 1 otherwise).
    Verify {
        /// The snapshot file (DER, as `fetch` writes and the server keeps
        /// under DATA/snapshots/).
        file: PathBuf,
        /// The trustca root certificate (PEM).
        #[arg(long)]
        root: PathBuf,
        /// Accept a snapshot past its next_update (say so in the output).
        #[arg(long)]
        allow_stale: bool,
        /// Evaluate as of this time (RFC 3339) instead of now: for audits.
        #[arg(long)]
        at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decide offline whether a device (the caller) may cooperate with a
    /// peer, as `trustca query` would online (exit 0 allowed; 3 denied,
    /// which includes a peer whose certificate does not verify; 1 when the
    /// snapshot or the caller's own chain does not verify).
    Decide {
        /// The snapshot file (DER), as for `snapshot verify`.
        #[arg(value_name = "FILE")]
        snapshot: PathBuf,
        /// The trustca root certificate (PEM).
        #[arg(long)]
        root: PathBuf,
        /// The deciding device's certificate chain (PEM, leaf first).
        #[arg(long)]
        caller: PathBuf,
        /// The peer's certificate chain (PEM, leaf first).
        #[arg(long)]
        peer: PathBuf,
        /// Sector CA certificates (PEM) for chains given as a leaf only
        /// (repeatable; e.g. DATA/ca/automotive.pem).
        #[arg(long = "chain", value_name = "PEM")]
        chains: Vec<PathBuf>,
        /// The operation (see policies/cooperation.toml).
        #[arg(long, default_value = "read-telemetry")]
        operation: String,
        /// Accept a snapshot past its next_update (say so in the output).
        #[arg(long)]
        allow_stale: bool,
        /// Decide as of this time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn when(at: Option<&str>) -> Result<OffsetDateTime> {
    match at {
        None => Ok(OffsetDateTime::now_utc()),
        Some(t) => OffsetDateTime::parse(t, &Rfc3339)
            .with_context(|| format!("--at {t:?} is not an RFC 3339 time")),
    }
}

fn root_of(root: &Path) -> Result<Vec<u8>> {
    read_certs(root)?
        .into_iter()
        .next()
        .with_context(|| format!("{} holds no certificate", root.display()))
}

/// Reads and verifies a snapshot file.
fn load(
    file: &Path,
    root: &Path,
    now: OffsetDateTime,
    allow_stale: bool,
) -> Result<(TrustSnapshot, usize)> {
    let der = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let root_der = root_of(root)?;
    let signed =
        SignedSnapshot::from_der(&der).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let snapshot = signed
        .verify(&root_der, now, &crate::cli::extension_oid(), allow_stale)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok((snapshot, der.len()))
}

fn summary(s: &TrustSnapshot, bytes: usize, now: OffsetDateTime) -> serde_json::Value {
    json!({
        "serial": s.serial,
        "scope": s.scope.as_ref().map(|s| s.as_str()).unwrap_or("all"),
        "issued_at": show::rfc3339(s.issued_at),
        "next_update": show::rfc3339(s.next_update),
        "stale": now > s.next_update,
        "bytes": bytes,
        "models": s.models.len(),
        "devices": s.devices.len(),
        "revoked_certificates": s.revoked_certificates.len(),
        "blocked_keys": s.blocked_keys.len(),
        "cooperation_policy": s.cooperation_policy.version,
        "recognition_policy": s.recognition_policy.version,
    })
}

fn print_summary(v: &serde_json::Value) {
    println!(
        "snapshot {} of {}: issued {}, valid until {}{}",
        v["serial"],
        v["scope"].as_str().unwrap_or_default(),
        v["issued_at"].as_str().unwrap_or_default(),
        v["next_update"].as_str().unwrap_or_default(),
        if v["stale"].as_bool() == Some(true) {
            " (STALE: accepted with --allow-stale)"
        } else {
            ""
        }
    );
    println!(
        "  {}, {} listed, {}, {}; cooperation {}, recognition {}; {} bytes",
        show::count(v["models"].as_u64().unwrap_or(0), "model", "models"),
        show::count(v["devices"].as_u64().unwrap_or(0), "device", "devices"),
        show::count(
            v["revoked_certificates"].as_u64().unwrap_or(0),
            "revoked certificate",
            "revoked certificates"
        ),
        show::count(
            v["blocked_keys"].as_u64().unwrap_or(0),
            "blocked key",
            "blocked keys"
        ),
        v["cooperation_policy"].as_str().unwrap_or_default(),
        v["recognition_policy"].as_str().unwrap_or_default(),
        v["bytes"]
    );
}

/// Runs `trustca snapshot ...`.
pub async fn snapshot(action: SnapshotAction) -> Result<ExitCode> {
    match action {
        SnapshotAction::Fetch {
            server,
            ca,
            sector,
            out,
            json: json_out,
        } => {
            let root_pem = std::fs::read_to_string(&ca)
                .with_context(|| format!("cannot read {}", ca.display()))?;
            let channel = crate::client::connect_public(&server, &root_pem).await?;
            let r = TrustSnapshotsClient::new(channel)
                .max_decoding_message_size(usize::MAX)
                .get_snapshot(pb::GetSnapshotRequest {
                    sector: sector.unwrap_or_default(),
                })
                .await
                .map_err(|s| crate::client::refused("GetSnapshot refused", &s))?
                .into_inner();
            // Never keep a file that does not verify: a relying party would
            // only find out when it needs it.
            let now = OffsetDateTime::now_utc();
            let signed = SignedSnapshot::from_der(&r.signed_snapshot)?;
            let snapshot =
                signed.verify(&root_of(&ca)?, now, &crate::cli::extension_oid(), false)?;
            let tmp = out.with_extension("partial");
            std::fs::write(&tmp, &r.signed_snapshot)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            std::fs::rename(&tmp, &out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let v = summary(&snapshot, r.signed_snapshot.len(), now);
            if json_out {
                print_json(&v);
            } else {
                print_summary(&v);
                println!("  written to {}", out.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        SnapshotAction::Verify {
            file,
            root,
            allow_stale,
            at,
            json: json_out,
        } => {
            let now = when(at.as_deref())?;
            match load(&file, &root, now, allow_stale) {
                Ok((s, bytes)) => {
                    let mut v = summary(&s, bytes, now);
                    v["valid"] = json!(true);
                    if json_out {
                        print_json(&v);
                    } else {
                        print!("OK: ");
                        print_summary(&v);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    if json_out {
                        print_json(&json!({"valid": false, "error": e.to_string()}));
                    } else {
                        eprintln!("INVALID: {e}");
                    }
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        SnapshotAction::Decide {
            snapshot,
            root,
            caller,
            peer,
            chains,
            operation,
            allow_stale,
            at,
            json: json_out,
        } => {
            let now = when(at.as_deref())?;
            let (s, _) = load(&snapshot, &root, now, allow_stale)?;
            let caller_chain = read_certs(&caller)?;
            let peer_chain = read_certs(&peer)?;
            if caller_chain.is_empty() || peer_chain.is_empty() {
                bail!("--caller and --peer must each hold a certificate");
            }
            let mut sector_cas = Vec::new();
            for c in &chains {
                sector_cas.extend(read_certs(c)?);
            }
            // A snapshot with systems of linked devices caps a member peer
            // as the online Decide does.
            let policy = Arc::new(s.policy()?);
            let composition = trustca_db::composition::snapshot_policy(&s, Arc::clone(&policy))?;
            let cap = |urn: &str| match &composition {
                Some(c) => trustca_db::composition::snapshot_cap(&s, c, urn)
                    .map_err(|e| trustca_model::ModelError::InvalidSnapshot(e.to_string())),
                None => Ok(None),
            };
            let d = decide_offline_with_policy(
                &s,
                &policy,
                &caller_chain,
                &peer_chain,
                &sector_cas,
                &operation,
                &root_of(&root)?,
                now,
                &crate::cli::extension_oid(),
                Some(&cap),
            )?;
            let o = &d.outcome;
            // No depth needed (nothing decided) prints as empty, as the
            // wire's Decision does.
            let required = o.required_depth.as_ref().map_or("", |r| r.as_str());
            if json_out {
                print_json(&json!({
                    "allow": o.allow,
                    "depth": o.depth.as_str(),
                    "required_depth": required,
                    "caller_level": o.caller_level.map(|l| l.get()),
                    "peer_level": o.peer_level.map(|l| l.get()),
                    "rule": o.rule,
                    "reasons": o.reasons,
                    "operation": operation,
                    "peer": d.peer_identity,
                    "peer_sector": d.peer_sector,
                    "policy_version": d.policy_version,
                    "snapshot_serial": d.snapshot_serial,
                    "stale": d.stale,
                }));
            } else {
                let verdict = if o.allow { "ALLOW" } else { "DENY" };
                let stale = if d.stale { " (STALE)" } else { "" };
                if d.peer_identity.is_empty() {
                    // Nothing was decided about a known device: say why,
                    // not an empty template.
                    println!(
                        "{verdict} {operation}: the peer is not a verified device of this snapshot; snapshot {}{stale}",
                        d.snapshot_serial
                    );
                    if peer_chain.len() == 1 && sector_cas.is_empty() {
                        println!(
                            "  (the peer file holds a leaf only: add its sector CA certificate with --chain)"
                        );
                    }
                } else {
                    println!(
                        "{verdict} {operation} with {} at depth {} (needs {}); snapshot {}{stale}",
                        d.peer_identity,
                        o.depth,
                        if required.is_empty() {
                            "no rule applies"
                        } else {
                            required
                        },
                        d.snapshot_serial,
                    );
                }
                for r in &o.reasons {
                    println!("  - {r}");
                }
            }
            Ok(if o.allow {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(crate::trust_cmd::EXIT_DENIED)
            })
        }
    }
}
