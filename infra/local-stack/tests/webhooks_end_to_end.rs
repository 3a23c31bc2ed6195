//! Webhooks end to end on the local stack, as `make run` wires it: the API
//! through the local gateway, the outbox pipe and the callback dispatcher
//! posting to a scripted partner, the fan-out reading the orders stream
//! beside the pipe, and the webhook dispatcher polling its queue and posting
//! to a real HTTP receiver on loopback that verifies every delivery with the
//! `standardwebhooks` crate (not the service's signer).
//!
//! Run through `infra/local/emulators.sh exec -- cargo nextest run -p local-stack --test webhooks_end_to_end`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use local_stack::Stack;
use local_stack::receiver::{self, Seen, Verified};
use local_stack::stack::{CallbackSettings, local_warehouses};
use serde_json::{Value, json};
use shared::domain::Scope;
use shared::webhook::{EventType, Reach};
use tokio::net::TcpListener;

const SAMPLE_ORDER: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");
/// How long every event may take to arrive (the walk posts a dozen writes;
/// a callback that dead-letters takes two posts a second apart).
const PATIENCE: Duration = Duration::from_secs(30);

/// The service on the emulators, with every webhook part running.
struct Service {
    base: String,
    http: reqwest::Client,
    erp_key: String,
    wms_key: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A partner answering from `script` (status, body) in order, then success.
async fn partner(script: Vec<(u16, Value)>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!(
        "http://{}{}",
        listener.local_addr().expect("bound"),
        partner::CALLBACK_PATH
    );
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    let task = tokio::spawn(partner::serve(
        listener,
        || true,
        move |_request| {
            let script = Arc::clone(&script);
            async move {
                let (status, body) = script.lock().expect("the script").pop_front().unwrap_or((
                    200,
                    json!({"Success": true, "Message": "ok", "RawResponse": "{\"code\":0}"}),
                ));
                Ok::<_, std::convert::Infallible>(partner::reply(status, body.to_string()))
            }
        },
    ));
    (url, task)
}

async fn start(partner_script: Vec<(u16, Value)>) -> Service {
    let prefix = format!("wh-e2e-{}-{}", std::process::id(), rand_suffix());
    let mut stack = Stack::provision(&prefix, local_warehouses().expect("warehouses"))
        .await
        .unwrap_or_else(|err| panic!("the emulators (run through emulators.sh exec): {err}"));
    // What WEBHOOKS_LOCAL_NETWORK=1 gives `make run`: a receiver on loopback.
    stack.webhook_reach = Reach::LocalNetwork;
    let erp_key = stack
        .issue_key(Scope::Client("20".into()), None, false)
        .await
        .expect("an ERP key")
        .key;
    let wms_key = stack
        .issue_key(
            Scope::Warehouse(["mabang".to_owned(), "lax".to_owned()].into()),
            None,
            false,
        )
        .await
        .expect("a warehouse key")
        .key;
    let (partner_url, partner_task) = partner(partner_script).await;
    let settings = CallbackSettings {
        url: partner_url,
        token: "test-partner-token".into(),
        oauth: None,
        breaker: None,
        timeout: Duration::from_secs(1),
        retry_delays: Some(vec![Duration::from_secs(1)]),
        max_posts: Some(2),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    let mut tasks = vec![partner_task];
    let serving = stack.clone();
    tasks.push(tokio::spawn(async move {
        serving.serve(listener).await.expect("serving");
    }));
    tasks.push(tokio::spawn(
        stack.outbox_pipe(None).expect("the outbox pipe").run(),
    ));
    tasks.push(tokio::spawn(
        stack.webhook_fanout(None).expect("the fan-out").run(),
    ));
    let dispatcher = stack.clone();
    tasks.push(tokio::spawn(async move {
        dispatcher
            .run_dispatcher(&settings)
            .await
            .expect("the callback dispatcher");
    }));
    let webhooks = stack.clone();
    tasks.push(tokio::spawn(async move {
        webhooks
            .run_webhook_dispatcher()
            .await
            .expect("the webhook dispatcher");
    }));
    Service {
        base,
        http: adapters::https::reqwest_builder()
            .and_then(|builder| Ok(builder.build()?))
            .expect("an HTTP client"),
        erp_key,
        wms_key,
        tasks,
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Service {
    async fn post(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("the API answers");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// `POST /apicenter/api/webhooks` with the ERP key.
    async fn create_endpoint(&self, endpoint: &Value) -> (u16, Value) {
        self.post(&self.erp_key, "/apicenter/api/webhooks", endpoint)
            .await
    }

    async fn create_order(&self, number: &str) {
        let mut order: Value = serde_json::from_str(SAMPLE_ORDER).expect("the sample");
        order["package"]["order_number"] = json!(number);
        order["platform_order_number"] = json!(format!("p-{number}"));
        let (status, body) = self
            .post(&self.erp_key, "/apicenter/api/order", &order)
            .await;
        assert_eq!(status, 201, "{body:#}");
    }

    /// The warehouse reports `steps` (type, extra fields), a second apart
    /// and in the past, so each is later than the one before.
    async fn walk(&self, number: &str, steps: &[(&str, Value)]) {
        let start = chrono::Utc::now() - chrono::Duration::seconds(60);
        for (i, (kind, extra)) in steps.iter().enumerate() {
            let at = start + chrono::Duration::seconds(i64::try_from(i).expect("few steps"));
            let mut event = json!({"event_id": format!("{number}-{i}"), "type": kind,
                "occurred_at": shared::record::format_time(at)});
            if let (Some(event), Some(extra)) = (event.as_object_mut(), extra.as_object()) {
                event.extend(extra.clone());
            }
            let path = format!("/apicenter/api/order/{number}/events");
            let (status, body) = self.post(&self.wms_key, &path, &event).await;
            assert_eq!(status, 200, "{kind}: {body:#}");
        }
    }

    async fn order(&self, number: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/apicenter/api/order/{number}", self.base))
            .bearer_auth(&self.erp_key)
            .send()
            .await
            .expect("the API answers");
        response.json::<Value>().await.expect("JSON")["data"].clone()
    }

    /// Waits until the order's callback is in `status`.
    async fn wait_for_callback(&self, number: &str, status: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let order = self.order(number).await;
            if order["callback"]["status"] == status {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{number}'s callback is not {status}: {order:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A port on loopback for an endpoint, and its URL.
async fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/hooks", listener.local_addr().expect("bound"));
    (listener, url)
}

/// The receiver on `listener`, verifying with `secret`; what it saw so far.
fn receive(
    listener: TcpListener,
    secret: &str,
) -> (Arc<Mutex<Vec<Seen>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let webhook = receiver::verifier(secret).expect("a whsec_ secret");
    let task = tokio::spawn(receiver::serve(listener, webhook, move |outcome| {
        log.lock().expect("the log").push(outcome);
    }));
    (seen, task)
}

fn shipped() -> Value {
    json!({"tracking_number": "YT4567890123CN", "logistic_provider_code": "jito"})
}

#[tokio::test]
async fn every_event_type_reaches_a_local_receiver_signed_and_in_sequence() {
    // The callbacks: a, delivered; c, refused (failed); d, down twice with
    // two posts allowed (dead-lettered).
    let service = start(vec![
        (
            200,
            json!({"Success": true, "Message": "ok", "RawResponse": "{\"code\":0}"}),
        ),
        (400, json!({"Message": "bad request"})),
        (503, json!({"Message": "down"})),
        (503, json!({"Message": "down"})),
    ])
    .await;
    // The receiver listens before the endpoint exists; it learns the secret
    // from the create answer.
    let (listener, url) = listen().await;
    let (status, created) = service.create_endpoint(&json!({"url": url})).await;
    assert_eq!(status, 201, "{created:#}");
    let secret = created["data"]["secret"].as_str().expect("data.secret");
    assert!(secret.starts_with("whsec_"), "{created:#}");
    let (seen, _receiver) = receive(listener, secret);

    let a = "wh-e2e-a";
    service.create_order(a).await;
    service
        .walk(
            a,
            &[
                ("allocated", json!({})),
                ("picked", json!({})),
                ("packed", json!({"weight_g": 1200})),
                ("shipped", shipped()),
                ("handed_over", json!({})),
            ],
        )
        .await;
    service.wait_for_callback(a, "delivered").await;
    let b = "wh-e2e-b";
    service.create_order(b).await;
    service
        .walk(b, &[("shortage", json!({"message": "out of stock"}))])
        .await;
    let (status, body) = service
        .post(
            &service.erp_key,
            &format!("/apicenter/api/order/{b}/cancel"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    let c = "wh-e2e-c";
    service.create_order(c).await;
    service
        .walk(c, &[("shipped", shipped()), ("handed_over", json!({}))])
        .await;
    service.wait_for_callback(c, "failed").await;
    let d = "wh-e2e-d";
    service.create_order(d).await;
    service
        .walk(d, &[("shipped", shipped()), ("handed_over", json!({}))])
        .await;
    service.wait_for_callback(d, "dead_lettered").await;

    let expected: BTreeMap<&str, Vec<&str>> = [
        (
            a,
            vec![
                "order.accepted",
                "order.allocated",
                "order.picked",
                "order.packed",
                "order.shipped",
                "order.handed_over",
                "callback.delivered",
            ],
        ),
        (b, vec!["order.accepted", "order.short", "order.cancelled"]),
        (
            c,
            vec![
                "order.accepted",
                "order.shipped",
                "order.handed_over",
                "callback.failed",
            ],
        ),
        (
            d,
            vec![
                "order.accepted",
                "order.shipped",
                "order.handed_over",
                "callback.dead_lettered",
            ],
        ),
    ]
    .into();
    let total: usize = expected.values().map(Vec::len).sum();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let verified: Vec<Verified> = loop {
        let so_far: Vec<Seen> = seen.lock().expect("the log").clone();
        let refused: Vec<&String> = so_far.iter().filter_map(|s| s.as_ref().err()).collect();
        assert!(
            refused.is_empty(),
            "deliveries that did not verify: {refused:?}"
        );
        let verified: Vec<Verified> = so_far.into_iter().filter_map(Result::ok).collect();
        let distinct: BTreeSet<&str> = verified.iter().map(|v| v.id.as_str()).collect();
        if distinct.len() >= total {
            break verified;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {total} events arrived: {:#?}",
            distinct.len(),
            verified
                .iter()
                .map(|v| (&v.order_number, &v.kind, v.sequence))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // One delivery per event (a retry would carry the same webhook-id).
    let mut by_id: BTreeMap<&str, &Verified> = BTreeMap::new();
    for event in &verified {
        by_id.entry(event.id.as_str()).or_insert(event);
    }
    let mut per_order: BTreeMap<&str, Vec<&Verified>> = BTreeMap::new();
    for event in by_id.values() {
        per_order
            .entry(event.order_number.as_str())
            .or_default()
            .push(event);
    }
    for (order, events) in &mut per_order {
        events.sort_by_key(|event| (event.sequence, event.kind.clone()));
        let kinds: BTreeSet<&str> = events.iter().map(|event| event.kind.as_str()).collect();
        let wanted: BTreeSet<&str> = expected
            .get(order)
            .unwrap_or_else(|| panic!("an event of an unknown order {order}"))
            .iter()
            .copied()
            .collect();
        assert_eq!(kinds, wanted, "{order}");
        // `data.sequence` grows with the order's writes: the walk's steps, in
        // the order they were written.
        let in_sequence: Vec<&str> = events.iter().map(|event| event.kind.as_str()).collect();
        let want: Vec<&str> = expected[order].clone();
        assert_eq!(in_sequence, want, "{order}: by data.sequence");
        let sequences: Vec<u64> = events.iter().map(|event| event.sequence).collect();
        assert!(
            sequences.windows(2).all(|pair| pair[0] < pair[1]),
            "{order}: sequences {sequences:?}"
        );
    }
    let shipped = per_order[a]
        .iter()
        .find(|event| event.kind == "order.shipped")
        .expect("a's shipment");
    assert_eq!(
        shipped.body["data"]["tracking_number"], "YT4567890123CN",
        "{:#}",
        shipped.body
    );
    let all: BTreeSet<&str> = by_id.values().map(|event| event.kind.as_str()).collect();
    let every: BTreeSet<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
    assert_eq!(all, every, "every event type arrived");
}

#[tokio::test]
async fn an_endpoint_at_the_metadata_address_is_refused_even_locally() {
    let service = start(Vec::new()).await;
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254:8080/hooks",
        "http://[fd00:ec2::254]/hooks",
    ] {
        let (status, body) = service.create_endpoint(&json!({"url": url})).await;
        assert_eq!(status, 400, "{url}: {body:#}");
        let named: Vec<&str> = body["data"]["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|error| error["field"].as_str())
            .collect();
        assert!(named.contains(&"url"), "{url}: {body:#}");
    }
}

#[tokio::test]
async fn the_receiver_refuses_a_delivery_signed_with_another_secret() {
    let (listener, url) = listen().await;
    let (seen, _task) = receive(listener, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let response = adapters::https::reqwest_builder()
        .and_then(|builder| Ok(builder.build()?))
        .expect("an HTTP client")
        .post(&url)
        .header("webhook-id", "evt_1")
        .header("webhook-timestamp", &timestamp)
        .header(
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        )
        .body(r#"{"type":"order.shipped"}"#)
        .send()
        .await
        .expect("the receiver answers");

    assert_eq!(response.status().as_u16(), 401);
    let seen = seen.lock().expect("the log");
    assert!(matches!(seen.as_slice(), [Err(_)]), "{seen:?}");
}

/// The dispatcher hides a failed delivery for its schedule's next delay
/// itself (ChangeMessageVisibility, 5 s after the first post); the local
/// mapping must keep the message as reported and not undo that: the retry
/// comes after about 5 s, not at once and not after the queue's 180 s.
#[tokio::test]
async fn a_failed_delivery_is_posted_again_after_the_delay_the_dispatcher_set() {
    let service = start(Vec::new()).await;
    let (listener, url) = listen().await;
    let (status, created) = service
        .create_endpoint(&json!({"url": url, "event_types": ["order.accepted"]}))
        .await;
    assert_eq!(status, 201, "{created:#}");
    let webhook = receiver::verifier(created["data"]["secret"].as_str().expect("data.secret"))
        .expect("a whsec_ secret");
    let webhook = Arc::new(webhook);
    // (webhook-id, when) of every post; the first is answered 503.
    let posts: Arc<Mutex<Vec<(String, tokio::time::Instant)>>> = Arc::default();
    let log = Arc::clone(&posts);
    let _endpoint = tokio::spawn(partner::serve(
        listener,
        || true,
        move |request| {
            let (webhook, log) = (Arc::clone(&webhook), Arc::clone(&log));
            async move {
                use http_body_util::BodyExt as _;
                let (parts, body) = hyper::Request::into_parts(request);
                let body = body.collect().await?.to_bytes();
                let status = if webhook.verify(&body, &parts.headers).is_err() {
                    401
                } else {
                    let id = partner::header(&hyper::Request::from_parts(parts, ()), "webhook-id")
                        .unwrap_or_default();
                    let mut log = log.lock().expect("the log");
                    log.push((id, tokio::time::Instant::now()));
                    if log.len() == 1 { 503 } else { 204 }
                };
                Ok::<_, hyper::Error>(partner::reply(status, ""))
            }
        },
    ));

    service.create_order("wh-retry-1").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let posts = loop {
        let posts = posts.lock().expect("the log").clone();
        if posts.len() >= 2 {
            break posts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "posts so far: {}",
            posts.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert_eq!(posts[0].0, posts[1].0, "the retry is the same event");
    let gap = posts[1].1 - posts[0].1;
    assert!(
        gap >= Duration::from_secs(4) && gap <= Duration::from_secs(15),
        "the retry came {gap:?} after the failed post (the schedule says 5 s)"
    );
}
