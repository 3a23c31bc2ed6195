//! Test harness: a fresh stack per test (its own table and queues on the shared
//! emulators) served over real HTTP on a free port, plus request helpers.
//!
//! The emulators come from `infra/local/emulators.sh` (run by `make test`); a
//! test started without them fails with a message saying so.

pub mod delivery_contract;
pub mod endpoint_model;
pub mod faulty_aws;
pub mod partner;
pub mod protocol_model;
pub mod store_contract;
pub mod webhook_model;
pub mod webhook_receiver;
pub mod webhooks;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use local_stack::Stack;
use local_stack::stack::{CallbackSettings, OAuthClient, local_warehouses};
use partner::{Answer, Partner};
use serde_json::Value;
use shared::domain::Scope;
use tokio::net::TcpListener;

/// The spec 000 sample order, trailing commas removed.
pub const SAMPLE_ORDER: &str = include_str!("../fixtures/spec-000-sample.json");
/// The spec 000 sample exactly as published, trailing commas included.
pub const SAMPLE_ORDER_AS_PUBLISHED: &str =
    include_str!("../fixtures/spec-000-sample-as-published.json");

#[must_use]
pub fn sample_order() -> Value {
    serde_json::from_str(SAMPLE_ORDER).expect("the fixture is JSON")
}

/// An HTTP answer, its body parsed as JSON (`Value::Null` when it is not).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `field` of every entry of `data.errors`.
    #[must_use]
    pub fn error_fields(&self) -> Vec<String> {
        self.body["data"]["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// One test's service: its own resources, served on 127.0.0.1:<free port>.
/// Its `Debug` leaves the API keys out.
pub struct TestApp {
    pub base_url: String,
    pub stack: Stack,
    /// The partner, when the callback dispatcher runs.
    pub partner: Option<Partner>,
    /// The ERP key of client "20" that the helpers send.
    pub erp_key: String,
    /// The warehouse key (mabang, lax) that `post_event` sends.
    pub wms_key: String,
    http: reqwest::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("base_url", &self.base_url)
            .field("stack", &self.stack)
            .field("partner", &self.partner)
            .finish_non_exhaustive()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The partner's bearer token in tests.
pub const PARTNER_TOKEN: &str = "test-partner-token";

/// Whether an order read back (`data` of the GET) shows its callback in
/// `status` with every try in its ledger. The ledger is read eventually
/// consistently (README "Storage and what it costs"): a read just after a
/// try may miss its line, so tests that read the ledger wait for both.
#[must_use]
pub fn callback_is(data: &Value, status: &str) -> bool {
    let callback = &data["callback"];
    let tries = callback["attempt_count"].as_u64().unwrap_or(0);
    let lines = callback["attempts"].as_array().map_or(0, Vec::len) as u64;
    callback["status"] == status && lines >= tries
}

/// How the test dispatcher talks to its partner: short timeouts and 1 s
/// retry delays so retry schedules play out in seconds.
#[must_use]
pub fn test_callback_settings(url: &str) -> CallbackSettings {
    CallbackSettings {
        url: url.to_owned(),
        token: PARTNER_TOKEN.to_owned(),
        oauth: None,
        breaker: None,
        timeout: Duration::from_secs(1),
        retry_delays: Some(vec![Duration::from_secs(1)]),
        max_posts: None,
    }
}

/// [`test_callback_settings`] for a partner that issues OAuth2 tokens
/// ([`Partner::start_oauth`]): no static token, the test client's
/// credentials and first refresh token.
#[must_use]
pub fn oauth_callback_settings(partner: &Partner) -> CallbackSettings {
    let mut settings = test_callback_settings(&partner.url);
    settings.token = String::new();
    settings.oauth = Some(OAuthClient {
        token_url: partner.token_url(),
        client_id: partner::CLIENT_ID.into(),
        client_secret: partner::CLIENT_SECRET.into(),
        refresh_token: partner::FIRST_REFRESH_TOKEN.into(),
        max_lifetime: None,
    });
    settings
}

/// A warehouse event `kind` that happened `at` (RFC 3339), with `extra`'s
/// fields (a JSON object) beside the three every event has.
#[must_use]
pub fn warehouse_event(id: &str, kind: &str, at: &str, extra: &Value) -> Value {
    let mut event = serde_json::json!({"event_id": id, "type": kind, "occurred_at": at});
    if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
        event.extend(extra.clone());
    }
    event
}

/// A clock `ahead` of now: that of a sweep run after the retention.
#[derive(Debug, Clone, Copy)]
struct Ahead(chrono::Duration);

impl shared::ports::Clock for Ahead {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.0
    }
}

/// A new bearer key (unsigned, no order prefixes) for `scope` in the stack's key table.
pub async fn issue_key(stack: &Stack, scope: Scope) -> String {
    stack
        .issue_key(scope, None, false)
        .await
        .expect("a key")
        .key
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_outbox_aws(None).await
    }

    /// [`TestApp::spawn`], the outbox's SDK calls made with `aws` (through a
    /// fault proxy) when given.
    pub async fn spawn_with_outbox_aws(aws: Option<aws_types::SdkConfig>) -> Self {
        let stack = Stack::provision(&unique_prefix(), local_warehouses().expect("warehouses"))
            .await
            .unwrap_or_else(|err| panic!("cannot start the test stack: {err}"));
        let erp_key = issue_key(&stack, Scope::Client("20".into())).await;
        let wms_key = issue_key(
            &stack,
            Scope::Warehouse(["mabang".to_owned(), "lax".to_owned()].into()),
        )
        .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base_url = format!("http://{}", listener.local_addr().expect("bound"));
        let serving = stack.clone();
        let server = tokio::spawn(async move {
            serving.serve(listener).await.expect("serving");
        });
        // The outbox always runs, as the pipe does in AWS: writes that make a
        // callback due put its message on the queue.
        let mut outbox_stack = stack.clone();
        if let Some(aws) = aws {
            outbox_stack.aws = aws;
        }
        let pipe = outbox_stack.outbox_pipe(None).expect("the outbox pipe");
        let outbox = tokio::spawn(pipe.run());
        Self {
            base_url,
            stack,
            partner: None,
            erp_key,
            wms_key,
            http: adapters::https::reqwest_builder()
                .and_then(|builder| Ok(builder.build()?))
                .expect("an HTTP client"),
            tasks: vec![server, outbox],
        }
    }

    /// The API plus the callback dispatcher, polling the callback queue and
    /// posting to a partner that answers from `script`.
    pub async fn spawn_with_partner(script: Vec<Answer>) -> Self {
        let mut app = Self::spawn().await;
        let partner = Partner::start(script).await;
        app.start_dispatcher(&test_callback_settings(&partner.url));
        app.partner = Some(partner);
        app
    }

    /// Starts the dispatcher (as the event source mapping runs it).
    pub fn start_dispatcher(&mut self, settings: &CallbackSettings) {
        let stack = self.stack.clone();
        let settings = settings.clone();
        self.tasks.push(tokio::spawn(async move {
            stack.run_dispatcher(&settings).await.expect("dispatcher");
        }));
    }

    /// The partner's requests so far.
    #[must_use]
    pub fn partner_requests(&self) -> Vec<partner::Received> {
        self.partner.as_ref().expect("a partner").received()
    }

    pub async fn post_event(&self, order_number: &str, event: &Value) -> Reply {
        let path = format!("/apicenter/api/order/{order_number}/events");
        self.post_json_as(&self.wms_key, &path, event).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_json_as(&self.erp_key, path, body).await
    }

    pub async fn post_json_as(&self, key: &str, path: &str, body: &Value) -> Reply {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("the API answers");
        into_reply(response).await
    }

    /// Reads the order until `done` holds, or fails after `within`.
    pub async fn wait_for_order(
        &self,
        order_number: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let data = self.get_order(order_number).await.body["data"].clone();
            if done(&data) {
                return data;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {order_number} did not get there within {within:?}: {data:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn post_order_as(&self, key: &str, order: &Value) -> Reply {
        self.post_json_as(key, "/apicenter/api/order", order).await
    }

    /// A new ERP key for `client_code`.
    pub async fn client_key(&self, client_code: &str) -> String {
        issue_key(&self.stack, Scope::Client(client_code.to_owned())).await
    }

    pub async fn post_order(&self, order: &Value) -> Reply {
        self.post_raw(
            serde_json::to_vec(order).expect("JSON"),
            Some("application/json"),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
    ) -> Reply {
        let mut request = self
            .http
            .post(format!("{}/apicenter/api/order", self.base_url))
            .bearer_auth(&self.erp_key)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        into_reply(request.send().await.expect("the API answers")).await
    }

    /// The ERP cancelling the order (no reason given).
    pub async fn cancel_order(&self, order_number: &str) -> Reply {
        let path = format!("/apicenter/api/order/{order_number}/cancel");
        self.post_json(&path, &serde_json::json!({})).await
    }

    /// The ERP asking for the order's callback to be posted again.
    pub async fn replay_callback(&self, order_number: &str) -> Reply {
        let path = format!("/apicenter/api/order/{order_number}/callback/retry");
        self.post_json(&path, &serde_json::json!({})).await
    }

    /// Runs the personal-data sweep as if `days` had passed.
    pub async fn sweep_personal_data_after(
        &self,
        days: i64,
    ) -> shared::lifecycle::personal_data::Sweep {
        self.stack
            .personal_data_sweep(Ahead(chrono::Duration::days(days)))
            .expect("the sweep")
            .run()
            .await
            .expect("a sweep run")
    }

    /// A page of the ERP's orders: `GET /apicenter/api/orders?{query}`.
    pub async fn poll_orders(&self, query: &str) -> Reply {
        self.request(
            reqwest::Method::GET,
            &format!("/apicenter/api/orders?{query}"),
        )
        .await
    }

    pub async fn get_order(&self, order_number: &str) -> Reply {
        self.request(
            reqwest::Method::GET,
            &format!("/apicenter/api/order/{order_number}"),
        )
        .await
    }

    pub async fn request(&self, method: reqwest::Method, path: &str) -> Reply {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.erp_key)
            .send()
            .await
            .expect("the API answers");
        into_reply(response).await
    }

    /// A request with exactly these headers (for authentication tests).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        into_reply(request.send().await.expect("the API answers")).await
    }

    /// Moves an order's receipt back to `received_at` (RFC 3339), straight in
    /// DynamoDB, so a test may send events at fixed past times: an event may
    /// not say it happened long before its order was received.
    pub async fn backdate(&self, order_number: &str, received_at: &str) {
        let table = self.stack.orders_table().expect("orders table");
        self.stack
            .dynamodb
            .update_item()
            .table_name(table)
            .key("order_number", AttributeValue::S(order_number.to_owned()))
            .update_expression("SET created_at = :at")
            .expression_attribute_values(":at", AttributeValue::S(received_at.to_owned()))
            .condition_expression("attribute_exists(order_number)")
            .send()
            .await
            .expect("the order is backdated");
    }

    /// Every item in this test's order history table (requests, ledger
    /// lines), read straight from DynamoDB.
    pub async fn stored_history(&self) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        self.scan(self.stack.order_history_table().expect("history table"))
            .await
    }

    /// Every item in this test's orders table, read straight from DynamoDB.
    pub async fn stored_items(&self) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        self.scan(self.stack.orders_table().expect("orders table"))
            .await
    }

    /// The keys of every object in this test's labels bucket.
    pub async fn stored_labels(&self) -> Vec<String> {
        stored_labels(&self.stack).await
    }

    /// The keys of every version and delete marker in this test's labels
    /// bucket (the bucket is versioned, as the template's is).
    pub async fn stored_label_versions(&self) -> Vec<String> {
        let listed = self
            .stack
            .s3
            .list_object_versions()
            .bucket(self.stack.labels_bucket().expect("labels bucket"))
            .send()
            .await
            .expect("list the labels bucket's versions");
        let versions = listed
            .versions()
            .iter()
            .filter_map(|v| v.key().map(str::to_owned));
        let markers = listed
            .delete_markers()
            .iter()
            .filter_map(|m| m.key().map(str::to_owned));
        versions.chain(markers).collect()
    }

    async fn scan(&self, table: &str) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        scan(&self.stack, table).await
    }

    /// Ships the sample order under `{prefix}-0` … `{prefix}-{count - 1}`
    /// (see [`Self::ship_sample_order`]) and returns their numbers.
    pub async fn ship_sample_orders(&self, prefix: &str, count: usize) -> Vec<String> {
        let numbers: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
        for number in &numbers {
            self.ship_sample_order(number).await;
        }
        numbers
    }

    /// Waits for each order's callback to be delivered (its whole ledger
    /// read back), and returns the orders as read.
    pub async fn wait_until_delivered(&self, numbers: &[String], within: Duration) -> Vec<Value> {
        let mut orders = Vec::with_capacity(numbers.len());
        for number in numbers {
            let delivered = |data: &Value| callback_is(data, "delivered");
            orders.push(self.wait_for_order(number, within, delivered).await);
        }
        orders
    }

    /// The order's label, fetched as the warehouse fetches it.
    pub async fn get_label(&self, order_number: &str) -> Reply {
        let path = format!("/apicenter/api/order/{order_number}/label");
        let wms = format!("Bearer {}", self.wms_key);
        self.send(
            reqwest::Method::GET,
            &path,
            &[("authorization", &wms)],
            None,
        )
        .await
    }

    /// Creates the sample order under `number` and ships it at once
    /// (process type 2: handed over with its tracking number), so its
    /// callback becomes due.
    pub async fn ship_sample_order(&self, number: &str) {
        let mut order = sample_order();
        order["package"]["order_number"] = serde_json::json!(number);
        order["platform_order_number"] = serde_json::json!(format!("p-{number}"));
        let created = self.post_order(&order).await;
        assert_eq!(created.status, 201, "{:#}", created.body);
        self.hand_over(number).await;
    }

    /// Reports the order shipped and handed over now (process type 2), so
    /// its callback becomes due.
    pub async fn hand_over(&self, number: &str) {
        let now = shared::record::format_time(chrono::Utc::now());
        for event in [
            serde_json::json!({"event_id": "e-1", "type": "shipped", "occurred_at": now,
                   "tracking_number": "YT4567890123CN", "logistic_provider_code": "jito"}),
            serde_json::json!({"event_id": "e-2", "type": "handed_over", "occurred_at": now}),
        ] {
            let reply = self.post_event(number, &event).await;
            assert_eq!(reply.status, 200, "{:#}", reply.body);
        }
    }
}

async fn into_reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("a body");
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// Every item of `table`, read straight from the stack's DynamoDB
/// (consistently).
pub async fn scan(
    stack: &Stack,
    table: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    stack
        .dynamodb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default()
}

/// The keys of every object in the stack's labels bucket.
pub async fn stored_labels(stack: &Stack) -> Vec<String> {
    stack
        .s3
        .list_objects_v2()
        .bucket(stack.labels_bucket().expect("labels bucket"))
        .send()
        .await
        .expect("list the labels bucket")
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|object| object.key)
        .collect()
}

/// A fresh set of the template's tables and queues on the emulators, without
/// the functions (for tests of one adapter).
pub async fn provision_stack() -> Stack {
    Stack::provision(&unique_prefix(), local_warehouses().expect("warehouses"))
        .await
        .unwrap_or_else(|err| panic!("cannot provision the test resources: {err}"))
}

/// Unique across the parallel test processes sharing one emulator.
fn unique_prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "t{}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Receives every message of a queue (waiting up to 20 s for the first one),
/// deleting nothing; returns their bodies.
pub async fn receive_all(app: &TestApp, queue_url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let received = app
            .stack
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("the queue answers");
        let messages = received.messages();
        if messages.is_empty() && (!bodies.is_empty() || tokio::time::Instant::now() >= deadline) {
            return bodies;
        }
        bodies.extend(messages.iter().filter_map(|m| m.body().map(str::to_owned)));
    }
}
