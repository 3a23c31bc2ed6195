use chrono::{TimeZone, Utc};

use super::*;
use crate::record::OrderRecord;
use crate::record::event::{EventKind, EventSource, WarehouseEvent};
use crate::webhook::*;

const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");

fn accepted() -> OrderState {
    let order = crate::intake::parse_order(SAMPLE.as_bytes()).unwrap().order;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap();
    OrderState::from(&OrderRecord::accept(order, Vec::new(), at))
}

/// `before` after the warehouse reported `kind`.
fn after(before: &OrderState, kind: EventKind) -> OrderState {
    let order = crate::intake::parse_order(SAMPLE.as_bytes()).unwrap().order;
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
    let mut record = OrderRecord::accept(order, Vec::new(), now);
    record.status = before.status;
    record.progress = before.progress.clone();
    let event = WarehouseEvent {
        source: EventSource::Warehouse,
        event_id: format!("e-{}", before.version),
        occurred_at: now,
        kind,
    };
    record.apply_event(&event, now).unwrap();
    let mut after = before.clone();
    after.status = record.status;
    after.progress = record.progress;
    after.version += 1;
    after
}
use chrono::Duration;

use crate::memory::webhooks::{
    HandClock, MemoryDeliveries, MemoryDeliveryQueue, MemoryEndpoints, MemoryEventLog, MemoryPoster,
};
use crate::ports::EndpointStore;

struct World {
    endpoints: MemoryEndpoints,
    log: MemoryEventLog,
    deliveries: MemoryDeliveries,
    queue: MemoryDeliveryQueue,
    poster: MemoryPoster,
    clock: HandClock,
}

impl World {
    fn new() -> Self {
        Self {
            endpoints: MemoryEndpoints::default(),
            log: MemoryEventLog::default(),
            deliveries: MemoryDeliveries::default(),
            queue: MemoryDeliveryQueue::default(),
            poster: MemoryPoster::default(),
            // Now: the reference library checks a signature's time against its clock.
            clock: HandClock::at(Utc::now()),
        }
    }

    async fn endpoint(&self, url: &str, types: EventTypes) -> Endpoint {
        let new = NewEndpoint {
            url: EndpointUrl::parse(url, Reach::Internet).unwrap(),
            event_types: types,
            description: None,
        };
        let endpoint = Endpoint::create(
            EndpointId::generate().unwrap(),
            "20",
            new,
            WebhookSecret::generate().unwrap(),
            self.clock.now(),
        );
        assert!(self.endpoints.insert(&endpoint).await.unwrap());
        endpoint
    }

    async fn publish(&self, before: &OrderState, after: &OrderState) -> Vec<DeliveryTicket> {
        let fan_out = FanOut::new(
            self.endpoints.clone(),
            self.log.clone(),
            self.deliveries.clone(),
            self.queue.clone(),
        );
        fan_out.publish(Some(before), after).await.unwrap();
        self.queue.take()
    }

    async fn deliver(&self, ticket: &DeliveryTicket, owner: &str) -> Delivered {
        let deliverer = Deliverer::new(
            self.endpoints.clone(),
            self.deliveries.clone(),
            self.poster.clone(),
            self.clock.clone(),
            schedule(POST_TIMEOUT),
        );
        deliverer.deliver(ticket, owner, None).await.unwrap()
    }
}

use crate::ports::Clock;

#[tokio::test]
async fn an_event_reaches_each_endpoint_that_wants_it_signed_and_only_once() {
    let world = World::new();
    let all = world
        .endpoint("https://erp.example.com/all", EventTypes::All)
        .await;
    world
        .endpoint(
            "https://erp.example.com/shipped",
            EventTypes::Only([EventType::OrderShipped].into()),
        )
        .await;
    let before = accepted();
    let allocated = after(&before, EventKind::Allocated);

    let tickets = world.publish(&before, &allocated).await;
    assert_eq!(tickets.len(), 1, "only the endpoint of every type wants it");
    let first = world.deliver(&tickets[0], "m1#1").await;
    // The stream hands the write over again, and the queue its message.
    let again = world.publish(&before, &allocated).await;
    let second = world.deliver(&again[0], "m2#1").await;

    assert_eq!(first.outcome, DeliveryOutcome::Delivered);
    assert_eq!(second.outcome, DeliveryOutcome::Dropped);
    let posted = world.poster.posted();
    assert_eq!(posted.len(), 1);
    let mut headers = http::HeaderMap::new();
    for (name, value) in posted[0].headers.pairs() {
        headers.insert(name, value.parse().unwrap());
    }
    let receiver = standardwebhooks::Webhook::new(&all.secret.expose()).unwrap();
    assert!(receiver.verify(posted[0].body.as_bytes(), &headers).is_ok());
    assert_eq!(
        posted[0].headers.id,
        again[0].entry.split('#').nth(1).unwrap()
    );
}

#[tokio::test]
async fn a_hanging_endpoint_costs_one_timeout_per_backoff_and_holds_no_other() {
    let world = World::new();
    world
        .endpoint("https://down.example.com/", EventTypes::All)
        .await;
    world
        .endpoint("https://up.example.com/", EventTypes::All)
        .await;
    world
        .poster
        .script("https://down.example.com/", &[None; 20]);
    let mut state = accepted();
    let mut tickets = Vec::new();
    for kind in [EventKind::Allocated, EventKind::Picked] {
        let next = after(&state, kind);
        tickets.extend(world.publish(&state, &next).await);
        state = next;
    }
    assert_eq!(tickets.len(), 4);

    let mut outcomes = Vec::new();
    for (n, ticket) in tickets.iter().enumerate() {
        outcomes.push((
            ticket.endpoint_id.clone(),
            world.deliver(ticket, &format!("m{n}")).await.outcome,
        ));
    }

    let posts_to = |host: &str| {
        world
            .poster
            .posted()
            .iter()
            .filter(|p| p.url.contains(host))
            .count()
    };
    assert_eq!(posts_to("down.example.com"), 1, "{outcomes:?}");
    assert_eq!(posts_to("up.example.com"), 2, "{outcomes:?}");
    let held = outcomes
        .iter()
        .filter(|(_, o)| *o == DeliveryOutcome::Held)
        .count();
    assert_eq!(held, 1, "{outcomes:?}");
    world.clock.advance(Duration::seconds(6));
    let retried = world.deliver(&tickets[2], "m9").await;
    assert_ne!(retried.outcome, DeliveryOutcome::Held);
}

#[tokio::test]
async fn a_delivery_to_a_disabled_endpoint_fails_unposted_and_a_replay_after_enabling_sends_it() {
    let world = World::new();
    let endpoint = world
        .endpoint("https://erp.example.com/", EventTypes::All)
        .await;
    let before = accepted();
    let tickets = world
        .publish(&before, &after(&before, EventKind::Allocated))
        .await;
    let switch = |enabled: bool| {
        let world = &world;
        let id = endpoint.id.clone();
        async move {
            let mut stored = world.endpoints.get("20", &id).await.unwrap().unwrap();
            let read = stored.version;
            stored.change(
                EndpointChange {
                    url: None,
                    event_types: None,
                    enabled: Some(enabled),
                    description: None,
                },
                world.clock.now(),
            );
            world.endpoints.save(&stored, read).await.unwrap();
        }
    };
    // Disabled while its delivery was on the queue (a 410 from another
    // delivery, or an operator).
    switch(false).await;

    let dropped = world.deliver(&tickets[0], "m1#1").await;

    assert_eq!(dropped.outcome, DeliveryOutcome::Dropped);
    assert!(world.poster.posted().is_empty());
    let stored = world.deliveries.stored(&tickets[0]).unwrap();
    assert_eq!((stored.status, stored.posts), (DeliveryStatus::Failed, 0));

    switch(true).await;
    let replay = Replay::new(
        world.endpoints.clone(),
        world.log.clone(),
        world.deliveries.clone(),
        world.queue.clone(),
    );
    let since = before.updated_at - Duration::hours(1);
    let replayed = replay
        .replay("20", endpoint.id.as_str(), since, world.clock.now())
        .await
        .unwrap();
    assert_eq!((replayed.queued, replayed.reopened), (1, 1));
    let resent = world.queue.take();
    assert_eq!(resent, tickets);
    assert_eq!(
        world.deliver(&resent[0], "m2#1").await.outcome,
        DeliveryOutcome::Delivered
    );
    assert_eq!(world.poster.posted().len(), 1);
}

#[tokio::test]
async fn a_new_endpoint_misses_the_events_of_at_most_the_time_the_endpoints_are_kept() {
    let world = World::new();
    world
        .endpoint("https://erp.example.com/first", EventTypes::All)
        .await;
    let fan_out = FanOut::new(
        world.endpoints.clone(),
        world.log.clone(),
        world.deliveries.clone(),
        world.queue.clone(),
    )
    .with_endpoints_kept(ENDPOINTS_TTL, world.clock.clone());
    let mut state = accepted();
    let mut deliveries = Vec::new();
    for (kind, wait) in [
        (EventKind::Allocated, Duration::zero()),
        // The second endpoint is created now: the kept list lacks it…
        (EventKind::Picked, ENDPOINTS_TTL - Duration::seconds(1)),
        // …until it is older than the TTL and read again.
        (EventKind::Cancelled { reason: None }, Duration::seconds(1)),
    ] {
        if kind == EventKind::Picked {
            world
                .endpoint("https://erp.example.com/second", EventTypes::All)
                .await;
        }
        world.clock.advance(wait);
        let next = after(&state, kind);
        deliveries.push(
            fan_out
                .publish(Some(&state), &next)
                .await
                .unwrap()
                .deliveries,
        );
        state = next;
    }

    assert_eq!(deliveries, [1, 1, 2]);
}

/// A poster answered only after the other deliveries handled at once have
/// started, as a real endpoint's round trip is.
#[derive(Clone, Default)]
struct RoundTrip(MemoryPoster);

impl crate::ports::WebhookPoster for RoundTrip {
    async fn post(
        &self,
        url: &EndpointUrl,
        headers: &SignedHeaders,
        body: &str,
        timeout: std::time::Duration,
    ) -> PostResult {
        tokio::task::yield_now().await;
        self.0.post(url, headers, body, timeout).await
    }
}

#[tokio::test]
async fn once_a_block_is_over_one_delivery_probes_and_the_others_wait_for_its_answer() {
    let world = World::new();
    let url = "https://recovering.example.com/";
    world.endpoint(url, EventTypes::All).await;
    world.poster.script(url, &[None, None]);
    let mut state = accepted();
    let mut tickets = Vec::new();
    for kind in [
        EventKind::Shortage { message: None },
        EventKind::Allocated,
        EventKind::Picked,
        EventKind::Cancelled { reason: None },
    ] {
        let next = after(&state, kind);
        tickets.extend(world.publish(&state, &next).await);
        state = next;
    }
    let deliverer = Deliverer::new(
        world.endpoints.clone(),
        world.deliveries.clone(),
        RoundTrip(world.poster.clone()),
        world.clock.clone(),
        schedule(POST_TIMEOUT),
    );
    // The first post fails: the endpoint is blocked, the others held.
    let first = deliverer.deliver(&tickets[0], "m0", None).await.unwrap();
    assert_eq!(first.outcome, DeliveryOutcome::Retrying);

    // The block is over and the held three come back together: one probes.
    world.clock.advance(FIRST_BACKOFF + Duration::seconds(1));
    let together = tokio::join!(
        deliverer.deliver(&tickets[1], "b1", None),
        deliverer.deliver(&tickets[2], "b2", None),
        deliverer.deliver(&tickets[3], "b3", None),
    );
    let outcomes = [together.0, together.1, together.2].map(|d| d.unwrap().outcome);
    assert_eq!(world.poster.posted().len(), 2, "{outcomes:?}");
    assert_eq!(
        outcomes,
        [
            DeliveryOutcome::Retrying,
            DeliveryOutcome::Held,
            DeliveryOutcome::Held
        ]
    );

    // The probe failed: a longer block, then the next probe succeeds and
    // the rest follow.
    world
        .clock
        .advance(FIRST_BACKOFF * 2 + Duration::seconds(1));
    let probe = deliverer.deliver(&tickets[2], "c0", None).await.unwrap();
    assert_eq!(probe.outcome, DeliveryOutcome::Delivered);
    let follower = deliverer.deliver(&tickets[3], "c1", None).await.unwrap();
    assert_eq!(follower.outcome, DeliveryOutcome::Delivered);
}
