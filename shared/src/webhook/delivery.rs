//! One event's delivery to one endpoint, and the rules that fence it: the
//! callback's protocol (`record::callback`) for a second kind of message.
//! A delivery is claimed with a lease whose owner is the queue message's
//! fencing token (message id and receive count); only that owner may record
//! the answer, and a delivered one is never claimed again, so no duplicate
//! message, redrive or replay posts an event after its recorded success.

use chrono::{DateTime, Utc};

use super::{EndpointId, EventType, WebhookEvent};
use crate::callback::retry::RetryPolicy;

/// How long one post may take: an ERP's endpoint should answer at once and
/// work afterwards (the Standard Webhooks guidance); 5 s is what a hanging
/// endpoint costs each step of its backoff.
pub const POST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The webhook schedule: after post n, 5 s, 1 min, 5 min, 30 min, 2 h, 5 h,
/// 8 h, 8 h — 9 posts over about 23 h 36 min ("about a day", as the
/// Standard Webhooks senders retry), `Retry-After` honoured up to 12 h. The
/// lease covers the post and the two store writes around it: 3 timeouts.
#[must_use]
pub fn schedule(post_timeout: std::time::Duration) -> RetryPolicy {
    RetryPolicy {
        delays: [5, 60, 300, 1800, 7200, 18_000, 28_800, 28_800]
            .into_iter()
            .map(std::time::Duration::from_secs)
            .collect(),
        max_posts: 9,
        lease: post_timeout.saturating_mul(3),
        post_timeout,
    }
}

/// Longest part of an endpoint's answer kept for its owner to read.
pub const MAX_EXCERPT_CHARS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not tried yet, or waiting for its next try.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every try of its schedule failed, or the endpoint is gone.
    Failed,
}

/// How one post ended, as the HTTP client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostResult {
    /// The status, when the endpoint answered.
    pub http_status: Option<u16>,
    /// The first [`MAX_EXCERPT_CHARS`] of the answer, or why there was none.
    pub excerpt: String,
    pub latency_ms: u64,
    /// A `Retry-After` the endpoint asked for.
    pub retry_after: Option<std::time::Duration>,
}

impl PostResult {
    #[must_use]
    pub fn accepted(&self) -> bool {
        self.http_status
            .is_some_and(|status| (200..300).contains(&status))
    }

    #[must_use]
    pub fn gone(&self) -> bool {
        self.http_status == Some(410)
    }
}

/// One try, as the endpoint's owner sees it in its recent attempts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub http_status: Option<u16>,
    pub latency_ms: u64,
    pub excerpt: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// Which delivery a queue message is about: the endpoint (and its owner,
/// whose key it is stored under) and the entry `{created_at}#{event_id}`,
/// which sorts an endpoint's deliveries by time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DeliveryTicket {
    pub client_code: String,
    pub endpoint_id: String,
    pub entry: String,
    /// The event's type, so a delivery to an endpoint that stopped wanting
    /// it is dropped before it is claimed.
    pub event_type: String,
}

impl DeliveryTicket {
    #[must_use]
    pub fn new(endpoint: &EndpointId, event: &WebhookEvent) -> Self {
        Self {
            client_code: event.client_code.clone(),
            endpoint_id: endpoint.as_str().to_owned(),
            entry: event.log_entry(),
            event_type: event.kind.as_str().to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    pub kind: EventType,
    pub order_number: String,
    pub sequence: u64,
    /// The event's body, signed anew for each try.
    pub body: String,
    pub status: DeliveryStatus,
    /// Posts made so far.
    pub posts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease: Option<Lease>,
    pub last_attempt: Option<Attempt>,
}

/// Why a delivery was not claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotClaimed {
    /// Delivered or failed: drop the message.
    Settled(DeliveryStatus),
    /// Another holder's lease runs until then: look again after it.
    Leased(DateTime<Utc>),
    /// Its next try is not due before then.
    NotYet(DateTime<Utc>),
}

/// Why a delivery was not re-opened by a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReopened {
    /// Only a failed delivery re-opens: a delivered one is not sent again, a
    /// pending one is on its way already.
    NotFailed(DeliveryStatus),
    /// A holder's lease runs until then (its answer is still to be recorded).
    Leased(DateTime<Utc>),
}

/// What recording an answer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Delivered,
    /// Try again at that time.
    RetryAt(DateTime<Utc>),
    /// The schedule is used up (or the endpoint is gone).
    Failed,
}

/// The answer came from a holder whose lease had passed to another.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the lease is held by another delivery")]
pub struct StaleLease;

impl Delivery {
    /// A delivery of `event`, not tried yet.
    #[must_use]
    pub fn of(event: &WebhookEvent) -> Self {
        Self {
            event_id: event.id.clone(),
            kind: event.kind,
            order_number: event.order_number.clone(),
            sequence: event.sequence,
            body: event.body.clone(),
            status: DeliveryStatus::Pending,
            posts: 0,
            next_attempt_at: None,
            lease: None,
            last_attempt: None,
        }
    }

    /// Claims the delivery for `owner` at `now`: it counts the post and
    /// holds the lease for `policy.lease`. Already claimed by `owner` (its
    /// retried write): claimed as it stands.
    pub fn claim(
        &mut self,
        owner: &str,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Result<(), NotClaimed> {
        if self.claimed_by(owner, now) {
            return Ok(());
        }
        self.check_claim(now)?;
        self.posts += 1;
        self.lease = Some(Lease {
            owner: owner.to_owned(),
            until: now + chrono::Duration::from_std(policy.lease).unwrap_or_default(),
        });
        Ok(())
    }

    /// Whether `owner` (one receive of the delivery's message) holds the
    /// live lease at `now`: its claim is written already. A write retried
    /// after its answer was lost (a connection reset once DynamoDB applied
    /// it) finds this; it holds the delivery as claimed, nothing more to write.
    #[must_use]
    pub fn claimed_by(&self, owner: &str, now: DateTime<Utc>) -> bool {
        self.status == DeliveryStatus::Pending
            && self
                .lease
                .as_ref()
                .is_some_and(|lease| lease.owner == owner && now < lease.until)
    }

    /// The claim's rule alone (the store's conditional write says the same).
    pub fn check_claim(&self, now: DateTime<Utc>) -> Result<(), NotClaimed> {
        if self.status != DeliveryStatus::Pending {
            return Err(NotClaimed::Settled(self.status));
        }
        if let Some(lease) = &self.lease
            && now < lease.until
        {
            return Err(NotClaimed::Leased(lease.until));
        }
        match self.next_attempt_at {
            Some(at) if now < at => Err(NotClaimed::NotYet(at)),
            _ => Ok(()),
        }
    }

    /// Gives up the delivery `owner` claimed without posting it: its
    /// endpoint is disabled or no longer wants its type. Failed, so that a
    /// replay re-opens it once the endpoint wants it again; the claim's
    /// count is undone (nothing was posted).
    pub fn give_up(&mut self, owner: &str) -> Result<(), StaleLease> {
        if self.lease.as_ref().is_none_or(|lease| lease.owner != owner) {
            return Err(StaleLease);
        }
        self.status = DeliveryStatus::Failed;
        self.posts = self.posts.saturating_sub(1);
        self.next_attempt_at = None;
        self.lease = None;
        Ok(())
    }

    /// Gives back the claim `owner` made without posting: the invocation
    /// could not afford the post by the time the claim answered. The post
    /// it counted is undone and its lease ended, so the next receive
    /// claims it at once with no try of its schedule spent.
    pub fn release(&mut self, owner: &str) -> Result<(), StaleLease> {
        if self.lease.as_ref().is_none_or(|lease| lease.owner != owner) {
            return Err(StaleLease);
        }
        self.posts = self.posts.saturating_sub(1);
        self.lease = None;
        Ok(())
    }

    /// Re-opens a failed delivery for a replay: pending again with a fresh
    /// schedule (no posts counted, due at once). Its last attempt stays, so
    /// its owner still sees why it failed.
    pub fn reopen(&mut self, now: DateTime<Utc>) -> Result<(), NotReopened> {
        self.check_reopen(now)?;
        self.status = DeliveryStatus::Pending;
        self.posts = 0;
        self.next_attempt_at = None;
        self.lease = None;
        Ok(())
    }

    /// The re-opening's rule alone (the store's conditional write says the
    /// same): failed, and no live lease.
    pub fn check_reopen(&self, now: DateTime<Utc>) -> Result<(), NotReopened> {
        if self.status != DeliveryStatus::Failed {
            return Err(NotReopened::NotFailed(self.status));
        }
        match &self.lease {
            Some(lease) if now < lease.until => Err(NotReopened::Leased(lease.until)),
            _ => Ok(()),
        }
    }

    /// Records the answer to the post `owner` claimed.
    pub fn settle(
        &mut self,
        owner: &str,
        result: PostResult,
        now: DateTime<Utc>,
        policy: &RetryPolicy,
    ) -> Result<Settled, StaleLease> {
        if self.lease.as_ref().is_none_or(|lease| lease.owner != owner) {
            return Err(StaleLease);
        }
        self.lease = None;
        let settled = if result.accepted() {
            self.status = DeliveryStatus::Delivered;
            self.next_attempt_at = None;
            Settled::Delivered
        } else if result.gone() || self.posts >= policy.max_posts {
            self.status = DeliveryStatus::Failed;
            self.next_attempt_at = None;
            Settled::Failed
        } else {
            let delay = policy.delay(self.posts, result.retry_after);
            let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
            self.next_attempt_at = Some(at);
            Settled::RetryAt(at)
        };
        self.last_attempt = Some(Attempt {
            at: now,
            http_status: result.http_status,
            latency_ms: result.latency_ms,
            excerpt: result.excerpt.chars().take(MAX_EXCERPT_CHARS).collect(),
        });
        Ok(settled)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::seconds(seconds)
    }

    fn delivery() -> Delivery {
        Delivery {
            event_id: "evt_1".into(),
            kind: EventType::OrderShipped,
            order_number: "mabang-1".into(),
            sequence: 5,
            body: "{}".into(),
            status: DeliveryStatus::Pending,
            posts: 0,
            next_attempt_at: None,
            lease: None,
            last_attempt: None,
        }
    }

    fn answer(status: Option<u16>) -> PostResult {
        PostResult {
            http_status: status,
            excerpt: "x".repeat(1000),
            latency_ms: 12,
            retry_after: None,
        }
    }

    #[test]
    fn the_schedule_spans_about_a_day() {
        let policy = schedule(POST_TIMEOUT);
        let hours = policy.span().as_secs_f64() / 3600.0;
        assert!((23.0..24.0).contains(&hours), "{hours}");
        assert_eq!(policy.lease, std::time::Duration::from_secs(15));
    }

    #[test]
    fn a_delivered_event_is_never_claimed_again() {
        let policy = schedule(POST_TIMEOUT);
        let mut delivery = delivery();
        delivery.claim("m1#1", at(0), &policy).unwrap();
        assert_eq!(
            delivery.settle("m1#1", answer(Some(204)), at(1), &policy),
            Ok(Settled::Delivered)
        );
        assert_eq!(
            delivery.claim("m1#2", at(100), &policy),
            Err(NotClaimed::Settled(DeliveryStatus::Delivered))
        );
        assert_eq!(
            delivery.last_attempt.unwrap().excerpt.chars().count(),
            MAX_EXCERPT_CHARS
        );
    }

    #[test]
    fn a_live_lease_fences_a_second_holder_and_a_stale_answer_changes_nothing() {
        let policy = schedule(POST_TIMEOUT);
        let mut delivery = delivery();
        delivery.claim("m1#1", at(0), &policy).unwrap();
        assert_eq!(
            delivery.claim("m1#2", at(1), &policy),
            Err(NotClaimed::Leased(at(15)))
        );
        delivery.claim("m1#2", at(15), &policy).unwrap();
        let before = delivery.clone();
        assert_eq!(
            delivery.settle("m1#1", answer(Some(200)), at(16), &policy),
            Err(StaleLease)
        );
        assert_eq!(delivery, before);
    }

    #[test]
    fn failures_wait_their_delay_and_the_last_post_fails_it() {
        let policy = schedule(POST_TIMEOUT);
        let mut delivery = delivery();
        let mut now = at(0);
        for post in 1..=policy.max_posts {
            delivery.claim(&format!("m#{post}"), now, &policy).unwrap();
            match delivery
                .settle(&format!("m#{post}"), answer(Some(503)), now, &policy)
                .unwrap()
            {
                Settled::RetryAt(next) => {
                    assert_eq!(
                        delivery.claim("early", next - Duration::seconds(1), &policy),
                        Err(NotClaimed::NotYet(next))
                    );
                    now = next;
                }
                Settled::Failed => assert_eq!(post, policy.max_posts),
                Settled::Delivered => unreachable!(),
            }
        }
        assert_eq!(delivery.status, DeliveryStatus::Failed);
    }

    #[test]
    fn a_failed_delivery_reopens_with_a_fresh_schedule_and_a_delivered_one_does_not() {
        let policy = schedule(POST_TIMEOUT);
        let mut failed = delivery();
        failed.claim("m", at(0), &policy).unwrap();
        failed
            .settle("m", answer(Some(410)), at(1), &policy)
            .unwrap();
        failed.reopen(at(2)).unwrap();
        assert_eq!(failed.status, DeliveryStatus::Pending);
        assert_eq!((failed.posts, failed.next_attempt_at), (0, None));
        assert_eq!(failed.last_attempt.as_ref().unwrap().http_status, Some(410));
        failed.claim("m#2", at(2), &policy).unwrap();
        assert_eq!(
            failed.reopen(at(3)),
            Err(NotReopened::NotFailed(DeliveryStatus::Pending))
        );

        let mut delivered = delivery();
        delivered.claim("m", at(0), &policy).unwrap();
        delivered
            .settle("m", answer(Some(200)), at(1), &policy)
            .unwrap();
        assert_eq!(
            delivered.reopen(at(2)),
            Err(NotReopened::NotFailed(DeliveryStatus::Delivered))
        );
    }

    #[test]
    fn only_the_holder_gives_a_delivery_up_and_its_claim_is_not_counted_as_a_post() {
        let policy = schedule(POST_TIMEOUT);
        let mut held = delivery();
        held.claim("m#1", at(0), &policy).unwrap();
        assert_eq!(held.clone().give_up("m#2"), Err(StaleLease));
        held.give_up("m#1").unwrap();
        assert_eq!(
            (held.status, held.posts, held.lease.clone()),
            (DeliveryStatus::Failed, 0, None)
        );
        assert_eq!(held.reopen(at(1)), Ok(()));
    }

    #[test]
    fn a_failed_delivery_under_a_live_lease_is_not_reopened_until_it_ends() {
        let mut failed = Delivery {
            status: DeliveryStatus::Failed,
            lease: Some(Lease {
                owner: "m".into(),
                until: at(15),
            }),
            ..delivery()
        };
        assert_eq!(failed.reopen(at(14)), Err(NotReopened::Leased(at(15))));
        assert_eq!(failed.reopen(at(15)), Ok(()));
        assert_eq!(failed.lease, None);
    }

    #[test]
    fn a_410_fails_at_once_and_retry_after_is_honoured() {
        let policy = schedule(POST_TIMEOUT);
        let mut gone = delivery();
        gone.claim("m", at(0), &policy).unwrap();
        assert_eq!(
            gone.settle("m", answer(Some(410)), at(0), &policy),
            Ok(Settled::Failed)
        );

        let mut busy = delivery();
        busy.claim("m", at(0), &policy).unwrap();
        let slow_down = PostResult {
            retry_after: Some(std::time::Duration::from_secs(120)),
            ..answer(Some(429))
        };
        assert_eq!(
            busy.settle("m", slow_down, at(0), &policy),
            Ok(Settled::RetryAt(at(120)))
        );
    }
}
