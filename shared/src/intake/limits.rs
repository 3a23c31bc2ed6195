//! The documented caps on what an order may carry. They keep every stored order
//! inside DynamoDB's 400 KB item limit for its whole life and every forwarded
//! field inside the partner's (spec 001) length limits, so nothing accepted
//! fails later.
//!
//! The item budget: the canonical order is at most the body plus ~20 KB of
//! explicit nulls (256 + 20 KB), findings ≤ ~25 KB, the event history ≤ 100
//! events of ≤ ~500 bytes (50 KB) plus a few ≤ 4 KB messages, the callback
//! state ≤ ~10 KB: under 370 KB in the worst case.

/// Largest request body accepted, in bytes (413 above it).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest inline `logistics_provider.label_base64`, in bytes (413 above it;
/// larger labels go by `label_url`).
pub const MAX_LABEL_BASE64_BYTES: usize = 160 * 1024;
/// Most order lines in one order.
pub const MAX_ITEMS: usize = 200;
/// Largest `qty` of one line.
pub const MAX_QTY: u32 = 100_000;

/// Longest value, in characters, of each text field.
pub mod text {
    /// Codes the partner caps at 50 (`WarehouseCode`, `ClientCode`).
    pub const CODE: usize = 50;
    /// Identifiers the partner caps at 100 (`OrderId`, `PackagId`, `TrackingNumber`, …).
    pub const IDENTIFIER: usize = 100;
    /// Names the partner caps at 200 (`ShippingProviderName`), and people's names.
    pub const NAME: usize = 200;
    pub const ADDRESS: usize = 500;
    pub const PLACE: usize = 100;
    pub const COUNTRY_CODE: usize = 10;
    pub const POST_CODE: usize = 20;
    pub const PHONE: usize = 50;
    pub const EMAIL: usize = 254;
    pub const CURRENCY: usize = 10;
    pub const DESC: usize = 1000;
    pub const URL: usize = 2048;
}
