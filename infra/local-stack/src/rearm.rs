//! Local-only recovery for `make run`: the SQS emulator keeps its messages in
//! memory, so a restart loses the messages of callbacks that were due while
//! DynamoDB Local (with its data directory) still says `pending` or
//! `retrying`. On start every such callback is replayed through the API's own
//! rule (`Lifecycle::retry_callback`: a new generation, whose message the
//! outbox sends; any older message left over is then dropped by the claim).
//! A retrying callback thus starts a fresh schedule: acceptable locally, and
//! never done in AWS, where SQS keeps its messages.
//!
//! It paces itself ([`Pace`]): a few thousand callbacks re-armed at once
//! would put a few thousand messages ahead of the orders coming in, so it
//! re-arms a batch a second, and waits while the callback queue already has
//! a backlog: a fresh burst goes first, the re-armed ones fill the gaps.

use std::time::Duration;

use adapters::DynamoOrderStore;
use shared::auth::Principal;
use shared::domain::OrderNumber;
use shared::domain::Scope;
use shared::lifecycle::{Lifecycle, LifecycleError};
use shared::polling;
use shared::ports::{Access, Lookup, OrderStore, SystemClock};
use shared::record::callback::CallbackStatus;

use crate::Error;

/// How long to keep trying callbacks whose attempt was in flight at the stop
/// (their lease, 3 × the partner timeout, runs out first).
const IN_FLIGHT_PATIENCE: Duration = Duration::from_secs(90);

/// How fast to re-arm.
#[derive(Debug, Clone)]
pub struct Pace {
    /// Callbacks re-armed per second at most.
    pub per_second: usize,
    /// The callback queue, whose visible backlog makes it wait; `None`
    /// never waits.
    pub queue: Option<(aws_sdk_sqs::Client, String)>,
    /// Waits while more messages than this wait in the queue.
    pub backlog: u64,
}

impl Pace {
    /// As fast as the store allows (tests with a handful of callbacks).
    #[must_use]
    pub fn unpaced() -> Self {
        Self {
            per_second: usize::MAX,
            queue: None,
            backlog: u64::MAX,
        }
    }

    /// `make run`'s: 25 a second (half what the dispatcher's 50 slots
    /// post on a healthy local partner), none while 100 messages wait.
    #[must_use]
    pub fn for_queue(sqs: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self {
            per_second: 25,
            queue: Some((sqs, queue_url)),
            backlog: 100,
        }
    }

    /// Waits for the next second's batch, and while the queue is busy.
    async fn wait_turn(&self) {
        if self.per_second == usize::MAX {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some((sqs, url)) = &self.queue else {
            return;
        };
        while let Some(waiting) = visible_messages(sqs, url).await
            && waiting > self.backlog
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The queue's `ApproximateNumberOfMessages`; `None` when it cannot say.
async fn visible_messages(sqs: &aws_sdk_sqs::Client, url: &str) -> Option<u64> {
    let name = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .ok()?
        .attributes()?
        .get(&name)?
        .parse()
        .ok()
}

/// Replays every pending or retrying callback at `pace`; returns how many
/// were re-armed.
pub async fn rearm_due_callbacks(store: &DynamoOrderStore, pace: &Pace) -> Result<usize, Error> {
    rearm_listed(store, pace, due_orders(store).await?).await
}

/// Replays the callbacks `listed` by [`due_orders`] that are still due, at
/// `pace`; returns how many were re-armed.
pub async fn rearm_listed(
    store: &DynamoOrderStore,
    pace: &Pace,
    listed: Vec<(String, String)>,
) -> Result<usize, Error> {
    let lifecycle = Lifecycle::new(store.clone(), SystemClock);
    let started = tokio::time::Instant::now();
    let mut waiting = listed;
    let mut rearmed = 0;
    let deadline = tokio::time::Instant::now() + IN_FLIGHT_PATIENCE;
    while !waiting.is_empty() {
        let mut in_flight = Vec::new();
        for (index, (number, client)) in waiting.into_iter().enumerate() {
            if index > 0 && index % pace.per_second.max(1) == 0 {
                pace.wait_turn().await;
            }
            // The listing is seconds old by now (the index lags, the pace
            // waits): a callback that failed meanwhile is replayable by an
            // operator, but not due, so not this re-arm's to revive.
            if !still_due(store, &number).await {
                continue;
            }
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
    if rearmed > 0 {
        tracing::info!(
            callbacks = rearmed,
            seconds = started.elapsed().as_secs(),
            "re-armed the callbacks that were due at the last stop"
        );
    }
    Ok(rearmed)
}

/// Whether the order's callback is still pending or retrying (read
/// consistently); `true` when the store cannot say (the replay decides).
async fn still_due(store: &DynamoOrderStore, number: &str) -> bool {
    let Ok(number) = OrderNumber::parse(number) else {
        return true;
    };
    match store.get(&number, Access::Service).await {
        Ok(Lookup::Found(record)) => matches!(
            record.callback.status,
            CallbackStatus::Pending | CallbackStatus::Retrying
        ),
        Ok(_) => false,
        Err(_) => true,
    }
}

/// (order number, client) of every callback the index lists as pending or retrying.
pub async fn due_orders(store: &DynamoOrderStore) -> Result<Vec<(String, String)>, Error> {
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
