//! The `data` of an order response: every field of spec 000's 201 response,
//! `null` until the warehouse fills it, plus a few documented extras.

use serde::Serialize;

use crate::error::FieldError;
use crate::record::{OrderRecord, format_time};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderView {
    pub order_number: String,
    pub status: String,
    pub number_of_package: Option<u32>,
    pub total_weight: Option<String>,
    pub logistic_provider_code: Option<String>,
    pub status_message: Option<String>,
    pub shortage_at: Option<String>,
    pub cancel_at: Option<String>,
    pub allocate_at: Option<String>,
    pub pack_at: Option<String>,
    pub handover_at: Option<String>,
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
    pub findings: Vec<FieldError>,
}

impl From<&OrderRecord> for OrderView {
    fn from(record: &OrderRecord) -> Self {
        let order = &record.order;
        Self {
            order_number: order.order_number.to_string(),
            status: record.status.to_string(),
            number_of_package: None,
            total_weight: None,
            logistic_provider_code: None,
            status_message: record.status_message(),
            shortage_at: None,
            cancel_at: None,
            allocate_at: None,
            pack_at: None,
            handover_at: None,
            tracking_number: order.provided_tracking_number().map(str::to_owned),
            logistics_message: None,
            sorting_code: None,
            sorting_no: None,
            items: order.items.iter().map(|item| item.sku.clone()).collect(),
            client_code: order.client_code.clone(),
            platform_type: order.platform_type.to_string(),
            platform_order_number: order.platform_order_number.clone(),
            created_at: format_time(record.created_at),
            findings: record.findings.clone(),
        }
    }
}
