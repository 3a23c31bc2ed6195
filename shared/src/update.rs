//! Read-modify-write of one order with optimistic concurrency: the pattern every
//! state change (warehouse events, cancellation, callback claims and results)
//! goes through, so concurrent writers never lose each other's changes.

use crate::domain::OrderNumber;
use crate::error::StoreError;
use crate::ports::{Access, Guard, OrderStore, Save};
use crate::record::OrderRecord;

/// Tries before giving up on a hotly contended order.
const MAX_TRIES: usize = 8;

/// What a change decided.
#[derive(Debug)]
pub enum Change<T> {
    /// The record changed: save it.
    Save(T),
    /// Nothing to save (a duplicate, a settled state).
    Keep(T),
}

/// Reads `order_number` as `access` may see it, applies `change`, and saves
/// the result if the order was not changed by someone else meanwhile
/// (otherwise reads again and re-applies). `Ok(None)` when there is no such
/// order, or the reader may not see it.
pub async fn update_order<S, T, E>(
    store: &S,
    order_number: &OrderNumber,
    access: Access<'_>,
    mut change: impl FnMut(&mut OrderRecord) -> Result<Change<T>, E>,
) -> Result<Option<(OrderRecord, T)>, E>
where
    S: OrderStore,
    E: From<StoreError>,
{
    for attempt in 0..MAX_TRIES {
        if attempt > 0 {
            // Re-reading at once only collides again with the other writers.
            tokio::time::sleep(backoff(attempt)).await;
        }
        let Some(mut record) = store.get(order_number, access).await?.into_found() else {
            return Ok(None);
        };
        match change(&mut record)? {
            Change::Keep(value) => return Ok(Some((record, value))),
            Change::Save(value) => match store.save(&mut record, Guard::Version).await? {
                Save::Saved => return Ok(Some((record, value))),
                Save::Stale => {}
            },
        }
    }
    Err(StoreError::Unavailable(
        format!("order {order_number} kept changing under {MAX_TRIES} attempts to update it")
            .into(),
    )
    .into())
}

/// The pause before try `attempt` (1-based after the first): doubling from
/// 10 ms up to 320 ms, half of it random ("equal jitter") so writers that
/// collided spread out. At most ≈ 1.3 s over all tries.
fn backoff(attempt: usize) -> std::time::Duration {
    let ceiling_ms = 10_u64 << attempt.min(5);
    let jitter = getrandom::u64().unwrap_or(0) % (ceiling_ms / 2 + 1);
    std::time::Duration::from_millis(ceiling_ms / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use chrono::Utc;

    use super::*;

    /// A store whose one order is always changed by someone else first.
    struct Contended(Mutex<Vec<Instant>>, OrderRecord);

    impl OrderStore for Contended {
        async fn insert_new(&self, _: &OrderRecord) -> Result<crate::ports::Insert, StoreError> {
            unreachable!()
        }
        async fn get(
            &self,
            _: &OrderNumber,
            _: crate::ports::Access<'_>,
        ) -> Result<crate::ports::Lookup, StoreError> {
            self.0.lock().unwrap().push(Instant::now());
            Ok(crate::ports::Lookup::Found(Box::new(self.1.clone())))
        }
        async fn save(&self, _: &mut OrderRecord, _: Guard<'_>) -> Result<Save, StoreError> {
            Ok(Save::Stale)
        }
        async fn claim(
            &self,
            _: &OrderNumber,
            _: &crate::record::callback::Claim,
        ) -> Result<Option<crate::ports::ClaimOutcome>, StoreError> {
            unreachable!()
        }
        async fn orders_with_platform_order(
            &self,
            _: &str,
        ) -> Result<Vec<OrderNumber>, StoreError> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn a_contended_order_is_read_again_only_after_a_growing_random_pause() {
        let sample = include_str!("../../tests/fixtures/spec-000-sample.json");
        let order = crate::intake::parse_order(sample.as_bytes()).unwrap().order;
        let number = order.order_number.clone();
        let store = Contended(
            Mutex::new(Vec::new()),
            OrderRecord::accept(order, Vec::new(), Utc::now()),
        );

        let result = update_order(&store, &number, Access::Service, |_| {
            Ok::<_, StoreError>(Change::Save(()))
        })
        .await;

        assert!(matches!(result, Err(StoreError::Unavailable(_))));
        let reads = store.0.lock().unwrap().clone();
        assert_eq!(reads.len(), MAX_TRIES);
        let waited = reads[MAX_TRIES - 1] - reads[0];
        assert!(
            waited >= Duration::from_millis(50),
            "re-read after {waited:?} in all"
        );
        assert!(
            waited <= Duration::from_secs(3),
            "re-read after {waited:?} in all"
        );
    }
}
