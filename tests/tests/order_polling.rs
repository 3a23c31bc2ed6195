//! ERP polling (`GET /apicenter/api/orders`) against DynamoDB Local: the change
//! feed while orders keep changing, several orders by number, bad parameters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use integration_tests::{TestApp, sample_order};
use serde_json::{Value, json};

fn order(number: &str) -> Value {
    let mut order = sample_order();
    order["package"]["order_number"] = json!(number);
    order["package"]["platform_order_number"] = json!(format!("p-{number}"));
    order
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Follows `next_cursor` from `cursor` until no page says `has_more`; records
/// the newest `updated_at` seen of each order. Returns the last cursor.
async fn drain(
    app: &TestApp,
    mut cursor: Option<String>,
    seen: &mut HashMap<String, String>,
) -> Option<String> {
    loop {
        let query = match &cursor {
            Some(cursor) => format!("limit=7&cursor={cursor}"),
            None => "limit=7&updated_since=2000-01-01T00:00:00Z".to_owned(),
        };
        let page = app.poll_orders(&query).await;
        assert_eq!(page.status, 200, "{:#}", page.body);
        for order in page.body["data"]["orders"].as_array().expect("orders") {
            let number = order["order_number"].as_str().expect("number").to_owned();
            let updated = order["updated_at"].as_str().expect("updated_at").to_owned();
            let newest = seen.entry(number).or_default();
            if updated > *newest {
                *newest = updated;
            }
        }
        if let Some(next) = page.body["data"]["next_cursor"].as_str() {
            cursor = Some(next.to_owned());
        }
        if page.body["data"]["has_more"] != true {
            return cursor;
        }
    }
}

#[tokio::test]
async fn a_poller_following_its_cursor_misses_no_change_while_writers_keep_writing() {
    let app = Arc::new(TestApp::spawn().await);
    let numbers: Vec<String> = (0..24).map(|n| format!("poll-{n:02}")).collect();
    for number in &numbers {
        assert_eq!(app.post_order(&order(number)).await.status, 201);
    }

    // Four writers move every order through three steps, interleaved.
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let app = Arc::clone(&app);
            let numbers: Vec<String> = numbers.iter().skip(writer).step_by(4).cloned().collect();
            tokio::spawn(async move {
                for step in ["allocated", "picked", "packed"] {
                    for number in &numbers {
                        let event = json!({"event_id": format!("{number}-{step}"), "type": step, "occurred_at": now()});
                        let reply = app.post_event(number, &event).await;
                        assert_eq!(reply.status, 200, "{:#}", reply.body);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    // Meanwhile the poller polls again and again from its last cursor.
    let mut seen = HashMap::new();
    let mut cursor = None;
    while writers.iter().any(|writer| !writer.is_finished()) {
        cursor = drain(&app, cursor, &mut seen).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for writer in writers {
        writer.await.expect("a writer");
    }
    tokio::time::sleep(app.stack.poll_settle + Duration::from_millis(500)).await;
    drain(&app, cursor, &mut seen).await;

    for number in &numbers {
        let current = app.get_order(number).await.body["data"].clone();
        assert_eq!(current["status"], "packed");
        assert_eq!(
            seen.get(number).map(String::as_str),
            current["updated_at"].as_str(),
            "the poller missed the last change of {number}"
        );
    }
}

#[tokio::test]
async fn a_page_shows_each_order_as_the_single_get_does() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&order("poll-a")).await.status, 201);
    tokio::time::sleep(app.stack.poll_settle + Duration::from_millis(200)).await;

    let page = app
        .poll_orders("status=pending&callback_status=awaiting_shipment")
        .await;

    assert_eq!(page.status, 200, "{:#}", page.body);
    let single = app.get_order("poll-a").await.body["data"].clone();
    assert_eq!(page.body["data"]["orders"], json!([single]));
    assert!(page.body["data"]["next_cursor"].is_string());
    let other_status = app.poll_orders("status=shipped,cancelled").await;
    assert_eq!(other_status.body["data"]["orders"], json!([]));
}

#[tokio::test]
async fn several_orders_by_number_list_missing_and_foreign_ones_alike() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&order("mine-1")).await.status, 201);
    let mut foreign = order("theirs-1");
    foreign["client_code"] = json!("21");
    let other_key = app.client_key("21").await;
    assert_eq!(app.post_order_as(&other_key, &foreign).await.status, 201);

    let reply = app
        .poll_orders("order_numbers=mine-1,theirs-1,nobody-1")
        .await;

    assert_eq!(reply.status, 200, "{:#}", reply.body);
    let orders = reply.body["data"]["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["order_number"], "mine-1");
    assert_eq!(
        reply.body["data"]["missing"],
        json!(["theirs-1", "nobody-1"])
    );
}

#[tokio::test]
async fn bad_parameters_are_a_400_naming_each() {
    let app = TestApp::spawn().await;

    let reply = app
        .poll_orders("limit=101&status=lost&cursor=abc&updated_since=yesterday")
        .await;

    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.error_fields(),
        ["limit", "status", "cursor", "updated_since"]
    );
}
