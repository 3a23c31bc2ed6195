//! Read-modify-write of one order with optimistic concurrency: the pattern every
//! state change (warehouse events, cancellation, callback claims and results)
//! goes through, so concurrent writers never lose each other's changes.

use crate::domain::OrderNumber;
use crate::error::StoreError;
use crate::ports::{OrderStore, Save};
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

/// Reads `order_number`, applies `change`, and saves the result if the order
/// was not changed by someone else meanwhile (otherwise reads again and
/// re-applies). `Ok(None)` when there is no such order.
pub async fn update_order<S, T, E>(
    store: &S,
    order_number: &OrderNumber,
    mut change: impl FnMut(&mut OrderRecord) -> Result<Change<T>, E>,
) -> Result<Option<(OrderRecord, T)>, E>
where
    S: OrderStore,
    E: From<StoreError>,
{
    for _ in 0..MAX_TRIES {
        let Some(mut record) = store.get(order_number).await? else {
            return Ok(None);
        };
        match change(&mut record)? {
            Change::Keep(value) => return Ok(Some((record, value))),
            Change::Save(value) => match store.save(&mut record).await? {
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
