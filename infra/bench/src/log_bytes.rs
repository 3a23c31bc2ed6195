//! "Log bytes per lifecycle" (issue 26): what CloudWatch Logs ingests for one
//! order's life, by function, against the target of 10 KB.
//!
//! The spec sample goes through its life with the in-process handlers, each
//! invocation run as Lambda runs it: inside the runtime's
//! `Lambda runtime invoke{requestId, xrayTraceId}` span, written by the
//! functions' own JSON layer (`adapters::logging::json_layer`, what
//! `AWS_LAMBDA_LOG_FORMAT=JSON` selects) at the template's default level
//! (`LogLevel`: `info`), plus the metric lines the functions print
//! (`adapters::emf::take_printed`). The life: the create, five warehouse
//! events, the callback delivered, three ERP reads, and for each of the six
//! writes the webhook fan-out's invocation (one stream record) and the
//! webhook dispatcher's (one delivery to the one endpoint of the client).
//!
//! Lambda adds its own records to each invocation. With `LogFormat: JSON`
//! and the default `SystemLogLevel` (INFO) they are `platform.start` and
//! `platform.report` (`END` has no JSON record; `platform.runtimeDone` is
//! DEBUG); a function whose `LoggingConfig.SystemLogLevel` in the template
//! is WARN has neither (read from the template, as deployed). Their shape is the one AWS documents
//! (<https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-logformat.html>,
//! "system log" examples; fields per
//! <https://docs.aws.amazon.com/lambda/latest/dg/telemetry-schema-reference.html>),
//! and [`platform_records`] builds them with a real request id's length, so
//! their size is counted, not guessed. Cold starts' `platform.initStart` and
//! `platform.initReport` are left out: one per execution environment, not per
//! order.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters::dynamodb_state::{Attr, order_state};
use adapters::sdk::read_item;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::Stack;
use local_stack::template::Template;
use serde::Serialize;
use serde_json::{Value, json};
use shared::notify::{FanOut, Subscriptions};
use shared::webhook::Reach;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use webhook_fanout::FanOutHandler;

use crate::events::{
    SAMPLE_ORDER, api_request, client_key, lifecycle_events, sqs_event, stream_insert_event,
    warehouse_key,
};
use crate::partner::Partner;

/// The target: bytes per order lifecycle, platform records included.
pub const TARGET_BYTES: usize = 10 * 1024;

/// What one function wrote over the lifecycle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FunctionBytes {
    pub invocations: usize,
    /// Application lines (tracing) and their bytes, newline included.
    pub lines: usize,
    pub app_bytes: usize,
    /// Metric (EMF) lines' bytes.
    pub metric_bytes: usize,
    /// Lambda's `platform.start` and `platform.report` records' bytes.
    pub platform_bytes: usize,
}

impl FunctionBytes {
    #[must_use]
    pub fn total(&self) -> usize {
        self.app_bytes + self.metric_bytes + self.platform_bytes
    }
}

/// One lifecycle's log bytes, by function.
#[derive(Debug, Clone, Serialize)]
pub struct LogBytes {
    pub functions: BTreeMap<&'static str, FunctionBytes>,
    /// The same lifecycle's bytes with `DYNAMODB_CAPACITY_LINES=1` (a
    /// capacity line per DynamoDB call), for the prose: what switching the
    /// lines on costs.
    pub with_capacity_lines: usize,
}

impl LogBytes {
    #[must_use]
    pub fn total(&self) -> usize {
        self.functions.values().map(FunctionBytes::total).sum()
    }

    /// An error when the lifecycle is over [`TARGET_BYTES`]: `make bench`
    /// (and its smoke run in `make test`) fails on it.
    pub fn check(&self) -> Result<(), String> {
        let total = self.total();
        if total > TARGET_BYTES {
            return Err(format!(
                "log bytes per lifecycle: {total} B, over the target of {TARGET_BYTES} B"
            ));
        }
        Ok(())
    }
}

/// One lifecycle as deployed, then one more with the capacity lines on.
pub async fn measure(stack: &mut Stack) -> Result<LogBytes, String> {
    stack.webhook_reach = Reach::LocalNetwork;
    let receiver = Partner::start(Duration::ZERO)
        .await
        .map_err(|e| format!("receiver: {e}"))?;
    let store = stack.webhooks().map_err(|e| e.to_string())?;
    Subscriptions::new(store.clone(), store, Reach::LocalNetwork)
        .create(
            "20",
            json!({ "url": receiver.url }).to_string().as_bytes(),
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| format!("registering the endpoint: {e}"))?;
    let partner = Partner::start(Duration::ZERO)
        .await
        .map_err(|e| format!("partner: {e}"))?;
    let run = Run::new(stack, &partner).await?;
    let functions = run.lifecycle("logs-sample").await?;
    let delivered = receiver.take().len();
    if delivered == 0 {
        return Err("no webhook event was delivered".into());
    }
    adapters::capacity::print_lines();
    let with_capacity_lines = run
        .lifecycle("logs-capacity")
        .await?
        .values()
        .map(FunctionBytes::total)
        .sum();
    Ok(LogBytes {
        functions,
        with_capacity_lines,
    })
}

/// The table of docs/benchmarks.md's "Log bytes per lifecycle".
#[must_use]
pub fn table(bytes: &LogBytes) -> String {
    let mut out = String::from(
        "| function | invocations | app lines | app bytes | metric bytes | platform bytes | total |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for (function, row) in &bytes.functions {
        out.push_str(&format!(
            "| {function} | {} | {} | {} | {} | {} | {} |\n",
            row.invocations,
            row.lines,
            row.app_bytes,
            row.metric_bytes,
            row.platform_bytes,
            row.total()
        ));
    }
    let total = bytes.total();
    let sum =
        |field: fn(&FunctionBytes) -> usize| -> usize { bytes.functions.values().map(field).sum() };
    out.push_str(&format!(
        "| **lifecycle** | {} | {} | {} | {} | {} | **{total}** |\n\n",
        sum(|row| row.invocations),
        sum(|row| row.lines),
        sum(|row| row.app_bytes),
        sum(|row| row.metric_bytes),
        sum(|row| row.platform_bytes),
    ));
    out.push_str(&format!(
        "Target ≤ {TARGET_BYTES} B per lifecycle: **{}** ({:.0} % of it). \
         With `DYNAMODB_CAPACITY_LINES=1` (a capacity line per DynamoDB call): {} B.\n",
        if total <= TARGET_BYTES {
            "met"
        } else {
            "missed"
        },
        100.0 * total as f64 / TARGET_BYTES as f64,
        bytes.with_capacity_lines,
    ));
    out
}

/// Lambda's records of one warm invocation under `LogFormat: JSON` at the
/// default `SystemLogLevel`, with a request id of the real length.
#[must_use]
pub fn platform_records(request_id: &str) -> Vec<String> {
    let time = "2026-12-01T10:00:00.000Z";
    vec![
        json!({
            "time": time,
            "type": "platform.start",
            "record": { "requestId": request_id, "version": "42" },
        })
        .to_string(),
        json!({
            "time": time,
            "type": "platform.report",
            "record": {
                "requestId": request_id,
                "metrics": {
                    "durationMs": 12.345,
                    "billedDurationMs": 13,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 24,
                },
                "status": "success",
            },
        })
        .to_string(),
    ]
}

/// Captured JSON lines, shared with the subscriber that writes them.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn take(&self) -> Vec<u8> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

struct Run<'a> {
    stack: &'a Stack,
    dispatcher: local_stack::sqs_poller::SqsFunction,
    webhook_dispatcher: local_stack::sqs_poller::SqsFunction,
    fan_out: FanOutHandler<
        adapters::dynamodb_webhooks::DynamoWebhooks,
        adapters::dynamodb_webhooks::DynamoWebhooks,
        adapters::dynamodb_webhooks::DynamoWebhooks,
        adapters::sqs_webhooks::SqsDeliveryQueue,
    >,
    client: String,
    warehouse: String,
    capture: Capture,
    subscriber: tracing::Dispatch,
    /// Each function's `SystemLogLevel`, by binary, from the template.
    platform_records: BTreeMap<String, String>,
}

impl<'a> Run<'a> {
    async fn new(stack: &'a Stack, partner: &Partner) -> Result<Self, String> {
        let capture = Capture::default();
        let writer = capture.clone();
        // The template's `LogLevel` default, as `adapters::logging` reads it.
        let subscriber = tracing_subscriber::registry()
            .with(Targets::new().with_default(LevelFilter::INFO))
            .with(adapters::logging::json_layer(move || writer.clone()));
        let webhooks = stack.webhooks().map_err(|e| e.to_string())?;
        Ok(Self {
            stack,
            dispatcher: stack
                .dispatcher(&partner.callback_settings())
                .await
                .map_err(|e| e.to_string())?,
            webhook_dispatcher: stack.webhook_dispatcher().map_err(|e| e.to_string())?,
            fan_out: FanOutHandler::new(FanOut::new(
                webhooks.clone(),
                webhooks.clone(),
                webhooks,
                stack.webhook_queue().map_err(|e| e.to_string())?,
            )),
            client: client_key(stack).await?,
            warehouse: warehouse_key(stack).await?,
            capture,
            subscriber: tracing::Dispatch::new(subscriber),
            platform_records: Template::project()
                .and_then(|template| template.functions())
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|function| (function.binary, function.system_log_level))
                .collect(),
        })
    }

    /// Runs `invocation` as `function`'s, adding what it wrote to `into`.
    async fn invoke<T>(
        &self,
        into: &mut BTreeMap<&'static str, FunctionBytes>,
        function: &'static str,
        invocation: impl Future<Output = T>,
    ) -> T {
        self.capture.take();
        adapters::emf::take_printed();
        let request_id = uuid_like(into.values().map(|row| row.invocations).sum());
        let span_id = request_id.clone();
        let output = async move {
            let span = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = %span_id,
                xrayTraceId = "Root=1-6750a1b2-3c4d5e6f708192a3b4c5d6e7;Parent=8a9b0c1d2e3f4a5b;Sampled=0;Lineage=1:ab12cd34:0",
            );
            invocation.instrument(span).await
        }
        .with_subscriber(self.subscriber.clone())
        .await;
        let written = self.capture.take();
        let row = into.entry(function).or_default();
        row.invocations += 1;
        row.lines += written.iter().filter(|byte| **byte == b'\n').count();
        row.app_bytes += written.len();
        row.metric_bytes += adapters::emf::take_printed();
        if self
            .platform_records
            .get(function)
            .is_none_or(|level| level != "WARN")
        {
            row.platform_bytes += platform_records(&request_id)
                .iter()
                .map(|record| record.len() + 1)
                .sum::<usize>();
        }
        output
    }

    async fn lifecycle(
        &self,
        number: &str,
    ) -> Result<BTreeMap<&'static str, FunctionBytes>, String> {
        let mut bytes = BTreeMap::new();
        let api = self.stack.api().map_err(|e| e.to_string())?;
        let mut order: Value = serde_json::from_str(SAMPLE_ORDER).map_err(|e| e.to_string())?;
        order["package"]["order_number"] = json!(number);
        order["platform_order_number"] = json!(format!("po-{number}"));
        let mut writes = vec![(
            "order-intake",
            "/apicenter/api/order".to_owned(),
            order.to_string(),
            &self.client,
        )];
        for (_, event) in lifecycle_events(chrono::Utc::now()) {
            writes.push((
                "warehouse-events",
                format!("/apicenter/api/order/{number}/events"),
                event.to_string(),
                &self.warehouse,
            ));
        }
        let mut before: Option<Value> = None;
        for (function, path, body, key) in writes {
            let request = api_request("POST", &path, Some(&body), key, 0)?;
            let response = self.invoke(&mut bytes, function, api(request)).await;
            if !response.status().is_success() {
                return Err(format!("POST {path} answered {}", response.status()));
            }
            let image = self.stream_image(number).await?;
            let event = stream_event(before.as_ref(), &image)?;
            before = Some(image);
            let failed = self
                .invoke(&mut bytes, "webhook-fanout", self.fan_out.handle(event))
                .await;
            if !failed.batch_item_failures.is_empty() {
                return Err(format!("the fan-out of {path} failed"));
            }
            self.deliver_webhooks(&mut bytes).await?;
        }

        let queue_arn = self
            .stack
            .resources
            .queue_arn("CallbackQueue")
            .map_err(|e| e.to_string())?;
        let event: SqsEvent = serde_json::from_value(sqs_event(queue_arn, &[number.to_owned()]))
            .map_err(|e| format!("SqsEvent: {e}"))?;
        let response = self
            .invoke(&mut bytes, "callback-dispatch", (self.dispatcher)(event))
            .await;
        if !response.batch_item_failures.is_empty() {
            return Err(format!("dispatching {number} failed"));
        }
        for _ in 0..3 {
            let request = api_request(
                "GET",
                &format!("/apicenter/api/order/{number}"),
                None,
                &self.client,
                0,
            )?;
            let response = self.invoke(&mut bytes, "order-intake", api(request)).await;
            if !response.status().is_success() {
                return Err(format!("GET {number} answered {}", response.status()));
            }
        }
        Ok(bytes)
    }

    /// The order's state item as the stream's image holds it (strings and
    /// numbers, in DynamoDB's JSON).
    async fn stream_image(&self, number: &str) -> Result<Value, String> {
        let table = self.stack.orders_table().map_err(|e| e.to_string())?;
        let item = read_item(
            &self.stack.dynamodb,
            table,
            "order_number",
            number.to_owned(),
        )
        .send()
        .await
        .map_err(|e| e.to_string())?
        .item
        .ok_or(format!("{number} is not stored"))?;
        // Checked readable as the fan-out will read it.
        order_state(|name| match item.get(name)? {
            AttributeValue::S(value) => Some(Attr::S(value)),
            AttributeValue::N(value) => Some(Attr::N(value)),
            _ => None,
        })
        .map_err(|e| e.to_string())?;
        Ok(stream_insert_event(&item))
    }

    /// As the delivery queue's event source mapping does: what the fan-out
    /// queued, handed to the webhook dispatcher, one invocation per message.
    async fn deliver_webhooks(
        &self,
        bytes: &mut BTreeMap<&'static str, FunctionBytes>,
    ) -> Result<(), String> {
        let queue_url = self
            .stack
            .resources
            .queue_url("WebhookDeliveryQueue")
            .map_err(|e| e.to_string())?;
        let received = self
            .stack
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| format!("receive: {e}"))?;
        for message in received.messages() {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id().map(str::to_owned);
            record.receipt_handle = message.receipt_handle().map(str::to_owned);
            record.body = message.body().map(str::to_owned);
            record.attributes = message
                .attributes()
                .into_iter()
                .flatten()
                .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
                .collect();
            let mut event = SqsEvent::default();
            event.records = vec![record];
            let kept = self
                .invoke(bytes, "webhook-dispatch", (self.webhook_dispatcher)(event))
                .await;
            if !kept.batch_item_failures.is_empty() {
                return Err("a webhook delivery was not settled".into());
            }
            self.stack
                .sqs
                .delete_message()
                .queue_url(queue_url)
                .set_receipt_handle(message.receipt_handle().map(str::to_owned))
                .send()
                .await
                .map_err(|e| format!("delete: {e}"))?;
        }
        Ok(())
    }
}

/// The stream's record of a write: an INSERT, or a MODIFY with `before`'s
/// new image as its old one.
fn stream_event(before: Option<&Value>, after: &Value) -> Result<Event, String> {
    let mut event = after.clone();
    if let Some(before) = before {
        let record = &mut event["Records"][0];
        record["eventName"] = json!("MODIFY");
        record["dynamodb"]["OldImage"] = before["Records"][0]["dynamodb"]["NewImage"].clone();
    }
    serde_json::from_value(event).map_err(|e| format!("stream event: {e}"))
}

/// A request id of Lambda's length (a UUID), distinct per invocation.
fn uuid_like(n: usize) -> String {
    format!("6f1c2d3e-4b5a-4c7d-8e9f-{n:012x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platform_records_are_lambdas_json_shape() {
        let records = platform_records(&uuid_like(1));
        let report: Value = serde_json::from_str(&records[1]).unwrap();
        assert_eq!(report["type"], "platform.report");
        assert_eq!(report["record"]["requestId"].as_str().unwrap().len(), 36);
        let bytes: usize = records.iter().map(String::len).sum();
        assert!((250..400).contains(&bytes), "{bytes}");
    }

    #[test]
    fn a_lifecycle_over_the_target_fails_the_bench() {
        let mut functions = BTreeMap::new();
        functions.insert(
            "order-intake",
            FunctionBytes {
                invocations: 4,
                lines: 4,
                app_bytes: TARGET_BYTES,
                metric_bytes: 0,
                platform_bytes: 1,
            },
        );
        let over = LogBytes {
            functions,
            with_capacity_lines: 0,
        };
        assert!(over.check().is_err());
        assert!(table(&over).contains("missed"));
    }
}
