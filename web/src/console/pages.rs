//! The console's pages: the level distribution per sector (SVG), the audit
//! log's changes with their reasons (all, revocations, anomaly reports and
//! actions, model registry, systems), the model registry, and CRL and
//! snapshot freshness. Lists page with `before=<seq>`, filter with
//! `sector=` and `status=`, and export CSV with `format=csv`.

use std::fmt::Write as _;
use trustca_datadir::DataDir;

use hyper::StatusCode;
use trustca_model::TrustStatus;

use super::session::Session;
use crate::html::{bar_chart, esc, url_component};
use crate::i18n::{Lang, iso};
use crate::respond::{self, Answer, Cache, param};
use crate::{Asked, Inner, WebError, now};

/// Rows a list page shows.
pub const PAGE_ROWS: usize = 50;
/// Audit entries one page may scan to fill itself with matching rows.
const SCAN_LIMIT: u64 = 20_000;
/// Devices counted per sector for the distribution.
const COUNT_LIMIT: usize = 200_000;

/// The change lists: (path, title, audit kinds shown).
pub const LISTS: &[(&str, &str, &[&str])] = &[
    (
        "/console/changes",
        "Recent changes",
        &[
            "trust.",
            "certificate.revoked",
            "certificate.restricted",
            "anomaly.",
            "model.",
            "system.",
        ],
    ),
    (
        "/console/revocations",
        "Revocations",
        &["certificate.revoked", "trust.revoked"],
    ),
    ("/console/anomalies", "Anomaly reports", &["anomaly."]),
];

/// The navigation bar, with the sign-out form and its CSRF token.
fn nav(lang: Lang, session: &Session) -> String {
    let mut out = String::from("<nav>");
    for (href, label) in [
        ("/console", "Level distribution"),
        ("/console/changes", "Recent changes"),
        ("/console/revocations", "Revocations"),
        ("/console/anomalies", "Anomaly reports"),
        ("/console/models", "Model registry"),
        ("/console/systems", "Systems"),
        ("/console/freshness", "Freshness"),
        ("/console/audit", "Audit log"),
    ] {
        let _ = write!(out, "<a href=\"{href}\">{}</a>", esc(lang.t(label)));
    }
    let _ = write!(
        out,
        "<form class=\"inline\" method=\"post\" action=\"/console/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"sign-out\">{}</button></form> <span class=\"note\" id=\"who\">{} {} ({})</span></nav>",
        esc(&session.csrf),
        esc(lang.t("Sign out")),
        esc(session.who.role),
        esc(&session.who.name),
        esc(&session.who.sectors.join(", "))
    );
    out
}

/// The sector of an audit entry: the `sector` its details name (a
/// certificate's entries name it by serial), else its subject's: a device
/// URN's, or an identity or model key's first part.
fn entry_sector(subject: &str, detail: &str) -> Option<String> {
    let named = serde_json::from_str::<serde_json::Value>(detail)
        .ok()
        .and_then(|v| v.get("sector").and_then(|s| s.as_str()).map(str::to_owned));
    named.or_else(|| {
        match subject.strip_prefix("urn:trustca:") {
            Some(rest) => rest.split(':').next(),
            None => subject.split(['/', ' ']).next(),
        }
        .map(str::to_owned)
    })
}

/// A CSV field: quoted, and a leading formula character neutralised.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    format!("\"{}\"", text.replace('"', "\"\""))
}

pub(crate) fn csv(name: &str, header: &[&str], rows: &[Vec<String>]) -> Answer {
    let mut out = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for row in rows {
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    let mut answer = respond::bytes(
        StatusCode::OK,
        "text/csv; charset=utf-8",
        out.into_bytes(),
        Cache::NoStore,
    );
    if let Ok(v) =
        hyper::header::HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\""))
    {
        answer
            .headers_mut()
            .insert(hyper::header::CONTENT_DISPOSITION, v);
    }
    answer
}

fn table(header: &[&str], rows: &[Vec<String>], lang: Lang, id: &str) -> String {
    let mut out = format!("<table id=\"{id}\"><tr>");
    for h in header {
        let _ = write!(out, "<th>{}</th>", esc(lang.t_any(h)));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for f in row {
            let _ = write!(out, "<td>{}</td>", esc(f));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

/// A filter form (GET: it changes nothing, so it carries no CSRF token).
pub(crate) fn filter_form(
    path: &str,
    lang: Lang,
    sectors: &[String],
    chosen: Option<&str>,
    extra: &str,
) -> String {
    let mut out = format!(
        "<form method=\"get\" action=\"{path}\"><label>{} <select name=\"sector\"><option value=\"\">*</option>",
        esc(lang.t("Sector"))
    );
    for s in sectors {
        let sel = if chosen == Some(s.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(out, "<option{sel} value=\"{}\">{}</option>", esc(s), esc(s));
    }
    let _ = write!(
        out,
        "</select></label>{extra} <button type=\"submit\">{}</button></form>",
        esc(lang.t("Filter"))
    );
    out
}

impl Inner {
    pub(crate) fn console_page(&self, asked: &Asked, session: &Session) -> Answer {
        let route = asked.path.trim_end_matches('/');
        let result = match route {
            "/console" => self.overview(asked, session),
            "/console/models" => self.models(asked, session),
            "/console/systems" => self.systems_page(asked, session),
            "/console/freshness" => self.freshness(asked, session),
            "/console/audit" => self.audit_page(asked, session),
            _ => match LISTS.iter().find(|(p, _, _)| *p == route) {
                Some(list) => self.changes(asked, session, list),
                None => return asked.refuse(StatusCode::NOT_FOUND, "no such console page"),
            },
        };
        match result {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "console page failed");
                asked.refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the page cannot be made now: {e}"),
                )
            }
        }
    }

    pub(crate) fn console_html(
        &self,
        asked: &Asked,
        session: &Session,
        title: &'static str,
        body: &str,
        script: Option<&'static str>,
    ) -> Answer {
        let lang = asked.lang;
        let body = format!(
            "{}<h1>{}</h1>{body}",
            nav(lang, session),
            esc(lang.t(title))
        );
        respond::html(
            StatusCode::OK,
            lang,
            lang.t(title),
            &asked.path_and_query,
            &body,
            script,
            Cache::NoStore,
        )
    }

    /// Live level (active devices) and status counts of one sector.
    pub(crate) fn distribution(&self, sector: &str) -> Result<Vec<(String, u64)>, WebError> {
        let mut levels = [0u64; 5];
        let (mut suspended, mut revoked, mut retired) = (0, 0, 0);
        // Read a page of devices at a time: a sector of a million devices
        // must not be held in memory to count it.
        for d in trustca_store::device_pages(self.storage.as_ref(), &format!("{sector}/"))
            .take(COUNT_LIMIT)
        {
            let d = d?;
            let Some(t) = self.storage.trust_record(&d.identity_key)? else {
                continue;
            };
            match t.status {
                TrustStatus::Active => levels[usize::from(t.level.clamp(1, 5) - 1)] += 1,
                TrustStatus::Suspended => suspended += 1,
                TrustStatus::Revoked => revoked += 1,
                TrustStatus::Retired => retired += 1,
            }
        }
        let mut bars: Vec<(String, u64)> = (1..=5)
            .map(|l| (format!("Lv.{l}"), levels[l - 1]))
            .collect();
        bars.extend([
            ("suspended".into(), suspended),
            ("revoked".into(), revoked),
            ("retired".into(), retired),
        ]);
        Ok(bars)
    }

    /// Samples every sector's distribution as today's point when the
    /// change log grew (or the day changed) since `last` (log size, day);
    /// returns what it sampled at.
    pub(crate) fn sample_history(
        &self,
        last: Option<(u64, time::Date)>,
    ) -> Result<(u64, time::Date), WebError> {
        let size = self.storage.audit_head()?.0;
        let day = today();
        if last == Some((size, day)) {
            return Ok((size, day));
        }
        for sector in &self.sectors {
            let sample = super::history::sample_of(&self.distribution(sector)?);
            super::history::record(self.storage.as_ref(), sector, day, &sample)?;
        }
        Ok((size, day))
    }

    fn overview(&self, asked: &Asked, session: &Session) -> Result<Answer, WebError> {
        let lang = asked.lang;
        let mut body = String::new();
        let mut rows = Vec::new();
        for sector in &session.who.sectors {
            let bars = self.distribution(sector)?;
            let total: u64 = bars.iter().map(|(_, n)| n).sum();
            let history = super::history::series(
                self.storage.as_ref(),
                sector,
                today(),
                super::history::DAYS_SHOWN,
            )?;
            let _ = write!(
                body,
                "<section class=\"sector\" id=\"sector-{}\"><h2>{} ({total} {})</h2>{}<h3>{}</h3>{}</section>",
                esc(sector),
                esc(sector),
                esc(lang.t("devices")),
                bar_chart(&format!("{} {sector}", lang.t("Level distribution")), &bars),
                esc(lang.t("Over the last 30 days")),
                super::history::chart(
                    &format!("{} {sector}", lang.t("Over the last 30 days")),
                    &history
                )
            );
            rows.extend(
                bars.into_iter()
                    .map(|(k, n)| vec![sector.clone(), k, n.to_string()]),
            );
        }
        if param(&asked.pairs, "format") == Some("csv") {
            return Ok(csv(
                "levels",
                &["sector", "level or status", "devices"],
                &rows,
            ));
        }
        let _ = write!(
            body,
            "<p><a href=\"/console?format=csv\">{}</a></p>",
            esc(lang.t("Download CSV"))
        );
        Ok(self.console_html(asked, session, "Level distribution", &body, None))
    }

    fn changes(
        &self,
        asked: &Asked,
        session: &Session,
        (path, title, kinds): &(&str, &'static str, &[&str]),
    ) -> Result<Answer, WebError> {
        let lang = asked.lang;
        let sector = param(&asked.pairs, "sector").filter(|s| !s.is_empty());
        let (size, _) = self.storage.audit_head()?;
        let before = param(&asked.pairs, "before")
            .and_then(|b| b.parse::<u64>().ok())
            .unwrap_or(size)
            .min(size);
        let csv_wanted = param(&asked.pairs, "format") == Some("csv");
        let limit = if csv_wanted {
            10 * PAGE_ROWS
        } else {
            PAGE_ROWS
        };
        let mut rows = Vec::new();
        let mut next = before;
        let floor = before.saturating_sub(SCAN_LIMIT);
        while next > floor && rows.len() < limit {
            let from = next.saturating_sub(500).max(floor);
            let chunk = self
                .storage
                .audit_entries(from, usize::try_from(next - from).unwrap_or(500))?;
            for e in chunk.iter().rev() {
                next = e.seq;
                let Some(s) = entry_sector(&e.subject, &e.detail) else {
                    continue;
                };
                let shown = kinds.iter().any(|k| e.kind.starts_with(k))
                    && session.who.sectors.contains(&s)
                    && sector.is_none_or(|want| want == s.as_str());
                if shown {
                    rows.push(vec![
                        e.seq.to_string(),
                        iso(e.at),
                        e.kind.clone(),
                        e.subject.clone(),
                        e.actor.clone(),
                        e.detail.clone(),
                    ]);
                    if rows.len() == limit {
                        break;
                    }
                }
            }
            if from == floor || chunk.is_empty() {
                break;
            }
        }
        let header = ["#", "When", "What", "Subject", "Who", "Details and reason"];
        if csv_wanted {
            return Ok(csv(path.trim_start_matches("/console/"), &header, &rows));
        }
        let sector_q = sector.map_or_else(String::new, |s| format!("&sector={}", url_component(s)));
        let mut body = filter_form(path, lang, &session.who.sectors, sector, "");
        body.push_str(&table(&header, &rows, lang, "changes"));
        if next > 0 && rows.len() == PAGE_ROWS {
            let _ = write!(
                body,
                "<p><a id=\"next\" href=\"{path}?before={next}{sector_q}\">{}</a></p>",
                esc(lang.t("Next page"))
            );
        }
        let _ = write!(
            body,
            "<p><a href=\"{path}?format=csv&before={before}{sector_q}\">{}</a></p>",
            esc(lang.t("Download CSV"))
        );
        Ok(self.console_html(asked, session, title, &body, None))
    }

    fn models(&self, asked: &Asked, session: &Session) -> Result<Answer, WebError> {
        let lang = asked.lang;
        let sector = param(&asked.pairs, "sector").filter(|s| !s.is_empty());
        let status = param(&asked.pairs, "status").filter(|s| !s.is_empty());
        let page: usize = param(&asked.pairs, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let mut rows = Vec::new();
        for s in session
            .who
            .sectors
            .iter()
            .filter(|s| sector.is_none_or(|want| want == s.as_str()))
        {
            for m in trustca_store::registry::models_with_prefix(
                self.storage.as_ref(),
                &format!("{s}/"),
            )? {
                if status.is_some_and(|want| want != m.status.as_str()) {
                    continue;
                }
                rows.push(vec![
                    m.key.to_string(),
                    m.level.to_string(),
                    m.status.as_str().to_owned(),
                    m.suspended
                        .as_ref()
                        .map(|(at, why)| format!("{} {why}", iso(*at)))
                        .unwrap_or_default(),
                    m.supported_until.clone().unwrap_or_default(),
                    iso(m.updated_at),
                ]);
            }
        }
        let header = [
            "Model",
            "Trust level",
            "Status",
            "Reason",
            "Support period",
            "Last change",
        ];
        if param(&asked.pairs, "format") == Some("csv") {
            return Ok(csv("models", &header, &rows));
        }
        let shown: Vec<Vec<String>> = rows
            .iter()
            .skip(page * PAGE_ROWS)
            .take(PAGE_ROWS)
            .cloned()
            .collect();
        let mut status_select =
            String::from(" <label>Status <select name=\"status\"><option value=\"\">*</option>");
        for s in ["certified", "provisional", "suspended", "withdrawn"] {
            let sel = if status == Some(s) { " selected" } else { "" };
            let _ = write!(
                status_select,
                "<option{sel} value=\"{s}\">{}</option>",
                esc(lang.t_any(s))
            );
        }
        status_select.push_str("</select></label>");
        let mut body = filter_form(
            "/console/models",
            lang,
            &session.who.sectors,
            sector,
            &status_select,
        );
        body.push_str(&table(&header, &shown, lang, "models"));
        let q = format!(
            "{}{}",
            sector.map_or_else(String::new, |s| format!("&sector={}", url_component(s))),
            status.map_or_else(String::new, |s| format!("&status={}", url_component(s)))
        );
        if rows.len() > (page + 1) * PAGE_ROWS {
            let _ = write!(
                body,
                "<p><a id=\"next\" href=\"/console/models?page={}{q}\">{}</a></p>",
                page + 1,
                esc(lang.t("Next page"))
            );
        }
        let _ = write!(
            body,
            "<p><a href=\"/console/models?format=csv{q}\">{}</a></p>",
            esc(lang.t("Download CSV"))
        );
        Ok(self.console_html(asked, session, "Model registry", &body, None))
    }

    fn freshness(&self, asked: &Asked, session: &Session) -> Result<Answer, WebError> {
        let lang = asked.lang;
        let now = now();
        let mut rows = Vec::new();
        for sector in &session.who.sectors {
            for (what, path) in [
                ("CRL", DataDir::new(&self.data).crl(sector)),
                (
                    "snapshot",
                    DataDir::new(&self.data)
                        .snapshots()
                        .join(format!("{sector}.snapshot")),
                ),
            ] {
                let fresh = crate::console::audit::file_freshness(&path, what == "CRL");
                let (written, next) = match fresh {
                    Some((w, n)) => (
                        lang.date(w, now),
                        n.map(|n| lang.date(n, now)).unwrap_or_default(),
                    ),
                    None => ("missing".to_owned(), String::new()),
                };
                rows.push(vec![sector.clone(), what.to_owned(), written, next]);
            }
        }
        let header = ["Sector", "What", "Last change", "Valid until"];
        if param(&asked.pairs, "format") == Some("csv") {
            return Ok(csv("freshness", &header, &rows));
        }
        let body = table(&header, &rows, lang, "freshness");
        Ok(self.console_html(asked, session, "Freshness", &body, None))
    }
}

/// Today (UTC).
fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("=cmd()"), "\"'=cmd()\"");
        assert_eq!(csv_field("plain"), "\"plain\"");
    }

    #[test]
    fn entries_name_their_sector() {
        let sector = |subject: &str, detail: &str| entry_sector(subject, detail);
        assert_eq!(
            sector("urn:trustca:hems:acme:hub:1", "{}").as_deref(),
            Some("hems")
        );
        assert_eq!(
            sector("hems/acme/hub firmware 1.0-2.0", "").as_deref(),
            Some("hems")
        );
        assert_eq!(
            sector("0a1b", "{\"sector\":\"automotive\"}").as_deref(),
            Some("automotive")
        );
    }
}
