//! What every function does at a cold start before it builds its handler:
//! logs set up, its settings read (every problem listed), the SDK clients.

use crate::settings::{Env, SettingsError};

/// A function's settings and the clients it is built from, made once per
/// cold start.
#[derive(Debug)]
pub struct Started<T> {
    pub settings: T,
    /// The SDK configuration, every call inside the function's budget.
    pub aws: aws_config::SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
}

/// Sets up logging, reads the settings with `read` from the process
/// environment and builds the SDK clients, every call inside the budget of a
/// function whose Lambda timeout is `lambda_timeout` (the template's).
///
/// # Errors
/// The settings' problems, or no HTTPS set-up for the SDK.
pub async fn start<T>(
    read: impl FnOnce(Env<'static>) -> Result<T, SettingsError>,
    lambda_timeout: std::time::Duration,
) -> Result<Started<T>, Box<dyn std::error::Error + Send + Sync>> {
    crate::logging::init();
    let settings = read(Env::process())?;
    let aws =
        crate::https::aws_config_within(crate::https::AwsBudget::within(lambda_timeout)).await?;
    Ok(Started {
        settings,
        dynamodb: aws_sdk_dynamodb::Client::new(&aws),
        s3: crate::s3::client(&aws),
        aws,
    })
}
