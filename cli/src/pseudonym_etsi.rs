//! The vehicle as an EU C-ITS station (ETSI TS 102 941,
//! `docs/v2x-etsi.md`): `trustca pseudonym canonical-key` makes the
//! station's canonical key in its pool (only the public key leaves, for
//! the manufacturer to register), `pseudonym request --profile etsi`
//! enrols with the enrolment authority (the canonical key the first time,
//! the current enrolment credential after) and fills the pool with TS 103
//! 097 authorization tickets from the authorization authority, and
//! `pseudonym check --profile etsi` reads the root's CTL and CRL. The
//! codec is `trustca_etsi::station`; the transport `crate::etsi_transport`.
//! Every key is made here and kept sealed in the pool; a refused request
//! leaves the pool as it was.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::json;
use trustca_etsi::station::{
    EnrolAs, authorization_request, authorization_response, enrolment_request, enrolment_response,
};
use trustca_v2x::ts102941::{AuthorizationResponseCode, EnrolmentResponseCode};
use trustca_v2x::{Certificate, CertificateId, IssuerIdentifier, PublicKeyP256};
use trustca_vehicle::{
    EnrolmentCredential, EtsiStation, Pool, PoolEntry, PoolProfile, TicketKind, new_scalar,
};
use zeroize::Zeroizing;

use crate::cli::print_json;
use crate::etsi_transport::{TrustLists, exchange, fetch_lists, read_etsi_certificate};
use crate::pseudonym_cmd::{PoolArgs, status_json};
use crate::ticket_cmd::ticket_validity;

/// Re-enrol when the enrolment credential ends within this many seconds.
const REENROL_MARGIN: i64 = 7 * 24 * 3600;
/// Most tickets one `request` asks for (one authorization request each).
const MAX_TICKETS: u32 = 100;

/// What the vehicle trusts and where it reads the lists: given once, kept
/// in the pool.
#[derive(Debug, Args, Default)]
pub struct EtsiTrustArgs {
    /// The distribution centre's base URL (http://HOST:PORT), which serves
    /// the root's CTL and CRL; kept in the pool.
    #[arg(long, value_name = "URL")]
    pub dc: Option<String>,
    /// The EU root CA certificate the vehicle trusts (TS 103 097, COER,
    /// e.g. DATA/etsi/root.oer); kept in the pool.
    #[arg(long, value_name = "ROOT.oer")]
    pub etsi_root: Option<PathBuf>,
    /// A trust list manager's certificate (COER): its ECTL must then name
    /// the root; kept in the pool.
    #[arg(long, value_name = "TLM.oer")]
    pub etsi_tlm: Option<PathBuf>,
}

/// `trustca pseudonym canonical-key`.
#[derive(Debug, Args)]
pub struct CanonicalKeyArgs {
    #[command(flatten)]
    pub pool: PoolArgs,
    /// The station's canonical identifier, its device URN (needed the
    /// first time, when the key is made).
    #[arg(long, value_name = "URN")]
    pub its_id: Option<String>,
    /// Write the canonical public key here (PEM), for `trustca etsi
    /// register-key`.
    #[arg(long, value_name = "PEM")]
    pub out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn signer(pkcs8: &[u8]) -> Result<EcdsaKeyPair> {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8,
        &SystemRandom::new(),
    )
    .map_err(|_| anyhow!("a key in the pool does not load"))
}

/// A fresh key: its scalar (secret) and its signer.
fn fresh_key() -> Result<(Zeroizing<[u8; 32]>, EcdsaKeyPair)> {
    let scalar = new_scalar()?;
    let key = trustca_pseudonym::P256PrivateKey::from_bytes(&scalar)
        .map_err(|_| anyhow!("the new key is not a P-256 scalar"))?;
    Ok((scalar, signer(&key.to_pkcs8_der())?))
}

/// `trustca pseudonym canonical-key`: makes the key once, shows it after.
pub fn canonical_key(a: CanonicalKeyArgs) -> Result<ExitCode> {
    let secret = a.pool.secret()?;
    let mut pool = Pool::open_or_create(&a.pool.pool, &secret)?;
    let made = match (pool.etsi_station(), &a.its_id) {
        (Some(s), Some(id)) if &s.its_id != id => bail!(
            "this pool's station is {}, not {id}; its canonical key is never replaced",
            s.its_id
        ),
        (Some(_), _) => false,
        (None, None) => bail!("this pool has no canonical key yet: pass --its-id URN to make one"),
        (None, Some(id)) => {
            trustca_model::DeviceIdentity::from_urn(id)
                .map_err(|e| anyhow!("--its-id {id:?} is not a device URN: {e}"))?;
            pool.set_etsi_station(EtsiStation::generate(id)?)?;
            pool.save(now_unix())?;
            true
        }
    };
    let station = pool.etsi_station().context("the station is missing")?;
    let spki = station.canonical_public_spki()?;
    let pem_text = pem::encode(&pem::Pem::new("PUBLIC KEY", spki.clone()));
    if let Some(out) = &a.out {
        std::fs::write(out, &pem_text)
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    // The last 65 octets of the SPKI are the uncompressed point.
    let point = PublicKeyP256::from_sec1(&spki[spki.len().saturating_sub(65)..])
        .map_err(|e| anyhow!("the canonical key does not decode: {e}"))?;
    let compressed = hex::encode(point.compressed());
    if a.json {
        print_json(&json!({
            "its_id": station.its_id,
            "canonical_key": compressed,
            "made": made,
            "out": a.out,
        }));
    } else {
        println!(
            "{} the canonical key {compressed} of {}{}",
            if made { "made" } else { "holds" },
            station.its_id,
            a.out
                .as_ref()
                .map(|o| format!(
                    "; public key written to {} for `trustca etsi register-key`",
                    o.display()
                ))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The pool's station with the trust anchors of `args` applied (each kept
/// once given), and the root and TLM certificates.
fn station_with(
    pool: &Pool,
    args: &EtsiTrustArgs,
) -> Result<(EtsiStation, Certificate, Option<Certificate>)> {
    let mut station = pool.etsi_station().cloned().context(
        "this pool has no EU station: make its key with `trustca pseudonym canonical-key --its-id URN`, and have the manufacturer register it (`trustca etsi register-key`)",
    )?;
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
    if let Some(p) = &args.etsi_root {
        station.root = hex::encode(read(p)?);
    }
    if let Some(p) = &args.etsi_tlm {
        station.tlm = hex::encode(read(p)?);
    }
    if let Some(dc) = &args.dc {
        station.dc = dc.clone();
    }
    if station.root.is_empty() {
        bail!("no root certificate: pass --etsi-root ROOT.oer once");
    }
    if station.dc.is_empty() {
        bail!("no distribution centre: pass --dc URL once");
    }
    let root = read_etsi_certificate(&EtsiStation::decode(&station.root)?, "the root")?;
    let tlm = match station.tlm.is_empty() {
        true => None,
        false => Some(read_etsi_certificate(
            &EtsiStation::decode(&station.tlm)?,
            "the trust list manager",
        )?),
    };
    Ok((station, root, tlm))
}

fn code_name<C: std::fmt::Debug + Copy>(code: C, value: u8) -> String {
    format!("{} ({value})", format!("{code:?}").to_lowercase())
}

/// What `request --profile etsi` did.
struct Obtained {
    enrolment: &'static str,
    ea: [u8; 8],
    aa: [u8; 8],
    tickets: Vec<PoolEntry>,
    level: Option<u8>,
}

/// Enrols when needed: the held credential if it is current and from an
/// EA the lists still trust; re-enrolment with it when it ends soon or
/// `force`; the canonical key otherwise. Returns the credential in use.
fn enrol(
    station: &mut EtsiStation,
    lists: &TrustLists,
    force: bool,
    now: i64,
) -> Result<(&'static str, Certificate)> {
    let (ea, _) = lists.usable()?;
    let held = match &station.enrolment {
        Some(e) => Some((
            read_etsi_certificate(&EtsiStation::decode(&e.certificate)?, "the credential")?,
            signer(&e.key_pkcs8()?)?,
        )),
        None => None,
    };
    let usable = held.filter(|(ec, _)| {
        let (from, until) = ticket_validity(ec);
        from <= now
            && now < until
            && ec.issuer() == IssuerIdentifier::Sha256AndDigest(ea.certificate.hashed_id8())
    });
    if let Some((ec, _)) = &usable {
        let (_, until) = ticket_validity(ec);
        if !force && until - now > REENROL_MARGIN {
            return Ok(("kept", ec.clone()));
        }
    }
    let (scalar, new_key) = fresh_key()?;
    let canonical = signer(&station.canonical_key_pkcs8()?)?;
    let (how, who) = match &usable {
        Some((ec, key)) => ("re-enrolled", EnrolAs::Credential { ec, key }),
        None => (
            "enrolled",
            EnrolAs::Canonical {
                its_id: station.its_id.as_bytes(),
                key: &canonical,
            },
        ),
    };
    let url = ea
        .access_point
        .as_deref()
        .context("the CTL gives no station access point for the enrolment authority")?;
    let pending = enrolment_request(who, &new_key, vec![], &ea.certificate, now)?;
    let answer = exchange(url, Some(&pending.message))?;
    let response = enrolment_response(&pending, &answer, &ea.certificate)
        .map_err(|e| anyhow!("the enrolment authority's answer does not open: {e}"))?;
    let ec = match (response.response_code, response.certificate) {
        (EnrolmentResponseCode::Ok, Some(ec)) => ec,
        (code, _) => bail!(
            "the enrolment authority refused the {}: {}",
            if how == "enrolled" {
                "enrolment"
            } else {
                "re-enrolment"
            },
            code_name(code, code.value())
        ),
    };
    ec.verify_signed_by(Some(&ea.certificate))
        .map_err(|e| anyhow!("the enrolment credential does not verify with the EA: {e}"))?;
    if ec.tbs().verification_key.compressed()
        != PublicKeyP256::from_sec1(&trustca_v2x::V2xSigner::public_key_sec1(&new_key))?
            .compressed()
    {
        bail!("the enrolment credential is for another key");
    }
    station.enrolment = Some(EnrolmentCredential::new(ec.as_coer(), &scalar));
    Ok((how, ec))
}

/// Asks the AA for `count` tickets, one authorization request each, every
/// ticket checked (issued by the AA, for the key made here, `id` none).
fn authorize(
    station: &EtsiStation,
    ec: &Certificate,
    lists: &TrustLists,
    count: u32,
    now: i64,
) -> Result<Vec<(Certificate, Zeroizing<[u8; 32]>)>> {
    let (ea, aa) = lists.usable()?;
    let url = aa
        .access_point
        .as_deref()
        .context("the CTL gives no access point for the authorization authority")?;
    let ec_key = signer(
        &station
            .enrolment
            .as_ref()
            .context("not enrolled")?
            .key_pkcs8()?,
    )?;
    let mut out = Vec::new();
    for _ in 0..count {
        let (scalar, key) = fresh_key()?;
        let public = PublicKeyP256::from_sec1(&trustca_v2x::V2xSigner::public_key_sec1(&key))?;
        let pending = authorization_request(
            public,
            vec![],
            ec,
            &ec_key,
            &ea.certificate,
            &aa.certificate,
            now,
        )?;
        let answer = exchange(url, Some(&pending.message))?;
        let response = authorization_response(&pending, &answer, &aa.certificate)
            .map_err(|e| anyhow!("the authorization authority's answer does not open: {e}"))?;
        let at = match (response.response_code, response.certificate) {
            (AuthorizationResponseCode::Ok, Some(at)) => at,
            (code, _) => bail!(
                "the authorization authority refused the ticket: {}",
                code_name(code, code.value())
            ),
        };
        at.verify_signed_by(Some(&aa.certificate))
            .map_err(|e| anyhow!("the ticket does not verify with the AA: {e}"))?;
        if at.tbs().verification_key.compressed() != public.compressed()
            || at.tbs().id != CertificateId::None
        {
            bail!("the authorization authority sent a ticket for another key or with an id");
        }
        out.push((at, scalar));
    }
    Ok(out)
}

/// The pool's clock for ETSI tickets. A TS 103 097 ticket names no
/// period, and its start may be cut to its AA certificate's, so the clock
/// follows the tickets' end: tickets of one AA period end together, and a
/// period of `period_hours` ends at each of those ends (the overlap after
/// the AA's period end falls inside the ticket's own validity).
fn etsi_profile(
    held: Option<&PoolProfile>,
    first: &Certificate,
    sector: &str,
    period_hours: u32,
    per_period: u32,
) -> Result<PoolProfile> {
    if let Some(p) = held.filter(|p| p.kind == TicketKind::Etsi) {
        return Ok(PoolProfile {
            certificates_per_period: p.certificates_per_period.max(per_period),
            ..p.clone()
        });
    }
    if period_hours == 0 || period_hours > 24 * 365 {
        bail!("--period-hours must be 1 to 8760");
    }
    let period_seconds = u64::from(period_hours) * 3600;
    let (_, end) = ticket_validity(first);
    Ok(PoolProfile {
        kind: TicketKind::Etsi,
        sector: sector.to_owned(),
        policy_version: TicketKind::Etsi.as_str().into(),
        // Two periods back: the first tickets are of period 1, and now is
        // never before the epoch.
        epoch: end - 2 * period_seconds as i64,
        period_seconds,
        certificates_per_period: per_period.max(1),
        overlap_seconds: 0,
        max_periods_ahead: 1,
        max_periods_per_request: 1,
        permissions: first
            .tbs()
            .app_permissions
            .iter()
            .flatten()
            .map(|p| p.psid.to_string())
            .collect(),
    })
}

/// The arguments of `request --profile etsi`.
#[derive(Debug)]
pub struct EtsiRequest<'a> {
    /// The pool.
    pub pool: &'a PoolArgs,
    /// Trust anchors and the distribution centre.
    pub trust: &'a EtsiTrustArgs,
    /// Tickets to obtain.
    pub tickets: u32,
    /// The AA's period length in hours.
    pub period_hours: u32,
    /// Re-enrol even when the credential is far from its end.
    pub re_enrol: bool,
    /// Print JSON.
    pub json: bool,
}

/// `trustca pseudonym request --profile etsi`.
pub fn request(a: EtsiRequest<'_>) -> Result<ExitCode> {
    if a.tickets == 0 || a.tickets > MAX_TICKETS {
        bail!("--tickets must be 1 to {MAX_TICKETS}");
    }
    let secret = a.pool.secret()?;
    let mut pool = Pool::open(&a.pool.pool, &secret)?;
    let (mut station, root, tlm) = station_with(&pool, a.trust)?;
    let now = now_unix();
    let started = std::time::Instant::now();
    let lists = fetch_lists(&station.dc, &root, tlm.as_ref(), now)?;
    let (how, ec) = enrol(&mut station, &lists, a.re_enrol, now)?;
    let granted = authorize(&station, &ec, &lists, a.tickets, now)?;
    let (ea, aa) = lists.usable()?;
    let obtained = Obtained {
        enrolment: how,
        ea: ea.certificate.hashed_id8(),
        aa: aa.certificate.hashed_id8(),
        level: ec.tbs().assurance_level.and_then(|l| l.trust_level()),
        tickets: Vec::new(),
    };
    // Nothing is written before every exchange has succeeded.
    let sector = trustca_model::DeviceIdentity::from_urn(&station.its_id)
        .map_err(|e| anyhow!("the station's URN does not parse: {e}"))?
        .sector;
    let first = &granted.first().context("no ticket")?.0;
    let profile = etsi_profile(
        pool.profile(),
        first,
        &sector.to_string(),
        a.period_hours,
        a.tickets,
    )?;
    let clock = profile.clone();
    pool.set_profile(profile, aa.certificate.as_coer(), b"")?;
    // The AA issues for its current period only: a top-up is due when the
    // next period begins, not ahead of it.
    pool.set_topup_margin(1);
    pool.set_etsi_station(station)?;
    let mut obtained = obtained;
    for (at, scalar) in &granted {
        let (not_before, not_after) = ticket_validity(at);
        let period = clock.period_at(not_after - 1);
        let index = (pool.entries().iter().filter(|e| e.period == period).count()
            + obtained
                .tickets
                .iter()
                .filter(|e| e.period == period)
                .count()) as u32;
        obtained.tickets.push(PoolEntry {
            period,
            index,
            certificate: hex::encode(at.as_coer()),
            key: hex::encode(scalar.as_ref()),
            serial: hex::encode(at.hashed_id8()),
            not_before,
            not_after,
            used: false,
            kind: TicketKind::Etsi,
        });
    }
    let added = pool.add(std::mem::take(&mut obtained.tickets));
    if pool.current_entry().is_none() {
        pool.rotate(now, false)?;
    }
    pool.save(now)?;
    report(
        &a,
        &pool,
        &obtained,
        added,
        started.elapsed().as_millis(),
        now,
    );
    Ok(ExitCode::SUCCESS)
}

fn report(a: &EtsiRequest<'_>, pool: &Pool, o: &Obtained, added: usize, millis: u128, now: i64) {
    let s = status_json(&pool.status(now), pool.profile());
    if a.json {
        print_json(&json!({
            "profile": TicketKind::Etsi.as_str(),
            "enrolment": o.enrolment,
            "ea": hex::encode(o.ea),
            "aa": hex::encode(o.aa),
            "trust_level": o.level,
            "tickets": added,
            "millis": millis as u64,
            "status": s,
        }));
    } else {
        println!(
            "{} with enrolment authority {} (trust level {})",
            o.enrolment,
            hex::encode(o.ea),
            o.level.map_or("-".into(), |l| l.to_string())
        );
        println!(
            "received {added} TS 103 097 ticket(s) from authorization authority {} in {millis} ms",
            hex::encode(o.aa)
        );
        println!(
            "pool {}: {} tickets, next top-up {}",
            a.pool.pool.display(),
            s["certificates"],
            s["next_topup"].as_str().unwrap_or("-")
        );
    }
}

/// The issuer's HashedId8 of a certificate (zeros when self-signed).
fn issuer_of(c: &Certificate) -> [u8; 8] {
    match c.issuer() {
        IssuerIdentifier::Sha256AndDigest(id) => id,
        IssuerIdentifier::SelfSigned => [0; 8],
    }
}

/// Whether the lists name the authority `id`, and revoke it.
fn listed_state(lists: &TrustLists, id: [u8; 8]) -> &'static str {
    match lists.find(id) {
        None => "not on the CTL",
        Some(l) if l.revoked => "revoked",
        Some(_) => "listed",
    }
}

/// Every ticket of the pool against the lists, given the credential's
/// EA state: one JSON row each, and whether all are valid.
fn ticket_rows(
    pool: &Pool,
    lists: &TrustLists,
    ea_state: Option<&str>,
    now: i64,
) -> Result<(Vec<serde_json::Value>, bool)> {
    let mut rows = Vec::new();
    let mut all_valid = true;
    for e in pool.entries() {
        let aa = issuer_of(&read_etsi_certificate(&e.certificate_der()?, "a ticket")?);
        let aa_state = listed_state(lists, aa);
        let verdict = match ea_state {
            _ if aa_state != "listed" => format!("AA {aa_state}"),
            Some(s) if s != "listed" => format!("EA {s}"),
            _ if e.not_after < now => "expired".into(),
            _ => "valid".into(),
        };
        all_valid &= verdict == "valid";
        rows.push(json!({
            "ticket": e.serial,
            "profile": e.kind.as_str(),
            "period": e.period,
            "index": e.index,
            "not_after": crate::show::unix(e.not_after),
            "aa": hex::encode(aa),
            "aa_status": aa_state,
            "verdict": verdict,
        }));
    }
    Ok((rows, all_valid))
}

/// `trustca pseudonym check --profile etsi`: the lists verified, then per
/// ticket whether its AA (and the credential's EA) are on the CTL and not
/// on the CRL. Exit 0 when every ticket's authorities are, 3 otherwise.
pub fn check(pool: &PoolArgs, trust: &EtsiTrustArgs, json: bool) -> Result<ExitCode> {
    let secret = pool.secret()?;
    let mut opened = Pool::open(&pool.pool, &secret)?;
    let (station, root, tlm) = station_with(&opened, trust)?;
    let now = now_unix();
    let lists = fetch_lists(&station.dc, &root, tlm.as_ref(), now)?;
    let ea = match &station.enrolment {
        Some(e) => Some(issuer_of(&read_etsi_certificate(
            &EtsiStation::decode(&e.certificate)?,
            "the credential",
        )?)),
        None => None,
    };
    let ea_state = ea.map(|id| listed_state(&lists, id));
    let (rows, all_valid) = ticket_rows(&opened, &lists, ea_state, now)?;
    let ok = all_valid && ea_state.is_none_or(|s| s == "listed");
    // Anchors given now are kept once their lists have verified.
    if trust.dc.is_some() || trust.etsi_root.is_some() || trust.etsi_tlm.is_some() {
        opened.set_etsi_station(station)?;
        opened.save(now)?;
    }
    let report = json!({
        "ok": ok,
        "lists": {
            "root": hex::encode(root.hashed_id8()),
            "ctl_sequence": lists.ctl.sequence,
            "ctl_next_update": crate::show::unix(lists.ctl.next_update.to_unix()),
            "crl_entries": lists.crl.entries.len(),
            "crl_next_update": crate::show::unix(lists.crl.next_update.to_unix()),
            "ectl_checked": lists.ectl_checked,
        },
        "ea": ea.map(hex::encode),
        "ea_status": ea_state,
        "tickets": rows,
    });
    if json {
        print_json(&report);
    } else {
        print_check(&report);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::pseudonym_cmd::EXIT_REVOKED)
    })
}

/// `check`'s report for people: the lists, the credential's EA, a table.
fn print_check(r: &serde_json::Value) {
    let text = |v: &serde_json::Value| v.as_str().map_or(v.to_string(), str::to_owned);
    let l = &r["lists"];
    println!(
        "CTL #{} and CRL ({} entries) of root {} verified{}; next updates {} / {}",
        l["ctl_sequence"],
        l["crl_entries"],
        text(&l["root"]),
        if l["ectl_checked"] == true {
            ", root on the ECTL"
        } else {
            ""
        },
        text(&l["ctl_next_update"]),
        text(&l["crl_next_update"]),
    );
    if r["ea"].is_string() {
        println!(
            "enrolment credential from EA {}: {}",
            text(&r["ea"]),
            text(&r["ea_status"])
        );
    }
    let columns = [
        ("TICKET", "ticket"),
        ("PERIOD", "period"),
        ("#", "index"),
        ("NOT AFTER", "not_after"),
        ("AA", "aa"),
        ("AA STATUS", "aa_status"),
        ("VERDICT", "verdict"),
    ];
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table.set_header(columns.map(|(h, _)| h));
    let rows = r["tickets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for row in rows {
        table.add_row(columns.map(|(_, k)| text(&row[k])));
    }
    println!("{table}");
    if rows.is_empty() {
        println!("the pool holds no tickets");
    }
}
