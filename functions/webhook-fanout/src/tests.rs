use serde_json::json;
use shared::memory::webhooks::{
    MemoryDeliveries, MemoryDeliveryQueue, MemoryEndpoints, MemoryEventLog,
};
use shared::notify::FanOut;
use shared::ports::EndpointStore;
use shared::webhook::{
    Endpoint, EndpointId, EndpointUrl, EventTypes, NewEndpoint, Reach, WebhookSecret,
};

use super::*;

type Handler =
    FanOutHandler<MemoryEndpoints, MemoryEventLog, MemoryDeliveries, MemoryDeliveryQueue>;

async fn world() -> (Handler, MemoryDeliveryQueue) {
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
    let fan_out = FanOut::new(
        endpoints,
        MemoryEventLog::default(),
        MemoryDeliveries::default(),
        queue.clone(),
    );
    (FanOutHandler::new(fan_out), queue)
}

/// A state image as the stream carries it, in DynamoDB's JSON: the sample
/// order's state item, at `status` and `version`.
fn image(status: &str, version: u64) -> serde_json::Value {
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
    serde_json::Value::Object(image)
}

fn record(
    name: &str,
    sequence: &str,
    old: Option<serde_json::Value>,
    new: serde_json::Value,
) -> serde_json::Value {
    let mut change = json!({
        "ApproximateCreationDateTime": 1_795_000_000,
        "Keys": {"order_number": {"S": "mabang-1"}},
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

    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, [Some("7".to_owned())]);
    assert!(
        queue.take().is_empty(),
        "nothing after the failed record went out"
    );
}
