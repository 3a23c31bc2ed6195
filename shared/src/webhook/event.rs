//! What an ERP is told: one event per change of an order it cares about,
//! found by comparing the order before and after a write (the table's stream
//! carries both images), so no writer has to remember to announce anything.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::domain::OrderStatus;
use crate::record::callback::CallbackStatus;
use crate::record::progress::Progress;
use crate::record::{OrderRecord, format_time, format_update_time};

/// What an event is made from: the part of an order that its state item
/// holds, so that the table stream's images give it without a read of the
/// accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    pub order_number: String,
    pub client_code: String,
    pub status: OrderStatus,
    /// +1 on every write of the order.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub progress: Progress,
    pub callback_status: CallbackStatus,
    pub callback_reason: Option<String>,
    pub callback_attempts: u32,
    pub partner_message: Option<String>,
}

impl From<&OrderRecord> for OrderState {
    fn from(record: &OrderRecord) -> Self {
        Self {
            order_number: record.order.order_number.as_str().to_owned(),
            client_code: record.order.client_code.clone(),
            status: record.status,
            version: record.version,
            created_at: record.created_at,
            updated_at: record.updated_at,
            progress: record.progress.clone(),
            callback_status: record.callback.status,
            callback_reason: record.callback.reason.clone(),
            callback_attempts: record.callback.attempt_count,
            partner_message: record.callback.partner_message.clone(),
        }
    }
}

/// The kinds of event, by their names on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    OrderAccepted,
    OrderAllocated,
    OrderShort,
    OrderPicked,
    OrderPacked,
    OrderShipped,
    OrderHandedOver,
    OrderCancelled,
    CallbackDelivered,
    CallbackFailed,
    CallbackDeadLettered,
}

impl EventType {
    pub const ALL: [Self; 11] = [
        Self::OrderAccepted,
        Self::OrderAllocated,
        Self::OrderShort,
        Self::OrderPicked,
        Self::OrderPacked,
        Self::OrderShipped,
        Self::OrderHandedOver,
        Self::OrderCancelled,
        Self::CallbackDelivered,
        Self::CallbackFailed,
        Self::CallbackDeadLettered,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderAccepted => "order.accepted",
            Self::OrderAllocated => "order.allocated",
            Self::OrderShort => "order.short",
            Self::OrderPicked => "order.picked",
            Self::OrderPacked => "order.packed",
            Self::OrderShipped => "order.shipped",
            Self::OrderHandedOver => "order.handed_over",
            Self::OrderCancelled => "order.cancelled",
            Self::CallbackDelivered => "callback.delivered",
            Self::CallbackFailed => "callback.failed",
            Self::CallbackDeadLettered => "callback.dead_lettered",
        }
    }

    /// The type named `name`, as a subscription lists it.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    fn of_status(status: OrderStatus) -> Option<Self> {
        match status {
            OrderStatus::Pending => None,
            OrderStatus::Allocated => Some(Self::OrderAllocated),
            OrderStatus::Shortage => Some(Self::OrderShort),
            OrderStatus::Picked => Some(Self::OrderPicked),
            OrderStatus::Packed => Some(Self::OrderPacked),
            OrderStatus::Shipped => Some(Self::OrderShipped),
            OrderStatus::HandedOver => Some(Self::OrderHandedOver),
            OrderStatus::Cancelled => Some(Self::OrderCancelled),
        }
    }

    fn of_callback(status: CallbackStatus) -> Option<Self> {
        match status {
            CallbackStatus::Delivered => Some(Self::CallbackDelivered),
            CallbackStatus::Failed => Some(Self::CallbackFailed),
            CallbackStatus::DeadLettered => Some(Self::CallbackDeadLettered),
            _ => None,
        }
    }
}

/// The events a write made: `before` is the order as it was (`None` when the
/// write created it), `after` as it is now.
#[must_use]
pub fn changes(before: Option<&OrderState>, after: &OrderState) -> Vec<EventType> {
    let mut events = Vec::new();
    match before {
        None => {
            events.push(EventType::OrderAccepted);
            // An order that arrives handed over (process type 2) says so too.
            events.extend(EventType::of_status(after.status));
        }
        Some(before) if before.status != after.status => {
            events.extend(EventType::of_status(after.status));
        }
        Some(_) => {}
    }
    let callback_before = before.map(|before| before.callback_status);
    if callback_before != Some(after.callback_status) {
        events.extend(EventType::of_callback(after.callback_status));
    }
    events
}

/// One event about one order, as delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    /// `webhook-id`: the same for every delivery and replay of this event.
    pub id: String,
    pub kind: EventType,
    pub client_code: String,
    pub order_number: String,
    /// The order's version after the change: it grows with every write of
    /// the order, so a receiver orders one order's events by it.
    pub sequence: u64,
    /// When the change happened (the body's `timestamp`).
    pub at: DateTime<Utc>,
    /// The body, serialised once: what is signed and sent.
    pub body: String,
}

impl WebhookEvent {
    /// The event `kind` of `order` as it is after the change, stamped `now`.
    #[must_use]
    pub fn new(kind: EventType, order: &OrderState, now: DateTime<Utc>) -> Self {
        let body = json!({
            "type": kind.as_str(),
            "timestamp": format_update_time(now),
            "data": data(kind, order),
        });
        Self {
            id: event_id(&order.order_number, order.version, kind),
            kind,
            client_code: order.client_code.clone(),
            order_number: order.order_number.clone(),
            sequence: order.version,
            at: now,
            body: body.to_string(),
        }
    }

    /// `{milliseconds since 1970, 13 digits}#{id}`: sorts a client's events,
    /// and each endpoint's deliveries, by time.
    #[must_use]
    pub fn log_entry(&self) -> String {
        format!("{:013}#{}", self.at.timestamp_millis().max(0), self.id)
    }
}

/// `evt_` and 32 hex digits of a digest of what makes the event unique: a
/// replay of it is recognisable as the same event.
fn event_id(order_number: &str, version: u64, kind: EventType) -> String {
    let digest = Sha256::digest(format!("{order_number}\n{version}\n{}", kind.as_str()));
    format!("evt_{}", &crate::hex::encode(&digest)[..32])
}

fn data(kind: EventType, order: &OrderState) -> Value {
    let progress = &order.progress;
    let mut data = Map::new();
    data.insert("order_number".into(), json!(order.order_number));
    data.insert("status".into(), json!(order.status.as_str()));
    data.insert("sequence".into(), json!(order.version));
    data.insert(
        "updated_at".into(),
        json!(format_update_time(order.updated_at)),
    );
    let time = |at: Option<DateTime<Utc>>| at.map(format_time);
    let step = match kind {
        EventType::OrderAccepted => json!({"created_at": format_time(order.created_at)}),
        EventType::OrderAllocated => json!({"allocate_at": time(progress.allocate_at)}),
        EventType::OrderShort => json!({
            "shortage_at": time(progress.shortage_at),
            "message": progress.shortage_message,
        }),
        EventType::OrderPicked => json!({"picked_at": time(progress.picked_at)}),
        EventType::OrderPacked => json!({
            "pack_at": time(progress.pack_at),
            "number_of_package": progress.parcel.number_of_package,
            "weight_g": progress.parcel.weight_g,
        }),
        EventType::OrderShipped => json!({
            "handover_at": time(progress.left_warehouse_at),
            "tracking_number": progress.tracking_number,
            "logistic_provider_code": progress.logistic_provider_code,
            "logistics_message": progress.logistics_message,
        }),
        EventType::OrderHandedOver => json!({
            "carrier_handover_at": time(progress.carrier_handover_at),
            "tracking_number": progress.tracking_number,
        }),
        EventType::OrderCancelled => json!({
            "cancel_at": time(progress.cancel_at),
            "reason": progress.cancel_reason,
        }),
        EventType::CallbackDelivered
        | EventType::CallbackFailed
        | EventType::CallbackDeadLettered => json!({
            "callback_status": order.callback_status.as_str(),
            "reason": order.callback_reason,
            "attempt_count": order.callback_attempts,
            "partner_message": order.partner_message,
        }),
    };
    if let Value::Object(step) = step {
        data.extend(step.into_iter().filter(|(_, value)| !value.is_null()));
    }
    Value::Object(data)
}
