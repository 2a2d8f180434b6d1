//! `trustca etsi tlm ...`: the trust list manager (`docs/v2x-etsi.md`,
//! "Several roots: the ECTL"): made and used offline like the root; it
//! signs the European CTL of the root CAs it recognises, which a
//! distribution centre serves (`trustca etsi install --tlm --ectl`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use trustca_server::etsi::tlm;

use crate::cli::print_json;
use crate::etsi_ceremony_cmd::{DirArgs, now, read, write};

/// `trustca etsi tlm ...`.
#[derive(Debug, Subcommand)]
pub enum TlmAction {
    /// Make the trust list manager in a new directory DIR: its P-256 key
    /// (encrypted under the passphrase) and its self-signed TS 103 097
    /// certificate DIR/tlm.oer, which may sign ECTLs only. Keep DIR
    /// offline; stations hold tlm.oer.
    Init {
        #[command(flatten)]
        at: DirArgs,
        /// The certificate's id name.
        #[arg(long, default_value = "trustca-etsi-tlm")]
        name: String,
    },
    /// Sign the ECTL recognising each --root (a root CA's root.oer,
    /// self-signed; repeat for several roots). Install it in a
    /// distribution centre with `trustca etsi install --tlm --ectl`.
    SignEctl {
        #[command(flatten)]
        at: DirArgs,
        /// A root CA certificate to recognise (repeatable).
        #[arg(long = "root", required = true)]
        roots: Vec<PathBuf>,
        /// Where to write the ECTL.
        #[arg(long)]
        out: PathBuf,
        /// The distribution centre's base URL (http://HOST[:PORT]) that
        /// serves the roots' lists, listed in the ECTL.
        #[arg(long)]
        dc_url: Option<String>,
        /// Days until nextUpdate.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=365))]
        days: u32,
    },
}

/// Runs `trustca etsi tlm ...`.
pub fn run_tlm(action: TlmAction) -> Result<ExitCode> {
    match action {
        TlmAction::Init { at, name } => {
            let cert = tlm::tlm_init(at.dir(), &name, &at.passphrase()?, now())?;
            let id = hex::encode(cert.hashed_id8());
            let file = at.dir().join(tlm::TLM_FILE);
            if at.json() {
                print_json(&json!({"tlm": file, "hashed_id8": id}));
            } else {
                println!(
                    "made the trust list manager {name} ({id}) in {}",
                    at.dir().display()
                );
                println!("  certificate {} (stations hold it)", file.display());
                println!("  keep this directory offline");
            }
        }
        TlmAction::SignEctl {
            at,
            roots,
            out,
            dc_url,
            days,
        } => {
            let roots = roots.iter().map(|p| read(p)).collect::<Result<Vec<_>>>()?;
            let ectl = tlm::tlm_sign_ectl(
                at.dir(),
                &at.passphrase()?,
                &roots,
                dc_url.as_deref(),
                i64::from(days) * 86_400,
                now(),
            )?;
            write(&out, &ectl)?;
            if at.json() {
                print_json(&json!({"ectl": out, "roots": roots.len()}));
            } else {
                println!(
                    "signed the ECTL of {} root CAs to {}",
                    roots.len(),
                    out.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
