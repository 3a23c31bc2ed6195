//! What the function reads from its environment, once, at start-up.

use std::time::Duration;

use adapters::settings::{ApiSettings, Env, SettingsError, poll_settle};
use shared::config::Warehouses;

/// The order API's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The tables, the key cache and the labels bucket.
    pub api: ApiSettings,
    /// `WAREHOUSES`: JSON object of warehouses keyed by `centre_code`.
    pub warehouses: Warehouses,
    /// `POLL_SETTLE_SECONDS` (default 15): how far behind now a page of
    /// `GET /apicenter/api/orders` stops (`shared::polling`).
    pub poll_settle: Duration,
}

impl Settings {
    /// # Errors
    /// Every variable that is missing or invalid.
    pub fn read(mut env: Env<'_>) -> Result<Self, SettingsError> {
        let settings = Self {
            api: ApiSettings::read(&mut env),
            warehouses: env.warehouses(),
            poll_settle: poll_settle(&mut env),
        };
        env.finish(settings)
    }
}
