//! Lambda entry point: read the settings, build the clients once, publish
//! each stream batch's webhook events.

use std::time::Duration;

use adapters::dynamodb_webhooks::DynamoWebhooks;
use adapters::sqs_webhooks::SqsDeliveryQueue;
use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::notify::FanOut;
use webhook_fanout::{FanOutHandler, Settings};

/// The function's Lambda timeout (WebhookFanOutFunction in the template): its AWS calls' budget
/// is derived from it (`adapters::https::AwsBudget::within`).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = adapters::startup::start(Settings::read, LAMBDA_TIMEOUT).await?;
    let settings = started.settings;
    let webhooks = DynamoWebhooks::new(started.dynamodb, &settings.webhooks_table, settings.reach);
    let aws = started.aws.clone();
    let queue = SqsDeliveryQueue::new(aws_sdk_sqs::Client::new(&aws), &settings.delivery_queue_url);
    let handler = FanOutHandler::new(FanOut::new(
        webhooks.clone(),
        webhooks.clone(),
        webhooks,
        queue,
    ));
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, Error>(handler.handle(event.payload).await)
    }))
    .await
}
