//! The handler over in-memory ports: what an ERP sees for each route and
//! each kind of error.

use std::sync::Arc;

use lambda_http::Body;
use lambda_http::http::{Method, Request};
use serde_json::{Value, json};

use shared::auth::key::issue;
use shared::domain::{ApiKeyRecord, Scope, SignedRequest};
use shared::error::StoreError;
use shared::memory::{MemoryKeys, MemoryLabels, MemoryMetrics, MemoryStore};
use shared::metrics::Metric;
use shared::ports::{KeyStore, SystemClock};

use super::*;

const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");

type TestApi<K> = OrderApi<Arc<MemoryStore>, Arc<MemoryLabels>, SystemClock, K>;

fn warehouses() -> Warehouses {
    Warehouses::from_json(
        r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
    )
    .unwrap()
}

/// An API over `store`, and a key for each of `scopes`.
fn api_over(store: &Arc<MemoryStore>, scopes: Vec<Scope>) -> (TestApi<MemoryKeys>, Vec<String>) {
    let keys = MemoryKeys::default();
    let mut issued = Vec::new();
    for scope in scopes {
        let key = issue(scope, false, chrono::Utc::now()).unwrap();
        keys.add(key.record);
        issued.push(key.key);
    }
    let api = OrderApi::with_ports(
        store.clone(),
        Arc::default(),
        keys,
        warehouses(),
        SystemClock,
    );
    (api, issued)
}

/// The API over fresh fakes, and an ERP key and a warehouse key for it.
fn api() -> (TestApi<MemoryKeys>, String, String) {
    let warehouse = Scope::Warehouse(["mabang".to_owned()].into());
    let (api, keys) = api_over(&Arc::default(), vec![Scope::Client("20".into()), warehouse]);
    let [erp, wms] = <[String; 2]>::try_from(keys).unwrap();
    (api, erp, wms)
}

/// An API over `store` with one key, of client `client`.
fn client_api(store: &Arc<MemoryStore>, client: &str) -> (TestApi<MemoryKeys>, String) {
    let (api, mut keys) = api_over(store, vec![Scope::Client(client.into())]);
    (api, keys.remove(0))
}

/// The status, `Allow`/`WWW-Authenticate`/`Retry-After` headers and JSON body of an answer.
type Answer = (u16, lambda_http::http::HeaderMap, Value);

async fn send<K: KeyStore>(
    api: &TestApi<K>,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or(Body::Empty, |body| Body::from(body.to_string()));
    let response = api.handle(request.body(body).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = match response.body() {
        Body::Text(text) => serde_json::from_str(text).unwrap(),
        other => panic!("a JSON text body, not {other:?}"),
    };
    (status, headers, body)
}

/// An ERP posting `order` with `key`.
async fn post<K: KeyStore>(api: &TestApi<K>, key: Option<&str>, order: &Value) -> Answer {
    send(api, Method::POST, ORDER, key, Some(order)).await
}

/// A bodiless request with `key`.
async fn call<K: KeyStore>(api: &TestApi<K>, method: Method, path: &str, key: &str) -> Answer {
    send(api, method, path, Some(key), None).await
}

/// The status and the `message` of an answer.
fn status_and_message((status, _, body): &Answer) -> (u16, Option<&str>) {
    (*status, body["message"].as_str())
}

fn sample() -> Value {
    serde_json::from_str(SAMPLE).unwrap()
}

const ORDER: &str = "/apicenter/api/order";

#[tokio::test]
async fn a_created_order_is_201_then_read_back_and_replayed_as_stored() {
    let (api, erp, _) = api();
    let (status, _, created) = post(&api, Some(&erp), &sample()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["code"], 201);
    assert_eq!(created["data"]["order_number"], "mabang-test002");

    let (status, _, replayed) = post(&api, Some(&erp), &sample()).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["data"], created["data"]);

    let path = format!("{ORDER}/mabang-test002");
    let (status, _, read) = call(&api, Method::GET, &path, &erp).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"]["order_number"], "mabang-test002");

    let polled = "/apicenter/api/orders?order_numbers=mabang-test002,nowhere";
    let (status, _, page) = call(&api, Method::GET, polled, &erp).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["message"], "1 order(s), 1 missing");
}

#[tokio::test]
async fn a_cancelled_order_says_so_and_a_repeat_is_already_cancelled() {
    let (api, erp, _) = api();
    post(&api, Some(&erp), &sample()).await;
    let path = format!("{ORDER}/mabang-test002/cancel");
    assert_eq!(
        status_and_message(&call(&api, Method::POST, &path, &erp).await),
        (200, Some("cancelled"))
    );
    assert_eq!(
        status_and_message(&call(&api, Method::POST, &path, &erp).await),
        (200, Some("already cancelled"))
    );
}

#[tokio::test]
async fn a_request_without_a_key_is_401_asking_for_a_bearer_key() {
    let (api, _, _) = api();
    let (status, headers, _) = post(&api, None, &sample()).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn a_warehouse_key_is_403_on_the_order_api_even_for_its_own_orders() {
    let (api, erp, wms) = api();
    post(&api, Some(&erp), &sample()).await;
    let (status, _, body) = post(&api, Some(&wms), &sample()).await;
    assert_eq!(status, 403, "{body}");
    let path = format!("{ORDER}/mabang-test002");
    let (status, _, body) = call(&api, Method::GET, &path, &wms).await;
    assert_eq!(
        status, 403,
        "a warehouse reads its orders on its own API: {body}"
    );
}

#[tokio::test]
async fn an_invalid_order_is_400_listing_its_problems_by_path() {
    let (api, erp, _) = api();
    let mut order = sample();
    order["receiver"]["country_code"] = json!(null);
    order["package"]["order_number"] = json!("");
    let (status, _, body) = post(&api, Some(&erp), &order).await;
    assert_eq!(status, 400, "{body}");
    let fields: Vec<&str> = body["data"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|error| error["field"].as_str())
        .collect();
    assert!(fields.contains(&"package.order_number"), "{fields:?}");
    assert!(fields.contains(&"receiver.country_code"), "{fields:?}");
}

#[tokio::test]
async fn a_body_sent_as_text_is_415() {
    let (api, erp, _) = api();
    let request = Request::builder()
        .method(Method::POST)
        .uri(ORDER)
        .header("authorization", format!("Bearer {erp}"))
        .header("content-type", "text/plain")
        .body(Body::from(SAMPLE))
        .unwrap();
    let response = api.handle(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 415);
}

#[tokio::test]
async fn the_same_number_with_other_content_is_409() {
    let (api, erp, _) = api();
    post(&api, Some(&erp), &sample()).await;
    let mut changed = sample();
    changed["desc"] = json!("another order");
    let (status, _, body) = post(&api, Some(&erp), &changed).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["data"]["order_number"], "mabang-test002");
}

#[tokio::test]
async fn a_number_another_client_holds_is_409_and_counted_for_the_alarm() {
    let store = Arc::<MemoryStore>::default();
    let metrics = Arc::<MemoryMetrics>::default();
    let (first, first_key) = client_api(&store, "20");
    let (second, second_key) = client_api(&store, "21");
    let (first, second) = (
        first.with_metrics(metrics.clone()),
        second.with_metrics(metrics.clone()),
    );
    let created = post(&first, Some(&first_key), &sample()).await;
    let replayed = post(&first, Some(&first_key), &sample()).await;
    assert_eq!((created.0, replayed.0), (201, 200));
    assert!(metrics.recorded().is_empty(), "a replay is no collision");

    let mut theirs = sample();
    theirs["client_code"] = json!("21");
    let (status, _, body) = post(&second, Some(&second_key), &theirs).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["message"],
        "order number mabang-test002 is taken; use another order_number"
    );
    assert_eq!(metrics.recorded(), [Metric::OrderNumberCollision]);
}

#[tokio::test]
async fn an_unknown_order_is_404_and_an_unknown_route_is_404() {
    let (api, erp, _) = api();
    let path = format!("{ORDER}/nowhere");
    let (status, _, _) = call(&api, Method::GET, &path, &erp).await;
    assert_eq!(status, 404);
    assert_eq!(
        status_and_message(&call(&api, Method::GET, "/apicenter/api/nothing", &erp).await),
        (404, Some("no such route"))
    );
}

#[tokio::test]
async fn a_wrong_method_is_405_naming_the_allowed_ones() {
    let (api, erp, _) = api();
    let (status, headers, _) = call(&api, Method::DELETE, ORDER, &erp).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
    let path = format!("{ORDER}/mabang-test002");
    let (status, headers, _) = call(&api, Method::POST, &path, &erp).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET, HEAD");
}

#[tokio::test]
async fn a_bad_poll_parameter_is_400_naming_it() {
    let (api, erp, _) = api();
    let path = "/apicenter/api/orders?limit=ten";
    let (status, _, body) = call(&api, Method::GET, path, &erp).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["data"]["errors"][0]["field"], "limit");
}

/// A key table that is down.
#[derive(Debug)]
struct KeysDown;

impl KeyStore for KeysDown {
    async fn find(&self, _key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Err(StoreError::Unavailable("throttled".into()))
    }

    async fn spend_signature(&self, _: &str, _: &SignedRequest) -> Result<bool, StoreError> {
        Err(StoreError::Unavailable("throttled".into()))
    }
}

#[tokio::test]
async fn a_store_that_is_down_is_503_with_retry_after_and_no_cause() {
    let api = OrderApi::with_ports(
        Arc::<MemoryStore>::default(),
        Arc::<MemoryLabels>::default(),
        KeysDown,
        warehouses(),
        SystemClock,
    );
    let (status, headers, body) = post(&api, Some("wk_any"), &sample()).await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert!(!body.to_string().contains("throttled"), "{body}");
}

/// A key table that never answers (a stalled connection).
#[derive(Debug)]
struct KeysStalled;

impl KeyStore for KeysStalled {
    async fn find(&self, _key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        std::future::pending().await
    }

    async fn spend_signature(&self, _: &str, _: &SignedRequest) -> Result<bool, StoreError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_request_storage_does_not_answer_is_503_with_retry_after_at_its_deadline() {
    let deadline = std::time::Duration::from_millis(300);
    let api = OrderApi::with_ports(
        Arc::<MemoryStore>::default(),
        Arc::<MemoryLabels>::default(),
        KeysStalled,
        warehouses(),
        SystemClock,
    )
    .with_answer_by(deadline);

    let answered = tokio::time::timeout(deadline * 10, post(&api, Some("wk_any"), &sample())).await;

    let (status, headers, _) = answered.expect("an answer soon after the deadline");
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
}
