//! Lambda entry point: read the settings, build the SDK clients once, sweep on
//! each scheduled invocation.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use personal_data_sweep::{PersonalDataSweep, Settings};

/// The function's Lambda timeout (PersonalDataSweepFunction in the template): its AWS calls' budget
/// is derived from it (`adapters::https::AwsBudget::within`).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sweep =
        PersonalDataSweep::new(adapters::startup::start(Settings::read, LAMBDA_TIMEOUT).await?);
    let sweep = &sweep;
    run(service_fn(
        move |_: LambdaEvent<serde_json::Value>| async move {
            let done = sweep.run().await?;
            Ok::<_, Error>(serde_json::json!({
                "redacted": done.redacted,
                "skipped": done.skipped,
            }))
        },
    ))
    .await
}
