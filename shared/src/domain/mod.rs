//! Domain types: values that cannot exist in an invalid state once parsed.

mod api_key;
pub mod iso_codes;
mod money;
mod order;
mod order_number;
mod platform;
mod status;

pub use api_key::{Access, ApiKeyRecord, Scope, SignedRequest};
pub use money::Money;
pub use order::{
    ClientType, Item, LogisticsProvider, Order, ProcessType, Receiver, Sender, SpecialOrderTag,
    StoredLabel,
};
pub use order_number::OrderNumber;
pub use platform::{CallbackPlatform, Platform};
pub use status::OrderStatus;
