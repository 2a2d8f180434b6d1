//! A policy reload reaches the enrollment engine without a restart: the
//! server reads the policies in force on every request (one value swapped
//! by `ReloadPolicy`), not the version it started with.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Days from now to the end of the device certificate's validity.
fn days_left(der: &[u8]) -> i64 {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    let left = cert.validity().not_after.to_datetime() - time::OffsetDateTime::now_utc();
    left.whole_days()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_sector_profile_is_used_by_the_next_enrollment() {
    let ca = TestCa::start().await;
    let acme = ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let operator = ca.credential(CertificateKind::Operator, "ops", &["hems"]);
    let mut enroll = ca.client(&acme).await;
    let root = ca.root_pem();
    let before = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "R1",
        "1.0.0",
        hems_lv5(),
    )
    .await;
    assert!(
        days_left(&before.chain[0]) > 60,
        "the shipped hems validity"
    );

    // The operator shortens hems certificates to 30 days and reloads.
    let hems = ca.data().join("policies/sectors/hems.toml");
    let text = std::fs::read_to_string(&hems).unwrap();
    assert!(text.contains("validity_days = 3650"));
    std::fs::write(
        &hems,
        text.replace("validity_days = 3650", "validity_days = 30"),
    )
    .unwrap();
    // Written, not yet reloaded: the version in force still applies.
    let unchanged = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "R2",
        "1.0.0",
        hems_lv5(),
    )
    .await;
    assert!(days_left(&unchanged.chain[0]) > 60);
    trust_client(&ca.url(), &operator)
        .await
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap();

    // The same connection, no restart: the new profile is in force.
    let after = enroll_device(
        &mut enroll,
        &root,
        "hems",
        "Acme",
        "HB-1",
        "R3",
        "1.0.0",
        hems_lv5(),
    )
    .await;
    let left = days_left(&after.chain[0]);
    assert!(
        (29..=30).contains(&left),
        "{left} days left after the reload"
    );
}
