//! The ticket profile files the V2X authorities issue by, and how a policy
//! reload replaces the profile in force: the SCMS authorities'
//! `v2x-tickets.toml` and the ETSI authorization authority's
//! `v2x-tickets-etsi.toml`, by one mechanism.
//!
//! Both sit in a [`ProfileSlot`] the authorities read once per request.
//! A new version of the policies is checked before it is taken
//! ([`Policies::check_before`]): a file that does not parse, that moves
//! what issued tickets carry ([`ProfileSlot::check_replacement`]) or that
//! grants what the issuing certificate may not issue refuses the whole
//! reload, and the profile in force stays. A separated ETSI AA, which runs
//! without the CA's policies, reads its file again on SIGHUP and takes it
//! through the same [`TicketsFile::take`].

use trustca_scms::{ProfileSlot, TicketFormat, TicketProfile};
use trustca_v2x::Certificate;

use crate::error::{Result, ServerError};
use crate::loaded_policies::Policies;
use crate::policies::PolicyFiles;

/// One ticket profile file: its name in the policy directory, what
/// applies without it, and the ticket format its authorities issue.
#[derive(Debug)]
pub struct TicketsFile {
    /// The file's name in the policy directory.
    pub name: &'static str,
    /// The shipped text that applies without the file (`None`:
    /// [`TicketProfile::default`]).
    shipped: Option<&'static str>,
    /// The format the file must name, if its authorities issue only one.
    format: Option<TicketFormat>,
}

/// The SCMS authorities' profile (IEEE 1609.2.1 tickets).
pub const SCMS_TICKETS: TicketsFile = TicketsFile {
    name: "v2x-tickets.toml",
    shipped: None,
    format: None,
};

/// The ETSI TS 102 941 authorization authority's profile.
pub const ETSI_TICKETS: TicketsFile = TicketsFile {
    name: "v2x-tickets-etsi.toml",
    shipped: Some(include_str!("../../policies/v2x-tickets-etsi.toml")),
    format: Some(TicketFormat::EtsiTs103097),
};

impl TicketsFile {
    /// The profile of a policy set: its file, else the shipped one.
    pub fn of(&self, files: &PolicyFiles) -> Result<TicketProfile> {
        match files.iter().find(|(n, _)| n == self.name) {
            Some((_, text)) => self.parse(text, self.name),
            None => self.shipped(),
        }
    }

    /// What applies without the file.
    pub fn shipped(&self) -> Result<TicketProfile> {
        match self.shipped {
            Some(text) => self.parse(text, &format!("policies/{}", self.name)),
            None => Ok(TicketProfile::default()),
        }
    }

    /// Parses `text`, read from `source` (named in errors), and checks the
    /// format its authorities issue.
    pub fn parse(&self, text: &str, source: &str) -> Result<TicketProfile> {
        let tickets = TicketProfile::from_toml(text)
            .map_err(|e| ServerError::Policy(format!("{source}: {e}")))?;
        match self.format {
            Some(format) if tickets.format != format => Err(ServerError::Policy(format!(
                "{source}: --etsi-listen needs profile = {:?}, not {:?}",
                format.as_str(),
                tickets.format.as_str()
            ))),
            _ => Ok(tickets),
        }
    }

    /// Whether `fresh` may replace the profile in `slot`: it must not
    /// move what issued tickets carry, nor grant what `issuer` (the
    /// issuing certificate, where this process holds it) may not issue.
    pub fn check(
        &self,
        slot: &ProfileSlot,
        fresh: &TicketProfile,
        issuer: Option<&Certificate>,
    ) -> std::result::Result<(), String> {
        slot.check_replacement(fresh)
            .and_then(|()| issuer.map_or(Ok(()), |issuer| fresh.check_issuable(issuer)))
            .map_err(|e| format!("{}: {e}", self.name))
    }

    /// Puts `fresh` in force in `slot` from the next request, after
    /// [`TicketsFile::check`]; refused, the profile in force stays.
    pub fn take(
        &self,
        slot: &ProfileSlot,
        fresh: TicketProfile,
        issuer: Option<&Certificate>,
    ) -> std::result::Result<(), String> {
        self.check(slot, &fresh, issuer)?;
        slot.replace(fresh)
            .map_err(|e| format!("{}: {e}", self.name))
    }

    /// Makes the profile in `slot` follow the server's policies: every
    /// reload's file is in force from the next request, and a file
    /// [`TicketsFile::check`] refuses refuses the reload.
    pub(crate) fn follow(
        &'static self,
        policies: &Policies,
        slot: &ProfileSlot,
        issuer: Option<Certificate>,
    ) {
        let check_slot = slot.clone();
        policies.check_before(Box::new(move |version| {
            let fresh = self.of(&version.files).map_err(|e| e.to_string())?;
            self.check(&check_slot, &fresh, issuer.as_ref())
        }));
        let slot = slot.clone();
        policies.follow(Box::new(move |version| {
            let fresh = self.of(&version.files).map_err(|e| e.to_string())?;
            // Checked before the version was taken (the issuer too).
            self.take(&slot, fresh, None)
        }));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn files(name: &str, text: &str) -> PolicyFiles {
        vec![(name.to_owned(), text.to_owned())]
    }

    #[test]
    fn each_file_falls_back_to_what_ships() {
        let scms = SCMS_TICKETS.of(&Vec::new()).unwrap();
        assert_eq!(scms.format, TicketProfile::default().format);
        let etsi = ETSI_TICKETS.of(&Vec::new()).unwrap();
        assert_eq!(etsi.format, TicketFormat::EtsiTs103097);
    }

    #[test]
    fn the_etsi_file_must_name_the_etsi_format() {
        let scms_text = include_str!("../../policies/v2x-tickets.toml");
        let err = ETSI_TICKETS
            .of(&files(ETSI_TICKETS.name, scms_text))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "v2x-tickets-etsi.toml: --etsi-listen needs profile = \"etsi-ts-103-097\""
            ),
            "{err}"
        );
        // The SCMS file may name either.
        SCMS_TICKETS
            .of(&files(SCMS_TICKETS.name, scms_text))
            .unwrap();
    }

    #[test]
    fn a_taken_profile_is_in_force_and_a_moved_clock_is_refused() {
        let shipped = ETSI_TICKETS.shipped().unwrap();
        let slot = ProfileSlot::from(shipped.clone());
        let fewer = TicketProfile {
            certificates_per_period: 3,
            ..shipped.clone()
        };
        ETSI_TICKETS.take(&slot, fewer, None).unwrap();
        assert_eq!(slot.current().certificates_per_period, 3);
        let moved = TicketProfile {
            period_hours: 24,
            ..shipped
        };
        let err = ETSI_TICKETS.take(&slot, moved, None).unwrap_err();
        assert!(
            err.starts_with("v2x-tickets-etsi.toml: ")
                && err.contains("period_hours cannot change"),
            "{err}"
        );
        assert_eq!(slot.current().period_hours, 168);
        assert_eq!(slot.current().certificates_per_period, 3);
    }
}
