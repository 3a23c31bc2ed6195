//! Warehouse events and ERP cancellation through the API, against DynamoDB Local.

use integration_tests::{TestApp, sample_order};
use serde_json::{Value, json};

fn event(id: &str, kind: &str, at: &str) -> Value {
    json!({"event_id": id, "type": kind, "occurred_at": at})
}

async fn app_with_order() -> TestApp {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    app.backdate("mabang-test002", "2026-11-20T00:00:00Z").await;
    app
}

#[tokio::test]
async fn a_repeated_event_id_answers_200_and_changes_nothing() {
    let app = app_with_order().await;
    let first = app
        .post_event(
            "mabang-test002",
            &event("e-1", "allocated", "2026-11-20T08:00:00+08:00"),
        )
        .await;

    let again = app
        .post_event(
            "mabang-test002",
            &event("e-1", "allocated", "2026-11-20T08:00:00+08:00"),
        )
        .await;

    assert_eq!(again.status, 200);
    assert!(
        again.body["message"]
            .as_str()
            .unwrap()
            .contains("already received")
    );
    assert_eq!(again.body["data"], first.body["data"]);
}

#[tokio::test]
async fn a_late_event_keeps_its_time_without_moving_the_status_back() {
    let app = app_with_order().await;
    app.post_event(
        "mabang-test002",
        &event("e-3", "packed", "2026-11-20T09:30:00+08:00"),
    )
    .await;

    let late = app
        .post_event(
            "mabang-test002",
            &event("e-1", "allocated", "2026-11-20T08:00:00+08:00"),
        )
        .await;

    assert_eq!(late.status, 200);
    assert_eq!(late.body["data"]["status"], "packed");
    assert_eq!(late.body["data"]["allocate_at"], "2026-11-20T00:00:00Z");
    assert_eq!(late.body["data"]["events"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn shortage_shows_its_time_and_message_until_stock_arrives() {
    let app = app_with_order().await;
    let short = app
        .post_event(
            "mabang-test002",
            &json!({"event_id": "s", "type": "shortage", "occurred_at": "2026-11-20T08:00:00Z", "message": "-ALB-908 out of stock"}),
        )
        .await;
    assert_eq!(short.body["data"]["status"], "shortage");
    assert_eq!(short.body["data"]["shortage_at"], "2026-11-20T08:00:00Z");
    assert!(
        short.body["data"]["status_message"]
            .as_str()
            .unwrap()
            .contains("out of stock")
    );

    let allocated = app
        .post_event(
            "mabang-test002",
            &event("a", "allocated", "2026-11-21T08:00:00Z"),
        )
        .await;

    assert_eq!(allocated.body["data"]["status"], "allocated");
}

#[tokio::test]
async fn an_impossible_step_is_409_naming_the_current_status() {
    let app = app_with_order().await;
    app.post_event(
        "mabang-test002",
        &json!({"event_id": "s", "type": "shipped", "occurred_at": "2026-11-20T10:00:00Z", "tracking_number": "YT1"}),
    )
    .await;

    let cancel = app
        .post_event(
            "mabang-test002",
            &event("c", "cancelled", "2026-11-20T11:00:00Z"),
        )
        .await;

    assert_eq!(cancel.status, 409);
    assert_eq!(cancel.body["data"]["current_status"], "shipped");
    assert!(cancel.body["message"].as_str().unwrap().contains("shipped"));
}

#[tokio::test]
async fn the_erp_can_cancel_until_the_parcel_ships() {
    let app = app_with_order().await;

    let cancelled = app
        .post_json(
            "/apicenter/api/order/mabang-test002/cancel",
            &json!({"reason": "buyer changed mind"}),
        )
        .await;
    let again = app.cancel_order("mabang-test002").await;

    assert_eq!(cancelled.status, 200, "{:#}", cancelled.body);
    assert_eq!(cancelled.body["data"]["status"], "cancelled");
    assert!(cancelled.body["data"]["cancel_at"].is_string());
    assert_eq!(cancelled.body["data"]["callback"]["status"], "not_required");
    assert_eq!(again.status, 200);
    assert_eq!(again.body["message"], "already cancelled");
}

#[tokio::test]
async fn cancelling_a_shipped_order_is_409() {
    let app = app_with_order().await;
    app.post_event(
        "mabang-test002",
        &json!({"event_id": "s", "type": "shipped", "occurred_at": "2026-11-20T10:00:00Z", "tracking_number": "YT1"}),
    )
    .await;

    let reply = app.cancel_order("mabang-test002").await;

    assert_eq!(reply.status, 409);
    assert_eq!(reply.body["data"]["current_status"], "shipped");
}

#[tokio::test]
async fn a_bad_event_lists_every_problem_and_changes_nothing() {
    let app = app_with_order().await;

    let reply = app
        .post_event(
            "mabang-test002",
            &json!({"type": "shipped", "occurred_at": "noon", "weight_g": -1}),
        )
        .await;

    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.error_fields(),
        ["event_id", "occurred_at", "tracking_number", "weight_g"]
    );
    assert_eq!(
        app.get_order("mabang-test002").await.body["data"]["status"],
        "pending"
    );
}

#[tokio::test]
async fn events_for_an_unknown_order_are_404() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_event("nope", &event("e", "allocated", "2026-11-20T08:00:00Z"))
        .await;

    assert_eq!(reply.status, 404);
}

#[tokio::test]
async fn other_platforms_are_tracked_without_a_callback() {
    let app = TestApp::spawn().await;
    let mut order = sample_order();
    order["platform_type"] = json!("shopee");
    app.post_order(&order).await;
    app.backdate("mabang-test002", "2026-11-20T00:00:00Z").await;
    app.post_event(
        "mabang-test002",
        &json!({"event_id": "s", "type": "shipped", "occurred_at": "2026-11-20T10:00:00Z", "tracking_number": "YT1"}),
    )
    .await;

    let handed = app
        .post_event(
            "mabang-test002",
            &event("h", "handed_over", "2026-11-20T11:00:00Z"),
        )
        .await;

    assert_eq!(handed.body["data"]["status"], "handed_over");
    assert_eq!(handed.body["data"]["callback"]["status"], "not_required");
}

#[tokio::test]
async fn an_event_body_over_16_kib_is_413_naming_the_limit() {
    let app = app_with_order().await;
    let mut big = event("e", "shortage", "2026-11-20T08:00:00Z");
    big["padding"] = json!("x".repeat(17 * 1024));

    let reply = app.post_event("mabang-test002", &big).await;

    assert_eq!(reply.status, 413);
    assert_eq!(reply.body["data"]["limit_bytes"], 16 * 1024);
    assert_eq!(
        app.get_order("mabang-test002").await.body["data"]["status"],
        "pending"
    );
}

#[tokio::test]
async fn an_event_time_outside_the_order_s_life_is_a_400_naming_occurred_at() {
    let app = app_with_order().await;
    let ahead = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();

    for at in [
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "2026-12-31T23:59:60+08:00",
        "2000-01-01T00:00:00Z",
        ahead.as_str(),
    ] {
        let reply = app
            .post_event("mabang-test002", &event(&format!("e-{at}"), "picked", at))
            .await;
        assert_eq!(reply.status, 400, "{at}: {}", reply.body);
        assert_eq!(reply.error_fields(), ["occurred_at"], "{at}");
    }
    let order = app.get_order("mabang-test002").await.body["data"].clone();
    assert_eq!(order["status"], "pending");
}

/// The soak's `Events::Concurrent` orders, without its SIGKILLs: every
/// event of the order at once, as a warehouse retrying a backlog may send
/// them. One soak-check ended an order `shipped` with its callback still
/// `awaiting_shipment` though its hand-over was answered 200.
#[tokio::test]
async fn an_orders_events_sent_all_at_once_end_handed_over_with_its_callback_due() {
    let app = TestApp::spawn().await;
    let at = |minutes: i64| {
        shared::record::format_time(chrono::Utc::now() - chrono::Duration::minutes(minutes))
    };
    for n in 0..10 {
        let number = format!("together-{n}");
        let mut order = sample_order();
        order["package"]["order_number"] = json!(number);
        order["platform_order_number"] = json!(format!("p-{number}"));
        assert_eq!(app.post_order(&order).await.status, 201);
        let events = [
            json!({"event_id": "e-1", "type": "allocated", "occurred_at": at(60)}),
            json!({"event_id": "e-2", "type": "picked", "occurred_at": at(50)}),
            json!({"event_id": "e-3", "type": "packed", "occurred_at": at(40)}),
            json!({"event_id": "e-4", "type": "shipped", "occurred_at": at(30),
                   "tracking_number": format!("T{n}CN"), "logistic_provider_code": "jito"}),
            json!({"event_id": "e-5", "type": "handed_over", "occurred_at": at(20)}),
        ];
        let replies =
            futures::future::join_all(events.iter().map(|event| app.post_event(&number, event)))
                .await;
        for reply in &replies {
            assert_eq!(reply.status, 200, "{:#}", reply.body);
        }
        let order = app.get_order(&number).await.body;
        assert_eq!(
            order["data"]["status"], "handed_over",
            "{:#}",
            order["data"]
        );
        assert_ne!(
            order["data"]["callback"]["status"], "awaiting_shipment",
            "{:#}",
            order["data"]
        );
    }
}
