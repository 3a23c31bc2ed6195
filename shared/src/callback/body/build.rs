//! Builds the spec-001 request body (`POST …/PlatformOrder/Callback`) from an
//! order, and refuses to build one the partner would have to reject: which
//! field comes from where, what each platform requires, times and money.
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
//! | `PickupTime` | `progress.picked_at`, else `pack_at`, else `left_warehouse_at` | required |
//! | `Country` | warehouse config `country` | required |
//! | `City` | warehouse config `city` | omitted when blank |
//! | `TimeZone` | whole-hour UTC offset of the warehouse's zone at `HandOverTime` | follows `HandOverTime` |
//! | `ShippedTime` | `progress.left_warehouse_at` (left the warehouse) | required |
//! | `HandOverTime` | `progress.carrier_handover_at` (handed to the carrier) | required |
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

use super::document::{CallbackBody, CallbackSku, TIME_FORMAT, too_long};
use crate::config::Warehouses;
use crate::domain::{CallbackPlatform, Money, Order};
use crate::record::OrderRecord;
use chrono::{DateTime, FixedOffset, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::RoundingStrategy;

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
        .or(progress.left_warehouse_at);
    need("PickupTime", pickup.is_some());
    let country = text(Some(&warehouse.country));
    need("Country", country.is_some());
    need("ShippedTime", progress.left_warehouse_at.is_some());
    need("HandOverTime", progress.carrier_handover_at.is_some());
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
        progress.left_warehouse_at,
        progress.carrier_handover_at,
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

/// The shipping event's tracking number (the warehouse's label), else the one
/// the ERP sent with the order. Shared by [`build`] and [`idempotency_key`] so
/// the key always names the number the body reports.
pub(super) fn tracking_number(record: &OrderRecord) -> Option<&str> {
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
        text(provider.label_url.as_deref()).is_some() || provider.label.is_some()
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

#[cfg(test)]
mod tests;
