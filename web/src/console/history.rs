//! The level distribution over time: a daily sample per sector, kept in
//! the store (space [`SPACE`], key `<sector>\0<YYYY-MM-DD>`, the counts of
//! Lv.1–5 active devices and of suspended, revoked and retired ones), so
//! the console can draw the last [`DAYS_SHOWN`] days from durable history
//! rather than today's counts only.
//!
//! The server samples at start and then whenever the change log grew,
//! at most every [`SAMPLE_EVERY`], overwriting the day's sample: a day's
//! point is its last sample. Samples are written without an audit entry
//! (they are derived from audited state, and must not look like changes
//! to the page cache or the system watch). Every replica samples the same
//! counts, so concurrent writes agree.

use std::fmt::Write as _;
use std::time::Duration;

use trustca_store::Storage;

use crate::WebError;
use crate::html::esc;

/// The store's record space of samples.
pub const SPACE: &str = "web-level-history";
/// Days the console chart shows.
pub const DAYS_SHOWN: u16 = 30;
/// How often the sampler looks at the change log.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// What a sample counts, in order.
pub const SERIES: [&str; 8] = [
    "Lv.1",
    "Lv.2",
    "Lv.3",
    "Lv.4",
    "Lv.5",
    "suspended",
    "revoked",
    "retired",
];

/// One day's counts, in [`SERIES`] order.
pub type Sample = [u64; 8];

fn day_text(day: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

fn key(sector: &str, day: time::Date) -> Vec<u8> {
    format!("{sector}\0{}", day_text(day)).into_bytes()
}

/// A sample from the distribution's bars (label, count).
pub fn sample_of(bars: &[(String, u64)]) -> Sample {
    let mut out = [0u64; 8];
    for (label, n) in bars {
        if let Some(i) = SERIES.iter().position(|s| s == label) {
            out[i] = *n;
        }
    }
    out
}

/// Writes `sample` as `sector`'s sample of `day` unless it is stored already.
pub fn record(
    storage: &dyn Storage,
    sector: &str,
    day: time::Date,
    sample: &Sample,
) -> Result<(), WebError> {
    let k = key(sector, day);
    let value = serde_json::to_vec(sample).map_err(|e| WebError::Io(e.to_string()))?;
    if storage.blob_get(SPACE, &k)?.as_deref() == Some(value.as_slice()) {
        return Ok(());
    }
    storage.blob_put(SPACE, &[(k, value)], false, None)?;
    Ok(())
}

/// `sector`'s samples of the `days` days up to `today`, oldest first
/// (days without a sample left out).
pub fn series(
    storage: &dyn Storage,
    sector: &str,
    today: time::Date,
    days: u16,
) -> Result<Vec<(String, Sample)>, WebError> {
    let mut out = Vec::new();
    let mut prefix = sector.as_bytes().to_vec();
    prefix.push(0);
    let first = today
        .checked_sub(time::Duration::days(i64::from(days) - 1))
        .unwrap_or(today);
    let first = day_text(first);
    let last = day_text(today);
    // One sample per sector and day: grows with days, not devices.
    for (k, v) in storage.blob_scan(SPACE, &prefix)? {
        let Some(day) = std::str::from_utf8(&k[prefix.len()..]).ok() else {
            continue;
        };
        if day < first.as_str() || day > last.as_str() {
            continue;
        }
        if let Ok(sample) = serde_json::from_slice::<Sample>(&v) {
            out.push((day.to_owned(), sample));
        }
    }
    out.sort();
    Ok(out)
}

const COLOURS: [&str; 8] = [
    "#b3261e", "#e8710a", "#c9a400", "#2e7d32", "#12325b", "#6b6b6b", "#000000", "#9e9e9e",
];

/// A line chart of `series` (one line per level or status), drawn here as
/// SVG; each point carries `data-day`, `data-label` and `data-count`.
pub fn chart(title: &str, series: &[(String, Sample)]) -> String {
    let (width, height, left, top) = (560u64, 200u64, 40u64, 10u64);
    let plot_h = height - 40;
    let max = series
        .iter()
        .flat_map(|(_, s)| s.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let step = if series.len() > 1 {
        (width - left - 20) / (series.len() as u64 - 1)
    } else {
        0
    };
    let x = |i: usize| left + step * i as u64;
    let y = |n: u64| top + plot_h - plot_h * n / max;
    let mut svg = format!(
        "<svg class=\"history\" role=\"img\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title><text x=\"0\" y=\"{}\" font-size=\"11\">{max}</text><text x=\"0\" y=\"{}\" font-size=\"11\">0</text>",
        esc(title),
        top + 10,
        top + plot_h
    );
    for (i, label) in SERIES.iter().enumerate() {
        if series.iter().all(|(_, s)| s[i] == 0) {
            continue;
        }
        let points: Vec<String> = series
            .iter()
            .enumerate()
            .map(|(d, (_, s))| format!("{},{}", x(d), y(s[i])))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            COLOURS[i],
            points.join(" ")
        );
        for (d, (day, s)) in series.iter().enumerate() {
            let _ = write!(
                svg,
                "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\" data-day=\"{day}\" data-label=\"{label}\" data-count=\"{}\"/>",
                x(d),
                y(s[i]),
                COLOURS[i],
                s[i]
            );
        }
    }
    if let (Some((first, _)), Some((last, _))) = (series.first(), series.last()) {
        let _ = write!(
            svg,
            "<text x=\"{left}\" y=\"{}\" font-size=\"11\">{first}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{last}</text>",
            height - 8,
            width - 10,
            height - 8
        );
    }
    let mut legend_x = left;
    for (i, label) in SERIES.iter().enumerate() {
        if series.iter().all(|(_, s)| s[i] == 0) {
            continue;
        }
        let _ = write!(
            svg,
            "<text x=\"{legend_x}\" y=\"{}\" font-size=\"11\" fill=\"{}\">{label}</text>",
            height - 22,
            COLOURS[i]
        );
        legend_x += 62;
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::date;

    #[test]
    fn a_downgrade_between_two_days_shows_in_the_series() {
        let dir = tempfile::tempdir().unwrap();
        let storage = trustca_store::SledStorage::open(dir.path()).unwrap();
        let before = sample_of(&[("Lv.5".into(), 3), ("Lv.2".into(), 0)]);
        record(&storage, "hems", date!(2026 - 12 - 01), &before).unwrap();
        // The same day sampled again: the last sample is the day's point.
        let mut later = before;
        later[4] = 2;
        later[1] = 1;
        record(&storage, "hems", date!(2026 - 12 - 02), &before).unwrap();
        record(&storage, "hems", date!(2026 - 12 - 02), &later).unwrap();
        record(&storage, "automotive", date!(2026 - 12 - 02), &[9; 8]).unwrap();
        // Older than the window: left out.
        record(&storage, "hems", date!(2026 - 10 - 01), &[7; 8]).unwrap();
        let s = series(&storage, "hems", date!(2026 - 12 - 02), DAYS_SHOWN).unwrap();
        assert_eq!(
            s,
            vec![("2026-12-01".into(), before), ("2026-12-02".into(), later)]
        );
        let svg = chart("hems", &s);
        assert!(svg.contains("data-day=\"2026-12-01\" data-label=\"Lv.5\" data-count=\"3\""));
        assert!(svg.contains("data-day=\"2026-12-02\" data-label=\"Lv.5\" data-count=\"2\""));
        assert!(svg.contains("data-day=\"2026-12-02\" data-label=\"Lv.2\" data-count=\"1\""));
        assert!(
            !svg.contains("data-label=\"retired\""),
            "all-zero series are left out"
        );
    }
}
