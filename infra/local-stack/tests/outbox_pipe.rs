//! The local outbox pipe against the emulators (DynamoDB Local's streams and
//! moto's SQS): one callback-queue message for each write that sets `outbox`,
//! none for any other write, and a restart from the checkpoint file neither
//! re-sends nor skips. Each test provisions its own tables and queues.
//!
//! Run through `infra/local/emulators.sh exec -- cargo nextest run -p local-stack`;
//! without the emulators these tests fail.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::outbox_pipe::{OutboxPipe, PipeConfig};
use serde_json::Value;

/// How long a test waits for a message the pipe must send.
const PATIENCE: Duration = Duration::from_secs(10);

mod emulated;

use emulated::Emulated as Fixture;

/// Tables and queues of the template under a prefix of their own.
async fn fixture(name: &str) -> Fixture {
    emulated::provisioned(&format!("op-{name}")).await
}

impl Fixture {
    fn pipe(&self, checkpoint: Option<PathBuf>) -> OutboxPipe {
        let mut config = PipeConfig::callback_outbox(&self.resources).expect("the template's pipe");
        config.checkpoint = checkpoint;
        OutboxPipe::new(&self.aws, config).expect("a readable checkpoint")
    }

    fn table(&self) -> &str {
        self.resources.table("OrdersTable").expect("provisioned")
    }

    fn queue_url(&self) -> &str {
        self.resources
            .queue_url("CallbackQueue")
            .expect("provisioned")
    }

    /// A new order, with `outbox` when given.
    async fn insert(&self, order: &str, outbox: Option<u64>) {
        let mut put = self
            .dynamodb
            .put_item()
            .table_name(self.table())
            .item("order_number", AttributeValue::S(order.into()))
            .item("status", AttributeValue::S("created".into()));
        if let Some(generation) = outbox {
            put = put.item("outbox", AttributeValue::N(generation.to_string()));
        }
        put.send().await.expect("the emulator answers");
    }

    /// An update that sets `outbox` to `generation`.
    async fn set_outbox(&self, order: &str, generation: u64) {
        self.update(order, "SET #s = :s, outbox = :g", Some(generation))
            .await;
    }

    /// An update that removes `outbox`, as every write that needs no
    /// message does.
    async fn remove_outbox(&self, order: &str) {
        self.update(order, "SET #s = :s REMOVE outbox", None).await;
    }

    async fn update(&self, order: &str, expression: &str, generation: Option<u64>) {
        let mut update = self
            .dynamodb
            .update_item()
            .table_name(self.table())
            .key("order_number", AttributeValue::S(order.into()))
            .update_expression(expression)
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":s", AttributeValue::S("shipped".into()));
        if let Some(generation) = generation {
            update =
                update.expression_attribute_values(":g", AttributeValue::N(generation.to_string()));
        }
        update.send().await.expect("the emulator answers");
    }

    /// Every message on the callback queue now, as (order_number,
    /// generation), checking each body is the JSON the dispatcher expects.
    async fn messages(&self) -> Vec<(String, String)> {
        let mut messages = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(self.queue_url())
                .max_number_of_messages(10)
                .visibility_timeout(600)
                .send()
                .await
                .expect("the emulator answers");
            if received.messages().is_empty() {
                return messages;
            }
            for message in received.messages() {
                let body: Value =
                    serde_json::from_str(message.body().expect("a body")).expect("a JSON body");
                let fields = body.as_object().expect("a JSON object");
                assert_eq!(fields.len(), 2, "{body}");
                let order = body["order_number"]
                    .as_str()
                    .expect("a string field")
                    .to_owned();
                let generation = body["generation"]
                    .as_str()
                    .expect("a string field")
                    .to_owned();
                assert!(generation.chars().all(|c| c.is_ascii_digit()), "{body}");
                messages.push((order, generation));
            }
        }
    }
}

/// Pumps until `expected` messages were sent (failing after [`PATIENCE`]),
/// then once more to show nothing else comes; returns the total sent.
async fn pump_until(pipe: &mut OutboxPipe, expected: usize) -> usize {
    let deadline = Instant::now() + PATIENCE;
    let mut sent = 0;
    while sent < expected {
        assert!(
            Instant::now() < deadline,
            "the pipe sent {sent} of {expected} messages in {PATIENCE:?}"
        );
        let now = pipe.pump_once().await.expect("the emulator answers");
        if now == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sent += now;
    }
    sent + pipe.pump_once().await.expect("the emulator answers")
}

fn message(order: &str, generation: &str) -> (String, String) {
    (order.to_owned(), generation.to_owned())
}

fn checkpoint_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("outbox-pipe-{name}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test]
async fn a_write_that_sets_the_outbox_sends_one_message() {
    let stack = fixture("insert").await;
    let mut pipe = stack.pipe(None);

    stack.insert("ON-1", Some(1)).await;
    let sent = pump_until(&mut pipe, 1).await;

    assert_eq!(sent, 1);
    assert_eq!(stack.messages().await, [message("ON-1", "1")]);
}

#[tokio::test]
async fn a_write_that_removes_the_outbox_sends_nothing() {
    let stack = fixture("remove").await;
    let mut pipe = stack.pipe(None);
    stack.insert("ON-1", Some(1)).await;
    pump_until(&mut pipe, 1).await;

    stack.remove_outbox("ON-1").await;
    // A later write on the same item (same shard, after it in the stream):
    // once its message is sent, the removal was read and sent nothing.
    stack.set_outbox("ON-1", 2).await;
    let sent = pump_until(&mut pipe, 1).await;

    assert_eq!(sent, 1);
    assert_eq!(
        stack.messages().await,
        [message("ON-1", "1"), message("ON-1", "2")]
    );
}

#[tokio::test]
async fn a_write_without_the_outbox_sends_nothing() {
    let stack = fixture("plain").await;
    let mut pipe = stack.pipe(None);

    stack.insert("ON-1", None).await;
    stack.set_outbox("ON-1", 1).await;
    let sent = pump_until(&mut pipe, 1).await;

    assert_eq!(sent, 1);
    assert_eq!(stack.messages().await, [message("ON-1", "1")]);
}

#[tokio::test]
async fn two_writes_that_set_the_outbox_send_two_messages() {
    let stack = fixture("two").await;
    let mut pipe = stack.pipe(None);

    stack.insert("ON-1", Some(1)).await;
    stack.set_outbox("ON-1", 2).await;
    let sent = pump_until(&mut pipe, 2).await;

    assert_eq!(sent, 2);
    let mut messages = stack.messages().await;
    messages.sort();
    assert_eq!(messages, [message("ON-1", "1"), message("ON-1", "2")]);
}

#[tokio::test]
async fn more_writes_than_a_batch_send_one_message_each() {
    let stack = fixture("many").await;
    let mut pipe = stack.pipe(None);

    for n in 0..25 {
        stack.insert(&format!("ON-{n:02}"), Some(n)).await;
    }
    let sent = pump_until(&mut pipe, 25).await;

    assert_eq!(sent, 25);
    let mut messages = stack.messages().await;
    messages.sort();
    let expected: Vec<_> = (0..25)
        .map(|n| message(&format!("ON-{n:02}"), &n.to_string()))
        .collect();
    assert_eq!(messages, expected);
}

#[tokio::test]
async fn a_pipe_restarted_from_its_checkpoint_sends_only_what_it_had_not_sent() {
    let stack = fixture("restart").await;
    let checkpoint = checkpoint_path("restart");
    let mut first = stack.pipe(Some(checkpoint.clone()));
    stack.insert("ON-1", Some(1)).await;
    pump_until(&mut first, 1).await;
    drop(first);

    // Written while no pipe runs.
    stack.insert("ON-2", Some(1)).await;
    let mut second = stack.pipe(Some(checkpoint.clone()));
    let sent = pump_until(&mut second, 1).await;

    assert_eq!(sent, 1);
    let mut messages = stack.messages().await;
    messages.sort();
    assert_eq!(messages, [message("ON-1", "1"), message("ON-2", "1")]);
    std::fs::remove_file(&checkpoint).unwrap();
}

#[tokio::test]
async fn a_pipe_without_a_checkpoint_starts_at_the_trim_horizon() {
    let stack = fixture("horizon").await;
    stack.insert("ON-1", Some(1)).await;

    let mut pipe = stack.pipe(None);
    let sent = pump_until(&mut pipe, 1).await;

    assert_eq!(sent, 1);
    assert_eq!(stack.messages().await, [message("ON-1", "1")]);
}

#[tokio::test]
async fn a_pipe_polling_before_the_first_write_sends_it() {
    let stack = fixture("early").await;
    let mut pipe = stack.pipe(None);
    for _ in 0..3 {
        assert_eq!(pipe.pump_once().await.unwrap(), 0);
    }

    stack.insert("ON-1", Some(1)).await;
    let sent = pump_until(&mut pipe, 1).await;

    assert_eq!(sent, 1);
    assert_eq!(stack.messages().await, [message("ON-1", "1")]);
}

#[tokio::test]
async fn a_running_pipe_sends_each_write_as_it_comes() {
    let stack = fixture("running").await;
    let pipe = tokio::spawn(stack.pipe(None).run());

    let mut messages = Vec::new();
    for generation in 1..=3 {
        stack.set_outbox("ON-1", generation).await;
        let deadline = Instant::now() + PATIENCE;
        while messages.len() < generation as usize {
            assert!(Instant::now() < deadline, "{messages:?}");
            messages.extend(stack.messages().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    pipe.abort();

    assert_eq!(
        messages,
        [
            message("ON-1", "1"),
            message("ON-1", "2"),
            message("ON-1", "3")
        ]
    );
}

#[tokio::test]
async fn a_failed_send_does_not_move_the_pipe_past_the_write() {
    let stack = fixture("failed").await;
    let checkpoint = checkpoint_path("failed");
    let mut config = PipeConfig::callback_outbox(&stack.resources).unwrap();
    config.checkpoint = Some(checkpoint.clone());
    config.queue_url = format!("{}-missing", stack.queue_url());
    let mut failing = OutboxPipe::new(&stack.aws, config).unwrap();
    stack.insert("ON-1", Some(1)).await;

    for _ in 0..3 {
        assert!(failing.pump_once().await.is_err());
    }
    drop(failing);
    let mut pipe = stack.pipe(Some(checkpoint.clone()));
    let sent = pump_until(&mut pipe, 1).await;

    assert_eq!(sent, 1);
    assert_eq!(stack.messages().await, [message("ON-1", "1")]);
    std::fs::remove_file(&checkpoint).unwrap();
}
