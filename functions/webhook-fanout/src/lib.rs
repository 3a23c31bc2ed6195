//! The webhook fan-out Lambda: the orders table's stream in (a second reader
//! beside the callback outbox pipe), each write's webhook events out, one
//! delivery per endpoint that wants them, and a response naming only the
//! records to retry (`ReportBatchItemFailures`, by sequence number).
//!
//! A record is handed over again after a failure: every step of the fan-out
//! is idempotent, so that only costs writes, never a second delivery.

pub mod settings;

pub use settings::Settings;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use shared::notify::FanOut;
use shared::ports::{DeliveryQueue, DeliveryStore, EndpointStore, EventLog};
use shared::webhook::OrderState;

use adapters::dynamodb_state::{Attr, order_state};

/// The batch handler, shared by every invocation of the process.
#[derive(Debug)]
pub struct FanOutHandler<E, L, D, Q> {
    fan_out: FanOut<E, L, D, Q>,
}

impl<E: EndpointStore, L: EventLog, D: DeliveryStore, Q: DeliveryQueue> FanOutHandler<E, L, D, Q> {
    pub fn new(fan_out: FanOut<E, L, D, Q>) -> Self {
        Self { fan_out }
    }

    /// Publishes each record's events, in the stream's order; a record that
    /// fails stops the batch there (the records after it wait, so one
    /// order's events never overtake each other).
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in &event.records {
            if let Err(why) = self.publish(record).await {
                let sequence = record.change.sequence_number.clone().unwrap_or_default();
                tracing::error!(sequence = %sequence, error = %why, "webhook fan-out failed; the stream hands the record over again");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence);
                response.batch_item_failures.push(failure);
                break;
            }
        }
        response
    }

    async fn publish(&self, record: &EventRecord) -> Result<(), String> {
        if record.event_name == "REMOVE" {
            return Ok(());
        }
        let after = state(&record.change.new_image).map_err(|err| err.to_string())?;
        let before = if record.event_name == "INSERT" {
            None
        } else {
            Some(state(&record.change.old_image).map_err(|err| err.to_string())?)
        };
        let published = self
            .fan_out
            .publish(before.as_ref(), &after)
            .await
            .map_err(|err| err.to_string())?;
        if published.events > 0 {
            tracing::info!(order_number = %after.order_number, events = published.events,
                deliveries = published.deliveries, "webhook events published");
        }
        Ok(())
    }
}

/// The order's state from a stream image.
fn state(image: &serde_dynamo::Item) -> Result<OrderState, shared::error::StoreError> {
    order_state(|name| match image.get(name)? {
        serde_dynamo::AttributeValue::S(value) => Some(Attr::S(value)),
        serde_dynamo::AttributeValue::N(value) => Some(Attr::N(value)),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
