//! What the storage layout costs and keeps: the order's state apart from its
//! accepted request and callback ledger (the history table), priced by the
//! capacity units DynamoDB Local reports (deterministic, so asserted here;
//! the whole lifecycle's table is `cargo run -p bench -- capacity`).

use std::time::Duration;

use adapters::capacity;
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{TestApp, sample_order};
use serde_json::{Value, json};

type Item = std::collections::HashMap<String, AttributeValue>;

fn event(id: &str, kind: &str, extra: &Value) -> Value {
    let occurred_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut event = json!({"event_id": id, "type": kind, "occurred_at": occurred_at});
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        event.extend(extra.clone());
    }
    event
}

/// The units the order store consumed since the last call (the API key
/// lookups left out: authentication, cached in a warm function).
fn units_since() -> f64 {
    let mut taken = capacity::take();
    taken.operations.remove("key_lookup");
    taken.total()
}

fn text(item: &Item, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(text)) => text.clone(),
        other => panic!("{name} is {other:?}"),
    }
}

fn entries(history: &[Item]) -> Vec<String> {
    let mut entries: Vec<String> = history.iter().map(|item| text(item, "entry")).collect();
    entries.sort();
    entries
}

#[tokio::test]
async fn a_warehouse_event_on_a_fifty_item_order_costs_what_a_small_order_does() {
    let app = TestApp::spawn().await;
    let mut order = sample_order();
    order["items"] = (0..50)
        .map(|i| {
            json!({"sku": format!("SKU-{i:04}"), "currency": "PHP", "unit_price": "10.50",
                   "qty": 1, "platform_sku_id": format!("{}", 1_000_000 + i)})
        })
        .collect();
    assert_eq!(app.post_order(&order).await.status, 201);
    units_since();

    let reply = app
        .post_event("mabang-test002", &event("e-1", "allocated", &json!({})))
        .await;

    assert_eq!(reply.status, 200, "{:#}", reply.body);
    // A consistent read of the state (1), the request and ledger read
    // eventually consistently (1 for the 5.6 KB request), one write of a state
    // item under 1 KB (1) and the polling index's key moving out and in (2).
    // With the request inside the ~8 KB item, as before, it cost about 12:
    // 2 to read, 8 to write, 2 for the index.
    let units = units_since();
    assert!(units <= 5.5, "the event cost {units} capacity units");
}

#[tokio::test]
async fn a_packed_event_on_the_spec_sample_writes_one_unit_as_its_state_stays_under_a_kilobyte() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    for (id, kind) in [("e-1", "allocated"), ("e-2", "picked")] {
        let reply = app
            .post_event("mabang-test002", &event(id, kind, &json!({})))
            .await;
        assert_eq!(reply.status, 200, "{:#}", reply.body);
    }
    units_since();

    let packed = json!({"weight_g": 1200, "length_cm": 30, "width_cm": 20, "height_cm": 10,
                        "number_of_package": 1, "sorting_code": "A1", "sorting_no": "7"});
    let reply = app
        .post_event("mabang-test002", &event("e-3", "packed", &packed))
        .await;

    assert_eq!(reply.status, 200, "{:#}", reply.body);
    // A consistent read of the state (1), the request read eventually
    // consistently (0.5), one write of a state item under 1 KB (1) and the
    // polling index's key moving out and in (2). With the sample's three
    // findings in the state item (0.3 KB more: 1.2 KB) the write cost 2.
    let units = units_since();
    assert!(units <= 4.5, "the packed event cost {units} capacity units");
}

#[tokio::test]
async fn the_order_read_back_shows_its_request_events_and_attempts() {
    let app = TestApp::spawn_with_partner(vec![]).await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let events = [
        event("e-1", "allocated", &json!({})),
        event("e-2", "picked", &json!({})),
        event(
            "e-3",
            "shipped",
            &json!({"tracking_number": "YT4567890123CN", "logistic_provider_code": "jito"}),
        ),
        event("e-4", "handed_over", &json!({})),
    ];
    for event in &events {
        let reply = app.post_event("mabang-test002", event).await;
        assert_eq!(reply.status, 200, "{:#}", reply.body);
    }

    let order = app
        .wait_for_order("mabang-test002", Duration::from_secs(20), |o| {
            o["callback"]["status"] == "delivered"
        })
        .await;

    assert_eq!(order["items"], json!(["-ALB-908", "#"]));
    assert_eq!(order["findings"].as_array().map(Vec::len), Some(3));
    let ids: Vec<&str> = order["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["event_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids, ["e-1", "e-2", "e-3", "e-4"]);
    assert_eq!(order["callback"]["attempt_count"], 1);
    assert_eq!(order["callback"]["attempts"][0]["outcome"], "delivered");
    // Where they live: the state item holds neither request nor ledger, nor
    // the findings, which no event changes (they go with the request: 0.3 KB
    // less in every write of the spec sample).
    let items = app.stored_items().await;
    assert!(!items[0].contains_key("order"));
    assert!(!items[0].contains_key("findings"));
    assert!(!text(&items[0], "callback").contains("attempts"));
    let history = app.stored_history().await;
    let request = history
        .iter()
        .find(|item| text(item, "entry").starts_with("request#"))
        .expect("the request item");
    assert!(text(request, "findings").contains("sender.email"));
    assert_eq!(
        entries(&app.stored_history().await)
            .iter()
            .map(|entry| entry.split('#').next().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["attempt", "request"]
    );
}
