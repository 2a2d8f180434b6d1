//! `policies/web.toml`: what each sector shows the public, where QR codes
//! point, and the limits of the public pages and the console. A sector the
//! file does not name shows nothing publicly.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::WebError;

/// What one sector exposes on public pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectorExposure {
    /// `/label/<sector>/<manufacturer>/<model>` pages exist.
    pub model_pages: bool,
    /// `/device/<label id>` pages exist (the id is opaque: it names no serial).
    pub device_pages: bool,
    /// `/lookup?urn=...` finds a device's page from its identity (for cars,
    /// a VIN lookup: off by default).
    pub serial_lookup: bool,
    /// The serial number is printed on the device page.
    pub show_serial: bool,
    /// The operator's free-text reasons are shown, not only their class.
    pub show_reasons: bool,
}

/// Limits of the public pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicLimits {
    /// Requests per minute one client address may make (a burst of as many).
    pub requests_per_minute: u32,
}

/// Limits of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleLimits {
    /// How long a console session lasts.
    pub session_minutes: u32,
    /// How long a one-time login link can be used.
    pub login_link_seconds: u32,
    /// Requests per minute one session (or, before signing in, one client
    /// address) may make on the console; generous, since people click.
    #[serde(default = "default_console_rate")]
    pub requests_per_minute: u32,
}

fn default_console_rate() -> u32 {
    600
}

/// The parsed `web.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebPolicy {
    /// What QR codes and links open, e.g. `https://labels.example.org`;
    /// empty: `https://<the web listen address>`.
    #[serde(default)]
    pub base_url: String,
    /// Limits of the public pages.
    pub public: PublicLimits,
    /// Limits of the console.
    pub console: ConsoleLimits,
    /// Exposure per sector.
    #[serde(default)]
    pub sectors: BTreeMap<String, SectorExposure>,
}

/// Shown for a sector the policy does not name: nothing public.
const HIDDEN: SectorExposure = SectorExposure {
    model_pages: false,
    device_pages: false,
    serial_lookup: false,
    show_serial: false,
    show_reasons: false,
};

impl WebPolicy {
    /// Parses `text` (named `name` in errors) and checks it against the
    /// sectors the trust policy knows.
    pub fn parse(name: &str, text: &str, known_sectors: &[String]) -> Result<Self, WebError> {
        let policy: WebPolicy = toml::from_str(text).map_err(|e| WebError::Policy {
            file: name.to_owned(),
            reason: e.to_string(),
        })?;
        let bad = |reason: String| WebError::Policy {
            file: name.to_owned(),
            reason,
        };
        for sector in policy.sectors.keys() {
            if !known_sectors.iter().any(|s| s == sector) {
                return Err(bad(format!(
                    "[sectors.{sector}]: no such sector (known: {})",
                    known_sectors.join(", ")
                )));
            }
        }
        if !(1..=100_000).contains(&policy.public.requests_per_minute) {
            return Err(bad("public.requests_per_minute must be 1-100000".into()));
        }
        if !(1..=720).contains(&policy.console.session_minutes) {
            return Err(bad("console.session_minutes must be 1-720".into()));
        }
        if !(10..=100_000).contains(&policy.console.requests_per_minute) {
            return Err(bad("console.requests_per_minute must be 10-100000".into()));
        }
        if !(10..=3600).contains(&policy.console.login_link_seconds) {
            return Err(bad("console.login_link_seconds must be 10-3600".into()));
        }
        let base = policy.base_url.trim_end_matches('/');
        if !base.is_empty()
            && (!base.starts_with("https://") || base.chars().any(|c| c.is_whitespace()))
        {
            return Err(bad(format!(
                "base_url {base:?} must be an https:// URL without spaces"
            )));
        }
        Ok(WebPolicy {
            base_url: base.to_owned(),
            ..policy
        })
    }

    /// What `sector` shows the public.
    pub fn exposure(&self, sector: &str) -> SectorExposure {
        self.sectors.get(sector).copied().unwrap_or(HIDDEN)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sectors() -> Vec<String> {
        vec!["automotive".into(), "hems".into()]
    }

    #[test]
    fn the_shipped_policy_parses_and_hides_car_serials() {
        let p = WebPolicy::parse(
            "web.toml",
            include_str!("../../policies/web.toml"),
            &["automotive".into(), "hems".into(), "healthcare".into()],
        )
        .unwrap();
        let cars = p.exposure("automotive");
        assert!(!cars.serial_lookup && !cars.show_serial);
        assert!(cars.device_pages);
        assert_eq!(p.exposure("railway"), HIDDEN);
    }

    #[test]
    fn unknown_sectors_fields_and_bad_limits_are_refused() {
        let base = "[public]\nrequests_per_minute = 60\n[console]\nsession_minutes = 15\nlogin_link_seconds = 60\n";
        assert!(WebPolicy::parse("w", base, &sectors()).is_ok());
        let e = WebPolicy::parse(
            "w",
            &format!("{base}[sectors.railway]\nmodel_pages=true\ndevice_pages=true\nserial_lookup=false\nshow_serial=false\nshow_reasons=false\n"),
            &sectors(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("railway"), "{e}");
        let e = WebPolicy::parse(
            "w",
            &base.replace("60\n[console]", "0\n[console]"),
            &sectors(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("requests_per_minute"), "{e}");
        let e = WebPolicy::parse("w", &format!("base_url = \"http://x\"\n{base}"), &sectors())
            .unwrap_err();
        assert!(e.to_string().contains("https://"), "{e}");
        assert!(WebPolicy::parse("w", &format!("{base}surprise = 1\n"), &sectors()).is_err());
    }
}
