//! What the service keeps about an order: the accepted request and its state.

use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use crate::domain::{Order, OrderStatus};
use crate::error::FieldError;

/// An accepted order as stored, keyed by its order number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub order: Order,
    /// SHA-256 of the canonical request: tells an identical replay (200) from a
    /// conflicting one (409) without comparing whole orders.
    pub request_hash: String,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
    /// Data-quality findings recorded when the order was accepted.
    pub findings: Vec<FieldError>,
}

impl OrderRecord {
    /// A new order, `pending`, accepted at `now`.
    #[must_use]
    pub fn accept(order: Order, findings: Vec<FieldError>, now: DateTime<Utc>) -> Self {
        Self {
            request_hash: request_hash(&order),
            order,
            status: OrderStatus::Pending,
            created_at: now,
            findings,
        }
    }

    /// Human-readable summary of the findings, for spec 000's `status_message`.
    #[must_use]
    pub fn status_message(&self) -> Option<String> {
        if self.findings.is_empty() {
            return None;
        }
        let listed: Vec<String> = self
            .findings
            .iter()
            .map(|f| format!("{}: {}", f.field, f.message))
            .collect();
        Some(format!("data-quality findings: {}", listed.join("; ")))
    }
}

/// The hash of the order's canonical JSON. The struct serialises its fields in
/// declaration order and normalises prices and platform names, so two requests
/// that differ only in key order, spacing or number notation hash alike.
#[must_use]
pub fn request_hash(order: &Order) -> String {
    let canonical =
        serde_json::to_vec(order).expect("an order has only string keys and always serialises");
    let digest = Sha256::digest(&canonical);
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Timestamps as the API shows them: RFC 3339, UTC, whole seconds.
#[must_use]
pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}
