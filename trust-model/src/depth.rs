//! A cooperation depth: a rung of `cooperation.toml`'s ladder (`none`,
//! `observe`, `exchange`, ...). The policy names the rungs, so a depth is
//! a name the policy gave, not a fixed list; decisions carry it typed so
//! that a depth is never confused with other text, and "no depth" (an
//! operation whose need was never reached) is `None`, not an empty name.

use std::fmt;

use crate::ModelError;

/// The name of one rung of the cooperation ladder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CooperationDepth(String);

impl CooperationDepth {
    /// The name of the first rung of every ladder (no cooperation).
    pub const NONE: &'static str = "none";

    /// `none`: no cooperation at all.
    pub fn none() -> Self {
        Self(Self::NONE.to_owned())
    }

    /// A depth by the name a policy or an answer gives it: any non-empty
    /// name of at most 64 characters without control characters (the
    /// policy checks that it names one of its rungs).
    pub fn parse(name: &str) -> Result<Self, ModelError> {
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(ModelError::UnknownWord {
                what: "cooperation depth",
                word: crate::sector::truncate(name),
                known: "a name of cooperation.toml's depths".into(),
            });
        }
        Ok(Self(name.to_owned()))
    }

    /// A name [`CooperationDepth::parse`] accepted when its policy was
    /// read.
    pub(crate) fn validated(name: String) -> Self {
        Self(name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CooperationDepth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for CooperationDepth {
    type Err = ModelError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::parse(name)
    }
}

impl PartialEq<&str> for CooperationDepth {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for CooperationDepth {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn none_is_the_first_rung_and_empty_is_no_name() {
        assert_eq!(CooperationDepth::none().as_str(), "none");
        assert_eq!(
            CooperationDepth::parse("none"),
            Ok(CooperationDepth::none())
        );
        for bad in ["", "a\nb", &"x".repeat(65)] {
            let e = CooperationDepth::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("unknown cooperation depth"), "{e}");
        }
    }

    proptest! {
        /// A name that parses displays as itself and parses again to the
        /// same depth.
        #[test]
        fn names_round_trip(name in "\\PC{1,64}") {
            let depth = CooperationDepth::parse(&name).unwrap();
            prop_assert_eq!(depth.to_string(), name.clone());
            prop_assert_eq!(depth.to_string().parse::<CooperationDepth>().unwrap(), depth);
        }
    }
}
