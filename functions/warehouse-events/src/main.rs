//! Lambda entry point: read the settings, build the SDK clients once, serve.

use lambda_http::{Error, run, service_fn};
use warehouse_events::{EventsApi, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let api = EventsApi::new(adapters::startup::start(Settings::read).await?);
    run(service_fn(|request| api.handle(request))).await
}
