//! One delivery of a callback message: claim the callback, build the spec-001
//! body, post it, record what happened, and tell the queue what to do with the
//! message.
//!
//! What makes a shipment go out once is in [`crate::record::callback`]: one conditional
//! claim per post, bound to the message's generation and fenced by the
//! delivery's own token. What can still post twice, and nothing here can
//! prevent: the partner processed a post but its answer never reached us (a
//! timeout), or we died or could not store the answer before recording it.
//! The next post then repeats it; the partner can recognise the repeat by
//! `ParcelId` + `TrackingNumber` (spec 001 defines no idempotency header; we
//! send `Idempotency-Key` anyway, for a partner or proxy that honours it).
//!
//! A delivery goes in steps, each in its own module:
//! [`admission`] (the circuit breaker and the 429 throttle: post, probe or
//! hold, before the claim) → `claim` (the conditional claim, a redrive,
//! or why not) → build ([`crate::callback::body`]) → [`post`] (token, post,
//! a refresh after a 401: a [`PostResult`]) → `settle` (what the answer
//! means, [`answer`]; when it is tried again; written under the lease).
//! [`breaker_cache`] keeps a warm instance's copy of a closed breaker;
//! [`deadline`] says whether the invocation has time left to post and record.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sha2::Digest as _;

use crate::callback::body::{build, idempotency_key};
use crate::callback::breaker::{BreakerPolicy, Transition};
use crate::callback::retry::RetryPolicy;
use crate::config::Warehouses;
use crate::domain::OrderNumber;
use crate::error::StoreError;
use crate::ports::{BreakerStore, Clock, OrderStore, PartnerClient, TokenSource};
use crate::record::OrderRecord;

pub mod admission;
pub mod answer;
pub mod breaker_cache;
mod claim;
pub mod deadline;
pub mod post;
mod settle;
#[cfg(test)]
mod tests;

pub use admission::Admission;
use admission::{Breaker, Held, PostPermit};
pub use answer::{CREDENTIALS_REJECTED, RetryCause};
use claim::Claimed;
pub use post::PostResult;

/// One delivery of a callback message, as the queue hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub order_number: OrderNumber,
    /// The generation the message was sent for.
    pub generation: u64,
    pub message_id: String,
    pub receive_count: u32,
    /// This delivery's receipt handle: unique to it, even when a redrive
    /// starts the message's receive count again.
    pub receipt: String,
    /// The message came back from the dead-letter queue (an operator's redrive).
    pub redriven: bool,
    /// When the message was first sent (SQS `SentTimestamp`): about when the
    /// callback fell due.
    pub sent_at: Option<DateTime<Utc>>,
    /// When the Lambda invocation handling it ends; `None`: never (tools,
    /// tests).
    pub deadline: Option<DateTime<Utc>>,
}

impl Delivery {
    /// The fencing token of this delivery: a message received again is
    /// another delivery, with a token of its own (the receive count for
    /// people reading the order, a digest of the receipt handle for
    /// uniqueness: SQS may count a redriven message's receives from 1 again).
    #[must_use]
    pub fn owner(&self) -> String {
        receive_owner(&self.message_id, self.receive_count, &self.receipt)
    }
}

/// Who holds a lease while one receive of a queue message handles it: the
/// message, its receive count (for people reading the record) and a digest
/// of the receipt handle, unique to the receive. Callbacks and webhooks
/// both fence with it: the same owner claiming again is taken as its own
/// claim retried, so two receives must never share one.
#[must_use]
pub fn receive_owner(message_id: &str, receive_count: u32, receipt: &str) -> String {
    let digest = crate::hex::encode(&sha2::Sha256::digest(receipt.as_bytes()));
    format!(
        "{message_id}#{receive_count}#{}",
        digest.get(..12).unwrap_or_default()
    )
}

/// What the queue should do with the message (an instruction, not an outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueAction {
    /// Done with it (sent, refused, obsolete): delete it.
    Delete,
    /// Try again: hide it for this long.
    RetryIn(Duration),
    /// The schedule is spent: move it to the dead-letter queue (the order
    /// already says `dead_lettered`).
    DeadLetter,
    /// Another delivery of the same message owns it now: leave it alone.
    Leave,
}

/// What a delivery did, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered {
        latency: Duration,
    },
    Failed {
        reason: String,
        latency: Option<Duration>,
    },
    Retrying {
        reason: String,
        latency: Option<Duration>,
        cause: RetryCause,
    },
    DeadLettered {
        reason: String,
    },
    /// Nothing posted, and why.
    Skipped(String),
    /// The circuit breaker is open: held before the claim, the schedule
    /// untouched.
    Held(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("order {0} does not exist")]
    UnknownOrder(OrderNumber),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the queue is told, and what the delivery did.
pub type Reply = (QueueAction, DeliveryOutcome);

/// The callback use case over the store, the partner, its tokens and the clock.
#[derive(Debug)]
pub struct Dispatcher<S, P, C, T> {
    store: S,
    partner: P,
    tokens: T,
    clock: C,
    warehouses: Warehouses,
    policy: RetryPolicy,
    breaker: Option<Breaker>,
    /// What the writes that record a post's answer may take.
    record_budget: Duration,
}

impl<S: OrderStore, P: PartnerClient, C: Clock, T: TokenSource> Dispatcher<S, P, C, T> {
    pub fn new(
        store: S,
        partner: P,
        tokens: T,
        clock: C,
        warehouses: Warehouses,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            store,
            partner,
            tokens,
            clock,
            warehouses,
            policy,
            breaker: None,
            record_budget: Duration::ZERO,
        }
    }

    /// A post starts only when the invocation's deadline leaves its timeout
    /// and `record` (the budget of the writes that record its answer).
    #[must_use]
    pub const fn with_record_budget(mut self, record: Duration) -> Self {
        self.record_budget = record;
        self
    }

    /// Puts the fleet-wide circuit breaker, kept in `store`, in front of the
    /// partner; `on_transition` hears when it opens, reopens or closes.
    #[must_use]
    pub fn with_breaker(
        mut self,
        store: impl BreakerStore + 'static,
        mut policy: BreakerPolicy,
        on_transition: fn(Transition),
    ) -> Self {
        // A probe cannot take longer than the claim it posts under.
        policy.probe_lease = policy.probe_lease.min(self.policy.lease);
        self.breaker = Some(Breaker::new(store, policy, on_transition));
        self
    }

    /// Handles one delivery of a callback message.
    pub async fn dispatch(&self, delivery: &Delivery) -> Result<Reply, DispatchError> {
        let owner = delivery.owner();
        // Not even a claim when the invocation could not record a post.
        let last_start = deadline::last_record_start(delivery.deadline, self.record_budget);
        if !deadline::affords(self.clock.now(), self.policy.post_timeout, last_start) {
            return Ok((
                QueueAction::RetryIn(Duration::from_secs(1)),
                DeliveryOutcome::Skipped(NO_TIME_TO_RECORD.into()),
            ));
        }
        let within_span = self.within_span(delivery);
        let permit = match self.admit(within_span, &owner).await {
            Ok(permit) => permit,
            Err(held) => return Ok(held_reply(held, &owner)),
        };
        match self.claim(delivery, &owner).await? {
            Claimed::Won(record) => {
                self.deliver(*record, &owner, &permit, last_start, within_span)
                    .await
            }
            Claimed::Refused(why, record, now) => {
                permit.release().await;
                self.not_claimed(why, &record, now).await
            }
            Claimed::Unmatched => Ok((
                QueueAction::Delete,
                DeliveryOutcome::Skipped(
                    "the redriven message no longer matches its callback".into(),
                ),
            )),
        }
    }

    /// Whether the message was first sent within the schedule's span: only
    /// then may a delivery be held, or its try given back, without using up
    /// its schedule. An outage longer than that (the partner's, or the
    /// credentials store's) dead-letters as if nothing held it.
    fn within_span(&self, delivery: &Delivery) -> bool {
        let span = chrono::Duration::from_std(self.policy.span()).unwrap_or(chrono::Duration::MAX);
        delivery
            .sent_at
            .is_none_or(|sent| self.clock.now() - sent < span)
    }

    /// The breaker's word, before the claim: a held message does not use up
    /// its schedule (only `within_span`).
    async fn admit(&self, within_span: bool, owner: &str) -> Result<PostPermit<'_>, Held> {
        let Some(breaker) = &self.breaker else {
            return Ok(PostPermit::unguarded(owner));
        };
        let admission = if within_span {
            breaker.admission(owner, &self.clock).await
        } else {
            Admission::Post
        };
        breaker.permit(admission, owner)
    }

    /// The claim was written: build the body, post it, settle the callback.
    async fn deliver(
        &self,
        record: OrderRecord,
        owner: &str,
        permit: &PostPermit<'_>,
        last_start: Option<DateTime<Utc>>,
        within_span: bool,
    ) -> Result<Reply, DispatchError> {
        let body = match build(&record, &self.warehouses) {
            Ok(body) => body,
            Err(unsendable) => return self.fail_unsendable(record, owner, &unsendable).await,
        };
        let started = Instant::now();
        let lease_until = record.callback.lease.as_ref().map(|lease| lease.until);
        let result = self
            .post(
                &body,
                &idempotency_key(&record),
                deadline::earliest(lease_until, last_start),
            )
            .await;
        let latency = started.elapsed();
        let failed_probe = permit.finish(result.breaker_outcome(), &self.clock).await;
        let refund = failed_probe || result.gives_back_the_try(within_span);
        self.settle_post(record, owner, result, latency, refund)
            .await
    }
}

/// Why a delivery was left unposted for the next receive.
pub const NO_TIME_TO_RECORD: &str =
    "the invocation ends before a post and its record would be done";

/// What the queue is told about a held delivery.
fn held_reply(held: Held, owner: &str) -> Reply {
    match held {
        Held::Breaker(hold) => (
            QueueAction::RetryIn(hold + jitter(owner, hold)),
            DeliveryOutcome::Held(format!(
                "the partner is down or just back (circuit breaker); held for {}s",
                hold.as_secs()
            )),
        ),
        Held::Throttled(limit) => {
            let hold = Duration::from_secs(1);
            (
                QueueAction::RetryIn(hold + jitter(owner, hold * 2)),
                DeliveryOutcome::Held(format!(
                    "the partner asked us to slow down (429): {limit} posts at once"
                )),
            )
        }
    }
}

/// Up to a fifth of `hold` more, so held messages do not all wake together;
/// derived from the delivery's owner (no randomness needed).
fn jitter(owner: &str, hold: Duration) -> Duration {
    let spread = hold.as_millis() / 5;
    if spread == 0 {
        return Duration::ZERO;
    }
    let hash = owner
        .bytes()
        .fold(0_u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    Duration::from_millis(u64::try_from(u128::from(hash) % spread).unwrap_or(0))
}

/// How long from `now` until `at` (zero when past).
fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or_default()
}
