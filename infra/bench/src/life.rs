//! The spec sample's life as the webhook and log steps drive it, in one
//! place: its six writes through the in-process API (the create, then the
//! five warehouse events), its state item read back as the orders stream
//! hands it over, and the webhook delivery queue received and emptied as
//! its event source mapping does.

use std::collections::HashMap;

use adapters::dynamodb_state::{Attr, order_state};
use adapters::sdk::read_item;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::Message;
use local_stack::Stack;
use local_stack::sqs_poller::{self, PollerConfig};
use serde_json::{Value, json};
use shared::webhook::OrderState;

use crate::events::{SAMPLE_ORDER, api_request, client_key, lifecycle_events, warehouse_key};

/// A state item as DynamoDB returns it.
pub type Item = HashMap<String, AttributeValue>;

/// The writes of the sample's life, with the keys of the ERP and the
/// warehouse that make them.
pub struct Writes {
    client: String,
    warehouse: String,
    events: Vec<Value>,
}

impl Writes {
    /// Issues the ERP's and the warehouse's keys on `stack`.
    pub async fn new(stack: &Stack) -> Result<Self, String> {
        Ok(Self {
            client: client_key(stack).await?,
            warehouse: warehouse_key(stack).await?,
            events: lifecycle_events(chrono::Utc::now())
                .into_iter()
                .map(|(_, event)| event)
                .collect(),
        })
    }

    /// How many writes a life has: the create and the warehouse events.
    pub fn count(&self) -> usize {
        1 + self.events.len()
    }

    /// The ERP's key, for its reads.
    pub fn client(&self) -> &str {
        &self.client
    }

    /// Write `index` of order `number` as API Gateway hands it to the
    /// function that serves it (0 creates the order, n posts its n-th
    /// warehouse event): that function's name and the request.
    pub fn request(
        &self,
        number: &str,
        index: usize,
    ) -> Result<(&'static str, lambda_http::Request), String> {
        let (function, path, body, key) = match index.checked_sub(1) {
            None => {
                let mut order: Value =
                    serde_json::from_str(SAMPLE_ORDER).map_err(|e| e.to_string())?;
                order["package"]["order_number"] = json!(number);
                order["platform_order_number"] = json!(format!("po-{number}"));
                (
                    "order-intake",
                    "/apicenter/api/order".to_owned(),
                    order.to_string(),
                    &self.client,
                )
            }
            Some(event) => (
                "warehouse-events",
                format!("/apicenter/api/order/{number}/events"),
                self.events
                    .get(event)
                    .ok_or(format!("the life has no write {index}"))?
                    .to_string(),
                &self.warehouse,
            ),
        };
        Ok((function, api_request("POST", &path, Some(&body), key, 0)?))
    }
}

/// An error unless the API answered 2xx.
pub fn answered(response: &lambda_http::Response<lambda_http::Body>) -> Result<(), String> {
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("a write answered {}", response.status()))
    }
}

/// Order `number`'s state item, read back, and the state the webhook
/// fan-out reads from the stream's image of it.
pub async fn state(stack: &Stack, number: &str) -> Result<(Item, OrderState), String> {
    let table = stack.orders_table().map_err(|e| e.to_string())?;
    let item = read_item(&stack.dynamodb, table, "order_number", number.to_owned())
        .send()
        .await
        .map_err(|e| e.to_string())?
        .item
        .ok_or(format!("{number} is not stored"))?;
    let state = order_state(|name| match item.get(name)? {
        AttributeValue::S(value) => Some(Attr::S(value)),
        AttributeValue::N(value) => Some(Attr::N(value)),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    Ok((item, state))
}

/// The webhook delivery queue's event source mapping as the local stack
/// plays it (`local_stack::sqs_poller`: batches of ten, 1 s long polls),
/// for its receive, the event it hands the function, and its delete.
pub fn delivery_mapping(stack: &Stack) -> Result<PollerConfig, String> {
    let queue = "WebhookDeliveryQueue";
    let resources = &stack.resources;
    Ok(PollerConfig::new(
        resources.queue_url(queue).map_err(|e| e.to_string())?,
        resources.queue_arn(queue).map_err(|e| e.to_string())?,
        stack
            .sqs
            .config()
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string),
    ))
}

/// What the queue holds, received as its mapping does.
pub async fn receive(
    sqs: &aws_sdk_sqs::Client,
    mapping: &PollerConfig,
) -> Result<Vec<Message>, String> {
    sqs_poller::receive(sqs, mapping)
        .await
        .map_err(|e| format!("receive: {e}"))
}

/// Deletes `messages` (the function settled them).
pub async fn delete(
    sqs: &aws_sdk_sqs::Client,
    mapping: &PollerConfig,
    messages: &[Message],
) -> Result<(), String> {
    let receipts: Vec<&str> = messages
        .iter()
        .filter_map(Message::receipt_handle)
        .collect();
    sqs_poller::delete(sqs, mapping, &receipts)
        .await
        .map_err(|e| format!("delete: {e}"))
}

/// The event the mapping hands the function for `messages`.
pub fn event(messages: &[Message], mapping: &PollerConfig) -> Result<SqsEvent, String> {
    sqs_poller::sqs_event(messages, mapping).map_err(|e| e.to_string())
}
