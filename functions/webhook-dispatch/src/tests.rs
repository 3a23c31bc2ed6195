use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use shared::memory::MemoryMetrics;
use shared::memory::webhooks::{
    HandClock, MemoryDeliveries, MemoryDeliveryQueue, MemoryEndpoints, MemoryPoster,
};
use shared::ports::{DeliveryClaim, DeliveryStore, EndpointStore};
use shared::webhook::{
    Delivery, DeliveryTicket, Endpoint, EndpointId, EndpointUrl, EventTypes, NewEndpoint,
    POST_TIMEOUT, Reach, WebhookEvent, WebhookSecret, schedule,
};

use super::*;

/// What the writes that record a post may take.
const RECORD_BUDGET: std::time::Duration = std::time::Duration::from_secs(18);

struct World {
    metrics: Arc<MemoryMetrics>,
    endpoints: MemoryEndpoints,
    deliveries: MemoryDeliveries,
    poster: MemoryPoster,
    queue: MemoryDeliveryQueue,
}

impl World {
    fn new() -> Self {
        Self {
            metrics: Arc::default(),
            endpoints: MemoryEndpoints::default(),
            deliveries: MemoryDeliveries::default(),
            poster: MemoryPoster::default(),
            queue: MemoryDeliveryQueue::default(),
        }
    }

    /// An endpoint at `url` with one delivery waiting; its queue message.
    async fn delivery_to(&self, url: &str, n: u32) -> SqsMessage {
        let new = NewEndpoint {
            url: EndpointUrl::parse(url, Reach::Internet).unwrap(),
            event_types: EventTypes::All,
            description: None,
        };
        let endpoint = Endpoint::create(
            EndpointId::generate().unwrap(),
            "20",
            new,
            WebhookSecret::generate().unwrap(),
            Utc::now(),
        );
        assert!(self.endpoints.insert(&endpoint).await.unwrap());
        let event = WebhookEvent {
            id: format!("evt_{n}"),
            kind: shared::webhook::EventType::OrderShipped,
            client_code: "20".into(),
            order_number: format!("mabang-{n}"),
            sequence: 4,
            at: Utc::now(),
            body: r#"{"type":"order.shipped"}"#.into(),
        };
        let ticket = DeliveryTicket::new(&endpoint.id, &event);
        assert!(
            self.deliveries
                .add(&ticket, &Delivery::of(&event))
                .await
                .unwrap()
        );
        message(&format!("m-{n}"), &serde_json::to_string(&ticket).unwrap())
    }

    async fn handle(&self, messages: Vec<SqsMessage>) -> Vec<String> {
        self.handle_until(messages, None).await
    }

    /// Handles `messages` in an invocation that ends at `deadline`, with
    /// [`RECORD_BUDGET`] for the writes that record a post.
    async fn handle_until(
        &self,
        messages: Vec<SqsMessage>,
        deadline: Option<chrono::DateTime<Utc>>,
    ) -> Vec<String> {
        let deliverer = Deliverer::new(
            self.endpoints.clone(),
            self.deliveries.clone(),
            self.poster.clone(),
            HandClock::at(Utc::now()),
            schedule(POST_TIMEOUT),
        )
        .with_record_budget(RECORD_BUDGET);
        let handler =
            DispatchHandler::new(deliverer, self.queue.clone()).with_metrics(self.metrics.clone());
        let mut event = SqsEvent::default();
        event.records = messages;
        let response = handler.handle_until(event, deadline).await;
        response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }
}

fn message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.into());
    message.receipt_handle = Some(format!("receipt-{id}"));
    message.body = Some(body.into());
    message.attributes = HashMap::from([("ApproximateReceiveCount".to_owned(), "1".to_owned())]);
    message
}

#[tokio::test]
async fn a_delivered_event_is_deleted_and_a_failing_endpoint_keeps_only_its_own_message() {
    let world = World::new();
    world.poster.script("https://down.example.com/", &[None]);
    let up = world.delivery_to("https://up.example.com/", 1).await;
    let down = world.delivery_to("https://down.example.com/", 2).await;

    let kept = world.handle(vec![up, down]).await;

    assert_eq!(kept, ["m-2"]);
    let delays = world.queue.delays();
    assert_eq!(delays.len(), 1);
    assert_eq!(delays[0].0, "receipt-m-2");
    assert_eq!(
        delays[0].1,
        std::time::Duration::from_secs(5),
        "the first retry delay"
    );
    assert_eq!(world.poster.posted().len(), 2);
}

#[tokio::test]
async fn an_unreadable_message_is_kept_for_the_dead_letter_queue_and_posts_nothing() {
    let world = World::new();

    let kept = world.handle(vec![message("m-x", "not json")]).await;

    assert_eq!(kept, ["m-x"]);
    assert!(world.poster.posted().is_empty());
}

#[tokio::test]
async fn an_endpoint_answering_gone_is_disabled_and_counted_for_the_alarm() {
    let world = World::new();
    world
        .poster
        .script("https://retired.example.com/", &[Some(410)]);
    let retired = world.delivery_to("https://retired.example.com/", 1).await;
    let up = world.delivery_to("https://up.example.com/", 2).await;

    let kept = world.handle(vec![retired, up]).await;

    assert!(kept.is_empty(), "a 410 is final: nothing to retry");
    assert_eq!(
        world.metrics.recorded(),
        [Metric::WebhookEndpointDisabled],
        "one disabled endpoint, one count"
    );
}

/// An invocation ending in `seconds`.
fn ending_in(seconds: i64) -> Option<chrono::DateTime<Utc>> {
    Some(Utc::now() + chrono::Duration::seconds(seconds))
}

#[tokio::test]
async fn a_delivery_whose_post_could_not_be_recorded_before_the_deadline_is_left_unposted() {
    let world = World::new();
    let late = world.delivery_to("https://up.example.com/", 1).await;
    let ticket: DeliveryTicket =
        serde_json::from_str(late.body.as_deref().unwrap_or_default()).unwrap();

    // The post's 5 s and the record's 18 s do not fit in 20 s.
    let kept = world.handle_until(vec![late], ending_in(20)).await;

    assert_eq!(kept, ["m-1"]);
    assert!(world.poster.posted().is_empty());
    let delays = world.queue.delays();
    assert_eq!(
        delays,
        [("receipt-m-1".to_owned(), std::time::Duration::from_secs(1))]
    );
    let delivery = world.deliveries.stored(&ticket).expect("the delivery");
    assert_eq!(delivery.posts, 0, "no try used up");
    assert_eq!(delivery.lease, None, "nothing claimed");
}

#[tokio::test]
async fn a_delivery_is_posted_when_the_invocation_has_time_to_record_it() {
    let world = World::new();
    let message = world.delivery_to("https://up.example.com/", 1).await;

    let kept = world.handle_until(vec![message], ending_in(25)).await;

    assert_eq!(kept, Vec::<String>::new());
    assert_eq!(world.poster.posted().len(), 1);
}

/// The in-memory deliveries, whose claim takes `stall` of the invocation
/// once (it applies, and its answer comes back that much later).
struct SlowClaim {
    deliveries: MemoryDeliveries,
    clock: HandClock,
    stall: std::sync::Mutex<Option<chrono::Duration>>,
}

impl DeliveryStore for SlowClaim {
    async fn add(
        &self,
        ticket: &DeliveryTicket,
        delivery: &Delivery,
    ) -> Result<bool, shared::error::StoreError> {
        self.deliveries.add(ticket, delivery).await
    }

    async fn claim(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        now: chrono::DateTime<Utc>,
        policy: &shared::callback::retry::RetryPolicy,
    ) -> Result<Option<shared::ports::DeliveryClaim>, shared::error::StoreError> {
        let claimed = self.deliveries.claim(ticket, owner, now, policy).await;
        let stall = self.stall.lock().expect("the stall").take();
        if let Some(stall) = stall {
            self.clock.advance(stall);
        }
        claimed
    }

    async fn settle(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        delivery: &Delivery,
    ) -> Result<shared::ports::Save, shared::error::StoreError> {
        self.deliveries.settle(ticket, owner, delivery).await
    }

    async fn reopen(
        &self,
        ticket: &DeliveryTicket,
        now: chrono::DateTime<Utc>,
    ) -> Result<Option<shared::ports::Reopen>, shared::error::StoreError> {
        self.deliveries.reopen(ticket, now).await
    }

    async fn recent(
        &self,
        endpoint: &EndpointId,
        limit: usize,
    ) -> Result<Vec<Delivery>, shared::error::StoreError> {
        self.deliveries.recent(endpoint, limit).await
    }
}

#[tokio::test]
async fn a_delivery_claimed_in_time_whose_time_runs_out_before_the_post_is_posted_once_later() {
    let world = World::new();
    let late = world.delivery_to("https://up.example.com/", 1).await;
    let ticket: DeliveryTicket =
        serde_json::from_str(late.body.as_deref().unwrap_or_default()).unwrap();
    let clock = HandClock::at(Utc::now());
    let deliveries = SlowClaim {
        deliveries: world.deliveries.clone(),
        clock: clock.clone(),
        stall: std::sync::Mutex::new(Some(chrono::Duration::seconds(3))),
    };
    let deliverer = Deliverer::new(
        world.endpoints.clone(),
        deliveries,
        world.poster.clone(),
        clock.clone(),
        schedule(POST_TIMEOUT),
    )
    .with_record_budget(RECORD_BUDGET);
    let handler = DispatchHandler::new(deliverer, world.queue.clone());
    let handle = |left: i64| {
        let mut event = SqsEvent::default();
        event.records = vec![late.clone()];
        handler.handle_until(event, Some(clock.now() + chrono::Duration::seconds(left)))
    };

    // 25 s leave the post's 5 s and the record's 18 s at the claim; the
    // claim's answer takes 3 s of them: 22 s left before the post.
    let kept = handle(25).await.batch_item_failures;

    assert_eq!(kept.len(), 1, "SQS keeps it for a later receive");
    assert!(world.poster.posted().is_empty(), "nothing posted");
    let delivery = world.deliveries.stored(&ticket).expect("the delivery");
    assert_eq!(delivery.status, shared::webhook::DeliveryStatus::Pending);
    assert_eq!(delivery.posts, 0, "the claim's try is given back");
    assert_eq!(delivery.lease, None, "the claim is given back");
    let delays = world.queue.delays();
    assert_eq!(
        delays,
        [("receipt-m-1".to_owned(), std::time::Duration::from_secs(1))],
        "received again at once"
    );

    // The message's next receive, with time enough: posted, once.
    clock.advance(chrono::Duration::seconds(1));
    let kept = handle(25).await.batch_item_failures;

    assert!(kept.is_empty(), "delivered: {kept:?}");
    assert_eq!(world.poster.posted().len(), 1);
    let delivery = world.deliveries.stored(&ticket).expect("the delivery");
    assert_eq!(delivery.status, shared::webhook::DeliveryStatus::Delivered);
    assert_eq!(delivery.posts, 1, "one post, one try");
}

/// SQS may hand one message to two receivers with the same receive count
/// (a duplicate): while the first holds the delivery mid-post, the second
/// must find it held, not take the first's lease for its own retried claim.
#[tokio::test]
async fn a_duplicate_receive_with_the_same_count_does_not_post_beside_the_first() {
    let world = World::new();
    let first = world.delivery_to("https://up.example.com/", 1).await;
    let ticket: DeliveryTicket =
        serde_json::from_str(first.body.as_deref().unwrap_or_default()).unwrap();
    let mut duplicate = first.clone();
    duplicate.receipt_handle = Some("receipt-m-1-duplicate".into());
    // The first receive has claimed it and is posting.
    let claimed = world
        .deliveries
        .claim(&ticket, &owner(&first), Utc::now(), &schedule(POST_TIMEOUT))
        .await
        .unwrap();
    assert!(
        matches!(claimed, Some(DeliveryClaim::Claimed(_))),
        "{claimed:?}"
    );

    let kept = world.handle(vec![duplicate]).await;

    assert!(
        world.poster.posted().is_empty(),
        "posted beside the first receive"
    );
    assert_eq!(kept, ["m-1"], "SQS keeps the duplicate for later");
    assert_eq!(world.deliveries.stored(&ticket).expect("stored").posts, 1);
}
