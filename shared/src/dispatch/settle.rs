//! The settle step: what a post came to ([`super::answer`]), when it is
//! tried again (the schedule), written on the callback while the lease is
//! still ours, and what the queue is told.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::answer::{self, CREDENTIALS_REJECTED, RetryCause, Verdict};
use super::post::PostResult;
use super::{DeliveryOutcome, DispatchError, Dispatcher, QueueAction, Reply, until};
use crate::callback::body::Unsendable;
use crate::ports::{
    Access, Clock, Guard, OrderStore, PartnerClient, Save, TokenError, TokenSource,
};
use crate::record::OrderRecord;
use crate::record::callback::{Attempt, AttemptOutcome, AttemptStatus, Callback, PartnerAnswer};
use crate::update::{Change, update_order};

/// Why nothing was posted when the token came too late.
const NOT_POSTED: &str = "not posted: getting the partner token took most of the lease";

/// A post's result as the ledger and the schedule see it.
struct Judged {
    verdict: Verdict,
    answer: PartnerAnswer,
    http_status: Option<u16>,
}

impl Judged {
    fn of(result: PostResult) -> Self {
        let unanswered = |verdict| Self {
            verdict,
            answer: PartnerAnswer::default(),
            http_status: None,
        };
        match result {
            PostResult::TooLate => {
                unanswered(Verdict::retry(RetryCause::NotPosted, NOT_POSTED.into()))
            }
            PostResult::NoToken(err @ TokenError::Unavailable(_)) => unanswered(Verdict::retry(
                RetryCause::NotPosted,
                format!("not posted: {err}"),
            )),
            PostResult::NoToken(err @ TokenError::Unreachable(_)) => {
                unanswered(Verdict::retry(RetryCause::Unavailable, err.to_string()))
            }
            PostResult::NoToken(err) => unanswered(Verdict::retry(
                RetryCause::Credentials,
                format!("{CREDENTIALS_REJECTED}: no access token ({err})"),
            )),
            PostResult::Unanswered(err) => {
                unanswered(Verdict::retry(RetryCause::Unavailable, err.to_string()))
            }
            PostResult::Answered(reply) => {
                let (verdict, answer) = answer::judge(&reply);
                Self {
                    verdict,
                    answer,
                    http_status: Some(reply.status),
                }
            }
            PostResult::RefreshFailed(reply, err) => {
                let mut judged = Self::of(PostResult::Answered(reply));
                if let Verdict::Retry { reason, .. } = &mut judged.verdict {
                    *reason = format!("{reason}; {err}");
                }
                judged
            }
        }
    }
}

impl<S: OrderStore, P: PartnerClient, C: Clock, T: TokenSource> Dispatcher<S, P, C, T> {
    /// Records what `result` came to on the claimed `record`; `refund`: the
    /// post is given back to the schedule (a failed probe is the breaker's,
    /// not the callback's, and a post not made is nobody's).
    pub(super) async fn settle_post(
        &self,
        mut record: OrderRecord,
        owner: &str,
        result: PostResult,
        latency: Duration,
        refund: bool,
    ) -> Result<Reply, DispatchError> {
        let now = self.clock.now();
        let posts = record.callback.posts - u32::from(refund && record.callback.posts > 0);
        let Judged {
            verdict,
            answer,
            http_status,
        } = Judged::of(result);
        let next = self.next_post(&verdict, posts, now);
        let outcome = attempt_outcome(&verdict, next);
        let attempt = Attempt {
            at: now,
            http_status,
            outcome: AttemptStatus::from(&outcome),
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            reason: match &outcome {
                AttemptOutcome::Delivered => None,
                AttemptOutcome::Rejected(reason) | AttemptOutcome::Retry { reason, .. } => {
                    Some(reason.clone())
                }
            },
            partner_code: answer.code.clone(),
            partner_message: answer.message.clone(),
            ticket_id: answer.ticket_id.clone(),
        };
        let reply = reply(&verdict, next, latency, now);
        let ours = self
            .settle(&mut record, owner, |callback| {
                callback.settle(attempt.clone(), answer.clone(), outcome.clone());
                if refund {
                    callback.posts = callback.posts.saturating_sub(1);
                }
            })
            .await?;
        if ours {
            return Ok(reply);
        }
        self.keep_in_ledger(&record, attempt).await
    }

    /// When a retry is due; `None` when `verdict` is no retry or the
    /// schedule is spent.
    fn next_post(
        &self,
        verdict: &Verdict,
        posts: u32,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let Verdict::Retry { retry_after, .. } = verdict else {
            return None;
        };
        (posts < self.policy.max_posts).then(|| {
            now + chrono::Duration::from_std(self.policy.delay(posts, *retry_after))
                .unwrap_or(chrono::Duration::MAX)
        })
    }

    /// The claimed order cannot be sent (it lacks what the platform requires):
    /// failed for good.
    pub(super) async fn fail_unsendable(
        &self,
        mut record: OrderRecord,
        owner: &str,
        unsendable: &Unsendable,
    ) -> Result<Reply, DispatchError> {
        let reason = unsendable.to_string();
        let now = self.clock.now();
        self.settle(&mut record, owner, |callback| {
            callback.fail_unsendable(reason.clone(), now);
        })
        .await?;
        Ok((
            QueueAction::Delete,
            DeliveryOutcome::Failed {
                reason,
                latency: None,
            },
        ))
    }

    /// Our lease ran out and someone else took over (a replay, another
    /// delivery): the answer goes into the ledger and nothing else.
    async fn keep_in_ledger(
        &self,
        record: &OrderRecord,
        attempt: Attempt,
    ) -> Result<Reply, DispatchError> {
        let outcome = attempt.outcome;
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
                "the lease ran out before the answer ({outcome}) was recorded; kept in the ledger only"
            )),
        ))
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

/// The callback's outcome for the ledger: a retry at `next`, or
/// dead-lettered when there is none.
fn attempt_outcome(verdict: &Verdict, next: Option<DateTime<Utc>>) -> AttemptOutcome {
    match verdict {
        Verdict::Delivered => AttemptOutcome::Delivered,
        Verdict::Rejected(reason) => AttemptOutcome::Rejected(reason.clone()),
        Verdict::Retry { reason, .. } => AttemptOutcome::Retry {
            reason: reason.clone(),
            next,
        },
    }
}

/// What the queue is told, and what is reported, for a recorded verdict.
fn reply(
    verdict: &Verdict,
    next: Option<DateTime<Utc>>,
    latency: Duration,
    now: DateTime<Utc>,
) -> Reply {
    match (verdict, next) {
        (Verdict::Delivered, _) => (QueueAction::Delete, DeliveryOutcome::Delivered { latency }),
        (Verdict::Rejected(reason), _) => (
            QueueAction::Delete,
            DeliveryOutcome::Failed {
                reason: reason.clone(),
                latency: Some(latency),
            },
        ),
        (Verdict::Retry { cause, reason, .. }, Some(next)) => (
            QueueAction::RetryIn(until(next, now)),
            DeliveryOutcome::Retrying {
                reason: reason.clone(),
                latency: Some(latency),
                cause: *cause,
            },
        ),
        (Verdict::Retry { reason, .. }, None) => (
            QueueAction::DeadLetter,
            DeliveryOutcome::DeadLettered {
                reason: reason.clone(),
            },
        ),
    }
}
