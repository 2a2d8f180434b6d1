//! The ETSI authorization authority follows a policy reload like the SCMS
//! authorities (`ticket_reload.rs`): a new `v2x-tickets-etsi.toml` in the
//! CA's policies applies to the next ticket a car obtains after
//! `ReloadPolicy`, not to one before, without a restart; a file that
//! moves what issued tickets carry (the period clock), or grants what the
//! AA's certificate may not issue, refuses the reload in words and the
//! profile in force stays.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::etsi_http::enrolled_car;
use crate::etsi_serve::start_with_etsi;
use crate::etsi_vehicle::{Car, cli, json_of, register_args, s};

use std::collections::HashSet;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_etsi_ticket_profile_applies_to_the_next_ticket() {
    let (mut ca, urn, store) = enrolled_car("VIN0700").await;
    drop(store);
    let etsi = start_with_etsi(&mut ca, "127.0.0.1:0".parse().unwrap(), None).await;
    let work = tempfile::tempdir().unwrap();
    let x = work.path();
    std::fs::write(x.join("pool.key"), [0x6bu8; 32]).unwrap();
    let car = Car {
        pool: x.join("pool"),
        key: x.join("pool.key"),
    };
    car.make_canonical_key(&urn, x).await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["automotive"]);
    let (code, _, err) = cli(register_args(&ca, x, &urn, &acme, "acme")).await;
    assert_eq!(code, 0, "{err}");
    let root_oer = s(&ca.data().join("etsi/root.oer"));
    let dc = format!("http://{etsi}");
    let mut first = Some(vec!["--dc", dc.as_str(), "--etsi-root", root_oer.as_str()]);
    let mut seen = HashSet::new();
    let mut one_ticket = async || {
        let mut args = car.args(&["pseudonym", "request", "--profile", "etsi"]);
        // The root and DC are kept in the pool after the first request.
        args.extend(
            first
                .take()
                .unwrap_or_default()
                .iter()
                .map(|a| (*a).to_owned()),
        );
        args.extend(["--tickets", "1", "--json"].map(String::from));
        let (code, out, err) = cli(args).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(json_of(&out)["tickets"], 1, "{out}");
        newest_psids(&car, &mut seen)
    };
    // The Lv.5 car's ticket carries CAM, DENM and CPM (639, from Lv.4).
    assert_eq!(one_ticket().await, vec![36, 37, 639]);

    // The operator drops CPM from the tickets.
    let file = ca.data().join("policies/v2x-tickets-etsi.toml");
    let shipped = include_str!("../../../policies/v2x-tickets-etsi.toml");
    let without_cpm = shipped.split("# CPM (639").next().unwrap().to_owned();
    assert!(!without_cpm.contains("psid = 639"));
    std::fs::write(&file, &without_cpm).unwrap();
    // Written, not yet reloaded: the profile in force still applies.
    assert_eq!(one_ticket().await, vec![36, 37, 639]);

    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut trust = trust_client(&ca.url(), &operator).await;
    trust
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap();
    // No restart: the next ticket follows the file.
    assert_eq!(one_ticket().await, vec![36, 37]);

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
    assert_eq!(one_ticket().await, vec![36, 37]);
}
