//! Lambda entry point: read config, build the SDK clients once, serve.

use lambda_http::{Error, run, service_fn};
use warehouse_events::{Config, EventsApi};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config = Config::from_env()?;
    let aws = adapters::https::aws_config().await?;
    let api = EventsApi::new(
        config,
        aws_sdk_dynamodb::Client::new(&aws),
        adapters::s3::client(&aws),
    );
    run(service_fn(|request| api.handle(request))).await
}
