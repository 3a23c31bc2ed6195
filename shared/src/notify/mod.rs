//! Webhooks to ERPs, the use cases: managing subscriptions, turning a write
//! of an order into its events and deliveries, and delivering one. The rules
//! they apply (events, endpoints, the delivery protocol, signing) are in
//! [`crate::webhook`], below the ports; these sit above them.
//!
//! | to change… | look in |
//! | --- | --- |
//! | the subscription routes (create, list, read, change, rotate, delete) | `subscriptions.rs` |
//! | from a write to its events and deliveries (the stream's reader) | `fanout.rs` |
//! | how long the fan-out uses a client's endpoints as read | `endpoint_cache.rs` |
//! | an endpoint sent what it missed since a time (`replay?since=`) | `replay.rs` |
//! | one delivery end to end: health, claim, sign, post, settle | `deliverer.rs` |

mod deliverer;
mod endpoint_cache;
mod fanout;
mod replay;
mod subscriptions;

pub use deliverer::{Delivered, Deliverer, DeliveryOutcome, Next};
pub use fanout::{ENDPOINTS_TTL, FanOut, FanOutError, Published};
pub use replay::{MAX_REPLAYED, Replay, Replayed};
pub use subscriptions::{Issued, RECENT_DELIVERIES, Subscriptions, WebhookError};

#[cfg(test)]
mod tests;
