//! The console's systems page: Chromium shows each member's effective
//! level and cap path as `trustca system evaluate --json` gives them; CSV
//! export has one row per member.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use super::kit::*;
use crate::common::*;
use trustca_api::client::connect;
use trustca_proto::v1 as pb;
use trustca_proto::v1::systems_client::SystemsClient;

/// A Lv.5 hub that a Lv.2 plug may command, registered as `name`; the
/// plug's identity.
pub(crate) async fn linked_house(w: &World, name: &str) -> String {
    let (plug, _, _) = enroll_more(w, "PLUG-1", hems_lv5()).await;
    set_level(w, &plug.identity, 2).await;
    let mut systems = SystemsClient::new(connect(&w.ca.url(), &w.ops).await.unwrap());
    systems
        .register(pb::RegisterSystemRequest {
            name: name.into(),
            sector: "hems".into(),
            members: vec![w.device.identity.clone(), plug.identity.clone()],
            links: vec![pb::SystemLink {
                from: plug.identity.clone(),
                to: w.device.identity.clone(),
                operation: "demand-response".into(),
            }],
            reason: "house commissioned".into(),
        })
        .await
        .unwrap();
    plug.identity
}

/// `trustca system evaluate --json --name NAME` as the operator.
fn cli_evaluation(w: &World, name: &str) -> serde_json::Value {
    let args = client_args(&w.ca, w.curl.dir.path(), "ops", &w.ops);
    let out = Command::new(trustca_bin())
        .args(["system", "evaluate", "--json", "--name", name])
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_shows_systems_with_their_cap_paths_as_the_cli_does() {
    let w = world().await;
    let plug = linked_house(&w, "house-1").await;
    let cli = cli_evaluation(&w, "house-1");
    assert_eq!(cli["combined_level"], 2, "{cli}");

    // CSV export: one row per member, the hub's cap from the plug.
    let cookie = curl_console_cookie(&w);
    let (code, _, body) = w.curl.get(
        &format!("https://{}/console/systems?format=csv", w.web),
        None,
        &["-H", &cookie],
    );
    assert_eq!(code, 200);
    let csv = String::from_utf8(body).unwrap();
    let hub_row = csv
        .lines()
        .find(|l| l.contains(&format!("\"{}\"", w.device.identity)))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(hub_row.starts_with("\"house-1\",\"2\""), "{hub_row}");
    assert!(
        hub_row.contains(&format!("{plug} -[demand-response/")),
        "{hub_row}"
    );
    assert_eq!(csv.lines().count(), 3, "header and two members: {csv}");

    if !browser::available() {
        return;
    }
    let chrome = chromium_console(&w);
    chrome.click("a[href='/console/systems']");
    chrome.wait_for_url("/console/systems").unwrap();
    let combined = chrome
        .attribute("section[data-system='house-1'] .combined", "data-combined")
        .unwrap();
    assert_eq!(combined, cli["combined_level"].to_string());
    for m in cli["members"].as_array().unwrap() {
        let urn = m["identity"].as_str().unwrap();
        let row = format!("section[data-system='house-1'] tr[data-member='{urn}']");
        let shown = chrome.attribute(&row, "data-effective").unwrap();
        assert_eq!(shown, m["effective_level"].to_string(), "{urn}");
        let own = chrome.attribute(&row, "data-own").unwrap();
        assert_eq!(own, m["own_level"].to_string(), "{urn}");
        let path = chrome.text(&format!("{row} .cap-path")).unwrap();
        match m["cap"]["path"].as_array() {
            Some(hops) if !hops.is_empty() => {
                for hop in hops {
                    let op = hop["operation"].as_str().unwrap();
                    assert!(path.contains(&format!("-[{op}/")), "{path}");
                    assert!(path.contains(hop["from"].as_str().unwrap()), "{path}");
                }
            }
            _ => assert_eq!(path, "", "{urn} has no cap"),
        }
    }
    chrome.screenshot("console-systems");
}

/// The `system.reevaluated` notifications in `DATA/notifications.jsonl`.
fn system_notifications(w: &World) -> Vec<serde_json::Value> {
    std::fs::read_to_string(w.ca.data().join("notifications.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|n| n["event"] == "system.reevaluated")
        .collect()
}

/// `/console` as curl sees it with `cookie`.
fn overview(w: &World, cookie: &str) -> String {
    let (code, _, body) = w
        .curl
        .get(&format!("https://{}/console", w.web), None, &["-H", cookie]);
    assert_eq!(code, 200);
    String::from_utf8(body).unwrap()
}

/// Waits up to 20 s for `check`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "{what} within 20 s");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_downgrade_of_a_linked_device_is_notified_and_charted_over_time() {
    let w = world().await;
    let plug = linked_house(&w, "house-2").await;
    let cookie = curl_console_cookie(&w);
    let today = time::OffsetDateTime::now_utc().date();
    let today = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    let point = |label: &str, n: u64| {
        format!("data-day=\"{today}\" data-label=\"{label}\" data-count=\"{n}\"")
    };
    // The daily sample holds the Lv.5 hub and the Lv.2 plug, no Lv.1.
    eventually("the sample with the plug at Lv.2", || {
        overview(&w, &cookie).contains(&point("Lv.2", 1))
    });
    let no_lv1 = format!("data-day=\"{today}\" data-label=\"Lv.1\"");
    assert!(!overview(&w, &cookie).contains(&no_lv1));
    // The plug goes down to Lv.1: the hub it commands follows, and
    // subscribers hear of the system with the entry that caused it.
    set_level(&w, &plug, 1).await;
    let downgraded = || {
        system_notifications(&w)
            .into_iter()
            .find(|n| n["system"] == "house-2" && n["combined_level"] == 1)
    };
    eventually("the downgrade's notification", || downgraded().is_some());
    let n = downgraded().unwrap();
    assert_eq!(n["combined_before"], 2, "{n}");
    let changed: Vec<&str> = n["members_changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["identity"].as_str().unwrap())
        .collect();
    assert!(changed.contains(&plug.as_str()), "{n}");
    assert!(
        n["caused_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"].as_str().unwrap().starts_with("trust.")),
        "{n}"
    );
    // The series: today's point moved from Lv.2 to Lv.1.
    eventually("the sample with the plug at Lv.1", || {
        let page = overview(&w, &cookie);
        page.contains(&point("Lv.1", 1))
            && !page.contains(&format!("data-day=\"{today}\" data-label=\"Lv.2\""))
    });
    // A change that moves no level is not notified.
    let count = system_notifications(&w).len();
    enroll_more(&w, "SN-0009", hems_lv5()).await;
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(system_notifications(&w).len(), count);
}

#[tokio::test(flavor = "multi_thread")]
async fn head_requests_answer_headers_only() {
    let w = world().await;
    let (url, _) = label_url(&w);
    let (code, headers, body) = w.curl.get(&url, None, &["-I"]);
    assert_eq!(code, 200);
    assert!(headers.contains("content-type: text/html"), "{headers}");
    // With -I curl writes the headers where the body would go.
    assert!(!String::from_utf8_lossy(&body).contains("<html"));
    let cookie = curl_console_cookie(&w);
    let (code, headers, body) = w.curl.get(
        &format!("https://{}/console/systems", w.web),
        None,
        &["-I", "-H", &cookie],
    );
    assert_eq!(code, 200);
    assert!(headers.contains("cache-control: no-store"), "{headers}");
    assert!(!String::from_utf8_lossy(&body).contains("<html"));
}
