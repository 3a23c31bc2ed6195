//! The local stand-in for a stream event source mapping (the template's
//! `WebhookOrderChanges`) against DynamoDB Local's stream: a record the
//! function reports failed is handed over again from itself (the records
//! before it are not), and once `MaximumRetryAttempts` are spent the range
//! goes to the on-failure queue and the records after it flow again.
//!
//! Run through `infra/local/emulators.sh exec -- cargo nextest run -p local-stack --test stream_mapping`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::stream_mapping::{MappingConfig, StreamFunction, StreamMapping};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(10);

mod emulated;

use emulated::Emulated as Fixture;

async fn fixture(name: &str) -> Fixture {
    emulated::provisioned(&format!("sm-{name}")).await
}

/// What the function was handed, batch by batch (order numbers), and which
/// order it fails (until `fail_times` failures have been reported).
#[derive(Default)]
struct Script {
    batches: Vec<Vec<String>>,
    fail_order: Option<String>,
    fail_times: usize,
}

fn function(script: Arc<Mutex<Script>>) -> StreamFunction {
    Arc::new(move |event: Event| {
        let script = Arc::clone(&script);
        Box::pin(async move {
            let mut script = script.lock().expect("the script");
            let orders: Vec<(String, String)> = event
                .records
                .iter()
                .map(|record| {
                    let keys = serde_json::to_value(&record.change.keys).expect("keys");
                    (
                        keys["order_number"]["S"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                        record.change.sequence_number.clone().unwrap_or_default(),
                    )
                })
                .collect();
            script
                .batches
                .push(orders.iter().map(|(order, _)| order.clone()).collect());
            let mut response = DynamoDbEventResponse::default();
            if script.fail_times > 0
                && let Some((_, sequence)) = orders
                    .iter()
                    .find(|(order, _)| Some(order) == script.fail_order.as_ref())
            {
                script.fail_times -= 1;
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence.clone());
                response.batch_item_failures.push(failure);
            }
            response
        })
    })
}

impl Fixture {
    async fn insert(&self, order: &str) {
        self.dynamodb
            .put_item()
            .table_name(self.resources.table("OrdersTable").expect("provisioned"))
            .item("order_number", AttributeValue::S(order.into()))
            .send()
            .await
            .expect("the emulator answers");
    }

    fn mapping(&self, script: &Arc<Mutex<Script>>, retries: Option<u64>) -> StreamMapping {
        let mut config =
            MappingConfig::webhook_order_changes(&self.resources).expect("the template's mapping");
        config.maximum_retry_attempts = retries;
        StreamMapping::new(&self.aws, config, function(Arc::clone(script))).expect("a mapping")
    }

    async fn dead_letters(&self) -> Vec<Value> {
        let url = self
            .resources
            .queue_url("WebhookFanOutDeadLetterQueue")
            .expect("provisioned");
        let received = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("the emulator answers");
        received
            .messages()
            .iter()
            .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("JSON"))
            .collect()
    }
}

/// Pumps (failed pumps included: a failed record is an error) until the
/// function has been handed `order`, failing after [`PATIENCE`].
async fn pump_until_handed(mapping: &mut StreamMapping, script: &Arc<Mutex<Script>>, order: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let _ = mapping.pump_once().await;
        let handed = script
            .lock()
            .expect("the script")
            .batches
            .iter()
            .flatten()
            .filter(|o| *o == order)
            .count();
        if handed > 0 && script.lock().expect("the script").fail_times == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{order} was not handed over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failed_record_is_handed_over_again_from_itself_not_from_the_batch_start() {
    let stack = fixture("resume").await;
    for order in ["ON-1", "ON-2", "ON-3"] {
        stack.insert(order).await;
    }
    let script = Arc::new(Mutex::new(Script {
        fail_order: Some("ON-2".into()),
        fail_times: 1,
        ..Script::default()
    }));
    let mut mapping = stack.mapping(&script, Some(50));

    pump_until_handed(&mut mapping, &script, "ON-3").await;
    // Once more, to show nothing is handed over again.
    mapping.pump_once().await.expect("nothing fails now");

    let batches = script.lock().expect("the script").batches.clone();
    assert_eq!(
        batches,
        [vec!["ON-1", "ON-2", "ON-3"], vec!["ON-2", "ON-3"]],
        "ON-1 passed and is not handed over again"
    );
    assert!(stack.dead_letters().await.is_empty());
}

#[tokio::test]
async fn spent_retries_send_the_range_to_the_on_failure_queue_and_the_stream_moves_on() {
    let stack = fixture("exhausted").await;
    for order in ["ON-1", "ON-2", "ON-3"] {
        stack.insert(order).await;
    }
    let script = Arc::new(Mutex::new(Script {
        fail_order: Some("ON-2".into()),
        fail_times: usize::MAX,
        ..Script::default()
    }));
    let mut mapping = stack.mapping(&script, Some(2));
    for _ in 0..3 {
        let _ = mapping.pump_once().await;
    }
    script.lock().expect("the script").fail_times = 0;
    stack.insert("ON-4").await;

    pump_until_handed(&mut mapping, &script, "ON-4").await;

    let batches = script.lock().expect("the script").batches.clone();
    assert_eq!(
        batches,
        [
            vec!["ON-1", "ON-2", "ON-3"],
            vec!["ON-2", "ON-3"],
            vec!["ON-2", "ON-3"],
            vec!["ON-4"]
        ],
        "two retries, then past the range"
    );
    let dead = stack.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["DDBStreamBatchInfo"]["batchSize"], 2);
    assert_eq!(
        dead[0]["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
}
