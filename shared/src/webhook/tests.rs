use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::*;
use crate::record::OrderRecord;
use crate::record::callback::CallbackStatus;
use crate::record::event::{EventKind, EventSource, WarehouseEvent};

const SAMPLE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");

fn accepted_record() -> OrderRecord {
    let order = crate::intake::parse_order(SAMPLE.as_bytes()).unwrap().order;
    OrderRecord::accept(
        order,
        Vec::new(),
        Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap(),
    )
}

fn accepted() -> OrderState {
    OrderState::from(&accepted_record())
}

fn after(before: &OrderState, kind: EventKind) -> OrderState {
    let mut after = before.clone();
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap();
    let mut record = accepted_record();
    record.status = before.status;
    record.progress = before.progress.clone();
    let event = WarehouseEvent {
        source: EventSource::Warehouse,
        event_id: format!("e-{}", before.version),
        occurred_at: now,
        kind,
    };
    record.apply_event(&event, now).unwrap();
    after.status = record.status;
    after.progress = record.progress;
    after.version += 1;
    after
}

#[test]
fn a_new_order_is_accepted() {
    assert_eq!(changes(None, &accepted()), [EventType::OrderAccepted]);
}

#[test]
fn a_status_change_is_one_event_and_a_write_that_keeps_the_status_none() {
    let before = accepted();
    let allocated = after(&before, EventKind::Allocated);
    assert_eq!(
        changes(Some(&before), &allocated),
        [EventType::OrderAllocated]
    );
    assert_eq!(changes(Some(&allocated), &allocated), []);
}

#[test]
fn a_callback_settling_is_its_own_event() {
    let before = accepted();
    let mut delivered = before.clone();
    delivered.callback_status = CallbackStatus::Delivered;
    assert_eq!(
        changes(Some(&before), &delivered),
        [EventType::CallbackDelivered]
    );
    let mut retrying = before.clone();
    retrying.callback_status = CallbackStatus::Retrying;
    assert_eq!(changes(Some(&before), &retrying), []);
}

#[test]
fn every_type_has_a_wire_name_that_reads_back() {
    for kind in EventType::ALL {
        assert_eq!(EventType::parse(kind.as_str()), Some(kind));
    }
    assert_eq!(EventType::parse("order.lost"), None);
}

#[test]
fn an_event_body_is_small_and_says_what_it_is_about() {
    let before = accepted();
    let allocated = after(&before, EventKind::Allocated);
    let event = WebhookEvent::new(EventType::OrderAllocated, &allocated, allocated.updated_at);
    let body: Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(body["type"], "order.allocated");
    assert_eq!(body["data"]["order_number"], "mabang-test002");
    assert_eq!(body["data"]["status"], "allocated");
    assert_eq!(body["data"]["sequence"], allocated.version);
    assert_eq!(body["data"]["allocate_at"], "2026-11-20T09:00:00Z");
    assert!(event.body.len() < 512, "{}", event.body);
    assert!(
        !event.body.contains("receiver"),
        "no personal data: {}",
        event.body
    );
}

#[test]
fn the_same_event_keeps_its_id_and_the_next_change_gets_another() {
    let before = accepted();
    let allocated = after(&before, EventKind::Allocated);
    let id =
        |order: &OrderState| WebhookEvent::new(EventType::OrderAllocated, order, Utc::now()).id;
    assert_eq!(id(&allocated), id(&allocated));
    assert_ne!(id(&allocated), id(&after(&allocated, EventKind::Allocated)));
}
