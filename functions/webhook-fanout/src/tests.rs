use serde_json::json;
use shared::memory::webhooks::{
    MemoryDeliveries, MemoryDeliveryQueue, MemoryEndpoints, MemoryEventLog,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::error::StoreError;
use shared::notify::FanOut;
use shared::ports::EndpointStore;
use shared::webhook::{
    Endpoint, EndpointId, EndpointUrl, EventTypes, NewEndpoint, Reach, WebhookEvent, WebhookSecret,
};

use super::*;

type Handler<L = MemoryEventLog> =
    FanOutHandler<MemoryEndpoints, L, MemoryDeliveries, MemoryDeliveryQueue>;

async fn world() -> (Handler, MemoryDeliveryQueue) {
    world_with(MemoryEventLog::default()).await
}

async fn world_with<L: EventLog>(log: L) -> (Handler<L>, MemoryDeliveryQueue) {
    let endpoints = MemoryEndpoints::default();
    let new = NewEndpoint {
        url: EndpointUrl::parse("https://erp.example.com/hooks", Reach::Internet).unwrap(),
        event_types: EventTypes::All,
        description: None,
    };
    let endpoint = Endpoint::create(
        EndpointId::generate().unwrap(),
        "20",
        new,
        WebhookSecret::generate().unwrap(),
        chrono::Utc::now(),
    );
    assert!(endpoints.insert(&endpoint).await.unwrap());
    let queue = MemoryDeliveryQueue::default();
    let fan_out = FanOut::new(endpoints, log, MemoryDeliveries::default(), queue.clone());
    (FanOutHandler::new(fan_out), queue)
}

/// An event log that records what it logged, by order, fails the first
/// append of one (order, type), and takes `delay` per append.
#[derive(Debug, Clone, Default)]
struct WatchedLog {
    logged: Arc<Mutex<Vec<(String, &'static str)>>>,
    fail_once: Arc<Mutex<Option<(String, &'static str)>>>,
    delay: Duration,
}

impl WatchedLog {
    fn failing_once(order_number: &str, event_type: &'static str) -> Self {
        let log = Self::default();
        *log.fail_once.lock().unwrap() = Some((order_number.to_owned(), event_type));
        log
    }

    fn slow(delay: Duration) -> Self {
        Self {
            delay,
            ..Self::default()
        }
    }

    /// The types logged for `order_number`, in the order they were.
    fn of(&self, order_number: &str) -> Vec<&'static str> {
        let logged = self.logged.lock().unwrap();
        logged
            .iter()
            .filter(|(order, _)| order == order_number)
            .map(|(_, kind)| *kind)
            .collect()
    }
}

impl EventLog for WatchedLog {
    async fn append(&self, event: &WebhookEvent) -> Result<(), StoreError> {
        tokio::time::sleep(self.delay).await;
        let this = (event.order_number.clone(), event.kind.as_str());
        if self
            .fail_once
            .lock()
            .unwrap()
            .take_if(|fail| *fail == this)
            .is_some()
        {
            return Err(StoreError::Unavailable("throttled".into()));
        }
        self.logged.lock().unwrap().push(this);
        Ok(())
    }

    async fn since(
        &self,
        _client_code: &str,
        _since: chrono::DateTime<chrono::Utc>,
        _limit: usize,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        Ok(Vec::new())
    }
}

/// A state image as the stream carries it, in DynamoDB's JSON: the sample
/// order's state item, at `status` and `version`.
fn image(status: &str, version: u64) -> serde_json::Value {
    image_of("mabang-1", status, version)
}

/// [`image`] of the order `order_number`.
fn image_of(order_number: &str, status: &str, version: u64) -> serde_json::Value {
    const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");
    let order = shared::intake::parse_order(SAMPLE.as_bytes())
        .unwrap()
        .order;
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z")
        .unwrap()
        .to_utc();
    let mut record = shared::record::OrderRecord::accept(order, Vec::new(), at);
    record.status = status.parse().unwrap();
    record.version = version;
    record.updated_at = at + chrono::Duration::seconds(i64::try_from(version).unwrap());
    let item = adapters::dynamodb::item_for(&record);
    let mut image = serde_json::Map::new();
    for (name, value) in item {
        let value = match value {
            aws_sdk_dynamodb::types::AttributeValue::S(text) => json!({"S": text}),
            aws_sdk_dynamodb::types::AttributeValue::N(number) => json!({"N": number}),
            _ => continue,
        };
        image.insert(name, value);
    }
    image.insert("order_number".into(), json!({"S": order_number}));
    serde_json::Value::Object(image)
}

fn record(
    name: &str,
    sequence: &str,
    old: Option<serde_json::Value>,
    new: serde_json::Value,
) -> serde_json::Value {
    let order_number = new["order_number"].clone();
    let mut change = json!({
        "ApproximateCreationDateTime": 1_795_000_000,
        "Keys": {"order_number": order_number},
        "NewImage": new,
        "SequenceNumber": sequence,
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    if let Some(old) = old {
        change["OldImage"] = old;
    }
    json!({
        "eventID": sequence, "eventName": name, "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": change,
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:0:table/orders/stream/x",
    })
}

fn event(records: Vec<serde_json::Value>) -> Event {
    serde_json::from_value(json!({"Records": records})).expect("a stream event")
}

#[tokio::test]
async fn an_insert_and_a_status_change_are_each_delivered_to_the_endpoint() {
    let (handler, queue) = world().await;
    let batch = event(vec![
        record("INSERT", "1", None, image("pending", 1)),
        record(
            "MODIFY",
            "2",
            Some(image("pending", 1)),
            image("allocated", 2),
        ),
        record(
            "MODIFY",
            "3",
            Some(image("allocated", 2)),
            image("allocated", 3),
        ),
    ]);

    let response = handler.handle(batch).await;

    assert!(response.batch_item_failures.is_empty());
    let types: Vec<String> = queue
        .take()
        .into_iter()
        .map(|ticket| ticket.event_type)
        .collect();
    assert_eq!(types, ["order.accepted", "order.allocated"]);
}

#[tokio::test]
async fn an_unreadable_image_is_retried_and_holds_back_the_records_after_it() {
    let (handler, queue) = world().await;
    let mut broken = image("allocated", 2);
    broken.as_object_mut().unwrap().remove("status");
    let batch = event(vec![
        record("MODIFY", "7", Some(image("pending", 1)), broken),
        record("MODIFY", "8", Some(image("pending", 1)), image("picked", 3)),
    ]);

    let response = handler.handle(batch).await;

    assert_eq!(failed(&response), [Some("7".to_owned())]);
    assert!(
        queue.take().is_empty(),
        "nothing after the failed record went out"
    );
}

fn failed(response: &DynamoDbEventResponse) -> Vec<Option<String>> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect()
}

#[tokio::test]
async fn a_failed_record_holds_back_its_orders_later_records_but_not_other_orders() {
    let log = WatchedLog::failing_once("mabang-1", "order.allocated");
    let (handler, queue) = world_with(log.clone()).await;
    let records = vec![
        record("INSERT", "1", None, image("pending", 1)),
        record(
            "MODIFY",
            "2",
            Some(image("pending", 1)),
            image("allocated", 2),
        ),
        record("INSERT", "3", None, image_of("mabang-2", "pending", 1)),
        record(
            "MODIFY",
            "4",
            Some(image("allocated", 2)),
            image("picked", 3),
        ),
    ];

    let response = handler.handle(event(records.clone())).await;

    assert_eq!(
        failed(&response),
        [Some("2".to_owned())],
        "the earliest failure"
    );
    assert_eq!(
        log.of("mabang-1"),
        ["order.accepted"],
        "picked waits for allocated"
    );
    assert_eq!(
        log.of("mabang-2"),
        ["order.accepted"],
        "another order went on"
    );
    assert_eq!(queue.take().len(), 2);

    // Lambda hands the batch over again from the failed record.
    let response = handler.handle(event(records[1..].to_vec())).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        log.of("mabang-1"),
        ["order.accepted", "order.allocated", "order.picked"],
        "the order's events in stream order"
    );
}

#[tokio::test]
async fn the_earliest_failure_in_batch_order_is_reported_whichever_finishes_first() {
    // mabang-2's record fails first in time (no delay before it), but
    // mabang-1's failed record comes earlier in the batch.
    let log = WatchedLog::failing_once("mabang-1", "order.allocated");
    let (handler, _queue) = world_with(log).await;
    let mut broken = image_of("mabang-2", "allocated", 2);
    broken.as_object_mut().unwrap().remove("status");
    let records = vec![
        record("INSERT", "1", None, image("pending", 1)),
        record(
            "MODIFY",
            "2",
            Some(image("pending", 1)),
            image("allocated", 2),
        ),
        record(
            "MODIFY",
            "3",
            Some(image_of("mabang-2", "pending", 1)),
            broken,
        ),
    ];

    let response = handler.handle(event(records)).await;

    assert_eq!(failed(&response), [Some("2".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn the_orders_of_a_batch_are_published_at_once_and_one_orders_records_in_turn() {
    let delay = Duration::from_secs(1);
    let (handler, _queue) = world_with(WatchedLog::slow(delay)).await;
    let two_orders = event(vec![
        record("INSERT", "1", None, image("pending", 1)),
        record("INSERT", "2", None, image_of("mabang-2", "pending", 1)),
    ]);
    let started = tokio::time::Instant::now();
    assert!(
        handler
            .handle(two_orders)
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(
        started.elapsed(),
        delay,
        "two orders take one store delay, not two"
    );

    let one_order = event(vec![
        record("INSERT", "3", None, image_of("mabang-3", "pending", 1)),
        record(
            "MODIFY",
            "4",
            Some(image_of("mabang-3", "pending", 1)),
            image_of("mabang-3", "allocated", 2),
        ),
    ]);
    let started = tokio::time::Instant::now();
    assert!(
        handler
            .handle(one_order)
            .await
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(
        started.elapsed(),
        delay * 2,
        "one order's records one after another"
    );
}
