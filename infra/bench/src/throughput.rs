//! Throughput of the real handlers against raw baselines doing the same
//! network work, in the same process, interleaved round by round so both
//! share whatever else the box is doing.
//!
//! - Intake: `POST /apicenter/api/order` through [`Stack::api`] (the handler
//!   the Lambda runs, behind `lambda_http`'s event decoding) against DynamoDB
//!   Local, next to raw `PutItem`s of the very same item with the same
//!   condition. As the sample order carries a marketplace order number, the
//!   handler also queries the duplicate-order index, beside the writes: a
//!   second baseline makes that `Query` concurrently with the two `PutItem`s
//!   the handler makes one after the other (the request into the history
//!   table, then the order's state) with the raw SDK. (The caller's API key is read once and then cached by the warm
//!   function, so neither baseline reads it. Process type 1 sends no SQS
//!   message, so no baseline sends one either.)
//! - Dispatch: the dispatcher handler on batches of 10 against a partner that
//!   answers after 20 ms, next to raw reqwest posting the same requests (same
//!   bodies and headers), 10 at a time, to the same partner; next to the two
//!   calls on the orders table raw around each post (the claim, a conditional
//!   `UpdateItem` returning the new item; the answer, a conditional
//!   `UpdateItem`); and next to every call the handler makes, raw: the claim,
//!   the history `Query` the callback body is built from, the post, the
//!   ledger line's `PutItem`, the answer. The last baseline also times each
//!   of its calls ([`DispatchSteps`]): where a callback's time goes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters::dynamodb::{PLATFORM_ORDER_INDEX, item_for};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::Utc;
use local_stack::Stack;
use serde::Serialize;
use shared::config::Warehouses;
use shared::intake::{OrderRequest, findings, parse_order};
use shared::record::OrderRecord;

use crate::events::{api_event, api_request, client_key, order_body, sqs_event};
use crate::partner::Partner;
use crate::stats::{Run, Summary, drive, measuring_cpu, ms, percentile};

/// Rounds per level. The kinds take turns in mirrored order (handler first,
/// then last, …) so that a drift of the emulators' speed within a level, up or
/// down, weighs on every kind alike; eight short rounds rather than four long
/// ones, because on a shared box such drifts last seconds.
const ROUNDS: usize = 8;
/// Unmeasured requests of each kind before the first level: DynamoDB Local's
/// JIT compiles each new request shape on its first few hundred requests
/// (the first requests were 5–8× slower than the settled ones), and that is
/// the emulator warming up, not what is being compared.
pub const WARM_UP: usize = 300;
/// The warm-up's concurrency.
const WARM_UP_CONCURRENCY: usize = 4;
/// Callbacks per SQS batch, as the event source mapping delivers them.
const BATCH: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct IntakeLevel {
    pub concurrency: usize,
    pub handler: Summary,
    /// Raw conditional `PutItem` of the same item.
    pub put: Summary,
    /// The same calls raw: duplicate-index `Query` beside the same `PutItem`.
    pub query_put: Summary,
}

/// What one intake run drives.
#[derive(Debug, Clone, Copy)]
enum IntakeKind {
    /// `POST /apicenter/api/order` through the handler.
    Handler,
    /// The conditional `PutItem` of the item the handler stores.
    Put,
    /// The duplicate-index `Query` beside that `PutItem`.
    QueryPut,
}

impl IntakeKind {
    /// The order of the kinds in `round`: forwards, then backwards.
    fn in_round(round: usize) -> [Self; 3] {
        let forwards = [Self::Handler, Self::Put, Self::QueryPut];
        if round.is_multiple_of(2) {
            forwards
        } else {
            [forwards[2], forwards[1], forwards[0]]
        }
    }

    /// Order numbers are unique per kind and run: every request is a new order.
    fn prefix(self) -> &'static str {
        match self {
            Self::Handler => "h",
            Self::Put => "p",
            Self::QueryPut => "q",
        }
    }
}

type Item = std::collections::HashMap<String, AttributeValue>;
/// Baseline inputs, each taken once by the request that writes it.
type Prepared = Arc<Vec<std::sync::Mutex<Option<Stored>>>>;

/// What the handler writes for one order: the state item, the request item
/// of the history table, and the duplicate-index key it queries.
struct Stored {
    item: Item,
    request: Item,
    key: String,
}

/// What the handler would write for `number`.
fn stored_item(number: &str, warehouses: &Warehouses) -> Result<Stored, String> {
    let OrderRequest { order, .. } =
        parse_order(order_body(number, 1).as_bytes()).map_err(|e| format!("{e:?}"))?;
    let key = order
        .client_platform_order_key()
        .ok_or("the sample order has a marketplace order number")?;
    let found = findings::check(&order, warehouses);
    let record = OrderRecord::accept(order, found, Utc::now());
    let request = Item::from([
        (
            "order_number".to_owned(),
            AttributeValue::S(number.to_owned()),
        ),
        (
            "entry".to_owned(),
            AttributeValue::S(format!("request#{}", record.request_hash)),
        ),
        (
            "order".to_owned(),
            AttributeValue::S(record.order_json.clone()),
        ),
    ]);
    Ok(Stored {
        item: item_for(&record),
        request,
        key,
    })
}

async fn put(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    item: Item,
) -> Result<(), aws_sdk_dynamodb::Error> {
    dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(order_number)")
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .send()
        .await?;
    Ok(())
}

async fn query(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    key: String,
) -> Result<(), aws_sdk_dynamodb::Error> {
    dynamodb
        .query()
        .table_name(table)
        .index_name(PLATFORM_ORDER_INDEX)
        .key_condition_expression("client_platform_order = :key")
        .expression_attribute_values(":key", AttributeValue::S(key))
        .limit(10)
        .send()
        .await?;
    Ok(())
}

/// What every intake run shares.
struct IntakeBench<'a> {
    stack: &'a Stack,
    api: local_stack::gateway::Function,
    table: Arc<str>,
    key: Arc<str>,
}

impl IntakeBench<'_> {
    /// `count` new orders of `kind` at `concurrency`, `tag` making their
    /// numbers unique. Inputs are prepared before the clock starts.
    async fn run(
        &self,
        kind: IntakeKind,
        tag: &str,
        count: usize,
        concurrency: usize,
    ) -> Result<Run, String> {
        let number = |i: usize| format!("{}-{tag}-{i}", kind.prefix());
        if let IntakeKind::Handler = kind {
            // The events as API Gateway sends them; decoding one is the
            // runtime's work per invocation, so that part is timed.
            let events: Arc<Vec<String>> = Arc::new(
                (0..count)
                    .map(|i| {
                        let body = order_body(&number(i), 1);
                        api_event(
                            "POST",
                            "/apicenter/api/order",
                            Some(&body),
                            &self.key,
                            i as u64,
                        )
                        .to_string()
                    })
                    .collect(),
            );
            let api = Arc::clone(&self.api);
            return Ok(drive(count, concurrency, move |i| {
                let (api, events) = (Arc::clone(&api), Arc::clone(&events));
                async move {
                    let Ok(request) = lambda_http::request::from_str(&events[i]) else {
                        return false;
                    };
                    api(request).await.status() == 201
                }
            })
            .await);
        }
        let items: Prepared = Arc::new(
            (0..count)
                .map(|i| {
                    stored_item(&number(i), &self.stack.warehouses)
                        .map(|v| std::sync::Mutex::new(Some(v)))
                })
                .collect::<Result<_, _>>()?,
        );
        let (dynamodb, table) = (self.stack.dynamodb.clone(), Arc::clone(&self.table));
        let history: Arc<str> = self
            .stack
            .order_history_table()
            .map_err(|e| e.to_string())?
            .into();
        let with_query = matches!(kind, IntakeKind::QueryPut);
        Ok(drive(count, concurrency, move |i| {
            let (dynamodb, table) = (dynamodb.clone(), Arc::clone(&table));
            let history = Arc::clone(&history);
            let taken = items[i].lock().ok().and_then(|mut slot| slot.take());
            async move {
                let Some(Stored { item, request, key }) = taken else {
                    return false;
                };
                if !with_query {
                    return put(&dynamodb, &table, item).await.is_ok();
                }
                let writes = async {
                    let request = dynamodb
                        .put_item()
                        .table_name(&*history)
                        .set_item(Some(request))
                        .send()
                        .await;
                    request.is_ok() && put(&dynamodb, &table, item).await.is_ok()
                };
                let (queried, stored) = tokio::join!(query(&dynamodb, &table, key), writes);
                queried.is_ok() && stored
            }
        })
        .await)
    }
}

/// Intake at each `(concurrency, orders)` level, after `warm_up` requests
/// of each kind.
pub async fn intake(
    stack: &Stack,
    levels: &[(usize, usize)],
    warm_up: usize,
) -> Result<Vec<IntakeLevel>, String> {
    let bench = IntakeBench {
        stack,
        api: stack.api().map_err(|e| e.to_string())?,
        table: stack.orders_table().map_err(|e| e.to_string())?.into(),
        key: client_key(stack).await?.into(),
    };
    for kind in IntakeKind::in_round(0) {
        let warm = bench
            .run(kind, "warm", warm_up, WARM_UP_CONCURRENCY)
            .await?;
        if warm.errors > 0 {
            return Err(format!("{kind:?}: {} warm-up requests failed", warm.errors));
        }
    }
    let mut results = Vec::new();
    for &(concurrency, orders) in levels {
        let per_round = orders.div_ceil(ROUNDS);
        let (mut handler, mut raw_put, mut raw_query_put) =
            (Run::default(), Run::default(), Run::default());
        for round in 0..ROUNDS {
            for kind in IntakeKind::in_round(round) {
                let run = bench
                    .run(
                        kind,
                        &format!("c{concurrency}-r{round}"),
                        per_round,
                        concurrency,
                    )
                    .await?;
                match kind {
                    IntakeKind::Handler => handler.absorb(run),
                    IntakeKind::Put => raw_put.absorb(run),
                    IntakeKind::QueryPut => raw_query_put.absorb(run),
                }
            }
        }
        let level = IntakeLevel {
            concurrency,
            handler: handler.summary(),
            put: raw_put.summary(),
            query_put: raw_query_put.summary(),
        };
        eprintln!(
            "bench: intake c={concurrency}: handler {:.0}/s, PutItem {:.0}/s, Query beside PutItem {:.0}/s",
            level.handler.per_second, level.put.per_second, level.query_put.per_second
        );
        results.push(level);
    }
    Ok(results)
}

#[derive(Debug, Clone, Serialize)]
pub struct Dispatch {
    pub callbacks: usize,
    pub batch_size: usize,
    pub partner_delay_ms: u64,
    /// Callbacks per second; latency per batch of 10.
    pub handler: Summary,
    pub raw: Summary,
    /// The two calls on the orders table raw: claim `UpdateItem`, post,
    /// record `UpdateItem`.
    pub two_calls: Summary,
    /// Every call the handler makes, raw: claim, history `Query`, post,
    /// ledger `PutItem`, record.
    pub same_calls: Summary,
    /// Mean time of each call of `same_calls`, ms.
    pub steps: DispatchSteps,
    /// The floor the partner's delay puts on both: batch size / delay.
    pub ceiling_per_second: f64,
}

/// Dispatches `callbacks` due callbacks in batches of [`BATCH`] through the
/// dispatcher handler, and posts the same requests with raw reqwest; about
/// `warm_up` callbacks before them are not counted.
pub async fn dispatch(
    stack: &Stack,
    callbacks: usize,
    warm_up: usize,
    partner_delay: Duration,
) -> Result<Dispatch, String> {
    let batch = BATCH;
    let partner = Partner::start(partner_delay)
        .await
        .map_err(|e| format!("partner: {e}"))?;
    let settings = partner.callback_settings();
    let function = stack
        .dispatcher(&settings)
        .await
        .map_err(|e| e.to_string())?;
    let queue_arn = stack
        .resources
        .queue_arn("CallbackQueue")
        .map_err(|e| e.to_string())?
        .to_owned();

    // Orders that arrive handed over (process type 2): each callback is due.
    let api = stack.api().map_err(|e| e.to_string())?;
    let key: Arc<str> = client_key(stack).await?.into();
    // The first batches warm the emulator up (see WARM_UP) and are not counted.
    let warm_callbacks = warm_up.min(callbacks) / batch * batch;
    let orders = warm_callbacks + callbacks;
    let numbers: Arc<Vec<String>> = Arc::new((0..orders).map(|i| format!("d-{i}")).collect());
    let created = {
        let numbers = Arc::clone(&numbers);
        drive(orders, 8, move |i| {
            let api = Arc::clone(&api);
            let key = Arc::clone(&key);
            let body = order_body(&numbers[i], 2);
            async move {
                match api_request("POST", "/apicenter/api/order", Some(&body), &key, i as u64) {
                    Ok(request) => api(request).await.status() == 201,
                    Err(_) => false,
                }
            }
        })
        .await
    };
    if created.errors > 0 {
        return Err(format!("{} orders could not be created", created.errors));
    }

    let raw_client = adapters::https::reqwest_builder()
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let tables = Tables {
        orders: stack.orders_table().map_err(|e| e.to_string())?,
        history: stack.order_history_table().map_err(|e| e.to_string())?,
    };
    let steps = StepTimes::default();
    let mut handler = Run::default();
    let (mut raw, mut two_calls, mut same_calls) = (Run::default(), Run::default(), Run::default());
    let chunks: Vec<&[String]> = numbers.chunks(batch).collect();
    let (warm, measured) = chunks.split_at(warm_callbacks / batch);
    let per_round = measured.len().div_ceil(ROUNDS);
    let rounds = std::iter::once(warm).chain(measured.chunks(per_round));
    for (index, round) in rounds.enumerate() {
        if index == 1 {
            // What the warm-up round measured is dropped.
            (handler, raw) = (Run::default(), Run::default());
            (two_calls, same_calls) = (Run::default(), Run::default());
            steps.take();
        }
        // The handler, one batch after another, as one Lambda instance.
        let events = round
            .iter()
            .map(|chunk| serde_json::from_value::<SqsEvent>(sqs_event(&queue_arn, chunk)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("SqsEvent: {e}"))?;
        handler.absorb(
            measuring_cpu(async {
                let mut run = Run::default();
                let started = Instant::now();
                for event in events {
                    let messages = event.records.len();
                    let began = Instant::now();
                    let response = function(event).await;
                    let took = began.elapsed();
                    run.errors += response.batch_item_failures.len();
                    run.latencies.extend(std::iter::repeat_n(took, messages));
                }
                run.wall = started.elapsed();
                run
            })
            .await,
        );

        // The same requests, raw, in the same batches.
        let received = partner.take();
        if received.len() != round.iter().map(|c| c.len()).sum::<usize>() {
            return Err(format!(
                "the partner got {} callbacks for {} messages",
                received.len(),
                round.iter().map(|c| c.len()).sum::<usize>()
            ));
        }
        let batches = || received.chunks(batch).zip(round.iter());
        raw.absorb(
            timed_batches(batches().map(|(requests, _)| {
                requests
                    .iter()
                    .map(|request| sent(raw_post(&raw_client, &partner.url, request)))
                    .collect()
            }))
            .await,
        );
        partner.take();

        // The same requests again, with the two calls on the orders table
        // around each, then with every call the handler makes (each timed).
        for (calls, run) in [
            (Calls::Two, &mut two_calls),
            (Calls::Every, &mut same_calls),
        ] {
            let steps = (calls == Calls::Every).then_some(&steps);
            run.absorb(
                timed_batches(batches().map(|(requests, chunk)| {
                    requests
                        .iter()
                        .zip(chunk.iter())
                        .map(|(request, number)| {
                            let post = raw_post(&raw_client, &partner.url, request);
                            Raw::new(&stack.dynamodb, &tables, number, steps).make(calls, post)
                        })
                        .collect()
                }))
                .await,
            );
            partner.take();
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let ceiling_per_second = batch as f64 / partner_delay.as_secs_f64();
    let result = Dispatch {
        callbacks,
        batch_size: batch,
        partner_delay_ms: u64::try_from(partner_delay.as_millis()).unwrap_or(u64::MAX),
        handler: handler.summary(),
        raw: raw.summary(),
        two_calls: two_calls.summary(),
        same_calls: same_calls.summary(),
        steps: steps.take(),
        ceiling_per_second,
    };
    eprintln!(
        "bench: dispatch: handler {:.0}/s (batch p50 {:.1} ms), raw reqwest {:.0}/s (batch p50 {:.1} ms), two calls raw {:.0}/s, same calls raw {:.0}/s; steps {:?}",
        result.handler.per_second,
        ms(percentile(&handler.latencies, 50.0)),
        result.raw.per_second,
        ms(percentile(&raw.latencies, 50.0)),
        result.two_calls.per_second,
        result.same_calls.per_second,
        result.steps,
    );
    Ok(result)
}

/// Runs `batches` one after another, the futures of each concurrently; every
/// callback counts with its batch's latency, as in the handler's runs.
async fn timed_batches<F: Future<Output = bool>>(batches: impl Iterator<Item = Vec<F>>) -> Run {
    measuring_cpu(run_batches(batches)).await
}

async fn run_batches<F: Future<Output = bool>>(batches: impl Iterator<Item = Vec<F>>) -> Run {
    let mut run = Run::default();
    let started = Instant::now();
    for batch in batches {
        let began = Instant::now();
        let answers = futures::future::join_all(batch).await;
        let took = began.elapsed();
        for ok in answers {
            run.latencies.push(took);
            run.errors += usize::from(!ok);
        }
    }
    run.wall = started.elapsed();
    run
}

/// The partner request the handler made, posted again with raw reqwest.
fn raw_post(
    client: &reqwest::Client,
    url: &str,
    request: &crate::partner::Received,
) -> reqwest::RequestBuilder {
    let mut post = client
        .post(url)
        .header("content-type", "application/json")
        .body(request.body.clone());
    if let Some(auth) = &request.authorization {
        post = post.header("authorization", auth);
    }
    if let Some(key) = &request.idempotency_key {
        post = post.header("idempotency-key", key);
    }
    post
}

/// Whether the partner answered 2xx and its body was read.
async fn sent(post: reqwest::RequestBuilder) -> bool {
    match post.send().await {
        Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
        Err(_) => false,
    }
}

/// Mean time of each call of the raw baseline that makes every call the
/// handler makes, ms: where a callback's time goes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DispatchSteps {
    pub claim_ms: f64,
    pub history_query_ms: f64,
    pub post_ms: f64,
    pub ledger_put_ms: f64,
    pub record_ms: f64,
}

/// The sums behind [`DispatchSteps`], shared by a batch's callbacks.
#[derive(Debug, Default)]
struct StepTimes(std::sync::Mutex<[(Duration, u32); 5]>);

impl StepTimes {
    fn add(&self, step: usize, took: Duration) {
        let mut sums = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sums[step].0 += took;
        sums[step].1 += 1;
    }

    /// The means so far, which starts the sums again.
    fn take(&self) -> DispatchSteps {
        let sums = std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mean = |(total, count): (Duration, u32)| ms(total) / f64::from(count.max(1));
        DispatchSteps {
            claim_ms: mean(sums[0]),
            history_query_ms: mean(sums[1]),
            post_ms: mean(sums[2]),
            ledger_put_ms: mean(sums[3]),
            record_ms: mean(sums[4]),
        }
    }
}

/// Which of the handler's calls a raw baseline makes around each post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Calls {
    /// The claim and the record, on the orders table.
    Two,
    /// Those, the history `Query` and the ledger line.
    Every,
}

/// The two tables the dispatcher reads and writes.
struct Tables<'a> {
    orders: &'a str,
    history: &'a str,
}

/// One callback's calls, made raw with the SDK.
struct Raw<'a> {
    dynamodb: &'a aws_sdk_dynamodb::Client,
    tables: &'a Tables<'a>,
    number: &'a str,
    steps: Option<&'a StepTimes>,
}

impl<'a> Raw<'a> {
    fn new(
        dynamodb: &'a aws_sdk_dynamodb::Client,
        tables: &'a Tables<'a>,
        number: &'a str,
        steps: Option<&'a StepTimes>,
    ) -> Self {
        Self {
            dynamodb,
            tables,
            number,
            steps,
        }
    }

    /// Runs step `index`, timing it when asked to.
    async fn step<T>(&self, index: usize, work: impl Future<Output = T>) -> T {
        let began = Instant::now();
        let output = work.await;
        if let Some(steps) = self.steps {
            steps.add(index, began.elapsed());
        }
        output
    }

    /// The claim (one conditional `UpdateItem` returning the new item), the
    /// post, the record (a second conditional `UpdateItem`); with
    /// [`Calls::Every`] also the history `Query` after the claim (the
    /// request the body is built from, eventually consistent) and the
    /// ledger line's `PutItem` before the record, as the handler makes them.
    async fn make(self, calls: Calls, post: reqwest::RequestBuilder) -> bool {
        let Some((version, callback)) = self.step(0, self.claim()).await else {
            return false;
        };
        let every = calls == Calls::Every;
        (!every || self.step(1, self.history()).await)
            && self.step(2, sent(post)).await
            && (!every || self.step(3, self.ledger_line()).await)
            && self.step(4, self.record(version, &callback)).await
    }

    /// `SET version = version + 1, lease_owner = …`, the new item returned:
    /// its version and callback.
    async fn claim(&self) -> Option<(u64, String)> {
        let claimed = self
            .dynamodb
            .update_item()
            .table_name(self.tables.orders)
            .key("order_number", AttributeValue::S(self.number.to_owned()))
            .condition_expression("attribute_exists(order_number)")
            .update_expression("SET version = version + :one, lease_owner = :owner")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":owner",
                AttributeValue::S(format!("raw-{}", self.number)),
            )
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .ok()?;
        let item = claimed.attributes?;
        let (Some(AttributeValue::N(version)), Some(AttributeValue::S(callback))) =
            (item.get("version"), item.get("callback"))
        else {
            return None;
        };
        Some((version.parse().ok()?, callback.clone()))
    }

    /// The order's history, newest first, as the handler reads it.
    async fn history(&self) -> bool {
        self.dynamodb
            .query()
            .table_name(self.tables.history)
            .key_condition_expression("order_number = :number")
            .expression_attribute_values(":number", AttributeValue::S(self.number.to_owned()))
            .scan_index_forward(false)
            .limit(11)
            .send()
            .await
            .is_ok_and(|output| !output.items().is_empty())
    }

    /// One ledger line of the size the handler writes.
    async fn ledger_line(&self) -> bool {
        let at = Utc::now().timestamp_millis();
        self.dynamodb
            .put_item()
            .table_name(self.tables.history)
            .item("order_number", AttributeValue::S(self.number.to_owned()))
            .item("entry", AttributeValue::S(format!("attempt#raw#{at:015}")))
            .item(
                "attempt",
                AttributeValue::S(format!(
                    r#"{{"at":"{}","outcome":"sent","http_status":200,"latency_ms":21}}"#,
                    Utc::now().to_rfc3339()
                )),
            )
            .send()
            .await
            .is_ok()
    }

    /// `SET version = version + 1, callback = …` if the version is still `version`.
    async fn record(&self, version: u64, callback: &str) -> bool {
        self.dynamodb
            .update_item()
            .table_name(self.tables.orders)
            .key("order_number", AttributeValue::S(self.number.to_owned()))
            .condition_expression("version = :expected")
            .update_expression("SET version = :next, callback = :callback")
            .expression_attribute_values(":expected", AttributeValue::N(version.to_string()))
            .expression_attribute_values(":next", AttributeValue::N((version + 1).to_string()))
            .expression_attribute_values(":callback", AttributeValue::S(callback.to_owned()))
            .send()
            .await
            .is_ok()
    }
}
