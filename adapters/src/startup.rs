//! What every function does at a cold start before it builds its handler:
//! logs set up, its settings read (every problem listed), the SDK clients.

use crate::settings::{Env, SettingsError};

/// A function's settings and the clients it is built from, made once per
/// cold start.
#[derive(Debug)]
pub struct Started<T> {
    pub settings: T,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
}

/// Sets up logging, reads the settings with `read` from the process
/// environment and builds the SDK clients.
///
/// # Errors
/// The settings' problems, or no HTTPS set-up for the SDK.
pub async fn start<T>(
    read: impl FnOnce(Env<'static>) -> Result<T, SettingsError>,
) -> Result<Started<T>, Box<dyn std::error::Error + Send + Sync>> {
    crate::logging::init();
    let settings = read(Env::process())?;
    let aws = crate::https::aws_config().await?;
    Ok(Started {
        settings,
        dynamodb: aws_sdk_dynamodb::Client::new(&aws),
        s3: crate::s3::client(&aws),
    })
}
