//! `trustca verify`: a certificate's chain up to the root with trustca's
//! sector rules, then its revocation status from a CRL of its issuer,
//! read from files (`--crl`) or fetched from a server's public `GetCrl`
//! (`--server`). It always says which revocation check it made, and says
//! plainly when it made none.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use time::OffsetDateTime;
use trustca_model::revocation::{CrlCheck, check_crl, crl_is_from, reason_name};
use trustca_model::{CertificateKind, SectorName, VerifiedChain};
use trustca_proto::v1 as pb;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::certinfo;
use crate::cli::print_json;

/// What `verify` was asked.
#[derive(Debug)]
pub struct VerifyRequest {
    /// Certificate (PEM, leaf first; may hold the chain).
    pub cert: PathBuf,
    /// The root certificate.
    pub root: PathBuf,
    /// Extra intermediates.
    pub chain: Option<PathBuf>,
    /// CRL files (DER or PEM), matched to issuers by name.
    pub crls: Vec<PathBuf>,
    /// Server to fetch CRLs from with `GetCrl`.
    pub server: Option<String>,
    /// JSON output.
    pub json: bool,
}

/// Reads a CRL file, DER or PEM (`X509 CRL`).
fn read_crl(path: &PathBuf) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.first() == Some(&0x30) {
        return Ok(bytes);
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("{} is neither a PEM nor a DER CRL", path.display()))?;
    pem::parse_many(&text)
        .map_err(|e| anyhow!("{}: {}", path.display(), certinfo::pem_error_words(&e)))?
        .into_iter()
        .find(|p| p.tag() == "X509 CRL")
        .map(|p| p.into_contents())
        .ok_or_else(|| anyhow!("{} holds no X509 CRL", path.display()))
}

/// One link to check: a certificate, who issued it, and the `GetCrl` name
/// of the issuer's CRL.
struct Link {
    what: &'static str,
    der: Vec<u8>,
    issuer_der: Vec<u8>,
    crl_name: String,
}

/// The certificates of the verified path below the root, with their issuers.
fn links(certs: &[Vec<u8>], root_der: &[u8], verified: &VerifiedChain) -> Result<Vec<Link>> {
    let parse = |d: &[u8]| -> Result<(Vec<u8>, Vec<u8>)> {
        let (_, c) =
            X509Certificate::from_der(d).map_err(|_| anyhow!("certificate does not parse"))?;
        Ok((c.subject().as_raw().to_vec(), c.issuer().as_raw().to_vec()))
    };
    let find_issuer = |issuer_name: &[u8]| -> Option<Vec<u8>> {
        std::iter::once(root_der)
            .chain(certs.iter().map(|c| c.as_slice()))
            .find(|d| parse(d).is_ok_and(|(s, _)| s == issuer_name))
            .map(|d| d.to_vec())
    };
    let leaf = certs.first().ok_or_else(|| anyhow!("no certificate"))?;
    let (_, leaf_issuer) = parse(leaf)?;
    let issuer = find_issuer(&leaf_issuer).ok_or_else(|| anyhow!("issuer not in the chain"))?;
    let issued_by_root = issuer == root_der;
    let sector = verified
        .extension
        .as_ref()
        .map(|e| e.sector.to_string())
        .unwrap_or_default();
    let mut out = vec![Link {
        what: "certificate",
        der: leaf.clone(),
        issuer_der: issuer.clone(),
        crl_name: if issued_by_root {
            "root".into()
        } else {
            // A later CA generation of the sector publishes its own CRL
            // (`automotive.2`): the issuer's subject says which.
            match SectorName::new(&sector) {
                Ok(s) => trustca_ca::rollover::ca_name(
                    &s,
                    trustca_ca::rollover::generation_of_certificate(&issuer),
                ),
                Err(_) => sector,
            }
        },
    }];
    if !issued_by_root {
        out.push(Link {
            what: "issuing CA",
            der: issuer,
            issuer_der: root_der.to_vec(),
            crl_name: "root".into(),
        });
    }
    Ok(out)
}

/// The outcome of the revocation step.
enum Revocation {
    NotChecked(String),
    Checked {
        source: String,
        results: Vec<(&'static str, CrlCheck)>,
        skipped: Vec<String>,
    },
}

async fn fetch_crl(server: &str, root_pem: &str, name: &str) -> Result<Vec<u8>> {
    let mut c = pb::revocation_client::RevocationClient::new(
        crate::client::connect_public(server, root_pem).await?,
    );
    let r = c
        .get_crl(pb::GetCrlRequest {
            sector: name.to_owned(),
        })
        .await
        .map_err(|s| anyhow!("GetCrl {name} refused ({:?}): {}", s.code(), s.message()))?;
    Ok(r.into_inner().crl_der)
}

async fn check_revocation(
    req: &VerifyRequest,
    certs: &[Vec<u8>],
    root_der: &[u8],
    verified: &VerifiedChain,
    now: OffsetDateTime,
) -> Result<Revocation> {
    if verified
        .extension
        .as_ref()
        .is_some_and(|e| e.kind == CertificateKind::Pseudonym)
    {
        return Ok(Revocation::NotChecked(
            "an X.509 pseudonym certificate (no longer issued; its revocation lists are retired): not checked".into(),
        ));
    }
    if req.crls.is_empty() && req.server.is_none() {
        return Ok(Revocation::NotChecked("no --crl or --server given".into()));
    }
    let links = links(certs, root_der, verified)?;
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    let source;
    if let Some(server) = &req.server {
        source = format!("CRLs fetched from {server}");
        let root_pem = pem::encode(&pem::Pem::new("CERTIFICATE", root_der.to_vec()));
        for (i, link) in links.iter().enumerate() {
            let crl = match fetch_crl(server, &root_pem, &link.crl_name).await {
                Ok(c) => c,
                // The leaf's CRL is required; the root's list of revoked
                // CAs is checked when the server publishes one.
                Err(e) if i > 0 => {
                    skipped.push(format!("{}: {e}", link.what));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let serial = serial_of(&link.der)?;
            let check = check_crl(&crl, &link.issuer_der, &serial, now)
                .with_context(|| format!("CRL {} from {server}", link.crl_name))?;
            results.push((link.what, check));
        }
    } else {
        source = format!(
            "CRL file(s) {}",
            req.crls
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let files: Vec<(PathBuf, Vec<u8>)> = req
            .crls
            .iter()
            .map(|p| Ok((p.clone(), read_crl(p)?)))
            .collect::<Result<_>>()?;
        for (i, link) in links.iter().enumerate() {
            let Some((path, crl)) = files.iter().find(|(_, c)| crl_is_from(c, &link.issuer_der))
            else {
                if i == 0 {
                    bail!(
                        "none of the CRL files is issued by the certificate's issuer; give its CRL (e.g. DIR/crl/{}.crl)",
                        link.crl_name
                    );
                }
                skipped.push(format!(
                    "{}: no CRL of its issuer given (add --crl DIR/crl/{}.crl)",
                    link.what, link.crl_name
                ));
                continue;
            };
            let serial = serial_of(&link.der)?;
            let check = check_crl(crl, &link.issuer_der, &serial, now)
                .with_context(|| path.display().to_string())?;
            results.push((link.what, check));
        }
    }
    Ok(Revocation::Checked {
        source,
        results,
        skipped,
    })
}

fn serial_of(der: &[u8]) -> Result<Vec<u8>> {
    let (_, c) =
        X509Certificate::from_der(der).map_err(|_| anyhow!("certificate does not parse"))?;
    Ok(c.raw_serial().to_vec())
}

fn check_json(what: &str, c: &CrlCheck) -> Value {
    json!({
        "checked": what,
        "crl_issuer": c.issuer,
        "crl_number": c.crl_number,
        "this_update": crate::show::rfc3339(c.this_update),
        "next_update": crate::show::rfc3339(c.next_update),
        "revoked": c.revoked.is_some(),
        "reason": c.revoked.map(|(r, _)| reason_name(r)),
        "revoked_at": c.revoked.map(|(_, t)| crate::show::rfc3339(t)),
    })
}

/// Runs `trustca verify`: exit 0 valid, 1 invalid or revoked.
pub async fn run(req: VerifyRequest) -> Result<ExitCode> {
    let mut certs = certinfo::read_certs(&req.cert)?;
    if let Some(c) = &req.chain {
        certs.extend(certinfo::read_certs(c)?);
    }
    let root_der = certinfo::read_certs(&req.root)?.remove(0);
    let now = OffsetDateTime::now_utc();
    let verified = match trustca_model::verify_chain(
        &certs,
        &[],
        &root_der,
        now,
        &crate::cli::extension_oid(),
    ) {
        Ok(v) => v,
        Err(e) => {
            if req.json {
                print_json(&json!({"valid": false, "reason": e.to_string()}));
            } else {
                eprintln!("invalid: {e}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let revocation = match check_revocation(&req, &certs, &root_der, &verified, now).await {
        Ok(r) => r,
        Err(e) => {
            // A revocation check that was asked for and failed is not a pass.
            if req.json {
                print_json(&json!({
                    "valid": false,
                    "reason": format!("revocation could not be checked: {e:#}"),
                    "revocation": {"checked": false},
                }));
            } else {
                eprintln!("invalid: revocation could not be checked: {e:#}");
            }
            return Ok(ExitCode::from(1));
        }
    };
    let revoked = match &revocation {
        Revocation::Checked { results, .. } => results
            .iter()
            .find(|(_, c)| c.revoked.is_some())
            .map(|(w, c)| (*w, c.clone())),
        Revocation::NotChecked(_) => None,
    };
    // A link whose CRL was not at hand (the root's, for the issuing CA)
    // is not a pass: a revoked sector CA would go unnoticed.
    let unchecked = match &revocation {
        Revocation::Checked { skipped, .. } if revoked.is_none() && !skipped.is_empty() => {
            Some(format!("could not check the {}", skipped.join("; the ")))
        }
        _ => None,
    };
    let failure = revoked
        .as_ref()
        .map(|(w, c)| revoked_text(w, c))
        .or(unchecked);
    let what = verified
        .extension
        .as_ref()
        .map(|e| {
            format!(
                "{} {}{}",
                e.kind.as_str(),
                e.sector,
                e.level.map(|l| format!(" {l}")).unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "no trust-level extension".into());
    if req.json {
        let rev = match &revocation {
            Revocation::NotChecked(why) => json!({"checked": false, "note": why}),
            Revocation::Checked {
                source,
                results,
                skipped,
            } => json!({
                "checked": true,
                "source": source,
                "revoked": revoked.is_some(),
                "checks": results.iter().map(|(w, c)| check_json(w, c)).collect::<Vec<_>>(),
                "not_checked": skipped,
            }),
        };
        print_json(&json!({
            "valid": failure.is_none(),
            "subject": verified.subject,
            "trust_level": verified.extension.as_ref().map(certinfo::extension_json),
            "not_after": crate::show::rfc3339(verified.not_after),
            "reason": failure,
            "revocation": rev,
        }));
    } else {
        match &revocation {
            Revocation::NotChecked(why) => {
                println!("OK: {} ({what})", verified.subject);
                println!("revocation: NOT checked ({why})");
            }
            Revocation::Checked {
                source,
                results,
                skipped,
            } => {
                if let Some(why) = &failure {
                    eprintln!("invalid: {why}");
                } else {
                    println!("OK: {} ({what})", verified.subject);
                }
                for (w, c) in results {
                    println!(
                        "revocation: {w} {} in CRL #{} of {} (valid until {}), from {source}",
                        if c.revoked.is_some() {
                            "LISTED"
                        } else {
                            "not listed"
                        },
                        c.crl_number
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "-".into()),
                        c.issuer,
                        crate::show::rfc3339(c.next_update)
                    );
                }
                for s in skipped {
                    println!("revocation: not checked for the {s}");
                }
            }
        }
    }
    Ok(if failure.is_some() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn revoked_text(what: &str, c: &CrlCheck) -> String {
    match c.revoked {
        Some((reason, at)) => format!(
            "the {what} is revoked ({}) since {}",
            reason_name(reason),
            crate::show::rfc3339(at)
        ),
        None => String::new(),
    }
}
