//! The console: Chromium signs in with a link from `trustca web login` and
//! checks the chart, a list and both consistency checks; curl checks the
//! sign-in, CSRF refusals, methods and CSV.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::kit::*;
use crate::common::*;
use trustca_model::CertificateKind;

#[tokio::test(flavor = "multi_thread")]
async fn chromium_signs_into_the_console_and_sees_what_the_store_holds() {
    if !browser::available() {
        return;
    }
    let w = world().await;
    let (_, l2, s2) = enroll_more(&w, "SN-0002", hems_lv5()).await;
    let basic = vec![evidence("secure-update", "", "true", "")];
    let (_, l3, s3) = enroll_more(&w, "SN-0003", basic).await;
    // The first device is revoked with a hostile note; GetTrust says so.
    let hostile = "<script>document.title='pwned'</script>";
    revoke_noting(&w, hostile).await;
    let mut expected = std::collections::BTreeMap::<String, u64>::new();
    for (level, status) in [(l2, s2), (l3, s3)] {
        assert_eq!(status, "active");
        *expected.entry(format!("Lv.{level}")).or_default() += 1;
    }
    *expected.entry("revoked".into()).or_default() += 1;

    let chrome = chromium_console(&w);
    assert!(chrome.text("#who").unwrap().contains("grid-ops"));
    for bar in [
        "Lv.1",
        "Lv.2",
        "Lv.3",
        "Lv.4",
        "Lv.5",
        "suspended",
        "revoked",
    ] {
        let shown: u64 = chrome
            .attribute(
                &format!("#sector-hems rect[data-label='{bar}']"),
                "data-count",
            )
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(shown, expected.get(bar).copied().unwrap_or(0), "{bar}");
    }
    chrome.screenshot("console-levels");

    chrome.open(&format!("https://{}/console/revocations", w.web));
    let list = chrome.text("#changes").unwrap();
    // Both entries of the revocation: the certificate's and the trust record's.
    assert!(list.contains("certificate.revoked"), "{list}");
    assert!(
        list.contains("trust.revoked hems/acme/hub/sn-0001"),
        "{list}"
    );
    assert!(
        list.contains(hostile),
        "the hostile note is shown as text: {list}"
    );
    assert_ne!(chrome.title(), "pwned");
    chrome.screenshot("console-revocations");

    // Two tree heads (one is signed every second here while the log
    // grows; the log grows here by enrolling more), then the consistency
    // proof is checked by the server and in the browser.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for n in 10.. {
        chrome.open(&format!("https://{}/console/audit", w.web));
        if chrome.text("#server-check").is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no second tree head within 60 s"
        );
        enroll_more(&w, &format!("SN-00{n}"), hems_lv5()).await;
        tokio::time::sleep(3 * WEB_TREE_HEAD_INTERVAL / 2).await;
    }
    assert_eq!(
        chrome.text("#server-check").as_deref(),
        Some("consistent (checked by the server)")
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while chrome
        .text("#browser-check")
        .unwrap_or_default()
        .starts_with("checking")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the in-browser check did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        chrome.text("#browser-check").as_deref(),
        Some("consistent (checked in this browser)")
    );
    chrome.screenshot("console-audit");

    chrome.click("#sign-out");
    let base_page = format!("https://{}/", w.web);
    chrome.wait_for_url(&base_page).unwrap();
    chrome.open(&format!("https://{}/console", w.web));
    assert!(chrome.text("#message").unwrap().contains("not signed in"));
}

#[tokio::test(flavor = "multi_thread")]
async fn console_sign_in_csrf_and_methods_over_https() {
    let w = world().await;
    let base = format!("https://{}", w.web);
    // A login link needs an operator's or auditor's certificate.
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/login-link"), None, &["-X", "POST"]);
    assert_eq!(code, 401);
    let (code, _, _) = w.curl.get(
        &format!("{base}/console/login-link"),
        Some("acme"),
        &["-X", "POST"],
    );
    assert_eq!(code, 401);
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/login-link"), Some("ops"), &[]);
    assert_eq!(code, 405, "a link is never made over GET");
    // An auditor gets one too, and the link names the role.
    let auditor =
        w.ca.credential(CertificateKind::Auditor, "audit", &["hems"]);
    w.curl.add("auditor", &auditor);
    let (code, _, body) = w.curl.get(
        &format!("{base}/console/login-link"),
        Some("auditor"),
        &["-X", "POST"],
    );
    assert_eq!(code, 200);
    let link: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(link["role"], "auditor");
    let token = curl_login_token(&w);

    // Opening the link changes nothing; posting its form from elsewhere is refused.
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/login?token={token}"), None, &[]);
    assert_eq!(code, 200);
    let form = format!("token={token}");
    let (code, _, _) = w.curl.get(
        &format!("{base}/console/login"),
        None,
        &["-d", &form, "-H", "Origin: https://evil.example"],
    );
    assert_eq!(code, 403);
    let (code, headers, _) = w
        .curl
        .get(&format!("{base}/console/login"), None, &["-d", &form]);
    assert_eq!(code, 303);
    let session = raw_set_cookie(&w);
    let cookie_line = headers
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap()
        .to_owned();
    for attr in [
        "__host-trustca-console=",
        "path=/",
        "secure",
        "httponly",
        "samesite=strict",
        "max-age=900",
    ] {
        assert!(cookie_line.contains(attr), "{attr} in {cookie_line}");
    }
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/login"), None, &["-d", &form]);
    assert_eq!(code, 403, "a link works once");
    let cookie = format!("Cookie: {}", session.split(';').next().unwrap());
    let (code, _, body) = w
        .curl
        .get(&format!("{base}/console"), None, &["-H", &cookie]);
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();

    // CSV export of a list.
    let (code, headers, body) = w.curl.get(
        &format!("{base}/console/changes?format=csv"),
        None,
        &["-H", &cookie],
    );
    assert_eq!(code, 200);
    assert!(headers.contains("content-type: text/csv"), "{headers}");
    assert!(
        headers.contains("content-disposition: attachment"),
        "{headers}"
    );
    let csv = String::from_utf8(body).unwrap();
    assert!(csv.starts_with("\"#\",\"When\""), "{csv}");

    // Forms need the session's CSRF token; nothing changes over GET.
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console/logout"), None, &["-H", &cookie]);
    assert_eq!(code, 405);
    for bad in ["", "csrf=wrong"] {
        let (code, _, _) = w.curl.get(
            &format!("{base}/console/logout"),
            None,
            &["-H", &cookie, "-d", bad],
        );
        assert_eq!(code, 403, "{bad:?}");
    }
    let good = format!("csrf={csrf}");
    let (code, _, _) = w.curl.get(
        &format!("{base}/console/logout"),
        None,
        &[
            "-H",
            &cookie,
            "-H",
            "Origin: https://evil.example",
            "-d",
            &good,
        ],
    );
    assert_eq!(code, 403, "a form from another site");
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console"), None, &["-H", &cookie]);
    assert_eq!(code, 200, "still signed in after the refused forms");
    let (code, _, _) = w.curl.get(
        &format!("{base}/console/logout"),
        None,
        &["-H", &cookie, "-d", &good],
    );
    assert_eq!(code, 303);
    let (code, _, _) = w
        .curl
        .get(&format!("{base}/console"), None, &["-H", &cookie]);
    assert_eq!(code, 401, "signed out");
}
