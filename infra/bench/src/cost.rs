//! "Cost per million orders" and "Idle cost per month" (issue 26): what AWS
//! bills for one order's life, counted from what the bench measured
//! ([`Measured`]: capacity units of `capacity::measure`, the webhook events'
//! units and SQS requests of `webhooks::measure`, the handlers' CPU per
//! request from the throughput runs, the log bytes and metric series of
//! `log_bytes`), the rest
//! stated in [`Assumptions`], priced with [`Prices`], beside a floor: what the
//! API requests, the minimal writes and one callback must cost.

use serde::Serialize;

use crate::capacity::Lifecycle;
use crate::log_bytes::{LogBytes, platform_records};
use crate::prices::{Prices, READ_ON, SOURCES};
use crate::webhooks::WebhookCost;

/// What the bench measured, for the spec sample.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The spec sample's lifecycle (`capacity::measure`).
    pub order: Lifecycle,
    /// Units of one ERP poll (`GET /apicenter/api/orders?updated_since=`).
    pub poll_units: f64,
    /// The webhook events of the same life, each delivered to one endpoint.
    pub webhooks: WebhookCost,
    /// This process's CPU per request in the handlers, µs: intake (c = 1),
    /// dispatch (per callback).
    pub intake_cpu_us: f64,
    pub dispatch_cpu_us: f64,
    /// What the lifecycle writes to CloudWatch Logs, by function, and the
    /// custom-metric series its EMF lines name (`log_bytes::measure`).
    pub log: LogBytes,
    /// Standard alarms in the template.
    pub alarms: usize,
}

/// What is stated rather than measured.
#[derive(Debug, Clone, Serialize)]
pub struct Assumptions {
    /// Clients, each polling once a minute, sharing a million orders a month.
    pub clients: f64,
    pub orders_per_month: f64,
    /// Round trips in us-east-1: DynamoDB and SQS; the partner (CK1, in
    /// China) and an ERP's webhook endpoint.
    pub dynamodb_ms: f64,
    pub partner_ms: f64,
    pub endpoint_ms: f64,
    /// The functions' memory, and the memory at which Lambda gives one full vCPU.
    pub memory_mb: f64,
    pub full_vcpu_mb: f64,
    /// The SQS event sources' idle long polls: pollers per queue, one
    /// 20-second receive each at a time; the pipe's `GetRecords` per second
    /// on the one shard of an idle stream.
    pub pollers_per_queue: f64,
    pub pipe_polls_per_second: f64,
}

impl Default for Assumptions {
    fn default() -> Self {
        Self {
            clients: 20.0,
            orders_per_month: 1_000_000.0,
            dynamodb_ms: 6.0,
            partner_ms: 300.0,
            endpoint_ms: 100.0,
            memory_mb: 128.0,
            full_vcpu_mb: 1769.0,
            pollers_per_queue: 5.0,
            pipe_polls_per_second: 4.0,
        }
    }
}

const SECONDS_PER_MONTH: f64 = 30.0 * 24.0 * 3600.0;
const MINUTES_PER_MONTH: f64 = SECONDS_PER_MONTH / 60.0;

/// Bytes of Lambda's platform records of one invocation (`log_bytes`
/// builds them as documented), for the invocations the log step does not
/// run: the polls, and the floor's.
#[must_use]
pub fn platform_bytes() -> f64 {
    platform_records("6f7f0961-0000-4a3c-9c8f-1f2d3e4f5a6b")
        .iter()
        .map(|record| record.len() + 1)
        .sum::<usize>() as f64
}

/// The webhook functions, whose log the order's own life does not write.
fn is_webhook_function(function: &str) -> bool {
    function.starts_with("webhook")
}

/// One kind of invocation of a lifecycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Invocation {
    pub function: &'static str,
    pub what: String,
    /// Per lifecycle.
    pub count: f64,
    /// Billed ms of each (CPU at 128 MB plus the round trips, rounded up to 1 ms).
    pub billed_ms: f64,
    /// The floor's count and billed ms (no CPU, only the necessary round trips).
    pub floor_count: f64,
    pub floor_ms: f64,
}

/// One line of the bill: a service, what it counts per lifecycle, dollars
/// per million orders and the floor's dollars.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub service: &'static str,
    pub quantity: String,
    pub dollars: f64,
    pub floor: f64,
}

impl Measured {
    /// The same life without its webhook events (issue 23 came after the
    /// floor was set): no fan-out, no deliveries, none of their log.
    #[must_use]
    pub fn without_webhooks(&self) -> Self {
        Self {
            webhooks: WebhookCost {
                events: 0,
                delivered: 0,
                units: Default::default(),
                sqs: Default::default(),
            },
            log: self.log.without(is_webhook_function),
            ..self.clone()
        }
    }

    fn polls_per_order(a: &Assumptions) -> f64 {
        a.clients * MINUTES_PER_MONTH / a.orders_per_month
    }

    /// The lifecycle's invocations, function by function.
    #[must_use]
    pub fn invocations(&self, a: &Assumptions) -> Vec<Invocation> {
        let slow_down = a.full_vcpu_mb / a.memory_mb;
        let billed = |cpu_us: f64, wait_ms: f64| (cpu_us / 1000.0 * slow_down + wait_ms).ceil();
        let mut out = Vec::new();
        for step in &self.order.steps {
            let calls = step.operations.values().filter(|u| **u > 0.0).count() as f64;
            let (function, count, cpu, wait, floor_wait) = match step.step.as_str() {
                "dispatch" => (
                    "callback-dispatch",
                    1.0,
                    self.dispatch_cpu_us,
                    calls * a.dynamodb_ms + a.partner_ms,
                    2.0 * a.dynamodb_ms + a.partner_ms,
                ),
                "3 ERP reads" => (
                    "order-intake",
                    3.0,
                    self.intake_cpu_us,
                    calls * a.dynamodb_ms,
                    a.dynamodb_ms,
                ),
                "create" => (
                    "order-intake",
                    1.0,
                    self.intake_cpu_us,
                    calls * a.dynamodb_ms,
                    a.dynamodb_ms,
                ),
                _ => (
                    "warehouse-events",
                    1.0,
                    self.intake_cpu_us,
                    calls * a.dynamodb_ms,
                    2.0 * a.dynamodb_ms,
                ),
            };
            out.push(Invocation {
                function,
                what: step.step.clone(),
                count,
                billed_ms: billed(cpu, wait),
                floor_count: count,
                floor_ms: floor_wait.ceil(),
            });
        }
        let polls = Self::polls_per_order(a);
        out.push(Invocation {
            function: "order-intake",
            what: "ERP polls (share)".into(),
            count: polls,
            billed_ms: billed(self.intake_cpu_us, a.dynamodb_ms),
            floor_count: polls,
            floor_ms: a.dynamodb_ms.ceil(),
        });
        let events = self.webhooks.events as f64;
        let fan_out_calls = self.webhook_calls(true) + 1.0; // + the SQS send
        let dispatch_calls = self.webhook_calls(false);
        out.push(Invocation {
            function: "webhook-fanout",
            what: "webhook events (one per write, the dear case)".into(),
            count: events,
            billed_ms: billed(self.dispatch_cpu_us, fan_out_calls * a.dynamodb_ms),
            floor_count: 0.0,
            floor_ms: 0.0,
        });
        out.push(Invocation {
            function: "webhook-dispatch",
            what: "webhook deliveries (one per receive)".into(),
            count: events,
            billed_ms: billed(
                self.dispatch_cpu_us,
                dispatch_calls * a.dynamodb_ms + a.endpoint_ms,
            ),
            floor_count: 0.0,
            floor_ms: 0.0,
        });
        out
    }

    /// DynamoDB calls per webhook event, of the fan-out or of the dispatcher.
    fn webhook_calls(&self, fan_out: bool) -> f64 {
        self.webhooks
            .units
            .keys()
            .filter(|op| {
                let in_fan_out = op.contains("endpoint_list")
                    || op.contains("event_append")
                    || op.contains("delivery_add");
                in_fan_out == fan_out
            })
            .count() as f64
    }

    /// Read and write units of the lifecycle (order, polls, webhooks) and of the floor.
    fn units(&self, a: &Assumptions) -> ((f64, f64), (f64, f64)) {
        let (mut reads, mut writes) = (0.0, 0.0);
        for (op, units) in self.order.steps.iter().flat_map(|s| &s.operations) {
            if is_read(op) {
                reads += units;
            } else {
                writes += units;
            }
        }
        for (op, units) in &self.webhooks.units {
            if is_read(op) {
                reads += units;
            } else {
                writes += units;
            }
        }
        let polls = Self::polls_per_order(a);
        reads += polls * self.poll_units;
        let (mut floor_reads, mut floor_writes) = (polls * 0.5, 0.0);
        for step in &self.order.steps {
            let step_reads = match step.step.as_str() {
                "create" | "dispatch" => 0.5,
                "3 ERP reads" => step.floor,
                _ => 1.0,
            };
            floor_reads += step_reads;
            floor_writes += step.floor - step_reads;
        }
        ((reads, writes), (floor_reads, floor_writes))
    }

    /// The bill of one lifecycle, in dollars per million orders.
    #[must_use]
    pub fn bill(&self, p: &Prices, a: &Assumptions) -> Vec<Line> {
        let per_million = |quantity: f64, price: f64| quantity * price * 1_000_000.0;
        let invocations = self.invocations(a);
        let polls = Self::polls_per_order(a);
        let api = 1.0 + 5.0 + 3.0 + polls;
        let gb = a.memory_mb / 1024.0;
        let count: f64 = invocations.iter().map(|i| i.count).sum();
        let floor_count: f64 = invocations.iter().map(|i| i.floor_count).sum();
        let gb_s: f64 = invocations
            .iter()
            .map(|i| i.count * i.billed_ms / 1000.0 * gb)
            .sum();
        let floor_gb_s: f64 = invocations
            .iter()
            .map(|i| i.floor_count * i.floor_ms / 1000.0 * gb)
            .sum();
        let ((reads, writes), (floor_reads, floor_writes)) = self.units(a);
        // The callback: the pipe's one message (a pipe request and an SQS
        // send), the event source's receive and delete; the webhooks' as measured.
        let webhook_sqs: f64 = self.webhooks.sqs.values().map(|n| f64::from(*n)).sum();
        let sqs = 3.0 + webhook_sqs;
        // The functions' lines and Lambda's records as the log step measured
        // them (none for a function whose `SystemLogLevel` is WARN), plus the
        // polls' records, which it does not run.
        let printed = self.log.printed() as f64;
        let log_bytes = printed + self.log.platform() as f64 + polls * platform_bytes();
        let floor_log_bytes = floor_count * platform_bytes();
        let puts = f64::from(self.order.s3_puts);
        vec![
            Line {
                service: "API Gateway (HTTP API)",
                quantity: format!(
                    "{} requests (create, 5 events, 3 reads, {polls:.2} polls)",
                    number(api)
                ),
                dollars: per_million(api, p.api_request),
                floor: per_million(api, p.api_request),
            },
            Line {
                service: "Lambda requests",
                quantity: format!(
                    "{} invocations (floor {})",
                    number(count),
                    number(floor_count)
                ),
                dollars: per_million(count, p.lambda_request),
                floor: per_million(floor_count, p.lambda_request),
            },
            Line {
                service: "Lambda duration (128 MB)",
                quantity: format!("{gb_s:.4} GB-s (floor {floor_gb_s:.4})"),
                dollars: per_million(gb_s, p.lambda_gb_second),
                floor: per_million(floor_gb_s, p.lambda_gb_second),
            },
            Line {
                service: "DynamoDB writes",
                quantity: format!("{} WRU (floor {})", number(writes), number(floor_writes)),
                dollars: per_million(writes, p.write_unit),
                floor: per_million(floor_writes, p.write_unit),
            },
            Line {
                service: "DynamoDB reads",
                quantity: format!("{} RRU (floor {})", number(reads), number(floor_reads)),
                dollars: per_million(reads, p.read_unit),
                floor: per_million(floor_reads, p.read_unit),
            },
            Line {
                service: "EventBridge Pipes",
                quantity: "1 request (the outbox record that passes the filter)".into(),
                dollars: per_million(1.0, p.pipe_request),
                floor: 0.0,
            },
            Line {
                service: "SQS",
                quantity: format!(
                    "{} requests (callback 3, webhooks {})",
                    number(sqs),
                    number(webhook_sqs)
                ),
                dollars: per_million(sqs, p.sqs_request),
                floor: 0.0,
            },
            Line {
                service: "S3 (labels)",
                quantity: format!("{} PUT, 0 GET (the spec sample has no label)", number(puts)),
                dollars: per_million(puts, p.s3_put),
                floor: 0.0,
            },
            Line {
                service: "Secrets Manager",
                quantity: "0 calls (read once per cold start, then cached)".into(),
                dollars: 0.0,
                floor: 0.0,
            },
            Line {
                service: "CloudWatch Logs",
                quantity: format!(
                    "{:.1} KB ({:.1} KB printed, {:.1} KB platform records; floor {:.1} KB)",
                    log_bytes / 1000.0,
                    printed / 1000.0,
                    (log_bytes - printed) / 1000.0,
                    floor_log_bytes / 1000.0
                ),
                dollars: per_million(log_bytes, p.log_byte),
                floor: per_million(floor_log_bytes, p.log_byte),
            },
        ]
    }

    /// What the stack costs a month with no orders.
    #[must_use]
    pub fn idle(&self, p: &Prices, a: &Assumptions) -> Vec<Line> {
        let receives = a.pollers_per_queue * SECONDS_PER_MONTH / 20.0;
        let stream_reads = a.pipe_polls_per_second * SECONDS_PER_MONTH;
        let polls = a.clients * MINUTES_PER_MONTH;
        let poll_ms = self
            .invocations(a)
            .iter()
            .find(|i| i.what.contains("polls"))
            .map_or(0.0, |i| i.billed_ms);
        let poll_dollars = polls
            * (p.api_request
                + p.lambda_request
                + poll_ms / 1000.0 * a.memory_mb / 1024.0 * p.lambda_gb_second
                + self.poll_units * p.read_unit
                + platform_bytes() * p.log_byte);
        vec![
            Line {
                service: "CloudWatch alarms",
                quantity: format!("{} standard alarms (template)", self.alarms),
                dollars: self.alarms as f64 * p.alarm_month,
                floor: 0.0,
            },
            Line {
                service: "Custom metric series",
                quantity: format!(
                    "{} series named by the functions' EMF lines",
                    self.log.metric_series
                ),
                dollars: self.log.metric_series as f64 * p.metric_month,
                floor: 0.0,
            },
            Line {
                service: "Secrets Manager",
                quantity: "1 secret (the partner's credentials)".into(),
                dollars: p.secret_month,
                floor: 0.0,
            },
            Line {
                service: "Pipe polling the orders stream",
                quantity: format!(
                    "{:.1} M `GetRecords` ({} a second, one shard)",
                    stream_reads / 1e6,
                    a.pipe_polls_per_second
                ),
                dollars: stream_reads * p.stream_read,
                floor: 0.0,
            },
            Line {
                service: "SQS event sources' empty receives",
                quantity: format!(
                    "2 queues × {:.0} k long polls ({} pollers, 20 s each)",
                    receives / 1000.0,
                    a.pollers_per_queue
                ),
                dollars: 2.0 * receives * p.sqs_request,
                floor: 0.0,
            },
            Line {
                service: "Stream mapping (webhook fan-out)",
                quantity: "Lambda's own stream reads".into(),
                dollars: 0.0,
                floor: 0.0,
            },
            Line {
                service: "ERP polling",
                quantity: format!(
                    "{} clients × 1 a minute: {:.0} k requests, invocations, queries (platform log records included)",
                    a.clients,
                    polls / 1000.0
                ),
                dollars: poll_dollars,
                floor: 0.0,
            },
        ]
    }
}

/// Whether a DynamoDB operation of the adapters reads (else it writes).
pub fn is_read(operation: &str) -> bool {
    ["get", "query", "list", "lookup"]
        .iter()
        .any(|verb| operation.ends_with(verb))
}

fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn sum(lines: &[Line]) -> (f64, f64) {
    lines.iter().fold((0.0, 0.0), |(d, f), line| {
        (d + line.dollars, f + line.floor)
    })
}

/// Total ≤ this × the floor (issue 26).
pub const TARGET_RATIO: f64 = 1.3;

/// The "$ per million orders" table with its sources and assumptions.
#[must_use]
pub fn table(measured: &Measured, p: &Prices, a: &Assumptions) -> String {
    let lines = measured.bill(p, a);
    let bare_lines = measured.without_webhooks().bill(p, a);
    let mut out = String::from(
        "| Service | per order lifecycle | $ per million orders | without webhooks | floor |\n",
    );
    out += "| --- | --- | ---: | ---: | ---: |\n";
    for (line, bare) in lines.iter().zip(&bare_lines) {
        out += &format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |\n",
            line.service, line.quantity, line.dollars, bare.dollars, line.floor
        );
    }
    let (total, floor) = sum(&lines);
    let (bare, _) = sum(&bare_lines);
    let ratio = total / floor;
    out += &format!("| **total** | | **{total:.2}** | **{bare:.2}** | **{floor:.2}** |\n");
    let verdict = if ratio <= TARGET_RATIO {
        "met"
    } else {
        "**missed**"
    };
    out += &format!(
        "\n**{ratio:.2} × the floor** (target ≤ {TARGET_RATIO}): {verdict}. \
         Without the webhook events and their log: ${bare:.2}, {:.2} × the floor.\n",
        bare / floor
    );
    out += &format!(
        "\nInvocations per lifecycle (billed ms each: CPU measured in this run × {:.1} at {} MB, plus {} ms per DynamoDB or SQS round trip, {} ms to the partner, {} ms to an ERP endpoint):\n\n",
        a.full_vcpu_mb / a.memory_mb,
        a.memory_mb,
        a.dynamodb_ms,
        a.partner_ms,
        a.endpoint_ms
    );
    out += "| Function | what | per lifecycle | billed ms | floor: count × ms |\n| --- | --- | ---: | ---: | ---: |\n";
    for i in measured.invocations(a) {
        out += &format!(
            "| {} | {} | {} | {} | {} × {} |\n",
            i.function,
            i.what,
            number(i.count),
            i.billed_ms,
            number(i.floor_count),
            i.floor_ms
        );
    }
    out += &format!(
        "\nMeasured: intake CPU {:.0} µs per request, dispatch {:.0} µs per callback; DynamoDB units from `capacity` and `webhooks`, a poll {} RRU; {} bytes printed per lifecycle, {} of them by the webhook functions. Stated: {} clients polling once a minute share {} orders a month.\n",
        measured.intake_cpu_us,
        measured.dispatch_cpu_us,
        number(measured.poll_units),
        measured.log.printed(),
        measured.log.printed() - measured.without_webhooks().log.printed(),
        a.clients,
        a.orders_per_month
    );
    out += &format!("\nPrices (us-east-1, on-demand, read {READ_ON}):\n\n");
    for (service, url, what) in SOURCES {
        out += &format!("- {service}: {what} ({url})\n");
    }
    out
}

/// The "idle cost per month" table.
#[must_use]
pub fn idle_table(measured: &Measured, p: &Prices, a: &Assumptions) -> String {
    let lines = measured.idle(p, a);
    let mut out = String::from("| What | quantity a month | $ a month |\n| --- | --- | ---: |\n");
    for line in &lines {
        out += &format!(
            "| {} | {} | {:.2} |\n",
            line.service, line.quantity, line.dollars
        );
    }
    let (total, _) = sum(&lines);
    out += &format!("| **total** | | **{total:.2}** |\n");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::capacity::Step;
    use crate::log_bytes::FunctionBytes;

    fn step(name: &str, floor: f64, ops: &[(&str, f64)]) -> Step {
        Step {
            step: name.into(),
            units: ops.iter().map(|(_, u)| u).sum(),
            floor,
            operations: ops.iter().map(|(o, u)| ((*o).to_owned(), *u)).collect(),
        }
    }

    /// A function's log over the lifecycle: invocations, printed bytes,
    /// platform bytes.
    fn bytes(invocations: usize, printed: usize, platform: usize) -> FunctionBytes {
        FunctionBytes {
            invocations,
            lines: invocations,
            app_bytes: printed,
            metric_bytes: 0,
            platform_bytes: platform,
        }
    }

    pub(crate) fn measured() -> Measured {
        let mut steps = vec![step(
            "create",
            4.5,
            &[("insert", 3.0), ("request_put", 2.0)],
        )];
        for event in ["allocated", "picked", "packed", "shipped", "handed_over"] {
            steps.push(step(event, 4.0, &[("get", 1.0), ("save", 4.0)]));
        }
        steps.push(step(
            "dispatch",
            5.5,
            &[("claim", 2.0), ("get", 1.0), ("save", 4.0)],
        ));
        steps.push(step(
            "3 ERP reads",
            3.0,
            &[("get", 3.0), ("history_query", 1.5)],
        ));
        Measured {
            order: Lifecycle {
                order: "spec sample".into(),
                steps,
                state_item_bytes: 1800,
                request_item_bytes: 1200,
                s3_puts: 0,
            },
            poll_units: 0.5,
            webhooks: WebhookCost {
                events: 6,
                delivered: 6,
                units: BTreeMap::from([
                    ("webhook_event_append".to_owned(), 6.0),
                    ("webhook_delivery_claim".to_owned(), 6.0),
                ]),
                sqs: BTreeMap::from([("ReceiveMessage".to_owned(), 6)]),
            },
            intake_cpu_us: 600.0,
            dispatch_cpu_us: 1200.0,
            log: LogBytes {
                functions: BTreeMap::from([
                    ("order-intake".to_owned(), bytes(4, 4000, 1500)),
                    ("webhook-dispatch".to_owned(), bytes(6, 1000, 0)),
                ]),
                with_capacity_lines: 0,
                metric_series: 30,
            },
            alarms: 26,
        }
    }

    fn total(lines: &[Line]) -> f64 {
        sum(lines).0
    }

    #[test]
    fn a_dearer_write_unit_raises_the_total_by_the_writes_it_prices() {
        let (m, a) = (measured(), Assumptions::default());
        let cheap = Prices::us_east_1();
        let dear = Prices {
            write_unit: cheap.write_unit * 2.0,
            ..cheap.clone()
        };
        let ((_, writes), (_, floor_writes)) = m.units(&a);
        let grew = total(&m.bill(&dear, &a)) - total(&m.bill(&cheap, &a));
        assert!(
            (grew - writes * cheap.write_unit * 1e6).abs() < 1e-9,
            "{grew}"
        );
        let floor_grew = sum(&m.bill(&dear, &a)).1 - sum(&m.bill(&cheap, &a)).1;
        assert!((floor_grew - floor_writes * cheap.write_unit * 1e6).abs() < 1e-9);
    }

    #[test]
    fn api_requests_are_the_lifecycles_nine_calls_and_its_share_of_polls() {
        let (m, a) = (measured(), Assumptions::default());
        let api = &m.bill(&Prices::us_east_1(), &a)[0];
        // 20 clients × 43,200 polls a month over a million orders: 0.864.
        assert!((api.dollars - 9.864).abs() < 1e-9, "{}", api.dollars);
        assert_eq!(api.dollars, api.floor);
    }

    #[test]
    fn billed_duration_is_cpu_scaled_to_128_mb_plus_round_trips_rounded_up() {
        let (m, a) = (measured(), Assumptions::default());
        let create = &m.invocations(&a)[0];
        // 0.6 ms × 1769/128 = 8.29 ms, + 2 DynamoDB calls × 6 ms = 20.29 → 21.
        assert_eq!(create.billed_ms, 21.0);
        let dispatch = m
            .invocations(&a)
            .into_iter()
            .find(|i| i.what == "dispatch")
            .unwrap();
        // 1.2 × 13.82 = 16.58, + 3 calls × 6 + 300 ms to the partner = 334.58 → 335.
        assert_eq!(dispatch.billed_ms, 335.0);
    }

    #[test]
    fn more_clients_polling_cost_more_idle_and_per_order() {
        let m = measured();
        let p = Prices::us_east_1();
        let few = Assumptions::default();
        let many = Assumptions {
            clients: 40.0,
            ..Assumptions::default()
        };
        assert!(total(&m.idle(&p, &many)) > total(&m.idle(&p, &few)));
        assert!(total(&m.bill(&p, &many)) > total(&m.bill(&p, &few)));
    }

    #[test]
    fn without_webhooks_the_fan_out_deliveries_and_their_log_go() {
        let (m, a, p) = (measured(), Assumptions::default(), Prices::us_east_1());
        let bare = m.without_webhooks();
        assert!(
            bare.invocations(&a)
                .iter()
                .all(|i| !i.function.starts_with("webhook") || i.count == 0.0)
        );
        let logs = |m: &Measured| m.bill(&p, &a)[9].dollars;
        // The webhook functions' 1,000 bytes fewer (they write no platform records).
        let fewer = 1000.0;
        assert!((logs(&m) - logs(&bare) - fewer * p.log_byte * 1e6).abs() < 1e-9);
    }

    #[test]
    fn idle_alarms_and_series_are_priced_per_month() {
        let m = measured();
        let idle = m.idle(&Prices::us_east_1(), &Assumptions::default());
        assert!((idle[0].dollars - 2.6).abs() < 1e-9);
        assert!((idle[1].dollars - 9.0).abs() < 1e-9);
    }
}
