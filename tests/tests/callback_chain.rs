//! From order to platform callback: HTTP API → DynamoDB Local → SQS emulator →
//! dispatcher (run as the event source mapping runs it) → a real HTTP partner.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use integration_tests::partner::Answer;
use integration_tests::{PARTNER_TOKEN, TestApp, callback_is, sample_order, warehouse_event};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// Posts the whole warehouse flow for an order, local times at `offset` ("+08:00").
async fn ship(app: &TestApp, order_number: &str, day: &str, offset: &str) {
    app.backdate(order_number, &format!("{day}T00:00:00Z"))
        .await;
    let at = |time: &str| format!("{day}T{time}{offset}");
    let events = [
        warehouse_event("e-1", "allocated", &at("08:00:00"), &json!({})),
        warehouse_event("e-2", "picked", &at("09:00:00"), &json!({})),
        warehouse_event(
            "e-3",
            "packed",
            &at("09:30:00"),
            &json!({"weight_g": 1200, "length_cm": 30, "width_cm": 20, "height_cm": 10,
                    "number_of_package": 1, "sorting_code": "A1", "sorting_no": "7"}),
        ),
        warehouse_event(
            "e-4",
            "shipped",
            &at("10:00:00"),
            &json!({"tracking_number": "YT4567890123CN", "logistic_provider_code": "jito",
                    "shipping_fee": "12.5", "currency": "USD", "shipping_provider_product": "Standard"}),
        ),
        warehouse_event("e-5", "handed_over", &at("11:00:00"), &json!({})),
    ];
    for event in &events {
        let reply = app.post_event(order_number, event).await;
        assert_eq!(reply.status, 200, "{event}: {:#}", reply.body);
    }
}

fn delivered(data: &Value) -> bool {
    callback_is(data, "delivered")
}

/// `created_at` (RFC 3339, UTC) as spec 001 writes it at `offset_hours`.
fn local(created_at: &Value, offset_hours: i32) -> String {
    let at = DateTime::parse_from_rfc3339(created_at.as_str().expect("a time")).expect("RFC 3339");
    at.with_timezone(&FixedOffset::east_opt(offset_hours * 3600).expect("an offset"))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The spec-001 body of the sample order as [`ship`] ships it on `day`,
/// under `platform` and `parcel`, from warehouse (code, country, city) at
/// UTC `zone` hours; `stored` is the order read back (for its creation time).
fn shipped_sample_body(
    platform: &str,
    parcel: &str,
    (warehouse, country, city): (&str, &str, &str),
    day: &str,
    zone: i32,
    stored: &Value,
) -> Value {
    json!({
        "ClientCode": "20", "WarehouseCode": warehouse, "PlatformCode": platform, "ShippingMode": 0,
        "ParcelId": parcel, "PackagId": "tiktok_order0012454545", "OrderId": "7861345751257",
        "CreateTime": local(&stored["created_at"], zone),
        "PickupTime": format!("{day} 09:00:00"), "Country": country, "City": city, "TimeZone": zone,
        "ShippedTime": format!("{day} 10:00:00"), "HandOverTime": format!("{day} 11:00:00"),
        "ShippingProviderId": "8545675454500214", "ShippingProviderName": "jito",
        "ShippingProviderProduct": "Standard", "TrackingNumber": "YT4567890123CN",
        "ShippingFee": "12.50", "Currency": "USD",
        "Length": 30, "Width": 20, "Height": 10, "Weight": 1200,
        "SkuList": [
            {"SkuId": "1234", "SkuCode": "-ALB-908", "Quantity": 1},
            {"SkuId": "5648", "SkuCode": "#", "Quantity": 1}
        ]
    })
}

#[tokio::test]
async fn a_tiktok_order_reaches_the_partner_once_with_the_exact_spec_001_body() {
    let app = TestApp::spawn_with_partner(vec![]).await;
    let order = ship_sample(&app, delivered).await;

    let received = app.partner_requests();
    assert_eq!(received.len(), 1);
    let manila = ("PH", "PH", "Manila");
    assert_eq!(
        received[0].body,
        shipped_sample_body("TikTok", "mabang-test002", manila, "2026-11-20", 8, &order)
    );
    assert_eq!(
        received[0].authorization.as_deref(),
        Some(&*format!("Bearer {PARTNER_TOKEN}"))
    );
    assert_eq!(
        received[0].idempotency_key.as_deref().map(str::len),
        Some(64)
    );
    // What the order shows afterwards (spec 000 fields the lifecycle filled).
    assert_eq!(order["status"], "handed_over");
    assert_eq!(order["tracking_number"], "YT4567890123CN");
    assert_eq!(order["total_weight"], "1200");
    assert_eq!(order["sorting_code"], "A1");
    assert_eq!(order["handover_at"], "2026-11-20T02:00:00Z");
    assert_eq!(order["callback"]["partner_success"], true);
    assert_eq!(order["callback"]["raw_response"], "{\"code\":0}");
}

#[tokio::test]
async fn a_temu_order_with_a_platform_label_is_reported_in_shipping_mode_1() {
    let app = TestApp::spawn_with_partner(vec![]).await;
    let mut order = sample_order();
    order["platform_type"] = json!("Temu");
    order["package"]["order_number"] = json!("temu-1");
    order["logistics_provider"]["label_url"] = json!("https://labels.example.com/temu-1.pdf");
    for key in ["package_id", "shipping_provider_id"] {
        order.as_object_mut().unwrap().remove(key);
    }
    let created = app.post_order(&order).await;
    assert_eq!(created.status, 201, "{:#}", created.body);

    ship(&app, "temu-1", "2026-11-20", "+08:00").await;
    let stored = app.wait_for_order("temu-1", WAIT, delivered).await;

    let body = &app.partner_requests()[0].body;
    assert_eq!(body["PlatformCode"], "Temu");
    assert_eq!(body["ShippingMode"], 1);
    assert_eq!(body["ParcelId"], "temu-1");
    assert!(
        body.get("PackagId").is_none() && body.get("ShippingProviderId").is_none(),
        "{body:#}"
    );
    assert_eq!(body["CreateTime"], local(&stored["created_at"], 8));
}

async fn ebay_in_los_angeles(day: &str, offset: &str) -> (Value, Value) {
    let app = TestApp::spawn_with_partner(vec![]).await;
    let mut order = sample_order();
    order["platform_type"] = json!("ebay");
    order["centre_code"] = json!("lax");
    order["package"]["order_number"] = json!("ebay-1");
    let created = app.post_order(&order).await;
    assert_eq!(created.status, 201, "{:#}", created.body);

    ship(&app, "ebay-1", day, offset).await;
    let stored = app.wait_for_order("ebay-1", WAIT, delivered).await;
    (stored, app.partner_requests()[0].body.clone())
}

#[tokio::test]
async fn an_ebay_order_from_los_angeles_in_january_reports_utc_minus_8() {
    let (created, body) = ebay_in_los_angeles("2026-01-15", "-08:00").await;

    let los_angeles = ("US", "US", "Los Angeles");
    assert_eq!(
        body,
        shipped_sample_body("eBay", "ebay-1", los_angeles, "2026-01-15", -8, &created)
    );
}

#[tokio::test]
async fn an_ebay_order_from_los_angeles_in_july_reports_utc_minus_7() {
    let (created, body) = ebay_in_los_angeles("2026-07-15", "-07:00").await;

    assert_eq!(body["TimeZone"], -7);
    assert_eq!(body["PickupTime"], "2026-07-15 09:00:00");
    assert_eq!(body["HandOverTime"], "2026-07-15 11:00:00");
    assert_eq!(body["CreateTime"], local(&created["created_at"], -7));
}

/// Ships the sample order and waits for the callback to settle.
async fn ship_sample(app: &TestApp, settled: impl Fn(&Value) -> bool) -> Value {
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    ship(app, "mabang-test002", "2026-11-20", "+08:00").await;
    app.wait_for_order("mabang-test002", WAIT, settled).await
}

#[tokio::test]
async fn the_same_message_delivered_three_times_calls_the_partner_once() {
    let app = TestApp::spawn_with_partner(vec![Answer::ok_after(Duration::from_millis(300))]).await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    ship(&app, "mabang-test002", "2026-11-20", "+08:00").await;
    // Two more copies of the message, as an at-least-once queue may deliver.
    for _ in 0..2 {
        app.stack
            .sqs
            .send_message()
            .queue_url(app.stack.callback_queue_url().unwrap())
            .message_body(r#"{"order_number":"mabang-test002"}"#)
            .send()
            .await
            .unwrap();
    }

    app.wait_for_order("mabang-test002", WAIT, delivered).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    assert_eq!(app.partner_requests().len(), 1);
}

#[tokio::test]
async fn a_partner_failing_twice_with_503_gets_the_callback_on_the_third_try() {
    let unavailable = || Answer::status(503, json!({"Message": "down for maintenance"}));
    let app = TestApp::spawn_with_partner(vec![unavailable(), unavailable()]).await;

    let order = ship_sample(&app, delivered).await;

    assert_eq!(app.partner_requests().len(), 3);
    let ledger = order["callback"]["attempts"].as_array().unwrap();
    let statuses: Vec<&Value> = ledger.iter().map(|a| &a["http_status"]).collect();
    assert_eq!(statuses, [&json!(503), &json!(503), &json!(200)]);
    let outcomes: Vec<&Value> = ledger.iter().map(|a| &a["outcome"]).collect();
    assert_eq!(
        outcomes,
        [&json!("retrying"), &json!("retrying"), &json!("delivered")]
    );
    assert!(
        ledger
            .iter()
            .all(|a| a["latency_ms"].is_u64() && a["at"].is_string())
    );
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_its_retry_after() {
    let app = TestApp::spawn_with_partner(vec![Answer {
        retry_after: Some(3),
        ..Answer::status(429, json!({"Message": "slow down"}))
    }])
    .await;

    ship_sample(&app, delivered).await;

    let received = app.partner_requests();
    assert_eq!(received.len(), 2);
    let waited = received[1].at - received[0].at;
    assert!(
        waited >= Duration::from_millis(2900),
        "retried after {waited:?}"
    );
}

#[tokio::test]
async fn a_partner_that_times_out_is_retried() {
    let app = TestApp::spawn_with_partner(vec![Answer::ok_after(Duration::from_secs(3))]).await;

    let order = ship_sample(&app, delivered).await;

    let first = &order["callback"]["attempts"][0];
    assert_eq!(first["http_status"], Value::Null);
    assert_eq!(first["outcome"], "retrying");
    assert!(app.partner_requests().len() >= 2);
}

fn failed(data: &Value) -> bool {
    callback_is(data, "failed")
}

#[tokio::test]
async fn a_400_is_recorded_as_failed_and_not_retried() {
    let app = TestApp::spawn_with_partner(vec![Answer::status(
        400,
        json!({"Success": false, "Message": "WarehouseCode unknown"}),
    )])
    .await;

    let order = ship_sample(&app, failed).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(app.partner_requests().len(), 1);
    assert_eq!(
        order["callback"]["partner_message"],
        "WarehouseCode unknown"
    );
    assert!(
        order["callback"]["reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 400")
    );
}

#[tokio::test]
async fn success_false_is_recorded_as_failed_with_the_partners_message() {
    let app = TestApp::spawn_with_partner(vec![Answer::status(
        200,
        json!({"Success": false, "Message": "TikTok: package already shipped", "RawResponse": "{\"code\":21011001}"}),
    )])
    .await;

    let order = ship_sample(&app, failed).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(app.partner_requests().len(), 1);
    assert_eq!(order["callback"]["partner_success"], false);
    assert_eq!(
        order["callback"]["partner_message"],
        "TikTok: package already shipped"
    );
    assert_eq!(order["callback"]["raw_response"], "{\"code\":21011001}");
}

#[tokio::test]
async fn an_operator_can_replay_a_failed_callback() {
    let app =
        TestApp::spawn_with_partner(vec![Answer::status(400, json!({"Message": "bad"}))]).await;
    ship_sample(&app, failed).await;

    let reply = app.replay_callback("mabang-test002").await;

    assert_eq!(reply.status, 202, "{:#}", reply.body);
    app.wait_for_order("mabang-test002", WAIT, delivered).await;
    assert_eq!(app.partner_requests().len(), 2);
}

#[tokio::test]
async fn retries_running_out_put_the_message_in_the_dlq_and_say_so_on_the_order() {
    let app = TestApp::spawn_with_partner(Answer::down(20)).await;

    let order = ship_sample(&app, |data| data["callback"]["status"] == "dead_lettered").await;

    assert_eq!(order["callback"]["attempt_count"], 8);
    assert!(
        order["callback"]["reason"]
            .as_str()
            .unwrap()
            .contains("dead-letter")
    );
    let dlq = wait_for_dead_letters(&app, 1).await;
    assert_eq!(
        dlq,
        [r#"{"order_number": "mabang-test002", "generation": "1"}"#]
    );
}

/// Receives from the DLQ until `count` messages arrived; returns their bodies.
async fn wait_for_dead_letters(app: &TestApp, count: usize) -> Vec<String> {
    let url = app.stack.dead_letter_queue_url().expect("a DLQ").to_owned();
    let mut bodies = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while bodies.len() < count && tokio::time::Instant::now() < deadline {
        let received = app
            .stack
            .sqs
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("the DLQ answers");
        bodies.extend(
            received
                .messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_owned)),
        );
    }
    bodies
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dlq_while_the_rest_of_its_batch_is_delivered() {
    let mut app = TestApp::spawn().await;
    let partner = integration_tests::partner::Partner::start(vec![]).await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    ship(&app, "mabang-test002", "2026-11-20", "+08:00").await;
    // The poison message joins the real one before any dispatcher runs, so
    // they arrive in one batch.
    app.stack
        .sqs
        .send_message()
        .queue_url(app.stack.callback_queue_url().unwrap())
        .message_body("not json at all")
        .send()
        .await
        .unwrap();

    app.start_dispatcher(&integration_tests::test_callback_settings(&partner.url));

    app.wait_for_order("mabang-test002", WAIT, delivered).await;
    assert_eq!(wait_for_dead_letters(&app, 1).await, ["not json at all"]);
    assert_eq!(partner.received().len(), 1);
}

#[tokio::test]
async fn handed_over_before_shipped_waits_for_the_shipment_then_reports_once() {
    let app = TestApp::spawn_with_partner(vec![]).await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    app.backdate("mabang-test002", "2026-11-20T00:00:00Z").await;

    let handed = app
        .post_event(
            "mabang-test002",
            &warehouse_event("h", "handed_over", "2026-11-20T11:00:00+08:00", &json!({})),
        )
        .await;
    assert_eq!(
        handed.body["data"]["callback"]["status"],
        "awaiting_shipment"
    );
    let shipped = app
        .post_event(
            "mabang-test002",
            &warehouse_event(
                "s",
                "shipped",
                "2026-11-20T10:00:00+08:00",
                &json!({"tracking_number": "YT1"}),
            ),
        )
        .await;

    assert_eq!(shipped.status, 200);
    assert_eq!(
        shipped.body["data"]["status"], "handed_over",
        "a late event never moves back"
    );
    app.wait_for_order("mabang-test002", WAIT, delivered).await;
    assert_eq!(app.partner_requests().len(), 1);
    assert_eq!(
        app.partner_requests()[0].body["ShippedTime"],
        "2026-11-20 10:00:00"
    );
}
