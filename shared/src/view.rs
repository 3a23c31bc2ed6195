//! How the API shows an order: the `data` of an order response (every field
//! of spec 000's 201 response, `null` until the warehouse fills it, plus
//! documented extras) and of a polling page. The use cases return stored
//! orders; the functions map them here. Plain data, no HTTP types.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::FieldError;
use crate::polling::{ChangesPage, NumbersPage};
use crate::record::callback::{Attempt, Callback};
use crate::record::progress::EventEntry;
use crate::record::{OrderRecord, format_time, format_update_time};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    pub order_number: String,
    pub status: String,
    pub number_of_package: Option<u32>,
    /// Grams, as a string (spec 000 types it as a string).
    pub total_weight: Option<String>,
    pub logistic_provider_code: Option<String>,
    pub status_message: Option<String>,
    pub shortage_at: Option<String>,
    pub cancel_at: Option<String>,
    pub allocate_at: Option<String>,
    /// Packed (picked, when packing was not reported).
    pub pack_at: Option<String>,
    /// Left the warehouse (spec 000's 出库时间, which spec 000 names
    /// `handover_at`; the hand-over to the carrier is `carrier_handover_at`).
    #[serde(rename = "handover_at")]
    pub left_warehouse_at: Option<String>,
    pub tracking_number: Option<String>,
    pub logistics_message: Option<String>,
    pub sorting_code: Option<String>,
    pub sorting_no: Option<String>,
    /// The SKU of each order line, in order.
    pub items: Vec<String>,
    // Extras beyond spec 000.
    pub client_code: String,
    pub platform_type: String,
    pub platform_order_number: Option<String>,
    pub created_at: String,
    /// When the order last changed (RFC 3339 with milliseconds).
    pub updated_at: String,
    pub picked_at: Option<String>,
    /// Handed to the carrier (spec 001's HandOverTime).
    pub carrier_handover_at: Option<String>,
    pub findings: Vec<FieldError>,
    /// The inline label the ERP sent, as stored (never the label itself; the
    /// warehouse fetches it from `…/label`).
    pub label: Option<LabelView>,
    /// When the order's personal data was redacted (after fulfilment, or on
    /// request); `null` while it is held. The label goes with it.
    pub personal_data_redacted_at: Option<String>,
    pub callback: CallbackView,
    pub events: Vec<EventEntry>,
}

/// That a label is stored, and which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelView {
    pub bytes: u64,
    pub sha256: String,
}

/// Where the shipment report to the platform stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackView {
    pub status: &'static str,
    pub reason: Option<String>,
    pub due_since: Option<String>,
    pub finished_at: Option<String>,
    pub attempt_count: u32,
    pub attempts: Vec<Attempt>,
    pub partner_success: Option<bool>,
    pub partner_message: Option<String>,
    pub raw_response: Option<String>,
}

fn time(value: Option<DateTime<Utc>>) -> Option<String> {
    value.map(format_time)
}

impl From<&Callback> for CallbackView {
    fn from(callback: &Callback) -> Self {
        Self {
            status: callback.status.as_str(),
            reason: callback.reason.clone(),
            due_since: time(callback.due_since),
            finished_at: time(callback.finished_at),
            attempt_count: callback.attempt_count,
            attempts: callback.attempts.clone(),
            partner_success: callback.partner_success,
            partner_message: callback.partner_message.clone(),
            raw_response: callback.raw_response.clone(),
        }
    }
}

impl From<&OrderRecord> for OrderView {
    fn from(record: &OrderRecord) -> Self {
        let order = &record.order;
        let progress = &record.progress;
        let parcel = &progress.parcel;
        Self {
            order_number: order.order_number.to_string(),
            status: record.status.to_string(),
            number_of_package: parcel.number_of_package,
            total_weight: parcel.weight_g.map(|grams| grams.to_string()),
            logistic_provider_code: progress.logistic_provider_code.clone(),
            status_message: record.status_message(),
            shortage_at: time(progress.shortage_at),
            cancel_at: time(progress.cancel_at),
            allocate_at: time(progress.allocate_at),
            pack_at: time(progress.pack_at.or(progress.picked_at)),
            left_warehouse_at: time(progress.left_warehouse_at),
            tracking_number: progress
                .tracking_number
                .clone()
                .or_else(|| order.provided_tracking_number().map(str::to_owned)),
            logistics_message: progress.logistics_message.clone(),
            sorting_code: parcel.sorting_code.clone(),
            sorting_no: parcel.sorting_no.clone(),
            items: order.items.iter().map(|item| item.sku.clone()).collect(),
            client_code: order.client_code.clone(),
            platform_type: order.platform_type.to_string(),
            platform_order_number: order.platform_order_number.clone(),
            created_at: format_time(record.created_at),
            updated_at: format_update_time(record.updated_at),
            picked_at: time(progress.picked_at),
            carrier_handover_at: time(progress.carrier_handover_at),
            findings: record.findings.clone(),
            label: order
                .logistics_provider
                .as_ref()
                .and_then(|provider| provider.label.as_ref())
                .filter(|_| record.redacted_at.is_none())
                .map(|label| LabelView {
                    bytes: label.bytes,
                    sha256: label.sha256.clone(),
                }),
            personal_data_redacted_at: time(record.redacted_at),
            callback: CallbackView::from(&record.callback),
            events: progress.events.clone(),
        }
    }
}

/// `GET /apicenter/api/orders`' `data` for a page of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangesView {
    pub orders: Vec<OrderView>,
    /// Where to continue: pass it as `cursor` next time, now or later.
    /// `null` only when nothing has been returned yet (poll again as before).
    pub next_cursor: Option<String>,
    /// More changes are ready now: fetch the next page at once.
    pub has_more: bool,
}

impl From<&ChangesPage> for ChangesView {
    fn from(page: &ChangesPage) -> Self {
        Self {
            orders: page.orders.iter().map(OrderView::from).collect(),
            next_cursor: page.next_cursor.clone(),
            has_more: page.has_more,
        }
    }
}

/// `GET /apicenter/api/orders?order_numbers=…`' `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NumbersView {
    pub orders: Vec<OrderView>,
    /// Numbers that are not the caller's orders (missing or another client's).
    pub missing: Vec<String>,
}

impl From<&NumbersPage> for NumbersView {
    fn from(page: &NumbersPage) -> Self {
        Self {
            orders: page.orders.iter().map(OrderView::from).collect(),
            missing: page.missing.clone(),
        }
    }
}
