//! Reading certificates for people and scripts: `inspect` shows every field
//! that matters with the trust-level extension decoded. (`verify` uses
//! `trustca_model::verify_chain`.)

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use trustca_model::{TrustLevelExtension, trust_extension};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A PEM parse failure as words (the gRPC client's, which checks its
/// credential files the same way).
pub use trustca_api::client::pem_error_words;

/// DER certificates in a PEM file (or one DER certificate).
pub fn read_certs(path: &std::path::Path) -> Result<Vec<Vec<u8>>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes]);
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow!("{} is neither PEM nor DER", path.display()))?;
    let certs: Vec<Vec<u8>> = pem::parse_many(&text)
        .map_err(|e| anyhow!("{}: {}", path.display(), pem_error_words(&e)))?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect();
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

/// Parses one certificate, with a clear error.
pub fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|_| anyhow!("not an X.509 certificate"))?;
    if !rest.is_empty() {
        bail!("trailing bytes after the certificate");
    }
    Ok(cert)
}

fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return vec![];
    };
    san.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::URI(u) => format!("URI:{u}"),
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(ip) => match ip.len() {
                4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(ip);
                    format!("IP:{}", std::net::Ipv6Addr::from(a))
                }
                _ => "IP:?".to_owned(),
            },
            GeneralName::RFC822Name(e) => format!("email:{e}"),
            GeneralName::DirectoryName(dn) => format!("DirName:{dn}"),
            GeneralName::RegisteredID(oid) => format!("RID:{oid}"),
            _ => "other name (not shown)".to_owned(),
        })
        .collect()
}

/// The JSON form of a trust-level extension.
pub fn extension_json(ext: &TrustLevelExtension) -> Value {
    json!({
        "oid": crate::cli::extension_oid().to_string(),
        "kind": ext.kind.as_str(),
        "sector": ext.sector.as_str(),
        "level": ext.level.map(|l| l.get()),
        "policy_version": ext.policy_version,
        "basis": ext.basis.iter().map(|b| json!({
            "evidence": b.evidence, "scheme": b.scheme, "result": b.result,
            "evaluated_at": b.evaluated_at.map(crate::show::rfc3339),
            "basis": b.basis_kind(), "attestation": b.attestation,
        })).collect::<Vec<_>>(),
        "authorized_sectors": ext.authorized_sectors.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "permitted_schemes": ext.permitted_schemes,
    })
}

/// Everything `inspect` shows, as JSON.
pub fn inspect(der: &[u8]) -> Result<Value> {
    let cert = parse(der)?;
    let ext = trust_extension(&cert, &crate::cli::extension_oid())?;
    let fp = ring::digest::digest(&ring::digest::SHA256, der);
    Ok(json!({
        "subject": cert.subject().to_string(),
        "issuer": cert.issuer().to_string(),
        "serial": trustca_model::hexfmt::encode(cert.raw_serial()),
        "not_before": crate::show::rfc3339(cert.validity().not_before.to_datetime()),
        "not_after": crate::show::rfc3339(cert.validity().not_after.to_datetime()),
        "san": sans(&cert),
        "is_ca": cert.is_ca(),
        "public_key_algorithm": cert.public_key().algorithm.algorithm.to_id_string(),
        "sha256_fingerprint": trustca_model::hexfmt::encode(fp.as_ref()),
        "trust_level": ext.as_ref().map(extension_json),
    }))
}

/// Renders `inspect` output for people.
pub fn inspect_text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    let mut out = String::new();
    out.push_str(&format!("Subject:      {}\n", s("subject")));
    out.push_str(&format!("Issuer:       {}\n", s("issuer")));
    out.push_str(&format!("Serial:       {}\n", s("serial")));
    out.push_str(&format!(
        "Valid:        {} .. {}\n",
        s("not_before"),
        s("not_after")
    ));
    if let Some(sans) = v["san"].as_array() {
        for (i, n) in sans.iter().enumerate() {
            out.push_str(&format!(
                "{:14}{}\n",
                if i == 0 { "SAN:" } else { "" },
                n.as_str().unwrap_or("")
            ));
        }
    }
    out.push_str(&format!(
        "CA:           {}\n",
        v["is_ca"].as_bool().unwrap_or(false)
    ));
    out.push_str(&format!("SHA-256:      {}\n", s("sha256_fingerprint")));
    match v["trust_level"].as_object() {
        None => out.push_str("Trust level:  (no trustca trust-level extension)\n"),
        Some(t) => {
            let level = t["level"]
                .as_u64()
                .map(|l| format!("Lv.{l}"))
                .unwrap_or_else(|| "-".into());
            out.push_str(&format!(
                "Trust level:  {level}  kind={}  sector={}  policy={}\n",
                t["kind"].as_str().unwrap_or(""),
                t["sector"].as_str().unwrap_or(""),
                t["policy_version"].as_str().unwrap_or("")
            ));
            for b in t["basis"].as_array().into_iter().flatten() {
                // Attested evidence says so, with its format (issue 25).
                let attested = b["attestation"]
                    .as_str()
                    .map(|f| format!(" (attested: {f})"))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "  basis:      {} {} {} {}{attested}\n",
                    b["evidence"].as_str().unwrap_or(""),
                    b["scheme"].as_str().unwrap_or(""),
                    b["result"].as_str().unwrap_or(""),
                    b["evaluated_at"].as_str().unwrap_or("")
                ));
            }
            if let Some(a) = t["authorized_sectors"].as_array().filter(|a| !a.is_empty()) {
                let names: Vec<&str> = a.iter().filter_map(|x| x.as_str()).collect();
                out.push_str(&format!("  authorized: {}\n", names.join(", ")));
            }
            if let Some(a) = t["permitted_schemes"].as_array().filter(|a| !a.is_empty()) {
                let names: Vec<&str> = a.iter().filter_map(|x| x.as_str()).collect();
                out.push_str(&format!("  schemes:    {}\n", names.join(", ")));
            }
        }
    }
    out
}
