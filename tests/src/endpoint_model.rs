//! The endpoint's probe under generated interleavings: several deliverers of
//! one endpoint's deliveries (the real [`Deliverer`]) read its health, take
//! its probe when a block is over, claim, post, record the answer and the
//! endpoint's health, one store call at a time in any order, with the clock
//! moving between their steps, crashes between any two steps (a post in
//! flight included), posts outliving their timeout, and the endpoint going
//! down and coming back. Run against any store of endpoints and deliveries:
//! the in-memory ones and the DynamoDB adapter.
//!
//! Each deliverer runs until its next store call or post and waits there
//! (its "gate") until the history lets it take that step; a crash drops it
//! where it waits. Checked after every step:
//! - once a block is over, at most one post to the endpoint is in flight
//!   among the deliveries admitted to probe it: the probe is taken once
//!   until it is answered (a new block, or a success) or its lease runs out
//!   (a probe of an earlier block may still be in flight: taken before a
//!   success, it posts after it, admitted before the next block was set);
//! - a probe is held no longer than its delivery's lease, and a delivery
//!   is held back no longer than the longest block or a probe's lease;
//! - no health write is lost: the stored failure count and last success are
//!   those of every answer recorded so far, in the order they were saved.
//!
//! And at the end, once the endpoint answers and the clock has passed every
//! block, probe and lease: a new message for each delivery left delivers it
//! at once (a crashed prober blocks nothing), so every delivery ends
//! delivered, or failed with its schedule used up.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use shared::callback::retry::RetryPolicy;
use shared::error::StoreError;
use shared::memory::webhooks::HandClock;
use shared::notify::{Delivered, Deliverer, DeliveryOutcome};
use shared::ports::{
    Clock, DeliveryClaim, DeliveryStore, EndpointStore, Reopen, Save, WebhookPoster,
};
use shared::webhook::{
    Admission, Answer, Delivery, DeliveryStatus, DeliveryTicket, Endpoint, EndpointId, EndpointUrl,
    EventType, EventTypes, MAX_BACKOFF, NewEndpoint, POST_TIMEOUT, PostResult, Reach,
    SignedHeaders, WebhookSecret, schedule,
};

/// One step of the world.
#[derive(Debug, Clone)]
pub enum Op {
    /// A queue message for delivery `n % deliveries` becomes a deliverer.
    Message(usize),
    /// Deliverer `n % deliverers at work` takes its next step: one store
    /// call (and the post, if it decides to post after it), or its post's
    /// answer.
    Step(usize),
    /// Deliverer `n % deliverers at work` dies where it stands.
    Crash(usize),
    /// The clock moves on.
    Tick(u32),
    /// The endpoint answers from now on (`true`), or fails every post.
    Up(bool),
}

pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            2 => (0..DELIVERIES).prop_map(Op::Message),
            8 => (0..8_usize).prop_map(Op::Step),
            1 => (0..8_usize).prop_map(Op::Crash),
            3 => prop_oneof![Just(1_u32), Just(3), Just(6), Just(16), Just(60), Just(400)]
                .prop_map(Op::Tick),
            1 => any::<bool>().prop_map(Op::Up),
        ],
        1..80,
    )
}

const DELIVERIES: usize = 4;
const KIND: EventType = EventType::OrderShipped;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where a deliverer waits for its next step.
#[derive(Debug, Default)]
struct GateState {
    parked: bool,
    permit: bool,
}

#[derive(Debug, Clone, Default)]
struct Gate(Arc<Mutex<GateState>>);

impl Gate {
    /// Waits until the history lets this deliverer take its next step.
    async fn pass(&self) {
        std::future::poll_fn(|_| {
            let mut gate = lock(&self.0);
            if gate.permit {
                gate.permit = false;
                gate.parked = false;
                Poll::Ready(())
            } else {
                // No waker: the model polls again when it lets it pass.
                gate.parked = true;
                Poll::Pending
            }
        })
        .await;
    }
}

/// What the deliverers did, in order, as the model sees it.
#[derive(Debug)]
enum Seen {
    Read(Option<Endpoint>),
    Saved(Endpoint, Save),
    PostStarted,
    PostAnswered(Answer),
}

/// The endpoint as the world plays it, and what each deliverer did.
#[derive(Debug, Default)]
struct Shared {
    up: bool,
    seen: Vec<(usize, DateTime<Utc>, Seen)>,
}

/// One deliverer's view of the store and the endpoint: every call waits at
/// its gate first, and what it saw is logged for the model.
struct Gated<'a, E, D> {
    endpoints: &'a E,
    deliveries: &'a D,
    gate: Gate,
    id: usize,
    shared: Arc<Mutex<Shared>>,
    clock: HandClock,
    /// When this deliverer's post started.
    started: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl<E, D> Gated<'_, E, D> {
    fn log(&self, seen: Seen) {
        lock(&self.shared)
            .seen
            .push((self.id, self.clock.now(), seen));
    }
}

impl<E, D> Clone for Gated<'_, E, D> {
    fn clone(&self) -> Self {
        Self {
            endpoints: self.endpoints,
            deliveries: self.deliveries,
            gate: self.gate.clone(),
            id: self.id,
            shared: self.shared.clone(),
            clock: self.clock.clone(),
            started: self.started.clone(),
        }
    }
}

impl<E: EndpointStore, D: Sync> EndpointStore for Gated<'_, E, D> {
    async fn insert(&self, endpoint: &Endpoint) -> Result<bool, StoreError> {
        self.endpoints.insert(endpoint).await
    }

    async fn list(&self, client_code: &str) -> Result<Vec<Endpoint>, StoreError> {
        self.endpoints.list(client_code).await
    }

    async fn get(
        &self,
        client_code: &str,
        id: &EndpointId,
    ) -> Result<Option<Endpoint>, StoreError> {
        self.gate.pass().await;
        let endpoint = self.endpoints.get(client_code, id).await?;
        self.log(Seen::Read(endpoint.clone()));
        Ok(endpoint)
    }

    async fn save(&self, endpoint: &Endpoint, read_version: u64) -> Result<Save, StoreError> {
        self.gate.pass().await;
        let saved = self.endpoints.save(endpoint, read_version).await?;
        self.log(Seen::Saved(endpoint.clone(), saved));
        Ok(saved)
    }

    async fn delete(&self, client_code: &str, id: &EndpointId) -> Result<bool, StoreError> {
        self.endpoints.delete(client_code, id).await
    }
}

impl<E: Sync, D: DeliveryStore> DeliveryStore for Gated<'_, E, D> {
    async fn add(&self, ticket: &DeliveryTicket, delivery: &Delivery) -> Result<bool, StoreError> {
        self.deliveries.add(ticket, delivery).await
    }

    async fn claim(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Result<Option<DeliveryClaim>, StoreError> {
        self.gate.pass().await;
        self.deliveries.claim(ticket, owner, now, policy).await
    }

    async fn settle(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        delivery: &Delivery,
    ) -> Result<Save, StoreError> {
        self.gate.pass().await;
        self.deliveries.settle(ticket, owner, delivery).await
    }

    async fn reopen(
        &self,
        ticket: &DeliveryTicket,
        now: DateTime<Utc>,
    ) -> Result<Option<Reopen>, StoreError> {
        self.deliveries.reopen(ticket, now).await
    }

    async fn recent(
        &self,
        endpoint: &EndpointId,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries.recent(endpoint, limit).await
    }
}

impl<E: Sync, D: Sync> WebhookPoster for Gated<'_, E, D> {
    /// Starts in the step that decided to post (the deliverer checks its
    /// lease and deadline just before: nothing waits between) and is
    /// answered at the next: in flight between. An answer after the post's
    /// timeout is the timeout.
    async fn post(
        &self,
        _url: &EndpointUrl,
        _headers: &SignedHeaders,
        _body: &str,
        timeout: std::time::Duration,
    ) -> PostResult {
        let start = self.clock.now();
        *lock(&self.started) = Some(start);
        self.log(Seen::PostStarted);
        self.gate.pass().await;
        let timed_out =
            self.clock.now() - start >= chrono::Duration::from_std(timeout).expect("a duration");
        let status = match (timed_out, lock(&self.shared).up) {
            (true, _) => None,
            (false, true) => Some(204),
            (false, false) => Some(503),
        };
        let answer = match status {
            Some(204) => Answer::Accepted,
            _ => Answer::Failed,
        };
        self.log(Seen::PostAnswered(answer));
        PostResult {
            http_status: status,
            excerpt: String::new(),
            latency_ms: 1,
            retry_after: None,
        }
    }
}

type Delivering<'a> = Pin<Box<dyn Future<Output = Result<Delivered, StoreError>> + 'a>>;

struct Holder<'a> {
    gate: Gate,
    running: Option<Delivering<'a>>,
    /// The probe this deliverer took: the block it ended (when that block
    /// was set), and until when it holds it.
    probe: Option<(DateTime<Utc>, DateTime<Utc>)>,
    started: Arc<Mutex<Option<DateTime<Utc>>>>,
    answered: bool,
    /// The answer its post got, once it has one.
    answer: Option<Answer>,
}

impl Holder<'_> {
    /// Whether its post is in flight at `now`: started, not answered, and
    /// not past its timeout.
    fn in_flight(&self, now: DateTime<Utc>) -> bool {
        let timeout = chrono::Duration::from_std(POST_TIMEOUT).expect("a duration");
        !self.answered && lock(&self.started).is_some_and(|start| now < start + timeout)
    }
}

struct World<'a, E, D> {
    endpoints: &'a E,
    deliveries: &'a D,
    endpoint: Endpoint,
    tickets: Vec<DeliveryTicket>,
    holders: Vec<Holder<'a>>,
    shared: Arc<Mutex<Shared>>,
    clock: HandClock,
    policy: RetryPolicy,
    /// The stored health as the answers recorded so far make it: failures
    /// since the last success, and that success's time.
    failures: u32,
    last_success: Option<DateTime<Utc>>,
    messages: usize,
}

/// Runs one generated history against the stores, starting with the
/// endpoint up or down; `prefix` (up to 20 hex digits) keeps the runs of
/// one store apart. Panics on a broken property.
pub async fn run<E: EndpointStore, D: DeliveryStore>(
    endpoints: &E,
    deliveries: &D,
    prefix: &str,
    up: bool,
    ops: &[Op],
) {
    let start = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    let id = EndpointId::parse(&format!("ep_{prefix:0>20}")).expect("an id");
    let client_code = format!("c{prefix}");
    let new = NewEndpoint {
        url: EndpointUrl::parse("https://erp.example.com/hooks", Reach::Internet).expect("a url"),
        event_types: EventTypes::All,
        description: None,
    };
    let secret = WebhookSecret::generate().expect("a secret");
    let endpoint = Endpoint::create(id.clone(), &client_code, new, secret, start);
    assert!(
        endpoints
            .insert(&endpoint)
            .await
            .expect("the store answers"),
        "the endpoint is stored"
    );
    let mut tickets = Vec::new();
    for n in 0..DELIVERIES {
        let ticket =
            crate::webhook_model::add_pending(deliveries, &client_code, &id, prefix, n).await;
        tickets.push(ticket);
    }
    let mut world = World {
        endpoints,
        deliveries,
        endpoint,
        tickets,
        holders: Vec::new(),
        shared: Arc::new(Mutex::new(Shared {
            up,
            seen: Vec::new(),
        })),
        clock: HandClock::at(start),
        policy: schedule(POST_TIMEOUT),
        failures: 0,
        last_success: None,
        messages: 0,
    };
    for op in ops {
        world.apply(op).await;
    }
    world.drain().await;
}

impl<'a, E: EndpointStore, D: DeliveryStore> World<'a, E, D> {
    async fn apply(&mut self, op: &Op) {
        let live: Vec<usize> = (0..self.holders.len())
            .filter(|&index| self.holders[index].running.is_some())
            .collect();
        let pick = |n: usize| (!live.is_empty()).then(|| live[n % live.len()]);
        match *op {
            Op::Message(n) => {
                self.message(n % DELIVERIES).await;
            }
            Op::Step(n) => {
                if let Some(index) = pick(n) {
                    self.step(index).await;
                }
            }
            Op::Crash(n) => {
                if let Some(index) = pick(n) {
                    self.holders[index].running = None;
                }
            }
            Op::Tick(seconds) => self
                .clock
                .advance(chrono::Duration::seconds(i64::from(seconds))),
            Op::Up(up) => lock(&self.shared).up = up,
        }
    }

    /// A new deliverer for the ticket's delivery, waiting at its first call.
    async fn message(&mut self, ticket: usize) -> usize {
        self.messages += 1;
        let id = self.holders.len();
        let gate = Gate::default();
        let started = Arc::new(Mutex::new(None));
        let gated = Gated {
            endpoints: self.endpoints,
            deliveries: self.deliveries,
            gate: gate.clone(),
            id,
            shared: self.shared.clone(),
            clock: self.clock.clone(),
            started: started.clone(),
        };
        let deliverer = Deliverer::new(
            gated.clone(),
            gated.clone(),
            gated,
            self.clock.clone(),
            self.policy.clone(),
        );
        let ticket_to = self.tickets[ticket].clone();
        let owner = format!("m{}#1", self.messages);
        let running: Delivering<'a> =
            Box::pin(async move { deliverer.deliver(&ticket_to, &owner, None).await });
        self.holders.push(Holder {
            gate,
            running: Some(running),
            probe: None,
            started,
            answered: false,
            answer: None,
        });
        // Up to its first call, which it takes at its first step.
        self.run_to_gate(id).await;
        id
    }

    /// Lets deliverer `index` take its next step; its outcome once it is done.
    async fn step(&mut self, index: usize) -> Option<Result<Delivered, StoreError>> {
        lock(&self.holders[index].gate.0).permit = true;
        let done = self.run_to_gate(index).await;
        self.check().await;
        done
    }

    /// Polls deliverer `index` until it waits at its gate or is done.
    async fn run_to_gate(&mut self, index: usize) -> Option<Result<Delivered, StoreError>> {
        let holder = &mut self.holders[index];
        let gate = holder.gate.clone();
        let running = holder.running.as_mut()?;
        let done = std::future::poll_fn(|cx| match running.as_mut().poll(cx) {
            Poll::Ready(done) => Poll::Ready(Some(done)),
            Poll::Pending if lock(&gate.0).parked => Poll::Ready(None),
            // A store's I/O: it wakes the task.
            Poll::Pending => Poll::Pending,
        })
        .await;
        if done.is_some() {
            holder.running = None;
        }
        done
    }

    /// What the deliverers did in their last step, against the properties.
    async fn check(&mut self) {
        let seen = std::mem::take(&mut lock(&self.shared).seen);
        let lease = chrono::Duration::from_std(self.policy.lease).expect("a lease");
        for (id, at, seen) in seen {
            match seen {
                Seen::Read(Some(endpoint)) if self.holders[id].answer.is_none() => {
                    if let Admission::Hold(until) = endpoint.admission(KIND, at) {
                        assert!(
                            until <= at + MAX_BACKOFF.max(lease),
                            "held until {until} at {at}: {:?}",
                            endpoint.health
                        );
                    }
                }
                Seen::Read(_) => {}
                Seen::Saved(_, Save::Stale) => {}
                Seen::Saved(endpoint, Save::Saved) => match self.holders[id].answer {
                    // Before its post: the probe.
                    None => {
                        let until = endpoint.health.probe_until.expect("a probe taken");
                        assert!(
                            until <= at + lease,
                            "a probe held until {until}, past its lease from {at}"
                        );
                        let block = endpoint.health.blocked_at.expect("a block over");
                        self.holders[id].probe = Some((block, until));
                    }
                    Some(Answer::Accepted) => {
                        self.failures = 0;
                        self.last_success =
                            Some(endpoint.health.last_success_at.expect("a success"));
                    }
                    Some(_) => self.failures += 1,
                },
                Seen::PostStarted => {
                    // A probe taken for an earlier block may still be in
                    // flight (taken before a success, posted after it): it
                    // was admitted before this block was set.
                    if let Some((block, _)) = self.holders[id].probe {
                        let others: Vec<usize> = (0..self.holders.len())
                            .filter(|&other| {
                                other != id
                                    && self.holders[other]
                                        .probe
                                        .is_some_and(|(theirs, _)| theirs == block)
                                    && self.holders[other].in_flight(at)
                            })
                            .collect();
                        assert!(
                            others.is_empty(),
                            "deliverer {id} probes at {at} while {others:?} probe too"
                        );
                    }
                }
                Seen::PostAnswered(answer) => {
                    let holder = &mut self.holders[id];
                    holder.answered = true;
                    holder.answer = Some(answer);
                }
            }
        }
        let stored = self.stored().await;
        assert_eq!(
            (
                stored.health.consecutive_failures,
                stored.health.last_success_at
            ),
            (self.failures, self.last_success),
            "the stored health lost an answer recorded: {:?}",
            stored.health
        );
    }

    async fn stored(&self) -> Endpoint {
        self.endpoints
            .get(&self.endpoint.client_code, &self.endpoint.id)
            .await
            .expect("the store answers")
            .expect("the endpoint stays")
    }

    /// The endpoint answers from now on. The deliverers at work finish;
    /// then, once every block, probe, lease and next try is over, a new
    /// message for each delivery left delivers it at once.
    async fn drain(&mut self) {
        lock(&self.shared).up = true;
        for index in 0..self.holders.len() {
            for _ in 0..40 {
                if self.holders[index].running.is_none() {
                    break;
                }
                self.step(index).await;
            }
        }
        let health = self.stored().await.health;
        let mut over = [health.blocked_until, health.probe_until]
            .into_iter()
            .flatten()
            .fold(self.clock.now(), DateTime::max);
        let mut left = Vec::new();
        for ticket in 0..DELIVERIES {
            let delivery = self.delivery(ticket).await;
            match delivery.status {
                DeliveryStatus::Delivered => {}
                DeliveryStatus::Failed => assert!(
                    delivery.posts >= self.policy.max_posts,
                    "delivery {ticket} failed after {} posts, before its schedule was used up",
                    delivery.posts
                ),
                DeliveryStatus::Pending => {
                    let lease = delivery.lease.map(|lease| lease.until);
                    over = [lease, delivery.next_attempt_at]
                        .into_iter()
                        .flatten()
                        .fold(over, DateTime::max);
                    left.push(ticket);
                }
            }
        }
        self.clock.advance(over - self.clock.now());
        for ticket in left {
            let index = self.message(ticket).await;
            let mut done = None;
            for _ in 0..40 {
                done = self.step(index).await;
                if done.is_some() {
                    break;
                }
            }
            let outcome = done
                .expect("the deliverer finished")
                .expect("the store answers")
                .outcome;
            assert_eq!(
                outcome,
                DeliveryOutcome::Delivered,
                "delivery {ticket}, at {} with every block, probe and lease over: {:?}",
                self.clock.now(),
                self.stored().await.health
            );
        }
    }

    async fn delivery(&self, ticket: usize) -> Delivery {
        self.deliveries
            .recent(&self.endpoint.id, DELIVERIES * 2)
            .await
            .expect("the store answers")
            .into_iter()
            .find(|delivery| delivery.order_number.ends_with(&format!("-{ticket}")))
            .expect("the delivery stays")
    }
}
