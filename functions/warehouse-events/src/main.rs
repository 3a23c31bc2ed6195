//! Lambda entry point: read the settings, build the SDK clients once, serve.

use std::time::Duration;

use lambda_http::{Error, run, service_fn};
use warehouse_events::{EventsApi, Settings};

/// The function's Lambda timeout (the template's Globals): its AWS calls' budget
/// is derived from it (`adapters::https::AwsBudget::within`).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let api = EventsApi::new(adapters::startup::start(Settings::read, LAMBDA_TIMEOUT).await?)
        // 1.5 s for the runtime to send the answer (adapters::api::ANSWER_BY).
        .with_answer_by(LAMBDA_TIMEOUT - Duration::from_millis(1500));
    run(service_fn(|request| api.handle(request))).await
}
