//! What the service keeps about an order: the accepted request and its state.
//!
//! The order's state is made of two parts, each with its rules in a child
//! module: [`progress`] (what the warehouse reported: the status machine over
//! [`event`]s) and [`callback`] (the shipment report's delivery protocol).
//! [`OrderRecord`] joins them: an event can make a callback due.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod callback;
pub mod event;
pub mod personal_data;
pub mod progress;

use callback::{Callback, CallbackStatus};
use event::WarehouseEvent;
use progress::{EventEffect, Impossible, Progress};

use crate::domain::{Order, OrderStatus, ProcessType};
use crate::error::FieldError;

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
    /// When the order last changed: set by the store on every write
    /// ([`next_update_stamp`]), never earlier than the previous value.
    pub updated_at: DateTime<Utc>,
    /// Data-quality findings recorded when the order was accepted.
    pub findings: Vec<FieldError>,
    /// What the warehouse has reported.
    pub progress: Progress,
    /// The shipment report to the platform (spec 001).
    pub callback: Callback,
    /// Callback fields the ERP supplied after the order (the order itself
    /// never changes).
    pub callback_fields: CallbackFields,
    /// Optimistic-concurrency version: 1 when created, +1 on every save.
    pub version: u64,
    /// When the order became final ([`OrderRecord::is_final`]): the start of
    /// its personal data's retention. Maintained by the stores on every write
    /// ([`OrderRecord::final_since`]).
    pub final_at: Option<DateTime<Utc>>,
    /// When its personal data was redacted ([`personal_data`]).
    pub redacted_at: Option<DateTime<Utc>>,
    /// The request was just redacted, or a finding added (stores may keep
    /// the findings with the request): the next save writes it over the
    /// stored one (the store's job), then clears this.
    pub rewrite_request: bool,
}

/// Callback fields an ERP supplies for an existing order
/// (`POST …/callback/fields`): what the platform needs and the order lacked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_provider_name: Option<String>,
    /// `items[].platform_sku_id`, by `sku`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub platform_sku_ids: BTreeMap<String, String>,
}

impl CallbackFields {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What supplying callback fields did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldsOutcome {
    /// The order already had exactly these: nothing changes, so a repeated
    /// request neither moves `updated_at` nor lists the order in the feed again.
    Unchanged,
    /// Stored; `callback_due` when they made the callback due.
    Stored { callback_due: bool },
}

/// Why supplied callback fields were not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldsRefused {
    /// The callback no longer needs them (delivered, not required).
    Settled(CallbackStatus),
    /// A supplied `sku` is not one of the order's.
    UnknownSku(String),
}

/// What a warehouse event did to an order: its effect on the progress, and
/// whether it made the callback due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventOutcome {
    pub effect: EventEffect,
    /// The callback became due with this event (its message goes out with the save).
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
            updated_at: now,
            findings,
            progress: Progress::default(),
            callback_fields: CallbackFields::default(),
            version: 1,
            final_at: None,
            redacted_at: None,
            rewrite_request: false,
        };
        if record.order.process_type == ProcessType::HandedOver {
            record.accept_already_handed_over(now);
        }
        record.final_at = record.final_since(now);
        record
    }

    /// Process type 2: the ERP already shipped the parcel; it carries its
    /// tracking number and goes straight to the callback.
    fn accept_already_handed_over(&mut self, now: DateTime<Utc>) {
        let provider = self.order.logistics_provider.clone().unwrap_or_default();
        self.status = OrderStatus::HandedOver;
        self.progress.left_warehouse_at = Some(now);
        self.progress.carrier_handover_at = Some(now);
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
        if applied != EventEffect::Duplicate && self.callback.failed_without_request() {
            // It failed before any request was made: the order lacked a field its
            // platform requires (an eBay fee, say). This event may bring it.
            self.callback.status = CallbackStatus::AwaitingShipment;
        }
        let callback_due =
            applied != EventEffect::Duplicate && self.make_callback_due_if_ready(now);
        Ok(EventOutcome {
            effect: applied,
            callback_due,
        })
    }

    /// Takes callback fields the ERP supplied; a callback that failed for
    /// want of them (before any request was made) is due again. `true` when
    /// that happened.
    pub fn supply_callback_fields(
        &mut self,
        fields: CallbackFields,
        now: DateTime<Utc>,
    ) -> Result<FieldsOutcome, FieldsRefused> {
        if matches!(
            self.callback.status,
            CallbackStatus::Delivered | CallbackStatus::NotRequired
        ) {
            return Err(FieldsRefused::Settled(self.callback.status));
        }
        if let Some(unknown) = fields
            .platform_sku_ids
            .keys()
            .find(|sku| !self.order.items.iter().any(|item| item.sku == **sku))
        {
            return Err(FieldsRefused::UnknownSku(unknown.clone()));
        }
        let mut supplied = self.callback_fields.clone();
        if fields.shipping_provider_id.is_some() {
            supplied.shipping_provider_id = fields.shipping_provider_id;
        }
        if fields.shipping_provider_name.is_some() {
            supplied.shipping_provider_name = fields.shipping_provider_name;
        }
        supplied.platform_sku_ids.extend(fields.platform_sku_ids);
        if supplied == self.callback_fields {
            return Ok(FieldsOutcome::Unchanged);
        }
        self.callback_fields = supplied;
        if self.callback.failed_without_request() {
            self.callback.status = CallbackStatus::AwaitingShipment;
        }
        Ok(FieldsOutcome::Stored {
            callback_due: self.make_callback_due_if_ready(now),
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

    /// Whether `other` is the same request as the one stored here: equal
    /// hashes of their canonical forms (a redacted order keeps the hash of
    /// the request as accepted).
    #[must_use]
    pub fn same_request_as(&self, other: &Self) -> bool {
        self.request_hash == other.request_hash
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
/// declaration order, leaves absent fields out (so a release that adds an
/// optional field does not change the form of orders without it) and
/// normalises prices and platform names, so two requests that differ only in
/// key order, spacing, `null`s or number notation are alike.
fn canonical_json(order: &Order) -> String {
    // Sized for a typical order up front: growing the buffer was 6 % of intake CPU.
    let mut json = Vec::with_capacity(1024 + 160 * order.items.len());
    serde_json::to_writer(&mut json, order)
        .expect("an order has only string keys and always serialises");
    String::from_utf8(json).expect("serde_json writes UTF-8")
}

/// SHA-256 of the canonical JSON, in lowercase hex.
fn request_hash(canonical: &str) -> String {
    crate::hex::encode(&Sha256::digest(canonical.as_bytes()))
}

/// The `updated_at` of a write at `now` to an order last changed at
/// `previous`: `now`, or a millisecond after `previous` when a writer's clock
/// lags, so an order's stamps only grow (the polling index sorts by them).
#[must_use]
pub fn next_update_stamp(previous: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    let now = now
        .with_nanosecond(now.timestamp_subsec_millis() * 1_000_000)
        .unwrap_or(now);
    now.max(previous + chrono::Duration::milliseconds(1))
}

/// `updated_at` as the API shows it and the polling index sorts it: RFC 3339
/// in UTC with milliseconds, fixed width.
#[must_use]
pub fn format_update_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Timestamps as the API shows them: RFC 3339, UTC, whole seconds.
#[must_use]
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
