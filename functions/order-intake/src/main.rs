//! Lambda entry point: read the settings, build the SDK clients once, serve.

use lambda_http::{Error, run, service_fn};
use order_intake::{OrderApi, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = adapters::startup::start(Settings::read).await?;
    let api = OrderApi::new(started.settings, started.dynamodb, started.s3);
    run(service_fn(|request| api.handle(request))).await
}
