//! Order intake end to end: HTTP → API Gateway v2 event → handler → DynamoDB Local.

use futures::future::join_all;
use integration_tests::{Reply, SAMPLE_ORDER_AS_PUBLISHED, TestApp, sample_order};
use reqwest::Method;
use serde_json::{Value, json};

const SPEC_201_FIELDS: [&str; 16] = [
    "order_number",
    "status",
    "number_of_package",
    "total_weight",
    "logistic_provider_code",
    "status_message",
    "shortage_at",
    "cancel_at",
    "allocate_at",
    "pack_at",
    "handover_at",
    "tracking_number",
    "logistics_message",
    "sorting_code",
    "sorting_no",
    "items",
];

#[tokio::test]
async fn the_spec_sample_is_created_pending_with_every_spec_field() {
    let app = TestApp::spawn().await;

    let reply = app.post_order(&sample_order()).await;

    assert_eq!(reply.status, 201, "{:#}", reply.body);
    assert_eq!(reply.body["code"], 201);
    let data = &reply.body["data"];
    for field in SPEC_201_FIELDS {
        assert!(data.get(field).is_some(), "data lacks {field}: {data:#}");
    }
    assert_eq!(data["order_number"], "mabang-test002");
    assert_eq!(data["status"], "pending");
    assert_eq!(data["allocate_at"], Value::Null);
    assert_eq!(data["items"], json!(["-ALB-908", "#"]));
    assert_eq!(app.stored_items().await.len(), 1);
}

#[tokio::test]
async fn a_created_order_reads_back_with_the_same_data() {
    let app = TestApp::spawn().await;
    let created = app.post_order(&sample_order()).await;

    let read = app.get_order("mabang-test002").await;

    assert_eq!(read.status, 200);
    assert_eq!(read.body["data"], created.body["data"]);
}

#[tokio::test]
async fn a_replayed_order_returns_the_stored_result() {
    let app = TestApp::spawn().await;
    let created = app.post_order(&sample_order()).await;

    let replay = app.post_order(&sample_order()).await;

    assert_eq!(replay.status, 200, "{:#}", replay.body);
    assert_eq!(replay.body["data"], created.body["data"]);
    assert_eq!(app.stored_items().await.len(), 1);
}

#[tokio::test]
async fn a_changed_order_under_the_same_number_is_a_conflict_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let created = app.post_order(&sample_order()).await;
    let before = app.stored_items().await;
    let history = app.stored_history().await;
    let mut changed = sample_order();
    changed["receiver"]["city"] = json!("Manila");

    let reply = app.post_order(&changed).await;

    assert_eq!(reply.status, 409, "{:#}", reply.body);
    assert_eq!(reply.body["data"]["order_number"], "mabang-test002");
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("mabang-test002")
    );
    assert_eq!(app.stored_items().await, before);
    // The refused request's own history item is gone again.
    assert_eq!(app.stored_history().await, history);
    assert_eq!(
        app.get_order("mabang-test002").await.body["data"],
        created.body["data"]
    );
}

#[tokio::test]
async fn fifty_concurrent_identical_posts_store_one_order_and_agree() {
    let app = TestApp::spawn().await;
    let order = sample_order();

    let replies = join_all((0..50).map(|_| app.post_order(&order))).await;

    let created = replies.iter().filter(|r| r.status == 201).count();
    let replayed = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        (created, replayed),
        (1, 49),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        replies
            .iter()
            .all(|r| r.body["data"] == replies[0].body["data"])
    );
    assert_eq!(app.stored_items().await.len(), 1);
}

#[tokio::test]
async fn real_time_response_rejects_findings_with_422_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let mut order = sample_order();
    order["real_time_response"] = json!(true);
    order["centre_code"] = json!("atlantis");
    order["receiver"]["country_code"] = json!("XX");
    order["items"][0]["currency"] = json!("PESO");
    order["receiver"]["email"] = json!("not-an-email");

    let reply = app.post_order(&order).await;

    assert_eq!(reply.status, 422, "{:#}", reply.body);
    let fields = reply.error_fields();
    for expected in [
        "centre_code",
        "receiver.country_code",
        "receiver.email",
        "sender.country_code",
        "sender.email",
        "items[0].currency",
    ] {
        assert!(
            fields.contains(&expected.to_owned()),
            "{expected} missing from {fields:?}"
        );
    }
    assert!(app.stored_items().await.is_empty());
}

/// The order's `status_message` (where findings are recorded) holds `finding`.
fn assert_status_message_says(reply: &Reply, finding: &str) {
    let message = reply.body["data"]["status_message"]
        .as_str()
        .expect("a status message");
    assert!(message.contains(finding), "{message}");
}

#[tokio::test]
async fn without_real_time_response_findings_are_recorded_in_status_message() {
    let app = TestApp::spawn().await;
    let mut order = sample_order();
    order["centre_code"] = json!("atlantis");

    let reply = app.post_order(&order).await;

    assert_eq!(reply.status, 201);
    assert_status_message_says(&reply, "centre_code: unknown warehouse \"atlantis\"");
}

#[tokio::test]
async fn a_clean_order_passes_real_time_validation() {
    let app = TestApp::spawn().await;
    let mut order = sample_order();
    order["real_time_response"] = json!(true);
    order["sender"] = json!({"name": "Mabang WH", "country_code": "PH", "phone": "+63 2 8123 4567", "email": "wh@example.com"});

    let reply = app.post_order(&order).await;

    assert_eq!(reply.status, 201, "{:#}", reply.body);
    assert_eq!(reply.body["data"]["status_message"], Value::Null);
}

/// An app holding the sample order, as client 20 sent it.
async fn app_with_the_sample() -> TestApp {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    app
}

/// The sample's marketplace order under another order number.
fn renumbered(number: &str) -> Value {
    let mut order = sample_order();
    order["package"]["order_number"] = json!(number);
    order
}

#[tokio::test]
async fn the_same_marketplace_order_under_a_new_number_is_found_through_the_index() {
    let app = app_with_the_sample().await;
    let mut again = renumbered("mabang-test003");
    again["real_time_response"] = json!(true);
    again["sender"] = Value::Null;

    let reply = app.post_order(&again).await;

    assert_eq!(reply.status, 422, "{:#}", reply.body);
    assert_eq!(reply.error_fields(), ["platform_order_number"]);
    assert!(
        reply.body["data"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("mabang-test002")
    );
}

#[tokio::test]
async fn a_duplicate_marketplace_order_is_accepted_and_its_finding_is_stored_with_it() {
    let app = app_with_the_sample().await;
    let again = renumbered("mabang-test003");

    let created = app.post_order(&again).await;
    let stored = app.get_order("mabang-test003").await;

    assert_eq!(created.status, 201, "{:#}", created.body);
    for reply in [&created, &stored] {
        assert_status_message_says(
            reply,
            "platform_order_number: client 20 already sent this marketplace order as mabang-test002",
        );
    }
}

#[tokio::test]
async fn another_clients_marketplace_order_number_is_not_a_duplicate() {
    let app = app_with_the_sample().await;
    let mut other_client = renumbered("mabang-test004");
    other_client["client_code"] = json!("21");
    other_client["real_time_response"] = json!(true);
    other_client["sender"] = Value::Null;

    let key = app.client_key("21").await;
    assert_eq!(app.post_order_as(&key, &other_client).await.status, 201);
}

#[tokio::test]
async fn the_spec_sample_as_published_gets_a_400_naming_the_trailing_comma() {
    let app = TestApp::spawn().await;

    let reply = app
        .post_raw(SAMPLE_ORDER_AS_PUBLISHED, Some("application/json"))
        .await;

    assert_eq!(reply.status, 400);
    let message = reply.body["data"]["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("line 17, column 1") && message.contains("trailing comma"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_order_is_404_in_the_envelope() {
    let app = TestApp::spawn().await;

    let reply = app.get_order("never-sent").await;

    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["code"], 404);
    assert_eq!(reply.body["data"], Value::Null);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = TestApp::spawn().await;

    assert_eq!(
        app.request(Method::GET, "/apicenter/api/nothing")
            .await
            .status,
        404
    );
    assert_eq!(app.request(Method::GET, "/").await.status, 404);
    let wrong = app.request(Method::DELETE, "/apicenter/api/order/x").await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.headers["allow"], "GET, HEAD");
    assert_eq!(
        app.request(Method::GET, "/apicenter/api/order")
            .await
            .status,
        405
    );
}
