//! The webhook delivery protocol under generated interleavings: queue
//! messages for the same delivery (duplicates, redrives), holders that claim,
//! post and settle in any order with the clock moving between their steps,
//! crashes between any two steps, every endpoint answer (a 410 fails a
//! delivery at once), claims and settles whose write applied but whose
//! answer was lost and which the SDK sent again (the holder must find its
//! own claim, the post counted once, and its settle saved, not stale: the
//! deliverer deletes a stale settle's message), and replays that re-open failed deliveries and queue
//! them again. Run against any [`DeliveryStore`]: the in-memory one and the
//! DynamoDB adapter.
//!
//! Checked after every step:
//! - nothing is posted while the store says the delivery was delivered, and
//!   a delivered or failed delivery never changes again, except that a
//!   replay re-opens a failed one (never a delivered or pending one);
//! - no holder that claimed before a re-opening records an answer after it;
//! - no more posts than the schedule allows, and each claim counts one post:
//!   the store's count is the claims granted in the delivery's life, less
//!   those given back unposted (an SDK-retried claim that applied is
//!   granted once, as `Claimed`; a holder too late to post under its lease
//!   gives its claim back, as the deliverer does);
//! - a post starts only with at least one post timeout left on its lease, so
//!   two posts of one delivery are never in flight at once.
//!
//! And at the end, once the endpoint answers and the queue delivers what is
//! left: every delivery ends delivered, or failed with its schedule used up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use shared::ports::{DeliveryClaim, DeliveryStore, Reopen, Save};
use shared::webhook::{
    Delivery, DeliveryStatus, DeliveryTicket, EndpointId, NotClaimed, NotReopened, POST_TIMEOUT,
    PostResult, schedule,
};

/// One step of the world.
#[derive(Debug, Clone)]
pub enum Op {
    /// A queue message for delivery `n % deliveries` becomes a holder.
    Message(usize),
    /// Holder `n % holders` outlives its message's visibility: the queue
    /// hands the same delivery to another holder while it still works.
    Redeliver(usize),
    /// Holder `n % holders` takes its next step.
    Step(usize),
    /// Holder `n % holders` takes its next step; if that is a write (its
    /// claim, or the settle of its post's answer), the write applies, its
    /// answer is lost and the SDK sends it again: the holder gets the
    /// retry's answer.
    Retried(usize),
    /// Holder `n % holders` dies where it stands.
    Crash(usize),
    /// The clock moves on.
    Tick(u32),
    /// A replay re-opens delivery `n % deliveries` if it failed, and queues
    /// it again.
    Replay(usize),
}

/// What the endpoint answers, in order of posts.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Ok,
    ServerError,
    Timeout,
    Gone,
}

pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            2 => (0..3_usize).prop_map(Op::Message),
            2 => (0..6_usize).prop_map(Op::Redeliver),
            5 => (0..6_usize).prop_map(Op::Step),
            1 => (0..6_usize).prop_map(Op::Retried),
            1 => (0..6_usize).prop_map(Op::Crash),
            2 => prop_oneof![Just(1_u32), Just(6), Just(20), Just(400)].prop_map(Op::Tick),
            2 => (0..3_usize).prop_map(Op::Replay),
        ],
        1..60,
    )
}

pub fn replies() -> impl Strategy<Value = Vec<Reply>> {
    prop::collection::vec(
        prop_oneof![
            2 => Just(Reply::Ok),
            1 => Just(Reply::ServerError),
            1 => Just(Reply::Timeout),
            1 => Just(Reply::Gone),
        ],
        0..12,
    )
}

enum Phase {
    Start,
    /// Claimed in the delivery's `n`-th life (re-openings start a new one).
    Claimed(Delivery, usize),
    Posted(Delivery, PostResult, usize),
    Gone,
}

struct Holder {
    ticket: usize,
    owner: String,
    phase: Phase,
}

struct World<'a, S> {
    store: &'a S,
    tickets: Vec<DeliveryTicket>,
    holders: Vec<Holder>,
    replies: Vec<Reply>,
    now: DateTime<Utc>,
    /// HTTP posts made per delivery.
    posts: Vec<u32>,
    /// How each delivery was settled, the posts its store item counted,
    /// and whether the endpoint was gone (410).
    settled: Vec<Option<(DeliveryStatus, u32, bool)>>,
    /// Re-openings of each delivery so far: its life.
    lives: Vec<usize>,
    /// Claims granted to each delivery in its life: the posts its store
    /// item must count.
    claims: Vec<u32>,
    messages: usize,
}

const DELIVERIES: usize = 3;

/// Adds to `store` a pending delivery of a bare `order.shipped` event
/// (order `{prefix}-{n}`) to `endpoint`; its ticket. The models' starting
/// point.
pub async fn add_pending<S: DeliveryStore>(
    store: &S,
    client_code: &str,
    endpoint: &EndpointId,
    prefix: &str,
    n: usize,
) -> DeliveryTicket {
    let kind = shared::webhook::EventType::OrderShipped;
    let ticket = DeliveryTicket {
        client_code: client_code.into(),
        endpoint_id: endpoint.as_str().into(),
        entry: format!("{prefix}#{n}"),
        event_type: kind.as_str().into(),
    };
    let delivery = Delivery {
        event_id: format!("evt_{prefix}_{n}"),
        kind,
        order_number: format!("{prefix}-{n}"),
        sequence: 1,
        body: "{}".into(),
        status: DeliveryStatus::Pending,
        posts: 0,
        next_attempt_at: None,
        lease: None,
        last_attempt: None,
    };
    assert!(
        store
            .add(&ticket, &delivery)
            .await
            .expect("the store answers")
    );
    ticket
}

/// Runs one generated history against `store`; `prefix` keeps the runs of
/// one store apart. Panics on a broken property.
pub async fn run<S: DeliveryStore>(store: &S, prefix: &str, ops: &[Op], replies: &[Reply]) {
    let endpoint = EndpointId::parse("ep_00000000000000000001").expect("an id");
    let start = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
        .expect("a time")
        .with_timezone(&Utc);
    let mut world = World {
        store,
        tickets: Vec::new(),
        holders: Vec::new(),
        replies: replies.iter().rev().copied().collect(),
        now: start,
        posts: vec![0; DELIVERIES],
        settled: vec![None; DELIVERIES],
        lives: vec![0; DELIVERIES],
        claims: vec![0; DELIVERIES],
        messages: 0,
    };
    for n in 0..DELIVERIES {
        let ticket = add_pending(store, "20", &endpoint, prefix, n).await;
        world.tickets.push(ticket);
    }
    for op in ops {
        world.apply(op).await;
    }
    world.drain().await;
}

impl<S: DeliveryStore> World<'_, S> {
    async fn apply(&mut self, op: &Op) {
        // Ops name a holder among those still at work (`n` modulo their
        // number): naming one among all that ever lived would leave the
        // newest, the ones that race, out of reach as finished ones pile up.
        let live: Vec<usize> = (0..self.holders.len())
            .filter(|&index| !matches!(self.holders[index].phase, Phase::Gone))
            .collect();
        let pick = |n: usize| (!live.is_empty()).then(|| live[n % live.len()]);
        match *op {
            Op::Message(n) => self.message(n % DELIVERIES),
            Op::Redeliver(n) => {
                if let Some(index) = pick(n) {
                    self.message(self.holders[index].ticket);
                }
            }
            Op::Step(n) => {
                if let Some(index) = pick(n) {
                    self.step(index, false).await;
                }
            }
            Op::Retried(n) => {
                if let Some(index) = pick(n) {
                    self.step(index, true).await;
                }
            }
            Op::Crash(n) => {
                if let Some(index) = pick(n) {
                    self.holders[index].phase = Phase::Gone;
                }
            }
            Op::Tick(seconds) => self.now += chrono::Duration::seconds(i64::from(seconds)),
            Op::Replay(n) => self.replay(n % DELIVERIES).await,
        }
    }

    /// What `Replay` does with a delivery the endpoint already has.
    async fn replay(&mut self, ticket: usize) {
        let answer = self
            .store
            .reopen(&self.tickets[ticket], self.now)
            .await
            .expect("the store answers");
        let recorded = self.settled[ticket].map(|(status, _, _)| status);
        match answer {
            Some(Reopen::Reopened(delivery)) => {
                assert_eq!(
                    recorded,
                    Some(DeliveryStatus::Failed),
                    "re-opened a delivery that had not failed: {delivery:?}"
                );
                self.settled[ticket] = None;
                self.lives[ticket] += 1;
                self.claims[ticket] = 0;
                self.message(ticket);
            }
            Some(Reopen::Refused(NotReopened::NotFailed(status))) => assert_eq!(
                Some(status).filter(|status| *status != DeliveryStatus::Pending),
                recorded,
                "a replay found {status:?} where the deliveries recorded {recorded:?}"
            ),
            // A failed delivery holds no lease (its settle ended it).
            Some(Reopen::Refused(refused)) => panic!("a replay was refused: {refused:?}"),
            None => panic!("delivery {ticket} vanished"),
        }
    }

    fn message(&mut self, ticket: usize) {
        self.messages += 1;
        self.holders.push(Holder {
            ticket,
            owner: format!("m{}#1", self.messages),
            phase: Phase::Start,
        });
    }

    async fn step(&mut self, index: usize, retried: bool) {
        let policy = schedule(POST_TIMEOUT);
        let holder = &mut self.holders[index];
        let ticket = &self.tickets[holder.ticket];
        let phase = std::mem::replace(&mut holder.phase, Phase::Gone);
        holder.phase = match phase {
            Phase::Start => {
                let mut answer = self
                    .store
                    .claim(ticket, &holder.owner, self.now, &policy)
                    .await;
                if retried {
                    // The first answer is lost; the SDK's retry is the same
                    // write, at the same moment.
                    let first = answer;
                    answer = self
                        .store
                        .claim(ticket, &holder.owner, self.now, &policy)
                        .await;
                    if let Ok(Some(DeliveryClaim::Claimed(applied))) = &first {
                        match &answer {
                            Ok(Some(DeliveryClaim::Claimed(again))) => assert_eq!(
                                again.posts, applied.posts,
                                "the retried claim counted a second post"
                            ),
                            other => panic!(
                                "{}'s retried claim, applied before, answered {other:?}",
                                holder.owner
                            ),
                        }
                    }
                }
                match answer {
                    Ok(Some(DeliveryClaim::Claimed(delivery))) => {
                        self.claims[holder.ticket] += 1;
                        assert_eq!(
                            delivery.posts, self.claims[holder.ticket],
                            "the store counts other posts than the claims it granted"
                        );
                        assert!(
                            delivery.posts <= policy.max_posts,
                            "claimed for post {} of {}",
                            delivery.posts,
                            policy.max_posts
                        );
                        Phase::Claimed(delivery, self.lives[holder.ticket])
                    }
                    Ok(Some(DeliveryClaim::Refused(refused))) => {
                        if let NotClaimed::Settled(status) = refused {
                            let settled = self.settled[holder.ticket].map(|(status, _, _)| status);
                            assert_eq!(Some(status), settled, "settled without our record");
                        }
                        Phase::Gone
                    }
                    Ok(None) => panic!("delivery {} vanished", ticket.entry),
                    Err(err) => panic!("store: {err}"),
                }
            }
            Phase::Claimed(delivery, life) => {
                let until = delivery
                    .lease
                    .as_ref()
                    .expect("a claim holds a lease")
                    .until;
                let timeout = chrono::Duration::from_std(POST_TIMEOUT).expect("a duration");
                if until - self.now < timeout {
                    // Too late to post under this lease: the claim is given
                    // back, its count undone, unless its lease passed on.
                    let mut released = delivery;
                    if released.release(&holder.owner).is_ok() {
                        let saved = self.store.settle(ticket, &holder.owner, &released).await;
                        if saved.expect("the store answers") == Save::Saved {
                            self.claims[holder.ticket] -= 1;
                        }
                    }
                    Phase::Gone
                } else {
                    assert!(
                        self.settled[holder.ticket].is_none(),
                        "posted after the delivery was settled: {:?}",
                        self.settled[holder.ticket]
                    );
                    self.posts[holder.ticket] += 1;
                    let reply = self.replies.pop().unwrap_or(Reply::Ok);
                    Phase::Posted(delivery, result(reply), life)
                }
            }
            Phase::Posted(mut delivery, result, life) => {
                let gone = result.gone();
                if let Ok(settled) = delivery.settle(&holder.owner, result, self.now, &policy) {
                    let mut saved = self.store.settle(ticket, &holder.owner, &delivery).await;
                    if retried {
                        let first = saved.expect("the store answers");
                        saved = self.store.settle(ticket, &holder.owner, &delivery).await;
                        if first == Save::Saved {
                            assert_eq!(
                                saved.as_ref().ok(),
                                Some(&Save::Saved),
                                "{}'s retried settle, applied before, was not saved",
                                holder.owner
                            );
                        }
                    }
                    if saved.expect("the store answers") == Save::Saved {
                        assert_eq!(
                            life, self.lives[holder.ticket],
                            "an answer from before a replay re-opened the delivery was recorded"
                        );
                        let status = delivery.status;
                        let before = self.settled[holder.ticket];
                        assert!(
                            before.is_none(),
                            "a settled delivery changed: {before:?} -> {status:?} ({settled:?})"
                        );
                        if status != DeliveryStatus::Pending {
                            self.settled[holder.ticket] = Some((status, delivery.posts, gone));
                        }
                    }
                }
                Phase::Gone
            }
            Phase::Gone => Phase::Gone,
        };
    }

    /// The endpoint answers from now on; the queue brings each delivery's
    /// message back until it is settled.
    async fn drain(&mut self) {
        self.replies.clear();
        for _ in 0..40 {
            if self.settled.iter().all(Option::is_some) {
                break;
            }
            self.now += chrono::Duration::hours(9);
            for ticket in 0..DELIVERIES {
                if self.settled[ticket].is_none() {
                    self.message(ticket);
                    let holder = self.holders.len() - 1;
                    for _ in 0..3 {
                        self.step(holder, false).await;
                    }
                }
            }
        }
        for (ticket, settled) in self.settled.iter().enumerate() {
            match settled {
                Some((DeliveryStatus::Delivered, _, _)) => {}
                Some((DeliveryStatus::Failed, posts, gone)) => assert!(
                    *gone || *posts >= schedule(POST_TIMEOUT).max_posts,
                    "delivery {ticket} failed after {posts} posts, before its schedule was used up"
                ),
                other => panic!(
                    "delivery {ticket} ended {other:?} after {} posts",
                    self.posts[ticket]
                ),
            }
        }
    }
}

fn result(reply: Reply) -> PostResult {
    let (http_status, excerpt) = match reply {
        Reply::Ok => (Some(204), ""),
        Reply::ServerError => (Some(503), "busy"),
        Reply::Timeout => (None, "timed out"),
        Reply::Gone => (Some(410), "gone"),
    };
    PostResult {
        http_status,
        excerpt: excerpt.into(),
        latency_ms: 1,
        retry_after: None::<Duration>,
    }
}
