//! Lambda entry point: read config, build the clients once (SDK, HTTP,
//! credential), run the batch handler.

use std::sync::Arc;

use adapters::{DynamoBreakerStore, DynamoOrderStore, HttpPartner, SqsCallbackQueue};
use aws_lambda_events::event::sqs::SqsEvent;
use callback_dispatch::{Config, DispatchHandler};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::dispatch::Dispatcher;
use shared::dispatch::breaker_cache::{CachedBreakerStore, FRESH_FOR};
use shared::ports::SystemClock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let config = Config::from_env()?;
    let aws = adapters::https::aws_config().await?;
    let tokens = callback_dispatch::partner_tokens(&aws, &config).await?;
    let partner = HttpPartner::new(&config.callback_url, config.connect_timeout, config.timeout)?;
    let store = DynamoOrderStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        &config.orders_table,
        &config.order_history_table,
    );
    let mut dispatcher = Dispatcher::new(
        store,
        partner,
        tokens,
        SystemClock,
        config.warehouses,
        config.policy,
    );
    if let (Some(table), Some(policy)) = (&config.state_table, config.breaker) {
        dispatcher = dispatcher.with_breaker(
            CachedBreakerStore::new(
                DynamoBreakerStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
                FRESH_FOR,
            ),
            policy,
            callback_dispatch::metrics::breaker,
        );
    }
    let queue = SqsCallbackQueue::new(
        aws_sdk_sqs::Client::new(&aws),
        config.callback_queue_url,
        config.dead_letter_queue_url,
    );
    let handler = Arc::new(DispatchHandler::new(dispatcher, queue));
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        async move { Ok::<_, Error>(handler.handle(event.payload).await) }
    }))
    .await
}
