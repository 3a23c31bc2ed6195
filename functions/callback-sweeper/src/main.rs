//! Lambda entry point for the sweeper (an EventBridge schedule invokes it):
//! read config, build the clients once, sweep on every invocation.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::adapters::{DynamoOrderStore, SqsCallbackQueue};
use shared::callback::sweep::sweep;
use shared::config::{ConfigError, required_env};
use shared::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let grace_minutes: u64 = match std::env::var("SWEEP_GRACE_MINUTES") {
        Ok(minutes) => minutes.parse().map_err(|_| ConfigError::Invalid {
            name: "SWEEP_GRACE_MINUTES",
            reason: format!("{minutes:?} is not a number"),
        })?,
        Err(_) => 5,
    };
    let grace = Duration::from_secs(grace_minutes * 60);
    let aws = shared::adapters::https::aws_config().await?;
    let store = DynamoOrderStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        required_env("ORDERS_TABLE")?,
    );
    let queue = SqsCallbackQueue::new(
        aws_sdk_sqs::Client::new(&aws),
        required_env("CALLBACK_QUEUE_URL")?,
    );
    run(service_fn(|_: LambdaEvent<serde_json::Value>| async {
        let sent = sweep(&store, &queue, &SystemClock, grace).await?;
        Ok::<_, Error>(serde_json::json!({ "resent": sent }))
    }))
    .await
}
