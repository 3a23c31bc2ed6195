use chrono::NaiveDateTime;
use serde_json::json;

use super::*;
use crate::callback::body::idempotency_key;
use crate::domain::{LogisticsProvider, Platform, StoredLabel};
use crate::intake::parse_order;

const FIXTURE: &str = include_str!("../../../../../tests/fixtures/spec-000-sample.json");

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}

fn warehouses() -> Warehouses {
    Warehouses::from_json(
        r#"{
            "mabang": {"partner_warehouse_code": "PH", "country": "PH", "city": "Manila", "time_zone": "Asia/Manila"},
            "lax": {"partner_warehouse_code": "US", "country": "US", "city": "Los Angeles", "time_zone": "America/Los_Angeles"},
            "del": {"partner_warehouse_code": "IN", "country": "IN", "city": "Delhi", "time_zone": "Asia/Kolkata"}
        }"#,
    )
    .unwrap()
}

/// The spec-000 sample (a TikTok order for `mabang`), accepted at
/// 2026-11-20 02:00 UTC (10:00 in Manila), nothing reported yet.
fn accepted() -> OrderRecord {
    let order = parse_order(FIXTURE.as_bytes()).unwrap().order;
    OrderRecord::accept(order, vec![], at("2026-11-20T02:00:00Z"))
}

/// The sample, picked, packed, shipped and handed over an hour apart, with
/// every shipping detail an eBay callback needs.
fn handed_over() -> OrderRecord {
    let mut record = accepted();
    let progress = &mut record.progress;
    progress.picked_at = Some(at("2026-11-20T03:00:00Z"));
    progress.pack_at = Some(at("2026-11-20T04:00:00Z"));
    progress.left_warehouse_at = Some(at("2026-11-20T05:00:00Z"));
    progress.carrier_handover_at = Some(at("2026-11-20T06:00:00Z"));
    progress.tracking_number = Some("JT0001234567".into());
    progress.shipping_provider_product = Some("J&T Express Standard".into());
    progress.shipping_fee = Some(Money::parse("12.5").unwrap());
    progress.currency = Some("PHP".into());
    progress.parcel.length_cm = Some(30);
    progress.parcel.width_cm = Some(20);
    progress.parcel.height_cm = Some(10);
    progress.parcel.weight_g = Some(1250);
    record
}

/// The body fields of the shipping details only eBay requires.
const EBAY_DETAILS: [&str; 7] = [
    "ShippingProviderProduct",
    "ShippingFee",
    "Currency",
    "Length",
    "Width",
    "Height",
    "Weight",
];

/// A handed-over order with the shipping details only eBay requires
/// ([`EBAY_DETAILS`]) removed.
fn without_ebay_details(mut record: OrderRecord) -> OrderRecord {
    let progress = &mut record.progress;
    progress.shipping_provider_product = None;
    progress.shipping_fee = None;
    progress.currency = None;
    progress.parcel = Default::default();
    record
}

fn build_json(record: &OrderRecord) -> serde_json::Value {
    serde_json::to_value(build(record, &warehouses()).unwrap()).unwrap()
}

fn missing(record: &OrderRecord) -> Vec<&'static str> {
    match build(record, &warehouses()) {
        Err(Unsendable::Missing { fields, .. }) => fields,
        other => panic!("expected Missing, got {other:?}"),
    }
}

#[test]
fn a_handed_over_tiktok_order_in_manila_produces_the_spec_001_body() {
    assert_eq!(
        build_json(&handed_over()),
        json!({
            "ClientCode": "20",
            "WarehouseCode": "PH",
            "PlatformCode": "TikTok",
            "ShippingMode": 0,
            "ParcelId": "mabang-test002",
            "PackagId": "tiktok_order0012454545",
            "OrderId": "7861345751257",
            "CreateTime": "2026-11-20 10:00:00",
            "PickupTime": "2026-11-20 11:00:00",
            "Country": "PH",
            "City": "Manila",
            "TimeZone": 8,
            "ShippedTime": "2026-11-20 13:00:00",
            "HandOverTime": "2026-11-20 14:00:00",
            "ShippingProviderId": "8545675454500214",
            "ShippingProviderName": "jito",
            "ShippingProviderProduct": "J&T Express Standard",
            "TrackingNumber": "JT0001234567",
            "ShippingFee": "12.50",
            "Currency": "PHP",
            "Length": 30,
            "Width": 20,
            "Height": 10,
            "Weight": 1250,
            "SkuList": [
                {"SkuId": "1234", "SkuCode": "-ALB-908", "Quantity": 1},
                {"SkuId": "5648", "SkuCode": "#", "Quantity": 1}
            ]
        })
    );
}

#[test]
fn fields_the_order_lacks_are_left_out_not_sent_empty() {
    let mut record = without_ebay_details(handed_over());
    record.order.package_id = None;
    record.order.platform_order_number = Some("  ".into());
    record.order.items[0].platform_sku_id = None;
    let body = build_json(&record);
    for absent in ["PackagId", "OrderId"].iter().chain(&EBAY_DETAILS) {
        assert!(body.get(absent).is_none(), "{absent} in {body}");
    }
    assert_eq!(
        body["SkuList"][0],
        json!({"SkuCode": "-ALB-908", "Quantity": 1})
    );
}

fn in_los_angeles(created: &str, picked: &str, handover: &str) -> serde_json::Value {
    let mut record = handed_over();
    record.order.centre_code = "lax".into();
    record.created_at = at(created);
    record.progress.picked_at = Some(at(picked));
    record.progress.left_warehouse_at = Some(at(handover));
    record.progress.carrier_handover_at = Some(at(handover));
    build_json(&record)
}

#[test]
fn a_los_angeles_warehouse_reports_minus_8_in_january_and_minus_7_daylight_time_in_july() {
    // Created, picked and handed over (UTC) → TimeZone and the same three times in Los Angeles.
    let cases = [
        (
            [
                "2027-01-15T18:00:00Z",
                "2027-01-15T19:00:00Z",
                "2027-01-15T23:30:00Z",
            ],
            -8,
            [
                "2027-01-15 10:00:00",
                "2027-01-15 11:00:00",
                "2027-01-15 15:30:00",
            ],
        ),
        (
            [
                "2026-07-15T17:00:00Z",
                "2026-07-15T18:00:00Z",
                "2026-07-16T00:30:00Z",
            ],
            -7,
            [
                "2026-07-15 10:00:00",
                "2026-07-15 11:00:00",
                "2026-07-15 17:30:00",
            ],
        ),
    ];
    for ([created, picked, handover], zone, [create_time, pickup_time, handover_time]) in cases {
        let body = in_los_angeles(created, picked, handover);
        assert_eq!(body["TimeZone"], zone, "created {created}");
        assert_eq!(body["CreateTime"], create_time);
        assert_eq!(body["PickupTime"], pickup_time);
        assert_eq!(body["HandOverTime"], handover_time);
        assert_eq!(body["Country"], "US");
        assert_eq!(body["City"], "Los Angeles");
    }
}

#[test]
fn every_time_uses_the_hand_over_offset_so_local_time_minus_time_zone_is_the_instant() {
    // Accepted on 1 Nov 2026 at 00:30 PDT (-7); clocks fell back at 09:00
    // UTC; handed over the next day in PST (-8).
    let created = at("2026-11-01T07:30:00Z");
    let body = in_los_angeles(
        "2026-11-01T07:30:00Z",
        "2026-11-02T17:00:00Z",
        "2026-11-02T18:00:00Z",
    );
    assert_eq!(body["TimeZone"], -8);
    assert_eq!(body["CreateTime"], "2026-10-31 23:30:00");
    assert_eq!(body["HandOverTime"], "2026-11-02 10:00:00");
    let local =
        NaiveDateTime::parse_from_str(body["CreateTime"].as_str().unwrap(), TIME_FORMAT).unwrap();
    let hours = body["TimeZone"].as_i64().unwrap();
    assert_eq!((local - chrono::Duration::hours(hours)).and_utc(), created);
}

#[test]
fn a_half_hour_zone_is_refused_rather_than_rounded() {
    let mut record = handed_over();
    record.order.centre_code = "del".into();
    let err = build(&record, &warehouses()).unwrap_err();
    assert_eq!(
        err,
        Unsendable::FractionalOffset {
            time_zone: "Asia/Kolkata".into(),
            offset: "+05:30".into()
        }
    );
    assert!(err.to_string().contains("whole hours"), "{err}");
}

#[test]
fn an_ebay_order_without_fee_and_dimensions_lists_exactly_those_fields() {
    let mut record = handed_over();
    record.order.platform_type = Platform::Ebay;
    record.progress.shipping_fee = None;
    record.progress.parcel = Default::default();
    assert_eq!(
        missing(&record),
        ["ShippingFee", "Length", "Width", "Height", "Weight"]
    );
    let err = build(&record, &warehouses()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "missing field(s) the eBay callback requires: ShippingFee, Length, Width, Height, Weight"
    );
}

#[test]
fn an_ebay_order_also_needs_provider_name_product_and_currency() {
    let mut record = without_ebay_details(handed_over());
    record.order.platform_type = Platform::Ebay;
    record.order.shipping_provider_name = None;
    assert_eq!(
        missing(&record),
        [&["ShippingProviderName"][..], &EBAY_DETAILS].concat()
    );
    let mut complete = handed_over();
    complete.order.platform_type = Platform::Ebay;
    assert_eq!(build_json(&complete)["PlatformCode"], "eBay");
}

#[test]
fn tiktok_and_temu_need_none_of_the_ebay_details() {
    for platform in [Platform::Tiktok, Platform::Temu] {
        let mut record = without_ebay_details(handed_over());
        record.order.platform_type = platform;
        assert!(build(&record, &warehouses()).is_ok());
    }
}

#[test]
fn a_tiktok_order_without_any_tracking_number_is_missing_only_tracking_number() {
    let mut record = handed_over();
    record.progress.tracking_number = None;
    record.order.logistics_provider = None;
    assert_eq!(missing(&record), ["TrackingNumber"]);
    assert_eq!(
        build(&record, &warehouses()).unwrap_err().to_string(),
        "missing field(s) the TikTok callback requires: TrackingNumber"
    );
}

#[test]
fn the_tracking_number_comes_from_the_shipping_event_else_from_the_order() {
    let mut record = handed_over();
    assert_eq!(build_json(&record)["TrackingNumber"], "JT0001234567");
    record.progress.tracking_number = None;
    assert_eq!(build_json(&record)["TrackingNumber"], "222225555");
}

#[test]
fn shipping_provider_id_is_required_for_tiktok_only() {
    let mut record = handed_over();
    record.order.shipping_provider_id = None;
    assert_eq!(missing(&record), ["ShippingProviderId"]);
    record.order.platform_type = Platform::Temu;
    assert!(build_json(&record).get("ShippingProviderId").is_none());
}

#[test]
fn an_order_nothing_was_reported_for_lists_every_missing_time() {
    assert_eq!(
        missing(&accepted()),
        ["PickupTime", "ShippedTime", "HandOverTime"]
    );
}

fn temu_with_label(label: LogisticsProvider) -> OrderRecord {
    let mut record = handed_over();
    record.order.platform_type = Platform::Temu;
    record.order.logistics_provider = Some(label);
    record
}

#[test]
fn a_temu_order_with_the_platform_label_ships_in_mode_1_and_without_it_in_mode_0() {
    let by_url = temu_with_label(LogisticsProvider {
        label_url: Some("https://labels.example/1.pdf".into()),
        ..Default::default()
    });
    assert_eq!(build_json(&by_url)["ShippingMode"], 1);
    let inline = temu_with_label(LogisticsProvider {
        label: Some(StoredLabel {
            key: "labels/o/0".into(),
            bytes: 5,
            sha256: "0".repeat(64),
        }),
        ..Default::default()
    });
    assert_eq!(build_json(&inline)["ShippingMode"], 1);
    let unlabelled = temu_with_label(LogisticsProvider::default());
    assert_eq!(build_json(&unlabelled)["ShippingMode"], 0);
}

#[test]
fn a_label_on_a_non_temu_order_keeps_mode_0() {
    let mut record = temu_with_label(LogisticsProvider {
        label_url: Some("https://labels.example/1.pdf".into()),
        ..Default::default()
    });
    record.order.platform_type = Platform::Tiktok;
    assert_eq!(build_json(&record)["ShippingMode"], 0);
}

#[test]
fn the_shipping_fee_always_has_two_decimals_rounded_half_away_from_zero() {
    let fee = |text| two_decimals(Money::parse(text).unwrap());
    assert_eq!(fee("12.5"), "12.50");
    assert_eq!(fee("3"), "3.00");
    assert_eq!(fee("3.00"), "3.00");
    assert_eq!(fee("0"), "0.00");
    assert_eq!(fee("2.345"), "2.35");
    assert_eq!(fee("2.344"), "2.34");
    assert_eq!(fee("1234567.899"), "1234567.90");
}

#[test]
fn pickup_time_falls_back_to_pack_time_then_ship_time_when_picking_was_not_reported() {
    let mut record = handed_over();
    record.progress.picked_at = None;
    assert_eq!(build_json(&record)["PickupTime"], "2026-11-20 12:00:00");
    record.progress.pack_at = None;
    assert_eq!(build_json(&record)["PickupTime"], "2026-11-20 13:00:00");
}

#[test]
fn the_idempotency_key_is_stable_and_changes_with_the_tracking_number() {
    let record = handed_over();
    let key = idempotency_key(&record);
    assert_eq!(key, idempotency_key(&record.clone()));
    assert_eq!(key.len(), 64);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()));

    let mut later = record.clone();
    later.progress.carrier_handover_at = Some(at("2026-11-21T00:00:00Z"));
    assert_eq!(idempotency_key(&later), key, "same shipment, same key");

    let mut relabelled = record;
    relabelled.progress.tracking_number = Some("JT0009999999".into());
    assert_ne!(idempotency_key(&relabelled), key);
}

#[test]
fn an_unknown_centre_code_is_refused_naming_it() {
    let mut record = handed_over();
    record.order.centre_code = "nowhere".into();
    let err = build(&record, &warehouses()).unwrap_err();
    assert_eq!(err, Unsendable::UnknownWarehouse("nowhere".into()));
    assert!(err.to_string().contains("\"nowhere\""), "{err}");
}

#[test]
fn a_platform_without_callback_is_refused() {
    let mut record = handed_over();
    record.order.platform_type = Platform::Shopee;
    assert_eq!(
        build(&record, &warehouses()),
        Err(Unsendable::NotACallbackPlatform("shopee".into()))
    );
}

#[test]
fn values_over_the_partner_caps_are_refused_counting_utf16_units() {
    let mut record = handed_over();
    record.progress.tracking_number = Some("1".repeat(101));
    // 101 characters, well under 200, but 202 UTF-16 units.
    record.order.shipping_provider_name = Some("📦".repeat(101));
    assert_eq!(
        build(&record, &warehouses()),
        Err(Unsendable::TooLong(vec![
            ("ShippingProviderName", 200),
            ("TrackingNumber", 100)
        ]))
    );
    record.progress.tracking_number = Some("1".repeat(100));
    record.order.shipping_provider_name = Some("📦".repeat(100));
    assert!(build(&record, &warehouses()).is_ok());
}
