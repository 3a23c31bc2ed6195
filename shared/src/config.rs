//! Typed configuration, read once at start-up.

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

/// Configuration that cannot be used; start-up fails with this message.
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

    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// `API_KEY_CACHE_SECONDS`: how long the API functions trust a key they have
/// read (default 60 s; 0 reads the key table on every request).
pub fn api_key_cache() -> Result<std::time::Duration, ConfigError> {
    match std::env::var("API_KEY_CACHE_SECONDS") {
        Ok(seconds) => seconds
            .trim()
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|_| ConfigError::Invalid {
                name: "API_KEY_CACHE_SECONDS",
                reason: format!("{seconds:?} is not a number of seconds"),
            }),
        Err(_) => Ok(std::time::Duration::from_secs(60)),
    }
}

/// `POLL_SETTLE_SECONDS`: how far behind now a page of
/// `GET /apicenter/api/orders` stops ([`crate::polling`]; default 15 s).
pub fn poll_settle() -> Result<std::time::Duration, ConfigError> {
    match std::env::var("POLL_SETTLE_SECONDS") {
        Ok(seconds) => seconds
            .trim()
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|_| ConfigError::Invalid {
                name: "POLL_SETTLE_SECONDS",
                reason: format!("{seconds:?} is not a number of seconds"),
            }),
        Err(_) => Ok(crate::polling::DEFAULT_SETTLE),
    }
}

/// Reads a required environment variable.
pub fn required_env(name: &'static str) -> Result<String, ConfigError> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
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
