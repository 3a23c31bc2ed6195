//! CPU per order (issue 5): what one intake and one callback cost in our code,
//! without any I/O. `make bench` runs this and copies the medians into
//! `docs/benchmarks.md`; the target for the sample order is ≤ 20 µs.
//!
//! - `intake/sample`, `intake/50_items`: parse + validate (rules and
//!   data-quality findings) + the stored record + the DynamoDB item, i.e.
//!   everything the intake handler computes before its first network call.
//! - `callback_body/shipped`: the spec-001 body of a shipped, handed-over
//!   order, serialised as the dispatcher posts it.

use std::hint::black_box;

use adapters::dynamodb::item_for;
use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use shared::callback::body::build;
use shared::config::Warehouses;
use shared::intake::{OrderRequest, findings, parse_order};
use shared::lifecycle::parse_event;
use shared::record::OrderRecord;

const SAMPLE_ORDER: &str = include_str!("../../tests/fixtures/spec-000-sample.json");
const WAREHOUSES: &str = include_str!("../../infra/local/warehouses.json");

/// The sample order with `count` distinct items.
fn order_with_items(count: usize) -> Vec<u8> {
    let mut order: Value = serde_json::from_str(SAMPLE_ORDER).expect("the fixture is JSON");
    order["items"] = (0..count)
        .map(|i| {
            json!({
                "sku": format!("SKU-{i:04}"),
                "currency": "PHP",
                "unit_price": "10.50",
                "qty": 1 + i % 3,
                "platform_sku_id": format!("{}", 1_000_000 + i),
            })
        })
        .collect();
    serde_json::to_vec(&order).expect("JSON")
}

/// What the intake handler computes for `body` before it talks to DynamoDB.
fn intake(body: &[u8], warehouses: &Warehouses) -> usize {
    let OrderRequest { order, .. } = parse_order(body).expect("a valid order");
    let found = findings::check(&order, warehouses);
    let now = Utc
        .with_ymd_and_hms(2026, 11, 20, 2, 0, 0)
        .single()
        .expect("a time");
    let record = OrderRecord::accept(order, found, now);
    item_for(&record).len()
}

fn shipped_record(warehouses: &Warehouses) -> OrderRecord {
    let OrderRequest { order, .. } = parse_order(SAMPLE_ORDER.as_bytes()).expect("valid");
    let found = findings::check(&order, warehouses);
    let now = Utc
        .with_ymd_and_hms(2026, 11, 20, 2, 0, 0)
        .single()
        .expect("a time");
    let mut record = OrderRecord::accept(order, found, now);
    for event in [
        json!({"event_id": "e-1", "type": "packed", "occurred_at": "2026-11-20T09:00:00+08:00",
               "weight_g": 1200, "length_cm": 30, "width_cm": 20, "height_cm": 10,
               "number_of_package": 1, "sorting_code": "S1", "sorting_no": "7"}),
        json!({"event_id": "e-2", "type": "shipped", "occurred_at": "2026-11-20T10:00:00+08:00",
               "tracking_number": "YT4567890123CN", "logistic_provider_code": "jito",
               "shipping_fee": "12.50", "currency": "USD", "shipping_provider_product": "Standard"}),
        json!({"event_id": "e-3", "type": "handed_over", "occurred_at": "2026-11-20T11:00:00+08:00"}),
    ] {
        let event = parse_event(event.to_string().as_bytes()).expect("a valid event");
        record.apply_event(&event, now).expect("a possible step");
    }
    record
}

fn benches(c: &mut Criterion) {
    let warehouses = Warehouses::from_json(WAREHOUSES).expect("warehouses");
    let sample = SAMPLE_ORDER.as_bytes();
    let fifty = order_with_items(50);

    let mut group = c.benchmark_group("intake");
    group.bench_function("sample", |b| {
        b.iter(|| intake(black_box(sample), &warehouses));
    });
    group.bench_function("50_items", |b| {
        b.iter(|| intake(black_box(&fifty), &warehouses));
    });
    group.finish();

    let record = shipped_record(&warehouses);
    let mut group = c.benchmark_group("callback_body");
    group.bench_function("shipped", |b| {
        b.iter(|| {
            let body = build(black_box(&record), &warehouses).expect("sendable");
            serde_json::to_vec(&body).expect("JSON").len()
        });
    });
    group.finish();
}

criterion_group!(cpu_per_order, benches);
criterion_main!(cpu_per_order);
