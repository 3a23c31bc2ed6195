//! Lambda entry point: read the settings, build the clients once, answer
//! each request.

use std::time::Duration;

use adapters::DynamoKeyStore;
use adapters::dynamodb_webhooks::DynamoWebhooks;
use adapters::sqs_webhooks::SqsDeliveryQueue;
use lambda_http::{Error, Request, run, service_fn};
use shared::notify::{Replay, Subscriptions};
use shared::ports::SystemClock;
use webhook_api::{Settings, WebhooksApi};

/// The function's Lambda timeout (the template's Globals): its AWS calls' budget
/// is derived from it (`adapters::https::AwsBudget::within`).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = adapters::startup::start(Settings::read, LAMBDA_TIMEOUT).await?;
    let settings = started.settings;
    let webhooks = DynamoWebhooks::new(
        started.dynamodb.clone(),
        &settings.webhooks_table,
        settings.reach,
    );
    let keys = DynamoKeyStore::new(started.dynamodb, &settings.api_keys_table);
    let aws = started.aws.clone();
    let queue = SqsDeliveryQueue::new(aws_sdk_sqs::Client::new(&aws), &settings.delivery_queue_url);
    let replay = Replay::new(webhooks.clone(), webhooks.clone(), webhooks.clone(), queue);
    let subscriptions = Subscriptions::new(webhooks.clone(), webhooks, settings.reach);
    let api = WebhooksApi::new(subscriptions, replay, keys, SystemClock);
    let api = &api;
    run(service_fn(move |request: Request| async move {
        api.handle(request).await
    }))
    .await
}
