//! Public label pages: Chromium opens the scanned QR code, curl checks the
//! headers, refusals, policy and rate limits; a registered model's page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::kit::*;
use crate::common::*;
use trustca_api::client::ClientCredentials;
use trustca_model::CertificateKind;
use trustca_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread")]
async fn chromium_opens_the_scanned_label_and_sees_the_revocation() {
    if !browser::available() {
        return;
    }
    let w = world().await;
    let (printed, qr_png) = label_url(&w);
    let (code, headers, png) = w.curl.get(&format!("https://{}{qr_png}", w.web), None, &[]);
    assert_eq!(code, 200);
    assert!(headers.contains("content-type: image/png"), "{headers}");
    let scanned = decode_qr(&png);
    assert_eq!(scanned, printed, "the QR code holds the label URL");
    assert!(
        !scanned.to_ascii_lowercase().contains("sn-0001"),
        "no serial in {scanned}"
    );

    let shots = screenshots();
    let chrome = browser::Browser::start(&server_pin(w.ca.data()), &shots);
    chrome.open(&scanned);
    assert_eq!(chrome.text("#level").as_deref(), Some("5"));
    assert_eq!(
        chrome.attribute("[data-status]", "data-status").as_deref(),
        Some("active")
    );
    assert_eq!(
        chrome.attribute("svg.level", "data-level").as_deref(),
        Some("5")
    );
    assert!(chrome.text("#meaning").unwrap().starts_with("Level 5"));
    // HEMS shows serials (policies/web.toml).
    assert!(chrome.text("table.facts").unwrap().contains("SN-0001"));
    // The QR image on the page loads under the CSP (img-src 'self').
    assert!(
        chrome
            .attribute("img.qr", "src")
            .unwrap()
            .ends_with("/qr.svg")
    );
    chrome.screenshot("device-active");

    revoke(&w).await;
    chrome.open(&scanned);
    assert_eq!(
        chrome.attribute("[data-status]", "data-status").as_deref(),
        Some("revoked")
    );
    assert_eq!(chrome.text("#reason-class").as_deref(), Some("revocation"));
    assert_eq!(
        chrome.count("svg.level rect[fill='#2e7d32']"),
        0,
        "no level bars lit"
    );
    chrome.screenshot("device-revoked");

    chrome.open(&format!("{scanned}?lang=ja"));
    assert_eq!(chrome.text("[data-status]").as_deref(), Some("失効"));
    assert_eq!(chrome.attribute("html", "lang").as_deref(), Some("ja"));
    chrome.screenshot("device-revoked-ja");

    // A hostile model name in the URL comes back as text, and runs nothing.
    let hostile =
        "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";
    let path: String = hostile.bytes().map(|b| format!("%{b:02X}")).collect();
    chrome.open(&format!("https://{}/label/hems/Acme/{path}", w.web));
    assert_ne!(chrome.title(), "pwned");
    assert!(
        chrome.text("#message").unwrap().contains(hostile),
        "shown as text"
    );
    assert_eq!(
        chrome.count("main img, main script"),
        0,
        "no element made from it"
    );
    chrome.screenshot("hostile-model-name");
}

#[tokio::test(flavor = "multi_thread")]
async fn public_pages_over_https_carry_their_headers_and_refusals() {
    let w = world().await;
    let (printed, _) = label_url(&w);
    let base = format!("https://{}", w.web);
    let path = printed.strip_prefix(&base).unwrap().to_owned();

    let (code, headers, body) = w.curl.get(&printed, None, &[]);
    assert_eq!(code, 200);
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("id=\"level\">5<"), "{page}");
    for h in [
        "content-security-policy: default-src 'none'; style-src 'sha256-",
        "script-src 'none'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: same-origin",
    ] {
        assert!(headers.contains(h), "{h} in {headers}");
    }
    // No external resource anywhere on the page.
    for external in ["src=\"http", "href=\"http", "url(", "@import"] {
        assert!(!page.contains(external), "{external} in {page}");
    }
    assert!(
        headers.contains("cache-control: public, no-cache"),
        "{headers}"
    );

    // The JSON variant at the same URL.
    let (code, label) = w.curl.json(&printed, None);
    assert_eq!(code, 200);
    assert_eq!(label["level"], 5);
    assert_eq!(label["status"], "active");
    assert_eq!(label["serial"], "SN-0001");

    // Nothing changes state over a public URL, whatever the method.
    for method in ["POST", "PUT", "DELETE"] {
        let (code, headers, _) = w.curl.get(&printed, None, &["-X", method]);
        assert_eq!(code, 405, "{method}");
        assert!(headers.contains("allow: get, head"), "{headers}");
    }

    // The label endpoint wants the manufacturer's (or an operator's) certificate.
    let urn = w.device.identity.replace(':', "%3A");
    let (code, _) = w
        .curl
        .json(&format!("{base}/labels/device?urn={urn}"), None);
    assert_eq!(code, 401);
    let other =
        w.ca.credential(CertificateKind::Manufacturer, "Other", &["hems"]);
    w.curl.add("other", &other);
    let (code, refusal) = w
        .curl
        .json(&format!("{base}/labels/device?urn={urn}"), Some("other"));
    assert_eq!(code, 403, "{refusal}");
    let (code, _) = w
        .curl
        .json(&format!("{base}/labels/device?urn={urn}"), Some("ops"));
    assert_eq!(code, 200);

    // HEMS allows lookup by serial; forged and unknown ids are 404.
    let (code, headers, _) = w.curl.get(&format!("{base}/lookup?urn={urn}"), None, &[]);
    assert_eq!(code, 303);
    assert!(
        headers.contains(&format!("location: {}", path.to_ascii_lowercase())),
        "{headers}"
    );
    let (code, _) = w.curl.json(
        &format!("{base}/device/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        None,
    );
    assert_eq!(code, 404);

    // Revoked: the JSON says so at once (no stale cache on the server).
    revoke(&w).await;
    let (_, label) = w.curl.json(&printed, None);
    assert_eq!(label["status"], "revoked");
    assert_eq!(label["reason_class"], "revocation");
}

#[tokio::test(flavor = "multi_thread")]
async fn cars_have_no_serial_lookup_until_a_reload_allows_it_and_no_serial_on_the_page() {
    let w = world_in(
        TestCa::init(),
        "automotive",
        "roadster",
        "VIN1HGCM82633A004352",
        "1.0.0",
        automotive_lv5(),
    )
    .await;
    let (car, curl, web) = (&w.device, &w.curl, w.web);
    let urn = car.identity.replace(':', "%3A");
    let (code, refusal) = curl.json(&format!("https://{web}/lookup?urn={urn}"), None);
    assert_eq!(code, 404);
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .contains("no lookup by serial")
    );
    let (code, label) = curl.json(
        &format!("https://{web}/labels/device?urn={urn}"),
        Some("acme"),
    );
    assert_eq!(code, 200);
    let url = label["url"].as_str().unwrap();
    assert!(!url.to_ascii_lowercase().contains("vin1hgcm"), "{url}");
    let (code, page) = curl.json(url, None);
    assert_eq!(code, 200);
    assert_eq!(page["serial"], serde_json::Value::Null);
    assert!(
        !page.to_string().to_ascii_lowercase().contains("vin1hgcm"),
        "{page}"
    );

    // The operator allows the lookup in web.toml and reloads the policies:
    // the running front end serves it at once, without a restart.
    let file = w.ca.data().join("policies/web.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let allowed = text.replacen("serial_lookup = false", "serial_lookup = true", 1);
    assert_ne!(allowed, text);
    std::fs::write(&file, allowed).unwrap();
    trust_client(&w.ca.url(), &w.ops)
        .await
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap();
    let (code, headers, _) = curl.get(&format!("https://{web}/lookup?urn={urn}"), None, &[]);
    assert_eq!(code, 303, "{headers}");
    assert!(headers.contains("location: /device/"), "{headers}");
}

#[tokio::test(flavor = "multi_thread")]
async fn public_pages_are_rate_limited_per_client() {
    let mut ca = TestCa::init();
    let policy = ca.data().join("policies/web.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("requests_per_minute = 120", "requests_per_minute = 5"),
    )
    .unwrap();
    let web = start_with_web(&mut ca).await;
    let curl = Curl::new(&ca.root_pem());
    let mut codes = Vec::new();
    for _ in 0..7 {
        let (code, headers, _) = curl.get(&format!("https://{web}/"), None, &[]);
        if code == 429 {
            assert!(headers.contains("retry-after: "), "{headers}");
        }
        codes.push(code);
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429]);
}

/// The rate limits follow a policy reload at once (the same client's
/// bucket is cut to the new burst); a reload moving `base_url`, which
/// printed labels carry, is refused and the limit in force stays.
#[tokio::test(flavor = "multi_thread")]
async fn a_reloaded_rate_limit_applies_at_once_and_the_base_url_stays() {
    let mut ca = TestCa::init();
    let web = start_with_web(&mut ca).await;
    let ops = ca.credential(CertificateKind::Operator, "ops", &["hems"]);
    let curl = Curl::new(&ca.root_pem());
    let get = || curl.get(&format!("https://{web}/"), None, &[]).0;
    assert_eq!(get(), 200, "under the shipped 120 a minute");

    let policy = ca.data().join("policies/web.toml");
    let shipped = std::fs::read_to_string(&policy).unwrap();
    let lowered = shipped.replace("requests_per_minute = 120", "requests_per_minute = 5");
    assert_ne!(lowered, shipped);
    std::fs::write(&policy, &lowered).unwrap();
    let mut trust = trust_client(&ca.url(), &ops).await;
    trust
        .reload_policy(pb::ReloadPolicyRequest {})
        .await
        .unwrap();
    let codes: Vec<u16> = (0..7).map(|_| get()).collect();
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429]);

    std::fs::write(
        &policy,
        lowered.replace(
            "base_url = \"\"",
            "base_url = \"https://labels.example.org\"",
        ),
    )
    .unwrap();
    reload_refused(&mut trust, "base_url cannot change").await;
    assert_eq!(get(), 429, "the reloaded limit is still in force");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_model_has_a_label_page_and_shows_its_suspension() {
    use trustca_proto::v1::model_registry_client::ModelRegistryClient;
    let w = world().await;
    let acme =
        w.ca.credential(CertificateKind::Manufacturer, "Acme", &["hems"]);
    let lab =
        w.ca.certification_body("Lab", &["hems"], &["iec-62443-4-2"]);
    let selector = || {
        Some(pb::ModelSelector {
            sector: "hems".into(),
            manufacturer: "Acme".into(),
            model: "hub".into(),
            firmware: "2.0..2.9".into(),
        })
    };
    let connect = |c: &ClientCredentials| {
        let (url, c) = (w.ca.url(), c.clone());
        async move { ModelRegistryClient::new(trustca_api::client::connect(&url, &c).await.unwrap()) }
    };
    connect(&acme)
        .await
        .register_model(pb::RegisterModelRequest {
            model: selector(),
            declared: vec![
                evidence("hardware-root-of-trust", "", "secure-element", ""),
                evidence("secure-update", "", "true", ""),
                evidence("supported-until", "", "2036-01-31", ""),
            ],
            self_assessed: vec![],
            reason: "new model".into(),
        })
        .await
        .unwrap();
    connect(&lab)
        .await
        .add_evaluation(pb::AddEvaluationRequest {
            model: selector(),
            evaluation: Some(pb::ModelEvaluationInput {
                scheme: "iec-62443-4-2".into(),
                result: "SL3".into(),
                certificate_number: "LAB-<b>42</b>".into(),
                evaluated_at: date_from_today(-30),
                valid_until: date_from_today(700),
            }),
            reason: "report 1".into(),
        })
        .await
        .unwrap();
    let hostile = "<img src=x onerror=alert(1)> breach";
    connect(&w.ops)
        .await
        .suspend_model(pb::SuspendModelRequest {
            model: selector(),
            lift: false,
            reason: hostile.into(),
        })
        .await
        .unwrap();

    let url = format!("https://{}/label/hems/Acme/hub", w.web);
    let (code, label) = w.curl.json(&url, None);
    assert_eq!(code, 200, "{label}");
    let range = &label["ranges"][0];
    assert_eq!(range["firmware"], "2.0..2.9");
    assert_eq!(range["status"], "suspended");
    assert_eq!(range["reason"], hostile);
    assert_eq!(range["supported_until"], "2036-01-31");
    assert_eq!(range["evaluations"][0]["scheme"], "iec-62443-4-2");
    assert_eq!(range["evaluations"][0]["kind"], "third-party");
    assert_eq!(range["evaluations"][0]["state"], "live");
    let (_, _, html) = w.curl.get(&url, None, &[]);
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt; breach"),
        "{html}"
    );
    assert!(html.contains("LAB-&lt;b&gt;42&lt;/b&gt;"), "{html}");
    assert!(
        !html.contains("<img src=x") && !html.contains("<b>42"),
        "{html}"
    );
    // The model's QR code opens this page.
    let (_, _, png) = w.curl.get(&format!("{url}/qr.png"), None, &[]);
    assert_eq!(decode_qr(&png), url);

    // The device of that model now shows the suspension, its range,
    // support period and evaluation.
    let (printed, _) = label_url(&w);
    let (_, device) = w.curl.json(&printed, None);
    assert_eq!(device["status"], "suspended");
    assert_eq!(device["reason_class"], "model registry");
    assert_eq!(device["firmware_range"], "2.0..2.9");
    assert_eq!(device["supported_until"], "2036-01-31");
    assert_eq!(device["evaluations"][0]["result"], "SL3");

    // The console's registry list, filtered to suspended models, and its CSV.
    let cookie = curl_console_cookie(&w);
    let base = format!("https://{}", w.web);
    let (code, _, page) = w.curl.get(
        &format!("{base}/console/models?status=suspended"),
        None,
        &["-H", &cookie],
    );
    assert_eq!(code, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("hems/Acme/hub firmware 2.0..2.9"), "{page}");
    assert!(page.contains("&lt;img src=x"), "{page}");
    let (_, _, page) = w.curl.get(
        &format!("{base}/console/models?status=certified"),
        None,
        &["-H", &cookie],
    );
    assert!(!String::from_utf8(page).unwrap().contains("hems/Acme/hub"));
    let (_, _, csv) = w.curl.get(
        &format!("{base}/console/models?format=csv"),
        None,
        &["-H", &cookie],
    );
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("\"suspended\""), "{csv}");
}
