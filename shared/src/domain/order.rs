use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::{Money, OrderNumber, Platform};

/// An outbound order as accepted from an ERP (spec 000), after parsing.
///
/// Every field that the intake rules require is non-optional here, so code past
/// the intake edge never checks for them again. Serialised, this is the
/// canonical form of the request: what is stored and what the idempotency hash
/// is computed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_number: OrderNumber,
    pub centre_code: String,
    pub client_code: String,
    pub client_type: Option<ClientType>,
    pub special_order_tag: Option<SpecialOrderTag>,
    pub platform_type: Platform,
    pub platform_order_number: Option<String>,
    pub process_type: ProcessType,
    pub customer_logistics: Option<String>,
    pub desc: Option<String>,
    pub package_id: Option<String>,
    pub shipping_provider_id: Option<String>,
    pub shipping_provider_name: Option<String>,
    pub logistics_provider: Option<LogisticsProvider>,
    pub receiver: Receiver,
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
    pub code: Option<String>,
    pub tracking_number: Option<String>,
    pub label_url: Option<String>,
    pub label_base64: Option<String>,
}

/// Where the parcel goes: a warehouse cannot ship without name, address, city
/// and country, so those are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receiver {
    pub name: String,
    pub address: String,
    pub city: String,
    pub province: Option<String>,
    pub district: Option<String>,
    pub country_code: String,
    pub post_code: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// The return address, entirely optional (spec 000's own sample fills it with
/// placeholders).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub name: Option<String>,
    pub address: Option<String>,
    pub city: Option<String>,
    pub province: Option<String>,
    pub district: Option<String>,
    pub country_code: Option<String>,
    pub post_code: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub sku: String,
    pub qty: NonZeroU32,
    pub unit_price: Option<Money>,
    pub currency: Option<String>,
    pub platform_sku_id: Option<String>,
}

impl Order {
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
