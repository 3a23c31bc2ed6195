//! Local-only recovery for `make run`: the SQS emulator keeps its messages in
//! memory, so a restart loses the messages of callbacks that were due while
//! DynamoDB Local (with its data directory) still says `pending` or
//! `retrying`. On start every such callback is replayed through the API's own
//! rule (`Lifecycle::retry_callback`: a new generation, whose message the
//! outbox sends; any older message left over is then dropped by the claim).
//! A retrying callback thus starts a fresh schedule: acceptable locally, and
//! never done in AWS, where SQS keeps its messages.

use std::time::Duration;

use adapters::DynamoOrderStore;
use shared::auth::Principal;
use shared::domain::Scope;
use shared::lifecycle::{Lifecycle, LifecycleError};
use shared::polling;
use shared::ports::SystemClock;
use shared::record::callback::CallbackStatus;

use crate::Error;

/// How long to keep trying callbacks whose attempt was in flight at the stop
/// (their lease, 3 × the partner timeout, runs out first).
const IN_FLIGHT_PATIENCE: Duration = Duration::from_secs(90);

/// Replays every pending or retrying callback; returns how many were re-armed.
pub async fn rearm_due_callbacks(store: &DynamoOrderStore) -> Result<usize, Error> {
    let lifecycle = Lifecycle::new(store.clone(), SystemClock);
    let mut waiting = due_orders(store).await?;
    let mut rearmed = 0;
    let deadline = tokio::time::Instant::now() + IN_FLIGHT_PATIENCE;
    while !waiting.is_empty() {
        let mut in_flight = Vec::new();
        for (number, client) in waiting {
            let operator = Principal {
                key_id: "local-stack-rearm".into(),
                scope: Scope::Client(client.clone()),
                order_prefixes: Vec::new(),
                signed: None,
            };
            match lifecycle.retry_callback(&operator, &number).await {
                Ok(_) => rearmed += 1,
                Err(LifecycleError::AttemptInFlight(_)) => in_flight.push((number, client)),
                // Settled meanwhile (delivered, failed by a post): nothing to do.
                Err(LifecycleError::NotReplayable(_) | LifecycleError::NotFound(_)) => {}
                Err(err) => return Err(Error::Aws(Box::new(err))),
            }
        }
        if in_flight.is_empty() || tokio::time::Instant::now() >= deadline {
            for (number, _) in &in_flight {
                tracing::warn!(order_number = %number, "callback still in flight; not re-armed");
            }
            break;
        }
        waiting = in_flight;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(rearmed)
}

/// (order number, client) of every callback the index lists as pending or retrying.
async fn due_orders(store: &DynamoOrderStore) -> Result<Vec<(String, String)>, Error> {
    let mut due = Vec::new();
    for status in [CallbackStatus::Pending, CallbackStatus::Retrying] {
        let records = polling::orders_with_callback_status(store, status, "0".to_owned())
            .await
            .map_err(|err| Error::Aws(Box::new(err)))?;
        due.extend(records.into_iter().map(|record| {
            (
                record.order.order_number.to_string(),
                record.order.client_code,
            )
        }));
    }
    Ok(due)
}
