//! The callback delivery protocol against the emulators: the defects of issue
//! 11, each as a platform, an ERP or an operator would notice it.

use std::time::Duration;

use integration_tests::partner::{Answer, Partner};
use integration_tests::{Reply, TestApp, sample_order, test_callback_settings, warehouse_event};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// Ships an order with events dated 2026-11-20 (the order backdated to then).
async fn ship(app: &TestApp, order_number: &str) {
    app.backdate(order_number, "2026-11-20T00:00:00Z").await;
    for event in [
        warehouse_event(
            "s",
            "shipped",
            "2026-11-20T10:00:00+08:00",
            &json!({"tracking_number": "YT4567890123CN", "shipping_fee": "12.5", "currency": "USD",
                    "shipping_provider_product": "Standard", "weight_g": 1200, "length_cm": 30,
                    "width_cm": 20, "height_cm": 10}),
        ),
        warehouse_event("h", "handed_over", "2026-11-20T11:00:00+08:00", &json!({})),
    ] {
        let reply = app.post_event(order_number, &event).await;
        assert_eq!(reply.status, 200, "{event}: {:#}", reply.body);
    }
}

fn status_is(status: &'static str) -> impl Fn(&Value) -> bool {
    move |data| data["callback"]["status"] == status
}

async fn wait_for_requests(partner: &Partner, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while partner.received().len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the partner got {} of {count} requests",
            partner.received().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Messages on the callback queue, visible or not.
async fn queued(app: &TestApp) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attributes = app
        .stack
        .sqs
        .get_queue_attributes()
        .queue_url(app.stack.callback_queue_url().expect("a queue"))
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("the queue answers")
        .attributes
        .unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|name| attributes.get(name)?.parse::<usize>().ok())
    .sum()
}

#[tokio::test]
async fn a_replay_while_an_attempt_is_in_flight_is_refused_and_the_shipment_is_posted_once() {
    let slow_success = Answer::ok_after(Duration::from_millis(700));
    let mut app = TestApp::spawn().await;
    let partner = Partner::start(vec![
        Answer::status(503, json!({"Message": "busy"})),
        slow_success,
    ])
    .await;
    app.start_dispatcher(&test_callback_settings(&partner.url));
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    ship(&app, "mabang-test002").await;

    // The second attempt has reached the partner and waits for its answer.
    wait_for_requests(&partner, 2).await;
    let replay = app.replay_callback("mabang-test002").await;

    assert_eq!(replay.status, 409, "{:#}", replay.body);
    assert!(
        replay.body["data"]["attempt_in_flight_until"].is_string(),
        "{:#}",
        replay.body
    );
    app.wait_for_order("mabang-test002", WAIT, status_is("delivered"))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(partner.received().len(), 2, "one failed post, one success");
}

#[tokio::test]
async fn a_stray_message_for_a_delivered_callback_changes_nothing() {
    let app = TestApp::spawn_with_partner(vec![]).await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    ship(&app, "mabang-test002").await;
    app.wait_for_order("mabang-test002", WAIT, status_is("delivered"))
        .await;

    // A duplicate of its message (the outbox delivers at least once).
    for body in [r#"{"order_number": "mabang-test002", "generation": "1"}"#] {
        app.stack
            .sqs
            .send_message()
            .queue_url(app.stack.callback_queue_url().unwrap())
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while queued(&app).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "messages left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let order = app.get_order("mabang-test002").await.body["data"].clone();
    assert_eq!(order["callback"]["status"], "delivered");
    assert_eq!(order["callback"]["attempt_count"], 1);
    assert_eq!(app.partner_requests().len(), 1);
}

#[tokio::test]
async fn a_backlog_never_grows_the_queue() {
    let mut app = TestApp::spawn().await;
    let numbers: Vec<String> = (0..12).map(|i| format!("backlog-{i}")).collect();
    for number in &numbers {
        let mut order = sample_order();
        order["package"]["order_number"] = json!(number);
        assert_eq!(app.post_order(&order).await.status, 201);
        ship(&app, number).await;
    }
    // No dispatcher yet: the callbacks wait on the queue, one message each.
    let deadline = tokio::time::Instant::now() + WAIT;
    while queued(&app).await < numbers.len() {
        assert!(tokio::time::Instant::now() < deadline, "messages missing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(queued(&app).await, numbers.len(), "nothing re-sent");

    let partner = Partner::start(vec![]).await;
    app.start_dispatcher(&test_callback_settings(&partner.url));
    for number in &numbers {
        app.wait_for_order(number, WAIT, status_is("delivered"))
            .await;
    }
    assert_eq!(partner.received().len(), numbers.len());
}

#[tokio::test]
async fn a_spent_schedule_is_dead_lettered_on_the_order_and_in_the_queue_together() {
    let app = TestApp::spawn_with_partner(Answer::down(20)).await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    ship(&app, "mabang-test002").await;

    let order = app
        .wait_for_order(
            "mabang-test002",
            Duration::from_secs(60),
            status_is("dead_lettered"),
        )
        .await;

    // Eight posts, as the schedule says: not fewer because of deliveries
    // that only waited.
    assert_eq!(order["callback"]["attempt_count"], 8);
    assert_eq!(app.partner_requests().len(), 8);
    let dead =
        integration_tests::receive_all(&app, app.stack.dead_letter_queue_url().unwrap()).await;
    assert_eq!(
        dead,
        [r#"{"order_number": "mabang-test002", "generation": "1"}"#]
    );
    assert_eq!(queued(&app).await, 0, "nothing left on the callback queue");
}

/// An app with a partner, holding the sample as an eBay order without the
/// carrier name its callback needs.
async fn with_an_ebay_order_lacking_its_carrier_name() -> TestApp {
    let app = TestApp::spawn_with_partner(vec![]).await;
    let mut order = sample_order();
    order["platform_type"] = json!("ebay");
    order["shipping_provider_name"] = Value::Null;
    assert_eq!(app.post_order(&order).await.status, 201);
    app
}

/// The ERP supplying what the sample order's callback lacks.
async fn supply_callback_fields(app: &TestApp, fields: &Value) -> Reply {
    app.post_json(
        "/apicenter/api/order/mabang-test002/callback/fields",
        fields,
    )
    .await
}

#[tokio::test]
async fn an_ebay_callback_that_lacked_its_carrier_name_goes_out_once_the_erp_supplies_it() {
    let app = with_an_ebay_order_lacking_its_carrier_name().await;
    ship(&app, "mabang-test002").await;
    let failed = app
        .wait_for_order("mabang-test002", WAIT, status_is("failed"))
        .await;
    assert!(
        failed["callback"]["reason"]
            .as_str()
            .unwrap()
            .contains("ShippingProviderName"),
        "{failed:#}"
    );

    let supplied = supply_callback_fields(
        &app,
        &json!({"shipping_provider_name": "USPS", "items": [{"sku": "-ALB-908", "platform_sku_id": "1729"}]}),
    )
    .await;

    assert_eq!(supplied.status, 200, "{:#}", supplied.body);
    app.wait_for_order("mabang-test002", WAIT, status_is("delivered"))
        .await;
    let posted = &app.partner_requests()[0].body;
    assert_eq!(posted["ShippingProviderName"], "USPS");
    assert_eq!(posted["SkuList"][0]["SkuId"], "1729");
}

#[tokio::test]
async fn callback_fields_for_an_unknown_sku_are_refused() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);

    let reply = supply_callback_fields(
        &app,
        &json!({"items": [{"sku": "nope", "platform_sku_id": "1"}]}),
    )
    .await;

    assert_eq!(reply.status, 400, "{:#}", reply.body);
    assert_eq!(reply.error_fields(), ["items"]);
}

#[tokio::test]
async fn the_shipped_event_may_carry_the_carrier_name() {
    let app = with_an_ebay_order_lacking_its_carrier_name().await;
    app.backdate("mabang-test002", "2026-11-20T00:00:00Z").await;
    let shipped = warehouse_event(
        "s",
        "shipped",
        "2026-11-20T10:00:00+08:00",
        &json!({"tracking_number": "YT1", "shipping_fee": "3", "currency": "USD",
                "shipping_provider_product": "Ground", "shipping_provider_name": "UPS",
                "weight_g": 100, "length_cm": 1, "width_cm": 1, "height_cm": 1}),
    );
    assert_eq!(app.post_event("mabang-test002", &shipped).await.status, 200);
    let handed = warehouse_event("h", "handed_over", "2026-11-20T11:00:00+08:00", &json!({}));
    assert_eq!(app.post_event("mabang-test002", &handed).await.status, 200);

    app.wait_for_order("mabang-test002", WAIT, status_is("delivered"))
        .await;
    assert_eq!(
        app.partner_requests()[0].body["ShippingProviderName"],
        "UPS"
    );
}

#[tokio::test]
async fn a_warehouse_event_named_like_the_erps_cancel_does_not_block_the_erps_cancel() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    app.backdate("mabang-test002", "2026-11-20T00:00:00Z").await;
    let allocated = warehouse_event(
        "erp-cancel",
        "allocated",
        "2026-11-20T08:00:00+08:00",
        &json!({}),
    );
    assert_eq!(
        app.post_event("mabang-test002", &allocated).await.status,
        200
    );

    let cancel = app.cancel_order("mabang-test002").await;

    assert_eq!(cancel.status, 200, "{:#}", cancel.body);
    assert_eq!(cancel.body["message"], "cancelled");
    assert_eq!(cancel.body["data"]["status"], "cancelled");
}
