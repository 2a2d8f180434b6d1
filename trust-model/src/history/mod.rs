//! What a history entry says changed: the trust history of a device
//! ([`DeviceChange`]) and the history of a registered model
//! ([`ModelChange`]), held typed inside the store and the engines.
//!
//! Both are stored and shown as the text trustca has always written
//! (`enrolled level=4`, `level 4 -> 2 (anomaly silence)`, ...): the text is
//! the stored form, the wire form and the CLI's, byte for byte, so records
//! written before the types existed read back unchanged and the audit
//! entries and seals that commit to stored bytes still hold.
//!
//! **Reading stored text.** A text in one of the vocabulary's forms reads
//! as its variant; any other text (a form an older build wrote, a record
//! imported from elsewhere) reads as `Recorded(text)`, never as an error:
//! a history that cannot be read would hide what happened to a device.
//! Reading is exact: a text reads as a variant only if that variant is
//! written back as the very same text, so text → value → text is always
//! the identity. The rules that read history (who set a level last) treat
//! a `Recorded` entry as neither the evidence's nor the registry's doing.

mod device;
mod model;
#[cfg(test)]
mod tests;

pub use device::DeviceChange;
pub use model::ModelChange;

/// Serde, `FromStr` and `Display` of a history vocabulary through its
/// text: serialised as the text, read back by `parse` (which never fails).
macro_rules! stored_as_text {
    ($name:ident) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.write(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(text))
            }
        }

        impl $name {
            /// The change `text` says: its variant when the text is in one
            /// of the vocabulary's forms, else `Recorded(text)`; always
            /// written back as `text`.
            pub fn parse(text: &str) -> Self {
                Self::scan(text)
                    .filter(|change| change.to_string() == text)
                    .unwrap_or_else(|| Self::Recorded(text.to_owned()))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Ok(Self::parse(&text))
            }
        }
    };
}
use stored_as_text;

/// A stored text read from the front, piece by piece; every step is `None`
/// as soon as the text does not have the expected shape.
struct Scan<'a>(&'a str);

impl<'a> Scan<'a> {
    /// Takes `piece`, which must come next.
    fn take(&mut self, piece: &str) -> Option<()> {
        self.0 = self.0.strip_prefix(piece)?;
        Some(())
    }

    /// The text up to the next `piece`, then past it.
    fn until(&mut self, piece: &str) -> Option<&'a str> {
        let (head, rest) = self.0.split_once(piece)?;
        self.0 = rest;
        Some(head)
    }

    /// A number up to the next `piece`, then past it.
    fn number_until<N: std::str::FromStr>(&mut self, piece: &str) -> Option<N> {
        self.until(piece)?.parse().ok()
    }

    /// What is left, which must end with `piece` (without it).
    fn rest_before(self, piece: &str) -> Option<&'a str> {
        self.0.strip_suffix(piece)
    }

    /// What is left.
    fn rest(self) -> &'a str {
        self.0
    }
}
