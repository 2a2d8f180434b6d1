//! `trustca v2x` commands for the hash-based IEEE 1609.2 CRLs the CA
//! publishes (`docs/pseudonyms.md`, "Hash CRLs"): the operator lists a
//! vehicle's enrolment certificates or a V2X CA certificate at the CA
//! (`V2xEnrollment/RevokeEnrolment`, `RevokeCaCertificate`, both audited
//! there), anyone downloads a list (`GetHashCrl`), and a vehicle or any
//! relying party checks a certificate against the lists offline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::json;
use trustca_proto::v1 as pb;
use trustca_proto::v1::v2x_enrollment_client::V2xEnrollmentClient;
use trustca_scms::HashCrl;
use trustca_v2x::{CertProfile, Certificate};

use crate::cli::{ClientArgs, print_json};

/// Exit status of a check that found the certificate listed.
pub const REVOKED_EXIT: u8 = 3;

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_certificate(path: &Path) -> Result<Certificate> {
    Certificate::from_coer_in(CertProfile::Ieee1609Dot2, &read(path)?)
        .with_context(|| format!("{} is not an IEEE 1609.2 certificate", path.display()))
}

fn write(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    if let Some(p) = path {
        std::fs::write(p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

fn refused(s: tonic::Status) -> anyhow::Error {
    anyhow!("the CA refused ({:?}): {}", s.code(), s.message())
}

fn summary(crl: &HashCrl) -> serde_json::Value {
    json!({
        "crl_series": crl.crl_series,
        "crl_serial": crl.crl_serial,
        "entries": crl.entries.len(),
        "issue_date": crl.this_update.to_unix(),
        "next_crl": crl.next_update.to_unix(),
    })
}

/// One line about a list: `hash CRL series S serial N lists E`.
pub fn describe(crl: &HashCrl) -> String {
    format!(
        "hash CRL series {} serial {} lists {}",
        crl.crl_series,
        crl.crl_serial,
        crl.entries.len()
    )
}

/// Lists every enrolment certificate of `vehicle` at the CA `ca` (the
/// enrolment CA); used by `revoke-enrolment` and by `revoke --eca`.
pub async fn revoke_enrolment(
    ca: &ClientArgs,
    vehicle: &str,
    out: Option<&Path>,
) -> Result<(u32, HashCrl)> {
    let answer = V2xEnrollmentClient::new(ca.channel().await?)
        .revoke_enrolment(pb::RevokeEnrolmentRequest {
            vehicle: vehicle.to_owned(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let crl = HashCrl::from_bytes(&answer.crl).context("the enrolment certificate CRL returned")?;
    write(out, &answer.crl)?;
    Ok((answer.certificates, crl))
}

/// `v2x revoke-enrolment`.
pub async fn revoke_enrolment_cmd(
    ca: &ClientArgs,
    vehicle: &str,
    out: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let (n, crl) = revoke_enrolment(ca, vehicle, out).await?;
    if json {
        print_json(&json!({ "vehicle": vehicle, "certificates": n, "crl": summary(&crl) }));
    } else {
        println!(
            "{vehicle}: {n} enrolment certificate(s) listed; {}",
            describe(&crl)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `v2x revoke-ca-certificate`.
pub async fn revoke_ca_certificate(
    ca: &ClientArgs,
    certificate: &Path,
    reason: &str,
    out: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let cert = read_certificate(certificate)?;
    let answer = V2xEnrollmentClient::new(ca.channel().await?)
        .revoke_ca_certificate(pb::RevokeCaCertificateRequest {
            certificate: cert.as_coer().to_vec(),
            reason: reason.to_owned(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let crl = HashCrl::from_bytes(&answer.crl).context("the CA certificate CRL returned")?;
    if !crl.lists(&cert) {
        bail!("the CA answered with a list that does not name the certificate");
    }
    write(out, &answer.crl)?;
    let id8 = hex::encode(cert.hashed_id8());
    if json {
        print_json(&json!({ "certificate": id8, "reason": reason, "crl": summary(&crl) }));
    } else {
        println!("revoked V2X CA certificate {id8}: {}", describe(&crl));
    }
    Ok(ExitCode::SUCCESS)
}

/// `v2x hash-crl`: downloads the list of `series` into `out`.
pub async fn download(ca: &ClientArgs, series: u16, out: &Path, json: bool) -> Result<ExitCode> {
    let bytes = V2xEnrollmentClient::new(ca.channel().await?)
        .get_hash_crl(pb::GetHashCrlRequest {
            crl_series: u32::from(series),
        })
        .await
        .map_err(refused)?
        .into_inner()
        .crl;
    let crl = HashCrl::from_bytes(&bytes).context("the hash CRL returned")?;
    write(Some(out), &bytes)?;
    if json {
        print_json(&summary(&crl));
    } else {
        println!(
            "hash CRL series {} serial {}: {} entries, next by {}",
            crl.crl_series,
            crl.crl_serial,
            crl.entries.len(),
            crl.next_update.to_unix()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `v2x check-revoked`: whether `certificate` is on one of the hash CRLs
/// `crls`, each verified against the V2X root `root` (its CRACA) first.
/// Exit 0 not listed, 3 listed. Only a list of the certificate's own
/// `crlSeries` and CRACA can list it (IEEE 1609.2 5.1.3.4).
pub fn check(certificate: &Path, crls: &[PathBuf], root: &Path, json: bool) -> Result<ExitCode> {
    let cert = read_certificate(certificate)?;
    let root = read_certificate(root)?;
    let mut listed_by = None;
    let mut checked = Vec::new();
    for path in crls {
        let crl = HashCrl::from_bytes(&read(path)?)
            .with_context(|| format!("{} is not a hash CRL", path.display()))?;
        crl.verify(&root)
            .with_context(|| format!("{} does not verify under the V2X root", path.display()))?;
        checked.push(summary(&crl));
        if crl.lists(&cert) {
            listed_by = Some(crl);
        }
    }
    let id10 = hex::encode(trustca_v2x::hashed_id10(cert.as_coer()));
    if json {
        print_json(&json!({
            "certificate": id10,
            "crl_series": cert.tbs().crl_series,
            "revoked": listed_by.is_some(),
            "listed_by": listed_by.as_ref().map(summary),
            "checked": checked,
        }));
    } else if let Some(crl) = &listed_by {
        println!(
            "revoked: {id10} is on the hash CRL of series {} (serial {})",
            crl.crl_series, crl.crl_serial
        );
    } else {
        println!(
            "not listed: {id10} (crlSeries {}) is on none of {} list(s)",
            cert.tbs().crl_series,
            crls.len()
        );
    }
    Ok(if listed_by.is_some() {
        ExitCode::from(REVOKED_EXIT)
    } else {
        ExitCode::SUCCESS
    })
}
