//! Lambda entry point: read the settings, build the SDK clients once, serve.

use lambda_http::{Error, run, service_fn};
use warehouse_events::{EventsApi, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let settings = Settings::read(adapters::settings::Env::process())?;
    let aws = adapters::https::aws_config().await?;
    let api = EventsApi::new(
        settings,
        aws_sdk_dynamodb::Client::new(&aws),
        adapters::s3::client(&aws),
    );
    run(service_fn(|request| api.handle(request))).await
}
