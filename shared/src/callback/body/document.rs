//! The spec-001 request body as the partner reads it (field names, `PackagId`
//! spelling included) and its length caps.

use serde::Serialize;

/// How spec 001 writes times: `yyyy-MM-dd HH:mm:ss`.
pub(super) const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

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

/// Every text field over its spec-001 cap, counted in UTF-16 code units.
pub(super) fn too_long(body: &CallbackBody) -> Vec<(&'static str, usize)> {
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
