//! The order state machine: which warehouse event moves which status, and what
//! each event records. Pure: no I/O, so every rule is unit-tested.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::{EventKind, EventSource, Parcel, WarehouseEvent, fill};
use crate::domain::{Money, OrderStatus};

/// Most events kept per order; a real order sees a handful. Past it, only
/// the lifecycle (shipped, handed over, cancelled) is still applied: a noisy
/// or hostile warehouse can fill the history but never lock an order.
pub const MAX_EVENTS: usize = 100;
/// History room kept past [`MAX_EVENTS`] for lifecycle events; beyond it they
/// still apply but are not listed, so the stored order stays bounded.
pub const LIFECYCLE_RESERVE: usize = 10;

/// What the warehouse has reported about an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub allocate_at: Option<DateTime<Utc>>,
    pub shortage_at: Option<DateTime<Utc>>,
    pub picked_at: Option<DateTime<Utc>>,
    pub pack_at: Option<DateTime<Utc>>,
    /// Left the warehouse: the `shipped` event (spec 000 `handover_at`, spec
    /// 001 `ShippedTime`). Stored under its first name, `shipped_at`.
    #[serde(rename = "shipped_at")]
    pub left_warehouse_at: Option<DateTime<Utc>>,
    /// Handed to the carrier: the `handed_over` event (spec 001
    /// `HandOverTime`; the API's extra `carrier_handover_at`). Stored under
    /// its first name, `handover_at`.
    #[serde(rename = "handover_at")]
    pub carrier_handover_at: Option<DateTime<Utc>>,
    pub cancel_at: Option<DateTime<Utc>>,
    pub parcel: Parcel,
    pub tracking_number: Option<String>,
    pub logistic_provider_code: Option<String>,
    pub shipping_fee: Option<Money>,
    pub currency: Option<String>,
    pub shipping_provider_product: Option<String>,
    /// The platform's carrier id and name, when the `shipped` event carried them.
    #[serde(default)]
    pub shipping_provider_id: Option<String>,
    #[serde(default)]
    pub shipping_provider_name: Option<String>,
    pub logistics_message: Option<String>,
    pub shortage_message: Option<String>,
    pub cancel_reason: Option<String>,
    /// Every event received, in arrival order.
    pub events: Vec<EventEntry>,
}

/// One received event, kept so duplicates are recognised and history is visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEntry {
    /// Who reported it.
    pub source: EventSource,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Whether it moved the status (a late event only records its data).
    pub moved_status: bool,
}

/// What an event did to the order's progress (its status and reported facts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventEffect {
    /// The status moved to the event's.
    Moved,
    /// An older event: its time and data were kept, the status stayed.
    Recorded,
    /// This `event_id` was seen before; nothing changed.
    Duplicate,
}

/// An event that cannot happen to the order as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Impossible {
    #[error("a {event} event cannot follow {current}: {why}")]
    Step {
        current: OrderStatus,
        event: &'static str,
        why: &'static str,
    },
    #[error(
        "the order already has {MAX_EVENTS} events; only shipped, handed_over and cancelled are still accepted"
    )]
    TooManyEvents,
}

impl Progress {
    /// Applies `event` to an order in `status`, returning the new status.
    pub fn apply(
        &mut self,
        status: OrderStatus,
        event: &WarehouseEvent,
        now: DateTime<Utc>,
    ) -> Result<(OrderStatus, EventEffect), Impossible> {
        if self
            .events
            .iter()
            .any(|e| e.source == event.source && e.event_id == event.event_id)
        {
            return Ok((status, EventEffect::Duplicate));
        }
        let lifecycle = matches!(
            event.kind,
            EventKind::Shipped(_) | EventKind::HandedOver { .. } | EventKind::Cancelled { .. }
        );
        if self.events.len() >= MAX_EVENTS && !lifecycle {
            return Err(Impossible::TooManyEvents);
        }
        let target = target_status(&event.kind);
        let moves = self.moves(status, target, event)?;
        self.record(&event.kind, event.occurred_at, moves);
        if self.events.len() < MAX_EVENTS + LIFECYCLE_RESERVE {
            self.push_entry(event, now, moves);
        }
        Ok(if moves {
            (target, EventEffect::Moved)
        } else {
            (status, EventEffect::Recorded)
        })
    }

    fn push_entry(&mut self, event: &WarehouseEvent, now: DateTime<Utc>, moves: bool) {
        self.events.push(EventEntry {
            source: event.source,
            event_id: event.event_id.clone(),
            kind: event.kind.name().to_owned(),
            occurred_at: event.occurred_at,
            received_at: now,
            moved_status: moves,
        });
    }

    /// Whether the event moves `status` to `target`, or cannot happen at all.
    fn moves(
        &self,
        status: OrderStatus,
        target: OrderStatus,
        event: &WarehouseEvent,
    ) -> Result<bool, Impossible> {
        let impossible = |why| Impossible::Step {
            current: status,
            event: event.kind.name(),
            why,
        };
        match (status, target) {
            (OrderStatus::Cancelled, OrderStatus::Cancelled) => Ok(false),
            (current, OrderStatus::Cancelled) if current.has_shipped() => {
                Err(impossible("the parcel has left the warehouse"))
            }
            (_, OrderStatus::Cancelled) => Ok(true),
            // Reports from before the cancellation are history; later ones are errors.
            (OrderStatus::Cancelled, _) => match self.cancel_at {
                Some(cancelled) if event.occurred_at <= cancelled => Ok(false),
                _ => Err(impossible("the order is cancelled")),
            },
            (current, target) => {
                let (now, next) = (current.progress(), target.progress());
                Ok(next > now
                    || (next == now
                        && target != current
                        && self
                            .time_of(current)
                            .is_none_or(|at| event.occurred_at >= at)))
            }
        }
    }

    /// When the order entered `status`, as the warehouse reported it.
    #[must_use]
    pub fn time_of(&self, status: OrderStatus) -> Option<DateTime<Utc>> {
        match status {
            OrderStatus::Pending => None,
            OrderStatus::Allocated => self.allocate_at,
            OrderStatus::Shortage => self.shortage_at,
            OrderStatus::Picked => self.picked_at,
            OrderStatus::Packed => self.pack_at,
            OrderStatus::Shipped => self.left_warehouse_at,
            OrderStatus::HandedOver => self.carrier_handover_at,
            OrderStatus::Cancelled => self.cancel_at,
        }
    }

    /// Keeps the event's time and data. A current event's data overrides what
    /// is known; a late one only fills gaps.
    fn record(&mut self, kind: &EventKind, at: DateTime<Utc>, current: bool) {
        let latest = |slot: &mut Option<DateTime<Utc>>| {
            if slot.is_none_or(|known| at > known) {
                *slot = Some(at);
            }
        };
        let put = |slot: &mut Option<String>, value: &Option<String>| {
            if current && value.is_some() {
                slot.clone_from(value);
            } else {
                fill(slot, value);
            }
        };
        match kind {
            EventKind::Allocated => latest(&mut self.allocate_at),
            EventKind::Shortage { message } => {
                latest(&mut self.shortage_at);
                put(&mut self.shortage_message, message);
            }
            EventKind::Picked => latest(&mut self.picked_at),
            EventKind::Packed(parcel) => {
                latest(&mut self.pack_at);
                self.merge_parcel(parcel, current);
            }
            EventKind::Shipped(shipment) => {
                latest(&mut self.left_warehouse_at);
                put(
                    &mut self.tracking_number,
                    &Some(shipment.tracking_number.clone()),
                );
                put(
                    &mut self.logistic_provider_code,
                    &shipment.logistic_provider_code,
                );
                put(&mut self.currency, &shipment.currency);
                put(
                    &mut self.shipping_provider_product,
                    &shipment.shipping_provider_product,
                );
                put(
                    &mut self.shipping_provider_id,
                    &shipment.shipping_provider_id,
                );
                put(
                    &mut self.shipping_provider_name,
                    &shipment.shipping_provider_name,
                );
                put(&mut self.logistics_message, &shipment.logistics_message);
                if current || self.shipping_fee.is_none() {
                    self.shipping_fee = shipment.shipping_fee.or(self.shipping_fee);
                }
                self.merge_parcel(&shipment.parcel, current);
            }
            EventKind::HandedOver {
                tracking_number,
                logistics_message,
            } => {
                latest(&mut self.carrier_handover_at);
                put(&mut self.tracking_number, tracking_number);
                put(&mut self.logistics_message, logistics_message);
            }
            EventKind::Cancelled { reason } => {
                // The first cancellation is the one that counts.
                fill(&mut self.cancel_at, &Some(at));
                fill(&mut self.cancel_reason, reason);
            }
        }
    }

    fn merge_parcel(&mut self, parcel: &Parcel, current: bool) {
        if current {
            let mut newer = parcel.clone();
            newer.fill_from(&self.parcel);
            self.parcel = newer;
        } else {
            self.parcel.fill_from(parcel);
        }
    }

    /// Whether the parcel has left the warehouse and reached the carrier with a
    /// tracking number: what the platform callback reports.
    #[must_use]
    pub fn ready_to_report(&self) -> bool {
        self.left_warehouse_at.is_some()
            && self.carrier_handover_at.is_some()
            && self.tracking_number.is_some()
    }
}

fn target_status(kind: &EventKind) -> OrderStatus {
    match kind {
        EventKind::Allocated => OrderStatus::Allocated,
        EventKind::Shortage { .. } => OrderStatus::Shortage,
        EventKind::Picked => OrderStatus::Picked,
        EventKind::Packed(_) => OrderStatus::Packed,
        EventKind::Shipped(_) => OrderStatus::Shipped,
        EventKind::HandedOver { .. } => OrderStatus::HandedOver,
        EventKind::Cancelled { .. } => OrderStatus::Cancelled,
    }
}

#[cfg(test)]
mod tests;
