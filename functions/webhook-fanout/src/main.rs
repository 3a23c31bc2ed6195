//! Lambda entry point: read the settings, build the clients once, publish
//! each stream batch's webhook events.

use adapters::dynamodb_webhooks::DynamoWebhooks;
use adapters::sqs_webhooks::SqsDeliveryQueue;
use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::notify::FanOut;
use webhook_fanout::{FanOutHandler, Settings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = adapters::startup::start(Settings::read).await?;
    let settings = started.settings;
    let webhooks = DynamoWebhooks::new(started.dynamodb, &settings.webhooks_table, settings.reach);
    let aws = adapters::https::aws_config().await?;
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
