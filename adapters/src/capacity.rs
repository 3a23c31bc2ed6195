//! What each DynamoDB call consumed: every call asks for
//! `ReturnConsumedCapacity`, and the units are summed in the process
//! ([`take`]), so the benchmark and the tests can price a step of an order's
//! life by operation (`claim`, `save`, `insert`, …).
//!
//! Printed as CloudWatch Embedded Metric Format lines (namespace
//! `WarehouseOrders/DynamoDB`, dimension `Operation`) only where
//! `DYNAMODB_CAPACITY_LINES=1` is set on a deployed function: a line per
//! DynamoDB call was ≈ 60 % of an order's log bytes (issue 26,
//! docs/benchmarks.md "Log bytes per lifecycle") and a custom metric per
//! operation, while the tables' own `ConsumedRead/WriteCapacityUnits`
//! metrics (free, per table and index) already show the bill; the split by
//! operation is the bench's, measured in-process. Switch it on for a
//! diagnosis, not for good.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::types::ConsumedCapacity;
use serde_json::json;
use shared::ports::{Clock, SystemClock};

use crate::emf::{Measure, line as emf_line};

const NAMESPACE: &str = "WarehouseOrders/DynamoDB";

/// Every operation name [`record`] is called with: the closed set of the
/// `Operation` dimension ([`crate::emf::DIMENSION_VALUES`]).
pub const OPERATIONS: &[&str] = &[
    "attempt_put",
    "claim",
    "due_query",
    "duplicate_query",
    "feed_batch_get",
    "feed_query",
    "get",
    "history_query",
    "insert",
    "key_lookup",
    "request_delete",
    "request_get",
    "request_put",
    "request_query",
    "save",
    "signature_spend",
    "webhook_delivery_add",
    "webhook_delivery_claim",
    "webhook_delivery_recent",
    "webhook_delivery_reopen",
    "webhook_delivery_settle",
    "webhook_endpoint_delete",
    "webhook_endpoint_get",
    "webhook_endpoint_insert",
    "webhook_endpoint_list",
    "webhook_endpoint_save",
    "webhook_event_append",
    "webhook_event_since",
];

/// The environment variable that switches the lines on in Lambda.
pub const LINES_VARIABLE: &str = "DYNAMODB_CAPACITY_LINES";

/// Whether [`record`] prints its lines: in Lambda (whose log turns them into
/// metrics), as the functions' log set-up decides at start-up; elsewhere
/// (`orderctl`, tests) stdout belongs to the program.
static PRINT_LINES: AtomicBool = AtomicBool::new(false);

/// Prints the capacity lines from now on (`crate::logging::init`, in Lambda
/// with [`LINES_VARIABLE`] set to `1`).
pub fn print_lines() {
    PRINT_LINES.store(true, Ordering::Relaxed);
}

/// Writes the EMF line for `operation`'s consumed capacity, if it reported
/// any and [`print_lines`] was called.
pub fn record(operation: &'static str, consumed: Option<&ConsumedCapacity>) {
    if let Some(consumed) = consumed {
        if let Some(units) = consumed.capacity_units() {
            *lock().entry(operation).or_default() += units;
        }
        let index: f64 = consumed
            .global_secondary_indexes()
            .map(|indexes| indexes.values().filter_map(|c| c.capacity_units()).sum())
            .unwrap_or_default();
        *lock().entry(INDEX_UNITS).or_default() += index;
    }
    if PRINT_LINES.load(Ordering::Relaxed)
        && let Some(line) = line(operation, consumed)
    {
        crate::emf::print(&line);
    }
}

/// What this process consumed since the last [`take`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Consumed {
    /// Units (table and indexes) by operation.
    pub operations: BTreeMap<&'static str, f64>,
    /// Of those, index writes (reported by the calls that ask for them:
    /// the writes to the orders table).
    pub index_units: f64,
}

impl Consumed {
    /// All units, whatever the operation.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.operations.values().sum()
    }
}

/// What this process consumed since the last call, which starts the count again.
pub fn take() -> Consumed {
    let mut operations = std::mem::take(&mut *lock());
    let index_units = operations.remove(INDEX_UNITS).unwrap_or_default();
    Consumed {
        operations,
        index_units,
    }
}

/// The index units' key among the operations.
const INDEX_UNITS: &str = "(indexes)";

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<&'static str, f64>> {
    static TOTALS: Mutex<BTreeMap<&'static str, f64>> = Mutex::new(BTreeMap::new());
    TOTALS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn line(operation: &'static str, consumed: Option<&ConsumedCapacity>) -> Option<String> {
    let consumed = consumed?;
    let (name, units) = match (
        consumed.write_capacity_units(),
        consumed.read_capacity_units(),
        consumed.capacity_units(),
    ) {
        (Some(write), _, _) if write > 0.0 => ("WriteCapacityUnits", write),
        (_, Some(read), _) if read > 0.0 => ("ReadCapacityUnits", read),
        (_, _, Some(total)) => ("CapacityUnits", total),
        _ => return None,
    };
    // Stamped when the call's answer is read: the adapter has no other clock.
    Some(emf_line(
        SystemClock.now(),
        NAMESPACE,
        &[("Operation", operation)],
        &[Measure {
            name,
            unit: "Count",
            value: json!(units),
        }],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_reports_its_write_units_by_operation() {
        let consumed = ConsumedCapacity::builder()
            .capacity_units(2.0)
            .write_capacity_units(2.0)
            .build();
        let line: serde_json::Value =
            serde_json::from_str(&line("claim", Some(&consumed)).unwrap()).unwrap();
        assert_eq!(line["Operation"], "claim");
        assert_eq!(
            line["level"], "FATAL",
            "a level no ApplicationLogLevel drops"
        );
        assert_eq!(line["WriteCapacityUnits"], 2.0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "WriteCapacityUnits"
        );
    }

    #[test]
    fn a_call_without_units_writes_nothing() {
        assert!(line("get", None).is_none());
    }

    /// Each `record("…")` (and the webhook store's `judged("…")`, which
    /// records for its caller) in the adapters' source, by its first
    /// argument: a literal of [`OPERATIONS`], never a value from a request.
    #[test]
    fn every_recorded_operation_is_of_the_closed_set() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|name| name == "capacity.rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for call in ["capacity::record(", "judged(", "put_once("] {
                for (at, _) in source.match_indices(call) {
                    let argument = source[at + call.len()..].trim_start();
                    if call != "capacity::record(" && !argument.starts_with('"') {
                        continue; // a definition: `judged<R>(` never matches, `put_once(\n operation` is none
                    }
                    let name = argument
                        .strip_prefix('"')
                        .and_then(|rest| rest.split_once('"'))
                        .map(|(name, _)| name);
                    match name {
                        Some(name) => {
                            assert!(
                                OPERATIONS.contains(&name),
                                "{}: {name:?} is not in OPERATIONS",
                                path.display()
                            );
                            seen += 1;
                        }
                        None => assert!(
                            argument.starts_with("operation,")
                                && (path.ends_with("dynamodb_webhooks.rs")
                                    || path.ends_with("sdk.rs")),
                            "{}: capacity::record with a computed operation: {}",
                            path.display(),
                            &argument[..argument.len().min(40)]
                        ),
                    }
                }
            }
        }
        assert!(seen >= OPERATIONS.len(), "only {seen} calls found");
    }
}
