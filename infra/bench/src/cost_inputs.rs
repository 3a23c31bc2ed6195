//! What the cost model measures itself, beside what the other steps give it:
//! the units of one ERP poll, the bytes the functions print over an order's
//! life (and the metric series their EMF lines name), the template's alarms.
//!
//! The bytes are counted in a child process (`bench log-run`) whose stdout
//! is the functions' log, as in Lambda: the JSON log format and the EMF
//! capacity lines switched on by `adapters::logging::init` under
//! `AWS_LAMBDA_FUNCTION_NAME`; the child runs `capacity::measure` (three
//! orders), then `webhooks::measure`, with a marker line between them.

use std::collections::BTreeSet;
use std::path::Path;

use adapters::capacity;
use local_stack::Stack;
use local_stack::stack::local_warehouses;
use serde_json::Value;

use crate::events::{api_request, client_key};

const MARKER: &str = "bench-log-run: webhooks";

/// Units one poll of a client's changed orders consumes (its four index
/// shards), in the steady state of a poll a minute: nothing changed since
/// the last one. A poll that finds changes also reads them (eventually
/// consistent, ≤ 4 KB each), which the lifecycle's own reads bound.
pub async fn poll_units(stack: &Stack) -> Result<f64, String> {
    let key = client_key(stack).await?;
    let api = stack.api().map_err(|e| e.to_string())?;
    capacity::take();
    let since = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let request = api_request(
        "GET",
        &format!("/apicenter/api/orders?updated_since={since}"),
        None,
        &key,
        0,
    )?;
    let response = api(request).await;
    if !response.status().is_success() {
        return Err(format!("a poll answered {}", response.status()));
    }
    let measured: f64 = capacity::take()
        .operations
        .iter()
        .filter(|(op, _)| **op != "key_lookup")
        .map(|(_, units)| units)
        .sum();
    // DynamoDB Local reports 0 for a query that finds nothing; DynamoDB
    // bills each at least half a unit (eventually consistent).
    Ok(measured.max(0.5 * f64::from(shared::polling::SHARDS)))
}

/// `bench log-run`: the child's part; its stdout is the log.
pub async fn log_run() -> Result<(), Box<dyn std::error::Error>> {
    adapters::logging::init();
    let stack = Stack::provision(
        &format!("logrun{}", std::process::id()),
        local_warehouses()?,
    )
    .await?;
    crate::capacity::measure(&stack).await?;
    println!("{MARKER}");
    crate::webhooks::measure(&stack).await?;
    Ok(())
}

/// What the functions print over one spec-sample life, in bytes, and the
/// custom-metric series named.
#[derive(Debug, Clone, PartialEq)]
pub struct Printed {
    pub bytes_per_lifecycle: f64,
    /// Of those, the webhook run's.
    pub webhook_bytes: f64,
    pub series: usize,
}

/// Runs `bench log-run` and counts its stdout.
pub async fn printed() -> Result<Printed, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = tokio::process::Command::new(exe)
        .arg("log-run")
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench-log-run")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env_remove("RUST_LOG")
        .env_remove("AWS_LAMBDA_LOG_LEVEL")
        .output()
        .await
        .map_err(|e| format!("bench log-run: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "bench log-run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(count(&String::from_utf8_lossy(&output.stdout)))
}

/// The order part (three lifecycles, so a third) plus the webhook part (one
/// life whose create and events print again: an upper bound).
fn count(log: &str) -> Printed {
    let (orders, webhooks) = log.split_once(MARKER).unwrap_or((log, ""));
    let webhook_bytes = webhooks.trim_start().len() as f64;
    Printed {
        bytes_per_lifecycle: orders.len() as f64 / 3.0 + webhook_bytes,
        webhook_bytes,
        series: series(log),
    }
}

/// Distinct (namespace, metric, dimension values) of the EMF lines.
fn series(log: &str) -> usize {
    let mut seen = BTreeSet::new();
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

/// Standard alarms the template defines.
pub fn alarms() -> Result<usize, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.matches("Type: AWS::CloudWatch::Alarm").count())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_order_part_is_a_third_and_the_webhook_part_whole() {
        let log = format!("{}{MARKER}\n{}", "x".repeat(300), "y".repeat(50));
        assert_eq!(count(&log).bytes_per_lifecycle, 150.0);
    }
}
