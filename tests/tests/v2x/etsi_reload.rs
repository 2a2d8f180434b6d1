//! The ETSI authorization authority follows a policy reload like the SCMS
//! authorities (`ticket_reload.rs`): a new `v2x-tickets-etsi.toml` in the
//! CA's policies applies to the next ticket a car obtains after
//! `ReloadPolicy`, not to one before, without a restart; a file that
//! moves what issued tickets carry (the period clock), or grants what the
//! AA's certificate may not issue, refuses the reload in words and the
//! profile in force stays. A separated AA (`serve --etsi-role aa`) reads
//! its own file again on SIGHUP, with the same refusals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::etsi_http::enrolled_car;
use crate::etsi_roles::{Authority, EtsiCeremony};
use crate::etsi_serve::start_with_etsi;
use crate::etsi_vehicle::{Car, cli, json_of, register_args, s};
use crate::role_hangup::within;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_v2x::{CertProfile, Certificate};

/// The PSIDs of the one ticket in the pool that is not in `seen` (which
/// it joins).
fn newest_psids(car: &Car, seen: &mut HashSet<[u8; 8]>) -> Vec<u64> {
    let pool = car.open();
    let fresh: Vec<Certificate> = pool
        .entries()
        .iter()
        .map(|e| {
            Certificate::from_coer_in(CertProfile::EtsiTs103097, &e.certificate_der().unwrap())
                .unwrap()
        })
        .filter(|at| seen.insert(at.hashed_id8()))
        .collect();
    assert_eq!(fresh.len(), 1, "one new ticket");
    let mut psids: Vec<u64> = fresh[0]
        .tbs()
        .app_permissions
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .map(|p| p.psid)
        .collect();
    psids.sort_unstable();
    psids
}

/// A car registered for ETSI tickets: its pool key in `x`, its canonical
/// key registered at the running CA by its manufacturer.
async fn registered_car(ca: &TestCa, urn: &str, x: &Path) -> Car {
    std::fs::write(x.join("pool.key"), [0x6bu8; 32]).unwrap();
    let car = Car {
        pool: x.join("pool"),
        key: x.join("pool.key"),
    };
    car.make_canonical_key(urn, x).await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let (code, _, err) = cli(register_args(ca, x, urn, &acme, "acme")).await;
    assert_eq!(code, 0, "{err}");
    car
}

/// A car asking for one ETSI ticket at a time through the distribution
/// centre at `dc` (the root and the DC are kept in the pool after the
/// first request).
struct OneTicket<'a> {
    car: &'a Car,
    first: Option<[String; 4]>,
    seen: HashSet<[u8; 8]>,
}

impl<'a> OneTicket<'a> {
    fn new(car: &'a Car, dc: &str, root_oer: &Path) -> Self {
        let first = ["--dc", dc, "--etsi-root", &s(root_oer)].map(str::to_owned);
        Self {
            car,
            first: Some(first),
            seen: HashSet::new(),
        }
    }

    /// Obtains one more ticket; its PSIDs.
    async fn psids(&mut self) -> Vec<u64> {
        let mut args = self
            .car
            .args(&["pseudonym", "request", "--profile", "etsi"]);
        args.extend(self.first.take().into_iter().flatten());
        args.extend(["--tickets", "1", "--json"].map(String::from));
        let (code, out, err) = cli(args).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(json_of(&out)["tickets"], 1, "{out}");
        newest_psids(self.car, &mut self.seen)
    }
}

/// The shipped ETSI ticket profile without CPM.
fn without_cpm() -> String {
    let shipped = include_str!("../../../policies/v2x-tickets-etsi.toml");
    let without = shipped.split("# CPM (639").next().unwrap().to_owned();
    assert!(!without.contains("psid = 639"));
    without
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_etsi_ticket_profile_applies_to_the_next_ticket() {
    let (mut ca, urn, store) = enrolled_car("VIN0700").await;
    drop(store);
    let etsi = start_with_etsi(&mut ca, "127.0.0.1:0".parse().unwrap(), None).await;
    let work = tempfile::tempdir().unwrap();
    let x = work.path();
    let car = registered_car(&ca, &urn, x).await;
    let root_oer = ca.data().join("etsi/root.oer");
    let mut tickets = OneTicket::new(&car, &format!("http://{etsi}"), &root_oer);
    // The Lv.5 car's ticket carries CAM, DENM and CPM (639, from Lv.4).
    assert_eq!(tickets.psids().await, vec![36, 37, 639]);

    // The operator drops CPM from the tickets.
    let file = ca.data().join("policies/v2x-tickets-etsi.toml");
    let without_cpm = without_cpm();
    std::fs::write(&file, &without_cpm).unwrap();
    // Written, not yet reloaded: the profile in force still applies.
    assert_eq!(tickets.psids().await, vec![36, 37, 639]);

    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut trust = trust_client(&ca.url(), &operator).await;
    trust
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap();
    // No restart: the next ticket follows the file.
    assert_eq!(tickets.psids().await, vec![36, 37]);

    // Moving the period clock would change what issued tickets mean, and
    // a PSID the AA's certificate may not issue would be rejected by
    // every relying party: both reloads are refused in words.
    std::fs::write(
        &file,
        without_cpm.replace("period_hours = 168", "period_hours = 24"),
    )
    .unwrap();
    reload_refused(&mut trust, "v2x-tickets-etsi.toml").await;
    reload_refused(&mut trust, "period_hours cannot change").await;
    std::fs::write(
        &file,
        format!("{without_cpm}\n[[permissions]]\nmin_level = 2\npsid = 4242\n"),
    )
    .unwrap();
    reload_refused(&mut trust, "may not issue PSID 4242").await;
    // The profile in force stays: the one without CPM.
    assert_eq!(tickets.psids().await, vec![36, 37]);
}

/// A separated AA (`serve --etsi-role aa`, its own process and directory)
/// reads its ticket profile again on SIGHUP, as the CA's processes reload
/// their policies: the next ticket follows the new file without a
/// restart; a file that moves the period clock is refused on the next
/// signal, in words in its log, and the profile in force stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separated_aa_reloads_its_ticket_profile_on_sighup() {
    let (mut ca, urn, store) = enrolled_car("VIN0701").await;
    drop(store);
    let work = tempfile::tempdir().unwrap();
    let x = work.path();
    let ceremony = EtsiCeremony::run(x);
    // The AA's own policies (`DIR/policies`), starting from the shipped file.
    let file = ceremony.aa.path().join("policies/v2x-tickets-etsi.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let shipped = include_str!("../../../policies/v2x-tickets-etsi.toml");
    std::fs::write(&file, shipped).unwrap();
    ceremony.start_ca_with_ea(&mut ca).await;
    let car = registered_car(&ca, &urn, x).await;
    let aa = Authority::start("aa", ceremony.aa.path(), ceremony.aa_at, x.join("aa.log"));
    let dc = Authority::start("dc", ceremony.dc.path(), ceremony.dc_at, x.join("dc.log"));
    let mut tickets = OneTicket::new(&car, &ceremony.dc_url(), &ceremony.root_oer);
    assert_eq!(tickets.psids().await, vec![36, 37, 639], "{}", aa.log());

    // Written, not yet signalled: the profile in force still applies.
    let without_cpm = without_cpm();
    std::fs::write(&file, &without_cpm).unwrap();
    assert_eq!(tickets.psids().await, vec![36, 37, 639]);

    // SIGHUP: the next tickets follow the file, the process runs on.
    hangup(&aa.child);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tickets.psids().await != [36, 37] {
        assert!(
            Instant::now() < deadline,
            "the AA takes the new profile within 15 s of SIGHUP: {}",
            aa.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A file moving the period clock is refused on the next signal: the
    // refusal is logged in words and the profile in force stays.
    std::fs::write(
        &file,
        without_cpm.replace("period_hours = 168", "period_hours = 24"),
    )
    .unwrap();
    hangup(&aa.child);
    within("the AA logs the refused reload", || {
        let text = aa.log();
        async move {
            text.contains("ticket profile reload on SIGHUP refused")
                && text.contains("period_hours cannot change")
        }
    })
    .await;
    assert_eq!(tickets.psids().await, vec![36, 37]);
    drop((aa, dc));
    ca.stop().await;
}
