//! What the function reads from its environment, once, at start-up.

use adapters::settings::{ApiSettings, Env, SettingsError};

/// The warehouse API's settings: the tables, the key cache and the labels
/// bucket, as the order API reads them.
#[derive(Debug, Clone)]
pub struct Settings {
    pub api: ApiSettings,
}

impl Settings {
    /// # Errors
    /// Every variable that is missing or invalid.
    pub fn read(mut env: Env<'_>) -> Result<Self, SettingsError> {
        let settings = Self {
            api: ApiSettings::read(&mut env),
        };
        env.finish(settings)
    }
}
