//! What the service keeps about an order: the accepted request and its state.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::auth::key::hex;
use crate::callback::{Callback, CallbackStatus};
use crate::domain::{Order, OrderStatus, ProcessType};
use crate::error::FieldError;
use crate::lifecycle::{Applied, Impossible, Progress, WarehouseEvent};

/// An accepted order as stored, keyed by its order number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub order: Order,
    /// `order` as canonical JSON, made once when the order is accepted: the
    /// text that is hashed and stored (the order never changes afterwards).
    pub order_json: String,
    /// SHA-256 of `order_json`: tells an identical replay (200) from a
    /// conflicting one (409) without comparing whole orders.
    pub request_hash: String,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    /// Data-quality findings recorded when the order was accepted.
    pub findings: Vec<FieldError>,
    /// What the warehouse has reported.
    pub progress: Progress,
    /// The shipment report to the platform (spec 001).
    pub callback: Callback,
    /// Optimistic-concurrency version: 1 when created, +1 on every save.
    pub version: u64,
}

/// What a warehouse event did to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventOutcome {
    pub applied: Applied,
    /// The callback became due with this event: send its queue message.
    pub callback_due: bool,
}

impl OrderRecord {
    /// A new order, `pending`, accepted at `now`.
    #[must_use]
    pub fn accept(order: Order, findings: Vec<FieldError>, now: DateTime<Utc>) -> Self {
        let order_json = canonical_json(&order);
        let mut record = Self {
            request_hash: request_hash(&order_json),
            order_json,
            callback: Callback::new(order.platform_type.callback().is_some()),
            order,
            status: OrderStatus::Pending,
            created_at: now,
            findings,
            progress: Progress::default(),
            version: 1,
        };
        if record.order.process_type == ProcessType::HandedOver {
            record.accept_already_handed_over(now);
        }
        record
    }

    /// Process type 2: the ERP already shipped the parcel; it carries its
    /// tracking number and goes straight to the callback.
    fn accept_already_handed_over(&mut self, now: DateTime<Utc>) {
        let provider = self.order.logistics_provider.clone().unwrap_or_default();
        self.status = OrderStatus::HandedOver;
        self.progress.shipped_at = Some(now);
        self.progress.handover_at = Some(now);
        self.progress.tracking_number = provider.tracking_number;
        self.progress.logistic_provider_code = provider.code;
        self.make_callback_due_if_ready(now);
    }

    /// Applies a warehouse event; the caller saves the record when it changed.
    pub fn apply_event(
        &mut self,
        event: &WarehouseEvent,
        now: DateTime<Utc>,
    ) -> Result<EventOutcome, Impossible> {
        let (status, applied) = self.progress.apply(self.status, event, now)?;
        self.status = status;
        if status == OrderStatus::Cancelled
            && self.callback.status == CallbackStatus::AwaitingShipment
        {
            self.callback.status = CallbackStatus::NotRequired;
            self.callback.reason = Some("the order was cancelled".into());
        }
        if applied != Applied::Duplicate
            && self.callback.status == CallbackStatus::Failed
            && self.callback.attempts.is_empty()
        {
            // It failed before any request was made: the order lacked a field its
            // platform requires (an eBay fee, say). This event may bring it.
            self.callback.status = CallbackStatus::AwaitingShipment;
        }
        let callback_due = applied != Applied::Duplicate && self.make_callback_due_if_ready(now);
        Ok(EventOutcome {
            applied,
            callback_due,
        })
    }

    fn make_callback_due_if_ready(&mut self, now: DateTime<Utc>) -> bool {
        let ready = self.callback.status == CallbackStatus::AwaitingShipment
            && self.progress.ready_to_report();
        if ready {
            self.callback.make_due(now);
        }
        ready
    }

    /// Spec 000's `status_message`: why the order is short or cancelled, and
    /// the data-quality findings, in words.
    #[must_use]
    pub fn status_message(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.status == OrderStatus::Shortage {
            parts.push(format!(
                "stock shortage{}",
                self.progress
                    .shortage_message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ));
        }
        if self.status == OrderStatus::Cancelled {
            parts.push(format!(
                "cancelled{}",
                self.progress
                    .cancel_reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ));
        }
        if !self.findings.is_empty() {
            let listed: Vec<String> = self
                .findings
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect();
            parts.push(format!("data-quality findings: {}", listed.join("; ")));
        }
        (!parts.is_empty()).then(|| parts.join(" | "))
    }
}

/// The order's canonical JSON. The struct serialises its fields in
/// declaration order and normalises prices and platform names, so two requests
/// that differ only in key order, spacing or number notation are alike.
fn canonical_json(order: &Order) -> String {
    // Sized for a typical order up front: growing the buffer was 6 % of intake CPU.
    let mut json = Vec::with_capacity(1024 + 160 * order.items.len());
    serde_json::to_writer(&mut json, order)
        .expect("an order has only string keys and always serialises");
    String::from_utf8(json).expect("serde_json writes UTF-8")
}

/// SHA-256 of the canonical JSON, in lowercase hex.
fn request_hash(canonical: &str) -> String {
    hex(&Sha256::digest(canonical.as_bytes()))
}

/// Timestamps as the API shows them: RFC 3339, UTC, whole seconds.
#[must_use]
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
