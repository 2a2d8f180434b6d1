//! `trustca pseudonym ...`: V2X pseudonyms, which are IEEE 1609.2
//! authorization tickets from the separated V2X authorities.
//!
//! * Vehicle: `request` (fill the encrypted pool with tickets from the
//!   registration authority, over mutual TLS with the long-term
//!   certificate; see `crate::ticket_cmd`), `rotate`, `status`, `export`
//!   (COER for the V2X stack).
//! * Anyone: `check` (is a ticket revoked by the linkage CRL?),
//!   `linkage-crl` (fetch that list).
//! * EU C-ITS (`--profile etsi`, `crate::pseudonym_etsi`): `canonical-key`
//!   (the station's key, made in the pool), `request --profile etsi`
//!   (TS 102 941 enrolment and authorization, TS 103 097 tickets into the
//!   same pool), `check --profile etsi` (the root's CTL and CRL against
//!   the pool's tickets).
//!
//! Operators revoke and resolve with `trustca v2x revoke|resolve`. trustca
//! no longer issues X.509 pseudonym certificates: `--format x509` is
//! refused, and so is a pool that holds them
//! ([`trustca_vehicle::X509_POOL_REFUSED`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::certinfo::read_certs;
use crate::cli::{ClientArgs, print_json};
use crate::pseudonym_etsi::{self, EtsiTrustArgs};
use crate::show;
use crate::ticket_cmd;
use trustca_vehicle::{POOL_FORMAT, Pool, PoolProfile, PoolSecret, PoolStatus, TicketKind};

/// Exit code of `check` when the certificate is revoked.
pub const EXIT_REVOKED: u8 = 3;

/// What `request --format` accepts: only IEEE 1609.2 tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ieee1609;

fn parse_request_format(s: &str) -> std::result::Result<Ieee1609, String> {
    match s {
        "ieee1609" => Ok(Ieee1609),
        "x509" => Err(
            "trustca no longer issues X.509 pseudonym certificates; `trustca pseudonym request` issues IEEE 1609.2 tickets (leave out --format)"
                .into(),
        ),
        _ => Err("the only format is ieee1609 (IEEE 1609.2 tickets)".into()),
    }
}

/// What `export --format` accepts: only COER tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coer;

fn parse_export_format(s: &str) -> std::result::Result<Coer, String> {
    match s {
        "coer" => Ok(Coer),
        "pem" => Err(
            "pools hold IEEE 1609.2 tickets, which export as --format coer (X.509 pseudonym certificates are no longer issued)"
                .into(),
        ),
        _ => Err("the only format is coer".into()),
    }
}

/// Which PKI `request` and `check` talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TicketPki {
    /// The SCMS-style V2X registration authority over gRPC (IEEE 1609.2
    /// tickets with linkage values).
    #[default]
    #[value(name = "ieee1609", alias = "scms")]
    Scms,
    /// The EU C-ITS enrolment and authorization authorities over the TS
    /// 102 941 HTTP transport (ETSI TS 103 097 tickets).
    Etsi,
}

/// The vehicle's credential for the registration authority (as
/// [`ClientArgs`], each needed by the ieee1609 profile only).
#[derive(Debug, Args)]
pub struct VehicleClientArgs {
    /// Server address, e.g. https://127.0.0.1:7443 (ieee1609).
    #[arg(long, env = "TRUSTCA_SERVER")]
    pub server: Option<String>,
    /// The vehicle's long-term certificate chain (PEM, leaf first; ieee1609).
    #[arg(long, env = "TRUSTCA_IDENTITY")]
    pub identity: Option<PathBuf>,
    /// Its private key (PEM; ieee1609).
    #[arg(long, env = "TRUSTCA_KEY")]
    pub key: Option<PathBuf>,
    /// The trustca root certificate (PEM; ieee1609).
    #[arg(long, env = "TRUSTCA_CA")]
    pub ca: Option<PathBuf>,
}

impl VehicleClientArgs {
    /// All four, or which are missing.
    fn required(&self) -> Result<ClientArgs> {
        match (&self.server, &self.identity, &self.key, &self.ca) {
            (Some(server), Some(identity), Some(key), Some(ca)) => Ok(ClientArgs {
                server: server.clone(),
                identity: identity.clone(),
                key: key.clone(),
                ca: ca.clone(),
            }),
            _ => bail!(
                "the ieee1609 profile needs --server, --identity, --key and --ca (the vehicle's long-term credential)"
            ),
        }
    }
}

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
            return Ok(PoolSecret::key_file(p)?);
        }
        match std::env::var("TRUSTCA_POOL_PASSPHRASE") {
            Ok(p) => Ok(PoolSecret::passphrase(p.into_bytes())?),
            Err(_) => bail!(
                "no pool secret: pass --pool-key FILE or set TRUSTCA_POOL_PASSPHRASE (the pool is never stored unencrypted)"
            ),
        }
    }
}

/// `trustca pseudonym request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// ieee1609 (the default): the V2X registration authority over gRPC;
    /// etsi: EU C-ITS enrolment and authorization over HTTP (--dc,
    /// --etsi-root, --tickets).
    #[arg(long, value_enum, default_value_t)]
    pub profile: TicketPki,
    /// The vehicle's long-term certificate and key (--identity, --key), the
    /// server and the root (--ca); the ieee1609 profile only.
    #[command(flatten)]
    pub client: VehicleClientArgs,
    #[command(flatten)]
    pub pool: PoolArgs,
    #[command(flatten)]
    pub etsi: EtsiTrustArgs,
    /// etsi: how many tickets to obtain (one authorization request each,
    /// all for the authority's current period).
    #[arg(long, default_value_t = 20)]
    pub tickets: u32,
    /// etsi: the authorization authority's period in hours, which the
    /// pool's rotation and top-up count in (a TS 103 097 ticket names no
    /// period); 168, a week, as the EU C-ITS certificate policy bounds it.
    /// Fixed by the pool's first tickets.
    #[arg(long, default_value_t = 168, value_name = "HOURS")]
    pub period_hours: u32,
    /// etsi: re-enrol (signed with the current enrolment credential) even
    /// when the credential is far from its end.
    #[arg(long)]
    pub re_enrol: bool,
    /// Hold tickets for this many periods, counting the current one.
    #[arg(long, default_value_t = 12)]
    pub periods: u32,
    /// ieee1609, the only format (IEEE 1609.2 authorization tickets from
    /// the V2X registration authority); kept for scripts that name it.
    #[arg(long, value_parser = parse_request_format, value_name = "ieee1609")]
    pub format: Option<Ieee1609>,
    /// How long to keep downloading, in seconds, for tickets the
    /// registration authority has not sent yet (they go out with its next
    /// batch). Tickets that arrive later are picked up by the next
    /// `request`, which downloads before it asks for more.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub wait: u64,
    /// Ask again for the periods of earlier requests whose
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
    /// Change the ticket now, even if its interval has not passed.
    #[arg(long)]
    pub force: bool,
    /// Set the rotation interval in minutes (kept in the pool; 0 = the
    /// default: period length / tickets per period).
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

/// `trustca pseudonym export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub pool: PoolArgs,
    /// The directory to write ticket.oer, ticket.key and issuer.oer into
    /// (created if missing, mode 0600 files, each replaced atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// coer, the only format; kept for scripts that name it.
    #[arg(long, value_parser = parse_export_format, value_name = "coer")]
    pub format: Option<Coer>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
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
    /// The pseudonym CA certificate (COER, e.g. issuer.oer from `export`):
    /// verify the list's signature before writing it.
    #[arg(long)]
    pub issuer: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// ieee1609 (the default): one ticket against the linkage CRL; etsi:
    /// every ticket of --pool against the root's CTL and CRL from the
    /// distribution centre.
    #[arg(long, value_enum, default_value_t)]
    pub profile: TicketPki,
    /// The IEEE 1609.2 ticket (COER, e.g. ticket.oer); ieee1609 only.
    #[arg(required_unless_present = "pool")]
    pub cert: Option<PathBuf>,
    /// The pseudonym CA's linkage CRL (`trustca pseudonym linkage-crl`), an
    /// IEEE 1609.2 `SecuredCrl`; its jmax says how many tickets per period
    /// are matched; ieee1609 only.
    #[arg(long, required_unless_present = "pool")]
    pub linkage_crl: Option<PathBuf>,
    /// The pseudonym CA certificate (COER, e.g. issuer.oer) that signed the
    /// list and the ticket; ieee1609 only.
    #[arg(long, required_unless_present = "pool")]
    pub issuer: Option<PathBuf>,
    /// etsi: the pool whose tickets to check.
    #[arg(long)]
    pub pool: Option<PathBuf>,
    /// etsi: the pool's key file (else $TRUSTCA_POOL_PASSPHRASE).
    #[arg(long, env = "TRUSTCA_POOL_KEY_FILE")]
    pub pool_key: Option<PathBuf>,
    #[command(flatten)]
    pub etsi: EtsiTrustArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `trustca pseudonym ...`.
#[derive(Debug, Subcommand)]
pub enum PseudonymAction {
    /// Vehicle: request IEEE 1609.2 authorization tickets from the
    /// registration authority into an encrypted pool; also picks up tickets
    /// that arrived since the last request.
    Request(Box<RequestArgs>),
    /// Vehicle: pick the ticket to use now (changes after the interval).
    Rotate(RotateArgs),
    /// Vehicle: show the pool (coverage, current ticket, next top-up).
    Status(StatusArgs),
    /// Vehicle: write the current ticket, its key and its issuer (COER)
    /// into a directory for the V2X stack.
    Export(ExportArgs),
    /// Check a ticket against the linkage CRL, or (--profile etsi) the
    /// pool's tickets against the root's CTL and CRL (exit 0 valid, 3
    /// revoked).
    Check(Box<CheckArgs>),
    /// EU C-ITS station: make (once, with --its-id) or show the canonical
    /// key in the pool; --out writes the public key for the manufacturer's
    /// `trustca etsi register-key`.
    CanonicalKey(pseudonym_etsi::CanonicalKeyArgs),
    /// Fetch the pseudonym CA's signed linkage CRL (for IEEE 1609.2 tickets).
    LinkageCrl(Box<LinkageCrlArgs>),
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Runs a `pseudonym` subcommand.
pub async fn run(action: PseudonymAction) -> Result<ExitCode> {
    match action {
        PseudonymAction::Request(a) => request(*a).await,
        PseudonymAction::Rotate(a) => rotate(a),
        PseudonymAction::Status(a) => status(a),
        PseudonymAction::Export(a) => export(a),
        PseudonymAction::Check(a) => check(*a),
        PseudonymAction::CanonicalKey(a) => pseudonym_etsi::canonical_key(a),
        PseudonymAction::LinkageCrl(a) => linkage_crl(*a).await,
    }
}

// ---------------------------------------------------------------------------
// Vehicle
// ---------------------------------------------------------------------------

async fn request(a: RequestArgs) -> Result<ExitCode> {
    if a.profile == TicketPki::Etsi {
        if a.resend || a.format.is_some() {
            bail!("--resend and --format belong to the ieee1609 profile, not --profile etsi");
        }
        return pseudonym_etsi::request(pseudonym_etsi::EtsiRequest {
            pool: &a.pool,
            trust: &a.etsi,
            tickets: a.tickets,
            period_hours: a.period_hours,
            re_enrol: a.re_enrol,
            json: a.json,
        });
    }
    let client = a.client.required()?;
    let secret = a.pool.secret()?;
    let root_der = read_certs(&client.ca)?.remove(0);
    // Opened (and a pool of X.509 pseudonyms refused) before anything goes
    // on the wire.
    let mut pool = Pool::open_or_create(&a.pool.pool, &secret)?;
    pool.check_kind(TicketKind::Scms)?;
    let channel = client.channel().await?;
    let report = ticket_cmd::request_tickets_into_pool(
        channel,
        &root_der,
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
    let s = status_json(&pool.status(now), pool.profile());
    if a.json {
        print_json(&json!({
            "format": POOL_FORMAT,
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
    println!("{what}: {}", current_text(pool, now));
}

/// The ticket in use now, or what to do when there is none.
fn current_text(pool: &Pool, now: i64) -> String {
    match pool.status(now).current {
        Some(c) => format!(
            "ticket {} (period {}, #{}), next change {}",
            c.serial,
            c.period,
            c.index,
            show::unix(c.next_change)
        ),
        None => "no ticket is valid now; run `trustca pseudonym request`".into(),
    }
}

/// A pool's status as `--json` shows it: times in RFC 3339.
pub(crate) fn status_json(s: &PoolStatus, profile: Option<&PoolProfile>) -> serde_json::Value {
    json!({
        "pool": s.pool,
        "format": POOL_FORMAT,
        "profile": profile.map_or(TicketKind::Scms, |p| p.kind).as_str(),
        "pending_requests": s.pending_requests,
        "tickets_awaited": s.tickets_awaited,
        "sector": s.sector,
        "period_now": s.period_now,
        "periods_covered": s.covered_periods.len(),
        "covered_periods": s.covered_periods,
        "covered_through": s.covered_through,
        "certificates": s.certificates,
        "unused_in_current_period": s.unused_in_current_period,
        "current": s.current.as_ref().map(|c| json!({
            "serial": c.serial,
            "period": c.period,
            "index": c.index,
            "since": show::unix(c.since),
            "next_change": show::unix(c.next_change),
            "not_after": show::unix(c.not_after),
        })),
        "rotation_seconds": s.rotation_seconds,
        "next_topup": show::unix(s.next_topup),
        "next_topup_unix": s.next_topup,
        "topup_due": s.topup_due,
    })
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
        print_json(
            &json!({"rotation": outcome.as_str(), "status": status_json(&pool.status(now), pool.profile())}),
        );
    } else {
        print_current(&pool, now, outcome.as_str());
        if pool.next_topup(now) <= now {
            println!("top-up due: run `trustca pseudonym request`");
        }
    }
    Ok(if outcome == trustca_vehicle::Rotation::Empty {
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
    let s = status_json(&pool.status(now), pool.profile());
    if a.json {
        print_json(&s);
    } else {
        let rows = [
            ("pool", a.pool.pool.display().to_string()),
            ("format", POOL_FORMAT.to_string()),
            ("profile", s["profile"].as_str().unwrap_or("-").to_owned()),
            ("sector", s["sector"].as_str().unwrap_or("-").to_owned()),
            ("period now", s["period_now"].to_string()),
            (
                "periods covered",
                format!(
                    "{} (through {})",
                    s["periods_covered"], s["covered_through"]
                ),
            ),
            ("tickets", s["certificates"].to_string()),
            (
                "awaited tickets",
                format!(
                    "{} ({} pending)",
                    s["tickets_awaited"],
                    show::count(
                        s["pending_requests"].as_u64().unwrap_or(0),
                        "request",
                        "requests"
                    )
                ),
            ),
            (
                "unused this period",
                s["unused_in_current_period"].to_string(),
            ),
            ("current", current_text(&pool, now)),
            (
                "next top-up",
                format!(
                    "{}{}",
                    s["next_topup"].as_str().unwrap_or("-"),
                    if s["topup_due"] == true { " (due)" } else { "" }
                ),
            ),
        ];
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in rows {
            println!("{k:width$}  {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
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
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

fn check(a: CheckArgs) -> Result<ExitCode> {
    if a.profile == TicketPki::Etsi {
        let Some(pool) = a.pool else {
            bail!("--profile etsi checks a pool's tickets: pass --pool DIR");
        };
        let pool = PoolArgs {
            pool,
            pool_key: a.pool_key,
        };
        return pseudonym_etsi::check(&pool, &a.etsi, a.json);
    }
    let (Some(cert), Some(crl), Some(issuer)) = (&a.cert, &a.linkage_crl, &a.issuer) else {
        bail!("the ieee1609 check needs a ticket file, --linkage-crl and --issuer");
    };
    let r = ticket_cmd::check_files(cert, crl, issuer)?;
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
