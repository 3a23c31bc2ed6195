use chrono::TimeZone;

use super::*;
use crate::record::event::Shipment;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, hour, 0, 0).unwrap()
}

fn event(id: &str, hour: u32, kind: EventKind) -> WarehouseEvent {
    WarehouseEvent {
        source: EventSource::Warehouse,
        event_id: id.to_owned(),
        occurred_at: at(hour),
        kind,
    }
}

fn shipped(tracking: &str) -> EventKind {
    EventKind::Shipped(Shipment {
        tracking_number: tracking.to_owned(),
        logistic_provider_code: Some("jito".into()),
        shipping_provider_id: None,
        shipping_provider_name: None,
        shipping_fee: Money::parse("12.50").ok(),
        currency: Some("USD".into()),
        shipping_provider_product: Some("Standard".into()),
        logistics_message: None,
        parcel: Parcel::default(),
    })
}

fn handed_over() -> EventKind {
    handed_over_with(None)
}

fn handed_over_with(tracking: Option<&str>) -> EventKind {
    EventKind::HandedOver {
        tracking_number: tracking.map(str::to_owned),
        logistics_message: None,
    }
}

fn shortage(message: Option<&str>) -> EventKind {
    EventKind::Shortage {
        message: message.map(str::to_owned),
    }
}

/// Applies events in order, returning the final status and each outcome.
fn run(events: &[WarehouseEvent]) -> (OrderStatus, Progress, Vec<Result<EventEffect, Impossible>>) {
    let mut progress = Progress::default();
    let mut status = OrderStatus::Pending;
    let mut outcomes = Vec::new();
    for event in events {
        match progress.apply(status, event, at(23)) {
            Ok((next, applied)) => {
                status = next;
                outcomes.push(Ok(applied));
            }
            Err(err) => outcomes.push(Err(err)),
        }
    }
    (status, progress, outcomes)
}

#[test]
fn the_main_line_moves_step_by_step() {
    let (status, progress, _) = run(&[
        event("1", 1, EventKind::Allocated),
        event("2", 2, EventKind::Picked),
        event(
            "3",
            3,
            EventKind::Packed(Parcel {
                weight_g: Some(500),
                ..Parcel::default()
            }),
        ),
        event("4", 4, shipped("YT1")),
        event("5", 5, handed_over()),
    ]);
    assert_eq!(status, OrderStatus::HandedOver);
    assert_eq!(progress.pack_at, Some(at(3)));
    assert_eq!(progress.parcel.weight_g, Some(500));
    assert_eq!(progress.tracking_number.as_deref(), Some("YT1"));
    assert!(progress.ready_to_report());
}

#[test]
fn the_warehouse_may_skip_steps() {
    let (status, _, _) = run(&[event("1", 1, shipped("YT1"))]);
    assert_eq!(status, OrderStatus::Shipped);
}

#[test]
fn a_late_event_keeps_its_time_but_never_moves_the_status_back() {
    let (status, progress, outcomes) = run(&[
        event("3", 3, EventKind::Packed(Parcel::default())),
        event("2", 2, EventKind::Picked),
    ]);
    assert_eq!(status, OrderStatus::Packed);
    assert_eq!(progress.picked_at, Some(at(2)));
    assert_eq!(outcomes[1], Ok(EventEffect::Recorded));
}

#[test]
fn a_repeated_event_id_changes_nothing() {
    let (status, progress, outcomes) = run(&[
        event("1", 1, EventKind::Allocated),
        event("1", 1, EventKind::Allocated),
    ]);
    assert_eq!(status, OrderStatus::Allocated);
    assert_eq!(progress.events.len(), 1);
    assert_eq!(outcomes[1], Ok(EventEffect::Duplicate));
}

#[test]
fn shortage_then_stock_arriving_goes_back_to_allocated() {
    let (status, progress, _) = run(&[
        event("1", 1, shortage(Some("SKU -ALB-908 short"))),
        event("2", 5, EventKind::Allocated),
    ]);
    assert_eq!(status, OrderStatus::Allocated);
    assert_eq!(progress.shortage_at, Some(at(1)));
    assert_eq!(progress.allocate_at, Some(at(5)));
}

#[test]
fn a_shortage_reported_late_does_not_undo_a_later_allocation() {
    let (status, progress, _) = run(&[
        event("2", 5, EventKind::Allocated),
        event("1", 1, shortage(None)),
    ]);
    assert_eq!(status, OrderStatus::Allocated);
    assert_eq!(progress.shortage_at, Some(at(1)));
}

#[test]
fn cancelling_is_possible_until_the_parcel_ships() {
    let cancel = || EventKind::Cancelled {
        reason: Some("buyer".into()),
    };
    let (status, _, _) = run(&[
        event("1", 1, EventKind::Packed(Parcel::default())),
        event("2", 2, cancel()),
    ]);
    assert_eq!(status, OrderStatus::Cancelled);

    let (status, _, outcomes) = run(&[event("1", 1, shipped("YT1")), event("2", 2, cancel())]);
    assert_eq!(status, OrderStatus::Shipped);
    assert!(matches!(
        outcomes[1],
        Err(Impossible::Step {
            current: OrderStatus::Shipped,
            ..
        })
    ));
}

#[test]
fn after_cancellation_only_earlier_reports_are_accepted() {
    let (status, progress, outcomes) = run(&[
        event("c", 3, EventKind::Cancelled { reason: None }),
        event("1", 2, EventKind::Picked),
        event("2", 4, EventKind::Packed(Parcel::default())),
    ]);
    assert_eq!(status, OrderStatus::Cancelled);
    assert_eq!(progress.picked_at, Some(at(2)));
    assert_eq!(outcomes[1], Ok(EventEffect::Recorded));
    assert!(matches!(
        outcomes[2],
        Err(Impossible::Step {
            current: OrderStatus::Cancelled,
            ..
        })
    ));
}

#[test]
fn handed_over_before_shipped_waits_for_the_shipment_to_report() {
    let (status, progress, _) = run(&[event("5", 5, handed_over())]);
    assert_eq!(status, OrderStatus::HandedOver);
    assert!(!progress.ready_to_report());

    let (status, progress, _) = run(&[event("5", 5, handed_over()), event("4", 4, shipped("YT1"))]);
    assert_eq!(status, OrderStatus::HandedOver);
    assert!(progress.ready_to_report());
}

#[test]
fn a_late_shipment_fills_gaps_without_overriding_newer_data() {
    let (_, progress, _) = run(&[
        event("5", 5, handed_over_with(Some("NEW"))),
        event("4", 4, shipped("OLD")),
    ]);
    assert_eq!(progress.tracking_number.as_deref(), Some("NEW"));
    assert_eq!(progress.logistic_provider_code.as_deref(), Some("jito"));
}

/// An order whose history is full of (distinct) noise from the warehouse.
fn full_history() -> (Progress, OrderStatus) {
    let mut progress = Progress::default();
    let mut status = OrderStatus::Pending;
    for n in 0..MAX_EVENTS {
        let noise = event(&format!("noise-{n}"), 1, EventKind::Allocated);
        status = progress.apply(status, &noise, at(23)).unwrap().0;
    }
    (progress, status)
}

#[test]
fn shipping_and_hand_over_apply_past_the_history_cap() {
    let (mut progress, status) = full_history();

    let (status, shipped_outcome) = progress
        .apply(status, &event("s", 2, shipped("YT1")), at(23))
        .unwrap();
    let (status, handed) = progress
        .apply(status, &event("h", 3, handed_over()), at(23))
        .unwrap();

    assert_eq!(shipped_outcome, EventEffect::Moved);
    assert_eq!(handed, EventEffect::Moved);
    assert_eq!(status, OrderStatus::HandedOver);
    assert!(progress.ready_to_report());
}

#[test]
fn a_cancellation_applies_past_the_history_cap_but_noise_does_not() {
    let (mut progress, status) = full_history();

    let noise = progress.apply(status, &event("more", 2, EventKind::Picked), at(23));
    let cancelled = progress.apply(
        status,
        &event("c", 2, EventKind::Cancelled { reason: None }),
        at(23),
    );

    assert_eq!(noise, Err(Impossible::TooManyEvents));
    assert_eq!(cancelled, Ok((OrderStatus::Cancelled, EventEffect::Moved)));
}

#[test]
fn lifecycle_events_past_the_cap_keep_the_history_bounded() {
    let (mut progress, mut status) = full_history();
    for n in 0..1000 {
        let report = event(&format!("s-{n}"), 2, shipped("YT1"));
        status = progress.apply(status, &report, at(23)).unwrap().0;
    }
    assert_eq!(status, OrderStatus::Shipped);
    assert!(
        progress.events.len() <= MAX_EVENTS + 10,
        "{}",
        progress.events.len()
    );
}

#[test]
fn the_renamed_times_are_stored_under_their_first_names() {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 2, 0, 0).unwrap();
    let progress = Progress {
        left_warehouse_at: Some(at),
        carrier_handover_at: Some(at + chrono::Duration::hours(1)),
        ..Progress::default()
    };
    let stored = serde_json::to_value(&progress).unwrap();
    assert_eq!(stored["shipped_at"], "2026-11-20T02:00:00Z");
    assert_eq!(stored["handover_at"], "2026-11-20T03:00:00Z");
    assert!(stored.get("left_warehouse_at").is_none());
    let read: Progress = serde_json::from_value(stored).unwrap();
    assert_eq!(read, progress);
}
