//! The callback dispatcher Lambda: an SQS batch in, one spec-001 callback per
//! message out, and a `SqsBatchResponse` naming only the messages to retry.
//!
//! Each message is handled on its own task: one failing (or, in a build that
//! unwinds, panicking) message never fails the others. A message to retry is
//! hidden for the delay of the retry schedule (`ChangeMessageVisibility`)
//! before it is reported. When the schedule is spent (the order already says
//! `dead_lettered`), and for a poison message (unreadable, or for an unknown
//! order), the handler moves the message to the dead-letter queue itself and
//! lets SQS delete the original: the order's status and the message's place
//! agree, whatever the queue's receive count. The queue's own `maxReceiveCount`
//! is only a safety net far above the schedule.

pub mod metrics;
pub mod settings;
#[cfg(test)]
mod tests;

pub use settings::{Settings, breaker_policy, schedule_from_env};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::Instrument;
use tracing::instrument::WithSubscriber;

use adapters::{CallbackMessage, DEAD_LETTERED_ATTRIBUTE};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use shared::callback::retry::store_backoff;
use shared::dispatch::{
    Delivery, DeliveryOutcome, DispatchError, Dispatcher, QueueAction, RetryCause,
};
use shared::ports::{CallbackQueue, Clock, OrderStore, PartnerClient, TokenSource};

/// The batch handler, shared by every invocation of the process.
#[derive(Debug)]
pub struct DispatchHandler<S, P, C, T, Q> {
    dispatcher: Dispatcher<S, P, C, T>,
    queue: Q,
}

impl<S, P, C, T, Q> DispatchHandler<S, P, C, T, Q>
where
    S: OrderStore + 'static,
    P: PartnerClient + 'static,
    C: Clock + 'static,
    T: TokenSource + 'static,
    Q: CallbackQueue + 'static,
{
    pub fn new(dispatcher: Dispatcher<S, P, C, T>, queue: Q) -> Self {
        Self { dispatcher, queue }
    }

    /// Handles a batch; the response lists the messages SQS must keep.
    pub async fn handle(self: Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, None).await
    }

    /// Handles a batch in an invocation that ends at `deadline` (Lambda's
    /// context): a message whose post could not be recorded by then is
    /// left for the next receive, unposted.
    pub async fn handle_until(
        self: Arc<Self>,
        event: SqsEvent,
        deadline: Option<DateTime<Utc>>,
    ) -> SqsBatchResponse {
        let tasks: Vec<_> = event
            .records
            .into_iter()
            .map(|message| {
                let handler = Arc::clone(&self);
                let id = message.message_id.clone().unwrap_or_default();
                (
                    id,
                    // With the caller's subscriber: one that captures (the
                    // bench's log bytes, tests) sees the message's lines too.
                    tokio::spawn(
                        async move { handler.process(&message, deadline).await }
                            .with_current_subscriber(),
                    ),
                )
            })
            .collect();
        let mut response = SqsBatchResponse::default();
        for (id, task) in tasks {
            let keep = match task.await {
                Ok(keep) => keep,
                Err(err) => {
                    tracing::error!(message_id = %id, error = %err, "message handler panicked");
                    true
                }
            };
            // An empty id would fail the whole batch; SQS always sends one.
            if keep && !id.is_empty() {
                response.add_failure(id);
            }
        }
        response
    }

    /// Handles one message; `true` when SQS must keep it.
    async fn process(&self, message: &SqsMessage, deadline: Option<DateTime<Utc>>) -> bool {
        let message_id = message.message_id.as_deref().unwrap_or_default();
        let Some(delivery) = delivery(message, deadline) else {
            tracing::error!(message_id, "unreadable callback message");
            return !self.dead_letter(message).await;
        };
        let span = tracing::info_span!("callback", order_number = %delivery.order_number,
            generation = delivery.generation, message_id, receive_count = delivery.receive_count);
        match self
            .dispatcher
            .dispatch(&delivery)
            .instrument(span.clone())
            .await
        {
            Ok((action, report)) => {
                span.in_scope(|| log_report(&report));
                self.follow(action, message).instrument(span).await
            }
            Err(DispatchError::UnknownOrder(_)) => {
                span.in_scope(|| tracing::error!("callback message for an unknown order"));
                !self.dead_letter(message).instrument(span).await
            }
            Err(DispatchError::Store(err)) => {
                span.in_scope(|| {
                    tracing::error!(error = %err, cause = ?std::error::Error::source(&err),
                    "order store failure; the message will be delivered again")
                });
                self.retry_in(message, store_backoff(delivery.receive_count))
                    .await;
                true
            }
        }
    }

    /// Does what the dispatcher asked of the queue; `true` when SQS must
    /// keep the message.
    async fn follow(&self, action: QueueAction, message: &SqsMessage) -> bool {
        match action {
            QueueAction::Delete => false,
            QueueAction::RetryIn(delay) => {
                self.retry_in(message, delay).await;
                true
            }
            QueueAction::DeadLetter => !self.dead_letter(message).await,
            QueueAction::Leave => true,
        }
    }

    /// Moves the message to the dead-letter queue: sends a copy there (marked,
    /// so a redrive is recognised); `true` when the original may be deleted.
    /// If the send fails the original stays and comes back: its order already
    /// says `dead_lettered`, so that delivery finishes the move.
    async fn dead_letter(&self, message: &SqsMessage) -> bool {
        let body = message.body.as_deref().unwrap_or_default();
        match self.queue.dead_letter(body).await {
            Ok(()) => {
                tracing::warn!("callback message moved to the dead-letter queue");
                adapters::emf::print(&metrics::line("DeadLettered", None));
                true
            }
            Err(err) => {
                tracing::error!(error = %err,
                    "could not move the message to the dead-letter queue; it will come back");
                self.retry_in(message, Duration::from_secs(5)).await;
                false
            }
        }
    }

    async fn retry_in(&self, message: &SqsMessage, delay: Duration) {
        let Some(receipt) = message.receipt_handle.as_deref() else {
            return;
        };
        if let Err(err) = self.queue.retry_in(receipt, delay).await {
            // The queue's own visibility timeout applies instead.
            tracing::warn!(error = %err, "could not set the retry delay");
        }
    }
}

/// The delivery an SQS message carries; `None` when its body is unreadable.
fn delivery(message: &SqsMessage, deadline: Option<DateTime<Utc>>) -> Option<Delivery> {
    let CallbackMessage {
        order_number,
        generation,
    } = serde_json::from_str(message.body.as_deref().unwrap_or_default()).ok()?;
    Some(Delivery {
        order_number,
        generation,
        message_id: message.message_id.clone().unwrap_or_default(),
        receive_count: message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.parse().ok())
            .unwrap_or(1),
        receipt: message.receipt_handle.clone().unwrap_or_default(),
        redriven: message
            .message_attributes
            .contains_key(DEAD_LETTERED_ATTRIBUTE),
        sent_at: message
            .attributes
            .get("SentTimestamp")
            .and_then(|millis| millis.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_millis),
        deadline,
    })
}

fn log_report(report: &DeliveryOutcome) {
    let (outcome, latency) = match report {
        DeliveryOutcome::Delivered { latency } => {
            tracing::info!(latency_ms = latency.as_millis(), "callback delivered");
            ("Delivered", Some(*latency))
        }
        DeliveryOutcome::Failed { reason, latency } => {
            tracing::warn!(reason, "callback failed");
            ("Failed", *latency)
        }
        DeliveryOutcome::Retrying {
            reason,
            latency,
            cause,
        } => {
            if *cause == RetryCause::Credentials {
                tracing::error!(
                    reason,
                    "the partner rejected our credentials; the callback will be retried"
                );
                adapters::emf::print(&metrics::line("PartnerAuthFailed", None));
            } else {
                tracing::warn!(reason, "callback will be retried");
            }
            ("Retried", *latency)
        }
        DeliveryOutcome::DeadLettered { reason } => {
            tracing::error!(reason, "callback retries exhausted");
            // The move to the dead-letter queue counts `DeadLettered`.
            return;
        }
        DeliveryOutcome::Held(why) => {
            tracing::info!(why, "callback held");
            ("Held", None)
        }
        DeliveryOutcome::Skipped(why) => {
            tracing::info!(why, "nothing to send");
            ("Skipped", None)
        }
    };
    adapters::emf::print(&metrics::line(outcome, latency));
}
