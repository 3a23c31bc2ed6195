//! Where an order's shipment report to the platform stands, and the rules that
//! make it go out once.
//!
//! The protocol, in the order things happen:
//! - **Due.** A write that makes the callback due ([`Callback::make_due`]) starts
//!   a new *generation* and asks the store for one queue message (the outbox:
//!   the table's stream carries it to the queue, so a write is never without
//!   its message).
//! - **Claim.** A delivery of that message takes the callback with one
//!   conditional write ([`Callback::check_claim`] is the condition,
//!   [`Callback::apply_claim`] the change): same generation, not settled, no
//!   live lease, not before its next attempt, posts left in the schedule. The
//!   first delivery binds the generation to its message id, so a duplicate
//!   message is dropped instead of running a second retry schedule. The claim
//!   counts the post, so a schedule of 8 means 8 posts, whatever the queue's
//!   receive count says.
//! - **Settle.** The answer is written only while the claimant still holds the
//!   lease (its owner is the fencing token); a stale holder's answer goes into
//!   the ledger and changes nothing else.
//! - **Replay.** An operator or ERP starts a new generation; messages of older
//!   generations are dropped when they arrive.

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
    /// Due: its queue message is on the way or on the queue.
    Pending,
    /// The partner could not be reached or asked us to retry; the queue will
    /// deliver the message again after a delay.
    Retrying,
    /// The partner answered `Success: true`.
    Delivered,
    /// The partner refused it (4xx or `Success: false`), or the order lacks a
    /// field the platform requires. Not retried; an operator may replay it.
    Failed,
    /// The retry schedule is spent; the message is in the dead-letter queue.
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

    /// Whether a message for it is on the callback queue (or on its way).
    #[must_use]
    pub fn in_flight(self) -> bool {
        matches!(self, Self::Pending | Self::Retrying)
    }
}

impl std::str::FromStr for CallbackStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            Self::NotRequired,
            Self::AwaitingShipment,
            Self::Pending,
            Self::Retrying,
            Self::Delivered,
            Self::Failed,
            Self::DeadLettered,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| format!("unknown callback status {text:?}"))
    }
}

/// One try at the partner.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// `None` when no HTTP answer came (timeout, connection error).
    pub http_status: Option<u16>,
    pub outcome: AttemptStatus,
    pub latency_ms: u64,
    /// Why it did not go through, in words (the partner's refusal, a failed
    /// token refresh, a connection error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The partner's error code (`Errors[0].Code` of its error envelope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_code: Option<String>,
    /// The partner's message (`Errors[0].Message`, or `Message`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_message: Option<String>,
    /// The partner's `TicketId`: what its support asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
}

/// Where an attempt left the callback (the ledger's `outcome`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    Delivered,
    Failed,
    /// Tried again later (also a test's filler attempt).
    #[default]
    Retrying,
    DeadLettered,
}

impl AttemptStatus {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Retrying => "retrying",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

impl std::fmt::Display for AttemptStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&AttemptOutcome> for AttemptStatus {
    fn from(outcome: &AttemptOutcome) -> Self {
        match outcome {
            AttemptOutcome::Delivered => Self::Delivered,
            AttemptOutcome::Rejected(_) => Self::Failed,
            AttemptOutcome::Retry { next: None, .. } => Self::DeadLettered,
            AttemptOutcome::Retry { .. } => Self::Retrying,
        }
    }
}

/// A dispatcher's hold on a callback while it posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The fencing token: which delivery holds it (message id and receive count).
    pub owner: String,
    pub until: DateTime<Utc>,
}

/// The callback part of an order. The fields marked "top-level" are stored as
/// attributes of their own (the claim's condition reads them); the rest is the
/// ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// Top-level.
    #[serde(skip, default = "not_required")]
    pub status: CallbackStatus,
    /// Top-level. +1 every time the callback is made due; 0 before.
    #[serde(skip)]
    pub generation: u64,
    /// Top-level. The queue message the current generation is bound to.
    #[serde(skip)]
    pub message_id: Option<String>,
    /// Top-level. Posts claimed in the current generation.
    #[serde(skip)]
    pub posts: u32,
    /// Top-level.
    #[serde(skip)]
    pub lease: Option<Lease>,
    /// Top-level. No post before then (the retry schedule).
    #[serde(skip)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Not stored: the next write must send this generation's queue message.
    #[serde(skip)]
    pub send_message: bool,
    /// Not stored: how many of the `attempt_count` tries the store already
    /// holds in its ledger (set when it reads the order); a save writes the
    /// ones after.
    #[serde(skip)]
    pub stored_attempts: u32,
    /// When the current generation became due.
    pub due_since: Option<DateTime<Utc>>,
    /// The ledger (the latest tries). Stored apart from the order's item (one
    /// item per try), hence absent from the item's JSON.
    #[serde(default)]
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

fn not_required() -> CallbackStatus {
    CallbackStatus::NotRequired
}

/// A delivery's bid to post: the claim's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The message's generation.
    pub generation: u64,
    pub message_id: String,
    /// The fencing token (message id and receive count).
    pub owner: String,
    pub now: DateTime<Utc>,
    pub lease: Duration,
    /// Posts in one generation's schedule.
    pub max_posts: u32,
}

/// Why a delivery may not post now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotClaimable {
    /// A newer generation exists (a replay): this message is obsolete.
    Superseded,
    /// Delivered, failed, not required or awaiting shipment: nothing to send.
    Settled(CallbackStatus),
    /// The retry schedule was spent; the message belongs in the dead-letter queue.
    DeadLettered,
    /// Another message already carries this generation: a duplicate.
    DuplicateMessage,
    /// A delivery is posting until then.
    Leased(DateTime<Utc>),
    /// The schedule says not before then.
    NotYet(DateTime<Utc>),
    /// Every post of the schedule was claimed, the last outcome unrecorded
    /// (its dispatcher died): the callback must be dead-lettered.
    ScheduleSpent,
}

/// How one try to post the callback ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Final: recorded as failed, never retried automatically.
    Rejected(String),
    /// Transient: tried again at `next`, or dead-lettered when `next` is
    /// `None` (the schedule is spent).
    Retry {
        reason: String,
        next: Option<DateTime<Utc>>,
    },
}

/// The partner's `{Success, Message, RawResponse}`, or its error envelope
/// `{"Errors": [{"Code", "Message"}], "TicketId", …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartnerAnswer {
    pub success: Option<bool>,
    pub message: Option<String>,
    pub raw_response: Option<String>,
    /// The envelope's first error code.
    pub code: Option<String>,
    pub ticket_id: Option<String>,
}

/// Why a replay was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReplayable {
    /// Delivered, not required or awaiting shipment.
    Status(CallbackStatus),
    /// An attempt is in flight until then.
    InFlight(DateTime<Utc>),
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
            generation: 0,
            message_id: None,
            posts: 0,
            lease: None,
            next_attempt_at: None,
            send_message: false,
            stored_attempts: 0,
            due_since: None,
            attempts: Vec::new(),
            attempt_count: 0,
            partner_success: None,
            partner_message: None,
            raw_response: None,
            reason: None,
            finished_at: None,
        }
    }

    /// Makes the callback due now, as a new generation with a fresh schedule;
    /// the write that saves it sends its queue message.
    pub fn make_due(&mut self, now: DateTime<Utc>) {
        self.status = CallbackStatus::Pending;
        self.generation += 1;
        self.message_id = None;
        self.posts = 0;
        self.lease = None;
        self.next_attempt_at = None;
        self.send_message = true;
        self.due_since = Some(now);
        self.reason = None;
        self.finished_at = None;
    }

    /// The live lease at `now`, if any.
    #[must_use]
    pub fn live_lease(&self, now: DateTime<Utc>) -> Option<&Lease> {
        self.lease.as_ref().filter(|lease| lease.until > now)
    }

    /// The claim's condition: `Ok` when `claim` may post now.
    pub fn check_claim(&self, claim: &Claim) -> Result<(), NotClaimable> {
        if claim.generation != self.generation {
            return Err(NotClaimable::Superseded);
        }
        match self.status {
            CallbackStatus::Pending | CallbackStatus::Retrying => {}
            CallbackStatus::DeadLettered => return Err(NotClaimable::DeadLettered),
            settled => return Err(NotClaimable::Settled(settled)),
        }
        if self
            .message_id
            .as_ref()
            .is_some_and(|bound| *bound != claim.message_id)
        {
            return Err(NotClaimable::DuplicateMessage);
        }
        if let Some(lease) = self.live_lease(claim.now) {
            return Err(NotClaimable::Leased(lease.until));
        }
        if let Some(at) = self.next_attempt_at.filter(|at| *at > claim.now) {
            return Err(NotClaimable::NotYet(at));
        }
        if self.posts >= claim.max_posts {
            return Err(NotClaimable::ScheduleSpent);
        }
        Ok(())
    }

    /// Whether `claim` is written already: its live lease is `claim`'s
    /// owner's (one receive of its message). A write retried after its
    /// answer was lost (a connection reset once DynamoDB applied it) finds
    /// this; it holds the callback as claimed, with nothing more to write.
    #[must_use]
    pub fn claimed_by(&self, claim: &Claim) -> bool {
        self.generation == claim.generation
            && self.status.in_flight()
            && self.message_id.as_deref() == Some(claim.message_id.as_str())
            && self
                .live_lease(claim.now)
                .is_some_and(|lease| lease.owner == claim.owner)
    }

    /// The claim's change: the lease, the message binding, one more post.
    pub fn apply_claim(&mut self, claim: &Claim) {
        self.lease = Some(Lease {
            owner: claim.owner.clone(),
            until: claim.now + claim.lease,
        });
        self.message_id = Some(claim.message_id.clone());
        self.posts += 1;
    }

    /// Whether `owner` still holds the lease (the settle's condition).
    #[must_use]
    pub fn held_by(&self, owner: &str) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|lease| lease.owner == owner)
    }

    /// Records a try in the ledger only: a stale holder's answer, kept for
    /// the operator, changing nothing else.
    pub fn record_attempt(&mut self, mut attempt: Attempt) {
        attempt.partner_message = attempt
            .partner_message
            .map(|m| truncate(m, MAX_PARTNER_MESSAGE));
        attempt.reason = attempt.reason.map(|m| truncate(m, MAX_PARTNER_MESSAGE));
        self.attempts.push(attempt);
        if self.attempts.len() > MAX_LEDGER {
            self.attempts.remove(0);
        }
        self.attempt_count += 1;
    }

    /// Records the claimant's try and what it means, and releases the lease.
    pub fn settle(&mut self, attempt: Attempt, answer: PartnerAnswer, verdict: AttemptOutcome) {
        let finished = attempt.at;
        self.record_attempt(attempt);
        self.lease = None;
        if answer.success.is_some() || answer.message.is_some() || answer.raw_response.is_some() {
            self.partner_success = answer.success;
            self.partner_message = answer.message.map(|m| truncate(m, MAX_PARTNER_MESSAGE));
            self.raw_response = answer
                .raw_response
                .map(|raw| truncate(raw, MAX_RAW_RESPONSE));
        }
        match verdict {
            AttemptOutcome::Delivered => {
                self.status = CallbackStatus::Delivered;
                self.reason = None;
                self.next_attempt_at = None;
                self.finished_at = Some(finished);
            }
            AttemptOutcome::Rejected(reason) => {
                self.status = CallbackStatus::Failed;
                self.reason = Some(reason);
                self.next_attempt_at = None;
                self.finished_at = Some(finished);
            }
            AttemptOutcome::Retry {
                reason,
                next: Some(next),
            } => {
                self.status = CallbackStatus::Retrying;
                self.reason = Some(reason);
                self.next_attempt_at = Some(next);
            }
            AttemptOutcome::Retry { reason, next: None } => self.dead_letter(reason, finished),
        }
    }

    /// The schedule is spent: the order says so and the message goes to the
    /// dead-letter queue.
    pub fn dead_letter(&mut self, reason: String, now: DateTime<Utc>) {
        self.status = CallbackStatus::DeadLettered;
        self.reason = Some(format!(
            "{reason}; retries exhausted ({} posts), the message is in the dead-letter queue",
            self.posts
        ));
        self.lease = None;
        self.next_attempt_at = None;
        self.finished_at = Some(now);
    }

    /// Fails the callback without a try: the order cannot make a valid request.
    pub fn fail_unsendable(&mut self, reason: String, now: DateTime<Utc>) {
        self.status = CallbackStatus::Failed;
        self.reason = Some(reason);
        self.lease = None;
        self.next_attempt_at = None;
        self.finished_at = Some(now);
    }

    /// Whether it failed before any request was made (the order lacked a
    /// field its platform requires): new data may make it sendable.
    #[must_use]
    pub fn failed_without_request(&self) -> bool {
        // The count, not the ledger: the ledger is read eventually consistently.
        self.status == CallbackStatus::Failed && self.attempt_count == 0
    }

    /// An operator redrove this generation's message from the dead-letter
    /// queue: a fresh schedule for the same generation, bound to that message.
    pub fn redrive(&mut self, message_id: &str, now: DateTime<Utc>) {
        self.status = CallbackStatus::Pending;
        self.message_id = Some(message_id.to_owned());
        self.posts = 0;
        self.lease = None;
        self.next_attempt_at = None;
        self.due_since = Some(now);
        self.reason = None;
        self.finished_at = None;
    }

    /// Whether a replay (`/callback/retry`) may start a new generation now:
    /// always after `failed` or `dead_lettered`; while `pending` or
    /// `retrying` only when no attempt is in flight.
    pub fn check_replay(&self, now: DateTime<Utc>) -> Result<(), NotReplayable> {
        match self.status {
            CallbackStatus::Failed | CallbackStatus::DeadLettered => Ok(()),
            CallbackStatus::Pending | CallbackStatus::Retrying => match self.live_lease(now) {
                Some(lease) => Err(NotReplayable::InFlight(lease.until)),
                None => Ok(()),
            },
            other => Err(NotReplayable::Status(other)),
        }
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
mod tests;
