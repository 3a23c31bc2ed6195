//! The claim step: one conditional write takes the callback for this
//! delivery ([`crate::record::callback`] has the rule), a redriven message
//! first re-arms its dead-lettered callback; a refusal says what the queue
//! should do with the message.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Delivery, DeliveryOutcome, DispatchError, Dispatcher, QueueAction, Reply, until};
use crate::ports::{Access, ClaimOutcome, Clock, OrderStore, PartnerClient, TokenSource};
use crate::record::OrderRecord;
use crate::record::callback::{CallbackStatus, Claim, NotClaimable};
use crate::update::{Change, update_order};

/// What the claim came to.
pub(super) enum Claimed {
    /// The claim was written: the order as it now stands.
    Won(Box<OrderRecord>),
    /// Refused at `now`, and why, judged on the order as it stood.
    Refused(NotClaimable, Box<OrderRecord>, DateTime<Utc>),
    /// A redriven message that no longer matches its callback.
    Unmatched,
}

impl<S: OrderStore, P: PartnerClient, C: Clock, T: TokenSource> Dispatcher<S, P, C, T> {
    /// Claims the callback for `owner`'s post.
    pub(super) async fn claim(
        &self,
        delivery: &Delivery,
        owner: &str,
    ) -> Result<Claimed, DispatchError> {
        // A redriven message re-arms its callback, then claims it like any other.
        for _ in 0..2 {
            let now = self.clock.now();
            let claim = Claim {
                generation: delivery.generation,
                message_id: delivery.message_id.clone(),
                owner: owner.to_owned(),
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
                ClaimOutcome::Claimed(record) => return Ok(Claimed::Won(record)),
                ClaimOutcome::Refused(NotClaimable::DeadLettered, _) if delivery.redriven => {
                    if !self.redrive(delivery, now).await? {
                        break;
                    }
                }
                ClaimOutcome::Refused(why, record) => {
                    return Ok(Claimed::Refused(why, record, now));
                }
            }
        }
        Ok(Claimed::Unmatched)
    }

    /// Why the claim failed, and what to do with the message.
    pub(super) async fn not_claimed(
        &self,
        why: NotClaimable,
        record: &OrderRecord,
        now: DateTime<Utc>,
    ) -> Result<Reply, DispatchError> {
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
    ) -> Result<Reply, DispatchError> {
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
}
