//! Order intake (spec 000): parse, check, store once, answer.

pub mod findings;
pub mod limits;
mod parse;

pub use parse::{OrderRequest, parse_order};

use crate::auth::Principal;
use crate::config::Warehouses;
use crate::domain::OrderNumber;
use crate::error::{FieldError, IntakeError};
use crate::ports::{CallbackQueue, Clock, Insert, OrderStore};
use crate::record::OrderRecord;
use crate::view::OrderView;

/// What became of an accepted order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Stored now (201).
    Created(OrderView),
    /// The identical order was already stored; nothing was written (200).
    Replayed(OrderView),
}

/// The intake use cases over an order store (and the callback queue, for
/// orders that arrive already handed to the carrier).
#[derive(Debug)]
pub struct Intake<S, Q, C> {
    store: S,
    queue: Q,
    warehouses: Warehouses,
    clock: C,
}

impl<S: OrderStore, Q: CallbackQueue, C: Clock> Intake<S, Q, C> {
    pub fn new(store: S, queue: Q, warehouses: Warehouses, clock: C) -> Self {
        Self {
            store,
            queue,
            warehouses,
            clock,
        }
    }

    /// Accepts an order body from `caller`: stores it once, or explains every
    /// reason it cannot. The body's `client_code` must be the caller's.
    pub async fn accept(&self, caller: &Principal, body: &[u8]) -> Result<Accepted, IntakeError> {
        let OrderRequest {
            order,
            real_time_response,
        } = parse_order(body)?;
        if caller.client_code() != Some(order.client_code.as_str()) {
            return Err(IntakeError::ForeignClient {
                body: order.client_code,
            });
        }
        let mut findings = findings::check(&order, &self.warehouses);
        if let Some(finding) = self.duplicate_platform_order(&order).await? {
            findings.push(finding);
        }
        if real_time_response && !findings.is_empty() {
            return Err(IntakeError::Unprocessable(findings));
        }

        let record = OrderRecord::accept(order, findings, self.clock.now());
        match self.store.insert_new(&record).await? {
            Insert::Inserted => {
                let number = &record.order.order_number;
                tracing::info!(order_number = %number, "order accepted");
                if record.callback.awaiting_dispatch {
                    // Logged, not returned: the sweeper sends what this misses.
                    if let Err(err) = self.queue.enqueue(number).await {
                        tracing::warn!(order_number = %number, error = %err,
                            "callback message not sent; the sweeper will send it");
                    }
                }
                Ok(Accepted::Created(OrderView::from(&record)))
            }
            Insert::AlreadyExists(stored) if stored.request_hash == record.request_hash => {
                tracing::info!(order_number = %record.order.order_number, "identical order replayed");
                Ok(Accepted::Replayed(OrderView::from(stored.as_ref())))
            }
            Insert::AlreadyExists(_) => {
                tracing::warn!(order_number = %record.order.order_number, "conflicting order refused");
                Err(IntakeError::Conflict(record.order.order_number))
            }
        }
    }

    /// The order as the API shows it, if `caller` may see it.
    pub async fn get(
        &self,
        caller: &Principal,
        order_number: &str,
    ) -> Result<OrderView, IntakeError> {
        let not_found = || IntakeError::NotFound(order_number.to_owned());
        // A number that cannot be valid cannot be stored either.
        let number = OrderNumber::parse(order_number).map_err(|_| not_found())?;
        let record = self
            .store
            .get(&number)
            .await?
            .filter(|record| caller.may_access(&record.order))
            .ok_or_else(not_found)?;
        Ok(OrderView::from(&record))
    }

    /// The same marketplace order already sent under another order number. The
    /// index is eventually consistent, so two such orders racing each other may
    /// both pass: this is a data-quality hint, not a uniqueness guarantee.
    async fn duplicate_platform_order(
        &self,
        order: &crate::domain::Order,
    ) -> Result<Option<FieldError>, IntakeError> {
        let Some(key) = order.client_platform_order_key() else {
            return Ok(None);
        };
        let others: Vec<String> = self
            .store
            .orders_with_platform_order(&key)
            .await?
            .into_iter()
            .filter(|number| *number != order.order_number)
            .map(|number| number.to_string())
            .collect();
        Ok((!others.is_empty()).then(|| {
            FieldError::new(
                "platform_order_number",
                format!(
                    "client {} already sent this marketplace order as {}",
                    order.client_code,
                    others.join(", ")
                ),
            )
        }))
    }
}

#[cfg(test)]
mod tests;
