//! One delivery, end to end: ask the endpoint's health (taking its probe
//! when a block is over), claim the delivery, sign, post, record the answer
//! under the lease, then the endpoint's health. A delivery its endpoint no
//! longer wants is given up (failed, for a replay to re-open). A post is
//! made only when the invocation has time left for it and its record
//! ([`crate::dispatch::deadline`]). What the queue is told comes back as a
//! [`Next`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::callback::retry::RetryPolicy;
use crate::dispatch::deadline;
use crate::error::StoreError;
use crate::ports::{Clock, DeliveryClaim, DeliveryStore, EndpointStore, Save, WebhookPoster};
use crate::webhook::{
    Admission, Answer, DeliveryTicket, Endpoint, EndpointId, EventType, PROBE_RECHECK, PostResult,
    Settled, sign,
};

/// Tries of the endpoint's health write when deliverers race for it.
const HEALTH_TRIES: usize = 8;

/// What became of one delivery, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Posted and failed; tried again later.
    Retrying,
    /// Its schedule is used up, or the endpoint answered 410.
    Failed,
    /// Not posted: the endpoint is backing off, or another holder has it.
    Held,
    /// Not posted and never will be: no such endpoint or delivery, the
    /// endpoint is disabled or no longer wants the type, or it is settled.
    Dropped,
}

/// What the queue is told about the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Delete it.
    Done,
    /// Show it again after this long.
    Later(Duration),
}

/// The result of one delivery: what happened, what the queue does, and
/// whether this delivery disabled its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub outcome: DeliveryOutcome,
    pub next: Next,
    pub disabled_endpoint: bool,
}

impl Delivered {
    fn dropped() -> Self {
        Self {
            outcome: DeliveryOutcome::Dropped,
            next: Next::Done,
            disabled_endpoint: false,
        }
    }

    fn held_until(until: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            outcome: DeliveryOutcome::Held,
            next: Next::Later(wait(until, now)),
            disabled_endpoint: false,
        }
    }
}

#[derive(Debug)]
pub struct Deliverer<E, D, P, C> {
    endpoints: E,
    deliveries: D,
    poster: P,
    clock: C,
    policy: RetryPolicy,
    /// What the writes that record a post's answer may take.
    record_budget: Duration,
}

impl<E: EndpointStore, D: DeliveryStore, P: WebhookPoster, C: Clock> Deliverer<E, D, P, C> {
    pub fn new(endpoints: E, deliveries: D, poster: P, clock: C, policy: RetryPolicy) -> Self {
        Self {
            endpoints,
            deliveries,
            poster,
            clock,
            policy,
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

    /// Delivers the ticket's event; `owner` is the message's fencing token,
    /// `deadline` the end of the invocation (`None`: none).
    pub async fn deliver(
        &self,
        ticket: &DeliveryTicket,
        owner: &str,
        deadline: Option<DateTime<Utc>>,
    ) -> Result<Delivered, StoreError> {
        let (Some(id), Some(kind)) = (
            EndpointId::parse(&ticket.endpoint_id),
            EventType::parse(&ticket.event_type),
        ) else {
            return Ok(Delivered::dropped());
        };
        let Some(mut endpoint) = self.endpoints.get(&ticket.client_code, &id).await? else {
            return Ok(Delivered::dropped());
        };
        let now = self.clock.now();
        // Not even a probe or a claim (it counts a post) when the invocation
        // could not record one: the next receive has the delivery, untouched.
        let last_start = deadline::last_record_start(deadline, self.record_budget);
        if !deadline::affords(now, self.policy.post_timeout, last_start) {
            return Ok(Delivered::held_until(now, now));
        }
        // An endpoint that does not want it (disabled, or the type dropped)
        // still has the delivery claimed, to be given up under the lease:
        // failed, not left pending without a message, so that a replay
        // sends it once the endpoint is enabled again.
        let skip = match endpoint.admission(kind, now) {
            Admission::Skip => true,
            Admission::Hold(until) => return Ok(Delivered::held_until(until, now)),
            Admission::Probe => {
                if let Some(until) = self.take_probe(&mut endpoint, now).await? {
                    return Ok(Delivered::held_until(until, now));
                }
                false
            }
            Admission::Post => false,
        };
        let mut delivery = match self
            .deliveries
            .claim(ticket, owner, now, &self.policy)
            .await?
        {
            None => return Ok(Delivered::dropped()),
            Some(DeliveryClaim::Refused(crate::webhook::NotClaimed::Settled(_))) => {
                return Ok(Delivered::dropped());
            }
            Some(DeliveryClaim::Refused(
                crate::webhook::NotClaimed::Leased(until)
                | crate::webhook::NotClaimed::NotYet(until),
            )) => return Ok(Delivered::held_until(until, now)),
            Some(DeliveryClaim::Claimed(delivery)) => delivery,
        };
        if skip {
            if delivery.give_up(owner).is_ok() {
                // Stale: the lease passed to another holder, which decides.
                self.deliveries.settle(ticket, owner, &delivery).await?;
            }
            return Ok(Delivered::dropped());
        }
        // A post must be answered (or time out) while the lease holds, so
        // that no other holder can claim and post meanwhile, and be recorded
        // before the invocation ends: one that cannot start in time (the
        // claim's answer took the time) gives the claim back, its try
        // undone, for the next receive.
        let lease_until = delivery.lease.as_ref().map_or(now, |lease| lease.until);
        let checked = self.clock.now();
        if !deadline::affords(
            checked,
            self.policy.post_timeout,
            deadline::earliest(Some(lease_until), last_start),
        ) {
            // A lease that already passed to another holder is its to settle.
            if delivery.release(owner).is_ok() {
                self.deliveries.settle(ticket, owner, &delivery).await?;
            }
            return Ok(Delivered::held_until(checked, checked));
        }
        let headers = sign(
            &endpoint.signing_secrets(now),
            &delivery.event_id,
            now.timestamp(),
            delivery.body.as_bytes(),
        );
        let result = self
            .poster
            .post(
                &endpoint.url,
                &headers,
                &delivery.body,
                self.policy.post_timeout,
            )
            .await;
        let answer = answer(&result);
        let finished = self.clock.now();
        let Ok(settled) = delivery.settle(owner, result, finished, &self.policy) else {
            return Ok(Delivered::dropped());
        };
        if self.deliveries.settle(ticket, owner, &delivery).await? == Save::Stale {
            // The lease passed to another delivery meanwhile: its answer counts.
            return Ok(Delivered::dropped());
        }
        let disabled_endpoint = self.record_health(endpoint, answer, now, finished).await?;
        let (outcome, next) = match settled {
            Settled::Delivered => (DeliveryOutcome::Delivered, Next::Done),
            Settled::Failed => (DeliveryOutcome::Failed, Next::Done),
            Settled::RetryAt(at) => (DeliveryOutcome::Retrying, Next::Later(wait(at, finished))),
        };
        Ok(Delivered {
            outcome,
            next,
            disabled_endpoint,
        })
    }

    /// Takes the endpoint's probe for this delivery's post, for as long as
    /// its lease; `Some(until)` when another deliverer changed the endpoint
    /// first (most likely taking the probe): this one looks again then,
    /// shortly.
    async fn take_probe(
        &self,
        endpoint: &mut Endpoint,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let until = now + chrono::Duration::from_std(self.policy.lease).unwrap_or_default();
        let read_version = endpoint.version;
        endpoint.take_probe(until);
        Ok(match self.endpoints.save(endpoint, read_version).await? {
            Save::Saved => None,
            Save::Stale => Some(until.min(now + PROBE_RECHECK)),
        })
    }

    /// The endpoint's health after `answer` to a post admitted at
    /// `admitted_at`; `true` when it disabled it.
    async fn record_health(
        &self,
        mut endpoint: Endpoint,
        answer: Answer,
        admitted_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        for _ in 0..HEALTH_TRIES {
            if endpoint.notes_already(answer, now) {
                return Ok(false);
            }
            let read_version = endpoint.version;
            let disabled = endpoint.record(answer, admitted_at, now);
            if self.endpoints.save(&endpoint, read_version).await? == Save::Saved {
                return Ok(disabled);
            }
            match self
                .endpoints
                .get(&endpoint.client_code, &endpoint.id)
                .await?
            {
                Some(fresh) => endpoint = fresh,
                None => return Ok(false),
            }
        }
        Err(StoreError::Unavailable("the endpoint kept changing".into()))
    }
}

fn answer(result: &PostResult) -> Answer {
    if result.accepted() {
        Answer::Accepted
    } else if result.gone() {
        Answer::Gone
    } else {
        Answer::Failed
    }
}

/// From `now` until `until`, at least a second (SQS counts whole seconds).
fn wait(until: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (until - now)
        .to_std()
        .unwrap_or_default()
        .max(Duration::from_secs(1))
}
