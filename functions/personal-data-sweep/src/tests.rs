//! The scheduled function over in-memory ports: what an operator sees from
//! a run (its counts, or an error that trips the function's alarm).

use std::sync::Arc;

use lambda_http::Body;
use lambda_http::http::{Method, Request};

use order_intake::OrderApi;
use shared::auth::key::issue;
use shared::config::Warehouses;
use shared::domain::Scope;
use shared::error::LabelError;
use shared::memory::{MemoryKeys, MemoryLabels, MemoryStore};
use shared::ports::SystemClock;

use super::*;

const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");

/// The clock a month and a day from now: past the default retention.
#[derive(Debug, Clone, Copy)]
struct NextMonth;

impl Clock for NextMonth {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::days(31)
    }
}

/// Labels that cannot be deleted.
#[derive(Debug, Default)]
struct StuckLabels(MemoryLabels);

impl LabelStore for StuckLabels {
    async fn put_label(&self, key: &str, bytes: Vec<u8>, sha256: &str) -> Result<(), LabelError> {
        self.0.put_label(key, bytes, sha256).await
    }

    async fn label_link(&self, key: &str, ttl: std::time::Duration) -> Result<String, LabelError> {
        self.0.label_link(key, ttl).await
    }

    async fn delete_label(&self, _key: &str) -> Result<(), LabelError> {
        Err(LabelError("the bucket is down".into()))
    }
}

/// Creates the sample order (with an inline label) through the order API,
/// then cancels it: a final order, due when the retention has passed.
async fn a_cancelled_order<L: LabelStore>(store: Arc<MemoryStore>, labels: Arc<L>) {
    let keys = Arc::<MemoryKeys>::default();
    let erp = issue(Scope::Client("20".into()), false, chrono::Utc::now()).unwrap();
    keys.add(erp.record);
    let warehouses = Warehouses::from_json(
        r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
    )
    .unwrap();
    let api = OrderApi::with_ports(store, labels, keys, warehouses, SystemClock);
    let mut order: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
    order["logistics_provider"]["label_base64"] = "JVBERi0xLjQK".into();
    for (path, body) in [
        ("/apicenter/api/order", order.to_string()),
        ("/apicenter/api/order/mabang-test002/cancel", String::new()),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("authorization", format!("Bearer {}", erp.key))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        let status = api.handle(request).await.unwrap().status().as_u16();
        assert!(status < 300, "{path}: {status}");
    }
}

#[tokio::test]
async fn a_final_order_past_its_retention_is_redacted_once() {
    let (store, labels) = (
        Arc::<MemoryStore>::default(),
        Arc::<MemoryLabels>::default(),
    );
    a_cancelled_order(store.clone(), labels.clone()).await;
    assert_eq!(labels.keys().len(), 1, "the label was stored");

    let today = PersonalDataSweep::with_ports(
        store.clone(),
        labels.clone(),
        SystemClock,
        chrono::Duration::days(30),
    );
    let early = today.run().await.unwrap();
    assert_eq!((early.redacted, early.failed), (0, 0), "not due yet");

    let later =
        PersonalDataSweep::with_ports(store, labels.clone(), NextMonth, chrono::Duration::days(30));
    let done = later.run().await.unwrap();
    assert_eq!((done.redacted, done.failed), (1, 0));
    assert!(labels.keys().is_empty(), "the label went with the data");
    let again = later.run().await.unwrap();
    assert_eq!(again.redacted, 0, "nothing is redacted twice");
}

#[tokio::test]
async fn a_run_where_an_order_could_not_be_redacted_fails_and_the_next_run_tries_again() {
    let (store, labels) = (Arc::<MemoryStore>::default(), Arc::<StuckLabels>::default());
    a_cancelled_order(store.clone(), labels.clone()).await;
    let sweep = PersonalDataSweep::with_ports(store, labels, NextMonth, chrono::Duration::days(30));

    let err = sweep.run().await.unwrap_err();
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        cause.as_deref(),
        Some("1 order(s) could not be redacted; the next run tries again")
    );
    assert!(sweep.run().await.is_err(), "the order is still due");
}

#[test]
fn the_retention_must_be_whole_days_from_1_to_3650() {
    assert_eq!(retention_days(None).unwrap(), chrono::Duration::days(30));
    assert_eq!(
        retention_days(Some("7".into())).unwrap(),
        chrono::Duration::days(7)
    );
    for bad in ["0", "3651", "a week"] {
        let err = retention_days(Some(bad.into())).unwrap_err();
        assert!(
            err.to_string().contains("PERSONAL_DATA_RETENTION_DAYS"),
            "{err}"
        );
    }
}

#[test]
fn missing_settings_are_listed_together() {
    let err = Settings::read(adapters::settings::Env::from_pairs(&[(
        "PERSONAL_DATA_RETENTION_DAYS",
        "0",
    )]))
    .unwrap_err();
    assert_eq!(err.0.len(), 4, "{err}");
}
