//! The sweeper: finds callbacks made due but never picked up by a dispatcher
//! (the function died between saving the order and sending the queue message,
//! or the send failed) and sends their message again.

use std::time::Duration;

use crate::error::StoreError;
use crate::ports::{CallbackQueue, Clock, OrderStore};
use crate::update::{Change, update_order};

/// Most callbacks re-sent per run; the next run takes the rest.
const BATCH: i32 = 100;

/// Re-enqueues callbacks due for longer than `grace`; returns how many.
pub async fn sweep<S: OrderStore, Q: CallbackQueue, C: Clock>(
    store: &S,
    queue: &Q,
    clock: &C,
    grace: Duration,
) -> Result<usize, StoreError> {
    let now = clock.now();
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    let mut sent = 0;
    for number in store.stuck_callbacks(now - grace, BATCH).await? {
        // Re-check on the order itself (the index lags) and restart the grace
        // period, so the next run does not send it again straight away.
        let restarted = update_order(store, &number, |record| {
            Ok::<_, StoreError>(if record.callback.stuck(now, grace) {
                record.callback.make_due(now);
                Change::Save(true)
            } else {
                Change::Keep(false)
            })
        })
        .await?;
        if !matches!(restarted, Some((_, true))) {
            continue;
        }
        match queue.enqueue(&number).await {
            Ok(()) => {
                sent += 1;
                tracing::info!(order_number = %number, "sweeper re-sent a callback message");
            }
            Err(err) => {
                tracing::warn!(order_number = %number, error = %err, "sweeper could not send")
            }
        }
    }
    Ok(sent)
}
