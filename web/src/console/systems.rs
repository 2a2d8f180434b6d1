//! The console's page of systems of linked devices (`/console/systems`):
//! each system's live evaluation, its combined level and who set it, and
//! per member its own and effective level with the cap path (the links
//! from the weak device that set the cap). The server hands the
//! evaluations in through [`SystemSource`] (the trust database evaluates;
//! this crate only shows). Paged with `page=`, filtered with `sector=`,
//! CSV with `format=csv` (one row per member).

use std::fmt::Write as _;

use trustca_composition::{Cap, Evaluation};

use super::pages::{csv, filter_form};
use super::session::Session;
use crate::html::{esc, url_component};
use crate::i18n::Lang;
use crate::respond::{Answer, param};
use crate::{Asked, Inner, WebError};

/// Systems one page shows (a system may have up to 1,000 members).
pub const SYSTEMS_PER_PAGE: usize = 10;
/// Systems one CSV export holds.
pub const SYSTEMS_PER_CSV: usize = 100;

/// One listed system: its evaluation, or its name and why it cannot be
/// evaluated now.
pub type SystemRow = Result<Evaluation, (String, String)>;

/// Where the console's systems come from (the server's trust database).
pub trait SystemSource: Send + Sync + std::fmt::Debug {
    /// The systems that `sectors` touch (their own sector or a member's),
    /// in name order, `take` after skipping `skip`, each evaluated from
    /// the live records now; and whether more follow.
    fn evaluations(
        &self,
        sectors: &[String],
        skip: usize,
        take: usize,
    ) -> Result<(Vec<SystemRow>, bool), String>;
}

/// A cap path for people: `A -[operation/depth]-> B -[…]-> C`.
pub fn path_text(cap: &Cap) -> String {
    let Some(first) = cap.path.first() else {
        return cap.source.clone();
    };
    let mut out = first.from.clone();
    for hop in &cap.path {
        let _ = write!(out, " -[{}/{}]-> {}", hop.operation, hop.depth, hop.to);
    }
    out
}

const HEADER: [&str; 10] = [
    "System",
    "Combined level",
    "Member",
    "Sector",
    "Trust level",
    "Status",
    "Effective level",
    "Cap source",
    "Cap path",
    "Reason",
];

/// One CSV row per member (a system that cannot be evaluated: one row with why).
fn csv_rows(rows: &[SystemRow]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for row in rows {
        match row {
            Ok(e) => {
                let combined = e
                    .combined
                    .as_ref()
                    .map(|c| c.level.get().to_string())
                    .unwrap_or_default();
                for m in e.members.values() {
                    out.push(vec![
                        e.system.clone(),
                        combined.clone(),
                        m.urn.clone(),
                        m.sector.to_string(),
                        m.own_level.get().to_string(),
                        m.status.as_str().to_owned(),
                        m.effective.get().to_string(),
                        m.cap.as_ref().map(|c| c.source.clone()).unwrap_or_default(),
                        m.cap.as_ref().map(path_text).unwrap_or_default(),
                        m.cap.as_ref().map(|c| c.reason.clone()).unwrap_or_default(),
                    ]);
                }
            }
            Err((name, why)) => {
                let mut r = vec![name.clone()];
                r.resize(HEADER.len() - 1, String::new());
                r.push(why.clone());
                out.push(r);
            }
        }
    }
    out
}

/// One system's section: the combined level and the members' table.
fn section(lang: Lang, row: &SystemRow) -> String {
    let (e, name) = match row {
        Ok(e) => (e, &e.system),
        Err((name, why)) => {
            return format!(
                "<section class=\"system\" data-system=\"{}\"><h2>{}</h2><p class=\"damaged\">{}</p></section>",
                esc(name),
                esc(name),
                esc(why)
            );
        }
    };
    let mut out = format!(
        "<section class=\"system\" data-system=\"{}\"><h2>{}</h2>",
        esc(name),
        esc(name)
    );
    if let Some(c) = &e.combined {
        let _ = write!(
            out,
            "<p class=\"combined\" data-combined=\"{}\">{}: Lv.{} ({})</p>",
            c.level.get(),
            esc(lang.t("Combined level")),
            c.level.get(),
            esc(&c.reason)
        );
    }
    out.push_str("<table class=\"members\"><tr>");
    for h in &HEADER[2..] {
        let _ = write!(out, "<th>{}</th>", esc(lang.t_any(h)));
    }
    out.push_str("</tr>");
    for m in e.members.values() {
        let _ = write!(
            out,
            "<tr data-member=\"{}\" data-own=\"{}\" data-effective=\"{}\"><td>{}</td><td>{}</td><td>Lv.{}</td><td>{}</td><td>Lv.{}</td><td>{}</td><td class=\"cap-path\">{}</td><td>{}</td></tr>",
            esc(&m.urn),
            m.own_level.get(),
            m.effective.get(),
            esc(&m.urn),
            esc(m.sector.as_str()),
            m.own_level.get(),
            esc(lang.t_any(m.status.as_str())),
            m.effective.get(),
            esc(m
                .cap
                .as_ref()
                .map(|c| c.source.as_str())
                .unwrap_or_default()),
            esc(&m.cap.as_ref().map(path_text).unwrap_or_default()),
            esc(m
                .cap
                .as_ref()
                .map(|c| c.reason.as_str())
                .unwrap_or_default()),
        );
    }
    out.push_str("</table></section>");
    out
}

impl Inner {
    pub(crate) fn systems_page(
        &self,
        asked: &Asked,
        session: &Session,
    ) -> Result<Answer, WebError> {
        let lang = asked.lang;
        let sector = param(&asked.pairs, "sector").filter(|s| !s.is_empty());
        let sectors: Vec<String> = session
            .who
            .sectors
            .iter()
            .filter(|s| sector.is_none_or(|want| want == s.as_str()))
            .cloned()
            .collect();
        let page: usize = param(&asked.pairs, "page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
            .min(1_000_000);
        let csv_wanted = param(&asked.pairs, "format") == Some("csv");
        let take = if csv_wanted {
            SYSTEMS_PER_CSV
        } else {
            SYSTEMS_PER_PAGE
        };
        let (rows, more) = match &self.systems {
            Some(source) if !sectors.is_empty() => source
                .evaluations(&sectors, page * SYSTEMS_PER_PAGE, take)
                .map_err(WebError::Io)?,
            _ => (Vec::new(), false),
        };
        if csv_wanted {
            return Ok(csv("systems", &HEADER, &csv_rows(&rows)));
        }
        let q = sector.map_or_else(String::new, |s| format!("&sector={}", url_component(s)));
        let mut body = filter_form("/console/systems", lang, &session.who.sectors, sector, "");
        if rows.is_empty() {
            let _ = write!(body, "<p id=\"no-systems\">{}</p>", esc(lang.t("none")));
        }
        for row in &rows {
            body.push_str(&section(lang, row));
        }
        if more {
            let _ = write!(
                body,
                "<p><a id=\"next\" href=\"/console/systems?page={}{q}\">{}</a></p>",
                page + 1,
                esc(lang.t("Next page"))
            );
        }
        let _ = write!(
            body,
            "<p><a href=\"/console/systems?format=csv&page={page}{q}\">{}</a></p>",
            esc(lang.t("Download CSV"))
        );
        Ok(self.console_html(asked, session, "Systems", &body, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trustca_composition::PathHop;
    use trustca_model::TrustLevel;

    #[test]
    fn a_cap_path_names_every_hop() {
        let level = TrustLevel::new(2).unwrap_or_else(|_| unreachable!());
        let control =
            || trustca_model::CooperationDepth::parse("control").unwrap_or_else(|_| unreachable!());
        let hop = |from: &str, to: &str| PathHop {
            from: from.into(),
            to: to.into(),
            operation: "demand-response".into(),
            depth: control(),
            counted: level,
        };
        let cap = Cap {
            level,
            source: "plug".into(),
            path: vec![hop("plug", "hems"), hop("hems", "pump")],
            depth: Some(control()),
            reason: "r".into(),
        };
        assert_eq!(
            path_text(&cap),
            "plug -[demand-response/control]-> hems -[demand-response/control]-> pump"
        );
        let rows = csv_rows(&[Err(("<b>".into(), "damaged".into()))]);
        assert_eq!(rows[0].len(), HEADER.len());
        assert_eq!(rows[0][9], "damaged");
    }
}
