//! HTML for people: escaping (every value from the store or the request
//! goes through [`esc`]), the page frame with its one inline style, the
//! Content-Security-Policy that allows exactly that style (and, on the
//! audit page, one script) by hash, and the level graphic as inline SVG.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::i18n::Lang;

/// Escapes text for an HTML text node or a quoted attribute value.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters have no business on a page.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes one path segment or query value.
pub fn url_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The stylesheet of every page; its hash is in the CSP.
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f7f9}\
main{max-width:52rem;margin:0 auto;padding:1rem 1.25rem 3rem}\
header{background:#12325b;color:#fff;padding:.6rem 1.25rem;display:flex;justify-content:space-between;align-items:center}\
header a{color:#fff}\
h1{font-size:1.5rem;margin:.8rem 0}h2{font-size:1.15rem;margin:1.4rem 0 .5rem}\
table{border-collapse:collapse;width:100%;background:#fff}\
th,td{border:1px solid #d5d9e0;padding:.35rem .55rem;text-align:left;vertical-align:top}\
th{background:#eef1f5;font-weight:600}\
.status{display:inline-block;padding:.1rem .6rem;border-radius:.8rem;font-weight:700}\
.s-active{background:#d7f2dc;color:#0b5d1e}.s-restricted{background:#fff0c2;color:#6b4e00}\
.s-suspended{background:#ffe0c2;color:#7a3300}.s-revoked,.s-retired{background:#ffd6d6;color:#8a0000}\
.meaning{font-size:1.05rem}.note{color:#555;font-size:.9rem}\
.qr{float:right;margin:0 0 1rem 1rem;width:9rem}\
nav a{margin-right:.8rem}form.inline{display:inline}\
.ok{color:#0b5d1e;font-weight:700}.bad{color:#8a0000;font-weight:700}\
code,.mono{font-family:ui-monospace,monospace;word-break:break-all}";

fn hash_source(source: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, source.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// The Content-Security-Policy for a page with `script` inline (if any):
/// nothing from anywhere else, no plug-ins, no framing, forms only to us.
pub fn content_security_policy(script: Option<&str>) -> String {
    let scripts = script.map_or_else(|| "'none'".to_owned(), hash_source);
    format!(
        "default-src 'none'; style-src {}; img-src 'self'; script-src {scripts}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        hash_source(STYLE)
    )
}

/// A whole page: the frame around `body`, in `lang`, with a language
/// switch to `path` (which already carries its other query parameters).
pub fn page(lang: Lang, title: &str, path: &str, body: &str, script: Option<&str>) -> String {
    let other = match lang {
        Lang::Ja => ("en", "English"),
        _ => ("ja", "日本語"),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let script = script.map_or_else(String::new, |s| format!("<script>{s}</script>"));
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>{}</title><style>{STYLE}</style></head><body>\
<header><strong>trustca</strong><a href=\"{}{sep}lang={}\" hreflang=\"{}\">{}</a></header>\
<main>{body}</main>{script}</body></html>\n",
        lang.tag(),
        esc(title),
        esc(path),
        other.0,
        other.0,
        other.1,
    )
}

/// Colours of the level graphic, weakest to strongest.
const LEVEL_COLOURS: [&str; 5] = ["#c62828", "#ef6c00", "#f9a825", "#7cb342", "#2e7d32"];

/// The trust level as five bars, `level` of them filled, with the level in
/// words for screen readers; a device not trusted now shows all grey.
pub fn level_graphic(lang: Lang, level: u8, trusted: bool) -> String {
    let level = level.clamp(1, 5);
    let mut svg = format!(
        "<svg class=\"level\" role=\"img\" width=\"260\" height=\"74\" viewBox=\"0 0 260 74\" xmlns=\"http://www.w3.org/2000/svg\" data-level=\"{level}\"><title>{} {level} / 5</title>",
        esc(lang.t("Trust level"))
    );
    for i in 0..5u8 {
        let filled = i < level && trusted;
        let colour = if filled {
            LEVEL_COLOURS[usize::from(level - 1)]
        } else {
            "#d5d9e0"
        };
        let h = 14 + u32::from(i) * 9;
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"26\" height=\"{h}\" rx=\"3\" fill=\"{colour}\"/>",
            u32::from(i) * 32,
            64 - h
        );
    }
    let _ = write!(
        svg,
        "<text x=\"172\" y=\"52\" font-size=\"34\" font-weight=\"700\" fill=\"#1b1b1b\">Lv.{level}</text></svg>"
    );
    svg
}

/// A horizontal bar chart: one bar per (label, count), scaled to the largest.
pub fn bar_chart(title: &str, bars: &[(String, u64)]) -> String {
    let max = bars.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let height = 24 * bars.len() as u32 + 8;
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" width=\"480\" height=\"{height}\" viewBox=\"0 0 480 {height}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        esc(title)
    );
    for (i, (label, n)) in bars.iter().enumerate() {
        let y = 4 + 24 * i as u32;
        let w = (300 * n / max) as u32;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text><rect x=\"90\" y=\"{y}\" width=\"{w}\" height=\"18\" fill=\"#12325b\" data-label=\"{}\" data-count=\"{n}\"/><text x=\"{}\" y=\"{}\" font-size=\"13\">{n}</text>",
            y + 14,
            esc(label),
            esc(label),
            96 + w,
            y + 14
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_inert_in_text_and_attributes() {
        let hostile = "<script>alert(1)</script>\"' onerror=x &amp;\u{7}";
        let out = esc(hostile);
        for bad in ["<", ">", "\"", "'", "\u{7}"] {
            assert!(!out.contains(bad), "{out}");
        }
        assert!(out.contains("&amp;amp;"));
        let page = page(Lang::En, hostile, "/x?a=\"><script>", "", None);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("\"><script>"), "{page}");
    }

    #[test]
    fn the_csp_allows_exactly_the_inline_style() {
        let csp = content_security_policy(None);
        assert!(csp.starts_with("default-src 'none'"));
        assert!(csp.contains(&hash_source(STYLE)));
        assert!(csp.contains("script-src 'none'"));
        assert!(content_security_policy(Some("x()")).contains(&hash_source("x()")));
    }

    #[test]
    fn the_level_graphic_fills_as_many_bars_as_the_level() {
        let svg = level_graphic(Lang::En, 3, true);
        assert_eq!(svg.matches(LEVEL_COLOURS[2]).count(), 3);
        assert!(svg.contains("data-level=\"3\""));
        assert_eq!(
            level_graphic(Lang::En, 3, false)
                .matches(LEVEL_COLOURS[2])
                .count(),
            0
        );
        assert_eq!(url_component("a b/<c>"), "a%20b%2F%3Cc%3E");
    }
}
