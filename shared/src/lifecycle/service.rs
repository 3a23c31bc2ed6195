//! The lifecycle use cases: a warehouse event, an ERP cancellation, an operator
//! replaying a callback. Each is one conditional write of the order; when the
//! write makes the callback due, the store's outbox sends its queue message
//! with that same write, so there is no step between the two to lose it in.

use chrono::{DateTime, Utc};

use super::requests::Cancel;
use crate::auth::Principal;
use crate::domain::{OrderNumber, OrderStatus};
use crate::error::{FieldError, StoreError};
use crate::ports::{Access, Clock, OrderStore};
use crate::record::callback::NotReplayable;
use crate::record::event::{EventKind, EventSource, WarehouseEvent};
use crate::record::progress::{EventEffect, Impossible};
use crate::record::{CallbackFields, FieldsOutcome, FieldsRefused, OrderRecord};
use crate::update::{Change, update_order};

/// Why a lifecycle request was refused.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("order {} does not exist", crate::error::quoted(.0))]
    NotFound(String),
    #[error("the request has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("the body is {size} bytes; the limit is {limit} bytes")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("{source}; the order is {current}")]
    Impossible {
        current: OrderStatus,
        #[source]
        source: Impossible,
    },
    #[error(
        "the callback is {0}; only failed, dead-lettered, retrying or pending callbacks can be replayed"
    )]
    NotReplayable(&'static str),
    #[error(
        "an attempt to deliver the callback is in flight until {0}; replay it after that if it is not delivered"
    )]
    AttemptInFlight(String),
    #[error("the callback is {0}; it needs no more fields")]
    CallbackSettled(&'static str),
    #[error(transparent)]
    StillInWarehouse(#[from] crate::record::personal_data::StillInWarehouse),
    #[error(transparent)]
    Labels(#[from] crate::error::LabelError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The lifecycle use cases over an order store.
#[derive(Debug)]
pub struct Lifecycle<S, C> {
    store: S,
    clock: C,
}

impl<S: OrderStore, C: Clock> Lifecycle<S, C> {
    pub fn new(store: S, clock: C) -> Self {
        Self { store, clock }
    }

    /// Applies a warehouse event (read by [`super::requests::event`]) to an order.
    pub async fn record_event(
        &self,
        caller: &Principal,
        order_number: &str,
        event: WarehouseEvent,
    ) -> Result<(EventEffect, OrderRecord), LifecycleError> {
        self.apply(caller, order_number, &event).await
    }

    /// The ERP cancels an order (only before it ships). Cancelling a
    /// cancelled order changes nothing.
    pub async fn cancel(
        &self,
        caller: &Principal,
        order_number: &str,
        Cancel { reason }: Cancel,
    ) -> Result<(EventEffect, OrderRecord), LifecycleError> {
        let now = self.clock.now();
        let event = WarehouseEvent {
            // One id for every ERP cancellation (a repeated cancel is a
            // duplicate), in the ERP's own id space.
            source: EventSource::Erp,
            event_id: "erp-cancel".into(),
            occurred_at: now,
            kind: EventKind::Cancelled { reason },
        };
        self.apply(caller, order_number, &event).await
    }

    async fn apply(
        &self,
        caller: &Principal,
        order_number: &str,
        event: &WarehouseEvent,
    ) -> Result<(EventEffect, OrderRecord), LifecycleError> {
        let (number, record, outcome) = self
            .update(caller, order_number, |record, now| {
                event
                    .check_time(record.created_at, now)
                    .map_err(|problem| LifecycleError::Invalid(vec![problem]))?;
                let current = record.status;
                let outcome = record
                    .apply_event(event, now)
                    .map_err(|source| LifecycleError::Impossible { current, source })?;
                Ok::<_, LifecycleError>(if outcome.effect == EventEffect::Duplicate {
                    Change::Keep(outcome)
                } else {
                    Change::Save(outcome)
                })
            })
            .await?;
        tracing::info!(
            order_number = %number,
            event_id = %event.event_id,
            event = event.kind.name(),
            applied = ?outcome.effect,
            status = %record.status,
            callback_due = outcome.callback_due,
            "warehouse event"
        );
        Ok((outcome.effect, record))
    }

    /// The ERP supplies callback fields the order lacked (a TikTok carrier
    /// id, an eBay carrier name, platform SKU ids). A callback that failed
    /// for want of them before any request was made becomes due again.
    pub async fn supply_callback_fields(
        &self,
        caller: &Principal,
        order_number: &str,
        fields: CallbackFields,
    ) -> Result<OrderRecord, LifecycleError> {
        let (number, record, outcome) = self
            .update(caller, order_number, |record, now| {
                match record.supply_callback_fields(fields.clone(), now) {
                    Ok(FieldsOutcome::Unchanged) => Ok(Change::Keep(FieldsOutcome::Unchanged)),
                    Ok(stored) => Ok(Change::Save(stored)),
                    Err(FieldsRefused::Settled(status)) => {
                        Err(LifecycleError::CallbackSettled(status.as_str()))
                    }
                    Err(FieldsRefused::UnknownSku(sku)) => {
                        Err(LifecycleError::Invalid(vec![FieldError::new(
                            "items",
                            format!("{sku:?} is not a sku of this order"),
                        )]))
                    }
                }
            })
            .await?;
        tracing::info!(order_number = %number, ?outcome, "callback fields supplied");
        Ok(record)
    }

    /// An operator replays a callback that failed, went to the dead-letter
    /// queue, or is waiting for its next retry: a new generation, whose
    /// message supersedes any older one. Refused while an attempt is in
    /// flight, so a replay never races a post.
    pub async fn retry_callback(
        &self,
        caller: &Principal,
        order_number: &str,
    ) -> Result<OrderRecord, LifecycleError> {
        let (number, record, ()) = self
            .update(caller, order_number, |record, now| {
                record
                    .callback
                    .check_replay(now)
                    .map_err(|refused| match refused {
                        NotReplayable::Status(status) => {
                            LifecycleError::NotReplayable(status.as_str())
                        }
                        NotReplayable::InFlight(until) => {
                            LifecycleError::AttemptInFlight(crate::record::format_time(until))
                        }
                    })?;
                record.callback.make_due(now);
                Ok::<_, LifecycleError>(Change::Save(()))
            })
            .await?;
        tracing::info!(order_number = %number, generation = record.callback.generation,
            "callback replay requested");
        Ok(record)
    }
    /// Changes the caller's order `order_number` with `change`, given the
    /// time now, under the store's version check (read again on a lost
    /// race). An order the caller may not see does not exist.
    async fn update<T>(
        &self,
        caller: &Principal,
        order_number: &str,
        mut change: impl FnMut(&mut OrderRecord, DateTime<Utc>) -> Result<Change<T>, LifecycleError>,
    ) -> Result<(OrderNumber, OrderRecord, T), LifecycleError> {
        let number = parse_number(order_number)?;
        let now = self.clock.now();
        let access = Access::Scope(&caller.scope);
        let (record, value) =
            update_order(&self.store, &number, access, |record| change(record, now))
                .await?
                .ok_or_else(|| LifecycleError::NotFound(order_number.to_owned()))?;
        Ok((number, record, value))
    }
}

fn parse_number(order_number: &str) -> Result<OrderNumber, LifecycleError> {
    OrderNumber::parse(order_number).map_err(|_| LifecycleError::NotFound(order_number.to_owned()))
}
