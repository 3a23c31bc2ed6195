//! A model test of the callback delivery protocol: the real [`Dispatcher`]
//! and [`Lifecycle`] over a store — the in-memory one for thousands of cases,
//! the DynamoDB adapter on DynamoDB Local for a few dozen
//! (`tests/protocol_model.rs`) — driven through generated
//! interleavings of what production does to them — the outbox delivering
//! messages late and twice, concurrent deliveries of one message, ERP replays,
//! operator redrives, partner answers of every kind (timeouts after the
//! partner processed the post included), store errors before and after a write
//! applied, and crashes between any two steps.
//!
//! After every step it checks what a platform and an operator would notice:
//! - no post reaches the partner while the order says `delivered`, and a
//!   shipment is reported successfully twice only after a timeout, crash or
//!   store failure between the partner's answer and our record (counted);
//! - `delivered` never changes; `failed` changes only by a replay;
//! - the callback's status agrees with where its message is: `pending` and
//!   `retrying` have their message in the outbox or the queue, and
//!   `dead_lettered` has it in the dead-letter queue (or still on its way
//!   there after a crash);
//! - the circuit breaker (in front of the partner, as deployed, with a small
//!   `min_posts` so that it opens, holds, probes and closes within a case)
//!   opens only when the posts within its window failed as if the partner
//!   were down, and holding never costs a callback its schedule;
//! - never a recorded outcome without its ledger line: every try the
//!   order's state counts has its line (an attempt item in the history
//!   table, written *before* the save that counts it), and a line whose try
//!   the state does not show only after a failure or crash between the two;
//! - and at the end, once the partner is healthy, every due callback ends
//!   `delivered`.
//!
//! Every AWS call the dispatcher makes may fail, chosen by the generator,
//! before it applied or after (the reply lost: the most dangerous case): the
//! claim, the ledger put, the state's save, the breaker's store and the
//! queue's verdict; and the claim may apply, lose its reply and be sent again
//! by the SDK, which must find it claimed (not leased by another).
//!
//! The outbox (the table's stream in AWS) is played by the model's store
//! wrapper: a write that applied with the callback's `send_message` sends
//! its generation's message, as the adapters' `outbox` attribute does.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use shared::auth::Principal;
use shared::callback::body::CallbackBody;
use shared::callback::breaker::{BreakerPolicy, BreakerState};
use shared::callback::retry::{RetryPolicy, store_backoff};
use shared::config::Warehouses;
use shared::dispatch::{Delivery, DeliveryOutcome, DispatchError, Dispatcher, QueueAction};
use shared::domain::OrderNumber;
use shared::domain::Scope;
use shared::error::StoreError;
use shared::lifecycle::{Lifecycle, LifecycleError};
use shared::memory::{MemoryBreakerStore, OutboxMessage};
use shared::ports::{
    Access, BreakerStore, ClaimOutcome, Clock, Guard, Insert, Lookup, OrderStore, PartnerClient,
    PartnerReply, Save, StaticToken, TransportError,
};
use shared::record::OrderRecord;
use shared::record::callback::{Attempt, CallbackStatus, Claim};
use tokio::sync::oneshot;

const ORDERS: usize = 2;
const TIMEOUT_SECS: i64 = 10;
/// Shorter than the HTTP timeout on purpose: a message may come back while its
/// first delivery is still posting (a dispatcher that outlives its visibility
/// timeout), so two deliveries of one message really race.
const VISIBILITY_SECS: i64 = 8;
const SAMPLE: &str = crate::SAMPLE_ORDER;

/// What the partner does with one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Success,
    Refused,
    BadRequest,
    Unavailable,
    TooManyRequests,
    Unreadable,
    /// Processed, but the answer never came back.
    TimeoutAfterProcessing,
    /// Never reached the partner.
    ConnectionRefused,
    /// 401: our token was refused before the post was looked at.
    Unauthorized,
}

impl Answer {
    fn processed(self) -> bool {
        !matches!(self, Self::ConnectionRefused | Self::Unauthorized)
    }

    fn succeeded(self) -> bool {
        matches!(self, Self::Success | Self::TimeoutAfterProcessing)
    }

    /// What the breaker counts as the partner being down.
    fn down(self) -> bool {
        matches!(
            self,
            Self::Unavailable | Self::TimeoutAfterProcessing | Self::ConnectionRefused
        )
    }

    fn reply(self) -> Result<PartnerReply, TransportError> {
        let reply = |status, body: &str| {
            Ok(PartnerReply {
                status,
                retry_after: (status == 429).then_some(Duration::from_secs(7)),
                body: body.to_owned(),
            })
        };
        match self {
            Self::Success => reply(200, r#"{"Success":true,"Message":"ok"}"#),
            Self::Refused => reply(200, r#"{"Success":false,"Message":"no"}"#),
            Self::BadRequest => reply(400, r#"{"Message":"bad"}"#),
            Self::Unavailable => reply(503, ""),
            Self::TooManyRequests => reply(429, ""),
            Self::Unreadable => reply(200, "<html>"),
            Self::TimeoutAfterProcessing => Err(TransportError::Timeout(Duration::from_secs(10))),
            Self::ConnectionRefused => Err(TransportError::Connect("refused".into())),
            Self::Unauthorized => reply(
                401,
                r#"{"Errors":[{"Code":"800F1401","Message":"token expired"}],"TicketId":"t-1"}"#,
            ),
        }
    }
}

/// One step of the world.
#[derive(Debug, Clone)]
enum Step {
    /// The outbox (the table's stream) delivers a pending message, maybe twice.
    Pipe { pick: usize, twice: bool },
    /// The queue hands a visible message to a dispatcher.
    Deliver { pick: usize },
    /// The partner answers a post in flight.
    Answer { pick: usize, answer: Answer },
    /// A dispatcher dies while its post is in flight (before or after the
    /// partner processed it).
    Crash { pick: usize, processed: bool },
    /// A finished delivery's verdict reaches the queue, or the process dies first.
    Finish { pick: usize, crash: bool },
    /// The ERP replays an order's callback.
    Replay { order: usize },
    /// An operator redrives a message from the dead-letter queue.
    Redrive { pick: usize },
    /// The next `call` fails, having applied or not.
    Fault { call: Call, applied: bool },
    /// Time passes; posts older than the HTTP timeout time out.
    Advance { seconds: i64, processed: bool },
    /// A delivery still posting outlives its visibility timeout: time runs to
    /// then, and the queue hands its message to another dispatcher (the race
    /// the claim's lease fences).
    Redeliver { pick: usize },
}

/// An AWS call of the dispatcher's that a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// The claim's conditional write.
    Claim,
    /// The claim's conditional write applies, its reply is lost, and the
    /// SDK sends it again (the same delivery's token): the dispatcher gets
    /// the retry's answer, which must be the claim it made.
    ClaimRetried,
    /// The ledger lines' put, before the save that counts them.
    LedgerPut,
    /// The order's state write (a settle, a replay).
    Save,
    /// The circuit breaker's item (a read fails; a write fails applied or not).
    Breaker,
    /// The handler's verdict to the queue (delete, change visibility, dead-letter).
    Queue,
}

/// A fault waiting for its call.
#[derive(Debug, Clone, Copy)]
struct Fault {
    call: Call,
    applied: bool,
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        Just(Call::Claim),
        Just(Call::ClaimRetried),
        Just(Call::LedgerPut),
        Just(Call::Save),
        Just(Call::Breaker),
        Just(Call::Queue),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(Answer::Success),
        1 => Just(Answer::Refused),
        1 => Just(Answer::BadRequest),
        2 => Just(Answer::Unavailable),
        1 => Just(Answer::TooManyRequests),
        1 => Just(Answer::Unreadable),
        2 => Just(Answer::TimeoutAfterProcessing),
        1 => Just(Answer::ConnectionRefused),
        1 => Just(Answer::Unauthorized),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (any::<usize>(), any::<bool>()).prop_map(|(pick, twice)| Step::Pipe { pick, twice }),
        5 => any::<usize>().prop_map(|pick| Step::Deliver { pick }),
        4 => (any::<usize>(), answer()).prop_map(|(pick, answer)| Step::Answer { pick, answer }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, processed)| Step::Crash { pick, processed }),
        4 => (any::<usize>(), prop::bool::weighted(0.15)).prop_map(|(pick, crash)| Step::Finish { pick, crash }),
        1 => (0..ORDERS).prop_map(|order| Step::Replay { order }),
        1 => any::<usize>().prop_map(|pick| Step::Redrive { pick }),
        3 => (call(), any::<bool>()).prop_map(|(call, applied)| Step::Fault { call, applied }),
        3 => (1..120i64, any::<bool>()).prop_map(|(seconds, processed)| Step::Advance { seconds, processed }),
        1 => any::<usize>().prop_map(|pick| Step::Redeliver { pick }),
    ]
}

#[derive(Debug, Clone)]
struct SimClock(Arc<Mutex<DateTime<Utc>>>);

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The store under test, failing the next call when told to; the outbox:
/// the messages its writes sent; and the ledger, as the adapter writes it:
/// a save puts the lines of its new tries first, then writes the state.
#[derive(Debug)]
struct FaultyStore<S> {
    inner: Arc<S>,
    /// The next call of this kind fails, after applying or not.
    fault: Arc<Mutex<Option<Fault>>>,
    outbox: Arc<Mutex<Vec<OutboxMessage>>>,
    /// The ledger lines put, per order.
    ledger: Arc<Mutex<BTreeMap<String, Vec<Attempt>>>>,
    /// Lines put whose state write then did not apply (a failure or a lost
    /// race between the two), per order: how many lines may lack their state.
    uncounted: Arc<Mutex<BTreeMap<String, usize>>>,
    /// Claims whose write applied, refused when the SDK sent them again.
    refused_retries: Arc<Mutex<Vec<String>>>,
}

impl<S> Clone for FaultyStore<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            fault: Arc::clone(&self.fault),
            outbox: Arc::clone(&self.outbox),
            ledger: Arc::clone(&self.ledger),
            uncounted: Arc::clone(&self.uncounted),
            refused_retries: Arc::clone(&self.refused_retries),
        }
    }
}

impl<S: OrderStore> FaultyStore<S> {
    fn new(inner: S) -> Self {
        Self {
            inner: Arc::new(inner),
            fault: Arc::default(),
            outbox: Arc::default(),
            ledger: Arc::default(),
            uncounted: Arc::default(),
            refused_retries: Arc::default(),
        }
    }

    /// `Some(applied)` when the pending fault is for `call`: it is used up.
    fn take_fault(&self, call: Call) -> Option<bool> {
        let mut fault = lock(&self.fault);
        let hit = fault.filter(|f| f.call == call).map(|f| f.applied);
        if hit.is_some() {
            *fault = None;
        }
        hit
    }

    /// The ledger put: the lines of `record`'s tries not yet in the ledger
    /// (putting a line again is a no-op, as the adapter's keyed items are);
    /// how many were new.
    fn put_lines(&self, record: &OrderRecord) -> usize {
        let mut ledger = lock(&self.ledger);
        let lines = ledger
            .entry(record.order.order_number.to_string())
            .or_default();
        let mut new = 0;
        for attempt in &record.callback.attempts {
            if !lines.contains(attempt) {
                lines.push(attempt.clone());
                new += 1;
            }
        }
        new
    }

    fn lines_without_state(&self, record: &OrderRecord, lines: usize) {
        *lock(&self.uncounted)
            .entry(record.order.order_number.to_string())
            .or_default() += lines;
    }

    /// The outbox's part of a write that applied: the message of the
    /// generation it made due.
    fn sent(&self, record: &OrderRecord, sends: bool) {
        if sends {
            lock(&self.outbox).push(OutboxMessage {
                order_number: record.order.order_number.clone(),
                generation: record.callback.generation,
            });
        }
    }

    /// The order as a consistent read returns it.
    async fn stored(&self, order: &OrderNumber) -> OrderRecord {
        match self.inner.get(order, Access::Service).await {
            Ok(Lookup::Found(record)) => *record,
            other => panic!("{order} cannot be read: {other:?}"),
        }
    }
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("injected".into())
}

impl<S: OrderStore + 'static> OrderStore for FaultyStore<S> {
    async fn insert_new(&self, record: &OrderRecord) -> Result<Insert, StoreError> {
        let inserted = self.inner.insert_new(record).await?;
        self.sent(
            record,
            inserted == Insert::Inserted && record.callback.send_message,
        );
        Ok(inserted)
    }

    async fn get(
        &self,
        order_number: &OrderNumber,
        access: Access<'_>,
    ) -> Result<Lookup, StoreError> {
        self.inner.get(order_number, access).await
    }

    async fn save(&self, record: &mut OrderRecord, guard: Guard<'_>) -> Result<Save, StoreError> {
        // The ledger lines first, so that a state never counts a try without
        // its line.
        let lines = match self.take_fault(Call::LedgerPut) {
            None => self.put_lines(record),
            Some(false) => return Err(unavailable()),
            Some(true) => {
                let lines = self.put_lines(record);
                self.lines_without_state(record, lines);
                return Err(unavailable());
            }
        };
        let sends = record.callback.send_message;
        let saved = match self.take_fault(Call::Save) {
            None => self.inner.save(record, guard).await,
            Some(false) => Err(unavailable()),
            Some(true) => {
                let mut applied = record.clone();
                let saved = self.inner.save(&mut applied, guard).await?;
                self.sent(&applied, sends && saved == Save::Saved);
                if saved != Save::Saved {
                    self.lines_without_state(record, lines);
                }
                return Err(unavailable());
            }
        };
        if saved.as_ref().is_ok_and(|s| *s == Save::Saved) {
            self.sent(record, sends);
        } else {
            self.lines_without_state(record, lines);
        }
        saved
    }

    async fn claim(
        &self,
        order_number: &OrderNumber,
        claim: &Claim,
    ) -> Result<Option<ClaimOutcome>, StoreError> {
        if self.take_fault(Call::ClaimRetried).is_some() {
            let first = self.inner.claim(order_number, claim).await?;
            let again = self.inner.claim(order_number, claim).await;
            if matches!(first, Some(ClaimOutcome::Claimed(_)))
                && !matches!(again, Ok(Some(ClaimOutcome::Claimed(_))))
            {
                lock(&self.refused_retries).push(format!(
                    "{order_number}: {}'s retried claim answered {:?}",
                    claim.owner,
                    again
                        .as_ref()
                        .map(|outcome| outcome.as_ref().map(|o| match o {
                            ClaimOutcome::Claimed(_) => "claimed".to_owned(),
                            ClaimOutcome::Refused(why, _) => format!("refused: {why:?}"),
                        }))
                ));
            }
            return again;
        }
        match self.take_fault(Call::Claim) {
            None => self.inner.claim(order_number, claim).await,
            Some(false) => Err(unavailable()),
            Some(true) => {
                self.inner.claim(order_number, claim).await?;
                Err(unavailable())
            }
        }
    }

    async fn orders_with_platform_order(&self, key: &str) -> Result<Vec<OrderNumber>, StoreError> {
        self.inner.orders_with_platform_order(key).await
    }
}

/// The breaker's item, failing when the model's fault is for it: a read
/// fails; a write fails after applying or not.
#[derive(Debug, Clone)]
struct FaultyBreaker {
    inner: Arc<MemoryBreakerStore>,
    fault: Arc<Mutex<Option<Fault>>>,
}

impl FaultyBreaker {
    fn take_fault(&self) -> Option<bool> {
        let mut fault = lock(&self.fault);
        let hit = fault.filter(|f| f.call == Call::Breaker).map(|f| f.applied);
        if hit.is_some() {
            *fault = None;
        }
        hit
    }
}

impl BreakerStore for FaultyBreaker {
    async fn load(&self) -> Result<BreakerState, StoreError> {
        if self.take_fault().is_some() {
            return Err(unavailable());
        }
        self.inner.load().await
    }

    async fn save(&self, state: &BreakerState) -> Result<bool, StoreError> {
        match self.take_fault() {
            None => self.inner.save(state).await,
            Some(false) => Err(unavailable()),
            Some(true) => {
                self.inner.save(state).await?;
                Err(unavailable())
            }
        }
    }
}

/// A post waiting for the model to decide the partner's answer.
#[derive(Debug)]
struct PendingPost {
    order: OrderNumber,
    /// The dispatcher task that posted it.
    task: Option<tokio::task::Id>,
    sent_at: DateTime<Utc>,
    reply: oneshot::Sender<Result<PartnerReply, TransportError>>,
}

/// The partner: each post waits until the model answers it.
#[derive(Debug, Clone, Default)]
struct ModelPartner {
    pending: Arc<Mutex<Vec<(u64, PendingPost)>>>,
    clock: Option<SimClock>,
    next: Arc<Mutex<u64>>,
}

impl PartnerClient for ModelPartner {
    fn post_callback(
        &self,
        body: &CallbackBody,
        _idempotency_key: &str,
        _token: &shared::ports::AccessToken,
    ) -> impl Future<Output = Result<PartnerReply, TransportError>> + Send {
        let (reply, answer) = oneshot::channel();
        let order = OrderNumber::parse(&body.parcel_id).expect("the body names its order");
        let sent_at = self.clock.as_ref().map(Clock::now).unwrap_or_default();
        let id = {
            let mut next = lock(&self.next);
            *next += 1;
            *next
        };
        lock(&self.pending).push((
            id,
            PendingPost {
                order,
                task: tokio::task::try_id(),
                sent_at,
                reply,
            },
        ));
        async move {
            answer
                .await
                .unwrap_or_else(|_| Err(TransportError::Connect("the dispatcher died".into())))
        }
    }
}

#[derive(Debug, Clone)]
struct Message {
    id: String,
    order: OrderNumber,
    generation: u64,
    visible_at: DateTime<Utc>,
    receive_count: u32,
    /// The receipt of its latest delivery: unique per delivery, as SQS's
    /// receipt handles are (the receive count may start again on a redrive).
    receipt: u64,
    redriven: bool,
}

type Outcome = Result<(QueueAction, DeliveryOutcome), DispatchError>;

/// A delivery handed to a dispatcher task.
#[derive(Debug)]
struct Running {
    message_id: String,
    receive_count: u32,
    receipt: u64,
    task: tokio::task::JoinHandle<Outcome>,
    /// The partner post this delivery is waiting on, if any.
    post: Option<u64>,
    /// Its post succeeded at the partner (so a store error after it leaves
    /// that success unrecorded).
    succeeded: bool,
}

struct World<S> {
    store: FaultyStore<S>,
    clock: SimClock,
    partner: ModelPartner,
    dispatcher: Arc<Dispatcher<FaultyStore<S>, ModelPartner, SimClock, StaticToken>>,
    lifecycle: Lifecycle<FaultyStore<S>, SimClock>,
    orders: Vec<OrderNumber>,
    outbox: Vec<OutboxMessage>,
    queue: Vec<Message>,
    dead_letters: Vec<Message>,
    running: Vec<Running>,
    finished: Vec<(Running, Outcome)>,
    next_message: u64,
    next_receipt: u64,
    /// Successful posts the partner processed, per order.
    successes: BTreeMap<String, u32>,
    /// Posts whose success may not have been recorded (timeouts after
    /// processing, crashes after the post, store failures), per order.
    unrecorded: BTreeMap<String, u32>,
    last_status: BTreeMap<String, CallbackStatus>,
    replayed: HashSet<String>,
    breaker: Arc<MemoryBreakerStore>,
    /// The breaker as the last check saw it.
    last_breaker: BreakerState,
    /// Every answer the partner gave: when, and whether it said "down".
    answers: Vec<(DateTime<Utc>, bool)>,
    /// The tries any stored state has counted, per order.
    counted: BTreeMap<String, Vec<Attempt>>,
}

/// The deployed rule with a small sample, so that two orders open it.
fn breaker_policy() -> BreakerPolicy {
    BreakerPolicy {
        window: Duration::from_secs(60),
        min_posts: 3,
        failure_pct: 90,
        cool_down: Duration::from_secs(5),
        max_cool_down: Duration::from_secs(20),
        probes: 2,
        probe_lease: Duration::from_secs(3 * TIMEOUT_SECS.unsigned_abs()),
        ramp: Duration::from_secs(10),
    }
}

/// The deployed lease rule, a short schedule.
fn policy() -> RetryPolicy {
    RetryPolicy {
        delays: vec![Duration::from_secs(5), Duration::from_secs(60)],
        max_posts: 3,
        ..RetryPolicy::for_partner_timeout(Duration::from_secs(TIMEOUT_SECS.unsigned_abs()))
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap()
}

/// Numbers each world's orders apart: the DynamoDB run shares one table.
static WORLDS: AtomicU64 = AtomicU64::new(0);

impl<S: OrderStore + 'static> World<S> {
    async fn new(store: S) -> Self {
        let clock = SimClock(Arc::new(Mutex::new(start())));
        let store = FaultyStore::new(store);
        let partner = ModelPartner {
            clock: Some(clock.clone()),
            ..ModelPartner::default()
        };
        let warehouses = Warehouses::from_json(
            r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
        )
        .expect("warehouses");
        let breaker = Arc::new(MemoryBreakerStore::default());
        let dispatcher = Arc::new(
            Dispatcher::new(
                store.clone(),
                partner.clone(),
                StaticToken::new("model-token"),
                clock.clone(),
                warehouses,
                policy(),
            )
            .with_breaker(
                FaultyBreaker {
                    inner: breaker.clone(),
                    fault: Arc::clone(&store.fault),
                },
                breaker_policy(),
                |_| {},
            ),
        );
        let lifecycle = Lifecycle::new(store.clone(), clock.clone());
        let mut world = Self {
            store,
            clock,
            partner,
            dispatcher,
            lifecycle,
            orders: Vec::new(),
            outbox: Vec::new(),
            queue: Vec::new(),
            dead_letters: Vec::new(),
            running: Vec::new(),
            finished: Vec::new(),
            next_message: 0,
            next_receipt: 0,
            successes: BTreeMap::new(),
            unrecorded: BTreeMap::new(),
            last_status: BTreeMap::new(),
            replayed: HashSet::new(),
            breaker,
            last_breaker: BreakerState::default(),
            answers: Vec::new(),
            counted: BTreeMap::new(),
        };
        let set = WORLDS.fetch_add(1, Ordering::Relaxed);
        for index in 0..ORDERS {
            world.ship(&format!("model-{set}-{index}")).await;
        }
        world.collect_outbox();
        world
    }

    /// Stores an order and ships it: its callback becomes due.
    async fn ship(&mut self, number: &str) {
        let mut body: serde_json::Value = serde_json::from_str(SAMPLE).expect("the sample");
        body["package"]["order_number"] = serde_json::json!(number);
        let request = shared::intake::parse_order(&serde_json::to_vec(&body).expect("json"))
            .expect("the sample parses");
        let record = OrderRecord::accept(request.order, Vec::new(), self.clock.now());
        assert_eq!(
            self.store.insert_new(&record).await.expect("insert"),
            Insert::Inserted
        );
        let warehouse = Principal {
            key_id: "wms".into(),
            scope: Scope::Warehouse(["mabang".to_owned()].into()),
            order_prefixes: Vec::new(),
            signed: None,
        };
        for event in [
            r#"{"event_id":"s","type":"shipped","occurred_at":"2026-11-20T01:00:00Z","tracking_number":"T1"}"#,
            r#"{"event_id":"h","type":"handed_over","occurred_at":"2026-11-20T01:30:00Z"}"#,
        ] {
            self.lifecycle
                .record_event(
                    &warehouse,
                    number,
                    shared::lifecycle::parse_event(event.as_bytes()).expect("an event"),
                )
                .await
                .expect("the event applies");
        }
        self.orders
            .push(OrderNumber::parse(number).expect("a number"));
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The order a queue message (or a dead letter) is for.
    fn stored_order_of(&self, message_id: &str) -> String {
        self.queue
            .iter()
            .chain(&self.dead_letters)
            .find(|m| m.id == message_id)
            .map(|m| m.order.to_string())
            .unwrap_or_default()
    }

    fn collect_outbox(&mut self) {
        self.outbox.append(&mut lock(&self.store.outbox));
    }

    async fn stored(&self, order: &OrderNumber) -> OrderRecord {
        self.store.stored(order).await
    }

    fn new_message(&mut self, order: OrderNumber, generation: u64, redriven: bool) -> Message {
        self.next_message += 1;
        Message {
            id: format!("m-{}", self.next_message),
            order,
            generation,
            visible_at: self.now(),
            receive_count: 0,
            receipt: 0,
            redriven,
        }
    }

    /// Lets the spawned dispatchers run until each waits on the partner or is done.
    async fn settle_tasks(&mut self) {
        // A contended update backs off for a few real milliseconds, and a
        // real store answers in real time: wait for every dispatcher to reach
        // the partner or finish (a crash may then only hit a post in flight).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            for _ in 0..64 {
                tokio::task::yield_now().await;
            }
            let waiting: HashSet<Option<tokio::task::Id>> = lock(&self.partner.pending)
                .iter()
                .map(|(_, post)| post.task)
                .collect();
            if self
                .running
                .iter()
                .all(|r| r.task.is_finished() || waiting.contains(&Some(r.task.id())))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let posts: Vec<(u64, Option<tokio::task::Id>)> = lock(&self.partner.pending)
            .iter()
            .map(|(id, post)| (*id, post.task))
            .collect();
        let mut still = Vec::new();
        let all: Vec<Running> = self.running.drain(..).collect();
        for mut running in all {
            if running.task.is_finished() {
                let outcome = (&mut running.task)
                    .await
                    .expect("the dispatcher does not panic");
                if running.succeeded && matches!(outcome, Err(DispatchError::Store(_))) {
                    let order = self.stored_order_of(&running.message_id);
                    *self.unrecorded.entry(order).or_default() += 1;
                }
                self.finished.push((running, outcome));
                continue;
            }
            let task = running.task.id();
            running.post = posts
                .iter()
                .find(|(_, by)| *by == Some(task))
                .map(|(id, _)| *id);
            still.push(running);
        }
        self.running = still;
    }

    async fn run(&mut self, step: &Step) {
        match *step {
            Step::Pipe { pick, twice } => {
                if !self.outbox.is_empty() {
                    let sent = self.outbox.remove(pick % self.outbox.len());
                    for _ in 0..if twice { 2 } else { 1 } {
                        let message =
                            self.new_message(sent.order_number.clone(), sent.generation, false);
                        self.queue.push(message);
                    }
                }
            }
            Step::Deliver { pick } => {
                let now = self.now();
                let visible: Vec<usize> = (0..self.queue.len())
                    .filter(|i| self.queue[*i].visible_at <= now)
                    .collect();
                if !visible.is_empty() {
                    self.deliver(visible[pick % visible.len()]);
                }
            }
            Step::Redeliver { pick } => {
                let posting: Vec<String> = self
                    .running
                    .iter()
                    .filter(|r| r.post.is_some())
                    .map(|r| r.message_id.clone())
                    .collect();
                if !posting.is_empty() {
                    let id = &posting[pick % posting.len()];
                    if let Some(index) = self.queue.iter().position(|m| m.id == *id) {
                        let visible_at = self.queue[index].visible_at;
                        if visible_at > self.now() {
                            *lock(&self.clock.0) = visible_at;
                            self.time_out_old_posts(false).await;
                        }
                        self.deliver(index);
                    }
                }
            }
            Step::Answer { pick, answer } => {
                let waiting: Vec<usize> = (0..self.running.len())
                    .filter(|i| self.running[*i].post.is_some())
                    .collect();
                if !waiting.is_empty() {
                    let index = waiting[pick % waiting.len()];
                    let post = self.running[index].post.expect("waiting");
                    self.answer(post, answer).await;
                }
            }
            Step::Crash { pick, processed } => {
                if !self.running.is_empty() {
                    let running = self.running.remove(pick % self.running.len());
                    running.task.abort();
                    if let Some(post) = running.post {
                        let answer = if processed {
                            Answer::TimeoutAfterProcessing
                        } else {
                            Answer::ConnectionRefused
                        };
                        self.answer(post, answer).await;
                    }
                }
            }
            Step::Finish { pick, crash } => {
                if !self.finished.is_empty() {
                    let (running, outcome) = self.finished.remove(pick % self.finished.len());
                    if !crash {
                        self.apply(&running, outcome);
                    }
                }
            }
            Step::Replay { order } => {
                let number = self.orders[order % self.orders.len()].clone();
                let erp = Principal {
                    key_id: "erp".into(),
                    scope: Scope::Client("20".into()),
                    order_prefixes: Vec::new(),
                    signed: None,
                };
                match self.lifecycle.retry_callback(&erp, number.as_str()).await {
                    Ok(_) => {
                        self.replayed.insert(number.to_string());
                    }
                    Err(
                        LifecycleError::NotReplayable(_)
                        | LifecycleError::AttemptInFlight(_)
                        | LifecycleError::Store(_),
                    ) => {}
                    Err(other) => panic!("a replay failed unexpectedly: {other}"),
                }
            }
            Step::Redrive { pick } => {
                if !self.dead_letters.is_empty() {
                    let mut message = self.dead_letters.remove(pick % self.dead_letters.len());
                    message.visible_at = self.now();
                    message.redriven = true;
                    message.receive_count = 0;
                    self.queue.push(message);
                }
            }
            Step::Fault { call, applied } => {
                *lock(&self.store.fault) = Some(Fault { call, applied })
            }
            Step::Advance { seconds, processed } => {
                *lock(&self.clock.0) += chrono::Duration::seconds(seconds);
                self.time_out_old_posts(processed).await;
            }
        }
        self.settle_tasks().await;
        self.collect_outbox();
    }

    /// The queue hands message `index` to a new dispatcher task.
    fn deliver(&mut self, index: usize) {
        let now = self.now();
        self.next_receipt += 1;
        let message = &mut self.queue[index];
        message.receive_count += 1;
        message.receipt = self.next_receipt;
        message.visible_at = now + chrono::Duration::seconds(VISIBILITY_SECS);
        let delivery = Delivery {
            order_number: message.order.clone(),
            generation: message.generation,
            message_id: message.id.clone(),
            receive_count: message.receive_count,
            receipt: format!("r-{}", message.receipt),
            redriven: message.redriven,
            sent_at: None,
            deadline: None,
        };
        let dispatcher = Arc::clone(&self.dispatcher);
        let task = tokio::spawn(async move { dispatcher.dispatch(&delivery).await });
        self.running.push(Running {
            message_id: message.id.clone(),
            receive_count: message.receive_count,
            receipt: message.receipt,
            task,
            post: None,
            succeeded: false,
        });
    }

    /// The HTTP client gives up on a post after its timeout: long before the
    /// lease (three timeouts) runs out.
    async fn time_out_old_posts(&mut self, processed: bool) {
        let limit = self.now() - chrono::Duration::seconds(TIMEOUT_SECS);
        let old: Vec<u64> = lock(&self.partner.pending)
            .iter()
            .filter(|(_, post)| post.sent_at <= limit)
            .map(|(id, _)| *id)
            .collect();
        for post in old {
            let answer = if processed {
                Answer::TimeoutAfterProcessing
            } else {
                Answer::ConnectionRefused
            };
            self.answer(post, answer).await;
        }
    }

    async fn answer(&mut self, post: u64, answer: Answer) {
        let pending = {
            let mut all = lock(&self.partner.pending);
            let Some(index) = all.iter().position(|(id, _)| *id == post) else {
                return;
            };
            all.remove(index).1
        };
        let order = pending.order.to_string();
        self.answers.push((self.now(), answer.down()));
        if answer.processed() {
            let stored = self.stored(&pending.order).await;
            assert_ne!(
                stored.callback.status,
                CallbackStatus::Delivered,
                "a post reached the partner while {order} says delivered"
            );
            if answer.succeeded() {
                *self.successes.entry(order.clone()).or_default() += 1;
            }
        }
        if answer == Answer::TimeoutAfterProcessing {
            *self.unrecorded.entry(order).or_default() += 1;
        }
        // The dispatcher may have died meanwhile: then nobody hears the answer.
        let _ = pending.reply.send(answer.reply());
        for running in &mut self.running {
            if running.post == Some(post) {
                running.post = None;
                running.succeeded = answer.succeeded();
            }
        }
    }

    /// The handler's part: what the queue does with a finished delivery.
    fn apply(&mut self, running: &Running, outcome: Outcome) {
        let Some(index) = self.queue.iter().position(|m| m.id == running.message_id) else {
            return;
        };
        // A newer delivery of the same message took over: this receipt is stale.
        if self.queue[index].receipt != running.receipt {
            return;
        }
        // The queue's answer to the verdict lost: the handler reports the
        // message failed, so it stays, whether or not the verdict applied.
        let queue_fault = self.store.take_fault(Call::Queue);
        if queue_fault == Some(false) {
            return;
        }
        let now = self.now();
        let retry_in = |delay: Duration| {
            now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
        };
        match outcome {
            Ok((QueueAction::Delete, _)) => {
                self.queue.remove(index);
            }
            Ok((QueueAction::RetryIn(delay), _)) => self.queue[index].visible_at = retry_in(delay),
            Ok((QueueAction::DeadLetter, _)) | Err(DispatchError::UnknownOrder(_)) => {
                let mut message = if queue_fault.is_some() {
                    self.queue[index].clone()
                } else {
                    self.queue.remove(index)
                };
                message.redriven = false;
                self.dead_letters.push(message);
            }
            Ok((QueueAction::Leave, _)) => {}
            Err(DispatchError::Store(_)) => {
                self.queue[index].visible_at = retry_in(store_backoff(running.receive_count));
            }
        }
    }

    /// The breaker opened (from closed) only on a window of failed posts.
    async fn check_breaker(&mut self, after: &Step) {
        let state = self.breaker.load().await.expect("the breaker reads");
        let policy = breaker_policy();
        if state.is_open() && !self.last_breaker.is_open() {
            let now = self.now();
            let oldest =
                now.timestamp() - i64::try_from(policy.window.as_secs()).expect("a window");
            let since = self
                .last_breaker
                .closed_at
                .map_or(i64::MIN, |t| t.timestamp());
            let failures = self
                .answers
                .iter()
                .filter(|(at, down)| *down && at.timestamp() > oldest && at.timestamp() >= since)
                .count();
            // 90 % of at least `min_posts` posts: never fewer failures than this.
            let needed = (policy.min_posts * policy.failure_pct).div_ceil(100);
            assert!(
                failures >= usize::try_from(needed).expect("small"),
                "the breaker opened after {failures} failures within its window, after {after:?}"
            );
        }
        if let Some(until) = state.open_until {
            assert!(
                until
                    <= self.now()
                        + chrono::Duration::from_std(policy.max_cool_down).expect("a cool-down"),
                "the breaker holds longer than its longest cool-down, after {after:?}"
            );
        }
        self.last_breaker = state;
    }

    /// Never a recorded outcome without its ledger line; a line whose try
    /// the state does not show only after a failure between the two.
    fn check_ledger(&mut self, name: &str, record: &OrderRecord, after: &Step) {
        let lines = lock(&self.store.ledger)
            .get(name)
            .cloned()
            .unwrap_or_default();
        let counted = self.counted.entry(name.to_owned()).or_default();
        for attempt in &record.callback.attempts {
            assert!(
                lines.contains(attempt),
                "{name}: the state records a try without its ledger line, after {after:?}: {attempt:?}"
            );
            if !counted.contains(attempt) {
                counted.push(attempt.clone());
            }
        }
        let uncounted = lines.iter().filter(|line| !counted.contains(line)).count();
        let allowed = lock(&self.store.uncounted)
            .get(name)
            .copied()
            .unwrap_or_default();
        assert!(
            uncounted <= allowed,
            "{name}: {uncounted} ledger lines the state never counted, with only {allowed} failures between a line and its state, after {after:?}"
        );
    }

    /// The properties that must hold after every step.
    async fn check(&mut self, after: &Step) {
        let refused = lock(&self.store.refused_retries).clone();
        assert!(
            refused.is_empty(),
            "a claim retried after its reply was lost was refused: {refused:?}, after {after:?}"
        );
        for order in self.orders.clone() {
            let name = order.to_string();
            let record = self.stored(&order).await;
            self.check_ledger(&name, &record, after);
            let callback = &record.callback;
            let status = callback.status;
            let successes = self.successes.get(&name).copied().unwrap_or_default();
            let unrecorded = self.unrecorded.get(&name).copied().unwrap_or_default()
                + self.replayed_after_success(&name);
            assert!(
                successes <= 1 + unrecorded,
                "{name}: {successes} successful posts with only {unrecorded} unrecorded answers, after {after:?}"
            );
            if status == CallbackStatus::Failed {
                let reason = callback.reason.as_deref().unwrap_or_default();
                assert!(
                    !reason.contains("HTTP 401") && !reason.contains("credentials"),
                    "{name} failed for good on a credentials problem ({reason}), after {after:?}"
                );
            }
            if let Some(previous) = self.last_status.insert(name.clone(), status) {
                if previous == CallbackStatus::Delivered {
                    assert_eq!(
                        status, previous,
                        "{name}: delivered changed after {after:?}"
                    );
                }
                if previous == CallbackStatus::Failed && status != previous {
                    assert!(
                        matches!(after, Step::Replay { .. }),
                        "{name}: failed changed to {status:?} without a replay, after {after:?}"
                    );
                }
            }
            let current = |m: &Message| m.order == order && m.generation == callback.generation;
            let bound = |m: &Message| callback.message_id.as_ref().is_none_or(|id| *id == m.id);
            let in_outbox = self
                .outbox
                .iter()
                .any(|m| m.order_number == order && m.generation == callback.generation);
            let in_queue = self.queue.iter().any(|m| current(m) && bound(m));
            let in_dlq = self.dead_letters.iter().any(current);
            match status {
                CallbackStatus::Pending | CallbackStatus::Retrying => assert!(
                    in_outbox || in_queue,
                    "{name} is {status:?} but its message is nowhere, after {after:?}: {callback:?}"
                ),
                CallbackStatus::DeadLettered => assert!(
                    in_dlq || in_queue,
                    "{name} is dead_lettered but its message is nowhere, after {after:?}"
                ),
                _ => {}
            }
        }
    }

    /// An explicit replay after a success may post again: the operator asked.
    fn replayed_after_success(&self, order: &str) -> u32 {
        u32::from(self.replayed.contains(order))
            * self.successes.get(order).copied().unwrap_or_default()
    }

    /// The partner is healthy and nothing fails: every due callback must end
    /// delivered.
    async fn drain(&mut self) {
        for _ in 0..400 {
            let finished: Vec<(Running, Outcome)> = self.finished.drain(..).collect();
            for (running, outcome) in finished {
                self.apply(&running, outcome);
            }
            let posts: Vec<u64> = lock(&self.partner.pending)
                .iter()
                .map(|(id, _)| *id)
                .collect();
            for post in posts {
                self.answer(post, Answer::Success).await;
            }
            while !self.outbox.is_empty() {
                self.run(&Step::Pipe {
                    pick: 0,
                    twice: false,
                })
                .await;
            }
            let now = self.now();
            if let Some(index) = self.queue.iter().position(|m| m.visible_at <= now) {
                let message = self.queue.remove(index);
                self.queue.insert(0, message);
                self.run(&Step::Deliver { pick: 0 }).await;
            } else if self.running.is_empty() && self.finished.is_empty() {
                match self.queue.iter().map(|m| m.visible_at).min() {
                    Some(next) => *lock(&self.clock.0) = next,
                    None => break,
                }
            }
            self.settle_tasks().await;
            self.check(&Step::Advance {
                seconds: 0,
                processed: false,
            })
            .await;
        }
        for order in self.orders.clone() {
            let status = self.stored(&order).await.callback.status;
            assert!(
                !status.in_flight(),
                "{order} is still {status:?} after the partner recovered"
            );
        }
    }
}

async fn run_model<S: OrderStore + 'static>(store: S, steps: &[Step]) {
    let mut world = World::new(store).await;
    world
        .check(&Step::Advance {
            seconds: 0,
            processed: false,
        })
        .await;
    for step in steps {
        world.run(step).await;
        world.check(step).await;
        world.check_breaker(step).await;
    }
    *lock(&world.store.fault) = None;
    world.drain().await;
}

/// The model's seed: fixed, unless `PROPTEST_RNG_SEED` asks for another.
fn seed() -> prop::test_runner::RngSeed {
    std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .map_or(
            prop::test_runner::RngSeed::Fixed(20_261_130),
            prop::test_runner::RngSeed::Fixed,
        )
}

/// The runtime the model runs in: one thread, so the model decides when each
/// dispatcher task moves on.
#[must_use]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs `cases` generated interleavings of up to `max_steps` steps each on
/// `runtime`, each over a store from `store` (a fresh one, or one whose
/// orders the model numbers apart), and panics with the shrunk steps of the
/// first case that breaks the protocol. Seeded: every run explores the same
/// cases; `PROPTEST_RNG_SEED` explores others.
pub fn check_interleavings<S: OrderStore + 'static>(
    runtime: &tokio::runtime::Runtime,
    store: impl Fn() -> S,
    cases: u32,
    max_steps: usize,
) {
    let config = Config {
        cases,
        rng_algorithm: prop::test_runner::RngAlgorithm::ChaCha,
        rng_seed: seed(),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&prop::collection::vec(step(), 1..max_steps), |steps| {
        runtime.block_on(run_model(store(), &steps));
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// A token source that takes `wait` of the clock to answer, as waiting for
/// another dispatcher's refresh does.
#[derive(Debug, Clone)]
struct SlowToken {
    clock: SimClock,
    wait: chrono::Duration,
}

impl shared::ports::TokenSource for SlowToken {
    fn token(
        &self,
    ) -> impl Future<Output = Result<shared::ports::AccessToken, shared::ports::TokenError>> + Send
    {
        *lock(&self.clock.0) += self.wait;
        std::future::ready(Ok(shared::ports::AccessToken::new("slow-token")))
    }

    fn refresh(
        &self,
        _rejected: &shared::ports::AccessToken,
    ) -> impl Future<Output = Result<shared::ports::AccessToken, shared::ports::TokenError>> + Send
    {
        self.token()
    }
}

/// A dispatcher whose token comes when less than the partner timeout is
/// left of its lease posts nothing and gives the post back.
pub async fn check_a_slow_token_posts_nothing<S: OrderStore + 'static>(store: S) {
    let world = World::new(store).await;
    let policy = policy();
    let lease = chrono::Duration::from_std(policy.lease).expect("a lease");
    let post_timeout = chrono::Duration::from_std(policy.post_timeout).expect("a timeout");
    // Less than the partner timeout is left of the lease once the token comes.
    let wait = lease - post_timeout + chrono::Duration::seconds(1);
    let warehouses = Warehouses::from_json(
        r#"{"mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"}}"#,
    )
    .expect("warehouses");
    let dispatcher = Dispatcher::new(
        world.store.clone(),
        world.partner.clone(),
        SlowToken {
            clock: world.clock.clone(),
            wait,
        },
        world.clock.clone(),
        warehouses,
        policy,
    );
    let message = world
        .outbox
        .iter()
        .find(|message| message.order_number == world.orders[0])
        .expect("the outbox message");
    let delivery = Delivery {
        order_number: message.order_number.clone(),
        generation: message.generation,
        message_id: "m-slow".into(),
        receive_count: 1,
        receipt: "r-slow".into(),
        redriven: false,
        sent_at: None,
        deadline: None,
    };

    // A post would wait for the model partner's answer forever.
    let (disposition, _) =
        tokio::time::timeout(Duration::from_secs(5), dispatcher.dispatch(&delivery))
            .await
            .expect("no post waits for the partner")
            .expect("dispatched");

    assert!(
        lock(&world.partner.pending).is_empty(),
        "nothing may be posted that the lease cannot cover"
    );
    assert!(
        matches!(disposition, QueueAction::RetryIn(_)),
        "{disposition:?}"
    );
    let callback = world.stored(&world.orders[0]).await.callback;
    assert_eq!(callback.status, CallbackStatus::Retrying);
    assert_eq!(callback.posts, 0, "the post not made is given back");
    let last = callback
        .attempts
        .last()
        .expect("the attempt is in the ledger");
    assert!(
        last.reason
            .as_deref()
            .is_some_and(|r| r.starts_with("not posted")),
        "{last:?}"
    );
}
