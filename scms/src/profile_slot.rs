//! The ticket profile in force for the authorities of one process, replaced
//! whole when the server reloads its policies.
//!
//! The registration authority and the pseudonym CA read the slot once per
//! request or batch, so a reload applies from the next one and never mixes
//! two versions inside one. What tickets already issued carry and what the
//! authorities' keys and CRLs are bound to (the ticket format, the sector,
//! the period clock and the CRL series) cannot change while they run: a
//! reload that moves one of them is refused and the profile in force stays.

use std::sync::{Arc, PoisonError, RwLock};

use crate::error::{Result, ScmsError};
use crate::profile::TicketProfile;

/// The ticket profile in force (cloning shares it).
#[derive(Debug, Clone)]
pub struct ProfileSlot {
    current: Arc<RwLock<Arc<TicketProfile>>>,
}

impl From<TicketProfile> for ProfileSlot {
    fn from(profile: TicketProfile) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(profile))),
        }
    }
}

impl ProfileSlot {
    /// The profile in force now.
    pub fn current(&self) -> Arc<TicketProfile> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether `fresh` may replace the profile in force: refused when it
    /// moves what issued tickets carry or the authorities are bound to.
    pub fn check_replacement(&self, fresh: &TicketProfile) -> Result<()> {
        let was = self.current();
        let moved: Vec<&str> = [
            ("profile", was.format != fresh.format),
            ("sector", was.sector != fresh.sector),
            ("epoch_unix", was.epoch != fresh.epoch),
            ("period_hours", was.period_hours != fresh.period_hours),
            ("crl_series", was.crl_series != fresh.crl_series),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        if moved.is_empty() {
            return Ok(());
        }
        Err(ScmsError::Profile(format!(
            "{} cannot change while the authorities run (issued tickets carry them: their periods, sector and CRL series); restart to change them",
            moved.join(", ")
        )))
    }

    /// Puts `fresh` in force from the next request, after
    /// [`ProfileSlot::check_replacement`].
    pub fn replace(&self, fresh: TicketProfile) -> Result<()> {
        self.check_replacement(&fresh)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(fresh);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_batch_size_change_is_taken_and_a_moved_clock_is_refused() {
        let slot = ProfileSlot::from(TicketProfile::default());
        let reader = slot.clone();
        let fewer = TicketProfile {
            certificates_per_period: 5,
            ..TicketProfile::default()
        };
        slot.replace(fewer).unwrap();
        assert_eq!(reader.current().certificates_per_period, 5);

        let moved = TicketProfile {
            period_hours: 24,
            crl_series: 9,
            ..TicketProfile::default()
        };
        let err = slot.replace(moved).unwrap_err().to_string();
        assert!(
            err.contains("period_hours, crl_series cannot change"),
            "{err}"
        );
        assert_eq!(reader.current().period_hours, 168);
        assert_eq!(reader.current().certificates_per_period, 5);
    }
}
