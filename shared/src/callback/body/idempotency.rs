//! The `Idempotency-Key` of a callback post.

use sha2::{Digest, Sha256};

use super::build::tracking_number;
use crate::record::OrderRecord;

/// The `Idempotency-Key` header sent with each post: hex SHA-256 of the order
/// number and the tracking number the body reports. One shipment, one key,
/// however often it is posted; a re-label with a new tracking number is a new
/// shipment, so it gets a new key. Spec 001 defines no such header, so the
/// partner may ignore it: it can recognise a repeat only by `ParcelId` +
/// `TrackingNumber`. Without a tracking number [`build`](fn@super::build) refuses the body, so
/// that key is never used.
#[must_use]
pub fn idempotency_key(record: &OrderRecord) -> String {
    let mut hasher = Sha256::new();
    hasher.update(record.order.order_number.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(tracking_number(record).unwrap_or_default().as_bytes());
    crate::hex::encode(&hasher.finalize())
}
