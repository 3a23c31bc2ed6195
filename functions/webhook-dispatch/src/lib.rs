//! The webhook dispatcher Lambda: an SQS batch of deliveries in, each posted
//! to its endpoint (or held while the endpoint backs off), and a
//! `SqsBatchResponse` naming only the messages to show again later, each
//! hidden first for its own delay.
//!
//! The messages of a batch are delivered at once, not one after another: an
//! endpoint that hangs costs its own deliveries one post timeout and holds
//! up no other endpoint's.

pub mod settings;

pub use settings::Settings;

use std::sync::Arc;

use adapters::emf::EmfMetrics;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use shared::metrics::{Metric, Metrics};
use shared::notify::{Deliverer, Next};
use shared::ports::{Clock, DeliveryQueue, DeliveryStore, EndpointStore, WebhookPoster};
use shared::webhook::DeliveryTicket;

/// A message whose delivery met a store error is shown again after this.
const STORE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug)]
pub struct DispatchHandler<E, D, P, C, Q> {
    deliverer: Deliverer<E, D, P, C>,
    queue: Q,
    metrics: Arc<dyn Metrics>,
}

impl<E, D, P, C, Q> DispatchHandler<E, D, P, C, Q>
where
    E: EndpointStore,
    D: DeliveryStore,
    P: WebhookPoster,
    C: Clock,
    Q: DeliveryQueue,
{
    /// Over these ports; metrics go to stdout as EMF lines ([`Self::with_metrics`]).
    pub fn new(deliverer: Deliverer<E, D, P, C>, queue: Q) -> Self {
        Self {
            deliverer,
            queue,
            metrics: Arc::new(EmfMetrics::new(shared::ports::SystemClock)),
        }
    }

    /// Reports its metrics to `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Handles a batch; the response lists the messages SQS must keep.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, None).await
    }

    /// Handles a batch in an invocation that ends at `deadline` (Lambda's
    /// context): a delivery whose post could not be recorded by then is
    /// left for the next receive, unposted.
    pub async fn handle_until(
        &self,
        event: SqsEvent,
        deadline: Option<DateTime<Utc>>,
    ) -> SqsBatchResponse {
        let kept = futures::future::join_all(
            event
                .records
                .iter()
                .map(|message| self.process(message, deadline)),
        )
        .await;
        let mut response = SqsBatchResponse::default();
        for (message, keep) in event.records.iter().zip(kept) {
            if let (true, Some(id)) = (keep, message.message_id.clone()) {
                response.add_failure(id);
            }
        }
        response
    }

    /// Delivers one message; `true` when SQS must keep it.
    async fn process(&self, message: &SqsMessage, deadline: Option<DateTime<Utc>>) -> bool {
        let message_id = message.message_id.as_deref().unwrap_or_default();
        let Some(ticket) = message
            .body
            .as_deref()
            .and_then(|body| serde_json::from_str::<DeliveryTicket>(body).ok())
        else {
            // Nothing to deliver, and never will be: the queue's DLQ keeps it.
            tracing::error!(message_id, "unreadable webhook delivery message");
            return true;
        };
        let owner = owner(message);
        let delay = match self.deliverer.deliver(&ticket, &owner, deadline).await {
            Ok(delivered) => {
                tracing::info!(endpoint = %ticket.endpoint_id, event = %ticket.entry,
                    outcome = ?delivered.outcome, "webhook delivery");
                if delivered.disabled_endpoint {
                    tracing::warn!(endpoint = %ticket.endpoint_id, "webhook endpoint disabled");
                    self.metrics.record(Metric::WebhookEndpointDisabled);
                }
                match delivered.next {
                    Next::Done => return false,
                    Next::Later(delay) => delay,
                }
            }
            Err(err) => {
                tracing::error!(endpoint = %ticket.endpoint_id, event = %ticket.entry,
                    error = %err, "webhook store failure; the message will be delivered again");
                STORE_BACKOFF
            }
        };
        if let Some(receipt) = message.receipt_handle.as_deref()
            && let Err(err) = self.queue.retry_in(receipt, delay).await
        {
            tracing::warn!(message_id, error = %err, "could not hide the message for its delay");
        }
        true
    }
}

/// This receive's lease owner. With the message id and receive count only,
/// two receives of one message with the same count (an SQS duplicate) were
/// one owner: the second's claim was taken for the first's claim retried,
/// and both posted (soak-check: 8 posts after a recorded success).
fn owner(message: &SqsMessage) -> String {
    let receive_count = message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1);
    shared::dispatch::receive_owner(
        message.message_id.as_deref().unwrap_or_default(),
        receive_count,
        message.receipt_handle.as_deref().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests;
