//! What the function reads from its environment, once, at start-up.

use adapters::settings::{Env, OrderTables, SettingsError};
use shared::lifecycle::personal_data::DEFAULT_RETENTION_DAYS;

/// The sweep's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub tables: OrderTables,
    /// `LABELS_BUCKET`: where labels are stored.
    pub labels_bucket: String,
    /// `PERSONAL_DATA_RETENTION_DAYS` (default 30): how long a final order
    /// keeps its personal data.
    pub retention: chrono::Duration,
}

impl Settings {
    /// # Errors
    /// Every variable that is missing or invalid.
    pub fn read(mut env: Env<'_>) -> Result<Self, SettingsError> {
        let settings = Self {
            tables: OrderTables::read(&mut env),
            labels_bucket: env.required("LABELS_BUCKET"),
            retention: retention(&mut env),
        };
        env.finish(settings)
    }
}

/// `PERSONAL_DATA_RETENTION_DAYS`: whole days from 1 to 3650 (default 30).
pub fn retention(env: &mut Env<'_>) -> chrono::Duration {
    let days = env
        .parsed("PERSONAL_DATA_RETENTION_DAYS", |text| {
            text.parse::<u32>()
                .ok()
                .filter(|days| (1..=3650).contains(days))
                .ok_or_else(|| format!("{text:?} is not a number of days from 1 to 3650"))
        })
        .unwrap_or(DEFAULT_RETENTION_DAYS);
    chrono::Duration::days(i64::from(days))
}
