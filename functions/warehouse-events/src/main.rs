//! Lambda entry point: read the settings, build the SDK clients once, serve.

use lambda_http::{Error, run, service_fn};
use warehouse_events::{EventsApi, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = adapters::startup::start(Settings::read).await?;
    let api = EventsApi::new(started.settings, started.dynamodb, started.s3);
    run(service_fn(|request| api.handle(request))).await
}
