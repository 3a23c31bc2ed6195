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

use aws_lambda_events::event::dynamodb::Event;
use local_stack::Stack;
use local_stack::template::Template;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::notify::{FanOut, Subscriptions};
use shared::webhook::Reach;
use tracing::Instrument;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use webhook_fanout::FanOutHandler;

use crate::events::{api_request, callback_event, stream_insert_event};
use crate::life::{self, Writes};
use crate::partner::Partner;

/// The target: bytes per order lifecycle, platform records included.
pub const TARGET_BYTES: usize = 10 * 1024;

/// What one function wrote over the lifecycle.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogBytes {
    pub functions: BTreeMap<String, FunctionBytes>,
    /// The same lifecycle's bytes with `DYNAMODB_CAPACITY_LINES=1` (a
    /// capacity line per DynamoDB call), for the prose: what switching the
    /// lines on costs.
    pub with_capacity_lines: usize,
    /// The custom-metric series the lifecycle's EMF lines name (as
    /// deployed, capacity lines off): known only when measured in a child
    /// process ([`measure_in_child`]), whose stdout is the functions' log.
    pub metric_series: usize,
}

impl LogBytes {
    #[must_use]
    pub fn total(&self) -> usize {
        self.functions.values().map(FunctionBytes::total).sum()
    }

    /// What the functions printed themselves (their lines and EMF lines).
    #[must_use]
    pub fn printed(&self) -> usize {
        self.functions
            .values()
            .map(|row| row.app_bytes + row.metric_bytes)
            .sum()
    }

    /// Lambda's platform records.
    #[must_use]
    pub fn platform(&self) -> usize {
        self.functions.values().map(|row| row.platform_bytes).sum()
    }

    /// The lifecycle without the functions `leave_out` names.
    #[must_use]
    pub fn without(&self, leave_out: impl Fn(&str) -> bool) -> Self {
        Self {
            functions: self
                .functions
                .iter()
                .filter(|(function, _)| !leave_out(function))
                .map(|(function, row)| (function.clone(), row.clone()))
                .collect(),
            ..self.clone()
        }
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
    println!("{CAPACITY_LINES_ON}");
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
        metric_series: 0,
    })
}

/// Between the child's lifecycles on stdout: the capacity lines go on.
const CAPACITY_LINES_ON: &str = "bench-log-run: capacity lines on";
/// Before the child's result on stdout.
const RESULT: &str = "bench-log-run: result";

/// `bench log-run`: [`measure`] on a stack of its own, in a child process
/// whose stdout is the functions' log: the EMF lines, then the result.
pub async fn log_run() -> Result<(), Box<dyn std::error::Error>> {
    let mut stack = Stack::provision(
        &format!("logrun{}", std::process::id()),
        local_stack::stack::local_warehouses()?,
    )
    .await?;
    let bytes = measure(&mut stack).await?;
    println!("{RESULT}\n{}", serde_json::to_string(&bytes)?);
    Ok(())
}

/// [`measure`] in a child process (`bench log-run`), the metric series
/// counted from what it printed (the EMF lines of the lifecycle as deployed).
pub async fn measure_in_child() -> Result<LogBytes, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = tokio::process::Command::new(exe)
        .arg("log-run")
        .output()
        .await
        .map_err(|e| format!("bench log-run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "bench log-run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    from_child(&String::from_utf8_lossy(&output.stdout))
}

/// The child's result, with the series its first lifecycle's EMF lines name.
fn from_child(stdout: &str) -> Result<LogBytes, String> {
    let (log, result) = stdout
        .split_once(RESULT)
        .ok_or("bench log-run printed no result")?;
    let mut bytes: LogBytes =
        serde_json::from_str(result.trim()).map_err(|e| format!("bench log-run: {e}"))?;
    let deployed = log
        .split_once(CAPACITY_LINES_ON)
        .map_or(log, |(before, _)| before);
    bytes.metric_series = series(deployed);
    Ok(bytes)
}

/// Distinct (namespace, metric, dimension values) of the EMF lines.
fn series(log: &str) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for line in log.lines() {
        let Ok(json) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(directives) = json["_aws"]["CloudWatchMetrics"].as_array() else {
            continue;
        };
        for directive in directives {
            let namespace = directive["Namespace"].as_str().unwrap_or_default();
            let sets = directive["Dimensions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for metric in directive["Metrics"].as_array().into_iter().flatten() {
                let name = metric["Name"].as_str().unwrap_or_default();
                for set in &sets {
                    let values: Vec<String> = set
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|dim| format!("{dim}={}", json[dim]))
                        .collect();
                    seen.insert(format!("{namespace}|{name}|{}", values.join(",")));
                }
            }
        }
    }
    seen.len()
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
         With `DYNAMODB_CAPACITY_LINES=1` (a capacity line per DynamoDB call): {} B. \
         Custom-metric series the lifecycle's EMF lines name: {}.\n",
        if total <= TARGET_BYTES {
            "met"
        } else {
            "missed"
        },
        100.0 * total as f64 / TARGET_BYTES as f64,
        bytes.with_capacity_lines,
        bytes.metric_series,
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
    writes: Writes,
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
            writes: Writes::new(stack).await?,
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
        into: &mut BTreeMap<String, FunctionBytes>,
        function: &str,
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
        let row = into.entry(function.to_owned()).or_default();
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

    async fn lifecycle(&self, number: &str) -> Result<BTreeMap<String, FunctionBytes>, String> {
        let mut bytes = BTreeMap::new();
        let api = self.stack.api().map_err(|e| e.to_string())?;
        let mut before: Option<Value> = None;
        for write in 0..self.writes.count() {
            let (function, request) = self.writes.request(number, write)?;
            life::answered(&self.invoke(&mut bytes, function, api(request)).await)?;
            let (item, _) = life::state(self.stack, number).await?;
            let image = stream_insert_event(&item);
            let event = stream_event(before.as_ref(), &image)?;
            before = Some(image);
            let failed = self
                .invoke(&mut bytes, "webhook-fanout", self.fan_out.handle(event))
                .await;
            if !failed.batch_item_failures.is_empty() {
                return Err(format!("the fan-out of write {write} failed"));
            }
            self.deliver_webhooks(&mut bytes).await?;
        }

        let event = callback_event(self.stack, number)?;
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
                self.writes.client(),
                0,
            )?;
            let response = self.invoke(&mut bytes, "order-intake", api(request)).await;
            if !response.status().is_success() {
                return Err(format!("GET {number} answered {}", response.status()));
            }
        }
        Ok(bytes)
    }

    /// As the delivery queue's event source mapping does: what the fan-out
    /// queued, handed to the webhook dispatcher, one invocation per message.
    async fn deliver_webhooks(
        &self,
        bytes: &mut BTreeMap<String, FunctionBytes>,
    ) -> Result<(), String> {
        let mapping = life::delivery_mapping(self.stack)?;
        let messages = life::receive(&self.stack.sqs, &mapping).await?;
        for message in messages.chunks(1) {
            let kept = self
                .invoke(
                    bytes,
                    "webhook-dispatch",
                    (self.webhook_dispatcher)(life::event(message, &mapping)?),
                )
                .await;
            if !kept.batch_item_failures.is_empty() {
                return Err("a webhook delivery was not settled".into());
            }
        }
        life::delete(&self.stack.sqs, &mapping, &messages).await
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
            "order-intake".to_owned(),
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
            metric_series: 0,
        };
        assert!(over.check().is_err());
        assert!(table(&over).contains("missed"));
    }

    #[test]
    fn a_series_is_a_metric_under_one_set_of_dimension_values() {
        let line = |op: &str| {
            format!(
                r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"N","Dimensions":[["Operation"]],"Metrics":[{{"Name":"Units","Unit":"Count"}}]}}]}},"Operation":"{op}","Units":1}}"#
            )
        };
        let log = [
            line("get"),
            line("get"),
            line("save"),
            "{\"level\":\"INFO\"}".into(),
        ]
        .join("\n");
        assert_eq!(series(&log), 2);
    }

    #[test]
    fn the_series_are_counted_before_the_capacity_lines_go_on() {
        let line = |op: &str| {
            format!(
                r#"{{"_aws":{{"Timestamp":1,"CloudWatchMetrics":[{{"Namespace":"N","Dimensions":[["Operation"]],"Metrics":[{{"Name":"Units","Unit":"Count"}}]}}]}},"Operation":"{op}","Units":1}}"#
            )
        };
        let result = LogBytes {
            functions: BTreeMap::new(),
            with_capacity_lines: 7,
            metric_series: 0,
        };
        let stdout = format!(
            "{}\n{CAPACITY_LINES_ON}\n{}\n{}\n{RESULT}\n{}\n",
            line("get"),
            line("save"),
            line("claim"),
            serde_json::to_string(&result).unwrap()
        );
        let bytes = from_child(&stdout).unwrap();
        assert_eq!((bytes.metric_series, bytes.with_capacity_lines), (1, 7));
    }
}
