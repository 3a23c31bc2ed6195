//! Lambda entry point: read the settings, build the SDK clients once, serve.

use lambda_http::{Error, run, service_fn};
use order_intake::{OrderApi, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let api = OrderApi::new(adapters::startup::start(Settings::read).await?);
    run(service_fn(|request| api.handle(request))).await
}
