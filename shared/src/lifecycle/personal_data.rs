//! The end of an order's personal data: erasure on request (an ERP's
//! `POST …/order/{order_number}/personal-data/erase`, an operator's
//! `orderctl order erase`) and the scheduled redaction of final orders once
//! `PERSONAL_DATA_RETENTION_DAYS` have passed (the `personal-data-sweep`
//! function). What redaction replaces and keeps:
//! [`crate::record::personal_data`].
//!
//! Due orders are found without a scan: a final order that still holds
//! personal data carries `personal_data_shard` (one of [`crate::polling::SHARDS`])
//! and `final_at`, the key of the sparse index [`REDACTION_INDEX`]; the
//! redacting write removes the shard, so the index holds only what is still
//! to do.

use chrono::{DateTime, Duration, Utc};

use super::LifecycleError;
use crate::domain::OrderNumber;
use crate::ports::{Access, Clock, DueRedactions, LabelStore, OrderStore};
use crate::record::OrderRecord;
use crate::record::personal_data::Redaction;
use crate::update::{Change, update_order};

/// The sparse index of final orders that still hold personal data, by shard
/// and `final_at`.
pub const REDACTION_INDEX: &str = "by_personal_data_final";

/// The default of `PERSONAL_DATA_RETENTION_DAYS`: Amazon's 30 days after the
/// order ships or is cancelled.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// Orders redacted per sweep at most; the next sweep takes the rest.
/// At 1 M orders a month about 1,400 fall due an hour; a run takes ≈ 25 ms
/// an order, so 5,000 fit in its 300 s with room for the daily peaks.
pub const SWEEP_BATCH: usize = 5_000;

/// An order's partition in [`REDACTION_INDEX`]: only while it is final and
/// not redacted.
#[must_use]
pub fn redaction_shard(
    order_number: &OrderNumber,
    final_at: Option<DateTime<Utc>>,
    redacted_at: Option<DateTime<Utc>>,
) -> Option<String> {
    (final_at.is_some() && redacted_at.is_none())
        .then(|| format!("final#{}", crate::polling::shard(order_number)))
}

/// Every partition of [`REDACTION_INDEX`].
#[must_use]
pub fn redaction_partitions() -> Vec<String> {
    (0..crate::polling::SHARDS)
        .map(|shard| format!("final#{shard}"))
        .collect()
}

/// What an erasure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erased {
    /// Redacted now.
    Now,
    /// It had been redacted before (its label was deleted again, harmlessly).
    Before,
}

/// Redacts the order's personal data at once and deletes its label, for a
/// reader allowed by `access` (another client's order is not found, exactly
/// like a missing one). Refused while the warehouse still needs the address.
pub async fn erase<S: OrderStore, L: LabelStore>(
    store: &S,
    labels: &L,
    access: Access<'_>,
    order_number: &str,
    now: DateTime<Utc>,
) -> Result<(OrderRecord, Erased), LifecycleError> {
    let not_found = || LifecycleError::NotFound(order_number.to_owned());
    let number = OrderNumber::parse(order_number).map_err(|_| not_found())?;
    redact(store, labels, &number, access, |record| {
        record
            .redact_personal_data(now)
            .map_err(LifecycleError::from)
    })
    .await?
    .ok_or_else(not_found)
}

/// One order's redaction, label included. The label goes first, judged on a
/// read of the order: a failure anywhere leaves the order as it was (still
/// listed as due, so the next sweep tries again), never a redacted order whose
/// label nothing will delete.
async fn redact<S: OrderStore, L: LabelStore>(
    store: &S,
    labels: &L,
    number: &OrderNumber,
    access: Access<'_>,
    mut decide: impl FnMut(&mut OrderRecord) -> Result<Redaction, LifecycleError>,
) -> Result<Option<(OrderRecord, Erased)>, LifecycleError> {
    let Some(mut probe) = store.get(number, access).await?.into_found() else {
        return Ok(None);
    };
    if let Redaction::Redacted { label: Some(label) }
    | Redaction::AlreadyRedacted { label: Some(label) } = decide(&mut probe)?
    {
        labels.delete_label(&label.key).await?;
    }
    let Some((record, erased)) = update_order(store, number, access, |record| {
        Ok::<_, LifecycleError>(match decide(record)? {
            Redaction::Redacted { .. } => Change::Save(Erased::Now),
            Redaction::AlreadyRedacted { .. } => Change::Keep(Erased::Before),
        })
    })
    .await?
    else {
        return Ok(None);
    };
    tracing::info!(order_number = %number, ?erased, "personal data redacted");
    Ok(Some((record, erased)))
}

/// What a sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Orders redacted.
    pub redacted: usize,
    /// Listed as due but not (any more): changed since, or already done.
    pub skipped: usize,
    /// Failed; they stay listed and the next sweep tries again.
    pub failed: usize,
}

/// Redacts every final order whose retention has passed: the due ones are
/// read from the index, each is judged again on the stored order (the index
/// is eventually consistent), up to [`SWEEP_BATCH`] a run.
pub async fn sweep<S, L, C>(
    store: &S,
    labels: &L,
    clock: &C,
    retention: Duration,
) -> Result<Sweep, LifecycleError>
where
    S: OrderStore + DueRedactions,
    L: LabelStore,
    C: Clock,
{
    let now = clock.now();
    let due = store.final_before(now - retention, SWEEP_BATCH).await?;
    let mut sweep = Sweep::default();
    for number in due {
        let redacted = redact(store, labels, &number, Access::Service, |record| {
            if record.redaction_due(now, retention) {
                record
                    .redact_personal_data(now)
                    .map_err(LifecycleError::from)
            } else {
                Err(LifecycleError::NotFound(number.to_string()))
            }
        })
        .await;
        match redacted {
            Ok(Some((_, Erased::Now))) => sweep.redacted += 1,
            Ok(_) | Err(LifecycleError::NotFound(_)) => sweep.skipped += 1,
            Err(err) => {
                tracing::warn!(order_number = %number, error = %err,
                    "scheduled redaction failed; the next sweep tries again");
                sweep.failed += 1;
            }
        }
    }
    tracing::info!(
        redacted = sweep.redacted,
        skipped = sweep.skipped,
        failed = sweep.failed,
        "personal-data sweep"
    );
    Ok(sweep)
}

#[cfg(test)]
mod tests;
