//! The public label views as HTML: the level graphic with its meaning in
//! words, the status with its date and reason class, support period,
//! evaluations, when it was last checked, and the QR code that opens the
//! page. Every value is escaped ([`esc`]).

use std::fmt::Write as _;

use crate::html::{esc, level_graphic, url_component};
use crate::i18n::Lang;
use crate::public::{DeviceLabel, EvaluationView, ModelLabel};

fn row(out: &mut String, lang: Lang, label: &'static str, value_html: &str) {
    let _ = write!(
        out,
        "<tr><th scope=\"row\">{}</th><td>{value_html}</td></tr>",
        esc(lang.t(label))
    );
}

/// The status badge and since when, e.g. "revoked since 2026-… (3 days ago)".
fn status_since(lang: Lang, status: &'static str, since: i64, now: i64) -> String {
    // English puts "since" before the date, Japanese "以降" after it.
    let date = esc(&lang.date(since, now));
    let since = match lang {
        Lang::Ja => format!("{date} {}", esc(lang.t("since"))),
        _ => format!("{} {date}", esc(lang.t("since"))),
    };
    format!(
        "<span class=\"status s-{}\" data-status=\"{}\">{}</span> {since}",
        esc(status),
        esc(status),
        esc(lang.t(status)),
    )
}

fn evaluations(lang: Lang, list: &[EvaluationView], now: i64) -> String {
    if list.is_empty() {
        return format!("<p>{}</p>", esc(lang.t("none")));
    }
    let mut out = format!(
        "<table class=\"evaluations\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(lang.t("Scheme")),
        esc(lang.t("Result")),
        esc(lang.t("Certificate number")),
        esc(lang.t("Valid until"))
    );
    for e in list {
        let kind = if e.kind == "self-assessed" {
            "self-assessed"
        } else {
            "third party"
        };
        let state = match e.state {
            "withdrawn" => format!(" · {}", esc(lang.t("withdrawn"))),
            "expired" => format!(" · {}", esc(lang.t("expired"))),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "<tr><td>{} <span class=\"note\">({}){state}</span></td><td>{}</td><td class=\"mono\">{}</td><td>{}</td></tr>",
            esc(&e.scheme),
            esc(lang.t(kind)),
            esc(&e.result),
            esc(&e.certificate_number),
            esc(&lang.date(e.valid_until, now))
        );
    }
    out.push_str("</table>");
    out
}

fn support(lang: Lang, until: Option<&str>) -> String {
    match until {
        Some(d) => format!("{} {}", esc(lang.t("supported until")), esc(d)),
        None => esc(lang.t("not declared")),
    }
}

/// The device page's body.
pub fn device_page(lang: Lang, label: &DeviceLabel, id: &str) -> String {
    let now = label.checked_at;
    let qr = format!("/device/{}/qr.svg", url_component(id));
    let mut out = format!(
        "<img class=\"qr\" src=\"{}\" alt=\"{}\"><h1>{} · {} {}</h1><p class=\"note\">{}</p>",
        esc(&qr),
        esc(lang.t("QR code for this page")),
        esc(lang.t("Trust label")),
        esc(&label.manufacturer),
        esc(&label.model),
        esc(lang.t("This page shows the live state of the device in the trust database."))
    );
    out.push_str(&level_graphic(lang, label.level, label.trusted()));
    let _ = write!(
        out,
        "<p class=\"meaning\" id=\"meaning\">{}</p>",
        esc(lang.level_meaning(label.level))
    );
    if !label.trusted() {
        let _ = write!(
            out,
            "<p class=\"bad\">{}</p>",
            esc(lang.t("The device may not be trusted at all now."))
        );
    } else if label.status == "restricted" {
        let _ = write!(
            out,
            "<p class=\"bad\">{}</p>",
            esc(lang.t("The device is trusted at a lower level than its certificate states."))
        );
    }
    out.push_str("<table class=\"facts\">");
    row(
        &mut out,
        lang,
        "Status",
        &status_since(lang, label.status, label.since, now),
    );
    row(
        &mut out,
        lang,
        "Reason class",
        &format!(
            "<span id=\"reason-class\">{}</span>",
            esc(lang.t(label.reason_class))
        ),
    );
    if let Some(reason) = &label.reason {
        row(
            &mut out,
            lang,
            "Reason",
            &format!("<span id=\"reason\">{}</span>", esc(reason)),
        );
    }
    row(
        &mut out,
        lang,
        "Trust level",
        &format!("<span id=\"level\">{}</span> / 5", label.level),
    );
    row(&mut out, lang, "Sector", &esc(&label.sector));
    row(&mut out, lang, "Manufacturer", &esc(&label.manufacturer));
    let model_link = format!(
        "<a href=\"/label/{}/{}/{}\">{}</a>",
        url_component(&label.sector),
        url_component(&label.manufacturer),
        url_component(&label.model),
        esc(&label.model)
    );
    row(&mut out, lang, "Model", &model_link);
    if let Some(serial) = &label.serial {
        row(&mut out, lang, "Serial", &esc(serial));
    }
    let range = label
        .firmware_range
        .as_deref()
        .map_or_else(String::new, |r| {
            format!(" ({} {})", esc(lang.t("Firmware range")), esc(r))
        });
    row(
        &mut out,
        lang,
        "Firmware",
        &format!("{}{range}", esc(&label.firmware)),
    );
    row(
        &mut out,
        lang,
        "Support period",
        &support(lang, label.supported_until.as_deref()),
    );
    row(
        &mut out,
        lang,
        "Last checked",
        &format!("<time id=\"checked\">{}</time>", esc(&lang.date(now, now))),
    );
    out.push_str("</table>");
    let _ = write!(
        out,
        "<h2>{}</h2>{}",
        esc(lang.t("Evaluations")),
        evaluations(lang, &label.evaluations, now)
    );
    out
}

/// The model page's body.
pub fn model_page(lang: Lang, label: &ModelLabel) -> String {
    let now = label.checked_at;
    let qr = format!(
        "/label/{}/{}/{}/qr.svg",
        url_component(&label.sector),
        url_component(&label.manufacturer),
        url_component(&label.model)
    );
    let mut out = format!(
        "<img class=\"qr\" src=\"{}\" alt=\"{}\"><h1>{} · {} {}</h1><p class=\"note\">{}</p>",
        esc(&qr),
        esc(lang.t("QR code for this page")),
        esc(lang.t("Registered model")),
        esc(&label.manufacturer),
        esc(&label.model),
        esc(lang.t("Devices of this model are checked live against the trust database."))
    );
    let _ = write!(
        out,
        "<p>{}: {}</p>",
        esc(lang.t("Sector")),
        esc(&label.sector)
    );
    for r in &label.ranges {
        let trusted = matches!(r.status, "certified" | "provisional");
        let _ = write!(
            out,
            "<section class=\"range\"><h2>{} {}</h2>{}<p class=\"meaning\">{}</p><table class=\"facts\">",
            esc(lang.t("Firmware range")),
            esc(&r.firmware),
            level_graphic(lang, r.level, trusted),
            esc(lang.level_meaning(r.level))
        );
        row(
            &mut out,
            lang,
            "Status",
            &status_since(lang, r.status, r.since, now),
        );
        if let Some(reason) = &r.reason {
            row(
                &mut out,
                lang,
                "Reason",
                &format!("<span class=\"reason\">{}</span>", esc(reason)),
            );
        }
        row(
            &mut out,
            lang,
            "Support period",
            &support(lang, r.supported_until.as_deref()),
        );
        row(&mut out, lang, "Last checked", &esc(&lang.date(now, now)));
        let _ = write!(
            out,
            "</table><h2>{}</h2>{}</section>",
            esc(lang.t("Evaluations")),
            evaluations(lang, &r.evaluations, now)
        );
    }
    out
}
