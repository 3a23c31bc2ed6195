//! Webhook delivery as an ERP sees it, against the emulators and real HTTP
//! receivers: endpoints made by the subscription use case over DynamoDB
//! Local, events published by the fan-out onto the real (moto) delivery
//! queue, each batch run through the dispatcher's handler with the real
//! HTTP poster. Every receiver verifies what it gets with the
//! `standardwebhooks` crate, not with the service's signer.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use integration_tests::webhook_receiver::{Received, Receiver, Reply};
use integration_tests::webhooks::{CLIENT, Rig, every_event_type, new_order, write};
use serde_json::{Value, json};
use shared::domain::OrderStatus;
use shared::metrics::Metric;
use shared::notify::ENDPOINTS_TTL;
use shared::webhook::{
    DeliveryStatus, EventType, POST_TIMEOUT, ROTATION_OVERLAP, Reach, WebhookSecret, schedule,
};

/// Long enough for a few batches on the emulators, short of any retry delay.
const A_FEW_BATCHES: Duration = Duration::from_secs(15);

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

#[tokio::test]
async fn every_event_type_arrives_and_verifies_with_the_endpoints_secret() {
    let rig = Rig::new(Reach::LocalNetwork, schedule(POST_TIMEOUT)).await;
    let erp = Receiver::start(Vec::new(), Reply::Status(204)).await;
    let endpoint = rig.subscribe(&erp.url).await;
    let stranger = WebhookSecret::generate().expect("a secret").expose();
    erp.hold(&endpoint.secret);
    erp.hold(&stranger);

    for (before, after) in every_event_type("mabang-every-type") {
        let published = rig.publish(before.as_ref(), &after).await;
        assert_eq!(published.deliveries, 1, "{after:?}");
    }
    rig.dispatch_until(A_FEW_BATCHES, || {
        erp.received().len() >= EventType::ALL.len()
    })
    .await;
    rig.drain(A_FEW_BATCHES).await;

    let received = erp.received();
    let kinds: BTreeSet<&str> = received.iter().map(|r| r.kind()).collect();
    let every: BTreeSet<&str> = EventType::ALL.iter().map(|kind| kind.as_str()).collect();
    assert_eq!(kinds, every);
    assert_eq!(received.len(), EventType::ALL.len(), "each exactly once");
    let ids: BTreeSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), received.len(), "one webhook-id per event");
    for delivery in &received {
        assert!(
            delivery.verifies_with(&endpoint.secret),
            "{} does not verify: {}",
            delivery.kind(),
            delivery.signature
        );
        assert!(!delivery.verifies_with(&stranger), "{}", delivery.kind());
        assert!(delivery.id.starts_with("evt_"), "{}", delivery.id);
        assert_eq!(delivery.body["data"]["order_number"], "mabang-every-type");
    }
    let shipped = received
        .iter()
        .find(|r| r.kind() == "order.shipped")
        .expect("shipped");
    assert_eq!(shipped.body["data"]["tracking_number"], "YT4567890123CN");
    assert_eq!(shipped.body["data"]["logistic_provider_code"], "jito");

    // What the ERP reads back: GET /apicenter/api/webhooks/{id}.
    let status = rig.status(&endpoint).await;
    assert_eq!(status["enabled"], true);
    let recent = status["recent_deliveries"].as_array().expect("deliveries");
    assert_eq!(recent.len(), EventType::ALL.len());
    for delivery in recent {
        assert_eq!(delivery["status"], "delivered", "{delivery:#}");
        assert_eq!(delivery["attempts"], 1, "{delivery:#}");
        assert_eq!(delivery["last_attempt"]["http_status"], 204, "{delivery:#}");
    }
}

#[tokio::test]
async fn a_failed_delivery_waits_the_first_delay_then_arrives_once_with_the_same_webhook_id() {
    let policy = schedule(POST_TIMEOUT);
    let first_delay = policy.delays[0];
    let rig = Rig::new(Reach::LocalNetwork, policy).await;
    let erp = Receiver::start(vec![Reply::Status(500)], Reply::Status(200)).await;
    let endpoint = rig.subscribe(&erp.url).await;
    erp.hold(&endpoint.secret);

    rig.publish(None, &new_order("mabang-retried")).await;
    rig.dispatch_until(A_FEW_BATCHES, || !erp.received().is_empty())
        .await;

    // The delivery item says when it is tried next, and the queue hides the
    // message until then.
    let recent = rig.deliveries(&endpoint).await;
    let delivery = &recent[0];
    let attempt = delivery.last_attempt.clone().expect("an attempt");
    assert_eq!(
        (delivery.status, delivery.posts, attempt.http_status),
        (DeliveryStatus::Pending, 1, Some(500))
    );
    let next = delivery.next_attempt_at.expect("a next attempt") - attempt.at;
    assert_eq!(next.to_std().ok(), Some(first_delay), "{delivery:?}");
    assert_eq!(rig.queued().await, (0, 1), "hidden, not deleted");
    assert_eq!(rig.dispatch_once().await, 0, "not shown before its delay");

    rig.dispatch_until(first_delay * 3, || erp.received().len() >= 2)
        .await;
    rig.drain(A_FEW_BATCHES).await;

    let received = erp.received();
    assert_eq!(received.len(), 2, "delivered once after the failure");
    let waited = received[1].at - received[0].at;
    println!(
        "retried after {:.2} s (first delay {:.0} s)",
        seconds(waited),
        seconds(first_delay)
    );
    assert!(
        waited >= first_delay && waited < first_delay + Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(received[0].id, received[1].id, "the same webhook-id");
    assert!(received.iter().all(|r| r.verifies_with(&endpoint.secret)));
    let status = rig.status(&endpoint).await;
    let delivery = &status["recent_deliveries"][0];
    assert_eq!(
        (&delivery["status"], &delivery["attempts"]),
        (&json!("delivered"), &json!(2))
    );
    assert_eq!(status["failing_since"], Value::Null, "a success clears it");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    const ASKED: u64 = 8;
    let rig = Rig::new(Reach::LocalNetwork, schedule(POST_TIMEOUT)).await;
    let erp = Receiver::start(vec![Reply::RetryAfter(429, ASKED)], Reply::Status(204)).await;
    let endpoint = rig.subscribe(&erp.url).await;

    rig.publish(None, &new_order("mabang-slow-down")).await;
    rig.dispatch_until(A_FEW_BATCHES, || !erp.received().is_empty())
        .await;
    let recent = rig.deliveries(&endpoint).await;
    let attempt = recent[0].last_attempt.clone().expect("an attempt");
    let next = recent[0].next_attempt_at.expect("a next attempt") - attempt.at;
    assert_eq!(next.num_seconds(), i64::try_from(ASKED).expect("small"));

    let asked = Duration::from_secs(ASKED);
    rig.dispatch_until(asked * 2, || erp.received().len() >= 2)
        .await;
    let received = erp.received();
    let waited = received[1].at - received[0].at;
    println!(
        "Retry-After: {ASKED} → retried after {:.2} s",
        seconds(waited)
    );
    assert!(
        waited >= asked && waited < asked + Duration::from_secs(3),
        "{waited:?}"
    );
    rig.drain(A_FEW_BATCHES).await;
    assert_eq!(erp.received().len(), 2);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_nothing_more_is_posted_to_it() {
    let mut rig = Rig::new(Reach::LocalNetwork, schedule(POST_TIMEOUT)).await;
    let erp = Receiver::start(Vec::new(), Reply::Status(410)).await;
    let endpoint = rig.subscribe(&erp.url).await;

    // Two events queued while the endpoint is enabled, handed over one at a
    // time: the first is answered 410, the second finds it disabled.
    let created = new_order("mabang-gone");
    let allocated = write(&created, |o| o.status = OrderStatus::Allocated);
    rig.publish(None, &created).await;
    rig.publish(Some(&created), &allocated).await;
    rig.set_batch_size(1);
    rig.drain(A_FEW_BATCHES).await;

    assert_eq!(erp.received().len(), 1, "no post after the 410");
    let status = rig.status(&endpoint).await;
    assert_eq!(status["enabled"], false);
    let reason = status["disabled_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("410"), "{status:#}");
    let statuses: BTreeSet<(String, u64)> = status["recent_deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| {
            let kind = d["status"].as_str().unwrap_or_default().to_owned();
            (kind, d["attempts"].as_u64().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        statuses,
        [("failed".to_owned(), 0), ("failed".to_owned(), 1)].into(),
        "the one posted failed, the other was given up unposted (a replay after enabling sends it): {status:#}"
    );
    assert_eq!(rig.metrics.recorded(), [Metric::WebhookEndpointDisabled]);

    // A later change of the order, once the fan-out reads the endpoints
    // again (it keeps them `ENDPOINTS_TTL`): nothing is even queued for it.
    rig.clock.advance(ENDPOINTS_TTL);
    let picked = write(&allocated, |o| o.status = OrderStatus::Picked);
    let published = rig.publish(Some(&allocated), &picked).await;
    assert_eq!((published.events, published.deliveries), (1, 0));
    assert_eq!(rig.queued().await, (0, 0));
    assert_eq!(rig.dispatch_once().await, 0);
    assert_eq!(erp.received().len(), 1);
}

#[tokio::test]
async fn an_endpoint_failing_for_a_day_is_disabled_with_the_reason_and_counted() {
    // Retried after a second instead of 5 s: the clock skips the hours.
    let mut policy = schedule(POST_TIMEOUT);
    policy.delays = vec![Duration::from_secs(1)];
    policy.max_posts = 50;
    let rig = Rig::new(Reach::LocalNetwork, policy).await;
    let erp = Receiver::start(Vec::new(), Reply::Status(500)).await;
    let endpoint = rig.subscribe(&erp.url).await;

    let created = new_order("mabang-down-all-day");
    rig.publish(None, &created).await;
    for (hours_later, posts) in [(0, 1), (12, 2)] {
        rig.clock.advance(chrono::Duration::hours(hours_later));
        rig.dispatch_until(A_FEW_BATCHES, || erp.received().len() >= posts)
            .await;
        let status = rig.status(&endpoint).await;
        assert_eq!(status["enabled"], true, "after {hours_later} h: {status:#}");
        assert!(status["failing_since"].is_string(), "{status:#}");
    }
    assert!(rig.metrics.recorded().is_empty());

    // A day after the first failure: the next failure disables it.
    rig.clock.advance(chrono::Duration::hours(12));
    rig.dispatch_until(A_FEW_BATCHES, || erp.received().len() >= 3)
        .await;
    let status = rig.status(&endpoint).await;
    assert_eq!(status["enabled"], false);
    let reason = status["disabled_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("every delivery failed from"),
        "{status:#}"
    );
    assert_eq!(rig.metrics.recorded(), [Metric::WebhookEndpointDisabled]);

    // Its pending delivery is dropped, and a later event is never queued.
    rig.drain(A_FEW_BATCHES).await;
    let allocated = write(&created, |o| o.status = OrderStatus::Allocated);
    assert_eq!(rig.publish(Some(&created), &allocated).await.deliveries, 0);
    assert_eq!(erp.received().len(), 3);
}

#[tokio::test]
async fn after_rotate_secret_both_secrets_verify_until_the_overlap_ends() {
    let rig = Rig::new(Reach::LocalNetwork, schedule(POST_TIMEOUT)).await;
    // One endpoint rotated just now (POST …/rotate-secret), one rotated a
    // day and a minute ago (the clock given to the rotation): its overlap is
    // over.
    let mut endpoints = Vec::new();
    for overlap_over in [false, true] {
        let erp = Receiver::start(Vec::new(), Reply::Status(204)).await;
        let old = rig.subscribe(&erp.url).await;
        let new = if overlap_over {
            let long_ago = chrono::Utc::now() - ROTATION_OVERLAP - chrono::Duration::minutes(1);
            rig.subscriptions
                .rotate(CLIENT, &old.id, long_ago)
                .await
                .expect("rotated")
                .secret
        } else {
            rig.rotate(&old).await
        };
        assert_ne!(old.secret, new);
        erp.hold(&old.secret);
        erp.hold(&new);
        endpoints.push((erp, old.secret, new));
    }

    rig.publish(None, &new_order("mabang-rotated")).await;
    rig.dispatch_until(A_FEW_BATCHES, || {
        endpoints.iter().all(|(erp, ..)| !erp.received().is_empty())
    })
    .await;

    let (erp, old, new) = &endpoints[0];
    let during = &erp.received()[0];
    let signatures: Vec<&str> = during.signature.split(' ').collect();
    assert_eq!(signatures.len(), 2, "{}", during.signature);
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    assert!(
        during.verifies_with(old) && during.verifies_with(new),
        "a receiver holding either secret verifies: {:?}",
        during.verified_with.len()
    );

    let (erp, old, new) = &endpoints[1];
    let after = &erp.received()[0];
    assert_eq!(after.signature.split(' ').count(), 1, "{}", after.signature);
    assert!(after.verifies_with(new));
    assert!(!after.verifies_with(old), "the old secret no longer signs");
}

/// Deliveries are not serialised per order (docs/webhooks.md "Order"): a
/// retried event may arrive after a later one, and `data.sequence` tells the
/// receiver which is newer.
#[tokio::test]
async fn an_event_overtaken_by_a_later_one_carries_the_lower_sequence() {
    let rig = Rig::new(Reach::LocalNetwork, schedule(POST_TIMEOUT)).await;
    let erp = Receiver::start(vec![Reply::RetryAfter(503, 8)], Reply::Status(204)).await;
    rig.subscribe(&erp.url).await;

    let created = new_order("mabang-overtaken");
    rig.publish(None, &created).await;
    rig.dispatch_until(A_FEW_BATCHES, || !erp.received().is_empty())
        .await;
    let allocated = write(&created, |o| o.status = OrderStatus::Allocated);
    let picked = write(&allocated, |o| o.status = OrderStatus::Picked);
    rig.publish(Some(&created), &allocated).await;
    rig.publish(Some(&allocated), &picked).await;
    rig.dispatch_until(Duration::from_secs(20), || erp.received().len() >= 4)
        .await;

    let delivered: Vec<(String, u64)> = erp.received()[1..]
        .iter()
        .map(|r| {
            let sequence = r.body["data"]["sequence"].as_u64().expect("a sequence");
            (r.kind().to_owned(), sequence)
        })
        .collect();
    println!("arrived after the first try failed: {delivered:?}");
    assert_eq!(
        delivered.last().map(|(kind, _)| kind.as_str()),
        Some("order.accepted"),
        "the retried event arrives last"
    );
    // What a receiver keeping the highest sequence per order ends with.
    let newest = delivered
        .iter()
        .max_by_key(|(_, sequence)| *sequence)
        .expect("deliveries");
    assert_eq!(newest.0, "order.picked");
    let sequences: BTreeSet<u64> = delivered.iter().map(|(_, sequence)| *sequence).collect();
    assert_eq!(sequences.len(), 3, "one sequence per write: {delivered:?}");
}

/// How long one healthy delivery took.
#[derive(Debug)]
struct Latency {
    order_number: String,
    /// From the fan-out's send to the receiver.
    sent: Duration,
    /// From the hand-over of its batch to the dispatcher to the receiver.
    in_batch: Duration,
}

/// Publishes `ORDERS` new orders (`{prefix}-{n}`), then runs the dispatcher
/// until `healthy` has all of them, and measures each.
async fn backlog(rig: &Rig, healthy: &Receiver, healthy_id: &str, prefix: &str) -> Vec<Latency> {
    const ORDERS: usize = 12;
    let mut sent = HashMap::new();
    for n in 0..ORDERS {
        let order = new_order(&format!("{prefix}-{n}"));
        rig.publish(None, &order).await;
        sent.insert(order.order_number.clone(), Instant::now());
    }
    let mine = |r: &&Received| {
        r.body["data"]["order_number"]
            .as_str()
            .is_some_and(|n| sent.contains_key(n))
    };
    let dispatcher = rig.run_dispatcher();
    let deadline = Instant::now() + POST_TIMEOUT * 4;
    while healthy.received().iter().filter(mine).count() < ORDERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dispatcher.stop().await;
    let received: Vec<Received> = healthy.received().iter().filter(mine).cloned().collect();
    if received.len() < ORDERS {
        // What the store says of the ones that did not arrive, for the failure.
        let arrived: BTreeSet<&str> = received
            .iter()
            .filter_map(|r| r.body["data"]["order_number"].as_str())
            .collect();
        let missing: Vec<_> = rig
            .deliveries_of(healthy_id)
            .await
            .into_iter()
            .filter(|d| {
                sent.contains_key(&d.order_number) && !arrived.contains(d.order_number.as_str())
            })
            .map(|d| {
                (
                    d.order_number,
                    d.status,
                    d.posts,
                    d.next_attempt_at,
                    d.lease,
                    d.last_attempt,
                )
            })
            .collect();
        // Each batch handed over: seconds since the first send, and how many
        // of its deliveries were the healthy endpoint's.
        let first_sent = sent.values().min().copied().unwrap_or_else(Instant::now);
        let batches: Vec<_> = rig
            .batches()
            .iter()
            .filter(|batch| batch.at >= first_sent)
            .map(|batch| {
                let healthy = batch
                    .tickets
                    .iter()
                    .filter(|ticket| ticket.endpoint_id == healthy_id)
                    .count();
                (
                    format!("{:.3} s", seconds(batch.at - first_sent)),
                    healthy,
                    batch.tickets.len(),
                )
            })
            .collect();
        panic!(
            "{} of {ORDERS} healthy deliveries arrived; the missing ones as stored: {missing:?}; \
             queue (visible, hidden): {:?}; batches (at, healthy, all): {batches:?}",
            received.len(),
            rig.queued().await
        );
    }

    // When each healthy delivery's batch was handed to the dispatcher.
    let mut handed: Vec<(String, Instant)> = Vec::new();
    for batch in rig.batches() {
        for ticket in batch.tickets {
            if ticket.endpoint_id == healthy_id {
                handed.push((ticket.entry, batch.at));
            }
        }
    }
    received
        .iter()
        .map(|delivery| {
            let order_number = delivery.body["data"]["order_number"]
                .as_str()
                .expect("an order number")
                .to_owned();
            let batch_at = handed
                .iter()
                .find(|(entry, _)| entry.ends_with(&delivery.id))
                .map(|(_, at)| *at)
                .expect("its batch");
            Latency {
                sent: delivery.at - sent[&order_number],
                in_batch: delivery.at - batch_at,
                order_number,
            }
        })
        .collect()
}

fn report(title: &str, latencies: &[Latency]) -> (Duration, Duration) {
    println!("{title}:");
    for latency in latencies {
        println!(
            "  {}: {:.3} s after it was sent, {:.3} s after its batch was handed over",
            latency.order_number,
            seconds(latency.sent),
            seconds(latency.in_batch)
        );
    }
    let worst = |f: fn(&Latency) -> Duration| latencies.iter().map(f).max().unwrap_or_default();
    (worst(|l| l.sent), worst(|l| l.in_batch))
}

/// The Done-when point of issue 23: a hanging endpoint with a backlog
/// delays no other endpoint's deliveries by more than one post timeout.
/// One poller (the least concurrency the event source mapping has) takes
/// batches of 10 that mix both endpoints' deliveries; the same backlog
/// without the hanging endpoint is the baseline.
#[tokio::test]
async fn a_hanging_endpoint_delays_another_endpoints_deliveries_by_at_most_one_timeout() {
    // The dispatcher's line per delivery (outcome, store errors), shown when
    // the test fails.
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _log = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .set_default();
    let rig = Rig::new(Reach::LocalNetwork, schedule(POST_TIMEOUT)).await;
    let healthy = Receiver::start(Vec::new(), Reply::Status(204)).await;
    let healthy_id = rig.subscribe(&healthy.url).await.id;
    let alone = backlog(&rig, &healthy, &healthy_id, "mabang-alone").await;

    let hanging = Receiver::start(Vec::new(), Reply::Hang).await;
    rig.subscribe(&hanging.url).await;
    // The fan-out reads the client's endpoints again once its kept list is
    // `ENDPOINTS_TTL` old.
    rig.clock.advance(ENDPOINTS_TTL);
    let beside = backlog(&rig, &healthy, &healthy_id, "mabang-beside").await;

    let (baseline, _) = report("the healthy endpoint alone", &alone);
    let (worst, worst_in_batch) = report(
        &format!(
            "beside an endpoint that never answers ({} posts to it)",
            hanging.received().len()
        ),
        &beside,
    );
    let delay = worst.saturating_sub(baseline);
    println!(
        "worst: {:.3} s alone, {:.3} s beside the hanging endpoint: delayed {:.3} s (post timeout {} s)",
        seconds(baseline),
        seconds(worst),
        seconds(delay),
        POST_TIMEOUT.as_secs()
    );
    assert!(
        !hanging.received().is_empty(),
        "the hanging endpoint was tried"
    );
    // In its batch, no healthy delivery waits for a hanging post …
    assert!(
        worst_in_batch < POST_TIMEOUT / 5,
        "a healthy delivery waited {worst_in_batch:?} for the hanging endpoint in its batch"
    );
    // … and across batches the hanging endpoint costs one timeout: the next
    // batch is received when the hanging posts time out, and its round trips
    // on the emulators (≈ 0.3 s here, more on a loaded machine) come on top.
    assert!(
        delay <= POST_TIMEOUT + Duration::from_secs(1),
        "the healthy endpoint's deliveries were delayed {delay:?}"
    );
}

/// The machine's own name: it resolves to one of the machine's addresses
/// (loopback here, a private one in a container), never a public one.
fn own_host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .expect("the machine's host name")
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_at_delivery_time_is_never_posted_to() {
    let rig = Rig::new(Reach::Internet, schedule(POST_TIMEOUT)).await;
    let host = own_host_name();
    let resolved: Vec<_> = tokio::net::lookup_host((host.as_str(), 0))
        .await
        .expect("the machine's name resolves")
        .collect();
    assert!(
        resolved
            .iter()
            .all(|address| Reach::Internet.admits(address.ip()).is_err()),
        "this test needs the machine's name ({host}) to resolve to its own, non-public addresses: {resolved:?}"
    );
    let erp = Receiver::start_on(&host, Vec::new(), Reply::Status(204)).await;
    // A name and https: nothing at creation says where it leads.
    let url = erp.url.replacen("http://", "https://", 1);
    let endpoint = rig.subscribe(&url).await;

    rig.publish(None, &new_order("mabang-ssrf")).await;
    let mut tried = Value::Null;
    for _ in 0..10 {
        rig.dispatch_once().await;
        let status = rig.status(&endpoint).await;
        if status["recent_deliveries"][0]["attempts"] != 0 {
            tried = status["recent_deliveries"][0]["last_attempt"].clone();
            break;
        }
    }
    // What the ERP reads as the attempt: no status, and why.
    assert_eq!(tried["http_status"], Value::Null, "{tried:#}");
    let answer = tried["answer"].as_str().expect("an answer excerpt");
    assert!(
        answer.contains("loopback") || answer.contains("private"),
        "{answer}"
    );
    assert_eq!(erp.connections(), 0, "never connected to");

    // The same URL is connected to where the local network is allowed
    // (`make run`): the receiver would have seen the connection.
    let local = adapters::webhook_http::HttpWebhookPoster::new(Reach::LocalNetwork)
        .expect("an HTTP client");
    let endpoint_url =
        shared::webhook::EndpointUrl::parse(&url, Reach::LocalNetwork).expect("a local URL");
    let headers = shared::webhook::sign(&[], "evt_probe", 0, b"{}");
    shared::ports::WebhookPoster::post(&local, &endpoint_url, &headers, "{}", POST_TIMEOUT).await;
    assert!(erp.connections() > 0);
}
