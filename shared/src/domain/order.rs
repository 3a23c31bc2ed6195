use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::{Money, OrderNumber, Platform};

/// An outbound order as accepted from an ERP (spec 000), after parsing.
///
/// Every field that the intake rules require is non-optional here, so code past
/// the intake edge never checks for them again. Serialised, this is the
/// canonical form of the request: what is stored and what the idempotency hash
/// is computed over. It is not deserialised: a request becomes an order
/// through the intake rules (`crate::intake::parse_order`), a stored order
/// through [`Order::from_stored`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub order_number: OrderNumber,
    pub centre_code: String,
    pub client_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_type: Option<ClientType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub special_order_tag: Option<SpecialOrderTag>,
    pub platform_type: Platform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_order_number: Option<String>,
    pub process_type: ProcessType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_logistics: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logistics_provider: Option<LogisticsProvider>,
    pub receiver: Receiver,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    pub items: Vec<Item>,
}

/// `client_type`: 1 = self-built shop, 2 = third-party platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum ClientType {
    Custom = 1,
    ThirdParty = 2,
}

/// `special_order_tag`: 1 = ship an empty parcel, 2 = print an invoice, 3 = custom label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum SpecialOrderTag {
    EmptyParcel = 1,
    PrintInvoice = 2,
    CustomLabel = 3,
}

/// `process_type`: 1 = normal, 2 = already handed to the carrier, 3 = transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum ProcessType {
    #[default]
    Normal = 1,
    HandedOver = 2,
    Transfer = 3,
}

macro_rules! small_int_enum {
    ($ty:ty, $($variant:ident = $value:literal),+) => {
        impl TryFrom<u8> for $ty {
            type Error = String;
            fn try_from(value: u8) -> Result<Self, Self::Error> {
                match value {
                    $($value => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "must be one of {}",
                        [$($value.to_string()),+].join(", ")
                    )),
                }
            }
        }
        impl From<$ty> for u8 {
            fn from(value: $ty) -> Self {
                value as u8
            }
        }
    };
}

small_int_enum!(ClientType, Custom = 1, ThirdParty = 2);
small_int_enum!(
    SpecialOrderTag,
    EmptyParcel = 1,
    PrintInvoice = 2,
    CustomLabel = 3
);
small_int_enum!(ProcessType, Normal = 1, HandedOver = 2, Transfer = 3);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogisticsProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_url: Option<String>,
    /// The label the ERP sent inline (`label_base64`, which the intake moves
    /// to the label store), as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<StoredLabel>,
}

/// A label stored in the label store (S3): where, how big, and its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLabel {
    /// The object key: `labels/{order_number}/{sha256}`.
    pub key: String,
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the label's bytes.
    pub sha256: String,
}

/// Where the parcel goes: a warehouse cannot ship without name, address, city
/// and country, so those are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receiver {
    pub name: String,
    pub address: String,
    pub city: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    pub country_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// The return address, entirely optional (spec 000's own sample fills it with
/// placeholders).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: NonZeroU32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_price: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_sku_id: Option<String>,
}

/// An order as the store holds it: [`Order`]'s canonical JSON, read back.
/// Its own type so that only text this service wrote becomes an order
/// without the intake rules ([`Order::from_stored`]).
#[derive(Deserialize)]
struct StoredOrder {
    order_number: OrderNumber,
    centre_code: String,
    client_code: String,
    client_type: Option<ClientType>,
    special_order_tag: Option<SpecialOrderTag>,
    platform_type: Platform,
    platform_order_number: Option<String>,
    process_type: ProcessType,
    customer_logistics: Option<String>,
    desc: Option<String>,
    package_id: Option<String>,
    shipping_provider_id: Option<String>,
    shipping_provider_name: Option<String>,
    logistics_provider: Option<LogisticsProvider>,
    receiver: Receiver,
    sender: Option<Sender>,
    items: Vec<Item>,
}

impl Order {
    /// The order whose canonical JSON the store holds. Trusted: the text was
    /// written from an [`Order`] that passed the intake rules, so they are not
    /// applied again; never call this on a request body.
    pub fn from_stored(canonical_json: &str) -> Result<Self, serde_json::Error> {
        let stored: StoredOrder = serde_json::from_str(canonical_json)?;
        Ok(Self {
            order_number: stored.order_number,
            centre_code: stored.centre_code,
            client_code: stored.client_code,
            client_type: stored.client_type,
            special_order_tag: stored.special_order_tag,
            platform_type: stored.platform_type,
            platform_order_number: stored.platform_order_number,
            process_type: stored.process_type,
            customer_logistics: stored.customer_logistics,
            desc: stored.desc,
            package_id: stored.package_id,
            shipping_provider_id: stored.shipping_provider_id,
            shipping_provider_name: stored.shipping_provider_name,
            logistics_provider: stored.logistics_provider,
            receiver: stored.receiver,
            sender: stored.sender,
            items: stored.items,
        })
    }

    /// The GSI key that finds other orders of this client with the same
    /// marketplace order number; `None` when the order has none.
    #[must_use]
    pub fn client_platform_order_key(&self) -> Option<String> {
        self.platform_order_number
            .as_ref()
            .map(|number| format!("{}#{}", self.client_code, number))
    }

    /// The tracking number the ERP already knows (process type 2, or a label it bought).
    #[must_use]
    pub fn provided_tracking_number(&self) -> Option<&str> {
        self.logistics_provider
            .as_ref()
            .and_then(|provider| provider.tracking_number.as_deref())
    }
}
