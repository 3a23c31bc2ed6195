//! An order's state as the orders table's stream carries it: the part of the
//! state item a webhook event is made from ([`OrderState`]), read from an
//! item image whatever carried it (the Lambda event's, the streams SDK's, the
//! DynamoDB SDK's), through one reader over the attributes it needs.

use chrono::{DateTime, Utc};

use shared::error::StoreError;
use shared::record::callback::Callback;
use shared::webhook::OrderState;

/// One attribute of an item image, as its carrier gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr<'a> {
    S(&'a str),
    N(&'a str),
}

/// The state an item image holds; `attr` looks one attribute up by name.
pub fn order_state<'a>(attr: impl Fn(&str) -> Option<Attr<'a>>) -> Result<OrderState, StoreError> {
    let text = |name: &str| match attr(name) {
        Some(Attr::S(value)) => Some(value),
        _ => None,
    };
    let number = text("order_number").unwrap_or_default().to_owned();
    let corrupt = |reason: String| StoreError::Corrupt {
        order_number: number.clone(),
        reason,
    };
    let required = |name: &str| text(name).ok_or_else(|| corrupt(format!("no {name}")));
    let time = |name: &str| {
        DateTime::parse_from_rfc3339(required(name)?)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|err| corrupt(format!("{name}: {err}")))
    };
    let version = match attr("version") {
        Some(Attr::N(value)) => value.parse().map_err(|_| corrupt("bad version".into()))?,
        _ => return Err(corrupt("no version".into())),
    };
    let progress = crate::dynamodb::parse_progress(required("progress")?)
        .map_err(|err| corrupt(err.to_string()))?;
    let callback: Callback =
        serde_json::from_str(required("callback")?).map_err(|err| corrupt(err.to_string()))?;
    Ok(OrderState {
        order_number: number.clone(),
        client_code: required("client_code")?.to_owned(),
        status: required("status")?.parse().map_err(corrupt)?,
        version,
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        progress,
        callback_status: required("callback_status")?.parse().map_err(corrupt)?,
        callback_reason: callback.reason,
        callback_attempts: callback.attempt_count,
        partner_message: callback.partner_message,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;
    use chrono::TimeZone;
    use shared::record::OrderRecord;

    use super::*;

    const SAMPLE: &str = include_str!("../../tests/fixtures/spec-000-sample.json");

    fn lookup<'a>(
        item: &'a HashMap<String, AttributeValue>,
    ) -> impl Fn(&str) -> Option<Attr<'a>> + 'a {
        move |name| match item.get(name)? {
            AttributeValue::S(value) => Some(Attr::S(value)),
            AttributeValue::N(value) => Some(Attr::N(value)),
            _ => None,
        }
    }

    #[test]
    fn the_state_item_reads_back_as_the_orders_state() {
        let order = shared::intake::parse_order(SAMPLE.as_bytes())
            .unwrap()
            .order;
        let at = Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap();
        let record = OrderRecord::accept(order, Vec::new(), at);
        let item = crate::dynamodb::item_for(&record);

        let state = order_state(lookup(&item)).unwrap();

        assert_eq!(state, OrderState::from(&record));
    }

    #[test]
    fn an_image_without_its_status_is_corrupt_naming_it() {
        let order = shared::intake::parse_order(SAMPLE.as_bytes())
            .unwrap()
            .order;
        let record = OrderRecord::accept(order, Vec::new(), Utc::now());
        let mut item = crate::dynamodb::item_for(&record);
        item.remove("status");
        let err = order_state(lookup(&item)).unwrap_err();
        assert!(err.to_string().contains("no status"), "{err}");
    }
}
