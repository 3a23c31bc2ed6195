//! The handler over the ports' in-memory fakes: what SQS is told for each
//! thing a delivery can come to (the batch response's failures, retry
//! delays, moves to the dead-letter queue).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use chrono::Utc;
use shared::callback::RetryPolicy;
use shared::callback::retry::store_backoff;
use shared::config::Warehouses;
use shared::domain::OrderNumber;
use shared::error::StoreError;
use shared::memory::{MemoryPartner, MemoryQueue, MemoryStore, QueueCall, shipped_order};
use shared::ports::{
    Access, ClaimOutcome, Guard, Insert, Lookup, OrderStore, PartnerReply, Save, StaticToken,
    SystemClock, TransportError,
};
use shared::record::OrderRecord;
use shared::record::callback::{CallbackStatus, Claim};

use super::*;

const WAREHOUSES: &str = r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#;

fn policy(max_posts: u32) -> RetryPolicy {
    RetryPolicy {
        delays: vec![Duration::from_secs(60), Duration::from_secs(300)],
        max_posts,
        lease: Duration::from_secs(50),
        post_timeout: Duration::from_secs(10),
    }
}

/// What the handler's writes that record a post may take.
const RECORD_BUDGET: Duration = Duration::from_secs(20);

type Handler<S> = DispatchHandler<S, MemoryPartner, SystemClock, StaticToken, Arc<MemoryQueue>>;

/// A handler over in-memory fakes.
struct World {
    store: Arc<MemoryStore>,
    partner: MemoryPartner,
    queue: Arc<MemoryQueue>,
    handler: Arc<Handler<Arc<MemoryStore>>>,
}

impl World {
    fn new(max_posts: u32) -> Self {
        let store = Arc::new(MemoryStore::default());
        let partner = MemoryPartner::default();
        let queue = Arc::new(MemoryQueue::default());
        let handler = handler(store.clone(), partner.clone(), queue.clone(), max_posts);
        Self {
            store,
            partner,
            queue,
            handler,
        }
    }

    /// Stores a shipped, handed-over order: its callback is due. The
    /// message the outbox sent for it.
    fn shipped(&self, number: &str) -> SqsMessage {
        let mut record = shipped_order(number);
        self.store.put(&mut record);
        let sent = self.store.take_outbox();
        let [sent] = sent.as_slice() else {
            panic!("one outbox message: {sent:?}");
        };
        message(
            &format!("m-{number}"),
            &format!(
                r#"{{"order_number":"{}","generation":"{}"}}"#,
                sent.order_number, sent.generation
            ),
        )
    }

    fn status(&self, number: &str) -> CallbackStatus {
        let number = OrderNumber::parse(number).expect("an order number");
        self.store
            .stored(&number)
            .expect("the order is stored")
            .callback
            .status
    }

    async fn handle(&self, messages: Vec<SqsMessage>) -> Vec<String> {
        failures(Arc::clone(&self.handler), messages).await
    }

    /// [`World::handle`] in an invocation that ends in `left`.
    async fn handle_with_left(&self, messages: Vec<SqsMessage>, left: Duration) -> Vec<String> {
        let deadline = Utc::now() + chrono::Duration::from_std(left).expect("a duration");
        failures_until(Arc::clone(&self.handler), messages, Some(deadline)).await
    }
}

/// A world with order `number` shipped and its message handled in an
/// invocation that ends in `left`; the ids the batch response names.
async fn shipped_and_handled_with_left(number: &str, left: Duration) -> (World, Vec<String>) {
    let world = World::new(3);
    let message = world.shipped(number);
    let kept = world.handle_with_left(vec![message], left).await;
    (world, kept)
}

fn handler<S: OrderStore + 'static>(
    store: S,
    partner: MemoryPartner,
    queue: Arc<MemoryQueue>,
    max_posts: u32,
) -> Arc<Handler<S>> {
    let dispatcher = Dispatcher::new(
        store,
        partner,
        StaticToken::new("test-token"),
        SystemClock,
        Warehouses::from_json(WAREHOUSES).expect("warehouses"),
        policy(max_posts),
    )
    .with_record_budget(RECORD_BUDGET);
    Arc::new(DispatchHandler::new(dispatcher, queue))
}

/// The ids the batch response names (the messages SQS keeps).
async fn failures<S: OrderStore + 'static>(
    handler: Arc<Handler<S>>,
    messages: Vec<SqsMessage>,
) -> Vec<String> {
    failures_until(handler, messages, None).await
}

/// [`failures`] in an invocation that ends at `deadline`.
async fn failures_until<S: OrderStore + 'static>(
    handler: Arc<Handler<S>>,
    messages: Vec<SqsMessage>,
    deadline: Option<chrono::DateTime<Utc>>,
) -> Vec<String> {
    let mut event = SqsEvent::default();
    event.records = messages;
    let mut ids: Vec<String> = handler
        .handle_until(event, deadline)
        .await
        .batch_item_failures
        .into_iter()
        .map(|failure| failure.item_identifier)
        .collect();
    ids.sort();
    ids
}

/// The queue call that hides message `id` (as [`message`] made it) for `delay`.
fn retry_in(id: &str, delay: Duration) -> QueueCall {
    QueueCall::RetryIn(format!("receipt-{id}"), delay)
}

fn message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.to_owned());
    message.receipt_handle = Some(format!("receipt-{id}"));
    message.body = Some(body.to_owned());
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    message.attributes.insert(
        "SentTimestamp".into(),
        Utc::now().timestamp_millis().to_string(),
    );
    message
}

fn answer(status: u16, body: &str) -> Result<PartnerReply, TransportError> {
    Ok(PartnerReply {
        status,
        retry_after: None,
        body: body.to_owned(),
    })
}

#[tokio::test]
async fn a_delivered_callback_is_deleted_from_the_queue() {
    let world = World::new(3);
    let message = world.shipped("o-1");

    let kept = world.handle(vec![message]).await;

    assert_eq!(kept, Vec::<String>::new());
    assert_eq!(world.partner.posted(), ["o-1"]);
    assert_eq!(world.status("o-1"), CallbackStatus::Delivered);
    assert_eq!(world.queue.calls(), []);
}

#[tokio::test]
async fn a_partner_error_keeps_only_that_message_hidden_for_the_first_retry_delay() {
    let world = World::new(3);
    world.partner.answer("o-down", answer(503, ""));
    let down = world.shipped("o-down");
    let up = world.shipped("o-up");

    let kept = world.handle(vec![down, up]).await;

    assert_eq!(kept, ["m-o-down"]);
    assert_eq!(
        world.queue.calls(),
        [retry_in("m-o-down", Duration::from_secs(60))]
    );
    assert_eq!(world.status("o-down"), CallbackStatus::Retrying);
    assert_eq!(world.status("o-up"), CallbackStatus::Delivered);
}

#[tokio::test]
async fn rejected_credentials_are_retried_never_failed() {
    let world = World::new(3);
    world.partner.answer("o-1", answer(401, ""));
    let message = world.shipped("o-1");

    let kept = world.handle(vec![message]).await;

    assert_eq!(kept, ["m-o-1"]);
    assert!(matches!(world.queue.calls()[..], [QueueCall::RetryIn(..)]));
    assert_eq!(world.status("o-1"), CallbackStatus::Retrying);
}

#[tokio::test]
async fn a_refusal_fails_the_callback_and_deletes_the_message() {
    let world = World::new(3);
    world.partner.answer(
        "o-1",
        answer(400, r#"{"Errors":[{"Code":"C1","Message":"bad field"}]}"#),
    );
    let message = world.shipped("o-1");

    let kept = world.handle(vec![message]).await;

    assert_eq!(kept, Vec::<String>::new());
    assert_eq!(world.queue.calls(), []);
    assert_eq!(world.status("o-1"), CallbackStatus::Failed);
}

#[tokio::test]
async fn the_last_post_of_the_schedule_moves_the_message_to_the_dead_letter_queue() {
    let world = World::new(1);
    world
        .partner
        .answer("o-1", Err(TransportError::Timeout(Duration::from_secs(10))));
    let message = world.shipped("o-1");
    let body = message.body.clone().unwrap_or_default();

    let kept = world.handle(vec![message]).await;

    assert_eq!(kept, Vec::<String>::new(), "SQS deletes the original");
    assert_eq!(world.queue.calls(), [QueueCall::DeadLetter(body)]);
    assert_eq!(world.status("o-1"), CallbackStatus::DeadLettered);
}

#[tokio::test]
async fn a_dead_letter_queue_out_of_reach_keeps_the_message_for_another_try() {
    let world = World::new(1);
    world.partner.answer("o-1", answer(500, ""));
    world.queue.set_dead_letter_queue_unreachable(true);
    let message = world.shipped("o-1");

    let kept = world.handle(vec![message.clone()]).await;

    assert_eq!(kept, ["m-o-1"]);
    assert_eq!(
        world.queue.calls(),
        [retry_in("m-o-1", Duration::from_secs(5))]
    );
    // It comes back: its callback is dead-lettered already, so this
    // delivery finishes the move, without another post.
    world.queue.set_dead_letter_queue_unreachable(false);
    let kept = world.handle(vec![message.clone()]).await;
    assert_eq!(kept, Vec::<String>::new());
    assert_eq!(
        world.queue.calls().last(),
        Some(&QueueCall::DeadLetter(message.body.unwrap_or_default()))
    );
    assert_eq!(world.partner.posted(), ["o-1"]);
}

#[tokio::test]
async fn an_operators_redrive_rearms_a_dead_lettered_callback_and_posts_it_again() {
    let world = World::new(1);
    world.partner.answer("o-1", answer(500, ""));
    let message = world.shipped("o-1");
    world.handle(vec![message.clone()]).await;
    assert_eq!(world.status("o-1"), CallbackStatus::DeadLettered);
    world
        .partner
        .answer("o-1", answer(200, r#"{"Success": true}"#));
    let mut redriven = message;
    redriven.message_id = Some("m-redriven".into());
    let mut marker = SqsMessageAttribute::default();
    marker.string_value = Some("callback-dispatch".into());
    marker.data_type = Some("String".into());
    redriven
        .message_attributes
        .insert(DEAD_LETTERED_ATTRIBUTE.into(), marker);

    let kept = world.handle(vec![redriven]).await;

    assert_eq!(kept, Vec::<String>::new());
    assert_eq!(world.partner.posted(), ["o-1", "o-1"]);
    assert_eq!(world.status("o-1"), CallbackStatus::Delivered);
}

#[tokio::test]
async fn unreadable_messages_and_unknown_orders_go_to_the_dead_letter_queue() {
    let world = World::new(3);
    let unreadable = message("m-junk", "not json");
    let unknown = message(
        "m-unknown",
        r#"{"order_number":"o-nowhere","generation":"1"}"#,
    );

    let kept = world.handle(vec![unreadable, unknown]).await;

    assert_eq!(kept, Vec::<String>::new());
    let mut calls = world.queue.calls();
    calls.sort_by_key(|call| format!("{call:?}"));
    assert_eq!(
        calls,
        [
            QueueCall::DeadLetter("not json".into()),
            QueueCall::DeadLetter(r#"{"order_number":"o-nowhere","generation":"1"}"#.into()),
        ]
    );
    assert_eq!(world.partner.posted(), Vec::<String>::new());
}

#[tokio::test]
async fn a_second_message_for_a_callback_being_posted_is_kept_until_the_lease_ends() {
    let world = World::new(3);
    let message = world.shipped("o-1");
    let number = OrderNumber::parse("o-1").expect("an order number");
    let generation = world
        .store
        .stored(&number)
        .expect("the order")
        .callback
        .generation;
    let claim = Claim {
        generation,
        message_id: "m-o-1".into(),
        owner: "another-delivery".into(),
        now: Utc::now(),
        lease: chrono::Duration::seconds(50),
        max_posts: 3,
    };
    let claimed = world.store.claim(&number, &claim).await.expect("a claim");
    assert!(matches!(claimed, Some(ClaimOutcome::Claimed(_))));

    let kept = world.handle(vec![message]).await;

    assert_eq!(kept, ["m-o-1"]);
    let [QueueCall::RetryIn(receipt, delay)] = &world.queue.calls()[..] else {
        panic!("one retry: {:?}", world.queue.calls());
    };
    assert_eq!(receipt, "receipt-m-o-1");
    assert!(
        (Duration::from_secs(49)..=Duration::from_secs(51)).contains(delay),
        "hidden until the lease ends: {delay:?}"
    );
    assert_eq!(world.partner.posted(), Vec::<String>::new());
}

/// A store that cannot be reached.
#[derive(Debug)]
struct Unreachable;

fn unavailable() -> StoreError {
    StoreError::Unavailable("the store is unreachable (a test's fault)".into())
}

impl OrderStore for Unreachable {
    async fn insert_new(&self, _: &OrderRecord) -> Result<Insert, StoreError> {
        Err(unavailable())
    }

    async fn get(&self, _: &OrderNumber, _: Access<'_>) -> Result<Lookup, StoreError> {
        Err(unavailable())
    }

    async fn save(&self, _: &mut OrderRecord, _: Guard<'_>) -> Result<Save, StoreError> {
        Err(unavailable())
    }

    async fn claim(&self, _: &OrderNumber, _: &Claim) -> Result<Option<ClaimOutcome>, StoreError> {
        Err(unavailable())
    }

    async fn orders_with_platform_order(&self, _: &str) -> Result<Vec<OrderNumber>, StoreError> {
        Err(unavailable())
    }
}

#[tokio::test]
async fn a_store_failure_keeps_the_message_and_backs_off() {
    let queue = Arc::new(MemoryQueue::default());
    let partner = MemoryPartner::default();
    let handler = handler(Unreachable, partner.clone(), queue.clone(), 3);
    let mut message = message("m-1", r#"{"order_number":"o-1","generation":"1"}"#);
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), "3".into());

    let kept = failures(handler, vec![message]).await;

    assert_eq!(kept, ["m-1"]);
    assert_eq!(queue.calls(), [retry_in("m-1", store_backoff(3))]);
    assert_eq!(partner.posted(), Vec::<String>::new());
}

/// A partner so slow that the lease runs out and another delivery claims
/// the callback before the answer comes back.
#[derive(Debug, Clone)]
struct Overtaken {
    store: Arc<MemoryStore>,
    partner: MemoryPartner,
}

impl shared::ports::PartnerClient for Overtaken {
    async fn post_callback(
        &self,
        body: &shared::callback::CallbackBody,
        idempotency_key: &str,
        token: &shared::ports::AccessToken,
    ) -> Result<PartnerReply, TransportError> {
        let number = OrderNumber::parse(&body.parcel_id).expect("an order number");
        let stored = self.store.stored(&number).expect("the order is stored");
        let claim = Claim {
            generation: stored.callback.generation,
            message_id: stored.callback.message_id.clone().unwrap_or_default(),
            owner: "a-later-delivery".into(),
            now: Utc::now() + chrono::Duration::hours(1),
            lease: chrono::Duration::seconds(50),
            max_posts: 3,
        };
        let claimed = self.store.claim(&number, &claim).await.expect("a claim");
        assert!(matches!(claimed, Some(ClaimOutcome::Claimed(_))));
        self.partner
            .post_callback(body, idempotency_key, token)
            .await
    }
}

#[tokio::test]
async fn an_answer_that_comes_after_the_lease_is_only_kept_in_the_ledger_and_the_message_left_alone()
 {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let partner = MemoryPartner::default();
    let dispatcher = Dispatcher::new(
        store.clone(),
        Overtaken {
            store: store.clone(),
            partner: partner.clone(),
        },
        StaticToken::new("test-token"),
        SystemClock,
        Warehouses::from_json(WAREHOUSES).expect("warehouses"),
        policy(3),
    );
    let handler = Arc::new(DispatchHandler::new(dispatcher, queue.clone()));
    let mut record = shipped_order("o-1");
    store.put(&mut record);
    let [sent] = &store.take_outbox()[..] else {
        panic!("one outbox message");
    };
    let message = message(
        "m-o-1",
        &format!(
            r#"{{"order_number":"o-1","generation":"{}"}}"#,
            sent.generation
        ),
    );

    let mut event = SqsEvent::default();
    event.records = vec![message];
    let kept = handler.handle(event).await.batch_item_failures;

    assert_eq!(kept.len(), 1, "SQS keeps it for the delivery that holds it");
    assert_eq!(queue.calls(), [], "its visibility is not ours to change");
    let number = OrderNumber::parse("o-1").expect("an order number");
    let stored = store.stored(&number).expect("the order is stored");
    assert_eq!(stored.callback.status, CallbackStatus::Pending);
    assert_eq!(partner.posted(), ["o-1"]);
    assert_eq!(
        stored.callback.attempts.len(),
        1,
        "the answer is in the ledger"
    );
}

#[tokio::test]
async fn a_message_whose_post_could_not_be_recorded_before_the_deadline_is_left_unposted() {
    // The post's 10 s and the record's 20 s do not fit in 25 s.
    let (world, kept) = shipped_and_handled_with_left("o-late", Duration::from_secs(25)).await;

    assert_eq!(kept, ["m-o-late"]);
    assert_eq!(world.partner.posted(), Vec::<String>::new());
    assert_eq!(
        world.queue.calls(),
        [retry_in("m-o-late", Duration::from_secs(1))]
    );
    let number = OrderNumber::parse("o-late").expect("an order number");
    let callback = world.store.stored(&number).expect("stored").callback;
    assert_eq!(callback.status, CallbackStatus::Pending);
    assert_eq!(callback.posts, 0, "no try used up");
    assert_eq!(callback.lease, None, "nothing claimed");
}

#[tokio::test]
async fn a_message_is_posted_when_the_invocation_has_time_to_record_it() {
    let (world, kept) = shipped_and_handled_with_left("o-1", Duration::from_secs(35)).await;

    assert_eq!(kept, Vec::<String>::new());
    assert_eq!(world.partner.posted(), ["o-1"]);
    assert_eq!(world.status("o-1"), CallbackStatus::Delivered);
}

/// A token that takes `stall` of the invocation to get, once (the clock
/// moves on meanwhile): the time between the claim and the post.
struct SlowToken {
    clock: shared::memory::webhooks::HandClock,
    stall: std::sync::Mutex<Option<chrono::Duration>>,
}

impl shared::ports::TokenSource for SlowToken {
    async fn token(&self) -> Result<shared::ports::AccessToken, shared::ports::TokenError> {
        let stall = self.stall.lock().expect("the stall").take();
        if let Some(stall) = stall {
            self.clock.advance(stall);
        }
        Ok(shared::ports::AccessToken::new("test-token"))
    }

    async fn refresh(
        &self,
        _rejected: &shared::ports::AccessToken,
    ) -> Result<shared::ports::AccessToken, shared::ports::TokenError> {
        Err(shared::ports::TokenError::Static)
    }
}

#[tokio::test]
async fn a_message_claimed_in_time_whose_time_runs_out_before_the_post_is_posted_once_later() {
    let clock = shared::memory::webhooks::HandClock::at(Utc::now());
    let store = Arc::new(MemoryStore::default());
    let partner = MemoryPartner::default();
    let queue = Arc::new(MemoryQueue::default());
    let tokens = SlowToken {
        clock: clock.clone(),
        stall: std::sync::Mutex::new(Some(chrono::Duration::seconds(6))),
    };
    let dispatcher = Dispatcher::new(
        store.clone(),
        partner.clone(),
        tokens,
        clock.clone(),
        Warehouses::from_json(WAREHOUSES).expect("warehouses"),
        policy(3),
    )
    .with_record_budget(RECORD_BUDGET);
    let handler = Arc::new(DispatchHandler::new(dispatcher, queue.clone()));
    let mut record = shipped_order("o-late");
    store.put(&mut record);
    let [sent] = &store.take_outbox()[..] else {
        panic!("one outbox message");
    };
    let body = format!(
        r#"{{"order_number":"o-late","generation":"{}"}}"#,
        sent.generation
    );
    let number = OrderNumber::parse("o-late").expect("an order number");
    let handle = |left: i64| {
        let mut event = SqsEvent::default();
        event.records = vec![message("m-o-late", &body)];
        let deadline = clock.now() + chrono::Duration::seconds(left);
        Arc::clone(&handler).handle_until(event, Some(deadline))
    };

    // 35 s leave the post's 10 s and the record's 20 s at the claim; the
    // token takes 6 s of them: 29 s left before the post.
    let kept = handle(35).await.batch_item_failures;

    assert_eq!(kept.len(), 1, "SQS keeps it for a later receive");
    assert_eq!(partner.posted(), Vec::<String>::new(), "nothing posted");
    let callback = store.stored(&number).expect("stored").callback;
    assert_eq!(callback.status, CallbackStatus::Retrying);
    assert_eq!(callback.posts, 0, "the claim's try is given back");
    assert_eq!(callback.lease, None, "the claim is given back");
    let calls = queue.calls();
    let [QueueCall::RetryIn(_, delay)] = &calls[..] else {
        panic!("one retry delay: {calls:?}");
    };
    assert_eq!(
        *delay,
        Duration::from_secs(60),
        "the schedule's first delay"
    );

    // The message's next receive, with time enough: posted, once.
    clock.advance(chrono::Duration::from_std(*delay).expect("a delay"));
    let kept = handle(35).await.batch_item_failures;

    assert!(kept.is_empty(), "delivered: {kept:?}");
    assert_eq!(partner.posted(), ["o-late"]);
    let callback = store.stored(&number).expect("stored").callback;
    assert_eq!(callback.status, CallbackStatus::Delivered);
    assert_eq!(callback.posts, 1);
}
