//! Setting up separated V2X authorities, each on its own machine with only
//! its own keys: `trustca init --role` (keys and a request for the CA),
//! `trustca v2x certify` (the CA answers the request), `trustca v2x import`
//! (the answer, or a peer's public bundle) and `trustca v2x export` (this
//! authority's public bundle for its peers).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use trustca_ca::Passphrase;
use trustca_server::v2x::V2xRole;
use trustca_server::v2x_role::{self, Imported, RoleDir};

use crate::cli::print_json;

/// What `init`, `serve` and the README say of the single-process mode.
pub const SINGLE_PROCESS_WARNING: &str = "warning: this data directory also holds the keys of all four V2X authorities (registration, pseudonym CA, both linkage authorities) under one passphrase; whoever holds it can link and name every vehicle's tickets. For separation, run each authority on its own machine from `trustca init --role` (docs/pseudonyms.md).";

/// The arguments of `init --role`.
#[derive(Debug)]
pub struct RoleInitArgs {
    pub data: PathBuf,
    pub role: String,
    pub name: Option<String>,
    pub policies: Option<PathBuf>,
    pub server_names: Vec<String>,
    pub passphrase: Passphrase,
    pub json: bool,
}

/// `trustca init --role R`.
pub fn init(a: RoleInitArgs) -> Result<ExitCode> {
    let role = V2xRole::parse(&a.role)?;
    let name = a.name.unwrap_or_else(|| role.as_str().to_owned());
    let made = v2x_role::init_role(
        &a.data,
        role,
        &name,
        &a.server_names,
        a.policies.as_deref(),
        &a.passphrase,
    )?;
    if a.json {
        print_json(&json!({
            "data": a.data,
            "role": role.as_str(),
            "name": name,
            "request": made.request,
            "request_sha256": made.fingerprint,
        }));
    } else {
        println!(
            "created the {} {name:?} in {}",
            role.as_str(),
            a.data.display()
        );
        println!(
            "  its keys are encrypted under this machine's passphrase in {}",
            a.data.join("keys").display()
        );
        println!(
            "  request for the CA: {} (SHA-256 {})",
            made.request.display(),
            made.fingerprint
        );
        println!("next:");
        println!(
            "  1. at the CA:  trustca v2x certify --data CA_DATA {} --out {}.credential.toml",
            made.request.display(),
            name
        );
        println!(
            "  2. here:       trustca v2x import --data {} {}.credential.toml",
            a.data.display(),
            name
        );
        println!(
            "  3. here:       trustca v2x export --data {} --out {}.pub.toml   (give it to the peers)",
            a.data.display(),
            name
        );
        println!(
            "  4. here:       trustca v2x import --data {} PEER.pub.toml ...    (the peers' bundles)",
            a.data.display()
        );
        println!(
            "  5. here:       trustca serve --role {} --data {}",
            role.as_str(),
            a.data.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `trustca v2x certify`: the CA answers an authority's request.
pub fn certify(
    data: &std::path::Path,
    passphrase: &Passphrase,
    pkcs11: &trustca_server::Pkcs11Options,
    request: &std::path::Path,
    out: Option<&std::path::Path>,
    json_out: bool,
) -> Result<ExitCode> {
    let text = std::fs::read_to_string(request)
        .with_context(|| format!("cannot read {}", request.display()))?;
    let credential = v2x_role::certify(data, passphrase, pkcs11, &text)?;
    let answer = credential.to_toml()?;
    match out {
        Some(path) => std::fs::write(path, &answer)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None if !json_out => print!("{answer}"),
        None => {}
    }
    if json_out {
        print_json(&json!({
            "role": credential.role,
            "name": credential.name,
            "out": out,
            "credential": if out.is_none() { Some(&answer) } else { None },
        }));
    } else if let Some(path) = out {
        println!(
            "certified the {} {:?}: {} (public material only; send it back to the authority)",
            credential.role,
            credential.name,
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `trustca v2x import`: this authority's credential or peers' bundles.
pub fn import(
    data: &std::path::Path,
    passphrase: &Passphrase,
    files: &[PathBuf],
    json_out: bool,
) -> Result<ExitCode> {
    let dir = RoleDir::open(data, None)?;
    let mut done = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let what = v2x_role::import(&dir, passphrase, &text)
            .with_context(|| format!("{} not imported", file.display()))?;
        match &what {
            Imported::Credential { root_fingerprint } => {
                if !json_out {
                    println!(
                        "imported this {}'s credential; the trustca root's SHA-256 is {root_fingerprint}: compare it with the CA's",
                        dir.role().as_str()
                    );
                }
                done.push(json!({ "credential": true, "root_sha256": root_fingerprint }));
            }
            Imported::Peer { role, name } => {
                if !json_out {
                    println!("imported the {}'s bundle ({name:?})", role.as_str());
                }
                done.push(json!({ "peer": role.as_str(), "name": name }));
            }
        }
    }
    if json_out {
        print_json(&json!({ "imported": done }));
    }
    Ok(ExitCode::SUCCESS)
}

/// `trustca v2x export`: this authority's public bundle.
pub fn export(
    data: &std::path::Path,
    passphrase: &Passphrase,
    out: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let dir = RoleDir::open(data, None)?;
    let text = v2x_role::export(&dir, passphrase)?.to_toml()?;
    match out {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!(
                "wrote the {}'s public bundle to {} (SHA-256 {})",
                dir.role().as_str(),
                path.display(),
                hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
            );
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
