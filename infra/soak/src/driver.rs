//! The ERP and the warehouse: each order through the service's HTTP API as
//! its [`Plan`] says, retrying through the service's restarts as a client
//! would (every write is idempotent), and counting every answer the API does
//! not promise.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use serde_json::{Value, json};

use crate::rng::Rng;
use crate::scenario::{self, Events, Plan};

const SAMPLE_ORDER: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");

/// How long a request keeps being retried while the service is down.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// What the clients saw.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    /// Requests sent again because the connection failed (the service was
    /// being killed or restarted).
    pub connection_retries: AtomicU64,
    /// 503 with `Retry-After`: documented, retried after the pause.
    pub retry_later: AtomicU64,
    /// Any other 5xx.
    pub unexpected_5xx: AtomicU64,
    /// Answers outside what the API documents for the request (samples).
    pub unexpected: Mutex<Vec<String>>,
    pub unexpected_count: AtomicU64,
    pub replays_accepted: AtomicU64,
    pub replays_refused: AtomicU64,
}

/// An HTTP client of the service with the ERP's and the warehouse's keys.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    pub erp_key: String,
    pub wms_key: String,
    pub stats: Stats,
}

impl Api {
    pub fn new(base: String, erp_key: String, wms_key: String) -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build()?,
            base,
            erp_key,
            wms_key,
            stats: Stats::default(),
        })
    }

    /// One request, sent again on a connection error, on 503 with
    /// `Retry-After` and (counted as unexpected) on any other 5xx.
    pub async fn send(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let started = tokio::time::Instant::now();
        loop {
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(key);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(_) if started.elapsed() < GIVE_UP_AFTER => {
                    self.stats
                        .connection_retries
                        .fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                Err(err) => return (0, json!({"error": err.to_string()})),
            };
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok());
            let body: Value = match response.bytes().await {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                Err(_) => {
                    // The service died while answering: send again.
                    self.stats
                        .connection_retries
                        .fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            };
            if status < 500 || started.elapsed() >= GIVE_UP_AFTER {
                return (status, body);
            }
            match (status, retry_after) {
                (503, Some(seconds)) => {
                    self.stats.retry_later.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_secs(seconds.min(2))).await;
                }
                _ => {
                    self.stats.unexpected_5xx.fetch_add(1, Ordering::Relaxed);
                    self.note(format!("{method} {path}: {status} {body}"));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    fn note(&self, what: String) {
        self.stats.unexpected_count.fetch_add(1, Ordering::Relaxed);
        let mut samples = self
            .stats
            .unexpected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if samples.len() < 20 {
            samples.push(what);
        }
    }

    fn expect(&self, what: &str, (status, body): &(u16, Value), allowed: &[u16]) -> bool {
        if allowed.contains(status) {
            return true;
        }
        self.note(format!("{what}: {status} (expected {allowed:?}) {body}"));
        false
    }

    async fn create(&self, order: &Value) -> (u16, Value) {
        self.send(
            &self.erp_key,
            reqwest::Method::POST,
            "/apicenter/api/order",
            Some(order),
        )
        .await
    }

    async fn event(&self, order_number: &str, event: &Value) -> (u16, Value) {
        let path = format!("/apicenter/api/order/{order_number}/events");
        self.send(&self.wms_key, reqwest::Method::POST, &path, Some(event))
            .await
    }

    /// Runs one order's plan; `true` when the service accepted the order.
    pub async fn run_order(&self, index: usize, seed: u64) -> bool {
        let plan = Plan::for_index(index);
        let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0x9e37_79b9));
        let number = scenario::order_number(index);
        let order = order_body(index);
        let created = if plan.concurrent_create {
            let (a, b) = tokio::join!(self.create(&order), self.create(&order));
            let a_ok = self.expect("concurrent create", &a, &[200, 201]);
            let b_ok = self.expect("concurrent create", &b, &[200, 201]);
            a_ok && b_ok
        } else {
            let reply = self.create(&order).await;
            self.expect("create", &reply, &[200, 201])
        };
        if !created {
            return false;
        }
        if plan.conflicting_replay {
            let mut other = order.clone();
            other["items"][0]["qty"] = json!(2);
            let reply = self.create(&other).await;
            self.expect("conflicting replay", &reply, &[409]);
        }
        if plan.identical_replay {
            let reply = self.create(&order).await;
            self.expect("identical replay", &reply, &[200]);
        }
        let events = events(index, plan.events);
        match plan.events {
            Events::InOrder | Events::Cancelled | Events::Reordered => {
                for event in &events {
                    let reply = self.event(&number, event).await;
                    self.expect("event", &reply, &[200]);
                }
            }
            Events::Duplicated => {
                for event in &events {
                    let (a, b) =
                        tokio::join!(self.event(&number, event), self.event(&number, event));
                    self.expect("duplicated event", &a, &[200]);
                    self.expect("duplicated event", &b, &[200]);
                }
            }
            Events::Concurrent => {
                let replies = futures::future::join_all(
                    events.iter().map(|event| self.event(&number, event)),
                )
                .await;
                for reply in &replies {
                    self.expect("concurrent event", reply, &[200]);
                }
            }
        }
        if plan.erp_replay {
            tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
            let path = format!("/apicenter/api/order/{number}/callback/retry");
            let reply = self
                .send(&self.erp_key, reqwest::Method::POST, &path, None)
                .await;
            match reply.0 {
                202 => self.stats.replays_accepted.fetch_add(1, Ordering::Relaxed),
                409 => self.stats.replays_refused.fetch_add(1, Ordering::Relaxed),
                _ => {
                    self.expect("callback replay", &reply, &[202, 409]);
                    0
                }
            };
        }
        true
    }

    /// Creates the order and ships it (or cancels it, as its plan says)
    /// with as few requests as the API allows: the quick set-up of orders
    /// whose callbacks are to be left due (`--leave-due`).
    pub async fn ship_plainly(&self, index: usize) -> bool {
        let number = scenario::order_number(index);
        let reply = self.create(&order_body(index)).await;
        if !self.expect("create", &reply, &[200, 201]) {
            return false;
        }
        let kind = Plan::for_index(index).events;
        let all = events(index, kind);
        let wanted: Vec<&Value> = if kind == Events::Cancelled {
            all.iter().collect()
        } else {
            all.iter()
                .filter(|e| e["type"] == "shipped" || e["type"] == "handed_over")
                .collect()
        };
        for event in wanted {
            let reply = self.event(&number, event).await;
            self.expect("event", &reply, &[200]);
        }
        true
    }

    /// Reads up to 100 orders at once.
    pub async fn read_orders(&self, numbers: &[String]) -> Vec<Value> {
        let path = format!("/apicenter/api/orders?order_numbers={}", numbers.join(","));
        let (status, body) = self
            .send(&self.erp_key, reqwest::Method::GET, &path, None)
            .await;
        if status != 200 {
            self.note(format!("read orders: {status} {body}"));
            return Vec::new();
        }
        body["data"]["orders"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// The spec's sample order under the soak's number.
fn order_body(index: usize) -> Value {
    let mut order: Value = serde_json::from_str(SAMPLE_ORDER).unwrap_or(Value::Null);
    order["package"]["order_number"] = json!(scenario::order_number(index));
    order["platform_order_number"] = json!(format!("78{index:011}"));
    if Plan::for_index(index).label {
        // A small PDF of its own per order.
        let pdf = format!("%PDF-1.7\n% soak label {index}\n");
        order["logistics_provider"]["label_base64"] =
            json!(base64::engine::general_purpose::STANDARD.encode(pdf));
    }
    order
}

/// The warehouse's reports for the order, in the order they are sent.
fn events(index: usize, kind: Events) -> Vec<Value> {
    let now = Utc::now();
    // Minutes ago: inside the accepted window (a day before the order … now).
    let at = |minutes: i64| {
        (now - chrono::Duration::minutes(minutes))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let allocated = json!({"event_id": "e-1", "type": "allocated", "occurred_at": at(60)});
    let picked = json!({"event_id": "e-2", "type": "picked", "occurred_at": at(50)});
    let packed = json!({"event_id": "e-3", "type": "packed", "occurred_at": at(40),
        "weight_g": 1200, "length_cm": 30, "width_cm": 20, "height_cm": 10, "number_of_package": 1});
    let shipped = json!({"event_id": "e-4", "type": "shipped", "occurred_at": at(30),
        "tracking_number": scenario::tracking_number(index), "logistic_provider_code": "jito",
        "shipping_fee": "12.50", "currency": "USD", "shipping_provider_product": "Standard"});
    let handed_over = json!({"event_id": "e-5", "type": "handed_over", "occurred_at": at(20)});
    match kind {
        Events::Cancelled => vec![
            allocated,
            json!({"event_id": "e-c", "type": "cancelled", "occurred_at": at(45), "reason": "soak"}),
        ],
        Events::Reordered => vec![allocated, packed, picked, handed_over, shipped],
        _ => vec![allocated, picked, packed, shipped, handed_over],
    }
}
