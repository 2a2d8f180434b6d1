//! The changes of a device's trust record, as its history names them.

use std::fmt;

use super::{Scan, stored_as_text};
use crate::revocation::{REASONS, reason_name};
use crate::{AnomalyKind, FleetEvent, ModelStatus, TrustStatus};

/// Written after a renewal that kept a level an operator or anomaly
/// template had set.
const DECISION_KEPT: &str = "the level set by an operator or anomaly stands";
const RENEWED: &str = "renewed";
const REENROLLED: &str = "renewed (re-enrolled after revocation with a new key)";
const RETIRED: &str = "retired (disposal): every certificate revoked";
const NO_CERTIFICATE_LEFT: &str = "revoked: no valid certificate left (last revoked for ";

/// What one entry of a device's trust history changed. Written by the
/// store's rules (issuance, revocation, transfer) and the trust engines
/// (operators, anomaly templates, the model registry); stored and shown as
/// its text (see the module's note on reading stored text).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceChange {
    /// First enrollment, at the level the evidence earned.
    Enrolled {
        /// The certificate's level.
        level: u8,
    },
    /// A renewal (a new certificate for an enrolled device).
    Renewed {
        /// The device came back from `revoked` with a new key.
        reenrolled: bool,
        /// The firmware version the renewal declared.
        firmware: String,
        /// The live level before.
        from: u8,
        /// The live level after.
        to: u8,
        /// The new certificate's level, when a level set by an operator or
        /// anomaly template stood over it (the live level stayed at most
        /// that decision).
        decision_kept: Option<u8>,
    },
    /// An operator set the level.
    LevelSet {
        /// Before.
        from: u8,
        /// After.
        to: u8,
    },
    /// An operator suspended the device.
    Suspended,
    /// An operator lifted a suspension.
    Restored,
    /// An operator retired the device (disposal): every certificate revoked.
    Retired,
    /// A bulk downgrade of its model and firmware lowered the level.
    BulkDowngrade {
        /// Before.
        from: u8,
        /// After.
        to: u8,
        /// The device's firmware version.
        firmware: String,
    },
    /// An anomaly template lowered the level.
    AnomalyLowered {
        /// Before.
        from: u8,
        /// After.
        to: u8,
        /// The anomaly reported.
        anomaly: AnomalyKind,
    },
    /// An anomaly template suspended the device.
    AnomalySuspended {
        /// The anomaly reported.
        anomaly: AnomalyKind,
    },
    /// An anomaly template revoked the device.
    AnomalyRevoked {
        /// The anomaly reported.
        anomaly: AnomalyKind,
    },
    /// The device's last valid certificate was revoked.
    CertificatesRevoked {
        /// The RFC 5280 reason code of that revocation.
        reason: u8,
    },
    /// The device took over its predecessor's trust record.
    TookOver {
        /// The predecessor's identity key.
        from: String,
        /// The level taken over.
        level: u8,
        /// The status taken over.
        status: TrustStatus,
    },
    /// The device was retired, replaced by a successor.
    ReplacedBy {
        /// The successor's identity key.
        successor: String,
    },
    /// An entry of a predecessor's history, copied to its successor.
    Copied {
        /// The predecessor's identity key.
        from: String,
        /// The entry's version in the predecessor's history.
        version: u64,
        /// What the entry said.
        change: Box<DeviceChange>,
    },
    /// A model registry change moved the device.
    ModelMoved {
        /// How it moved the device.
        event: FleetEvent,
        /// The model record (its key as text: `sector/manufacturer/model
        /// firmware range`).
        model: String,
        /// The device's level before and after, when it moved.
        levels: Option<(u8, u8)>,
        /// The model's status after the change.
        model_status: ModelStatus,
        /// The model record's version after the change.
        model_version: u64,
    },
    /// A text in none of the forms above, kept as it was stored.
    Recorded(String),
}

stored_as_text!(DeviceChange);

impl DeviceChange {
    /// Whether the live level after this entry is the one the evidence
    /// earned (an enrollment, or a renewal that kept no decision) rather
    /// than one an operator, anomaly template or the registry set.
    pub fn level_from_evidence(&self) -> bool {
        matches!(
            self,
            Self::Enrolled { .. }
                | Self::Renewed {
                    decision_kept: None,
                    ..
                }
        )
    }

    /// Whether this entry set the device's level (a copied entry: whether
    /// it set the predecessor's). A takeover is not counted: the level it
    /// brings was set by the predecessor's entries, copied before it.
    pub fn sets_level(&self) -> bool {
        match self {
            Self::Enrolled { .. }
            | Self::Renewed { .. }
            | Self::LevelSet { .. }
            | Self::BulkDowngrade { .. }
            | Self::AnomalyLowered { .. } => true,
            Self::ModelMoved { levels, .. } => levels.is_some(),
            Self::Copied { change, .. } => change.sets_level(),
            _ => false,
        }
    }

    /// Whether the model registry made this change to this device (a
    /// copied entry was made to another device).
    pub fn by_registry(&self) -> bool {
        matches!(self, Self::ModelMoved { .. })
    }

    /// Whether this is the registry's suspension of the device with its
    /// model (lifting the model's suspension restores only such devices).
    pub fn model_suspension(&self) -> bool {
        matches!(
            self,
            Self::ModelMoved {
                event: FleetEvent::Suspended,
                ..
            }
        )
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Enrolled { level } => write!(f, "enrolled level={level}"),
            Self::Renewed {
                reenrolled,
                firmware,
                from,
                to,
                decision_kept,
            } => {
                let what = if *reenrolled { REENROLLED } else { RENEWED };
                write!(f, "{what} firmware={firmware} level {from}->{to}")?;
                match decision_kept {
                    Some(level) => write!(f, " (certificate level {level}; {DECISION_KEPT})"),
                    None => Ok(()),
                }
            }
            Self::LevelSet { from, to } => write!(f, "level {from} -> {to}"),
            Self::Suspended => f.write_str("suspended"),
            Self::Restored => f.write_str("restored"),
            Self::Retired => f.write_str(RETIRED),
            Self::BulkDowngrade { from, to, firmware } => {
                write!(
                    f,
                    "bulk downgrade level {from} -> {to} (firmware {firmware})"
                )
            }
            Self::AnomalyLowered { from, to, anomaly } => {
                write!(f, "level {from} -> {to} (anomaly {anomaly})")
            }
            Self::AnomalySuspended { anomaly } => write!(f, "suspended (anomaly {anomaly})"),
            Self::AnomalyRevoked { anomaly } => write!(f, "revoked (anomaly {anomaly})"),
            Self::CertificatesRevoked { reason } => {
                write!(f, "{NO_CERTIFICATE_LEFT}{})", reason_name(*reason))
            }
            Self::TookOver {
                from,
                level,
                status,
            } => write!(
                f,
                "took over the trust record of {from} (level {level}, {status})"
            ),
            Self::ReplacedBy { successor } => {
                write!(f, "retired: replaced by successor {successor}")
            }
            Self::Copied {
                from,
                version,
                change,
            } => write!(f, "[from {from} v{version}] {change}"),
            Self::ModelMoved {
                event,
                model,
                levels,
                model_status,
                model_version,
            } => {
                write!(f, "{event}: {model}")?;
                if let Some((from, to)) = levels {
                    write!(f, " level {from} -> {to}")?;
                }
                write!(f, " ({model_status} v{model_version})")
            }
            Self::Recorded(text) => f.write_str(text),
        }
    }

    /// The variant `text` has the shape of, if any (`parse` then checks
    /// that it is written back as the same text).
    fn scan(text: &str) -> Option<Self> {
        match text {
            "suspended" => return Some(Self::Suspended),
            "restored" => return Some(Self::Restored),
            RETIRED => return Some(Self::Retired),
            _ => {}
        }
        let mut s = Scan(text);
        if s.take("enrolled level=").is_some() {
            return Some(Self::Enrolled {
                level: s.rest().parse().ok()?,
            });
        }
        if s.take("[from ").is_some() {
            let from = s.until(" v")?.to_owned();
            let version = s.number_until("] ")?;
            let change = Box::new(Self::parse(s.rest()));
            return Some(Self::Copied {
                from,
                version,
                change,
            });
        }
        if text.starts_with(RENEWED) {
            return Self::scan_renewal(text);
        }
        if s.take("level ").is_some() {
            let from = s.number_until(" -> ")?;
            let rest = s.rest();
            return Some(match rest.split_once(" (anomaly ") {
                None => Self::LevelSet {
                    from,
                    to: rest.parse().ok()?,
                },
                Some((to, anomaly)) => Self::AnomalyLowered {
                    from,
                    to: to.parse().ok()?,
                    anomaly: anomaly.strip_suffix(')')?.parse().ok()?,
                },
            });
        }
        if s.take("bulk downgrade level ").is_some() {
            return Some(Self::BulkDowngrade {
                from: s.number_until(" -> ")?,
                to: s.number_until(" (firmware ")?,
                firmware: s.rest_before(")")?.to_owned(),
            });
        }
        if s.take("suspended (anomaly ").is_some() {
            return Some(Self::AnomalySuspended {
                anomaly: s.rest_before(")")?.parse().ok()?,
            });
        }
        if s.take("revoked (anomaly ").is_some() {
            return Some(Self::AnomalyRevoked {
                anomaly: s.rest_before(")")?.parse().ok()?,
            });
        }
        if s.take(NO_CERTIFICATE_LEFT).is_some() {
            let name = s.rest_before(")")?;
            let (_, reason) = REASONS.iter().find(|(n, _)| *n == name)?;
            return Some(Self::CertificatesRevoked { reason: *reason });
        }
        if s.take("took over the trust record of ").is_some() {
            return Some(Self::TookOver {
                from: s.until(" (level ")?.to_owned(),
                level: s.number_until(", ")?,
                status: TrustStatus::parse(s.rest_before(")")?)?,
            });
        }
        if s.take("retired: replaced by successor ").is_some() {
            return Some(Self::ReplacedBy {
                successor: s.rest().to_owned(),
            });
        }
        Self::scan_model_move(text)
    }

    /// `renewed[ (re-enrolled ...)] firmware=F level A->B[ (certificate
    /// level C; the level set by an operator or anomaly stands)]`.
    fn scan_renewal(text: &str) -> Option<Self> {
        let mut s = Scan(text);
        let reenrolled = s.take(REENROLLED).is_some();
        if !reenrolled {
            s.take(RENEWED)?;
        }
        s.take(" firmware=")?;
        let firmware = s.until(" level ")?.to_owned();
        let from = s.number_until("->")?;
        let rest = s.rest();
        let (to, decision_kept) = match rest.split_once(" (certificate level ") {
            None => (rest.parse().ok()?, None),
            Some((to, kept)) => {
                let suffix = format!("; {DECISION_KEPT})");
                (
                    to.parse().ok()?,
                    Some(kept.strip_suffix(suffix.as_str())?.parse().ok()?),
                )
            }
        };
        Some(Self::Renewed {
            reenrolled,
            firmware,
            from,
            to,
            decision_kept,
        })
    }

    /// `<fleet move>: <model>[ level A -> B] (<model status> vN)`.
    fn scan_model_move(text: &str) -> Option<Self> {
        let (event, rest) = text.split_once(": ")?;
        let event = FleetEvent::parse(event)?;
        let (head, tail) = rest.strip_suffix(')')?.rsplit_once(" (")?;
        let (status, version) = tail.split_once(" v")?;
        let (model, levels) = match head.rsplit_once(" level ") {
            None => (head, None),
            Some((model, moved)) => {
                let (from, to) = moved.split_once(" -> ")?;
                (model, Some((from.parse().ok()?, to.parse().ok()?)))
            }
        };
        Some(Self::ModelMoved {
            event,
            model: model.to_owned(),
            levels,
            model_status: ModelStatus::parse(status)?,
            model_version: version.parse().ok()?,
        })
    }
}
