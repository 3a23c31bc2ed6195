//! Measures the local outbox pipe on the emulators: the latency from a write
//! to its message on the callback queue, and how many writes per second the
//! pipe keeps up with. Numbers, not checks, so an example run by hand:
//!
//! ```text
//! infra/local/emulators.sh exec -- cargo run -p local-stack --example outbox_pipe_measure
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use local_stack::outbox_pipe::{OutboxPipe, PipeConfig};
use local_stack::provision::{Provisioned, provision};
use local_stack::template::Template;
use serde_json::Value;
use tokio::sync::Mutex;

/// Writes for the latency run, and the pause between two of them.
const LATENCY_WRITES: usize = 200;
const LATENCY_PAUSE: Duration = Duration::from_millis(20);
/// Writes for the throughput runs, and the writers that make them at once.
const THROUGHPUT_WRITES: usize = 1000;
const WRITERS: usize = 8;

struct Bench {
    aws: aws_config::SdkConfig,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    resources: Provisioned,
}

async fn new_bench(prefix: &str) -> Bench {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_some(),
        "run through infra/local/emulators.sh exec -- …"
    );
    let aws = adapters::https::aws_config()
        .await
        .expect("the AWS configuration");
    let dynamodb = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let prefix = format!("{prefix}-{}", std::process::id());
    let resources = provision(
        &Template::project().expect("the template"),
        &dynamodb,
        &sqs,
        &prefix,
    )
    .await
    .expect("the emulator answers");
    Bench {
        aws,
        dynamodb,
        sqs,
        resources,
    }
}

impl Bench {
    fn pipe(&self) -> OutboxPipe {
        OutboxPipe::new(
            &self.aws,
            PipeConfig::callback_outbox(&self.resources).expect("the template's pipe"),
        )
        .expect("a pipe")
    }

    async fn write(&self, order: &str) {
        self.dynamodb
            .put_item()
            .table_name(self.resources.table("OrdersTable").expect("provisioned"))
            .item("order_number", AttributeValue::S(order.into()))
            .item("status", AttributeValue::S("shipped".into()))
            .item("outbox", AttributeValue::N("1".into()))
            .send()
            .await
            .expect("the emulator answers");
    }

    /// Receives and deletes until `count` messages came; the time each
    /// order's message was received.
    async fn receive(&self, count: usize) -> HashMap<String, Instant> {
        let queue = self
            .resources
            .queue_url("CallbackQueue")
            .expect("provisioned");
        let mut received = HashMap::new();
        let deadline = Instant::now() + Duration::from_secs(300);
        while received.len() < count && Instant::now() < deadline {
            let output = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("the emulator answers");
            let now = Instant::now();
            let mut entries = Vec::new();
            for (index, message) in output.messages().iter().enumerate() {
                let body: Value =
                    serde_json::from_str(message.body().expect("a body")).expect("a JSON body");
                received.insert(
                    body["order_number"]
                        .as_str()
                        .expect("a string field")
                        .to_owned(),
                    now,
                );
                entries.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(index.to_string())
                        .receipt_handle(message.receipt_handle().expect("a receipt handle"))
                        .build()
                        .expect("a valid entry"),
                );
            }
            if !entries.is_empty() {
                self.sqs
                    .delete_message_batch()
                    .queue_url(queue)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .expect("the emulator answers");
            }
        }
        assert_eq!(received.len(), count, "messages missing after 300 s");
        received
    }

    async fn write_many_without_outbox(&self, count: usize) {
        for n in 0..count {
            self.dynamodb
                .put_item()
                .table_name(self.resources.table("OrdersTable").expect("provisioned"))
                .item("order_number", AttributeValue::S(format!("P-{n}")))
                .item("status", AttributeValue::S("created".into()))
                .send()
                .await
                .expect("the emulator answers");
        }
    }

    /// `count` writes by [`WRITERS`] writers at once, as fast as they go;
    /// returns how long they took.
    async fn write_many(self: &Arc<Self>, tag: &str, count: usize) -> Duration {
        let started = Instant::now();
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let bench = Arc::clone(self);
                let tag = tag.to_owned();
                tokio::spawn(async move {
                    for n in (writer..count).step_by(WRITERS) {
                        bench.write(&format!("{tag}-{n}")).await;
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.expect("the writer finished");
        }
        started.elapsed()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(what: &str, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{what}: n = {}, p50 = {:?}, p99 = {:?}, max = {:?}",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies[latencies.len() - 1],
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    measure_write_to_message_latency().await;
    measure_pipe_throughput().await;
}

async fn measure_write_to_message_latency() {
    let bench = Arc::new(new_bench("lat").await);
    let pipe = tokio::spawn(bench.pipe().run());

    // The queue alone: SendMessage to ReceiveMessage, for comparison.
    let queue = bench
        .resources
        .queue_url("CallbackQueue")
        .expect("the emulators answer")
        .to_owned();
    let receiver = {
        let bench = Arc::clone(&bench);
        tokio::spawn(async move { bench.receive(LATENCY_WRITES).await })
    };
    let mut sent = HashMap::new();
    for n in 0..LATENCY_WRITES {
        let order = format!("Q-{n}");
        bench
            .sqs
            .send_message()
            .queue_url(&queue)
            .message_body(format!(r#"{{"order_number":"{order}","generation":"1"}}"#))
            .send()
            .await
            .expect("the emulators answer");
        sent.insert(order, Instant::now());
        tokio::time::sleep(LATENCY_PAUSE).await;
    }
    let received = receiver.await.expect("the emulators answer");
    report(
        "queue alone (SendMessage acknowledged -> received)",
        sent.iter()
            .map(|(order, at)| received[order] - *at)
            .collect(),
    );

    let receiver = {
        let bench = Arc::clone(&bench);
        tokio::spawn(async move { bench.receive(LATENCY_WRITES).await })
    };
    let written = Arc::new(Mutex::new(HashMap::new()));
    for n in 0..LATENCY_WRITES {
        let order = format!("L-{n}");
        bench.write(&order).await;
        written.lock().await.insert(order, Instant::now());
        tokio::time::sleep(LATENCY_PAUSE).await;
    }
    let received = receiver.await.expect("the emulators answer");
    let written = written.lock().await;
    report(
        "outbox (PutItem acknowledged -> message received)",
        written
            .iter()
            .map(|(order, at)| received[order].saturating_duration_since(*at))
            .collect(),
    );
    pipe.abort();
}

async fn measure_pipe_throughput() {
    // moto's SQS slows down with the queue's depth (each send scans every
    // message: ≈ 1 s per batch of 10 at 2,000 waiting), so a consumer keeps
    // the queue short while the pipe sends, as the dispatcher would.
    let bench = Arc::new(new_bench("tput").await);
    let writing = bench.write_many("B", THROUGHPUT_WRITES).await;
    println!(
        "writes alone: {THROUGHPUT_WRITES} in {writing:?} = {:.0}/s ({WRITERS} writers)",
        THROUGHPUT_WRITES as f64 / writing.as_secs_f64()
    );

    // The pipe's own part (DynamoDB Local's stream, the filter): records it
    // reads and leaves out, then one it sends, all in the one shard.
    let plain = Arc::new(new_bench("plain").await);
    plain.write_many_without_outbox(THROUGHPUT_WRITES).await;
    plain.write("last").await;
    let mut pipe = plain.pipe();
    let started = Instant::now();
    let mut sent = 0;
    while sent == 0 {
        sent += pipe.pump_once().await.expect("the emulators answer");
    }
    let reading = started.elapsed();
    println!(
        "stream read and filtered: {} records in {reading:?} = {:.0}/s",
        THROUGHPUT_WRITES + 1,
        (THROUGHPUT_WRITES + 1) as f64 / reading.as_secs_f64()
    );

    // A backlog: everything written before the pipe starts, then drained.
    let receiver = {
        let bench = Arc::clone(&bench);
        tokio::spawn(async move { bench.receive(THROUGHPUT_WRITES).await })
    };
    let mut pipe = bench.pipe();
    let started = Instant::now();
    let mut sent = 0;
    while sent < THROUGHPUT_WRITES {
        sent += pipe.pump_once().await.expect("the emulators answer");
    }
    let draining = started.elapsed();
    let received = receiver.await.expect("the emulators answer");
    let last = received
        .values()
        .max()
        .copied()
        .expect("the emulators answer");
    println!(
        "backlog drained by the pipe: {sent} messages sent in {draining:?} = {:.0}/s; \
         all received after {:?}",
        sent as f64 / draining.as_secs_f64(),
        last - started,
    );

    // Sustained: the pipe runs while the writers write as fast as they can.
    let pipe = tokio::spawn(pipe.run());
    let receiver = {
        let bench = Arc::clone(&bench);
        tokio::spawn(async move { bench.receive(THROUGHPUT_WRITES).await })
    };
    let started = Instant::now();
    let writing = bench.write_many("S", THROUGHPUT_WRITES).await;
    let writes_done = started + writing;
    let received = receiver.await.expect("the emulators answer");
    let last = received
        .values()
        .max()
        .copied()
        .expect("the emulators answer");
    println!(
        "sustained: {THROUGHPUT_WRITES} writes in {writing:?} = {:.0}/s while the pipe ran; \
         last message received {:?} after the last write",
        THROUGHPUT_WRITES as f64 / writing.as_secs_f64(),
        last.saturating_duration_since(writes_done)
    );
    pipe.abort();
}
