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

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::Digest as _;

use crate::callback::body::{CallbackBody, build, idempotency_key};
use crate::callback::breaker::{BreakerPolicy, BreakerStore, Gate, PostOutcome, Transition};
use crate::callback::breaker_window::{FailureWindow, Tally};
use crate::callback::retry::RetryPolicy;
use crate::callback::throttle::Throttle;
use crate::config::Warehouses;
use crate::domain::OrderNumber;
use crate::error::StoreError;
use crate::ports::{
    Access, ClaimOutcome, Clock, Guard, OrderStore, PartnerClient, PartnerReply, Save, TokenError,
    TokenSource, TransportError,
};
use crate::record::OrderRecord;
use crate::record::callback::{
    Attempt, AttemptOutcome, Callback, CallbackStatus, Claim, NotClaimable, PartnerAnswer,
};
use crate::update::{Change, update_order};

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
}

impl Delivery {
    /// The fencing token of this delivery: a message received again is
    /// another delivery, with a token of its own (the receive count for
    /// people reading the order, a digest of the receipt handle for
    /// uniqueness: SQS may count a redriven message's receives from 1 again).
    #[must_use]
    pub fn owner(&self) -> String {
        let digest = crate::hex::encode(&sha2::Sha256::digest(self.receipt.as_bytes()));
        format!(
            "{}#{}#{}",
            self.message_id,
            self.receive_count,
            digest.get(..12).unwrap_or_default()
        )
    }
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
        /// The partner rejected our credentials (401/403), or no token could
        /// be had: an operator's problem, not the shipment's.
        credentials_rejected: bool,
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

/// The reason of every retry caused by the partner refusing our credentials.
pub const CREDENTIALS_REJECTED: &str = "the partner rejected our credentials";

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
}

/// The circuit breaker as the dispatcher uses it.
#[derive(Debug)]
struct Breaker {
    store: Arc<dyn BreakerStore>,
    policy: BreakerPolicy,
    /// This dispatcher's posts lately (what opens the breaker).
    seen: std::sync::Mutex<FailureWindow>,
    /// Its posts at once, fewer after a 429.
    throttle: std::sync::Mutex<Throttle>,
    /// Told of every change (metrics).
    on_transition: fn(Transition),
}

/// What posting with a token gave.
struct Posted {
    result: Result<PartnerReply, TransportError>,
    /// The token could not be had or refreshed (after a 401).
    token_error: Option<TokenError>,
    /// Nothing was posted: getting the token left too little of the lease
    /// for a post and its record (why, in words).
    not_posted: Option<String>,
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
        }
    }

    /// Puts the fleet-wide circuit breaker in front of the partner;
    /// `on_transition` hears when it opens, reopens or closes.
    #[must_use]
    pub fn with_breaker(
        mut self,
        store: Arc<dyn BreakerStore>,
        mut policy: BreakerPolicy,
        on_transition: fn(Transition),
    ) -> Self {
        // A probe cannot take longer than the claim it posts under.
        policy.probe_lease = policy.probe_lease.min(self.policy.lease);
        self.breaker = Some(Breaker {
            store,
            policy,
            seen: std::sync::Mutex::new(FailureWindow::default()),
            throttle: std::sync::Mutex::new(Throttle::default()),
            on_transition,
        });
        self
    }

    #[must_use]
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Handles one delivery of a callback message.
    pub async fn dispatch(
        &self,
        delivery: &Delivery,
    ) -> Result<(QueueAction, DeliveryOutcome), DispatchError> {
        let owner = delivery.owner();
        // Before the claim: a held message does not use up its schedule. Only
        // within the schedule's span: an outage longer than that dead-letters
        // as if there were no breaker.
        let span = chrono::Duration::from_std(self.policy.span()).unwrap_or(chrono::Duration::MAX);
        let within_span = delivery
            .sent_at
            .is_none_or(|sent| self.clock.now() - sent < span);
        let gate = if within_span {
            self.gate(&owner).await
        } else {
            Ok(false)
        };
        let probing = match gate {
            Ok(probing) => probing,
            Err(held) => {
                return Ok((
                    QueueAction::RetryIn(held + jitter(&owner, held)),
                    DeliveryOutcome::Held(format!(
                        "the partner is down or just back (circuit breaker); held for {}s",
                        held.as_secs()
                    )),
                ));
            }
        };
        // After a 429 fewer posts at once; a probe is never held back.
        let _slot = match self.post_slot(probing) {
            Ok(slot) => slot,
            Err(limit) => {
                let hold = Duration::from_secs(1);
                return Ok((
                    QueueAction::RetryIn(hold + jitter(&owner, hold * 2)),
                    DeliveryOutcome::Held(format!(
                        "the partner asked us to slow down (429): {limit} posts at once"
                    )),
                ));
            }
        };
        // A redriven message re-arms its callback, then claims it like any other.
        for _ in 0..2 {
            let now = self.clock.now();
            let claim = Claim {
                generation: delivery.generation,
                message_id: delivery.message_id.clone(),
                owner: owner.clone(),
                now,
                lease: chrono::Duration::from_std(self.policy.lease)
                    .unwrap_or(chrono::Duration::MAX),
                max_posts: self.policy.max_posts,
            };
            let claimed = self
                .store
                .claim(&delivery.order_number, &claim)
                .await?
                .ok_or_else(|| DispatchError::UnknownOrder(delivery.order_number.clone()))?;
            match claimed {
                ClaimOutcome::Claimed(record) => {
                    return self.post(*record, &owner, probing).await;
                }
                ClaimOutcome::Refused(NotClaimable::DeadLettered, _) if delivery.redriven => {
                    if !self.redrive(delivery, now).await? {
                        break;
                    }
                }
                ClaimOutcome::Refused(why, record) => {
                    if probing {
                        self.release_probe(&owner).await;
                    }
                    return self.not_claimed(why, &record, now).await;
                }
            }
        }
        Ok((
            QueueAction::Delete,
            DeliveryOutcome::Skipped("the redriven message no longer matches its callback".into()),
        ))
    }

    /// The claim was written: post, and record the answer under the lease.
    async fn post(
        &self,
        mut record: OrderRecord,
        owner: &str,
        probing: bool,
    ) -> Result<(QueueAction, DeliveryOutcome), DispatchError> {
        let body = match build(&record, &self.warehouses) {
            Ok(body) => body,
            Err(unsendable) => {
                let reason = unsendable.to_string();
                let now = self.clock.now();
                self.settle(&mut record, owner, |callback| {
                    callback.fail_unsendable(reason.clone(), now);
                })
                .await?;
                return Ok((
                    QueueAction::Delete,
                    DeliveryOutcome::Failed {
                        reason,
                        latency: None,
                    },
                ));
            }
        };

        let started = Instant::now();
        let lease_until = record.callback.lease.as_ref().map(|lease| lease.until);
        let posted = self
            .post_authorized(&body, &idempotency_key(&record), lease_until)
            .await;
        let latency = started.elapsed();
        let now = self.clock.now();
        let outcome = match (&posted.result, &posted.token_error) {
            _ if posted.not_posted.is_some() => None,
            (Err(_), Some(_)) => None,
            (Err(_), None) => Some(PostOutcome::Down),
            (Ok(reply), _) if reply.status == 429 => Some(PostOutcome::Throttled),
            (Ok(reply), _) if matches!(reply.status, 408 | 500..=599) => Some(PostOutcome::Down),
            (Ok(_), _) => Some(PostOutcome::Answered),
        };
        if let Some(outcome) = outcome {
            self.record_outcome(outcome, owner).await;
        }
        // A probe that learnt nothing of the partner (no token, no post)
        // gives its slot back at once rather than after its lease.
        if probing && outcome.is_none() {
            self.release_probe(owner).await;
        }
        // A failed probe is the breaker's, not the callback's, and a post not
        // made is nobody's: either is given back to the schedule.
        let refund = (probing && outcome == Some(PostOutcome::Down)) || posted.not_posted.is_some();
        let posts = record.callback.posts - u32::from(refund && record.callback.posts > 0);
        let next = |retry_after| {
            (posts < self.policy.max_posts).then(|| {
                now + chrono::Duration::from_std(self.policy.delay(posts, retry_after))
                    .unwrap_or(chrono::Duration::MAX)
            })
        };
        let (verdict, answer, http_status) = match (posted.result, &posted.token_error) {
            _ if posted.not_posted.is_some() => (
                AttemptOutcome::Retry {
                    reason: posted.not_posted.clone().unwrap_or_default(),
                    next: next(None),
                },
                PartnerAnswer::default(),
                None,
            ),
            // No token at all: nothing was posted.
            (Err(_), Some(err)) => (
                AttemptOutcome::Retry {
                    reason: format!("{CREDENTIALS_REJECTED}: no access token ({err})"),
                    next: next(None),
                },
                PartnerAnswer::default(),
                None,
            ),
            (result, _) => judge(result, next),
        };
        let verdict = match (verdict, &posted.token_error) {
            (AttemptOutcome::Retry { reason, next }, Some(err)) if http_status.is_some() => {
                AttemptOutcome::Retry {
                    reason: format!("{reason}; {err}"),
                    next,
                }
            }
            (verdict, _) => verdict,
        };
        let credentials_rejected = matches!(&verdict,
            AttemptOutcome::Retry { reason, .. } if reason.starts_with(CREDENTIALS_REJECTED));
        let attempt = Attempt {
            at: now,
            http_status,
            outcome: outcome_name(&verdict).to_owned(),
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            reason: match &verdict {
                AttemptOutcome::Delivered => None,
                AttemptOutcome::Rejected(reason) | AttemptOutcome::Retry { reason, .. } => {
                    Some(reason.clone())
                }
            },
            partner_code: answer.code.clone(),
            partner_message: answer.message.clone(),
            ticket_id: answer.ticket_id.clone(),
        };
        let (disposition, report) = match &verdict {
            AttemptOutcome::Delivered => {
                (QueueAction::Delete, DeliveryOutcome::Delivered { latency })
            }
            AttemptOutcome::Rejected(reason) => (
                QueueAction::Delete,
                DeliveryOutcome::Failed {
                    reason: reason.clone(),
                    latency: Some(latency),
                },
            ),
            AttemptOutcome::Retry {
                reason,
                next: Some(next),
            } => (
                QueueAction::RetryIn(until(*next, now)),
                DeliveryOutcome::Retrying {
                    reason: reason.clone(),
                    latency: Some(latency),
                    credentials_rejected,
                },
            ),
            AttemptOutcome::Retry { reason, next: None } => (
                QueueAction::DeadLetter,
                DeliveryOutcome::DeadLettered {
                    reason: reason.clone(),
                },
            ),
        };
        let ours = self
            .settle(&mut record, owner, |callback| {
                callback.settle(attempt.clone(), answer.clone(), verdict.clone());
                if refund {
                    callback.posts = callback.posts.saturating_sub(1);
                }
            })
            .await?;
        if ours {
            return Ok((disposition, report));
        }
        // Our lease ran out and someone else took over (a replay, another
        // delivery): the answer goes into the ledger and nothing else.
        update_order(
            &self.store,
            &record.order.order_number,
            Access::Service,
            |stale| {
                stale.callback.record_attempt(attempt.clone());
                Ok::<_, DispatchError>(Change::Save(()))
            },
        )
        .await?;
        Ok((
            QueueAction::Leave,
            DeliveryOutcome::Skipped(format!(
                "the lease ran out before the answer ({}) was recorded; kept in the ledger only",
                attempt.outcome
            )),
        ))
    }

    /// The breaker's gate: `Ok(false)` to post, `Ok(true)` to post as the
    /// probe, `Err(hold)` to hold the message. A breaker that cannot be read
    /// lets the post through (it only protects; the claim still decides).
    async fn gate(&self, owner: &str) -> Result<bool, Duration> {
        let Some(breaker) = &self.breaker else {
            return Ok(false);
        };
        for _ in 0..3 {
            let now = self.clock.now();
            let mut state = match breaker.store.load().await {
                Ok(state) => state,
                Err(err) => {
                    tracing::warn!(error = %err, "circuit breaker unreadable; posting");
                    return Ok(false);
                }
            };
            match state.gate(owner, now, &breaker.policy) {
                Gate::Pass => return Ok(false),
                Gate::Hold(hold) => return Err(hold.max(Duration::from_secs(1))),
                Gate::Probe => {
                    state.claim_probe(owner, now, &breaker.policy);
                    match breaker.store.save(&state).await {
                        Ok(true) => {
                            tracing::info!(
                                breaker = "probing",
                                "the partner was down; this delivery probes it"
                            );
                            return Ok(true);
                        }
                        Ok(false) => {}
                        Err(err) => {
                            tracing::warn!(error = %err, "circuit breaker unwritable; holding");
                            return Err(Duration::from_secs(5));
                        }
                    }
                }
            }
        }
        Err(Duration::from_secs(1))
    }

    /// A place among the posts in flight (given back when dropped), or the
    /// limit that is full. A probe, or a dispatcher without a breaker,
    /// needs none.
    fn post_slot(&self, probing: bool) -> Result<Option<Slot<'_>>, u32> {
        let Some(breaker) = self.breaker.as_ref().filter(|_| !probing) else {
            return Ok(None);
        };
        let Ok(mut throttle) = breaker.throttle.lock() else {
            return Ok(None);
        };
        if throttle.try_start() {
            Ok(Some(Slot(&breaker.throttle)))
        } else {
            Err(throttle.limit().unwrap_or_default())
        }
    }

    /// Records a post's outcome in this dispatcher's window and, when that
    /// changes the breaker, on the breaker (a version-checked write, redone
    /// on a fresh read; none for most posts).
    async fn record_outcome(&self, outcome: PostOutcome, owner: &str) {
        let Some(breaker) = &self.breaker else {
            return;
        };
        let seen = {
            let Ok(mut seen) = breaker.seen.lock() else {
                return;
            };
            seen.record(
                self.clock.now(),
                outcome == PostOutcome::Down,
                breaker.policy.window,
            );
            seen.clone()
        };
        if let Ok(mut throttle) = breaker.throttle.lock() {
            throttle.observe(outcome, self.clock.now());
        }
        for _ in 0..5 {
            let now = self.clock.now();
            let mut state = match breaker.store.load().await {
                Ok(state) => state,
                Err(err) => {
                    tracing::warn!(error = %err, "circuit breaker unreadable; outcome not recorded");
                    return;
                }
            };
            if !state.changes_with(outcome, owner, &seen, now, &breaker.policy) {
                return;
            }
            let transition = state.record(outcome, owner, &seen, now, &breaker.policy);
            match breaker.store.save(&state).await {
                Ok(true) => {
                    if let Some(transition) = transition {
                        let tally = seen.tally(now, breaker.policy.window, None);
                        log_transition(transition, tally);
                        (breaker.on_transition)(transition);
                        if let (Transition::Opened(_), Ok(mut seen)) =
                            (transition, breaker.seen.lock())
                        {
                            seen.clear();
                        }
                    }
                    return;
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "circuit breaker unwritable; outcome not recorded");
                    return;
                }
            }
        }
    }

    /// The probe found nothing to post: let another delivery probe now.
    async fn release_probe(&self, owner: &str) {
        let Some(breaker) = &self.breaker else {
            return;
        };
        if let Ok(mut state) = breaker.store.load().await
            && state.release_probe(owner)
        {
            let _saved = breaker.store.save(&state).await;
        }
    }

    /// Posts with the current token; on a 401 gets a fresh token and posts
    /// once more, in the same attempt (the claim counted one post: the
    /// partner refused the first without looking at it).
    ///
    /// Getting a token may wait (for another dispatcher's refresh, for the
    /// token endpoint): a post is started only while the lease, until
    /// `lease_until`, outlasts the partner timeout. A post started later
    /// could not have its answer recorded, and another delivery could post
    /// the same shipment meanwhile.
    async fn post_authorized(
        &self,
        body: &CallbackBody,
        key: &str,
        lease_until: Option<DateTime<Utc>>,
    ) -> Posted {
        let too_late = || {
            let post_timeout = chrono::Duration::from_std(self.policy.post_timeout)
                .unwrap_or(chrono::Duration::MAX);
            lease_until
                .is_some_and(|until| self.clock.now() + post_timeout >= until)
                .then(|| Posted {
                    result: Err(TransportError::Connect("not posted".into())),
                    token_error: None,
                    not_posted: Some(
                        "not posted: getting the partner token took most of the lease".into(),
                    ),
                })
        };
        let token = match self.tokens.token().await {
            Ok(token) => token,
            Err(err) => {
                tracing::error!(error = %err, "no partner access token; the callback will be retried");
                return Posted {
                    result: Err(TransportError::Connect(err.to_string())),
                    token_error: Some(err),
                    not_posted: None,
                };
            }
        };
        if let Some(not_posted) = too_late() {
            return not_posted;
        }
        let result = self.partner.post_callback(body, key, &token).await;
        if !matches!(&result, Ok(reply) if reply.status == 401) {
            return Posted {
                result,
                token_error: None,
                not_posted: None,
            };
        }
        tracing::info!("the partner rejected the access token (401); refreshing it");
        match self.tokens.refresh(&token).await {
            Ok(fresh) => {
                if let Some(not_posted) = too_late() {
                    return not_posted;
                }
                tracing::info!("partner access token refreshed after a 401; posting again");
                Posted {
                    result: self.partner.post_callback(body, key, &fresh).await,
                    token_error: None,
                    not_posted: None,
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "the partner access token could not be refreshed");
                Posted {
                    result,
                    token_error: Some(err),
                    not_posted: None,
                }
            }
        }
    }

    /// Why the claim failed, and what to do with the message.
    async fn not_claimed(
        &self,
        why: NotClaimable,
        record: &OrderRecord,
        now: DateTime<Utc>,
    ) -> Result<(QueueAction, DeliveryOutcome), DispatchError> {
        let skipped = |disposition, why: String| Ok((disposition, DeliveryOutcome::Skipped(why)));
        match why {
            NotClaimable::Superseded => skipped(
                QueueAction::Delete,
                "a replay superseded this message".into(),
            ),
            NotClaimable::Settled(status) => skipped(
                QueueAction::Delete,
                format!("the callback is {}", status.as_str()),
            ),
            NotClaimable::DuplicateMessage => skipped(
                QueueAction::Delete,
                "another message carries this callback".into(),
            ),
            NotClaimable::Leased(until_at) => skipped(
                QueueAction::RetryIn(until(until_at, now) + Duration::from_secs(1)),
                "another delivery is posting it".into(),
            ),
            NotClaimable::NotYet(at) => skipped(
                QueueAction::RetryIn(until(at, now)),
                "its next attempt is not due yet".into(),
            ),
            // Our own move to the dead-letter queue was interrupted: finish it.
            NotClaimable::DeadLettered => Ok((
                QueueAction::DeadLetter,
                DeliveryOutcome::Skipped("the callback is dead_lettered".into()),
            )),
            NotClaimable::ScheduleSpent => self.dead_letter_unrecorded(record, now).await,
        }
    }

    /// Every post was claimed but the last one's outcome was never recorded
    /// (its dispatcher died or could not write): dead-letter it now.
    async fn dead_letter_unrecorded(
        &self,
        seen: &OrderRecord,
        now: DateTime<Utc>,
    ) -> Result<(QueueAction, DeliveryOutcome), DispatchError> {
        let generation = seen.callback.generation;
        let max_posts = self.policy.max_posts;
        let reason = "the outcome of the last post was never recorded".to_owned();
        let (_, done) = update_order(
            &self.store,
            &seen.order.order_number,
            Access::Service,
            |record| {
                let callback = &record.callback;
                Ok::<_, DispatchError>(
                    if callback.generation == generation
                        && callback.status.in_flight()
                        && callback.posts >= max_posts
                        && callback.live_lease(now).is_none()
                    {
                        record.callback.dead_letter(reason.clone(), now);
                        Change::Save(true)
                    } else {
                        Change::Keep(false)
                    },
                )
            },
        )
        .await?
        .ok_or_else(|| DispatchError::UnknownOrder(seen.order.order_number.clone()))?;
        if done {
            Ok((
                QueueAction::DeadLetter,
                DeliveryOutcome::DeadLettered { reason },
            ))
        } else {
            // It changed meanwhile (a replay, a late answer): look again later.
            Ok((
                QueueAction::RetryIn(Duration::from_secs(1)),
                DeliveryOutcome::Skipped("the callback changed while being dead-lettered".into()),
            ))
        }
    }

    /// An operator redrove the message: a fresh schedule for its generation.
    /// `false` when the callback no longer matches the message.
    async fn redrive(
        &self,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Result<bool, DispatchError> {
        let (_, rearmed) = update_order(
            &self.store,
            &delivery.order_number,
            Access::Service,
            |record| {
                let callback = &mut record.callback;
                Ok::<_, DispatchError>(
                    if callback.status == CallbackStatus::DeadLettered
                        && delivery.generation == callback.generation
                    {
                        callback.redrive(&delivery.message_id, now);
                        Change::Save(true)
                    } else {
                        Change::Keep(false)
                    },
                )
            },
        )
        .await?
        .ok_or_else(|| DispatchError::UnknownOrder(delivery.order_number.clone()))?;
        if rearmed {
            tracing::info!(order_number = %delivery.order_number, "callback redriven from the dead-letter queue");
        }
        Ok(rearmed)
    }

    /// Writes `change` on the claimed record while `owner` holds the lease;
    /// redone on a fresh read when another writer (a late warehouse event)
    /// saved the order meanwhile. `false` when the lease was lost.
    async fn settle(
        &self,
        record: &mut OrderRecord,
        owner: &str,
        change: impl Fn(&mut Callback),
    ) -> Result<bool, DispatchError> {
        let mut candidate = record.clone();
        change(&mut candidate.callback);
        loop {
            if self.store.save(&mut candidate, Guard::Lease(owner)).await? == Save::Saved {
                *record = candidate;
                return Ok(true);
            }
            let fresh = self
                .store
                .get(&record.order.order_number, Access::Service)
                .await?
                .into_found()
                .ok_or_else(|| DispatchError::UnknownOrder(record.order.order_number.clone()))?;
            if !fresh.callback.held_by(owner) {
                *record = fresh;
                return Ok(false);
            }
            candidate = fresh;
            change(&mut candidate.callback);
        }
    }
}

/// `seen`: this dispatcher's window when it opened the breaker.
fn log_transition(transition: Transition, seen: Tally) {
    match transition {
        Transition::Opened(cool_down) => tracing::error!(
            breaker = "open",
            posts = seen.posts,
            failures = seen.failures,
            cool_down_s = cool_down.as_secs(),
            "the partner is down: circuit breaker opened; deliveries are held"
        ),
        Transition::Reopened(cool_down) => tracing::warn!(
            breaker = "open",
            cool_down_s = cool_down.as_secs(),
            "every probe failed: circuit breaker open again, for longer"
        ),
        Transition::Closed => tracing::info!(
            breaker = "closed",
            "the partner answered: circuit breaker closed; traffic comes back over the ramp"
        ),
    }
}

/// A post in flight, counted by the throttle until dropped.
struct Slot<'a>(&'a std::sync::Mutex<Throttle>);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut throttle) = self.0.lock() {
            throttle.finish();
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

/// The partner's answer body: spec 001's `{Success, Message, RawResponse}`
/// or CK1's error envelope `{Errors: [{Code, Message}], TicketId, …}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnswerBody {
    success: Option<bool>,
    message: Option<String>,
    raw_response: Option<String>,
    #[serde(default)]
    errors: Vec<EnvelopeError>,
    ticket_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnvelopeError {
    code: Option<String>,
    message: Option<String>,
}

/// What an HTTP result means: delivered, refused for good, or worth retrying
/// at the time `next` gives (given the partner's `Retry-After`; `None` when
/// the schedule is spent).
fn judge(
    result: Result<PartnerReply, TransportError>,
    next: impl Fn(Option<Duration>) -> Option<DateTime<Utc>>,
) -> (AttemptOutcome, PartnerAnswer, Option<u16>) {
    let reply = match result {
        Ok(reply) => reply,
        Err(err) => {
            let verdict = AttemptOutcome::Retry {
                reason: err.to_string(),
                next: next(None),
            };
            return (verdict, PartnerAnswer::default(), None);
        }
    };
    let parsed: Option<AnswerBody> = serde_json::from_str(&reply.body).ok();
    let answer = parsed.as_ref().map_or_else(
        || PartnerAnswer {
            raw_response: (!reply.body.is_empty()).then(|| reply.body.clone()),
            ..PartnerAnswer::default()
        },
        |body| {
            let first = body.errors.first();
            PartnerAnswer {
                success: body.success,
                message: body
                    .message
                    .clone()
                    .or_else(|| first.and_then(|e| e.message.clone())),
                raw_response: body.raw_response.clone(),
                code: first.and_then(|e| e.code.clone()),
                ticket_id: body.ticket_id.clone(),
            }
        },
    );
    let message = answer.message.clone().unwrap_or_default();
    let status = reply.status;
    let retry = |reason: String| AttemptOutcome::Retry {
        reason,
        next: next(reply.retry_after),
    };
    let verdict = match status {
        200..=299 => match answer.success {
            Some(true) => AttemptOutcome::Delivered,
            Some(false) => {
                AttemptOutcome::Rejected(format!("the partner answered Success: false: {message}"))
            }
            // A 2xx we cannot read may or may not have been taken: ask again.
            None => retry(format!("HTTP {status} without a readable Success")),
        },
        // Our credentials, not the shipment: never a failure for good.
        401 | 403 => retry(format!(
            "{CREDENTIALS_REJECTED} (HTTP {status}{})",
            suffix(&message)
        )),
        408 | 429 | 500..=599 => retry(format!("HTTP {status}{}", suffix(&message))),
        _ => AttemptOutcome::Rejected(format!("HTTP {status}{}", suffix(&message))),
    };
    (verdict, answer, Some(status))
}

fn suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn outcome_name(verdict: &AttemptOutcome) -> &'static str {
    match verdict {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Rejected(_) => "failed",
        AttemptOutcome::Retry { next: None, .. } => "dead_lettered",
        AttemptOutcome::Retry { .. } => "retrying",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Result<PartnerReply, TransportError> {
        Ok(PartnerReply {
            status,
            retry_after: None,
            body: body.to_owned(),
        })
    }

    fn later(_: Option<Duration>) -> Option<DateTime<Utc>> {
        Some(DateTime::<Utc>::MAX_UTC)
    }

    #[test]
    fn a_401_or_403_is_retried_as_rejected_credentials_never_failed() {
        for status in [401, 403] {
            let (verdict, _, _) = judge(reply(status, ""), later);
            assert!(
                matches!(&verdict, AttemptOutcome::Retry { reason, next: Some(_) }
                    if reason.starts_with(CREDENTIALS_REJECTED)),
                "{status}: {verdict:?}"
            );
        }
    }

    #[test]
    fn the_error_envelope_gives_code_message_and_ticket() {
        let (verdict, answer, status) = judge(
            reply(
                500,
                r#"{"Errors":[{"Code":"800F1533","Message":"boom"}],"TicketId":"t-9","UtcDateTime":"x"}"#,
            ),
            later,
        );
        assert_eq!(status, Some(500));
        assert_eq!(answer.code.as_deref(), Some("800F1533"));
        assert_eq!(answer.message.as_deref(), Some("boom"));
        assert_eq!(answer.ticket_id.as_deref(), Some("t-9"));
        assert!(
            matches!(verdict, AttemptOutcome::Retry { reason, .. } if reason == "HTTP 500: boom")
        );
    }

    #[test]
    fn a_400_envelope_fails_with_the_partners_message() {
        let (verdict, _, _) = judge(
            reply(
                400,
                r#"{"Errors":[{"Code":"C1","Message":"bad field"}],"TicketId":"t"}"#,
            ),
            later,
        );
        assert_eq!(
            verdict,
            AttemptOutcome::Rejected("HTTP 400: bad field".into())
        );
    }
}
