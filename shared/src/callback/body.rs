//! Builds the spec-001 request body (`POST …/PlatformOrder/Callback`) from an
//! order, and refuses to build one the partner would have to reject.
//!
//! # Mapping
//!
//! | spec 001 | from | when absent |
//! | --- | --- | --- |
//! | `ClientCode` | `order.client_code` | always present |
//! | `WarehouseCode` | warehouse config (by `centre_code`): `partner_warehouse_code` | required |
//! | `PlatformCode` | `platform_type` → `TikTok` / `Temu` / `eBay` | other platforms get no callback |
//! | `ShippingMode` | `1` for Temu when the order carries a platform label (`logistics_provider.label_url`, or `label_base64`, stored as `label`), else `0` | always present |
//! | `ParcelId` | `order_number` | always present |
//! | `PackagId` | `order.package_id` | omitted |
//! | `OrderId` | `order.platform_order_number` | omitted |
//! | `CreateTime` | `record.created_at` (when we accepted the order) | always present |
//! | `PickupTime` | `progress.picked_at`, else `pack_at`, else `shipped_at` | required |
//! | `Country` | warehouse config `country` | required |
//! | `City` | warehouse config `city` | omitted when blank |
//! | `TimeZone` | whole-hour UTC offset of the warehouse's zone at `HandOverTime` | follows `HandOverTime` |
//! | `ShippedTime` | `progress.shipped_at` (left the warehouse) | required |
//! | `HandOverTime` | `progress.handover_at` (handed to the carrier) | required |
//! | `ShippingProviderId` | supplied by the ERP later, else the `shipped` event's, else `order.shipping_provider_id` | required for TikTok, else omitted |
//! | `ShippingProviderName` | supplied by the ERP later, else the `shipped` event's, else `order.shipping_provider_name` | required for eBay, else omitted |
//! | `ShippingProviderProduct` | `progress.shipping_provider_product` | required for eBay, else omitted |
//! | `TrackingNumber` | `progress.tracking_number`, else `order.logistics_provider.tracking_number` | required |
//! | `ShippingFee` | `progress.shipping_fee`, rounded half away from zero to two decimals: `"12.50"` | required for eBay, else omitted |
//! | `Currency` | `progress.currency` | required for eBay, else omitted |
//! | `Length` / `Width` / `Height` | `progress.parcel` `length_cm` / `width_cm` / `height_cm` | required for eBay, else omitted |
//! | `Weight` | `progress.parcel.weight_g` | required for eBay, else omitted |
//! | `SkuList[].SkuId` | supplied by the ERP later for that `sku`, else `items[].platform_sku_id` | omitted |
//! | `SkuList[].SkuCode` | `items[].sku` | always present |
//! | `SkuList[].Quantity` | `items[].qty` | always present |
//!
//! A value we do not have is left out of the JSON rather than sent as `null`
//! or `""`: the partner's optional fields are optional, and an empty string
//! could be taken as a value (an empty `ShippingProviderName` "matching" no
//! carrier). Blank text counts as absent, for required fields too.
//!
//! # Interpretations of spec 001
//!
//! - **Required fields.** Those marked 必须 are required for every platform,
//!   except `ShippingProviderId`: it is marked 必须 but described "TikTok必填",
//!   and only TikTok has such an id in spec 000, so it is required for TikTok
//!   only. eBay additionally requires the fields its description marks
//!   "eBay必填". Every missing one is listed at once ([`Unsendable::Missing`]).
//! - **Pickup time.** Some warehouses report no picking step (or pack and ship
//!   in one scan, or the ERP shipped it itself, process type 2); the parcel was
//!   certainly picked by the time it was packed or shipped, so the earliest
//!   of those we know stands in for it.
//! - **Times and `TimeZone`.** The body has one `TimeZone`, the warehouse
//!   zone's offset in force at hand-over (DST-aware: Los Angeles is -8 in
//!   January, -7 in July). Every time is written in that same offset, so
//!   `local time - TimeZone` gives back the exact instant for each of them; a
//!   time converted with its own offset would be an hour off whenever the
//!   order crossed a DST change before hand-over (and is ambiguous in the
//!   repeated autumn hour).
//! - **Half-hour zones.** `TimeZone` is an integer, so a zone whose offset at
//!   hand-over is not whole hours (Asia/Kolkata +05:30) is refused
//!   ([`Unsendable::FractionalOffset`]) rather than rounded: rounding would
//!   shift every reported time by up to 45 minutes without anyone noticing.
//! - **Length caps.** Spec 001's `长度` caps are checked in UTF-16 code units,
//!   how the partner's .NET service counts string length (one emoji is two);
//!   a body over a cap is refused ([`Unsendable::TooLong`]). Missing fields are
//!   reported before over-long ones.

use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::RoundingStrategy;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Warehouses;
use crate::domain::{CallbackPlatform, Money, Order};
use crate::record::OrderRecord;

/// How spec 001 writes times: `yyyy-MM-dd HH:mm:ss`.
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// The spec-001 request body. Field names are the partner's, `PackagId`
/// spelling included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallbackBody {
    pub client_code: String,
    pub warehouse_code: String,
    pub platform_code: String,
    pub shipping_mode: u8,
    pub parcel_id: String,
    #[serde(rename = "PackagId", skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    pub create_time: String,
    pub pickup_time: String,
    pub country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    pub time_zone: i32,
    pub shipped_time: String,
    pub hand_over_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_provider_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_provider_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_provider_product: Option<String>,
    pub tracking_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shipping_fee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    pub sku_list: Vec<CallbackSku>,
}

/// One `SkuList` entry (`PlatformOrderCallbackSku`); we fill the three fields
/// the order knows and leave the rest of the partner's type out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CallbackSku {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sku_id: Option<String>,
    pub sku_code: String,
    pub quantity: u32,
}

/// Why no acceptable spec-001 request can be made for an order. None of these
/// goes away by retrying: the order or the configuration must change first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsendable {
    #[error("{0} orders are not reported through the platform callback")]
    NotACallbackPlatform(String),
    #[error("no warehouse is configured for centre_code {0:?}")]
    UnknownWarehouse(String),
    #[error(
        "{time_zone} is at UTC{offset} at hand-over, but the callback's TimeZone must be whole hours"
    )]
    FractionalOffset { time_zone: String, offset: String },
    /// Every spec-001 field the platform requires that the order lacks.
    #[error("missing field(s) the {platform} callback requires: {}", .fields.join(", "))]
    Missing {
        platform: &'static str,
        fields: Vec<&'static str>,
    },
    /// Every field over its spec-001 length cap, with the cap.
    #[error("field(s) longer than spec 001 allows: {}", too_long_list(.0))]
    TooLong(Vec<(&'static str, usize)>),
}

fn too_long_list(fields: &[(&'static str, usize)]) -> String {
    fields
        .iter()
        .map(|(name, cap)| format!("{name} (at most {cap})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the callback body for `record`, or says why none can be sent.
pub fn build(record: &OrderRecord, warehouses: &Warehouses) -> Result<CallbackBody, Unsendable> {
    let order = &record.order;
    let progress = &record.progress;
    let platform = order
        .platform_type
        .callback()
        .ok_or_else(|| Unsendable::NotACallbackPlatform(order.platform_type.to_string()))?;
    let warehouse = warehouses
        .get(&order.centre_code)
        .ok_or_else(|| Unsendable::UnknownWarehouse(order.centre_code.clone()))?;
    let zone: Tz = warehouse.time_zone;
    let ebay = platform == CallbackPlatform::EBay;

    // Checked in spec-001 field order so the error lists them as the spec does.
    let mut missing = Vec::new();
    let mut need = |name: &'static str, present: bool| {
        if !present {
            missing.push(name);
        }
    };
    let warehouse_code = text(Some(&warehouse.partner_warehouse_code));
    need("WarehouseCode", warehouse_code.is_some());
    let pickup = progress
        .picked_at
        .or(progress.pack_at)
        .or(progress.shipped_at);
    need("PickupTime", pickup.is_some());
    let country = text(Some(&warehouse.country));
    need("Country", country.is_some());
    need("ShippedTime", progress.shipped_at.is_some());
    need("HandOverTime", progress.handover_at.is_some());
    // What the ERP supplied later wins over what the warehouse reported,
    // which wins over the order as first sent.
    let supplied = &record.callback_fields;
    let provider_id = text(
        supplied
            .shipping_provider_id
            .as_deref()
            .or(progress.shipping_provider_id.as_deref())
            .or(order.shipping_provider_id.as_deref()),
    );
    need(
        "ShippingProviderId",
        platform != CallbackPlatform::TikTok || provider_id.is_some(),
    );
    let provider_name = text(
        supplied
            .shipping_provider_name
            .as_deref()
            .or(progress.shipping_provider_name.as_deref())
            .or(order.shipping_provider_name.as_deref()),
    );
    need("ShippingProviderName", !ebay || provider_name.is_some());
    let product = text(progress.shipping_provider_product.as_deref());
    need("ShippingProviderProduct", !ebay || product.is_some());
    let tracking = tracking_number(record);
    need("TrackingNumber", tracking.is_some());
    let fee = progress.shipping_fee.map(two_decimals);
    need("ShippingFee", !ebay || fee.is_some());
    let currency = text(progress.currency.as_deref());
    need("Currency", !ebay || currency.is_some());
    let parcel = &progress.parcel;
    need("Length", !ebay || parcel.length_cm.is_some());
    need("Width", !ebay || parcel.width_cm.is_some());
    need("Height", !ebay || parcel.height_cm.is_some());
    need("Weight", !ebay || parcel.weight_g.is_some());

    let missing_error = |fields| Unsendable::Missing {
        platform: platform.code(),
        fields,
    };
    // The always-required values are all `Some` exactly when nothing is missing
    // for them; the eBay-only ones stay optional in the body.
    let (
        Some(warehouse_code),
        Some(pickup),
        Some(country),
        Some(shipped),
        Some(handover),
        Some(tracking),
    ) = (
        warehouse_code,
        pickup,
        country,
        progress.shipped_at,
        progress.handover_at,
        tracking,
    )
    else {
        return Err(missing_error(missing));
    };
    if !missing.is_empty() {
        return Err(missing_error(missing));
    }

    let offset = zone.offset_from_utc_datetime(&handover.naive_utc()).fix();
    let time_zone = whole_hours(offset).ok_or_else(|| Unsendable::FractionalOffset {
        time_zone: warehouse.time_zone.name().to_owned(),
        offset: offset.to_string(),
    })?;
    let local = |at: DateTime<Utc>| at.with_timezone(&offset).format(TIME_FORMAT).to_string();

    let body = CallbackBody {
        client_code: order.client_code.clone(),
        warehouse_code,
        platform_code: platform.code().to_owned(),
        shipping_mode: shipping_mode(platform, order),
        parcel_id: order.order_number.as_str().to_owned(),
        package_id: text(order.package_id.as_deref()),
        order_id: text(order.platform_order_number.as_deref()),
        create_time: local(record.created_at),
        pickup_time: local(pickup),
        country,
        city: text(Some(&warehouse.city)),
        time_zone,
        shipped_time: local(shipped),
        hand_over_time: local(handover),
        shipping_provider_id: provider_id,
        shipping_provider_name: provider_name,
        shipping_provider_product: product,
        tracking_number: tracking.to_owned(),
        shipping_fee: fee,
        currency,
        length: parcel.length_cm,
        width: parcel.width_cm,
        height: parcel.height_cm,
        weight: parcel.weight_g,
        sku_list: order
            .items
            .iter()
            .map(|item| CallbackSku {
                sku_id: text(
                    supplied
                        .platform_sku_ids
                        .get(&item.sku)
                        .map(String::as_str)
                        .or(item.platform_sku_id.as_deref()),
                ),
                sku_code: item.sku.clone(),
                quantity: item.qty.get(),
            })
            .collect(),
    };
    let too_long = too_long(&body);
    if too_long.is_empty() {
        Ok(body)
    } else {
        Err(Unsendable::TooLong(too_long))
    }
}

/// The `Idempotency-Key` header sent with each post: hex SHA-256 of the order
/// number and the tracking number the body reports. One shipment, one key,
/// however often it is posted; a re-label with a new tracking number is a new
/// shipment, so it gets a new key. Spec 001 defines no such header, so the
/// partner may ignore it: it can recognise a repeat only by `ParcelId` +
/// `TrackingNumber`. Without a tracking number [`build`] refuses the body, so
/// that key is never used.
#[must_use]
pub fn idempotency_key(record: &OrderRecord) -> String {
    let mut hasher = Sha256::new();
    hasher.update(record.order.order_number.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(tracking_number(record).unwrap_or_default().as_bytes());
    crate::hex::encode(&hasher.finalize())
}

/// The shipping event's tracking number (the warehouse's label), else the one
/// the ERP sent with the order. Shared by [`build`] and [`idempotency_key`] so
/// the key always names the number the body reports.
fn tracking_number(record: &OrderRecord) -> Option<&str> {
    [
        record.progress.tracking_number.as_deref(),
        record.order.provided_tracking_number(),
    ]
    .into_iter()
    .flatten()
    .find(|number| !number.trim().is_empty())
}

/// Non-blank text, owned; blank is as good as absent to the partner.
fn text(value: Option<&str>) -> Option<String> {
    value
        .filter(|value| !value.trim().is_empty())
        .map(str::to_owned)
}

/// Temu's "warehouse ships on the platform's label" mode (仓配分离): the ERP
/// handed us Temu's label, by URL or inline.
fn shipping_mode(platform: CallbackPlatform, order: &Order) -> u8 {
    let has_label = order.logistics_provider.as_ref().is_some_and(|provider| {
        text(provider.label_url.as_deref()).is_some()
            || text(provider.label_base64.as_deref()).is_some()
            || provider.label.is_some()
    });
    u8::from(platform == CallbackPlatform::Temu && has_label)
}

/// `"12.50"`: spec 001 wants exactly two decimals, as a string.
fn two_decimals(fee: Money) -> String {
    let rounded = fee
        .amount()
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    // `{:.2}` pads `12.5` and `3` with zeros; it never rounds again (scale ≤ 2).
    format!("{rounded:.2}")
}

fn whole_hours(offset: FixedOffset) -> Option<i32> {
    let seconds = offset.local_minus_utc();
    (seconds % 3600 == 0).then_some(seconds / 3600)
}

/// Every text field over its spec-001 cap, counted in UTF-16 code units.
fn too_long(body: &CallbackBody) -> Vec<(&'static str, usize)> {
    let fields: [(&'static str, Option<&str>, usize); 14] = [
        ("ClientCode", Some(&body.client_code), 50),
        ("WarehouseCode", Some(&body.warehouse_code), 50),
        ("PlatformCode", Some(&body.platform_code), 50),
        ("ParcelId", Some(&body.parcel_id), 100),
        ("PackagId", body.package_id.as_deref(), 100),
        ("OrderId", body.order_id.as_deref(), 100),
        ("Country", Some(&body.country), 10),
        ("City", body.city.as_deref(), 100),
        (
            "ShippingProviderId",
            body.shipping_provider_id.as_deref(),
            100,
        ),
        (
            "ShippingProviderName",
            body.shipping_provider_name.as_deref(),
            200,
        ),
        (
            "ShippingProviderProduct",
            body.shipping_provider_product.as_deref(),
            200,
        ),
        ("TrackingNumber", Some(&body.tracking_number), 100),
        ("ShippingFee", body.shipping_fee.as_deref(), 50),
        ("Currency", body.currency.as_deref(), 10),
    ];
    fields
        .into_iter()
        .filter(|(_, value, cap)| value.is_some_and(|value| value.encode_utf16().count() > *cap))
        .map(|(name, _, cap)| (name, cap))
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDateTime;
    use serde_json::json;

    use super::*;
    use crate::domain::{LogisticsProvider, Platform};
    use crate::intake::parse_order;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/spec-000-sample.json");

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
        progress.shipped_at = Some(at("2026-11-20T05:00:00Z"));
        progress.handover_at = Some(at("2026-11-20T06:00:00Z"));
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

    /// A handed-over order with the shipping details only eBay requires removed.
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
        for absent in [
            "PackagId",
            "OrderId",
            "ShippingProviderProduct",
            "ShippingFee",
            "Currency",
            "Length",
            "Width",
            "Height",
            "Weight",
        ] {
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
        record.progress.shipped_at = Some(at(handover));
        record.progress.handover_at = Some(at(handover));
        build_json(&record)
    }

    #[test]
    fn a_los_angeles_warehouse_reports_minus_8_and_pacific_standard_time_in_january() {
        let body = in_los_angeles(
            "2027-01-15T18:00:00Z",
            "2027-01-15T19:00:00Z",
            "2027-01-15T23:30:00Z",
        );
        assert_eq!(body["TimeZone"], -8);
        assert_eq!(body["CreateTime"], "2027-01-15 10:00:00");
        assert_eq!(body["PickupTime"], "2027-01-15 11:00:00");
        assert_eq!(body["HandOverTime"], "2027-01-15 15:30:00");
        assert_eq!(body["Country"], "US");
        assert_eq!(body["City"], "Los Angeles");
    }

    #[test]
    fn a_los_angeles_warehouse_reports_minus_7_and_daylight_time_in_july() {
        let body = in_los_angeles(
            "2026-07-15T17:00:00Z",
            "2026-07-15T18:00:00Z",
            "2026-07-16T00:30:00Z",
        );
        assert_eq!(body["TimeZone"], -7);
        assert_eq!(body["CreateTime"], "2026-07-15 10:00:00");
        assert_eq!(body["PickupTime"], "2026-07-15 11:00:00");
        assert_eq!(body["HandOverTime"], "2026-07-15 17:30:00");
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
            NaiveDateTime::parse_from_str(body["CreateTime"].as_str().unwrap(), TIME_FORMAT)
                .unwrap();
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
            [
                "ShippingProviderName",
                "ShippingProviderProduct",
                "ShippingFee",
                "Currency",
                "Length",
                "Width",
                "Height",
                "Weight"
            ]
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
            label_base64: Some("JVBERi0=".into()),
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
        later.progress.handover_at = Some(at("2026-11-21T00:00:00Z"));
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
}
