//! Personal data: what redaction replaces, what it keeps, and when an order
//! may lose it (docs/personal-data.md).
//!
//! The marketplaces' data-protection terms (Amazon's: 30 days after the order
//! ships or is cancelled) let a seller keep a buyer's city, state, postcode
//! and country, never the name, street, phone or e-mail. Redaction keeps what
//! operations and the partner still need: the place (city, province, postcode,
//! country), the lines (SKUs, quantities, prices), the times, the tracking
//! number; it replaces every value that names or reaches a person with
//! [`REDACTED`], and drops the inline label (its bytes print the address).

use chrono::{DateTime, Utc};

use super::OrderRecord;
use super::callback::CallbackStatus;
use crate::domain::{Order, OrderStatus, StoredLabel};

/// What a redacted personal value reads.
pub const REDACTED: &str = "redacted";

/// The order without its personal data. Absent values stay absent (nothing
/// is invented); present ones become [`REDACTED`]. Pure and idempotent.
#[must_use]
pub fn redact(order: &Order) -> Order {
    let mut order = order.clone();
    let receiver = &mut order.receiver;
    receiver.name = REDACTED.to_owned();
    receiver.address = REDACTED.to_owned();
    for value in [
        &mut receiver.district,
        &mut receiver.phone,
        &mut receiver.email,
    ] {
        mark(value);
    }
    if let Some(sender) = order.sender.as_mut() {
        for value in [
            &mut sender.name,
            &mut sender.address,
            &mut sender.district,
            &mut sender.phone,
            &mut sender.email,
        ] {
            mark(value);
        }
    }
    // Free text an ERP fills with the buyer's note ("call Ana at …").
    mark(&mut order.desc);
    if let Some(provider) = order.logistics_provider.as_mut() {
        // The ERP's own link to a label that prints the address.
        mark(&mut provider.label_url);
    }
    order
}

fn mark(value: &mut Option<String>) {
    if value.is_some() {
        *value = Some(REDACTED.to_owned());
    }
}

/// Whether an order in `status` with its callback in `callback` is final
/// ([`OrderRecord::is_final`]).
#[must_use]
pub fn is_final(status: OrderStatus, callback: CallbackStatus) -> bool {
    match status {
        OrderStatus::Cancelled => true,
        OrderStatus::HandedOver => !callback.in_flight(),
        _ => false,
    }
}

/// Why an order's personal data cannot be erased yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the order is {0}: the warehouse still needs the address; its personal data can be erased once it is handed over to the carrier or cancelled"
)]
pub struct StillInWarehouse(pub OrderStatus);

/// What a redaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redaction {
    /// The order's personal data was replaced now; its label (if any) is to be deleted.
    Redacted { label: Option<StoredLabel> },
    /// It was redacted before; the label (if any) is deleted again, harmlessly.
    AlreadyRedacted { label: Option<StoredLabel> },
}

impl OrderRecord {
    /// Whether the warehouse and the partner are done with the order:
    /// cancelled, or handed to the carrier with its callback settled
    /// (delivered, not required, or failed for an operator to look at).
    /// Scheduled redaction counts its retention from then.
    #[must_use]
    pub fn is_final(&self) -> bool {
        is_final(self.status, self.callback.status)
    }

    /// When the order became final, given a write at `now`: kept while the
    /// order stays final, `now` on the write that makes it final, `None` while
    /// it is not (a replayed callback makes it not final again; the clock
    /// starts anew when that callback settles).
    #[must_use]
    pub fn final_since(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.is_final().then(|| self.final_at.unwrap_or(now))
    }

    /// Whether scheduled redaction is due at `now` after `retention`.
    #[must_use]
    pub fn redaction_due(&self, now: DateTime<Utc>, retention: chrono::Duration) -> bool {
        self.redacted_at.is_none()
            && self.is_final()
            && self.final_at.is_some_and(|at| at + retention <= now)
    }

    /// Replaces the order's personal data with [`REDACTED`], at `now`. Refused
    /// while the parcel is still the warehouse's to ship (the address is on
    /// it); a handed-over order whose callback is still being delivered may
    /// lose it: the callback (spec 001) carries no personal field.
    ///
    /// The stored `request_hash` stays the hash of the request as accepted,
    /// so a later identical create is still recognised as a replay (the hash
    /// is compared, never the text) and answers with the redacted order. The
    /// store writes the redacted request over the stored one
    /// (`rewrite_request`).
    pub fn redact_personal_data(
        &mut self,
        now: DateTime<Utc>,
    ) -> Result<Redaction, StillInWarehouse> {
        let label = self
            .order
            .logistics_provider
            .as_ref()
            .and_then(|provider| provider.label.clone());
        if self.redacted_at.is_some() {
            return Ok(Redaction::AlreadyRedacted { label });
        }
        if !matches!(
            self.status,
            OrderStatus::HandedOver | OrderStatus::Cancelled
        ) {
            return Err(StillInWarehouse(self.status));
        }
        self.order = redact(&self.order);
        self.order_json = super::canonical_json(&self.order);
        self.redacted_at = Some(now);
        self.rewrite_request = true;
        Ok(Redaction::Redacted { label })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::OrderRecord;

    const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");

    fn sample() -> Order {
        crate::intake::parse_order(SAMPLE.as_bytes()).unwrap().order
    }

    /// The receiver's name, street, phone and e-mail in the spec sample.
    fn buyer(order: &Order) -> Vec<String> {
        let r = &order.receiver;
        let mut values = vec![r.name.clone(), r.address.clone()];
        values.extend([&r.phone, &r.email].into_iter().flatten().cloned());
        values
    }

    #[test]
    fn redaction_replaces_names_streets_phones_and_emails_and_keeps_the_place() {
        let order = sample();

        let redacted = redact(&order);

        let json = serde_json::to_string(&redacted).unwrap();
        let buyer = buyer(&order);
        assert_eq!(buyer.len(), 4, "the sample has them all: {buyer:?}");
        for value in &buyer {
            assert!(!json.contains(value.as_str()), "{value:?} kept in {json}");
        }
        let sender = redacted.sender.clone().unwrap();
        for value in [
            sender.name,
            sender.address,
            sender.district,
            sender.phone,
            sender.email,
        ] {
            assert_eq!(value.as_deref(), Some(REDACTED));
        }
        assert_eq!(redacted.receiver.district.as_deref(), Some(REDACTED));
        assert_eq!(redacted.desc.as_deref(), Some(REDACTED));
        assert_eq!(redacted.receiver.name, REDACTED);
        assert_eq!(redacted.receiver.address, REDACTED);
        assert_eq!(redacted.receiver.phone.as_deref(), Some(REDACTED));
        assert_eq!(redacted.receiver.email.as_deref(), Some(REDACTED));
        assert_eq!(redacted.receiver.city, order.receiver.city);
        assert_eq!(redacted.receiver.province, order.receiver.province);
        assert_eq!(redacted.receiver.post_code, order.receiver.post_code);
        assert_eq!(redacted.receiver.country_code, order.receiver.country_code);
        assert_eq!(
            redacted.items, order.items,
            "SKUs, quantities and prices stay"
        );
        assert_eq!(
            redacted.provided_tracking_number(),
            order.provided_tracking_number()
        );
        assert_eq!(redacted.platform_order_number, order.platform_order_number);
    }

    #[test]
    fn redaction_invents_nothing_and_a_second_one_changes_nothing() {
        let mut order = sample();
        order.receiver.phone = None;
        order.sender = None;
        order.desc = None;

        let once = redact(&order);

        assert_eq!(once.receiver.phone, None);
        assert_eq!(once.sender, None);
        assert_eq!(redact(&once), once);
    }

    fn record_in(status: OrderStatus) -> OrderRecord {
        let mut record = OrderRecord::accept(sample(), Vec::new(), Utc::now());
        record.status = status;
        record
    }

    #[test]
    fn an_order_in_the_warehouse_keeps_its_address() {
        for status in [
            OrderStatus::Pending,
            OrderStatus::Allocated,
            OrderStatus::Shortage,
            OrderStatus::Picked,
            OrderStatus::Packed,
            OrderStatus::Shipped,
        ] {
            let mut record = record_in(status);
            let before = record.clone();

            assert_eq!(
                record.redact_personal_data(Utc::now()),
                Err(StillInWarehouse(status))
            );
            assert_eq!(record, before);
        }
    }

    #[test]
    fn a_redacted_record_keeps_the_hash_it_was_accepted_under() {
        let mut record = record_in(OrderStatus::Cancelled);
        let accepted = record.clone();
        let now = Utc::now();

        let redaction = record.redact_personal_data(now).unwrap();

        assert_eq!(redaction, Redaction::Redacted { label: None });
        assert_eq!(record.request_hash, accepted.request_hash);
        assert_ne!(record.order_json, accepted.order_json);
        assert!(record.order_json.contains(REDACTED));
        assert_eq!(record.redacted_at, Some(now));
        assert!(record.rewrite_request);
        // A later identical create is the same request: answered as a replay.
        let resent = OrderRecord::accept(sample(), Vec::new(), Utc::now());
        assert!(record.same_request_as(&resent));
        assert_eq!(
            record.redact_personal_data(Utc::now()),
            Ok(Redaction::AlreadyRedacted { label: None })
        );
        assert_eq!(record.redacted_at, Some(now), "the first time stays");
    }

    #[test]
    fn only_a_final_order_is_due_and_only_after_the_retention() {
        let retention = chrono::Duration::days(30);
        let final_at = Utc::now();
        let mut record = record_in(OrderStatus::HandedOver);
        record.callback.status = CallbackStatus::Retrying;
        assert!(!record.is_final(), "its callback is still being delivered");
        assert_eq!(record.final_since(final_at), None);

        record.callback.status = CallbackStatus::Delivered;
        record.final_at = record.final_since(final_at);
        assert_eq!(record.final_at, Some(final_at));
        assert_eq!(record.final_since(final_at + retention), Some(final_at));
        assert!(!record.redaction_due(
            final_at + retention - chrono::Duration::seconds(1),
            retention
        ));
        assert!(record.redaction_due(final_at + retention, retention));

        record.redact_personal_data(final_at + retention).unwrap();
        assert!(!record.redaction_due(final_at + retention * 2, retention));
        assert!(!record_in(OrderStatus::Packed).is_final());
        assert!(record_in(OrderStatus::Cancelled).is_final());
    }
}
