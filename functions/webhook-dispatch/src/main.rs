//! Lambda entry point: read the settings, build the clients once, deliver
//! each SQS batch.

use std::time::Duration;

use adapters::dynamodb_webhooks::DynamoWebhooks;
use adapters::https::AwsBudget;
use adapters::sqs_webhooks::SqsDeliveryQueue;
use adapters::webhook_http::HttpWebhookPoster;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::notify::Deliverer;
use shared::ports::SystemClock;
use shared::webhook::{POST_TIMEOUT, schedule};
use webhook_dispatch::{DispatchHandler, Settings};

/// The function's Lambda timeout (WebhookDispatchFunction in the template): its AWS calls' budget
/// is derived from it (`adapters::https::AwsBudget::within`).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(30);

/// The writes that record a post's answer (the delivery's settle, then its
/// endpoint's health), each within the function's AWS budget.
const RECORD_WRITES: u32 = 2;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let started = adapters::startup::start(Settings::read, LAMBDA_TIMEOUT).await?;
    let settings = started.settings;
    let webhooks = DynamoWebhooks::new(started.dynamodb, &settings.webhooks_table, settings.reach);
    let aws = started.aws.clone();
    let queue = SqsDeliveryQueue::new(aws_sdk_sqs::Client::new(&aws), &settings.delivery_queue_url);
    let poster = HttpWebhookPoster::new(settings.reach)?;
    let deliverer = Deliverer::new(
        webhooks.clone(),
        webhooks,
        poster,
        SystemClock,
        schedule(POST_TIMEOUT),
    )
    .with_record_budget(AwsBudget::within(LAMBDA_TIMEOUT).operation * RECORD_WRITES);
    let handler = DispatchHandler::new(deliverer, queue);
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = adapters::invocation::deadline(event.context.deadline());
        Ok::<_, Error>(handler.handle_until(event.payload, deadline).await)
    }))
    .await
}
