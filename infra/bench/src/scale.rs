//! "Scale": what the stack needs at 50 and 500 orders a second sustained
//! (one client sending them all, the worst case for its partitions), from
//! the cost model's measured durations and units, against each limit, and
//! the rate at which each limit is reached.

use local_stack::template::Template;

use crate::cost::{Assumptions, Measured};

/// Rates of the table, orders per second.
pub const RATES: [f64; 2] = [50.0, 500.0];

/// DynamoDB's write throughput per partition (and so per partition key).
const PARTITION_WCU: f64 = 1000.0;
/// Lambda's default concurrency quota per account and region.
const ACCOUNT_CONCURRENCY: f64 = 1000.0;

/// One resource: what it needs per order a second, its limit, and what to change.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub what: String,
    pub per_order_per_second: f64,
    pub limit: f64,
    pub unit: &'static str,
    pub change: &'static str,
}

impl Row {
    /// Orders a second at which the limit is reached.
    #[must_use]
    pub fn saturates_at(&self) -> f64 {
        self.limit / self.per_order_per_second
    }
}

/// The rows, from what was measured.
#[must_use]
pub fn rows(m: &Measured, a: &Assumptions, concurrency: Concurrency) -> Vec<Row> {
    let invocations = m.invocations(a);
    let busy = |function: &str| -> f64 {
        invocations
            .iter()
            .filter(|i| i.function == function && !i.what.contains("polls"))
            .map(|i| i.count * i.billed_ms / 1000.0)
            .sum()
    };
    // Per message, as the cost model bills them (one message per receive).
    let all: f64 = [
        "order-intake",
        "warehouse-events",
        "callback-dispatch",
        "webhook-fanout",
        "webhook-dispatch",
    ]
    .iter()
    .map(|f| busy(f))
    .sum();
    let units = |pred: &dyn Fn(&str) -> bool| -> f64 {
        m.webhooks
            .units
            .iter()
            .filter(|(op, _)| pred(op))
            .map(|(_, u)| u)
            .sum()
    };
    let order_writes = m
        .order
        .steps
        .iter()
        .filter(|s| s.step != "3 ERP reads")
        .count() as f64;
    let (mut reads, mut writes) = (0.0, 0.0);
    for (op, u) in m.order.steps.iter().flat_map(|s| &s.operations) {
        if crate::cost::is_read(op) {
            reads += u;
        } else {
            writes += u;
        }
    }
    let mut rows = vec![
        Row {
            what: "Lambda concurrency, all functions".into(),
            per_order_per_second: all,
            limit: ACCOUNT_CONCURRENCY,
            unit: "instances",
            change: "ask for a higher account quota (a form; granted in steps)",
        },
        Row {
            what: format!(
                "callback-dispatch concurrency (DispatchConcurrency = {}; full batches of {BATCH})",
                concurrency.callbacks
            ),
            per_order_per_second: batch_seconds(m, a, dispatch_calls(m), a.partner_ms),
            limit: concurrency.callbacks,
            unit: "instances",
            change: "raise DispatchConcurrency (the partner publishes no rate limit; the breaker still opens on its failures)",
        },
        Row {
            what: format!(
                "webhook-dispatch concurrency (WebhookConcurrency = {}; full batches of {BATCH})",
                concurrency.webhooks
            ),
            per_order_per_second: m.webhooks.events as f64
                * batch_seconds(m, a, webhook_dispatch_calls(m), a.endpoint_ms),
            limit: concurrency.webhooks,
            unit: "instances",
            change: "raise WebhookConcurrency (each endpoint's own rate is the ERP's)",
        },
        Row {
            what: "orders table write units".into(),
            per_order_per_second: writes,
            limit: 40_000.0,
            unit: "WCU/s (on-demand table quota)",
            change: "ask for a higher table quota; no single order is hot (≈ 8 writes over its life)",
        },
        Row {
            what: "orders table read units".into(),
            per_order_per_second: reads,
            limit: 40_000.0,
            unit: "RCU/s (on-demand table quota)",
            change: "as above",
        },
        Row {
            what: format!(
                "polling index, one client's shard (of {})",
                shared::polling::SHARDS
            ),
            // Each write moves the index key (`updated`): two index units.
            per_order_per_second: order_writes * 2.0 / f64::from(shared::polling::SHARDS),
            limit: PARTITION_WCU,
            unit: "WCU/s per partition",
            change: "more shards (`shared::polling::SHARDS`; a poll queries each)",
        },
        Row {
            what: "webhook event log, one client's partition".into(),
            per_order_per_second: units(&|op| op.contains("event_append")),
            limit: PARTITION_WCU,
            unit: "WCU/s per partition",
            change: "shard the event log's key by day-hour or by order hash",
        },
        Row {
            what: "webhook deliveries, one endpoint's partition".into(),
            per_order_per_second: units(&|op| op.contains("delivery")),
            limit: PARTITION_WCU,
            unit: "WCU/s per partition",
            change: "shard the delivery key (endpoint#n), or batch an order's events into one delivery",
        },
    ];
    rows.sort_by(|a, b| a.saturates_at().total_cmp(&b.saturates_at()));
    rows
}

/// Messages an SQS event source hands a dispatcher at once when the queue
/// is busy (`BatchSize` of both queues in the template).
const BATCH: f64 = 10.0;

/// The dispatchers' `MaximumConcurrency` (template parameters' defaults).
#[derive(Debug, Clone, Copy)]
pub struct Concurrency {
    pub callbacks: f64,
    pub webhooks: f64,
}

/// Instance-seconds per message in a full batch: the messages are handled
/// at once (one task each), so their round trips overlap while their CPU,
/// at 128 MB, adds up.
fn batch_seconds(m: &Measured, a: &Assumptions, calls: f64, answer_ms: f64) -> f64 {
    let cpu_ms = m.dispatch_cpu_us / 1000.0 * a.full_vcpu_mb / a.memory_mb;
    (BATCH * cpu_ms + calls * a.dynamodb_ms + answer_ms) / 1000.0 / BATCH
}

/// DynamoDB operations the callback dispatch step measured.
fn dispatch_calls(m: &Measured) -> f64 {
    m.order
        .steps
        .iter()
        .filter(|s| s.step == "dispatch")
        .flat_map(|s| s.operations.values())
        .filter(|u| **u > 0.0)
        .count() as f64
}

/// DynamoDB operations of a webhook delivery.
fn webhook_dispatch_calls(m: &Measured) -> f64 {
    m.webhooks
        .units
        .keys()
        .filter(|op| {
            op.contains("claim")
                || op.contains("settle")
                || op.contains("endpoint_get")
                || op.contains("endpoint_save")
        })
        .count() as f64
}

/// The "Scale" table.
#[must_use]
pub fn table(m: &Measured, a: &Assumptions) -> String {
    let parameter = |name: &str, default: f64| {
        Template::project()
            .and_then(|t| t.number_parameter(name))
            .map_or(default, |n| n as f64)
    };
    let concurrency = Concurrency {
        callbacks: parameter("DispatchConcurrency", 5.0),
        webhooks: parameter("WebhookConcurrency", 20.0),
    };
    let rows = rows(m, a, concurrency);
    let mut out = String::from(
        "| Resource (first to saturate first) | per order/s | at 50/s | at 500/s | limit | saturates at | then |\n",
    );
    out += "| --- | ---: | ---: | ---: | --- | ---: | --- |\n";
    for row in &rows {
        out += &format!(
            "| {} | {:.2} | {:.0} | {:.0} | {:.0} {} | {:.0} orders/s | {} |\n",
            row.what,
            row.per_order_per_second,
            row.per_order_per_second * RATES[0],
            row.per_order_per_second * RATES[1],
            row.limit,
            row.unit,
            row.saturates_at(),
            row.change
        );
    }
    if let Some(first) = rows.first() {
        out += &format!(
            "\nFirst to saturate: **{}** at **{:.0} orders/s**.\n",
            first.what,
            first.saturates_at()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::tests::measured;

    #[test]
    fn a_limit_is_reached_at_the_rate_that_fills_it() {
        let concurrency = Concurrency {
            callbacks: 5.0,
            webhooks: 20.0,
        };
        let rows = rows(&measured(), &Assumptions::default(), concurrency);
        let events = rows
            .iter()
            .find(|row| row.what.starts_with("webhook event log"))
            .unwrap();
        // 6 appends of 1 unit per order against 1,000 WCU/s.
        assert!((events.saturates_at() - 1000.0 / 6.0).abs() < 1e-9);
        let callbacks = rows
            .iter()
            .find(|row| row.what.starts_with("callback-dispatch"))
            .unwrap();
        // (10 × 1.2 ms × 1769/128 + 3 calls × 6 ms + 300 ms) / 10 per callback.
        let seconds = (10.0 * 1.2 * 1769.0 / 128.0 + 18.0 + 300.0) / 1000.0 / 10.0;
        assert!((callbacks.saturates_at() - 5.0 / seconds).abs() < 1e-9);
        assert!(
            rows.windows(2)
                .all(|w| w[0].saturates_at() <= w[1].saturates_at())
        );
    }
}
