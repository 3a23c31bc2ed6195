//! Lambda entry point: read the settings, build the SDK clients once, sweep on
//! each scheduled invocation.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use personal_data_sweep::{PersonalDataSweep, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sweep = PersonalDataSweep::new(adapters::startup::start(Settings::read).await?);
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
