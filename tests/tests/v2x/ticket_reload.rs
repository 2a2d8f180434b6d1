//! The V2X authorities follow a policy reload: a new `v2x-tickets.toml`
//! applies to the next ticket request after `ReloadPolicy`, not to one
//! before, on the same connection and without a restart; a reload that
//! moves what issued tickets carry (the period clock), or grants what the
//! pseudonym CA may not issue, is refused and the profile in force stays.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::separated::ticket_request;
use common::*;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;
use trustca_pseudonym::Caterpillar;

use tonic::transport::Channel;
use trustca_proto::v1::v2x_registration_client::V2xRegistrationClient;

use super::tickets::{enroll_lv5_car, registration, serve};

/// The ticket profile the registration authority announces now.
pub(crate) async fn profile(ra: &mut V2xRegistrationClient<Channel>) -> pb::TicketProfileInfo {
    ra.get_ticket_profile(pb::GetTicketProfileRequest {})
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_ticket_profile_applies_to_the_next_request() {
    let mut ca = TestCa::init();
    serve(&mut ca).await;
    let url = ca.url();
    let car = enroll_lv5_car(&ca, "VIN-RELOAD-1").await;
    let operator = ca.credential(CertificateKind::Operator, "ops", &["automotive"]);
    let mut ra = registration(&url, &car.creds).await;
    let current = profile(&mut ra).await.current_period;
    let cat = Caterpillar::generate().unwrap();
    let queued = |r: pb::RequestTicketsResponse| r.queued;

    // The operator lowers the tickets per period from 20 to 5.
    let file = ca.data().join("policies/v2x-tickets.toml");
    let shipped = std::fs::read_to_string(&file).unwrap();
    assert!(shipped.contains("certificates_per_period = 20"));
    std::fs::write(
        &file,
        shipped.replace(
            "certificates_per_period = 20",
            "certificates_per_period = 5",
        ),
    )
    .unwrap();
    // Written, not yet reloaded: the profile in force still applies.
    let before = ra
        .request_tickets(ticket_request(&cat, Some(current), 1))
        .await;
    assert_eq!(queued(before.unwrap().into_inner()), 20);
    assert_eq!(profile(&mut ra).await.certificates_per_period, 20);

    let mut trust = trust_client(&url, &operator).await;
    trust
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap();
    // The same connection, no restart: the next request follows the file.
    assert_eq!(profile(&mut ra).await.certificates_per_period, 5);
    let after = ra
        .request_tickets(ticket_request(&cat, Some(current + 1), 1))
        .await;
    assert_eq!(queued(after.unwrap().into_inner()), 5);

    // Moving the period clock would change what issued tickets mean: the
    // reload is refused in words and the profile in force stays.
    let lowered = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        lowered.replace("period_hours = 168", "period_hours = 24"),
    )
    .unwrap();
    reload_refused(&mut trust, "period_hours cannot change").await;
    // So is a permission the pseudonym CA's certificate may not issue:
    // such tickets would be rejected by every relying party.
    std::fs::write(
        &file,
        format!("{lowered}\n[[permissions]]\nmin_level = 2\npsid = 4242\n"),
    )
    .unwrap();
    reload_refused(&mut trust, "may not issue PSID 4242").await;
    let kept = profile(&mut ra).await;
    assert_eq!(kept.certificates_per_period, 5);
    assert!(kept.permissions.iter().all(|p| p.psid != 4242));
    let still = ra
        .request_tickets(ticket_request(&cat, Some(current + 2), 1))
        .await;
    assert_eq!(queued(still.unwrap().into_inner()), 5);
}
