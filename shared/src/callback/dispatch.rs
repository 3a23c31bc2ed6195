//! One delivery of a callback message: claim the callback, build the spec-001
//! body, post it, record what happened, and tell the queue what to do with the
//! message. Exactly one report per shipment rests on three things: the lease
//! (concurrent deliveries of the same message do not both send), settled states
//! (a delivered or refused callback is never sent again), and the
//! `Idempotency-Key` header (the partner can drop a repeat that slips through a
//! crash between its answer and our record).

use std::time::{Duration, Instant};

use serde::Deserialize;

use super::body::{build, idempotency_key};
use super::retry::RetryPolicy;
use super::state::{Attempt, NotClaimable, PartnerAnswer, Verdict};
use crate::config::Warehouses;
use crate::domain::OrderNumber;
use crate::error::StoreError;
use crate::ports::{Clock, OrderStore, PartnerClient, PartnerReply, Save, TransportError};
use crate::record::OrderRecord;
use crate::update::{Change, update_order};

/// What the queue should do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done with it (sent, refused, or nothing to send): delete it.
    Delete,
    /// Try again: hide it for this long and report it as failed.
    RetryIn(Duration),
}

/// What a delivery did, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
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
    },
    /// Nothing sent: already settled, or another delivery holds the lease.
    Skipped(String),
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("order {0} does not exist")]
    UnknownOrder(OrderNumber),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The callback use case over the store, the partner and the clock.
#[derive(Debug)]
pub struct Dispatcher<S, P, C> {
    store: S,
    partner: P,
    clock: C,
    warehouses: Warehouses,
    policy: RetryPolicy,
}

enum Claimed {
    Yes,
    No(NotClaimable),
}

impl<S: OrderStore, P: PartnerClient, C: Clock> Dispatcher<S, P, C> {
    pub fn new(
        store: S,
        partner: P,
        clock: C,
        warehouses: Warehouses,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            store,
            partner,
            clock,
            warehouses,
            policy,
        }
    }

    #[must_use]
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Handles delivery number `receive_count` of the message for `order_number`.
    pub async fn dispatch(
        &self,
        order_number: &OrderNumber,
        receive_count: u32,
    ) -> Result<(Disposition, Report), DispatchError> {
        let now = self.clock.now();
        let lease = chrono::Duration::from_std(self.policy.lease).unwrap_or(chrono::Duration::MAX);
        let (mut record, claimed) = update_order(&self.store, order_number, |record| {
            Ok::<_, DispatchError>(match record.callback.claim(now, lease) {
                Ok(()) => Change::Save(Claimed::Yes),
                Err(why) => Change::Keep(Claimed::No(why)),
            })
        })
        .await?
        .ok_or_else(|| DispatchError::UnknownOrder(order_number.clone()))?;

        match claimed {
            Claimed::No(NotClaimable::Settled(status)) => {
                return Ok((
                    Disposition::Delete,
                    Report::Skipped(format!("callback is {}", status.as_str())),
                ));
            }
            Claimed::No(NotClaimable::Leased(until)) => {
                let wait = (until - now).to_std().unwrap_or_default() + Duration::from_secs(1);
                return Ok((
                    Disposition::RetryIn(wait),
                    Report::Skipped("another delivery is sending it".into()),
                ));
            }
            Claimed::Yes => {}
        }

        let body = match build(&record, &self.warehouses) {
            Ok(body) => body,
            Err(unsendable) => {
                let reason = unsendable.to_string();
                self.settle(&mut record, |callback| {
                    callback.fail_unsendable(reason.clone(), now);
                })
                .await?;
                return Ok((
                    Disposition::Delete,
                    Report::Failed {
                        reason,
                        latency: None,
                    },
                ));
            }
        };

        let started = Instant::now();
        let result = self
            .partner
            .post_callback(&body, &idempotency_key(&record))
            .await;
        let latency = started.elapsed();
        let last = self.policy.is_last(receive_count);
        let (verdict, answer, http_status, retry_after) = judge(result, last);
        let attempt = Attempt {
            at: self.clock.now(),
            http_status,
            outcome: outcome_name(&verdict).to_owned(),
            latency_ms: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        };
        let (disposition, report) = match &verdict {
            Verdict::Delivered => (Disposition::Delete, Report::Delivered { latency }),
            Verdict::Rejected(reason) => (
                Disposition::Delete,
                Report::Failed {
                    reason: reason.clone(),
                    latency: Some(latency),
                },
            ),
            Verdict::Retry { reason, .. } => (
                // On the last delivery, let SQS move it to the DLQ right away.
                Disposition::RetryIn(if last {
                    Duration::ZERO
                } else {
                    self.policy.delay(receive_count, retry_after)
                }),
                Report::Retrying {
                    reason: reason.clone(),
                    latency: Some(latency),
                },
            ),
        };
        self.settle(&mut record, |callback| {
            callback.record(attempt.clone(), answer.clone(), verdict.clone());
        })
        .await?;
        Ok((disposition, report))
    }

    /// Records the outcome on the claimed record. Saved as it stands (one
    /// write, no re-read) unless the order changed since the claim, e.g. a late
    /// warehouse event; then the change is redone on a fresh read.
    async fn settle(
        &self,
        claimed: &mut OrderRecord,
        mut change: impl FnMut(&mut super::Callback),
    ) -> Result<(), DispatchError> {
        change(&mut claimed.callback);
        if self.store.save(claimed).await? == Save::Saved {
            return Ok(());
        }
        let order_number = claimed.order.order_number.clone();
        update_order(&self.store, &order_number, |record| {
            change(&mut record.callback);
            Ok::<_, DispatchError>(Change::Save(()))
        })
        .await?
        .ok_or(DispatchError::UnknownOrder(order_number))?;
        Ok(())
    }
}

/// The partner's answer body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnswerBody {
    success: Option<bool>,
    message: Option<String>,
    raw_response: Option<String>,
}

/// What an HTTP result means: delivered, refused for good, or worth retrying.
fn judge(
    result: Result<PartnerReply, TransportError>,
    last: bool,
) -> (Verdict, PartnerAnswer, Option<u16>, Option<Duration>) {
    let reply = match result {
        Ok(reply) => reply,
        Err(err) => {
            let verdict = Verdict::Retry {
                reason: err.to_string(),
                last,
            };
            return (verdict, PartnerAnswer::default(), None, None);
        }
    };
    let parsed: Option<AnswerBody> = serde_json::from_str(&reply.body).ok();
    let answer = parsed.as_ref().map_or_else(
        || PartnerAnswer {
            raw_response: (!reply.body.is_empty()).then(|| reply.body.clone()),
            ..PartnerAnswer::default()
        },
        |body| PartnerAnswer {
            success: body.success,
            message: body.message.clone(),
            raw_response: body.raw_response.clone(),
        },
    );
    let message = answer.message.clone().unwrap_or_default();
    let status = reply.status;
    let verdict = match status {
        200..=299 => match answer.success {
            Some(true) => Verdict::Delivered,
            Some(false) => {
                Verdict::Rejected(format!("the partner answered Success: false: {message}"))
            }
            // A 2xx we cannot read may or may not have been taken; the
            // Idempotency-Key makes asking again safe.
            None => Verdict::Retry {
                reason: format!("HTTP {status} without a readable Success"),
                last,
            },
        },
        408 | 429 | 500..=599 => Verdict::Retry {
            reason: format!("HTTP {status}{}", suffix(&message)),
            last,
        },
        _ => Verdict::Rejected(format!("HTTP {status}{}", suffix(&message))),
    };
    (verdict, answer, Some(status), reply.retry_after)
}

fn suffix(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn outcome_name(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Delivered => "delivered",
        Verdict::Rejected(_) => "failed",
        Verdict::Retry { last: true, .. } => "dead_lettered",
        Verdict::Retry { .. } => "retrying",
    }
}
