//! Personal data (docs/personal-data.md): an ERP erases an order's personal
//! data once the warehouse is done with it, and the sweep redacts final
//! orders after the retention; either way the order, its history and its
//! label lose the buyer's name, street, phone and e-mail, while the order
//! still reads, polls and replays.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use integration_tests::partner::Answer;
use integration_tests::{TestApp, sample_order};
use serde_json::{Value, json};

/// The sample's buyer: what must be gone from everything stored.
const BUYER: [&str; 4] = [
    "Juan Carlos García",
    "Calle vía de Dublín 7. Planta 1.",
    "+34 655549503",
    "mabang@qq.com",
];

fn order_with_label(number: &str) -> Value {
    let mut order = sample_order();
    order["package"]["order_number"] = json!(number);
    order["logistics_provider"]["label_base64"] =
        json!(base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.7 Juan Carlos Garcia"));
    order
}

async fn erase_as(app: &TestApp, key: &str, number: &str) -> integration_tests::Reply {
    let auth = format!("Bearer {key}");
    app.send(
        reqwest::Method::POST,
        &format!("/apicenter/api/order/{number}/personal-data/erase"),
        &[("authorization", &auth)],
        None,
    )
    .await
}

/// Every stored text of the order's history items (requests, ledger lines).
async fn history_text(app: &TestApp, number: &str) -> String {
    app.stored_history()
        .await
        .iter()
        .filter(|item| item["order_number"].as_s().is_ok_and(|n| n == number))
        .map(|item| format!("{item:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The order's history holds none of the buyer's personal values, and the city.
async fn assert_history_redacted(app: &TestApp, number: &str) {
    let history = history_text(app, number).await;
    assert!(history.contains("request#"), "{history}");
    for value in BUYER {
        assert!(
            !history.contains(value),
            "{value:?} still stored: {history}"
        );
    }
    assert!(history.contains("Madrid"), "the city stays: {history}");
}

/// Fails, saying `why`, if any of the label `keys` is the order's.
fn assert_none_is_the_orders(keys: &[String], number: &str, why: &str) {
    assert!(
        keys.iter().all(|key| !key.contains(number)),
        "{why}: {keys:?}"
    );
}

/// What a user of the order notices after its personal data went: the
/// history and the label hold none of it; the order reads, polls and
/// replays (`sent`, the body it was created with), and the replay brings
/// nothing back.
async fn assert_redacted_but_usable(app: &TestApp, number: &str, sent: &Value) {
    assert_history_redacted(app, number).await;
    assert_none_is_the_orders(&app.stored_labels().await, number, "the label is deleted");
    assert_none_is_the_orders(
        &app.stored_label_versions().await,
        number,
        "no earlier version of the label is kept either",
    );
    let label = app.get_label(number).await;
    assert_eq!(label.status, 404, "the label went: {:#}", label.body);
    let read = app.get_order(number).await;
    assert_eq!(read.status, 200, "{:#}", read.body);
    assert!(read.body["data"]["personal_data_redacted_at"].is_string());
    assert_eq!(read.body["data"]["label"], Value::Null);
    let replay = app.post_order(sent).await;
    assert_eq!(
        replay.status, 200,
        "an identical create is still a replay: {:#}",
        replay.body
    );
    assert_eq!(replay.body["data"]["order_number"], number);
    assert_history_redacted(app, number).await;
    let polled = app.poll_orders(&format!("order_numbers={number}")).await;
    assert_eq!(polled.status, 200, "{:#}", polled.body);
    assert_eq!(polled.body["data"]["orders"][0]["order_number"], number);
    assert_none_is_the_orders(
        &app.stored_labels().await,
        number,
        "a replay puts no label back",
    );
}

#[tokio::test]
async fn an_erp_erases_a_cancelled_orders_personal_data_and_label_at_once() {
    let app = TestApp::spawn().await;
    let number = "mabang-erase1";
    assert_eq!(app.post_order(&order_with_label(number)).await.status, 201);
    assert_eq!(app.stored_labels().await.len(), 1);
    let other = app.client_key("21").await;
    assert_eq!(app.cancel_order(number).await.status, 200);

    // A refused create's copy whose delete failed: nothing points to it.
    let stray = order_with_label(number).to_string();
    app.stack
        .dynamodb
        .put_item()
        .table_name(app.stack.order_history_table().expect("history"))
        .item("order_number", AttributeValue::S(number.to_owned()))
        .item(
            "entry",
            AttributeValue::S(format!("request#{}", "0".repeat(64))),
        )
        .item("order", AttributeValue::S(stray))
        .send()
        .await
        .expect("a stray request");

    let foreign = erase_as(&app, &other, number).await;
    let missing = erase_as(&app, &other, "mabang-nosuch").await;
    let erased = erase_as(&app, &app.erp_key, number).await;
    let again = erase_as(&app, &app.erp_key, number).await;

    assert_eq!(foreign.status, 404, "{:#}", foreign.body);
    assert_eq!(
        foreign.body["message"]
            .as_str()
            .map(|m| m.replace(number, "N")),
        missing.body["message"]
            .as_str()
            .map(|m| m.replace("mabang-nosuch", "N")),
        "another client's order answers exactly like a missing one"
    );
    assert_eq!(erased.status, 200, "{:#}", erased.body);
    assert_eq!(erased.body["message"], "personal data erased");
    assert_eq!(again.status, 200);
    assert_eq!(again.body["message"], "personal data already erased");
    assert_redacted_but_usable(&app, number, &order_with_label(number)).await;
}

#[tokio::test]
async fn an_order_still_in_the_warehouse_keeps_its_address_and_says_when_it_can_go() {
    let app = TestApp::spawn().await;
    let number = "mabang-erase2";
    assert_eq!(app.post_order(&order_with_label(number)).await.status, 201);

    let refused = erase_as(&app, &app.erp_key, number).await;

    assert_eq!(refused.status, 409, "{:#}", refused.body);
    assert_eq!(refused.body["data"]["current_status"], "pending");
    assert_eq!(
        refused.body["data"]["erasable_when"],
        json!(["handed_over", "cancelled"])
    );
    let message = refused.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("handed over") && message.contains("cancelled"),
        "{message}"
    );
    assert!(history_text(&app, number).await.contains(BUYER[0]));
    assert_eq!(app.stored_labels().await.len(), 1);
}

#[tokio::test]
async fn final_orders_lose_their_personal_data_once_the_retention_has_passed() {
    let delivered = || Answer::status(200, json!({"Success": true, "Message": "ok"}));
    let app = TestApp::spawn_with_partner(vec![delivered()]).await;
    // Handed over, its callback delivered.
    let shipped = "mabang-sweep1";
    assert_eq!(app.post_order(&order_with_label(shipped)).await.status, 201);
    app.hand_over(shipped).await;
    app.wait_for_order(shipped, Duration::from_secs(20), |o| {
        o["callback"]["status"] == "delivered"
    })
    .await;
    // Cancelled.
    // Sent without a label: its replay writes the request before the order.
    let cancelled = "mabang-sweep2";
    let mut without_label = sample_order();
    without_label["package"]["order_number"] = json!(cancelled);
    assert_eq!(app.post_order(&without_label).await.status, 201);
    assert_eq!(app.cancel_order(cancelled).await.status, 200);
    // Still in the warehouse: never redacted, however old.
    let packing = "mabang-sweep3";
    assert_eq!(app.post_order(&order_with_label(packing)).await.status, 201);
    let early = app.sweep_personal_data_after(29).await;
    assert_eq!(early.redacted, 0, "nothing is due before the retention");

    let swept = app.sweep_personal_data_after(31).await;

    assert_eq!(swept.redacted, 2, "{swept:?}");
    assert_redacted_but_usable(&app, shipped, &order_with_label(shipped)).await;
    assert_redacted_but_usable(&app, cancelled, &without_label).await;
    assert_eq!(
        app.get_order(shipped).await.body["data"]["tracking_number"],
        "YT4567890123CN"
    );
    assert!(history_text(&app, packing).await.contains(BUYER[0]));
    assert_eq!(
        app.get_order(packing).await.body["data"]["personal_data_redacted_at"],
        Value::Null
    );
    assert!(
        app.stored_labels()
            .await
            .iter()
            .any(|key| key.contains(packing))
    );
}
