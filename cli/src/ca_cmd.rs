//! `trustca ca revoke`: the root revokes one of the CAs it issued (a
//! sector CA, a pseudonym CA or a service certificate). Offline, on the
//! data directory with the passphrase, because only the root key signs the
//! root's CRL; it works while a server runs, which stops issuing from that
//! CA at its next check and records the revocation in the audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;
use trustca_ca::CaHierarchy;

use crate::cli::{PassphraseArgs, print_json};

/// `trustca ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaAction {
    /// Revoke a CA the root issued and publish the root CRL (DIR/crl/root.crl).
    Revoke(Box<RevokeCaArgs>),
}

/// `trustca ca revoke`.
#[derive(Debug, Args)]
pub struct RevokeCaArgs {
    /// The CA, by its name in DIR/ca/: a sector (`automotive`), a pseudonym
    /// CA (`automotive-pseudonym`) or a service (`responder`, `audit`).
    pub name: String,
    /// Data directory of the CA.
    #[arg(long, env = "TRUSTCA_DATA", default_value = crate::cli::DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// RFC 5280 reason, e.g. `ca-compromise`, `key-compromise`,
    /// `cessation-of-operation`, `superseded`.
    #[arg(long)]
    pub reason: String,
    /// Why, for the audit log (at most 512 bytes).
    #[arg(long, default_value = "")]
    pub note: String,
    /// Confirmation: repeat the CA's name. Every certificate it issued
    /// stops verifying for relying parties that check the root CRL, and it
    /// issues nothing more. This cannot be undone.
    #[arg(long = "yes-revoke-sector-ca", value_name = "NAME")]
    pub confirm: Option<String>,
    #[command(flatten)]
    pub pass: PassphraseArgs,
    #[command(flatten)]
    pub pkcs11: crate::pkcs11::Pkcs11Args,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `trustca ca ...`.
pub fn run(action: CaAction) -> Result<ExitCode> {
    match action {
        CaAction::Revoke(a) => revoke(*a),
    }
}

pub(crate) fn revoke(a: RevokeCaArgs) -> Result<ExitCode> {
    if a.confirm.as_deref() != Some(a.name.as_str()) {
        bail!(
            "revoking the {0} CA cannot be undone; confirm with --yes-revoke-sector-ca {0}",
            a.name
        );
    }
    let reason = trustca_ca::reason_code(&a.reason)?;
    let passphrase = a.pass.load()?;
    let (_, set) = crate::policies::resolve(None, Some(&a.data))?;
    let token = trustca_server::open_token(&a.data, &set.pki, &a.pkcs11.options())?;
    let (revoked, crl_number) = CaHierarchy::revoke_ca(
        &a.data,
        &set,
        &passphrase,
        token.map(|t| t.token),
        &a.name,
        reason,
        &a.note,
    )?;
    let crl = trustca_ca::root_crl::root_crl_path(&a.data);
    if a.json {
        print_json(&json!({
            "revoked": revoked.name,
            "serial": revoked.serial,
            "subject": revoked.subject,
            "reason": trustca_model::revocation::reason_name(revoked.reason),
            "revoked_at": revoked.date(),
            "root_crl": crl,
            "crl_number": crl_number,
        }));
    } else {
        println!(
            "revoked the {} CA (serial {}, {}); root CRL #{crl_number} written to {}",
            revoked.name,
            revoked.serial,
            trustca_model::revocation::reason_name(revoked.reason),
            crl.display()
        );
        println!(
            "a running server stops issuing from it within seconds and records it in the audit log"
        );
    }
    Ok(ExitCode::SUCCESS)
}
