//! What a warehouse event is, once parsed (`crate::lifecycle::parse_event`
//! reads it from a request): the facts [`super::progress`] applies to an order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::format_time;
use crate::domain::Money;
use crate::error::FieldError;

/// How long before its order was received an event may say it happened:
/// slack for a warehouse clock or time zone set wrong, not for history.
pub const MAX_BEFORE_ORDER: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// How far ahead of the server's clock an event may say it happened.
pub const MAX_AHEAD: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// One progress report from the warehouse (or the ERP's cancellation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseEvent {
    /// Who reported it: each source has its own id space.
    pub source: EventSource,
    /// The source's id for this report; a repeated id is a duplicate.
    pub event_id: String,
    pub occurred_at: DateTime<Utc>,
    pub kind: EventKind,
}

/// Who reported an event. The warehouse's `event_id`s and the ERP's never
/// collide: a warehouse event that happens to be called `erp-cancel` is not
/// the ERP's cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    Warehouse,
    Erp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Allocated,
    Shortage {
        message: Option<String>,
    },
    Picked,
    Packed(Parcel),
    Shipped(Shipment),
    HandedOver {
        tracking_number: Option<String>,
        logistics_message: Option<String>,
    },
    Cancelled {
        reason: Option<String>,
    },
}

impl EventKind {
    /// The `type` name of the event.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Allocated => "allocated",
            Self::Shortage { .. } => "shortage",
            Self::Picked => "picked",
            Self::Packed(_) => "packed",
            Self::Shipped(_) => "shipped",
            Self::HandedOver { .. } => "handed_over",
            Self::Cancelled { .. } => "cancelled",
        }
    }
}

/// What packing measures. Every field is optional; later reports fill gaps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub weight_g: Option<u32>,
    pub length_cm: Option<u32>,
    pub width_cm: Option<u32>,
    pub height_cm: Option<u32>,
    pub number_of_package: Option<u32>,
    pub sorting_code: Option<String>,
    pub sorting_no: Option<String>,
}

impl Parcel {
    /// Fills the fields `self` lacks from `other`.
    pub fn fill_from(&mut self, other: &Parcel) {
        fill(&mut self.weight_g, &other.weight_g);
        fill(&mut self.length_cm, &other.length_cm);
        fill(&mut self.width_cm, &other.width_cm);
        fill(&mut self.height_cm, &other.height_cm);
        fill(&mut self.number_of_package, &other.number_of_package);
        fill(&mut self.sorting_code, &other.sorting_code);
        fill(&mut self.sorting_no, &other.sorting_no);
    }
}

/// What shipping out of the warehouse produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    pub tracking_number: String,
    pub logistic_provider_code: Option<String>,
    /// The platform's carrier id and name (TikTok's `ShippingProviderId`,
    /// eBay's `ShippingProviderName`), when the warehouse knows them.
    pub shipping_provider_id: Option<String>,
    pub shipping_provider_name: Option<String>,
    pub shipping_fee: Option<Money>,
    pub currency: Option<String>,
    pub shipping_provider_product: Option<String>,
    pub logistics_message: Option<String>,
    /// Measurements known at shipping, for warehouses that skip `packed`.
    pub parcel: Parcel,
}

impl WarehouseEvent {
    /// Refuses a time outside the order's life as we can know it: from
    /// [`MAX_BEFORE_ORDER`] before the order was received to [`MAX_AHEAD`]
    /// after `now`. Without it a year-10000 or year-0 time is stored and only
    /// fails later, when the callback is written for the partner.
    pub fn check_time(
        &self,
        order_received: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        let earliest = order_received - MAX_BEFORE_ORDER;
        let latest = now + MAX_AHEAD;
        if self.occurred_at < earliest || self.occurred_at > latest {
            return Err(FieldError::new(
                "occurred_at",
                format!(
                    "must be between {} (a day before the order was received) and {} (5 minutes ahead of the server's clock)",
                    format_time(earliest),
                    format_time(latest)
                ),
            ));
        }
        Ok(())
    }
}

pub(crate) fn fill<T: Clone>(target: &mut Option<T>, source: &Option<T>) {
    if target.is_none() {
        target.clone_from(source);
    }
}
