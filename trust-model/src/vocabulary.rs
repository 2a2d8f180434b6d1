//! Closed vocabularies: values that are words on the wire, in policy and
//! evidence files and in stored records, held as enums inside the
//! engines. Each word is spelled once, in [`words!`]; an unknown word is
//! an error that names it and lists the known ones, never a panic.

/// An enum whose variants are the given words: `ALL`, `as_str`, `parse`,
/// `Display`, and serde as the word (an unknown word in a file is refused
/// with the known ones listed).
macro_rules! words {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the vocabulary lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// The value `word` names (exactly, lower-case).
            pub fn parse(word: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == word)
            }

            /// The known words, comma-separated (for error messages).
            pub fn known() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::ModelError;

            fn from_str(word: &str) -> Result<Self, Self::Err> {
                Self::parse(word).ok_or_else(|| $crate::ModelError::UnknownWord {
                    what: $what,
                    word: $crate::sector::truncate(word),
                    known: Self::known(),
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

words! {
    /// A kind of anomaly a gateway may report (the IoT secure gateway field
    /// trial's detections), as reports and detection templates name it.
    pub enum AnomalyKind ("anomaly kind") {
        /// Messages more often than the device's profile.
        FrequencyHigh = "frequency-high",
        /// Messages less often than the device's profile.
        FrequencyLow = "frequency-low",
        /// No message for longer than expected.
        Silence = "silence",
        /// Many authentications in a short time.
        AuthBurst = "auth-burst",
        /// Activity outside the device's usual hours.
        UnusualHours = "unusual-hours",
        /// Timestamps that do not fit the clock.
        AbnormalTimestamp = "abnormal-timestamp",
        /// Traffic volume that does not match what the device declares.
        VolumeMismatch = "volume-mismatch",
        /// Traffic from another source than the device's.
        SourceMismatch = "source-mismatch",
        /// A payload larger than allowed.
        OversizePayload = "oversize-payload",
        /// A payload that does not parse.
        MalformedPayload = "malformed-payload",
        /// Firmware older than the one last seen.
        FirmwareDowngrade = "firmware-downgrade",
        /// A process the device's profile does not list.
        UnknownProcess = "unknown-process",
    }
}

words! {
    /// The type of one evidence item a manufacturer declares.
    pub enum EvidenceKind ("evidence type") {
        /// A third-party (or self-assessed) security evaluation.
        Evaluation = "evaluation",
        /// Where the device keeps its keys.
        HardwareRootOfTrust = "hardware-root-of-trust",
        /// Whether updates are authenticated.
        SecureUpdate = "secure-update",
        /// The end of support.
        SupportedUntil = "supported-until",
    }
}

words! {
    /// How a model registry change moved a device of its fleet, as the
    /// device's trust history names it.
    pub enum FleetEvent ("fleet event") {
        /// The model was suspended: so is the device.
        Suspended = "model suspended",
        /// The model's suspension was lifted: the device is active again.
        Reinstated = "model reinstated",
        /// The model's level moved the device's.
        Level = "model level",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    /// Every word reads back as its value, and text, serde and `parse`
    /// agree.
    #[test]
    fn every_word_round_trips() {
        for &kind in AnomalyKind::ALL {
            assert_eq!(kind.as_str().parse::<AnomalyKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<AnomalyKind>(&json).unwrap(), kind);
        }
        for &kind in EvidenceKind::ALL {
            assert_eq!(kind.as_str().parse::<EvidenceKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        for &fleet in FleetEvent::ALL {
            assert_eq!(fleet.as_str().parse::<FleetEvent>(), Ok(fleet));
        }
        assert_eq!(AnomalyKind::ALL.len(), 12);
        assert_eq!(EvidenceKind::ALL.len(), 4);
    }

    /// An unknown word is an error naming it and listing the known ones,
    /// in text and in files alike.
    #[test]
    fn an_unknown_word_is_named_with_the_known_ones() {
        let err = "alien-signal"
            .parse::<AnomalyKind>()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "unknown anomaly kind \"alien-signal\"; known: {}",
                AnomalyKind::known()
            )
        );
        assert!(
            err.contains("frequency-high, frequency-low, silence"),
            "{err}"
        );
        let err = serde_json::from_str::<EvidenceKind>("\"Evaluation\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown evidence type \"Evaluation\"; known: evaluation, hardware-root-of-trust, secure-update, supported-until"), "{err}");
    }

    proptest! {
        /// Any text either names a value whose word is exactly that text,
        /// or is refused: nothing panics and nothing is read loosely.
        #[test]
        fn parsing_any_text_is_exact(text in "\\PC{0,40}") {
            match text.parse::<AnomalyKind>() {
                Ok(kind) => prop_assert_eq!(kind.as_str(), text.as_str()),
                Err(e) => prop_assert!(e.to_string().starts_with("unknown anomaly kind")),
            }
            match text.parse::<EvidenceKind>() {
                Ok(kind) => prop_assert_eq!(kind.as_str(), text.as_str()),
                Err(e) => prop_assert!(e.to_string().starts_with("unknown evidence type")),
            }
        }
    }
}
