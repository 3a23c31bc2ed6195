//! API keys, signatures and tenant isolation, end to end.

use integration_tests::{Reply, TestApp, sample_order};
use reqwest::Method;
use serde_json::json;
use shared::auth::signature::sign;
use shared::domain::Scope;

const ORDER: &str = "/apicenter/api/order";

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A new signing key of client 20, and its secret.
async fn signing_key(app: &TestApp) -> (String, String) {
    let issued = app
        .stack
        .issue_key(Scope::Client("20".into()), None, true)
        .await
        .expect("a signing key");
    let secret = issued.record.signing_secret.clone().expect("a secret");
    (issued.key, secret)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The headers of a request of the key `auth` (a bearer value) signed with
/// `secret` at `ts` over `method`, `path` and `body`.
fn signed(
    auth: &str,
    secret: &str,
    ts: i64,
    (method, path, body): (&str, &str, &[u8]),
) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", auth.to_owned()),
        ("x-signature-timestamp", ts.to_string()),
        ("x-signature", sign(secret, ts, method, path, body)),
    ]
}

/// `headers` as [`TestApp::send`] takes them.
fn borrowed<'a>(headers: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// The sample order's status, as its client reads it.
async fn sample_status(app: &TestApp) -> serde_json::Value {
    app.get_order("mabang-test002").await.body["data"]["status"].clone()
}

/// An `allocated` event for the sample order, sent with `key`.
async fn allocated_event_as(app: &TestApp, key: &str) -> Reply {
    let event =
        json!({"event_id": "e", "type": "allocated", "occurred_at": "2026-11-20T08:00:00Z"});
    app.post_json_as(key, &format!("{ORDER}/mabang-test002/events"), &event)
        .await
}

#[tokio::test]
async fn every_route_answers_401_without_a_key() {
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&sample_order()).unwrap();

    for (method, path) in [
        (Method::POST, ORDER.to_owned()),
        (Method::GET, format!("{ORDER}/mabang-test002")),
        (Method::POST, format!("{ORDER}/mabang-test002/cancel")),
        (
            Method::POST,
            format!("{ORDER}/mabang-test002/callback/retry"),
        ),
        (Method::POST, format!("{ORDER}/mabang-test002/events")),
        (Method::GET, "/apicenter/api/nothing".to_owned()),
    ] {
        let reply = app.send(method.clone(), &path, &[], Some(&body)).await;
        assert_eq!(reply.status, 401, "{method} {path}: {}", reply.body);
        assert_eq!(reply.headers["www-authenticate"], "Bearer");
        assert_eq!(reply.body["code"], 401);
    }
    assert!(app.stored_items().await.is_empty());
}

#[tokio::test]
async fn a_wrong_key_is_401_and_x_api_key_works_like_bearer() {
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&sample_order()).unwrap();

    let wrong = app
        .send(
            Method::POST,
            ORDER,
            &[("authorization", "Bearer wk_not_a_key")],
            Some(&body),
        )
        .await;
    let via_header = app
        .send(
            Method::POST,
            ORDER,
            &[("x-api-key", &app.erp_key)],
            Some(&body),
        )
        .await;

    assert_eq!(wrong.status, 401);
    assert_eq!(via_header.status, 201, "{}", via_header.body);
}

#[tokio::test]
async fn a_revoked_key_is_401_and_a_rotated_one_works_until_its_grace_period_ends() {
    let app = TestApp::spawn().await;
    let issued = app
        .stack
        .issue_key(Scope::Client("20".into()), None, false)
        .await
        .unwrap();
    let keys = app.stack.keys().unwrap();
    let path = format!("{ORDER}/mabang-test002");
    let auth = bearer(&issued.key);

    // Rotated: still valid inside its grace period, refused after it.
    keys.retire(
        &issued.record.key_hash,
        Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        app.send(Method::GET, &path, &[("authorization", &auth)], None)
            .await
            .status,
        404
    );
    keys.retire(
        &issued.record.key_hash,
        Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        app.send(Method::GET, &path, &[("authorization", &auth)], None)
            .await
            .status,
        401
    );

    let revoked = app
        .stack
        .issue_key(Scope::Client("20".into()), None, false)
        .await
        .unwrap();
    keys.retire(&revoked.record.key_hash, None, Some(chrono::Utc::now()))
        .await
        .unwrap();
    let reply = app
        .send(
            Method::GET,
            &path,
            &[("authorization", &bearer(&revoked.key))],
            None,
        )
        .await;
    assert_eq!(reply.status, 401);
    assert!(reply.body["message"].as_str().unwrap().contains("revoked"));
}

#[tokio::test]
async fn a_signing_client_must_sign_the_exact_body_within_five_minutes() {
    let app = TestApp::spawn().await;
    let (key, secret) = signing_key(&app).await;
    let auth = bearer(&key);
    let body = serde_json::to_vec(&sample_order()).unwrap();
    let post = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let app = &app;
        async move {
            app.send(Method::POST, ORDER, &borrowed(&headers), Some(&body))
                .await
        }
    };

    let unsigned = post(vec![("authorization", auth.clone())], body.clone()).await;
    let stale = now() - 301;
    let too_old = post(
        signed(&auth, &secret, stale, ("POST", ORDER, &body)),
        body.clone(),
    )
    .await;
    let mut changed = sample_order();
    changed["desc"] = json!("changed in transit");
    let tampered = post(
        signed(&auth, &secret, now(), ("POST", ORDER, &body)),
        serde_json::to_vec(&changed).unwrap(),
    )
    .await;
    let good = post(
        signed(&auth, &secret, now(), ("POST", ORDER, &body)),
        body.clone(),
    )
    .await;

    assert_eq!(unsigned.status, 401);
    assert_eq!(too_old.status, 401);
    assert!(too_old.body["message"].as_str().unwrap().contains("300"));
    assert_eq!(tampered.status, 401);
    assert!(
        tampered.body["message"]
            .as_str()
            .unwrap()
            .contains("does not match")
    );
    assert_eq!(good.status, 201, "{}", good.body);
}

#[tokio::test]
async fn a_client_cannot_create_for_another_client() {
    let app = TestApp::spawn().await;
    let mut order = sample_order();
    order["client_code"] = json!("21");

    let reply = app.post_order(&order).await;

    assert_eq!(reply.status, 403);
    assert!(app.stored_items().await.is_empty());
}

#[tokio::test]
async fn another_clients_order_is_404_to_read_cancel_and_replay_exactly_like_a_missing_one() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let other = bearer(&app.client_key("21").await);

    for (method, path) in [
        (Method::GET, format!("{ORDER}/mabang-test002")),
        (Method::POST, format!("{ORDER}/mabang-test002/cancel")),
        (
            Method::POST,
            format!("{ORDER}/mabang-test002/callback/retry"),
        ),
    ] {
        let foreign = app
            .send(method.clone(), &path, &[("authorization", &other)], None)
            .await;
        let missing_path = path.replace("mabang-test002", "never-sent");
        let missing = app
            .send(
                method.clone(),
                &missing_path,
                &[("authorization", &other)],
                None,
            )
            .await;
        assert_eq!(foreign.status, 404, "{method} {path}");
        assert_eq!(
            foreign.body["message"]
                .as_str()
                .unwrap()
                .replace("mabang-test002", "X"),
            missing.body["message"]
                .as_str()
                .unwrap()
                .replace("never-sent", "X"),
        );
    }
    assert_eq!(sample_status(&app).await, "pending");
}

#[tokio::test]
async fn an_erp_key_cannot_post_events_and_a_warehouse_key_cannot_create_orders() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);

    let erp_on_events = allocated_event_as(&app, &app.erp_key).await;
    let wms_on_orders = app.post_order_as(&app.wms_key, &sample_order()).await;

    assert_eq!(erp_on_events.status, 403);
    assert_eq!(wms_on_orders.status, 403);
    assert_eq!(sample_status(&app).await, "pending");
}

#[tokio::test]
async fn a_warehouse_key_reaches_only_orders_of_its_centres() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let other_warehouse = app
        .stack
        .issue_key(Scope::Warehouse(["lax".to_owned()].into()), None, false)
        .await
        .unwrap()
        .key;

    let reply = allocated_event_as(&app, &other_warehouse).await;

    assert_eq!(reply.status, 404);
    assert_eq!(sample_status(&app).await, "pending");
}

#[tokio::test]
async fn a_signature_for_one_route_is_refused_on_another() {
    let app = TestApp::spawn().await;
    let (key, secret) = signing_key(&app).await;
    let auth = bearer(&key);
    let mut other = sample_order();
    other["package"]["order_number"] = json!("mabang-other");
    for order in [sample_order(), other] {
        assert_eq!(app.post_order(&order).await.status, 201);
    }
    // What an eavesdropper saw: a signed read of one order, with an empty body.
    let read_path = format!("{ORDER}/mabang-test002");
    let seen = signed(&auth, &secret, now(), ("GET", &read_path, b""));
    let headers = borrowed(&seen);

    let mut answers = Vec::new();
    for (method, path) in [
        (Method::GET, format!("{ORDER}/mabang-test002")),
        (Method::POST, format!("{ORDER}/mabang-other/cancel")),
        (Method::GET, format!("{ORDER}/mabang-other")),
    ] {
        answers.push(app.send(method, &path, &headers, None).await);
    }
    let [read, replayed, other_order]: [_; 3] = answers.try_into().expect("three answers");

    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(replayed.status, 401, "{}", replayed.body);
    assert_eq!(other_order.status, 401, "{}", other_order.body);
    assert_eq!(
        app.get_order("mabang-other").await.body["data"]["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_number_held_by_another_client_is_only_said_to_be_taken() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let other = app.client_key("21").await;
    let mut theirs = sample_order();
    theirs["client_code"] = json!("21");
    let mut changed = theirs.clone();
    changed["desc"] = json!("something else");

    let same = app.post_order_as(&other, &theirs).await;
    let different = app.post_order_as(&other, &changed).await;

    for reply in [&same, &different] {
        assert_eq!(reply.status, 409, "{}", reply.body);
        let message = reply.body["message"].as_str().unwrap();
        assert!(message.contains("is taken"), "{message}");
        assert!(!message.contains("content"), "{message}");
    }
    assert_eq!(same.body, different.body);
    assert_eq!(
        app.get_order("mabang-test002").await.body["data"]["client_code"],
        "20"
    );
}

#[tokio::test]
async fn a_key_with_order_prefixes_cannot_squat_numbers_outside_them() {
    let app = TestApp::spawn().await;
    let squatter = app
        .stack
        .issue_key_with_prefixes(Scope::Client("21".into()), None, false, &["shop21-"])
        .await
        .unwrap()
        .key;
    let mut squat = sample_order();
    squat["client_code"] = json!("21");
    let mut own = squat.clone();
    own["package"]["order_number"] = json!("shop21-100");

    let refused = app.post_order_as(&squatter, &squat).await;
    let accepted = app.post_order_as(&squatter, &own).await;
    let owner = app.post_order(&sample_order()).await;

    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.error_fields(), ["package.order_number"]);
    assert_eq!(accepted.status, 201, "{}", accepted.body);
    assert_eq!(owner.status, 201, "{}", owner.body);
}

/// A captured signed replay of a callback, sent again within its window:
/// each replay is a new generation that posts again, so a repeat is refused.
#[tokio::test]
async fn a_signed_callback_replay_sent_again_is_refused_and_posts_nothing_more() {
    let app = TestApp::spawn_with_partner(vec![integration_tests::partner::Answer::status(
        400,
        json!({"Success": false, "Message": "bad"}),
    )])
    .await;
    let failed = |data: &serde_json::Value| integration_tests::callback_is(data, "failed");
    let wait = std::time::Duration::from_secs(20);
    let (key, secret) = signing_key(&app).await;
    app.ship_sample_order("mabang-test002").await;
    app.wait_for_order("mabang-test002", wait, failed).await;
    let path = format!("{ORDER}/mabang-test002/callback/retry");
    let signature = signed(&bearer(&key), &secret, now(), ("POST", &path, b""));
    let headers = borrowed(&signature);

    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(app.send(Method::POST, &path, &headers, None).await);
    }

    let statuses: Vec<u16> = answers.iter().map(|reply| reply.status).collect();
    assert_eq!(statuses, [202, 409, 409], "{:#}", answers[1].body);
    assert!(
        answers[1].body["message"]
            .as_str()
            .is_some_and(|m| m.contains("already received")),
        "{:#}",
        answers[1].body
    );
    // The partner's script refuses the first post only.
    let delivered = |data: &serde_json::Value| integration_tests::callback_is(data, "delivered");
    app.wait_for_order("mabang-test002", wait, delivered).await;
    assert_eq!(
        app.partner_requests().len(),
        2,
        "the first post and one replay"
    );
}

/// Supplying the same callback fields again changes nothing: the order keeps
/// its `updated_at`, so a poller does not see it again.
#[tokio::test]
async fn callback_fields_sent_again_change_nothing() {
    let app = TestApp::spawn().await;
    assert_eq!(app.post_order(&sample_order()).await.status, 201);
    let path = format!("{ORDER}/mabang-test002/callback/fields");
    let fields = json!({"shipping_provider_name": "USPS"});

    let first = app.post_json(&path, &fields).await;
    let again = app.post_json(&path, &fields).await;

    assert_eq!(first.status, 200, "{:#}", first.body);
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(
        first.body["data"]["updated_at"], again.body["data"]["updated_at"],
        "{:#}",
        again.body
    );
}
