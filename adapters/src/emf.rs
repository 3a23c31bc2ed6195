//! The one writer of CloudWatch Embedded Metric Format lines: the core's
//! [`Metric`]s ([`EmfMetrics`]), the dispatcher's delivery counts and the
//! DynamoDB capacity lines ([`crate::capacity`]) are all built by [`line`].
//! Printed to stdout ([`print`]), CloudWatch Logs turns them into metrics:
//! no metrics SDK, no extra API call.
//!
//! Each metric name × dimension set × dimension value is a custom metric
//! billed every month, so a dimension value comes from a closed set
//! ([`DIMENSION_VALUES`]), never from request data (an order number, a client
//! code, a key id): [`line`] writes any other value as [`OTHER`].

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use shared::metrics::{Metric, Metrics};
use shared::ports::Clock;

/// The `level` of an EMF line. The functions log JSON, and Lambda then drops
/// every application line below the function's `ApplicationLogLevel`, reading
/// a line without a `level` as INFO: set to WARN, it would drop the metric
/// lines, and the alarms built on them would never fire. FATAL is the one
/// level no setting drops.
pub const LEVEL: &str = "FATAL";

/// The namespace of the order API's metrics.
pub const ORDERS: &str = "WarehouseOrders";

/// The namespace of the webhook dispatcher's metrics.
pub const WEBHOOKS: &str = "WarehouseWebhooks";

/// Every value a dimension may take, by dimension name: the DynamoDB
/// operations of [`crate::capacity`]. A new dimension or value is added here,
/// on purpose, with its count of series in mind.
pub const DIMENSION_VALUES: &[(&str, &[&str])] = &[("Operation", crate::capacity::OPERATIONS)];

/// What [`line`] writes for a dimension value outside [`DIMENSION_VALUES`]:
/// one series for all of them, however many orders or clients there are.
pub const OTHER: &str = "other";

/// `value` if the closed set of dimension `name` holds it, else [`OTHER`].
fn bounded<'a>(name: &str, value: &'a str) -> &'a str {
    let known = DIMENSION_VALUES
        .iter()
        .any(|(dimension, values)| *dimension == name && values.contains(&value));
    if known { value } else { OTHER }
}

/// Bytes [`print`] wrote since the last [`take_printed`].
static PRINTED: AtomicUsize = AtomicUsize::new(0);

/// Writes `line` to stdout (CloudWatch Logs in Lambda), counting its bytes.
pub fn print(line: &str) {
    PRINTED.fetch_add(line.len() + 1, Ordering::Relaxed);
    println!("{line}");
}

/// The bytes of metric lines printed since the last call (the bench's log
/// bytes per lifecycle), which starts the count again.
pub fn take_printed() -> usize {
    PRINTED.swap(0, Ordering::Relaxed)
}

/// One value of a line: its name, CloudWatch unit and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: Value,
}

impl Measure {
    /// A count of one.
    #[must_use]
    pub fn count(name: &'static str) -> Self {
        Self {
            name,
            unit: "Count",
            value: json!(1),
        }
    }
}

/// One EMF line at `at`: `values` in `namespace`, under one set of
/// `dimensions` (name and value each; a value outside the closed set is
/// written as [`OTHER`]).
#[must_use]
pub fn line(
    at: DateTime<Utc>,
    namespace: &str,
    dimensions: &[(&str, &str)],
    values: &[Measure],
) -> String {
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": values
                    .iter()
                    .map(|v| json!({"Name": v.name, "Unit": v.unit}))
                    .collect::<Vec<_>>(),
            }],
        }),
    );
    line.insert("level".into(), json!(LEVEL));
    for (name, value) in dimensions {
        line.insert((*name).into(), json!(bounded(name, value)));
    }
    for value in values {
        line.insert(value.name.into(), value.value.clone());
    }
    Value::Object(line).to_string()
}

/// The core's metrics as EMF lines on stdout, stamped by `clock`.
#[derive(Clone, Default)]
pub struct EmfMetrics<C> {
    clock: C,
}

impl<C> std::fmt::Debug for EmfMetrics<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmfMetrics")
    }
}

impl<C: Clock> EmfMetrics<C> {
    pub fn new(clock: C) -> Self {
        Self { clock }
    }

    /// The line for `metric`.
    #[must_use]
    pub fn line(&self, metric: Metric) -> String {
        match metric {
            Metric::OrderNumberCollision => line(
                self.clock.now(),
                ORDERS,
                &[],
                &[Measure::count("OrderNumberCollision")],
            ),
            Metric::WebhookEndpointDisabled => line(
                self.clock.now(),
                WEBHOOKS,
                &[],
                &[Measure::count("EndpointDisabled")],
            ),
        }
    }
}

impl<C: Clock> Metrics for EmfMetrics<C> {
    fn record(&self, metric: Metric) {
        print(&self.line(metric));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At;

    impl Clock for At {
        fn now(&self) -> DateTime<Utc> {
            DateTime::from_timestamp_millis(1_764_000_000_123).unwrap()
        }
    }

    #[test]
    fn a_collision_line_declares_its_count_at_the_clocks_time() {
        let line: Value =
            serde_json::from_str(&EmfMetrics::new(At).line(Metric::OrderNumberCollision)).unwrap();
        assert_eq!(line["OrderNumberCollision"], 1);
        assert_eq!(
            line["level"], "FATAL",
            "a level no ApplicationLogLevel drops"
        );
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(line["_aws"]["Timestamp"], 1_764_000_000_123_i64);
        assert_eq!(declared["Namespace"], ORDERS);
        assert_eq!(declared["Dimensions"], json!([[]]));
        assert_eq!(declared["Metrics"][0]["Name"], "OrderNumberCollision");
    }

    #[test]
    fn dimensions_are_declared_and_carried() {
        let line: Value = serde_json::from_str(&line(
            At.now(),
            "Space",
            &[("Operation", "claim")],
            &[Measure {
                name: "WriteCapacityUnits",
                unit: "Count",
                value: json!(2.0),
            }],
        ))
        .unwrap();
        assert_eq!(line["Operation"], "claim");
        assert_eq!(line["WriteCapacityUnits"], 2.0);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Operation"]])
        );
    }

    #[test]
    fn a_dimension_value_from_request_data_is_never_written() {
        for request_data in ["mabang-test002", "20", "wk_live_key_id", "claim "] {
            let line: Value = serde_json::from_str(&line(
                At.now(),
                "Space",
                &[("Operation", request_data)],
                &[Measure::count("Calls")],
            ))
            .unwrap();
            assert_eq!(line["Operation"], OTHER, "{request_data}");
        }
        let unknown: Value = serde_json::from_str(&line(
            At.now(),
            "Space",
            &[("Client", "claim")],
            &[Measure::count("Calls")],
        ))
        .unwrap();
        assert_eq!(unknown["Client"], OTHER, "a dimension outside the set");
    }
}
