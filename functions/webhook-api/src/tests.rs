//! The handler over in-memory ports: what an ERP sees on each route.

use lambda_http::Body;
use lambda_http::http::{Method, Request};
use serde_json::{Value, json};
use shared::auth::key::issue;
use shared::domain::Scope;
use shared::memory::MemoryKeys;
use shared::memory::webhooks::{
    MemoryDeliveries, MemoryDeliveryQueue, MemoryEndpoints, MemoryEventLog,
};
use shared::notify::{Replay, Subscriptions};
use shared::ports::SystemClock;
use shared::webhook::Reach;

use super::*;

type Api = WebhooksApi<
    MemoryEndpoints,
    MemoryDeliveries,
    MemoryEventLog,
    MemoryDeliveryQueue,
    SystemClock,
    MemoryKeys,
>;

/// The API, and a key for client 20, one for client 21 and a warehouse's.
fn api() -> (Api, [String; 3]) {
    let keys = MemoryKeys::default();
    let scopes = [
        Scope::Client("20".into()),
        Scope::Client("21".into()),
        Scope::Warehouse(["mabang".to_owned()].into()),
    ];
    let issued = scopes.map(|scope| {
        let key = issue(scope, false, chrono::Utc::now()).unwrap();
        keys.add(key.record);
        key.key
    });
    let (endpoints, deliveries) = (MemoryEndpoints::default(), MemoryDeliveries::default());
    let subscriptions = Subscriptions::new(endpoints.clone(), deliveries.clone(), Reach::Internet);
    let replay = Replay::new(
        endpoints,
        MemoryEventLog::default(),
        deliveries,
        MemoryDeliveryQueue::default(),
    );
    (
        WebhooksApi::new(subscriptions, replay, keys, SystemClock),
        issued,
    )
}

async fn send(
    api: &Api,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or(Body::Empty, |body| Body::from(body.to_string()));
    let response = api.handle(request.body(body).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let text = String::from_utf8(response.body().to_vec()).unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

const HOOKS: &str = "/apicenter/api/webhooks";

/// Subscribes `https://erp.example.com/` with `key`: the endpoint as
/// created, and its path.
async fn subscribed(api: &Api, key: &str) -> (Value, String) {
    let (_, created) = send(
        api,
        Method::POST,
        HOOKS,
        key,
        Some(json!({"url": "https://erp.example.com/"})),
    )
    .await;
    let path = format!("{HOOKS}/{}", created["data"]["id"].as_str().unwrap());
    (created, path)
}

#[tokio::test]
async fn an_erp_creates_an_endpoint_sees_its_secret_once_and_lists_it_without() {
    let (api, [erp, ..]) = api();
    let (status, created) = send(
        &api,
        Method::POST,
        HOOKS,
        &erp,
        Some(json!({"url": "https://erp.example.com/hooks"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["data"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let (status, listed) = send(&api, Method::GET, HOOKS, &erp, None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"]["endpoints"][0]["id"], created["data"]["id"]);
    assert!(!listed.to_string().contains(&secret), "{listed}");
}

#[tokio::test]
async fn another_clients_endpoint_is_a_404_on_every_route() {
    let (api, [erp, other, _]) = api();
    let (_, path) = subscribed(&api, &other).await;
    for (method, path, body) in [
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"enabled": false}))),
        (Method::DELETE, path.clone(), None),
        (Method::POST, format!("{path}/rotate-secret"), None),
    ] {
        let (status, answer) = send(&api, method.clone(), &path, &erp, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    let (status, _) = send(&api, Method::GET, &path, &other, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_change_a_rotation_and_a_removal_are_answered() {
    let (api, [erp, ..]) = api();
    let (created, path) = subscribed(&api, &erp).await;

    let (status, changed) = send(
        &api,
        Method::PATCH,
        &path,
        &erp,
        Some(json!({"event_types": ["order.shipped"]})),
    )
    .await;
    assert_eq!(
        (status, changed["data"]["event_types"].clone()),
        (200, json!(["order.shipped"]))
    );
    let (status, rotated) = send(
        &api,
        Method::POST,
        &format!("{path}/rotate-secret"),
        &erp,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(rotated["data"]["secret"], created["data"]["secret"]);
    let (status, read) = send(&api, Method::GET, &path, &erp, None).await;
    assert_eq!(status, 200);
    assert_eq!(read["data"]["recent_deliveries"], json!([]));
    assert_eq!(send(&api, Method::DELETE, &path, &erp, None).await.0, 200);
    assert_eq!(send(&api, Method::GET, &path, &erp, None).await.0, 404);
}

#[tokio::test]
async fn a_bad_body_lists_its_problems_and_a_warehouse_key_is_refused() {
    let (api, [erp, _, wms]) = api();
    let (status, refused) = send(
        &api,
        Method::POST,
        HOOKS,
        &erp,
        Some(json!({"url": "http://169.254.169.254/", "event_types": ["order.lost"]})),
    )
    .await;
    assert_eq!(status, 400, "{refused}");
    let fields: Vec<&str> = refused["data"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"url") && fields.contains(&"event_types[0]"),
        "{refused}"
    );
    assert_eq!(send(&api, Method::GET, HOOKS, &wms, None).await.0, 403);
    assert_eq!(send(&api, Method::PUT, HOOKS, &erp, None).await.0, 405);
}

#[tokio::test]
async fn a_replay_needs_a_time_since_and_queues_what_was_missed() {
    let (api, [erp, ..]) = api();
    let (_, endpoint) = subscribed(&api, &erp).await;
    let path = format!("{endpoint}/replay");

    let (status, refused) = send(&api, Method::POST, &path, &erp, None).await;
    assert_eq!(
        (status, refused["data"]["errors"][0]["field"].clone()),
        (400, json!("since"))
    );
    let (status, refused) = send(
        &api,
        Method::POST,
        &format!("{path}?since=yesterday&x=1"),
        &erp,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        refused["data"]["errors"].as_array().unwrap().len(),
        2,
        "{refused}"
    );
    let (status, replayed) = send(
        &api,
        Method::POST,
        &format!("{path}?since=2026-12-01T00:00:00Z"),
        &erp,
        None,
    )
    .await;
    assert_eq!(
        (status, replayed["data"]["queued"].clone()),
        (202, json!(0))
    );
}
