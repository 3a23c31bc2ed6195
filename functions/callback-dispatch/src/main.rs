//! Lambda entry point: read the settings, build the clients once (SDK, HTTP,
//! credential), run the batch handler.

use std::sync::Arc;
use std::time::Duration;

use adapters::https::AwsBudget;
use adapters::settings::Env;
use adapters::{
    DynamoBreakerStore, DynamoOrderStore, HttpPartner, PartnerTokens, SqsCallbackQueue,
};
use aws_lambda_events::event::sqs::SqsEvent;
use callback_dispatch::settings::Credentials;
use callback_dispatch::{DispatchHandler, Settings};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::dispatch::Dispatcher;
use shared::dispatch::breaker_cache::{CachedBreakerStore, FRESH_FOR};
use shared::ports::SystemClock;

/// The function's Lambda timeout (CallbackDispatchFunction in the template): its AWS calls' budget
/// is derived from it (`adapters::https::AwsBudget::within`).
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(60);

/// The writes that record a post's answer (the ledger line, then the
/// callback's state), each within the function's AWS budget.
const RECORD_WRITES: u32 = 2;

#[tokio::main]
async fn main() -> Result<(), Error> {
    adapters::logging::init();
    let settings = Settings::read(Env::process())?;
    let budget = AwsBudget::within(LAMBDA_TIMEOUT);
    let aws = adapters::https::aws_config_within(budget).await?;
    // The secret is read once per cold start; OAuth2 tokens are refreshed
    // as they expire.
    let tokens = match settings.credentials {
        Credentials::Secret(tokens) => PartnerTokens::from_secret(&aws, &tokens).await?,
        Credentials::Static(token) => PartnerTokens::Static(token),
    };
    let partner = HttpPartner::new(
        &settings.callback_url,
        settings.connect_timeout,
        settings.timeout,
    )?;
    let store = DynamoOrderStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        &settings.tables.orders,
        &settings.tables.history,
    );
    let mut dispatcher = Dispatcher::new(
        store,
        partner,
        tokens,
        SystemClock,
        settings.warehouses,
        settings.policy,
    )
    .with_record_budget(budget.operation * RECORD_WRITES);
    if let (Some(table), Some(policy)) = (&settings.state_table, settings.breaker) {
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
        settings.callback_queue_url,
        settings.dead_letter_queue_url,
    );
    let handler = Arc::new(DispatchHandler::new(dispatcher, queue));
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let handler = Arc::clone(&handler);
        let deadline = adapters::invocation::deadline(event.context.deadline());
        async move { Ok::<_, Error>(handler.handle_until(event.payload, deadline).await) }
    }))
    .await
}
