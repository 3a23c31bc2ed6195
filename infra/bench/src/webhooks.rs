//! "Cost per webhook event": what one event delivered to one endpoint costs
//! in DynamoDB capacity units (as DynamoDB Local reports them, by operation:
//! `adapters::capacity::take`) and in SQS requests (counted on the wire by an
//! interceptor on the SQS client), from the order's write to the endpoint's
//! 2xx.
//!
//! The harness registers one endpoint of client `20` wanting every type
//! (the bench partner, answering 200), then takes the spec sample through its
//! life with the in-process API (create and the five warehouse events: six
//! writes, six events). After each write it does what the deployed functions
//! do with it, each step measured apart from the order's own writes:
//! - the fan-out (`webhook-fanout`'s use case, `FanOut::publish`, on the
//!   write's before and after images as the stream hands them over): the
//!   client's endpoints queried, the event logged, the delivery added, the
//!   ticket sent (`SendMessageBatch`);
//! - the delivery queue's event source mapping and the dispatcher: one
//!   `ReceiveMessage`, `webhook-dispatch`'s handler on what it received
//!   (the endpoint read, the claim, the post, the settle, the endpoint's
//!   health), one `DeleteMessageBatch` of what it settled.
//!
//! One event per receive is the dear case (events of a busy client arrive
//! together and share a receive and a delete, up to ten to a batch).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters::capacity;
use adapters::dynamodb_webhooks::DynamoWebhooks;
use adapters::sqs_webhooks::SqsDeliveryQueue;
use adapters::webhook_http::HttpWebhookPoster;
use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use local_stack::Stack;
use local_stack::sqs_poller::PollerConfig;
use serde::Serialize;
use serde_json::json;
use shared::notify::{Deliverer, FanOut, Subscriptions};
use shared::ports::SystemClock;
use shared::webhook::{OrderState, POST_TIMEOUT, Reach, schedule};
use webhook_dispatch::DispatchHandler;

use crate::life::{self, Writes};
use crate::partner::Partner;
use crate::prices::Prices;

/// What the events of one order's life cost, summed over them.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookCost {
    /// Events published (one endpoint wanted each).
    pub events: usize,
    /// Posts the endpoint received and answered 2xx.
    pub delivered: usize,
    /// DynamoDB units by operation, fan-out and dispatch together.
    pub units: BTreeMap<String, f64>,
    /// SQS requests by API (`SendMessageBatch`, …).
    pub sqs: BTreeMap<String, u32>,
}

impl WebhookCost {
    fn per_event(&self, total: f64) -> f64 {
        total / self.events.max(1) as f64
    }
}

/// Counts the SQS requests a client sends, by API, on the wire.
#[derive(Debug, Clone, Default)]
struct SqsRequests(Arc<Mutex<BTreeMap<String, u32>>>);

impl SqsRequests {
    fn take(&self) -> BTreeMap<String, u32> {
        std::mem::take(&mut *self.0.lock().expect("the count"))
    }
}

impl Intercept for SqsRequests {
    fn name(&self) -> &'static str {
        "SqsRequests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // The JSON protocol names the API in a header: `AmazonSQS.SendMessageBatch`.
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .map_or("(unknown)", |target| {
                target.rsplit('.').next().unwrap_or(target)
            });
        *self
            .0
            .lock()
            .expect("the count")
            .entry(target.to_owned())
            .or_default() += 1;
        Ok(())
    }
}

/// One order's life, each write's events fanned out and delivered.
pub async fn measure(stack: &Stack) -> Result<WebhookCost, String> {
    let receiver = Partner::start(Duration::ZERO)
        .await
        .map_err(|e| format!("receiver: {e}"))?;
    let table = stack
        .resources
        .table("WebhooksTable")
        .map_err(|e| e.to_string())?;
    let mapping = life::delivery_mapping(stack)?;
    let requests = SqsRequests::default();
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&stack.aws)
            .interceptor(requests.clone())
            .build(),
    );
    let store = DynamoWebhooks::new(stack.dynamodb.clone(), table, Reach::LocalNetwork);
    let subscriptions = Subscriptions::new(store.clone(), store.clone(), Reach::LocalNetwork);
    let endpoint = json!({ "url": receiver.url }).to_string();
    subscriptions
        .create("20", endpoint.as_bytes(), chrono::Utc::now())
        .await
        .map_err(|e| format!("registering the endpoint: {e}"))?;
    let queue = SqsDeliveryQueue::new(sqs.clone(), &mapping.queue_url);
    let fan_out = FanOut::new(store.clone(), store.clone(), store.clone(), queue.clone());
    let poster = HttpWebhookPoster::new(Reach::LocalNetwork).map_err(|e| e.to_string())?;
    let dispatcher = DispatchHandler::new(
        Deliverer::new(
            store.clone(),
            store,
            poster,
            SystemClock,
            schedule(POST_TIMEOUT),
        ),
        queue,
    );

    let writes = Writes::new(stack).await?;
    let api = stack.api().map_err(|e| e.to_string())?;
    let mut cost = WebhookCost {
        events: 0,
        delivered: 0,
        units: BTreeMap::new(),
        sqs: BTreeMap::new(),
    };
    let mut before: Option<OrderState> = None;
    for write in 0..writes.count() {
        let (_, request) = writes.request(NUMBER, write)?;
        life::answered(&api(request).await)?;
        let (_, after) = life::state(stack, NUMBER).await?;
        capacity::take();
        requests.take();
        let published = fan_out
            .publish(before.as_ref(), &after)
            .await
            .map_err(|e| format!("fan-out: {e}"))?;
        cost.events += published.events;
        deliver(&sqs, &mapping, &dispatcher, published.deliveries).await?;
        for (operation, units) in capacity::take().operations {
            *cost.units.entry(operation.to_owned()).or_default() += units;
        }
        for (api, count) in requests.take() {
            *cost.sqs.entry(api).or_default() += count;
        }
        before = Some(after);
    }
    cost.delivered = receiver.take().len();
    if cost.delivered != cost.events {
        return Err(format!(
            "{} webhook events, {} delivered",
            cost.events, cost.delivered
        ));
    }
    Ok(cost)
}

/// As the event source mapping does: receives the `expected` messages,
/// hands them to the dispatcher, deletes those it settled.
async fn deliver(
    sqs: &aws_sdk_sqs::Client,
    mapping: &PollerConfig,
    dispatcher: &DispatchHandler<
        DynamoWebhooks,
        DynamoWebhooks,
        HttpWebhookPoster,
        SystemClock,
        SqsDeliveryQueue,
    >,
    expected: usize,
) -> Result<(), String> {
    let messages = life::receive(sqs, mapping).await?;
    if messages.len() != expected {
        return Err(format!(
            "{} delivery message(s) received, {expected} sent",
            messages.len()
        ));
    }
    let kept = dispatcher
        .handle(life::event(&messages, mapping)?)
        .await
        .batch_item_failures;
    if !kept.is_empty() {
        return Err(format!("{} delivery message(s) not settled", kept.len()));
    }
    life::delete(sqs, mapping, &messages).await
}

/// The order whose life the events are of.
const NUMBER: &str = "hook-sample";

/// Which DynamoDB operations are writes (the rest are reads), for the price.
fn is_write(operation: &str) -> bool {
    [
        "append", "add", "claim", "settle", "save", "insert", "reopen",
    ]
    .iter()
    .any(|verb| operation.ends_with(verb))
}

/// The markdown table: per event, units by operation and SQS requests by
/// API, then the price of a million events.
#[must_use]
pub fn table(cost: &WebhookCost) -> String {
    let mut out =
        String::from("| Per event delivered to one endpoint | step | units or requests |\n");
    out += "| --- | --- | ---: |\n";
    let step = |operation: &str| {
        if operation.contains("endpoint_list")
            || operation.contains("event_append")
            || operation.contains("delivery_add")
        {
            "fan-out"
        } else {
            "dispatch"
        }
    };
    let mut rows: Vec<(&str, String, f64)> = cost
        .units
        .iter()
        .map(|(operation, units)| (step(operation), format!("`{operation}`"), *units))
        .collect();
    rows.sort_by(|a, b| b.0.cmp(a.0).then(a.1.cmp(&b.1)));
    for (step, operation, units) in &rows {
        out += &format!(
            "| DynamoDB {operation} | {step} | {} |\n",
            number(cost.per_event(*units))
        );
    }
    let (mut reads, mut writes) = (0.0, 0.0);
    for (operation, units) in &cost.units {
        if is_write(operation) {
            writes += units;
        } else {
            reads += units;
        }
    }
    out += &format!(
        "| **DynamoDB units** (read / write) | | **{}** ({} / {}) |\n",
        number(cost.per_event(reads + writes)),
        number(cost.per_event(reads)),
        number(cost.per_event(writes))
    );
    for (api, count) in &cost.sqs {
        let step = if api == "SendMessageBatch" {
            "fan-out"
        } else {
            "dispatch"
        };
        out += &format!(
            "| SQS `{api}` | {step} | {} |\n",
            number(cost.per_event(f64::from(*count)))
        );
    }
    let sqs: f64 = cost.sqs.values().map(|count| f64::from(*count)).sum();
    out += &format!(
        "| **SQS requests** | | **{}** |\n",
        number(cost.per_event(sqs))
    );
    let prices = Prices::us_east_1();
    let dollars = (cost.per_event(writes) * prices.write_unit
        + cost.per_event(reads) * prices.read_unit
        + cost.per_event(sqs) * prices.sqs_request)
        * 1e6;
    out += &format!(
        "\n{} events of the spec sample's life, each delivered ({} posts answered 2xx). \
         A million such events: **${dollars:.2}** of DynamoDB and SQS requests \
         (on-demand, ${} per million write units, ${} per million read units, \
         ${} per million SQS requests; Lambda and storage apart).\n",
        cost.events,
        cost.delivered,
        per_million(prices.write_unit),
        per_million(prices.read_unit),
        per_million(prices.sqs_request)
    );
    out
}

/// A unit price per million, to the tenth of a cent.
fn per_million(price: f64) -> f64 {
    (price * 1e9).round() / 1000.0
}

fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
