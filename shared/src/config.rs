//! The configuration values the core takes: the warehouses, and the problem
//! a bad setting is. The core never reads the environment; each function
//! reads its settings at start-up (`adapters::settings`).

use std::collections::BTreeMap;

use serde::Deserialize;

/// One warehouse the service ships from, keyed by its `centre_code`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warehouse {
    /// The warehouse's code at the callback partner (spec 001 `WarehouseCode`).
    pub partner_warehouse_code: String,
    /// ISO 3166-1 alpha-2 country of the warehouse (spec 001 `Country`).
    pub country: String,
    pub city: String,
    /// IANA time zone, e.g. `Asia/Manila`; spec 001 times are local to it.
    /// Parsed at start-up, so a bad zone fails the deploy, not every callback.
    #[serde(deserialize_with = "iana_zone")]
    pub time_zone: chrono_tz::Tz,
}

fn iana_zone<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<chrono_tz::Tz, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse()
        .map_err(|_| serde::de::Error::custom(format!("{name:?} is not an IANA time zone")))
}

/// Every warehouse, from the `WAREHOUSES` JSON (`{"mabang": {...}, ...}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Warehouses(BTreeMap<String, Warehouse>);

/// One setting that cannot be used; start-up lists every one of them.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Warehouses {
    /// Parses and checks the configuration: a bad entry fails start-up
    /// rather than every callback of that warehouse.
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            name: "WAREHOUSES",
            reason,
        };
        let warehouses: Self =
            serde_json::from_str(json).map_err(|err| invalid(err.to_string()))?;
        for (code, warehouse) in &warehouses.0 {
            if warehouse.partner_warehouse_code.trim().is_empty()
                || warehouse.country.trim().is_empty()
            {
                return Err(invalid(format!(
                    "{code}: partner_warehouse_code and country are required"
                )));
            }
        }
        Ok(warehouses)
    }

    #[must_use]
    pub fn get(&self, centre_code: &str) -> Option<&Warehouse> {
        self.0.get(centre_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_warehouses_keyed_by_centre_code() {
        let warehouses = Warehouses::from_json(
            r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
        )
        .unwrap();
        assert_eq!(
            warehouses.get("mabang").map(|w| w.city.as_str()),
            Some("Manila")
        );
        assert!(warehouses.get("nowhere").is_none());
    }

    #[test]
    fn a_warehouse_with_an_unknown_time_zone_is_a_config_error() {
        let err = Warehouses::from_json(
            r#"{"x": {"partner_warehouse_code": "PH", "country": "PH", "city": "", "time_zone": "Mars/Olympus"}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn a_misspelt_warehouse_field_is_a_config_error() {
        let err = Warehouses::from_json(r#"{"x": {"partner_code": "PH"}}"#).unwrap_err();
        assert!(err.to_string().contains("WAREHOUSES"), "{err}");
    }
}
