//! The webhook fan-out Lambda: the orders table's stream in (a second reader
//! beside the callback outbox pipe), each write's webhook events out, one
//! delivery per endpoint that wants them, and a response naming only the
//! records to retry (`ReportBatchItemFailures`, by sequence number).
//!
//! A batch's orders are published at once (up to [`CONCURRENT_ORDERS`]),
//! each order's records one after another in stream order: an order's
//! record that fails stops that order there, and the response names the
//! earliest failed record of the batch, from which Lambda hands the batch
//! over again. Records after it that were published (other orders') come
//! again: every step of the fan-out is idempotent, so that only costs
//! writes, never a second delivery; and an order's records after its failed
//! one were not published, so on the retry they follow it, in order.

pub mod settings;

pub use settings::Settings;

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::StreamExt;
use shared::notify::FanOut;
use shared::ports::{DeliveryQueue, DeliveryStore, EndpointStore, EventLog};
use shared::webhook::OrderState;

use adapters::dynamodb_state::{Attr, order_state};

/// Orders of one batch published at once: enough to overlap the store's
/// and the queue's round trips (a batch holds up to 100 records), few
/// enough to stay well inside the table's and the queue's request rates.
pub const CONCURRENT_ORDERS: usize = 16;

/// The batch handler, shared by every invocation of the process.
#[derive(Debug)]
pub struct FanOutHandler<E, L, D, Q> {
    fan_out: FanOut<E, L, D, Q>,
}

impl<E: EndpointStore, L: EventLog, D: DeliveryStore, Q: DeliveryQueue> FanOutHandler<E, L, D, Q> {
    pub fn new(fan_out: FanOut<E, L, D, Q>) -> Self {
        Self { fan_out }
    }

    /// Publishes each record's events: the batch's orders at once, each
    /// order's records in the stream's order; the response names the
    /// earliest record that failed (its order's later records wait for it).
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let records = &event.records;
        let failed = futures::stream::iter(by_order(records))
            .map(|positions| self.publish_order(records, positions))
            .buffer_unordered(CONCURRENT_ORDERS)
            .filter_map(std::future::ready)
            .collect::<Vec<usize>>()
            .await;
        let mut response = DynamoDbEventResponse::default();
        if let Some(earliest) = failed.into_iter().min() {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = event.records[earliest].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Publishes one order's records (their positions in the batch) in
    /// order; the position of the one that failed, which stops the order
    /// there.
    async fn publish_order(&self, records: &[EventRecord], positions: Vec<usize>) -> Option<usize> {
        for position in positions {
            let record = &records[position];
            if let Err(why) = self.publish(record).await {
                let sequence = record.change.sequence_number.as_deref().unwrap_or_default();
                tracing::error!(sequence = %sequence, error = %why, "webhook fan-out failed; the stream hands the record over again");
                return Some(position);
            }
        }
        None
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

/// The positions of the batch's records by order, in stream order within
/// an order. A record without an order number (none should be) joins the
/// others without one, so it is never reordered.
fn by_order(records: &[EventRecord]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut index: HashMap<Option<&str>, usize> = HashMap::new();
    for (position, record) in records.iter().enumerate() {
        let order = match record.change.keys.get("order_number") {
            Some(serde_dynamo::AttributeValue::S(number)) => Some(number.as_str()),
            _ => None,
        };
        let group = *index.entry(order).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[group].push(position);
    }
    groups
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
