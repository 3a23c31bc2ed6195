//! Throughput of the real handlers against raw baselines doing the same
//! network work, in the same process, interleaved round by round so both
//! share whatever else the box is doing.
//!
//! - Intake: `POST /apicenter/api/order` through [`Stack::api`] (the handler
//!   the Lambda runs, behind `lambda_http`'s event decoding) against DynamoDB
//!   Local, next to raw `PutItem`s of the very same item with the same
//!   condition. As the sample order carries a marketplace order number, the
//!   handler also queries the duplicate-order index, beside the write: a
//!   second baseline makes that `Query` and `PutItem` concurrently with the raw
//!   SDK. (The caller's API key is read once and then cached by the warm
//!   function, so neither baseline reads it. Process type 1 sends no SQS
//!   message, so no baseline sends one either.)
//! - Dispatch: the dispatcher handler on batches of 10 against a partner that
//!   answers after 20 ms, next to raw reqwest posting the same requests (same
//!   bodies and headers), 10 at a time, to the same partner; and next to the
//!   same calls raw: per callback a consistent `GetItem`, a conditional
//!   `UpdateItem` (the claim), the post, a conditional `UpdateItem` (the
//!   answer), which is what the handler's exactly-once delivery costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use chrono::Utc;
use local_stack::Stack;
use local_stack::stack::CallbackSettings;
use serde::Serialize;
use shared::adapters::dynamodb::{PLATFORM_ORDER_INDEX, item_for};
use shared::config::Warehouses;
use shared::intake::{OrderRequest, findings, parse_order};
use shared::record::OrderRecord;

use crate::events::{api_request, client_key, order_body, sqs_event};
use crate::partner::Partner;
use crate::stats::{Run, Summary, drive, ms, percentile};

/// Rounds per level: handler and baselines alternate this many times.
const ROUNDS: usize = 2;

#[derive(Debug, Clone, Serialize)]
pub struct IntakeLevel {
    pub concurrency: usize,
    pub handler: Summary,
    /// Raw conditional `PutItem` of the same item.
    pub put: Summary,
    /// The same calls raw: duplicate-index `Query` beside the same `PutItem`.
    pub query_put: Summary,
}

type Item = std::collections::HashMap<String, AttributeValue>;
/// Baseline inputs, each taken once by the request that writes it.
type Prepared = Arc<Vec<std::sync::Mutex<Option<(Item, String)>>>>;

/// The item and the duplicate-index key the handler would write for `number`.
fn stored_item(number: &str, warehouses: &Warehouses) -> Result<(Item, String), String> {
    let OrderRequest { order, .. } =
        parse_order(order_body(number, 1).as_bytes()).map_err(|e| format!("{e:?}"))?;
    let key = order
        .client_platform_order_key()
        .ok_or("the sample order has a marketplace order number")?;
    let found = findings::check(&order, warehouses);
    Ok((
        item_for(&OrderRecord::accept(order, found, Utc::now())),
        key,
    ))
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

/// Intake at each `(concurrency, orders)` level.
pub async fn intake(stack: &Stack, levels: &[(usize, usize)]) -> Result<Vec<IntakeLevel>, String> {
    let api = stack.api().map_err(|e| e.to_string())?;
    let table: Arc<str> = stack.orders_table().map_err(|e| e.to_string())?.into();
    let key: Arc<str> = client_key(stack).await?.into();
    let mut results = Vec::new();
    for &(concurrency, orders) in levels {
        let per_round = orders / ROUNDS;
        let (mut handler, mut raw_put, mut raw_query_put) =
            (Run::default(), Run::default(), Run::default());
        for round in 0..ROUNDS {
            let tag = format!("c{concurrency}-r{round}");
            // Inputs are prepared before the clock starts.
            let bodies: Arc<Vec<String>> = Arc::new(
                (0..per_round)
                    .map(|i| order_body(&format!("h-{tag}-{i}"), 1))
                    .collect(),
            );
            let items = |kind: &str| -> Result<Prepared, String> {
                Ok(Arc::new(
                    (0..per_round)
                        .map(|i| {
                            stored_item(&format!("{kind}-{tag}-{i}"), &stack.warehouses)
                                .map(|v| std::sync::Mutex::new(Some(v)))
                        })
                        .collect::<Result<_, _>>()?,
                ))
            };
            let put_items = items("p")?;
            let query_put_items = items("q")?;

            let (api, key) = (Arc::clone(&api), Arc::clone(&key));
            handler.absorb(
                drive(per_round, concurrency, move |i| {
                    let api = Arc::clone(&api);
                    let bodies = Arc::clone(&bodies);
                    let key = Arc::clone(&key);
                    async move {
                        let Ok(request) = api_request(
                            "POST",
                            "/apicenter/api/order",
                            Some(&bodies[i]),
                            &key,
                            i as u64,
                        ) else {
                            return false;
                        };
                        api(request).await.status() == 201
                    }
                })
                .await,
            );
            let (dynamodb, t) = (stack.dynamodb.clone(), Arc::clone(&table));
            raw_put.absorb(
                drive(per_round, concurrency, move |i| {
                    let (dynamodb, t) = (dynamodb.clone(), Arc::clone(&t));
                    let taken = put_items[i].lock().ok().and_then(|mut slot| slot.take());
                    async move {
                        let Some((item, _)) = taken else { return false };
                        put(&dynamodb, &t, item).await.is_ok()
                    }
                })
                .await,
            );
            let (dynamodb, t) = (stack.dynamodb.clone(), Arc::clone(&table));
            raw_query_put.absorb(
                drive(per_round, concurrency, move |i| {
                    let (dynamodb, t) = (dynamodb.clone(), Arc::clone(&t));
                    let taken = query_put_items[i]
                        .lock()
                        .ok()
                        .and_then(|mut slot| slot.take());
                    async move {
                        let Some((item, key)) = taken else {
                            return false;
                        };
                        let (queried, stored) =
                            tokio::join!(query(&dynamodb, &t, key), put(&dynamodb, &t, item));
                        queried.is_ok() && stored.is_ok()
                    }
                })
                .await,
            );
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
    /// The handler's calls made raw: `GetItem`, `UpdateItem`, post, `UpdateItem`.
    pub same_calls: Summary,
    /// The floor the partner's delay puts on both: batch size / delay.
    pub ceiling_per_second: f64,
}

/// Dispatches `callbacks` due callbacks in batches of `batch` through the
/// dispatcher handler, and posts the same requests with raw reqwest.
pub async fn dispatch(
    stack: &Stack,
    callbacks: usize,
    batch: usize,
    partner_delay: Duration,
) -> Result<Dispatch, String> {
    let partner = Partner::start(partner_delay)
        .await
        .map_err(|e| format!("partner: {e}"))?;
    let settings = CallbackSettings {
        url: partner.url.clone(),
        token: "bench-partner-token".into(),
        timeout: Duration::from_secs(10),
        retry_delays: None,
    };
    let function = stack.dispatcher(&settings).map_err(|e| e.to_string())?;
    let queue_arn = stack
        .resources
        .queue_arn("CallbackQueue")
        .map_err(|e| e.to_string())?
        .to_owned();

    // Orders that arrive handed over (process type 2): each callback is due.
    let api = stack.api().map_err(|e| e.to_string())?;
    let key: Arc<str> = client_key(stack).await?.into();
    let numbers: Arc<Vec<String>> = Arc::new((0..callbacks).map(|i| format!("d-{i}")).collect());
    let created = {
        let numbers = Arc::clone(&numbers);
        drive(callbacks, 8, move |i| {
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

    let raw_client = shared::adapters::https::reqwest_builder()
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let table = stack.orders_table().map_err(|e| e.to_string())?;
    let (mut handler, mut raw, mut same_calls) = (Run::default(), Run::default(), Run::default());
    let chunks: Vec<&[String]> = numbers.chunks(batch).collect();
    let per_round = chunks.len().div_ceil(ROUNDS);
    for round in chunks.chunks(per_round) {
        // The handler, one batch after another, as one Lambda instance.
        let mut run = Run::default();
        let started = Instant::now();
        for chunk in round {
            let event: SqsEvent = serde_json::from_value(sqs_event(&queue_arn, chunk))
                .map_err(|e| format!("SqsEvent: {e}"))?;
            let began = Instant::now();
            let response = function(event).await;
            let took = began.elapsed();
            run.errors += response.batch_item_failures.len();
            for _ in *chunk {
                run.latencies.push(took);
            }
        }
        run.wall = started.elapsed();
        handler.absorb(run);

        // The same requests, raw, in the same batches.
        let received = partner.take();
        if received.len() != round.iter().map(|c| c.len()).sum::<usize>() {
            return Err(format!(
                "the partner got {} callbacks for {} messages",
                received.len(),
                round.iter().map(|c| c.len()).sum::<usize>()
            ));
        }
        raw.absorb(
            timed_batches(received.chunks(batch).map(|requests| {
                requests
                    .iter()
                    .map(|request| sent(raw_post(&raw_client, &partner.url, request)))
                    .collect()
            }))
            .await,
        );
        partner.take();

        // The same requests again, with the handler's DynamoDB calls around each.
        same_calls.absorb(
            timed_batches(
                received
                    .chunks(batch)
                    .zip(round.iter())
                    .map(|(requests, chunk)| {
                        requests
                            .iter()
                            .zip(chunk.iter())
                            .map(|(request, number)| {
                                let post = raw_post(&raw_client, &partner.url, request);
                                claim_post_record(&stack.dynamodb, table, number, post)
                            })
                            .collect()
                    }),
            )
            .await,
        );
        partner.take();
    }
    #[allow(clippy::cast_precision_loss)]
    let ceiling_per_second = batch as f64 / partner_delay.as_secs_f64();
    let result = Dispatch {
        callbacks,
        batch_size: batch,
        partner_delay_ms: u64::try_from(partner_delay.as_millis()).unwrap_or(u64::MAX),
        handler: handler.summary(),
        raw: raw.summary(),
        same_calls: same_calls.summary(),
        ceiling_per_second,
    };
    eprintln!(
        "bench: dispatch: handler {:.0}/s (batch p50 {:.1} ms), raw reqwest {:.0}/s (batch p50 {:.1} ms), same calls raw {:.0}/s",
        result.handler.per_second,
        ms(percentile(&handler.latencies, 50.0)),
        result.raw.per_second,
        ms(percentile(&raw.latencies, 50.0)),
        result.same_calls.per_second,
    );
    Ok(result)
}

/// Runs `batches` one after another, the futures of each concurrently; every
/// callback counts with its batch's latency, as in the handler's runs.
async fn timed_batches<F: Future<Output = bool>>(batches: impl Iterator<Item = Vec<F>>) -> Run {
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

/// The dispatcher's DynamoDB calls around one post, made raw: read the order,
/// claim it (conditional on its version), post, record (conditional again).
async fn claim_post_record(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    number: &str,
    post: reqwest::RequestBuilder,
) -> bool {
    let Ok(got) = dynamodb
        .get_item()
        .table_name(table)
        .key("order_number", AttributeValue::S(number.to_owned()))
        .consistent_read(true)
        .send()
        .await
    else {
        return false;
    };
    let Some(item) = got.item else { return false };
    let (Some(AttributeValue::N(version)), Some(AttributeValue::S(callback))) =
        (item.get("version"), item.get("callback"))
    else {
        return false;
    };
    let Ok(version) = version.parse::<u64>() else {
        return false;
    };
    versioned_update(dynamodb, table, number, version, callback).await
        && sent(post).await
        && versioned_update(dynamodb, table, number, version + 1, callback).await
}

/// `SET version = version + 1, callback = …` if the version is still `version`.
async fn versioned_update(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    number: &str,
    version: u64,
    callback: &str,
) -> bool {
    dynamodb
        .update_item()
        .table_name(table)
        .key("order_number", AttributeValue::S(number.to_owned()))
        .condition_expression("version = :expected")
        .update_expression("SET version = :next, callback = :callback")
        .expression_attribute_values(":expected", AttributeValue::N(version.to_string()))
        .expression_attribute_values(":next", AttributeValue::N((version + 1).to_string()))
        .expression_attribute_values(":callback", AttributeValue::S(callback.to_owned()))
        .send()
        .await
        .is_ok()
}
