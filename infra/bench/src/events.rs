//! The events the functions receive, built the way API Gateway (HTTP API,
//! payload v2) and the SQS event source mapping send them, and the orders the
//! benchmarks send.
//!
//! Every API request is built by [`api_event`]: the headers a client sends
//! (its API key among them) are in [`client_headers`], in one place.

use aws_lambda_events::event::sqs::SqsEvent;
use local_stack::Stack;
use serde_json::{Value, json};
use shared::domain::Scope;

/// The spec 000 sample order (trailing commas removed).
pub const SAMPLE_ORDER: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");

/// The headers a benchmark client holding API key `key` sends.
#[must_use]
pub fn client_headers(key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", "bench".to_owned()),
        ("authorization", format!("Bearer {key}")),
    ]
}

/// A new API key of the sample order's ERP (client `20`).
pub async fn client_key(stack: &Stack) -> Result<String, String> {
    stack
        .issue_key(Scope::Client("20".into()), None, false)
        .await
        .map(|issued| issued.key)
        .map_err(|e| format!("issuing a client key: {e}"))
}

/// A new API key of the sample order's warehouse (`mabang`).
pub async fn warehouse_key(stack: &Stack) -> Result<String, String> {
    stack
        .issue_key(Scope::Warehouse(["mabang".to_owned()].into()), None, false)
        .await
        .map(|issued| issued.key)
        .map_err(|e| format!("issuing a warehouse key: {e}"))
}

/// The API Gateway v2 event for a request to the HTTP API.
#[must_use]
pub fn api_event(
    method: &str,
    path: &str,
    body: Option<&str>,
    key: &str,
    request_id: u64,
) -> Value {
    let mut headers = serde_json::Map::new();
    headers.insert(
        "host".into(),
        json!("bench.execute-api.us-east-1.amazonaws.com"),
    );
    for (name, value) in client_headers(key) {
        headers.insert(name.into(), json!(value));
    }
    let now = chrono::Utc::now().timestamp_millis();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "bench",
            "domainName": "bench.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "bench",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bench",
            },
            "requestId": format!("bench-{request_id}"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "20/Nov/2026:02:00:00 +0000",
            "timeEpoch": now,
        },
        "body": body,
        "isBase64Encoded": false,
    })
}

/// The same request, decoded by `lambda_http` exactly as in Lambda.
pub fn api_request(
    method: &str,
    path: &str,
    body: Option<&str>,
    key: &str,
    request_id: u64,
) -> Result<lambda_http::Request, String> {
    lambda_http::request::from_str(&api_event(method, path, body, key, request_id).to_string())
        .map_err(|err| format!("lambda_http cannot read the event: {err}"))
}

/// The callback queue's event for order `number`'s first message, decoded
/// as the callback dispatcher takes it.
pub fn callback_event(stack: &Stack, number: &str) -> Result<SqsEvent, String> {
    let queue_arn = stack
        .resources
        .queue_arn("CallbackQueue")
        .map_err(|e| e.to_string())?;
    serde_json::from_value(sqs_event(queue_arn, &[number.to_owned()]))
        .map_err(|e| format!("SqsEvent: {e}"))
}

/// An SQS event of one callback message per order, as the event source
/// mapping delivers it on the first receive.
#[must_use]
pub fn sqs_event(queue_arn: &str, order_numbers: &[String]) -> Value {
    let records: Vec<Value> = order_numbers
        .iter()
        .enumerate()
        .map(|(index, number)| {
            json!({
                "messageId": format!("m-{index}-{number}"),
                "receiptHandle": format!("r-{index}-{number}"),
                // As the outbox pipe sends it: an order made due once is generation 1.
                "body": json!({ "order_number": number, "generation": "1" }).to_string(),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795000000000",
                    "SenderId": "000000000000",
                    "ApproximateFirstReceiveTimestamp": "1795000000000",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The event EventBridge Scheduler sends on a `rate(…)` schedule.
#[must_use]
pub fn schedule_event() -> Value {
    json!({
        "version": "0",
        "id": "00000000-0000-4000-8000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": shared::record::format_time(chrono::Utc::now()),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/bench"],
        "detail": {},
    })
}

/// The sample order under a new order number and marketplace order number
/// (unique, so the duplicate-order check finds nothing, as for real traffic).
/// `process_type` 2 arrives handed over: its callback is due at once.
#[must_use]
pub fn order_body(order_number: &str, process_type: u8) -> String {
    let mut order: Value = serde_json::from_str(SAMPLE_ORDER).expect("the fixture is JSON");
    order["package"]["order_number"] = json!(order_number);
    order["platform_order_number"] = json!(format!("po-{order_number}"));
    order["process_type"] = json!(process_type);
    order.to_string()
}

/// The orders stream's record of the write that created an order, as the
/// webhook fan-out's mapping hands it over: `item` (its state item, as
/// stored) as the new image, in DynamoDB's JSON.
#[must_use]
pub fn stream_insert_event(
    item: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue;
    let image: serde_json::Map<String, Value> = item
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                AttributeValue::S(text) => json!({ "S": text }),
                AttributeValue::N(number) => json!({ "N": number }),
                // The state the fan-out reads is strings and numbers.
                _ => return None,
            };
            Some((name.clone(), value))
        })
        .collect();
    let keys = json!({ "order_number": image.get("order_number").cloned().unwrap_or_default() });
    json!({ "Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/bench",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_795_000_000,
            "Keys": keys, "NewImage": image, "SequenceNumber": "100",
            "SizeBytes": 512, "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }] })
}

/// An order's five warehouse events, `allocated` to `handed_over`, one
/// second apart from `now` (whole seconds, as warehouses send them), with
/// their kinds.
#[must_use]
pub fn lifecycle_events(now: chrono::DateTime<chrono::Utc>) -> Vec<(&'static str, Value)> {
    let events = [
        ("allocated", json!({})),
        ("picked", json!({})),
        (
            "packed",
            json!({"weight_g": 1200, "length_cm": 30, "width_cm": 20, "height_cm": 10,
                   "number_of_package": 1, "sorting_code": "A1", "sorting_no": "7"}),
        ),
        (
            "shipped",
            json!({"tracking_number": "YT4567890123CN", "logistic_provider_code": "jito",
                   "shipping_fee": "12.5", "currency": "USD",
                   "shipping_provider_product": "Standard"}),
        ),
        ("handed_over", json!({})),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(index, (kind, extra))| {
            let mut event = json!({
                "event_id": format!("e-{index}"),
                "type": kind,
                "occurred_at": (now + chrono::Duration::seconds(index as i64))
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            });
            if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
                event.extend(extra.clone());
            }
            (kind, event)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_http_reads_the_api_events() {
        let request = api_request(
            "POST",
            "/apicenter/api/order",
            Some(&order_body("b-1", 1)),
            "k",
            1,
        )
        .unwrap();
        assert_eq!(request.uri().path(), "/apicenter/api/order");
        assert_eq!(request.headers()["content-type"], "application/json");
        assert_eq!(request.headers()["authorization"], "Bearer k");
    }

    #[test]
    fn sqs_events_decode() {
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(sqs_event("arn:aws:sqs:us-east-1:0:q", &["o-1".into()]))
                .unwrap();
        assert_eq!(event.records.len(), 1);
    }
}
