//! Where an order's shipment report to the platform stands, and the rules that
//! make it go out once: a lease claimed before sending, final outcomes that are
//! never re-sent, and a bounded ledger of attempts.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Most attempts kept in the ledger (the latest ones).
pub const MAX_LEDGER: usize = 20;
/// Longest partner answer kept, in bytes.
pub const MAX_RAW_RESPONSE: usize = 2048;
/// Longest partner message kept, in bytes.
pub const MAX_PARTNER_MESSAGE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    /// The platform gets no callback (not TikTok, Temu or eBay).
    NotRequired,
    /// A callback platform; the parcel has not reached the carrier yet.
    AwaitingShipment,
    /// Due: a message is (or is about to be) on the callback queue.
    Pending,
    /// The partner could not be reached or asked us to retry; the queue will
    /// deliver the message again after a delay.
    Retrying,
    /// The partner answered `Success: true`.
    Delivered,
    /// The partner refused it (4xx or `Success: false`), or the order lacks a
    /// field the platform requires. Not retried; an operator may replay it.
    Failed,
    /// Retries ran out; the message went to the dead-letter queue.
    DeadLettered,
}

impl CallbackStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRequired => "not_required",
            Self::AwaitingShipment => "awaiting_shipment",
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

/// One try at the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// `None` when no HTTP answer came (timeout, connection error).
    pub http_status: Option<u16>,
    pub outcome: String,
    pub latency_ms: u64,
}

/// The callback part of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    pub status: CallbackStatus,
    /// When it became due; with `awaiting_dispatch`, what the sweeper looks at.
    pub due_since: Option<DateTime<Utc>>,
    /// Due, but no dispatcher has picked it up yet. The sweeper re-enqueues
    /// callbacks left in this state too long (a crash between the state write
    /// and the queue send).
    pub awaiting_dispatch: bool,
    /// A dispatcher holds the callback until then; nobody else sends.
    pub lease_until: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
    /// Total tries, including those dropped from the bounded ledger.
    pub attempt_count: u32,
    pub partner_success: Option<bool>,
    pub partner_message: Option<String>,
    pub raw_response: Option<String>,
    /// Why it failed or is being retried, in words.
    pub reason: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Why a dispatcher may not send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotClaimable {
    /// Delivered, failed or not required: the message is spent.
    Settled(CallbackStatus),
    /// Another delivery of the message is sending until then.
    Leased(DateTime<Utc>),
}

/// How a try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Final: recorded as failed, never retried automatically.
    Rejected(String),
    /// Transient: tried again later, unless this was the last delivery.
    Retry {
        reason: String,
        last: bool,
    },
}

/// The partner's `{Success, Message, RawResponse}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerAnswer {
    pub success: Option<bool>,
    pub message: Option<String>,
    pub raw_response: Option<String>,
}

impl Callback {
    /// The initial state for an order of a platform that does (or does not)
    /// get callbacks.
    #[must_use]
    pub fn new(required: bool) -> Self {
        Self {
            status: if required {
                CallbackStatus::AwaitingShipment
            } else {
                CallbackStatus::NotRequired
            },
            due_since: None,
            awaiting_dispatch: false,
            lease_until: None,
            attempts: Vec::new(),
            attempt_count: 0,
            partner_success: None,
            partner_message: None,
            raw_response: None,
            reason: None,
            finished_at: None,
        }
    }

    /// Makes the callback due now; the caller then sends the queue message.
    pub fn make_due(&mut self, now: DateTime<Utc>) {
        self.status = CallbackStatus::Pending;
        self.due_since = Some(now);
        self.awaiting_dispatch = true;
        self.lease_until = None;
        self.reason = None;
        self.finished_at = None;
    }

    /// Whether the sweeper should enqueue it again: due, never picked up, for
    /// longer than `grace`.
    #[must_use]
    pub fn stuck(&self, now: DateTime<Utc>, grace: Duration) -> bool {
        self.awaiting_dispatch && self.due_since.is_some_and(|since| now - since >= grace)
    }

    /// Takes the lease for one send, or says why not.
    pub fn claim(&mut self, now: DateTime<Utc>, lease: Duration) -> Result<(), NotClaimable> {
        match self.status {
            CallbackStatus::Pending | CallbackStatus::Retrying | CallbackStatus::DeadLettered => {}
            settled => return Err(NotClaimable::Settled(settled)),
        }
        if let Some(until) = self.lease_until.filter(|until| *until > now) {
            return Err(NotClaimable::Leased(until));
        }
        self.lease_until = Some(now + lease);
        self.awaiting_dispatch = false;
        Ok(())
    }

    /// Records a try and what it means, and releases the lease.
    pub fn record(&mut self, attempt: Attempt, answer: PartnerAnswer, verdict: Verdict) {
        let finished = attempt.at;
        self.attempts.push(attempt);
        if self.attempts.len() > MAX_LEDGER {
            self.attempts.remove(0);
        }
        self.attempt_count += 1;
        self.lease_until = None;
        if answer.success.is_some() || answer.message.is_some() || answer.raw_response.is_some() {
            self.partner_success = answer.success;
            self.partner_message = answer.message.map(|m| truncate(m, MAX_PARTNER_MESSAGE));
            self.raw_response = answer
                .raw_response
                .map(|raw| truncate(raw, MAX_RAW_RESPONSE));
        }
        match verdict {
            Verdict::Delivered => {
                self.status = CallbackStatus::Delivered;
                self.reason = None;
                self.finished_at = Some(finished);
            }
            Verdict::Rejected(reason) => {
                self.status = CallbackStatus::Failed;
                self.reason = Some(reason);
                self.finished_at = Some(finished);
            }
            Verdict::Retry { reason, last } => {
                self.status = if last {
                    CallbackStatus::DeadLettered
                } else {
                    CallbackStatus::Retrying
                };
                self.reason = Some(if last {
                    format!("{reason}; retries exhausted, the message is in the dead-letter queue")
                } else {
                    reason
                });
            }
        }
    }

    /// Fails the callback without a try: the order cannot make a valid request.
    pub fn fail_unsendable(&mut self, reason: String, now: DateTime<Utc>) {
        self.status = CallbackStatus::Failed;
        self.reason = Some(reason);
        self.lease_until = None;
        self.awaiting_dispatch = false;
        self.finished_at = Some(now);
    }

    /// Whether an operator may replay it (`/callback/retry`).
    #[must_use]
    pub fn replayable(&self) -> bool {
        matches!(
            self.status,
            CallbackStatus::Failed | CallbackStatus::DeadLettered | CallbackStatus::Retrying
        )
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap()
    }

    fn due() -> Callback {
        let mut callback = Callback::new(true);
        callback.make_due(now());
        callback
    }

    fn attempt() -> Attempt {
        Attempt {
            at: now(),
            http_status: Some(503),
            outcome: "retry".into(),
            latency_ms: 20,
        }
    }

    #[test]
    fn only_one_delivery_holds_the_lease() {
        let mut callback = due();
        assert_eq!(callback.claim(now(), Duration::seconds(60)), Ok(()));
        assert_eq!(
            callback.claim(now(), Duration::seconds(60)),
            Err(NotClaimable::Leased(now() + Duration::seconds(60)))
        );
        // A crashed holder's lease runs out.
        assert_eq!(
            callback.claim(now() + Duration::seconds(61), Duration::seconds(60)),
            Ok(())
        );
    }

    #[test]
    fn a_delivered_callback_is_never_claimed_again() {
        let mut callback = due();
        callback.claim(now(), Duration::seconds(60)).unwrap();
        callback.record(attempt(), PartnerAnswer::default(), Verdict::Delivered);
        assert_eq!(
            callback.claim(now(), Duration::seconds(60)),
            Err(NotClaimable::Settled(CallbackStatus::Delivered))
        );
    }

    #[test]
    fn the_last_retry_marks_it_dead_lettered_and_says_why() {
        let mut callback = due();
        callback.record(
            attempt(),
            PartnerAnswer::default(),
            Verdict::Retry {
                reason: "HTTP 503".into(),
                last: true,
            },
        );
        assert_eq!(callback.status, CallbackStatus::DeadLettered);
        assert!(callback.reason.unwrap().contains("dead-letter"));
    }

    #[test]
    fn the_ledger_and_the_raw_response_are_bounded() {
        let mut callback = due();
        for _ in 0..25 {
            let answer = PartnerAnswer {
                raw_response: Some("é".repeat(2000)),
                ..PartnerAnswer::default()
            };
            callback.record(
                attempt(),
                answer,
                Verdict::Retry {
                    reason: "x".into(),
                    last: false,
                },
            );
        }
        assert_eq!(callback.attempts.len(), MAX_LEDGER);
        assert_eq!(callback.attempt_count, 25);
        assert!(callback.raw_response.unwrap().len() <= MAX_RAW_RESPONSE);
    }

    #[test]
    fn a_callback_never_picked_up_is_stuck_after_the_grace_period() {
        let mut callback = due();
        assert!(!callback.stuck(now() + Duration::minutes(4), Duration::minutes(5)));
        assert!(callback.stuck(now() + Duration::minutes(5), Duration::minutes(5)));
        callback.claim(now(), Duration::seconds(60)).unwrap();
        assert!(!callback.stuck(now() + Duration::hours(1), Duration::minutes(5)));
    }
}
