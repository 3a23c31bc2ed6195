//! What the warehouse reports: `POST /apicenter/api/order/{order_number}/events`.

use chrono::{DateTime, Timelike, Utc};

use crate::domain::Money;
use crate::error::FieldError;
use crate::limits::text;
use crate::reader::{Object, Reader, root_object};
use crate::record::event::{EventKind, EventSource, Parcel, Shipment, WarehouseEvent};

/// Largest event body accepted, in bytes.
pub const MAX_EVENT_BODY_BYTES: usize = 16 * 1024;

/// Parses an event body (at most [`MAX_EVENT_BODY_BYTES`]; the caller checks),
/// listing every problem when it cannot.
pub fn parse_event(body: &[u8]) -> Result<WarehouseEvent, Vec<FieldError>> {
    let root = root_object(body).map_err(|problem| vec![problem])?;
    let mut r = Reader::default();
    let event_id = r.required_text(&root, "event_id", text::IDENTIFIER);
    let occurred_at = r
        .required_text(&root, "occurred_at", text::CODE)
        .and_then(|value| match DateTime::parse_from_rfc3339(&value) {
            // chrono reads second 60 as a leap second on any day: not a time
            // the partner (or anyone after us) can represent.
            Ok(time) if time.nanosecond() >= 1_000_000_000 => {
                r.problem(
                    "occurred_at",
                    "second 60 (a leap second) is not accepted; send 59",
                );
                None
            }
            Ok(time) => Some(time.with_timezone(&Utc)),
            Err(_) => {
                r.problem(
                    "occurred_at",
                    "must be an RFC 3339 time with its offset, e.g. 2026-11-20T10:00:00+08:00",
                );
                None
            }
        });
    let kind = r
        .required_text(&root, "type", text::CODE)
        .and_then(|name| kind(&mut r, &root, &name));
    let problems = r.into_problems();
    match (event_id, occurred_at, kind) {
        (Some(event_id), Some(occurred_at), Some(kind)) if problems.is_empty() => {
            Ok(WarehouseEvent {
                source: EventSource::Warehouse,
                event_id,
                occurred_at,
                kind,
            })
        }
        _ => Err(problems),
    }
}

const TYPES: &str = "allocated, shortage, picked, packed, shipped, handed_over, cancelled";

fn kind(r: &mut Reader, root: &Object<'_>, name: &str) -> Option<EventKind> {
    Some(match name {
        "allocated" => EventKind::Allocated,
        "shortage" => EventKind::Shortage {
            message: r.text(root, "message", text::DESC),
        },
        "picked" => EventKind::Picked,
        "packed" => EventKind::Packed(parcel(r, root)),
        "shipped" => {
            let tracking_number = r.text_required_because(
                root,
                "tracking_number",
                text::IDENTIFIER,
                " when type is shipped",
            );
            let shipping_fee = r.decimal_text(root, "shipping_fee").and_then(|fee| {
                Money::parse(&fee)
                    .map_err(|why| r.problem("shipping_fee", why))
                    .ok()
            });
            EventKind::Shipped(Shipment {
                logistic_provider_code: r.text(root, "logistic_provider_code", text::CODE),
                shipping_provider_id: r.text(root, "shipping_provider_id", text::IDENTIFIER),
                shipping_provider_name: r.text(root, "shipping_provider_name", text::NAME),
                shipping_fee,
                currency: r
                    .text(root, "currency", text::CURRENCY)
                    .map(|c| c.to_ascii_uppercase()),
                shipping_provider_product: r.text(root, "shipping_provider_product", text::NAME),
                logistics_message: r.text(root, "logistics_message", text::DESC),
                parcel: parcel(r, root),
                tracking_number: tracking_number?,
            })
        }
        "handed_over" => EventKind::HandedOver {
            tracking_number: r.text(root, "tracking_number", text::IDENTIFIER),
            logistics_message: r.text(root, "logistics_message", text::DESC),
        },
        "cancelled" => EventKind::Cancelled {
            reason: r.text(root, "reason", text::DESC),
        },
        other => {
            r.problem("type", format!("{other:?} is not one of {TYPES}"));
            return None;
        }
    })
}

fn parcel(r: &mut Reader, root: &Object<'_>) -> Parcel {
    Parcel {
        weight_g: positive(r, root, "weight_g"),
        length_cm: positive(r, root, "length_cm"),
        width_cm: positive(r, root, "width_cm"),
        height_cm: positive(r, root, "height_cm"),
        number_of_package: positive(r, root, "number_of_package"),
        sorting_code: r.text(root, "sorting_code", text::IDENTIFIER),
        sorting_no: r.text(root, "sorting_no", text::IDENTIFIER),
    }
}

fn positive(r: &mut Reader, root: &Object<'_>, key: &str) -> Option<u32> {
    match r.integer(root, key) {
        Some(0) => {
            r.problem(root.path_of(key), "must be a positive integer");
            None
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_parses_into_a_shipment_in_utc() {
        let event = parse_event(br#"{"event_id":"e-2","type":"shipped","occurred_at":"2026-11-20T10:00:00+08:00","tracking_number":"YT4567890123CN","logistic_provider_code":"jito","shipping_fee":"12.50","currency":"USD","shipping_provider_product":"Standard"}"#).unwrap();
        assert_eq!(event.occurred_at.to_rfc3339(), "2026-11-20T02:00:00+00:00");
        let EventKind::Shipped(shipment) = event.kind else {
            panic!("not a shipment")
        };
        assert_eq!(shipment.tracking_number, "YT4567890123CN");
        assert_eq!(shipment.shipping_fee.unwrap().to_string(), "12.5");
    }

    #[test]
    fn every_problem_of_an_event_is_listed() {
        let problems = parse_event(br#"{"type":"shipped","occurred_at":"yesterday","weight_g":0}"#)
            .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            ["event_id", "occurred_at", "tracking_number", "weight_g"]
        );
    }

    #[test]
    fn an_unknown_type_names_the_known_ones() {
        let problems =
            parse_event(br#"{"event_id":"1","type":"lost","occurred_at":"2026-11-20T10:00:00Z"}"#)
                .unwrap_err();
        assert!(problems[0].message.contains("handed_over"));
    }

    #[test]
    fn a_leap_second_is_not_a_time() {
        let problems = parse_event(
            br#"{"event_id":"1","type":"picked","occurred_at":"2026-12-31T23:59:60+08:00"}"#,
        )
        .unwrap_err();
        assert_eq!(problems[0].field, "occurred_at");
    }

    #[test]
    fn a_lone_surrogate_in_the_fee_is_a_problem_naming_it() {
        let problems = parse_event(
            br#"{"event_id":"1","type":"shipped","occurred_at":"2026-11-20T10:00:00Z","tracking_number":"T","shipping_fee":"\ud800"}"#,
        )
        .unwrap_err();
        assert_eq!(problems[0].field, "shipping_fee");
    }

    #[test]
    fn an_event_time_must_fall_within_the_order_s_life() {
        let received: DateTime<Utc> = "2026-11-20T00:00:00Z".parse().unwrap();
        let now: DateTime<Utc> = "2026-11-25T00:00:00Z".parse().unwrap();
        let at = |time: &str| {
            let body = format!(r#"{{"event_id":"1","type":"picked","occurred_at":"{time}"}}"#);
            parse_event(body.as_bytes())
                .unwrap()
                .check_time(received, now)
        };
        assert!(at("2026-11-19T00:00:00Z").is_ok());
        assert!(at("2026-11-25T00:05:00Z").is_ok());
        for far in [
            "2026-11-18T23:59:59Z",
            "2026-11-25T00:05:01Z",
            "9999-12-31T23:59:59-12:00",
            "0001-01-01T00:00:00+14:00",
        ] {
            assert_eq!(at(far).unwrap_err().field, "occurred_at", "{far}");
        }
    }
}
