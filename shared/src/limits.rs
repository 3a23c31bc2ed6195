//! The documented caps on what an order may carry. They keep every stored order
//! inside DynamoDB's 400 KB item limit for its whole life and every forwarded
//! field inside the partner's (spec 001) length limits, so nothing accepted
//! fails later.
//!
//! The body may be as large as a Lambda invocation can carry, because the one
//! large field, an inline label, goes to the label store (S3), not into the
//! item. What stays in the item is bounded by the field caps: 200 lines of a
//! few hundred bytes, the receiver, sender and order fields (under 60 KB with
//! every field at its cap, a few KB in practice), findings ≤ ~25 KB, the event
//! history ≤ 110 events (100 + 10 lifecycle) of ≤ ~500 bytes plus a few ≤ 4 KB
//! messages, the callback ledger ≤ ~10 KB.

/// Largest request body accepted, in bytes (413 above it): Lambda's 6 MB
/// (6,291,456-byte) synchronous payload, less 64 KiB for the rest of API
/// Gateway's event (headers, request context) that carries the body. An
/// inline label may use all of it (about 4.6 MB of label); larger labels go
/// by `label_url`.
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024 - 64 * 1024;
/// Most order lines in one order.
pub const MAX_ITEMS: usize = 200;
/// Largest `qty` of one line.
pub const MAX_QTY: u32 = 100_000;

/// Each text field's longest value, in characters, and what it may contain.
pub mod text {
    /// How long a text field may be and which characters it refuses.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Rule {
        pub max_chars: usize,
        /// Free text (names, addresses, messages) may hold tabs and line
        /// breaks and bidirectional formatting (right-to-left scripts);
        /// identifiers and codes hold neither. No field holds other control
        /// characters.
        pub free: bool,
    }

    impl Rule {
        const fn code(max_chars: usize) -> Self {
            Self {
                max_chars,
                free: false,
            }
        }
        const fn free(max_chars: usize) -> Self {
            Self {
                max_chars,
                free: true,
            }
        }
    }

    /// Codes the partner caps at 50 (`WarehouseCode`, `ClientCode`).
    pub const CODE: Rule = Rule::code(50);
    /// Identifiers the partner caps at 100 (`OrderId`, `PackagId`, `TrackingNumber`, …).
    pub const IDENTIFIER: Rule = Rule::code(100);
    /// Names the partner caps at 200 (`ShippingProviderName`), and people's names.
    pub const NAME: Rule = Rule::free(200);
    pub const ADDRESS: Rule = Rule::free(500);
    pub const PLACE: Rule = Rule::free(100);
    pub const COUNTRY_CODE: Rule = Rule::code(10);
    pub const POST_CODE: Rule = Rule::code(20);
    pub const PHONE: Rule = Rule::code(50);
    pub const EMAIL: Rule = Rule::code(254);
    pub const CURRENCY: Rule = Rule::code(10);
    pub const DESC: Rule = Rule::free(1000);
    pub const URL: Rule = Rule::code(2048);
    /// Inline label data: its own byte cap applies (MIME base64 may wrap lines).
    pub const BASE64: Rule = Rule::free(usize::MAX);
}
