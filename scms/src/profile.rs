//! The authorization-ticket profile: periods, tickets per period, and which
//! ITS-AIDs (PSIDs) and SSP bits a vehicle of each trust level gets. Loaded
//! from `policies/v2x-tickets.toml`; [`TicketProfile::default`] is the
//! shipped file.

use std::collections::BTreeMap;

use trustca_v2x::{
    Certificate, Duration, PeriodClock, PsidGroupPermissions, PsidSsp, Ssp, SspRange,
    SubjectAssurance, SubjectPermissions, Time32, ValidityPeriod,
};

use crate::error::{Result, ScmsError};

/// The shipped profile (`policies/v2x-tickets.toml`).
pub const DEFAULT_PROFILE_TOML: &str = include_str!("../../policies/v2x-tickets.toml");

/// Largest period index: 1609.2's `iCert` (`IValue`) is a `Uint16`.
pub const MAX_PERIOD: u64 = u16::MAX as u64;

/// One row of the permission table: from `min_level` on, a vehicle's
/// tickets carry `psid` with `ssp`. For a PSID listed at several levels the
/// row with the highest `min_level` not above the vehicle's level wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionRow {
    /// Lowest trust level that gets this permission.
    pub min_level: u8,
    /// The ITS-AID.
    pub psid: u64,
    /// `bitmapSsp` octets (version octet first), if any.
    pub ssp: Option<Vec<u8>>,
}

/// Which certificate profile a deployment's authorization tickets follow
/// (`profile` in the ticket profile file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TicketFormat {
    /// `scms-ieee-1609.2` (the default): SCMS tickets with `linkageData`
    /// ids from the separated authorities (`trustca-scms`).
    ScmsIeee1609Dot2,
    /// `etsi-ts-103-097`: EU C-ITS authorization tickets in the
    /// `EtsiTs103097Certificate` profile (id `none`, `cracaId` 000000,
    /// `crlSeries` 0), issued through ETSI TS 102 941 enrolment and
    /// authorization (`trustca-etsi`).
    EtsiTs103097,
}

impl TicketFormat {
    /// The name used in the profile file.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketFormat::ScmsIeee1609Dot2 => "scms-ieee-1609.2",
            TicketFormat::EtsiTs103097 => "etsi-ts-103-097",
        }
    }
}

/// The profile the pseudonym CA issues under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketProfile {
    /// Version string of the file.
    pub version: String,
    /// The certificate profile of the tickets.
    pub format: TicketFormat,
    /// Sector the tickets are for.
    pub sector: String,
    /// Unix time at which period 0 starts.
    pub epoch: i64,
    /// Period length in hours.
    pub period_hours: u16,
    /// Validity added before the period's start and after its end, hours.
    pub overlap_hours: u16,
    /// Tickets per vehicle and period.
    pub certificates_per_period: u32,
    /// Periods one request may cover.
    pub max_periods_per_request: u32,
    /// How far ahead of the current period a vehicle may hold tickets.
    pub max_periods_ahead: u32,
    /// Minimum live trust level for tickets.
    pub min_level: u8,
    /// `crlSeries` of every ticket (the linkage CRL's series).
    pub crl_series: u16,
    /// The permission table.
    pub permissions: Vec<PermissionRow>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    version: String,
    #[serde(default)]
    profile: Option<String>,
    sector: String,
    epoch_unix: i64,
    period_hours: u16,
    overlap_hours: u16,
    certificates_per_period: u32,
    max_periods_per_request: u32,
    max_periods_ahead: u32,
    min_level: u8,
    crl_series: u16,
    permissions: Vec<PermissionFile>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionFile {
    min_level: u8,
    psid: u64,
    #[serde(default)]
    ssp: Option<String>,
}

impl Default for TicketProfile {
    fn default() -> Self {
        match Self::from_toml(DEFAULT_PROFILE_TOML) {
            Ok(p) => p,
            // The shipped file is checked by a unit test; this arm only
            // keeps `default` total.
            Err(_) => Self {
                version: "invalid".into(),
                format: TicketFormat::ScmsIeee1609Dot2,
                sector: "automotive".into(),
                epoch: 1_704_067_200,
                period_hours: 168,
                overlap_hours: 1,
                certificates_per_period: 20,
                max_periods_per_request: 52,
                max_periods_ahead: 156,
                min_level: 2,
                crl_series: 1,
                permissions: vec![PermissionRow {
                    min_level: 2,
                    psid: 36,
                    ssp: Some(vec![1, 0, 0]),
                }],
            },
        }
    }
}

impl TicketProfile {
    /// Parses and checks a profile file.
    pub fn from_toml(text: &str) -> Result<Self> {
        let f: ProfileFile = toml::from_str(text).map_err(|e| ScmsError::Config(e.to_string()))?;
        let bad = |m: &str| Err(ScmsError::Config(m.to_owned()));
        let format = match f.profile.as_deref() {
            None | Some("scms-ieee-1609.2") => TicketFormat::ScmsIeee1609Dot2,
            Some("etsi-ts-103-097") => TicketFormat::EtsiTs103097,
            Some(other) => {
                return Err(ScmsError::Config(format!(
                    "profile {other:?} is not one of \"scms-ieee-1609.2\", \"etsi-ts-103-097\""
                )));
            }
        };
        // TS 103 097 tickets are not revoked one by one: they are short-lived
        // and name no CRL series (the linkage CRL is an SCMS construct).
        if format == TicketFormat::EtsiTs103097 && f.crl_series != 0 {
            return bad("crl_series must be 0 with profile \"etsi-ts-103-097\"");
        }
        if f.period_hours == 0 || f.period_hours > 24 * 366 {
            return bad("period_hours must be 1..=8784");
        }
        let duration = u32::from(f.period_hours) + 2 * u32::from(f.overlap_hours);
        if duration > u32::from(u16::MAX) {
            return bad("period_hours + 2 × overlap_hours must fit a Uint16 of hours");
        }
        // jmax in an IEEE 1609.2 linkage CRL is a Uint8.
        if !(1..=255).contains(&f.certificates_per_period) {
            return bad("certificates_per_period must be 1..=255 (the linkage CRL's jmax)");
        }
        if !(1..=260).contains(&f.max_periods_per_request) {
            return bad("max_periods_per_request must be 1..=260");
        }
        if f.max_periods_ahead < f.max_periods_per_request {
            return bad("max_periods_ahead must be at least max_periods_per_request");
        }
        if !(1..=5).contains(&f.min_level) {
            return bad("min_level must be 1..=5");
        }
        let mut permissions = Vec::with_capacity(f.permissions.len());
        for p in f.permissions {
            if !(1..=5).contains(&p.min_level) {
                return bad("a permission's min_level must be 1..=5");
            }
            if p.psid > 0x0FFF_FFFF {
                return bad("psid must be below 2^28");
            }
            let ssp = match p.ssp {
                None => None,
                Some(s) => {
                    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
                    let bytes = hex_decode(&compact)
                        .ok_or_else(|| ScmsError::Config(format!("ssp {s:?} is not hex")))?;
                    if bytes.is_empty() || bytes.len() > 31 {
                        return bad("ssp must be 1..=31 octets (bitmapSsp)");
                    }
                    Some(bytes)
                }
            };
            permissions.push(PermissionRow {
                min_level: p.min_level,
                psid: p.psid,
                ssp,
            });
        }
        if permissions.is_empty() {
            return bad("the permission table is empty");
        }
        Ok(Self {
            version: f.version,
            format,
            sector: f.sector,
            epoch: f.epoch_unix,
            period_hours: f.period_hours,
            overlap_hours: f.overlap_hours,
            certificates_per_period: f.certificates_per_period,
            max_periods_per_request: f.max_periods_per_request,
            max_periods_ahead: f.max_periods_ahead,
            min_level: f.min_level,
            crl_series: f.crl_series,
            permissions,
        })
    }

    /// Period length in seconds.
    pub fn period_seconds(&self) -> i64 {
        i64::from(self.period_hours) * 3600
    }

    /// The profile's periods (`trustca_v2x::PeriodClock`).
    pub fn clock(&self) -> PeriodClock {
        PeriodClock::new(self.epoch, u64::from(self.period_hours) * 3600)
    }

    /// The period containing unix time `t` (`None` before the epoch).
    pub fn period_at(&self, t: i64) -> Option<u64> {
        self.clock().period_at(t)
    }

    /// The validity of period `period`'s tickets: from the period's start
    /// minus the overlap, for period + 2 × overlap hours.
    pub fn validity(&self, period: u64) -> Result<ValidityPeriod> {
        if period > MAX_PERIOD {
            return Err(ScmsError::Profile(format!(
                "period {period} does not fit iCert (Uint16)"
            )));
        }
        let start = self.clock().start_of(period) - i64::from(self.overlap_hours) * 3600;
        let hours = self.period_hours + 2 * self.overlap_hours;
        Ok(ValidityPeriod {
            start: Time32::from_unix(start)?,
            duration: Duration::Hours(hours),
        })
    }

    /// `appPermissions` for a vehicle of trust level `level` (sorted by
    /// PSID, as COER's canonical order does not require but relying parties
    /// find easier to read).
    pub fn permissions_for(&self, level: u8) -> Result<Vec<PsidSsp>> {
        if level < self.min_level {
            return Err(ScmsError::LevelTooLow {
                level,
                min: self.min_level,
            });
        }
        let mut chosen: BTreeMap<u64, &PermissionRow> = BTreeMap::new();
        for row in self.permissions.iter().filter(|r| r.min_level <= level) {
            match chosen.get(&row.psid) {
                Some(prev) if prev.min_level >= row.min_level => {}
                _ => {
                    chosen.insert(row.psid, row);
                }
            }
        }
        if chosen.is_empty() {
            return Err(ScmsError::LevelTooLow {
                level,
                min: self.min_level,
            });
        }
        Ok(chosen
            .values()
            .map(|r| PsidSsp {
                psid: r.psid,
                ssp: r.ssp.clone().map(Ssp::Bitmap),
            })
            .collect())
    }

    /// Refuses a profile that grants a PSID (or an SSP) the issuing
    /// certificate may not issue: such tickets would be rejected by every
    /// relying party that checks the chain's permissions.
    pub fn check_issuable(&self, issuer: &Certificate) -> Result<()> {
        let groups = issuer
            .tbs()
            .cert_issue_permissions
            .as_deref()
            .unwrap_or(&[]);
        for row in &self.permissions {
            let allowed = groups.iter().any(|g| {
                g.ee_type & PsidGroupPermissions::EE_APP != 0
                    && match &g.subject_permissions {
                        SubjectPermissions::All => true,
                        SubjectPermissions::Explicit(ranges) => ranges.iter().any(|r| {
                            r.psid == row.psid
                                && match (&row.ssp, &r.ssp_range) {
                                    (None, _) => true,
                                    (Some(_), Some(SspRange::All)) => true,
                                    (Some(ssp), Some(SspRange::Bitmap { value, mask })) => {
                                        ssp.len() == value.len()
                                            && ssp
                                                .iter()
                                                .zip(value)
                                                .zip(mask)
                                                .all(|((s, v), m)| (s & m) == (v & m))
                                    }
                                    _ => false,
                                }
                        }),
                    }
            });
            if !allowed {
                return Err(ScmsError::Config(format!(
                    "the pseudonym CA certificate may not issue PSID {} with this SSP \
                     (profile {}, from level {})",
                    row.psid, self.version, row.min_level
                )));
            }
        }
        Ok(())
    }

    /// The `assuranceLevel` octet for trust level `level`.
    pub fn assurance(&self, level: u8) -> Result<SubjectAssurance> {
        Ok(SubjectAssurance::from_trust_level(level)?)
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profile_parses_and_grades_permissions() {
        let p = TicketProfile::from_toml(DEFAULT_PROFILE_TOML).unwrap();
        assert_eq!(p, TicketProfile::default());
        assert!(matches!(
            p.permissions_for(1),
            Err(ScmsError::LevelTooLow { level: 1, .. })
        ));
        let l2: Vec<u64> = p
            .permissions_for(2)
            .unwrap()
            .iter()
            .map(|x| x.psid)
            .collect();
        let l4: Vec<u64> = p
            .permissions_for(4)
            .unwrap()
            .iter()
            .map(|x| x.psid)
            .collect();
        assert_eq!(l2, vec![36]);
        assert!(l4.contains(&36) && l4.contains(&37) && l4.len() > l2.len());
        // A higher level never loses a PSID.
        for level in 2..5u8 {
            let lo: Vec<u64> = p
                .permissions_for(level)
                .unwrap()
                .iter()
                .map(|x| x.psid)
                .collect();
            let hi: Vec<u64> = p
                .permissions_for(level + 1)
                .unwrap()
                .iter()
                .map(|x| x.psid)
                .collect();
            assert!(lo.iter().all(|x| hi.contains(x)), "level {level}");
        }
    }

    #[test]
    fn validity_covers_the_period_with_overlap() {
        let p = TicketProfile::default();
        let v = p.validity(100).unwrap();
        let start = p.epoch + 100 * p.period_seconds();
        assert_eq!(v.start.to_unix(), start - 3600 * i64::from(p.overlap_hours));
        assert!(v.contains(Time32::from_unix(start).unwrap()));
        assert!(v.contains(Time32::from_unix(start + p.period_seconds() - 1).unwrap()));
        assert!(p.validity(MAX_PERIOD + 1).is_err());
        assert_eq!(p.period_at(start + 5), Some(100));
        assert_eq!(p.period_at(p.epoch - 1), None);
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let good = DEFAULT_PROFILE_TOML;
        for (from, to, needle) in [
            ("period_hours = 168", "period_hours = 0", "period_hours"),
            ("min_level = 2", "min_level = 9", "min_level"),
            (
                "certificates_per_period = 20",
                "certificates_per_period = 0",
                "certificates_per_period",
            ),
            ("ssp = \"01 00 00\"", "ssp = \"zz\"", "hex"),
        ] {
            assert!(good.contains(from), "{from}");
            let text = good.replacen(from, to, 1);
            let err = TicketProfile::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert!(TicketProfile::from_toml("version = 1").is_err());
    }

    #[test]
    fn the_ticket_format_is_chosen_per_deployment() {
        assert_eq!(
            TicketProfile::default().format,
            TicketFormat::ScmsIeee1609Dot2
        );
        let etsi =
            TicketProfile::from_toml(include_str!("../../policies/v2x-tickets-etsi.toml")).unwrap();
        assert_eq!(etsi.format, TicketFormat::EtsiTs103097);
        assert_eq!(etsi.crl_series, 0);
        let without = DEFAULT_PROFILE_TOML.replacen("profile = \"scms-ieee-1609.2\"\n", "", 1);
        assert_ne!(without, DEFAULT_PROFILE_TOML);
        assert_eq!(
            TicketProfile::from_toml(&without).unwrap().format,
            TicketFormat::ScmsIeee1609Dot2
        );
        let unknown = DEFAULT_PROFILE_TOML.replacen(
            "profile = \"scms-ieee-1609.2\"",
            "profile = \"x509\"",
            1,
        );
        let err = TicketProfile::from_toml(&unknown).unwrap_err().to_string();
        assert!(err.contains("\"x509\""), "{err}");
        // An ETSI deployment's tickets name no CRL series.
        let series = DEFAULT_PROFILE_TOML.replacen(
            "profile = \"scms-ieee-1609.2\"",
            "profile = \"etsi-ts-103-097\"",
            1,
        );
        let err = TicketProfile::from_toml(&series).unwrap_err().to_string();
        assert!(err.contains("crl_series must be 0"), "{err}");
    }
}
