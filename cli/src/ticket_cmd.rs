//! The vehicle's side of the separated V2X authorities: IEEE 1609.2
//! authorization tickets in the encrypted pool (`trustca pseudonym
//! request`, then `rotate`, `status`, `export`), and checking a ticket
//! against the pseudonym CA's linkage CRL.
//!
//! A request goes to the registration authority (`V2xRegistration`), which
//! queues it for its next batch; the encrypted responses are downloaded
//! later, so the caterpillar key of each request stays sealed in the pool
//! until all its tickets have arrived (or its periods are over). Every
//! response is opened with [`TicketOpener`], which checks that the ticket
//! verifies with the pseudonym CA, is for the period it was requested for
//! and that the derived private key is the ticket's.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic::transport::Channel;
use trustca_proto::v1 as pb;
use trustca_proto::v1::v2x_pseudonym_ca_client::V2xPseudonymCaClient;
use trustca_proto::v1::v2x_registration_client::V2xRegistrationClient;
use trustca_pseudonym::Caterpillar;
use trustca_scms::{LinkageCrl, OpenedTicket, TicketOpener};
use trustca_v2x::{CertProfile, Certificate, CertificateId};

use trustca_vehicle::{
    Pool, PoolEntry, PoolProfile, TicketKind, TicketRequestRecord, write_atomic,
};

/// Largest gRPC answer accepted from the registration authority.
pub const MAX_TICKET_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// File names `export` writes into its directory.
pub const TICKET_FILE: &str = "ticket.oer";
/// The ticket's private key (PKCS#8 PEM, mode 0600).
pub const TICKET_KEY_FILE: &str = "ticket.key";
/// The pseudonym CA certificate (COER).
pub const ISSUER_FILE: &str = "issuer.oer";

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn refused(s: tonic::Status) -> anyhow::Error {
    crate::client::refused("refused", &s).into()
}

/// Reads an IEEE 1609.2 certificate (the IEEE 1609.2 profile, which
/// admits every ETSI TS 103 097 certificate, linkageData tickets and CA
/// certificates naming their CRACA).
pub fn read_v2x_certificate(bytes: &[u8], what: &str) -> Result<Certificate> {
    Certificate::from_coer_in(CertProfile::Ieee1609Dot2, bytes)
        .map_err(|e| anyhow::anyhow!("{what} is not an IEEE 1609.2 certificate (COER): {e}"))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The validity of a ticket in unix seconds (start, end).
pub fn ticket_validity(c: &Certificate) -> (i64, i64) {
    let v = &c.tbs().validity;
    let start = v.start.to_unix();
    let secs = i64::try_from(v.duration.as_seconds()).unwrap_or(i64::MAX);
    (start, start.saturating_add(secs))
}

fn entry_of(t: &OpenedTicket) -> PoolEntry {
    let (not_before, not_after) = ticket_validity(&t.certificate);
    PoolEntry {
        period: t.period,
        index: t.j,
        certificate: hex::encode(t.certificate.as_coer()),
        key: hex::encode(t.private_key.to_bytes().as_ref()),
        serial: hex::encode(t.certificate.hashed_id8()),
        not_before,
        not_after,
        used: false,
        kind: TicketKind::Scms,
    }
}

/// What opening a download did.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    /// Tickets added to the pool.
    pub added: usize,
    /// Responses to tickets already held, or to requests already complete.
    pub skipped: usize,
    /// Responses that failed verification (with the first reason).
    pub rejected: usize,
    /// Why the first rejected one was.
    pub first_error: Option<String>,
}

/// Opens `responses` with the pool's pending requests and adds the tickets
/// (a ticket already held, by HashedId8, is not added again). Does not save.
pub fn open_into_pool(pool: &mut Pool, responses: &[Vec<u8>]) -> Result<Opened> {
    let mut keys = Vec::new();
    for r in pool.ticket_requests() {
        let raw = zeroize::Zeroizing::new(
            hex::decode(&r.caterpillar).context("pool: corrupt caterpillar")?,
        );
        let caterpillar = Caterpillar::from_bytes(&raw)
            .map_err(|e| anyhow::anyhow!("pool: corrupt caterpillar: {e}"))?;
        let issuer = read_v2x_certificate(
            &hex::decode(&r.issuer).context("pool: corrupt issuer")?,
            "the pool's pseudonym CA",
        )?;
        keys.push((caterpillar, issuer, r.first_period, r.periods, r.per_period));
    }
    let openers = keys
        .iter()
        .map(|(c, i, first, periods, per)| TicketOpener::new(c, i, *first, *periods, *per))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("pool: cannot expand a request's keys: {e}"))?;
    let mut out = Opened::default();
    let mut entries = Vec::new();
    for response in responses {
        let Some(opener) = openers.iter().find(|o| o.recognises(response)) else {
            out.skipped += 1;
            continue;
        };
        match opener.open(response) {
            Ok(t) => {
                let e = entry_of(&t);
                if pool.holds_serial(&e.serial)
                    || entries.iter().any(|x: &PoolEntry| x.serial == e.serial)
                {
                    out.skipped += 1;
                } else {
                    entries.push(e);
                }
            }
            Err(e) => {
                out.rejected += 1;
                out.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let n = entries.len();
    out.added = pool.add(entries);
    out.skipped += n - out.added;
    Ok(out)
}

/// What one ticket `request` did.
#[derive(Debug, Clone, Default)]
pub struct TicketReport {
    /// First and last period newly requested (none when already covered).
    pub periods: Option<(u64, u64)>,
    /// Tickets the registration authority queued for this run's requests.
    pub queued: u32,
    /// Requests sent.
    pub calls: usize,
    /// What the downloads brought.
    pub opened: Opened,
    /// Downloads made.
    pub downloads: usize,
    /// Requests sent again for pending periods (`resend`).
    pub resent: usize,
    /// Wall time.
    pub millis: u128,
}

fn pool_profile(info: &pb::TicketProfileInfo) -> PoolProfile {
    PoolProfile {
        kind: TicketKind::Scms,
        sector: info.sector.clone(),
        policy_version: info.version.clone(),
        epoch: info.epoch,
        period_seconds: u64::from(info.period_hours.max(1)) * 3600,
        certificates_per_period: info.certificates_per_period.max(1),
        overlap_seconds: u64::from(info.overlap_hours) * 3600,
        max_periods_ahead: info.max_periods_ahead.max(1),
        max_periods_per_request: info.max_periods_per_request.max(1),
        permissions: info
            .permissions
            .iter()
            .map(|p| p.psid.to_string())
            .collect(),
    }
}

async fn download_into_pool(
    client: &mut V2xRegistrationClient<Channel>,
    pool: &mut Pool,
    report: &mut TicketReport,
) -> Result<()> {
    let responses = client
        .download_tickets(pb::DownloadTicketsRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .responses;
    report.downloads += 1;
    let o = open_into_pool(pool, &responses)?;
    report.opened.added += o.added;
    report.opened.skipped = o.skipped;
    report.opened.rejected = o.rejected;
    if report.opened.first_error.is_none() {
        report.opened.first_error = o.first_error;
    }
    let now = now_unix();
    pool.prune_ticket_requests(now);
    Ok(pool.save(now)?)
}

/// Sends one `RequestTickets` for `n` periods from `first` with a fresh
/// caterpillar key, kept sealed in the pool with the request. The key is
/// saved before the request goes out (the pseudonym CA issues a period's
/// tickets once, so a key lost after sending would lose them), and
/// forgotten again if the request is refused.
async fn send_request(
    client: &mut V2xRegistrationClient<Channel>,
    pool: &mut Pool,
    profile: &PoolProfile,
    issuer: &Certificate,
    first: u64,
    n: u64,
    report: &mut TicketReport,
) -> Result<()> {
    let caterpillar =
        Caterpillar::generate().map_err(|e| anyhow::anyhow!("caterpillar key: {e}"))?;
    let caterpillar_hex = zeroize::Zeroizing::new(hex::encode(caterpillar.to_bytes().as_ref()));
    pool.add_ticket_request(TicketRequestRecord {
        first_period: first,
        periods: n as u32,
        per_period: profile.certificates_per_period,
        caterpillar: caterpillar_hex.to_string(),
        issuer: hex::encode(issuer.as_coer()),
        sent: now_unix(),
    });
    pool.save(now_unix())?;
    let answer = match client
        .request_tickets(pb::RequestTicketsRequest {
            butterfly_request: caterpillar.request().to_bytes().to_vec(),
            first_period: first,
            has_first_period: true,
            periods: n as u32,
        })
        .await
    {
        Ok(a) => a.into_inner(),
        Err(s) => {
            pool.remove_ticket_request(&caterpillar_hex);
            pool.save(now_unix())?;
            return Err(refused(s));
        }
    };
    let expected = n as u32 * profile.certificates_per_period;
    if answer.queued != expected || answer.first_period != first {
        bail!(
            "the registration authority queued {} tickets from period {}, expected {expected} from {first}",
            answer.queued,
            answer.first_period
        );
    }
    report.queued += answer.queued;
    report.calls += 1;
    Ok(())
}

/// Picks up tickets of earlier requests that have arrived, then requests
/// tickets so that the pool covers `periods` periods (counting the current
/// one), then downloads for up to `wait` whatever has arrived and adds it
/// to the pool. Periods of a pending request count as covered until its
/// tickets arrive or its periods are over; with `resend`, they are asked
/// for again (the registration authority's queue does not survive its
/// restart; the pseudonym CA issues each ticket once, to whichever request
/// comes first, and the pool keeps both keys). Saves after every step.
pub async fn request_tickets_into_pool(
    channel: Channel,
    root_der: &[u8],
    pool: &mut Pool,
    periods: u32,
    wait: Duration,
    resend: bool,
) -> Result<TicketReport> {
    let started = Instant::now();
    let mut client =
        V2xRegistrationClient::new(channel).max_decoding_message_size(MAX_TICKET_RESPONSE_BYTES);
    let info = client
        .get_ticket_profile(pb::GetTicketProfileRequest {})
        .await
        .map_err(refused)?
        .into_inner();
    let issuer = read_v2x_certificate(
        &info.pseudonym_ca_certificate,
        "the server's pseudonym CA certificate",
    )?;
    let profile = pool_profile(&info);
    pool.set_profile(profile.clone(), issuer.as_coer(), root_der)?;
    let mut report = TicketReport::default();
    if !pool.ticket_requests().is_empty() {
        download_into_pool(&mut client, pool, &mut report).await?;
    }
    let current = info.current_period;
    let horizon = current + u64::from(profile.max_periods_ahead) - 1;
    let wanted = current
        .saturating_add(u64::from(periods.max(1)) - 1)
        .min(horizon);
    let mut first = pool
        .covered_through()
        .map(|c| c + 1)
        .unwrap_or(current)
        .max(current);
    let per = u64::from(profile.max_periods_per_request);
    if resend {
        // Ask again for the periods of pending requests still awaiting
        // tickets; the earlier requests stay, so each ticket is opened
        // whichever request the pseudonym CA answered.
        let mut ranges: Vec<(u64, u64)> = pool
            .ticket_requests()
            .iter()
            .filter(|r| pool.awaited_in(r) > 0)
            .map(|r| (r.first_period.max(current), r.period_range().end))
            .filter(|(f, e)| f < e)
            .collect();
        ranges.sort_unstable();
        ranges.dedup();
        for (f, e) in ranges {
            send_request(&mut client, pool, &profile, &issuer, f, e - f, &mut report).await?;
            report.resent += 1;
        }
    }
    while first <= wanted {
        let n = (wanted - first + 1).min(per);
        send_request(&mut client, pool, &profile, &issuer, first, n, &mut report).await?;
        report.periods = Some((report.periods.map_or(first, |p| p.0), first + n - 1));
        first += n;
    }
    // Download until every pending request is answered or `wait` is over
    // (at least once after new requests).
    let deadline = Instant::now() + wait;
    let mut just_downloaded = report.downloads > 0 && report.calls == 0;
    while !pool.ticket_requests().is_empty() {
        if just_downloaded {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            tokio::time::sleep(left.min(Duration::from_millis(500))).await;
        }
        download_into_pool(&mut client, pool, &mut report).await?;
        just_downloaded = true;
    }
    report.millis = started.elapsed().as_millis();
    Ok(report)
}

/// Writes the current ticket (`ticket.oer`, COER as received), its private
/// key (`ticket.key`, PKCS#8 PEM) and the pseudonym CA certificate
/// (`issuer.oer`) into `dir`, each atomically and readable by the owner
/// only. Returns the ticket's HashedId8, hex.
pub fn export_coer(pool: &Pool, dir: &Path) -> Result<String> {
    let entry = pool
        .current_entry()
        .context("no current ticket; run `trustca pseudonym rotate`")?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ticket = entry.certificate_der()?;
    let key = entry.private_key_pkcs8()?;
    let key_pem = zeroize::Zeroizing::new(pem::encode(&pem::Pem::new("PRIVATE KEY", key.to_vec())));
    write_atomic(&dir.join(TICKET_KEY_FILE), key_pem.as_bytes())?;
    write_atomic(&dir.join(TICKET_FILE), &ticket)?;
    let issuer = pool.pseudonym_ca_der();
    if !issuer.is_empty() {
        write_atomic(&dir.join(ISSUER_FILE), &issuer)?;
    }
    Ok(entry.serial.clone())
}

/// The result of checking a ticket against a linkage CRL.
#[derive(Debug, Clone)]
pub struct TicketCheck {
    /// Whether an entry links the ticket.
    pub revoked: bool,
    /// The ticket's period (`iCert`).
    pub period: u64,
    /// The ticket's HashedId8, hex.
    pub hashed_id8: String,
    /// The list's number (`indexWithinI`).
    pub crl_number: u64,
    /// The list's `jmax` (tickets per period it revokes).
    pub jmax: u8,
    /// The list's `iRev` (the period its seeds are for).
    pub i_rev: u16,
    /// The list's series.
    pub crl_series: u16,
    /// Entries in the list.
    pub entries: usize,
    /// Whether the list is past its next update.
    pub stale: bool,
}

/// Checks a ticket against an IEEE 1609.2 linkage CRL (`SecuredCrl`): the
/// list's signature by the CRL signer it carries, which must be permitted
/// the series and name the pseudonym CA certificate `issuer`'s CRACA; the
/// ticket's signature by `issuer` and its CRL series; then whether an
/// entry's linkage values (for `j` below the list's `jmax`) match the
/// ticket's.
pub fn check_ticket_against_crl(
    ticket: &[u8],
    crl: &[u8],
    issuer: &[u8],
    now: i64,
) -> Result<TicketCheck> {
    let issuer = read_v2x_certificate(issuer, "the issuer")?;
    let ticket = Certificate::from_coer_in(CertProfile::Ieee1609Dot2, ticket)
        .map_err(|e| anyhow::anyhow!("the ticket is not an IEEE 1609.2 certificate (COER): {e}"))?;
    let list = LinkageCrl::from_bytes(crl).map_err(|e| anyhow::anyhow!("linkage CRL: {e}"))?;
    list.verify(&issuer)
        .map_err(|e| anyhow::anyhow!("the linkage CRL does not verify with the issuer: {e}"))?;
    ticket
        .verify_signed_by(Some(&issuer))
        .map_err(|e| anyhow::anyhow!("the ticket was not issued by the issuer: {e}"))?;
    let CertificateId::LinkageData(link) = &ticket.tbs().id else {
        bail!("the ticket carries no linkage data; a linkage CRL cannot revoke it");
    };
    if ticket.tbs().crl_series != list.crl_series {
        bail!(
            "the ticket is in CRL series {}, the list is series {}",
            ticket.tbs().crl_series,
            list.crl_series
        );
    }
    if ticket.tbs().craca_id != issuer.tbs().craca_id {
        bail!("the ticket names another CRACA than its issuer");
    }
    let revoked = list
        .revokes(&ticket)
        .map_err(|e| anyhow::anyhow!("linkage CRL: {e}"))?;
    Ok(TicketCheck {
        revoked,
        period: u64::from(link.i_cert),
        hashed_id8: hex::encode(ticket.hashed_id8()),
        crl_number: list.crl_number,
        jmax: list.jmax,
        i_rev: list.i_rev,
        crl_series: list.crl_series,
        entries: list.entries.len(),
        stale: now > list.next_update.to_unix(),
    })
}

/// Checks files: see [`check_ticket_against_crl`].
pub fn check_files(ticket: &Path, crl: &Path, issuer: &Path) -> Result<TicketCheck> {
    check_ticket_against_crl(
        &read_file(ticket)?,
        &read_file(crl)?,
        &read_file(issuer)?,
        now_unix(),
    )
}

/// Fetches the pseudonym CA's current linkage CRL (`V2xPseudonymCa`).
pub async fn fetch_linkage_crl(channel: Channel) -> Result<LinkageCrl> {
    let mut c =
        V2xPseudonymCaClient::new(channel).max_decoding_message_size(MAX_TICKET_RESPONSE_BYTES);
    let bytes = c
        .get_linkage_crl(pb::GetLinkageCrlRequest {})
        .await
        .map_err(refused)?
        .into_inner()
        .crl;
    LinkageCrl::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("the server sent a malformed linkage CRL: {e}"))
}
