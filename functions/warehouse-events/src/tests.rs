//! The handler over in-memory ports: what a warehouse sees for each route
//! and each kind of error. Orders are created through the order API, as
//! an ERP creates them.

use std::sync::Arc;

use lambda_http::Body;
use lambda_http::http::{Method, Request};
use serde_json::{Value, json};

use order_intake::OrderApi;
use shared::auth::key::issue;
use shared::config::Warehouses;
use shared::domain::Scope;
use shared::memory::{MemoryKeys, MemoryLabels, MemoryStore};
use shared::ports::SystemClock;

use super::*;

const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");
const EVENTS: &str = "/apicenter/api/order/mabang-test002/events";

type TestApi = EventsApi<Arc<MemoryStore>, Arc<MemoryLabels>, SystemClock, Arc<MemoryKeys>>;

/// The warehouse API beside an order API on the same fakes, with the
/// sample order created; a warehouse key for `mabang` and the ERP's key.
async fn api() -> (TestApi, String, String) {
    let (store, labels, keys) = (
        Arc::<MemoryStore>::default(),
        Arc::<MemoryLabels>::default(),
        Arc::<MemoryKeys>::default(),
    );
    let now = chrono::Utc::now();
    let erp = issue(Scope::Client("20".into()), false, now).unwrap();
    let wms = issue(Scope::Warehouse(["mabang".to_owned()].into()), false, now).unwrap();
    keys.add(erp.record);
    keys.add(wms.record);
    let warehouses = Warehouses::from_json(
        r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
    )
    .unwrap();
    let orders = OrderApi::with_ports(
        store.clone(),
        labels.clone(),
        keys.clone(),
        warehouses,
        SystemClock,
    );
    let created = orders
        .handle(
            Request::builder()
                .method(Method::POST)
                .uri("/apicenter/api/order")
                .header("authorization", format!("Bearer {}", erp.key))
                .header("content-type", "application/json")
                .body(Body::from(SAMPLE))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let api = EventsApi::with_ports(store, labels, keys, SystemClock);
    (api, wms.key, erp.key)
}

/// The status, `Allow` header and JSON body of an answer.
async fn send(
    api: &TestApi,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (u16, Option<String>, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or(Body::Empty, |body| Body::from(body.to_string()));
    let response = api.handle(request.body(body).unwrap()).await.unwrap();
    let allow = response
        .headers()
        .get("allow")
        .map(|value| value.to_str().unwrap().to_owned());
    let Body::Text(text) = response.body() else {
        panic!("a JSON text body");
    };
    (
        response.status().as_u16(),
        allow,
        serde_json::from_str(text.as_str()).unwrap(),
    )
}

/// A warehouse reporting `event` on the sample order with `key`.
async fn report(api: &TestApi, key: &str, event: &Value) -> (u16, Option<String>, Value) {
    send(api, Method::POST, EVENTS, key, Some(event)).await
}

/// The answer to `second`, reported by the warehouse after `first`.
async fn after(first: &Value, second: &Value) -> (u16, Value) {
    let (api, wms, _) = api().await;
    report(&api, &wms, first).await;
    let (status, _, body) = report(&api, &wms, second).await;
    (status, body)
}

/// An event that happened `minutes_ago` (events must fall between the
/// order's receipt, less a day, and now).
fn event(id: &str, kind: &str, minutes_ago: i64) -> Value {
    let at = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    json!({"event_id": id, "type": kind, "occurred_at": at.to_rfc3339()})
}

#[tokio::test]
async fn an_event_moves_the_order_and_its_repeat_changes_nothing() {
    let (api, wms, _) = api().await;
    let allocated = event("e-1", "allocated", 90);
    let (status, _, moved) = report(&api, &wms, &allocated).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["message"], "event applied");
    assert_eq!(moved["data"]["status"], "allocated");

    let (status, _, again) = report(&api, &wms, &allocated).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["message"], "event already received; nothing changed");
}

#[tokio::test]
async fn an_invalid_event_is_400_listing_its_problems() {
    let (api, wms, _) = api().await;
    let bad = json!({"event_id": "", "type": "teleported"});
    let (status, _, body) = report(&api, &wms, &bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]["errors"].as_array().unwrap().len() >= 2,
        "{body}"
    );
}

#[tokio::test]
async fn an_older_event_keeps_the_status_and_an_impossible_step_is_409_naming_it() {
    // (first event, second event) → the second's status, and where the body names the order's status.
    let cases = [
        (
            event("e-2", "packed", 30),
            event("e-1", "allocated", 90),
            200,
            "status",
            "packed",
        ),
        (
            event("c", "cancelled", 60),
            event("p", "packed", 30),
            409,
            "current_status",
            "cancelled",
        ),
    ];
    for (first, second, status, field, current) in cases {
        let (got, body) = after(&first, &second).await;
        assert_eq!(got, status, "{body}");
        assert_eq!(body["data"][field], current, "{body}");
    }
}

#[tokio::test]
async fn an_erp_key_is_403_and_an_unknown_order_is_404() {
    let (api, wms, erp) = api().await;
    let allocated = event("e-1", "allocated", 60);
    let (status, _, _) = report(&api, &erp, &allocated).await;
    assert_eq!(status, 403);
    let path = "/apicenter/api/order/nowhere/events";
    let (status, _, _) = send(&api, Method::POST, path, &wms, Some(&allocated)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn wrong_methods_are_405_and_other_paths_404() {
    let (api, wms, _) = api().await;
    let (status, allow, _) = send(&api, Method::GET, EVENTS, &wms, None).await;
    assert_eq!((status, allow.as_deref()), (405, Some("POST")));
    let label = "/apicenter/api/order/mabang-test002/label";
    let (status, allow, _) = send(&api, Method::POST, label, &wms, None).await;
    assert_eq!((status, allow.as_deref()), (405, Some("GET, HEAD")));
    let (status, _, _) = send(&api, Method::GET, "/apicenter/api/order", &wms, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_order_without_a_label_has_no_label_to_fetch() {
    let (api, wms, _) = api().await;
    let label = "/apicenter/api/order/mabang-test002/label";
    let (status, _, body) = send(&api, Method::GET, label, &wms, None).await;
    assert_eq!(status, 404, "{body}");
}

/// A key table that never answers (a stalled connection).
#[derive(Debug)]
struct KeysStalled;

impl KeyStore for KeysStalled {
    async fn find(
        &self,
        _key_hash: &str,
    ) -> Result<Option<shared::domain::ApiKeyRecord>, shared::error::StoreError> {
        std::future::pending().await
    }

    async fn spend_signature(
        &self,
        _: &str,
        _: &shared::domain::SignedRequest,
    ) -> Result<bool, shared::error::StoreError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn an_event_storage_does_not_answer_is_503_with_retry_after_at_its_deadline() {
    let deadline = std::time::Duration::from_millis(300);
    let api = EventsApi::with_ports(
        Arc::<MemoryStore>::default(),
        Arc::<MemoryLabels>::default(),
        KeysStalled,
        SystemClock,
    )
    .with_answer_by(deadline);
    let request = Request::builder()
        .method(Method::POST)
        .uri(EVENTS)
        .header("authorization", "Bearer wk_any")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"event_id": "e-1", "type": "allocated"}"#))
        .unwrap();

    let answered = tokio::time::timeout(deadline * 10, api.handle(request)).await;

    let response = answered
        .expect("an answer soon after the deadline")
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
}
