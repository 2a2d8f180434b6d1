//! The changes of a registered model's record, as its history names them.

use std::fmt;

use super::{Scan, stored_as_text};
use crate::ModelStatus;

/// What one entry of a model record's history changed. Written by the
/// model registry; stored in the record and shown as its text (see the
/// module's note on reading stored text).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelChange {
    /// The model was registered.
    Registered {
        /// The level its evidence earned.
        level: u8,
        /// Its status.
        status: ModelStatus,
    },
    /// An evaluation was registered (or a self-assessment declared).
    EvaluationAdded {
        /// Declared by the manufacturer itself.
        self_assessed: bool,
        /// Its scheme.
        scheme: String,
        /// Its result.
        result: String,
        /// Its certificate number.
        certificate_number: String,
    },
    /// An evaluation (or self-assessment) was withdrawn.
    EvaluationWithdrawn {
        /// Its scheme.
        scheme: String,
        /// Its result.
        result: String,
        /// Its certificate number.
        certificate_number: String,
    },
    /// An operator suspended the model.
    Suspended,
    /// An operator lifted the model's suspension.
    SuspensionLifted,
    /// Time changed the assessment (an evaluation or the support period
    /// expired).
    Reassessed {
        /// Level before.
        from: u8,
        /// Level after.
        to: u8,
        /// Status before.
        status_from: ModelStatus,
        /// Status after.
        status_to: ModelStatus,
    },
    /// A text in none of the forms above, kept as it was stored.
    Recorded(String),
}

stored_as_text!(ModelChange);

impl ModelChange {
    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registered { level, status } => write!(f, "registered level {level} ({status})"),
            Self::EvaluationAdded {
                self_assessed,
                scheme,
                result,
                certificate_number,
            } => {
                let what = if *self_assessed {
                    "self-assessment"
                } else {
                    "evaluation"
                };
                write!(
                    f,
                    "{what} {scheme}:{result} ({certificate_number}) registered"
                )
            }
            Self::EvaluationWithdrawn {
                scheme,
                result,
                certificate_number,
            } => write!(
                f,
                "evaluation {scheme}:{result} ({certificate_number}) withdrawn"
            ),
            Self::Suspended => f.write_str("suspended"),
            Self::SuspensionLifted => f.write_str("suspension lifted"),
            Self::Reassessed {
                from,
                to,
                status_from,
                status_to,
            } => write!(
                f,
                "re-assessed: level {from} -> {to} ({status_from} -> {status_to})"
            ),
            Self::Recorded(text) => f.write_str(text),
        }
    }

    /// The variant `text` has the shape of, if any (`parse` then checks
    /// that it is written back as the same text).
    fn scan(text: &str) -> Option<Self> {
        match text {
            "suspended" => return Some(Self::Suspended),
            "suspension lifted" => return Some(Self::SuspensionLifted),
            _ => {}
        }
        let mut s = Scan(text);
        if s.take("registered level ").is_some() {
            return Some(Self::Registered {
                level: s.number_until(" (")?,
                status: ModelStatus::parse(s.rest_before(")")?)?,
            });
        }
        if s.take("re-assessed: level ").is_some() {
            return Some(Self::Reassessed {
                from: s.number_until(" -> ")?,
                to: s.number_until(" (")?,
                status_from: ModelStatus::parse(s.until(" -> ")?)?,
                status_to: ModelStatus::parse(s.rest_before(")")?)?,
            });
        }
        let self_assessed = s.take("self-assessment ").is_some();
        if !self_assessed {
            s.take("evaluation ")?;
        }
        let scheme = s.until(":")?.to_owned();
        let result = s.until(" (")?.to_owned();
        let withdrawn = s.0.ends_with(") withdrawn");
        if withdrawn && !self_assessed {
            return Some(Self::EvaluationWithdrawn {
                scheme,
                result,
                certificate_number: s.rest_before(") withdrawn")?.to_owned(),
            });
        }
        Some(Self::EvaluationAdded {
            self_assessed,
            scheme,
            result,
            certificate_number: s.rest_before(") registered")?.to_owned(),
        })
    }
}
