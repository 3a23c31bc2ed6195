//! "Capacity units per order lifecycle": what DynamoDB Local reports as
//! consumed (`ReturnConsumedCapacity`, tables and indexes) for each step of an
//! order's life, summed per step from the adapters' own accounting
//! (`adapters::capacity::take`), beside the floor.
//!
//! The floor of a step is what its necessary DynamoDB work costs at the
//! smallest billing sizes: 1 WCU per write of ≤ 1 KB, 1 RCU per consistent
//! and 0.5 per eventually consistent read of ≤ 4 KB, plus the index writes
//! the step measured (they follow from which keys move, not from the layout:
//! the indexes project keys only).
//! - create: one write of the accepted order (request and state together,
//!   rounded up to whole KB) and the duplicate-order index query (0.5);
//! - an event: a consistent read of the state and one write;
//! - dispatch: the claim (a write), an eventually consistent read of the
//!   request (the callback body is made from it) and the answer's write;
//! - an ERP read: one consistent read of the whole order (request, state,
//!   events, ledger; rounded up to whole 4 KB).
//!
//! The API key lookups (`key_lookup`) are left out: they are authentication,
//! cached for a minute in a warm function, not order storage.

use std::collections::BTreeMap;
use std::time::Duration;

use adapters::capacity;
use adapters::sdk::read_item;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use local_stack::Stack;
use serde::Serialize;
use serde_json::{Value, json};

use crate::events::{
    SAMPLE_ORDER, api_request, callback_event, client_key, lifecycle_events, warehouse_key,
};
use crate::partner::Partner;

/// One step of a lifecycle: what it consumed and its floor.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: String,
    pub units: f64,
    pub floor: f64,
    /// Units by operation (`get`, `save`, `history_query`, …), for the prose.
    pub operations: BTreeMap<String, f64>,
}

/// The lifecycle of one kind of order.
#[derive(Debug, Clone, Serialize)]
pub struct Lifecycle {
    pub order: String,
    pub steps: Vec<Step>,
    /// Bytes of the order's state item and of its request item at the end.
    pub state_item_bytes: usize,
    pub request_item_bytes: usize,
    /// S3 PUTs of the create (the label).
    pub s3_puts: u32,
}

impl Lifecycle {
    #[must_use]
    pub fn units(&self) -> f64 {
        self.steps.iter().map(|step| step.units).sum()
    }

    #[must_use]
    pub fn floor(&self) -> f64 {
        self.steps.iter().map(|step| step.floor).sum()
    }
}

/// The three orders of the table, each through its whole life.
pub async fn measure(stack: &Stack) -> Result<Vec<Lifecycle>, String> {
    let partner = Partner::start(Duration::ZERO)
        .await
        .map_err(|e| format!("partner: {e}"))?;
    let settings = partner.callback_settings();
    let run = Run {
        stack,
        dispatcher: stack
            .dispatcher(&settings)
            .await
            .map_err(|e| e.to_string())?,
        client: client_key(stack).await?,
        warehouse: warehouse_key(stack).await?,
    };
    let label = label_base64(120 * 1024);
    let mut results = Vec::new();
    for (name, number, order) in [
        ("spec sample", "cap-sample", sample("cap-sample", 0, None)),
        ("50 items", "cap-items", sample("cap-items", 50, None)),
        (
            "120 KB label",
            "cap-label",
            sample("cap-label", 0, Some(&label)),
        ),
    ] {
        results.push(run.lifecycle(name, number, &order).await?);
    }
    Ok(results)
}

struct Run<'a> {
    stack: &'a Stack,
    dispatcher: local_stack::sqs_poller::SqsFunction,
    client: String,
    warehouse: String,
}

impl Run<'_> {
    async fn lifecycle(&self, name: &str, number: &str, order: &str) -> Result<Lifecycle, String> {
        let api = self.stack.api().map_err(|e| e.to_string())?;
        let call = |method: &'static str, path: String, body: Option<String>, key: &str| {
            let request = api_request(method, &path, body.as_deref(), key, 0);
            let api = api.clone();
            async move {
                let response = api(request?).await;
                if response.status().is_success() {
                    Ok(())
                } else {
                    Err(format!("{method} {path} answered {}", response.status()))
                }
            }
        };
        capacity::take();
        let mut steps = Vec::new();
        call(
            "POST",
            "/apicenter/api/order".into(),
            Some(order.to_owned()),
            &self.client,
        )
        .await?;
        let created = measured("create");
        let (request_bytes, state_at_create) = self.sizes(number).await?;
        steps.push(
            created.with_floor((request_bytes + state_at_create).div_ceil(1024) as f64 + 0.5),
        );

        for (kind, event) in lifecycle_events(chrono::Utc::now()) {
            call(
                "POST",
                format!("/apicenter/api/order/{number}/events"),
                Some(event.to_string()),
                &self.warehouse,
            )
            .await?;
            steps.push(measured(kind).with_floor(1.0 + 1.0));
        }

        let event = callback_event(self.stack, number)?;
        let response = (self.dispatcher)(event).await;
        if !response.batch_item_failures.is_empty() {
            return Err(format!("dispatching {number} failed"));
        }
        steps.push(measured("dispatch").with_floor(1.0 + half_units(request_bytes) + 1.0));

        let (request_bytes, state_bytes) = self.sizes(number).await?;
        let ledger = self.ledger_bytes(number).await?;
        for _ in 0..3 {
            call(
                "GET",
                format!("/apicenter/api/order/{number}"),
                None,
                &self.client,
            )
            .await?;
        }
        let whole = request_bytes + state_bytes + ledger;
        steps.push(measured("3 ERP reads").with_floor(3.0 * whole.div_ceil(4096) as f64));

        Ok(Lifecycle {
            order: name.to_owned(),
            steps,
            state_item_bytes: state_bytes,
            request_item_bytes: request_bytes,
            s3_puts: u32::from(order.contains("label_base64")),
        })
    }

    /// Bytes (as DynamoDB counts them) of the request and state items.
    async fn sizes(&self, number: &str) -> Result<(usize, usize), String> {
        let table = self.stack.orders_table().map_err(|e| e.to_string())?;
        let state = read_item(
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
        let history = self.history(number).await?;
        let request = history
            .iter()
            .find(|item| matches!(item.get("entry"), Some(AttributeValue::S(e)) if e.starts_with("request#")))
            .map_or(0, item_bytes);
        Ok((request, item_bytes(&state)))
    }

    async fn ledger_bytes(&self, number: &str) -> Result<usize, String> {
        Ok(self
            .history(number)
            .await?
            .iter()
            .filter(|item| matches!(item.get("entry"), Some(AttributeValue::S(e)) if e.starts_with("attempt#")))
            .map(item_bytes)
            .sum())
    }

    async fn history(&self, number: &str) -> Result<Vec<Item>, String> {
        Ok(self
            .stack
            .dynamodb
            .query()
            .table_name(
                self.stack
                    .order_history_table()
                    .map_err(|e| e.to_string())?,
            )
            .key_condition_expression("order_number = :n")
            .expression_attribute_values(":n", AttributeValue::S(number.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .items
            .unwrap_or_default())
    }
}

type Item = std::collections::HashMap<String, AttributeValue>;

/// A step's units since the last one, split into index and other units.
struct Measured {
    step: String,
    operations: BTreeMap<String, f64>,
    index: f64,
}

impl Measured {
    /// The step, its floor the table units `table_floor` plus the index
    /// writes it made.
    fn with_floor(self, table_floor: f64) -> Step {
        Step {
            step: self.step,
            units: self.operations.values().sum(),
            floor: table_floor + self.index,
            operations: self.operations,
        }
    }
}

fn measured(step: &str) -> Measured {
    let taken = capacity::take();
    Measured {
        step: step.to_owned(),
        index: taken.index_units,
        operations: taken
            .operations
            .into_iter()
            .filter(|(operation, _)| *operation != "key_lookup")
            .map(|(operation, units)| (operation.to_owned(), units))
            .collect(),
    }
}

/// Eventually consistent read units of `bytes`.
fn half_units(bytes: usize) -> f64 {
    bytes.div_ceil(4096) as f64 * 0.5
}

/// An item's size as DynamoDB bills it: names and values (strings and
/// numbers; the items here hold nothing else).
fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(text) => text.len(),
                    AttributeValue::N(number) => number.len().div_ceil(2) + 1,
                    _ => 0,
                }
        })
        .sum()
}

/// The sample order as `number`, with `items` distinct lines (0: as
/// published) and an inline label.
fn sample(number: &str, items: usize, label: Option<&str>) -> String {
    let mut order: Value = serde_json::from_str(SAMPLE_ORDER).expect("the fixture is JSON");
    order["package"]["order_number"] = json!(number);
    order["platform_order_number"] = json!(format!("po-{number}"));
    if items > 0 {
        order["items"] = (0..items)
            .map(|i| {
                json!({
                    "sku": format!("SKU-{i:04}"),
                    "currency": "PHP",
                    "unit_price": "10.50",
                    "qty": 1 + i % 3,
                    "platform_sku_id": format!("{}", 1_000_000 + i),
                })
            })
            .collect();
    }
    if let Some(label) = label {
        order["logistics_provider"]["label_base64"] = json!(label);
    }
    order.to_string()
}

/// A PDF-looking label of `size` bytes, in base64.
fn label_base64(size: usize) -> String {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    let mut state = 0x2545_u32;
    while bytes.len() < size {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push(state.to_be_bytes()[1]);
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The markdown table: per step, units and floor for each order; then the
/// totals and the ratios the targets are about.
#[must_use]
pub fn table(lifecycles: &[Lifecycle]) -> String {
    let mut out = String::from("| Step |");
    for lifecycle in lifecycles {
        out += &format!(" {} | floor |", lifecycle.order);
    }
    out += "\n| --- |";
    out += &" ---: | ---: |".repeat(lifecycles.len());
    out += "\n";
    let steps = lifecycles.first().map_or(0, |l| l.steps.len());
    for index in 0..steps {
        out += &format!("| {} |", lifecycles[0].steps[index].step);
        for lifecycle in lifecycles {
            let step = &lifecycle.steps[index];
            out += &format!(" {} | {} |", units(step.units), units(step.floor));
        }
        out += "\n";
    }
    out += "| **lifecycle** |";
    for lifecycle in lifecycles {
        out += &format!(
            " **{}** | **{}** |",
            units(lifecycle.units()),
            units(lifecycle.floor())
        );
    }
    out += "\n| × floor |";
    for lifecycle in lifecycles {
        out += &format!(" {:.2} | |", lifecycle.units() / lifecycle.floor());
    }
    out += "\n| state item at the end / request item (bytes) |";
    for lifecycle in lifecycles {
        out += &format!(
            " {} / {} | |",
            lifecycle.state_item_bytes, lifecycle.request_item_bytes
        );
    }
    out += "\n| S3 PUTs |";
    for lifecycle in lifecycles {
        out += &format!(" {} | |", lifecycle.s3_puts);
    }
    out += "\n";
    if let (Some(plain), Some(label)) = (
        lifecycles.first(),
        lifecycles.iter().find(|l| l.s3_puts > 0),
    ) {
        out += &format!(
            "\nThe label order: {} units and {} S3 PUT, the plain order {} units ({:+.1} %).\n",
            units(label.units()),
            label.s3_puts,
            units(plain.units()),
            (label.units() / plain.units() - 1.0) * 100.0
        );
    }
    out += "\nUnits by operation (whole lifecycle):\n\n";
    for lifecycle in lifecycles {
        let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
        for step in &lifecycle.steps {
            for (operation, units) in &step.operations {
                *totals.entry(operation).or_default() += units;
            }
        }
        let listed: Vec<String> = totals
            .iter()
            .map(|(operation, total)| format!("`{operation}` {}", units(*total)))
            .collect();
        out += &format!("- {}: {}\n", lifecycle.order, listed.join(", "));
    }
    out
}

fn units(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}
