//! `trustca pseudonym ...`: V2X pseudonym certificates.
//!
//! * Vehicle: `request` (fill the encrypted pool over mutual TLS with the
//!   long-term certificate), `rotate`, `status`, `export`. A pool holds
//!   X.509 pseudonym certificates (`--format x509`, the default) or IEEE
//!   1609.2 authorization tickets from the V2X registration authority
//!   (`--format ieee1609`, see `crate::ticket_cmd`), chosen at its first
//!   `request`.
//! * Operator: `revoke` (put a vehicle on its sector's PRL), `prl` (fetch a
//!   signed PRL).
//! * Anyone: `check` (is a pseudonym certificate revoked by a PRL, or a
//!   ticket by a linkage CRL?), `linkage-crl` (fetch the linkage CRL).
//! * Resolution authority, offline: `resolve` (name the vehicle behind a
//!   pseudonym certificate with the RA key and the CA's data directory).
//!
//! The server side (pseudonym CAs at `init`, the service at `serve`) is in
//! `trustca_server::pseudonym`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::json;
use tonic::transport::Channel;
use trustca_ca::pseudonym_ca::{self, PseudonymCertificate, pseudonym_fields};
use trustca_proto::v1 as pb;
use trustca_proto::v1::pseudonyms_client::PseudonymsClient;
use trustca_pseudonym::{
    CaContribution, Caterpillar, LinkageValue, P256PublicKey, PseudonymRevocationList,
};

use crate::certinfo::read_certs;
use crate::cli::{ClientArgs, print_json};
use crate::ticket_cmd;
use crate::vehicle_pool::{Pool, PoolEntry, PoolFormat, PoolProfile, PoolSecret, write_atomic};

/// Exit code of `check` when the certificate is revoked.
pub const EXIT_REVOKED: u8 = 3;
pub use trustca_server::pseudonym::MAX_RESPONSE_BYTES;

/// Where a pool is and what unlocks it.
#[derive(Debug, Args)]
pub struct PoolArgs {
    /// Pool directory (created by the first `request`).
    #[arg(long)]
    pub pool: PathBuf,
    /// Key file protecting the pool (at least 32 random bytes); without it
    /// the passphrase in $TRUSTCA_POOL_PASSPHRASE is used.
    #[arg(long, env = "TRUSTCA_POOL_KEY_FILE")]
    pub pool_key: Option<PathBuf>,
}

impl PoolArgs {
    /// The pool's secret.
    pub fn secret(&self) -> Result<PoolSecret> {
        if let Some(p) = &self.pool_key {
            return PoolSecret::key_file(p);
        }
        match std::env::var("TRUSTCA_POOL_PASSPHRASE") {
            Ok(p) => PoolSecret::passphrase(p.into_bytes()),
            Err(_) => bail!(
                "no pool secret: pass --pool-key FILE or set TRUSTCA_POOL_PASSPHRASE (the pool is never stored unencrypted)"
            ),
        }
    }
}

/// `trustca pseudonym request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The vehicle's long-term certificate and key (--identity, --key), the
    /// server and the root (--ca).
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Hold certificates for this many periods, counting the current one.
    #[arg(long, default_value_t = 12)]
    pub periods: u32,
    /// What the pool holds: x509 (pseudonym certificates from the
    /// Pseudonyms service) or ieee1609 (IEEE 1609.2 authorization tickets
    /// from the V2X registration authority). Chosen by a new pool's first
    /// request; default: what the pool holds, x509 for a new pool.
    #[arg(long, value_enum)]
    pub format: Option<PoolFormat>,
    /// ieee1609: how long to keep downloading, in seconds, for tickets the
    /// registration authority has not sent yet (they go out with its next
    /// batch). Tickets that arrive later are picked up by the next
    /// `request`, which downloads before it asks for more.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub wait: u64,
    /// ieee1609: ask again for the periods of earlier requests whose
    /// tickets have not all arrived (the registration authority's queue is
    /// lost when it restarts). Safe when they were not lost: each ticket is
    /// issued once, to whichever request comes first, and the pool opens
    /// both.
    #[arg(long)]
    pub resend: bool,

    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Change the certificate now, even if its interval has not passed.
    #[arg(long)]
    pub force: bool,
    /// Set the rotation interval in minutes (kept in the pool; 0 = the
    /// default: period length / certificates per period).
    #[arg(long)]
    pub every: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub pool: PoolArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One PEM file: certificate, pseudonym CA, PKCS#8 key (x509 pools).
    Pem,
    /// A directory: ticket.oer (COER), ticket.key (PKCS#8 PEM) and
    /// issuer.oer (the pseudonym CA, COER) (ieee1609 pools).
    Coer,
}

/// `trustca pseudonym export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub pool: PoolArgs,
    /// pem: the file to write (certificate, pseudonym CA, private key; mode
    /// 0600, replaced atomically). coer: the directory to write ticket.oer,
    /// ticket.key and issuer.oer into (created if missing, mode 0600 files).
    #[arg(long)]
    pub out: PathBuf,
    /// pem for x509 pools, coer for ieee1609 pools (the default follows
    /// the pool).
    #[arg(long, value_enum)]
    pub format: Option<ExportFormat>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The pseudonym certificate (PEM or DER).
    pub cert: PathBuf,
    /// The CA's data directory, or a copy (the store must not be in use).
    #[arg(long)]
    pub data: PathBuf,
    /// The store, when it is not DATA/db: a postgres:// URL or a sled directory.
    #[arg(long, env = "TRUSTCA_STORE", value_parser = crate::cli::parse_store)]
    pub store: Option<trustca_server::StoreConfig>,
    /// The resolution authority's private key (ra/resolution-authority.key).
    #[arg(long)]
    pub ra_key: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The vehicle, urn:trustca:<sector>:<manufacturer>:<model>:<serial>.
    pub device: String,
    /// First revoked period (default: the current one; never earlier).
    #[arg(long)]
    pub from_period: Option<u64>,
    /// Why (kept in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym prl`.
#[derive(Debug, Args)]
pub struct PrlArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The sector.
    #[arg(long)]
    pub sector: String,
    /// Where to write the signed list (the format of DIR/crl/<sector>.prl).
    #[arg(long)]
    pub out: PathBuf,
}

/// `trustca pseudonym linkage-crl`.
#[derive(Debug, Args)]
pub struct LinkageCrlArgs {
    /// Any credential of the CA (the list is public); --server is the
    /// pseudonym CA (or the single-process server).
    #[command(flatten)]
    pub client: ClientArgs,
    /// Where to write the list (as received).
    #[arg(long)]
    pub out: PathBuf,
    /// The pseudonym CA certificate (COER, e.g. issuer.oer from `export
    /// --format coer`): verify the list's signature before writing it.
    #[arg(long)]
    pub issuer: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The pseudonym certificate (PEM or DER), or with --linkage-crl the
    /// IEEE 1609.2 ticket (COER, e.g. ticket.oer).
    pub cert: PathBuf,
    /// The signed PRL (DIR/crl/<sector>.prl or `trustca pseudonym prl`),
    /// for an X.509 pseudonym certificate.
    #[arg(
        long,
        required_unless_present = "linkage_crl",
        conflicts_with = "linkage_crl"
    )]
    pub prl: Option<PathBuf>,
    /// The pseudonym CA's linkage CRL (`trustca pseudonym linkage-crl`),
    /// for an IEEE 1609.2 ticket; needs --issuer.
    #[arg(long, requires = "issuer")]
    pub linkage_crl: Option<PathBuf>,
    /// With --linkage-crl: the pseudonym CA certificate (COER, e.g.
    /// issuer.oer) that signed the list and the ticket.
    #[arg(long, requires = "linkage_crl")]
    pub issuer: Option<PathBuf>,
    /// The trustca root: also verify the certificate and the list signer
    /// up to it (X.509 only).
    #[arg(long, conflicts_with = "linkage_crl")]
    pub root: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym ...`.
#[derive(Debug, Subcommand)]
pub enum PseudonymAction {
    /// Vehicle: request pseudonym certificates (x509) or IEEE 1609.2
    /// tickets (--format ieee1609) into an encrypted pool; also picks up
    /// tickets that arrived since the last request.
    Request(Box<RequestArgs>),
    /// Vehicle: pick the certificate or ticket to use now (changes after
    /// the interval).
    Rotate(RotateArgs),
    /// Vehicle: show the pool (coverage, current certificate, next top-up).
    Status(StatusArgs),
    /// Vehicle: write the current certificate or ticket and its key for
    /// the V2X stack (PEM file, or --format coer into a directory).
    Export(ExportArgs),
    /// Resolution authority (offline): name the vehicle behind a certificate.
    Resolve(ResolveArgs),
    /// Operator: revoke a vehicle's pseudonyms from the current period on.
    Revoke(Box<RevokeArgs>),
    /// Fetch a sector's signed pseudonym revocation list.
    Prl(Box<PrlArgs>),
    /// Check a pseudonym certificate against a PRL, or a ticket against a
    /// linkage CRL (exit 0 valid, 3 revoked).
    Check(CheckArgs),
    /// Fetch the pseudonym CA's signed linkage CRL (for IEEE 1609.2 tickets).
    LinkageCrl(Box<LinkageCrlArgs>),
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn refused(s: tonic::Status) -> anyhow::Error {
    crate::client::refused("refused", &s)
}

/// Runs a `pseudonym` subcommand.
pub async fn run(action: PseudonymAction) -> Result<ExitCode> {
    match action {
        PseudonymAction::Request(a) => request(*a).await,
        PseudonymAction::Rotate(a) => rotate(a),
        PseudonymAction::Status(a) => status(a),
        PseudonymAction::Export(a) => export(a),
        PseudonymAction::Resolve(a) => resolve(a),
        PseudonymAction::Revoke(a) => revoke(*a).await,
        PseudonymAction::Prl(a) => prl(*a).await,
        PseudonymAction::Check(a) => check(a),
        PseudonymAction::LinkageCrl(a) => linkage_crl(*a).await,
    }
}

// ---------------------------------------------------------------------------
// Vehicle
// ---------------------------------------------------------------------------

/// What one `request` did.
#[derive(Debug, Clone, Default)]
pub struct RequestReport {
    /// First and last period obtained (none when already covered).
    pub periods: Option<(u64, u64)>,
    /// Certificates added to the pool.
    pub certificates: usize,
    /// Requests made.
    pub calls: usize,
    /// Wall time of the requests, including verification and key derivation.
    pub millis: u128,
}

/// When to verify a pseudonym certificate's chain: now while it is valid,
/// else (a future or past period) inside its validity, so that certificates
/// held ahead and old ones on a PRL can be checked.
fn verification_time(fields: &PseudonymCertificate, now: i64) -> i64 {
    now.clamp(fields.not_before, fields.not_after)
}

fn verify_and_derive(
    caterpillar: &Caterpillar,
    issued: &pb::IssuedPseudonym,
    ca_der: &[u8],
    root_der: &[u8],
    sector: &str,
) -> Result<PoolEntry> {
    let der = &issued.certificate_der;
    let oid = crate::cli::extension_oid();
    let fields: PseudonymCertificate = pseudonym_fields(der, &oid)?;
    if fields.period != issued.period || fields.sector.as_str() != sector {
        bail!(
            "certificate {} of period {} does not match what was requested",
            issued.index,
            issued.period
        );
    }
    let at = time::OffsetDateTime::from_unix_timestamp(verification_time(&fields, now_unix()))
        .context("certificate validity out of range")?;
    trustca_model::verify_chain(&[der.clone(), ca_der.to_vec()], &[], root_der, at, &oid)
        .context("a pseudonym certificate does not verify to the root")?;
    let public = P256PublicKey::from_spki_der(&fields.spki_der)
        .map_err(|e| anyhow::anyhow!("certified key: {e}"))?;
    let contribution = CaContribution::from_bytes(&issued.ca_contribution)
        .map_err(|e| anyhow::anyhow!("CA contribution: {e}"))?;
    let key = caterpillar
        .derive_and_check(issued.period, issued.index, &contribution, &public)
        .map_err(|e| anyhow::anyhow!("the CA's key does not match ours: {e}"))?;
    Ok(PoolEntry {
        period: issued.period,
        index: issued.index,
        certificate: hex::encode(der),
        key: hex::encode(key.to_bytes().as_ref()),
        serial: hex::encode(&fields.serial),
        not_before: fields.not_before,
        not_after: fields.not_after,
        used: false,
    })
}

/// Fills `pool` so that it holds certificates for `periods` periods
/// (counting the current one), in requests of the profile's maximum size.
/// Each request uses a fresh caterpillar key, which is dropped once the
/// private keys are derived. Saves after every request.
pub async fn request_into_pool(
    channel: Channel,
    root_der: &[u8],
    pool: &mut Pool,
    periods: u32,
) -> Result<RequestReport> {
    let started = Instant::now();
    let mut client = PseudonymsClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
    let answer = client
        .get_pseudonym_profile(pb::GetPseudonymProfileRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    if answer.revoked {
        bail!("this vehicle's pseudonym certificates are revoked");
    }
    let profile = answer.profile.context("the server sent no profile")?;
    pool.set_profile(PoolProfile::from(&profile), &[], root_der)?;
    if answer.has_issued {
        pool.set_issued_through(Some(answer.issued_through));
    }
    let current = profile.current_period;
    let horizon = current + profile.max_periods_ahead.max(1) as u64 - 1;
    let wanted = current
        .saturating_add(periods.max(1) as u64 - 1)
        .min(horizon);
    let mut first = pool
        .covered_through()
        .map(|c| c + 1)
        .unwrap_or(current)
        .max(current);
    let mut report = RequestReport::default();
    let per = profile.max_periods_per_request.max(1) as u64;
    while first <= wanted {
        let n = (wanted - first + 1).min(per);
        let caterpillar =
            Caterpillar::generate().map_err(|e| anyhow::anyhow!("caterpillar key: {e}"))?;
        let resp = client
            .request_pseudonyms(pb::RequestPseudonymsRequest {
                first_period: first,
                number_of_periods: n as u32,
                butterfly_request: caterpillar.request().to_bytes().to_vec(),
            })
            .await
            .map_err(refused)?
            .into_inner();
        let ca_der = resp.pseudonym_ca_der.clone();
        let expected = n as usize * profile.certificates_per_period as usize;
        if resp.certificates.len() != expected {
            bail!(
                "the CA returned {} certificates, expected {expected}",
                resp.certificates.len()
            );
        }
        let mut entries = Vec::with_capacity(expected);
        for issued in &resp.certificates {
            if issued.period < first || issued.period >= first + n {
                bail!("the CA returned a certificate for period {}", issued.period);
            }
            entries.push(verify_and_derive(
                &caterpillar,
                issued,
                &ca_der,
                root_der,
                &profile.sector,
            )?);
        }
        drop(caterpillar);
        pool.set_profile(PoolProfile::from(&profile), &ca_der, root_der)?;
        report.certificates += pool.add(entries);
        pool.set_issued_through(Some(first + n - 1));
        pool.save(now_unix())?;
        report.periods = Some((report.periods.map_or(first, |p| p.0), first + n - 1));
        report.calls += 1;
        first += n;
    }
    report.millis = started.elapsed().as_millis();
    Ok(report)
}

async fn request(a: RequestArgs) -> Result<ExitCode> {
    let secret = a.pool.secret()?;
    let root_der = read_certs(&a.client.ca)?.remove(0);
    let existed = Pool::exists(&a.pool.pool);
    let mut pool = Pool::open_or_create(&a.pool.pool, &secret)?;
    if let Some(f) = a.format {
        pool.set_format(f)?;
    } else if !existed {
        pool.set_format(PoolFormat::X509)?;
    }
    let channel = a.client.channel().await?;
    if pool.format() == PoolFormat::Ieee1609 {
        return request_tickets(a, channel, &root_der, pool).await;
    }
    let report = request_into_pool(channel, &root_der, &mut pool, a.periods).await?;
    let now = now_unix();
    if pool.current().is_none() {
        pool.rotate(now, false)?;
        pool.save(now)?;
    }
    if a.json {
        print_json(&json!({
            "periods": report.periods.map(|(f, l)| vec![f, l]),
            "certificates": report.certificates,
            "calls": report.calls,
            "millis": report.millis as u64,
            "status": pool.status(now),
        }));
    } else {
        match report.periods {
            Some((f, l)) => println!(
                "added {} pseudonym certificates for periods {f}-{l} in {} request(s), {} ms",
                report.certificates, report.calls, report.millis
            ),
            None => println!("the pool already covers the requested periods"),
        }
        let s = pool.status(now);
        println!(
            "pool {}: {} certificates, {} period(s) covered, next top-up {}",
            a.pool.pool.display(),
            s["certificates"],
            s["periods_covered"],
            s["next_topup"].as_str().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn request_tickets(
    a: RequestArgs,
    channel: Channel,
    root_der: &[u8],
    mut pool: Pool,
) -> Result<ExitCode> {
    let report = ticket_cmd::request_tickets_into_pool(
        channel,
        root_der,
        &mut pool,
        a.periods,
        Duration::from_secs(a.wait),
        a.resend,
    )
    .await?;
    let now = now_unix();
    if pool.current().is_none() {
        pool.rotate(now, false)?;
        pool.save(now)?;
    }
    if let Some(e) = &report.opened.first_error {
        eprintln!(
            "warning: {} response(s) from the registration authority failed verification and were not stored: {e}",
            report.opened.rejected
        );
    }
    let s = pool.status(now);
    if a.json {
        print_json(&json!({
            "format": "ieee1609",
            "periods": report.periods.map(|(f, l)| vec![f, l]),
            "queued": report.queued,
            "calls": report.calls,
            "downloads": report.downloads,
            "resent": report.resent,
            "tickets": report.opened.added,
            "rejected": report.opened.rejected,
            "tickets_awaited": pool.tickets_awaited(),
            "millis": report.millis as u64,
            "status": s,
        }));
    } else {
        match report.periods {
            Some((f, l)) => println!(
                "requested {} tickets for periods {f}-{l} in {} request(s)",
                report.queued, report.calls
            ),
            None => println!("the pool already covers the requested periods"),
        }
        println!(
            "received {} new ticket(s) in {} download(s), {} ms",
            report.opened.added, report.downloads, report.millis
        );
        if pool.tickets_awaited() > 0 {
            println!(
                "{} ticket(s) not sent yet (the registration authority batches requests); run `trustca pseudonym request` again later to pick them up",
                pool.tickets_awaited()
            );
        }
        println!(
            "pool {}: {} tickets, {} period(s) covered, next top-up {}",
            a.pool.pool.display(),
            s["certificates"],
            s["periods_covered"],
            s["next_topup"].as_str().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_current(pool: &Pool, now: i64, what: &str) {
    let s = pool.status(now);
    let id = match pool.format() {
        PoolFormat::X509 => "serial",
        PoolFormat::Ieee1609 => "ticket",
    };
    match s.get("current").filter(|c| !c.is_null()) {
        Some(c) => println!(
            "{what}: {id} {} (period {}, #{}), next change {}",
            c["serial"].as_str().unwrap_or("-"),
            c["period"],
            c["index"],
            c["next_change"].as_str().unwrap_or("-")
        ),
        None => println!("{what}: no certificate is valid now; run `trustca pseudonym request`"),
    }
}

fn rotate(a: RotateArgs) -> Result<ExitCode> {
    let secret = a.pool.secret()?;
    let mut pool = Pool::open(&a.pool.pool, &secret)?;
    let now = now_unix();
    if let Some(m) = a.every {
        // Applies from the next change on.
        pool.set_rotation((m > 0).then_some(m.saturating_mul(60)));
    }
    let outcome = pool.rotate(now, a.force)?;
    pool.save(now)?;
    if a.json {
        print_json(&json!({"rotation": outcome.as_str(), "status": pool.status(now)}));
    } else {
        print_current(&pool, now, outcome.as_str());
        if pool.next_topup(now) <= now {
            println!("top-up due: run `trustca pseudonym request`");
        }
    }
    Ok(if outcome == crate::vehicle_pool::Rotation::Empty {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn status(a: StatusArgs) -> Result<ExitCode> {
    let secret = a.pool.secret()?;
    let mut pool = Pool::open(&a.pool.pool, &secret)?;
    let now = now_unix();
    if pool.drop_expired(now) > 0 {
        pool.save(now)?;
    }
    let s = pool.status(now);
    if a.json {
        print_json(&s);
    } else {
        println!("pool              {}", a.pool.pool.display());
        println!("format            {}", pool.format().as_str());
        println!("sector            {}", s["sector"].as_str().unwrap_or("-"));
        println!("period now        {}", s["period_now"]);
        println!(
            "periods covered   {} (through {})",
            s["periods_covered"], s["covered_through"]
        );
        println!("certificates      {}", s["certificates"]);
        if pool.format() == PoolFormat::Ieee1609 {
            println!(
                "awaited tickets   {} ({} request(s) pending)",
                s["tickets_awaited"], s["pending_requests"]
            );
        }
        println!("unused this period {}", s["unused_in_current_period"]);
        print_current(&pool, now, "current          ");
        println!(
            "next top-up       {}{}",
            s["next_topup"].as_str().unwrap_or("-"),
            if s["topup_due"] == true { " (due)" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The PEM `export` writes: certificate, pseudonym CA, PKCS#8 key.
pub fn export_pem(pool: &Pool) -> Result<zeroize::Zeroizing<String>> {
    let entry = pool
        .current_entry()
        .context("no current certificate; run `trustca pseudonym rotate`")?;
    let mut out = zeroize::Zeroizing::new(String::new());
    out.push_str(&pem::encode(&pem::Pem::new(
        "CERTIFICATE",
        entry.certificate_der()?,
    )));
    let ca = pool.pseudonym_ca_der();
    if !ca.is_empty() {
        out.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", ca)));
    }
    let key = entry.private_key_pkcs8()?;
    out.push_str(&pem::encode(&pem::Pem::new("PRIVATE KEY", key.to_vec())));
    Ok(out)
}

fn export(a: ExportArgs) -> Result<ExitCode> {
    let secret = a.pool.secret()?;
    let mut pool = Pool::open(&a.pool.pool, &secret)?;
    let now = now_unix();
    if pool
        .current_entry()
        .is_none_or(|e| e.not_after < now || e.not_before > now)
    {
        pool.rotate(now, false)?;
        pool.save(now)?;
    }
    let format = a.format.unwrap_or(match pool.format() {
        PoolFormat::X509 => ExportFormat::Pem,
        PoolFormat::Ieee1609 => ExportFormat::Coer,
    });
    match (pool.format(), format) {
        (PoolFormat::X509, ExportFormat::Pem) => {}
        (PoolFormat::Ieee1609, ExportFormat::Coer) => {
            let id = ticket_cmd::export_coer(&pool, &a.out)?;
            if a.json {
                print_json(&json!({
                    "out": a.out,
                    "format": "coer",
                    "hashed_id8": id,
                    "files": [ticket_cmd::TICKET_FILE, ticket_cmd::TICKET_KEY_FILE, ticket_cmd::ISSUER_FILE],
                }));
            } else {
                println!(
                    "wrote the current ticket {id} to {}: {}, {} (private key), {}",
                    a.out.display(),
                    ticket_cmd::TICKET_FILE,
                    ticket_cmd::TICKET_KEY_FILE,
                    ticket_cmd::ISSUER_FILE
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        (PoolFormat::X509, ExportFormat::Coer) => {
            bail!("this pool holds X.509 pseudonym certificates: export them with --format pem")
        }
        (PoolFormat::Ieee1609, ExportFormat::Pem) => {
            bail!("this pool holds IEEE 1609.2 tickets: export them with --format coer")
        }
    }
    let text = export_pem(&pool)?;
    write_atomic(&a.out, text.as_bytes())?;
    let serial = pool.current().map(|c| c.serial.clone()).unwrap_or_default();
    if a.json {
        print_json(&json!({"out": a.out, "serial": serial}));
    } else {
        println!(
            "wrote the current pseudonym certificate {serial} and its key to {}",
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// Resolution authority
// ---------------------------------------------------------------------------

fn resolve(a: ResolveArgs) -> Result<ExitCode> {
    let cert = read_certs(&a.cert)?.remove(0);
    let ra = pseudonym_ca::read_resolution_authority_key(&a.ra_key)?;
    let config = trustca_server::StoreConfig::or_data_dir(a.store.as_ref(), &a.data);
    let store = config.open().with_context(|| {
        format!(
            "cannot open the store at {} (stop the server or use a copy of the data directory)",
            config.describe()
        )
    })?;
    let r = pseudonym_ca::resolve(
        store.as_ref(),
        &ra,
        &cert,
        &crate::cli::extension_oid_for(&a.data)?,
    )?;
    if a.json {
        print_json(&json!({
            "identity": r.identity,
            "sector": r.sector,
            "period": r.period,
            "index": r.index,
            "revocation_entry_period": r.revocation_entry.period,
        }));
    } else {
        println!("vehicle   {}", r.identity);
        println!(
            "period    {}{}",
            r.period,
            r.index
                .map(|j| format!(" (certificate #{j})"))
                .unwrap_or_default()
        );
        println!("revoke it: trustca pseudonym revoke {}", r.identity);
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// Operator and checks
// ---------------------------------------------------------------------------

async fn revoke(a: RevokeArgs) -> Result<ExitCode> {
    let mut c = PseudonymsClient::new(a.client.channel().await?);
    let r = c
        .revoke_pseudonyms(pb::RevokePseudonymsRequest {
            identity: a.device.clone(),
            from_period: a.from_period.unwrap_or(0),
            reason: a.reason,
        })
        .await
        .map_err(refused)?
        .into_inner();
    if a.json {
        print_json(&json!({
            "identity": a.device,
            "sector": r.sector,
            "from_period": r.from_period,
            "prl_number": r.prl_number,
            "newly_revoked": r.newly_revoked,
        }));
    } else if r.newly_revoked {
        println!(
            "revoked the pseudonyms of {} from period {} on; PRL #{} of {} published",
            a.device, r.from_period, r.prl_number, r.sector
        );
    } else {
        println!(
            "{} was already revoked from period {} on",
            a.device, r.from_period
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn prl(a: PrlArgs) -> Result<ExitCode> {
    use prost::Message;
    let mut c = PseudonymsClient::new(a.client.channel().await?);
    let signed = c
        .get_prl(pb::GetPrlRequest {
            sector: a.sector.clone(),
        })
        .await
        .map_err(refused)?
        .into_inner();
    let list = PseudonymRevocationList::from_signed_bytes(&signed.prl)
        .map_err(|e| anyhow::anyhow!("the server sent a malformed PRL: {e}"))?;
    std::fs::write(&a.out, signed.encode_to_vec())
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    println!(
        "PRL #{} of {} ({} entries) written to {}",
        list.issue_number(),
        a.sector,
        list.entries().len(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The result of checking a certificate against a PRL.
#[derive(Debug, Clone)]
pub struct PrlCheck {
    /// Whether an entry matches.
    pub revoked: bool,
    /// The certificate's period.
    pub period: u64,
    /// The matching entry's period.
    pub entry_period: Option<u64>,
    /// The list's issue number.
    pub prl_number: u64,
    /// The list's sector.
    pub sector: String,
    /// Whether the list is past its next update.
    pub stale: bool,
}

fn verify_with_anchor(leaf: &[u8], anchor_der: &[u8], at: i64) -> Result<()> {
    let anchor_cd = CertificateDer::from(anchor_der.to_vec());
    let anchor = webpki::anchor_from_trusted_cert(&anchor_cd).map_err(|e| {
        anyhow::anyhow!(
            "PRL signer unusable: {}",
            trustca_model::describe_webpki_error(&e)
        )
    })?;
    let leaf_cd = CertificateDer::from(leaf.to_vec());
    let ee = webpki::EndEntityCert::try_from(&leaf_cd).map_err(|e| {
        anyhow::anyhow!(
            "certificate unusable: {}",
            trustca_model::describe_webpki_error(&e)
        )
    })?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(at.max(0) as u64));
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        time,
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "the certificate was not issued by the PRL's signer: {}",
            trustca_model::describe_webpki_error(&e)
        )
    })?;
    Ok(())
}

/// Checks a pseudonym certificate against a signed PRL: verifies the
/// list's signature by its pseudonym CA, that the certificate was issued
/// by that CA (and, with `root`, both up to the root), then matches the
/// certificate's linkage value against every entry.
pub fn check_against_prl(
    cert_der: &[u8],
    signed: &pb::SignedPrl,
    root_der: Option<&[u8]>,
    now: i64,
) -> Result<PrlCheck> {
    let (_, signer) = x509_parser::parse_x509_certificate(&signed.pseudonym_ca_der)
        .map_err(|_| anyhow::anyhow!("the PRL's signer certificate does not parse"))?;
    let point = signer.public_key().subject_public_key.data.to_vec();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed.prl, &signed.signature)
        .map_err(|_| anyhow::anyhow!("the PRL's signature does not verify"))?;
    let list = PseudonymRevocationList::from_signed_bytes(&signed.prl)
        .map_err(|e| anyhow::anyhow!("malformed PRL: {e}"))?;
    let oid = crate::cli::extension_oid();
    let fields = pseudonym_fields(cert_der, &oid)?;
    if fields.sector.as_str() != list.sector() {
        bail!(
            "the certificate is of sector {}, the list of {}",
            fields.sector,
            list.sector()
        );
    }
    let at = verification_time(&fields, now);
    verify_with_anchor(cert_der, &signed.pseudonym_ca_der, at)?;
    if let Some(root) = root_der {
        let t = time::OffsetDateTime::from_unix_timestamp(at)
            .context("certificate validity out of range")?;
        trustca_model::verify_chain(
            &[cert_der.to_vec(), signed.pseudonym_ca_der.clone()],
            &[],
            root,
            t,
            &oid,
        )
        .context("the certificate and the PRL signer do not verify to the root")?;
    }
    let lv = LinkageValue(fields.linkage_value);
    let entry = list
        .entries()
        .iter()
        .find(|e| e.matches(fields.period, fields.certificates_per_period, &lv));
    Ok(PrlCheck {
        revoked: entry.is_some(),
        period: fields.period,
        entry_period: entry.map(|e| e.period),
        prl_number: list.issue_number(),
        sector: list.sector().to_owned(),
        stale: (now.max(0) as u64) > list.next_update(),
    })
}

/// Reads a signed PRL file.
pub fn read_prl(path: &Path) -> Result<pb::SignedPrl> {
    use prost::Message;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    pb::SignedPrl::decode(bytes.as_slice())
        .map_err(|_| anyhow::anyhow!("{} is not a signed trustca PRL", path.display()))
}

fn check_ticket(a: &CheckArgs, crl: &Path, issuer: &Path) -> Result<ExitCode> {
    let r = ticket_cmd::check_files(&a.cert, crl, issuer)?;
    if a.json {
        print_json(&json!({
            "revoked": r.revoked,
            "period": r.period,
            "hashed_id8": r.hashed_id8,
            "crl_number": r.crl_number,
            "crl_series": r.crl_series,
            "jmax": r.jmax,
            "i_rev": r.i_rev,
            "entries": r.entries,
            "stale": r.stale,
        }));
    } else if r.revoked {
        println!(
            "REVOKED: ticket {} (period {}) is linked by linkage CRL #{} of series {}",
            r.hashed_id8, r.period, r.crl_number, r.crl_series
        );
    } else {
        println!(
            "not revoked by linkage CRL #{} of series {} ({} entries; ticket {}, period {})",
            r.crl_number, r.crl_series, r.entries, r.hashed_id8, r.period
        );
    }
    if r.stale {
        eprintln!("warning: the linkage CRL is past its next update; fetch a current one");
    }
    Ok(if r.revoked {
        ExitCode::from(EXIT_REVOKED)
    } else {
        ExitCode::SUCCESS
    })
}

async fn linkage_crl(a: LinkageCrlArgs) -> Result<ExitCode> {
    let crl = ticket_cmd::fetch_linkage_crl(a.client.channel().await?).await?;
    if let Some(issuer) = &a.issuer {
        let bytes =
            std::fs::read(issuer).with_context(|| format!("cannot read {}", issuer.display()))?;
        let cert = ticket_cmd::read_v2x_certificate(&bytes, "the issuer")?;
        crl.verify(&cert)
            .map_err(|e| anyhow::anyhow!("the linkage CRL does not verify with the issuer: {e}"))?;
    }
    std::fs::write(&a.out, crl.as_bytes())
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    if a.json {
        print_json(&json!({
            "out": a.out,
            "crl_number": crl.crl_number,
            "crl_series": crl.crl_series,
            "entries": crl.entries.len(),
            "verified": a.issuer.is_some(),
        }));
    } else {
        println!(
            "linkage CRL #{} of series {} ({} entries{}) written to {}",
            crl.crl_number,
            crl.crl_series,
            crl.entries.len(),
            if a.issuer.is_some() {
                ", signature verified"
            } else {
                ""
            },
            a.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn check(a: CheckArgs) -> Result<ExitCode> {
    if let Some(crl) = &a.linkage_crl {
        let issuer = a
            .issuer
            .as_deref()
            .context("--linkage-crl needs --issuer (the pseudonym CA certificate, COER)")?;
        return check_ticket(&a, crl, issuer);
    }
    let prl = a.prl.as_deref().context(
        "give --prl FILE (X.509 pseudonym) or --linkage-crl FILE --issuer FILE (ticket)",
    )?;
    let cert = read_certs(&a.cert)?.remove(0);
    let signed = read_prl(prl)?;
    let root = a
        .root
        .as_deref()
        .map(read_certs)
        .transpose()?
        .map(|mut r| r.remove(0));
    let r = check_against_prl(&cert, &signed, root.as_deref(), now_unix())?;
    if a.json {
        print_json(&json!({
            "revoked": r.revoked,
            "period": r.period,
            "entry_period": r.entry_period,
            "prl_number": r.prl_number,
            "sector": r.sector,
            "stale": r.stale,
        }));
    } else if r.revoked {
        println!(
            "REVOKED: the certificate (period {}) matches an entry of PRL #{} of {} (from period {})",
            r.period,
            r.prl_number,
            r.sector,
            r.entry_period.unwrap_or_default()
        );
    } else {
        println!(
            "not revoked by PRL #{} of {} (certificate period {})",
            r.prl_number, r.sector, r.period
        );
    }
    if r.stale {
        eprintln!("warning: the PRL is past its next update; fetch a current one");
    }
    Ok(if r.revoked {
        ExitCode::from(EXIT_REVOKED)
    } else {
        ExitCode::SUCCESS
    })
}
