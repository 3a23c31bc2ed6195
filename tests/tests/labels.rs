//! Inline labels: stored in the labels bucket (S3 on the emulator), shown to
//! the ERP as size and SHA-256, fetched by the warehouse through a short-lived
//! link, byte for byte.

use base64::Engine as _;
use integration_tests::{TestApp, sample_order};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A label of `size` bytes that is not all the same byte.
fn label(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    let mut state = 0x2545_u32;
    while bytes.len() < size {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        bytes.push(state.to_be_bytes()[1]);
    }
    bytes
}

fn order_with(bytes: &[u8]) -> serde_json::Value {
    let mut order = sample_order();
    order["logistics_provider"]["label_base64"] =
        json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    order
}

/// What the label link serves (fetched without credentials, as a label
/// printer would).
async fn follow(app: &TestApp, order_number: &str) -> Vec<u8> {
    let reply = app.get_label(order_number).await;
    assert_eq!(reply.status, 302, "{:#}", reply.body);
    let location = reply.headers["location"].to_str().expect("a location");
    assert_eq!(reply.body["data"]["url"], location);
    let client = adapters::https::reqwest_builder()
        .and_then(|builder| Ok(builder.build()?))
        .expect("an HTTP client");
    let response = client.get(location).send().await.expect("the link answers");
    assert!(response.status().is_success(), "{}", response.status());
    response.bytes().await.expect("the label").to_vec()
}

#[tokio::test]
async fn a_two_megabyte_label_round_trips_byte_for_byte() {
    let app = TestApp::spawn().await;
    let bytes = label(2 * 1024 * 1024);

    let created = app.post_order(&order_with(&bytes)).await;

    assert_eq!(created.status, 201, "{:#}", created.body);
    let shown = &created.body["data"]["label"];
    assert_eq!(shown["bytes"], bytes.len());
    assert_eq!(
        shown["sha256"],
        shared::hex::encode(&Sha256::digest(&bytes))
    );
    assert!(
        !created.body.to_string().contains("label_base64"),
        "the ERP's view never carries the label itself"
    );
    assert_eq!(follow(&app, "mabang-test002").await, bytes);
}

#[tokio::test]
async fn a_conflicting_order_never_replaces_the_stored_label() {
    let app = TestApp::spawn().await;
    let first = label(50_000);
    assert_eq!(app.post_order(&order_with(&first)).await.status, 201);

    let other = app.post_order(&order_with(&label(60_000))).await;

    assert_eq!(other.status, 409, "{:#}", other.body);
    assert_eq!(follow(&app, "mabang-test002").await, first);
}

#[tokio::test]
async fn a_refused_create_leaves_nothing_in_the_bucket() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&order_with(&label(1000))).await.status, 201);
    let stored = app.stored_labels().await;
    let mut foreign = order_with(&label(3000));
    foreign["client_code"] = json!("21");
    let other_client = app.client_key("21").await;

    let taken = app.post_order_as(&other_client, &foreign).await;
    let conflicting = app.post_order(&order_with(&label(2000))).await;
    let replayed = app.post_order(&order_with(&label(1000))).await;

    assert_eq!(taken.status, 409, "{:#}", taken.body);
    assert_eq!(conflicting.status, 409, "{:#}", conflicting.body);
    assert_eq!(replayed.status, 200, "{:#}", replayed.body);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(app.stored_labels().await, stored);
}

#[tokio::test]
async fn only_a_warehouse_key_fetches_a_label_and_only_an_existing_one() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&order_with(&label(1000))).await.status, 201);
    let mut plain = sample_order();
    plain["package"]["order_number"] = json!("no-label-1");
    assert_eq!(app.post_order(&plain).await.status, 201);

    let by_erp = app
        .request(
            reqwest::Method::GET,
            "/apicenter/api/order/mabang-test002/label",
        )
        .await;
    let without = app.get_label("no-label-1").await;

    assert_eq!(by_erp.status, 403, "{:#}", by_erp.body);
    assert_eq!(without.status, 404, "{:#}", without.body);
}

#[tokio::test]
async fn a_body_over_the_lambda_payload_cap_is_a_413_pointing_to_label_url() {
    let app = TestApp::spawn().await;
    let cap = 6 * 1024 * 1024 - 64 * 1024;
    let mut order = sample_order();
    order["logistics_provider"]["label_base64"] = json!("A".repeat(cap));

    let reply = app.post_order(&order).await;

    assert_eq!(reply.status, 413);
    assert_eq!(reply.body["data"]["limit_bytes"], cap);
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("label_url")
    );
}
