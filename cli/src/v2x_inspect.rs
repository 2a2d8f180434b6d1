//! `trustca inspect` for IEEE 1609.2 / ETSI TS 103 097 certificates (COER,
//! as `init` writes `ca/v2x-*.oer`): used when the file is neither PEM nor
//! DER X.509.

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use trustca_v2x::{
    CertProfile, Certificate, CertificateId, Duration, IssuerIdentifier, PsidGroupPermissions, Ssp,
    SspRange, SubjectPermissions,
};

/// The 1609.2 certificate in `path` as JSON, or `None` when the file looks
/// like X.509 (DER or PEM) and should be inspected as such.
pub fn try_inspect(path: &std::path::Path) -> Result<Option<Value>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.first() == Some(&0x30) || std::str::from_utf8(&bytes).is_ok() {
        return Ok(None);
    }
    // ETSI TS 103 097 first; an SCMS-style ticket (linkageData) is an
    // IEEE 1609.2 certificate outside that profile, shown as such.
    let (cert, profile) = match Certificate::from_coer(&bytes) {
        Ok(c) => (c, "EtsiTs103097"),
        Err(etsi) => match Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &bytes) {
            Ok(c) => (c, "Ieee1609Dot2"),
            Err(_) => {
                return Err(anyhow!(
                    "{}: neither PEM/DER X.509 nor an IEEE 1609.2 certificate (COER): {etsi}",
                    path.display()
                ));
            }
        },
    };
    let mut value = inspect(&cert);
    if let Some(o) = value.as_object_mut() {
        o.insert("profile".into(), Value::from(profile));
    }
    Ok(Some(value))
}

fn duration_text(d: Duration) -> String {
    let (n, unit) = match d {
        Duration::Microseconds(n) => (n, "microseconds"),
        Duration::Milliseconds(n) => (n, "milliseconds"),
        Duration::Seconds(n) => (n, "seconds"),
        Duration::Minutes(n) => (n, "minutes"),
        Duration::Hours(n) => (n, "hours"),
        Duration::SixtyHours(n) => (n, "sixtyHours"),
        Duration::Years(n) => (n, "years"),
    };
    format!("{n} {unit}")
}

fn ssp_json(ssp: &Option<Ssp>) -> Value {
    match ssp {
        None => Value::Null,
        Some(Ssp::Opaque(b)) => json!({ "opaque": hex::encode(b) }),
        Some(Ssp::Bitmap(b)) => json!({ "bitmap": hex::encode(b) }),
    }
}

fn ssp_range_json(r: &Option<SspRange>) -> Value {
    match r {
        None => Value::Null,
        Some(SspRange::All) => json!("all"),
        Some(SspRange::Opaque(list)) => {
            json!({ "opaque": list.iter().map(hex::encode).collect::<Vec<_>>() })
        }
        Some(SspRange::Bitmap { value, mask }) => {
            json!({ "bitmap": { "value": hex::encode(value), "mask": hex::encode(mask) } })
        }
    }
}

fn ee_types(bits: u8) -> Vec<&'static str> {
    let mut v = Vec::new();
    if bits & PsidGroupPermissions::EE_APP != 0 {
        v.push("app");
    }
    if bits & PsidGroupPermissions::EE_ENROL != 0 {
        v.push("enrol");
    }
    v
}

/// Every field of a 1609.2 certificate that matters, as JSON.
pub fn inspect(cert: &Certificate) -> Value {
    let tbs = cert.tbs();
    let start = tbs.validity.start;
    let end_unix = start.to_unix() + tbs.validity.duration.as_seconds() as i64;
    let fmt_unix = |u: i64| {
        time::OffsetDateTime::from_unix_timestamp(u)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
    };
    let (issuer, self_signed) = match cert.issuer() {
        IssuerIdentifier::SelfSigned => (json!("self"), true),
        IssuerIdentifier::Sha256AndDigest(d) => (json!(hex::encode(d)), false),
    };
    let assurance = tbs.assurance_level.map(|a| {
        json!({
            "octet": format!("{:02x}", a.0),
            "level": a.assurance_level(),
            "confidence": a.confidence(),
            "trust_level": a.trust_level(),
        })
    });
    let app = tbs.app_permissions.as_ref().map(|ps| {
        ps.iter()
            .map(|p| json!({ "psid": p.psid, "ssp": ssp_json(&p.ssp) }))
            .collect::<Vec<_>>()
    });
    let issue = tbs.cert_issue_permissions.as_ref().map(|gs| {
        gs.iter()
            .map(|g| {
                let subject = match &g.subject_permissions {
                    SubjectPermissions::All => json!("all"),
                    SubjectPermissions::Explicit(rs) => json!(
                        rs.iter()
                            .map(|r| json!({ "psid": r.psid, "ssp_range": ssp_range_json(&r.ssp_range) }))
                            .collect::<Vec<_>>()
                    ),
                };
                json!({
                    "subject_permissions": subject,
                    "min_chain_length": g.min_chain_length,
                    "chain_length_range": g.chain_length_range,
                    "ee_type": ee_types(g.ee_type),
                })
            })
            .collect::<Vec<_>>()
    });
    // Only a self-signed certificate can be checked without its issuer.
    let self_signature = self_signed.then(|| cert.verify_signed_by(None).is_ok());
    json!({
        "format": "IEEE 1609.2 / ETSI TS 103 097 certificate (COER)",
        "hashed_id8": hex::encode(cert.hashed_id8()),
        "size": cert.as_coer().len(),
        "issuer": issuer,
        "id": match &tbs.id {
            CertificateId::Name(n) => json!(n),
            CertificateId::None => Value::Null,
            CertificateId::BinaryId(b) => json!({ "binary_id": hex::encode(b) }),
            CertificateId::LinkageData(l) => json!({
                "i_cert": l.i_cert,
                "linkage_value": hex::encode(l.linkage_value),
                "group_linkage_value": l.group_linkage_value.map(|g| json!({
                    "j_value": hex::encode(g.j_value),
                    "value": hex::encode(g.value),
                })),
            }),
        },
        "craca_id": hex::encode(tbs.craca_id),
        "crl_series": tbs.crl_series,
        "validity": {
            "start": fmt_unix(start.to_unix()),
            "start_time32": start.0,
            "duration": duration_text(tbs.validity.duration),
            "duration_seconds": tbs.validity.duration.as_seconds(),
            "end": fmt_unix(end_unix),
        },
        "assurance": assurance,
        "app_permissions": app,
        "cert_issue_permissions": issue,
        "verification_key": {
            "curve": "nistP256",
            "compressed": hex::encode(tbs.verification_key.compressed()),
        },
        "encryption_key": tbs.encryption_key.map(|k| hex::encode(k.compressed())),
        "self_signature_valid": self_signature,
    })
}

fn perm_text(v: &Value) -> String {
    let psid = v["psid"].as_u64().unwrap_or_default();
    let name = match psid {
        36 => " (CAM)",
        37 => " (DENM)",
        623 => " (certificate requests)",
        _ => "",
    };
    let extra = match (&v["ssp"], &v["ssp_range"]) {
        (Value::Null, Value::Null) => String::new(),
        (s, Value::Null) => format!(" ssp {s}"),
        (_, r) => format!(" ssp {r}"),
    };
    format!("{psid}{name}{extra}")
}

/// The text form of [`inspect`]'s JSON.
pub fn inspect_text(v: &Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    let mut out = String::new();
    out.push_str(&format!("format:        {}\n", s("format")));
    out.push_str(&format!(
        "issuer:        {}\n",
        if s("issuer") == "self" {
            "self (self-signed)".to_owned()
        } else {
            format!("HashedId8 {}", s("issuer"))
        }
    ));
    let id = match (&v["id"], v["id"]["linkage_value"].as_str()) {
        (Value::String(n), _) => n.clone(),
        (_, Some(lv)) => format!(
            "linkageData iCert {} linkage value {lv}",
            v["id"]["i_cert"].as_u64().unwrap_or_default()
        ),
        _ => "none".to_owned(),
    };
    out.push_str(&format!("id:            {id}\n"));
    if let Some(p) = v["profile"].as_str() {
        out.push_str(&format!("profile:       {p}\n"));
    }
    let val = &v["validity"];
    out.push_str(&format!(
        "validity:      {} for {} (until {})\n",
        val["start"].as_str().unwrap_or("?"),
        val["duration"].as_str().unwrap_or("?"),
        val["end"].as_str().unwrap_or("?")
    ));
    match v["assurance"].as_object() {
        Some(a) => out.push_str(&format!(
            "assurance:     level {} confidence {} (octet {}; {})\n",
            a["level"],
            a["confidence"],
            a["octet"].as_str().unwrap_or(""),
            match a["trust_level"].as_u64() {
                Some(l) => format!("trust level Lv.{l}"),
                None => "no trustca trust level".to_owned(),
            }
        )),
        None => out.push_str("assurance:     absent\n"),
    }
    if let Some(app) = v["app_permissions"].as_array() {
        let list: Vec<String> = app.iter().map(perm_text).collect();
        out.push_str(&format!("app perms:     {}\n", list.join(", ")));
    }
    if let Some(groups) = v["cert_issue_permissions"].as_array() {
        for g in groups {
            let subject = match g["subject_permissions"].as_array() {
                Some(rs) => rs.iter().map(perm_text).collect::<Vec<_>>().join(", "),
                None => "all PSIDs".to_owned(),
            };
            let ee: Vec<&str> = g["ee_type"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                .unwrap_or_default();
            out.push_str(&format!(
                "issue perms:   {subject}; chain length {} (+{}); end entities: {}\n",
                g["min_chain_length"],
                g["chain_length_range"],
                if ee.is_empty() {
                    "none".to_owned()
                } else {
                    ee.join(", ")
                }
            ));
        }
    }
    out.push_str(&format!(
        "verify key:    P-256 {}\n",
        v["verification_key"]["compressed"].as_str().unwrap_or("")
    ));
    if let Some(k) = v["encryption_key"].as_str() {
        out.push_str(&format!("encrypt key:   P-256 {k}\n"));
    }
    out.push_str(&format!("HashedId8:     {}\n", s("hashed_id8")));
    if let Some(ok) = v["self_signature_valid"].as_bool() {
        out.push_str(&format!(
            "signature:     {}\n",
            if ok { "valid (self-signed)" } else { "INVALID" }
        ));
    }
    out
}
