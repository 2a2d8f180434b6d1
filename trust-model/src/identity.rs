//! Device identities: (sector, manufacturer, model, serial), validated so
//! that they can be written into a URN, a DNS name and a store key without
//! escaping or ambiguity.

use std::fmt;

use crate::sector::truncate;
use crate::{ModelError, SectorName};

/// The identity of one device, enrolled at most once per sector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DeviceIdentity {
    /// The device's sector.
    pub sector: SectorName,
    /// Manufacturer name, as in the manufacturer's credential.
    pub manufacturer: String,
    /// Model name.
    pub model: String,
    /// Serial number.
    pub serial: String,
}

/// Manufacturer, model and serial become DNS labels, so they are limited to
/// letters, digits and '-' (no leading/trailing '-'), at most 63 characters.
/// That is also a subset of the PrintableString alphabet, which the subject
/// `serialNumber` attribute (X.520) must use, within its 64-character bound.
fn validate_label(field: &'static str, value: &str) -> Result<(), ModelError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && !value.starts_with('-')
        && !value.ends_with('-')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidAttribute {
            field,
            value: truncate(value),
            reason: "use 1-63 characters of A-Z, a-z, 0-9 and '-' (not at either end)",
        })
    }
}

/// Firmware versions: 1-32 characters of letters, digits, '.', '-', '+', '_'.
pub fn validate_firmware_version(value: &str) -> Result<(), ModelError> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidAttribute {
            field: "firmware version",
            value: truncate(value),
            reason: "use 1-32 characters of A-Z, a-z, 0-9, '.', '-', '+', '_'",
        })
    }
}

impl DeviceIdentity {
    /// Validates every part of an identity.
    pub fn new(
        sector: SectorName,
        manufacturer: &str,
        model: &str,
        serial: &str,
    ) -> Result<Self, ModelError> {
        validate_label("manufacturer", manufacturer)?;
        validate_label("model", model)?;
        validate_label("serial", serial)?;
        Ok(Self {
            sector,
            manufacturer: manufacturer.to_owned(),
            model: model.to_owned(),
            serial: serial.to_owned(),
        })
    }

    /// `urn:trustca:<sector>:<manufacturer>:<model>:<serial>`, the SAN URI.
    pub fn urn(&self) -> String {
        format!(
            "urn:trustca:{}:{}:{}:{}",
            self.sector, self.manufacturer, self.model, self.serial
        )
    }

    /// Parses a URN written by [`DeviceIdentity::urn`].
    pub fn from_urn(urn: &str) -> Result<Self, ModelError> {
        let rest =
            urn.strip_prefix("urn:trustca:")
                .ok_or_else(|| ModelError::InvalidAttribute {
                    field: "device identity",
                    value: truncate(urn),
                    reason: "expected urn:trustca:<sector>:<manufacturer>:<model>:<serial>",
                })?;
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.as_slice() {
            [sector, manufacturer, model, serial] => {
                Self::new(SectorName::new(sector)?, manufacturer, model, serial)
            }
            _ => Err(ModelError::InvalidAttribute {
                field: "device identity",
                value: truncate(urn),
                reason: "expected urn:trustca:<sector>:<manufacturer>:<model>:<serial>",
            }),
        }
    }

    /// `<serial>.<model>.<manufacturer>.<sector>.<trust domain>`, lower-case:
    /// the DNS SAN, which the sector CA's name constraint confines to its
    /// sector.
    pub fn dns_name(&self, trust_domain: &str) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.serial, self.model, self.manufacturer, self.sector, trust_domain
        )
        .to_ascii_lowercase()
    }

    /// The uniqueness key: DNS names are case-insensitive, so two identities
    /// that differ only in case are the same device.
    /// Built in one allocation (no formatting machinery): `Decide` asks
    /// for it on every call.
    pub fn key(&self) -> String {
        let parts = [
            self.sector.as_str(),
            &self.manufacturer,
            &self.model,
            &self.serial,
        ];
        let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                key.push('/');
            }
            key.push_str(part);
        }
        key.make_ascii_lowercase();
        key
    }
}

impl fmt::Display for DeviceIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.urn())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> SectorName {
        SectorName::new("automotive").unwrap()
    }

    #[test]
    fn urn_round_trip_and_dns() {
        let id = DeviceIdentity::new(auto(), "Acme", "EV-200", "SN0001").unwrap();
        assert_eq!(id.urn(), "urn:trustca:automotive:Acme:EV-200:SN0001");
        assert_eq!(DeviceIdentity::from_urn(&id.urn()).unwrap(), id);
        assert_eq!(
            id.dns_name("trustca.internal"),
            "sn0001.ev-200.acme.automotive.trustca.internal"
        );
        assert_eq!(id.key(), "automotive/acme/ev-200/sn0001");
        assert_eq!(
            id.key(),
            DeviceIdentity::new(auto(), "ACME", "ev-200", "sn0001")
                .unwrap()
                .key()
        );
    }

    #[test]
    fn rejects_separators_and_empty() {
        for bad in ["", "a:b", "a/b", "a.b", "-a", "a b", &"x".repeat(64)] {
            assert!(
                DeviceIdentity::new(auto(), bad, "m", "s").is_err(),
                "{bad:?}"
            );
        }
        assert!(DeviceIdentity::from_urn("urn:trustca:automotive:a:b").is_err());
        assert!(validate_firmware_version("1.2.3+build_7").is_ok());
        assert!(validate_firmware_version("1 2").is_err());
    }

    #[test]
    fn serials_are_printable_strings_or_refused() {
        // X.520 serialNumber is a PrintableString: A-Z a-z 0-9 space ' ( ) + , - . / : = ?
        // Ours is stricter still; anything else is refused with the reason.
        for bad in ["SN_1", "SN*1", "SN@1", "Sé1", "SN 1", "SN+1"] {
            let err = DeviceIdentity::new(auto(), "Acme", "M1", bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    ModelError::InvalidAttribute {
                        field: "serial",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains("A-Z, a-z, 0-9 and '-'"), "{err}");
        }
        let ok = DeviceIdentity::new(auto(), "Acme", "M1", "VIN-0001-xyz").unwrap();
        assert!(
            ok.serial
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
    }
}
