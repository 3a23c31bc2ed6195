//! What the function reads from its environment, once, at start-up.

use adapters::settings::{Env, SettingsError};
use shared::webhook::Reach;

#[derive(Debug, Clone)]
pub struct Settings {
    /// `WEBHOOKS_TABLE`: endpoints, deliveries and the event log.
    pub webhooks_table: String,
    /// `API_KEYS_TABLE`: who is calling.
    pub api_keys_table: String,
    /// `WEBHOOK_DELIVERY_QUEUE_URL`: where a replay's deliveries go.
    pub delivery_queue_url: String,
    /// `WEBHOOKS_LOCAL_NETWORK=1` (`make run` only): plain HTTP and loopback
    /// endpoint URLs accepted.
    pub reach: Reach,
}

impl Settings {
    /// # Errors
    /// Every variable that is missing or invalid.
    pub fn read(mut env: Env<'_>) -> Result<Self, SettingsError> {
        let settings = Self {
            webhooks_table: env.required("WEBHOOKS_TABLE"),
            api_keys_table: env.required("API_KEYS_TABLE"),
            delivery_queue_url: env.required("WEBHOOK_DELIVERY_QUEUE_URL"),
            reach: env.webhook_reach(),
        };
        env.finish(settings)
    }
}
